//! Model registry queries: registered models, versions (allocated inside the write
//! transaction), stages, aliases, tags, searches.

use std::collections::HashMap;

use plumb_core::entities::{Page, Tag};
use plumb_core::registry::{
    ModelVersion, RegisteredModel, Stage, DELETED_STAGE, MODEL_VERSIONS_TAG,
};
use plumb_core::{now_millis, Error, Result};
use plumb_store::shared::model_versions_tag;
use plumb_store::sql::searches;
use plumb_store::{NewModelVersion, RegistryQuery};
use rusqlite::types::Value as Sql;
use rusqlite::{params, Connection, OptionalExtension};

use crate::db_err;
use crate::render::{fetch_page, to_sql};

fn rm_not_found(name: &str) -> Error {
    Error::not_found(format!("Registered Model with name={name} not found"))
}

fn mv_not_found(name: &str, version: i64) -> Error {
    Error::not_found(format!(
        "Model Version (name={name}, version={version}) not found"
    ))
}

/// Fails with 404 unless the registered model exists.
fn require_rm(conn: &Connection, name: &str) -> Result<()> {
    let found: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM registered_models WHERE name = ?1")
        .and_then(|mut s| s.query_row([name], |r| r.get(0)).optional())
        .map_err(db_err)?;
    found.map(|_| ()).ok_or_else(|| rm_not_found(name))
}

/// Fails with 404 unless the (not deleted) version exists.
fn require_mv(conn: &Connection, name: &str, version: i64) -> Result<()> {
    let stage: Option<String> = conn
        .prepare_cached("SELECT current_stage FROM model_versions WHERE name = ?1 AND version = ?2")
        .and_then(|mut s| s.query_row(params![name, version], |r| r.get(0)).optional())
        .map_err(db_err)?;
    match stage {
        Some(s) if s != DELETED_STAGE => Ok(()),
        _ => Err(mv_not_found(name, version)),
    }
}

fn touch_rm(conn: &Connection, name: &str, now: i64) -> Result<()> {
    conn.prepare_cached("UPDATE registered_models SET last_updated_time = ?1 WHERE name = ?2")
        .and_then(|mut s| s.execute(params![now, name]))
        .map_err(db_err)?;
    Ok(())
}

fn upsert_tag(conn: &Connection, table: &str, owner: &[(&str, Sql)], tag: &Tag) -> Result<()> {
    let cols: Vec<&str> = owner.iter().map(|(c, _)| *c).collect();
    let marks: Vec<String> = (1..=owner.len() + 2).map(|i| format!("?{i}")).collect();
    let sql = format!(
        "INSERT INTO {table} ({cols}, key, value) VALUES ({marks})
         ON CONFLICT ({cols}, key) DO UPDATE SET value = excluded.value",
        cols = cols.join(", "),
        marks = marks.join(", ")
    );
    let mut binds: Vec<Sql> = owner.iter().map(|(_, v)| v.clone()).collect();
    binds.push(Sql::Text(tag.key.clone()));
    binds.push(Sql::Text(tag.value.clone()));
    conn.prepare_cached(&sql)
        .and_then(|mut s| s.execute(rusqlite::params_from_iter(binds)))
        .map_err(db_err)?;
    Ok(())
}

// ---- registered models -----------------------------------------------------------------------

pub(crate) fn create_rm(
    conn: &Connection,
    name: &str,
    tags: &[Tag],
    description: Option<&str>,
) -> Result<()> {
    if require_rm(conn, name).is_ok() {
        return Err(Error::already_exists(format!(
            "Registered Model (name={name}) already exists."
        )));
    }
    let now = now_millis();
    conn.execute(
        "INSERT INTO registered_models (name, creation_time, last_updated_time, description)
         VALUES (?1, ?2, ?2, ?3)",
        params![name, now, description],
    )
    .map_err(db_err)?;
    for tag in tags {
        upsert_tag(
            conn,
            "registered_model_tags",
            &[("name", Sql::Text(name.into()))],
            tag,
        )?;
    }
    Ok(())
}

const MV_COLUMNS: &str = "mv.name, mv.version, mv.creation_time, mv.last_updated_time, mv.description, \
     mv.user_id, mv.current_stage, mv.source, mv.run_id, mv.status, mv.status_message, mv.run_link, \
     mv.storage_location, mv.model_id";

