//! Conformance cases of the monitoring tables: monitors, events and labels, bucket bookkeeping,
//! rollups, pruning, alert states and history, and the run points runs-sourced monitors read.

use std::sync::Arc;

use plumb_core::entities::Metric;
use plumb_core::ErrorCode;

use super::{experiment, log, run, Store};
use crate::monitoring::{AlertChange, AlertQuery, AlertState, Event, Label, PutMode, BUCKET_MS};

fn event(ts_ms: i64, id: &str, label: Option<&str>) -> Event {
    Event {
        ts_ms,
        request_id: id.to_string(),
        latency_ms: Some(ts_ms as f64 / 1000.0),
        error: id.ends_with('!'),
        prediction: Some("1".to_string()),
        label: label.map(str::to_string),
        scores: None,
        features: Some("{\"x\": 1}".to_string()),
        segment: None,
    }
}

const T0: i64 = 1_700_000_040_000; // a minute boundary

pub async fn monitors_are_stored_and_replaced(store: Store) {
    let rules = |r: &[&str]| r.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let m = store
        .put_monitor(
            "iris",
            "{\"v\": 1}",
            rules(&["a", "b"]),
            PutMode::Create,
            10,
        )
        .await
        .expect("create");
    assert_eq!(
        (m.name.as_str(), m.created_ms, m.updated_ms),
        ("iris", 10, 10)
    );
    let again = store
        .put_monitor("iris", "{}", vec![], PutMode::Create, 11)
        .await
        .expect_err("exists");
    assert_eq!(again.code, ErrorCode::ResourceAlreadyExists);
    let missing = store
        .put_monitor("nope", "{}", vec![], PutMode::Update, 11)
        .await
        .expect_err("missing");
    assert_eq!(missing.code, ErrorCode::ResourceDoesNotExist);
    store
        .put_monitor("alpha", "{}", vec![], PutMode::Apply, 12)
        .await
        .expect("apply creates");
    for rule in ["a", "b"] {
        let state = AlertState {
            monitor: "iris".into(),
            rule: rule.into(),
            state: "firing".into(),
            severity: "critical".into(),
            ..AlertState::default()
        };
        store.put_alert_state(state, None).await.expect("state");
    }
    let updated = store
        .put_monitor("iris", "{\"v\": 2}", rules(&["b"]), PutMode::Apply, 20)
        .await
        .expect("apply replaces");
    assert_eq!(updated.monitor_id, m.monitor_id);
    assert_eq!((updated.created_ms, updated.updated_ms), (10, 20));
    let got = store.get_monitor("iris").await.expect("get");
    assert_eq!(got.spec, "{\"v\": 2}");
    let states = store.alert_states(Some("iris")).await.expect("states");
    assert_eq!(states.len(), 1, "the dropped rule's state goes: {states:?}");
    assert_eq!(states[0].rule, "b");
    let names: Vec<String> = store
        .list_monitors()
        .await
        .expect("list")
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(names, ["alpha", "iris"]);
    store
        .log_events(m.monitor_id, vec![event(T0, "r1", None)])
        .await
        .expect("events");
    store.delete_monitor("iris").await.expect("delete");
    assert_eq!(
        store.get_monitor("iris").await.expect_err("gone").code,
        ErrorCode::ResourceDoesNotExist
    );
    assert!(store
        .alert_states(Some("iris"))
        .await
        .expect("states")
        .is_empty());
    assert_eq!(
        store.delete_monitor("iris").await.expect_err("gone").code,
        ErrorCode::ResourceDoesNotExist
    );
    let fresh = store
        .put_monitor("iris", "{}", vec![], PutMode::Create, 30)
        .await
        .expect("recreate");
    assert!(store
        .events_page(fresh.monitor_id, 0, i64::MAX, None, 10)
        .await
        .expect("page")
        .is_empty());
}

