//! `plumb export DIR` and `plumb import DIR`: everything a tracking server holds, as a folder of
//! JSON lines and artifact files, and back into a plumb store with the original ids.
//!
//! The folder (format version 1):
//! - `manifest.json`: `{"format": "plumb-export", "version": 1, "source": ..., "exported_at": ms}`
//! - `experiments.jsonl`: one experiment per line, as MLflow's REST API shows it (all stages)
//! - `runs.jsonl`: one run per line, as `runs/get` shows it (`info`, `data`, `inputs`,
//!   `outputs`), plus `metric_history`: every point of every metric (`key`, `value`,
//!   `timestamp`, `step`)
//! - `logged_models.jsonl`: one MLflow 3 logged model per line, as `logged-models/get` shows it
//!   (`info` with tags, `data` with params and metrics); deleted logged models are not exported
//! - `registered_models.jsonl`: one registered model per line, as `registered-models/get` shows it
//! - `model_versions.jsonl`: one model version per line, as `model-versions/get` shows it
//! - `artifacts/<run_id>/<path>`: each run's artifact files, relative to its artifact root
//! - `model_artifacts/<model_id>/<path>`: each logged model's files, relative to its artifact root
//!
//! Export reads through MLflow's REST API, so it works against plumb or any MLflow server
//! (whatever its backend); import writes to a store opened directly and skips what is there.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use axum::http::Method;
use indicatif::{ProgressBar, ProgressStyle};
use plumb_artifacts::{ArtifactPath, ArtifactStore};
use plumb_core::entities::{
    Dataset, DatasetInput, Experiment, LifecycleStage, LoggedModel, LoggedModelStatus, Metric,
    ModelOutput, Run, RunData, RunInfo, RunInputs, RunMetric, RunStatus, Tag,
};
use plumb_core::registry::{ModelVersion, RegisteredModel};
use serde_json::{json, Value};

use crate::client::Client;
use crate::output::text;
use crate::wiring::Backend;

pub(crate) const FORMAT: &str = "plumb-export";
pub(crate) const VERSION: i64 = 1;

fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(
            "{prefix:>12} [{bar:30}] {pos}/{len} ({per_sec}, eta {eta}) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    pb.set_prefix(what.to_string());
    pb
}

struct Lines {
    out: std::io::BufWriter<std::fs::File>,
}

impl Lines {
    fn create(path: &Path) -> anyhow::Result<Self> {
        let f =
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self {
            out: std::io::BufWriter::new(f),
        })
    }
    fn push(&mut self, v: &Value) -> anyhow::Result<()> {
        serde_json::to_writer(&mut self.out, v)?;
        self.out.write_all(b"\n")?;
        Ok(())
    }
    fn finish(mut self) -> anyhow::Result<()> {
        self.out.flush()?;
        Ok(())
    }
}

async fn all_pages(
    client: &Client,
    method: Method,
    path: &str,
    mut params: Value,
    field: &str,
) -> anyhow::Result<Vec<Value>> {
    let mut items = Vec::new();
    loop {
        let page = client.call(method.clone(), path, params.clone()).await?;
        items.extend(page[field].as_array().cloned().unwrap_or_default());
        match page["next_page_token"].as_str() {
            Some(t) if !t.is_empty() => params["page_token"] = json!(t),
            _ => return Ok(items),
        }
    }
}

