//! Run queries: create, get, update, lifecycle, search, the log-batch write path, inputs/outputs.

use std::collections::HashMap;

use plumb_core::entities::{
    Dataset, LifecycleStage, Metric, ModelOutput, Param, Run, RunInfo, Tag,
};
use plumb_core::{now_millis, Error};

use crate::error::Result;
use plumb_store::shared::{
    assemble_runs, new_run_id, new_run_name, param_conflict_error, run_info, stored_metric,
    Columns, RunParts, RUN_INFO_COLUMNS,
};
use plumb_store::sql::searches::{self, RunSearch};
use plumb_store::{join_artifact_uri, Batch, NewRun, RunQuery, RunUpdate, RUN_NAME_TAG};
use rusqlite::types::Value as Sql;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

use crate::error::E;
use crate::render::{fetch_page, to_sql};
use plumb_store::queries::experiments;
use plumb_store::queries::runs as shared_runs;

use crate::conn::SqliteConn;

fn run_not_found(run_id: &str) -> Error {
    Error::not_found(format!("Run with id={run_id} not found"))
}

fn upsert_tag(conn: &Connection, pk: i64, tag: &Tag) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO tags (run_pk, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (run_pk, key) DO UPDATE SET value = excluded.value",
    )
    .and_then(|mut s| s.execute(params![pk, tag.key, tag.value]))?;
    if tag.key == RUN_NAME_TAG {
        conn.prepare_cached("UPDATE runs SET name = ?1 WHERE run_pk = ?2")
            .and_then(|mut s| s.execute(params![tag.value, pk]))?;
    }
    Ok(())
}

pub(crate) fn create(conn: &Connection, new: NewRun) -> Result<String> {
    let exp_num = crate::conn::sync(experiments::require_active(
        &mut crate::conn::SqliteConn(conn),
        &new.experiment_id,
    ))?;
    let location: String = conn.query_row(
        "SELECT artifact_location FROM experiments WHERE experiment_id = ?1",
        [exp_num],
        |r| r.get(0),
    )?;
    let name = new_run_name(&new)?;
    let run_id = new_run_id();
    let artifact_uri = join_artifact_uri(&location, &format!("{run_id}/artifacts"));
    conn.execute(
        "INSERT INTO runs (run_uuid, experiment_id, name, user_id, status, start_time, end_time,
                           lifecycle_stage, artifact_uri, deleted_time)
         VALUES (?1, ?2, ?3, ?4, 'RUNNING', ?5, NULL, 'active', ?6, NULL)",
        params![
            run_id,
            exp_num,
            name,
            new.user_id,
            new.start_time.unwrap_or_else(now_millis),
            artifact_uri
        ],
    )?;
    let pk = conn.last_insert_rowid();
    for tag in &new.tags {
        upsert_tag(conn, pk, tag)?;
    }
    upsert_tag(conn, pk, &Tag::new(RUN_NAME_TAG, name))?;
    Ok(run_id)
}

const INFO_COLUMNS: &str = RUN_INFO_COLUMNS;

/// Native columns for the shared row mappers.
struct Native<'a, 'r>(&'a rusqlite::Row<'r>);

impl Columns for Native<'_, '_> {
    type Error = rusqlite::Error;
    fn int(&self, i: usize) -> rusqlite::Result<i64> {
        self.0.get(i)
    }
    fn opt_int(&self, i: usize) -> rusqlite::Result<Option<i64>> {
        self.0.get(i)
    }
    fn text(&self, i: usize) -> rusqlite::Result<String> {
        self.0.get(i)
    }
}

fn row_to_info(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, RunInfo)> {
    run_info(&Native(r))
}

fn stored_to_value(value: f64, is_nan: bool) -> f64 {
    if is_nan {
        f64::NAN
    } else {
        value
    }
}

