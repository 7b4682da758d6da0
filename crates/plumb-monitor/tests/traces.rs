//! Monitors over MLflow traces, through the real store and engine: a traced LLM service's
//! latency percentile, error rate and token use over windows, for whole traces and for the
//! spans of one name; alerts fire when a regression crosses the window and resolve after it.

use std::collections::BTreeMap;
use std::sync::Arc;

use plumb_monitor::engine::{self, Loaded};
use plumb_monitor::metric::{MetricRef, Origin};
use plumb_monitor::spec::MonitorSpec;
use plumb_store::monitoring::{PutMode, BUCKET_MS};
use plumb_store::traces::{SpanRecord, TraceInfo};
use plumb_store::{NewExperiment, Store};
use plumb_store_sqlite::SqliteStore;
use serde_json::json;

fn store() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = SqliteStore::open(dir.path().join("t.db"), "mlflow-artifacts:/").expect("store");
    (Arc::new(s), dir)
}

async fn monitor(store: &dyn Store, spec: serde_json::Value) -> Loaded {
    let spec = MonitorSpec::from_json(spec).expect("spec");
    let rules = spec.rules.iter().map(|r| r.name.clone()).collect();
    let rec = store
        .put_monitor(
            &spec.name,
            &serde_json::to_string(&spec).expect("json"),
            rules,
            PutMode::Create,
            0,
        )
        .await
        .expect("monitor");
    Loaded::new(rec).expect("loaded")
}

/// One request of the service: a trace with a root span and an `llm` child span.
async fn request(store: &dyn Store, exp: &str, n: u64, at_ms: i64, latency: i64, error: bool) {
    let id = format!("tr-{n:032x}");
    let state = if error { "ERROR" } else { "OK" };
    let env = if n % 10 == 9 { "staging" } else { "prod" };
    store
        .start_trace(TraceInfo {
            trace_id: id.clone(),
            experiment_id: exp.into(),
            request_time_ms: at_ms,
            execution_ms: Some(latency),
            state: state.into(),
            metadata: BTreeMap::from([(
                "mlflow.trace.tokenUsage".to_string(),
                r#"{"input_tokens": 30, "output_tokens": 10, "total_tokens": 40}"#.to_string(),
            )]),
            tags: BTreeMap::from([
                ("mlflow.traceName".to_string(), "answer".to_string()),
                ("env".to_string(), env.to_string()),
            ]),
            ..TraceInfo::default()
        })
        .await
        .expect("trace");
    let start_ns = at_ms * 1_000_000;
    store
        .log_spans(
            exp,
            vec![SpanRecord {
                trace_id: id,
                span_id: format!("{n:016x}"),
                parent_span_id: Some("root".into()),
                name: "llm".into(),
                span_type: Some("LLM".into()),
                status: state.into(),
                start_ns,
                end_ns: Some(start_ns + (latency - 5) * 1_000_000),
                content: "{}".into(),
                inputs: None,
                outputs: None,
                tokens: None,
            }],
        )
        .await
        .expect("span");
}

