//! Client mistakes get MLflow-shaped 4xx errors (never 5xx), and change nothing.

use serde_json::{json, Value};

use crate::support::TestServer;

#[tokio::test]
async fn client_mistakes_are_mlflow_shaped_4xx() {
    let s = TestServer::spawn().await;
    let run_id = s.new_run().await;
    s.ok(
        "/api/2.0/mlflow/runs/log-parameter",
        json!({"run_id": run_id, "key": "lr", "value": "0.1"}),
    )
    .await;

    let many: Vec<Value> = (0..1001)
        .map(|i| json!({"key": "m", "value": 1, "timestamp": i}))
        .collect();
    let cases: Vec<(&str, u16, reqwest::RequestBuilder)> = vec![
        ("unknown_endpoint", 404, s.client.get(s.url("/api/2.0/mlflow/nope"))),
        ("missing_content_type", 400, s.client.post(s.url("/api/2.0/mlflow/experiments/create")).body("{}")),
        ("malformed_json", 400, s.client.post(s.url("/api/2.0/mlflow/experiments/create")).header("content-type", "application/json").body("{nope")),
        ("missing_name", 400, s.client.post(s.url("/api/2.0/mlflow/experiments/create")).json(&json!({}))),
        ("wrong_type", 400, s.client.post(s.url("/api/2.0/mlflow/experiments/create")).json(&json!({"name": ["a"], "artifact_location": 5}))),
        ("both_spellings", 400, s.client.post(s.url("/api/2.0/mlflow/runs/search")).json(&json!({"experiment_ids": ["0"], "experimentIds": ["0"]}))),
        ("bad_experiment_id", 400, s.client.get(s.url("/api/2.0/mlflow/experiments/get?experiment_id=abc"))),
        ("missing_experiment", 404, s.client.get(s.url("/api/2.0/mlflow/experiments/get?experiment_id=999"))),
        ("missing_run", 404, s.client.get(s.url("/api/2.0/mlflow/runs/get?run_id=0123456789abcdef0123456789abcdef"))),
        ("bad_filter", 400, s.client.post(s.url("/api/2.0/mlflow/runs/search")).json(&json!({"experiment_ids": ["0"], "filter": "metrics.a > 1 OR metrics.b < 2"}))),
        ("max_results_too_big", 400, s.client.post(s.url("/api/2.0/mlflow/runs/search")).json(&json!({"experiment_ids": ["0"], "max_results": 50001}))),
        ("experiment_search_without_max_results", 400, s.client.post(s.url("/api/2.0/mlflow/experiments/search")).json(&json!({}))),
        ("bad_page_token", 400, s.client.post(s.url("/api/2.0/mlflow/runs/search")).json(&json!({"experiment_ids": ["0"], "page_token": "!!"}))),
        ("param_change", 400, s.client.post(s.url("/api/2.0/mlflow/runs/log-parameter")).json(&json!({"run_id": run_id, "key": "lr", "value": "0.2"}))),
        ("too_many_metrics", 400, s.client.post(s.url("/api/2.0/mlflow/runs/log-batch")).json(&json!({"run_id": run_id, "metrics": many}))),
        ("bad_metric_key", 400, s.client.post(s.url("/api/2.0/mlflow/runs/log-metric")).json(&json!({"run_id": run_id, "key": "bad key!", "value": 1, "timestamp": 1}))),
        ("missing_timestamp", 400, s.client.post(s.url("/api/2.0/mlflow/runs/log-batch")).json(&json!({"run_id": run_id, "metrics": [{"key": "a", "value": 1}]}))),
        ("bad_boolean", 400, s.client.get(s.url("/api/2.0/mlflow/logged-models/m-x?allow_deleted=maybe"))),
        ("interval_steps", 400, s.client.get(s.url(&format!("/api/2.0/mlflow/metrics/get-history-bulk-interval?run_ids={run_id}&metric_key=m&start_step=5")))),
        ("duplicate_experiment", 400, s.client.post(s.url("/api/2.0/mlflow/experiments/create")).json(&json!({"name": "Default"}))),
    ];
    for (name, want, req) in cases {
        let (status, body) = s.send(req).await;
        assert_eq!(status, want, "{name}: {body}");
        assert!(
            body["error_code"].is_string() && body["message"].is_string(),
            "{name}: {body}"
        );
        insta::assert_json_snapshot!(format!("error_{name}"), body, {
            ".message" => insta::dynamic_redaction(|value, _| {
                // run ids vary per test; keep the rest of the message
                let text = value.as_str().unwrap_or_default().to_string();
                let redacted: String = text.split('\'').map(|part| {
                    if part.len() == 32 && part.chars().all(|c| c.is_ascii_hexdigit()) { "[run_id]".to_string() } else { part.to_string() }
                }).collect::<Vec<_>>().join("'");
                insta::internals::Content::from(redacted)
            }),
        });
    }
    // Nothing changed: the param keeps its first value.
    let (_, run) = s
        .get(&format!("/api/2.0/mlflow/runs/get?run_id={run_id}"))
        .await;
    assert_eq!(
        run["run"]["data"]["params"],
        json!([{"key": "lr", "value": "0.1"}])
    );
    assert!(run["run"]["data"].get("metrics").is_none());
}
