//! Run queries: create, get, update, lifecycle, search, the log-batch write path, inputs/outputs.

use std::collections::{BTreeMap, HashMap};

use plumb_core::entities::{
    Dataset, LifecycleStage, Metric, ModelOutput, Page, Param, Run, RunInfo, Tag,
};
use plumb_core::{now_millis, Error};
use plumb_store::shared::{
    assemble_runs, new_run_id, new_run_name, param_conflict_error, run_info, stored_metric,
    Columns, RunParts, RUN_INFO_COLUMNS,
};
use plumb_store::sql::searches;
use plumb_store::{join_artifact_uri, Batch, NewRun, RunQuery, RunUpdate, RUN_NAME_TAG};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use crate::queries::{fetch_page, stored_to_value};
use crate::R;
use plumb_store::queries::experiments;
use plumb_store::queries::runs as shared_runs;

fn run_not_found(run_id: &str) -> Error {
    Error::not_found(format!("Run with id={run_id} not found"))
}

/// The items with repeated keys folded: first position, last value (what upserting them one by
/// one would leave). Keeps the request's order, which is the order tags and params list in.
pub(crate) fn last_values(items: &[Tag]) -> (Vec<&str>, Vec<&str>) {
    let mut keys: Vec<&str> = Vec::with_capacity(items.len());
    let mut values: Vec<&str> = Vec::with_capacity(items.len());
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(items.len());
    for t in items {
        match seen.get(t.key.as_str()) {
            Some(&i) => values[i] = &t.value,
            None => {
                seen.insert(&t.key, keys.len());
                keys.push(&t.key);
                values.push(&t.value);
            }
        }
    }
    (keys, values)
}

/// Upserts one run's tags in one statement (see [`upsert_tags_of`]).
async fn upsert_tags(c: &mut PgConnection, pk: i64, tags: &[Tag]) -> R<()> {
    upsert_tags_of(c, &[(pk, tags)]).await
}

/// Upserts the tags of several runs in one statement, later values of a (run, key) winning;
/// keeps each run's name in step with `mlflow.runName`. (Two writers upserting the same keys
/// of one run in opposite orders can deadlock; PostgreSQL detects it and the transaction is
/// retried.)
async fn upsert_tags_of(c: &mut PgConnection, runs: &[(i64, &[Tag])]) -> R<()> {
    let (mut pks, mut keys, mut values) = (Vec::new(), Vec::new(), Vec::new());
    let mut at: HashMap<(i64, &str), usize> = HashMap::new();
    for (pk, tags) in runs {
        for t in *tags {
            match at.get(&(*pk, t.key.as_str())) {
                Some(&i) => values[i] = t.value.as_str(),
                None => {
                    at.insert((*pk, t.key.as_str()), keys.len());
                    pks.push(*pk);
                    keys.push(t.key.as_str());
                    values.push(t.value.as_str());
                }
            }
        }
    }
    if keys.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO tags (run_pk, key, value)
         SELECT p, k, v FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[])
           WITH ORDINALITY AS t(p, k, v, i)
         ORDER BY i
         ON CONFLICT (run_pk, key) DO UPDATE SET value = EXCLUDED.value",
    )
    .bind(&pks)
    .bind(&keys)
    .bind(&values)
    .execute(&mut *c)
    .await?;
    for (i, key) in keys.iter().enumerate() {
        if *key == RUN_NAME_TAG {
            sqlx::query("UPDATE runs SET name = $1 WHERE run_pk = $2")
                .bind(values[i])
                .bind(pks[i])
                .execute(&mut *c)
                .await?;
        }
    }
    Ok(())
}

