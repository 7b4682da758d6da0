//! `WebhookStore` for SQLite: one line per method onto the shared queries, writes on the
//! writer thread, reads on the readers.

use async_trait::async_trait;
use plumb_core::entities::Page;
use plumb_core::Result;
use plumb_store::monitoring::AlertChange;
use plumb_store::queries::webhooks as q;
use plumb_store::webhooks::{
    Claimed, Delivery, DeliveryQuery, NewDelivery, Outcome, Webhook, WebhookPatch, WebhookStore,
};

use crate::conn::{self, SqliteConn};
use crate::SqliteStore;

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn create_webhook(&self, w: Webhook) -> Result<Webhook> {
        self.write(move |c| conn::sync(q::create_webhook(&mut SqliteConn(c), w)))
            .await
    }
    async fn get_webhook(&self, id: &str) -> Result<Webhook> {
        let id = id.to_string();
        self.read(move |c| conn::sync(q::get_webhook(&mut SqliteConn(c), &id)))
            .await
    }
    async fn list_webhooks(&self, max: i64, offset: i64) -> Result<Page<Webhook>> {
        self.read(move |c| conn::sync(q::list_webhooks(&mut SqliteConn(c), max, offset)))
            .await
    }
    async fn update_webhook(&self, id: &str, p: WebhookPatch, now_ms: i64) -> Result<Webhook> {
        let id = id.to_string();
        self.write(move |c| conn::sync(q::update_webhook(&mut SqliteConn(c), &id, p, now_ms)))
            .await
    }
    async fn delete_webhook(&self, id: &str, now_ms: i64) -> Result<()> {
        let id = id.to_string();
        self.write(move |c| conn::sync(q::delete_webhook(&mut SqliteConn(c), &id, now_ms)))
            .await
    }
    async fn enqueue_deliveries(&self, d: Vec<NewDelivery>) -> Result<()> {
        self.write(move |c| conn::sync(q::enqueue(&mut SqliteConn(c), &d)))
            .await
    }
    async fn claim_deliveries(&self, now: i64, until: i64, limit: i64) -> Result<Vec<Claimed>> {
        self.write(move |c| conn::sync(q::claim(&mut SqliteConn(c), now, until, limit)))
            .await
    }
    async fn finish_delivery(&self, id: &str, outcome: Outcome, now_ms: i64) -> Result<()> {
        let id = id.to_string();
        self.write(move |c| conn::sync(q::finish(&mut SqliteConn(c), &id, outcome, now_ms)))
            .await
    }
    async fn list_deliveries(&self, query: DeliveryQuery) -> Result<Vec<Delivery>> {
        self.read(move |c| conn::sync(q::list_deliveries(&mut SqliteConn(c), &query)))
            .await
    }
    async fn prune_deliveries(&self, before_ms: i64) -> Result<u64> {
        self.write(move |c| conn::sync(q::prune(&mut SqliteConn(c), before_ms)))
            .await
    }
    async fn pending_notices(&self, limit: i64) -> Result<Vec<AlertChange>> {
        self.read(move |c| conn::sync(q::pending_notices(&mut SqliteConn(c), limit)))
            .await
    }
    async fn settle_notice(&self, seq: i64, d: Vec<NewDelivery>, now_ms: i64) -> Result<bool> {
        self.write(move |c| conn::sync(q::settle_notice(&mut SqliteConn(c), seq, &d, now_ms)))
            .await
    }
}
