//! Wire shapes of tracking responses, pinned as insta snapshots (ids and times redacted).

use serde_json::json;

use crate::support::TestServer;

#[tokio::test]
async fn experiment_and_run_wire_shapes() {
    let s = TestServer::spawn().await;
    let created = s
        .ok(
            "/api/2.0/mlflow/experiments/create",
            json!({"name": "shapes", "tags": [{"key": "team", "value": "ml"}]}),
        )
        .await;
    let id = created["experiment_id"].as_str().expect("id").to_string();
    let (status, exp) = s
        .get(&format!(
            "/api/2.0/mlflow/experiments/get?experiment_id={id}"
        ))
        .await;
    assert_eq!(status, 200);
    insta::assert_json_snapshot!("experiment_get", exp, {
        ".experiment.creation_time" => "[time]",
        ".experiment.last_update_time" => "[time]",
    });

    let run = s.ok("/api/2.0/mlflow/runs/create", json!({
        "experiment_id": id, "user_id": "alice", "run_name": "first", "start_time": "1700000000000",
        "tags": [{"key": "mlflow.source.type", "value": "LOCAL"}]
    })).await;
    let run_id = run["run"]["info"]["run_id"]
        .as_str()
        .expect("run id")
        .to_string();
    insta::assert_json_snapshot!("run_create", run, {
        ".run.info.run_id" => "[run_id]",
        ".run.info.run_uuid" => "[run_id]",
        ".run.info.artifact_uri" => "[artifact_uri]",
    });

    // camelCase names, int64 as strings, NaN and Infinity as strings.
    s.ok(
        "/api/2.0/mlflow/runs/log-batch",
        json!({
            "runId": run_id,
            "metrics": [
                {"key": "loss", "value": 0.5, "timestamp": "1700000000001", "step": "1"},
                {"key": "nan", "value": "NaN", "timestamp": 1700000000002i64},
                {"key": "inf", "value": "Infinity", "timestamp": 1700000000003i64}
            ],
            "params": [{"key": "lr", "value": "0.1"}],
            "tags": [{"key": "env", "value": "test"}],
            "unknown_field": true
        }),
    )
    .await;
    s.ok(
        "/api/2.0/mlflow/runs/update",
        json!({"run_id": run_id, "status": "FINISHED", "end_time": 1700000000100i64}),
    )
    .await;
    let (_, got) = s
        .get(&format!("/api/2.0/mlflow/runs/get?run_id={run_id}"))
        .await;
    insta::assert_json_snapshot!("run_get", got, {
        ".run.info.run_id" => "[run_id]",
        ".run.info.run_uuid" => "[run_id]",
        ".run.info.artifact_uri" => "[artifact_uri]",
    });
    let (_, hist) = s
        .get(&format!(
            "/api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key=nan"
        ))
        .await;
    assert_eq!(
        hist,
        json!({"metrics": [{"key": "nan", "value": "NaN", "timestamp": 1700000000002i64, "step": 0}]})
    );

    let (_, found) = s.post("/api/2.0/mlflow/runs/search", json!({
        "experiment_ids": [id], "filter": "metrics.loss < 1 and params.lr = '0.1'", "order_by": ["metrics.loss DESC"]
    })).await;
    assert_eq!(found["runs"].as_array().map(Vec::len), Some(1));
    let (_, none) = s
        .post(
            "/api/2.0/mlflow/runs/search",
            json!({"experiment_ids": ["12345"]}),
        )
        .await;
    assert_eq!(none, json!({}));
}

#[tokio::test]
async fn ajax_prefix_and_get_query_strings_reach_the_same_handlers() {
    let s = TestServer::spawn().await;
    let (status, v) = s
        .get("/ajax-api/2.0/mlflow/experiments/get-by-name?experiment_name=Default")
        .await;
    assert_eq!(status, 200);
    assert_eq!(v["experiment"]["experiment_id"], "0");
    let (status, v) = s
        .get("/api/2.0/mlflow/experiments/search?max_results=5&view_type=ALL")
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["experiments"][0]["name"], "Default");
    let (status, info) = s.get("/api/3.0/mlflow/server-info").await;
    assert_eq!(status, 200);
    assert_eq!(info["multipart_uploads_enabled"], false);
    let health = s.client.get(s.url("/health")).send().await.expect("health");
    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(health.text().await.expect("text"), "OK");
}

