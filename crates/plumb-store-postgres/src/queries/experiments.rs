//! Experiment queries: create, get, search, rename, lifecycle, tags.

use plumb_core::entities::{Experiment, LifecycleStage, Page, Tag};
use plumb_core::{now_millis, Error, Result};
use plumb_store::sql::searches;
use plumb_store::{join_artifact_uri, ExperimentQuery, NewExperiment};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use crate::error::is_unique_violation;
use crate::queries::fetch_page;
use crate::R;

fn parse_id(id: &str) -> Result<i64> {
    id.parse::<i64>().map_err(|_| {
        Error::invalid(format!(
            "Invalid experiment ID '{id}'. Experiment ID must be a valid integer."
        ))
    })
}

fn not_found(id: &str) -> Error {
    Error::not_found(format!("No Experiment with id={id} exists"))
}

fn name_taken(name: &str) -> Error {
    Error::already_exists(format!(
        "Experiment(name={name}) already exists. Error: name is taken"
    ))
}

/// Creates experiment 0, "Default", when the database has none.
pub(crate) async fn ensure_default(c: &mut PgConnection, root: &str) -> R<()> {
    let now = now_millis();
    sqlx::query(
        "INSERT INTO experiments
         (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time)
         VALUES (0, 'Default', $1, 'active', $2, $2) ON CONFLICT DO NOTHING",
    )
    .bind(join_artifact_uri(root, "0"))
    .bind(now)
    .execute(&mut *c)
    .await?;
    Ok(())
}

pub(crate) async fn create(c: &mut PgConnection, new: &NewExperiment, root: &str) -> R<String> {
    let exists: Option<i64> =
        sqlx::query_scalar("SELECT experiment_id FROM experiments WHERE name = $1")
            .bind(&new.name)
            .fetch_optional(&mut *c)
            .await?;
    if exists.is_some() {
        return Err(name_taken(&new.name).into());
    }
    let now = now_millis();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, last_update_time)
         VALUES ($1, '', 'active', $2, $2) RETURNING experiment_id",
    )
    .bind(&new.name)
    .bind(now)
    .fetch_one(&mut *c)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            name_taken(&new.name).into()
        } else {
            crate::E::Db(e)
        }
    })?;
    let location = match &new.artifact_location {
        Some(loc) if !loc.is_empty() => loc.clone(),
        _ => join_artifact_uri(root, &id.to_string()),
    };
    sqlx::query("UPDATE experiments SET artifact_location = $1 WHERE experiment_id = $2")
        .bind(location)
        .bind(id)
        .execute(&mut *c)
        .await?;
    for tag in &new.tags {
        upsert_tag(c, id, tag).await?;
    }
    Ok(id.to_string())
}

async fn upsert_tag(c: &mut PgConnection, id: i64, tag: &Tag) -> R<()> {
    sqlx::query(
        "INSERT INTO experiment_tags (experiment_id, key, value) VALUES ($1, $2, $3)
         ON CONFLICT (experiment_id, key) DO UPDATE SET value = EXCLUDED.value",
    )
    .bind(id)
    .bind(&tag.key)
    .bind(&tag.value)
    .execute(&mut *c)
    .await?;
    Ok(())
}

const COLUMNS: &str = "e.experiment_id, e.name, e.artifact_location, e.lifecycle_stage, \
     e.creation_time, e.last_update_time";

fn row_to_experiment(r: &PgRow) -> Result<Experiment, sqlx::Error> {
    let stage: String = r.try_get(3)?;
    Ok(Experiment {
        experiment_id: r.try_get::<i64, _>(0)?.to_string(),
        name: r.try_get(1)?,
        artifact_location: r.try_get(2)?,
        lifecycle_stage: LifecycleStage::parse(&stage).unwrap_or(LifecycleStage::Active),
        creation_time: r.try_get(4)?,
        last_update_time: r.try_get(5)?,
        tags: Vec::new(),
    })
}