pub(crate) async fn create(c: &mut PgConnection, new: &NewRun) -> R<String> {
    let exp_num =
        experiments::require_active(&mut crate::conn::PgConn(&mut *c), &new.experiment_id).await?;
    let location: String =
        sqlx::query_scalar("SELECT artifact_location FROM experiments WHERE experiment_id = $1")
            .bind(exp_num)
            .fetch_one(&mut *c)
            .await?;
    let name = new_run_name(new)?;
    let run_id = new_run_id();
    let artifact_uri = join_artifact_uri(&location, &format!("{run_id}/artifacts"));
    let pk: i64 = sqlx::query_scalar(
        "INSERT INTO runs (run_uuid, experiment_id, name, user_id, status, start_time, end_time,
                           lifecycle_stage, artifact_uri, deleted_time)
         VALUES ($1, $2, $3, $4, 'RUNNING', $5, NULL, 'active', $6, NULL) RETURNING run_pk",
    )
    .bind(&run_id)
    .bind(exp_num)
    .bind(&name)
    .bind(&new.user_id)
    .bind(new.start_time.unwrap_or_else(now_millis))
    .bind(&artifact_uri)
    .fetch_one(&mut *c)
    .await?;
    let mut tags = new.tags.clone();
    tags.push(Tag::new(RUN_NAME_TAG, name));
    upsert_tags(c, pk, &tags).await?;
    Ok(run_id)
}

const INFO_COLUMNS: &str = RUN_INFO_COLUMNS;

/// Native columns for the shared row mappers.
struct Native<'r>(&'r PgRow);

impl Columns for Native<'_> {
    type Error = sqlx::Error;
    fn int(&self, i: usize) -> Result<i64, sqlx::Error> {
        self.0.try_get(i)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, sqlx::Error> {
        self.0.try_get(i)
    }
    fn text(&self, i: usize) -> Result<String, sqlx::Error> {
        self.0.try_get(i)
    }
}

fn row_to_info(r: &PgRow) -> Result<(i64, RunInfo), sqlx::Error> {
    run_info(&Native(r))
}

/// Runs `sql` (whose `$1` is the run row ids) and groups the mapped rows by the run row id in
/// the first column: one query per kind of child row for a whole page.
async fn grouped<T>(
    c: &mut PgConnection,
    sql: &str,
    pks: &[i64],
    map: impl Fn(&PgRow) -> Result<T, sqlx::Error>,
) -> R<HashMap<i64, Vec<T>>> {
    let mut out: HashMap<i64, Vec<T>> = HashMap::new();
    let rows = sqlx::query(sql).bind(pks).fetch_all(&mut *c).await?;
    for r in &rows {
        out.entry(r.try_get(0)?).or_default().push(map(r)?);
    }
    Ok(out)
}

fn kv_row(r: &PgRow) -> Result<Tag, sqlx::Error> {
    Ok(Tag::new(
        r.try_get::<String, _>(1)?,
        r.try_get::<String, _>(2)?,
    ))
}

