//! The storage half of MLflow 3's traces: a trace's info (id, experiment, request time,
//! duration, state, previews), its metadata and tags, the runs it is linked to, and spans that
//! arrived over OTLP. The official client uploads its own traces' spans as the trace's
//! `traces.json` artifact (at the `mlflow.artifactLocation` tag this store sets), as with
//! MLflow servers before 3.4.

use std::collections::BTreeMap;

use async_trait::async_trait;
use plumb_core::entities::Page;
use plumb_core::search::{MetricFilter, TraceClause, TraceOrder};
use plumb_core::Result;

/// A trace's info as MLflow's `TraceInfoV3` carries it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TraceInfo {
    /// `tr-<32 hex>` from the client.
    pub trace_id: String,
    pub client_request_id: Option<String>,
    pub experiment_id: String,
    pub request_time_ms: i64,
    pub execution_ms: Option<i64>,
    /// `OK`, `ERROR`, `IN_PROGRESS` or `STATE_UNSPECIFIED`.
    pub state: String,
    pub request_preview: Option<String>,
    pub response_preview: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    /// Feedback and expectations on the trace, oldest first.
    pub assessments: Vec<AssessmentRecord>,
}

/// A feedback or expectation on a trace. `body` is the rest of MLflow's `Assessment` as a JSON
/// object (source, span id, feedback or expectation, rationale, error, metadata).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AssessmentRecord {
    /// `a-<32 hex>`, made by the server.
    pub assessment_id: String,
    pub trace_id: String,
    pub name: String,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// False once another assessment overrides it.
    pub valid: bool,
    pub overrides: Option<String>,
    pub body: serde_json::Map<String, serde_json::Value>,
}

/// An update of an assessment: the fields of `body` given replace the stored ones.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AssessmentPatch {
    pub name: Option<String>,
    pub body: serde_json::Map<String, serde_json::Value>,
    pub valid: Option<bool>,
}

/// One span as stored: its ids (hex), what searches and ordering read, and `content`, the
/// span as MLflow's span dictionary (JSON text: base64 ids, JSON-encoded attribute values).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SpanRecord {
    /// The MLflow trace id (`tr-<32 hex>`).
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub name: String,
    pub span_type: Option<String>,
    /// `OK`, `ERROR` or `UNSET`.
    pub status: String,
    pub start_ns: i64,
    pub end_ns: Option<i64>,
    pub content: String,
    /// The root span's `mlflow.spanInputs` / `mlflow.spanOutputs` (trace previews).
    pub inputs: Option<String>,
    pub outputs: Option<String>,
    /// The span's own token counts (input, output, total), when it reports them.
    pub tokens: Option<(i64, i64, i64)>,
}

/// A trace search: experiments, a parsed filter, an order, a page.
#[derive(Debug, Clone, Default)]
pub struct TraceQuery {
    pub experiment_ids: Vec<String>,
    pub filter: Vec<TraceClause>,
    pub order_by: Vec<TraceOrder>,
    pub max_results: i64,
    pub offset: i64,
}

/// Which traces [`TraceStore::delete_traces`] removes from an experiment.
#[derive(Debug, Clone, PartialEq)]
pub enum TraceSelection {
    /// These ids.
    Ids(Vec<String>),
    /// The oldest, up to `max_traces`, with a request time at or before `max_timestamp_ms`.
    Before {
        max_timestamp_ms: i64,
        max_traces: Option<i64>,
    },
}

/// What a trace-metrics query counts: traces, spans or assessments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricView {
    Traces,
    Spans,
    Assessments,
}

/// How a trace-metrics query folds a group's values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MetricAgg {
    Count,
    Sum,
    Avg,
    Min,
    Max,
    /// A percentile in [0, 100], interpolated linearly between ranks (PostgreSQL's
    /// `percentile_cont`).
    Percentile(f64),
}

impl MetricAgg {
    /// The key of its value in an answer, as MLflow names it (`AVG`, `P95.0`).
    pub fn label(&self) -> String {
        match self {
            Self::Count => "COUNT".into(),
            Self::Sum => "SUM".into(),
            Self::Avg => "AVG".into(),
            Self::Min => "MIN".into(),
            Self::Max => "MAX".into(),
            Self::Percentile(p) => format!("P{p:?}"),
        }
    }
}

/// A trace-metrics query: MLflow's `QueryTraceMetrics`, checked by
/// [`TraceMetricsQuery::check`].
#[derive(Debug, Clone, PartialEq)]
pub struct TraceMetricsQuery {
    pub experiment_ids: Vec<String>,
    pub view: MetricView,
    pub metric: String,
    pub aggregations: Vec<MetricAgg>,
    pub dimensions: Vec<String>,
    pub filters: Vec<MetricFilter>,
    /// Group by time buckets of this many seconds (of the trace's request time).
    pub interval_s: Option<i64>,
    /// Request times in `[start_ms, end_ms]` (both inclusive), as MLflow bounds them.
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub max_results: i64,
}