/// Fills the tags of experiments with one query.
async fn load_tags(c: &mut PgConnection, exps: &mut [Experiment]) -> R<()> {
    let ids: Vec<i64> = exps
        .iter()
        .filter_map(|e| e.experiment_id.parse().ok())
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let rows = sqlx::query(
        "SELECT experiment_id, key, value FROM experiment_tags WHERE experiment_id = ANY($1)
         ORDER BY experiment_id, seq",
    )
    .bind(&ids)
    .fetch_all(&mut *c)
    .await?;
    for r in rows {
        let id: i64 = r.try_get(0)?;
        let id = id.to_string();
        if let Some(e) = exps.iter_mut().find(|e| e.experiment_id == id) {
            e.tags.push(Tag::new(
                r.try_get::<String, _>(1)?,
                r.try_get::<String, _>(2)?,
            ));
        }
    }
    Ok(())
}

pub(crate) async fn get(c: &mut PgConnection, id: &str) -> R<Experiment> {
    let num = parse_id(id)?;
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM experiments e WHERE e.experiment_id = $1"
    ))
    .bind(num)
    .fetch_optional(&mut *c)
    .await?
    .ok_or_else(|| not_found(id))?;
    let mut exp = [row_to_experiment(&row)?];
    load_tags(c, &mut exp).await?;
    let [exp] = exp;
    Ok(exp)
}

pub(crate) async fn get_by_name(c: &mut PgConnection, name: &str) -> R<Experiment> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM experiments e WHERE e.name = $1"
    ))
    .bind(name)
    .fetch_optional(&mut *c)
    .await?
    .ok_or_else(|| Error::not_found(format!("Could not find experiment with name '{name}'")))?;
    let mut exp = [row_to_experiment(&row)?];
    load_tags(c, &mut exp).await?;
    let [exp] = exp;
    Ok(exp)
}

/// The active experiment with this id, or the MLflow error for a missing / deleted one.
/// The experiment's numeric id and lifecycle stage, or the MLflow error for a missing one.
async fn stage_of(c: &mut PgConnection, id: &str) -> R<(i64, String)> {
    let num = parse_id(id)?;
    let stage: Option<String> =
        sqlx::query_scalar("SELECT lifecycle_stage FROM experiments WHERE experiment_id = $1")
            .bind(num)
            .fetch_optional(&mut *c)
            .await?;
    Ok((num, stage.ok_or_else(|| not_found(id))?))
}

/// The experiment with this id in any stage, or the MLflow error for a missing one.
pub(crate) async fn require_exists(c: &mut PgConnection, id: &str) -> R<i64> {
    Ok(stage_of(c, id).await?.0)
}

pub(crate) async fn require_active(c: &mut PgConnection, id: &str) -> R<i64> {
    match stage_of(c, id).await? {
        (num, stage) if stage == "active" => Ok(num),
        (_, other) => Err(Error::invalid(format!(
            "The experiment {id} must be in the 'active' state. Current state is {other}."
        ))
        .into()),
    }
}

pub(crate) async fn rename(c: &mut PgConnection, id: &str, new_name: &str) -> R<()> {
    let exp = get(c, id).await?;
    if exp.lifecycle_stage != LifecycleStage::Active {
        return Err(Error::new(
            plumb_core::ErrorCode::InvalidState,
            "Cannot rename a non-active experiment.",
        )
        .into());
    }
    let taken_message =
        || Error::already_exists(format!("Experiment(name={new_name}) already exists."));
    let taken: Option<i64> =
        sqlx::query_scalar("SELECT experiment_id FROM experiments WHERE name = $1")
            .bind(new_name)
            .fetch_optional(&mut *c)
            .await?;
    if taken.is_some_and(|t| t.to_string() != exp.experiment_id) {
        return Err(taken_message().into());
    }
    sqlx::query("UPDATE experiments SET name = $1, last_update_time = $2 WHERE experiment_id = $3")
        .bind(new_name)
        .bind(now_millis())
        .bind(parse_id(id)?)
        .execute(&mut *c)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                taken_message().into()
            } else {
                crate::E::Db(e)
            }
        })?;
    Ok(())
}