/// [`per_id`](crate::queries::per_id) keyed on the run row id in the first column.
fn grouped<T>(
    conn: &Connection,
    sql: &str,
    pks: &[i64],
    map: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<HashMap<i64, Vec<T>>> {
    crate::queries::per_id(conn, sql, pks, |r| r.get(0), map)
}

/// [`grouped`], each run's rows then put in order by `cmp` (a join over `rarray` promises no
/// order; the rows mostly come out of their index already in it, which the sort then only
/// checks).
fn grouped_sorted<T>(
    conn: &Connection,
    sql: &str,
    pks: &[i64],
    map: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    cmp: impl Fn(&T, &T) -> std::cmp::Ordering,
) -> Result<HashMap<i64, Vec<T>>> {
    let mut rows = grouped(conn, sql, pks, map)?;
    for items in rows.values_mut() {
        items.sort_by(&cmp);
    }
    Ok(rows)
}

/// [`grouped_sorted`] by the first of each pair, which is then dropped.
fn grouped_by_first<O: Ord, T>(
    conn: &Connection,
    sql: &str,
    pks: &[i64],
    map: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<(O, T)>,
) -> Result<HashMap<i64, Vec<T>>> {
    let rows = grouped_sorted(conn, sql, pks, map, |a, b| a.0.cmp(&b.0))?;
    Ok(rows
        .into_iter()
        .map(|(pk, items)| (pk, items.into_iter().map(|(_, item)| item).collect()))
        .collect())
}

fn kv_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Tag> {
    Ok(Tag::new(r.get::<_, String>(1)?, r.get::<_, String>(2)?))
}

/// Loads data, inputs and outputs of many runs with one query per kind (not per run).
///
/// Params and tags list in insertion order (their rowid): that order is put right here, not by
/// `ORDER BY run_pk, rowid`, which SQLite sorted again in a temporary B-tree (a 1000-run search
/// page's params took 8.2 ms in the `sqlite3` shell with that sort, 3.4 ms without).
pub(crate) fn load_runs(conn: &Connection, rows: Vec<(i64, RunInfo)>) -> Result<Vec<Run>> {
    let pks: Vec<i64> = rows.iter().map(|(pk, _)| *pk).collect();
    let metrics = grouped_sorted(
        conn,
        "SELECT t.run_pk, t.key, t.value, t.timestamp, t.step, t.is_nan
         FROM rarray(?1) ids CROSS JOIN latest_metrics t ON t.run_pk = ids.value",
        &pks,
        |r| {
            Ok(Metric::new(
                r.get::<_, String>(1)?,
                stored_to_value(r.get(2)?, r.get(5)?),
                r.get(3)?,
                r.get(4)?,
            ))
        },
        |a, b| a.key.cmp(&b.key),
    )?;
    let params = grouped_by_first(
        conn,
        "SELECT t.run_pk, t.key, t.value, t.rowid
         FROM rarray(?1) ids CROSS JOIN params t ON t.run_pk = ids.value",
        &pks,
        |r| Ok((r.get::<_, i64>(3)?, kv_row(r)?)),
    )?;
    let tags = grouped_by_first(
        conn,
        "SELECT t.run_pk, t.key, t.value, t.rowid
         FROM rarray(?1) ids CROSS JOIN tags t ON t.run_pk = ids.value",
        &pks,
        |r| Ok((r.get::<_, i64>(3)?, kv_row(r)?)),
    )?;
    let outputs = grouped_sorted(
        conn,
        "SELECT t.run_pk, t.model_id, t.step
         FROM rarray(?1) ids CROSS JOIN run_model_outputs t ON t.run_pk = ids.value",
        &pks,
        |r| {
            Ok(ModelOutput {
                model_id: r.get(1)?,
                step: r.get(2)?,
            })
        },
        |a, b| a.model_id.cmp(&b.model_id),
    )?;
    let model_inputs = grouped_sorted(
        conn,
        "SELECT t.run_pk, t.model_id
         FROM rarray(?1) ids CROSS JOIN run_model_inputs t ON t.run_pk = ids.value",
        &pks,
        |r| r.get::<_, String>(1),
        |a, b| a.cmp(b),
    )?;
    let datasets = grouped_by_first(
        conn,
        "SELECT ri.run_pk, d.dataset_pk, d.name, d.digest, d.source_type, d.source, d.schema,
                d.profile, ri.seq
         FROM rarray(?1) ids CROSS JOIN run_inputs ri ON ri.run_pk = ids.value
         JOIN datasets d ON d.dataset_pk = ri.dataset_pk",
        &pks,
        |r| {
            Ok((
                r.get::<_, i64>(8)?,
                (
                    r.get::<_, i64>(1)?,
                    Dataset {
                        name: r.get(2)?,
                        digest: r.get(3)?,
                        source_type: r.get(4)?,
                        source: r.get(5)?,
                        schema: r.get(6)?,
                        profile: r.get(7)?,
                    },
                ),
            ))
        },
    )?;
    let input_tags = grouped_by_first(
        conn,
        "SELECT t.run_pk, t.dataset_pk, t.key, t.value, t.idx
         FROM rarray(?1) ids CROSS JOIN input_tags t ON t.run_pk = ids.value",
        &pks,
        |r| {
            let dataset: i64 = r.get(1)?;
            let tag = Tag::new(r.get::<_, String>(2)?, r.get::<_, String>(3)?);
            Ok(((dataset, r.get::<_, i64>(4)?), (dataset, tag)))
        },
    )?;
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

fn get_info(conn: &Connection, run_id: &str) -> Result<(i64, RunInfo)> {
    conn.prepare_cached(&format!(
        "SELECT {INFO_COLUMNS} FROM runs r WHERE r.run_uuid = ?1"
    ))
    .and_then(|mut s| s.query_row([run_id], row_to_info).optional())?
    .ok_or_else(|| run_not_found(run_id).into())
}

pub(crate) fn get(conn: &Connection, run_id: &str) -> Result<Run> {
    let row = get_info(conn, run_id)?;
    load_runs(conn, vec![row])?
        .pop()
        .ok_or_else(|| run_not_found(run_id).into())
}

pub(crate) fn update(conn: &Connection, run_id: &str, u: &RunUpdate) -> Result<RunInfo> {
    let pk = crate::conn::sync(shared_runs::require_active(&mut SqliteConn(conn), run_id))?;
    if let Some(status) = u.status {
        conn.execute(
            "UPDATE runs SET status = ?1 WHERE run_pk = ?2",
            params![status.as_str(), pk],
        )?;
    }
    if let Some(end) = u.end_time {
        conn.execute(
            "UPDATE runs SET end_time = ?1 WHERE run_pk = ?2",
            params![end, pk],
        )?;
    }
    if let Some(name) = u.run_name.as_ref().filter(|n| !n.is_empty()) {
        upsert_tag(conn, pk, &Tag::new(RUN_NAME_TAG, name.clone()))?;
    }
    Ok(get_info(conn, run_id)?.1)
}

/// What one batch adds to one metric key.
struct Series<'a> {
    key: &'a str,
    /// (step, timestamp, value, is_nan) of the greatest point.
    newest: (i64, i64, f64, bool),
    new_points: i64,
    min_new_step: Option<i64>,
    last_new_step: Option<i64>,
    /// The new points so far have consecutive steps, one each.
    dense: bool,
}

impl<'a> Series<'a> {
    fn new(key: &'a str, step: i64, timestamp: i64, value: f64, is_nan: bool) -> Self {
        Self {
            key,
            newest: (step, timestamp, value, is_nan),
            new_points: 0,
            min_new_step: None,
            last_new_step: None,
            dense: true,
        }
    }

    fn add(&mut self, step: i64, timestamp: i64, value: f64, is_nan: bool, inserted: bool) {
        if (step, timestamp, value) > (self.newest.0, self.newest.1, self.newest.2) {
            self.newest = (step, timestamp, value, is_nan);
        }
        if !inserted {
            return;
        }
        if let Some(last) = self.last_new_step {
            self.dense &= step == last + 1;
        }
        self.last_new_step = Some(step);
        self.min_new_step = Some(self.min_new_step.map_or(step, |m| m.min(step)));
        self.new_points += 1;
    }
}

/// The hot write path: params (immutable), metrics (+ latest), tags, in the caller's transaction.
pub(crate) fn log_batch(conn: &Connection, run_id: &str, batch: &Batch) -> Result<()> {
    let pk = crate::conn::sync(shared_runs::require_active(&mut SqliteConn(conn), run_id))?;
    if !batch.params.is_empty() {
        check_params(conn, pk, run_id, &batch.params)?;
        let mut insert = conn.prepare_cached(
            "INSERT OR IGNORE INTO params (run_pk, key, value) VALUES (?1, ?2, ?3)",
        )?;
        for p in &batch.params {
            insert.execute(params![pk, p.key, p.value])?;
        }
    }
    if !batch.metrics.is_empty() {
        log_metrics(conn, pk, run_id, &batch.metrics)?;
    }
    for tag in &batch.tags {
        upsert_tag(conn, pk, tag)?;
    }
    Ok(())
}

/// Points inserted by one multi-row statement, largest first; what is left goes one by one.
/// (Each statement execution opens a cursor and resets a VM: per point, that was a sixth of the
/// writer's time in a 1000-point batch.)
const POINT_CHUNKS: [usize; 3] = [256, 64, 16];

/// `INSERT OR IGNORE` of `rows` points (six parameters each). Built per call: a few per batch,
/// and the statement cache is keyed on this text.
fn insert_points_sql(rows: usize) -> String {
    let mut sql = String::with_capacity(100 + rows * 14);
    sql.push_str(
        "INSERT OR IGNORE INTO metrics (run_pk, key, step, timestamp, value, is_nan) VALUES ",
    );
    for i in 0..rows {
        sql.push_str(if i == 0 {
            "(?,?,?,?,?,?)"
        } else {
            ",(?,?,?,?,?,?)"
        });
    }
    sql
}

/// Inserts `points` (of the run `pk`) with one statement; false (and nothing inserted) when any
/// of them was already stored or repeated, so the caller can tell which ones are new.
fn insert_chunk(conn: &Connection, pk: i64, points: &[(&Metric, f64, bool)]) -> Result<bool> {
    let mut stmt = conn.prepare_cached(&insert_points_sql(points.len()))?;
    for (i, (m, value, is_nan)) in points.iter().enumerate() {
        let at = i * 6;
        stmt.raw_bind_parameter(at + 1, pk)?;
        stmt.raw_bind_parameter(at + 2, m.key.as_str())?;
        stmt.raw_bind_parameter(at + 3, m.step)?;
        stmt.raw_bind_parameter(at + 4, m.timestamp)?;
        stmt.raw_bind_parameter(at + 5, *value)?;
        stmt.raw_bind_parameter(at + 6, *is_nan)?;
    }
    let run = |sql: &str| {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.execute([]).map(|_| ()))
            .map_err(E::from)
    };
    run("SAVEPOINT points")?;
    let inserted = stmt.raw_execute()?;
    if inserted == points.len() {
        run("RELEASE points")?;
        return Ok(true);
    }
    run("ROLLBACK TO points")?;
    run("RELEASE points")?;
    Ok(false)
}

