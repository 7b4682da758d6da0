//! Garbage collection: finding deleted runs and experiments, and removing them for good.

use plumb_core::Error;

use crate::db::{Bind, Conn, DbResult};
use crate::{Deleted, DeletedExperiment, DeletedRun};

pub async fn deleted<C: Conn>(c: &mut C, before: Option<i64>) -> DbResult<Deleted> {
    let before = before.unwrap_or(i64::MAX);
    let runs = c
        .query(
            "SELECT run_uuid, experiment_id, artifact_uri FROM runs
             WHERE lifecycle_stage = 'deleted' AND COALESCE(deleted_time, 0) < ? ORDER BY run_pk",
            vec![before.into()],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(DeletedRun {
                run_id: r.text(0)?,
                experiment_id: r.int(1)?.to_string(),
                artifact_uri: r.text(2)?,
            })
        })
        .collect::<DbResult<Vec<_>>>()?;
    let experiments = c
        .query(
            "SELECT experiment_id, artifact_location FROM experiments
             WHERE lifecycle_stage = 'deleted' AND last_update_time < ? ORDER BY experiment_id",
            vec![before.into()],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(DeletedExperiment {
                experiment_id: r.int(0)?.to_string(),
                artifact_location: r.text(1)?,
            })
        })
        .collect::<DbResult<Vec<_>>>()?;
    Ok(Deleted { runs, experiments })
}

/// Tables holding a run's rows, children first.
const RUN_TABLES: [&str; 9] = [
    "metrics",
    "latest_metrics",
    "params",
    "tags",
    "input_tags",
    "run_inputs",
    "run_model_inputs",
    "run_model_outputs",
    "runs",
];

/// Statements removing an experiment's own rows (after its runs), children first; each takes
/// the list of experiment ids where `{in}` stands.
const EXPERIMENT_ROWS: [&str; 7] = [
    "DELETE FROM logged_model_tags WHERE model_id IN (SELECT model_id FROM logged_models WHERE {in})",
    "DELETE FROM logged_model_params WHERE model_id IN (SELECT model_id FROM logged_models WHERE {in})",
    "DELETE FROM logged_model_metrics WHERE model_id IN (SELECT model_id FROM logged_models WHERE {in})",
    "DELETE FROM logged_models WHERE {in}",
    "DELETE FROM datasets WHERE {in}",
    "DELETE FROM experiment_tags WHERE {in}",
    "DELETE FROM experiments WHERE {in}",
];

/// Removes deleted runs and experiments (with all their runs) for good. Refuses, changing
/// nothing, an id that is missing or not in the `deleted` stage.
pub async fn purge<C: Conn>(
    c: &mut C,
    run_ids: &[String],
    experiment_ids: &[String],
) -> DbResult<()> {
    let d = c.dialect();
    let mut pks = Vec::with_capacity(run_ids.len());
    for run_id in run_ids {
        let row = c
            .query_opt(
                &format!(
                    "SELECT run_pk, lifecycle_stage FROM runs WHERE run_uuid = ?{}",
                    d.for_update()
                ),
                vec![run_id.into()],
            )
            .await?
            .ok_or_else(|| Error::not_found(format!("Run with id={run_id} not found")))?;
        if row.text(1)? != "deleted" {
            return Err(Error::invalid(format!(
                "Run {run_id} is not in the 'deleted' lifecycle stage; only deleted runs can be removed"
            ))
            .into());
        }
        pks.push(row.int(0)?);
    }
    let mut exps = Vec::with_capacity(experiment_ids.len());
    for id in experiment_ids {
        let num: i64 = id
            .parse()
            .map_err(|_| Error::invalid(format!("Invalid experiment ID '{id}'")))?;
        let row = c
            .query_opt(
                &format!(
                    "SELECT lifecycle_stage FROM experiments WHERE experiment_id = ?{}",
                    d.for_update()
                ),
                vec![num.into()],
            )
            .await?
            .ok_or_else(|| Error::not_found(format!("No Experiment with id={id} exists")))?;
        if row.text(0)? != "deleted" {
            return Err(Error::invalid(format!(
                "Experiment {id} is not in the 'deleted' lifecycle stage; only deleted \
                 experiments can be removed"
            ))
            .into());
        }
        exps.push(num);
    }
    for r in c
        .query(
            &format!(
                "SELECT run_pk FROM runs WHERE {}",
                d.in_list("experiment_id")
            ),
            vec![Bind::IntList(exps.clone())],
        )
        .await?
    {
        pks.push(r.int(0)?);
    }
    pks.sort_unstable();
    pks.dedup();
    for table in RUN_TABLES {
        c.execute(
            &format!("DELETE FROM {table} WHERE {}", d.in_list("run_pk")),
            vec![Bind::IntList(pks.clone())],
        )
        .await?;
    }
    crate::queries::traces::purge_experiments(c, &exps).await?;
    for sql in EXPERIMENT_ROWS {
        c.execute(
            &sql.replace("{in}", &d.in_list("experiment_id")),
            vec![Bind::IntList(exps.clone())],
        )
        .await?;
    }
    Ok(())
}
