//! `MonitorStore` for PostgreSQL: one line per method onto the shared queries (writes in a
//! transaction, reads on a pooled connection), and the leader lock: a session advisory lock
//! held on a connection of its own, released by PostgreSQL when that connection ends.

use async_trait::async_trait;
use plumb_core::Result;
use plumb_store::monitoring::{
    AlertChange, AlertQuery, AlertState, Bucket, Event, EventRow, Label, MonitorRecord,
    MonitorStore, PutMode,
};
use plumb_store::queries::monitoring as q;
use sqlx::{Connection, PgConnection};

use crate::conn::PgConn;
use crate::{PgStore, E, R};

#[async_trait]
impl MonitorStore for PgStore {
    async fn put_monitor(
        &self,
        name: &str,
        spec: &str,
        rules: Vec<String>,
        mode: PutMode,
        now_ms: i64,
    ) -> Result<MonitorRecord> {
        in_tx!(self, |c| q::put_monitor(
            &mut PgConn(c),
            name,
            spec,
            &rules,
            mode,
            now_ms
        ))
    }
    async fn get_monitor(&self, name: &str) -> Result<MonitorRecord> {
        read!(self, |c| q::get_monitor(&mut PgConn(c), name))
    }
    async fn list_monitors(&self) -> Result<Vec<MonitorRecord>> {
        read!(self, |c| q::list_monitors(&mut PgConn(c)))
    }
    async fn delete_monitor(&self, name: &str) -> Result<()> {
        in_tx!(self, |c| q::delete_monitor(&mut PgConn(c), name))
    }
    async fn log_events(&self, monitor_id: i64, events: Vec<Event>) -> Result<u64> {
        in_tx!(self, |c| q::log_events(
            &mut PgConn(c),
            monitor_id,
            events.clone()
        ))
    }
    async fn log_labels(&self, monitor_id: i64, labels: Vec<Label>, now_ms: i64) -> Result<u64> {
        in_tx!(self, |c| q::log_labels(
            &mut PgConn(c),
            monitor_id,
            labels.clone(),
            now_ms
        ))
    }
    async fn buckets_to_fold(&self, closed_before_ms: i64, limit: i64) -> Result<Vec<Bucket>> {
        read!(self, |c| q::buckets_to_fold(
            &mut PgConn(c),
            closed_before_ms,
            limit
        ))
    }
    async fn stale_buckets(&self, monitor_id: i64, closed_before_ms: i64) -> Result<i64> {
        read!(self, |c| q::stale_buckets(
            &mut PgConn(c),
            monitor_id,
            closed_before_ms
        ))
    }
    async fn buckets(&self, monitor_id: i64, start_ms: i64, end_ms: i64) -> Result<Vec<Bucket>> {
        read!(self, |c| q::buckets(
            &mut PgConn(c),
            monitor_id,
            start_ms,
            end_ms
        ))
    }
    async fn events_page(
        &self,
        monitor_id: i64,
        start_ms: i64,
        end_ms: i64,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> Result<Vec<EventRow>> {
        read!(self, |c| q::events_page(
            &mut PgConn(c),
            monitor_id,
            start_ms,
            end_ms,
            after,
            limit
        ))
    }
    async fn put_rollup(
        &self,
        monitor_id: i64,
        bucket_ms: i64,
        gen: i64,
        rollup: &str,
    ) -> Result<()> {
        in_tx!(self, |c| q::put_rollup(
            &mut PgConn(c),
            monitor_id,
            bucket_ms,
            gen,
            rollup
        ))
    }
    async fn prune_events(&self, before_ms: i64, limit: i64) -> Result<u64> {
        in_tx!(self, |c| q::prune_events(&mut PgConn(c), before_ms, limit))
    }
    async fn run_points(
        &self,
        run_ids: Vec<String>,
        key: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<(i64, f64)>> {
        read!(self, |c| q::run_points(
            &mut PgConn(c),
            run_ids,
            key,
            start_ms,
            end_ms
        ))
    }
    async fn alert_states(&self, monitor: Option<&str>) -> Result<Vec<AlertState>> {
        read!(self, |c| q::alert_states(&mut PgConn(c), monitor))
    }
    async fn put_alert_state(&self, state: AlertState, change: Option<AlertChange>) -> Result<()> {
        in_tx!(self, |c| q::put_alert_state(
            &mut PgConn(c),
            state.clone(),
            change.clone()
        ))
    }
    async fn alert_history(&self, query: AlertQuery) -> Result<Vec<AlertChange>> {
        read!(self, |c| q::alert_history(&mut PgConn(c), query))
    }
    async fn lead(&self) -> Result<bool> {
        let mut held = self.leader.lock().await;
        let outcome: R<bool> = async {
            if let Some(c) = held.as_mut() {
                if c.ping().await.is_ok() {
                    return Ok(true);
                }
                // The session ended (and with it the lock): try to take it again.
                *held = None;
            }
            let mut c: PgConnection = self.pool.acquire().await?.detach();
            let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(q::LEADER_LOCK_KEY)
                .fetch_one(&mut c)
                .await?;
            if got {
                *held = Some(c);
            }
            Ok(got)
        }
        .await;
        outcome.map_err(E::into_domain)
    }
}
