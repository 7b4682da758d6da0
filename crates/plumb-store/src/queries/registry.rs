//! The model registry: registered models, versions (numbered inside the write transaction),
//! stages, aliases, tags, searches, import.

use std::collections::HashMap;

use plumb_core::entities::{Page, Tag};
use plumb_core::registry::{
    ChangeKind, ModelVersion, RegisteredModel, RegistryChange, Stage, DELETED_STAGE,
    MODEL_VERSIONS_TAG,
};
use plumb_core::{now_millis, Error};

use crate::db::{fetch_page, Bind, Conn, DbResult, Row};
use crate::queries::registry_history as history;
use crate::queries::webhooks;
use crate::shared::model_versions_tag;
use crate::sql::searches;
use crate::{NewModelVersion, RegistryQuery};

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

/// Whether the registered model exists; `lock` also takes its row lock until commit
/// (PostgreSQL; SQLite's single writer serialises the transaction anyway).
async fn rm_exists_in_db<C: Conn>(c: &mut C, name: &str, lock: bool) -> DbResult<bool> {
    let lock = if lock { c.dialect().for_update() } else { "" };
    let sql = format!("SELECT 1 FROM registered_models WHERE name = ?{lock}");
    Ok(c.query_opt(&sql, vec![name.into()]).await?.is_some())
}

/// Fails with 404 unless the registered model exists.
async fn require_rm<C: Conn>(c: &mut C, name: &str) -> DbResult<()> {
    if rm_exists_in_db(c, name, false).await? {
        Ok(())
    } else {
        Err(rm_not_found(name).into())
    }
}

/// Fails with 404 unless the (not deleted) version exists.
async fn require_mv<C: Conn>(c: &mut C, name: &str, version: i64) -> DbResult<()> {
    let row = c
        .query_opt(
            "SELECT current_stage FROM model_versions WHERE name = ? AND version = ?",
            vec![name.into(), version.into()],
        )
        .await?;
    match row.map(|r| r.text(0)).transpose()? {
        Some(s) if s != DELETED_STAGE => Ok(()),
        _ => Err(mv_not_found(name, version).into()),
    }
}

async fn touch_rm<C: Conn>(c: &mut C, name: &str, now: i64) -> DbResult<()> {
    c.execute(
        "UPDATE registered_models SET last_updated_time = ? WHERE name = ?",
        vec![now.into(), name.into()],
    )
    .await?;
    Ok(())
}

async fn upsert_rm_tag<C: Conn>(c: &mut C, name: &str, tag: &Tag) -> DbResult<()> {
    c.execute(
        "INSERT INTO registered_model_tags (name, key, value) VALUES (?, ?, ?)
         ON CONFLICT (name, key) DO UPDATE SET value = excluded.value",
        vec![name.into(), (&tag.key).into(), (&tag.value).into()],
    )
    .await?;
    Ok(())
}

async fn upsert_mv_tag<C: Conn>(c: &mut C, name: &str, version: i64, tag: &Tag) -> DbResult<()> {
    c.execute(
        "INSERT INTO model_version_tags (name, version, key, value) VALUES (?, ?, ?, ?)
         ON CONFLICT (name, version, key) DO UPDATE SET value = excluded.value",
        vec![
            name.into(),
            version.into(),
            (&tag.key).into(),
            (&tag.value).into(),
        ],
    )
    .await?;
    Ok(())
}

// ---- registered models -----------------------------------------------------------------------

pub async fn create_rm<C: Conn>(
    c: &mut C,
    name: &str,
    tags: &[Tag],
    description: Option<&str>,
) -> DbResult<()> {
    if rm_exists_in_db(c, name, false).await? {
        return Err(rm_exists(name).into());
    }
    let now = now_millis();
    c.execute(
        "INSERT INTO registered_models (name, creation_time, last_updated_time, description)
         VALUES (?, ?, ?, ?)",
        vec![name.into(), now.into(), now.into(), description.into()],
    )
    .await
    .map_err(|e| {
        if e.is_unique() {
            rm_exists(name).into()
        } else {
            e
        }
    })?;
    for tag in tags {
        upsert_rm_tag(c, name, tag).await?;
    }
    webhooks::registered_model_created(c, name, tags, description).await
}

