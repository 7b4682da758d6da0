//! Model registry queries: registered models, versions (numbered under a lock on the model's
//! row, so concurrent creates from any replica get consecutive numbers), stages, aliases, tags,
//! searches.

use std::collections::HashMap;

use plumb_core::entities::{Page, Tag};
use plumb_core::registry::{
    ModelVersion, RegisteredModel, Stage, DELETED_STAGE, MODEL_VERSIONS_TAG,
};
use plumb_core::{now_millis, Error};
use plumb_store::shared::model_versions_tag;
use plumb_store::sql::searches;
use plumb_store::{NewModelVersion, RegistryQuery};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use crate::error::is_unique_violation;
use crate::queries::fetch_page;
use crate::R;

fn rm_not_found(name: &str) -> Error {
    Error::not_found(format!("Registered Model with name={name} not found"))
}

fn rm_exists(name: &str) -> Error {
    Error::already_exists(format!("Registered Model (name={name}) already exists."))
}

fn mv_not_found(name: &str, version: i64) -> Error {
    Error::not_found(format!(
        "Model Version (name={name}, version={version}) not found"
    ))
}

/// Whether the registered model exists; `lock` also takes its row lock until commit.
async fn rm_exists_in_db(c: &mut PgConnection, name: &str, lock: bool) -> R<bool> {
    let sql = if lock {
        "SELECT 1 FROM registered_models WHERE name = $1 FOR UPDATE"
    } else {
        "SELECT 1 FROM registered_models WHERE name = $1"
    };
    Ok(sqlx::query(sql)
        .bind(name)
        .fetch_optional(&mut *c)
        .await?
        .is_some())
}

/// Fails with 404 unless the registered model exists.
async fn require_rm(c: &mut PgConnection, name: &str) -> R<()> {
    if rm_exists_in_db(c, name, false).await? {
        Ok(())
    } else {
        Err(rm_not_found(name).into())
    }
}

/// Fails with 404 unless the (not deleted) version exists.
async fn require_mv(c: &mut PgConnection, name: &str, version: i64) -> R<()> {
    let stage: Option<String> = sqlx::query_scalar(
        "SELECT current_stage FROM model_versions WHERE name = $1 AND version = $2",
    )
    .bind(name)
    .bind(version)
    .fetch_optional(&mut *c)
    .await?;
    match stage {
        Some(s) if s != DELETED_STAGE => Ok(()),
        _ => Err(mv_not_found(name, version).into()),
    }
}

async fn touch_rm(c: &mut PgConnection, name: &str, now: i64) -> R<()> {
    sqlx::query("UPDATE registered_models SET last_updated_time = $1 WHERE name = $2")
        .bind(now)
        .bind(name)
        .execute(&mut *c)
        .await?;
    Ok(())
}

async fn upsert_rm_tag(c: &mut PgConnection, name: &str, tag: &Tag) -> R<()> {
    sqlx::query(
        "INSERT INTO registered_model_tags (name, key, value) VALUES ($1, $2, $3)
         ON CONFLICT (name, key) DO UPDATE SET value = EXCLUDED.value",
    )
    .bind(name)
    .bind(&tag.key)
    .bind(&tag.value)
    .execute(&mut *c)
    .await?;
    Ok(())
}

async fn upsert_mv_tag(c: &mut PgConnection, name: &str, version: i64, tag: &Tag) -> R<()> {
    sqlx::query(
        "INSERT INTO model_version_tags (name, version, key, value) VALUES ($1, $2, $3, $4)
         ON CONFLICT (name, version, key) DO UPDATE SET value = EXCLUDED.value",
    )
    .bind(name)
    .bind(version)
    .bind(&tag.key)
    .bind(&tag.value)
    .execute(&mut *c)
    .await?;
    Ok(())
}

// ---- registered models -----------------------------------------------------------------------

