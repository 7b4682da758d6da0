//! The background work and the window queries, over any [`Store`]: folding closed buckets into
//! rollups, computing a rule's windowed value (rollups plus the events not folded yet, or the
//! metric points of matching runs), resolving baselines (re-read each time, so a moved alias
//! is followed), and evaluating every rule. One process at a time does the background work
//! ([`MonitorStore::lead`]); everything it knows is in the database.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use plumb_core::entities::{LifecycleStage, Metric, ViewType};
use plumb_core::search::{parse_filter, Domain};
use plumb_core::{Error, Result};
use plumb_store::monitoring::{bucket_of, MonitorRecord, BUCKET_MS};
use plumb_store::{RunQuery, Store};

use crate::metric::{aggregate, Agg, MetricRef, Origin};
use crate::rollup::Rollup;
use crate::rules::{observe, step};
use crate::spec::{Baseline, Compiled, MonitorSpec, Rule, Task};

/// Events read per page while folding or reading an unfolded bucket.
const PAGE: i64 = 20_000;
/// Events deleted per transaction when pruning past retention.
const PRUNE_CHUNK: i64 = 20_000;
/// Runs a runs-sourced monitor reads at most.
const MAX_RUNS: usize = 10_000;

/// How the background work runs.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Between two evaluations (`--monitor-interval`).
    pub interval: Duration,
    /// How long raw events are kept (`--monitor-retention`); rollups are kept for good.
    pub retention: Duration,
}

/// A stored monitor with its spec read.
pub struct Loaded {
    pub record: MonitorRecord,
    pub spec: MonitorSpec,
    pub rules: Vec<Compiled>,
}

impl Loaded {
    pub fn new(record: MonitorRecord) -> Result<Self> {
        let json: serde_json::Value = serde_json::from_str(&record.spec)
            .map_err(|e| Error::internal(format!("monitor '{}': stored spec: {e}", record.name)))?;
        let spec = MonitorSpec::from_json(json)
            .map_err(|e| Error::internal(format!("monitor '{}': stored spec: {e}", record.name)))?;
        let rules = spec.compile().map_err(Error::internal)?;
        Ok(Self {
            record,
            spec,
            rules,
        })
    }
}

async fn fold_events(
    store: &dyn Store,
    monitor_id: i64,
    task: Task,
    start_ms: i64,
    end_ms: i64,
) -> Result<Rollup> {
    let mut r = Rollup::default();
    let mut after = None;
    loop {
        let page = store
            .events_page(monitor_id, start_ms, end_ms, after.take(), PAGE)
            .await?;
        for e in &page {
            r.add(e, task);
        }
        match page.last() {
            Some(last) if page.len() as i64 == PAGE => {
                after = Some((last.ts_ms, last.request_id.clone()))
            }
            _ => return Ok(r),
        }
    }
}

/// Folds closed buckets whose rollup is missing or stale; returns how many were folded.
pub async fn fold(store: &dyn Store, now_ms: i64) -> Result<usize> {
    let mut specs: HashMap<i64, Task> = HashMap::new();
    for m in store.list_monitors().await? {
        if let Ok(l) = Loaded::new(m) {
            specs.insert(l.record.monitor_id, l.spec.task);
        }
    }
    let mut folded = 0;
    // A bounded amount per call, so evaluation is not starved by a backlog.
    for _ in 0..10 {
        let todo = store.buckets_to_fold(now_ms, 100).await?;
        if todo.is_empty() {
            break;
        }
        for b in &todo {
            let Some(task) = specs.get(&b.monitor_id) else {
                continue;
            };
            let r = fold_events(
                store,
                b.monitor_id,
                *task,
                b.bucket_ms,
                b.bucket_ms + BUCKET_MS,
            )
            .await?;
            let json =
                serde_json::to_string(&r).map_err(|e| Error::internal(format!("rollup: {e}")))?;
            store
                .put_rollup(b.monitor_id, b.bucket_ms, b.gen, &json)
                .await?;
            folded += 1;
        }
        if todo.len() < 100 {
            break;
        }
    }
    Ok(folded)
}

/// The rollup of each bucket overlapping `[start_ms, end_ms)` (a bucket's events before
/// `end_ms` only, when it is not folded).
pub async fn bucket_rollups(
    store: &dyn Store,
    monitor_id: i64,
    task: Task,
    start_ms: i64,
    end_ms: i64,
) -> Result<BTreeMap<i64, Rollup>> {
    let mut out = BTreeMap::new();
    for b in store
        .buckets(monitor_id, bucket_of(start_ms), end_ms)
        .await?
    {
        let stored = b
            .rollup
            .as_deref()
            .filter(|_| b.current())
            .and_then(|json| serde_json::from_str::<Rollup>(json).ok());
        let r = match stored {
            Some(r) => r,
            None => {
                let to = (b.bucket_ms + BUCKET_MS).min(end_ms);
                fold_events(store, monitor_id, task, b.bucket_ms, to).await?
            }
        };
        out.insert(b.bucket_ms, r);
    }
    Ok(out)
}

