//! MLflow 3 logged models: create, get, finalize, delete, tags, params, search, import.

use std::collections::HashMap;

use plumb_core::entities::{
    LifecycleStage, LoggedModel, LoggedModelStatus, Metric, Page, Param, RunMetric, Tag,
};
use plumb_core::{now_millis, Error};

use crate::db::{fetch_page, no_row, Bind, Conn, DbResult, Row};
use crate::queries::experiments;
use crate::shared::{new_model_id, random_model_name, stored_metric};
use crate::sql::searches;
use crate::{join_artifact_uri, LoggedModelQuery, NewLoggedModel};

fn not_found(id: &str) -> Error {
    Error::not_found(format!("Logged model with ID '{id}' not found."))
}

pub async fn create<C: Conn>(c: &mut C, new: &NewLoggedModel) -> DbResult<String> {
    let exp = experiments::require_active(c, &new.experiment_id).await?;
    let location = c
        .query_opt(
            "SELECT artifact_location FROM experiments WHERE experiment_id = ?",
            vec![exp.into()],
        )
        .await?
        .ok_or_else(|| no_row("the model's experiment"))?
        .text(0)?;
    let model_id = new_model_id();
    let name = new
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(random_model_name);
    let now = now_millis();
    c.execute(
        "INSERT INTO logged_models (model_id, experiment_id, name, artifact_location,
             creation_timestamp_ms, last_updated_timestamp_ms, status, status_message,
             lifecycle_stage, model_type, source_run_id)
         VALUES (?, ?, ?, ?, ?, ?, ?, NULL, 'active', ?, ?)",
        vec![
            (&model_id).into(),
            exp.into(),
            name.into(),
            join_artifact_uri(&location, &format!("models/{model_id}/artifacts")).into(),
            now.into(),
            now.into(),
            LoggedModelStatus::Pending.as_i64().into(),
            new.model_type.clone().into(),
            new.source_run_id.clone().into(),
        ],
    )
    .await?;
    upsert_kv(c, "logged_model_tags", &model_id, &new.tags).await?;
    upsert_kv(c, "logged_model_params", &model_id, &new.params).await?;
    Ok(model_id)
}

/// `table` is one of the two fixed key/value tables of logged models; a key given twice keeps
/// its last value.
async fn upsert_kv<C: Conn>(c: &mut C, table: &str, model_id: &str, items: &[Tag]) -> DbResult<()> {
    let sql = format!(
        "INSERT INTO {table} (model_id, key, value) VALUES (?, ?, ?)
         ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value"
    );
    for t in items {
        c.execute(
            &sql,
            vec![model_id.into(), (&t.key).into(), (&t.value).into()],
        )
        .await?;
    }
    Ok(())
}

const COLUMNS: &str = "m.model_id, m.experiment_id, m.name, m.artifact_location, \
     m.creation_timestamp_ms, m.last_updated_timestamp_ms, m.status, m.status_message, \
     m.lifecycle_stage, m.model_type, m.source_run_id";

fn to_model(r: &Row) -> DbResult<LoggedModel> {
    Ok(LoggedModel {
        model_id: r.text(0)?,
        experiment_id: r.int(1)?.to_string(),
        name: r.text(2)?,
        artifact_uri: r.text(3)?,
        creation_timestamp_ms: r.int(4)?,
        last_updated_timestamp_ms: r.int(5)?,
        status: LoggedModelStatus::from_i64(r.int(6)?),
        status_message: r.opt_text(7)?,
        lifecycle_stage: LifecycleStage::parse(&r.text(8)?).unwrap_or(LifecycleStage::Active),
        model_type: r.opt_text(9)?,
        source_run_id: r.opt_text(10)?,
        tags: Vec::new(),
        params: Vec::new(),
        metrics: Vec::new(),
    })
}

/// Runs `sql` (whose `{in}` is the list of model ids, and whose first column is the model id)
/// and groups the mapped rows by model.
async fn grouped<C: Conn, T>(
    c: &mut C,
    sql: &str,
    ids: &[String],
    map: impl Fn(&Row) -> DbResult<T>,
) -> DbResult<HashMap<String, Vec<T>>> {
    let sql = sql.replace("{in}", &c.dialect().in_list("model_id"));
    let mut out: HashMap<String, Vec<T>> = HashMap::new();
    for r in &c.query(&sql, vec![Bind::TextList(ids.to_vec())]).await? {
        out.entry(r.text(0)?).or_default().push(map(r)?);
    }
    Ok(out)
}

/// Fills tags, params and metrics of a page of models: one query per kind, not per model.
async fn load_details<C: Conn>(c: &mut C, models: &mut [LoggedModel]) -> DbResult<()> {
    if models.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = models.iter().map(|m| m.model_id.clone()).collect();
    let kv = |r: &Row| Ok(Tag::new(r.text(1)?, r.text(2)?));
    let mut tags = grouped(
        c,
        "SELECT model_id, key, value FROM logged_model_tags WHERE {in} ORDER BY key",
        &ids,
        kv,
    )
    .await?;
    let mut params = grouped(
        c,
        "SELECT model_id, key, value FROM logged_model_params WHERE {in} ORDER BY key",
        &ids,
        kv,
    )
    .await?;
    let mut metrics = grouped(
        c,
        "SELECT model_id, key, value, is_nan, timestamp, step, run_id, dataset_name, dataset_digest
         FROM logged_model_metrics WHERE {in} ORDER BY key, step, timestamp",
        &ids,
        |r| {
            let value = if r.int(3)? != 0 { f64::NAN } else { r.real(2)? };
            let mut metric = Metric::new(r.text(1)?, value, r.int(4)?, r.int(5)?);
            metric.model_id = Some(r.text(0)?);
            metric.dataset_name = r.opt_text(7)?;
            metric.dataset_digest = r.opt_text(8)?;
            Ok(RunMetric {
                run_id: r.text(6)?,
                metric,
            })
        },
    )
    .await?;
    for m in models.iter_mut() {
        m.tags = tags.remove(&m.model_id).unwrap_or_default();
        m.params = params.remove(&m.model_id).unwrap_or_default();
        m.metrics = metrics.remove(&m.model_id).unwrap_or_default();
    }
    Ok(())
}