pub(crate) async fn create_rm(
    c: &mut PgConnection,
    name: &str,
    tags: &[Tag],
    description: Option<&str>,
) -> R<()> {
    if rm_exists_in_db(c, name, false).await? {
        return Err(rm_exists(name).into());
    }
    let now = now_millis();
    sqlx::query(
        "INSERT INTO registered_models (name, creation_time, last_updated_time, description)
         VALUES ($1, $2, $2, $3)",
    )
    .bind(name)
    .bind(now)
    .bind(description)
    .execute(&mut *c)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            rm_exists(name).into()
        } else {
            crate::E::Db(e)
        }
    })?;
    for tag in tags {
        upsert_rm_tag(c, name, tag).await?;
    }
    Ok(())
}

const MV_COLUMNS: &str = "mv.name, mv.version, mv.creation_time, mv.last_updated_time, mv.description, \
     mv.user_id, mv.current_stage, mv.source, mv.run_id, mv.status, mv.status_message, mv.run_link, \
     mv.storage_location, mv.model_id";

fn row_to_mv(r: &PgRow) -> Result<ModelVersion, sqlx::Error> {
    Ok(ModelVersion {
        name: r.try_get(0)?,
        version: r.try_get(1)?,
        creation_timestamp: r.try_get(2)?,
        last_updated_timestamp: r.try_get(3)?,
        description: r.try_get::<Option<String>, _>(4)?.unwrap_or_default(),
        user_id: r.try_get(5)?,
        current_stage: r.try_get(6)?,
        source: r.try_get(7)?,
        run_id: r.try_get(8)?,
        status: r.try_get(9)?,
        status_message: r.try_get(10)?,
        run_link: r.try_get::<Option<String>, _>(11)?.unwrap_or_default(),
        storage_location: r.try_get(12)?,
        model_id: r.try_get(13)?,
        tags: Vec::new(),
        aliases: Vec::new(),
    })
}

/// Fills tags (and, where MLflow shows them, aliases) of versions, one query each for all.
async fn load_mv_details(
    c: &mut PgConnection,
    versions: &mut [ModelVersion],
    with_aliases: bool,
) -> R<()> {
    if versions.is_empty() {
        return Ok(());
    }
    let mut names: Vec<&str> = versions.iter().map(|v| v.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let mut tags: HashMap<(String, i64), Vec<Tag>> = HashMap::new();
    let rows: Vec<(String, i64, String, String)> = sqlx::query_as(
        "SELECT name, version, key, value FROM model_version_tags WHERE name = ANY($1) ORDER BY seq",
    )
    .bind(&names)
    .fetch_all(&mut *c)
    .await?;
    for (name, version, key, value) in rows {
        tags.entry((name, version))
            .or_default()
            .push(Tag::new(key, value));
    }
    let mut aliases: HashMap<(String, i64), Vec<String>> = HashMap::new();
    if with_aliases {
        let rows: Vec<(String, i64, String)> = sqlx::query_as(
            "SELECT name, version, alias FROM registered_model_aliases WHERE name = ANY($1)
             ORDER BY alias",
        )
        .bind(&names)
        .fetch_all(&mut *c)
        .await?;
        for (name, version, alias) in rows {
            aliases.entry((name, version)).or_default().push(alias);
        }
    }
    for v in versions.iter_mut() {
        let key = (v.name.clone(), v.version);
        v.tags = tags.remove(&key).unwrap_or_default();
        v.aliases = aliases.remove(&key).unwrap_or_default();
    }
    Ok(())
}

/// How MLflow lists a model's latest versions.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LatestOrder {
    /// By the lowest version number found in each stage (the registered-model entity).
    FirstSeen,
    /// By stage name (registered-model searches).
    StageName,
}