/// Inserts each point; whether each was new (not stored before, not repeated earlier).
fn insert_points(conn: &Connection, pk: i64, points: &[(&Metric, f64, bool)]) -> Result<Vec<bool>> {
    let mut one = conn.prepare_cached(&insert_points_sql(1))?;
    let mut one_by_one = |points: &[(&Metric, f64, bool)], out: &mut Vec<bool>| -> Result<()> {
        for (m, value, is_nan) in points {
            let n = one.execute(params![pk, m.key, m.step, m.timestamp, value, is_nan])?;
            out.push(n == 1);
        }
        Ok(())
    };
    let mut new = Vec::with_capacity(points.len());
    let mut rest = points;
    for size in POINT_CHUNKS {
        while rest.len() >= size {
            let (chunk, tail) = rest.split_at(size);
            if insert_chunk(conn, pk, chunk)? {
                new.resize(new.len() + size, true);
            } else {
                one_by_one(chunk, &mut new)?;
            }
            rest = tail;
        }
    }
    one_by_one(rest, &mut new)?;
    Ok(new)
}

/// Stores points (identical ones once) and keeps each key's latest point and series shape.
fn log_metrics(conn: &Connection, pk: i64, run_id: &str, metrics: &[Metric]) -> Result<()> {
    // One upsert per key: the newest point (if newer than the stored one) and the series'
    // shape (see the latest_metrics table).
    let mut latest = conn
        .prepare_cached(
            "INSERT INTO latest_metrics
                 (run_pk, key, step, timestamp, value, is_nan, points, min_step, dense)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (run_pk, key) DO UPDATE SET
               dense = CASE WHEN excluded.points = 0 THEN latest_metrics.dense
                            ELSE latest_metrics.dense AND excluded.dense
                                 AND excluded.min_step = latest_metrics.step + 1 END,
               points = latest_metrics.points + excluded.points,
               min_step = MIN(latest_metrics.min_step, excluded.min_step),
               step = CASE WHEN (excluded.step, excluded.timestamp, excluded.value)
                                > (latest_metrics.step, latest_metrics.timestamp, latest_metrics.value)
                           THEN excluded.step ELSE latest_metrics.step END,
               timestamp = CASE WHEN (excluded.step, excluded.timestamp, excluded.value)
                                > (latest_metrics.step, latest_metrics.timestamp, latest_metrics.value)
                           THEN excluded.timestamp ELSE latest_metrics.timestamp END,
               is_nan = CASE WHEN (excluded.step, excluded.timestamp, excluded.value)
                                > (latest_metrics.step, latest_metrics.timestamp, latest_metrics.value)
                           THEN excluded.is_nan ELSE latest_metrics.is_nan END,
               value = CASE WHEN (excluded.step, excluded.timestamp, excluded.value)
                                > (latest_metrics.step, latest_metrics.timestamp, latest_metrics.value)
                           THEN excluded.value ELSE latest_metrics.value END",
        )
        ?;
    let points: Vec<(&Metric, f64, bool)> = metrics
        .iter()
        .map(|m| {
            let (value, is_nan) = stored_metric(m.value);
            (m, value, is_nan)
        })
        .collect();
    let new = insert_points(conn, pk, &points)?;
    // Per key: the greatest (step, timestamp, value), and the shape of the new points.
    let mut series: Vec<Series<'_>> = Vec::new();
    for (&(m, value, is_nan), inserted) in points.iter().zip(new) {
        let idx = match series.iter().position(|s| s.key == m.key) {
            Some(i) => i,
            None => {
                series.push(Series::new(&m.key, m.step, m.timestamp, value, is_nan));
                series.len() - 1
            }
        };
        series[idx].add(m.step, m.timestamp, value, is_nan, inserted);
        if let Some(model_id) = m.model_id.as_deref().filter(|s| !s.is_empty()) {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO logged_model_metrics
                 (model_id, key, timestamp, step, run_id, value, is_nan, dataset_name, dataset_digest)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    model_id,
                    m.key,
                    m.timestamp,
                    m.step,
                    run_id,
                    value,
                    is_nan,
                    m.dataset_name,
                    m.dataset_digest
                ])
            })
            ?;
        }
    }
    for s in series {
        latest.execute(params![
            pk,
            s.key,
            s.newest.0,
            s.newest.1,
            s.newest.2,
            s.newest.3,
            s.new_points,
            s.min_new_step.unwrap_or(s.newest.0),
            s.dense
        ])?;
    }
    Ok(())
}

