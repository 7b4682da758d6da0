//! Garbage collection: finding deleted runs and experiments, and removing them for good.

use plumb_core::Error;
use plumb_store::Deleted;
use sqlx::PgConnection;

use crate::R;

pub(crate) async fn deleted(c: &mut PgConnection, before: Option<i64>) -> R<Deleted> {
    let before = before.unwrap_or(i64::MAX);
    let runs: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT run_uuid, experiment_id, artifact_uri FROM runs
         WHERE lifecycle_stage = 'deleted' AND COALESCE(deleted_time, 0) < $1 ORDER BY run_pk",
    )
    .bind(before)
    .fetch_all(&mut *c)
    .await?;
    let experiments: Vec<(i64, String)> = sqlx::query_as(
        "SELECT experiment_id, artifact_location FROM experiments
         WHERE lifecycle_stage = 'deleted' AND last_update_time < $1 ORDER BY experiment_id",
    )
    .bind(before)
    .fetch_all(&mut *c)
    .await?;
    Ok(Deleted {
        runs: runs
            .into_iter()
            .map(|(id, exp, uri)| (id, exp.to_string(), uri))
            .collect(),
        experiments: experiments
            .into_iter()
            .map(|(id, loc)| (id.to_string(), loc))
            .collect(),
    })
}

pub(crate) async fn purge(
    c: &mut PgConnection,
    run_ids: &[String],
    experiment_ids: &[String],
) -> R<()> {
    let mut pks = Vec::with_capacity(run_ids.len());
    for run_id in run_ids {
        let row: Option<(i64, String)> = sqlx::query_as(
            "SELECT run_pk, lifecycle_stage FROM runs WHERE run_uuid = $1 FOR UPDATE",
        )
        .bind(run_id)
        .fetch_optional(&mut *c)
        .await?;
        match row {
            None => return Err(Error::not_found(format!("Run with id={run_id} not found")).into()),
            Some((pk, stage)) if stage == "deleted" => pks.push(pk),
            Some(_) => {
                return Err(Error::invalid(format!(
                    "Run {run_id} is not in the 'deleted' lifecycle stage; only deleted runs can be removed"
                ))
                .into())
            }
        }
    }
    let mut exps = Vec::with_capacity(experiment_ids.len());
    for id in experiment_ids {
        let num: i64 = id
            .parse()
            .map_err(|_| Error::invalid(format!("Invalid experiment ID '{id}'")))?;
        let stage: Option<String> = sqlx::query_scalar(
            "SELECT lifecycle_stage FROM experiments WHERE experiment_id = $1 FOR UPDATE",
        )
        .bind(num)
        .fetch_optional(&mut *c)
        .await?;
        match stage.as_deref() {
            None => {
                return Err(Error::not_found(format!("No Experiment with id={id} exists")).into())
            }
            Some("deleted") => exps.push(num),
            Some(_) => {
                return Err(Error::invalid(format!(
                    "Experiment {id} is not in the 'deleted' lifecycle stage; only deleted \
                     experiments can be removed"
                ))
                .into())
            }
        }
    }
    let exp_runs: Vec<i64> =
        sqlx::query_scalar("SELECT run_pk FROM runs WHERE experiment_id = ANY($1)")
            .bind(&exps)
            .fetch_all(&mut *c)
            .await?;
    pks.extend(exp_runs);
    pks.sort_unstable();
    pks.dedup();
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
        sqlx::query(&format!("DELETE FROM {table} WHERE run_pk = ANY($1)"))
            .bind(&pks)
            .execute(&mut *c)
            .await?;
    }
    for sql in [
        "DELETE FROM logged_model_tags WHERE model_id IN (SELECT model_id FROM logged_models WHERE experiment_id = ANY($1))",
        "DELETE FROM logged_model_params WHERE model_id IN (SELECT model_id FROM logged_models WHERE experiment_id = ANY($1))",
        "DELETE FROM logged_model_metrics WHERE model_id IN (SELECT model_id FROM logged_models WHERE experiment_id = ANY($1))",
        "DELETE FROM logged_models WHERE experiment_id = ANY($1)",
        "DELETE FROM datasets WHERE experiment_id = ANY($1)",
        "DELETE FROM experiment_tags WHERE experiment_id = ANY($1)",
        "DELETE FROM experiments WHERE experiment_id = ANY($1)",
    ] {
        sqlx::query(sql).bind(&exps).execute(&mut *c).await?;
    }
    Ok(())
}