/// The newest live version per stage (of `stages`, or all when `None`).
async fn latest_versions(
    c: &mut PgConnection,
    name: &str,
    stages: Option<&[Stage]>,
    order: LatestOrder,
    with_aliases: bool,
) -> R<Vec<ModelVersion>> {
    let mut per_stage: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT current_stage, MAX(version), MIN(version) FROM model_versions
         WHERE name = $1 AND current_stage != $2 GROUP BY current_stage",
    )
    .bind(name)
    .bind(DELETED_STAGE)
    .fetch_all(&mut *c)
    .await?;
    if let Some(stages) = stages {
        per_stage.retain(|(stage, _, _)| stages.iter().any(|s| s.as_str() == stage));
    }
    match order {
        LatestOrder::FirstSeen => per_stage.sort_by_key(|(_, _, min)| *min),
        LatestOrder::StageName => per_stage.sort_by(|a, b| a.0.cmp(&b.0)),
    }
    let wanted: Vec<i64> = per_stage.iter().map(|(_, v, _)| *v).collect();
    let rows = sqlx::query(&format!(
        "SELECT {MV_COLUMNS} FROM model_versions mv WHERE mv.name = $1 AND mv.version = ANY($2)"
    ))
    .bind(name)
    .bind(&wanted)
    .fetch_all(&mut *c)
    .await?;
    let mut found = rows.iter().map(row_to_mv).collect::<Result<Vec<_>, _>>()?;
    found.sort_by_key(|v| wanted.iter().position(|w| *w == v.version));
    load_mv_details(c, &mut found, with_aliases).await?;
    Ok(found)
}

const RM_COLUMNS: &str = "rm.name, rm.creation_time, rm.last_updated_time, rm.description";

fn row_to_rm(r: &PgRow) -> Result<RegisteredModel, sqlx::Error> {
    Ok(RegisteredModel {
        name: r.try_get(0)?,
        creation_timestamp: r.try_get(1)?,
        last_updated_timestamp: r.try_get(2)?,
        description: r.try_get::<Option<String>, _>(3)?.unwrap_or_default(),
        tags: Vec::new(),
        aliases: Vec::new(),
        latest_versions: Vec::new(),
    })
}

async fn load_rm_details(
    c: &mut PgConnection,
    rm: &mut RegisteredModel,
    order: LatestOrder,
) -> R<()> {
    let tags: Vec<(String, String)> =
        sqlx::query_as("SELECT key, value FROM registered_model_tags WHERE name = $1 ORDER BY seq")
            .bind(&rm.name)
            .fetch_all(&mut *c)
            .await?;
    rm.tags = tags.into_iter().map(|(k, v)| Tag::new(k, v)).collect();
    rm.aliases = sqlx::query_as(
        "SELECT alias, version FROM registered_model_aliases WHERE name = $1 ORDER BY alias",
    )
    .bind(&rm.name)
    .fetch_all(&mut *c)
    .await?;
    rm.latest_versions = latest_versions(c, &rm.name, None, order, false).await?;
    Ok(())
}

pub(crate) async fn get_rm(c: &mut PgConnection, name: &str) -> R<RegisteredModel> {
    let row = sqlx::query(
        "SELECT name, creation_time, last_updated_time, description FROM registered_models
         WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(&mut *c)
    .await?;
    let mut rm = match row {
        Some(row) => row_to_rm(&row)?,
        None => return Err(rm_not_found(name).into()),
    };
    load_rm_details(c, &mut rm, LatestOrder::FirstSeen).await?;
    Ok(rm)
}

pub(crate) async fn rename_rm(c: &mut PgConnection, name: &str, new_name: &str) -> R<()> {
    if !rm_exists_in_db(c, name, true).await? {
        return Err(rm_not_found(name).into());
    }
    if name != new_name && rm_exists_in_db(c, new_name, false).await? {
        return Err(rm_exists(new_name).into());
    }
    sqlx::query("UPDATE registered_models SET name = $1, last_updated_time = $2 WHERE name = $3")
        .bind(new_name)
        .bind(now_millis())
        .bind(name)
        .execute(&mut *c)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                rm_exists(new_name).into()
            } else {
                crate::E::Db(e)
            }
        })?;
    Ok(())
}

pub(crate) async fn update_rm(
    c: &mut PgConnection,
    name: &str,
    description: Option<&str>,
) -> R<()> {
    require_rm(c, name).await?;
    sqlx::query(
        "UPDATE registered_models SET description = COALESCE($1, description),
             last_updated_time = $2 WHERE name = $3",
    )
    .bind(description)
    .bind(now_millis())
    .bind(name)
    .execute(&mut *c)
    .await?;
    Ok(())
}

pub(crate) async fn delete_rm(c: &mut PgConnection, name: &str) -> R<()> {
    require_rm(c, name).await?;
    sqlx::query("DELETE FROM registered_models WHERE name = $1")
        .bind(name)
        .execute(&mut *c)
        .await?;
    Ok(())
}

