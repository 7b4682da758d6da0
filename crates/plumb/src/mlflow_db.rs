//! Reads an MLflow tracking database (SQLite or PostgreSQL, MLflow's own SQLAlchemy schema,
//! 2.x or 3.x: runs with dataset and model inputs and outputs, MLflow 3 logged models, the
//! registry) directly into the export folder format of [`crate::transfer`], which
//! `plumb import` then loads. Artifacts come from the runs' own local folders (`file://` or
//! plain paths), or, for `mlflow-artifacts:` runs, from the MLflow server's
//! `--artifacts-destination` folder when it is given.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{json, Value};
use sqlx::{Connection, Row};

/// Whether `source` names a database `plumb import` reads as MLflow's.
pub fn is_db_uri(source: &str) -> bool {
    source.starts_with("sqlite:") || plumb_store::uri::normalize_url(source).is_some()
}

enum Db {
    Sqlite(rusqlite::Connection),
    Pg(sqlx::PgConnection),
}

type Rows = Vec<Vec<Option<String>>>;

impl Db {
    async fn open(uri: &str) -> anyhow::Result<Self> {
        if let Some(url) = plumb_store::uri::normalize_url(uri) {
            let c = sqlx::PgConnection::connect(&url)
                .await
                .with_context(|| format!("cannot connect to {}", plumb_store::uri::redact(uri)))?;
            return Ok(Db::Pg(c));
        }
        let path = uri
            .strip_prefix("sqlite:///")
            .ok_or_else(|| anyhow::anyhow!("use sqlite:///path/to/mlflow.db"))?;
        let c =
            rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .with_context(|| format!("cannot open {path}"))?;
        Ok(Db::Sqlite(c))
    }

    /// Whether MLflow's schema here has `table` (logged models and run outputs came with 3.0).
    async fn has_table(&mut self, table: &str) -> anyhow::Result<bool> {
        let rest = match self {
            Db::Pg(_) => "information_schema.tables WHERE table_name = $1 AND table_schema = current_schema()",
            Db::Sqlite(_) => "sqlite_master WHERE type = 'table' AND name = $1",
        };
        let rows = self.rows(&["COUNT(*)"], rest, &[table]).await?;
        Ok(rows
            .first()
            .and_then(|r| r[0].as_deref())
            .is_some_and(|n| n != "0"))
    }

    /// `SELECT columns FROM rest` with every value as text (numbers in their exact shortest
    /// form), `rest` holding bound `?`-free SQL and `args` for `$1`/`?1` in order.
    async fn rows(&mut self, columns: &[&str], rest: &str, args: &[&str]) -> anyhow::Result<Rows> {
        match self {
            Db::Pg(c) => {
                let cols: Vec<String> = columns.iter().map(|c| format!("({c})::TEXT")).collect();
                let sql = format!("SELECT {} FROM {rest}", cols.join(", "));
                let mut q = sqlx::query(&sql);
                for a in args {
                    q = q.bind(*a);
                }
                let rows = q.fetch_all(&mut *c).await.with_context(|| sql.clone())?;
                rows.iter()
                    .map(|r| {
                        (0..columns.len())
                            .map(|i| r.try_get::<Option<String>, _>(i))
                            .collect::<Result<Vec<_>, _>>()
                            .map_err(anyhow::Error::from)
                    })
                    .collect()
            }
            Db::Sqlite(c) => {
                let sql = format!("SELECT {} FROM {rest}", columns.join(", "));
                let sql = (1..=args.len()).fold(sql, |s, i| {
                    s.replacen(&format!("${i}"), &format!("?{i}"), 1)
                });
                let mut stmt = c.prepare(&sql).with_context(|| sql.clone())?;
                let n = columns.len();
                let rows = stmt
                    .query_map(rusqlite::params_from_iter(args.iter()), |r| {
                        (0..n)
                            .map(|i| {
                                Ok(match r.get::<_, rusqlite::types::Value>(i)? {
                                    rusqlite::types::Value::Null => None,
                                    rusqlite::types::Value::Integer(v) => Some(v.to_string()),
                                    rusqlite::types::Value::Real(v) => Some(format!("{v:?}")),
                                    rusqlite::types::Value::Text(v) => Some(v),
                                    rusqlite::types::Value::Blob(v) => {
                                        Some(String::from_utf8_lossy(&v).into_owned())
                                    }
                                })
                            })
                            .collect::<rusqlite::Result<Vec<_>>>()
                    })?
                    .collect::<rusqlite::Result<Rows>>()?;
                Ok(rows)
            }
        }
    }
}

