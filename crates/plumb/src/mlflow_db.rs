//! Reads an MLflow tracking database (SQLite or PostgreSQL, MLflow's own SQLAlchemy schema,
//! 2.x or 3.x) directly into the export folder format of [`crate::transfer`], which
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
    source.starts_with("sqlite:") || plumb_store_postgres::normalize_url(source).is_some()
}

enum Db {
    Sqlite(rusqlite::Connection),
    Pg(sqlx::PgConnection),
}

type Rows = Vec<Vec<Option<String>>>;

impl Db {
    async fn open(uri: &str) -> anyhow::Result<Self> {
        if let Some(url) = plumb_store_postgres::normalize_url(uri) {
            let c = sqlx::PgConnection::connect(&url).await.with_context(|| {
                format!("cannot connect to {}", plumb_store_postgres::redact(uri))
            })?;
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
    let v: f64 = value
        .as_deref()
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN);
    if v.is_infinite() {
        json!(if v > 0.0 { "Infinity" } else { "-Infinity" })
    } else if v.is_nan() {
        json!("NaN")
    } else {
        json!(v)
    }
}

fn write_lines(path: &Path, items: &[Value]) -> anyhow::Result<()> {
    let mut text = String::new();
    for v in items {
        text.push_str(&serde_json::to_string(v)?);
        text.push('\n');
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
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
    write_lines(&out.join("experiments.jsonl"), &experiments)?;

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
            "metric_history": history,
        }));
        if let Some(folder) = artifact_folder(r[7].as_deref().unwrap_or_default(), mlflow_artifacts)
        {
            if folder.is_dir() {
                crate::mlruns::link_tree(&folder, &out.join("artifacts").join(&run_id))?;
            }
        }
    }
    write_lines(&out.join("runs.jsonl"), &lines)?;

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
    write_lines(&out.join("registered_models.jsonl"), &models)?;

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
    write_lines(&out.join("model_versions.jsonl"), &versions)?;
    let manifest = json!({
        "format": crate::transfer::FORMAT,
        "version": crate::transfer::VERSION,
        "source": plumb_store_postgres::redact(uri),
        "exported_at": plumb_core::now_millis(),
    });
    std::fs::write(
        out.join("manifest.json"),
        serde_json::to_string_pretty(&manifest)?,
    )?;
    Ok(())
}