/// Loads data, inputs and outputs of many runs with one query per kind (not per run).
async fn load_runs(c: &mut PgConnection, rows: Vec<(i64, RunInfo)>) -> R<Vec<Run>> {
    let pks: Vec<i64> = rows.iter().map(|(pk, _)| *pk).collect();
    let metrics = grouped(
        c,
        "SELECT run_pk, key, value, timestamp, step, is_nan FROM latest_metrics
         WHERE run_pk = ANY($1) ORDER BY run_pk, key",
        &pks,
        |r| {
            Ok(Metric::new(
                r.try_get::<String, _>(1)?,
                stored_to_value(r.try_get(2)?, r.try_get(5)?),
                r.try_get(3)?,
                r.try_get(4)?,
            ))
        },
    )
    .await?;
    let params = grouped(
        c,
        "SELECT run_pk, key, value FROM params WHERE run_pk = ANY($1) ORDER BY run_pk, seq",
        &pks,
        kv_row,
    )
    .await?;
    let tags = grouped(
        c,
        "SELECT run_pk, key, value FROM tags WHERE run_pk = ANY($1) ORDER BY run_pk, seq",
        &pks,
        kv_row,
    )
    .await?;
    let outputs = grouped(
        c,
        "SELECT run_pk, model_id, step FROM run_model_outputs WHERE run_pk = ANY($1)
         ORDER BY run_pk, model_id",
        &pks,
        |r| {
            Ok(ModelOutput {
                model_id: r.try_get(1)?,
                step: r.try_get(2)?,
            })
        },
    )
    .await?;
    let model_inputs = grouped(
        c,
        "SELECT run_pk, model_id FROM run_model_inputs WHERE run_pk = ANY($1)
         ORDER BY run_pk, model_id",
        &pks,
        |r| r.try_get::<String, _>(1),
    )
    .await?;
    let datasets = grouped(
        c,
        "SELECT ri.run_pk, d.dataset_pk, d.name, d.digest, d.source_type, d.source, d.schema, d.profile
         FROM run_inputs ri JOIN datasets d ON d.dataset_pk = ri.dataset_pk
         WHERE ri.run_pk = ANY($1) ORDER BY ri.run_pk, ri.seq",
        &pks,
        |r| {
            Ok((
                r.try_get::<i64, _>(1)?,
                Dataset {
                    name: r.try_get(2)?,
                    digest: r.try_get(3)?,
                    source_type: r.try_get(4)?,
                    source: r.try_get(5)?,
                    schema: r.try_get(6)?,
                    profile: r.try_get(7)?,
                },
            ))
        },
    )
    .await?;
    let input_tags = grouped(
        c,
        "SELECT run_pk, dataset_pk, key, value FROM input_tags WHERE run_pk = ANY($1)
         ORDER BY run_pk, dataset_pk, idx",
        &pks,
        |r| {
            Ok((
                r.try_get::<i64, _>(1)?,
                Tag::new(r.try_get::<String, _>(2)?, r.try_get::<String, _>(3)?),
            ))
        },
    )
    .await?;
    Ok(assemble_runs(
        rows,
        RunParts {
            metrics,
            params,
            tags,
            outputs,
            model_inputs,
            datasets,
            input_tags,
        },
    ))
}

async fn get_info(c: &mut PgConnection, run_id: &str) -> R<(i64, RunInfo)> {
    let row = sqlx::query(&format!(
        "SELECT {INFO_COLUMNS} FROM runs r WHERE r.run_uuid = $1"
    ))
    .bind(run_id)
    .fetch_optional(&mut *c)
    .await?
    .ok_or_else(|| run_not_found(run_id))?;
    Ok(row_to_info(&row)?)
}

pub(crate) async fn get(c: &mut PgConnection, run_id: &str) -> R<Run> {
    let row = get_info(c, run_id).await?;
    Ok(load_runs(c, vec![row])
        .await?
        .pop()
        .ok_or_else(|| run_not_found(run_id))?)
}

pub(crate) async fn update(c: &mut PgConnection, run_id: &str, u: &RunUpdate) -> R<RunInfo> {
    let pk = shared_runs::require_active(&mut crate::conn::PgConn(&mut *c), run_id).await?;
    sqlx::query(
        "UPDATE runs SET status = COALESCE($1, status), end_time = COALESCE($2, end_time)
         WHERE run_pk = $3",
    )
    .bind(u.status.map(|s| s.as_str()))
    .bind(u.end_time)
    .bind(pk)
    .execute(&mut *c)
    .await?;
    if let Some(name) = u.run_name.as_ref().filter(|n| !n.is_empty()) {
        upsert_tags(c, pk, &[Tag::new(RUN_NAME_TAG, name.clone())]).await?;
    }
    Ok(get_info(c, run_id).await?.1)
}

