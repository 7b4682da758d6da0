//! Two `plumb server` processes on one PostgreSQL database: concurrent writers through both lose
//! and duplicate nothing, never deadlock, and each replica reads what the other just wrote.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::pg::{admin_url, TempDb};
use crate::Plumb;

const BATCH: i64 = 1000;

async fn call(client: &reqwest::Client, base: &str, path: &str, body: Value) -> Value {
    let resp = client
        .post(format!("{base}/api/2.0/mlflow/{path}"))
        .json(&body)
        .send()
        .await
        .expect("send");
    let status = resp.status();
    let text = resp.text().await.expect("body");
    assert!(status.is_success(), "{path} via {base}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

async fn get(client: &reqwest::Client, base: &str, path: &str, query: &[(&str, &str)]) -> Value {
    let url = reqwest::Url::parse_with_params(&format!("{base}/api/2.0/mlflow/{path}"), query)
        .expect("url");
    let resp = client.get(url).send().await.expect("send");
    let status = resp.status();
    let text = resp.text().await.expect("body");
    assert!(status.is_success(), "{path} via {base}: {status} {text}");
    serde_json::from_str(&text).expect("json")
}

fn points(history: &Value) -> Vec<(i64, i64, f64)> {
    history["metrics"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| {
                    (
                        m["step"].as_i64().unwrap_or(-1),
                        m["timestamp"].as_i64().unwrap_or(-1),
                        m["value"].as_f64().unwrap_or(f64::NAN),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_on_one_database_lose_and_duplicate_nothing() {
    let db = TempDb::create(&admin_url()).await;
    let url = db.url();
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let flags = ["--backend-store-uri", url.as_str(), "--db-pool-size", "4"];
    let mut a = Plumb::start_with(dir_a.path(), &flags).await;
    let mut b = Plumb::start_with(dir_b.path(), &flags).await;
    let bases = [a.base.clone(), b.base.clone()];
    let client = reqwest::Client::new();

    let exp = call(
        &client,
        &bases[0],
        "experiments/create",
        json!({"name": "replicas"}),
    )
    .await;
    let exp_id = exp["experiment_id"].as_str().expect("id").to_string();
    let shared = call(
        &client,
        &bases[1],
        "runs/create",
        json!({"experiment_id": exp_id, "run_name": "shared"}),
    )
    .await["run"]["info"]["run_id"]
        .as_str()
        .expect("run id")
        .to_string();

    // 8 writers, alternating replicas request by request, all on the shared run and key "loss":
    // single points, 1000-point batches (each sent twice, through both replicas: the copy must
    // not be stored again), the same param from everyone, their own params, one tag key
    // everyone overwrites; and 5 runs of their own each.
    let mut tasks = Vec::new();
    for w in 0..8i64 {
        let (client, bases, shared, exp_id) = (
            client.clone(),
            bases.clone(),
            shared.clone(),
            exp_id.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut runs = Vec::new();
            for i in 0..5i64 {
                let base = &bases[((w + i) % 2) as usize];
                let r = call(
                    &client,
                    base,
                    "runs/create",
                    json!({"experiment_id": exp_id, "run_name": format!("w{w}-{i}")}),
                )
                .await;
                runs.push(r["run"]["info"]["run_id"].as_str().expect("id").to_string());
            }
            for i in 0..40i64 {
                let base = &bases[((w + i) % 2) as usize];
                let step = w * 100 + i;
                call(
                    &client,
                    base,
                    "runs/log-metric",
                    json!({"run_id": shared, "key": "loss", "value": step as f64 / 10.0,
                           "timestamp": 1_000 + step, "step": step}),
                )
                .await;
            }
            for k in 0..2i64 {
                let first = 100_000 + (w * 2 + k) * BATCH;
                let metrics: Vec<Value> = (first..first + BATCH)
                    .map(|s| json!({"key": "loss", "value": s as f64, "timestamp": s, "step": s}))
                    .collect();
                let body = json!({"run_id": shared, "metrics": metrics});
                // The same batch through both replicas at once.
                tokio::join!(
                    call(&client, &bases[0], "runs/log-batch", body.clone()),
                    call(&client, &bases[1], "runs/log-batch", body.clone())
                );
                let other = json!({
                    "run_id": shared,
                    "params": [{"key": "lr", "value": "0.01"}, {"key": format!("p{w}"), "value": w.to_string()}],
                    "tags": [{"key": "writer", "value": w.to_string()}],
                });
                tokio::join!(
                    call(&client, &bases[0], "runs/log-batch", other.clone()),
                    call(&client, &bases[1], "runs/log-batch", other.clone())
                );
            }
            runs
        }));
    }
    let mut created: BTreeSet<String> = BTreeSet::new();
    for t in tasks {
        created.extend(t.await.expect("writer"));
    }
    created.insert(shared.clone());

    // Every acknowledged point, once, as read through either replica.
    let mut expected: BTreeSet<i64> = BTreeSet::new();
    for w in 0..8i64 {
        expected.extend((0..40).map(|i| w * 100 + i));
        expected.extend(100_000 + w * 2 * BATCH..100_000 + (w * 2 + 2) * BATCH);
    }
    for base in &bases {
        let history = get(
            &client,
            base,
            "metrics/get-history",
            &[("run_id", &shared), ("metric_key", "loss")],
        )
        .await;
        let got = points(&history);
        assert_eq!(
            got.len(),
            expected.len(),
            "points via {base}: none lost, none twice"
        );
        let steps: BTreeSet<i64> = got.iter().map(|p| p.0).collect();
        assert_eq!(steps, expected);
    }

    // The latest metric is the greatest step, params and tags are all there.
    let max_step = *expected.iter().next_back().expect("points");
    for base in &bases {
        let run = get(&client, base, "runs/get", &[("run_id", &shared)]).await;
        let data = &run["run"]["data"];
        let loss = data["metrics"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["key"] == "loss"))
            .expect("latest loss");
        assert_eq!(loss["step"].as_i64(), Some(max_step));
        assert_eq!(loss["value"].as_f64(), Some(max_step as f64));
        let params = data["params"].as_array().map(Vec::len);
        assert_eq!(params, Some(9), "lr + p0..p7");
        let writer = data["tags"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["key"] == "writer"))
            .and_then(|t| t["value"].as_str())
            .and_then(|v| v.parse::<i64>().ok());
        assert!(writer.is_some_and(|w| (0..8).contains(&w)), "{writer:?}");
    }

    // Both replicas find the same runs, and the filter sees the shared run's latest value.
    for base in &bases {
        let mut found = BTreeSet::new();
        let mut token: Option<String> = None;
        loop {
            let mut body = json!({"experiment_ids": [exp_id], "max_results": 7});
            if let Some(t) = &token {
                body["page_token"] = json!(t);
            }
            let page = call(&client, base, "runs/search", body).await;
            for r in page["runs"].as_array().into_iter().flatten() {
                found.insert(r["info"]["run_id"].as_str().expect("id").to_string());
            }
            token = page["next_page_token"].as_str().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        assert_eq!(found, created, "search via {base}");
        let hit = call(
            &client,
            base,
            "runs/search",
            json!({"experiment_ids": [exp_id], "filter": format!("metrics.loss >= {max_step} and params.lr = '0.01'")}),
        )
        .await;
        let ids: Vec<&str> = hit["runs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["info"]["run_id"].as_str())
            .collect();
        assert_eq!(ids, vec![shared.as_str()]);
    }

    // No replica serves stale data: a write through one is read at once through the other.
    for i in 0..20 {
        let (w, r) = (&bases[i % 2], &bases[(i + 1) % 2]);
        let value = format!("v{i}");
        call(
            &client,
            w,
            "runs/set-tag",
            json!({"run_id": shared, "key": "fresh", "value": value}),
        )
        .await;
        let run = get(&client, r, "runs/get", &[("run_id", &shared)]).await;
        let seen = run["run"]["data"]["tags"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["key"] == "fresh"))
            .and_then(|t| t["value"].as_str())
            .map(str::to_string);
        assert_eq!(
            seen.as_deref(),
            Some(value.as_str()),
            "read via {r} after write via {w}"
        );
    }

    // Version numbers are allocated atomically across replicas too.
    call(
        &client,
        &bases[0],
        "registered-models/create",
        json!({"name": "churn"}),
    )
    .await;
    let run = get(&client, &bases[0], "runs/get", &[("run_id", &shared)]).await;
    let source = format!(
        "{}/model",
        run["run"]["info"]["artifact_uri"]
            .as_str()
            .expect("artifact uri")
    );
    let mut creates = Vec::new();
    for i in 0..32usize {
        let (client, base, source, shared) = (
            client.clone(),
            bases[i % 2].clone(),
            source.clone(),
            shared.clone(),
        );
        creates.push(tokio::spawn(async move {
            let v = call(
                &client,
                &base,
                "model-versions/create",
                json!({"name": "churn", "source": source, "run_id": shared}),
            )
            .await;
            v["model_version"]["version"]
                .as_str()
                .and_then(|v| v.parse::<i64>().ok())
                .expect("version")
        }));
    }
    let mut versions = Vec::new();
    for c in creates {
        versions.push(c.await.expect("create"));
    }
    versions.sort_unstable();
    assert_eq!(versions, (1..=32).collect::<Vec<i64>>());

    for p in [&mut a, &mut b] {
        p.child.kill().expect("kill");
        p.child.wait().expect("wait");
    }
    drop(db);
}