/// Merges the rollups of the buckets in `[start_ms, end_ms)` (start rounded down to its
/// minute: windows count whole minutes).
pub fn merged(rollups: &BTreeMap<i64, Rollup>, start_ms: i64, end_ms: i64) -> Rollup {
    let mut r = Rollup::default();
    if bucket_of(start_ms) >= end_ms {
        return r;
    }
    for (_, b) in rollups.range(bucket_of(start_ms)..end_ms) {
        r.merge(b);
    }
    r
}

/// Ids of the active runs a runs-sourced monitor watches.
pub async fn matching_runs(store: &dyn Store, spec: &MonitorSpec) -> Result<Vec<String>> {
    let Some(filter) = &spec.source.runs else {
        return Ok(Vec::new());
    };
    let mut experiment_ids = Vec::new();
    if spec.source.experiments.is_empty() {
        for e in plumb_store::all_experiments(store).await? {
            if e.lifecycle_stage == LifecycleStage::Active {
                experiment_ids.push(e.experiment_id);
            }
        }
    } else {
        for e in &spec.source.experiments {
            match store.get_experiment_by_name(e).await {
                Ok(x) => experiment_ids.push(x.experiment_id),
                Err(_) if e.chars().all(|c| c.is_ascii_digit()) => experiment_ids.push(e.clone()),
                Err(err) => return Err(err),
            }
        }
    }
    let clauses = parse_filter(Domain::Runs, filter)?;
    let mut ids = Vec::new();
    for chunk in experiment_ids.chunks(100) {
        let mut offset = 0;
        loop {
            let page = store
                .search_runs(RunQuery {
                    experiment_ids: chunk.to_vec(),
                    filter: clauses.clone(),
                    order_by: Vec::new(),
                    view_type: ViewType::ActiveOnly,
                    max_results: 1000,
                    offset,
                })
                .await?;
            let n = page.items.len();
            ids.extend(page.items.into_iter().map(|r| r.info.run_id));
            if page.next_page_token.is_none() || n == 0 || ids.len() >= MAX_RUNS {
                break;
            }
            offset += n as i64;
        }
    }
    ids.truncate(MAX_RUNS);
    Ok(ids)
}

/// Ids of the experiments a traces-sourced monitor watches (names resolved now; an id that
/// names no experiment is kept: it matches nothing).
pub async fn trace_experiments(store: &dyn Store, spec: &MonitorSpec) -> Result<Vec<String>> {
    let Some(src) = &spec.source.traces else {
        return Ok(Vec::new());
    };
    let mut ids = Vec::new();
    for e in &src.experiments {
        match store.get_experiment_by_name(e).await {
            Ok(x) => ids.push(x.experiment_id),
            Err(_) if e.chars().all(|c| c.is_ascii_digit()) => ids.push(e.clone()),
            Err(err) => return Err(err),
        }
    }
    Ok(ids)
}

