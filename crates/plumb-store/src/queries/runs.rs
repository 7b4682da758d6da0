//! Runs, the parts written once: lookups, lifecycle, tag deletion, the MLflow 2 model history,
//! dataset and model inputs, model outputs, the dataset summary. (Creating, reading, searching
//! and logging to runs stay per backend: they are the measured hot paths.)

use plumb_core::entities::{DatasetInput, DatasetSummary, ModelOutput};
use plumb_core::{now_millis, Error};

use crate::db::{no_row, Bind, Conn, DbResult};
use crate::shared::log_model_history_tag;
use crate::{DATASET_CONTEXT_TAG, LOG_MODEL_HISTORY_TAG};

fn run_not_found(run_id: &str) -> Error {
    Error::not_found(format!("Run with id={run_id} not found"))
}

/// The row id and lifecycle stage of a run.
pub async fn lookup<C: Conn>(c: &mut C, run_id: &str) -> DbResult<(i64, String)> {
    let row = c
        .query_opt(
            "SELECT run_pk, lifecycle_stage FROM runs WHERE run_uuid = ?",
            vec![run_id.into()],
        )
        .await?
        .ok_or_else(|| run_not_found(run_id))?;
    Ok((row.int(0)?, row.text(1)?))
}

/// The row id of an active run, or MLflow's error.
pub async fn require_active<C: Conn>(c: &mut C, run_id: &str) -> DbResult<i64> {
    let (pk, stage) = lookup(c, run_id).await?;
    if stage != "active" {
        return Err(Error::invalid(format!(
            "The run {run_id} must be in the 'active' state. Current state is {stage}."
        ))
        .into());
    }
    Ok(pk)
}

/// Deletes (soft) or restores a run.
pub async fn set_lifecycle<C: Conn>(c: &mut C, run_id: &str, delete: bool) -> DbResult<()> {
    let (pk, _) = lookup(c, run_id).await?;
    let (stage, deleted_time) = if delete {
        ("deleted", Some(now_millis()))
    } else {
        ("active", None)
    };
    c.execute(
        "UPDATE runs SET lifecycle_stage = ?, deleted_time = ? WHERE run_pk = ?",
        vec![stage.into(), deleted_time.into(), pk.into()],
    )
    .await?;
    Ok(())
}

pub async fn delete_tag<C: Conn>(c: &mut C, run_id: &str, key: &str) -> DbResult<()> {
    let pk = require_active(c, run_id).await?;
    let n = c
        .execute(
            "DELETE FROM tags WHERE run_pk = ? AND key = ?",
            vec![pk.into(), key.into()],
        )
        .await?;
    if n == 0 {
        return Err(
            Error::not_found(format!("No tag with name: {key} in run with id {run_id}")).into(),
        );
    }
    Ok(())
}

/// Appends a model to the run's `mlflow.log-model.history` tag (MLflow 2's `runs/log-model`).
/// The run's row is locked first (PostgreSQL), so concurrent appends queue up instead of
/// losing each other's entries.
pub async fn append_model_history<C: Conn>(
    c: &mut C,
    run_id: &str,
    model_json: &str,
) -> DbResult<()> {
    let pk = require_active(c, run_id).await?;
    let lock = format!(
        "SELECT 1 FROM runs WHERE run_pk = ?{}",
        c.dialect().for_update()
    );
    c.query(&lock, vec![pk.into()]).await?;
    let current = c
        .query_opt(
            "SELECT value FROM tags WHERE run_pk = ? AND key = ?",
            vec![pk.into(), LOG_MODEL_HISTORY_TAG.into()],
        )
        .await?
        .map(|r| r.text(0))
        .transpose()?;
    let value = log_model_history_tag(current, model_json)?;
    c.execute(
        "INSERT INTO tags (run_pk, key, value) VALUES (?, ?, ?)
         ON CONFLICT (run_pk, key) DO UPDATE SET value = excluded.value",
        vec![pk.into(), LOG_MODEL_HISTORY_TAG.into(), value.into()],
    )
    .await?;
    Ok(())
}

pub async fn log_inputs<C: Conn>(
    c: &mut C,
    run_id: &str,
    datasets: &[DatasetInput],
    model_ids: &[String],
) -> DbResult<()> {
    let pk = require_active(c, run_id).await?;
    insert_inputs(c, pk, datasets, model_ids).await
}

