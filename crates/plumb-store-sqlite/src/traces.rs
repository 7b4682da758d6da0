//! `TraceStore` for SQLite: one line per method onto the shared queries, writes on the writer
//! thread, reads on the readers.

use async_trait::async_trait;
use plumb_core::entities::Page;
use plumb_core::search::TraceClause;
use plumb_core::Result;
use plumb_store::queries::trace_metrics as m;
use plumb_store::queries::traces as q;
use plumb_store::traces::{
    AssessmentPatch, AssessmentRecord, CorrelationCounts, MetricPoint, SpanRecord, TraceInfo,
    TraceMetricsQuery, TraceQuery, TraceSelection, TraceStore,
};

use crate::conn::{self, SqliteConn};
use crate::SqliteStore;

#[async_trait]
impl TraceStore for SqliteStore {
    async fn start_trace(&self, info: TraceInfo) -> Result<TraceInfo> {
        self.write(move |c| conn::sync(q::start_trace(&mut SqliteConn(c), info)))
            .await
    }
    async fn get_trace_info(&self, id: &str) -> Result<TraceInfo> {
        let id = id.to_string();
        self.read(move |c| conn::sync(q::get_trace_info(&mut SqliteConn(c), &id)))
            .await
    }
    async fn batch_get_trace_infos(&self, ids: Vec<String>) -> Result<Vec<TraceInfo>> {
        self.read(move |c| conn::sync(q::batch_get(&mut SqliteConn(c), &ids)))
            .await
    }
    async fn search_traces(&self, query: TraceQuery) -> Result<Page<TraceInfo>> {
        self.read(move |c| conn::sync(q::search(&mut SqliteConn(c), &query)))
            .await
    }
    async fn set_trace_tag(&self, id: &str, key: &str, value: &str) -> Result<()> {
        let (id, k, v) = (id.to_string(), key.to_string(), value.to_string());
        self.write(move |c| conn::sync(q::set_tag(&mut SqliteConn(c), &id, &k, &v)))
            .await
    }
    async fn delete_trace_tag(&self, id: &str, key: &str) -> Result<()> {
        let (id, k) = (id.to_string(), key.to_string());
        self.write(move |c| conn::sync(q::delete_tag(&mut SqliteConn(c), &id, &k)))
            .await
    }
    async fn delete_traces(&self, exp: &str, which: TraceSelection) -> Result<i64> {
        let exp = exp.to_string();
        self.write(move |c| conn::sync(q::delete_traces(&mut SqliteConn(c), &exp, &which)))
            .await
    }
    async fn link_traces_to_run(&self, ids: Vec<String>, run_id: &str) -> Result<()> {
        let run = run_id.to_string();
        self.write(move |c| conn::sync(q::link_to_run(&mut SqliteConn(c), &ids, &run)))
            .await
    }
    async fn log_spans(&self, exp: &str, spans: Vec<SpanRecord>) -> Result<()> {
        let exp = exp.to_string();
        self.write(move |c| conn::sync(q::log_spans(&mut SqliteConn(c), &exp, &spans)))
            .await
    }
    async fn get_spans(&self, id: &str) -> Result<Vec<SpanRecord>> {
        let id = id.to_string();
        self.read(move |c| conn::sync(q::get_spans(&mut SqliteConn(c), &id)))
            .await
    }
    async fn create_assessment(&self, a: AssessmentRecord) -> Result<AssessmentRecord> {
        self.write(move |c| conn::sync(q::create_assessment(&mut SqliteConn(c), &a)))
            .await
    }
    async fn get_assessment(&self, t: &str, a: &str) -> Result<AssessmentRecord> {
        let (t, a) = (t.to_string(), a.to_string());
        self.read(move |c| conn::sync(q::get_assessment(&mut SqliteConn(c), &t, &a)))
            .await
    }
    async fn update_assessment(
        &self,
        t: &str,
        a: &str,
        p: AssessmentPatch,
        now_ms: i64,
    ) -> Result<AssessmentRecord> {
        let (t, a) = (t.to_string(), a.to_string());
        self.write(move |c| {
            conn::sync(q::update_assessment(&mut SqliteConn(c), &t, &a, &p, now_ms))
        })
        .await
    }
    async fn delete_assessment(&self, t: &str, a: &str) -> Result<()> {
        let (t, a) = (t.to_string(), a.to_string());
        self.write(move |c| conn::sync(q::delete_assessment(&mut SqliteConn(c), &t, &a)))
            .await
    }

    async fn query_trace_metrics(&self, query: TraceMetricsQuery) -> Result<Vec<MetricPoint>> {
        self.read(move |c| conn::sync(m::query(&mut SqliteConn(c), &query)))
            .await
    }
    async fn trace_correlation_counts(
        &self,
        exps: Vec<String>,
        base: Vec<TraceClause>,
        first: Vec<TraceClause>,
        second: Vec<TraceClause>,
    ) -> Result<CorrelationCounts> {
        self.read(move |c| {
            conn::sync(m::correlation_counts(
                &mut SqliteConn(c),
                &exps,
                &base,
                &first,
                &second,
            ))
        })
        .await
    }
}
