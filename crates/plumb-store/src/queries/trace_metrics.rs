//! MLflow's trace metrics (counts, latencies, tokens and assessment values of traces, spans
//! or assessments, grouped by dimensions and time buckets) and the filter-correlation counts,
//! written once for both databases. Counts, sums, means and extremes are folded by the
//! database (`GROUP BY`); a query with a percentile reads the group's values in order and
//! folds them here, as SQLite has no `percentile_cont`.

use std::collections::BTreeMap;

use plumb_core::search::{MetricFilter, TraceClause};
use plumb_core::Error;

use crate::db::{Bind, Conn, DbResult, Row};
use crate::queries::traces::{experiment_numbers, filter_sql};
use crate::traces::{
    CorrelationCounts, MetricAgg, MetricPoint, MetricView, TraceMetricsQuery, SOURCE_RUN_METADATA,
};

/// Values a percentile query reads at most; past it the query is refused (narrow the time
/// range or the filters) rather than holding them all in memory.
pub const MAX_PERCENTILE_VALUES: usize = 2_000_000;

/// The SQL of a metric's value in its view (`None`: the row is counted, not measured).
fn value_sql(view: MetricView, metric: &str) -> DbResult<&'static str> {
    Ok(match (view, metric) {
        (MetricView::Traces, "trace_count") => "t.trace_id",
        (MetricView::Traces, "session_count") => {
            "(SELECT m.value FROM plumb_trace_metadata m WHERE m.trace_id = t.trace_id \
             AND m.key = 'mlflow.trace.session')"
        }
        (MetricView::Traces, "latency") => "t.execution_ms",
        (MetricView::Traces, "input_tokens") => "t.input_tokens",
        (MetricView::Traces, "output_tokens") => "t.output_tokens",
        (MetricView::Traces, "total_tokens") => "t.total_tokens",
        (MetricView::Traces, "cache_read_input_tokens") => "t.cache_read_input_tokens",
        (MetricView::Traces, "cache_creation_input_tokens") => "t.cache_creation_input_tokens",
        (MetricView::Spans, "span_count") => "s.span_id",
        (MetricView::Spans, "latency") => "((s.end_ns - s.start_ns) / 1000000)",
        (MetricView::Assessments, "assessment_count") => "a.assessment_id",
        (MetricView::Assessments, "assessment_value") => "a.num_value",
        (_, m) => return Err(Error::invalid(format!("Unsupported metric name: {m}")).into()),
    })
}

fn dimension_sql(d: &str) -> DbResult<&'static str> {
    Ok(match d {
        "trace_name" => "t.name",
        "trace_status" => "t.state",
        "span_name" => "s.name",
        "span_type" => "s.span_type",
        "span_status" => "s.status",
        "assessment_name" => "a.name",
        "assessment_value" => "a.value",
        other => return Err(Error::invalid(format!("Unsupported dimension `{other}`")).into()),
    })
}

fn kv_exists(table: &str, key: &str, value: &str, binds: &mut Vec<Bind>) -> String {
    binds.push(key.into());
    binds.push(value.into());
    format!(
        "EXISTS (SELECT 1 FROM {table} kv WHERE kv.trace_id = t.trace_id \
         AND kv.key = ? AND kv.value = ?)"
    )
}

fn metric_filter_sql(f: &MetricFilter, binds: &mut Vec<Bind>) -> String {
    let eq = |column: &str, v: &str, binds: &mut Vec<Bind>| {
        binds.push(v.into());
        format!("{column} = ?")
    };
    match f {
        MetricFilter::TraceStatus(v) => eq("t.state", v, binds),
        MetricFilter::TraceTag(k, v) if k == crate::traces::TRACE_NAME_TAG => {
            eq("t.name", v, binds)
        }
        MetricFilter::TraceTag(k, v) => kv_exists("plumb_trace_tags", k, v, binds),
        MetricFilter::TraceMetadata(k, v) if k == SOURCE_RUN_METADATA => {
            // The run it was made in, or one it was linked to.
            let meta = kv_exists("plumb_trace_metadata", k, v, binds);
            binds.push(v.into());
            format!(
                "({meta} OR EXISTS (SELECT 1 FROM plumb_trace_runs r \
                 WHERE r.trace_id = t.trace_id AND r.run_id = ?))"
            )
        }
        MetricFilter::TraceMetadata(k, v) => kv_exists("plumb_trace_metadata", k, v, binds),
        MetricFilter::SpanName(v) => eq("s.name", v, binds),
        MetricFilter::SpanStatus(v) => eq("s.status", v, binds),
        MetricFilter::SpanType(v) => eq("s.span_type", v, binds),
        MetricFilter::AssessmentName(v) => eq("a.name", v, binds),
        MetricFilter::AssessmentType(v) => eq("a.kind", v, binds),
    }
}