/// Where a listing of artifact files comes from.
enum Owner<'a> {
    Run(&'a str),
    Model(&'a str),
}

/// Files under a run's or a logged model's artifact root, recursively, as relative paths.
async fn artifact_files(client: &Client, owner: Owner<'_>) -> anyhow::Result<Vec<String>> {
    let mut files = Vec::new();
    let mut dirs = vec![String::new()];
    while let Some(dir) = dirs.pop() {
        let (path, mut params, dir_param) = match owner {
            Owner::Run(id) => (
                "artifacts/list".to_string(),
                json!({ "run_id": id }),
                "path",
            ),
            Owner::Model(id) => (
                format!("logged-models/{id}/artifacts/directories"),
                json!({}),
                "artifact_directory_path",
            ),
        };
        if !dir.is_empty() {
            params[dir_param] = json!(dir);
        }
        let listed = client.call(Method::GET, &path, params).await?;
        for f in listed["files"].as_array().into_iter().flatten() {
            let p = text(&f["path"]);
            if f["is_dir"].as_bool().unwrap_or(false) {
                dirs.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    Ok(files)
}

pub async fn export(dir: &Path, tracking_uri: &str, artifacts: &str) -> anyhow::Result<()> {
    let local = !(tracking_uri.starts_with("http://") || tracking_uri.starts_with("https://"));
    let client = Client::connect_with_artifacts(tracking_uri, local.then_some(artifacts)).await?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let result = export_all(&client, dir, tracking_uri).await;
    client.close().await;
    result
}

async fn export_all(client: &Client, dir: &Path, source: &str) -> anyhow::Result<()> {
    let experiments = all_pages(
        client,
        Method::POST,
        "experiments/search",
        json!({ "view_type": "ALL", "max_results": 1000 }),
        "experiments",
    )
    .await?;
    let mut lines = Lines::create(&dir.join("experiments.jsonl"))?;
    for e in &experiments {
        lines.push(e)?;
    }
    lines.finish()?;

    let mut runs = Vec::new();
    for e in &experiments {
        runs.extend(
            all_pages(
                client,
                Method::POST,
                "runs/search",
                json!({ "experiment_ids": [text(&e["experiment_id"])], "run_view_type": "ALL", "max_results": 1000 }),
                "runs",
            )
            .await?,
        );
    }
    let pb = bar(runs.len() as u64, "runs");
    let mut lines = Lines::create(&dir.join("runs.jsonl"))?;
    let (mut points, mut files) = (0u64, 0u64);
    for r in &runs {
        let run_id = text(&r["info"]["run_id"]);
        // runs/search does not show inputs everywhere: runs/get does.
        let mut full = client
            .call(Method::GET, "runs/get", json!({ "run_id": run_id }))
            .await?["run"]
            .clone();
        let mut history = Vec::new();
        for m in full["data"]["metrics"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let key = text(&m["key"]);
            let got = all_pages(
                client,
                Method::GET,
                "metrics/get-history",
                json!({ "run_id": run_id, "metric_key": key, "max_results": 25000 }),
                "metrics",
            )
            .await?;
            points += got.len() as u64;
            history.extend(got);
        }
        full["metric_history"] = Value::Array(history);
        lines.push(&full)?;
        for path in artifact_files(client, Owner::Run(&run_id)).await? {
            let target = dir.join("artifacts").join(&run_id).join(&path);
            client.download_artifact(&run_id, &path, &target).await?;
            files += 1;
        }
        pb.inc(1);
    }
    lines.finish()?;
    pb.finish_and_clear();

    // MLflow 3 logged models (a 2.x server has none: its 404 means "no such API").
    let mut logged = 0u64;
    let mut lines = Lines::create(&dir.join("logged_models.jsonl"))?;
    for e in &experiments {
        let found = all_pages(
            client,
            Method::POST,
            "logged-models/search",
            json!({ "experiment_ids": [text(&e["experiment_id"])], "max_results": 100 }),
            "models",
        )
        .await;
        let found = match found {
            Ok(found) => found,
            Err(err)
                if logged == 0
                    && err
                        .downcast_ref::<crate::client::ApiError>()
                        .is_some_and(|e| {
                            matches!(e.code.as_str(), "ENDPOINT_NOT_FOUND" | "HTTP 404")
                        }) =>
            {
                break
            }
            Err(err) => return Err(err),
        };
        for m in found {
            let model_id = text(&m["info"]["model_id"]);
            let full = client
                .call(Method::GET, &format!("logged-models/{model_id}"), json!({}))
                .await?;
            lines.push(&full["model"])?;
            for path in artifact_files(client, Owner::Model(&model_id)).await? {
                let target = dir.join("model_artifacts").join(&model_id).join(&path);
                client
                    .download_model_file(&model_id, &path, &target)
                    .await?;
                files += 1;
            }
            logged += 1;
        }
    }
    lines.finish()?;

    let models = all_pages(
        client,
        Method::GET,
        "registered-models/search",
        json!({ "max_results": 1000 }),
        "registered_models",
    )
    .await?;
    let mut model_lines = Lines::create(&dir.join("registered_models.jsonl"))?;
    let mut version_lines = Lines::create(&dir.join("model_versions.jsonl"))?;
    let mut versions = 0u64;
    for m in &models {
        let name = text(&m["name"]);
        let full = client
            .call(
                Method::GET,
                "registered-models/get",
                json!({ "name": name }),
            )
            .await?;
        model_lines.push(&full["registered_model"])?;
        let quoted = format!("'{}'", name.replace('\\', "\\\\").replace('\'', "\\'"));
        for v in all_pages(
            client,
            Method::GET,
            "model-versions/search",
            json!({ "filter": format!("name = {quoted}"), "max_results": 1000 }),
            "model_versions",
        )
        .await?
        {
            let got = client
                .call(
                    Method::GET,
                    "model-versions/get",
                    json!({ "name": name, "version": text(&v["version"]) }),
                )
                .await?;
            version_lines.push(&got["model_version"])?;
            versions += 1;
        }
    }
    model_lines.finish()?;
    version_lines.finish()?;
    let manifest = json!({
        "format": FORMAT,
        "version": VERSION,
        "source": plumb_store::uri::redact(source),
        "exported_at": plumb_core::now_millis(),
        "counts": {
            "experiments": experiments.len(), "runs": runs.len(), "metric_points": points,
            "logged_models": logged,
            "artifact_files": files, "registered_models": models.len(), "model_versions": versions,
        },
    });
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_string_pretty(&manifest)?,
    )?;
    println!(
        "exported {} experiment(s), {} run(s), {points} metric point(s), {logged} logged model(s), \
         {files} artifact file(s), {} registered model(s), {versions} version(s) to {}",
        experiments.len(),
        runs.len(),
        models.len(),
        dir.display()
    );
    Ok(())
}

// ---- decoding MLflow's JSON into domain values --------------------------------------------------

fn int(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

fn float(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        Value::String(s) => match s.as_str() {
            "NaN" => f64::NAN,
            "Infinity" => f64::INFINITY,
            "-Infinity" => f64::NEG_INFINITY,
            other => other.parse().unwrap_or(f64::NAN),
        },
        _ => f64::NAN,
    }
}

fn opt_text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

fn tags(v: &Value) -> Vec<Tag> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|t| Tag::new(text(&t["key"]), text(&t["value"])))
        .collect()
}

fn stage(v: &Value) -> LifecycleStage {
    LifecycleStage::parse(v.as_str().unwrap_or("active")).unwrap_or(LifecycleStage::Active)
}

fn experiment(v: &Value) -> Experiment {
    Experiment {
        experiment_id: text(&v["experiment_id"]),
        name: text(&v["name"]),
        artifact_location: text(&v["artifact_location"]),
        lifecycle_stage: stage(&v["lifecycle_stage"]),
        creation_time: int(&v["creation_time"]).unwrap_or(0),
        last_update_time: int(&v["last_update_time"]).unwrap_or(0),
        tags: tags(&v["tags"]),
    }
}

fn run(v: &Value, artifact_uri: String) -> Run {
    let i = &v["info"];
    Run {
        info: RunInfo {
            run_id: text(&i["run_id"]),
            experiment_id: text(&i["experiment_id"]),
            run_name: text(&i["run_name"]),
            user_id: text(&i["user_id"]),
            status: RunStatus::parse(i["status"].as_str().unwrap_or("RUNNING"))
                .unwrap_or(RunStatus::Running),
            start_time: int(&i["start_time"]),
            end_time: int(&i["end_time"]),
            artifact_uri,
            lifecycle_stage: stage(&i["lifecycle_stage"]),
        },
        data: RunData {
            metrics: Vec::new(),
            params: tags(&v["data"]["params"]),
            tags: tags(&v["data"]["tags"]),
        },
        inputs: RunInputs {
            dataset_inputs: dataset_inputs(v),
            model_inputs: v["inputs"]["model_inputs"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| text(&m["model_id"]))
                .collect(),
        },
        outputs: v["outputs"]["model_outputs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| ModelOutput {
                model_id: text(&m["model_id"]),
                step: int(&m["step"]).unwrap_or(0),
            })
            .collect(),
    }
}

