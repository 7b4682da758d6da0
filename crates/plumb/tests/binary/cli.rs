//! The CLI verbs on the real binary, against a running server over REST and against the same
//! SQLite file opened directly: table, JSON and CSV output (snapshots), errors on stderr with a
//! non-zero exit code, and `db status|upgrade`.

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use crate::Plumb;

pub(crate) struct Out {
    pub(crate) ok: bool,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

pub(crate) fn plumb(dir: &Path, uri: &str, args: &[&str]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_plumb"))
        .args(args)
        .args(["--tracking-uri", uri])
        .env_remove("MLFLOW_TRACKING_URI")
        .current_dir(dir)
        .output()
        .expect("run plumb");
    Out {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub(crate) fn db(dir: &Path, args: &[&str]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_plumb"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run plumb");
    Out {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Run ids replaced by stable names, trailing blanks dropped, times masked.
fn stable(s: &str, ids: &[(String, &str)]) -> String {
    let mut s = s.to_string();
    for (id, name) in ids {
        s = s.replace(id, name);
    }
    s.lines().map(str::trim_end).collect::<Vec<_>>().join("\n")
}

macro_rules! snap {
    ($name:expr, $value:expr) => {
        insta::with_settings!({
            snapshot_path => "snapshots",
            prepend_module_to_snapshot => false,
            filters => vec![
                (r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", "[time]"),
                (r#""(creation_time|last_update_time|creation_timestamp|last_updated_timestamp)": "?\d+"?"#, r#""$1": "[ms]""#),
            ],
        }, {
            insta::assert_snapshot!($name, $value);
        });
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_verbs_over_rest_and_on_the_store_directly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Plumb::start(dir.path()).await;
    let http = server.base.clone();
    let d = dir.path();

    let made = plumb(d, &http, &["experiments", "create", "-n", "churn"]);
    assert!(made.ok, "{}", made.stderr);
    assert_eq!(made.stdout.trim(), "Created experiment 'churn' with id 1");

    // Two runs with known times, metrics, params; a registered model with two versions.
    let mut ids = Vec::new();
    for (i, (name, loss)) in [("baseline", 0.7), ("tuned", 0.4)].iter().enumerate() {
        let run = server
            .post(
                "runs/create",
                json!({"experiment_id": "1", "run_name": name, "start_time": 1_700_000_000_000i64 + i as i64 * 60_000}),
            )
            .await;
        let id = run["run"]["info"]["run_id"]
            .as_str()
            .expect("id")
            .to_string();
        server
            .post(
                "runs/log-batch",
                json!({"run_id": id, "metrics": [{"key": "loss", "value": loss, "timestamp": 5, "step": 1}],
                       "params": [{"key": "lr", "value": format!("0.0{}", i + 1)}]}),
            )
            .await;
        ids.push((id, ["<run-baseline>", "<run-tuned>"][i]));
    }
    server
        .post("registered-models/create", json!({"name": "churn-model"}))
        .await;
    for (id, _) in &ids {
        server
            .post(
                "model-versions/create",
                json!({"name": "churn-model", "run_id": id,
                       "source": format!("mlflow-artifacts:/1/{id}/artifacts/model")}),
            )
            .await;
    }

    let over_rest = plumb(d, &http, &["runs", "list", "--experiment-name", "churn"]);
    assert!(over_rest.ok, "{}", over_rest.stderr);
    snap!("runs_list_table", stable(&over_rest.stdout, &ids));
    // The same verb on the store itself (the server is running: SQLite's WAL allows it).
    let direct = plumb(
        d,
        "sqlite:///plumb.db",
        &["runs", "list", "--experiment-name", "churn"],
    );
    assert!(direct.ok, "{}", direct.stderr);
    assert_eq!(direct.stdout, over_rest.stdout);

    let exps = plumb(d, &http, &["experiments", "search"]);
    snap!("experiments_search_table", stable(&exps.stdout, &ids));

    let search = |format: &str| {
        plumb(
            d,
            &http,
            &[
                "runs",
                "search",
                "-x",
                "1",
                "--filter",
                "metrics.loss < 0.9",
                "--order-by",
                "metrics.loss ASC",
                "--output-format",
                format,
            ],
        )
    };
    let table = search("table");
    snap!("runs_search_table", stable(&table.stdout, &ids));
    let csv = search("csv");
    snap!("runs_search_csv", stable(&csv.stdout, &ids));
    let json_out = search("json");
    let parsed: Value = serde_json::from_str(&json_out.stdout).expect("json output");
    let names: Vec<&str> = parsed["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .filter_map(|r| r["info"]["run_name"].as_str())
        .collect();
    assert_eq!(names, ["tuned", "baseline"]);
    snap!("runs_search_json", stable(&json_out.stdout, &ids));

    let alias = plumb(
        d,
        &http,
        &[
            "models",
            "set-alias",
            "-n",
            "churn-model",
            "--alias",
            "champion",
            "--version",
            "2",
        ],
    );
    assert!(alias.ok, "{}", alias.stderr);
    assert_eq!(
        alias.stdout.trim(),
        "models:/churn-model@champion -> version 2"
    );
    snap!(
        "models_list_table",
        stable(&plumb(d, &http, &["models", "list"]).stdout, &ids)
    );
    snap!(
        "models_versions_table",
        stable(
            &plumb(d, &http, &["models", "versions", "-n", "churn-model"]).stdout,
            &ids
        )
    );
    let described = plumb(d, &http, &["models", "describe", "-n", "churn-model"]);
    let described: Value = serde_json::from_str(&described.stdout).expect("json");
    assert_eq!(
        described["registered_model"]["aliases"][0]["alias"],
        "champion"
    );

    // Lifecycle verbs, checked through search views.
    let (baseline, _) = &ids[0];
    assert!(plumb(d, &http, &["runs", "delete", "--run-id", baseline]).ok);
    let deleted = plumb(
        d,
        &http,
        &[
            "runs",
            "list",
            "-x",
            "1",
            "--view",
            "deleted-only",
            "--output-format",
            "csv",
        ],
    );
    assert!(
        deleted.stdout.contains(baseline.as_str()),
        "{}",
        deleted.stdout
    );
    assert!(plumb(d, &http, &["runs", "restore", "--run-id", baseline]).ok);
    assert!(
        plumb(
            d,
            &http,
            &["experiments", "rename", "-x", "1", "--new-name", "churn-v2"]
        )
        .ok
    );
    assert!(plumb(d, &http, &["experiments", "delete", "-x", "1"]).ok);
    let gone = plumb(
        d,
        &http,
        &[
            "experiments",
            "search",
            "--view",
            "deleted-only",
            "--output-format",
            "json",
        ],
    );
    let gone: Value = serde_json::from_str(&gone.stdout).expect("json");
    assert_eq!(gone["experiments"][0]["name"], "churn-v2");
    assert!(plumb(d, &http, &["experiments", "restore", "-x", "1"]).ok);
    let got = plumb(
        d,
        &http,
        &[
            "experiments",
            "get",
            "-n",
            "churn-v2",
            "--output-format",
            "json",
        ],
    );
    let got: Value = serde_json::from_str(&got.stdout).expect("json");
    assert_eq!(got["experiment"]["lifecycle_stage"], "active");

    // Errors: stderr, non-zero exit, nothing on stdout.
    let missing = plumb(d, &http, &["experiments", "get", "-x", "42"]);
    assert!(!missing.ok);
    assert!(missing.stdout.is_empty());
    assert_eq!(
        missing.stderr.trim(),
        "error: RESOURCE_DOES_NOT_EXIST: No Experiment with id=42 exists"
    );
    let bad_filter = plumb(
        d,
        &http,
        &["runs", "search", "-x", "1", "--filter", "metrics.loss <"],
    );
    assert!(!bad_filter.ok);
    assert!(
        bad_filter
            .stderr
            .starts_with("error: INVALID_PARAMETER_VALUE"),
        "{}",
        bad_filter.stderr
    );
    let unreachable = plumb(d, "http://127.0.0.1:9", &["experiments", "search"]);
    assert!(!unreachable.ok);
    assert!(
        unreachable
            .stderr
            .contains("cannot reach the tracking server at http://127.0.0.1:9"),
        "{}",
        unreachable.stderr
    );
    drop(server);

    // The schema, on the server's file and on a new one.
    let status = db(
        d,
        &["db", "status", "--backend-store-uri", "sqlite:///plumb.db"],
    );
    assert!(status.ok, "{}", status.stderr);
    assert!(
        status.stdout.contains("status: up to date"),
        "{}",
        status.stdout
    );
    let fresh = db(
        d,
        &["db", "status", "--backend-store-uri", "sqlite:///new.db"],
    );
    assert!(
        fresh.stdout.contains("database schema version: 0"),
        "{}",
        fresh.stdout
    );
    assert!(
        !d.join("new.db").exists(),
        "status must not create the database"
    );
    let upgraded = db(
        d,
        &["db", "upgrade", "--backend-store-uri", "sqlite:///new.db"],
    );
    assert!(upgraded.ok, "{}", upgraded.stderr);
    assert!(
        upgraded
            .stdout
            .starts_with("migrated from schema version 0 to "),
        "{}",
        upgraded.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_removes_deleted_runs_with_their_artifacts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let server = Plumb::start(d).await;
    let client = reqwest::Client::new();
    server
        .post("experiments/create", json!({"name": "gc"}))
        .await;
    let mut ids = Vec::new();
    for name in ["doomed", "kept"] {
        let run = server
            .post(
                "runs/create",
                json!({"experiment_id": "1", "run_name": name}),
            )
            .await;
        let id = run["run"]["info"]["run_id"]
            .as_str()
            .expect("id")
            .to_string();
        let put = client
            .put(format!(
                "{}/api/2.0/mlflow-artifacts/artifacts/1/{id}/artifacts/model.bin",
                server.base
            ))
            .body("weights")
            .send()
            .await
            .expect("upload");
        assert!(put.status().is_success());
        ids.push(id);
    }
    server.post("runs/delete", json!({"run_id": ids[0]})).await;
    drop(server);
    let artifact = |id: &str| d.join(format!("mlartifacts/1/{id}/artifacts/model.bin"));

    let dry = db(d, &["gc", "--dry-run"]);
    assert!(dry.ok, "{}", dry.stderr);
    assert!(
        dry.stdout
            .contains(&format!("would remove run {} (experiment 1)", ids[0])),
        "{}",
        dry.stdout
    );
    assert!(artifact(&ids[0]).exists());

    let young = db(d, &["gc", "--older-than", "1h"]);
    assert_eq!(young.stdout.trim(), "nothing to remove", "{}", young.stderr);

    let active = db(d, &["gc", "--run-ids", &ids[1]]);
    assert!(!active.ok);
    assert!(
        active.stderr.contains("was not deleted"),
        "{}",
        active.stderr
    );

    let done = db(d, &["gc"]);
    assert!(done.ok, "{}", done.stderr);
    assert!(
        done.stdout
            .ends_with("removed 1 run(s) and 0 experiment(s)\n"),
        "{}",
        done.stdout
    );
    assert!(
        !artifact(&ids[0]).exists(),
        "artifacts of the removed run are gone"
    );
    assert!(artifact(&ids[1]).exists(), "artifacts of the kept run stay");
    let gone = plumb(
        d,
        "sqlite:///plumb.db",
        &["runs", "describe", "--run-id", &ids[0]],
    );
    assert!(
        gone.stderr.contains("RESOURCE_DOES_NOT_EXIST"),
        "{}",
        gone.stderr
    );
    let kept = plumb(
        d,
        "sqlite:///plumb.db",
        &["runs", "describe", "--run-id", &ids[1]],
    );
    assert!(kept.ok, "{}", kept.stderr);
}

/// `plumb export` then `plumb import` into a fresh store, then `plumb export` of that store (opened
/// directly): the two folders hold the same entities and the same artifact bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_import_round_trip_is_lossless() {
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    let server = Plumb::start(a.path()).await;
    let client = reqwest::Client::new();
    server
        .post(
            "experiments/create",
            json!({"name": "rt", "tags": [{"key": "team", "value": "ml"}]}),
        )
        .await;
    let mut ids = Vec::new();
    for (i, name) in ["one", "two", "three"].iter().enumerate() {
        let run = server
            .post(
                "runs/create",
                json!({"experiment_id": "1", "run_name": name, "start_time": 1_700_000_000_000i64 + i as i64}),
            )
            .await;
        let id = run["run"]["info"]["run_id"]
            .as_str()
            .expect("id")
            .to_string();
        let metrics: Vec<Value> = (0..700)
            .map(|s| json!({"key": "loss", "value": 1.0 / (s as f64 + 3.0), "timestamp": 10 + s, "step": s}))
            .chain([
                json!({"key": "odd", "value": "NaN", "timestamp": 1, "step": 0}),
                json!({"key": "odd", "value": "Infinity", "timestamp": 2, "step": 1}),
            ])
            .collect();
        server
            .post(
                "runs/log-batch",
                json!({"run_id": id, "metrics": metrics,
                       "params": [{"key": "lr", "value": format!("0.{i}")}],
                       "tags": [{"key": "kind", "value": "rt"}]}),
            )
            .await;
        let put = client
            .put(format!(
                "{}/api/2.0/mlflow-artifacts/artifacts/1/{id}/artifacts/dir/file-{i}.txt",
                server.base
            ))
            .body(format!("contents of {name}"))
            .send()
            .await
            .expect("upload");
        assert!(put.status().is_success());
        ids.push(id);
    }
    // An MLflow 3 logged model of run one: a file, a metric on a dataset; inputs and outputs.
    let model = server
        .post(
            "logged-models",
            json!({"experiment_id": "1", "name": "clf", "source_run_id": ids[0],
                   "params": [{"key": "alpha", "value": "0.5"}], "tags": [{"key": "f", "value": "x"}]}),
        )
        .await;
    let model_id = model["model"]["info"]["model_id"]
        .as_str()
        .expect("model id")
        .to_string();
    let put = client
        .put(format!(
            "{}/api/2.0/mlflow-artifacts/artifacts/1/models/{model_id}/artifacts/MLmodel",
            server.base
        ))
        .body("flavors: {}\n")
        .send()
        .await
        .expect("upload");
    assert!(put.status().is_success());
    server
        .post(
            "runs/log-batch",
            json!({"run_id": ids[0], "metrics": [{"key": "auc", "value": 0.75, "timestamp": 5, "step": 1,
                   "model_id": model_id, "dataset_name": "eval", "dataset_digest": "abc"}]}),
        )
        .await;
    server
        .post(
            "runs/log-inputs",
            json!({"run_id": ids[2], "models": [{"model_id": model_id}],
                   "datasets": [{"tags": [{"key": "mlflow.data.context", "value": "eval"}],
                                 "dataset": {"name": "eval", "digest": "abc", "source_type": "local", "source": "{}"}}]}),
        )
        .await;
    server
        .post(
            "runs/outputs",
            json!({"run_id": ids[0], "models": [{"model_id": model_id, "step": 1}]}),
        )
        .await;
    let ready = client
        .patch(format!(
            "{}/api/2.0/mlflow/logged-models/{model_id}",
            server.base
        ))
        .json(&json!({"model_id": model_id, "status": "LOGGED_MODEL_READY"}))
        .send()
        .await
        .expect("finalize");
    assert!(ready.status().is_success());
    server
        .post(
            "runs/update",
            json!({"run_id": ids[0], "status": "FINISHED", "end_time": 1_700_000_500_000i64}),
        )
        .await;
    server.post("runs/delete", json!({"run_id": ids[2]})).await;
    server
        .post(
            "registered-models/create",
            json!({"name": "m", "description": "d", "tags": [{"key": "k", "value": "v"}]}),
        )
        .await;
    for id in &ids[..2] {
        server
            .post(
                "model-versions/create",
                json!({"name": "m", "run_id": id, "source": format!("mlflow-artifacts:/1/{id}/artifacts/dir"),
                       "tags": [{"key": "t", "value": "1"}]}),
            )
            .await;
    }
    server
        .post(
            "registered-models/alias",
            json!({"name": "m", "alias": "champion", "version": "2"}),
        )
        .await;

    let first = a.path().join("first");
    let out = db(
        a.path(),
        &[
            "export",
            first.to_str().expect("path"),
            "--tracking-uri",
            &server.base,
        ],
    );
    assert!(out.ok, "{}", out.stderr);
    drop(server);
    let out = db(b.path(), &["import", first.to_str().expect("path")]);
    assert!(out.ok, "{}", out.stderr);
    let second = b.path().join("second");
    let out = db(
        b.path(),
        &[
            "export",
            second.to_str().expect("path"),
            "--tracking-uri",
            "sqlite:///plumb.db",
        ],
    );
    assert!(out.ok, "{}", out.stderr);

    let lines = |dir: &std::path::Path, file: &str| -> Vec<Value> {
        let text = std::fs::read_to_string(dir.join(file)).expect("jsonl");
        let mut v: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect();
        for item in &mut v {
            // Every store has its own experiment 0.
            if item["experiment_id"] == "0" {
                item["creation_time"] = json!(0);
                item["last_update_time"] = json!(0);
            }
        }
        v.sort_by_key(|x| x.to_string());
        v
    };
    for file in [
        "experiments.jsonl",
        "runs.jsonl",
        "registered_models.jsonl",
        "model_versions.jsonl",
        "logged_models.jsonl",
    ] {
        assert_eq!(lines(&first, file), lines(&second, file), "{file}");
    }
    let models = lines(&second, "logged_models.jsonl");
    assert_eq!(models.len(), 1);
    assert_eq!(models[0]["info"]["status"], "LOGGED_MODEL_READY");
    assert_eq!(models[0]["data"]["metrics"][0]["dataset_name"], "eval");
    let rel = format!("model_artifacts/{model_id}/MLmodel");
    assert_eq!(
        std::fs::read(second.join(&rel)).expect("model file"),
        b"flavors: {}\n"
    );
    let runs_by_id: std::collections::HashMap<String, Value> = lines(&second, "runs.jsonl")
        .into_iter()
        .map(|r| (r["info"]["run_id"].as_str().expect("id").to_string(), r))
        .collect();
    assert_eq!(
        runs_by_id[&ids[2]]["inputs"]["model_inputs"][0]["model_id"],
        json!(model_id)
    );
    assert_eq!(
        runs_by_id[&ids[2]]["inputs"]["dataset_inputs"][0]["dataset"]["name"],
        "eval"
    );
    assert_eq!(
        runs_by_id[&ids[0]]["outputs"]["model_outputs"][0]["step"],
        1
    );
    let runs = lines(&second, "runs.jsonl");
    assert_eq!(runs.len(), 3);
    let mut sizes: Vec<usize> = runs
        .iter()
        .map(|r| r["metric_history"].as_array().map_or(0, Vec::len))
        .collect();
    sizes.sort();
    assert_eq!(sizes, [702, 702, 703]); // run one has the model's metric too
    for (i, id) in ids.iter().enumerate() {
        let rel = format!("artifacts/{id}/dir/file-{i}.txt");
        assert_eq!(
            std::fs::read(first.join(&rel)).expect("first"),
            std::fs::read(second.join(&rel)).expect("second"),
        );
    }
}

/// Server logs written to a pipe (or a file) are plain text: colour only on a terminal.
#[test]
fn server_logs_to_a_pipe_carry_no_colour() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_plumb"))
        .args(["server", "--port", "0"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut lines = std::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut seen = String::new();
    loop {
        let line = lines
            .next()
            .expect("the server logs that it listens before its output ends")
            .expect("read");
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("listening") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen.contains("INFO"), "{seen}");
    assert!(
        !seen.contains('\u{1b}'),
        "ANSI codes in a piped log: {seen:?}"
    );
}
