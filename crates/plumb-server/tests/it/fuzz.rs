//! Fuzz target over HTTP: request bodies and artifact paths built from hostile pieces, sent to
//! the real server; every answer must be below 500 (clients retry 5xx for minutes). A few
//! hundred requests in the test command; more by hand with
//! `PROPTEST_CASES=20000 cargo nextest run -E 'test(/fuzz_/)'`.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Map, Value};

use crate::support::TestServer;

const ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/2.0/mlflow/experiments/create"),
    ("POST", "/api/2.0/mlflow/experiments/search"),
    ("POST", "/api/2.0/mlflow/experiments/delete"),
    ("POST", "/api/2.0/mlflow/experiments/set-experiment-tag"),
    ("POST", "/api/2.0/mlflow/runs/create"),
    ("POST", "/api/2.0/mlflow/runs/search"),
    ("POST", "/api/2.0/mlflow/runs/log-batch"),
    ("POST", "/api/2.0/mlflow/runs/log-metric"),
    ("POST", "/api/2.0/mlflow/runs/log-inputs"),
    ("POST", "/api/2.0/mlflow/runs/update"),
    ("GET", "/api/2.0/mlflow/metrics/get-history"),
    ("GET", "/api/2.0/mlflow/metrics/get-history-bulk-interval"),
    ("GET", "/api/2.0/mlflow/artifacts/list"),
    ("POST", "/api/2.0/mlflow/logged-models"),
    ("POST", "/api/2.0/mlflow/logged-models/search"),
    ("POST", "/api/2.0/mlflow/registered-models/create"),
    ("GET", "/api/2.0/mlflow/registered-models/search"),
    ("POST", "/api/2.0/mlflow/model-versions/create"),
    ("GET", "/api/2.0/mlflow/model-versions/search"),
    ("POST", "/api/2.0/mlflow/registered-models/alias"),
    ("GET", "/get-artifact"),
];

const KEYS: &[&str] = &[
    "name",
    "experiment_id",
    "experiment_ids",
    "run_id",
    "run_uuid",
    "filter",
    "order_by",
    "max_results",
    "page_token",
    "artifact_location",
    "metrics",
    "params",
    "tags",
    "key",
    "value",
    "step",
    "timestamp",
    "source",
    "version",
    "alias",
    "path",
    "datasets",
    "status",
    "end_time",
    "run_ids",
    "metric_key",
    "view_type",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(vec![
            "",
            "0",
            "-1",
            "1e400",
            "NaN",
            "../../etc/passwd",
            "mlflow-artifacts:/",
            "file:///",
            "/",
            "a\u{0}b",
            "%2e%2e/x",
            "metrics.a > 1 and params.b = 'c'",
            "attributes.run_id IN ('a','b')",
            "tags.`x` LIKE '%'",
            "' OR 1=1 --",
            "models:/m/1",
            "runs:/abc/model",
            "http://evil.example/x",
            "\\\\server\\share",
            "ACTIVE_ONLY",
            "FINISHED",
            "champion",
            "00000000000000000000000000000000",
        ])
        .prop_map(|s| Value::String(s.to_string())),
        "\\PC{0,40}".prop_map(Value::String),
        Just(Value::String("x".repeat(9_000))),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(2, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..4).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

fn body() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::vec((prop::sample::select(KEYS), value()), 0..6)
        .prop_map(|kv| kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

fn runner() -> TestRunner {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

#[test]
fn fuzz_http_bodies_never_answer_5xx() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let s = rt.block_on(TestServer::spawn());
    let run = rt.block_on(s.new_run());
    let strategy = (prop::sample::select(ROUTES.to_vec()), body(), any::<bool>());
    runner()
        .run(&strategy, |((method, path), mut body, with_run)| {
            if with_run {
                body.insert("run_id".into(), Value::String(run.clone()));
            }
            let status = rt.block_on(async {
                let req = if method == "GET" {
                    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
                    let query: Vec<String> = body
                        .iter()
                        .map(|(k, v)| {
                            let v = v.as_str().map_or(v.to_string(), str::to_string);
                            format!("{k}={}", utf8_percent_encode(&v, NON_ALPHANUMERIC))
                        })
                        .collect();
                    s.client.get(format!("{}?{}", s.url(path), query.join("&")))
                } else {
                    s.client.post(s.url(path)).json(&body)
                };
                req.send().await.expect("send").status().as_u16()
            });
            let mut shown = format!("{body:?}");
            shown.truncate(2000);
            prop_assert!(status < 500, "{method} {path} {shown} -> {status}");
            Ok(())
        })
        .expect("no 5xx");
}

#[test]
fn fuzz_http_artifact_paths_never_answer_5xx() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let s = rt.block_on(TestServer::spawn());
    let segment = prop::sample::select(vec![
        "a",
        "..",
        ".",
        "",
        "%2e%2e",
        "%252e",
        "%2f",
        "%5c",
        "%00",
        "C:",
        "~",
        "x.txt",
        "dir",
        "%23frag",
        "%3F",
        "nested/dir",
        "%ff",
        "%c0%ae",
    ]);
    let long = Just("n".repeat(300));
    let strategy = (
        prop::sample::select(vec!["GET", "PUT", "DELETE"]),
        prop::collection::vec(prop_oneof![segment.prop_map(str::to_string), long], 1..6),
    );
    runner()
        .run(&strategy, |(method, segs)| {
            let path = format!("/api/2.0/mlflow-artifacts/artifacts/{}", segs.join("/"));
            let (status, _) = rt.block_on(s.raw(method, &path, b"bytes"));
            prop_assert!(status < 500, "{method} {path} -> {status}");
            let list = format!(
                "/api/2.0/mlflow-artifacts/artifacts?path={}",
                segs.join("/")
            );
            let (status, _) = rt.block_on(s.raw("GET", &list, b""));
            prop_assert!(status < 500, "GET {list} -> {status}");
            Ok(())
        })
        .expect("no 5xx");
}