fn state(states: &[plumb_store::monitoring::AlertState], rule: &str) -> String {
    states
        .iter()
        .find(|s| s.rule == rule)
        .map(|s| s.state.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_latency_errors_and_tokens_fire_and_resolve() {
    let (store, _dir) = store();
    let exp = store
        .create_experiment(NewExperiment {
            name: "llm-app".into(),
            ..Default::default()
        })
        .await
        .expect("experiment");
    let whole = monitor(
        store.as_ref(),
        json!({"name": "llm-prod", "source": {"events": false, "traces": {
                  "experiments": ["llm-app"], "filters": ["trace.tag.env = 'prod'"]}},
               "rules": [
                   {"name": "slow", "metric": "latency_ms:p95", "window": "5m", "above": 500},
                   {"name": "failing", "metric": "error_rate", "window": "5m", "above": 0.1},
                   {"name": "tokens", "metric": "total_tokens", "window": "5m", "above": 100000, "min_samples": 1}]}),
    )
    .await;
    let spans = monitor(
        store.as_ref(),
        json!({"name": "llm-span", "source": {"events": false, "traces": {
                  "experiments": [exp.clone()], "span": "llm"}},
               "rules": [{"name": "slow-llm", "metric": "latency_ms:p50", "window": "5m", "above": 500}]}),
    )
    .await;
    // 30 minutes: a request every 5 s at 100-140 ms; from minute 20 to 25, 900 ms and one in
    // four failing.
    let now = plumb_core::now_millis();
    let t0 = now - now.rem_euclid(BUCKET_MS) - 3_600_000;
    let bad = (t0 + 20 * 60_000)..(t0 + 25 * 60_000);
    let mut n = 0;
    let mut at = t0;
    let mut fired = BTreeMap::new();
    let mut resolved = BTreeMap::new();
    while at < t0 + 35 * 60_000 {
        let regressed = bad.contains(&at);
        let latency = if regressed {
            900
        } else {
            100 + (n % 5) as i64 * 10
        };
        request(
            store.as_ref(),
            &exp,
            n,
            at,
            latency,
            regressed && n % 4 == 0,
        )
        .await;
        n += 1;
        at += 5_000;
        if at % 60_000 == t0 % 60_000 {
            engine::evaluate(store.as_ref(), at)
                .await
                .expect("evaluate");
            let states = store.alert_states(None).await.expect("states");
            for rule in ["slow", "failing", "tokens", "slow-llm"] {
                let s = state(&states, rule);
                if s == "firing" {
                    fired.entry(rule).or_insert(at);
                }
                if s == "resolved" && fired.contains_key(rule) {
                    resolved.entry(rule).or_insert(at);
                }
            }
        }
    }
    let minute = |t: i64| (t - t0) / 60_000;
    // p95 of the last 5 minutes crosses 500 ms once a twentieth of them are slow (minute 21),
    // p50 of the span once half are (minute 23); errors are 1 in 4 of the slow ones.
    assert_eq!(fired.get("slow").map(|t| minute(*t)), Some(21), "{fired:?}");
    assert_eq!(
        fired.get("slow-llm").map(|t| minute(*t)),
        Some(23),
        "{fired:?}"
    );
    assert!(
        fired
            .get("failing")
            .is_some_and(|t| (21..=23).contains(&minute(*t))),
        "{fired:?}"
    );
    assert!(
        !fired.contains_key("tokens"),
        "tokens stay under the threshold"
    );
    for rule in ["slow", "failing", "slow-llm"] {
        let r = resolved.get(rule).map(|t| minute(*t));
        assert!(
            r.is_some_and(|m| (25..=31).contains(&m)),
            "{rule} resolved at {r:?}"
        );
    }

    // The series the API and UI read: tokens per 5 minutes of prod traces (9 of 10 requests).
    let total = MetricRef::parse("total_tokens:sum").expect("metric");
    let end = t0 + 10 * 60_000;
    let p = engine::series(
        store.as_ref(),
        &whole,
        &total,
        Origin::Traces,
        300_000,
        &[end],
    )
    .await
    .expect("series");
    // Requests in [end - 5 min, end]: 61 (both ends inclusive), of which the staging ones
    // (every tenth) are left out.
    let prod = (0..n)
        .filter(|i| {
            let at = t0 + *i as i64 * 5_000;
            (end - 300_000..=end).contains(&at) && i % 10 != 9
        })
        .count();
    assert_eq!(p[0].samples, prod as u64);
    assert_eq!(p[0].value, Some(40.0 * prod as f64));
    let count = MetricRef::parse("count").expect("metric");
    let p = engine::series(
        store.as_ref(),
        &spans,
        &count,
        Origin::Traces,
        300_000,
        &[end],
    )
    .await
    .expect("series");
    assert_eq!(p[0].value, Some(61.0), "every llm span, prod or not");
}

#[test]
fn trace_sources_are_checked() {
    let spec = |source: serde_json::Value, metric: &str| {
        MonitorSpec::from_json(json!({"name": "m", "source": source,
            "rules": [{"name": "r", "metric": metric, "above": 1}]}))
    };
    let traces = json!({"events": false, "traces": {"experiments": ["a"]}});
    assert!(spec(traces.clone(), "latency_ms:p99").is_ok());
    assert!(spec(traces.clone(), "total_tokens:max").is_ok());
    assert!(
        spec(traces.clone(), "accuracy").is_err(),
        "not a trace metric"
    );
    assert!(spec(traces.clone(), "latency_ms:sum").is_err());
    assert!(spec(traces.clone(), "latency_ms:last").is_err());
    let with_span = json!({"events": false, "traces": {"experiments": ["a"], "span": "llm",
                           "filters": ["span.type = 'LLM'"]}});
    assert!(spec(with_span.clone(), "error_rate").is_ok());
    assert!(
        spec(with_span, "total_tokens").is_err(),
        "tokens are per trace"
    );
    for bad in [
        json!({"events": false, "traces": {"experiments": []}}),
        json!({"events": false, "traces": {"experiments": ["a"], "filters": ["span.name = 'x'"]}}),
        json!({"events": false, "traces": {"experiments": ["a"], "filters": ["trace.status != 'OK'"]}}),
        json!({"events": false, "traces": {"experiments": ["a"], "filters": ["assessment.name = 'x'"]}}),
        json!({"events": false, "traces": {"experiments": ["a\u{0}"]}}),
        json!({"events": false, "traces": {"experiments": ["a"], "sampling": 2}}),
    ] {
        assert!(spec(bad.clone(), "count").is_err(), "{bad}");
    }
    // With events too, an event metric reads events unless told otherwise.
    let both = MonitorSpec::from_json(
        json!({"name": "m", "source": {"traces": {"experiments": ["a"]}},
        "rules": [{"name": "r", "metric": "latency_ms:p95", "above": 1},
                  {"name": "t", "metric": "latency_ms:p95", "above": 1, "from": "traces"}]}),
    )
    .expect("spec");
    let rules = both.compile().expect("rules");
    assert_eq!(
        (rules[0].origin, rules[1].origin),
        (Origin::Events, Origin::Traces)
    );
}
