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

/// Each rule's value and `ALERTS` as Prometheus exposes its own, label values escaped.
#[tokio::test]
async fn metrics_expose_monitor_values_and_alerts() {
    let s = TestServer::spawn().await;
    let severity = "page \"oncall\" \\ now";
    s.ok(
        "/api/2.0/plumb/monitors",
        json!({"name": "iris-prod", "rules": [
            {"name": "errors", "metric": "error_rate", "window": "5m", "above": 0.1,
             "min_samples": 5, "severity": severity},
            {"name": "quiet", "metric": "count", "window": "5m", "below": 1, "min_samples": 1000}
        ]}),
    )
    .await;
    let now = plumb_core::now_millis();
    let events: Vec<_> = (0..10)
        .map(|i| json!({"timestamp_ms": now - 1000, "error": i % 2 == 0}))
        .collect();
    s.ok(
        "/api/2.0/plumb/monitors/iris-prod/events",
        json!({ "events": events }),
    )
    .await;
    plumb_monitor::engine::evaluate(s.store.as_ref(), now)
        .await
        .expect("evaluate");
    let text = s
        .client
        .get(s.url("/metrics"))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("body");
    for line in [
        "plumb_monitoring_up 1",
        "plumb_monitor_value{monitor=\"iris-prod\",rule=\"errors\",metric=\"error_rate\",window=\"5m\"} 0.5",
        "plumb_monitor_samples{monitor=\"iris-prod\",rule=\"quiet\",metric=\"count\",window=\"5m\"} 10",
        "ALERTS{alertname=\"errors\",alertstate=\"firing\",monitor=\"iris-prod\",severity=\"page \\\"oncall\\\" \\\\ now\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line} in:\n{text}");
    }
    assert!(
        !text.contains("alertname=\"quiet\""),
        "too few samples: no verdict, no alert"
    );
}