/// One group of a trace-metrics answer.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint {
    /// The start of its time bucket, when the query has an interval.
    pub bucket_ms: Option<i64>,
    /// Its dimensions' values, by dimension name.
    pub dimensions: BTreeMap<String, String>,
    /// Each aggregation's value by its label; an aggregation without a value is left out.
    pub values: BTreeMap<String, f64>,
}

/// The metrics, aggregations and dimensions each view offers (MLflow's table). Token metrics
/// come from the trace's `mlflow.trace.tokenUsage`; span costs and model dimensions are not
/// served.
pub const METRIC_TABLE: &[(MetricView, &str, &[&str], &[&str])] = {
    const ALL_BUT_COUNT: &[&str] = &["SUM", "AVG", "MIN", "MAX", "PERCENTILE"];
    const SPREAD: &[&str] = &["AVG", "MIN", "MAX", "PERCENTILE"];
    &[
        (
            MetricView::Traces,
            "trace_count",
            &["COUNT"],
            &["trace_name", "trace_status"],
        ),
        (MetricView::Traces, "session_count", &["COUNT"], &[]),
        (MetricView::Traces, "latency", SPREAD, &["trace_name"]),
        (
            MetricView::Traces,
            "input_tokens",
            ALL_BUT_COUNT,
            &["trace_name"],
        ),
        (
            MetricView::Traces,
            "output_tokens",
            ALL_BUT_COUNT,
            &["trace_name"],
        ),
        (
            MetricView::Traces,
            "total_tokens",
            ALL_BUT_COUNT,
            &["trace_name"],
        ),
        (
            MetricView::Traces,
            "cache_read_input_tokens",
            ALL_BUT_COUNT,
            &["trace_name"],
        ),
        (
            MetricView::Traces,
            "cache_creation_input_tokens",
            ALL_BUT_COUNT,
            &["trace_name"],
        ),
        (
            MetricView::Spans,
            "span_count",
            &["COUNT"],
            &["span_name", "span_type", "span_status"],
        ),
        (
            MetricView::Spans,
            "latency",
            SPREAD,
            &["span_name", "span_status"],
        ),
        (
            MetricView::Assessments,
            "assessment_count",
            &["COUNT"],
            &["assessment_name", "assessment_value"],
        ),
        (
            MetricView::Assessments,
            "assessment_value",
            SPREAD,
            &["assessment_name"],
        ),
    ]
};

/// A list as Python prints one (`['a', 'b']`), as MLflow's messages show them.
fn py_list<S: AsRef<str>>(items: &[S]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("'{}'", s.as_ref())).collect();
    format!("[{}]", quoted.join(", "))
}

impl TraceMetricsQuery {
    /// MLflow's checks, in its order and words.
    pub fn check(&self) -> Result<()> {
        use plumb_core::Error;
        let rows: Vec<_> = METRIC_TABLE.iter().filter(|r| r.0 == self.view).collect();
        let Some(row) = rows.iter().find(|r| r.1 == self.metric) else {
            let names: Vec<&str> = rows.iter().map(|r| r.1).collect();
            return Err(Error::invalid(format!(
                "metric_name must be one of {}, got '{}'",
                py_list(&names),
                self.metric
            )));
        };
        let mut bad: Vec<String> = self
            .aggregations
            .iter()
            .map(|a| match a {
                MetricAgg::Percentile(_) => "PERCENTILE".to_string(),
                other => other.label(),
            })
            .filter(|l| !row.2.contains(&l.as_str()))
            .collect();
        if !bad.is_empty() {
            bad.sort();
            bad.dedup();
            let mut ok: Vec<&str> = row.2.to_vec();
            ok.sort();
            return Err(Error::invalid(format!(
                "Found invalid aggregation_type(s): {}. Supported aggregation types: {}",
                py_list(&bad),
                py_list(&ok)
            )));
        }
        let mut bad: Vec<&String> = self
            .dimensions
            .iter()
            .filter(|d| !row.3.contains(&d.as_str()))
            .collect();
        if !bad.is_empty() {
            bad.sort();
            bad.dedup();
            let mut ok: Vec<&str> = row.3.to_vec();
            ok.sort();
            return Err(Error::invalid(format!(
                "Found invalid dimension(s): {}. Supported dimensions: {}",
                py_list(&bad),
                py_list(&ok)
            )));
        }
        if self.aggregations.is_empty() {
            return Err(Error::invalid("aggregations: at least one is needed"));
        }
        if self.interval_s.is_some() && (self.start_ms.is_none() || self.end_ms.is_none()) {
            return Err(Error::invalid(
                "start_time_ms and end_time_ms are required if time_interval_seconds is set",
            ));
        }
        if self.interval_s.is_some_and(|s| s <= 0) {
            return Err(Error::invalid("time_interval_seconds must be positive"));
        }
        for f in &self.filters {
            let allowed = match self.view {
                MetricView::Traces => f.view() == "trace",
                MetricView::Spans => f.view() != "assessment",
                MetricView::Assessments => f.view() != "span",
            };
            if !allowed {
                let (what, view) = match f.view() {
                    "span" => ("span", "SPANS"),
                    _ => ("assessment", "ASSESSMENTS"),
                };
                return Err(Error::invalid(format!(
                    "Filtering by {what} is only supported for {view} view type, got {}",
                    match self.view {
                        MetricView::Traces => "TRACES",
                        MetricView::Spans => "SPANS",
                        MetricView::Assessments => "ASSESSMENTS",
                    }
                )));
            }
        }
        Ok(())
    }
}