fn s(v: &Option<String>) -> Value {
    v.as_ref().map_or(Value::Null, |s| json!(s))
}

fn n(v: &Option<String>) -> Value {
    v.as_ref()
        .and_then(|s| s.parse::<i64>().ok())
        .map_or(Value::Null, |i| json!(i))
}

fn kv(rows: Rows) -> HashMap<String, Vec<Value>> {
    let mut out: HashMap<String, Vec<Value>> = HashMap::new();
    for r in rows {
        if let [owner, key, value] = r.as_slice() {
            out.entry(owner.clone().unwrap_or_default())
                .or_default()
                .push(json!({"key": key, "value": value.clone().unwrap_or_default()}));
        }
    }
    out
}

fn metric_value(value: &Option<String>, is_nan: &Option<String>) -> Value {
    if matches!(is_nan.as_deref(), Some("1" | "true" | "t")) {
        return json!("NaN");
    }
    crate::mlruns::json_number(
        value
            .as_deref()
            .and_then(|s| s.parse().ok())
            .unwrap_or(f64::NAN),
    )
}

/// Where a run's artifact files are on this machine, if plumb can read them.
fn artifact_folder(uri: &str, mlflow_artifacts: Option<&Path>) -> Option<PathBuf> {
    if let Some(rest) = uri.strip_prefix("mlflow-artifacts:") {
        return mlflow_artifacts.map(|root| root.join(rest.trim_start_matches('/')));
    }
    if let Some(rest) = uri.strip_prefix("file://") {
        return Some(PathBuf::from(rest));
    }
    (!uri.contains("://")).then(|| PathBuf::from(uri))
}