/// How a (run, key)'s latest point and series shape absorb a write's (`l`: the stored row,
/// `EXCLUDED`: the write's newest point and the shape of its new points).
macro_rules! latest_on_conflict {
    () => {
        " ON CONFLICT (run_pk, key) DO UPDATE SET
           dense = CASE WHEN EXCLUDED.points = 0 THEN l.dense
                        ELSE l.dense AND EXCLUDED.dense AND EXCLUDED.min_step = l.step + 1 END,
           points = l.points + EXCLUDED.points,
           min_step = LEAST(l.min_step, EXCLUDED.min_step),
           step = CASE WHEN (EXCLUDED.step, EXCLUDED.timestamp, EXCLUDED.value)
                            > (l.step, l.timestamp, l.value) THEN EXCLUDED.step ELSE l.step END,
           timestamp = CASE WHEN (EXCLUDED.step, EXCLUDED.timestamp, EXCLUDED.value)
                            > (l.step, l.timestamp, l.value) THEN EXCLUDED.timestamp ELSE l.timestamp END,
           is_nan = CASE WHEN (EXCLUDED.step, EXCLUDED.timestamp, EXCLUDED.value)
                            > (l.step, l.timestamp, l.value) THEN EXCLUDED.is_nan ELSE l.is_nan END,
           value = CASE WHEN (EXCLUDED.step, EXCLUDED.timestamp, EXCLUDED.value)
                            > (l.step, l.timestamp, l.value) THEN EXCLUDED.value ELSE l.value END "
    };
}

/// One request's share of a log-batch group: the (active) run's row id and what it logs.
pub(crate) struct RunBatch<'a> {
    pub(crate) pk: i64,
    pub(crate) run_id: &'a str,
    pub(crate) batch: &'a Batch,
}

/// The hot write path for one request, in the caller's transaction.
pub(crate) async fn log_batch(c: &mut PgConnection, run_id: &str, batch: &Batch) -> R<()> {
    let pk = shared_runs::require_active(&mut crate::conn::PgConn(&mut *c), run_id).await?;
    log_batches(c, &[RunBatch { pk, run_id, batch }]).await
}

/// Several log-batch requests of active runs written together, as if one after the other:
/// params (immutable), metrics (+ latest), tags, each kind as one multi-row statement for all
/// requests. Points and latest-metric rows are written in (run, key) order, so concurrent
/// writers lock them in the same order. Fails as a whole: the caller decides what then.
pub(crate) async fn log_batches(c: &mut PgConnection, batches: &[RunBatch<'_>]) -> R<()> {
    if batches.iter().any(|b| !b.batch.params.is_empty()) {
        log_params(c, batches).await?;
    }
    let points: Vec<RunPoints<'_>> = batches
        .iter()
        .filter(|b| !b.batch.metrics.is_empty())
        .map(|b| RunPoints {
            pk: b.pk,
            run_id: b.run_id,
            metrics: &b.batch.metrics,
        })
        .collect();
    if !points.is_empty() {
        log_metrics(c, &points).await?;
    }
    let tags: Vec<(i64, &[Tag])> = batches
        .iter()
        .filter(|b| !b.batch.tags.is_empty())
        .map(|b| (b.pk, b.batch.tags.as_slice()))
        .collect();
    upsert_tags_of(c, &tags).await
}

/// Params are immutable: logging the same value again is fine, a different one is refused (the
/// first request of `batches` holding a conflict names it). The insert goes first, so a
/// concurrent writer's value is seen (after it committed) and compared.
async fn log_params(c: &mut PgConnection, batches: &[RunBatch<'_>]) -> R<()> {
    let (mut pks, mut keys, mut values) = (Vec::new(), Vec::new(), Vec::new());
    for b in batches {
        for p in &b.batch.params {
            pks.push(b.pk);
            keys.push(p.key.as_str());
            values.push(p.value.as_str());
        }
    }
    sqlx::query(
        "INSERT INTO params (run_pk, key, value)
         SELECT p, k, v FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[])
           WITH ORDINALITY AS t(p, k, v, i)
         ORDER BY i
         ON CONFLICT (run_pk, key) DO NOTHING",
    )
    .bind(&pks)
    .bind(&keys)
    .bind(&values)
    .execute(&mut *c)
    .await?;
    let mut stored: HashMap<i64, HashMap<String, String>> = HashMap::new();
    let rows = sqlx::query_as::<_, (i64, String, String)>(
        "SELECT run_pk, key, value FROM params
         WHERE (run_pk, key) IN (SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[]))",
    )
    .bind(&pks)
    .bind(&keys)
    .fetch_all(&mut *c)
    .await?;
    for (pk, key, value) in rows {
        stored.entry(pk).or_default().insert(key, value);
    }
    for b in batches {
        let conflicts: Vec<(&Param, String)> = b
            .batch
            .params
            .iter()
            .filter_map(|p| {
                stored
                    .get(&b.pk)
                    .and_then(|run| run.get(&p.key))
                    .filter(|old| **old != p.value)
                    .map(|old| (p, old.clone()))
            })
            .collect();
        if !conflicts.is_empty() {
            return Err(param_conflict_error(b.run_id, &conflicts, b.batch.params.len()).into());
        }
    }
    Ok(())
}

