//! Experiments: create, get, search, rename, lifecycle, tags, import.

use plumb_core::entities::{Experiment, LifecycleStage, Page, Tag};
use plumb_core::{now_millis, Error, ErrorCode, Result};

use crate::db::{fetch_page, no_row, Bind, Conn, DbResult, Dialect, Row};
use crate::sql::searches;
use crate::{join_artifact_uri, ExperimentQuery, NewExperiment};

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

const COLUMNS: &str = "e.experiment_id, e.name, e.artifact_location, e.lifecycle_stage, \
     e.creation_time, e.last_update_time";

fn to_experiment(r: &Row) -> DbResult<Experiment> {
    Ok(Experiment {
        experiment_id: r.int(0)?.to_string(),
        name: r.text(1)?,
        artifact_location: r.text(2)?,
        lifecycle_stage: LifecycleStage::parse(&r.text(3)?).unwrap_or(LifecycleStage::Active),
        creation_time: r.int(4)?,
        last_update_time: r.int(5)?,
        tags: Vec::new(),
    })
}

/// Creates experiment 0, "Default", when the database has none.
pub async fn ensure_default<C: Conn>(c: &mut C, root: &str) -> DbResult<()> {
    let now = now_millis();
    c.execute(
        "INSERT INTO experiments
         (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time)
         VALUES (0, 'Default', ?, 'active', ?, ?) ON CONFLICT DO NOTHING",
        vec![join_artifact_uri(root, "0").into(), now.into(), now.into()],
    )
    .await?;
    Ok(())
}

pub async fn create<C: Conn>(c: &mut C, new: &NewExperiment, root: &str) -> DbResult<String> {
    let exists = c
        .query_opt(
            "SELECT experiment_id FROM experiments WHERE name = ?",
            vec![(&new.name).into()],
        )
        .await?;
    if exists.is_some() {
        return Err(name_taken(&new.name).into());
    }
    let now = now_millis();
    let row = c
        .query_opt(
            "INSERT INTO experiments
             (name, artifact_location, lifecycle_stage, creation_time, last_update_time)
             VALUES (?, '', 'active', ?, ?) RETURNING experiment_id",
            vec![(&new.name).into(), now.into(), now.into()],
        )
        .await
        .map_err(|e| {
            if e.is_unique() {
                name_taken(&new.name).into()
            } else {
                e
            }
        })?
        .ok_or_else(|| no_row("a new experiment"))?;
    let id = row.int(0)?;
    let location = match &new.artifact_location {
        Some(loc) if !loc.is_empty() => loc.clone(),
        _ => join_artifact_uri(root, &id.to_string()),
    };
    c.execute(
        "UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?",
        vec![location.into(), id.into()],
    )
    .await?;
    for tag in &new.tags {
        upsert_tag(c, id, tag).await?;
    }
    Ok(id.to_string())
}

async fn upsert_tag<C: Conn>(c: &mut C, id: i64, tag: &Tag) -> DbResult<()> {
    c.execute(
        "INSERT INTO experiment_tags (experiment_id, key, value) VALUES (?, ?, ?)
         ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value",
        vec![id.into(), (&tag.key).into(), (&tag.value).into()],
    )
    .await?;
    Ok(())
}

/// Fills the tags of experiments (in the order they were first set) with one query.
async fn load_tags<C: Conn>(c: &mut C, exps: &mut [Experiment]) -> DbResult<()> {
    let ids: Vec<i64> = exps
        .iter()
        .filter_map(|e| e.experiment_id.parse().ok())
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let d = c.dialect();
    let sql = format!(
        "SELECT experiment_id, key, value FROM experiment_tags WHERE {}
         ORDER BY experiment_id, {}",
        d.in_list("experiment_id"),
        d.insertion_order()
    );
    for r in c.query(&sql, vec![Bind::IntList(ids)]).await? {
        let id = r.int(0)?.to_string();
        if let Some(e) = exps.iter_mut().find(|e| e.experiment_id == id) {
            e.tags.push(Tag::new(r.text(1)?, r.text(2)?));
        }
    }
    Ok(())
}

async fn one<C: Conn>(
    c: &mut C,
    row: Option<Row>,
    missing: impl FnOnce() -> Error,
) -> DbResult<Experiment> {
    let row = row.ok_or_else(missing)?;
    let mut exp = [to_experiment(&row)?];
    load_tags(c, &mut exp).await?;
    let [exp] = exp;
    Ok(exp)
}

pub async fn get<C: Conn>(c: &mut C, id: &str) -> DbResult<Experiment> {
    let num = parse_id(id)?;
    let row = c
        .query_opt(
            &format!("SELECT {COLUMNS} FROM experiments e WHERE e.experiment_id = ?"),
            vec![num.into()],
        )
        .await?;
    one(c, row, || not_found(id)).await
}

pub async fn get_by_name<C: Conn>(c: &mut C, name: &str) -> DbResult<Experiment> {
    let row = c
        .query_opt(
            &format!("SELECT {COLUMNS} FROM experiments e WHERE e.name = ?"),
            vec![name.into()],
        )
        .await?;
    one(c, row, || {
        Error::not_found(format!("Could not find experiment with name '{name}'"))
    })
    .await
}

