//! The storage half of MLflow 3's traces: a trace's info (id, experiment, request time,
//! duration, state, previews), its metadata and tags, the runs it is linked to, and spans that
//! arrived over OTLP. The official client uploads its own traces' spans as the trace's
//! `traces.json` artifact (at the `mlflow.artifactLocation` tag this store sets), as with
//! MLflow servers before 3.4.

use std::collections::BTreeMap;

use async_trait::async_trait;
use plumb_core::entities::Page;
use plumb_core::search::{TraceClause, TraceOrder};
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
}