/// Binds points as six arrays (run, key, step, timestamp, value, is_nan), the columns of an
/// `UNNEST` of points.
macro_rules! bind_points {
    ($query:expr, $points:expr) => {
        $query
            .bind($points.iter().map(|p| p.run).collect::<Vec<_>>())
            .bind($points.iter().map(|p| p.key).collect::<Vec<_>>())
            .bind($points.iter().map(|p| p.step).collect::<Vec<_>>())
            .bind($points.iter().map(|p| p.timestamp).collect::<Vec<_>>())
            .bind($points.iter().map(|p| p.value).collect::<Vec<_>>())
            .bind($points.iter().map(|p| p.is_nan).collect::<Vec<_>>())
    };
}

/// A point as stored (NaN as 0 with `is_nan`), with the run it belongs to as `R` (a row id, or
/// a run id when the statement looks the runs up itself).
struct Point<'a, R> {
    run: R,
    key: &'a str,
    step: i64,
    timestamp: i64,
    value: f64,
    is_nan: i16,
}

/// The points of several runs' metrics, sorted by (run, key, step, timestamp, value): the order
/// rows are inserted and locked in, and within one series the newest last.
fn sorted_points<'a, R: Ord + Copy>(
    runs: impl Iterator<Item = (R, &'a [Metric])>,
) -> Vec<Point<'a, R>> {
    let mut points: Vec<Point<'a, R>> = runs
        .flat_map(|(run, metrics)| {
            metrics.iter().map(move |m| {
                let (value, is_nan) = stored_metric(m.value);
                Point {
                    run,
                    key: &m.key,
                    step: m.step,
                    timestamp: m.timestamp,
                    value,
                    is_nan: i16::from(is_nan),
                }
            })
        })
        .collect();
    points.sort_by(|a, b| {
        (a.run, a.key, a.step, a.timestamp)
            .cmp(&(b.run, b.key, b.step, b.timestamp))
            .then(a.value.total_cmp(&b.value))
            .then(a.is_nan.cmp(&b.is_nan))
    });
    points
}

/// One run's points in a metrics write.
struct RunPoints<'a> {
    pk: i64,
    run_id: &'a str,
    metrics: &'a [Metric],
}