/// A logged model as `logged-models/get` shows it, with its artifacts at `artifact_uri`.
fn logged_model(v: &Value, artifact_uri: String) -> LoggedModel {
    let i = &v["info"];
    let nonempty = |v: &Value| opt_text(v).filter(|s| !s.is_empty());
    LoggedModel {
        model_id: text(&i["model_id"]),
        experiment_id: text(&i["experiment_id"]),
        name: text(&i["name"]),
        artifact_uri,
        creation_timestamp_ms: int(&i["creation_timestamp_ms"]).unwrap_or(0),
        last_updated_timestamp_ms: int(&i["last_updated_timestamp_ms"]).unwrap_or(0),
        status: LoggedModelStatus::parse(&text(&i["status"]))
            .unwrap_or(LoggedModelStatus::Unspecified),
        status_message: nonempty(&i["status_message"]),
        model_type: nonempty(&i["model_type"]),
        source_run_id: nonempty(&i["source_run_id"]),
        lifecycle_stage: LifecycleStage::Active,
        tags: tags(&i["tags"]),
        params: tags(&v["data"]["params"]),
        metrics: v["data"]["metrics"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| RunMetric {
                run_id: text(&m["run_id"]),
                metric: Metric {
                    model_id: Some(text(&i["model_id"])),
                    dataset_name: nonempty(&m["dataset_name"]),
                    dataset_digest: nonempty(&m["dataset_digest"]),
                    ..point(m)
                },
            })
            .collect(),
    }
}

