//! plumb's monitoring API under `/api/2.0/plumb/` (typed JSON, documented in README):
//! monitors (create, get, list, replace, delete), inference events and late labels, windowed
//! series of a monitor's metrics, and alert states and their history.

use axum::extract::{Path, Query, State};
use axum::Json;
use plumb_core::{now_millis, Error};
use plumb_monitor::engine::{self, Loaded, Point};
use plumb_monitor::events::{parse_events, parse_labels};
use plumb_monitor::metric::{MetricRef, Origin};
use plumb_monitor::spec::{duration, MonitorSpec};
use plumb_store::monitoring::{AlertChange, AlertQuery, AlertState, MonitorRecord, PutMode};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::extract::Body;
use crate::AppState;

/// A monitor as the API shows it.
#[derive(Debug, Serialize)]
pub struct MonitorOut {
    pub name: String,
    pub spec: Value,
    pub created_ms: i64,
    pub updated_ms: i64,
}

impl MonitorOut {
    fn of(r: MonitorRecord) -> ApiResult<Self> {
        Ok(Self {
            spec: serde_json::from_str(&r.spec)
                .map_err(|e| Error::internal(format!("stored spec of '{}': {e}", r.name)))?,
            name: r.name,
            created_ms: r.created_ms,
            updated_ms: r.updated_ms,
        })
    }
}

#[derive(Debug, Serialize)]
pub struct MonitorAnswer {
    pub monitor: MonitorOut,
}

#[derive(Debug, Serialize)]
pub struct MonitorWithAlerts {
    pub monitor: MonitorOut,
    pub alerts: Vec<AlertOut>,
    /// Closed minutes whose rollup is missing or stale (the evaluator folds them).
    pub stale_buckets: i64,
}

#[derive(Debug, Serialize)]
pub struct MonitorList {
    pub monitors: Vec<MonitorOut>,
}

/// An alert: one rule's state.
#[derive(Debug, Serialize)]
pub struct AlertOut {
    pub monitor: String,
    pub rule: String,
    pub state: String,
    pub severity: String,
    pub active_ms: Option<i64>,
    pub fired_ms: Option<i64>,
    pub resolved_ms: Option<i64>,
    pub value: Option<f64>,
    pub baseline: Option<f64>,
    pub samples: i64,
    pub message: String,
    pub evaluated_ms: i64,
}

impl From<AlertState> for AlertOut {
    fn from(s: AlertState) -> Self {
        Self {
            monitor: s.monitor,
            rule: s.rule,
            state: s.state,
            severity: s.severity,
            active_ms: s.active_ms,
            fired_ms: s.fired_ms,
            resolved_ms: s.resolved_ms,
            value: s.value.filter(|v| v.is_finite()),
            baseline: s.baseline.filter(|v| v.is_finite()),
            samples: s.samples,
            message: s.message,
            evaluated_ms: s.evaluated_ms,
        }
    }
}

/// One change of an alert's state.
#[derive(Debug, Serialize)]
pub struct ChangeOut {
    pub id: i64,
    pub monitor: String,
    pub rule: String,
    pub from: String,
    pub to: String,
    pub severity: String,
    pub timestamp_ms: i64,
    pub value: Option<f64>,
    pub baseline: Option<f64>,
    pub message: String,
}

impl From<AlertChange> for ChangeOut {
    fn from(c: AlertChange) -> Self {
        Self {
            id: c.seq,
            monitor: c.monitor,
            rule: c.rule,
            from: c.from,
            to: c.to,
            severity: c.severity,
            timestamp_ms: c.at_ms,
            value: c.value.filter(|v| v.is_finite()),
            baseline: c.baseline.filter(|v| v.is_finite()),
            message: c.message,
        }
    }
}

fn spec_of(body: &[u8], path_name: Option<&str>) -> ApiResult<MonitorSpec> {
    let mut v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(format!("the body is not JSON: {e}")))?;
    if let (Some(name), Value::Object(o)) = (path_name, &mut v) {
        match o.get("name") {
            None => {
                o.insert("name".into(), Value::String(name.to_string()));
            }
            Some(Value::String(n)) if n == name => {}
            Some(_) => {
                return Err(ApiError::invalid(format!(
                    "name: the body names another monitor than the path ('{name}')"
                )))
            }
        }
    }
    MonitorSpec::from_json(v).map_err(ApiError::invalid)
}

async fn put(st: &AppState, spec: MonitorSpec, mode: PutMode) -> ApiResult<Json<MonitorAnswer>> {
    // Notification targets obey the webhooks' address policy (checked again at each attempt).
    for (i, t) in spec.notify.iter().enumerate() {
        if let Some((_, url)) = t.kind_and_url() {
            let field = format!("notify[{i}] URL");
            st.config
                .webhooks
                .policy
                .check(url, &field)
                .await
                .map_err(ApiError::invalid)?;
        }
    }
    let text = serde_json::to_string(&spec).map_err(|e| Error::internal(e.to_string()))?;
    let rules = spec.rules.iter().map(|r| r.name.clone()).collect();
    let record = st
        .all
        .put_monitor(&spec.name, &text, rules, mode, now_millis())
        .await?;
    Ok(Json(MonitorAnswer {
        monitor: MonitorOut::of(record)?,
    }))
}

