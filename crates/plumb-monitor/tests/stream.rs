//! A simulated production stream through the real store and engine, evaluated as the server's
//! evaluator would at each interval of simulated time: a long clean stream raises no alert
//! (false alarms counted and reported), an injected accuracy drop and latency regression fire
//! within one evaluation of the window crossing and `for` elapsing, late labels refold their
//! bucket, and a baseline behind a registry alias follows the alias.

use std::sync::Arc;

use plumb_core::entities::{Metric, Tag};
use plumb_monitor::engine::{self, Loaded};
use plumb_monitor::spec::MonitorSpec;
use plumb_store::monitoring::{AlertQuery, Event, Label, PutMode, BUCKET_MS};
use plumb_store::{Batch, NewLoggedModel, NewModelVersion, NewRun, Store};
use plumb_store_sqlite::SqliteStore;
use serde_json::json;

/// A small deterministic generator (xorshift), so the stream is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn store() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = SqliteStore::open(dir.path().join("m.db"), "mlflow-artifacts:/").expect("store");
    (Arc::new(s), dir)
}

async fn monitor(store: &dyn Store, spec: serde_json::Value, created_ms: i64) -> i64 {
    let spec = MonitorSpec::from_json(spec).expect("spec");
    let rules = spec.rules.iter().map(|r| r.name.clone()).collect();
    store
        .put_monitor(
            &spec.name,
            &serde_json::to_string(&spec).expect("json"),
            rules,
            PutMode::Create,
            created_ms,
        )
        .await
        .expect("monitor")
        .monitor_id
}