pub async fn events_fold_with_labels_and_generations(store: Store) {
    let m = store
        .put_monitor("m", "{}", vec![], PutMode::Create, 0)
        .await
        .expect("create");
    let id = m.monitor_id;
    let batch = vec![
        event(T0 + 1, "a", Some("0")),
        event(T0 + 2, "b!", None),
        event(T0 + 2, "c", None),
        event(T0 + BUCKET_MS + 5, "d", None),
    ];
    assert_eq!(store.log_events(id, batch.clone()).await.expect("log"), 4);
    // The same events again (a client's retry): stored once.
    assert_eq!(store.log_events(id, batch).await.expect("retry"), 0);
    let b = store
        .buckets(id, T0, T0 + 2 * BUCKET_MS)
        .await
        .expect("buckets");
    assert_eq!(b.len(), 2);
    assert!(b
        .iter()
        .all(|b| b.gen == 2 && b.folded_gen == 0 && !b.current()));
    // Only closed buckets are offered for folding.
    let todo = store
        .buckets_to_fold(T0 + BUCKET_MS + 10, 10)
        .await
        .expect("todo");
    assert_eq!(todo.iter().map(|b| b.bucket_ms).collect::<Vec<_>>(), [T0]);
    assert_eq!(
        store
            .stale_buckets(id, T0 + BUCKET_MS + 10)
            .await
            .expect("stale"),
        1
    );
    assert_eq!(
        store
            .stale_buckets(id, T0 + 9 * BUCKET_MS)
            .await
            .expect("stale"),
        2
    );
    // Pages in (timestamp, request id) order, whatever the page size.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .events_page(id, T0, T0 + 2 * BUCKET_MS, after.take(), 2)
            .await
            .expect("page");
        seen.extend(page.iter().map(|e| e.request_id.clone()));
        match page.last() {
            Some(l) if page.len() == 2 => after = Some((l.ts_ms, l.request_id.clone())),
            _ => break,
        }
    }
    assert_eq!(seen, ["a", "b!", "c", "d"]);
    let first = store
        .events_page(id, T0, T0 + 3, None, 10)
        .await
        .expect("page");
    assert_eq!(first.len(), 3);
    assert!(first[1].error && !first[0].error);
    assert_eq!(first[0].latency_ms, Some((T0 + 1) as f64 / 1000.0));
    assert_eq!(first[0].label.as_deref(), Some("0"));

    store
        .put_rollup(id, T0, 2, "{\"n\": 3}")
        .await
        .expect("rollup");
    let b0 = &store.buckets(id, T0, T0 + 1).await.expect("buckets")[0];
    assert!(b0.current());
    assert_eq!(
        store
            .stale_buckets(id, T0 + 9 * BUCKET_MS)
            .await
            .expect("stale"),
        1
    );
    assert_eq!(b0.rollup.as_deref(), Some("{\"n\": 3}"));
    assert!(store
        .buckets_to_fold(T0 + 2 * BUCKET_MS, 10)
        .await
        .expect("todo")
        .iter()
        .all(|b| b.bucket_ms != T0));
    // A late label makes its bucket stale again, and wins over the event's own label.
    let matched = store
        .log_labels(
            id,
            vec![
                Label {
                    request_id: "a".into(),
                    label: "1".into(),
                },
                Label {
                    request_id: "later".into(),
                    label: "\"x\"".into(),
                },
                Label {
                    request_id: "a".into(),
                    label: "\"final\"".into(),
                },
            ],
            T0 + 3 * BUCKET_MS,
        )
        .await
        .expect("labels");
    assert_eq!(matched, 1);
    let b0 = &store.buckets(id, T0, T0 + 1).await.expect("buckets")[0];
    assert_eq!((b0.gen, b0.folded_gen, b0.current()), (3, 2, false));
    // A rollup made from an older generation does not overwrite a newer one.
    store
        .put_rollup(id, T0, 3, "{\"n\": 4}")
        .await
        .expect("newer");
    store
        .put_rollup(id, T0, 2, "{\"n\": 3}")
        .await
        .expect("older");
    let b0 = &store.buckets(id, T0, T0 + 1).await.expect("buckets")[0];
    assert_eq!(b0.rollup.as_deref(), Some("{\"n\": 4}"));
    let a = store
        .events_page(id, T0, T0 + 2, None, 1)
        .await
        .expect("page");
    assert_eq!(a[0].label.as_deref(), Some("\"final\""));
    // A label that came before its event joins it when the event arrives.
    store
        .log_events(id, vec![event(T0 + 7, "later", None)])
        .await
        .expect("event");
    let later = store
        .events_page(id, T0 + 7, T0 + 8, None, 5)
        .await
        .expect("page");
    assert_eq!(later[0].label.as_deref(), Some("\"x\""));

    // Pruning keeps what is not folded yet.
    let removed = store
        .prune_events(T0 + 10 * BUCKET_MS, 100)
        .await
        .expect("prune");
    assert_eq!(removed, 0, "both buckets are stale");
    store.put_rollup(id, T0, 4, "{}").await.expect("fold");
    // In chunks: three, then the last, then nothing; the oldest go first.
    let removed = store
        .prune_events(T0 + 10 * BUCKET_MS, 3)
        .await
        .expect("prune");
    assert_eq!(removed, 3);
    let first = store
        .events_page(id, 0, i64::MAX, None, 10)
        .await
        .expect("page");
    assert_eq!(first[0].request_id, "later", "the oldest three went first");
    let removed = store
        .prune_events(T0 + 10 * BUCKET_MS, 3)
        .await
        .expect("prune");
    assert_eq!(
        removed, 1,
        "the first bucket's events go, the second's stay"
    );
    assert_eq!(
        store
            .prune_events(T0 + 10 * BUCKET_MS, 3)
            .await
            .expect("prune"),
        0
    );
    let left = store
        .events_page(id, 0, i64::MAX, None, 10)
        .await
        .expect("page");
    assert_eq!(left.len(), 1);
}

