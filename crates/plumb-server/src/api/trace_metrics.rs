//! MLflow 3's trace analytics: `POST /mlflow/traces/metrics` (counts, latencies, tokens and
//! assessment values grouped by dimensions and time buckets) and
//! `POST /mlflow/traces/calculate-filter-correlation` (NPMI of two trace filters), in MLflow's
//! JSON shapes.

use std::time::{Duration, UNIX_EPOCH};

use axum::extract::State;
use axum::Json;
use plumb_core::search::{parse_metric_filter, parse_trace_filter};
use plumb_core::Error;
use plumb_store::traces::{MetricAgg, MetricView, TraceMetricsQuery};
use serde_json::{json, Map, Value};

use crate::error::ApiResult;
use crate::extract::{bad_type, Params};
use crate::AppState;

/// MLflow's default and largest page of data points.
const MAX_RESULTS: i64 = 1000;

fn view(v: &Value) -> Option<MetricView> {
    Some(match v {
        Value::String(s) if s == "TRACES" => MetricView::Traces,
        Value::String(s) if s == "SPANS" => MetricView::Spans,
        Value::String(s) if s == "ASSESSMENTS" => MetricView::Assessments,
        Value::Number(n) => match n.as_i64()? {
            1 => MetricView::Traces,
            2 => MetricView::Spans,
            3 => MetricView::Assessments,
            _ => return None,
        },
        _ => return None,
    })
}

fn aggregation(p: &Params, i: usize) -> ApiResult<MetricAgg> {
    let field = format!("aggregations[{i}].aggregation_type");
    let raw = p
        .raw("aggregation_type")?
        .ok_or_else(|| Error::missing(&field))?;
    let name = match raw {
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_i64() {
            Some(1) => "COUNT".into(),
            Some(2) => "SUM".into(),
            Some(3) => "AVG".into(),
            Some(4) => "PERCENTILE".into(),
            Some(5) => "MIN".into(),
            Some(6) => "MAX".into(),
            _ => return Err(bad_type(&field, raw)),
        },
        _ => return Err(bad_type(&field, raw)),
    };
    let pct = p
        .raw("percentile_value")?
        .map(|v| {
            crate::extract::value_f64(v)
                .filter(|x| x.is_finite())
                .ok_or_else(|| bad_type("percentile_value", v))
        })
        .transpose()?;
    let agg = match name.as_str() {
        "COUNT" => MetricAgg::Count,
        "SUM" => MetricAgg::Sum,
        "AVG" => MetricAgg::Avg,
        "MIN" => MetricAgg::Min,
        "MAX" => MetricAgg::Max,
        "PERCENTILE" => {
            let p = pct.ok_or_else(|| {
                Error::invalid("Percentile value is required for PERCENTILE aggregation")
            })?;
            if !(0.0..=100.0).contains(&p) {
                return Err(Error::invalid(format!(
                    "Percentile value must be between 0 and 100, got {p}"
                ))
                .into());
            }
            return Ok(MetricAgg::Percentile(p));
        }
        _ => return Err(bad_type(&field, raw)),
    };
    if pct.is_some() {
        return Err(Error::invalid(format!(
            "Percentile value is only allowed for PERCENTILE aggregation type, got {name}"
        ))
        .into());
    }
    Ok(agg)
}

/// An ISO 8601 UTC time of a bucket's start, as MLflow writes it (`2026-01-01T10:00:00+00:00`).
fn bucket_time(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    let s = humantime::format_rfc3339_seconds(t).to_string();
    format!("{}+00:00", s.trim_end_matches('Z'))
}

/// `POST /mlflow/traces/metrics`.
pub async fn query(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let experiment_ids = p.str_list("experiment_ids")?;
    if experiment_ids.is_empty() {
        return Err(Error::missing("experiment_ids").into());
    }
    let raw_view = p
        .raw("view_type")?
        .ok_or_else(|| Error::missing("view_type"))?;
    let view = view(raw_view).ok_or_else(|| bad_type("view_type", raw_view))?;
    let metric = p.req_str("metric_name")?;
    let aggregations = p
        .objects("aggregations")?
        .iter()
        .enumerate()
        .map(|(i, a)| aggregation(a, i))
        .collect::<ApiResult<Vec<_>>>()?;
    if aggregations.is_empty() {
        return Err(Error::missing("aggregations").into());
    }
    let filters = p
        .str_list("filters")?
        .iter()
        .map(|f| parse_metric_filter(f))
        .collect::<Result<Vec<_>, _>>()?;
    let max_results = match p.opt_i64("max_results")? {
        None | Some(0) => MAX_RESULTS,
        Some(n) if !(1..=MAX_RESULTS).contains(&n) => {
            return Err(Error::invalid(format!(
                "max_results must be between 1 and {MAX_RESULTS}, got {n}"
            ))
            .into())
        }
        Some(n) => n,
    };
    let points = st
        .all
        .query_trace_metrics(TraceMetricsQuery {
            experiment_ids,
            view,
            metric: metric.clone(),
            aggregations,
            dimensions: p.str_list("dimensions")?,
            filters,
            interval_s: p.opt_i64("time_interval_seconds")?,
            start_ms: p.opt_i64("start_time_ms")?,
            end_ms: p.opt_i64("end_time_ms")?,
            max_results,
        })
        .await?;
    let data: Vec<Value> = points
        .into_iter()
        .map(|pt| {
            let mut dims = Map::new();
            if let Some(ms) = pt.bucket_ms {
                dims.insert("time_bucket".into(), json!(bucket_time(ms)));
            }
            for (k, v) in pt.dimensions {
                dims.insert(k, json!(v));
            }
            let mut o = Map::new();
            o.insert("metric_name".into(), json!(metric));
            if !dims.is_empty() {
                o.insert("dimensions".into(), Value::Object(dims));
            }
            o.insert("values".into(), json!(pt.values));
            Value::Object(o)
        })
        .collect();
    let mut o = Map::new();
    if !data.is_empty() {
        o.insert("data_points".into(), Value::Array(data));
    }
    Ok(Json(Value::Object(o)))
}

