//! `GET /api/2.0/plumb/metrics/sampled`: a metric's history per run thinned for drawing, keeping
//! each interval's lowest and highest point (min-max decimation), so a spike in a million points
//! still shows in two thousand. MLflow's `get-history-bulk-interval` keeps evenly spaced steps
//! instead (and plumb answers that as MLflow does); the UI's charts read this one.

use axum::extract::State;
use axum::Json;
use plumb_core::entities::Metric;
use plumb_core::Error;
use serde::Serialize;

use crate::error::ApiResult;
use crate::extract::Params;
use crate::AppState;

const MAX_RUNS: usize = 100;
const MAX_POINTS: i64 = 10_000;
const DEFAULT_POINTS: i64 = 2_000;

#[derive(Debug, Serialize, PartialEq)]
pub struct SampledPoint {
    pub step: i64,
    pub timestamp: i64,
    pub value: f64,
}

#[derive(Debug, Serialize)]
pub struct SampledSeries {
    pub run_id: String,
    /// Finite points stored for the key (non-finite ones cannot be drawn and are left out).
    pub total: usize,
    pub points: Vec<SampledPoint>,
}

#[derive(Debug, Serialize)]
pub struct SampledAnswer {
    pub metric_key: String,
    pub series: Vec<SampledSeries>,
}

/// At most `max` (>= 4) points of `points` (sorted by step, then time): all when they fit,
/// else the first, the last, and in each of `(max - 2) / 2` equal runs of points its lowest and
/// highest, in step order.
pub fn decimate(points: &[SampledPoint], max: usize) -> Vec<&SampledPoint> {
    let n = points.len();
    if n <= max.max(2) {
        return points.iter().collect();
    }
    let buckets = ((max.saturating_sub(2)) / 2).max(1);
    let mut out = vec![&points[0]];
    for b in 0..buckets {
        let (lo, hi) = (1 + b * (n - 2) / buckets, 1 + (b + 1) * (n - 2) / buckets);
        let run = &points[lo..hi];
        let (Some(min), Some(max)) = (
            run.iter()
                .enumerate()
                .min_by(|a, b| a.1.value.total_cmp(&b.1.value)),
            run.iter()
                .enumerate()
                .max_by(|a, b| a.1.value.total_cmp(&b.1.value)),
        ) else {
            continue;
        };
        let (first, second) = if min.0 <= max.0 {
            (min, max)
        } else {
            (max, min)
        };
        out.push(first.1);
        if second.0 != first.0 {
            out.push(second.1);
        }
    }
    out.push(&points[n - 1]);
    out
}

pub async fn sampled(State(st): State<AppState>, p: Params) -> ApiResult<Json<SampledAnswer>> {
    let mut run_ids = p.str_list("run_ids")?;
    run_ids.dedup();
    if run_ids.is_empty() || run_ids.len() > MAX_RUNS {
        return Err(Error::invalid(format!("run_ids: give 1 to {MAX_RUNS} run ids")).into());
    }
    let key = p
        .opt_str("metric_key")?
        .filter(|k| !k.is_empty())
        .ok_or_else(|| Error::missing("metric_key"))?;
    let max = p.opt_i64("max_points")?.unwrap_or(DEFAULT_POINTS);
    if !(4..=MAX_POINTS).contains(&max) {
        return Err(Error::invalid(format!("max_points: between 4 and {MAX_POINTS}")).into());
    }
    let mut series = Vec::with_capacity(run_ids.len());
    for run_id in run_ids {
        // A run that does not exist is a 404, not an empty series.
        st.store.get_run(&run_id).await?;
        let history: Vec<Metric> = st.store.metric_history(&run_id, &key, 0, None).await?.items;
        let mut points: Vec<SampledPoint> = history
            .into_iter()
            .filter(|m| m.value.is_finite())
            .map(|m| SampledPoint {
                step: m.step,
                timestamp: m.timestamp,
                value: m.value,
            })
            .collect();
        points.sort_by_key(|p| (p.step, p.timestamp));
        let kept: Vec<SampledPoint> = decimate(&points, max as usize)
            .into_iter()
            .map(|q| SampledPoint { ..*q })
            .collect();
        series.push(SampledSeries {
            run_id,
            total: points.len(),
            points: kept,
        });
    }
    Ok(Json(SampledAnswer {
        metric_key: key,
        series,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(n: usize) -> Vec<SampledPoint> {
        (0..n)
            .map(|i| SampledPoint {
                step: i as i64,
                timestamp: i as i64,
                value: (i % 7) as f64,
            })
            .collect()
    }

    #[test]
    fn a_spike_survives_and_the_ends_are_kept() {
        let mut pts = line(1_000_000);
        pts[654_321].value = 1e9;
        pts[123_456].value = -1e9;
        let kept = decimate(&pts, 2000);
        assert!(kept.len() <= 2000, "{}", kept.len());
        assert!(kept.iter().any(|p| p.value == 1e9));
        assert!(kept.iter().any(|p| p.value == -1e9));
        assert_eq!(kept.first().map(|p| p.step), Some(0));
        assert_eq!(kept.last().map(|p| p.step), Some(999_999));
        assert!(
            kept.windows(2).all(|w| w[0].step < w[1].step),
            "in step order"
        );
        assert_eq!(decimate(&line(10), 2000).len(), 10, "short series whole");
        assert_eq!(
            decimate(&line(3), 2).len(),
            3,
            "at least the ends and one bucket"
        );
    }
}