/// Dataset and model inputs of the run `pk` (any stage); inputs already there are kept.
pub async fn insert_inputs<C: Conn>(
    c: &mut C,
    pk: i64,
    datasets: &[DatasetInput],
    model_ids: &[String],
) -> DbResult<()> {
    let sql = format!(
        "SELECT experiment_id FROM runs WHERE run_pk = ?{}",
        c.dialect().for_update()
    );
    let exp = c
        .query_opt(&sql, vec![pk.into()])
        .await?
        .ok_or_else(|| no_row("the run of the inputs"))?
        .int(0)?;
    for input in datasets {
        let d = &input.dataset;
        c.execute(
            "INSERT INTO datasets (experiment_id, name, digest, source_type, source, schema, profile)
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            vec![
                exp.into(),
                (&d.name).into(),
                (&d.digest).into(),
                (&d.source_type).into(),
                (&d.source).into(),
                d.schema.clone().into(),
                d.profile.clone().into(),
            ],
        )
        .await?;
        let dpk = c
            .query_opt(
                "SELECT dataset_pk FROM datasets WHERE experiment_id = ? AND name = ? AND digest = ?",
                vec![exp.into(), (&d.name).into(), (&d.digest).into()],
            )
            .await?
            .ok_or_else(|| no_row("the dataset"))?
            .int(0)?;
        let added = c
            .execute(
                "INSERT INTO run_inputs (run_pk, dataset_pk, seq)
                 SELECT ?, ?, COALESCE(MAX(seq), 0) + 1 FROM run_inputs WHERE run_pk = ?
                 ON CONFLICT DO NOTHING",
                vec![pk.into(), dpk.into(), pk.into()],
            )
            .await?;
        if added == 1 {
            for (idx, tag) in input.tags.iter().enumerate() {
                c.execute(
                    "INSERT INTO input_tags (run_pk, dataset_pk, idx, key, value)
                     VALUES (?, ?, ?, ?, ?)",
                    vec![
                        pk.into(),
                        dpk.into(),
                        i64::try_from(idx).unwrap_or(i64::MAX).into(),
                        (&tag.key).into(),
                        (&tag.value).into(),
                    ],
                )
                .await?;
            }
        }
    }
    for model_id in model_ids {
        c.execute(
            "INSERT INTO run_model_inputs (run_pk, model_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
            vec![pk.into(), model_id.into()],
        )
        .await?;
    }
    Ok(())
}

pub async fn log_outputs<C: Conn>(c: &mut C, run_id: &str, models: &[ModelOutput]) -> DbResult<()> {
    let pk = require_active(c, run_id).await?;
    insert_outputs(c, pk, models).await
}

/// Model outputs of the run `pk`; a model logged again keeps its latest step.
pub async fn insert_outputs<C: Conn>(c: &mut C, pk: i64, models: &[ModelOutput]) -> DbResult<()> {
    for m in models {
        c.execute(
            "INSERT INTO run_model_outputs (run_pk, model_id, step) VALUES (?, ?, ?)
             ON CONFLICT (run_pk, model_id) DO UPDATE SET step = excluded.step",
            vec![pk.into(), (&m.model_id).into(), m.step.into()],
        )
        .await?;
    }
    Ok(())
}

/// The datasets used by the experiments' runs, with their context tag (`training`, ...).
pub async fn search_datasets<C: Conn>(
    c: &mut C,
    experiment_ids: &[String],
) -> DbResult<Vec<DatasetSummary>> {
    let ids = crate::sql::experiment_ids(experiment_ids);
    let sql = format!(
        "SELECT DISTINCT d.experiment_id, d.name, d.digest, it.value
         FROM datasets d
         JOIN run_inputs ri ON ri.dataset_pk = d.dataset_pk
         LEFT JOIN input_tags it ON it.run_pk = ri.run_pk AND it.dataset_pk = d.dataset_pk AND it.key = ?
         WHERE {}
         ORDER BY d.experiment_id, d.name, d.digest LIMIT 1000",
        c.dialect().in_list("d.experiment_id")
    );
    c.query(&sql, vec![DATASET_CONTEXT_TAG.into(), Bind::IntList(ids)])
        .await?
        .iter()
        .map(|r| {
            Ok(DatasetSummary {
                experiment_id: r.int(0)?.to_string(),
                name: r.text(1)?,
                digest: r.text(2)?,
                context: r.opt_text(3)?,
            })
        })
        .collect()
}
