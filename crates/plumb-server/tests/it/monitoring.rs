//! plumb's monitoring API: wire shapes (snapshots), the monitor lifecycle, events and labels,
//! series, alerts, and hostile input (paths, bodies, sizes, encodings) answered with 4xx that
//! name the field, with nothing stored lost.

use serde_json::{json, Value};

use crate::support::TestServer;

const M: &str = "/api/2.0/plumb/monitors";

fn spec() -> Value {
    json!({
        "name": "iris-prod",
        "model": "models:/iris@champion",
        "baseline": {"values": {"accuracy": 0.9}},
        "rules": [
            {"name": "accuracy-drop", "metric": "accuracy", "window": "5m",
             "relative_drop": 0.05, "for": "2m", "severity": "critical"},
            {"name": "slow", "metric": "latency_ms:p95", "window": "10m", "above": 250}
        ]
    })
}

async fn send(s: &TestServer, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
    s.send(s.client.request(method, s.url(path)).json(&body))
        .await
}

#[tokio::test]
async fn monitor_lifecycle_and_wire_shapes() {
    let s = TestServer::spawn().await;
    let created = s.ok(M, spec()).await;
    insta::assert_json_snapshot!("monitor_create", created, {
        ".monitor.created_ms" => "[time]", ".monitor.updated_ms" => "[time]",
    });
    let (status, again) = s.post(M, spec()).await;
    assert_eq!(
        (status, again["error_code"].as_str()),
        (400, Some("RESOURCE_ALREADY_EXISTS"))
    );

    // Events in one minute, two minutes ago: the windows below either hold that minute or not.
    let now = plumb_core::now_millis();
    let m0 = now - now.rem_euclid(60_000) - 120_000;
    let events: Vec<Value> = (0..40)
        .map(|i| {
            json!({"timestamp_ms": m0 + 10_000 + i, "request_id": format!("r{i}"),
                   "latency_ms": 100 + i, "prediction": 1, "label": if i < 30 { 1 } else { 0 },
                   "features": {"petal_length": 1.5}, "segment": {"region": "eu"}})
        })
        .collect();
    let stored = s
        .ok(&format!("{M}/iris-prod/events"), json!({"events": events}))
        .await;
    insta::assert_json_snapshot!("monitor_events", stored);
    let again = s
        .ok(&format!("{M}/iris-prod/events"), json!({"events": events}))
        .await;
    assert_eq!(
        again,
        json!({"received": 40, "stored": 0}),
        "a retried batch is stored once"
    );
    let labels = s
        .ok(
            &format!("{M}/iris-prod/labels"),
            json!({"labels": [{"request_id": "r35", "label": 1}, {"request_id": "nope", "label": 0}]}),
        )
        .await;
    assert_eq!(labels, json!({"received": 2, "stored": 2, "matched": 1}));

    // Points at m0 - 90 s, m0 - 30 s (windows ending before the events' minute) and m0 + 30 s.
    let end = m0 + 30_000;
    let (status, series) = s
        .get(&format!(
            "{M}/iris-prod/metrics?metric=accuracy&window=5m&start_ms={}&end_ms={end}&step_ms=60000",
            end - 120_000
        ))
        .await;
    assert_eq!(status, 200, "{series}");
    insta::assert_json_snapshot!("monitor_series", series, {
        ".points[].timestamp_ms" => "[time]",
    });
    assert_eq!(
        series["points"][2]["value"],
        json!(31.0 / 40.0),
        "the late label counts"
    );
    assert_eq!(series["baseline"], json!(0.9));
    let (_, p95) = s
        .get(&format!(
            "{M}/iris-prod/metrics?metric=latency_ms:p95&end_ms={now}"
        ))
        .await;
    let v = p95["points"]
        .as_array()
        .expect("points")
        .last()
        .expect("last")["value"]
        .as_f64()
        .expect("p95");
    assert!(
        (v - 137.0).abs() <= 137.0 * 0.02,
        "p95 within the sketch's error: {v}"
    );

    let (status, got) = s.get(&format!("{M}/iris-prod")).await;
    assert_eq!(status, 200);
    assert_eq!(
        got["monitor"]["spec"]["rules"][1]["for"], "0s",
        "defaults are filled in"
    );
    assert_eq!(got["alerts"], json!([]));
    assert_eq!(
        got["stale_buckets"], 1,
        "the events' minute is closed, not folded (no evaluator)"
    );
    let (_, list) = s.get(M).await;
    assert_eq!(list["monitors"].as_array().map(Vec::len), Some(1));

    let mut changed = spec();
    changed["rules"][1]["above"] = json!(300);
    let (status, put) = send(&s, reqwest::Method::PUT, &format!("{M}/iris-prod"), changed).await;
    assert_eq!(status, 200, "{put}");
    assert_eq!(put["monitor"]["spec"]["rules"][1]["above"], 300.0);
    let (status, missing) = send(
        &s,
        reqwest::Method::PATCH,
        &format!("{M}/other"),
        json!({"rules": []}),
    )
    .await;
    assert_eq!(
        (status, missing["error_code"].as_str()),
        (404, Some("RESOURCE_DOES_NOT_EXIST"))
    );
    let (status, created) = send(
        &s,
        reqwest::Method::PUT,
        &format!("{M}/other"),
        json!({"source": {"events": true}}),
    )
    .await;
    assert_eq!(
        (status, created["monitor"]["name"].as_str()),
        (200, Some("other"))
    );

    let (status, alerts) = s.get("/api/2.0/plumb/alerts?state=firing").await;
    assert_eq!((status, alerts), (200, json!({"alerts": []})));
    let (status, history) = s
        .get("/api/2.0/plumb/alerts/history?monitor=iris-prod")
        .await;
    assert_eq!((status, history), (200, json!({"changes": []})));
    let (status, _) = s.get("/ajax-api/2.0/plumb/monitors").await;
    assert_eq!(status, 200, "the UI's prefix");

    let (status, _) = send(
        &s,
        reqwest::Method::DELETE,
        &format!("{M}/iris-prod"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, gone) = s.get(&format!("{M}/iris-prod")).await;
    assert_eq!(
        (status, gone["error_code"].as_str()),
        (404, Some("RESOURCE_DOES_NOT_EXIST"))
    );
}

#[tokio::test]
async fn hostile_input_gets_4xx_naming_the_field_and_loses_nothing() {
    let s = TestServer::spawn().await;
    s.ok(M, spec()).await;
    let now = plumb_core::now_millis();
    let good = json!({"events": [{"timestamp_ms": now, "request_id": "keep", "latency_ms": 5,
                                  "prediction": 1, "label": 1}]});
    s.ok(&format!("{M}/iris-prod/events"), good).await;

    let refused = |status: u16, body: &Value, field: &str| {
        assert!((400..500).contains(&status), "{status}: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains(field), "expected '{field}' in: {body}");
    };
    // Monitor specs.
    let mut bad = spec();
    bad["rules"][0]["window"] = json!("soon");
    let (st, b) = s.post(M, bad).await;
    refused(st, &b, "rules[0].window");
    for (name, field) in [
        ("../etc", "name"),
        ("a/b", "name"),
        ("", "name"),
        ("x\u{0}", "name"),
    ] {
        let (st, b) = s.post(M, json!({"name": name})).await;
        refused(st, &b, field);
    }
    let (st, b) = s
        .post(M, json!({"name": "n", "model": "file:///etc/passwd"}))
        .await;
    refused(st, &b, "model");
    let (st, b) = s
        .post(M, json!({"name": "n", "baseline": "s3://bucket/x"}))
        .await;
    refused(st, &b, "baseline");
    let (st, b) = s
        .post(M, json!({"name": "n", "source": {"runs": "tags.env = "}}))
        .await;
    refused(st, &b, "source.runs");
    let (st, b) = s.post(M, json!({"name": "n", "rules": "everything"})).await;
    refused(st, &b, "rules");
    let (st, b) = send(
        &s,
        reqwest::Method::PUT,
        &format!("{M}/iris-prod"),
        json!({"name": "x"}),
    )
    .await;
    refused(st, &b, "name");
    let (st, b) = s.raw("POST", M, b"{\"name\": \"n\"").await;
    assert_eq!(st, 400, "{b}");
    let huge = vec![b' '; 33 * 1024 * 1024];
    let (st, _) = s
        .send(
            s.client
                .post(s.url(M))
                .header("content-type", "application/json")
                .body(huge),
        )
        .await;
    assert_eq!(st, 413);

    // Paths.
    for path in [
        format!("{M}/..%2F..%2Fetc%2Fpasswd"),
        format!("{M}/%00"),
        format!("{M}/{}", "a".repeat(10_000)),
        format!("{M}/%E2%80%AE"),
    ] {
        let (st, b) = s.get(&path).await;
        assert_eq!(
            (st, b["error_code"].as_str()),
            (404, Some("RESOURCE_DOES_NOT_EXIST")),
            "{path}"
        );
        let (st, _) = s
            .post(&format!("{path}/events"), json!({"events": []}))
            .await;
        assert_eq!(st, 404, "{path}");
    }

    // Events.
    let ev = format!("{M}/iris-prod/events");
    for (body, field) in [
        (
            json!({"events": [{}, {"latency_ms": -1}]}),
            "events[1].latency_ms",
        ),
        (
            json!({"events": [{"latency_ms": "NaN"}]}),
            "events[0].latency_ms",
        ),
        (
            json!({"events": [{"timestamp_ms": 5}]}),
            "events[0].timestamp_ms",
        ),
        (
            json!({"events": [{"timestamp_ms": now + 86_400_000}]}),
            "events[0].timestamp_ms",
        ),
        (
            json!({"events": [{"request_id": "x".repeat(300)}]}),
            "events[0].request_id",
        ),
        (
            json!({"events": [{"request_id": "a\nb"}]}),
            "events[0].request_id",
        ),
        (
            json!({"events": [{"features": [1, 2]}]}),
            "events[0].features",
        ),
        (
            json!({"events": [{"prediction": [1]}]}),
            "events[0].prediction",
        ),
        (json!({"events": [{"colour": "red"}]}), "colour"),
        (json!({"events": {"a": 1}}), "events"),
        (json!({"rows": []}), "rows"),
    ] {
        let (st, b) = s.post(&ev, body).await;
        refused(st, &b, field);
    }
    let many: Vec<Value> = (0..10_001).map(|_| json!({})).collect();
    let (st, b) = s.post(&ev, json!({"events": many})).await;
    refused(st, &b, "at most");
    let (st, b) = s.raw("POST", &ev, b"\xff\xfe{}").await;
    assert_eq!(st, 400, "{b}");
    let (st, b) = s
        .send(
            s.client
                .post(s.url(&ev))
                .header("content-type", "text/plain")
                .body("{}"),
        )
        .await;
    assert_eq!(st, 400, "{b}");
    let big = "x".repeat(70_000);
    let (st, b) = s
        .post(&ev, json!({"events": [{"features": {"blob": big}}]}))
        .await;
    refused(st, &b, "events[0]");
    let (st, b) = s
        .post(
            &format!("{M}/iris-prod/labels"),
            json!({"labels": [{"request_id": "", "label": 1}]}),
        )
        .await;
    refused(st, &b, "labels[0].request_id");

    // Series and alerts.
    let series = |q: &str| format!("{M}/iris-prod/metrics?{q}");
    for (q, field) in [
        ("metric=accuracy&window=1s", "window"),
        ("metric=val_loss", "metric"),
        ("metric=accuracy&step_ms=1&start_ms=0", "step_ms"),
        ("metric=accuracy&start_ms=10&end_ms=5", "start_ms"),
        ("metric=accuracy&colour=red", "colour"),
        ("metric=accuracy&start_ms=abc", "start_ms"),
        ("metric=accuracy&end_ms=9223372036854775807", "end_ms"),
        ("metric=accuracy&start_ms=-5&end_ms=0", "start_ms"),
        ("metric=accuracy&end_ms=99999999999999999999", "end_ms"),
        ("window=5m", "metric"),
    ] {
        let (st, b) = s.get(&series(q)).await;
        refused(st, &b, field);
    }
    let (st, b) = s.get("/api/2.0/plumb/alerts?state=burning").await;
    refused(st, &b, "state");
    let (st, b) = s.get("/api/2.0/plumb/alerts/history?max_results=0").await;
    refused(st, &b, "max_results");

    // What was stored is all still there.
    let (st, got) = s.get(&format!("{M}/iris-prod")).await;
    assert_eq!(st, 200);
    let kept = &got["monitor"]["spec"];
    assert_eq!(
        (
            kept["rules"].as_array().map(Vec::len),
            &kept["rules"][0]["window"],
            &kept["model"]
        ),
        (Some(2), &json!("5m"), &json!("models:/iris@champion")),
        "the refused PUT left the monitor as it was: {kept}"
    );
    let (_, count) = s
        .get(&format!(
            "{M}/iris-prod/metrics?metric=count&end_ms={}",
            now + 1
        ))
        .await;
    assert_eq!(
        count["points"]
            .as_array()
            .and_then(|p| p.last())
            .map(|p| p["value"].clone()),
        Some(json!(1.0))
    );
}