/// Inserts the points (identical ones are stored once) and updates each (run, key)'s latest
/// point and series shape (see the `latest_metrics` table) from what was actually inserted.
async fn log_metrics(c: &mut PgConnection, runs: &[RunPoints<'_>]) -> R<()> {
    let points = sorted_points(runs.iter().map(|r| (r.pk, r.metrics)));
    let inserted: Vec<(i64, String, i64)> = bind_points!(
        sqlx::query_as(
            "INSERT INTO metrics (run_pk, key, step, timestamp, value, is_nan)
         SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::BIGINT[], $4::BIGINT[],
                              $5::FLOAT8[], $6::INT2[])
         ON CONFLICT DO NOTHING RETURNING run_pk, key, step",
        ),
        points
    )
    .fetch_all(&mut *c)
    .await?;

    // Per (run, key): the greatest (step, timestamp, value) of the batch, and the shape of the
    // points that were new: how many, the lowest step, and whether they are one per
    // consecutive step.
    struct Series {
        newest: (i64, i64, f64, i16),
        new_steps: Vec<i64>,
    }
    let mut series: BTreeMap<(i64, &str), Series> = BTreeMap::new();
    for p in &points {
        let s = series.entry((p.run, p.key)).or_insert(Series {
            newest: (p.step, p.timestamp, p.value, p.is_nan),
            new_steps: Vec::new(),
        });
        let (step, ts, value, _) = s.newest;
        if (p.step, p.timestamp) > (step, ts)
            || ((p.step, p.timestamp) == (step, ts) && p.value > value)
        {
            s.newest = (p.step, p.timestamp, p.value, p.is_nan);
        }
    }
    for (pk, key, step) in &inserted {
        if let Some(s) = series.get_mut(&(*pk, key.as_str())) {
            s.new_steps.push(*step);
        }
    }
    let mut pks = Vec::with_capacity(series.len());
    let mut keys = Vec::with_capacity(series.len());
    let (mut steps, mut timestamps, mut values, mut nans) = (vec![], vec![], vec![], vec![]);
    let (mut counts, mut min_steps, mut dense) = (vec![], vec![], vec![]);
    for ((pk, key), mut s) in series {
        s.new_steps.sort_unstable();
        pks.push(pk);
        keys.push(key);
        steps.push(s.newest.0);
        timestamps.push(s.newest.1);
        values.push(s.newest.2);
        nans.push(s.newest.3);
        counts.push(s.new_steps.len() as i64);
        min_steps.push(s.new_steps.first().copied().unwrap_or(s.newest.0));
        dense.push(s.new_steps.windows(2).all(|w| w[1] == w[0] + 1));
    }
    sqlx::query(concat!(
        "INSERT INTO latest_metrics AS l
             (run_pk, key, step, timestamp, value, is_nan, points, min_step, dense)
         SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::BIGINT[], $4::BIGINT[], $5::FLOAT8[],
                              $6::INT2[], $7::BIGINT[], $8::BIGINT[], $9::BOOL[])
         ",
        latest_on_conflict!()
    ))
    .bind(&pks)
    .bind(&keys)
    .bind(&steps)
    .bind(&timestamps)
    .bind(&values)
    .bind(&nans)
    .bind(&counts)
    .bind(&min_steps)
    .bind(&dense)
    .execute(&mut *c)
    .await?;

    for r in runs {
        log_model_metrics(c, r.run_id, r.metrics).await?;
    }
    Ok(())
}

/// What [`log_points_by_id`] wrote: the transaction's id and the runs it found active.
pub(crate) struct PointsWritten {
    pub(crate) txid: i64,
    pub(crate) active: Vec<String>,
}

