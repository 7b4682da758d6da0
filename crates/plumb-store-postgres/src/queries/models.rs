//! MLflow 3 logged-model queries: create, get, finalize, delete, tags, params, search.

use std::collections::HashMap;

use plumb_core::entities::{
    LifecycleStage, LoggedModel, LoggedModelStatus, Metric, Page, Param, RunMetric, Tag,
};
use plumb_core::{now_millis, Error};
use plumb_store::shared::{new_model_id, random_model_name};
use plumb_store::sql::searches;
use plumb_store::{join_artifact_uri, LoggedModelQuery, NewLoggedModel};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use crate::queries::{fetch_page, stored_to_value};
use crate::R;
use plumb_store::queries::experiments;

fn not_found(id: &str) -> Error {
    Error::not_found(format!("Logged model with ID '{id}' not found."))
}

pub(crate) async fn create(c: &mut PgConnection, new: &NewLoggedModel) -> R<String> {
    let exp =
        experiments::require_active(&mut crate::conn::PgConn(&mut *c), &new.experiment_id).await?;
    let location: String =
        sqlx::query_scalar("SELECT artifact_location FROM experiments WHERE experiment_id = $1")
            .bind(exp)
            .fetch_one(&mut *c)
            .await?;
    let model_id = new_model_id();
    let name = new
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(random_model_name);
    let now = now_millis();
    sqlx::query(
        "INSERT INTO logged_models (model_id, experiment_id, name, artifact_location, creation_timestamp_ms,
             last_updated_timestamp_ms, status, status_message, lifecycle_stage, model_type, source_run_id)
         VALUES ($1, $2, $3, $4, $5, $5, $6, NULL, 'active', $7, $8)",
    )
    .bind(&model_id)
    .bind(exp)
    .bind(&name)
    .bind(join_artifact_uri(&location, &format!("models/{model_id}/artifacts")))
    .bind(now)
    .bind(LoggedModelStatus::Pending.as_i64())
    .bind(&new.model_type)
    .bind(&new.source_run_id)
    .execute(&mut *c)
    .await?;
    upsert_kv(c, "logged_model_tags", &model_id, &new.tags).await?;
    upsert_kv(c, "logged_model_params", &model_id, &new.params).await?;
    Ok(model_id)
}

/// `table` is one of the two fixed key/value tables of logged models.
async fn upsert_kv(c: &mut PgConnection, table: &str, model_id: &str, items: &[Tag]) -> R<()> {
    if items.is_empty() {
        return Ok(());
    }
    let (keys, values) = crate::queries::runs::last_values(items);
    let sql = format!(
        "INSERT INTO {table} (model_id, key, value)
         SELECT $1, k, v FROM UNNEST($2::TEXT[], $3::TEXT[]) AS t(k, v)
         ON CONFLICT (model_id, key) DO UPDATE SET value = EXCLUDED.value"
    );
    sqlx::query(&sql)
        .bind(model_id)
        .bind(keys)
        .bind(values)
        .execute(&mut *c)
        .await?;
    Ok(())
}

const COLUMNS: &str = "m.model_id, m.experiment_id, m.name, m.artifact_location, m.creation_timestamp_ms, \
     m.last_updated_timestamp_ms, m.status, m.status_message, m.lifecycle_stage, m.model_type, m.source_run_id";

fn row_to_model(r: &PgRow) -> Result<LoggedModel, sqlx::Error> {
    let stage: String = r.try_get(8)?;
    Ok(LoggedModel {
        model_id: r.try_get(0)?,
        experiment_id: r.try_get::<i64, _>(1)?.to_string(),
        name: r.try_get(2)?,
        artifact_uri: r.try_get(3)?,
        creation_timestamp_ms: r.try_get(4)?,
        last_updated_timestamp_ms: r.try_get(5)?,
        status: LoggedModelStatus::from_i64(r.try_get(6)?),
        status_message: r.try_get(7)?,
        lifecycle_stage: LifecycleStage::parse(&stage).unwrap_or(LifecycleStage::Active),
        model_type: r.try_get(9)?,
        source_run_id: r.try_get(10)?,
        tags: Vec::new(),
        params: Vec::new(),
        metrics: Vec::new(),
    })
}

