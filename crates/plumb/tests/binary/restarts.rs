//! PostgreSQL restarting under load (on a private cluster, never the machine's shared one):
//! plumb answers 503 while the database is away, recovers without being restarted, and loses
//! no acknowledged write.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::pg::{PrivateCluster, TempDb};
use crate::Plumb;

#[derive(Default)]
struct Tally {
    acknowledged: Vec<i64>,
    unavailable: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_restart_costs_only_retries() {
    let cluster = PrivateCluster::start_new();
    cluster.wait_ready().await;
    let db = TempDb::create(&cluster.admin_url()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let url = db.url();
    let mut plumb = Plumb::start_with(
        dir.path(),
        &["--backend-store-uri", &url, "--db-pool-size", "4"],
    )
    .await;
    let run: Value = plumb
        .post("runs/create", json!({"experiment_id": "0"}))
        .await;
    let run_id = run["run"]["info"]["run_id"]
        .as_str()
        .expect("id")
        .to_string();

    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4i64 {
        let (base, run_id, stop) = (plumb.base.clone(), run_id.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client");
            let mut tally = Tally::default();
            let mut i = 0i64;
            while !stop.load(Ordering::Relaxed) {
                let step = w * 1_000_000 + i;
                i += 1;
                let resp = client
                    .post(format!("{base}/api/2.0/mlflow/runs/log-metric"))
                    .json(&json!({"run_id": run_id, "key": "x", "value": step, "timestamp": step, "step": step}))
                    .send()
                    .await
                    .expect("plumb itself must stay up");
                match resp.status().as_u16() {
                    200 => tally.acknowledged.push(step),
                    503 => {
                        let body: Value = resp.json().await.expect("json error");
                        assert_eq!(body["error_code"], "TEMPORARILY_UNAVAILABLE");
                        tally.unavailable += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    other => panic!("database restart answered {other}: {}", resp.text().await.unwrap_or_default()),
                }
            }
            tally
        }));
    }
    // Under load for a moment, then PostgreSQL goes away and comes back.
    tokio::time::sleep(Duration::from_millis(300)).await;
    cluster.stop();
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.start();
    cluster.wait_ready().await;
    // Let the writers go on until plumb has acknowledged writes after the restart.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acknowledged = Vec::new();
    let mut unavailable = 0;
    for t in writers {
        let tally = t.await.expect("writer");
        acknowledged.extend(tally.acknowledged);
        unavailable += tally.unavailable;
    }
    eprintln!(
        "acknowledged {} points, {unavailable} answers were 503 while PostgreSQL restarted",
        acknowledged.len()
    );
    assert!(unavailable > 0, "the restart was not noticed at all");

    // Writes after the restart work without restarting plumb, and nothing acknowledged is lost.
    let after = plumb
        .post(
            "runs/log-metric",
            json!({"run_id": run_id, "key": "x", "value": -1, "timestamp": 0, "step": -1}),
        )
        .await;
    assert!(after.is_object());
    let url = reqwest::Url::parse_with_params(
        &format!("{}/api/2.0/mlflow/metrics/get-history", plumb.base),
        &[("run_id", run_id.as_str()), ("metric_key", "x")],
    )
    .expect("url");
    let history: Value = reqwest::get(url)
        .await
        .expect("history")
        .json()
        .await
        .expect("json");
    let stored: std::collections::HashSet<i64> = history["metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .filter_map(|m| m["step"].as_i64())
        .collect();
    let lost: Vec<&i64> = acknowledged
        .iter()
        .filter(|s| !stored.contains(s))
        .collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    assert!(stored.contains(&-1));

    plumb.child.kill().expect("kill");
    plumb.child.wait().expect("wait");
    drop(db);
    drop(cluster);
}
