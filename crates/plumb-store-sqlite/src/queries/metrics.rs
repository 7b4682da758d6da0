//! Metric history reads: paginated history, bulk history, and evenly sampled bulk intervals.

use crate::error::Result;
use plumb_core::entities::{Metric, Page, RunMetric};
use plumb_core::validation::encode_offset_token;
use plumb_store::shared::{bucket_starts, push_last_sample};
use plumb_store::IntervalQuery;
use rusqlite::{params, Connection, OptionalExtension};

use crate::error::E;
use crate::queries::runs::pks;

fn row_to_metric(key: &str, r: &rusqlite::Row<'_>) -> rusqlite::Result<Metric> {
    // columns: step, timestamp, value, is_nan
    let is_nan: bool = r.get(3)?;
    let value: f64 = r.get(2)?;
    Ok(Metric::new(
        key,
        if is_nan { f64::NAN } else { value },
        r.get(1)?,
        r.get(0)?,
    ))
}

fn run_pk(conn: &Connection, run_id: &str) -> Result<Option<i64>> {
    conn.prepare_cached("SELECT run_pk FROM runs WHERE run_uuid = ?1")
        .and_then(|mut s| s.query_row([run_id], |r| r.get(0)).optional())
        .map_err(E::from)
}

/// Where a series is: its run's key, how many points it holds and its step range.
pub(crate) struct SeriesShape {
    pub(crate) pk: i64,
    pub(crate) points: i64,
    pub(crate) min_step: i64,
    pub(crate) max_step: i64,
}

/// `None` when the run or the series does not exist.
pub(crate) fn series_shape(
    conn: &Connection,
    run_id: &str,
    key: &str,
) -> Result<Option<SeriesShape>> {
    let Some(pk) = run_pk(conn, run_id)? else {
        return Ok(None);
    };
    conn.prepare_cached(
        "SELECT points, min_step, step FROM latest_metrics WHERE run_pk = ?1 AND key = ?2",
    )
    .and_then(|mut s| {
        s.query_row(params![pk, key], |r| {
            Ok(SeriesShape {
                pk,
                points: r.get(0)?,
                min_step: r.get(1)?,
                max_step: r.get(2)?,
            })
        })
        .optional()
    })
    .map_err(E::from)
}

/// The points of a series with `from <= step <= to`, in primary-key order (step, timestamp,
/// value): no sort inside SQLite, which would build a temporary B-tree of the whole series.
pub(crate) fn points_in_steps(
    conn: &Connection,
    pk: i64,
    key: &str,
    from: i64,
    to: i64,
    capacity: usize,
) -> Result<Vec<Metric>> {
    let mut items: Vec<Metric> = Vec::with_capacity(capacity);
    let mut stmt = conn.prepare_cached(
        "SELECT step, timestamp, value, is_nan FROM metrics
             WHERE run_pk = ?1 AND key = ?2 AND step BETWEEN ?3 AND ?4",
    )?;
    let mut rows = stmt.query(params![pk, key, from, to])?;
    while let Some(r) = rows.next()? {
        items.push(row_to_metric(key, r)?);
    }
    Ok(items)
}

/// MLflow's page of a series: ordered by (timestamp, step, value), `offset` points skipped,
/// at most `limit`. Series are nearly always logged with rising step and time, so points read
/// in step order usually are in that order already; otherwise one sort (linear on sorted runs).
pub(crate) fn history_page(
    mut items: Vec<Metric>,
    offset: i64,
    limit: Option<i64>,
) -> Page<Metric> {
    // NaN is stored as 0 with is_nan set: order as the column values do.
    let rank = |m: &Metric| {
        let nan = m.value.is_nan();
        (m.timestamp, m.step, if nan { 0.0 } else { m.value }, nan)
    };
    let order = |a: &Metric, b: &Metric| {
        let (a, b) = (rank(a), rank(b));
        (a.0, a.1)
            .cmp(&(b.0, b.1))
            .then(a.2.partial_cmp(&b.2).unwrap_or(std::cmp::Ordering::Equal))
            .then(a.3.cmp(&b.3))
    };
    if items.windows(2).any(|w| order(&w[0], &w[1]).is_gt()) {
        items.sort_by(order);
    }
    let total = items.len();
    let start = usize::try_from(offset.max(0))
        .unwrap_or(usize::MAX)
        .min(total);
    let end = match limit {
        Some(l) => start
            .saturating_add(usize::try_from(l.max(0)).unwrap_or(0))
            .min(total),
        None => total,
    };
    let next_page_token = match limit {
        Some(l) if end < total => Some(encode_offset_token(offset + l)),
        _ => None,
    };
    items.truncate(end);
    items.drain(..start);
    Page {
        items,
        next_page_token,
    }
}