/// Writes the export folder `out` from the MLflow database at `uri`.
pub async fn to_export(
    uri: &str,
    out: &Path,
    mlflow_artifacts: Option<&Path>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(out)?;
    let mut db = Db::open(uri).await?;

    let exp_tags = kv(db
        .rows(&["experiment_id", "key", "value"], "experiment_tags", &[])
        .await?);
    let experiments: Vec<Value> = db
        .rows(
            &["experiment_id", "name", "artifact_location", "lifecycle_stage", "creation_time", "last_update_time"],
            "experiments ORDER BY experiment_id",
            &[],
        )
        .await?
        .iter()
        .map(|r| {
            let id = r[0].clone().unwrap_or_default();
            json!({
                "experiment_id": id, "name": s(&r[1]), "artifact_location": s(&r[2]),
                "lifecycle_stage": s(&r[3]), "creation_time": n(&r[4]), "last_update_time": n(&r[5]),
                "tags": exp_tags.get(&id).cloned().unwrap_or_default(),
            })
        })
        .collect();
    crate::transfer::write_lines(&out.join("experiments.jsonl"), &experiments)?;

    let params = kv(db
        .rows(&["run_uuid", "key", "value"], "params", &[])
        .await?);
    let tags = kv(db.rows(&["run_uuid", "key", "value"], "tags", &[]).await?);
    let runs = db
        .rows(
            &[
                "run_uuid",
                "experiment_id",
                "name",
                "user_id",
                "status",
                "start_time",
                "end_time",
                "artifact_uri",
                "lifecycle_stage",
            ],
            "runs ORDER BY start_time, run_uuid",
            &[],
        )
        .await?;
    let (inputs, outputs) = run_inputs_outputs(&mut db).await?;
    let mut lines = Vec::with_capacity(runs.len());
    for r in &runs {
        let run_id = r[0].clone().unwrap_or_default();
        let points = db
            .rows(
                &["key", "value", "timestamp", "step", "is_nan"],
                "metrics WHERE run_uuid = $1 ORDER BY key, step, timestamp",
                &[&run_id],
            )
            .await?;
        let history: Vec<Value> = points
            .iter()
            .map(|p| json!({"key": s(&p[0]), "value": metric_value(&p[1], &p[4]), "timestamp": n(&p[2]), "step": n(&p[3])}))
            .collect();
        lines.push(json!({
            "info": {
                "run_id": run_id, "run_uuid": run_id, "experiment_id": s(&r[1]), "run_name": s(&r[2]),
                "user_id": s(&r[3]), "status": s(&r[4]), "start_time": n(&r[5]), "end_time": n(&r[6]),
                "artifact_uri": s(&r[7]), "lifecycle_stage": s(&r[8]),
            },
            "data": {
                "params": params.get(&run_id).cloned().unwrap_or_default(),
                "tags": tags.get(&run_id).cloned().unwrap_or_default(),
            },
            "inputs": inputs.get(&run_id).cloned().unwrap_or_else(|| json!({})),
            "outputs": outputs.get(&run_id).cloned().unwrap_or_else(|| json!({})),
            "metric_history": history,
        }));
        if let Some(folder) = artifact_folder(r[7].as_deref().unwrap_or_default(), mlflow_artifacts)
        {
            if folder.is_dir() {
                crate::mlruns::link_tree(&folder, &out.join("artifacts").join(&run_id))?;
            }
        }
    }
    crate::transfer::write_lines(&out.join("runs.jsonl"), &lines)?;
    let logged = logged_models(&mut db, out, mlflow_artifacts).await?;
    crate::transfer::write_lines(&out.join("logged_models.jsonl"), &logged)?;

    let rm_tags = kv(db
        .rows(&["name", "key", "value"], "registered_model_tags", &[])
        .await?);
    let mut aliases: HashMap<String, Vec<Value>> = HashMap::new();
    for a in db
        .rows(
            &["name", "alias", "version"],
            "registered_model_aliases",
            &[],
        )
        .await?
    {
        aliases
            .entry(a[0].clone().unwrap_or_default())
            .or_default()
            .push(json!({"alias": s(&a[1]), "version": s(&a[2])}));
    }
    let models: Vec<Value> = db
        .rows(
            &["name", "creation_time", "last_updated_time", "description"],
            "registered_models ORDER BY name",
            &[],
        )
        .await?
        .iter()
        .map(|m| {
            let name = m[0].clone().unwrap_or_default();
            json!({
                "name": name, "creation_timestamp": n(&m[1]), "last_updated_timestamp": n(&m[2]),
                "description": s(&m[3]), "tags": rm_tags.get(&name).cloned().unwrap_or_default(),
                "aliases": aliases.get(&name).cloned().unwrap_or_default(),
            })
        })
        .collect();
    crate::transfer::write_lines(&out.join("registered_models.jsonl"), &models)?;

    let mut mv_tags: HashMap<(String, String), Vec<Value>> = HashMap::new();
    for t in db
        .rows(
            &["name", "version", "key", "value"],
            "model_version_tags",
            &[],
        )
        .await?
    {
        mv_tags
            .entry((
                t[0].clone().unwrap_or_default(),
                t[1].clone().unwrap_or_default(),
            ))
            .or_default()
            .push(json!({"key": s(&t[2]), "value": t[3].clone().unwrap_or_default()}));
    }
    let versions: Vec<Value> = db
        .rows(
            &["name", "version", "creation_time", "last_updated_time", "description", "user_id", "current_stage",
              "source", "run_id", "status", "status_message", "run_link", "storage_location"],
            "model_versions WHERE current_stage != $1 ORDER BY name, version",
            &[plumb_core::registry::DELETED_STAGE],
        )
        .await?
        .iter()
        .map(|v| {
            let key = (v[0].clone().unwrap_or_default(), v[1].clone().unwrap_or_default());
            json!({
                "name": s(&v[0]), "version": s(&v[1]), "creation_timestamp": n(&v[2]),
                "last_updated_timestamp": n(&v[3]), "description": s(&v[4]), "user_id": s(&v[5]),
                "current_stage": s(&v[6]), "source": s(&v[7]), "run_id": s(&v[8]), "status": s(&v[9]),
                "status_message": s(&v[10]), "run_link": s(&v[11]), "storage_location": s(&v[12]),
                "tags": mv_tags.get(&key).cloned().unwrap_or_default(),
            })
        })
        .collect();
    crate::transfer::write_lines(&out.join("model_versions.jsonl"), &versions)?;
    let manifest = json!({
        "format": crate::transfer::FORMAT,
        "version": crate::transfer::VERSION,
        "source": plumb_store::uri::redact(uri),
        "exported_at": plumb_core::now_millis(),
    });
    std::fs::write(
        out.join("manifest.json"),
        serde_json::to_string_pretty(&manifest)?,
    )?;
    Ok(())
}

