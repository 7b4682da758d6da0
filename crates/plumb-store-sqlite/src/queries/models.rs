//! MLflow 3 logged-model queries: create, get, finalize, delete, tags, params, search.

use plumb_core::entities::{
    LifecycleStage, LoggedModel, LoggedModelStatus, Metric, Page, Param, RunMetric, Tag,
};
use plumb_core::{now_millis, Error, Result};
use plumb_store::shared::{new_model_id, random_model_name};
use plumb_store::sql::searches;
use plumb_store::{join_artifact_uri, LoggedModelQuery, NewLoggedModel};
use rusqlite::{params, Connection, OptionalExtension};

use crate::db_err;
use crate::render::{fetch_page, to_sql};
use plumb_store::queries::experiments;

fn not_found(id: &str) -> Error {
    Error::not_found(format!("Logged model with ID '{id}' not found."))
}

pub(crate) fn create(conn: &Connection, new: &NewLoggedModel) -> Result<String> {
    let exp = crate::conn::sync(experiments::require_active(
        &mut crate::conn::SqliteConn(conn),
        &new.experiment_id,
    ))?;
    let location: String = conn
        .query_row(
            "SELECT artifact_location FROM experiments WHERE experiment_id = ?1",
            [exp],
            |r| r.get(0),
        )
        .map_err(db_err)?;
    let model_id = new_model_id();
    let name = new
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(random_model_name);
    let now = now_millis();
    conn.execute(
        "INSERT INTO logged_models (model_id, experiment_id, name, artifact_location, creation_timestamp_ms,
             last_updated_timestamp_ms, status, status_message, lifecycle_stage, model_type, source_run_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, NULL, 'active', ?7, ?8)",
        params![
            model_id,
            exp,
            name,
            join_artifact_uri(&location, &format!("models/{model_id}/artifacts")),
            now,
            LoggedModelStatus::Pending.as_i64(),
            new.model_type,
            new.source_run_id
        ],
    )
    .map_err(db_err)?;
    upsert_kv(conn, "logged_model_tags", &model_id, &new.tags)?;
    upsert_kv(conn, "logged_model_params", &model_id, &new.params)?;
    Ok(model_id)
}

fn upsert_kv(conn: &Connection, table: &str, model_id: &str, items: &[Tag]) -> Result<()> {
    let sql = format!(
        "INSERT INTO {table} (model_id, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value"
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(db_err)?;
    for t in items {
        stmt.execute(params![model_id, t.key, t.value])
            .map_err(db_err)?;
    }
    Ok(())
}

const COLUMNS: &str = "m.model_id, m.experiment_id, m.name, m.artifact_location, m.creation_timestamp_ms, \
     m.last_updated_timestamp_ms, m.status, m.status_message, m.lifecycle_stage, m.model_type, m.source_run_id";

fn row_to_model(r: &rusqlite::Row<'_>) -> rusqlite::Result<LoggedModel> {
    let stage: String = r.get(8)?;
    Ok(LoggedModel {
        model_id: r.get(0)?,
        experiment_id: r.get::<_, i64>(1)?.to_string(),
        name: r.get(2)?,
        artifact_uri: r.get(3)?,
        creation_timestamp_ms: r.get(4)?,
        last_updated_timestamp_ms: r.get(5)?,
        status: LoggedModelStatus::from_i64(r.get(6)?),
        status_message: r.get(7)?,
        lifecycle_stage: LifecycleStage::parse(&stage).unwrap_or(LifecycleStage::Active),
        model_type: r.get(9)?,
        source_run_id: r.get(10)?,
        tags: Vec::new(),
        params: Vec::new(),
        metrics: Vec::new(),
    })
}

/// Fills tags, params and metrics of a page of models: one query per kind, not per model.
fn load_details(conn: &Connection, models: &mut [LoggedModel]) -> Result<()> {
    let ids: Vec<String> = models.iter().map(|m| m.model_id.clone()).collect();
    let id_key = |r: &rusqlite::Row<'_>| r.get::<_, String>(0);
    let kv = |r: &rusqlite::Row<'_>| Ok(Tag::new(r.get::<_, String>(1)?, r.get::<_, String>(2)?));
    let mut tags = crate::queries::grouped_by(
        conn,
        "SELECT model_id, key, value FROM logged_model_tags WHERE model_id IN ({in}) ORDER BY key",
        &ids,
        id_key,
        kv,
    )?;
    let mut params = crate::queries::grouped_by(
        conn,
        "SELECT model_id, key, value FROM logged_model_params WHERE model_id IN ({in}) ORDER BY key",
        &ids,
        id_key,
        kv,
    )?;
    let mut metrics = crate::queries::grouped_by(
        conn,
        "SELECT model_id, key, value, is_nan, timestamp, step, run_id, dataset_name, dataset_digest
         FROM logged_model_metrics WHERE model_id IN ({in}) ORDER BY key, step, timestamp",
        &ids,
        id_key,
        |r| {
            let is_nan: bool = r.get(3)?;
            let mut metric = Metric::new(
                r.get::<_, String>(1)?,
                if is_nan { f64::NAN } else { r.get(2)? },
                r.get(4)?,
                r.get(5)?,
            );
            metric.model_id = Some(r.get(0)?);
            metric.dataset_name = r.get(7)?;
            metric.dataset_digest = r.get(8)?;
            Ok(RunMetric {
                run_id: r.get(6)?,
                metric,
            })
        },
    )?;
    for m in models.iter_mut() {
        m.tags = tags.remove(&m.model_id).unwrap_or_default();
        m.params = params.remove(&m.model_id).unwrap_or_default();
        m.metrics = metrics.remove(&m.model_id).unwrap_or_default();
    }
    Ok(())
}

pub(crate) fn get(conn: &Connection, id: &str, allow_deleted: bool) -> Result<LoggedModel> {
    let mut m = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM logged_models m WHERE m.model_id = ?1"
        ))
        .and_then(|mut s| s.query_row([id], row_to_model).optional())
        .map_err(db_err)?
        .filter(|m| allow_deleted || m.lifecycle_stage == LifecycleStage::Active)
        .ok_or_else(|| not_found(id))?;
    load_details(conn, std::slice::from_mut(&mut m))?;
    Ok(m)
}