pub async fn get<C: Conn>(c: &mut C, id: &str, allow_deleted: bool) -> DbResult<LoggedModel> {
    let row = c
        .query_opt(
            &format!("SELECT {COLUMNS} FROM logged_models m WHERE m.model_id = ?"),
            vec![id.into()],
        )
        .await?
        .ok_or_else(|| not_found(id))?;
    let mut m = to_model(&row)?;
    if !allow_deleted && m.lifecycle_stage != LifecycleStage::Active {
        return Err(not_found(id).into());
    }
    load_details(c, std::slice::from_mut(&mut m)).await?;
    Ok(m)
}

/// Fails with 404 unless the model exists and is active.
async fn require_active<C: Conn>(c: &mut C, id: &str) -> DbResult<()> {
    let stage = c
        .query_opt(
            "SELECT lifecycle_stage FROM logged_models WHERE model_id = ?",
            vec![id.into()],
        )
        .await?;
    match stage.map(|r| r.text(0)).transpose()?.as_deref() {
        Some("active") => Ok(()),
        _ => Err(not_found(id).into()),
    }
}

pub async fn set_status<C: Conn>(c: &mut C, id: &str, status: LoggedModelStatus) -> DbResult<()> {
    require_active(c, id).await?;
    c.execute(
        "UPDATE logged_models SET status = ?, last_updated_timestamp_ms = ? WHERE model_id = ?",
        vec![status.as_i64().into(), now_millis().into(), id.into()],
    )
    .await?;
    Ok(())
}

pub async fn delete<C: Conn>(c: &mut C, id: &str) -> DbResult<()> {
    require_active(c, id).await?;
    c.execute(
        "UPDATE logged_models SET lifecycle_stage = 'deleted', last_updated_timestamp_ms = ?
         WHERE model_id = ?",
        vec![now_millis().into(), id.into()],
    )
    .await?;
    Ok(())
}

pub async fn set_tags<C: Conn>(c: &mut C, id: &str, tags: &[Tag]) -> DbResult<()> {
    require_active(c, id).await?;
    upsert_kv(c, "logged_model_tags", id, tags).await
}

pub async fn delete_tag<C: Conn>(c: &mut C, id: &str, key: &str) -> DbResult<()> {
    require_active(c, id).await?;
    let n = c
        .execute(
            "DELETE FROM logged_model_tags WHERE model_id = ? AND key = ?",
            vec![id.into(), key.into()],
        )
        .await?;
    if n == 0 {
        return Err(Error::not_found(format!(
            "No tag with key '{key}' found for model with ID '{id}'."
        ))
        .into());
    }
    Ok(())
}

pub async fn log_params<C: Conn>(c: &mut C, id: &str, params: &[Param]) -> DbResult<()> {
    require_active(c, id).await?;
    upsert_kv(c, "logged_model_params", id, params).await
}

pub async fn search<C: Conn>(c: &mut C, q: &LoggedModelQuery) -> DbResult<Page<LoggedModel>> {
    let Some((sql, binds)) = searches::logged_models(q, COLUMNS)? else {
        return Ok(Page {
            items: Vec::new(),
            next_page_token: None,
        });
    };
    let (mut items, next_page_token) =
        fetch_page(c, &sql, binds, q.max_results, q.offset, to_model).await?;
    load_details(c, &mut items).await?;
    Ok(Page {
        items,
        next_page_token,
    })
}

/// A logged model with its original id, times, status, tags, params and metric points;
/// `false` (nothing changed) when that id exists.
pub async fn import<C: Conn>(c: &mut C, m: &LoggedModel) -> DbResult<bool> {
    let exp = experiments::require_exists(c, &m.experiment_id).await?;
    let added = c
        .execute(
            "INSERT INTO logged_models (model_id, experiment_id, name, artifact_location,
                 creation_timestamp_ms, last_updated_timestamp_ms, status, status_message,
                 lifecycle_stage, model_type, source_run_id)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            vec![
                (&m.model_id).into(),
                exp.into(),
                (&m.name).into(),
                (&m.artifact_uri).into(),
                m.creation_timestamp_ms.into(),
                m.last_updated_timestamp_ms.into(),
                m.status.as_i64().into(),
                m.status_message.clone().into(),
                m.lifecycle_stage.as_str().into(),
                m.model_type.clone().into(),
                m.source_run_id.clone().into(),
            ],
        )
        .await?;
    if added == 0 {
        return Ok(false);
    }
    upsert_kv(c, "logged_model_tags", &m.model_id, &m.tags).await?;
    upsert_kv(c, "logged_model_params", &m.model_id, &m.params).await?;
    for rm in &m.metrics {
        let (value, is_nan) = stored_metric(rm.metric.value);
        c.execute(
            "INSERT INTO logged_model_metrics
             (model_id, key, timestamp, step, run_id, value, is_nan, dataset_name, dataset_digest)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            vec![
                (&m.model_id).into(),
                (&rm.metric.key).into(),
                rm.metric.timestamp.into(),
                rm.metric.step.into(),
                (&rm.run_id).into(),
                Bind::Real(value),
                i64::from(is_nan).into(),
                rm.metric.dataset_name.clone().into(),
                rm.metric.dataset_digest.clone().into(),
            ],
        )
        .await?;
    }
    Ok(true)
}