/// A run's dataset inputs, as `runs/get` shows them.
fn dataset_inputs(v: &Value) -> Vec<DatasetInput> {
    v["inputs"]["dataset_inputs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            let d = &i["dataset"];
            DatasetInput {
                tags: tags(&i["tags"]),
                dataset: Dataset {
                    name: text(&d["name"]),
                    digest: text(&d["digest"]),
                    source_type: text(&d["source_type"]),
                    source: text(&d["source"]),
                    schema: opt_text(&d["schema"]),
                    profile: opt_text(&d["profile"]),
                },
            }
        })
        .collect()
}

fn point(v: &Value) -> Metric {
    Metric::new(
        text(&v["key"]),
        float(&v["value"]),
        int(&v["timestamp"]).unwrap_or(0),
        int(&v["step"]).unwrap_or(0),
    )
}

fn registered_model(v: &Value) -> RegisteredModel {
    RegisteredModel {
        name: text(&v["name"]),
        creation_timestamp: int(&v["creation_timestamp"]).unwrap_or(0),
        last_updated_timestamp: int(&v["last_updated_timestamp"]).unwrap_or(0),
        description: text(&v["description"]),
        tags: tags(&v["tags"]),
        aliases: Vec::new(),
        latest_versions: Vec::new(),
    }
}

fn model_version(v: &Value) -> ModelVersion {
    ModelVersion {
        name: text(&v["name"]),
        version: int(&v["version"]).unwrap_or(0),
        creation_timestamp: int(&v["creation_timestamp"]).unwrap_or(0),
        last_updated_timestamp: int(&v["last_updated_timestamp"]).unwrap_or(0),
        user_id: opt_text(&v["user_id"]),
        current_stage: v["current_stage"].as_str().unwrap_or("None").to_string(),
        description: text(&v["description"]),
        source: text(&v["source"]),
        run_id: text(&v["run_id"]),
        status: v["status"].as_str().unwrap_or("READY").to_string(),
        status_message: opt_text(&v["status_message"]),
        run_link: text(&v["run_link"]),
        tags: tags(&v["tags"]),
        aliases: Vec::new(),
        storage_location: opt_text(&v["storage_location"]),
        model_id: opt_text(&v["model_id"]),
    }
}

/// Writes `items` as JSON lines (the export folder's `*.jsonl`).
pub(crate) fn write_lines(path: &Path, items: &[Value]) -> anyhow::Result<()> {
    let mut lines = Lines::create(path)?;
    for v in items {
        lines.push(v)?;
    }
    lines.finish()
}

fn read_lines(path: &Path) -> anyhow::Result<Vec<Value>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(
            serde_json::from_str(&line)
                .with_context(|| format!("{} line {}: not JSON", path.display(), n + 1))?,
        );
    }
    Ok(out)
}