pub(crate) fn set_status(conn: &Connection, id: &str, status: LoggedModelStatus) -> Result<()> {
    get(conn, id, false)?;
    conn.execute(
        "UPDATE logged_models SET status = ?1, last_updated_timestamp_ms = ?2 WHERE model_id = ?3",
        params![status.as_i64(), now_millis(), id],
    )
    .map_err(db_err)?;
    Ok(())
}

pub(crate) fn delete(conn: &Connection, id: &str) -> Result<()> {
    get(conn, id, false)?;
    conn.execute(
        "UPDATE logged_models SET lifecycle_stage = 'deleted', last_updated_timestamp_ms = ?1 WHERE model_id = ?2",
        params![now_millis(), id],
    )
    .map_err(db_err)?;
    Ok(())
}

pub(crate) fn set_tags(conn: &Connection, id: &str, tags: &[Tag]) -> Result<()> {
    get(conn, id, false)?;
    upsert_kv(conn, "logged_model_tags", id, tags)
}

pub(crate) fn delete_tag(conn: &Connection, id: &str, key: &str) -> Result<()> {
    get(conn, id, false)?;
    let n = conn
        .execute(
            "DELETE FROM logged_model_tags WHERE model_id = ?1 AND key = ?2",
            params![id, key],
        )
        .map_err(db_err)?;
    if n == 0 {
        return Err(Error::not_found(format!(
            "No tag with key '{key}' found for model with ID '{id}'."
        )));
    }
    Ok(())
}

pub(crate) fn log_params(conn: &Connection, id: &str, params: &[Param]) -> Result<()> {
    get(conn, id, false)?;
    upsert_kv(conn, "logged_model_params", id, params)
}

pub(crate) fn search(conn: &Connection, q: &LoggedModelQuery) -> Result<Page<LoggedModel>> {
    let Some((sql, binds)) = searches::logged_models(q, COLUMNS)? else {
        return Ok(Page {
            items: Vec::new(),
            next_page_token: None,
        });
    };
    let (mut items, next_page_token) = fetch_page(
        conn,
        &sql,
        to_sql(binds),
        q.max_results,
        q.offset,
        row_to_model,
    )?;
    load_details(conn, &mut items)?;
    Ok(Page {
        items,
        next_page_token,
    })
}

/// A logged model with its original id, times, status, tags, params and metric points;
/// `false` (nothing changed) when that id exists.
pub(crate) fn import(conn: &Connection, m: &LoggedModel) -> Result<bool> {
    let exp = crate::conn::sync(experiments::require_exists(
        &mut crate::conn::SqliteConn(conn),
        &m.experiment_id,
    ))?;
    let added = conn
        .execute(
            "INSERT OR IGNORE INTO logged_models (model_id, experiment_id, name, artifact_location,
                 creation_timestamp_ms, last_updated_timestamp_ms, status, status_message,
                 lifecycle_stage, model_type, source_run_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                m.model_id,
                exp,
                m.name,
                m.artifact_uri,
                m.creation_timestamp_ms,
                m.last_updated_timestamp_ms,
                m.status.as_i64(),
                m.status_message,
                m.lifecycle_stage.as_str(),
                m.model_type,
                m.source_run_id
            ],
        )
        .map_err(db_err)?;
    if added == 0 {
        return Ok(false);
    }
    upsert_kv(conn, "logged_model_tags", &m.model_id, &m.tags)?;
    upsert_kv(conn, "logged_model_params", &m.model_id, &m.params)?;
    let mut point = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO logged_model_metrics
             (model_id, key, timestamp, step, run_id, value, is_nan, dataset_name, dataset_digest)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .map_err(db_err)?;
    for rm in &m.metrics {
        let (value, is_nan) = plumb_store::shared::stored_metric(rm.metric.value);
        point
            .execute(params![
                m.model_id,
                rm.metric.key,
                rm.metric.timestamp,
                rm.metric.step,
                rm.run_id,
                value,
                is_nan,
                rm.metric.dataset_name,
                rm.metric.dataset_digest
            ])
            .map_err(db_err)?;
    }
    Ok(true)
}