/// The value at `p` percent of sorted values, interpolated between ranks.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0).clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    let w = rank - rank.floor();
    Some(sorted[lo] * (1.0 - w) + sorted[hi] * w)
}

fn fold(values: &mut [f64], aggs: &[MetricAgg]) -> BTreeMap<String, f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let mut out = BTreeMap::new();
    for a in aggs {
        let v = match a {
            MetricAgg::Count => Some(n as f64),
            MetricAgg::Sum if n > 0 => Some(values.iter().sum()),
            MetricAgg::Avg if n > 0 => Some(values.iter().sum::<f64>() / n as f64),
            MetricAgg::Min => values.first().copied(),
            MetricAgg::Max => values.last().copied(),
            MetricAgg::Percentile(p) => percentile(values, *p),
            _ => None,
        };
        if let Some(v) = v {
            out.insert(a.label(), v);
        }
    }
    out
}

pub async fn query<C: Conn>(c: &mut C, q: &TraceMetricsQuery) -> DbResult<Vec<MetricPoint>> {
    q.check()?;
    let exps = experiment_numbers(&q.experiment_ids)?;
    let value = value_sql(q.view, &q.metric)?;
    let distinct = q.metric == "session_count";
    let mut binds: Vec<Bind> = Vec::new();
    // Group columns: the time bucket, then the dimensions, in the order asked.
    let mut groups: Vec<String> = Vec::new();
    if let Some(s) = q.interval_s {
        let ms = s.saturating_mul(1000);
        binds.push(ms.into());
        binds.push(ms.into());
        groups.push("((t.request_time_ms / ?) * ?)".into());
    }
    for d in &q.dimensions {
        groups.push(dimension_sql(d)?.to_string());
    }
    let from = match q.view {
        MetricView::Traces => "plumb_traces t",
        MetricView::Spans => "plumb_spans s JOIN plumb_traces t ON t.trace_id = s.trace_id",
        MetricView::Assessments => {
            "plumb_assessments a JOIN plumb_traces t ON t.trace_id = a.trace_id"
        }
    };
    let percentiles = q
        .aggregations
        .iter()
        .any(|a| matches!(a, MetricAgg::Percentile(_)));
    let select: Vec<String> = if percentiles {
        vec![format!("CAST({value} AS DOUBLE PRECISION)")]
    } else {
        q.aggregations
            .iter()
            .map(|a| match a {
                MetricAgg::Count if distinct => format!("COUNT(DISTINCT {value})"),
                MetricAgg::Count => format!("COUNT({value})"),
                MetricAgg::Sum => format!("SUM(CAST({value} AS DOUBLE PRECISION))"),
                MetricAgg::Avg => format!("AVG(CAST({value} AS DOUBLE PRECISION))"),
                MetricAgg::Min => format!("MIN(CAST({value} AS DOUBLE PRECISION))"),
                MetricAgg::Max => format!("MAX(CAST({value} AS DOUBLE PRECISION))"),
                MetricAgg::Percentile(_) => unreachable!("handled above"),
            })
            .collect()
    };
    // Binds in the order of their marks: the bucket's (SELECT), then the WHERE clause's.
    let mut filter = vec![c.dialect().in_list("t.experiment_id")];
    binds.push(Bind::IntList(exps));
    filter.push(format!("{value} IS NOT NULL"));
    if q.view == MetricView::Assessments {
        // An overridden assessment counts no more.
        filter.push("a.valid = 1".into());
    }
    if let Some(start) = q.start_ms {
        binds.push(start.into());
        filter.push("t.request_time_ms >= ?".into());
    }
    if let Some(end) = q.end_ms {
        binds.push(end.into());
        filter.push("t.request_time_ms <= ?".into());
    }
    for d in &q.dimensions {
        // A group without a value for a dimension is left out, as in MLflow.
        filter.push(format!("{} IS NOT NULL", dimension_sql(d)?));
    }
    for f in &q.filters {
        filter.push(metric_filter_sql(f, &mut binds));
    }
    let positions: Vec<String> = (1..=groups.len()).map(|i| i.to_string()).collect();
    let mut sql = format!(
        "SELECT {} FROM {from} WHERE {}",
        groups
            .iter()
            .cloned()
            .chain(select)
            .collect::<Vec<_>>()
            .join(", "),
        filter.join(" AND ")
    );
    let n_groups = groups.len();
    let text_of = |r: &Row, i: usize| -> DbResult<String> {
        // A dimension is text; `assessment_value` and the bucket may read as numbers.
        match r.opt_text(i) {
            Ok(v) => Ok(v.unwrap_or_default()),
            Err(_) => Ok(r.int(i)?.to_string()),
        }
    };
    let point = |r: &Row, values: BTreeMap<String, f64>| -> DbResult<MetricPoint> {
        let mut dims = BTreeMap::new();
        let mut bucket_ms = None;
        let mut at = 0;
        if q.interval_s.is_some() {
            bucket_ms = Some(r.int(0)?);
            at = 1;
        }
        for (i, d) in q.dimensions.iter().enumerate() {
            dims.insert(d.clone(), text_of(r, at + i)?);
        }
        Ok(MetricPoint {
            bucket_ms,
            dimensions: dims,
            values,
        })
    };
    let mut out = Vec::new();
    if !percentiles {
        if n_groups > 0 {
            sql.push_str(&format!(
                " GROUP BY {} ORDER BY {}",
                positions.join(", "),
                positions.join(", ")
            ));
        }
        sql.push_str(" LIMIT ?");
        binds.push(q.max_results.into());
        for r in c.query(&sql, binds).await? {
            let mut values = BTreeMap::new();
            for (i, a) in q.aggregations.iter().enumerate() {
                let v = match a {
                    MetricAgg::Count => Some(r.int(n_groups + i)? as f64),
                    _ => r.opt_real(n_groups + i)?,
                };
                if let Some(v) = v {
                    values.insert(a.label(), v);
                }
            }
            if !values.is_empty() {
                out.push(point(&r, values)?);
            }
        }
        return Ok(out);
    }
    if n_groups > 0 {
        sql.push_str(&format!(" ORDER BY {}", positions.join(", ")));
    }
    sql.push_str(" LIMIT ?");
    binds.push((MAX_PERCENTILE_VALUES as i64 + 1).into());
    let rows = c.query(&sql, binds).await?;
    if rows.len() > MAX_PERCENTILE_VALUES {
        return Err(Error::invalid(format!(
            "A percentile over more than {MAX_PERCENTILE_VALUES} values is not computed: \
             narrow start_time_ms / end_time_ms or add filters"
        ))
        .into());
    }
    // Rows arrive ordered by their group; each group is folded when the next begins.
    let key = |r: &Row| -> DbResult<Vec<String>> { (0..n_groups).map(|i| text_of(r, i)).collect() };
    let mut current: Option<(Vec<String>, usize)> = None;
    let mut values: Vec<f64> = Vec::new();
    for (idx, r) in rows.iter().enumerate() {
        let k = key(r)?;
        if current.as_ref().is_some_and(|(ck, _)| *ck != k) {
            if let Some((_, first)) = current.take() {
                out.push(point(&rows[first], fold(&mut values, &q.aggregations))?);
                values.clear();
            }
            if out.len() as i64 >= q.max_results {
                return Ok(out);
            }
        }
        if current.is_none() {
            current = Some((k, idx));
        }
        values.push(r.opt_real(n_groups)?.unwrap_or(f64::NAN));
    }
    if let Some((_, first)) = current {
        out.push(point(&rows[first], fold(&mut values, &q.aggregations))?);
    } else if n_groups == 0 {
        // No value at all: a count of zero, as the database would answer.
        let folded = fold(&mut values, &q.aggregations);
        if !folded.is_empty() {
            out.push(MetricPoint {
                bucket_ms: None,
                dimensions: BTreeMap::new(),
                values: folded,
            });
        }
    }
    out.truncate(q.max_results.max(0) as usize);
    Ok(out)
}

