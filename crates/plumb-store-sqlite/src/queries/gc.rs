//! Garbage collection: finding deleted runs and experiments, and removing them for good.

use plumb_core::{Error, Result};
use plumb_store::Deleted;
use rusqlite::{params, Connection, OptionalExtension};

use crate::db_err;

pub(crate) fn deleted(conn: &Connection, before: Option<i64>) -> Result<Deleted> {
    let before = before.unwrap_or(i64::MAX);
    let mut stmt = conn
        .prepare(
            "SELECT run_uuid, experiment_id, artifact_uri FROM runs
             WHERE lifecycle_stage = 'deleted' AND COALESCE(deleted_time, 0) < ?1
             ORDER BY run_pk",
        )
        .map_err(db_err)?;
    let runs = stmt
        .query_map([before], |r| {
            Ok((r.get(0)?, r.get::<_, i64>(1)?.to_string(), r.get(2)?))
        })
        .and_then(|rows| rows.collect())
        .map_err(db_err)?;
    let mut stmt = conn
        .prepare(
            "SELECT experiment_id, artifact_location FROM experiments
             WHERE lifecycle_stage = 'deleted' AND last_update_time < ?1 ORDER BY experiment_id",
        )
        .map_err(db_err)?;
    let experiments = stmt
        .query_map([before], |r| {
            Ok((r.get::<_, i64>(0)?.to_string(), r.get(1)?))
        })
        .and_then(|rows| rows.collect())
        .map_err(db_err)?;
    Ok(Deleted { runs, experiments })
}

/// The row ids of runs, each of which must be deleted.
fn deleted_run_pk(conn: &Connection, run_id: &str) -> Result<i64> {
    let row: Option<(i64, String)> = conn
        .query_row(
            "SELECT run_pk, lifecycle_stage FROM runs WHERE run_uuid = ?1",
            [run_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(db_err)?;
    match row {
        None => Err(Error::not_found(format!("Run with id={run_id} not found"))),
        Some((pk, stage)) if stage == "deleted" => Ok(pk),
        Some(_) => Err(Error::invalid(format!(
            "Run {run_id} is not in the 'deleted' lifecycle stage; only deleted runs can be removed"
        ))),
    }
}

fn purge_run_pks(conn: &Connection, pks: &[i64]) -> Result<()> {
    for table in [
        "metrics",
        "latest_metrics",
        "params",
        "tags",
        "input_tags",
        "run_inputs",
        "run_model_inputs",
        "run_model_outputs",
        "runs",
    ] {
        let mut stmt = conn
            .prepare(&format!("DELETE FROM {table} WHERE run_pk = ?1"))
            .map_err(db_err)?;
        for pk in pks {
            stmt.execute([pk]).map_err(db_err)?;
        }
    }
    Ok(())
}

pub(crate) fn purge(
    conn: &Connection,
    run_ids: &[String],
    experiment_ids: &[String],
) -> Result<()> {
    let mut pks = Vec::with_capacity(run_ids.len());
    for id in run_ids {
        pks.push(deleted_run_pk(conn, id)?);
    }
    let mut exps = Vec::with_capacity(experiment_ids.len());
    for id in experiment_ids {
        let num: i64 = id
            .parse()
            .map_err(|_| Error::invalid(format!("Invalid experiment ID '{id}'")))?;
        let stage: Option<String> = conn
            .query_row(
                "SELECT lifecycle_stage FROM experiments WHERE experiment_id = ?1",
                [num],
                |r| r.get(0),
            )
            .optional()
            .map_err(db_err)?;
        match stage.as_deref() {
            None => {
                return Err(Error::not_found(format!(
                    "No Experiment with id={id} exists"
                )))
            }
            Some("deleted") => exps.push(num),
            Some(_) => {
                return Err(Error::invalid(format!(
                    "Experiment {id} is not in the 'deleted' lifecycle stage; only deleted \
                     experiments can be removed"
                )))
            }
        }
    }
    for exp in &exps {
        let mut stmt = conn
            .prepare("SELECT run_pk FROM runs WHERE experiment_id = ?1")
            .map_err(db_err)?;
        let run_pks: Vec<i64> = stmt
            .query_map([exp], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(db_err)?;
        pks.extend(run_pks);
    }
    pks.sort_unstable();
    pks.dedup();
    purge_run_pks(conn, &pks)?;
    for exp in &exps {
        for sql in [
            "DELETE FROM logged_model_tags WHERE model_id IN (SELECT model_id FROM logged_models WHERE experiment_id = ?1)",
            "DELETE FROM logged_model_params WHERE model_id IN (SELECT model_id FROM logged_models WHERE experiment_id = ?1)",
            "DELETE FROM logged_model_metrics WHERE model_id IN (SELECT model_id FROM logged_models WHERE experiment_id = ?1)",
            "DELETE FROM logged_models WHERE experiment_id = ?1",
            "DELETE FROM datasets WHERE experiment_id = ?1",
            "DELETE FROM experiment_tags WHERE experiment_id = ?1",
            "DELETE FROM experiments WHERE experiment_id = ?1",
        ] {
            conn.execute(sql, params![exp]).map_err(db_err)?;
        }
    }
    Ok(())
}
