//! `WebhookStore` for PostgreSQL: one line per method onto the shared queries (writes in a
//! transaction, reads on a pooled connection).

use async_trait::async_trait;
use plumb_core::entities::Page;
use plumb_core::Result;
use plumb_store::monitoring::AlertChange;
use plumb_store::queries::webhooks as q;
use plumb_store::webhooks::{
    Claimed, Delivery, DeliveryQuery, NewDelivery, Outcome, Webhook, WebhookPatch, WebhookStore,
};

use crate::conn::PgConn;
use crate::PgStore;
use sqlx::PgConnection;

#[async_trait]
impl WebhookStore for PgStore {
    async fn create_webhook(&self, w: Webhook) -> Result<Webhook> {
        in_tx!(self, |c| q::create_webhook(&mut PgConn(c), w.clone()))
    }
    async fn get_webhook(&self, id: &str) -> Result<Webhook> {
        read!(self, |c| q::get_webhook(&mut PgConn(c), id))
    }
    async fn list_webhooks(&self, max: i64, offset: i64) -> Result<Page<Webhook>> {
        read!(self, |c| q::list_webhooks(&mut PgConn(c), max, offset))
    }
    async fn update_webhook(&self, id: &str, p: WebhookPatch, now_ms: i64) -> Result<Webhook> {
        in_tx!(self, |c| q::update_webhook(
            &mut PgConn(c),
            id,
            p.clone(),
            now_ms
        ))
    }
    async fn delete_webhook(&self, id: &str, now_ms: i64) -> Result<()> {
        in_tx!(self, |c| q::delete_webhook(&mut PgConn(c), id, now_ms))
    }
    async fn enqueue_deliveries(&self, d: Vec<NewDelivery>) -> Result<()> {
        in_tx!(self, |c| q::enqueue(&mut PgConn(c), &d))
    }
    async fn claim_deliveries(&self, now: i64, until: i64, limit: i64) -> Result<Vec<Claimed>> {
        in_tx!(self, |c| q::claim(&mut PgConn(c), now, until, limit))
    }
    async fn finish_delivery(&self, id: &str, outcome: Outcome, now_ms: i64) -> Result<()> {
        in_tx!(self, |c| q::finish(
            &mut PgConn(c),
            id,
            outcome.clone(),
            now_ms
        ))
    }
    async fn list_deliveries(&self, query: DeliveryQuery) -> Result<Vec<Delivery>> {
        read!(self, |c| q::list_deliveries(&mut PgConn(c), &query))
    }
    async fn prune_deliveries(&self, before_ms: i64) -> Result<u64> {
        in_tx!(self, |c| q::prune(&mut PgConn(c), before_ms))
    }
    async fn pending_notices(&self, limit: i64) -> Result<Vec<AlertChange>> {
        read!(self, |c| q::pending_notices(&mut PgConn(c), limit))
    }
    async fn settle_notice(&self, seq: i64, d: Vec<NewDelivery>, now_ms: i64) -> Result<bool> {
        in_tx!(self, |c| q::settle_notice(&mut PgConn(c), seq, &d, now_ms))
    }
}