/// The experiment's numeric id and lifecycle stage, or the MLflow error for a missing one.
async fn stage_of<C: Conn>(c: &mut C, id: &str) -> DbResult<(i64, String)> {
    let num = parse_id(id)?;
    let row = c
        .query_opt(
            "SELECT lifecycle_stage FROM experiments WHERE experiment_id = ?",
            vec![num.into()],
        )
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok((num, row.text(0)?))
}

/// The experiment with this id in any stage, or the MLflow error for a missing one.
pub async fn require_exists<C: Conn>(c: &mut C, id: &str) -> DbResult<i64> {
    Ok(stage_of(c, id).await?.0)
}

/// The active experiment with this id, or the MLflow error for a missing / deleted one.
pub async fn require_active<C: Conn>(c: &mut C, id: &str) -> DbResult<i64> {
    match stage_of(c, id).await? {
        (num, stage) if stage == "active" => Ok(num),
        (_, other) => Err(Error::invalid(format!(
            "The experiment {id} must be in the 'active' state. Current state is {other}."
        ))
        .into()),
    }
}

pub async fn rename<C: Conn>(c: &mut C, id: &str, new_name: &str) -> DbResult<()> {
    let exp = get(c, id).await?;
    if exp.lifecycle_stage != LifecycleStage::Active {
        return Err(Error::new(
            ErrorCode::InvalidState,
            "Cannot rename a non-active experiment.",
        )
        .into());
    }
    let taken = || Error::already_exists(format!("Experiment(name={new_name}) already exists."));
    let holder = c
        .query_opt(
            "SELECT experiment_id FROM experiments WHERE name = ?",
            vec![new_name.into()],
        )
        .await?;
    if let Some(row) = holder {
        if row.int(0)?.to_string() != exp.experiment_id {
            return Err(taken().into());
        }
    }
    c.execute(
        "UPDATE experiments SET name = ?, last_update_time = ? WHERE experiment_id = ?",
        vec![new_name.into(), now_millis().into(), parse_id(id)?.into()],
    )
    .await
    .map_err(|e| if e.is_unique() { taken().into() } else { e })?;
    Ok(())
}

/// Deletes (or restores) an experiment together with its runs.
pub async fn set_lifecycle<C: Conn>(c: &mut C, id: &str, delete: bool) -> DbResult<()> {
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
    c.execute(
        "UPDATE experiments SET lifecycle_stage = ?, last_update_time = ? WHERE experiment_id = ?",
        vec![to.into(), now.into(), num.into()],
    )
    .await?;
    let deleted_time = delete.then_some(now);
    c.execute(
        "UPDATE runs SET lifecycle_stage = ?, deleted_time = ?
         WHERE experiment_id = ? AND lifecycle_stage = ?",
        vec![to.into(), deleted_time.into(), num.into(), from.into()],
    )
    .await?;
    Ok(())
}

pub async fn set_tag<C: Conn>(c: &mut C, id: &str, tag: &Tag) -> DbResult<()> {
    let num = require_active(c, id).await?;
    upsert_tag(c, num, tag).await
}

pub async fn delete_tag<C: Conn>(c: &mut C, id: &str, key: &str) -> DbResult<()> {
    let num = require_active(c, id).await?;
    let n = c
        .execute(
            "DELETE FROM experiment_tags WHERE experiment_id = ? AND key = ?",
            vec![num.into(), key.into()],
        )
        .await?;
    if n == 0 {
        return Err(Error::not_found(format!(
            "No tag with name: {key} in experiment with id {id}"
        ))
        .into());
    }
    Ok(())
}

pub async fn search<C: Conn>(c: &mut C, q: &ExperimentQuery) -> DbResult<Page<Experiment>> {
    let (sql, binds) = searches::experiments(q, COLUMNS)?;
    let (mut items, next_page_token) =
        fetch_page(c, &sql, binds, q.max_results, q.offset, to_experiment).await?;
    load_tags(c, &mut items).await?;
    Ok(Page {
        items,
        next_page_token,
    })
}

/// An experiment with its original id, name, times and stage; `false` when the id exists. On
/// PostgreSQL the id sequence is moved past it, so experiments created later get new ids
/// (SQLite's next id is already past the largest).
pub async fn import<C: Conn>(c: &mut C, exp: &Experiment) -> DbResult<bool> {
    let num = parse_id(&exp.experiment_id)?;
    let inserted = c
        .execute(
            &format!(
                "INSERT INTO experiments ({}) VALUES (?, ?, ?, ?, ?, ?)
                 ON CONFLICT (experiment_id) DO NOTHING",
                COLUMNS.replace("e.", "")
            ),
            vec![
                num.into(),
                (&exp.name).into(),
                (&exp.artifact_location).into(),
                exp.lifecycle_stage.as_str().into(),
                exp.creation_time.into(),
                exp.last_update_time.into(),
            ],
        )
        .await
        .map_err(|e| {
            if e.is_unique() {
                Error::already_exists(format!(
                    "cannot import experiment {}: the name '{}' is taken by another experiment",
                    exp.experiment_id, exp.name
                ))
                .into()
            } else {
                e
            }
        })?;
    if inserted == 0 {
        return Ok(false);
    }
    if c.dialect() == Dialect::Postgres {
        c.execute(
            "SELECT setval(pg_get_serial_sequence('experiments', 'experiment_id'),
                           GREATEST((SELECT MAX(experiment_id) FROM experiments), 1))",
            Vec::new(),
        )
        .await?;
    }
    for tag in &exp.tags {
        upsert_tag(c, num, tag).await?;
    }
    Ok(true)
}
