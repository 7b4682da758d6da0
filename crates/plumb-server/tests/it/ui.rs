//! The embedded web UI over HTTP: the page and its hashed assets with their types, caching and
//! Content-Security-Policy; a revalidation answers 304; any other name under `/static/` is an
//! MLflow-shaped 404, however it is spelled.

use crate::support::TestServer;

#[tokio::test]
async fn the_page_and_its_assets_are_served_with_a_strict_policy() {
    let s = TestServer::spawn().await;
    let page = s.client.get(s.url("/")).send().await.expect("send");
    assert_eq!(page.status(), 200);
    let h = page.headers().clone();
    assert!(h["content-type"]
        .to_str()
        .expect("ct")
        .starts_with("text/html"));
    assert_eq!(h["cache-control"], "no-cache");
    let csp = h["content-security-policy"].to_str().expect("csp");
    assert!(
        csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe"), "{csp}");
    let html = page.text().await.expect("html");
    let js = html
        .split('"')
        .find(|p| p.starts_with("/static/app.js?v="))
        .expect("the page names its script")
        .to_string();
    assert!(html.contains("/static/app.css?v="));
    let asset = s.client.get(s.url(&js)).send().await.expect("send");
    assert_eq!(asset.status(), 200);
    assert!(asset.headers()["content-type"]
        .to_str()
        .expect("ct")
        .starts_with("text/javascript"));
    assert!(asset.headers()["cache-control"]
        .to_str()
        .expect("cc")
        .contains("immutable"));
    let tag = asset.headers()["etag"].clone();
    let again = s
        .client
        .get(s.url("/static/app.js"))
        .header("if-none-match", tag)
        .send()
        .await
        .expect("send");
    assert_eq!(again.status(), 304);
    for path in [
        "/static/nope.js",
        "/static/..%2fCargo.toml",
        "/static/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/static/app.js%00",
        "/static/",
    ] {
        let (st, b) = s.raw("GET", path, b"").await;
        assert!((400..500).contains(&st), "{path}: {st} {b}");
    }
}

#[tokio::test]
async fn sampled_history_keeps_spikes_and_refuses_hostile_input() {
    use serde_json::json;
    let s = TestServer::spawn().await;
    let run = s
        .ok(
            "/api/2.0/mlflow/runs/create",
            json!({"experiment_id": "0", "start_time": 1}),
        )
        .await;
    let run_id = run["run"]["info"]["run_id"]
        .as_str()
        .expect("id")
        .to_string();
    // 5,000 points with one spike, in batches of 1,000.
    for b in 0..5 {
        let metrics: Vec<_> = (0..1000)
            .map(|i| {
                let step = b * 1000 + i;
                let value = if step == 3_210 {
                    1e6
                } else {
                    (step % 10) as f64
                };
                json!({"key": "loss", "value": value, "timestamp": step, "step": step})
            })
            .collect();
        s.ok(
            "/api/2.0/mlflow/runs/log-batch",
            json!({"run_id": run_id, "metrics": metrics}),
        )
        .await;
    }
    let url =
        format!("/api/2.0/plumb/metrics/sampled?run_ids={run_id}&metric_key=loss&max_points=100");
    let (st, b) = s.get(&url).await;
    assert_eq!(st, 200, "{b}");
    let series = &b["series"][0];
    assert_eq!(series["total"], 5000);
    let points = series["points"].as_array().expect("points");
    assert!(points.len() <= 100);
    assert!(
        points.iter().any(|p| p["value"] == 1e6),
        "the spike is kept"
    );
    for bad in [
        "/api/2.0/plumb/metrics/sampled?metric_key=loss".to_string(),
        format!("/api/2.0/plumb/metrics/sampled?run_ids={run_id}"),
        format!("/api/2.0/plumb/metrics/sampled?run_ids={run_id}&metric_key=loss&max_points=1"),
        format!(
            "/api/2.0/plumb/metrics/sampled?run_ids={run_id}&metric_key=loss&max_points=99999999"
        ),
        "/api/2.0/plumb/metrics/sampled?run_ids=..%2f..&metric_key=loss".to_string(),
        format!(
            "/api/2.0/plumb/metrics/sampled?metric_key=loss&{}",
            (0..101)
                .map(|i| format!("run_ids=r{i}"))
                .collect::<Vec<_>>()
                .join("&")
        ),
    ] {
        let (st, b) = s.get(&bad).await;
        assert!((400..500).contains(&st), "{bad}: {st} {b}");
    }
}

#[tokio::test]
async fn registry_history_answers_and_refuses_hostile_input() {
    use serde_json::json;
    let s = TestServer::spawn().await;
    s.ok(
        "/api/2.0/mlflow/registered-models/create",
        json!({"name": "churn"}),
    )
    .await;
    let run = s
        .ok(
            "/api/2.0/mlflow/runs/create",
            json!({"experiment_id": "0", "start_time": 1}),
        )
        .await;
    let run_id = run["run"]["info"]["run_id"].as_str().expect("id");
    for _ in 0..2 {
        s.ok(
            "/api/2.0/mlflow/model-versions/create",
            json!({"name": "churn", "source": format!("runs:/{run_id}/model"), "run_id": run_id}),
        )
        .await;
    }
    for (path, body) in [
        (
            "registered-models/alias",
            json!({"name": "churn", "alias": "champion", "version": "1"}),
        ),
        (
            "registered-models/alias",
            json!({"name": "churn", "alias": "champion", "version": "2"}),
        ),
        (
            "model-versions/transition-stage",
            json!({"name": "churn", "version": "2", "stage": "Production",
                   "archive_existing_versions": false}),
        ),
    ] {
        s.ok(&format!("/api/2.0/mlflow/{path}"), body).await;
    }
    let url = "/api/2.0/plumb/registry/history?name=churn";
    let (st, first) = s.get(url).await;
    assert_eq!(st, 200, "{first}");
    insta::assert_json_snapshot!("registry_history", first, {
        ".changes[].time_ms" => "[time]",
    });
    let (_, newest) = s
        .get("/api/2.0/plumb/registry/history?name=churn&max_results=1")
        .await;
    assert_eq!(newest["changes"].as_array().map(Vec::len), Some(1));
    assert_eq!(newest["changes"][0]["kind"], "stage");
    let long = "m".repeat(20_000);
    for (bad, want) in [
        ("/api/2.0/plumb/registry/history".to_string(), 400),
        ("/api/2.0/plumb/registry/history?name=".to_string(), 400),
        ("/api/2.0/plumb/registry/history?name=nope".to_string(), 404),
        (
            "/api/2.0/plumb/registry/history?name=..%2F..%2Fetc".to_string(),
            404,
        ),
        (
            "/api/2.0/plumb/registry/history?name=churn%00".to_string(),
            404,
        ),
        (format!("/api/2.0/plumb/registry/history?name={long}"), 404),
        (format!("{url}&max_results=0"), 400),
        (format!("{url}&max_results=10001"), 400),
        (format!("{url}&max_results=ten"), 400),
    ] {
        let (st, b) = s.get(&bad).await;
        assert_eq!(st, want, "{}: {b}", &bad[..bad.len().min(80)]);
        assert!(b["error_code"].is_string(), "MLflow-shaped error: {b}");
    }
    let (_, after) = s.get(url).await;
    assert_eq!(after, first, "hostile reads changed nothing");
}
