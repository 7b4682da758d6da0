//! The storage half of webhooks and notifications: MLflow's registry webhooks (a name, a URL,
//! the `{entity, action}` events it wants, an encrypted secret) and the durable outbox of
//! deliveries that both registry events and monitors' alert notifications go through.
//!
//! A registry write that MLflow announces to webhooks queues one delivery per subscribed,
//! active webhook in its own transaction (`queries::webhooks::emit`), so an event is delivered
//! only if its change committed, and a pending delivery survives a restart. Deliveries are
//! claimed with a lease (at most one attempt in flight across replicas) and finished with
//! their outcome, which is kept as the delivery log.

use async_trait::async_trait;
use plumb_core::entities::Page;
use plumb_core::Result;

use crate::monitoring::AlertChange;

/// A stored webhook. `secret` is the stored (encrypted) form, never shown to clients.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub webhook_id: String,
    pub name: String,
    pub description: Option<String>,
    pub url: String,
    /// `(entity, action)` in MLflow's lower-case spelling (`model_version`, `created`).
    pub events: Vec<(String, String)>,
    /// `ACTIVE` or `DISABLED`.
    pub status: String,
    pub secret: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// A partial update: `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebhookPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub url: Option<String>,
    pub events: Option<Vec<(String, String)>>,
    /// `Some("")` removes the secret.
    pub secret: Option<String>,
    pub status: Option<String>,
}

/// Where a delivery goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// An MLflow webhook (its URL and secret are read when the delivery is attempted, so an
    /// update applies to pending deliveries; a deleted webhook's deliveries fail).
    Webhook(String),
    /// A monitor's notification target, as JSON (the notifier owns its shape).
    Notify { monitor: String, target: String },
}

/// A delivery to queue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDelivery {
    pub target: Target,
    pub entity: String,
    pub action: String,
    /// The event's data as JSON.
    pub data: String,
    pub created_ms: i64,
}

/// A queued or finished delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// Also the `X-MLflow-Delivery-Id` sent with every attempt, so receivers can deduplicate.
    pub delivery_id: String,
    pub target: Target,
    pub entity: String,
    pub action: String,
    pub data: String,
    pub created_ms: i64,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    pub attempts: i64,
    pub next_ms: i64,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub done_ms: Option<i64>,
}

/// A claimed delivery with what its attempt needs: for a webhook, its current URL, secret
/// and status (`None` when the webhook was deleted).
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub delivery: Delivery,
    pub webhook: Option<Webhook>,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Delivered {
        status_code: i64,
    },
    /// Try again at `next_ms`.
    Retry {
        status_code: Option<i64>,
        error: String,
        next_ms: i64,
    },
    Failed {
        status_code: Option<i64>,
        error: String,
    },
}

/// Which deliveries to list, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliveryQuery {
    pub webhook_id: Option<String>,
    pub monitor: Option<String>,
    pub state: Option<String>,
    pub max_results: i64,
}

#[async_trait]
pub trait WebhookStore: Send + Sync + 'static {
    async fn create_webhook(&self, webhook: Webhook) -> Result<Webhook>;
    /// `RESOURCE_DOES_NOT_EXIST` for a missing or deleted webhook.
    async fn get_webhook(&self, webhook_id: &str) -> Result<Webhook>;
    /// Newest first, MLflow's offset page tokens.
    async fn list_webhooks(&self, max_results: i64, offset: i64) -> Result<Page<Webhook>>;
    async fn update_webhook(
        &self,
        webhook_id: &str,
        patch: WebhookPatch,
        now_ms: i64,
    ) -> Result<Webhook>;
    /// Soft delete, as MLflow: the webhook disappears from the API, its delivery log stays.
    async fn delete_webhook(&self, webhook_id: &str, now_ms: i64) -> Result<()>;

    /// Queues deliveries (one transaction).
    async fn enqueue_deliveries(&self, deliveries: Vec<NewDelivery>) -> Result<()>;
    /// Claims up to `limit` pending deliveries due at `now_ms` whose lease expired, leasing each
    /// until `lease_until_ms` and counting the attempt; a delivery claimed by another process
    /// meanwhile is skipped.
    async fn claim_deliveries(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: i64,
    ) -> Result<Vec<Claimed>>;
    async fn finish_delivery(&self, delivery_id: &str, outcome: Outcome, now_ms: i64)
        -> Result<()>;
    async fn list_deliveries(&self, query: DeliveryQuery) -> Result<Vec<Delivery>>;
    /// Removes finished deliveries older than `before_ms`; returns how many.
    async fn prune_deliveries(&self, before_ms: i64) -> Result<u64>;

    /// Alert changes not yet turned into notifications, oldest first.
    async fn pending_notices(&self, limit: i64) -> Result<Vec<AlertChange>>;
    /// Marks an alert change notified and queues its deliveries, at once; `false` (nothing
    /// queued) when another process did it first.
    async fn settle_notice(
        &self,
        seq: i64,
        deliveries: Vec<NewDelivery>,
        now_ms: i64,
    ) -> Result<bool>;
}