const MV_COLUMNS: &str = "mv.name, mv.version, mv.creation_time, mv.last_updated_time, \
     mv.description, mv.user_id, mv.current_stage, mv.source, mv.run_id, mv.status, \
     mv.status_message, mv.run_link, mv.storage_location, mv.model_id";

fn to_mv(r: &Row) -> DbResult<ModelVersion> {
    Ok(ModelVersion {
        name: r.text(0)?,
        version: r.int(1)?,
        creation_timestamp: r.int(2)?,
        last_updated_timestamp: r.int(3)?,
        description: r.opt_text(4)?.unwrap_or_default(),
        user_id: r.opt_text(5)?,
        current_stage: r.text(6)?,
        source: r.text(7)?,
        run_id: r.text(8)?,
        status: r.text(9)?,
        status_message: r.opt_text(10)?,
        run_link: r.opt_text(11)?.unwrap_or_default(),
        storage_location: r.opt_text(12)?,
        model_id: r.opt_text(13)?,
        tags: Vec::new(),
        aliases: Vec::new(),
    })
}

/// Fills tags (and, where MLflow shows them, aliases) of versions, one query each for all.
async fn load_mv_details<C: Conn>(
    c: &mut C,
    versions: &mut [ModelVersion],
    with_aliases: bool,
) -> DbResult<()> {
    if versions.is_empty() {
        return Ok(());
    }
    let mut names: Vec<String> = versions.iter().map(|v| v.name.clone()).collect();
    names.sort_unstable();
    names.dedup();
    let d = c.dialect();
    let mut tags: HashMap<(String, i64), Vec<Tag>> = HashMap::new();
    let sql = format!(
        "SELECT name, version, key, value FROM model_version_tags WHERE {} ORDER BY {}",
        d.in_list("name"),
        d.insertion_order()
    );
    for r in c.query(&sql, vec![Bind::TextList(names.clone())]).await? {
        tags.entry((r.text(0)?, r.int(1)?))
            .or_default()
            .push(Tag::new(r.text(2)?, r.text(3)?));
    }
    let mut aliases: HashMap<(String, i64), Vec<String>> = HashMap::new();
    if with_aliases {
        let sql = format!(
            "SELECT name, version, alias FROM registered_model_aliases WHERE {} ORDER BY alias",
            d.in_list("name")
        );
        for r in c.query(&sql, vec![Bind::TextList(names)]).await? {
            aliases
                .entry((r.text(0)?, r.int(1)?))
                .or_default()
                .push(r.text(2)?);
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
async fn latest_versions<C: Conn>(
    c: &mut C,
    name: &str,
    stages: Option<&[Stage]>,
    order: LatestOrder,
    with_aliases: bool,
) -> DbResult<Vec<ModelVersion>> {
    let mut per_stage = Vec::new();
    for r in c
        .query(
            "SELECT current_stage, MAX(version), MIN(version) FROM model_versions
             WHERE name = ? AND current_stage != ? GROUP BY current_stage",
            vec![name.into(), DELETED_STAGE.into()],
        )
        .await?
    {
        per_stage.push((r.text(0)?, r.int(1)?, r.int(2)?));
    }
    if let Some(stages) = stages {
        per_stage.retain(|(stage, _, _)| stages.iter().any(|s| s.as_str() == stage));
    }
    match order {
        LatestOrder::FirstSeen => per_stage.sort_by_key(|(_, _, min)| *min),
        LatestOrder::StageName => per_stage.sort_by(|a, b| a.0.cmp(&b.0)),
    }
    let wanted: Vec<i64> = per_stage.iter().map(|(_, v, _)| *v).collect();
    let sql = format!(
        "SELECT {MV_COLUMNS} FROM model_versions mv WHERE mv.name = ? AND {}",
        c.dialect().in_list("mv.version")
    );
    let mut found = c
        .query(&sql, vec![name.into(), Bind::IntList(wanted.clone())])
        .await?
        .iter()
        .map(to_mv)
        .collect::<DbResult<Vec<_>>>()?;
    found.sort_by_key(|v| wanted.iter().position(|w| *w == v.version));
    load_mv_details(c, &mut found, with_aliases).await?;
    Ok(found)
}

const RM_COLUMNS: &str = "rm.name, rm.creation_time, rm.last_updated_time, rm.description";

fn to_rm(r: &Row) -> DbResult<RegisteredModel> {
    Ok(RegisteredModel {
        name: r.text(0)?,
        creation_timestamp: r.int(1)?,
        last_updated_timestamp: r.int(2)?,
        description: r.opt_text(3)?.unwrap_or_default(),
        tags: Vec::new(),
        aliases: Vec::new(),
        latest_versions: Vec::new(),
    })
}

async fn load_rm_details<C: Conn>(
    c: &mut C,
    rm: &mut RegisteredModel,
    order: LatestOrder,
) -> DbResult<()> {
    let sql = format!(
        "SELECT key, value FROM registered_model_tags WHERE name = ? ORDER BY {}",
        c.dialect().insertion_order()
    );
    rm.tags = c
        .query(&sql, vec![(&rm.name).into()])
        .await?
        .iter()
        .map(|r| Ok(Tag::new(r.text(0)?, r.text(1)?)))
        .collect::<DbResult<_>>()?;
    rm.aliases = c
        .query(
            "SELECT alias, version FROM registered_model_aliases WHERE name = ? ORDER BY alias",
            vec![(&rm.name).into()],
        )
        .await?
        .iter()
        .map(|r| Ok((r.text(0)?, r.int(1)?)))
        .collect::<DbResult<_>>()?;
    rm.latest_versions = latest_versions(c, &rm.name, None, order, false).await?;
    Ok(())
}

pub async fn get_rm<C: Conn>(c: &mut C, name: &str) -> DbResult<RegisteredModel> {
    let row = c
        .query_opt(
            &format!("SELECT {RM_COLUMNS} FROM registered_models rm WHERE rm.name = ?"),
            vec![name.into()],
        )
        .await?
        .ok_or_else(|| rm_not_found(name))?;
    let mut rm = to_rm(&row)?;
    load_rm_details(c, &mut rm, LatestOrder::FirstSeen).await?;
    Ok(rm)
}

pub async fn rename_rm<C: Conn>(c: &mut C, name: &str, new_name: &str) -> DbResult<()> {
    if !rm_exists_in_db(c, name, true).await? {
        return Err(rm_not_found(name).into());
    }
    if name != new_name && rm_exists_in_db(c, new_name, false).await? {
        return Err(rm_exists(new_name).into());
    }
    c.execute(
        "UPDATE registered_models SET name = ?, last_updated_time = ? WHERE name = ?",
        vec![new_name.into(), now_millis().into(), name.into()],
    )
    .await
    .map_err(|e| {
        if e.is_unique() {
            rm_exists(new_name).into()
        } else {
            e
        }
    })?;
    Ok(())
}

pub async fn update_rm<C: Conn>(c: &mut C, name: &str, description: Option<&str>) -> DbResult<()> {
    require_rm(c, name).await?;
    c.execute(
        "UPDATE registered_models SET description = COALESCE(?, description),
             last_updated_time = ? WHERE name = ?",
        vec![description.into(), now_millis().into(), name.into()],
    )
    .await?;
    Ok(())
}

pub async fn delete_rm<C: Conn>(c: &mut C, name: &str) -> DbResult<()> {
    require_rm(c, name).await?;
    c.execute(
        "DELETE FROM registered_models WHERE name = ?",
        vec![name.into()],
    )
    .await?;
    Ok(())
}

pub async fn set_rm_tag<C: Conn>(c: &mut C, name: &str, tag: &Tag) -> DbResult<()> {
    require_rm(c, name).await?;
    upsert_rm_tag(c, name, tag).await?;
    webhooks::registered_model_tag(c, name, &tag.key, Some(&tag.value)).await
}

pub async fn delete_rm_tag<C: Conn>(c: &mut C, name: &str, key: &str) -> DbResult<()> {
    require_rm(c, name).await?;
    // Deleting a tag that is not there is a no-op, as in MLflow.
    c.execute(
        "DELETE FROM registered_model_tags WHERE name = ? AND key = ?",
        vec![name.into(), key.into()],
    )
    .await?;
    webhooks::registered_model_tag(c, name, key, None).await
}

pub async fn get_latest<C: Conn>(
    c: &mut C,
    name: &str,
    stages: &[Stage],
) -> DbResult<Vec<ModelVersion>> {
    require_rm(c, name).await?;
    let stages = (!stages.is_empty()).then_some(stages);
    latest_versions(c, name, stages, LatestOrder::FirstSeen, true).await
}

// ---- aliases -----------------------------------------------------------------------------------

pub async fn set_alias<C: Conn>(c: &mut C, name: &str, alias: &str, version: i64) -> DbResult<()> {
    require_rm(c, name).await?;
    require_mv(c, name, version).await?;
    if alias_version(c, name, alias).await? != Some(version) {
        let set = ChangeKind::AliasSet(alias.to_string());
        history::record(c, name, version, &set, now_millis()).await?;
    }
    c.execute(
        "INSERT INTO registered_model_aliases (name, alias, version) VALUES (?, ?, ?)
         ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version",
        vec![name.into(), alias.into(), version.into()],
    )
    .await?;
    webhooks::alias(c, name, alias, Some(version)).await
}

/// The version an alias points at, if it is set.
async fn alias_version<C: Conn>(c: &mut C, name: &str, alias: &str) -> DbResult<Option<i64>> {
    c.query_opt(
        "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?",
        vec![name.into(), alias.into()],
    )
    .await?
    .map(|r| r.int(0))
    .transpose()
}

pub async fn delete_alias<C: Conn>(c: &mut C, name: &str, alias: &str) -> DbResult<()> {
    require_rm(c, name).await?;
    if let Some(version) = alias_version(c, name, alias).await? {
        let removed = ChangeKind::AliasRemoved(alias.to_string());
        history::record(c, name, version, &removed, now_millis()).await?;
    }
    c.execute(
        "DELETE FROM registered_model_aliases WHERE name = ? AND alias = ?",
        vec![name.into(), alias.into()],
    )
    .await?;
    webhooks::alias(c, name, alias, None).await
}

/// The model's newest `max` recorded changes (aliases, stages), oldest first.
pub async fn changes<C: Conn>(c: &mut C, name: &str, max: i64) -> DbResult<Vec<RegistryChange>> {
    require_rm(c, name).await?;
    history::changes(c, name, max).await
}

pub async fn get_by_alias<C: Conn>(c: &mut C, name: &str, alias: &str) -> DbResult<ModelVersion> {
    require_rm(c, name).await?;
    let row = if alias.eq_ignore_ascii_case("latest") {
        c.query_opt(
            "SELECT MAX(version) FROM model_versions WHERE name = ? AND current_stage != ?",
            vec![name.into(), DELETED_STAGE.into()],
        )
        .await?
    } else {
        c.query_opt(
            "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?",
            vec![name.into(), alias.into()],
        )
        .await?
    };
    let version = row
        .map(|r| r.opt_int(0))
        .transpose()?
        .flatten()
        .ok_or_else(|| Error::invalid(format!("Registered model alias {alias} not found.")))?;
    get_mv(c, name, version).await
}

// ---- versions ----------------------------------------------------------------------------------

/// Appends `{"name", "version"}` to the logged model's `mlflow.modelVersions` tag.
async fn link_logged_model<C: Conn>(
    c: &mut C,
    model_id: &str,
    name: &str,
    version: i64,
) -> DbResult<()> {
    let sql = format!(
        "SELECT value FROM logged_model_tags WHERE model_id = ? AND key = ?{}",
        c.dialect().for_update()
    );
    let current = c
        .query_opt(&sql, vec![model_id.into(), MODEL_VERSIONS_TAG.into()])
        .await?
        .map(|r| r.text(0))
        .transpose()?;
    c.execute(
        "INSERT INTO logged_model_tags (model_id, key, value) VALUES (?, ?, ?)
         ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value",
        vec![
            model_id.into(),
            MODEL_VERSIONS_TAG.into(),
            model_versions_tag(current, name, version).into(),
        ],
    )
    .await?;
    Ok(())
}

/// Allocates the next number (deleted versions included) inside the write transaction while
/// holding the registered model's row lock (PostgreSQL; SQLite's single writer serialises it),
/// so concurrent creates on any replica get consecutive, distinct versions.
pub async fn create_mv<C: Conn>(c: &mut C, new: &NewModelVersion) -> DbResult<i64> {
    if !rm_exists_in_db(c, &new.name, true).await? {
        return Err(rm_not_found(&new.name).into());
    }
    let version = c
        .query_opt(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions WHERE name = ?",
            vec![(&new.name).into()],
        )
        .await?
        .map(|r| r.int(0))
        .transpose()?
        .unwrap_or(1);
    let now = now_millis();
    c.execute(
        "INSERT INTO model_versions (name, version, creation_time, last_updated_time, description,
             user_id, current_stage, source, run_id, status, status_message, run_link,
             storage_location, model_id)
         VALUES (?, ?, ?, ?, ?, NULL, 'None', ?, ?, 'READY', NULL, ?, ?, ?)",
        vec![
            (&new.name).into(),
            version.into(),
            now.into(),
            now.into(),
            new.description.as_deref().unwrap_or("").into(),
            (&new.source).into(),
            new.run_id.as_deref().unwrap_or("").into(),
            new.run_link.as_deref().unwrap_or("").into(),
            new.storage_location.clone().into(),
            new.model_id.clone().into(),
        ],
    )
    .await?;
    for tag in &new.tags {
        upsert_mv_tag(c, &new.name, version, tag).await?;
    }
    if let Some(model_id) = &new.model_id {
        link_logged_model(c, model_id, &new.name, version).await?;
    }
    touch_rm(c, &new.name, now).await?;
    webhooks::model_version_created(
        c,
        &new.name,
        version,
        &new.source,
        new.run_id.as_deref(),
        &new.tags,
        new.description.as_deref(),
    )
    .await?;
    Ok(version)
}

pub async fn get_mv<C: Conn>(c: &mut C, name: &str, version: i64) -> DbResult<ModelVersion> {
    let row = c
        .query_opt(
            &format!(
                "SELECT {MV_COLUMNS} FROM model_versions mv WHERE mv.name = ? AND mv.version = ?"
            ),
            vec![name.into(), version.into()],
        )
        .await?
        .ok_or_else(|| mv_not_found(name, version))?;
    let mv = to_mv(&row)?;
    if mv.current_stage == DELETED_STAGE {
        return Err(mv_not_found(name, version).into());
    }
    let mut one = [mv];
    load_mv_details(c, &mut one, true).await?;
    let [mv] = one;
    Ok(mv)
}

pub async fn update_mv<C: Conn>(
    c: &mut C,
    name: &str,
    version: i64,
    description: Option<&str>,
) -> DbResult<()> {
    require_mv(c, name, version).await?;
    if let Some(d) = description {
        c.execute(
            "UPDATE model_versions SET description = ?, last_updated_time = ?
             WHERE name = ? AND version = ?",
            vec![d.into(), now_millis().into(), name.into(), version.into()],
        )
        .await?;
    }
    Ok(())
}

pub async fn delete_mv<C: Conn>(c: &mut C, name: &str, version: i64) -> DbResult<()> {
    require_mv(c, name, version).await?;
    let now = now_millis();
    c.execute(
        "UPDATE model_versions SET current_stage = ?, source = 'REDACTED-SOURCE-PATH',
             run_id = 'REDACTED-RUN-ID', run_link = 'REDACTED-RUN-LINK', last_updated_time = ?
         WHERE name = ? AND version = ?",
        vec![
            DELETED_STAGE.into(),
            now.into(),
            name.into(),
            version.into(),
        ],
    )
    .await?;
    history::record_aliases_removed(c, name, version, now).await?;
    c.execute(
        "DELETE FROM registered_model_aliases WHERE name = ? AND version = ?",
        vec![name.into(), version.into()],
    )
    .await?;
    touch_rm(c, name, now).await
}

pub async fn transition<C: Conn>(
    c: &mut C,
    name: &str,
    version: i64,
    stage: Stage,
    archive_existing: bool,
) -> DbResult<()> {
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
        history::record_archived(c, name, version, stage.as_str(), now).await?;
        c.execute(
            "UPDATE model_versions SET current_stage = 'Archived', last_updated_time = ?
             WHERE name = ? AND version != ? AND current_stage = ?",
            vec![
                now.into(),
                name.into(),
                version.into(),
                stage.as_str().into(),
            ],
        )
        .await?;
    }
    let before = c
        .query_opt(
            "SELECT current_stage FROM model_versions WHERE name = ? AND version = ?",
            vec![name.into(), version.into()],
        )
        .await?
        .map(|r| r.text(0))
        .transpose()?;
    c.execute(
        "UPDATE model_versions SET current_stage = ?, last_updated_time = ?
         WHERE name = ? AND version = ?",
        vec![
            stage.as_str().into(),
            now.into(),
            name.into(),
            version.into(),
        ],
    )
    .await?;
    if before.as_deref() != Some(stage.as_str()) {
        let entered = ChangeKind::Stage(stage.as_str().to_string());
        history::record(c, name, version, &entered, now).await?;
    }
    touch_rm(c, name, now).await
}

pub async fn set_mv_tag<C: Conn>(c: &mut C, name: &str, version: i64, tag: &Tag) -> DbResult<()> {
    require_mv(c, name, version).await?;
    upsert_mv_tag(c, name, version, tag).await?;
    webhooks::model_version_tag(c, name, version, &tag.key, Some(&tag.value)).await
}

pub async fn delete_mv_tag<C: Conn>(
    c: &mut C,
    name: &str,
    version: i64,
    key: &str,
) -> DbResult<()> {
    require_mv(c, name, version).await?;
    // Deleting a tag that is not there is a no-op, as in MLflow.
    c.execute(
        "DELETE FROM model_version_tags WHERE name = ? AND version = ? AND key = ?",
        vec![name.into(), version.into(), key.into()],
    )
    .await?;
    webhooks::model_version_tag(c, name, version, key, None).await
}

// ---- searches ----------------------------------------------------------------------------------

pub async fn search_rm<C: Conn>(c: &mut C, q: &RegistryQuery) -> DbResult<Page<RegisteredModel>> {
    let (sql, binds) = searches::registered_models(q, RM_COLUMNS)?;
    let (mut items, next_page_token) =
        fetch_page(c, &sql, binds, q.max_results, q.offset, to_rm).await?;
    for rm in &mut items {
        load_rm_details(c, rm, LatestOrder::StageName).await?;
    }
    Ok(Page {
        items,
        next_page_token,
    })
}

pub async fn search_mv<C: Conn>(c: &mut C, q: &RegistryQuery) -> DbResult<Page<ModelVersion>> {
    let (sql, binds) = searches::model_versions(q, MV_COLUMNS)?;
    let (mut items, next_page_token) =
        fetch_page(c, &sql, binds, q.max_results, q.offset, to_mv).await?;
    load_mv_details(c, &mut items, false).await?;
    Ok(Page {
        items,
        next_page_token,
    })
}

// ---- import ------------------------------------------------------------------------------------

pub async fn import_rm<C: Conn>(c: &mut C, rm: &RegisteredModel) -> DbResult<bool> {
    let inserted = c
        .execute(
            "INSERT INTO registered_models (name, creation_time, last_updated_time, description)
             VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
            vec![
                (&rm.name).into(),
                rm.creation_timestamp.into(),
                rm.last_updated_timestamp.into(),
                (&rm.description).into(),
            ],
        )
        .await?;
    if inserted == 0 {
        return Ok(false);
    }
    for tag in &rm.tags {
        upsert_rm_tag(c, &rm.name, tag).await?;
    }
    Ok(true)
}

pub async fn import_mv<C: Conn>(c: &mut C, mv: &ModelVersion) -> DbResult<bool> {
    require_rm(c, &mv.name).await?;
    let inserted = c
        .execute(
            "INSERT INTO model_versions (name, version, creation_time, last_updated_time,
                 description, user_id, current_stage, source, run_id, status, status_message,
                 run_link, storage_location, model_id)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (name, version) DO NOTHING",
            vec![
                (&mv.name).into(),
                mv.version.into(),
                mv.creation_timestamp.into(),
                mv.last_updated_timestamp.into(),
                (&mv.description).into(),
                mv.user_id.clone().into(),
                (&mv.current_stage).into(),
                (&mv.source).into(),
                (&mv.run_id).into(),
                (&mv.status).into(),
                mv.status_message.clone().into(),
                (&mv.run_link).into(),
                mv.storage_location.clone().into(),
                mv.model_id.clone().into(),
            ],
        )
        .await?;
    if inserted == 0 {
        return Ok(false);
    }
    for tag in &mv.tags {
        upsert_mv_tag(c, &mv.name, mv.version, tag).await?;
    }
    Ok(true)
}