/// A trace metric over the traces (or spans) with a request time in `[start_ms, end_ms]`, and
/// how many traces (spans) that is.
pub async fn trace_window(
    store: &dyn Store,
    spec: &MonitorSpec,
    experiments: &[String],
    metric: &MetricRef,
    start_ms: i64,
    end_ms: i64,
) -> Result<(Option<f64>, u64)> {
    use plumb_core::search::{parse_metric_filter, MetricFilter};
    use plumb_store::traces::{MetricAgg, MetricView, TraceMetricsQuery};
    let Some(src) = &spec.source.traces else {
        return Ok((None, 0));
    };
    let mut filters = src
        .filters
        .iter()
        .map(|f| parse_metric_filter(f))
        .collect::<Result<Vec<_>>>()?;
    let (view, count_metric) = match &src.span {
        Some(name) => {
            filters.push(MetricFilter::SpanName(name.clone()));
            (MetricView::Spans, "span_count")
        }
        None => (MetricView::Traces, "trace_count"),
    };
    let one = |metric: &str, agg: MetricAgg, extra: Option<MetricFilter>| {
        let mut filters = filters.clone();
        filters.extend(extra);
        TraceMetricsQuery {
            experiment_ids: experiments.to_vec(),
            view,
            metric: metric.to_string(),
            aggregations: vec![agg],
            dimensions: Vec::new(),
            filters,
            interval_s: None,
            start_ms: Some(start_ms),
            end_ms: Some(end_ms),
            max_results: 1,
        }
    };
    let read = |q: TraceMetricsQuery| async move {
        let label = q.aggregations[0].label();
        Ok::<_, Error>(
            store
                .query_trace_metrics(q)
                .await?
                .first()
                .and_then(|p| p.values.get(&label).copied()),
        )
    };
    if experiments.is_empty() {
        return Ok((None, 0));
    }
    let count = read(one(count_metric, MetricAgg::Count, None))
        .await?
        .unwrap_or(0.0);
    let samples = count as u64;
    let errors = || {
        let status = "ERROR".to_string();
        Some(match view {
            MetricView::Spans => MetricFilter::SpanStatus(status),
            _ => MetricFilter::TraceStatus(status),
        })
    };
    let value = match metric.name.as_str() {
        "count" => Some(count),
        "errors" => Some(
            read(one(count_metric, MetricAgg::Count, errors()))
                .await?
                .unwrap_or(0.0),
        ),
        "error_rate" if count > 0.0 => Some(
            read(one(count_metric, MetricAgg::Count, errors()))
                .await?
                .unwrap_or(0.0)
                / count,
        ),
        "error_rate" => None,
        name => {
            let (stored, default) = match name {
                "latency_ms" => ("latency", MetricAgg::Avg),
                _ => (name, MetricAgg::Sum),
            };
            let agg = match metric.agg {
                None => default,
                Some(Agg::Mean) => MetricAgg::Avg,
                Some(Agg::Min) => MetricAgg::Min,
                Some(Agg::Max) => MetricAgg::Max,
                Some(Agg::Sum) => MetricAgg::Sum,
                Some(Agg::Quantile(q)) => MetricAgg::Percentile(q * 100.0),
                Some(Agg::Count) => return Ok((Some(count), samples)),
                Some(Agg::Last) => {
                    return Err(Error::invalid(format!(
                        "'{name}:last' is not kept for traces"
                    )))
                }
            };
            if stored == "latency" && agg == MetricAgg::Sum {
                return Err(Error::invalid("latency_ms:sum is not offered for traces"));
            }
            read(one(stored, agg, None)).await?
        }
    };
    Ok((value, samples))
}

/// One point of a windowed series: the value of the window ending at `timestamp_ms`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Point {
    pub timestamp_ms: i64,
    pub value: Option<f64>,
    pub samples: u64,
}

/// A metric's value over the windows ending at each `t` in `ends`, reading the data once:
/// rollups (or events) of the buckets, or the points of matching runs. A window counts the
/// whole minutes it touches (a minute's rollup is not split), up to the last event of the
/// range; for the evaluator's window, which ends now, that is every event up to now.
pub async fn series(
    store: &dyn Store,
    m: &Loaded,
    metric: &MetricRef,
    origin: Origin,
    window_ms: i64,
    ends: &[i64],
) -> Result<Vec<Point>> {
    let (Some(first), Some(last)) = (ends.first(), ends.last()) else {
        return Ok(Vec::new());
    };
    let (start, end) = (first - window_ms, last + 1);
    let positive = m.spec.positive_class.as_deref();
    match origin {
        Origin::Events => {
            let rollups =
                bucket_rollups(store, m.record.monitor_id, m.spec.task, start, end).await?;
            Ok(ends
                .iter()
                .map(|t| {
                    let (value, samples) =
                        merged(&rollups, t - window_ms, t + 1).value(metric, positive);
                    Point {
                        timestamp_ms: *t,
                        value,
                        samples,
                    }
                })
                .collect())
        }
        Origin::Traces => {
            let mut out = Vec::with_capacity(ends.len());
            let experiments = trace_experiments(store, &m.spec).await?;
            for t in ends {
                let (value, samples) =
                    trace_window(store, &m.spec, &experiments, metric, t - window_ms, *t).await?;
                out.push(Point {
                    timestamp_ms: *t,
                    value,
                    samples,
                });
            }
            Ok(out)
        }
        Origin::Runs => {
            let runs = matching_runs(store, &m.spec).await?;
            let points = if runs.is_empty() {
                Vec::new()
            } else {
                store
                    .run_points(runs, &metric.name, bucket_of(start), end)
                    .await?
            };
            Ok(ends
                .iter()
                .map(|t| {
                    let from = bucket_of(t - window_ms);
                    let values: Vec<f64> = points
                        .iter()
                        .filter(|p| p.0 >= from && p.0 <= *t)
                        .map(|p| p.1)
                        .collect();
                    Point {
                        timestamp_ms: *t,
                        value: aggregate(&values, metric.agg),
                        samples: values.len() as u64,
                    }
                })
                .collect())
        }
    }
}

