//! `GET /metrics`: the server's own request counts and latencies in Prometheus' text format,
//! labelled by route pattern; random paths and methods do not make new series.

use serde_json::json;

use crate::support::TestServer;

#[tokio::test]
async fn metrics_count_requests_by_route_pattern() {
    let s = TestServer::spawn().await;
    let (status, _) = s
        .post("/api/2.0/mlflow/experiments/create", json!({"name": "m"}))
        .await;
    assert_eq!(status, 200);
    let (status, _) = s
        .get("/api/2.0/mlflow/runs/get?run_id=0123456789abcdef0123456789abcdef")
        .await;
    assert_eq!(status, 404);
    for i in 0..40 {
        let (status, _) = s.get(&format!("/nope/{i}/x%2F..")).await;
        assert_eq!(status, 404);
    }
    let brew = reqwest::Method::from_bytes(b"BREW").expect("method");
    let (status, _) = s.send(s.client.request(brew, s.url("/health"))).await;
    assert_eq!(status, 405);

    let resp = s
        .client
        .get(s.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let body = resp.text().await.expect("body");
    let has = |line: &str| {
        assert!(
            body.lines().any(|l| l == line),
            "no line {line:?} in:\n{body}"
        );
    };
    has(
        r#"plumb_http_requests_total{route="/api/2.0/mlflow/experiments/create",method="POST",status="200"} 1"#,
    );
    has(
        r#"plumb_http_requests_total{route="/api/2.0/mlflow/runs/get",method="GET",status="404"} 1"#,
    );
    has(r#"plumb_http_requests_total{route="unmatched",method="GET",status="404"} 40"#);
    has(r#"plumb_http_requests_total{route="/health",method="other",status="405"} 1"#);
    has(&format!(
        r#"plumb_build_info{{version="{}"}} 1"#,
        env!("CARGO_PKG_VERSION")
    ));
    assert!(body.contains(
        r#"plumb_http_request_duration_seconds_count{route="/api/2.0/mlflow/experiments/create",method="POST"} 1"#
    ), "{body}");
    assert!(body.contains("# TYPE plumb_http_request_duration_seconds histogram"));
    // Nothing of the raw request reaches a label.
    assert!(!body.contains("nope") && !body.contains("BREW"), "{body}");
}