#[tokio::test]
async fn bulk_interval_and_logged_model_flow() {
    let s = TestServer::spawn().await;
    let run_id = s.new_run().await;
    let metrics: Vec<_> = (0..1000)
        .map(|i| json!({"key": "m", "value": i, "timestamp": i, "step": i}))
        .collect();
    s.ok(
        "/api/2.0/mlflow/runs/log-batch",
        json!({"run_id": run_id, "metrics": metrics}),
    )
    .await;
    let (status, v) = s.get(&format!("/api/2.0/mlflow/metrics/get-history-bulk-interval?run_ids={run_id}&metric_key=m&max_results=10")).await;
    assert_eq!(status, 200, "{v}");
    let steps: Vec<i64> = v["metrics"]
        .as_array()
        .expect("list")
        .iter()
        .map(|m| m["step"].as_i64().expect("step"))
        .collect();
    assert_eq!(steps.first(), Some(&0));
    assert_eq!(steps.last(), Some(&999));
    assert!(steps.len() <= 10);

    let model = s
        .ok(
            "/api/2.0/mlflow/logged-models",
            json!({"experiment_id": "0", "name": "model", "source_run_id": run_id}),
        )
        .await;
    let model_id = model["model"]["info"]["model_id"]
        .as_str()
        .expect("model id")
        .to_string();
    insta::assert_json_snapshot!("logged_model_create", model, {
        ".model.info.model_id" => "[model_id]",
        ".model.info.source_run_id" => "[run_id]",
        ".model.info.artifact_uri" => "[artifact_uri]",
        ".model.info.creation_timestamp_ms" => "[time]",
        ".model.info.last_updated_timestamp_ms" => "[time]",
    });
    s.ok(
        "/api/2.0/mlflow/runs/outputs",
        json!({"run_id": run_id, "models": [{"model_id": model_id, "step": 0}]}),
    )
    .await;
    let (status, done) = s
        .send(
            s.client
                .patch(s.url(&format!("/api/2.0/mlflow/logged-models/{model_id}")))
                .json(&json!({"model_id": model_id, "status": "LOGGED_MODEL_READY"})),
        )
        .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["model"]["info"]["status"], "LOGGED_MODEL_READY");
    let (_, found) = s
        .post(
            "/api/2.0/mlflow/logged-models/search",
            json!({"experiment_ids": ["0"], "filter": "name = 'model'"}),
        )
        .await;
    assert_eq!(found["models"][0]["info"]["model_id"], model_id.as_str());
    let (_, run) = s
        .get(&format!("/api/2.0/mlflow/runs/get?run_id={run_id}"))
        .await;
    assert_eq!(
        run["run"]["outputs"]["model_outputs"][0]["model_id"],
        model_id.as_str()
    );
}

/// Doubles survive the JSON round trip exactly (serde_json's default parser may be 1 ULP off,
/// e.g. for 1/11; found by the MLflow-to-plumb migration test).
#[tokio::test]
async fn metric_values_round_trip_to_the_last_bit() {
    let s = TestServer::spawn().await;
    let run_id = s.new_run().await;
    let values: Vec<f64> = (1..200)
        .map(|i| 1.0 / f64::from(i))
        .chain([0.1 + 0.2, 1e-308, 6.02214076e23])
        .collect();
    let body: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| format!(r#"{{"key": "x", "value": {v:?}, "timestamp": 1, "step": {i}}}"#))
        .collect();
    let raw = format!(
        r#"{{"run_id": "{run_id}", "metrics": [{}]}}"#,
        body.join(", ")
    );
    let (status, answer) = s
        .send(
            reqwest::Client::new()
                .post(s.url("/api/2.0/mlflow/runs/log-batch"))
                .header("content-type", "application/json")
                .body(raw),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let (status, history) = s
        .get(&format!(
            "/api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key=x"
        ))
        .await;
    assert_eq!(status, 200);
    let mut got: Vec<(i64, f64)> = history["metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .map(|m| {
            (
                m["step"].as_i64().unwrap_or(-1),
                m["value"].as_f64().unwrap_or(f64::NAN),
            )
        })
        .collect();
    got.sort_by_key(|(step, _)| *step);
    for (step, value) in got {
        assert_eq!(
            value.to_bits(),
            values[step as usize].to_bits(),
            "step {step}"
        );
    }
}