/// `POST /monitors`: creates a monitor (the name must be new).
pub async fn create(
    State(st): State<AppState>,
    Body(body): Body,
) -> ApiResult<Json<MonitorAnswer>> {
    let spec = spec_of(&body, None)?;
    put(&st, spec, PutMode::Create).await
}

/// `PUT /monitors/{name}`: creates or replaces (what `plumb monitor apply` sends).
pub async fn replace(
    State(st): State<AppState>,
    Path(name): Path<String>,
    Body(body): Body,
) -> ApiResult<Json<MonitorAnswer>> {
    let spec = spec_of(&body, Some(&name))?;
    put(&st, spec, PutMode::Apply).await
}

/// `PATCH /monitors/{name}`: replaces the spec of an existing monitor.
pub async fn update(
    State(st): State<AppState>,
    Path(name): Path<String>,
    Body(body): Body,
) -> ApiResult<Json<MonitorAnswer>> {
    let spec = spec_of(&body, Some(&name))?;
    put(&st, spec, PutMode::Update).await
}

pub async fn get(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<MonitorWithAlerts>> {
    let record = st.all.get_monitor(&name).await?;
    let alerts = st.all.alert_states(Some(&name)).await?;
    let stale_buckets = st
        .all
        .stale_buckets(record.monitor_id, now_millis())
        .await?;
    Ok(Json(MonitorWithAlerts {
        stale_buckets,
        monitor: MonitorOut::of(record)?,
        alerts: alerts.into_iter().map(AlertOut::from).collect(),
    }))
}

pub async fn list(State(st): State<AppState>) -> ApiResult<Json<MonitorList>> {
    let monitors = st
        .all
        .list_monitors()
        .await?
        .into_iter()
        .map(MonitorOut::of)
        .collect::<ApiResult<_>>()?;
    Ok(Json(MonitorList { monitors }))
}

pub async fn delete(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    st.all.delete_monitor(&name).await?;
    Ok(Json(serde_json::json!({})))
}

#[derive(Debug, Serialize)]
pub struct Stored {
    /// Items in the request.
    pub received: usize,
    /// Events newly stored (a retried event is stored once) / labels stored.
    pub stored: u64,
    /// Labels that matched a stored event (the rest wait for theirs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched: Option<u64>,
}

/// `POST /monitors/{name}/events`: answered once the events are durable.
pub async fn events(
    State(st): State<AppState>,
    Path(name): Path<String>,
    Body(body): Body,
) -> ApiResult<Json<Stored>> {
    let monitor = st.all.get_monitor(&name).await?;
    let now = now_millis();
    let oldest = now - st.config.monitoring.retention.as_millis() as i64;
    let events = if body.len() > 256 * 1024 {
        tokio::task::spawn_blocking(move || parse_events(&body, now, oldest))
            .await
            .map_err(|e| Error::internal(e.to_string()))?
    } else {
        parse_events(&body, now, oldest)
    }
    .map_err(ApiError::invalid)?;
    let received = events.len();
    let stored = if events.is_empty() {
        0
    } else {
        st.all.log_events(monitor.monitor_id, events).await?
    };
    Ok(Json(Stored {
        received,
        stored,
        matched: None,
    }))
}

/// `POST /monitors/{name}/labels`: late ground truth, joined by request id.
pub async fn labels(
    State(st): State<AppState>,
    Path(name): Path<String>,
    Body(body): Body,
) -> ApiResult<Json<Stored>> {
    let monitor = st.all.get_monitor(&name).await?;
    let labels = parse_labels(&body).map_err(ApiError::invalid)?;
    let received = labels.len();
    let matched = if labels.is_empty() {
        0
    } else {
        st.all
            .log_labels(monitor.monitor_id, labels, now_millis())
            .await?
    };
    Ok(Json(Stored {
        received,
        stored: received as u64,
        matched: Some(matched),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesQuery {
    pub metric: String,
    /// Default `5m`.
    pub window: Option<String>,
    /// Default: an hour before `end_ms`.
    pub start_ms: Option<i64>,
    /// Default: now.
    pub end_ms: Option<i64>,
    /// Default: the window, or wider so that at most [`MAX_POINTS`] points are returned.
    pub step_ms: Option<i64>,
    /// `events` or `runs`; default as for rules.
    pub from: Option<Origin>,
}

#[derive(Debug, Serialize)]
pub struct SeriesOut {
    pub monitor: String,
    pub metric: String,
    pub window: String,
    pub from: Origin,
    pub baseline: Option<f64>,
    pub points: Vec<Point>,
}

/// The latest time a series may end at (the year 2100).
const LATEST_MS: i64 = 4_102_444_800_000;

/// Points a series request may return.
pub const MAX_POINTS: i64 = 1000;

fn query<T>(q: Result<Query<T>, axum::extract::rejection::QueryRejection>) -> ApiResult<T> {
    q.map(|Query(t)| t)
        .map_err(|e| ApiError::invalid(format!("bad query string: {}", e.body_text())))
}

/// `GET /monitors/{name}/metrics`: a metric's windowed values over time, with the baseline.
pub async fn series(
    State(st): State<AppState>,
    Path(name): Path<String>,
    q: Result<Query<SeriesQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<SeriesOut>> {
    let q = query(q)?;
    let m = Loaded::new(st.all.get_monitor(&name).await?)?;
    let metric =
        MetricRef::parse(&q.metric).map_err(|e| ApiError::invalid(format!("metric: {e}")))?;
    let window_text = q.window.unwrap_or_else(|| "5m".to_string());
    let window = duration("window", &window_text).map_err(ApiError::invalid)?;
    let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
    if !(60_000..=90 * 86_400_000).contains(&window_ms) {
        return Err(ApiError::invalid("window: must be between 1m and 90d"));
    }
    let origin = m
        .spec
        .origin_of(&metric, &q.metric, q.from)
        .map_err(|e| ApiError::invalid(format!("metric: {e}")))?;
    let end = q.end_ms.unwrap_or_else(now_millis);
    let start = q.start_ms.unwrap_or(end.saturating_sub(3_600_000));
    if start < 0 || end < start || end > LATEST_MS {
        return Err(ApiError::invalid(format!(
            "start_ms, end_ms: need 0 <= start_ms <= end_ms <= {LATEST_MS}"
        )));
    }
    let span = end - start;
    let step = q
        .step_ms
        .unwrap_or_else(|| window_ms.max(span / MAX_POINTS + 1));
    if step <= 0 || span / step >= MAX_POINTS {
        return Err(ApiError::invalid(format!(
            "step_ms: must be positive and give at most {MAX_POINTS} points"
        )));
    }
    let ends: Vec<i64> = (0..=span / step)
        .map(|i| end - (span / step - i) * step)
        .collect();
    let points = engine::series(st.all.as_ref(), &m, &metric, origin, window_ms, &ends).await?;
    let baseline = engine::baseline_value(
        st.all.as_ref(),
        &m,
        &metric.name,
        &q.metric,
        &metric,
        origin,
    )
    .await
    .ok()
    .flatten();
    Ok(Json(SeriesOut {
        monitor: name,
        metric: q.metric,
        window: window_text,
        from: origin,
        baseline,
        points,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsQuery {
    pub monitor: Option<String>,
    pub state: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct AlertList {
    pub alerts: Vec<AlertOut>,
}

const STATES: [&str; 4] = ["inactive", "pending", "firing", "resolved"];

fn check_state(s: &Option<String>) -> ApiResult<()> {
    match s {
        Some(s) if !STATES.contains(&s.as_str()) => Err(ApiError::invalid(format!(
            "state: '{s}' is not one of {}",
            STATES.join(", ")
        ))),
        _ => Ok(()),
    }
}

/// `GET /alerts`: every rule's current state.
pub async fn alerts(
    State(st): State<AppState>,
    q: Result<Query<AlertsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<AlertList>> {
    let q = query(q)?;
    check_state(&q.state)?;
    let alerts = st
        .all
        .alert_states(q.monitor.as_deref())
        .await?
        .into_iter()
        .filter(|a| q.state.as_ref().is_none_or(|s| *s == a.state))
        .map(AlertOut::from)
        .collect();
    Ok(Json(AlertList { alerts }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    pub monitor: Option<String>,
    /// The state changed to.
    pub state: Option<String>,
    pub since_ms: Option<i64>,
    /// Default 100, at most 10000.
    pub max_results: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct HistoryOut {
    pub changes: Vec<ChangeOut>,
}

/// `GET /alerts/history`: state changes, newest first.
pub async fn history(
    State(st): State<AppState>,
    q: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<HistoryOut>> {
    let q = query(q)?;
    check_state(&q.state)?;
    let max_results = q.max_results.unwrap_or(100);
    if !(1..=10_000).contains(&max_results) {
        return Err(ApiError::invalid("max_results: must be in [1, 10000]"));
    }
    let changes = st
        .all
        .alert_history(AlertQuery {
            monitor: q.monitor,
            state: q.state,
            since_ms: q.since_ms,
            max_results,
        })
        .await?
        .into_iter()
        .map(ChangeOut::from)
        .collect();
    Ok(Json(HistoryOut { changes }))
}
