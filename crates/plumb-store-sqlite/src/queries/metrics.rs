//! Metric history reads: paginated history, bulk history, and evenly sampled bulk intervals.

use plumb_core::entities::{Metric, Page, RunMetric};
use plumb_core::validation::encode_offset_token;
use plumb_core::Result;
use plumb_store::IntervalQuery;
use rusqlite::{params, Connection, OptionalExtension};

use crate::db_err;
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
        .map_err(db_err)
}

pub(crate) fn history(
    conn: &Connection,
    run_id: &str,
    key: &str,
    offset: i64,
    limit: Option<i64>,
) -> Result<Page<Metric>> {
    let Some(pk) = run_pk(conn, run_id)? else {
        return Ok(Page {
            items: Vec::new(),
            next_page_token: None,
        });
    };
    let fetch = limit.map(|l| l + 1).unwrap_or(-1);
    let mut stmt = conn
        .prepare_cached(
            "SELECT step, timestamp, value, is_nan FROM metrics WHERE run_pk = ?1 AND key = ?2
             ORDER BY timestamp, step, value LIMIT ?3 OFFSET ?4",
        )
        .map_err(db_err)?;
    let mut items: Vec<Metric> = stmt
        .query_map(params![pk, key, fetch, offset], |r| row_to_metric(key, r))
        .and_then(|rows| rows.collect())
        .map_err(db_err)?;
    let next_page_token = match limit {
        Some(l) if items.len() as i64 > l => {
            items.truncate(l as usize);
            Some(encode_offset_token(offset + l))
        }
        _ => None,
    };
    Ok(Page {
        items,
        next_page_token,
    })
}

pub(crate) fn bulk(
    conn: &Connection,
    run_ids: &[String],
    key: &str,
    limit: i64,
) -> Result<Vec<RunMetric>> {
    let mut sorted: Vec<String> = run_ids.to_vec();
    sorted.sort();
    sorted.dedup();
    let mut out = Vec::new();
    for run_id in sorted {
        let remaining = limit - out.len() as i64;
        if remaining <= 0 {
            break;
        }
        let page = history(conn, &run_id, key, 0, Some(remaining))?;
        out.extend(page.items.into_iter().map(|metric| RunMetric {
            run_id: run_id.clone(),
            metric,
        }));
    }
    Ok(out)
}

/// Per run: at most `max_results` points spread evenly over the step range, the first and the
/// last step always kept. Dense ranges are read whole; sparse sampling seeks the (run, key, step)
/// index once per sample, so a million-point metric costs ~max_results index probes.
pub(crate) fn bulk_interval(conn: &Connection, q: &IntervalQuery) -> Result<Vec<RunMetric>> {
    let by_pk = pks(conn, &q.run_ids)?;
    let mut order: Vec<(i64, String)> = by_pk.into_iter().collect();
    order.sort_by(|a, b| a.1.cmp(&b.1));
    let mut out = Vec::new();
    for (pk, run_id) in order {
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
    let bounds: Option<(Option<i64>, Option<i64>)> = conn
        .prepare_cached(
            "SELECT MIN(step), MAX(step) FROM metrics WHERE run_pk = ?1 AND key = ?2 AND step BETWEEN ?3 AND ?4",
        )
        .and_then(|mut s| s.query_row(params![pk, key, lo, hi], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .map_err(db_err)?;
    let Some((Some(min), Some(max_step))) = bounds else {
        return Ok(Vec::new());
    };
    let span = (max_step as i128 - min as i128 + 1) as u128;
    let mut range = conn
        .prepare_cached(
            "SELECT step, timestamp, value, is_nan FROM metrics
             WHERE run_pk = ?1 AND key = ?2 AND step BETWEEN ?3 AND ?4
             ORDER BY step, timestamp, value, is_nan LIMIT ?5",
        )
        .map_err(db_err)?;
    if span <= max as u128 {
        let rows: Vec<Metric> = range
            .query_map(params![pk, key, min, max_step, (4 * max) as i64 + 1], |r| {
                row_to_metric(key, r)
            })
            .and_then(|rows| rows.collect())
            .map_err(db_err)?;
        if rows.len() <= max {
            return Ok(rows);
        }
        return Ok(even_pick(rows, max));
    }
    // Sparse: one probe per evenly spaced target step, plus the last point.
    let mut seek = conn
        .prepare_cached(
            "SELECT step, timestamp, value, is_nan FROM metrics
             WHERE run_pk = ?1 AND key = ?2 AND step >= ?3 AND step <= ?4
             ORDER BY step, timestamp, value, is_nan LIMIT 1",
        )
        .map_err(db_err)?;
    let mut out: Vec<Metric> = Vec::with_capacity(max);
    let slots = max.saturating_sub(1).max(1);
    for i in 0..slots {
        let target = min as i128 + (span - 1) as i128 * i as i128 / slots as i128;
        let target = target as i64;
        if out.last().is_some_and(|m| m.step >= target) {
            continue;
        }
        if let Some(m) = seek
            .query_row(params![pk, key, target, max_step], |r| {
                row_to_metric(key, r)
            })
            .optional()
            .map_err(db_err)?
        {
            if out.last().is_none_or(|l| l.step < m.step) {
                out.push(m);
            }
        }
    }
    let last = conn
        .prepare_cached(
            "SELECT step, timestamp, value, is_nan FROM metrics WHERE run_pk = ?1 AND key = ?2 AND step = ?3
             ORDER BY timestamp DESC, value DESC LIMIT 1",
        )
        .and_then(|mut s| s.query_row(params![pk, key, max_step], |r| row_to_metric(key, r)).optional())
        .map_err(db_err)?;
    if let Some(last) = last {
        if out.last().is_some_and(|l| l.step == last.step) {
            out.pop();
        }
        if max == 1 {
            out.clear();
        }
        out.push(last);
    }
    out.truncate(max.max(1));
    Ok(out)
}

/// Keeps `max` of `rows` spread evenly, always the first and the last (only the last for 1).
fn even_pick(rows: Vec<Metric>, max: usize) -> Vec<Metric> {
    let n = rows.len();
    if max == 1 {
        return rows.into_iter().last().into_iter().collect();
    }
    let wanted: std::collections::BTreeSet<usize> =
        (0..max).map(|i| i * (n - 1) / (max - 1)).collect();
    rows.into_iter()
        .enumerate()
        .filter(|(i, _)| wanted.contains(i))
        .map(|(_, m)| m)
        .collect()
}