/// Files under `root` (none when it is missing), with their paths relative to it in `/` form,
/// sorted by that relative path.
pub(crate) fn files_under(root: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if let Ok(rel) = p.strip_prefix(root) {
                let rel = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                out.push((p.clone(), rel));
            }
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    out
}

/// Imported runs and logged models keep their artifact URI when plumb's artifact proxy holds it
/// (`mlflow-artifacts:/...`); any other location becomes the proxy's (`in_proxy`), where the
/// files go.
fn artifact_uri_for(original: &str, in_proxy: impl FnOnce() -> String) -> String {
    if original.starts_with("mlflow-artifacts:/") {
        original.to_string()
    } else {
        in_proxy()
    }
}

/// Stores every file under `folder` below the proxy location `uri`; how many there were.
async fn put_tree(
    artifacts: &ArtifactStore,
    folder: &Path,
    uri: &str,
    owner: &str,
) -> anyhow::Result<u64> {
    let base = uri
        .trim_start_matches("mlflow-artifacts:")
        .trim_start_matches('/');
    let mut n = 0;
    for (file, rel) in files_under(folder) {
        let key = ArtifactPath::parse(&format!("{base}/{rel}"))
            .map_err(|e| anyhow::anyhow!("{}", e.message))
            .with_context(|| format!("artifact {rel} of {owner}"))?;
        let f = tokio::fs::File::open(&file).await?;
        let body = tokio_util::io::ReaderStream::with_capacity(f, 1 << 20);
        artifacts
            .put(&key, body)
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message))
            .with_context(|| format!("storing artifact {rel} of {owner}"))?;
        n += 1;
    }
    Ok(n)
}

/// `plumb import SOURCE`: a folder, or a server's URL (exported to a temporary folder in the
/// working directory first, removed when the import succeeded).
pub async fn import_from(
    source: &str,
    store_uri: &str,
    artifacts_destination: &str,
    source_artifacts: Option<&Path>,
) -> anyhow::Result<()> {
    let remote = source.starts_with("http://") || source.starts_with("https://");
    let database = crate::mlflow_db::is_db_uri(source);
    let local = Path::new(source.strip_prefix("file:").unwrap_or(source));
    if !remote && !database && !crate::mlruns::is_file_store(local) {
        return import(local, store_uri, artifacts_destination).await;
    }
    let staging = std::env::current_dir()?.join(format!(
        ".plumb-import-{}-{}",
        std::process::id(),
        plumb_core::now_millis()
    ));
    if remote {
        export(&staging, source, artifacts_destination).await?;
    } else if database {
        crate::mlflow_db::to_export(source, &staging, source_artifacts).await?;
    } else {
        crate::mlruns::to_export(local, &staging)?;
    }
    import(&staging, store_uri, artifacts_destination).await?;
    std::fs::remove_dir_all(&staging)
        .with_context(|| format!("removing the staging folder {}", staging.display()))?;
    Ok(())
}

pub async fn import(
    dir: &Path,
    store_uri: &str,
    artifacts_destination: &str,
) -> anyhow::Result<()> {
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("manifest.json")).with_context(|| {
            format!(
                "{} holds no manifest.json: not an export folder",
                dir.display()
            )
        })?,
    )
    .context("manifest.json is not JSON")?;
    if manifest["format"] != FORMAT || int(&manifest["version"]) != Some(VERSION) {
        bail!(
            "{} is not a plumb export of format version {VERSION}",
            dir.display()
        );
    }
    let artifacts = ArtifactStore::from_uri(artifacts_destination)
        .map_err(|e| anyhow::anyhow!("{}", e.message))
        .with_context(|| format!("opening the artifact destination {artifacts_destination}"))?;
    let backend = Backend::open(store_uri, "mlflow-artifacts:/", 4).await?;
    let result = import_all(dir, &backend, &artifacts).await;
    backend.close().await;
    result
}