/// The metrics-only write of several requests as one statement, runs named by id: looks the
/// runs up (only active ones take points), inserts the points, updates latest metrics, and
/// returns the transaction's id. Same rules as [`log_metrics`], in one round trip instead of
/// three; the caller answers the requests whose run is not in `active`.
pub(crate) async fn log_points_by_id(
    c: &mut PgConnection,
    requests: &[(&str, &[Metric])],
) -> R<PointsWritten> {
    let mut points = sorted_points(requests.iter().map(|(run, metrics)| (*run, *metrics)));
    // Identical points are stored once; the statement inserts points above a series' latest
    // step without a conflict check (none of them can be stored yet), so it gets none twice.
    points.dedup_by(|a, b| {
        (a.run, a.key, a.step, a.timestamp, a.is_nan)
            == (b.run, b.key, b.step, b.timestamp, b.is_nan)
            && a.value == b.value
    });
    // The greatest (step, timestamp, value) per (run, key); the points sort by it within one.
    let mut newest: Vec<&Point<'_, &str>> = Vec::new();
    for p in &points {
        match newest.last_mut() {
            Some(n) if (n.run, n.key) == (p.run, p.key) => {
                if (p.step, p.timestamp) > (n.step, n.timestamp)
                    || ((p.step, p.timestamp) == (n.step, n.timestamp) && p.value > n.value)
                {
                    *n = p;
                }
            }
            _ => newest.push(p),
        }
    }
    let mut ids: Vec<&str> = requests.iter().map(|(run, _)| *run).collect();
    ids.sort_unstable();
    ids.dedup();
    let query = sqlx::query_as(concat!(
        "WITH r AS (
           SELECT run_uuid, run_pk FROM runs
           WHERE run_uuid = ANY($1::TEXT[]) AND lifecycle_stage = 'active'
         ), tops AS (
           SELECT r.run_pk, x.k, l.step AS top
           FROM UNNEST($8::TEXT[], $9::TEXT[]) AS x(id, k)
           JOIN r ON r.run_uuid = x.id
           LEFT JOIN latest_metrics l ON l.run_pk = r.run_pk AND l.key = x.k
         ), p AS (
           SELECT t.run_pk, p.k, p.s, p.t, p.v, p.n, p.i, t.top
           FROM UNNEST($2::TEXT[], $3::TEXT[], $4::BIGINT[], $5::BIGINT[], $6::FLOAT8[],
                       $7::INT2[]) WITH ORDINALITY AS p(id, k, s, t, v, n, i)
           JOIN r ON r.run_uuid = p.id
           JOIN tops t ON t.run_pk = r.run_pk AND t.k = p.k
         ), fresh AS (
           INSERT INTO metrics (run_pk, key, step, timestamp, value, is_nan)
           SELECT run_pk, k, s, t, v, n FROM p WHERE top IS NULL OR s > top ORDER BY i
           RETURNING run_pk, key, step
         ), old AS (
           INSERT INTO metrics (run_pk, key, step, timestamp, value, is_nan)
           SELECT run_pk, k, s, t, v, n FROM p WHERE s <= top ORDER BY i
           ON CONFLICT DO NOTHING RETURNING run_pk, key, step
         ), shape AS (
           SELECT run_pk, key, COUNT(*) AS c, MIN(step) AS lo, MAX(step) AS hi,
                  COUNT(DISTINCT step) AS d
           FROM (SELECT * FROM fresh UNION ALL SELECT * FROM old) AS ins
           GROUP BY run_pk, key
         ), up AS (
           INSERT INTO latest_metrics AS l
               (run_pk, key, step, timestamp, value, is_nan, points, min_step, dense)
           SELECT r.run_pk, x.k, x.s, x.t, x.v, x.n, COALESCE(sh.c, 0), COALESCE(sh.lo, x.s),
                  COALESCE(sh.c = sh.d AND sh.hi - sh.lo + 1 = sh.c, TRUE)
           FROM UNNEST($8::TEXT[], $9::TEXT[], $10::BIGINT[], $11::BIGINT[], $12::FLOAT8[],
                       $13::INT2[]) WITH ORDINALITY AS x(id, k, s, t, v, n, i)
           JOIN r ON r.run_uuid = x.id
           LEFT JOIN shape sh ON sh.run_pk = r.run_pk AND sh.key = x.k
           ORDER BY x.i
           ",
        latest_on_conflict!(),
        "
         )
         SELECT txid_current(), ARRAY(SELECT run_uuid FROM r)"
    ))
    .bind(&ids);
    let (txid, active): (i64, Vec<String>) = bind_points!(bind_points!(query, points), newest)
        .fetch_one(&mut *c)
        .await?;
    for (run, metrics) in requests {
        if active.iter().any(|a| a == run) {
            log_model_metrics(c, run, metrics).await?;
        }
    }
    Ok(PointsWritten { txid, active })
}

/// The points that name a logged model are also that model's metrics.
async fn log_model_metrics(c: &mut PgConnection, run_id: &str, metrics: &[Metric]) -> R<()> {
    for m in metrics {
        let Some(model_id) = m.model_id.as_deref().filter(|s| !s.is_empty()) else {
            continue;
        };
        let (value, is_nan) = stored_metric(m.value);
        sqlx::query(
            "INSERT INTO logged_model_metrics
             (model_id, key, timestamp, step, run_id, value, is_nan, dataset_name, dataset_digest)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (model_id, key, timestamp, step, run_id) DO UPDATE SET
               value = EXCLUDED.value, is_nan = EXCLUDED.is_nan,
               dataset_name = EXCLUDED.dataset_name, dataset_digest = EXCLUDED.dataset_digest",
        )
        .bind(model_id)
        .bind(&m.key)
        .bind(m.timestamp)
        .bind(m.step)
        .bind(run_id)
        .bind(value)
        .bind(i16::from(is_nan))
        .bind(&m.dataset_name)
        .bind(&m.dataset_digest)
        .execute(&mut *c)
        .await?;
    }
    Ok(())
}