async fn grouped<T>(
    c: &mut PgConnection,
    sql: &str,
    ids: &[String],
    map: impl Fn(&PgRow) -> Result<T, sqlx::Error>,
) -> R<HashMap<String, Vec<T>>> {
    let mut out: HashMap<String, Vec<T>> = HashMap::new();
    for r in &sqlx::query(sql).bind(ids).fetch_all(&mut *c).await? {
        out.entry(r.try_get(0)?).or_default().push(map(r)?);
    }
    Ok(out)
}

/// Fills tags, params and metrics of a page of models: one query per kind, not per model.
async fn load_details(c: &mut PgConnection, models: &mut [LoggedModel]) -> R<()> {
    let ids: Vec<String> = models.iter().map(|m| m.model_id.clone()).collect();
    let kv = |r: &PgRow| {
        Ok(Tag::new(
            r.try_get::<String, _>(1)?,
            r.try_get::<String, _>(2)?,
        ))
    };
    let mut tags = grouped(
        c,
        "SELECT model_id, key, value FROM logged_model_tags WHERE model_id = ANY($1) ORDER BY key",
        &ids,
        kv,
    )
    .await?;
    let mut params = grouped(
        c,
        "SELECT model_id, key, value FROM logged_model_params WHERE model_id = ANY($1) ORDER BY key",
        &ids,
        kv,
    )
    .await?;
    let mut metrics = grouped(
        c,
        "SELECT model_id, key, value, is_nan, timestamp, step, run_id, dataset_name, dataset_digest
         FROM logged_model_metrics WHERE model_id = ANY($1) ORDER BY key, step, timestamp",
        &ids,
        |r| {
            let mut metric = Metric::new(
                r.try_get::<String, _>(1)?,
                stored_to_value(r.try_get(2)?, r.try_get(3)?),
                r.try_get(4)?,
                r.try_get(5)?,
            );
            metric.model_id = Some(r.try_get(0)?);
            metric.dataset_name = r.try_get(7)?;
            metric.dataset_digest = r.try_get(8)?;
            Ok(RunMetric {
                run_id: r.try_get(6)?,
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

pub(crate) async fn get(c: &mut PgConnection, id: &str, allow_deleted: bool) -> R<LoggedModel> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM logged_models m WHERE m.model_id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *c)
    .await?;
    let mut m = match row {
        Some(row) => row_to_model(&row)?,
        None => return Err(not_found(id).into()),
    };
    if !allow_deleted && m.lifecycle_stage != LifecycleStage::Active {
        return Err(not_found(id).into());
    }
    load_details(c, std::slice::from_mut(&mut m)).await?;
    Ok(m)
}

/// Fails with 404 unless the model exists and is active.
async fn require_active(c: &mut PgConnection, id: &str) -> R<()> {
    let stage: Option<String> =
        sqlx::query_scalar("SELECT lifecycle_stage FROM logged_models WHERE model_id = $1")
            .bind(id)
            .fetch_optional(&mut *c)
            .await?;
    match stage.as_deref() {
        Some("active") => Ok(()),
        _ => Err(not_found(id).into()),
    }
}

pub(crate) async fn set_status(c: &mut PgConnection, id: &str, status: LoggedModelStatus) -> R<()> {
    require_active(c, id).await?;
    sqlx::query(
        "UPDATE logged_models SET status = $1, last_updated_timestamp_ms = $2 WHERE model_id = $3",
    )
    .bind(status.as_i64())
    .bind(now_millis())
    .bind(id)
    .execute(&mut *c)
    .await?;
    Ok(())
}

pub(crate) async fn delete(c: &mut PgConnection, id: &str) -> R<()> {
    require_active(c, id).await?;
    sqlx::query(
        "UPDATE logged_models SET lifecycle_stage = 'deleted', last_updated_timestamp_ms = $1
         WHERE model_id = $2",
    )
    .bind(now_millis())
    .bind(id)
    .execute(&mut *c)
    .await?;
    Ok(())
}

pub(crate) async fn set_tags(c: &mut PgConnection, id: &str, tags: &[Tag]) -> R<()> {
    require_active(c, id).await?;
    upsert_kv(c, "logged_model_tags", id, tags).await
}

pub(crate) async fn delete_tag(c: &mut PgConnection, id: &str, key: &str) -> R<()> {
    require_active(c, id).await?;
    let n = sqlx::query("DELETE FROM logged_model_tags WHERE model_id = $1 AND key = $2")
        .bind(id)
        .bind(key)
        .execute(&mut *c)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(Error::not_found(format!(
            "No tag with key '{key}' found for model with ID '{id}'."
        ))
        .into());
    }
    Ok(())
}

pub(crate) async fn log_params(c: &mut PgConnection, id: &str, params: &[Param]) -> R<()> {
    require_active(c, id).await?;
    upsert_kv(c, "logged_model_params", id, params).await
}

pub(crate) async fn search(c: &mut PgConnection, q: &LoggedModelQuery) -> R<Page<LoggedModel>> {
    let Some((sql, binds)) = searches::logged_models(q, COLUMNS)? else {
        return Ok(Page {
            items: Vec::new(),
            next_page_token: None,
        });
    };
    let (mut items, next_page_token) =
        fetch_page(c, &sql, binds, q.max_results, q.offset, row_to_model).await?;
    load_details(c, &mut items).await?;
    Ok(Page {
        items,
        next_page_token,
    })
}

/// A logged model with its original id, times, status, tags, params and metric points;
/// `false` (nothing changed) when that id exists.
pub(crate) async fn import(c: &mut PgConnection, m: &LoggedModel) -> R<bool> {
    let exp =
        experiments::require_exists(&mut crate::conn::PgConn(&mut *c), &m.experiment_id).await?;
    let added = sqlx::query(
        "INSERT INTO logged_models (model_id, experiment_id, name, artifact_location,
             creation_timestamp_ms, last_updated_timestamp_ms, status, status_message,
             lifecycle_stage, model_type, source_run_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING",
    )
    .bind(&m.model_id)
    .bind(exp)
    .bind(&m.name)
    .bind(&m.artifact_uri)
    .bind(m.creation_timestamp_ms)
    .bind(m.last_updated_timestamp_ms)
    .bind(m.status.as_i64())
    .bind(&m.status_message)
    .bind(m.lifecycle_stage.as_str())
    .bind(&m.model_type)
    .bind(&m.source_run_id)
    .execute(&mut *c)
    .await?
    .rows_affected();
    if added == 0 {
        return Ok(false);
    }
    upsert_kv(c, "logged_model_tags", &m.model_id, &m.tags).await?;
    upsert_kv(c, "logged_model_params", &m.model_id, &m.params).await?;
    for rm in &m.metrics {
        let (value, is_nan) = plumb_store::shared::stored_metric(rm.metric.value);
        sqlx::query(
            "INSERT INTO logged_model_metrics
             (model_id, key, timestamp, step, run_id, value, is_nan, dataset_name, dataset_digest)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
        )
        .bind(&m.model_id)
        .bind(&rm.metric.key)
        .bind(rm.metric.timestamp)
        .bind(rm.metric.step)
        .bind(&rm.run_id)
        .bind(value)
        .bind(i16::from(is_nan))
        .bind(&rm.metric.dataset_name)
        .bind(&rm.metric.dataset_digest)
        .execute(&mut *c)
        .await?;
    }
    Ok(true)
}