async fn import_all(
    dir: &Path,
    backend: &Backend,
    artifacts: &ArtifactStore,
) -> anyhow::Result<()> {
    let store = backend.tracking();
    let registry = backend.registry();
    let (mut created, mut skipped) = (0u64, 0u64);
    let mut count = |new: bool| if new { created += 1 } else { skipped += 1 };

    for e in read_lines(&dir.join("experiments.jsonl"))? {
        let e = experiment(&e);
        let (id, tags) = (e.experiment_id.clone(), e.tags.clone());
        let new = store.import_experiment(e).await?;
        count(new);
        // The default experiment exists before any import: its tags join it (none replaced).
        if !new && id == "0" {
            let have = store.get_experiment(&id).await?.tags;
            for tag in tags {
                if !have.iter().any(|t| t.key == tag.key) {
                    store.set_experiment_tag(&id, tag).await?;
                }
            }
        }
    }

    let runs = read_lines(&dir.join("runs.jsonl"))?;
    // Runs whose artifacts move into plumb's proxy: (old root, new root), so that model
    // versions pointing into them follow.
    let mut moved: std::collections::HashMap<String, (String, String)> = Default::default();
    let mut moved_models: std::collections::HashMap<String, (String, String)> = Default::default();
    let pb = bar(runs.len() as u64, "runs");
    let (mut points, mut files) = (0u64, 0u64);
    for r in &runs {
        let run_id = text(&r["info"]["run_id"]);
        let exp = text(&r["info"]["experiment_id"]);
        let original = text(&r["info"]["artifact_uri"]);
        let uri = artifact_uri_for(&original, || {
            format!("mlflow-artifacts:/{exp}/{run_id}/artifacts")
        });
        if uri != original {
            moved.insert(run_id.clone(), (original, uri.clone()));
        }
        count(store.import_run(run(r, uri.clone())).await?);
        let history: Vec<Metric> = r["metric_history"]
            .as_array()
            .into_iter()
            .flatten()
            .map(point)
            .collect();
        points += history.len() as u64;
        for chunk in history.chunks(10_000) {
            store.import_points(&run_id, chunk.to_vec()).await?;
        }
        files += put_tree(
            artifacts,
            &dir.join("artifacts").join(&run_id),
            &uri,
            &format!("run {run_id}"),
        )
        .await?;
        pb.inc(1);
    }
    pb.finish_and_clear();

    let logged = read_lines(&dir.join("logged_models.jsonl"))?;
    for m in &logged {
        let model_id = text(&m["info"]["model_id"]);
        let exp = text(&m["info"]["experiment_id"]);
        let original = text(&m["info"]["artifact_uri"]);
        let uri = artifact_uri_for(&original, || {
            format!("mlflow-artifacts:/{exp}/models/{model_id}/artifacts")
        });
        if uri != original {
            moved_models.insert(model_id.clone(), (original, uri.clone()));
        }
        count(
            store
                .import_logged_model(logged_model(m, uri.clone()))
                .await?,
        );
        files += put_tree(
            artifacts,
            &dir.join("model_artifacts").join(&model_id),
            &uri,
            &format!("logged model {model_id}"),
        )
        .await?;
    }

    let models = read_lines(&dir.join("registered_models.jsonl"))?;
    for m in &models {
        count(
            registry
                .import_registered_model(registered_model(m))
                .await?,
        );
    }
    let versions = read_lines(&dir.join("model_versions.jsonl"))?;
    for v in &versions {
        let mut version = model_version(v);
        let by_model = version
            .model_id
            .as_ref()
            .and_then(|id| moved_models.get(id));
        for (old, new) in [moved.get(&version.run_id), by_model].into_iter().flatten() {
            for uri in [Some(&mut version.source), version.storage_location.as_mut()]
                .into_iter()
                .flatten()
            {
                if let Some(rest) = uri.strip_prefix(old.as_str()) {
                    *uri = format!("{new}{rest}");
                }
            }
        }
        count(registry.import_model_version(version).await?);
    }
    for m in &models {
        for a in m["aliases"].as_array().into_iter().flatten() {
            if let Some(version) = int(&a["version"]) {
                registry
                    .set_alias(&text(&m["name"]), &text(&a["alias"]), version)
                    .await?;
            }
        }
    }
    println!(
        "imported {created} new entit(y/ies), skipped {skipped} already there; {} run(s), \
         {points} metric point(s), {} logged model(s), {files} artifact file(s), \
         {} registered model(s), {} version(s)",
        runs.len(),
        logged.len(),
        models.len(),
        versions.len()
    );
    Ok(())
}