fn row_to_mv(r: &rusqlite::Row<'_>) -> rusqlite::Result<ModelVersion> {
    Ok(ModelVersion {
        name: r.get(0)?,
        version: r.get(1)?,
        creation_timestamp: r.get(2)?,
        last_updated_timestamp: r.get(3)?,
        description: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
        user_id: r.get(5)?,
        current_stage: r.get(6)?,
        source: r.get(7)?,
        run_id: r.get(8)?,
        status: r.get(9)?,
        status_message: r.get(10)?,
        run_link: r.get::<_, Option<String>>(11)?.unwrap_or_default(),
        storage_location: r.get(12)?,
        model_id: r.get(13)?,
        tags: Vec::new(),
        aliases: Vec::new(),
    })
}

/// Fills tags (and, where MLflow shows them, aliases) of versions, one query each for all.
fn load_mv_details(
    conn: &Connection,
    versions: &mut [ModelVersion],
    with_aliases: bool,
) -> Result<()> {
    if versions.is_empty() {
        return Ok(());
    }
    let mut names: Vec<&str> = versions.iter().map(|v| v.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let version_key = |r: &rusqlite::Row<'_>| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?));
    let mut tags = crate::queries::grouped_by(
        conn,
        "SELECT name, version, key, value FROM model_version_tags WHERE name IN ({in}) ORDER BY rowid",
        &names,
        version_key,
        |r| Ok(Tag::new(r.get::<_, String>(2)?, r.get::<_, String>(3)?)),
    )?;
    let mut aliases: HashMap<(String, i64), Vec<String>> = if with_aliases {
        crate::queries::grouped_by(
            conn,
            "SELECT name, version, alias FROM registered_model_aliases WHERE name IN ({in}) ORDER BY alias",
            &names,
            version_key,
            |r| r.get(2),
        )?
    } else {
        HashMap::new()
    };
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
fn latest_versions(
    conn: &Connection,
    name: &str,
    stages: Option<&[Stage]>,
    order: LatestOrder,
    with_aliases: bool,
) -> Result<Vec<ModelVersion>> {
    let mut per_stage: Vec<(String, i64, i64)> = conn
        .prepare_cached(
            "SELECT current_stage, MAX(version), MIN(version) FROM model_versions
             WHERE name = ?1 AND current_stage != ?2 GROUP BY current_stage",
        )
        .and_then(|mut s| {
            s.query_map(params![name, DELETED_STAGE], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect()
        })
        .map_err(db_err)?;
    if let Some(stages) = stages {
        per_stage.retain(|(stage, _, _)| stages.iter().any(|s| s.as_str() == stage));
    }
    match order {
        LatestOrder::FirstSeen => per_stage.sort_by_key(|(_, _, min)| *min),
        LatestOrder::StageName => per_stage.sort_by(|a, b| a.0.cmp(&b.0)),
    }
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {MV_COLUMNS} FROM model_versions mv WHERE mv.name = ?1 AND mv.version = ?2"
        ))
        .map_err(db_err)?;
    let mut out = Vec::with_capacity(per_stage.len());
    for (_, version, _) in per_stage {
        out.push(
            stmt.query_row(params![name, version], row_to_mv)
                .map_err(db_err)?,
        );
    }
    load_mv_details(conn, &mut out, with_aliases)?;
    Ok(out)
}

const RM_COLUMNS: &str = "rm.name, rm.creation_time, rm.last_updated_time, rm.description";

fn row_to_rm(r: &rusqlite::Row<'_>) -> rusqlite::Result<RegisteredModel> {
    Ok(RegisteredModel {
        name: r.get(0)?,
        creation_timestamp: r.get(1)?,
        last_updated_timestamp: r.get(2)?,
        description: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
        tags: Vec::new(),
        aliases: Vec::new(),
        latest_versions: Vec::new(),
    })
}

fn load_rm_details(conn: &Connection, rm: &mut RegisteredModel, order: LatestOrder) -> Result<()> {
    rm.tags = conn
        .prepare_cached(
            "SELECT key, value FROM registered_model_tags WHERE name = ?1 ORDER BY rowid",
        )
        .and_then(|mut s| {
            s.query_map([&rm.name], |r| {
                Ok(Tag::new(r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?
            .collect()
        })
        .map_err(db_err)?;
    rm.aliases = conn
        .prepare_cached(
            "SELECT alias, version FROM registered_model_aliases WHERE name = ?1 ORDER BY alias",
        )
        .and_then(|mut s| {
            s.query_map([&rm.name], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
        .map_err(db_err)?;
    rm.latest_versions = latest_versions(conn, &rm.name, None, order, false)?;
    Ok(())
}

pub(crate) fn get_rm(conn: &Connection, name: &str) -> Result<RegisteredModel> {
    let mut rm = conn
        .prepare_cached(
            "SELECT name, creation_time, last_updated_time, description FROM registered_models WHERE name = ?1",
        )
        .and_then(|mut s| s.query_row([name], row_to_rm).optional())
        .map_err(db_err)?
        .ok_or_else(|| rm_not_found(name))?;
    load_rm_details(conn, &mut rm, LatestOrder::FirstSeen)?;
    Ok(rm)
}

pub(crate) fn rename_rm(conn: &Connection, name: &str, new_name: &str) -> Result<()> {
    require_rm(conn, name)?;
    if name != new_name && require_rm(conn, new_name).is_ok() {
        return Err(Error::already_exists(format!(
            "Registered Model (name={new_name}) already exists."
        )));
    }
    conn.execute(
        "UPDATE registered_models SET name = ?1, last_updated_time = ?2 WHERE name = ?3",
        params![new_name, now_millis(), name],
    )
    .map_err(db_err)?;
    Ok(())
}

pub(crate) fn update_rm(conn: &Connection, name: &str, description: Option<&str>) -> Result<()> {
    require_rm(conn, name)?;
    if let Some(d) = description {
        conn.execute(
            "UPDATE registered_models SET description = ?1 WHERE name = ?2",
            params![d, name],
        )
        .map_err(db_err)?;
    }
    touch_rm(conn, name, now_millis())
}

pub(crate) fn delete_rm(conn: &Connection, name: &str) -> Result<()> {
    require_rm(conn, name)?;
    conn.execute("DELETE FROM registered_models WHERE name = ?1", [name])
        .map_err(db_err)?;
    Ok(())
}

pub(crate) fn set_rm_tag(conn: &Connection, name: &str, tag: &Tag) -> Result<()> {
    require_rm(conn, name)?;
    upsert_tag(
        conn,
        "registered_model_tags",
        &[("name", Sql::Text(name.into()))],
        tag,
    )
}

pub(crate) fn delete_rm_tag(conn: &Connection, name: &str, key: &str) -> Result<()> {
    require_rm(conn, name)?;
    // Deleting a tag that is not there is a no-op, as in MLflow.
    conn.execute(
        "DELETE FROM registered_model_tags WHERE name = ?1 AND key = ?2",
        params![name, key],
    )
    .map_err(db_err)?;
    Ok(())
}

pub(crate) fn get_latest(
    conn: &Connection,
    name: &str,
    stages: &[Stage],
) -> Result<Vec<ModelVersion>> {
    require_rm(conn, name)?;
    let stages = if stages.is_empty() {
        None
    } else {
        Some(stages)
    };
    latest_versions(conn, name, stages, LatestOrder::FirstSeen, true)
}

// ---- aliases -----------------------------------------------------------------------------------

pub(crate) fn set_alias(conn: &Connection, name: &str, alias: &str, version: i64) -> Result<()> {
    require_rm(conn, name)?;
    require_mv(conn, name, version)?;
    conn.execute(
        "INSERT INTO registered_model_aliases (name, alias, version) VALUES (?1, ?2, ?3)
         ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version",
        params![name, alias, version],
    )
    .map_err(db_err)?;
    Ok(())
}

pub(crate) fn delete_alias(conn: &Connection, name: &str, alias: &str) -> Result<()> {
    require_rm(conn, name)?;
    conn.execute(
        "DELETE FROM registered_model_aliases WHERE name = ?1 AND alias = ?2",
        params![name, alias],
    )
    .map_err(db_err)?;
    Ok(())
}

pub(crate) fn get_by_alias(conn: &Connection, name: &str, alias: &str) -> Result<ModelVersion> {
    require_rm(conn, name)?;
    let version: Option<i64> = if alias.eq_ignore_ascii_case("latest") {
        conn.query_row(
            "SELECT MAX(version) FROM model_versions WHERE name = ?1 AND current_stage != ?2",
            params![name, DELETED_STAGE],
            |r| r.get(0),
        )
        .map_err(db_err)?
    } else {
        conn.query_row(
            "SELECT version FROM registered_model_aliases WHERE name = ?1 AND alias = ?2",
            params![name, alias],
            |r| r.get(0),
        )
        .optional()
        .map_err(db_err)?
    };
    let version = version
        .ok_or_else(|| Error::invalid(format!("Registered model alias {alias} not found.")))?;
    get_mv(conn, name, version)
}

// ---- versions ----------------------------------------------------------------------------------

/// Appends `{"name", "version"}` to the logged model's `mlflow.modelVersions` tag.
fn link_logged_model(conn: &Connection, model_id: &str, name: &str, version: i64) -> Result<()> {
    let current: Option<String> = conn
        .query_row(
            "SELECT value FROM logged_model_tags WHERE model_id = ?1 AND key = ?2",
            params![model_id, MODEL_VERSIONS_TAG],
            |r| r.get(0),
        )
        .optional()
        .map_err(db_err)?;
    conn.execute(
        "INSERT INTO logged_model_tags (model_id, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value",
        params![
            model_id,
            MODEL_VERSIONS_TAG,
            model_versions_tag(current, name, version)
        ],
    )
    .map_err(db_err)?;
    Ok(())
}

/// Allocates the next number (deleted versions included) inside the writer's transaction, so
/// concurrent creates get consecutive, distinct versions.
pub(crate) fn create_mv(conn: &Connection, new: &NewModelVersion) -> Result<i64> {
    require_rm(conn, &new.name)?;
    let version: i64 = conn
        .query_row(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions WHERE name = ?1",
            [&new.name],
            |r| r.get(0),
        )
        .map_err(db_err)?;
    let now = now_millis();
    conn.execute(
        "INSERT INTO model_versions (name, version, creation_time, last_updated_time, description,
             user_id, current_stage, source, run_id, status, status_message, run_link,
             storage_location, model_id)
         VALUES (?1, ?2, ?3, ?3, ?4, NULL, 'None', ?5, ?6, 'READY', NULL, ?7, ?8, ?9)",
        params![
            new.name,
            version,
            now,
            new.description.as_deref().unwrap_or(""),
            new.source,
            new.run_id.as_deref().unwrap_or(""),
            new.run_link.as_deref().unwrap_or(""),
            new.storage_location,
            new.model_id,
        ],
    )
    .map_err(db_err)?;
    for tag in &new.tags {
        upsert_tag(
            conn,
            "model_version_tags",
            &[
                ("name", Sql::Text(new.name.clone())),
                ("version", Sql::Integer(version)),
            ],
            tag,
        )?;
    }
    if let Some(model_id) = &new.model_id {
        link_logged_model(conn, model_id, &new.name, version)?;
    }
    touch_rm(conn, &new.name, now)?;
    Ok(version)
}

pub(crate) fn get_mv(conn: &Connection, name: &str, version: i64) -> Result<ModelVersion> {
    let mv = conn
        .prepare_cached(&format!(
            "SELECT {MV_COLUMNS} FROM model_versions mv WHERE mv.name = ?1 AND mv.version = ?2"
        ))
        .and_then(|mut s| s.query_row(params![name, version], row_to_mv).optional())
        .map_err(db_err)?
        .filter(|v| v.current_stage != DELETED_STAGE)
        .ok_or_else(|| mv_not_found(name, version))?;
    let mut one = [mv];
    load_mv_details(conn, &mut one, true)?;
    let [mv] = one;
    Ok(mv)
}

pub(crate) fn update_mv(
    conn: &Connection,
    name: &str,
    version: i64,
    description: Option<&str>,
) -> Result<()> {
    require_mv(conn, name, version)?;
    if let Some(d) = description {
        conn.execute(
            "UPDATE model_versions SET description = ?1, last_updated_time = ?2 WHERE name = ?3 AND version = ?4",
            params![d, now_millis(), name, version],
        )
        .map_err(db_err)?;
    }
    Ok(())
}

pub(crate) fn delete_mv(conn: &Connection, name: &str, version: i64) -> Result<()> {
    require_mv(conn, name, version)?;
    let now = now_millis();
    conn.execute(
        "UPDATE model_versions SET current_stage = ?1, source = 'REDACTED-SOURCE-PATH',
             run_id = 'REDACTED-RUN-ID', run_link = 'REDACTED-RUN-LINK', last_updated_time = ?2
         WHERE name = ?3 AND version = ?4",
        params![DELETED_STAGE, now, name, version],
    )
    .map_err(db_err)?;
    conn.execute(
        "DELETE FROM registered_model_aliases WHERE name = ?1 AND version = ?2",
        params![name, version],
    )
    .map_err(db_err)?;
    touch_rm(conn, name, now)
}

pub(crate) fn transition(
    conn: &Connection,
    name: &str,
    version: i64,
    stage: Stage,
    archive_existing: bool,
) -> Result<()> {
    require_mv(conn, name, version)?;
    if archive_existing && !matches!(stage, Stage::Staging | Stage::Production) {
        return Err(Error::invalid(format!(
            "Model version transition cannot archive existing model versions because '{}' is \
             not an Active stage. Valid stages are Staging and Production.",
            stage.as_str()
        )));
    }
    let now = now_millis();
    if archive_existing {
        conn.execute(
            "UPDATE model_versions SET current_stage = 'Archived', last_updated_time = ?1
             WHERE name = ?2 AND version != ?3 AND current_stage = ?4",
            params![now, name, version, stage.as_str()],
        )
        .map_err(db_err)?;
    }
    conn.execute(
        "UPDATE model_versions SET current_stage = ?1, last_updated_time = ?2 WHERE name = ?3 AND version = ?4",
        params![stage.as_str(), now, name, version],
    )
    .map_err(db_err)?;
    touch_rm(conn, name, now)
}

pub(crate) fn set_mv_tag(conn: &Connection, name: &str, version: i64, tag: &Tag) -> Result<()> {
    require_mv(conn, name, version)?;
    upsert_tag(
        conn,
        "model_version_tags",
        &[
            ("name", Sql::Text(name.into())),
            ("version", Sql::Integer(version)),
        ],
        tag,
    )
}

pub(crate) fn delete_mv_tag(conn: &Connection, name: &str, version: i64, key: &str) -> Result<()> {
    require_mv(conn, name, version)?;
    // Deleting a tag that is not there is a no-op, as in MLflow.
    conn.execute(
        "DELETE FROM model_version_tags WHERE name = ?1 AND version = ?2 AND key = ?3",
        params![name, version, key],
    )
    .map_err(db_err)?;
    Ok(())
}

// ---- searches ----------------------------------------------------------------------------------

pub(crate) fn search_rm(conn: &Connection, q: &RegistryQuery) -> Result<Page<RegisteredModel>> {
    let (sql, binds) = searches::registered_models(q, RM_COLUMNS)?;
    let (mut items, next_page_token) = fetch_page(
        conn,
        &sql,
        to_sql(binds),
        q.max_results,
        q.offset,
        row_to_rm,
    )?;
    for rm in &mut items {
        load_rm_details(conn, rm, LatestOrder::StageName)?;
    }
    Ok(Page {
        items,
        next_page_token,
    })
}

pub(crate) fn search_mv(conn: &Connection, q: &RegistryQuery) -> Result<Page<ModelVersion>> {
    let (sql, binds) = searches::model_versions(q, MV_COLUMNS)?;
    let (mut items, next_page_token) = fetch_page(
        conn,
        &sql,
        to_sql(binds),
        q.max_results,
        q.offset,
        row_to_mv,
    )?;
    load_mv_details(conn, &mut items, false)?;
    Ok(Page {
        items,
        next_page_token,
    })
}

// ---- import ------------------------------------------------------------------------------------

pub(crate) fn import_rm(conn: &Connection, rm: &RegisteredModel) -> Result<bool> {
    if require_rm(conn, &rm.name).is_ok() {
        return Ok(false);
    }
    conn.execute(
        "INSERT INTO registered_models (name, creation_time, last_updated_time, description)
         VALUES (?1, ?2, ?3, ?4)",
        params![
            rm.name,
            rm.creation_timestamp,
            rm.last_updated_timestamp,
            rm.description
        ],
    )
    .map_err(db_err)?;
    for tag in &rm.tags {
        upsert_tag(
            conn,
            "registered_model_tags",
            &[("name", Sql::Text(rm.name.clone()))],
            tag,
        )?;
    }
    Ok(true)
}

pub(crate) fn import_mv(conn: &Connection, mv: &ModelVersion) -> Result<bool> {
    require_rm(conn, &mv.name)?;
    let exists: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM model_versions WHERE name = ?1 AND version = ?2",
            params![mv.name, mv.version],
            |r| r.get(0),
        )
        .optional()
        .map_err(db_err)?;
    if exists.is_some() {
        return Ok(false);
    }
    conn.execute(
        "INSERT INTO model_versions (name, version, creation_time, last_updated_time, description,
             user_id, current_stage, source, run_id, status, status_message, run_link,
             storage_location, model_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        params![
            mv.name,
            mv.version,
            mv.creation_timestamp,
            mv.last_updated_timestamp,
            mv.description,
            mv.user_id,
            mv.current_stage,
            mv.source,
            mv.run_id,
            mv.status,
            mv.status_message,
            mv.run_link,
            mv.storage_location,
            mv.model_id
        ],
    )
    .map_err(db_err)?;
    for tag in &mv.tags {
        upsert_tag(
            conn,
            "model_version_tags",
            &[
                ("name", Sql::Text(mv.name.clone())),
                ("version", Sql::Integer(mv.version)),
            ],
            tag,
        )?;
    }
    Ok(true)
}