pub(crate) async fn set_rm_tag(c: &mut PgConnection, name: &str, tag: &Tag) -> R<()> {
    require_rm(c, name).await?;
    upsert_rm_tag(c, name, tag).await
}

pub(crate) async fn delete_rm_tag(c: &mut PgConnection, name: &str, key: &str) -> R<()> {
    require_rm(c, name).await?;
    // Deleting a tag that is not there is a no-op, as in MLflow.
    sqlx::query("DELETE FROM registered_model_tags WHERE name = $1 AND key = $2")
        .bind(name)
        .bind(key)
        .execute(&mut *c)
        .await?;
    Ok(())
}

pub(crate) async fn get_latest(
    c: &mut PgConnection,
    name: &str,
    stages: &[Stage],
) -> R<Vec<ModelVersion>> {
    require_rm(c, name).await?;
    let stages = if stages.is_empty() {
        None
    } else {
        Some(stages)
    };
    latest_versions(c, name, stages, LatestOrder::FirstSeen, true).await
}

// ---- aliases -----------------------------------------------------------------------------------

pub(crate) async fn set_alias(
    c: &mut PgConnection,
    name: &str,
    alias: &str,
    version: i64,
) -> R<()> {
    require_rm(c, name).await?;
    require_mv(c, name, version).await?;
    sqlx::query(
        "INSERT INTO registered_model_aliases (name, alias, version) VALUES ($1, $2, $3)
         ON CONFLICT (name, alias) DO UPDATE SET version = EXCLUDED.version",
    )
    .bind(name)
    .bind(alias)
    .bind(version)
    .execute(&mut *c)
    .await?;
    Ok(())
}

pub(crate) async fn delete_alias(c: &mut PgConnection, name: &str, alias: &str) -> R<()> {
    require_rm(c, name).await?;
    sqlx::query("DELETE FROM registered_model_aliases WHERE name = $1 AND alias = $2")
        .bind(name)
        .bind(alias)
        .execute(&mut *c)
        .await?;
    Ok(())
}

pub(crate) async fn get_by_alias(c: &mut PgConnection, name: &str, alias: &str) -> R<ModelVersion> {
    require_rm(c, name).await?;
    let version: Option<i64> = if alias.eq_ignore_ascii_case("latest") {
        sqlx::query_scalar(
            "SELECT MAX(version) FROM model_versions WHERE name = $1 AND current_stage != $2",
        )
        .bind(name)
        .bind(DELETED_STAGE)
        .fetch_one(&mut *c)
        .await?
    } else {
        sqlx::query_scalar(
            "SELECT version FROM registered_model_aliases WHERE name = $1 AND alias = $2",
        )
        .bind(name)
        .bind(alias)
        .fetch_optional(&mut *c)
        .await?
    };
    let version = version
        .ok_or_else(|| Error::invalid(format!("Registered model alias {alias} not found.")))?;
    get_mv(c, name, version).await
}

// ---- versions ----------------------------------------------------------------------------------

