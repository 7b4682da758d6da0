//! Experiment queries: create, get, search, rename, lifecycle, tags.

use plumb_core::entities::{Experiment, LifecycleStage, Page, Tag};
use plumb_core::{now_millis, Error, Result};
use plumb_store::sql::searches;
use plumb_store::{join_artifact_uri, ExperimentQuery, NewExperiment};
use rusqlite::{params, Connection, OptionalExtension};

use crate::db_err;
use crate::render::{fetch_page, to_sql};

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

/// Creates experiment 0, "Default", when the database has none.
pub(crate) fn ensure_default(conn: &Connection, root: &str) -> Result<()> {
    let now = now_millis();
    conn.execute(
        "INSERT OR IGNORE INTO experiments
         (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time)
         VALUES (0, 'Default', ?1, 'active', ?2, ?2)",
        params![join_artifact_uri(root, "0"), now],
    )
    .map_err(db_err)?;
    Ok(())
}

pub(crate) fn create(conn: &Connection, new: &NewExperiment, root: &str) -> Result<String> {
    let exists: Option<i64> = conn
        .query_row(
            "SELECT experiment_id FROM experiments WHERE name = ?1",
            [&new.name],
            |r| r.get(0),
        )
        .optional()
        .map_err(db_err)?;
    if exists.is_some() {
        return Err(Error::already_exists(format!(
            "Experiment(name={}) already exists. Error: name is taken",
            new.name
        )));
    }
    let now = now_millis();
    conn.execute(
        "INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, last_update_time)
         VALUES (?1, '', 'active', ?2, ?2)",
        params![new.name, now],
    )
    .map_err(db_err)?;
    let id = conn.last_insert_rowid();
    let location = match &new.artifact_location {
        Some(loc) if !loc.is_empty() => loc.clone(),
        _ => join_artifact_uri(root, &id.to_string()),
    };
    conn.execute(
        "UPDATE experiments SET artifact_location = ?1 WHERE experiment_id = ?2",
        params![location, id],
    )
    .map_err(db_err)?;
    for tag in &new.tags {
        upsert_tag(conn, id, tag)?;
    }
    Ok(id.to_string())
}

fn upsert_tag(conn: &Connection, id: i64, tag: &Tag) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO experiment_tags (experiment_id, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value",
    )
    .and_then(|mut s| s.execute(params![id, tag.key, tag.value]))
    .map_err(db_err)?;
    Ok(())
}

const COLUMNS: &str =
    "experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time";

fn row_to_experiment(r: &rusqlite::Row<'_>) -> rusqlite::Result<Experiment> {
    let stage: String = r.get(3)?;
    Ok(Experiment {
        experiment_id: r.get::<_, i64>(0)?.to_string(),
        name: r.get(1)?,
        artifact_location: r.get(2)?,
        lifecycle_stage: LifecycleStage::parse(&stage).unwrap_or(LifecycleStage::Active),
        creation_time: r.get(4)?,
        last_update_time: r.get(5)?,
        tags: Vec::new(),
    })
}