pub async fn concurrent_event_writers_lose_nothing(store: Store) {
    let m = store
        .put_monitor("busy", "{}", vec![], PutMode::Create, 0)
        .await
        .expect("create");
    let mut tasks = Vec::new();
    for w in 0..8 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            for b in 0..10 {
                let events = (0..50)
                    .map(|i| event(T0 + i, &format!("{w}-{b}-{i}"), None))
                    .collect();
                store.log_events(m.monitor_id, events).await.expect("log");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let b = store
        .buckets(m.monitor_id, T0, T0 + 1)
        .await
        .expect("buckets");
    assert_eq!(b[0].gen, 80, "every batch marked the bucket");
    let all = store
        .events_page(m.monitor_id, 0, i64::MAX, None, 10_000)
        .await
        .expect("page");
    assert_eq!(all.len(), 8 * 10 * 50);
}

pub async fn alert_states_and_history(store: Store) {
    assert!(store.lead().await.expect("lead"), "a lone store leads");
    for (i, (to, monitor)) in [
        ("pending", "a"),
        ("firing", "a"),
        ("firing", "b"),
        ("resolved", "a"),
    ]
    .into_iter()
    .enumerate()
    {
        let at = 1000 + i as i64;
        let state = AlertState {
            monitor: monitor.into(),
            rule: "r".into(),
            state: to.into(),
            severity: "critical".into(),
            active_ms: Some(1000),
            value: Some(0.5),
            baseline: None,
            samples: 7,
            message: format!("change {i}"),
            evaluated_ms: at,
            ..AlertState::default()
        };
        let change = AlertChange {
            monitor: monitor.into(),
            rule: "r".into(),
            from: "inactive".into(),
            to: to.into(),
            severity: "critical".into(),
            at_ms: at,
            value: Some(0.5),
            message: format!("change {i}"),
            ..AlertChange::default()
        };
        store
            .put_alert_state(state, Some(change))
            .await
            .expect("state");
    }
    let a = store.alert_states(Some("a")).await.expect("states");
    assert_eq!(a.len(), 1);
    assert_eq!(
        (a[0].state.as_str(), a[0].samples, a[0].value),
        ("resolved", 7, Some(0.5))
    );
    assert_eq!((a[0].baseline, a[0].active_ms), (None, Some(1000)));
    assert_eq!(store.alert_states(None).await.expect("all").len(), 2);
    let all = store
        .alert_history(AlertQuery {
            max_results: 10,
            ..AlertQuery::default()
        })
        .await
        .expect("history");
    assert_eq!(all.len(), 4);
    assert!(all.windows(2).all(|w| w[0].seq > w[1].seq), "newest first");
    let firing_a = store
        .alert_history(AlertQuery {
            monitor: Some("a".into()),
            state: Some("firing".into()),
            since_ms: Some(1001),
            max_results: 10,
        })
        .await
        .expect("history");
    assert_eq!(firing_a.len(), 1);
    assert_eq!(firing_a[0].message, "change 1");
    let one = store
        .alert_history(AlertQuery {
            max_results: 1,
            ..AlertQuery::default()
        })
        .await
        .expect("history");
    assert_eq!(one[0].to, "resolved");
}

pub async fn run_points_in_a_window(store: Store) {
    let exp = experiment(&store, "prod").await;
    let r1 = run(&store, &exp, "one").await;
    let r2 = run(&store, &exp, "two").await;
    let point = |key: &str, value: f64, ts: i64, step: i64| Metric {
        key: key.into(),
        value,
        timestamp: ts,
        step,
        model_id: None,
        dataset_name: None,
        dataset_digest: None,
    };
    log(
        &store,
        &r1,
        vec![
            point("latency", 1.0, 100, 0),
            point("latency", 2.0, 200, 1),
            point("latency", f64::NAN, 250, 2),
            point("latency", 3.0, 300, 3),
            point("other", 9.0, 200, 0),
        ],
        vec![],
        vec![],
    )
    .await;
    log(
        &store,
        &r2,
        vec![point("latency", 5.0, 210, 0)],
        vec![],
        vec![],
    )
    .await;
    let got = store
        .run_points(vec![r1.clone(), r2.clone()], "latency", 150, 300)
        .await
        .expect("points");
    assert_eq!(got, [(200, 2.0), (210, 5.0)]);
    let none = store
        .run_points(vec!["missing".into()], "latency", 0, 1000)
        .await
        .expect("points");
    assert!(none.is_empty());
}
