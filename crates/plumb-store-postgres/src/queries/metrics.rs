//! Metric history reads: paginated history, bulk history, and evenly sampled bulk intervals.

use plumb_core::entities::{Metric, Page, RunMetric};
use plumb_core::validation::encode_offset_token;
use plumb_store::shared::{bucket_starts, push_last_sample};
use plumb_store::IntervalQuery;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use crate::queries::runs::pks;
use crate::queries::stored_to_value;
use crate::R;

/// Columns: step, timestamp, value, is_nan.
fn row_to_metric(key: &str, r: &PgRow) -> Result<Metric, sqlx::Error> {
    Ok(Metric::new(
        key,
        stored_to_value(r.try_get(2)?, r.try_get(3)?),
        r.try_get(1)?,
        r.try_get(0)?,
    ))
}

async fn run_pk(c: &mut PgConnection, run_id: &str) -> R<Option<i64>> {
    Ok(
        sqlx::query_scalar("SELECT run_pk FROM runs WHERE run_uuid = $1")
            .bind(run_id)
            .fetch_optional(&mut *c)
            .await?,
    )
}

pub(crate) async fn history(
    c: &mut PgConnection,
    run_id: &str,
    key: &str,
    offset: i64,
    limit: Option<i64>,
) -> R<Page<Metric>> {
    let Some(pk) = run_pk(c, run_id).await? else {
        return Ok(Page {
            items: Vec::new(),
            next_page_token: None,
        });
    };
    // LIMIT NULL is no limit.
    let rows = sqlx::query(
        "SELECT step, timestamp, value, is_nan FROM metrics WHERE run_pk = $1 AND key = $2
         ORDER BY timestamp, step, value LIMIT $3 OFFSET $4",
    )
    .bind(pk)
    .bind(key)
    .bind(limit.map(|l| l + 1))
    .bind(offset)
    .fetch_all(&mut *c)
    .await?;
    let mut items = rows
        .iter()
        .map(|r| row_to_metric(key, r))
        .collect::<Result<Vec<_>, _>>()?;
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

/// Per run, in the order the runs were asked for: MLflow 3.17's sampling (see the SQLite store).
pub(crate) async fn bulk_interval(c: &mut PgConnection, q: &IntervalQuery) -> R<Vec<RunMetric>> {
    let by_id = pks(c, &q.run_ids).await?;
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for run_id in &q.run_ids {
        let Some(&pk) = by_id.get(run_id) else {
            continue;
        };
        if !seen.insert(pk) {
            continue;
        }
        let points = sample_run(c, pk, &q.metric_key, q.steps, q.max_results.max(1)).await?;
        out.extend(points.into_iter().map(|metric| RunMetric {
            run_id: run_id.clone(),
            metric,
        }));
    }
    Ok(out)
}

async fn sample_run(
    c: &mut PgConnection,
    pk: i64,
    key: &str,
    steps: Option<(i64, i64)>,
    max: usize,
) -> R<Vec<Metric>> {
    let (lo, hi) = steps.unwrap_or((i64::MIN, i64::MAX));
    let shape: Option<(i64, i64, bool)> = sqlx::query_as(
        "SELECT min_step, step, dense FROM latest_metrics WHERE run_pk = $1 AND key = $2",
    )
    .bind(pk)
    .bind(key)
    .fetch_optional(&mut *c)
    .await?;
    let Some((min_step, max_step, dense)) = shape else {
        return Ok(Vec::new());
    };
    let rows = if dense {
        // One point per step from min_step to max_step: the i-th row of the range is at step
        // lo + i, so the samples are index seeks by step.
        let (lo, hi) = (lo.max(min_step), hi.min(max_step));
        if lo > hi {
            return Ok(Vec::new());
        }
        let wanted: Vec<i64> = bucket_starts(hi - lo + 1, max as i64)
            .into_iter()
            .map(|s| lo + s)
            .collect();
        sqlx::query(
            "SELECT DISTINCT ON (step) step, timestamp, value, is_nan FROM metrics
             WHERE run_pk = $1 AND key = $2 AND step = ANY($3)
             ORDER BY step, timestamp, value, is_nan",
        )
        .bind(pk)
        .bind(key)
        .bind(&wanted)
        .fetch_all(&mut *c)
        .await?
    } else {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM metrics WHERE run_pk = $1 AND key = $2 AND step BETWEEN $3 AND $4",
        )
        .bind(pk)
        .bind(key)
        .bind(lo)
        .bind(hi)
        .fetch_one(&mut *c)
        .await?;
        if n == 0 {
            return Ok(Vec::new());
        }
        // Row numbers are computed in the database; only the kept rows travel.
        sqlx::query(
            "SELECT step, timestamp, value, is_nan FROM (
                 SELECT step, timestamp, value, is_nan,
                        ROW_NUMBER() OVER (ORDER BY step, timestamp, value, is_nan) - 1 AS rn
                 FROM metrics WHERE run_pk = $1 AND key = $2 AND step BETWEEN $3 AND $4) s
             WHERE rn = ANY($5) ORDER BY rn",
        )
        .bind(pk)
        .bind(key)
        .bind(lo)
        .bind(hi)
        .bind(bucket_starts(n, max as i64))
        .fetch_all(&mut *c)
        .await?
    };
    let mut sampled = rows
        .iter()
        .map(|r| row_to_metric(key, r))
        .collect::<Result<Vec<_>, _>>()?;
    let last = sqlx::query(
        "SELECT step, timestamp, value, is_nan FROM metrics
         WHERE run_pk = $1 AND key = $2 AND step BETWEEN $3 AND $4
         ORDER BY step DESC, timestamp DESC, value DESC, is_nan DESC LIMIT 1",
    )
    .bind(pk)
    .bind(key)
    .bind(lo)
    .bind(hi)
    .fetch_optional(&mut *c)
    .await?;
    if let Some(row) = last {
        push_last_sample(&mut sampled, row_to_metric(key, &row)?, max);
    }
    Ok(sampled)
}