/// Per run: `inputs` (dataset inputs with their tags, model inputs) and `outputs` (model
/// outputs with their step), shaped as `runs/get` shows them.
async fn run_inputs_outputs(
    db: &mut Db,
) -> anyhow::Result<(HashMap<String, Value>, HashMap<String, Value>)> {
    let (mut inputs, mut outputs) = (HashMap::new(), HashMap::new());
    if !db.has_table("inputs").await? {
        return Ok((inputs, outputs));
    }
    let mut datasets: HashMap<String, Value> = HashMap::new();
    for d in db
        .rows(
            &[
                "dataset_uuid",
                "name",
                "digest",
                "dataset_source_type",
                "dataset_source",
                "dataset_schema",
                "dataset_profile",
            ],
            "datasets",
            &[],
        )
        .await?
    {
        let mut v = json!({
            "name": s(&d[1]), "digest": s(&d[2]), "source_type": s(&d[3]), "source": s(&d[4]),
        });
        if d[5].is_some() {
            v["schema"] = s(&d[5]);
        }
        if d[6].is_some() {
            v["profile"] = s(&d[6]);
        }
        datasets.insert(d[0].clone().unwrap_or_default(), v);
    }
    let mut tags: HashMap<String, Vec<Value>> = HashMap::new();
    for t in db
        .rows(&["input_uuid", "name", "value"], "input_tags", &[])
        .await?
    {
        tags.entry(t[0].clone().unwrap_or_default())
            .or_default()
            .push(json!({"key": s(&t[1]), "value": s(&t[2])}));
    }
    let mut dataset_inputs: HashMap<String, Vec<Value>> = HashMap::new();
    let mut model_inputs: HashMap<String, Vec<Value>> = HashMap::new();
    for i in db
        .rows(
            &[
                "input_uuid",
                "source_type",
                "source_id",
                "destination_type",
                "destination_id",
            ],
            "inputs ORDER BY input_uuid",
            &[],
        )
        .await?
    {
        let text = |k: usize| i[k].clone().unwrap_or_default();
        match (text(1).as_str(), text(3).as_str()) {
            ("DATASET", "RUN") => {
                if let Some(d) = datasets.get(&text(2)) {
                    dataset_inputs.entry(text(4)).or_default().push(json!({
                        "tags": tags.get(&text(0)).cloned().unwrap_or_default(),
                        "dataset": d,
                    }));
                }
            }
            ("RUN_INPUT", "MODEL_INPUT") => model_inputs
                .entry(text(2))
                .or_default()
                .push(json!({"model_id": text(4)})),
            _ => {}
        }
    }
    for run_id in dataset_inputs.keys().chain(model_inputs.keys()) {
        let mut v = json!({});
        if let Some(d) = dataset_inputs.get(run_id) {
            v["dataset_inputs"] = json!(d);
        }
        if let Some(m) = model_inputs.get(run_id) {
            v["model_inputs"] = json!(m);
        }
        inputs.insert(run_id.clone(), v);
    }
    if db.has_table("logged_models").await? {
        let mut by_run: HashMap<String, Vec<Value>> = HashMap::new();
        for o in db
            .rows(
                &["source_id", "destination_id", "step"],
                "inputs WHERE source_type = $1 AND destination_type = $2 ORDER BY input_uuid",
                &["RUN_OUTPUT", "MODEL_OUTPUT"],
            )
            .await?
        {
            by_run
                .entry(o[0].clone().unwrap_or_default())
                .or_default()
                .push(json!({"model_id": s(&o[1]), "step": n(&o[2])}));
        }
        for (run_id, models) in by_run {
            outputs.insert(run_id, json!({ "model_outputs": models }));
        }
    }
    Ok((inputs, outputs))
}