/// Appends `{"name", "version"}` to the logged model's `mlflow.modelVersions` tag.
async fn link_logged_model(
    c: &mut PgConnection,
    model_id: &str,
    name: &str,
    version: i64,
) -> R<()> {
    let current: Option<String> = sqlx::query_scalar(
        "SELECT value FROM logged_model_tags WHERE model_id = $1 AND key = $2 FOR UPDATE",
    )
    .bind(model_id)
    .bind(MODEL_VERSIONS_TAG)
    .fetch_optional(&mut *c)
    .await?;
    sqlx::query(
        "INSERT INTO logged_model_tags (model_id, key, value) VALUES ($1, $2, $3)
         ON CONFLICT (model_id, key) DO UPDATE SET value = EXCLUDED.value",
    )
    .bind(model_id)
    .bind(MODEL_VERSIONS_TAG)
    .bind(model_versions_tag(current, name, version))
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Allocates the next number (deleted versions included) while holding the registered model's
/// row lock, so concurrent creates on any replica get consecutive, distinct versions.
pub(crate) async fn create_mv(c: &mut PgConnection, new: &NewModelVersion) -> R<i64> {
    if !rm_exists_in_db(c, &new.name, true).await? {
        return Err(rm_not_found(&new.name).into());
    }
    let version: i64 = sqlx::query_scalar(
        "SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions WHERE name = $1",
    )
    .bind(&new.name)
    .fetch_one(&mut *c)
    .await?;
    let now = now_millis();
    sqlx::query(
        "INSERT INTO model_versions (name, version, creation_time, last_updated_time, description,
             user_id, current_stage, source, run_id, status, status_message, run_link,
             storage_location, model_id)
         VALUES ($1, $2, $3, $3, $4, NULL, 'None', $5, $6, 'READY', NULL, $7, $8, $9)",
    )
    .bind(&new.name)
    .bind(version)
    .bind(now)
    .bind(new.description.as_deref().unwrap_or(""))
    .bind(&new.source)
    .bind(new.run_id.as_deref().unwrap_or(""))
    .bind(new.run_link.as_deref().unwrap_or(""))
    .bind(&new.storage_location)
    .bind(&new.model_id)
    .execute(&mut *c)
    .await?;
    for tag in &new.tags {
        upsert_mv_tag(c, &new.name, version, tag).await?;
    }
    if let Some(model_id) = &new.model_id {
        link_logged_model(c, model_id, &new.name, version).await?;
    }
    touch_rm(c, &new.name, now).await?;
    Ok(version)
}

pub(crate) async fn get_mv(c: &mut PgConnection, name: &str, version: i64) -> R<ModelVersion> {
    let row = sqlx::query(&format!(
        "SELECT {MV_COLUMNS} FROM model_versions mv WHERE mv.name = $1 AND mv.version = $2"
    ))
    .bind(name)
    .bind(version)
    .fetch_optional(&mut *c)
    .await?;
    let mv = match row {
        Some(row) => row_to_mv(&row)?,
        None => return Err(mv_not_found(name, version).into()),
    };
    if mv.current_stage == DELETED_STAGE {
        return Err(mv_not_found(name, version).into());
    }
    let mut one = [mv];
    load_mv_details(c, &mut one, true).await?;
    let [mv] = one;
    Ok(mv)
}

pub(crate) async fn update_mv(
    c: &mut PgConnection,
    name: &str,
    version: i64,
    description: Option<&str>,
) -> R<()> {
    require_mv(c, name, version).await?;
    if let Some(d) = description {
        sqlx::query(
            "UPDATE model_versions SET description = $1, last_updated_time = $2
             WHERE name = $3 AND version = $4",
        )
        .bind(d)
        .bind(now_millis())
        .bind(name)
        .bind(version)
        .execute(&mut *c)
        .await?;
    }
    Ok(())
}

pub(crate) async fn delete_mv(c: &mut PgConnection, name: &str, version: i64) -> R<()> {
    require_mv(c, name, version).await?;
    let now = now_millis();
    sqlx::query(
        "UPDATE model_versions SET current_stage = $1, source = 'REDACTED-SOURCE-PATH',
             run_id = 'REDACTED-RUN-ID', run_link = 'REDACTED-RUN-LINK', last_updated_time = $2
         WHERE name = $3 AND version = $4",
    )
    .bind(DELETED_STAGE)
    .bind(now)
    .bind(name)
    .bind(version)
    .execute(&mut *c)
    .await?;
    sqlx::query("DELETE FROM registered_model_aliases WHERE name = $1 AND version = $2")
        .bind(name)
        .bind(version)
        .execute(&mut *c)
        .await?;
    touch_rm(c, name, now).await
}