/// A metric's value over `[start_ms, end_ms)` and the samples behind it.
pub async fn window_value(
    store: &dyn Store,
    m: &Loaded,
    metric: &MetricRef,
    origin: Origin,
    start_ms: i64,
    end_ms: i64,
) -> Result<(Option<f64>, u64)> {
    let window = end_ms - 1 - start_ms;
    let p = series(store, m, metric, origin, window, &[end_ms - 1]).await?;
    Ok(p.first().map_or((None, 0), |p| (p.value, p.samples)))
}

fn latest(metrics: impl IntoIterator<Item = Metric>, key: &str) -> Option<f64> {
    metrics
        .into_iter()
        .filter(|m| m.key == key)
        .max_by(|a, b| (a.step, a.timestamp).cmp(&(b.step, b.timestamp)))
        .map(|m| m.value)
}

/// The metrics of what a `runs:/` or `models:/` URI names: the run, a logged model
/// (`models:/m-<id>`), or the run (else the logged model) behind a version. Aliases are
/// resolved now.
pub async fn metrics_of(store: &dyn Store, uri: &str) -> Result<Vec<Metric>> {
    let version = if let Some(rest) = uri.strip_prefix("runs:/") {
        let id = rest.split('/').next().unwrap_or_default();
        return Ok(store.get_run(id).await?.data.metrics);
    } else if let Some(rest) = uri.strip_prefix("models:/") {
        match rest.split_once('@') {
            Some((name, alias)) => store.get_version_by_alias(name, alias).await?,
            None if !rest.contains('/') => {
                // A logged model: its own metrics.
                return Ok(store
                    .get_logged_model(rest, false)
                    .await?
                    .metrics
                    .into_iter()
                    .map(|m| m.metric)
                    .collect());
            }
            None => {
                let (name, v) = rest
                    .rsplit_once('/')
                    .ok_or_else(|| Error::invalid(format!("'{uri}' names no version")))?;
                let v = v
                    .parse()
                    .map_err(|_| Error::invalid(format!("'{uri}' names no version")))?;
                store.get_model_version(name, v).await?
            }
        }
    } else {
        return Err(Error::invalid(format!(
            "'{uri}' is not a runs:/ or models:/ URI"
        )));
    };
    if !version.run_id.is_empty() {
        return Ok(store.get_run(&version.run_id).await?.data.metrics);
    }
    match version.model_id.as_deref() {
        Some(id) => Ok(store
            .get_logged_model(id, false)
            .await?
            .metrics
            .into_iter()
            .map(|m| m.metric)
            .collect()),
        None => Ok(Vec::new()),
    }
}

/// The baseline value of a metric (`Ok(None)`: the baseline lacks it). `key` names it in a
/// run's metrics or the `values` map (`full` is tried first there: `latency_ms:p95`).
pub async fn baseline_value(
    store: &dyn Store,
    m: &Loaded,
    key: &str,
    full: &str,
    metric: &MetricRef,
    origin: Origin,
) -> Result<Option<f64>> {
    match m.spec.baseline() {
        None => Ok(None),
        Some(Baseline::Uri(uri)) => Ok(latest(metrics_of(store, &uri).await?, key)),
        Some(Baseline::Values(v)) => Ok(v.get(full).or_else(|| v.get(key)).copied()),
        Some(Baseline::Window { start_ms, end_ms }) => {
            Ok(window_value(store, m, metric, origin, start_ms, end_ms)
                .await?
                .0)
        }
        Some(Baseline::First(d)) => {
            let start = m.record.created_ms;
            let end = start.saturating_add(d.as_millis() as i64);
            Ok(window_value(store, m, metric, origin, start, end).await?.0)
        }
    }
}

/// A rule's baseline value.
pub async fn rule_baseline(
    store: &dyn Store,
    m: &Loaded,
    rule: &Rule,
    compiled: &Compiled,
) -> Result<Option<f64>> {
    let key = rule
        .baseline_metric
        .clone()
        .unwrap_or_else(|| compiled.metric.name.clone());
    let full = rule.baseline_metric.as_deref().unwrap_or(&rule.metric);
    baseline_value(store, m, &key, full, &compiled.metric, compiled.origin).await
}