/// Points of an imported run (any stage).
pub(crate) fn import_points(conn: &Connection, run_id: &str, points: &[Metric]) -> Result<()> {
    let (pk, _) = crate::conn::sync(shared_runs::lookup(&mut SqliteConn(conn), run_id))?;
    log_metrics(conn, pk, run_id, points)
}

/// A run with its original id, info, params and tags; `false` when the id exists.
pub(crate) fn import_run(conn: &Connection, run: &Run) -> Result<bool> {
    if crate::conn::sync(shared_runs::lookup(&mut SqliteConn(conn), &run.info.run_id)).is_ok() {
        return Ok(false);
    }
    let i = &run.info;
    let exp: i64 = i
        .experiment_id
        .parse()
        .map_err(|_| Error::invalid(format!("Invalid experiment ID '{}'", i.experiment_id)))?;
    conn.execute(
        "INSERT INTO runs (run_uuid, experiment_id, name, user_id, status, start_time, end_time,
                           lifecycle_stage, artifact_uri, deleted_time)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            i.run_id,
            exp,
            i.run_name,
            i.user_id,
            i.status.as_str(),
            i.start_time,
            i.end_time,
            i.lifecycle_stage.as_str(),
            i.artifact_uri,
            (i.lifecycle_stage == LifecycleStage::Deleted).then(now_millis),
        ],
    )?;
    let pk = conn.last_insert_rowid();
    for p in &run.data.params {
        conn.prepare_cached(
            "INSERT OR IGNORE INTO params (run_pk, key, value) VALUES (?1, ?2, ?3)",
        )
        .and_then(|mut st| st.execute(params![pk, p.key, p.value]))?;
    }
    for tag in &run.data.tags {
        upsert_tag(conn, pk, tag)?;
    }
    crate::conn::sync(async {
        let mut c = SqliteConn(conn);
        shared_runs::insert_inputs(
            &mut c,
            pk,
            &run.inputs.dataset_inputs,
            &run.inputs.model_inputs,
        )
        .await?;
        shared_runs::insert_outputs(&mut c, pk, &run.outputs).await
    })?;
    Ok(true)
}

