//! `MonitorStore` for SQLite: one line per method onto the shared queries, writes on the
//! writer thread, reads on the readers. One server writes a database file, so it leads.

use async_trait::async_trait;
use plumb_core::Result;
use plumb_store::monitoring::{
    AlertChange, AlertQuery, AlertState, Bucket, Event, EventRow, Label, MonitorRecord,
    MonitorStore, PutMode,
};
use plumb_store::queries::monitoring as q;

use crate::conn::{self, SqliteConn};
use crate::SqliteStore;

#[async_trait]
impl MonitorStore for SqliteStore {
    async fn put_monitor(
        &self,
        name: &str,
        spec: &str,
        rules: Vec<String>,
        mode: PutMode,
        now_ms: i64,
    ) -> Result<MonitorRecord> {
        let (n, s) = (name.to_string(), spec.to_string());
        self.write(move |c| {
            conn::sync(q::put_monitor(
                &mut SqliteConn(c),
                &n,
                &s,
                &rules,
                mode,
                now_ms,
            ))
        })
        .await
    }
    async fn get_monitor(&self, name: &str) -> Result<MonitorRecord> {
        let n = name.to_string();
        self.read(move |c| conn::sync(q::get_monitor(&mut SqliteConn(c), &n)))
            .await
    }
    async fn list_monitors(&self) -> Result<Vec<MonitorRecord>> {
        self.read(move |c| conn::sync(q::list_monitors(&mut SqliteConn(c))))
            .await
    }
    async fn delete_monitor(&self, name: &str) -> Result<()> {
        let n = name.to_string();
        self.write(move |c| conn::sync(q::delete_monitor(&mut SqliteConn(c), &n)))
            .await
    }
    async fn log_events(&self, monitor_id: i64, events: Vec<Event>) -> Result<u64> {
        self.write(move |c| conn::sync(q::log_events(&mut SqliteConn(c), monitor_id, events)))
            .await
    }
    async fn log_labels(&self, monitor_id: i64, labels: Vec<Label>, now_ms: i64) -> Result<u64> {
        self.write(move |c| {
            conn::sync(q::log_labels(
                &mut SqliteConn(c),
                monitor_id,
                labels,
                now_ms,
            ))
        })
        .await
    }
    async fn buckets_to_fold(&self, closed_before_ms: i64, limit: i64) -> Result<Vec<Bucket>> {
        self.read(move |c| {
            conn::sync(q::buckets_to_fold(
                &mut SqliteConn(c),
                closed_before_ms,
                limit,
            ))
        })
        .await
    }
    async fn stale_buckets(&self, monitor_id: i64, closed_before_ms: i64) -> Result<i64> {
        self.read(move |c| {
            conn::sync(q::stale_buckets(
                &mut SqliteConn(c),
                monitor_id,
                closed_before_ms,
            ))
        })
        .await
    }
    async fn buckets(&self, monitor_id: i64, start_ms: i64, end_ms: i64) -> Result<Vec<Bucket>> {
        self.read(move |c| conn::sync(q::buckets(&mut SqliteConn(c), monitor_id, start_ms, end_ms)))
            .await
    }
    async fn events_page(
        &self,
        monitor_id: i64,
        start_ms: i64,
        end_ms: i64,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> Result<Vec<EventRow>> {
        self.read(move |c| {
            conn::sync(q::events_page(
                &mut SqliteConn(c),
                monitor_id,
                start_ms,
                end_ms,
                after,
                limit,
            ))
        })
        .await
    }
    async fn put_rollup(
        &self,
        monitor_id: i64,
        bucket_ms: i64,
        gen: i64,
        rollup: &str,
    ) -> Result<()> {
        let r = rollup.to_string();
        self.write(move |c| {
            conn::sync(q::put_rollup(
                &mut SqliteConn(c),
                monitor_id,
                bucket_ms,
                gen,
                &r,
            ))
        })
        .await
    }
    async fn prune_events(&self, before_ms: i64, limit: i64) -> Result<u64> {
        self.write(move |c| conn::sync(q::prune_events(&mut SqliteConn(c), before_ms, limit)))
            .await
    }
    async fn run_points(
        &self,
        run_ids: Vec<String>,
        key: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<(i64, f64)>> {
        let k = key.to_string();
        self.read(move |c| {
            conn::sync(q::run_points(
                &mut SqliteConn(c),
                run_ids,
                &k,
                start_ms,
                end_ms,
            ))
        })
        .await
    }
    async fn alert_states(&self, monitor: Option<&str>) -> Result<Vec<AlertState>> {
        let m = monitor.map(str::to_string);
        self.read(move |c| conn::sync(q::alert_states(&mut SqliteConn(c), m.as_deref())))
            .await
    }
    async fn put_alert_state(&self, state: AlertState, change: Option<AlertChange>) -> Result<()> {
        self.write(move |c| conn::sync(q::put_alert_state(&mut SqliteConn(c), state, change)))
            .await
    }
    async fn alert_history(&self, query: AlertQuery) -> Result<Vec<AlertChange>> {
        self.read(move |c| conn::sync(q::alert_history(&mut SqliteConn(c), query)))
            .await
    }
    async fn lead(&self) -> Result<bool> {
        Ok(true)
    }
}