/// Per run, in the order the runs were asked for: MLflow 3.17's sampling. The rows of the step
/// range, ordered by (step, timestamp, value, is_nan), are cut into `max_results` NTILE buckets
/// and the first row of each is kept; the overall last row is always included, replacing the
/// last sample when there are already `max_results`.
pub(crate) fn bulk_interval(conn: &Connection, q: &IntervalQuery) -> Result<Vec<RunMetric>> {
    let by_pk = pks(conn, &q.run_ids)?;
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for run_id in &q.run_ids {
        let Some(pk) = by_pk
            .iter()
            .find(|(_, id)| *id == run_id)
            .map(|(pk, _)| *pk)
        else {
            continue;
        };
        if !seen.insert(pk) {
            continue;
        }
        let points = sample_run(conn, pk, &q.metric_key, q.steps, q.max_results.max(1))?;
        out.extend(points.into_iter().map(|metric| RunMetric {
            run_id: run_id.clone(),
            metric,
        }));
    }
    Ok(out)
}

fn sample_run(
    conn: &Connection,
    pk: i64,
    key: &str,
    steps: Option<(i64, i64)>,
    max: usize,
) -> Result<Vec<Metric>> {
    let (lo, hi) = steps.unwrap_or((i64::MIN, i64::MAX));
    // NTILE(max) over n rows: the first n % max buckets hold n / max + 1 rows, the others
    // n / max; keep each bucket's first row.
    let shape: Option<(i64, i64, bool)> = conn
        .prepare_cached(
            "SELECT min_step, step, dense FROM latest_metrics WHERE run_pk = ?1 AND key = ?2",
        )
        .and_then(|mut s| {
            s.query_row(params![pk, key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
        })?;
    let Some((min_step, max_step, dense)) = shape else {
        return Ok(Vec::new());
    };
    let mut sampled: Vec<Metric>;
    if dense {
        // One point per step from min_step to max_step: the i-th row of the range is at step
        // lo + i, so each sample is one primary-key seek.
        let (lo, hi) = (lo.max(min_step), hi.min(max_step));
        if lo > hi {
            return Ok(Vec::new());
        }
        let n = hi - lo + 1;
        let mut at = conn.prepare_cached(
            "SELECT step, timestamp, value, is_nan FROM metrics
                 WHERE run_pk = ?1 AND key = ?2 AND step = ?3 LIMIT 1",
        )?;
        sampled = Vec::new();
        for start in bucket_starts(n, max as i64) {
            if let Some(m) = at
                .query_row(params![pk, key, lo + start], |r| row_to_metric(key, r))
                .optional()?
            {
                sampled.push(m);
            }
        }
    } else {
        // Computed from the count, then one ordered walk of the (run, key, step, ...) primary
        // key that decodes only the kept rows.
        let n: i64 = conn
            .prepare_cached(
                "SELECT COUNT(*) FROM metrics WHERE run_pk = ?1 AND key = ?2 AND step BETWEEN ?3 AND ?4",
            )
            .and_then(|mut s| s.query_row(params![pk, key, lo, hi], |r| r.get(0)))
            ?;
        if n == 0 {
            return Ok(Vec::new());
        }
        let starts = bucket_starts(n, max as i64);
        sampled = Vec::with_capacity(starts.len() + 1);
        let mut stmt = conn.prepare_cached(
            "SELECT step, timestamp, value, is_nan FROM metrics
                 WHERE run_pk = ?1 AND key = ?2 AND step BETWEEN ?3 AND ?4
                 ORDER BY step, timestamp, value, is_nan",
        )?;
        let mut rows = stmt.query(params![pk, key, lo, hi])?;
        let (mut idx, mut next) = (0i64, starts.iter().peekable());
        while let Some(&&target) = next.peek() {
            let Some(row) = rows.next()? else {
                break;
            };
            if idx == target {
                sampled.push(row_to_metric(key, row)?);
                next.next();
            }
            idx += 1;
        }
    }
    let last = conn
        .prepare_cached(
            "SELECT step, timestamp, value, is_nan FROM metrics
             WHERE run_pk = ?1 AND key = ?2 AND step BETWEEN ?3 AND ?4
             ORDER BY step DESC, timestamp DESC, value DESC, is_nan DESC LIMIT 1",
        )
        .and_then(|mut s| {
            s.query_row(params![pk, key, lo, hi], |r| row_to_metric(key, r))
                .optional()
        })?;
    if let Some(last) = last {
        push_last_sample(&mut sampled, last, max);
    }
    Ok(sampled)
}