const INTERVAL: i64 = 15_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_stream_is_quiet_and_regressions_fire_on_time() {
    let (store, _dir) = store();
    let now = plumb_core::now_millis();
    let t0 = now - now.rem_euclid(BUCKET_MS) - 7 * 3_600_000;
    let drop_at = t0 + 6 * 3_600_000;
    let end = t0 + 6 * 3_600_000 + 30 * 60_000;
    let id = monitor(
        store.as_ref(),
        json!({
            "name": "iris-prod",
            "baseline": {"values": {"accuracy": 0.93}},
            "rules": [
                {"name": "accuracy-drop", "metric": "accuracy", "window": "5m",
                 "relative_drop": 0.05, "for": "2m", "min_samples": 50, "severity": "critical"},
                {"name": "slow", "metric": "latency_ms:p95", "window": "5m", "above": 250,
                 "for": "1m", "min_samples": 50}
            ]
        }),
        t0,
    )
    .await;
    // Two requests a second; after `drop_at` accuracy falls from 0.93 to 0.80 and latency
    // grows 2.5 times. Labels come with the events, except every 10th, which comes late.
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut events = Vec::new();
    let mut late = Vec::new();
    let mut ts = t0;
    let mut n = 0u64;
    while ts < end {
        let bad = ts >= drop_at;
        let correct = rng.next() < if bad { 0.80 } else { 0.93 };
        let label = if rng.next() < 0.5 { "1" } else { "0" };
        let prediction = if correct {
            label
        } else if label == "1" {
            "0"
        } else {
            "1"
        };
        let latency = (60.0 + 80.0 * rng.next() + 40.0 * rng.next() * rng.next())
            * if bad { 2.5 } else { 1.0 };
        let request_id = format!("r{n}");
        if n % 10 == 0 {
            late.push(Label {
                request_id: request_id.clone(),
                label: label.to_string(),
            });
        }
        events.push(Event {
            ts_ms: ts,
            request_id,
            latency_ms: Some(latency),
            error: false,
            prediction: Some(prediction.to_string()),
            label: (n % 10 != 0).then(|| label.to_string()),
            scores: None,
            features: None,
            segment: None,
        });
        n += 1;
        ts += 500;
    }
    for chunk in events.chunks(5000) {
        store.log_events(id, chunk.to_vec()).await.expect("events");
    }
    store.log_labels(id, late, t0).await.expect("labels");

    // The evaluator's rounds, in simulated time.
    let mut t = t0 + 5 * 60_000;
    let mut values: Vec<(i64, Option<f64>, Option<f64>)> = Vec::new();
    while t < end {
        engine::fold(store.as_ref(), t).await.expect("fold");
        engine::evaluate(store.as_ref(), t).await.expect("evaluate");
        let states = store.alert_states(Some("iris-prod")).await.expect("states");
        let v = |rule: &str| states.iter().find(|s| s.rule == rule).and_then(|s| s.value);
        values.push((t, v("accuracy-drop"), v("slow")));
        t += INTERVAL;
    }
    let history = store
        .alert_history(AlertQuery {
            monitor: Some("iris-prod".into()),
            max_results: 1000,
            ..AlertQuery::default()
        })
        .await
        .expect("history");
    let false_alarms: Vec<_> = history
        .iter()
        .filter(|c| c.at_ms < drop_at && c.to != "inactive")
        .collect();
    let clean_rounds = values.iter().filter(|v| v.0 < drop_at).count();
    println!(
        "clean stream: {} events, {clean_rounds} evaluations of 2 rules, {} false alarms",
        (drop_at - t0) / 500,
        false_alarms.len()
    );
    assert!(false_alarms.is_empty(), "{false_alarms:?}");

    for (rule, idx, crosses, for_ms) in [
        (
            "accuracy-drop",
            1usize,
            (|v: f64| v < 0.93 * 0.95) as fn(f64) -> bool,
            120_000,
        ),
        ("slow", 2, |v: f64| v > 250.0, 60_000),
    ] {
        let value = |r: &(i64, Option<f64>, Option<f64>)| if idx == 1 { r.1 } else { r.2 };
        // The first round whose window crossed the threshold, and the state changes after.
        let crossed = values
            .iter()
            .find(|r| r.0 >= drop_at && value(r).is_some_and(crosses))
            .expect("the window crosses")
            .0;
        let before = values
            .iter()
            .rev()
            .find(|r| r.0 < crossed)
            .expect("a round before");
        assert!(
            !value(before).is_some_and(crosses),
            "{rule}: crossed earlier"
        );
        let change = |to: &str| {
            history
                .iter()
                .find(|c| c.rule == rule && c.to == to && c.at_ms >= drop_at)
                .unwrap_or_else(|| panic!("{rule} never went {to}"))
                .at_ms
        };
        assert_eq!(
            change("pending"),
            crossed,
            "{rule}: pending at the crossing round"
        );
        let firing = change("firing");
        assert!(
            firing >= crossed + for_ms && firing < crossed + for_ms + INTERVAL,
            "{rule}: fired at +{} ms after crossing; `for` is {for_ms} ms",
            firing - crossed
        );
        assert!(
            crossed - drop_at <= 5 * 60_000,
            "{rule}: crossed {} ms late",
            crossed - drop_at
        );
    }
    // Rollups and raw events agree: the folded window equals the one read from events.
    let m = Loaded::new(store.get_monitor("iris-prod").await.expect("get")).expect("loaded");
    let rule = &m.rules[0];
    let folded = engine::window_value(store.as_ref(), &m, &rule.metric, rule.origin, t0, drop_at)
        .await
        .expect("window");
    let labelled = events.iter().filter(|e| e.ts_ms < drop_at).count() as u64;
    assert_eq!(
        folded.1, labelled,
        "every event labelled, late ones included"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_baseline_behind_an_alias_follows_the_alias() {
    let (store, _dir) = store();
    let mut versions = Vec::new();
    store
        .create_registered_model("iris", vec![], None)
        .await
        .expect("model");
    for accuracy in [0.90, 0.99] {
        let run = store
            .create_run(NewRun {
                experiment_id: "0".into(),
                tags: vec![Tag::new("env", "training")],
                ..Default::default()
            })
            .await
            .expect("run")
            .info
            .run_id;
        store
            .log_batch(
                &run,
                Batch {
                    metrics: vec![Metric {
                        key: "accuracy".into(),
                        value: accuracy,
                        timestamp: 1,
                        step: 0,
                        model_id: None,
                        dataset_name: None,
                        dataset_digest: None,
                    }],
                    ..Default::default()
                },
            )
            .await
            .expect("metric");
        let v = store
            .create_model_version(NewModelVersion {
                name: "iris".into(),
                source: format!("mlflow-artifacts:/0/{run}/artifacts/model"),
                run_id: Some(run.clone()),
                ..Default::default()
            })
            .await
            .expect("version");
        versions.push(v.version);
    }
    store
        .set_alias("iris", "champion", versions[0])
        .await
        .expect("alias");
    let now = plumb_core::now_millis();
    let id = monitor(
        store.as_ref(),
        json!({
            "name": "iris-prod", "model": "models:/iris@champion",
            "baseline": "models:/iris@champion",
            "rules": [{"name": "acc", "metric": "accuracy", "window": "5m",
                       "relative_drop": 0.02, "min_samples": 10}]
        }),
        now,
    )
    .await;
    // Live accuracy 0.93: fine against v1's 0.90, a drop against v2's 0.99.
    let events = (0..100)
        .map(|i| Event {
            ts_ms: now - 60_000 + i,
            request_id: format!("r{i}"),
            latency_ms: None,
            error: false,
            prediction: Some("1".into()),
            label: Some(if i < 93 { "1" } else { "0" }.into()),
            scores: None,
            features: None,
            segment: None,
        })
        .collect();
    store.log_events(id, events).await.expect("events");
    engine::evaluate(store.as_ref(), now)
        .await
        .expect("evaluate");
    let s = &store.alert_states(Some("iris-prod")).await.expect("states")[0];
    assert_eq!(
        (s.state.as_str(), s.baseline),
        ("inactive", Some(0.90)),
        "{s:?}"
    );
    store
        .set_alias("iris", "champion", versions[1])
        .await
        .expect("move");
    engine::evaluate(store.as_ref(), now + 1000)
        .await
        .expect("evaluate");
    let s = &store.alert_states(Some("iris-prod")).await.expect("states")[0];
    assert_eq!(
        (s.state.as_str(), s.baseline),
        ("firing", Some(0.99)),
        "{s:?}"
    );
    assert!(
        s.message
            .starts_with(&format!("iris v{} (models:/iris@champion): ", versions[1])),
        "the message names the version the alias points at now: {}",
        s.message
    );

    // An MLflow 3 logged model as the baseline: its own metrics.
    let run = store
        .create_run(NewRun {
            experiment_id: "0".into(),
            ..Default::default()
        })
        .await
        .expect("run")
        .info
        .run_id;
    let model = store
        .create_logged_model(NewLoggedModel {
            experiment_id: "0".into(),
            source_run_id: Some(run.clone()),
            ..Default::default()
        })
        .await
        .expect("logged model")
        .model_id;
    store
        .log_batch(
            &run,
            Batch {
                metrics: vec![Metric {
                    key: "accuracy".into(),
                    value: 0.91,
                    timestamp: 2,
                    step: 0,
                    model_id: Some(model.clone()),
                    dataset_name: None,
                    dataset_digest: None,
                }],
                ..Default::default()
            },
        )
        .await
        .expect("model metric");
    let loaded = Loaded::new(
        store
            .put_monitor(
                "by-model",
                &json!({"name": "by-model", "baseline": format!("models:/{model}")}).to_string(),
                vec![],
                PutMode::Create,
                now,
            )
            .await
            .expect("monitor"),
    )
    .expect("loaded");
    let metric = plumb_monitor::metric::MetricRef::parse("accuracy").expect("metric");
    let b = engine::baseline_value(
        store.as_ref(),
        &loaded,
        "accuracy",
        "accuracy",
        &metric,
        plumb_monitor::metric::Origin::Events,
    )
    .await
    .expect("baseline");
    assert_eq!(b, Some(0.91));
}
