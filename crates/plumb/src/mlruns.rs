//! Reads an MLflow file store (`./mlruns`, as the `mlflow` client writes it with
//! `file:./mlruns`) into the export folder format of [`crate::transfer`], which `plumb import`
//! then loads: experiments (deleted ones from `.trash`), runs with their params, tags, every
//! metric point, dataset and model inputs, model outputs and artifacts, MLflow 3 logged models
//! with their files, registered models with versions, tags and aliases.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde_json::{json, Map, Value};
use yaml_rust2::{Yaml, YamlLoader};

/// Whether `dir` looks like an MLflow file store (experiment folders with `meta.yaml`).
pub fn is_file_store(dir: &Path) -> bool {
    !dir.join("manifest.json").exists()
        && std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .any(|e| e.path().join("meta.yaml").is_file())
            })
            .unwrap_or(false)
}

fn meta(path: &Path) -> anyhow::Result<Yaml> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    YamlLoader::load_from_str(&text)
        .with_context(|| format!("{} is not YAML", path.display()))?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("{} is empty", path.display()))
}

/// A YAML scalar as JSON (strings stay strings, numbers numbers, `null` absent).
fn scalar(y: &Yaml) -> Value {
    match y {
        Yaml::String(s) | Yaml::Real(s) => json!(s),
        Yaml::Integer(i) => json!(i),
        Yaml::Boolean(b) => json!(b),
        _ => Value::Null,
    }
}

fn field(y: &Yaml, key: &str) -> Value {
    scalar(&y[key])
}

fn string(y: &Yaml, key: &str) -> String {
    match &y[key] {
        Yaml::String(s) | Yaml::Real(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        _ => String::new(),
    }
}

/// Key/value files under `dir` (keys with `/` are nested folders), sorted by key.
fn key_files(dir: &Path) -> Vec<(String, String)> {
    crate::transfer::files_under(dir)
        .into_iter()
        .filter_map(|(path, key)| Some((key, std::fs::read_to_string(path).ok()?)))
        .collect()
}

fn kv_json(pairs: Vec<(String, String)>) -> Value {
    Value::Array(
        pairs
            .into_iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect(),
    )
}

const RUN_STATUS: [&str; 6] = ["", "RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"];

/// Every point of every metric of a run: lines of `timestamp value [step]`.
fn metric_points(dir: &Path) -> anyhow::Result<(Vec<Value>, Vec<Value>)> {
    let mut history = Vec::new();
    let mut latest = Vec::new();
    for (key, text) in key_files(dir) {
        let mut best: Option<(i64, i64, f64, Value)> = None;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let (Some(ts), Some(raw)) = (parts.first(), parts.get(1)) else {
                bail!("metric {key}: bad line '{line}'");
            };
            let timestamp: i64 = ts
                .parse()
                .with_context(|| format!("metric {key}: '{line}'"))?;
            let step: i64 = parts.get(2).and_then(|s| s.parse().ok()).unwrap_or(0);
            let number: f64 = match raw.to_ascii_lowercase().as_str() {
                "nan" => f64::NAN,
                "inf" | "infinity" => f64::INFINITY,
                "-inf" | "-infinity" => f64::NEG_INFINITY,
                other => other
                    .parse()
                    .with_context(|| format!("metric {key}: '{line}'"))?,
            };
            let value = json_number(number);
            let point = json!({"key": key, "value": value, "timestamp": timestamp, "step": step});
            let rank = (
                step,
                timestamp,
                if number.is_nan() { f64::MIN } else { number },
            );
            if best.as_ref().is_none_or(|b| (b.0, b.1, b.2) < rank) {
                best = Some((rank.0, rank.1, rank.2, point.clone()));
            }
            history.push(point);
        }
        if let Some(b) = best {
            latest.push(b.3);
        }
    }
    Ok((history, latest))
}

