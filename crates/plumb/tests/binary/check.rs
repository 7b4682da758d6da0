//! `plumb check` on the real binary against a running server: a candidate run compared with the
//! run behind a registry alias or version; exit codes 0 (passed), 1 (a metric failed), 2 (the
//! check could not be made), JSON and table output, hostile arguments.

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use crate::Plumb;

struct Checked {
    code: i32,
    stdout: String,
    stderr: String,
}

fn check(dir: &Path, uri: &str, args: &[&str]) -> Checked {
    let out = Command::new(env!("CARGO_BIN_EXE_plumb"))
        .arg("check")
        .args(args)
        .args(["--tracking-uri", uri])
        .env_remove("MLFLOW_TRACKING_URI")
        .current_dir(dir)
        .output()
        .expect("run plumb");
    Checked {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn run_with(plumb: &Plumb, exp: &str, metrics: &[(&str, f64)]) -> (String, String) {
    let run: Value = plumb
        .post("runs/create", json!({"experiment_id": exp}))
        .await;
    let id = run["run"]["info"]["run_id"]
        .as_str()
        .expect("id")
        .to_string();
    let uri = run["run"]["info"]["artifact_uri"]
        .as_str()
        .expect("uri")
        .to_string();
    let metrics: Vec<Value> = metrics
        .iter()
        .map(|(k, v)| json!({"key": k, "value": v, "timestamp": 1, "step": 0}))
        .collect();
    plumb
        .post("runs/log-batch", json!({"run_id": id, "metrics": metrics}))
        .await;
    (id, uri)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_gates_a_candidate_against_the_champion() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plumb = Plumb::start(dir.path()).await;
    let d = dir.path();
    let http = plumb.base.clone();
    let exp: Value = plumb
        .post("experiments/create", json!({"name": "iris"}))
        .await;
    let exp = exp["experiment_id"].as_str().expect("id").to_string();
    let (champion, champion_uri) =
        run_with(&plumb, &exp, &[("accuracy", 0.875), ("latency_ms", 120.0)]).await;
    let (better, _) = run_with(&plumb, &exp, &[("accuracy", 0.9375), ("latency_ms", 110.0)]).await;
    let (worse, _) = run_with(&plumb, &exp, &[("accuracy", 0.8125), ("latency_ms", 300.0)]).await;
    plumb
        .post("registered-models/create", json!({"name": "iris"}))
        .await;
    plumb
        .post(
            "model-versions/create",
            json!({"name": "iris", "source": format!("{champion_uri}/model"), "run_id": champion}),
        )
        .await;
    plumb
        .post(
            "registered-models/alias",
            json!({"name": "iris", "alias": "champion", "version": "1"}),
        )
        .await;

    // A better candidate passes, against the alias and against the version.
    let rules = [
        "--metric",
        "accuracy:higher:min_abs=0.0625",
        "--metric",
        "latency_ms:lower:threshold=250",
    ];
    let candidate = format!("runs:/{better}");
    for baseline in ["models:/iris@champion", "models:/iris/1"] {
        let mut args = vec!["--candidate", &candidate, "--baseline", baseline];
        args.extend(rules);
        args.extend(["--output-format", "json"]);
        let got = check(d, &http, &args);
        assert_eq!(got.code, 0, "{}{}", got.stdout, got.stderr);
        let report: Value = serde_json::from_str(&got.stdout).expect("json");
        assert_eq!(report["passed"], true);
        assert_eq!(report["baseline"]["run_id"], champion.as_str());
        assert_eq!(report["metrics"][0]["baseline"], 0.875);
        assert_eq!(report["metrics"][0]["candidate"], 0.9375);
        assert_eq!(report["metrics"][0]["absolute_change"], 0.0625);
        assert_eq!(report["metrics"][1]["passed"], true);
    }

    // A worse one fails with exit code 1, and the table says why.
    let candidate = format!("runs:/{worse}");
    let mut args = vec![
        "--candidate",
        &candidate,
        "--baseline",
        "models:/iris@champion",
    ];
    args.extend(rules);
    let got = check(d, &http, &args);
    assert_eq!(got.code, 1, "{}{}", got.stdout, got.stderr);
    assert!(
        got.stdout
            .contains("FAIL: not better than the baseline by 0.0625"),
        "{}",
        got.stdout
    );
    assert!(
        got.stdout.contains("FAIL: threshold 250 not met"),
        "{}",
        got.stdout
    );
    assert!(
        got.stdout.contains("FAILED: candidate runs:/"),
        "{}",
        got.stdout
    );

    // A metric the candidate lacks fails; so does a run without the baseline's metric.
    let got = check(
        d,
        &http,
        &[
            "--candidate",
            &candidate,
            "--metric",
            "f1:higher:threshold=0.5",
        ],
    );
    assert_eq!(got.code, 1, "{}", got.stdout);
    assert!(
        got.stdout.contains("missing from the candidate"),
        "{}",
        got.stdout
    );

    // Cannot check: exit code 2 and a message naming what is wrong.
    let missing = "runs:/0123456789abcdef0123456789abcdef".to_string();
    let unknown_alias = "models:/iris@nobody".to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--candidate", &missing, "--metric", "a:higher:threshold=1"],
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            vec![
                "--candidate",
                &candidate,
                "--baseline",
                &unknown_alias,
                "--metric",
                "accuracy:higher:min_rel=0.1",
            ],
            "models:/iris@nobody",
        ),
        (
            vec![
                "--candidate",
                "file:///etc/passwd",
                "--metric",
                "a:higher:threshold=1",
            ],
            "is not runs:/",
        ),
        (
            vec![
                "--candidate",
                "models:/../../x/1",
                "--metric",
                "a:higher:threshold=1",
            ],
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            vec![
                "--candidate",
                &candidate,
                "--metric",
                "accuracy:higher:min_abs=0.1",
            ],
            "add --baseline",
        ),
        (
            vec![
                "--candidate",
                &candidate,
                "--metric",
                "accuracy:sideways:threshold=1",
            ],
            "higher or NAME:lower",
        ),
        (
            vec!["--candidate", &candidate, "--metric", "accuracy:higher"],
            "checks nothing",
        ),
        (
            vec![
                "--candidate",
                &candidate,
                "--metric",
                "accuracy:higher:threshold=1e999",
            ],
            "finite number",
        ),
    ];
    for (args, says) in cases {
        let got = check(d, &http, &args);
        assert_eq!(got.code, 2, "{args:?}: {}{}", got.stdout, got.stderr);
        assert!(got.stderr.contains(says), "{args:?}: {}", got.stderr);
        assert!(got.stdout.is_empty(), "{args:?}: {}", got.stdout);
    }
    // An unreachable server is "could not check", not "failed".
    let got = check(
        d,
        "http://127.0.0.1:9",
        &[
            "--candidate",
            &candidate,
            "--metric",
            "a:higher:threshold=1",
        ],
    );
    assert_eq!(got.code, 2, "{}", got.stderr);
}