pub async fn correlation_counts<C: Conn>(
    c: &mut C,
    experiment_ids: &[String],
    base: &[TraceClause],
    first: &[TraceClause],
    second: &[TraceClause],
) -> DbResult<CorrelationCounts> {
    let exps = experiment_numbers(experiment_ids)?;
    let mut binds = Vec::new();
    let f1 = filter_sql(first, &mut binds)?;
    let f2 = filter_sql(second, &mut binds)?;
    let j1 = filter_sql(first, &mut binds)?;
    let j2 = filter_sql(second, &mut binds)?;
    let within = c.dialect().in_list("t.experiment_id");
    binds.push(Bind::IntList(exps));
    let b = filter_sql(base, &mut binds)?;
    let sql = format!(
        "SELECT COUNT(*),
             COALESCE(SUM(CASE WHEN {f1} THEN 1 ELSE 0 END), 0),
             COALESCE(SUM(CASE WHEN {f2} THEN 1 ELSE 0 END), 0),
             COALESCE(SUM(CASE WHEN ({j1}) AND ({j2}) THEN 1 ELSE 0 END), 0)
         FROM plumb_traces t WHERE {within} AND {b}"
    );
    let r = c
        .query_opt(&sql, binds)
        .await?
        .ok_or_else(|| crate::db::no_row("correlation counts"))?;
    Ok(CorrelationCounts {
        total: r.int(0)?,
        first: r.int(1)?,
        second: r.int(2)?,
        joint: r.int(3)?,
    })
}