/// Params are immutable: logging the same value again is fine, a different one is refused.
fn check_params(conn: &Connection, pk: i64, run_id: &str, params: &[Param]) -> Result<()> {
    let mut existing =
        conn.prepare_cached("SELECT value FROM params WHERE run_pk = ?1 AND key = ?2")?;
    let mut conflicts = Vec::new();
    for p in params {
        let old: Option<String> = existing
            .query_row(params![pk, p.key], |r| r.get(0))
            .optional()?;
        if let Some(old) = old.filter(|old| *old != p.value) {
            conflicts.push((p, old));
        }
    }
    if conflicts.is_empty() {
        Ok(())
    } else {
        Err(param_conflict_error(run_id, &conflicts, params.len()).into())
    }
}

/// A page of search results: each run's row id and info (its data is [`load_runs`]' job), and
/// the next page's token.
pub(crate) type InfoPage = (Vec<(i64, RunInfo)>, Option<String>);

pub(crate) fn search(conn: &Connection, q: &RunQuery) -> Result<InfoPage> {
    let Some((sql, binds)) = searches::runs(q, INFO_COLUMNS)? else {
        return Ok((Vec::new(), None));
    };
    fetch_page(
        conn,
        &sql,
        to_sql(binds),
        q.max_results,
        q.offset,
        row_to_info,
    )
}

