//! Monitoring on the real binary: `plumb monitor apply` from a YAML file (idempotent, bad files
//! named by field), events posted over HTTP, the evaluator started by `plumb server` firing and
//! resolving alerts, `plumb alerts list`; on PostgreSQL two replicas evaluating one database
//! record each state change once.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::pg::{admin_url, TempDb};
use crate::Plumb;

const FILE: &str = r#"
monitors:
  - name: checkout-model
    description: the checkout fraud model in production
    rules:
      - name: errors
        metric: error_rate
        window: 1m
        above: 0.2
        min_samples: 20
        severity: critical
"#;

/// Runs the binary with `MLFLOW_TRACKING_URI` set to `base`: (exit code, stdout, stderr).
pub(crate) fn cli(dir: &Path, base: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_plumb"))
        .args(args)
        .env("MLFLOW_TRACKING_URI", base)
        .current_dir(dir)
        .output()
        .expect("run plumb");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn events(base: &str, errors: bool, n: usize) {
    let now = plumb_core_now();
    let events: Vec<Value> = (0..n)
        .map(|i| json!({"timestamp_ms": now, "latency_ms": 20 + i, "error": errors && i % 2 == 0}))
        .collect();
    let resp = reqwest::Client::new()
        .post(format!(
            "{base}/api/2.0/plumb/monitors/checkout-model/events"
        ))
        .json(&json!({ "events": events }))
        .send()
        .await
        .expect("send");
    assert!(resp.status().is_success(), "{:?}", resp.text().await);
}

fn plumb_core_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

async fn alert(base: &str) -> Value {
    reqwest::get(format!(
        "{base}/api/2.0/plumb/alerts?monitor=checkout-model"
    ))
    .await
    .expect("alerts")
    .json::<Value>()
    .await
    .expect("json")["alerts"][0]
        .clone()
}

/// Polls until the rule's state is `state`; returns how long that took.
async fn until(base: &str, state: &str) -> Duration {
    let start = Instant::now();
    loop {
        if alert(base).await["state"] == state {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "never {state}: {}",
            alert(base).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applied_monitors_fire_and_resolve_on_the_real_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plumb = Plumb::start_with(dir.path(), &["--monitor-interval", "1s"]).await;
    std::fs::write(dir.path().join("monitors.yaml"), FILE).expect("write");
    let (code, out, err) = cli(
        dir.path(),
        &plumb.base,
        &["monitor", "apply", "-f", "monitors.yaml"],
    );
    assert_eq!(
        (code, out.trim()),
        (0, "monitor/checkout-model created"),
        "{err}"
    );
    let (code, out, _) = cli(
        dir.path(),
        &plumb.base,
        &["monitor", "apply", "-f", "monitors.yaml"],
    );
    assert_eq!((code, out.trim()), (0, "monitor/checkout-model unchanged"));
    std::fs::write(
        dir.path().join("bad.yaml"),
        FILE.replace("window: 1m", "window: [1]"),
    )
    .expect("write");
    let (code, _, err) = cli(
        dir.path(),
        &plumb.base,
        &["monitor", "apply", "-f", "bad.yaml"],
    );
    assert_ne!(code, 0);
    assert!(err.contains("monitors[0].rules[0].window"), "{err}");
    std::fs::write(
        dir.path().join("bad.yaml"),
        "monitors: [{name: a, rules: [{name: r}]}]\n",
    )
    .expect("write");
    let (code, _, err) = cli(
        dir.path(),
        &plumb.base,
        &["monitor", "apply", "-f", "bad.yaml"],
    );
    assert!(
        code != 0 && err.contains("monitors[0].rules[0]") && err.contains("metric"),
        "{err}"
    );

    // A clean stream: the rule is evaluated and stays inactive.
    events(&plumb.base, false, 50).await;
    until(&plumb.base, "inactive").await;
    // Half the requests fail: firing within a couple of evaluations (for: 0).
    events(&plumb.base, true, 200).await;
    let lag = until(&plumb.base, "firing").await;
    println!("event batch acknowledged -> alert firing: {lag:?} (interval 1s)");
    let a = alert(&plumb.base).await;
    assert!(a["value"].as_f64().expect("value") > 0.2, "{a}");
    let (code, out, _) = cli(
        dir.path(),
        &plumb.base,
        &["alerts", "list", "--state", "firing"],
    );
    assert!(
        code == 0 && out.contains("checkout-model") && out.contains("firing"),
        "{out}"
    );
    let (code, out, _) = cli(
        dir.path(),
        &plumb.base,
        &["alerts", "list", "--history", "--output-format", "json"],
    );
    assert_eq!(code, 0);
    let history: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(history["changes"][0]["to"], "firing", "{history}");

    // The monitor's rule changes: the alert resolves at the next evaluation.
    std::fs::write(
        dir.path().join("monitors.yaml"),
        FILE.replace("above: 0.2", "above: 0.9"),
    )
    .expect("write");
    let (code, out, _) = cli(
        dir.path(),
        &plumb.base,
        &["monitor", "apply", "-f", "monitors.yaml"],
    );
    assert_eq!((code, out.trim()), (0, "monitor/checkout-model updated"));
    until(&plumb.base, "resolved").await;
    let text = reqwest::get(format!("{}/metrics", plumb.base))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("body");
    assert!(
        !text.contains("ALERTS{"),
        "no pending or firing alert left:\n{text}"
    );
    let (code, out, _) = cli(
        dir.path(),
        &plumb.base,
        &["monitor", "delete", "checkout-model"],
    );
    assert_eq!((code, out.trim()), (0, "monitor/checkout-model deleted"));
}

/// Two replicas evaluate one PostgreSQL database; one leads at a time, so each state change is
/// recorded once, and the other takes over when the leader is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_record_each_alert_change_once() {
    let db = TempDb::create(&admin_url()).await;
    let url = db.url();
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let flags = [
        "--backend-store-uri",
        url.as_str(),
        "--monitor-interval",
        "1s",
    ];
    let a = Plumb::start_with(dir_a.path(), &flags).await;
    let b = Plumb::start_with(dir_b.path(), &flags).await;
    std::fs::write(dir_a.path().join("monitors.yaml"), FILE).expect("write");
    let (code, _, err) = cli(
        dir_a.path(),
        &a.base,
        &["monitor", "apply", "-f", "monitors.yaml"],
    );
    assert_eq!(code, 0, "{err}");
    events(&b.base, true, 100).await;
    until(&a.base, "firing").await;
    // Both have had several rounds; the change was recorded once.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let history: Value = reqwest::get(format!("{}/api/2.0/plumb/alerts/history", b.base))
        .await
        .expect("history")
        .json()
        .await
        .expect("json");
    let firing = history["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| c["to"] == "firing")
        .count();
    assert_eq!(firing, 1, "{history}");
    // Whichever led, kill it: the survivor keeps evaluating (values keep updating).
    let before = alert(&b.base).await["evaluated_ms"]
        .as_i64()
        .expect("evaluated");
    drop(a);
    let start = Instant::now();
    loop {
        let now = alert(&b.base).await["evaluated_ms"]
            .as_i64()
            .expect("evaluated");
        if now > before + 1500 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "nobody evaluates any more"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The monitor verbs also work on a store opened directly, like the other verbs.
#[test]
fn monitor_verbs_work_on_a_store_opened_directly() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("monitors.yaml"), FILE).expect("write");
    let store = "sqlite:///m.db";
    let (code, out, err) = cli(
        dir.path(),
        store,
        &["monitor", "apply", "-f", "monitors.yaml"],
    );
    assert_eq!(
        (code, out.trim()),
        (0, "monitor/checkout-model created"),
        "{err}"
    );
    let (code, out, _) = cli(
        dir.path(),
        store,
        &["monitor", "list", "--output-format", "json"],
    );
    let list: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(code, 0);
    assert_eq!(list["monitors"][0]["name"], "checkout-model");
    assert_eq!(list["monitors"][0]["spec"]["rules"][0]["window"], "1m");
    let (code, out, _) = cli(dir.path(), store, &["monitor", "show", "checkout-model"]);
    assert!(code == 0 && out.contains("\"error_rate\""), "{out}");
    let (code, _, err) = cli(dir.path(), store, &["monitor", "show", "nope"]);
    assert!(
        code != 0 && err.contains("RESOURCE_DOES_NOT_EXIST"),
        "{err}"
    );
    let (code, out, _) = cli(
        dir.path(),
        store,
        &["monitor", "apply", "-f", "monitors.yaml", "--dry-run"],
    );
    assert_eq!(
        (code, out.trim()),
        (0, "monitor/checkout-model unchanged (dry run)")
    );
    std::fs::write(dir.path().join("empty.yaml"), "monitors: []\n").expect("write");
    let (code, out, _) = cli(
        dir.path(),
        store,
        &["monitor", "apply", "-f", "empty.yaml", "--prune"],
    );
    assert_eq!((code, out.trim()), (0, "monitor/checkout-model deleted"));
    let (code, out, _) = cli(dir.path(), store, &["alerts", "list", "--history"]);
    assert_eq!(code, 0, "{out}");
}