pub(crate) async fn transition(
    c: &mut PgConnection,
    name: &str,
    version: i64,
    stage: Stage,
    archive_existing: bool,
) -> R<()> {
    require_mv(c, name, version).await?;
    if archive_existing && !matches!(stage, Stage::Staging | Stage::Production) {
        return Err(Error::invalid(format!(
            "Model version transition cannot archive existing model versions because '{}' is \
             not an Active stage. Valid stages are Staging and Production.",
            stage.as_str()
        ))
        .into());
    }
    let now = now_millis();
    if archive_existing {
        sqlx::query(
            "UPDATE model_versions SET current_stage = 'Archived', last_updated_time = $1
             WHERE name = $2 AND version != $3 AND current_stage = $4",
        )
        .bind(now)
        .bind(name)
        .bind(version)
        .bind(stage.as_str())
        .execute(&mut *c)
        .await?;
    }
    sqlx::query(
        "UPDATE model_versions SET current_stage = $1, last_updated_time = $2
         WHERE name = $3 AND version = $4",
    )
    .bind(stage.as_str())
    .bind(now)
    .bind(name)
    .bind(version)
    .execute(&mut *c)
    .await?;
    touch_rm(c, name, now).await
}

pub(crate) async fn set_mv_tag(c: &mut PgConnection, name: &str, version: i64, tag: &Tag) -> R<()> {
    require_mv(c, name, version).await?;
    upsert_mv_tag(c, name, version, tag).await
}

pub(crate) async fn delete_mv_tag(
    c: &mut PgConnection,
    name: &str,
    version: i64,
    key: &str,
) -> R<()> {
    require_mv(c, name, version).await?;
    // Deleting a tag that is not there is a no-op, as in MLflow.
    sqlx::query("DELETE FROM model_version_tags WHERE name = $1 AND version = $2 AND key = $3")
        .bind(name)
        .bind(version)
        .bind(key)
        .execute(&mut *c)
        .await?;
    Ok(())
}

// ---- searches ----------------------------------------------------------------------------------

pub(crate) async fn search_rm(c: &mut PgConnection, q: &RegistryQuery) -> R<Page<RegisteredModel>> {
    let (sql, binds) = searches::registered_models(q, RM_COLUMNS)?;
    let (mut items, next_page_token) =
        fetch_page(c, &sql, binds, q.max_results, q.offset, row_to_rm).await?;
    for rm in &mut items {
        load_rm_details(c, rm, LatestOrder::StageName).await?;
    }
    Ok(Page {
        items,
        next_page_token,
    })
}

pub(crate) async fn search_mv(c: &mut PgConnection, q: &RegistryQuery) -> R<Page<ModelVersion>> {
    let (sql, binds) = searches::model_versions(q, MV_COLUMNS)?;
    let (mut items, next_page_token) =
        fetch_page(c, &sql, binds, q.max_results, q.offset, row_to_mv).await?;
    load_mv_details(c, &mut items, false).await?;
    Ok(Page {
        items,
        next_page_token,
    })
}

// ---- import ------------------------------------------------------------------------------------

pub(crate) async fn import_rm(c: &mut PgConnection, rm: &RegisteredModel) -> R<bool> {
    let inserted = sqlx::query(
        "INSERT INTO registered_models (name, creation_time, last_updated_time, description)
         VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
    )
    .bind(&rm.name)
    .bind(rm.creation_timestamp)
    .bind(rm.last_updated_timestamp)
    .bind(&rm.description)
    .execute(&mut *c)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(false);
    }
    for tag in &rm.tags {
        upsert_rm_tag(c, &rm.name, tag).await?;
    }
    Ok(true)
}

pub(crate) async fn import_mv(c: &mut PgConnection, mv: &ModelVersion) -> R<bool> {
    require_rm(c, &mv.name).await?;
    let inserted = sqlx::query(
        "INSERT INTO model_versions (name, version, creation_time, last_updated_time, description,
             user_id, current_stage, source, run_id, status, status_message, run_link,
             storage_location, model_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (name, version) DO NOTHING",
    )
    .bind(&mv.name)
    .bind(mv.version)
    .bind(mv.creation_timestamp)
    .bind(mv.last_updated_timestamp)
    .bind(&mv.description)
    .bind(&mv.user_id)
    .bind(&mv.current_stage)
    .bind(&mv.source)
    .bind(&mv.run_id)
    .bind(&mv.status)
    .bind(&mv.status_message)
    .bind(&mv.run_link)
    .bind(&mv.storage_location)
    .bind(&mv.model_id)
    .execute(&mut *c)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(false);
    }
    for tag in &mv.tags {
        upsert_mv_tag(c, &mv.name, mv.version, tag).await?;
    }
    Ok(true)
}
