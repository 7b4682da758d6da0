//! `TraceStore` for PostgreSQL: one line per method onto the shared queries (writes in a
//! transaction, reads on a pooled connection).

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

use crate::conn::PgConn;
use crate::PgStore;
use sqlx::PgConnection;

#[async_trait]
impl TraceStore for PgStore {
    async fn start_trace(&self, info: TraceInfo) -> Result<TraceInfo> {
        in_tx!(self, |c| q::start_trace(&mut PgConn(c), info.clone()))
    }
    async fn get_trace_info(&self, id: &str) -> Result<TraceInfo> {
        read!(self, |c| q::get_trace_info(&mut PgConn(c), id))
    }
    async fn batch_get_trace_infos(&self, ids: Vec<String>) -> Result<Vec<TraceInfo>> {
        read!(self, |c| q::batch_get(&mut PgConn(c), &ids))
    }
    async fn search_traces(&self, query: TraceQuery) -> Result<Page<TraceInfo>> {
        read!(self, |c| q::search(&mut PgConn(c), &query))
    }
    async fn set_trace_tag(&self, id: &str, key: &str, value: &str) -> Result<()> {
        in_tx!(self, |c| q::set_tag(&mut PgConn(c), id, key, value))
    }
    async fn delete_trace_tag(&self, id: &str, key: &str) -> Result<()> {
        in_tx!(self, |c| q::delete_tag(&mut PgConn(c), id, key))
    }
    async fn delete_traces(&self, exp: &str, which: TraceSelection) -> Result<i64> {
        in_tx!(self, |c| q::delete_traces(&mut PgConn(c), exp, &which))
    }
    async fn link_traces_to_run(&self, ids: Vec<String>, run_id: &str) -> Result<()> {
        in_tx!(self, |c| q::link_to_run(&mut PgConn(c), &ids, run_id))
    }
    async fn log_spans(&self, exp: &str, spans: Vec<SpanRecord>) -> Result<()> {
        in_tx!(self, |c| q::log_spans(&mut PgConn(c), exp, &spans))
    }
    async fn get_spans(&self, id: &str) -> Result<Vec<SpanRecord>> {
        read!(self, |c| q::get_spans(&mut PgConn(c), id))
    }
    async fn create_assessment(&self, a: AssessmentRecord) -> Result<AssessmentRecord> {
        in_tx!(self, |c| q::create_assessment(&mut PgConn(c), &a))
    }
    async fn get_assessment(&self, t: &str, a: &str) -> Result<AssessmentRecord> {
        read!(self, |c| q::get_assessment(&mut PgConn(c), t, a))
    }
    async fn update_assessment(
        &self,
        t: &str,
        a: &str,
        p: AssessmentPatch,
        now_ms: i64,
    ) -> Result<AssessmentRecord> {
        in_tx!(self, |c| q::update_assessment(
            &mut PgConn(c),
            t,
            a,
            &p,
            now_ms
        ))
    }
    async fn delete_assessment(&self, t: &str, a: &str) -> Result<()> {
        in_tx!(self, |c| q::delete_assessment(&mut PgConn(c), t, a))
    }

    async fn query_trace_metrics(&self, query: TraceMetricsQuery) -> Result<Vec<MetricPoint>> {
        read!(self, |c| m::query(&mut PgConn(c), &query))
    }
    async fn trace_correlation_counts(
        &self,
        exps: Vec<String>,
        base: Vec<TraceClause>,
        first: Vec<TraceClause>,
        second: Vec<TraceClause>,
    ) -> Result<CorrelationCounts> {
        read!(self, |c| m::correlation_counts(
            &mut PgConn(c),
            &exps,
            &base,
            &first,
            &second
        ))
    }
}