/// NPMI of a 2x2 table with `smoothing` added to each cell (MLflow's definition: NaN when
/// undefined, 1 when the two always hold together, clamped to [-1, 1]).
fn npmi_core(n11: f64, n10: f64, n01: f64, n00: f64, smoothing: f64) -> f64 {
    let (a, b, c, d) = (
        n11 + smoothing,
        n10 + smoothing,
        n01 + smoothing,
        n00 + smoothing,
    );
    let n = a + b + c + d;
    let (n1, n2) = (a + b, a + c);
    if n1 <= 0.0 || n2 <= 0.0 || a <= 0.0 {
        return f64::NAN;
    }
    if n10 == 0.0 && n01 == 0.0 && n00 == 0.0 {
        return 1.0;
    }
    let pmi = (a.ln() + n.ln()) - (n1.ln() + n2.ln());
    (pmi / -(a.ln() - n.ln())).clamp(-1.0, 1.0)
}

/// (NPMI, NPMI with Jeffreys' prior) of the counts.
pub fn npmi(joint: i64, first: i64, second: i64, total: i64) -> (f64, f64) {
    if total <= 0 || first == 0 || second == 0 {
        return (f64::NAN, f64::NAN);
    }
    let n11 = joint as f64;
    let n10 = (first - joint) as f64;
    let n01 = (second - joint) as f64;
    let n00 = (total - first - second + joint) as f64;
    if n11.min(n10).min(n01).min(n00) < 0.0 {
        return (f64::NAN, f64::NAN);
    }
    let plain = if joint == 0 {
        -1.0
    } else {
        npmi_core(n11, n10, n01, n00, 0.0)
    };
    (plain, npmi_core(n11, n10, n01, n00, 0.5))
}

/// `POST /mlflow/traces/calculate-filter-correlation`.
pub async fn correlation(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let experiment_ids = p.str_list("experiment_ids")?;
    if experiment_ids.is_empty() {
        return Err(Error::missing("experiment_ids").into());
    }
    let first = parse_trace_filter(&p.req_str("filter_string1")?)?;
    let second = parse_trace_filter(&p.req_str("filter_string2")?)?;
    let base = parse_trace_filter(&p.opt_str("base_filter")?.unwrap_or_default())?;
    let c = st
        .all
        .trace_correlation_counts(experiment_ids, base, first, second)
        .await?;
    let (plain, smoothed) = npmi(c.joint, c.first, c.second, c.total);
    let mut o = Map::new();
    if plain.is_finite() {
        o.insert("npmi".into(), json!(plain));
    }
    if smoothed.is_finite() {
        o.insert("npmi_smoothed".into(), json!(smoothed));
    }
    o.insert("filter1_count".into(), json!(c.first));
    o.insert("filter2_count".into(), json!(c.second));
    o.insert("joint_count".into(), json!(c.joint));
    o.insert("total_count".into(), json!(c.total));
    Ok(Json(Value::Object(o)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npmi_follows_mlflow_rules() {
        assert!(npmi(0, 0, 5, 10).0.is_nan());
        assert_eq!(npmi(0, 3, 4, 10).0, -1.0);
        assert_eq!(npmi(5, 5, 5, 5).0, 1.0);
        let (plain, smoothed) = npmi(10, 20, 15, 100);
        // log(10*100/(20*15)) / -log(10/100)
        let expected = (1000.0f64 / 300.0).ln() / (10.0f64).ln();
        assert!((plain - expected).abs() < 1e-12, "{plain}");
        assert!(smoothed < plain && smoothed > 0.0);
        assert_eq!(bucket_time(0), "1970-01-01T00:00:00+00:00");
    }
}