/// MLflow 3's logged models that are not deleted, as `logged-models/get` shows them; their
/// files are linked into `model_artifacts/<model_id>/` when plumb can read them.
async fn logged_models(
    db: &mut Db,
    out: &Path,
    mlflow_artifacts: Option<&Path>,
) -> anyhow::Result<Vec<Value>> {
    if !db.has_table("logged_models").await? {
        return Ok(Vec::new());
    }
    let tags = kv(db
        .rows(
            &["model_id", "tag_key", "tag_value"],
            "logged_model_tags",
            &[],
        )
        .await?);
    let params = kv(db
        .rows(
            &["model_id", "param_key", "param_value"],
            "logged_model_params",
            &[],
        )
        .await?);
    let mut metrics: HashMap<String, Vec<Value>> = HashMap::new();
    for m in db
        .rows(
            &[
                "model_id",
                "metric_name",
                "metric_timestamp_ms",
                "metric_step",
                "metric_value",
                "run_id",
                "dataset_name",
                "dataset_digest",
            ],
            "logged_model_metrics ORDER BY model_id, metric_name, metric_step, metric_timestamp_ms",
            &[],
        )
        .await?
    {
        let mut v = json!({
            "key": s(&m[1]), "timestamp": n(&m[2]), "step": n(&m[3]),
            "value": metric_value(&m[4], &None), "run_id": s(&m[5]),
        });
        if m[6].is_some() {
            v["dataset_name"] = s(&m[6]);
        }
        if m[7].is_some() {
            v["dataset_digest"] = s(&m[7]);
        }
        metrics
            .entry(m[0].clone().unwrap_or_default())
            .or_default()
            .push(v);
    }
    let mut models = Vec::new();
    for m in db
        .rows(
            &["model_id", "experiment_id", "name", "artifact_location", "creation_timestamp_ms",
              "last_updated_timestamp_ms", "status", "status_message", "model_type", "source_run_id"],
            "logged_models WHERE lifecycle_stage IS NULL OR lifecycle_stage != $1 ORDER BY creation_timestamp_ms, model_id",
            &["deleted"],
        )
        .await?
    {
        let id = m[0].clone().unwrap_or_default();
        models.push(json!({
            "info": {
                "model_id": id, "experiment_id": s(&m[1]), "name": s(&m[2]),
                "artifact_uri": s(&m[3]), "creation_timestamp_ms": n(&m[4]),
                "last_updated_timestamp_ms": n(&m[5]), "status": s(&m[6]),
                "status_message": s(&m[7]), "model_type": s(&m[8]), "source_run_id": s(&m[9]),
                "tags": tags.get(&id).cloned().unwrap_or_default(),
            },
            "data": {
                "params": params.get(&id).cloned().unwrap_or_default(),
                "metrics": metrics.get(&id).cloned().unwrap_or_default(),
            },
        }));
        if let Some(folder) = artifact_folder(m[3].as_deref().unwrap_or_default(), mlflow_artifacts)
        {
            if folder.is_dir() {
                crate::mlruns::link_tree(&folder, &out.join("model_artifacts").join(&id))?;
            }
        }
    }
    Ok(models)
}
