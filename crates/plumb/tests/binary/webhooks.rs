//! Webhooks and alert notifications on the real binary: a registry event delivered to a
//! receiver, `plumb webhooks list|test|deliveries`, and a monitor's alert notified as firing and
//! then resolved to a webhook and an Alertmanager, listed by `plumb alerts list --deliveries`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{StatusCode, Uri};
use serde_json::{json, Value};

use crate::monitoring::cli;
use crate::Plumb;

type Seen = Arc<Mutex<Vec<(String, Value)>>>;

async fn receiver() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let keep = seen.clone();
    let app = axum::Router::new().fallback(move |uri: Uri, body: Bytes| {
        let keep = keep.clone();
        async move {
            let v = serde_json::from_slice(&body).unwrap_or(Value::Null);
            keep.lock().expect("lock").push((uri.path().to_string(), v));
            StatusCode::OK
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

async fn wait_for(seen: &Seen, what: impl Fn(&(String, Value)) -> bool) -> (String, Value) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(hit) = seen.lock().expect("lock").iter().find(|x| what(x)) {
            return hit.clone();
        }
        assert!(Instant::now() < deadline, "never received");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn send(method: reqwest::Method, url: String, body: Value) -> Value {
    let r = reqwest::Client::new()
        .request(method, &url)
        .json(&body)
        .send()
        .await
        .expect("send");
    let status = r.status();
    let v: Value = r.json().await.expect("json");
    assert!(status.is_success(), "{url}: {status} {v}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_and_alert_notifications_reach_receivers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plumb = Plumb::start_env(
        dir.path(),
        &["--monitor-interval", "1s"],
        &[
            ("MLFLOW_WEBHOOK_ALLOWED_SCHEMES", "http,https"),
            ("MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS", "true"),
        ],
    )
    .await;
    let base = plumb.base.clone();
    let (url, seen) = receiver().await;

    let hook = send(
        reqwest::Method::POST,
        format!("{base}/api/2.0/mlflow/webhooks"),
        json!({"name": "registry", "url": format!("{url}/registry"),
               "events": [{"entity": "REGISTERED_MODEL", "action": "CREATED"}]}),
    )
    .await;
    let id = hook["webhook"]["webhook_id"]
        .as_str()
        .expect("id")
        .to_string();
    send(
        reqwest::Method::POST,
        format!("{base}/api/2.0/mlflow/registered-models/create"),
        json!({"name": "fraud"}),
    )
    .await;
    let (_, body) = wait_for(&seen, |(p, _)| p == "/registry").await;
    assert_eq!(body["data"]["name"], "fraud");
    // The log is written just after the receiver answered.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (code, out, err) = cli(dir.path(), &base, &["webhooks", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("registry") && out.contains("registered_model.created"),
        "{out}"
    );
    assert!(out.contains("delivered 200"), "{out}");
    let (code, out, err) = cli(
        dir.path(),
        &base,
        &[
            "webhooks",
            "test",
            &id,
            "--event",
            "registered_model.created",
        ],
    );
    assert_eq!(
        (code, out.lines().next()),
        (0, Some("delivered: HTTP 200")),
        "{err}"
    );
    let (code, _, err) = cli(dir.path(), &base, &["webhooks", "test", "no-such-hook"]);
    assert!(
        code != 0 && err.contains("Webhook with ID no-such-hook not found"),
        "{err}"
    );
    let (code, out, _) = cli(
        dir.path(),
        &base,
        &["webhooks", "deliveries", &id, "--output-format", "json"],
    );
    assert_eq!(code, 0);
    let log: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(log["deliveries"][0]["state"], "delivered", "{log}");

    // A monitor whose alert fires, then resolves when its rule is relaxed.
    let mut monitor = json!({
        "name": "fraud-prod",
        "rules": [{"name": "errors", "metric": "error_rate", "window": "1m", "above": 0.2,
                   "min_samples": 20, "severity": "critical"}],
        "notify": [{"webhook": format!("{url}/alerts")}, {"alertmanager": format!("{url}/am")}],
    });
    send(
        reqwest::Method::POST,
        format!("{base}/api/2.0/plumb/monitors"),
        monitor.clone(),
    )
    .await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let events: Vec<Value> = (0..100)
        .map(|i| json!({"timestamp_ms": now, "latency_ms": 5, "error": i % 2 == 0}))
        .collect();
    send(
        reqwest::Method::POST,
        format!("{base}/api/2.0/plumb/monitors/fraud-prod/events"),
        json!({"events": events}),
    )
    .await;
    let (_, firing) = wait_for(&seen, |(p, b)| p == "/alerts" && b["action"] == "firing").await;
    assert_eq!(firing["entity"], "alert");
    assert_eq!(firing["data"]["rule"], "errors");
    assert!(
        firing["data"]["value"].as_f64().expect("value") > 0.2,
        "{firing}"
    );
    let (_, am) = wait_for(&seen, |(p, _)| p == "/am/api/v2/alerts").await;
    assert_eq!(am[0]["labels"]["alertname"], "errors");

    monitor["rules"][0]["above"] = json!(0.9);
    send(
        reqwest::Method::PUT,
        format!("{base}/api/2.0/plumb/monitors/fraud-prod"),
        monitor,
    )
    .await;
    let (_, resolved) = wait_for(&seen, |(p, b)| p == "/alerts" && b["action"] == "resolved").await;
    assert_eq!(resolved["data"]["previous_state"], "firing");
    // A resolved alert ends in the past; a firing one a few minutes ahead.
    let (_, am_resolved) = wait_for(&seen, |(p, b)| {
        p == "/am/api/v2/alerts"
            && b[0]["endsAt"]
                .as_str()
                .is_some_and(|e| e <= iso_now().as_str())
    })
    .await;
    assert_eq!(am_resolved[0]["labels"]["monitor"], "fraud-prod");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (code, out, err) = cli(dir.path(), &base, &["alerts", "list", "--deliveries"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("alert.firing") && out.contains("alert.resolved"),
        "{out}"
    );
    assert!(
        out.contains("webhook: http://127.0.0.1") && out.contains("alertmanager:"),
        "{out}"
    );
    assert!(
        !out.contains("registered_model"),
        "webhook deliveries are not alerts: {out}"
    );
}

fn iso_now() -> String {
    let t = std::time::SystemTime::now();
    humantime::format_rfc3339_millis(t).to_string()
}

/// Two replicas on one PostgreSQL database both run the delivery worker: each event reaches the
/// receiver once, whichever replica claimed it, even while attempts are slow.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_deliver_each_event_once() {
    use crate::pg::{admin_url, TempDb};

    let db = TempDb::create(&admin_url()).await;
    let url = db.url();
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let env = [
        ("MLFLOW_WEBHOOK_ALLOWED_SCHEMES", "http"),
        ("MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS", "true"),
    ];
    let flags = ["--backend-store-uri", url.as_str()];
    let a = Plumb::start_env(dir_a.path(), &flags, &env).await;
    let b = Plumb::start_env(dir_b.path(), &flags, &env).await;

    let ids: Arc<Mutex<Vec<String>>> = Arc::default();
    let keep = ids.clone();
    let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
        let keep = keep.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let id = headers
                .get("x-mlflow-delivery-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            keep.lock().expect("lock").push(id);
            StatusCode::OK
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let receiver = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });

    send(
        reqwest::Method::POST,
        format!("{}/api/2.0/mlflow/webhooks", a.base),
        json!({"name": "once", "url": receiver,
               "events": [{"entity": "REGISTERED_MODEL", "action": "CREATED"}]}),
    )
    .await;
    const N: usize = 30;
    for i in 0..N {
        let base = if i % 2 == 0 { &a.base } else { &b.base };
        send(
            reqwest::Method::POST,
            format!("{base}/api/2.0/mlflow/registered-models/create"),
            json!({"name": format!("m{i}")}),
        )
        .await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while ids.lock().expect("lock").len() < N {
        assert!(
            Instant::now() < deadline,
            "{} of {N} delivered",
            ids.lock().expect("lock").len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Both workers kept polling meanwhile; nothing arrives twice.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut got = ids.lock().expect("lock").clone();
    assert_eq!(got.len(), N, "a delivery was sent twice");
    got.sort();
    got.dedup();
    assert_eq!(got.len(), N);
}