/// What a monitor's `model:` names now, for alert messages: `iris v3 (models:/iris@champion)`
/// follows the alias as it moves.
async fn watched_model(store: &dyn Store, uri: &str) -> String {
    let resolved = if let Some(rest) = uri.strip_prefix("models:/") {
        match rest.split_once('@') {
            Some((name, alias)) => store
                .get_version_by_alias(name, alias)
                .await
                .map(|v| format!("{name} v{} ({uri})", v.version)),
            None => Ok(uri.to_string()),
        }
    } else {
        Ok(uri.to_string())
    };
    resolved.unwrap_or_else(|e| format!("{uri} (unresolved: {})", e.message))
}

/// Evaluates every rule of every monitor at `now_ms` and stores the alert states (and their
/// changes). A rule whose numbers cannot be read gets no verdict and says why.
pub async fn evaluate(store: &dyn Store, now_ms: i64) -> Result<usize> {
    let states: HashMap<(String, String), _> = store
        .alert_states(None)
        .await?
        .into_iter()
        .map(|s| ((s.monitor.clone(), s.rule.clone()), s))
        .collect();
    let mut changes = 0;
    for record in store.list_monitors().await? {
        let name = record.name.clone();
        let m = match Loaded::new(record) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(monitor = %name, error = %e.message, "monitor skipped");
                continue;
            }
        };
        let watched = match m.spec.model.as_deref() {
            Some(uri) => Some(watched_model(store, uri).await),
            None => None,
        };
        // The rules over events share one read of the buckets their widest window covers (the
        // current minute's events are read once per monitor, not once per rule).
        let widest = m
            .rules
            .iter()
            .filter(|c| c.origin == Origin::Events)
            .map(|c| c.window.as_millis() as i64)
            .max();
        let shared = match widest {
            Some(w) => Some(
                bucket_rollups(
                    store,
                    m.record.monitor_id,
                    m.spec.task,
                    now_ms - w,
                    now_ms + 1,
                )
                .await,
            ),
            None => None,
        };
        for (rule, compiled) in m.spec.rules.iter().zip(&m.rules) {
            let window = compiled.window.as_millis() as i64;
            let read = async {
                let (value, samples) = match (&shared, compiled.origin) {
                    (Some(rollups), Origin::Events) => {
                        let rollups = rollups.as_ref().map_err(Clone::clone)?;
                        merged(rollups, now_ms - window, now_ms + 1)
                            .value(&compiled.metric, m.spec.positive_class.as_deref())
                    }
                    _ => {
                        let point = series(
                            store,
                            &m,
                            &compiled.metric,
                            compiled.origin,
                            window,
                            &[now_ms],
                        )
                        .await?;
                        point.first().map_or((None, 0), |p| (p.value, p.samples))
                    }
                };
                let baseline = rule_baseline(store, &m, rule, compiled).await?;
                Ok::<_, Error>((value, samples, baseline))
            };
            let mut obs = match read.await {
                Ok((value, samples, baseline)) => observe(rule, compiled, value, samples, baseline),
                Err(e) if e.code.http_status() < 500 => crate::rules::Observation {
                    value: None,
                    baseline: None,
                    samples: 0,
                    breached: false,
                    message: format!("cannot evaluate: {}", e.message),
                },
                Err(e) => return Err(e),
            };
            if let Some(w) = &watched {
                obs.message = format!("{w}: {}", obs.message);
            }
            let prev = states.get(&(name.clone(), rule.name.clone()));
            let (state, change) = step(&name, rule, compiled, prev, &obs, now_ms);
            changes += usize::from(change.is_some());
            store.put_alert_state(state, change).await?;
        }
    }
    Ok(changes)
}

/// One round of background work, when this process leads: fold, evaluate, and now and then
/// drop raw events past retention. Returns whether it led.
pub async fn tick(store: &dyn Store, now_ms: i64, settings: Settings, prune: bool) -> Result<bool> {
    if !store.lead().await? {
        return Ok(false);
    }
    fold(store, now_ms).await?;
    evaluate(store, now_ms).await?;
    if prune {
        let before = now_ms - settings.retention.as_millis() as i64;
        // In short transactions, so that writes go on between them.
        while store.prune_events(before, PRUNE_CHUNK).await? >= PRUNE_CHUNK as u64 {}
    }
    Ok(true)
}

/// Runs [`tick`] every `settings.interval` until the task is dropped or aborted.
pub fn spawn(store: Arc<dyn Store>, settings: Settings) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut timer = tokio::time::interval(settings.interval);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut round: u64 = 0;
        loop {
            timer.tick().await;
            let prune = round % 60 == 0;
            round += 1;
            if let Err(e) = tick(store.as_ref(), plumb_core::now_millis(), settings, prune).await {
                tracing::warn!(error = %e.message, "monitoring round failed; retrying next round");
            }
        }
    })
}
