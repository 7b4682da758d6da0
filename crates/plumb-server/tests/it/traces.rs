//! The v3 trace API over HTTP: a trace's info round-trips in MLflow's JSON (snapshot), and
//! hostile input (ids, timestamps, sizes, encodings, filters) is answered 4xx with nothing
//! stored lost.

use serde_json::{json, Value};

use crate::support::TestServer;

const T: &str = "/api/3.0/mlflow/traces";

fn start_body(id: &str, exp: &str) -> Value {
    json!({"trace": {"trace_info": {
        "trace_id": id,
        "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": exp}},
        "request_time": "2025-01-02T03:04:05.678Z",
        "execution_duration": "0.250s",
        "state": "OK",
        "request_preview": "{\"q\": \"hi\"}",
        "trace_metadata": {"mlflow.user": "me"},
        "tags": {"mlflow.traceName": "chat"}
    }}})
}

#[tokio::test]
async fn trace_info_round_trips_and_hostile_input_gets_4xx() {
    let s = TestServer::spawn().await;
    let started = s
        .ok(T, start_body("tr-0123456789abcdef0123456789abcdef", "0"))
        .await;
    insta::assert_json_snapshot!("trace_start", started);
    let (st, got) = s
        .get(&format!("{T}/tr-0123456789abcdef0123456789abcdef"))
        .await;
    assert_eq!(st, 200);
    assert_eq!(got, started);

    let refused =
        |st: u16, b: &Value, what: &str| assert!((400..500).contains(&st), "{what}: {st} {b}");
    let with = |path: &str, v: Value| {
        let mut b = start_body("tr-ffffffffffffffffffffffffffffffff", "0");
        let mut at = &mut b["trace"]["trace_info"];
        let parts: Vec<&str> = path.split('.').collect();
        for p in &parts[..parts.len() - 1] {
            at = &mut at[*p];
        }
        at[parts[parts.len() - 1]] = v;
        b
    };
    for (what, body) in [
        ("path id", with("trace_id", json!("../../etc/passwd"))),
        ("slash id", with("trace_id", json!("tr-a/b"))),
        ("NUL id", with("trace_id", json!("tr-\u{0}"))),
        ("long id", with("trace_id", json!("t".repeat(10_000)))),
        ("empty id", with("trace_id", json!(""))),
        ("bad time", with("request_time", json!("yesterday"))),
        ("numeric time", with("request_time", json!(5))),
        (
            "negative duration",
            with("execution_duration", json!("-5s")),
        ),
        ("huge duration", with("execution_duration", json!("1e300s"))),
        ("state", with("state", json!("MAYBE"))),
        ("tags as list of numbers", with("tags", json!([1, 2]))),
        ("tag value", with("tags", json!({"k": "v".repeat(8001)}))),
        ("tag key", with("tags", json!({"k".repeat(251): "v"}))),
        (
            "metadata value type",
            with("trace_metadata", json!({"k": 5})),
        ),
        ("missing experiment", with("trace_location", json!({}))),
        (
            "unknown experiment",
            with(
                "trace_location.mlflow_experiment.experiment_id",
                json!("999"),
            ),
        ),
        (
            "experiment injection",
            with(
                "trace_location.mlflow_experiment.experiment_id",
                json!("1 OR 1=1"),
            ),
        ),
    ] {
        let (st, b) = s.post(T, body).await;
        refused(st, &b, what);
    }
    let (st, b) = s.post(T, json!({})).await;
    refused(st, &b, "no trace");
    let (st, b) = s.raw("POST", T, b"{\"trace\": \"\xff\"}").await;
    refused(st, &b, "invalid UTF-8");
    for path in [
        format!("{T}/..%2F..%2Fetc%2Fpasswd"),
        format!("{T}/%00"),
        format!("{T}/{}", "a".repeat(10_000)),
    ] {
        let (st, b) = s.get(&path).await;
        assert_eq!(
            (st, b["error_code"].as_str()),
            (404, Some("RESOURCE_DOES_NOT_EXIST")),
            "{path}"
        );
    }
    let loc = json!([{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": "0"}}]);
    for (what, body) in [
        ("no locations", json!({})),
        (
            "OR",
            json!({"locations": loc, "filter": "status = 'OK' OR 1 = 1"}),
        ),
        (
            "injection",
            json!({"locations": loc, "filter": "tags.k = 'a'' OR ''1''=''1'"}),
        ),
        (
            "span key",
            json!({"locations": loc, "filter": "span.nope = 'x'"}),
        ),
        (
            "max_results",
            json!({"locations": loc, "max_results": 100_000}),
        ),
        ("token", json!({"locations": loc, "page_token": "%%%"})),
        (
            "order",
            json!({"locations": loc, "order_by": ["status; DROP TABLE plumb_traces"]}),
        ),
        (
            "experiment id",
            json!({"locations": [{"mlflow_experiment": {"experiment_id": "x"}}]}),
        ),
    ] {
        let (st, b) = s.post(&format!("{T}/search"), body).await;
        refused(st, &b, what);
    }
    for (what, body) in [
        ("neither", json!({"experiment_id": "0"})),
        (
            "both",
            json!({"experiment_id": "0", "max_timestamp_millis": 1, "request_ids": ["a"]}),
        ),
        (
            "max_traces with ids",
            json!({"experiment_id": "0", "max_traces": 1, "request_ids": ["a"]}),
        ),
        ("no experiment", json!({"request_ids": ["a"]})),
    ] {
        let (st, b) = s.post(&format!("{T}/delete-traces"), body).await;
        refused(st, &b, what);
    }
    let (st, b) = s
        .post(
            &format!("{T}/link-to-run"),
            json!({"run_id": "nope", "trace_ids": vec!["tr-x"; 101]}),
        )
        .await;
    refused(st, &b, "101 links");
    // The one good trace is still there, unchanged.
    let (st, b) = s
        .post(&format!("{T}/search"), json!({"locations": loc}))
        .await;
    assert_eq!(st, 200);
    assert_eq!(b["traces"].as_array().map(Vec::len), Some(1), "{b}");
    assert_eq!(b["traces"][0], started["trace"]["trace_info"]);
}

#[tokio::test]
async fn otlp_export_refuses_what_it_cannot_read() {
    let s = TestServer::spawn().await;
    let url = s.url("/v1/traces");
    let send = |body: Vec<u8>, ct: &'static str, exp: Option<&'static str>| {
        let mut r = s.client.post(&url).header("content-type", ct).body(body);
        if let Some(e) = exp {
            r = r.header("x-mlflow-experiment-id", e);
        }
        s.send(r)
    };
    let span = br#"{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "s", "startTimeUnixNano": "1"}]}]}]}"#;
    let (st, _) = send(span.to_vec(), "application/json", Some("0")).await;
    assert_eq!(st, 200);
    for (what, body, ct, exp) in [
        ("no header", span.to_vec(), "application/json", None),
        ("text", span.to_vec(), "text/plain", Some("0")),
        (
            "garbage",
            b"\xff\x00\x12".to_vec(),
            "application/x-protobuf",
            Some("0"),
        ),
        (
            "no spans",
            br#"{"resourceSpans": []}"#.to_vec(),
            "application/json",
            Some("0"),
        ),
        (
            "short id",
            String::from_utf8_lossy(span)
                .replace("5b8efff798038103d269b633813fc60c", "5b8e")
                .into_bytes(),
            "application/json",
            Some("0"),
        ),
        (
            "bad experiment",
            span.to_vec(),
            "application/json",
            Some("../../0"),
        ),
        (
            "33 MB",
            vec![b' '; 33 * 1024 * 1024],
            "application/json",
            Some("0"),
        ),
    ] {
        let (st, b) = send(body, ct, exp).await;
        assert!((400..500).contains(&st), "{what}: {st} {b}");
    }
}

#[tokio::test]
async fn otlp_export_reads_gzip_and_refuses_bombs_and_unknown_encodings() {
    use std::io::Write;
    let s = TestServer::spawn().await;
    let url = s.url("/v1/traces");
    let gz = |data: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(data).expect("gzip");
        e.finish().expect("gzip")
    };
    let send = |body: Vec<u8>, enc: &'static str| {
        s.send(
            s.client
                .post(&url)
                .header("content-type", "application/json")
                .header("content-encoding", enc)
                .header("x-mlflow-experiment-id", "0")
                .body(body),
        )
    };
    let span = br#"{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "6b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "zipped", "startTimeUnixNano": "1", "endTimeUnixNano": "2000000"}]}]}]}"#;
    let (st, b) = send(gz(span), "gzip").await;
    assert_eq!(st, 200, "{b}");
    let (st, b) = s
        .get("/api/3.0/mlflow/traces/tr-6b8efff798038103d269b633813fc60c")
        .await;
    assert_eq!(st, 200, "{b}");
    // 40 MB of spaces inflate past the 32 MB limit from a body of about 40 KB.
    let bomb = gz(&vec![b' '; 40 * 1024 * 1024]);
    assert!(bomb.len() < 100_000);
    for (what, body, enc) in [
        ("bomb", bomb, "gzip"),
        ("not gzip", span.to_vec(), "gzip"),
        ("truncated", gz(span)[..20].to_vec(), "gzip"),
        ("br", span.to_vec(), "br"),
        ("deflate", span.to_vec(), "deflate"),
    ] {
        let (st, b) = send(body, enc).await;
        assert!((400..500).contains(&st), "{what}: {st} {b}");
        assert_eq!(b["error_code"], "INVALID_PARAMETER_VALUE", "{what}: {b}");
    }
}

#[tokio::test]
async fn version_names_the_mlflow_api_and_plumb_says_its_own() {
    let s = TestServer::spawn().await;
    let text = s
        .client
        .get(s.url("/version"))
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("text");
    // The 3.x client sends spans over OTLP only to servers of MLflow 3.4 or later.
    assert_eq!(text, "3.17.2");
    let (st, v) = s.get("/api/2.0/plumb/version").await;
    assert_eq!(st, 200);
    assert_eq!(v["plumb"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["mlflow_api"], "3.17.2");
}

#[tokio::test]
async fn assessments_refuse_hostile_input_and_keep_what_is_stored() {
    let s = TestServer::spawn().await;
    let id = "tr-0123456789abcdef0123456789abcdef";
    s.ok(T, start_body(id, "0")).await;
    let base = format!("{T}/{id}/assessments");
    let good = json!({"assessment": {"assessment_name": "ok", "feedback": {"value": true},
                                     "source": {"source_type": "HUMAN", "source_id": "me"}}});
    let kept = s.ok(&base, good).await;
    let aid = kept["assessment"]["assessment_id"]
        .as_str()
        .expect("id")
        .to_string();
    let with = |k: &str, v: Value| {
        let mut b = json!({"assessment": {"assessment_name": "x", "feedback": {"value": 1}}});
        b["assessment"][k] = v;
        b
    };
    for (what, body) in [
        ("no assessment", json!({})),
        ("no name", with("assessment_name", json!(""))),
        ("long name", with("assessment_name", json!("n".repeat(251)))),
        ("both kinds", with("expectation", json!({"value": 2}))),
        ("feedback not an object", with("feedback", json!("yes"))),
        ("metadata values", with("metadata", json!({"k": 5}))),
        (
            "huge rationale",
            with("rationale", json!("r".repeat(2 * 1024 * 1024))),
        ),
        (
            "overrides a missing one",
            with("overrides", json!("a-nope")),
        ),
    ] {
        let (st, b) = s.post(&base, body).await;
        assert!((400..500).contains(&st), "{what}: {st} {b}");
    }
    for path in [
        format!("{T}/{id}/assessments/..%2F..%2Fetc"),
        format!("{T}/{id}/assessments/%00"),
        format!("{T}/{id}/assessments/{}", "a".repeat(10_000)),
        format!("{T}/tr-nope/assessments/{aid}"),
    ] {
        let (st, _) = s.get(&path).await;
        assert_eq!(st, 404, "{path}");
        let r = s.client.delete(s.url(&path)).send().await.expect("send");
        assert_eq!(r.status().as_u16(), 404, "{path}");
    }
    let patch = s
        .client
        .patch(s.url(&format!("{base}/{aid}")))
        .json(&json!({"assessment": {"rationale": 5}, "update_mask": "rationale"}))
        .send()
        .await
        .expect("send");
    assert_eq!(patch.status().as_u16(), 400);
    let patch = s
        .client
        .patch(s.url(&format!("{base}/{aid}")))
        .json(&json!({"assessment": {"rationale": "x"}}))
        .send()
        .await
        .expect("send");
    assert_eq!(patch.status().as_u16(), 400, "an update needs its mask");
    let (st, got) = s.get(&format!("{base}/{aid}")).await;
    assert_eq!(st, 200);
    assert_eq!(got, kept, "nothing changed");
}

#[tokio::test]
async fn trace_metrics_and_correlation_refuse_hostile_input() {
    let s = TestServer::spawn().await;
    s.ok(T, start_body("tr-0123456789abcdef0123456789abcdef", "0"))
        .await;
    let good = json!({"experiment_ids": ["0"], "view_type": "TRACES", "metric_name": "latency",
                      "aggregations": [{"aggregation_type": "PERCENTILE", "percentile_value": 99}],
                      "time_interval_seconds": 3600, "start_time_ms": 0,
                      "end_time_ms": 4_000_000_000_000i64});
    let got = s.ok(&format!("{T}/metrics"), good.clone()).await;
    assert_eq!(got["data_points"][0]["values"]["P99.0"], 250.0, "{got}");
    assert_eq!(
        got["data_points"][0]["dimensions"]["time_bucket"],
        "2025-01-02T03:00:00+00:00"
    );
    let with = |k: &str, v: Value| {
        let mut b = good.clone();
        b[k] = v;
        b
    };
    for (what, body) in [
        ("no experiments", with("experiment_ids", json!([]))),
        ("experiment path", with("experiment_ids", json!(["../0"]))),
        (
            "experiment as number list",
            with("experiment_ids", json!([[1]])),
        ),
        ("view", with("view_type", json!("TABLES"))),
        ("view number", with("view_type", json!(9))),
        (
            "metric",
            with("metric_name", json!("'; DROP TABLE plumb_traces; --")),
        ),
        ("no aggregations", with("aggregations", json!([]))),
        (
            "aggregation",
            with("aggregations", json!([{"aggregation_type": "MEDIAN"}])),
        ),
        (
            "percentile > 100",
            with(
                "aggregations",
                json!([{"aggregation_type": "PERCENTILE", "percentile_value": 101}]),
            ),
        ),
        (
            "percentile NaN",
            with(
                "aggregations",
                json!([{"aggregation_type": "PERCENTILE", "percentile_value": "NaN"}]),
            ),
        ),
        (
            "percentile on MAX",
            with(
                "aggregations",
                json!([{"aggregation_type": "MAX", "percentile_value": 5}]),
            ),
        ),
        (
            "percentile missing",
            with("aggregations", json!([{"aggregation_type": "PERCENTILE"}])),
        ),
        ("dimension", with("dimensions", json!(["t.name); --"]))),
        (
            "filter",
            with("filters", json!(["trace.status = 'OK' OR 1=1"])),
        ),
        (
            "filter comparator",
            with("filters", json!(["trace.status != 'OK'"])),
        ),
        (
            "negative interval",
            with("time_interval_seconds", json!(-60)),
        ),
        (
            "interval text",
            with("time_interval_seconds", json!("hourly")),
        ),
        ("max_results", with("max_results", json!(1_000_000))),
        ("start as text", with("start_time_ms", json!("yesterday"))),
    ] {
        let (st, b) = s.post(&format!("{T}/metrics"), body).await;
        assert!((400..500).contains(&st), "{what}: {st} {b}");
    }
    // A huge interval and times at the ends of the range are answered, not overflowed.
    let (st, b) = s
        .post(
            &format!("{T}/metrics"),
            with("time_interval_seconds", json!(i64::MAX)),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let (st, b) = s
        .post(
            &format!("{T}/metrics"),
            with("end_time_ms", json!(i64::MAX)),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let c = format!("{T}/calculate-filter-correlation");
    for (what, body) in [
        (
            "missing second",
            json!({"experiment_ids": ["0"], "filter_string1": "status = 'OK'"}),
        ),
        (
            "bad filter",
            json!({"experiment_ids": ["0"], "filter_string1": "status = 'OK'", "filter_string2": "x ~ y"}),
        ),
        (
            "no experiments",
            json!({"filter_string1": "status = 'OK'", "filter_string2": "status = 'OK'"}),
        ),
        (
            "bad base",
            json!({"experiment_ids": ["0"], "filter_string1": "status = 'OK'", "filter_string2": "status = 'OK'", "base_filter": "1; DROP"}),
        ),
        (
            "experiment text",
            json!({"experiment_ids": ["zero"], "filter_string1": "status = 'OK'", "filter_string2": "status = 'OK'"}),
        ),
    ] {
        let (st, b) = s.post(&c, body).await;
        assert!((400..500).contains(&st), "{what}: {st} {b}");
    }
    let got = s
        .ok(
            &c,
            json!({"experiment_ids": ["0"], "filter_string1": "status = 'OK'",
                   "filter_string2": "name = 'chat'"}),
        )
        .await;
    assert_eq!(got["npmi"], 1.0, "{got}");
    assert_eq!(got["total_count"], 1);
    // Still one trace, unchanged.
    let (st, b) = s
        .get(&format!("{T}/tr-0123456789abcdef0123456789abcdef"))
        .await;
    assert_eq!(st, 200, "{b}");
}

#[tokio::test]
async fn v2_trace_routes_refuse_hostile_input_and_keep_what_is_stored() {
    let s = TestServer::spawn().await;
    let started = s
        .ok(
            "/api/2.0/mlflow/traces",
            json!({"experiment_id": "0", "timestamp_ms": 1000,
                   "tags": [{"key": "mlflow.traceName", "value": "v2"}]}),
        )
        .await;
    let id = started["trace_info"]["request_id"]
        .as_str()
        .expect("id")
        .to_string();
    let start = "/api/2.0/mlflow/traces";
    for (what, body) in [
        ("no experiment", json!({"timestamp_ms": 1})),
        ("experiment path", json!({"experiment_id": "../0"})),
        (
            "timestamp text",
            json!({"experiment_id": "0", "timestamp_ms": "soon"}),
        ),
        (
            "tags not a list",
            json!({"experiment_id": "0", "tags": "x"}),
        ),
        (
            "tag without key",
            json!({"experiment_id": "0", "tags": [{"value": "v"}]}),
        ),
        (
            "long tag key",
            json!({"experiment_id": "0", "tags": [{"key": "k".repeat(300), "value": "v"}]}),
        ),
        (
            "long tag value",
            json!({"experiment_id": "0", "tags": [{"key": "k", "value": "v".repeat(9000)}]}),
        ),
        (
            "empty metadata key",
            json!({"experiment_id": "0", "request_metadata": [{"key": "", "value": "v"}]}),
        ),
    ] {
        let (st, b) = s.post(start, body).await;
        assert!((400..500).contains(&st), "{what}: {st} {b}");
    }
    for (what, path, body) in [
        (
            "bad status",
            format!("{start}/{id}"),
            json!({"status": "SIDEWAYS"}),
        ),
        (
            "status number",
            format!("{start}/{id}"),
            json!({"status": 9}),
        ),
        (
            "missing trace",
            format!("{start}/..%2f..%2fetc"),
            json!({"status": "OK"}),
        ),
        (
            "long tag",
            format!("{start}/{id}"),
            json!({"tags": [{"key": "", "value": "v"}]}),
        ),
    ] {
        let (st, b) = s.send(s.client.patch(s.url(&path)).json(&body)).await;
        assert!((400..500).contains(&st), "{what}: {st} {b}");
    }
    for path in [
        format!("{start}/..%2f..%2fetc%2fpasswd/info"),
        format!("{start}?experiment_ids=0&max_results=501"),
        format!("{start}?experiment_ids=0&filter=status%20~%20x"),
        format!("{start}?experiment_ids=zero"),
        start.to_string(),
    ] {
        let (st, b) = s.get(&path).await;
        assert!((400..500).contains(&st), "{path}: {st} {b}");
    }
    // The trace is unchanged.
    let (st, b) = s.get(&format!("{start}/{id}/info")).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["trace_info"], started["trace_info"]);
}
