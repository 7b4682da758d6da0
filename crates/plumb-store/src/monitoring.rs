//! The storage half of production monitoring: monitors (a name and a JSON spec the
//! `plumb-monitor` crate owns), raw inference events and late labels, per-minute buckets that
//! carry a folded rollup, alert states with their history, and the leader lease of the
//! background evaluator. Domain logic (specs, sketches, rules) lives in `plumb-monitor`.

use async_trait::async_trait;
use plumb_core::Result;

/// Width of a bucket: closed buckets are folded into one rollup each.
pub const BUCKET_MS: i64 = 60_000;

/// The start of the bucket holding `ts_ms` (timestamps are never negative).
pub fn bucket_of(ts_ms: i64) -> i64 {
    ts_ms - ts_ms.rem_euclid(BUCKET_MS)
}

/// A stored monitor.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorRecord {
    pub monitor_id: i64,
    pub name: String,
    /// The spec as JSON text (validated by `plumb-monitor` before it is stored).
    pub spec: String,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// How [`MonitorStore::put_monitor`] treats an existing or missing monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutMode {
    /// Refuse an existing name (`RESOURCE_ALREADY_EXISTS`).
    Create,
    /// Refuse a missing name (`RESOURCE_DOES_NOT_EXIST`).
    Update,
    /// Create or replace.
    Apply,
}

/// One inference event, validated. JSON-valued fields are kept as JSON text.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub ts_ms: i64,
    pub request_id: String,
    pub latency_ms: Option<f64>,
    pub error: bool,
    pub prediction: Option<String>,
    pub label: Option<String>,
    pub scores: Option<String>,
    pub features: Option<String>,
    pub segment: Option<String>,
}

/// Ground truth that arrived after its event.
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    pub request_id: String,
    /// JSON text.
    pub label: String,
}

/// What folding and window queries read of an event: the label is the late one when there is
/// one, else the event's own.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    pub ts_ms: i64,
    pub request_id: String,
    pub latency_ms: Option<f64>,
    pub error: bool,
    pub prediction: Option<String>,
    pub label: Option<String>,
}

/// A bucket's bookkeeping: `gen` counts writes that touched it (events, labels), `folded_gen`
/// the writes its rollup includes. A rollup is current when the two are equal.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    pub monitor_id: i64,
    pub bucket_ms: i64,
    pub gen: i64,
    pub folded_gen: i64,
    pub rollup: Option<String>,
}

impl Bucket {
    pub fn current(&self) -> bool {
        self.gen == self.folded_gen && self.rollup.is_some()
    }
}

/// The state of one rule of one monitor (the alert), as the evaluator left it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AlertState {
    pub monitor: String,
    pub rule: String,
    /// `inactive`, `pending`, `firing` or `resolved`.
    pub state: String,
    pub severity: String,
    /// When the condition last became true (pending or firing since).
    pub active_ms: Option<i64>,
    pub fired_ms: Option<i64>,
    pub resolved_ms: Option<i64>,
    /// The last evaluation at which the condition held (for `keep_firing_for`).
    pub last_true_ms: Option<i64>,
    pub value: Option<f64>,
    pub baseline: Option<f64>,
    pub samples: i64,
    pub message: String,
    pub evaluated_ms: i64,
}

/// One change of an alert's state, kept for the alert timeline and for notifications.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AlertChange {
    /// Assigned by the store (insertion order).
    pub seq: i64,
    pub monitor: String,
    pub rule: String,
    pub from: String,
    pub to: String,
    pub severity: String,
    pub at_ms: i64,
    pub value: Option<f64>,
    pub baseline: Option<f64>,
    pub message: String,
}

/// A filter over the alert history.
#[derive(Debug, Clone, Default)]
pub struct AlertQuery {
    pub monitor: Option<String>,
    pub state: Option<String>,
    pub since_ms: Option<i64>,
    pub max_results: i64,
}

/// Everything monitoring needs from a database; every backend implements it (one database).
#[async_trait]
pub trait MonitorStore: Send + Sync + 'static {
    /// Stores a monitor; alert states of rules not in `rules` (the spec's rule names) go.
    async fn put_monitor(
        &self,
        name: &str,
        spec: &str,
        rules: Vec<String>,
        mode: PutMode,
        now_ms: i64,
    ) -> Result<MonitorRecord>;
    async fn get_monitor(&self, name: &str) -> Result<MonitorRecord>;
    async fn list_monitors(&self) -> Result<Vec<MonitorRecord>>;
    /// Removes the monitor with its events, labels, rollups and alert states; the alert
    /// history stays.
    async fn delete_monitor(&self, name: &str) -> Result<()>;

    /// Stores events (an event already stored, same timestamp and request id, is skipped) and
    /// marks their buckets for folding; answers after COMMIT with the number stored.
    async fn log_events(&self, monitor_id: i64, events: Vec<Event>) -> Result<u64>;
    /// Stores late labels (a later label for a request replaces the earlier) and marks the
    /// buckets of their events for folding again; returns how many matched a stored event.
    async fn log_labels(&self, monitor_id: i64, labels: Vec<Label>, now_ms: i64) -> Result<u64>;

    /// Buckets that ended at or before `closed_before_ms` whose rollup is missing or stale,
    /// oldest first.
    async fn buckets_to_fold(&self, closed_before_ms: i64, limit: i64) -> Result<Vec<Bucket>>;
    /// How many of a monitor's buckets ended at or before `closed_before_ms` and are not
    /// folded (or were touched since).
    async fn stale_buckets(&self, monitor_id: i64, closed_before_ms: i64) -> Result<i64>;
    /// The buckets of a monitor in `[start_ms, end_ms)`, by start.
    async fn buckets(&self, monitor_id: i64, start_ms: i64, end_ms: i64) -> Result<Vec<Bucket>>;
    /// Events of a monitor in `[start_ms, end_ms)` ordered by (timestamp, request id), after
    /// the given position, at most `limit`.
    async fn events_page(
        &self,
        monitor_id: i64,
        start_ms: i64,
        end_ms: i64,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> Result<Vec<EventRow>>;
    /// Stores a bucket's rollup, computed from its events when its `gen` was `gen`.
    async fn put_rollup(
        &self,
        monitor_id: i64,
        bucket_ms: i64,
        gen: i64,
        rollup: &str,
    ) -> Result<()>;
    /// Deletes events (and labels) older than `before_ms` whose buckets are folded, at most
    /// `limit` of each (one short transaction); returns the events deleted.
    async fn prune_events(&self, before_ms: i64, limit: i64) -> Result<u64>;

    /// Points of `key` logged to the given runs with timestamps in `[start_ms, end_ms)`, as
    /// (timestamp, value), NaN left out.
    async fn run_points(
        &self,
        run_ids: Vec<String>,
        key: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<(i64, f64)>>;

    async fn alert_states(&self, monitor: Option<&str>) -> Result<Vec<AlertState>>;
    /// Writes a rule's state and, when it changed, the change to the history, at once.
    async fn put_alert_state(&self, state: AlertState, change: Option<AlertChange>) -> Result<()>;
    async fn alert_history(&self, query: AlertQuery) -> Result<Vec<AlertChange>>;

    /// Whether this process leads the background monitoring work (folding, evaluation): on
    /// PostgreSQL a session advisory lock held on a connection of its own, so one replica at a
    /// time does it and another takes over when that connection ends; SQLite has one server.
    async fn lead(&self) -> Result<bool>;
}