/// Deletes (or restores) an experiment together with its runs.
pub(crate) async fn set_lifecycle(c: &mut PgConnection, id: &str, delete: bool) -> R<()> {
    let num = parse_id(id)?;
    let exp = get(c, id).await?;
    let (from, to) = if delete {
        ("active", "deleted")
    } else {
        ("deleted", "active")
    };
    if exp.lifecycle_stage.as_str() != from {
        return Err(not_found(id).into());
    }
    let now = now_millis();
    sqlx::query(
        "UPDATE experiments SET lifecycle_stage = $1, last_update_time = $2 WHERE experiment_id = $3",
    )
    .bind(to)
    .bind(now)
    .bind(num)
    .execute(&mut *c)
    .await?;
    let deleted_time = if delete { Some(now) } else { None };
    sqlx::query(
        "UPDATE runs SET lifecycle_stage = $1, deleted_time = $2
         WHERE experiment_id = $3 AND lifecycle_stage = $4",
    )
    .bind(to)
    .bind(deleted_time)
    .bind(num)
    .bind(from)
    .execute(&mut *c)
    .await?;
    Ok(())
}

pub(crate) async fn set_tag(c: &mut PgConnection, id: &str, tag: &Tag) -> R<()> {
    let num = require_active(c, id).await?;
    upsert_tag(c, num, tag).await
}

pub(crate) async fn delete_tag(c: &mut PgConnection, id: &str, key: &str) -> R<()> {
    let num = require_active(c, id).await?;
    let n = sqlx::query("DELETE FROM experiment_tags WHERE experiment_id = $1 AND key = $2")
        .bind(num)
        .bind(key)
        .execute(&mut *c)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(Error::not_found(format!(
            "No tag with name: {key} in experiment with id {id}"
        ))
        .into());
    }
    Ok(())
}

pub(crate) async fn search(c: &mut PgConnection, q: &ExperimentQuery) -> R<Page<Experiment>> {
    let (sql, binds) = searches::experiments(q, COLUMNS)?;
    let (mut items, next_page_token) =
        fetch_page(c, &sql, binds, q.max_results, q.offset, row_to_experiment).await?;
    load_tags(c, &mut items).await?;
    Ok(Page {
        items,
        next_page_token,
    })
}

/// An experiment with its original id, name, times and stage; `false` when the id exists. The
/// id sequence is moved past it, so experiments created later get new ids.
pub(crate) async fn import(c: &mut PgConnection, exp: &Experiment) -> R<bool> {
    let num = parse_id(&exp.experiment_id)?;
    let inserted = sqlx::query(&format!(
        "INSERT INTO experiments ({}) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (experiment_id) DO NOTHING",
        COLUMNS.replace("e.", "")
    ))
    .bind(num)
    .bind(&exp.name)
    .bind(&exp.artifact_location)
    .bind(exp.lifecycle_stage.as_str())
    .bind(exp.creation_time)
    .bind(exp.last_update_time)
    .execute(&mut *c)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            Error::already_exists(format!(
                "cannot import experiment {}: the name '{}' is taken by another experiment",
                exp.experiment_id, exp.name
            ))
            .into()
        } else {
            crate::E::Db(e)
        }
    })?
    .rows_affected();
    if inserted == 0 {
        return Ok(false);
    }
    sqlx::query(
        "SELECT setval(pg_get_serial_sequence('experiments', 'experiment_id'),
                       GREATEST((SELECT MAX(experiment_id) FROM experiments), 1))",
    )
    .execute(&mut *c)
    .await?;
    for tag in &exp.tags {
        upsert_tag(c, num, tag).await?;
    }
    Ok(true)
}