/// Sub-folders of `dir` holding a `meta.yaml`, sorted.
fn meta_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|e| {
            e.flatten()
                .map(|e| e.path())
                .filter(|p| p.join("meta.yaml").is_file())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// A YAML mapping's string pairs as `[{"key", "value"}]`, in file order.
fn yaml_pairs(y: &Yaml) -> Value {
    Value::Array(
        y.as_hash()
            .into_iter()
            .flatten()
            .map(|(k, v)| {
                let text = |y: &Yaml| match y {
                    Yaml::String(s) | Yaml::Real(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    _ => String::new(),
                };
                json!({"key": text(k), "value": text(v)})
            })
            .collect(),
    )
}

/// A run's `inputs` (datasets of the experiment's `datasets/` folder with the input's tags,
/// logged models) and `outputs` (logged models with their step), as `runs/get` shows them.
fn run_inputs_outputs(exp_dir: &Path, run_dir: &Path) -> anyhow::Result<(Value, Value)> {
    let (mut datasets, mut models) = (Vec::new(), Vec::new());
    for idir in meta_dirs(&run_dir.join("inputs")) {
        let i = meta(&idir.join("meta.yaml"))?;
        match string(&i, "source_type").as_str() {
            "DATASET" => {
                let ddir = exp_dir.join("datasets").join(string(&i, "source_id"));
                let Ok(d) = meta(&ddir.join("meta.yaml")) else {
                    continue;
                };
                let mut dataset = json!({
                    "name": string(&d, "name"), "digest": string(&d, "digest"),
                    "source_type": string(&d, "source_type"), "source": string(&d, "source"),
                });
                for key in ["schema", "profile"] {
                    if let Value::String(v) = field(&d, key) {
                        dataset[key] = json!(v);
                    }
                }
                datasets.push(json!({"tags": yaml_pairs(&i["tags"]), "dataset": dataset}));
            }
            "MODEL" => models.push(json!({"model_id": string(&i, "source_id")})),
            _ => {}
        }
    }
    let mut inputs = json!({});
    if !datasets.is_empty() {
        inputs["dataset_inputs"] = json!(datasets);
    }
    if !models.is_empty() {
        inputs["model_inputs"] = json!(models);
    }
    let outputs: Vec<Value> = meta_dirs(&run_dir.join("outputs"))
        .iter()
        .map(|odir| -> anyhow::Result<Value> {
            let o = meta(&odir.join("meta.yaml"))?;
            // The folder is named after the model (MLflow's own reader takes the run id here).
            let model_id = odir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok(json!({"model_id": model_id, "step": o["step"].as_i64().unwrap_or(0)}))
        })
        .collect::<anyhow::Result<_>>()?;
    let outputs = if outputs.is_empty() {
        json!({})
    } else {
        json!({ "model_outputs": outputs })
    };
    Ok((inputs, outputs))
}

/// The experiment's logged models (`models/<model_id>/`) that are not deleted, as
/// `logged-models/get` shows them; their files go to `model_artifacts/<model_id>/`.
fn logged_models(exp_dir: &Path, experiment_id: &str, out: &Path) -> anyhow::Result<Vec<Value>> {
    let mut models = Vec::new();
    for mdir in meta_dirs(&exp_dir.join("models")) {
        let m = meta(&mdir.join("meta.yaml"))?;
        if string(&m, "lifecycle_stage") == "deleted" {
            continue;
        }
        let id = string(&m, "model_id");
        let mut metrics = Vec::new();
        for (key, text) in key_files(&mdir.join("metrics")) {
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                // `timestamp value step run_id [dataset_name dataset_digest]`
                let parts: Vec<&str> = line.split_whitespace().collect();
                if parts.len() < 4 {
                    bail!("metric {key} of logged model {id}: bad line '{line}'");
                }
                let number: f64 = parts[1]
                    .parse()
                    .with_context(|| format!("metric {key} of logged model {id}: '{line}'"))?;
                let mut v = json!({
                    "key": key, "value": json_number(number),
                    "timestamp": parts[0].parse::<i64>().unwrap_or(0),
                    "step": parts[2].parse::<i64>().unwrap_or(0), "run_id": parts[3],
                });
                if let (Some(name), Some(digest)) = (parts.get(4), parts.get(5)) {
                    v["dataset_name"] = json!(name);
                    v["dataset_digest"] = json!(digest);
                }
                metrics.push(v);
            }
        }
        models.push(json!({
            "info": {
                "model_id": id, "experiment_id": experiment_id, "name": field(&m, "name"),
                "artifact_uri": field(&m, "artifact_location"),
                "creation_timestamp_ms": field(&m, "creation_timestamp"),
                "last_updated_timestamp_ms": field(&m, "last_updated_timestamp"),
                "status": string(&m, "status"), "status_message": field(&m, "status_message"),
                "model_type": field(&m, "model_type"), "source_run_id": field(&m, "source_run_id"),
                "tags": kv_json(key_files(&mdir.join("tags"))),
            },
            "data": {
                "params": kv_json(key_files(&mdir.join("params"))),
                "metrics": metrics,
            },
        }));
        link_tree(
            &mdir.join("artifacts"),
            &out.join("model_artifacts").join(&id),
        )?;
    }
    Ok(models)
}

/// A metric value as MLflow's JSON writes it (non-finite values as strings).
pub(crate) fn json_number(number: f64) -> Value {
    if number.is_nan() {
        json!("NaN")
    } else if number.is_infinite() {
        json!(if number > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        })
    } else {
        json!(number)
    }
}

/// Hard-links (or copies) every file under `from` to the same place under `to`.
pub(crate) fn link_tree(from: &Path, to: &Path) -> anyhow::Result<u64> {
    let mut n = 0;
    for (path, rel) in crate::transfer::files_under(from) {
        let target = to.join(rel);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if std::fs::hard_link(&path, &target).is_err() {
            std::fs::copy(&path, &target).with_context(|| format!("copying {}", path.display()))?;
        }
        n += 1;
    }
    Ok(n)
}