/// Points of an imported run (any stage).
pub(crate) async fn import_points(c: &mut PgConnection, run_id: &str, points: &[Metric]) -> R<()> {
    let (pk, _) = shared_runs::lookup(&mut crate::conn::PgConn(&mut *c), run_id).await?;
    if points.is_empty() {
        return Ok(());
    }
    log_metrics(
        c,
        &[RunPoints {
            pk,
            run_id,
            metrics: points,
        }],
    )
    .await
}

/// A run with its original id, info, params and tags; `false` when the id exists.
pub(crate) async fn import_run(c: &mut PgConnection, run: &Run) -> R<bool> {
    let i = &run.info;
    let exp: i64 = i
        .experiment_id
        .parse()
        .map_err(|_| Error::invalid(format!("Invalid experiment ID '{}'", i.experiment_id)))?;
    let pk: Option<i64> = sqlx::query_scalar(
        "INSERT INTO runs (run_uuid, experiment_id, name, user_id, status, start_time, end_time,
                           lifecycle_stage, artifact_uri, deleted_time)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (run_uuid) DO NOTHING RETURNING run_pk",
    )
    .bind(&i.run_id)
    .bind(exp)
    .bind(&i.run_name)
    .bind(&i.user_id)
    .bind(i.status.as_str())
    .bind(i.start_time)
    .bind(i.end_time)
    .bind(i.lifecycle_stage.as_str())
    .bind(&i.artifact_uri)
    .bind((i.lifecycle_stage == LifecycleStage::Deleted).then(now_millis))
    .fetch_optional(&mut *c)
    .await?;
    let Some(pk) = pk else {
        return Ok(false);
    };
    if !run.data.params.is_empty() {
        let (keys, values) = last_values(&run.data.params);
        sqlx::query(
            "INSERT INTO params (run_pk, key, value)
             SELECT $1, k, v FROM UNNEST($2::TEXT[], $3::TEXT[]) WITH ORDINALITY AS t(k, v, i)
             ORDER BY i ON CONFLICT DO NOTHING",
        )
        .bind(pk)
        .bind(&keys)
        .bind(&values)
        .execute(&mut *c)
        .await?;
    }
    upsert_tags(c, pk, &run.data.tags).await?;
    let mut shared = crate::conn::PgConn(&mut *c);
    shared_runs::insert_inputs(
        &mut shared,
        pk,
        &run.inputs.dataset_inputs,
        &run.inputs.model_inputs,
    )
    .await?;
    shared_runs::insert_outputs(&mut shared, pk, &run.outputs).await?;
    Ok(true)
}

pub(crate) async fn search(c: &mut PgConnection, q: &RunQuery) -> R<Page<Run>> {
    let Some((sql, binds)) = searches::runs(q, INFO_COLUMNS)? else {
        return Ok(Page {
            items: Vec::new(),
            next_page_token: None,
        });
    };
    let (rows, next_page_token) =
        fetch_page(c, &sql, binds, q.max_results, q.offset, row_to_info).await?;
    Ok(Page {
        items: load_runs(c, rows).await?,
        next_page_token,
    })
}

/// Run ids to row ids, skipping unknown ones.
pub(crate) async fn pks(c: &mut PgConnection, run_ids: &[String]) -> R<HashMap<String, i64>> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT run_uuid, run_pk FROM runs WHERE run_uuid = ANY($1)")
            .bind(run_ids)
            .fetch_all(&mut *c)
            .await?;
    Ok(rows.into_iter().collect())
}