fn load_tags(conn: &Connection, exp: &mut Experiment) -> Result<()> {
    let id: i64 = exp.experiment_id.parse().unwrap_or(-1);
    let mut stmt = conn
        .prepare_cached(
            "SELECT key, value FROM experiment_tags WHERE experiment_id = ?1 ORDER BY rowid",
        )
        .map_err(db_err)?;
    exp.tags = stmt
        .query_map([id], |r| {
            Ok(Tag::new(r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .and_then(|rows| rows.collect())
        .map_err(db_err)?;
    Ok(())
}

pub(crate) fn get(conn: &Connection, id: &str) -> Result<Experiment> {
    let num = parse_id(id)?;
    let mut exp = conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM experiments WHERE experiment_id = ?1"),
            [num],
            row_to_experiment,
        )
        .optional()
        .map_err(db_err)?
        .ok_or_else(|| not_found(id))?;
    load_tags(conn, &mut exp)?;
    Ok(exp)
}

pub(crate) fn get_by_name(conn: &Connection, name: &str) -> Result<Experiment> {
    let mut exp = conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM experiments WHERE name = ?1"),
            [name],
            row_to_experiment,
        )
        .optional()
        .map_err(db_err)?
        .ok_or_else(|| Error::not_found(format!("Could not find experiment with name '{name}'")))?;
    load_tags(conn, &mut exp)?;
    Ok(exp)
}

/// The experiment's numeric id and lifecycle stage, or the MLflow error for a missing one.
fn stage_of(conn: &Connection, id: &str) -> Result<(i64, String)> {
    let num = parse_id(id)?;
    conn.query_row(
        "SELECT lifecycle_stage FROM experiments WHERE experiment_id = ?1",
        [num],
        |r| r.get(0),
    )
    .optional()
    .map_err(db_err)?
    .map(|stage| (num, stage))
    .ok_or_else(|| not_found(id))
}

/// The experiment with this id in any stage, or the MLflow error for a missing one.
pub(crate) fn require_exists(conn: &Connection, id: &str) -> Result<i64> {
    stage_of(conn, id).map(|(num, _)| num)
}

/// The active experiment with this id, or the MLflow error for a missing / deleted one.
pub(crate) fn require_active(conn: &Connection, id: &str) -> Result<i64> {
    match stage_of(conn, id)? {
        (num, stage) if stage == "active" => Ok(num),
        (_, other) => Err(Error::invalid(format!(
            "The experiment {id} must be in the 'active' state. Current state is {other}."
        ))),
    }
}

pub(crate) fn rename(conn: &Connection, id: &str, new_name: &str) -> Result<()> {
    let exp = get(conn, id)?;
    if exp.lifecycle_stage != LifecycleStage::Active {
        return Err(Error::new(
            plumb_core::ErrorCode::InvalidState,
            "Cannot rename a non-active experiment.",
        ));
    }
    let taken: Option<i64> = conn
        .query_row(
            "SELECT experiment_id FROM experiments WHERE name = ?1",
            [new_name],
            |r| r.get(0),
        )
        .optional()
        .map_err(db_err)?;
    if taken.is_some_and(|t| t.to_string() != exp.experiment_id) {
        return Err(Error::already_exists(format!(
            "Experiment(name={new_name}) already exists."
        )));
    }
    conn.execute(
        "UPDATE experiments SET name = ?1, last_update_time = ?2 WHERE experiment_id = ?3",
        params![new_name, now_millis(), parse_id(id)?],
    )
    .map_err(db_err)?;
    Ok(())
}

/// Deletes (or restores) an experiment together with its runs.
pub(crate) fn set_lifecycle(conn: &Connection, id: &str, delete: bool) -> Result<()> {
    let num = parse_id(id)?;
    let exp = get(conn, id)?;
    let (from, to) = if delete {
        ("active", "deleted")
    } else {
        ("deleted", "active")
    };
    if exp.lifecycle_stage.as_str() != from {
        return Err(not_found(id));
    }
    let now = now_millis();
    conn.execute(
        "UPDATE experiments SET lifecycle_stage = ?1, last_update_time = ?2 WHERE experiment_id = ?3",
        params![to, now, num],
    )
    .map_err(db_err)?;
    let deleted_time = if delete { Some(now) } else { None };
    conn.execute(
        "UPDATE runs SET lifecycle_stage = ?1, deleted_time = ?2 WHERE experiment_id = ?3 AND lifecycle_stage = ?4",
        params![to, deleted_time, num, from],
    )
    .map_err(db_err)?;
    Ok(())
}

pub(crate) fn set_tag(conn: &Connection, id: &str, tag: &Tag) -> Result<()> {
    let num = require_active(conn, id)?;
    upsert_tag(conn, num, tag)
}

pub(crate) fn delete_tag(conn: &Connection, id: &str, key: &str) -> Result<()> {
    let num = require_active(conn, id)?;
    let n = conn
        .execute(
            "DELETE FROM experiment_tags WHERE experiment_id = ?1 AND key = ?2",
            params![num, key],
        )
        .map_err(db_err)?;
    if n == 0 {
        return Err(Error::not_found(format!(
            "No tag with name: {key} in experiment with id {id}"
        )));
    }
    Ok(())
}

pub(crate) fn search(conn: &Connection, q: &ExperimentQuery) -> Result<Page<Experiment>> {
    let columns = COLUMNS
        .split(", ")
        .map(|c| format!("e.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let (sql, binds) = searches::experiments(q, &columns)?;
    let (mut items, next_page_token) = fetch_page(
        conn,
        &sql,
        to_sql(binds),
        q.max_results,
        q.offset,
        row_to_experiment,
    )?;
    for exp in &mut items {
        load_tags(conn, exp)?;
    }
    Ok(Page {
        items,
        next_page_token,
    })
}

/// An experiment with its original id, name, times and stage; `false` when the id exists.
pub(crate) fn import(conn: &Connection, exp: &Experiment) -> Result<bool> {
    let num = parse_id(&exp.experiment_id)?;
    let exists: Option<i64> = conn
        .query_row(
            "SELECT experiment_id FROM experiments WHERE experiment_id = ?1",
            [num],
            |r| r.get(0),
        )
        .optional()
        .map_err(db_err)?;
    if exists.is_some() {
        return Ok(false);
    }
    conn.execute(
        &format!("INSERT INTO experiments ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
        params![
            num,
            exp.name,
            exp.artifact_location,
            exp.lifecycle_stage.as_str(),
            exp.creation_time,
            exp.last_update_time
        ],
    )
    .map_err(|e| match db_err(e) {
        err if err.message.contains("UNIQUE") => Error::already_exists(format!(
            "cannot import experiment {}: the name '{}' is taken by another experiment",
            exp.experiment_id, exp.name
        )),
        err => err,
    })?;
    for tag in &exp.tags {
        upsert_tag(conn, num, tag)?;
    }
    Ok(true)
}