/// Writes the export folder `out` from the file store `root`.
pub fn to_export(root: &Path, out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out)?;
    let mut experiment_dirs: Vec<PathBuf> = Vec::new();
    for base in [root.to_path_buf(), root.join(".trash")] {
        let Ok(entries) = std::fs::read_dir(&base) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.join("meta.yaml").is_file() {
                experiment_dirs.push(p);
            }
        }
    }
    experiment_dirs.sort();
    let (mut experiments, mut runs, mut logged) = (Vec::new(), Vec::new(), Vec::new());
    for dir in &experiment_dirs {
        let m = meta(&dir.join("meta.yaml"))?;
        let id = string(&m, "experiment_id");
        experiments.push(json!({
            "experiment_id": id,
            "name": field(&m, "name"),
            "artifact_location": field(&m, "artifact_location"),
            "lifecycle_stage": field(&m, "lifecycle_stage"),
            "creation_time": field(&m, "creation_time"),
            "last_update_time": field(&m, "last_update_time"),
            "tags": kv_json(key_files(&dir.join("tags"))),
        }));
        for rdir in meta_dirs(dir) {
            let r = meta(&rdir.join("meta.yaml"))?;
            let run_id = string(&r, "run_id");
            let status = r["status"]
                .as_i64()
                .and_then(|s| RUN_STATUS.get(s as usize).copied())
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .unwrap_or_else(|| string(&r, "status"));
            let (history, latest) = metric_points(&rdir.join("metrics"))?;
            let mut info = Map::new();
            info.insert("run_id".into(), json!(run_id));
            info.insert("run_uuid".into(), json!(run_id));
            info.insert("experiment_id".into(), json!(id));
            info.insert("run_name".into(), field(&r, "run_name"));
            info.insert("user_id".into(), field(&r, "user_id"));
            info.insert("status".into(), json!(status));
            info.insert("start_time".into(), field(&r, "start_time"));
            info.insert("end_time".into(), field(&r, "end_time"));
            info.insert("artifact_uri".into(), field(&r, "artifact_uri"));
            info.insert("lifecycle_stage".into(), field(&r, "lifecycle_stage"));
            let (inputs, outputs) = run_inputs_outputs(dir, &rdir)?;
            runs.push(json!({
                "info": info,
                "data": {
                    "metrics": latest,
                    "params": kv_json(key_files(&rdir.join("params"))),
                    "tags": kv_json(key_files(&rdir.join("tags"))),
                },
                "inputs": inputs,
                "outputs": outputs,
                "metric_history": history,
            }));
            link_tree(
                &rdir.join("artifacts"),
                &out.join("artifacts").join(&run_id),
            )?;
        }
        logged.extend(logged_models(dir, &id, out)?);
    }

    let (mut models, mut versions) = (Vec::new(), Vec::new());
    for mdir in meta_dirs(&root.join("models")) {
        let m = meta(&mdir.join("meta.yaml"))?;
        let name = string(&m, "name");
        let aliases: Vec<Value> = key_files(&mdir.join("aliases"))
            .into_iter()
            .map(|(alias, version)| json!({"alias": alias, "version": version.trim()}))
            .collect();
        models.push(json!({
            "name": name,
            "creation_timestamp": field(&m, "creation_timestamp"),
            "last_updated_timestamp": field(&m, "last_updated_timestamp"),
            "description": field(&m, "description"),
            "tags": kv_json(key_files(&mdir.join("tags"))),
            "aliases": aliases,
        }));
        let mut vdirs: Vec<PathBuf> = std::fs::read_dir(&mdir)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("version-"))
                    && p.join("meta.yaml").is_file()
            })
            .collect();
        vdirs.sort();
        for vdir in vdirs {
            let v = meta(&vdir.join("meta.yaml"))?;
            if string(&v, "current_stage") == plumb_core::registry::DELETED_STAGE {
                continue;
            }
            let mut out_v = Map::new();
            for key in [
                "name",
                "creation_timestamp",
                "last_updated_timestamp",
                "user_id",
                "current_stage",
                "description",
                "source",
                "run_id",
                "status",
                "status_message",
                "run_link",
                "storage_location",
                "model_id",
            ] {
                let value = field(&v, key);
                if !value.is_null() {
                    out_v.insert(key.into(), value);
                }
            }
            out_v.insert("version".into(), json!(string(&v, "version")));
            out_v.insert("tags".into(), kv_json(key_files(&vdir.join("tags"))));
            versions.push(Value::Object(out_v));
        }
    }

    crate::transfer::write_lines(&out.join("experiments.jsonl"), &experiments)?;
    crate::transfer::write_lines(&out.join("runs.jsonl"), &runs)?;
    crate::transfer::write_lines(&out.join("logged_models.jsonl"), &logged)?;
    crate::transfer::write_lines(&out.join("registered_models.jsonl"), &models)?;
    crate::transfer::write_lines(&out.join("model_versions.jsonl"), &versions)?;
    let manifest = json!({
        "format": crate::transfer::FORMAT,
        "version": crate::transfer::VERSION,
        "source": root.display().to_string(),
        "exported_at": plumb_core::now_millis(),
    });
    std::fs::write(
        out.join("manifest.json"),
        serde_json::to_string_pretty(&manifest)?,
    )?;
    Ok(())
}