/// The highest run row id there is (0 without runs).
pub(crate) fn max_pk(conn: &Connection) -> Result<i64> {
    conn.prepare_cached("SELECT COALESCE(MAX(run_pk), 0) FROM runs")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(E::from)
}

/// A run of one range's answer with the values it is ordered by.
pub(crate) type Ranked = ((i64, RunInfo), Vec<Sql>);

/// The first `limit` matches among runs with row ids in `from..=to` (see [`RunSearch::range`]).
pub(crate) fn search_range(
    conn: &Connection,
    search: &RunSearch,
    from: i64,
    to: i64,
    limit: i64,
) -> Result<Vec<Ranked>> {
    let info_count = INFO_COLUMNS.split(',').count();
    let keys = search.directions().len();
    let (sql, binds) = search.range(INFO_COLUMNS, from, to, limit)?;
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt
        .query_map(params_from_iter(to_sql(binds)), |r| {
            let info = row_to_info(r)?;
            let values = (info_count..info_count + keys)
                .map(|i| r.get::<_, Sql>(i))
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((info, values))
        })
        .and_then(|rows| rows.collect())
        .map_err(E::from);
    rows
}

/// SQLite's order of two values (no collation but BINARY is used in searches): NULL, then
/// numbers by value, then text by bytes, then blobs.
fn sql_order(a: &Sql, b: &Sql) -> std::cmp::Ordering {
    use std::cmp::Ordering::Equal;
    fn class(v: &Sql) -> u8 {
        match v {
            Sql::Null => 0,
            Sql::Integer(_) | Sql::Real(_) => 1,
            Sql::Text(_) => 2,
            Sql::Blob(_) => 3,
        }
    }
    match (a, b) {
        (Sql::Integer(x), Sql::Integer(y)) => x.cmp(y),
        (Sql::Integer(x), Sql::Real(y)) => (*x as f64).partial_cmp(y).unwrap_or(Equal),
        (Sql::Real(x), Sql::Integer(y)) => x.partial_cmp(&(*y as f64)).unwrap_or(Equal),
        (Sql::Real(x), Sql::Real(y)) => x.partial_cmp(y).unwrap_or(Equal),
        (Sql::Text(x), Sql::Text(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Sql::Blob(x), Sql::Blob(y)) => x.cmp(y),
        _ => class(a).cmp(&class(b)),
    }
}

/// Merges the ranges' answers (each in the search's order) into one page: `offset` runs
/// skipped, at most `max_results` kept, and the next page's token when more matched.
pub(crate) fn merge_ranges(
    ranges: Vec<Vec<Ranked>>,
    directions: &[bool],
    max_results: i64,
    offset: i64,
) -> InfoPage {
    // A few thousand rows at most (RANGED_SEARCH_MAX_ROWS per range): sorting the
    // concatenation is as good as a merge and simpler. Keys end with the unique run id, so
    // no two rows compare equal.
    let mut all: Vec<Ranked> = ranges.into_iter().flatten().collect();
    all.sort_by(|a, b| {
        a.1.iter()
            .zip(&b.1)
            .zip(directions)
            .map(|((x, y), asc)| {
                let o = sql_order(x, y);
                if *asc {
                    o
                } else {
                    o.reverse()
                }
            })
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let offset = usize::try_from(offset).unwrap_or(usize::MAX);
    let max = usize::try_from(max_results).unwrap_or(0);
    let mut rows: Vec<(i64, RunInfo)> = all.into_iter().skip(offset).map(|r| r.0).collect();
    let next = (rows.len() > max).then(|| {
        rows.truncate(max);
        plumb_core::validation::encode_offset_token((offset + max) as i64)
    });
    (rows, next)
}

/// Run ids to row ids, skipping unknown ones.
pub(crate) fn pks(conn: &Connection, run_ids: &[String]) -> Result<HashMap<i64, String>> {
    let mut out = HashMap::new();
    let mut stmt = conn.prepare_cached("SELECT run_pk FROM runs WHERE run_uuid = ?1")?;
    for id in run_ids {
        if let Some(pk) = stmt.query_row([id], |r| r.get::<_, i64>(0)).optional()? {
            out.insert(pk, id.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use plumb_core::entities::RunStatus;

    fn ranked(pk: i64, keys: Vec<Sql>) -> Ranked {
        let info = RunInfo {
            run_id: format!("r{pk}"),
            experiment_id: "1".into(),
            run_name: String::new(),
            user_id: String::new(),
            status: RunStatus::Running,
            start_time: None,
            end_time: None,
            artifact_uri: String::new(),
            lifecycle_stage: LifecycleStage::Active,
        };
        ((pk, info), keys)
    }

    #[test]
    fn values_order_as_sqlite_orders_them() {
        let ordered = [
            Sql::Null,
            Sql::Real(-1.5),
            Sql::Integer(-1),
            Sql::Real(0.5),
            Sql::Integer(2),
            Sql::Text("B".into()),
            Sql::Text("a".into()),
            Sql::Text("ab".into()),
            Sql::Blob(vec![0]),
        ];
        for (i, a) in ordered.iter().enumerate() {
            for (j, b) in ordered.iter().enumerate() {
                assert_eq!(sql_order(a, b), i.cmp(&j), "{a:?} vs {b:?}");
            }
        }
        assert_eq!(
            sql_order(&Sql::Integer(3), &Sql::Real(3.0)),
            std::cmp::Ordering::Equal
        );
    }

    /// Two ranges' answers merge by the keys and their directions; the page skips `offset`,
    /// keeps `max_results` and says whether more matched.
    #[test]
    fn ranges_merge_into_pages() {
        // Ordered by (first key ascending, second key descending).
        let low = vec![
            ranked(1, vec![Sql::Integer(0), Sql::Real(9.0)]),
            ranked(2, vec![Sql::Integer(0), Sql::Real(1.0)]),
            ranked(3, vec![Sql::Integer(2), Sql::Null]),
        ];
        let high = vec![
            ranked(10, vec![Sql::Integer(0), Sql::Real(5.0)]),
            ranked(11, vec![Sql::Integer(1), Sql::Real(7.0)]),
        ];
        let dirs = [true, false];
        let pks = |page: &InfoPage| page.0.iter().map(|r| r.0).collect::<Vec<_>>();
        let all = merge_ranges(vec![low.clone(), high.clone()], &dirs, 10, 0);
        assert_eq!(pks(&all), vec![1, 10, 2, 11, 3]);
        assert_eq!(all.1, None);
        let first = merge_ranges(vec![low.clone(), high.clone()], &dirs, 2, 0);
        assert_eq!(pks(&first), vec![1, 10]);
        assert!(first.1.is_some());
        let second = merge_ranges(vec![low, high], &dirs, 2, 2);
        assert_eq!(pks(&second), vec![2, 11]);
        assert!(second.1.is_some());
        assert_eq!(merge_ranges(Vec::new(), &dirs, 2, 0), (Vec::new(), None));
    }
}