/// How often two trace filters hold together (MLflow's filter correlation): counts over the
/// traces of the experiments (meeting `base` when given).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CorrelationCounts {
    pub total: i64,
    pub first: i64,
    pub second: i64,
    pub joint: i64,
}

/// The tag holding where a trace's artifacts (its spans) live.
pub const ARTIFACT_LOCATION_TAG: &str = "mlflow.artifactLocation";
/// The tag holding a trace's name (kept as a column for search and order).
pub const TRACE_NAME_TAG: &str = "mlflow.traceName";
/// The tag saying where a trace's spans are (`TRACKING_STORE`: in the database).
pub const SPANS_LOCATION_TAG: &str = "mlflow.trace.spansLocation";
/// The metadata key naming the run a trace was made in.
pub const SOURCE_RUN_METADATA: &str = "mlflow.sourceRun";

#[async_trait]
pub trait TraceStore: Send + Sync + 'static {
    /// Stores a trace's info in an active experiment and sets its artifact location tag; a
    /// trace already stored with this id is replaced, its tags and metadata merged.
    async fn start_trace(&self, info: TraceInfo) -> Result<TraceInfo>;
    async fn get_trace_info(&self, trace_id: &str) -> Result<TraceInfo>;
    /// The infos of those ids that exist, in the order asked.
    async fn batch_get_trace_infos(&self, trace_ids: Vec<String>) -> Result<Vec<TraceInfo>>;
    async fn search_traces(&self, query: TraceQuery) -> Result<Page<TraceInfo>>;
    async fn set_trace_tag(&self, trace_id: &str, key: &str, value: &str) -> Result<()>;
    async fn delete_trace_tag(&self, trace_id: &str, key: &str) -> Result<()>;
    /// Returns how many traces were deleted.
    async fn delete_traces(&self, experiment_id: &str, which: TraceSelection) -> Result<i64>;
    async fn link_traces_to_run(&self, trace_ids: Vec<String>, run_id: &str) -> Result<()>;
    /// Stores spans (OTLP ingest) in an active experiment: each trace is created when it is
    /// new (tagged as keeping its spans in the database) and completed when its root span
    /// arrives; a span sent again replaces the stored one.
    async fn log_spans(&self, experiment_id: &str, spans: Vec<SpanRecord>) -> Result<()>;
    /// A trace's spans in the database, by start time.
    async fn get_spans(&self, trace_id: &str) -> Result<Vec<SpanRecord>>;

    /// Stores an assessment of an existing trace; one it `overrides` becomes invalid.
    async fn create_assessment(&self, a: AssessmentRecord) -> Result<AssessmentRecord>;
    async fn get_assessment(&self, trace_id: &str, assessment_id: &str)
        -> Result<AssessmentRecord>;
    async fn update_assessment(
        &self,
        trace_id: &str,
        assessment_id: &str,
        patch: AssessmentPatch,
        now_ms: i64,
    ) -> Result<AssessmentRecord>;
    /// Removes an assessment; the one it overrode becomes valid again.
    async fn delete_assessment(&self, trace_id: &str, assessment_id: &str) -> Result<()>;

    /// MLflow's trace metrics: the groups of a view's values, in dimension order.
    async fn query_trace_metrics(&self, query: TraceMetricsQuery) -> Result<Vec<MetricPoint>>;
    /// How many traces meet each filter and both (the base filter bounding them all).
    async fn trace_correlation_counts(
        &self,
        experiment_ids: Vec<String>,
        base: Vec<TraceClause>,
        first: Vec<TraceClause>,
        second: Vec<TraceClause>,
    ) -> Result<CorrelationCounts>;
}
