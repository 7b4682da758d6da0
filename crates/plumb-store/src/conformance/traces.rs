//! Conformance cases of the trace tables: start (replacing a trace started again, tags and
//! metadata merged), the artifact location tag, searches with filters, order and pages, tags,
//! deletion by ids and by time, links to runs.

use std::collections::BTreeMap;

use plumb_core::search::{parse_trace_filter, parse_trace_order_by};
use plumb_core::ErrorCode;

use super::{experiment, run, Store};
use crate::traces::{
    AssessmentPatch, AssessmentRecord, SpanRecord, TraceInfo, TraceQuery, TraceSelection,
};

fn trace(id: &str, exp: &str, at: i64, state: &str, run: Option<&str>) -> TraceInfo {
    let mut metadata = BTreeMap::from([("mlflow.user".to_string(), "me".to_string())]);
    if let Some(r) = run {
        metadata.insert("mlflow.sourceRun".into(), r.into());
    }
    TraceInfo {
        trace_id: id.into(),
        experiment_id: exp.into(),
        request_time_ms: at,
        execution_ms: Some(25),
        state: state.into(),
        request_preview: Some("{\"q\": 1}".into()),
        metadata,
        tags: BTreeMap::from([("mlflow.traceName".to_string(), format!("name-{id}"))]),
        ..TraceInfo::default()
    }
}

fn query(exp: &str, filter: &str, order: &[&str], max: i64, offset: i64) -> TraceQuery {
    TraceQuery {
        experiment_ids: vec![exp.into()],
        filter: parse_trace_filter(filter).expect("filter"),
        order_by: parse_trace_order_by(&order.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("order"),
        max_results: max,
        offset,
    }
}

async fn ids(store: &Store, q: TraceQuery) -> Vec<String> {
    store
        .search_traces(q)
        .await
        .expect("search")
        .items
        .into_iter()
        .map(|t| t.trace_id)
        .collect()
}

pub async fn traces_start_search_tag_delete(store: Store) {
    let exp = experiment(&store, "traces").await;
    let other = experiment(&store, "elsewhere").await;
    let r = run(&store, &exp, "r").await;
    let got = store
        .start_trace(trace("tr-1", &exp, 1000, "OK", Some(&r)))
        .await
        .expect("start");
    assert_eq!(
        got.tags.get("mlflow.artifactLocation").map(String::as_str),
        Some(format!("mlflow-artifacts:/{exp}/traces/tr-1/artifacts").as_str())
    );
    assert_eq!(got.metadata.get("mlflow.sourceRun"), Some(&r));
    store
        .start_trace(trace("tr-2", &exp, 2000, "ERROR", None))
        .await
        .expect("start");
    store
        .start_trace(trace("tr-3", &exp, 3000, "OK", None))
        .await
        .expect("start");
    store
        .start_trace(trace("tr-x", &other, 2500, "OK", None))
        .await
        .expect("start");
    // Started again (the client retries): replaced, not duplicated.
    let mut again = trace("tr-3", &exp, 3000, "OK", None);
    again.tags.insert("team".into(), "ml".into());
    store.start_trace(again).await.expect("again");

    assert_eq!(
        ids(&store, query(&exp, "", &[], 10, 0)).await,
        ["tr-3", "tr-2", "tr-1"]
    );
    assert_eq!(
        ids(&store, query(&exp, "trace.status = 'ERROR'", &[], 10, 0)).await,
        ["tr-2"]
    );
    assert_eq!(
        ids(
            &store,
            query(&exp, "status IN ('OK')", &["timestamp_ms ASC"], 10, 0)
        )
        .await,
        ["tr-1", "tr-3"]
    );
    assert_eq!(
        ids(&store, query(&exp, "timestamp_ms >= 2000", &[], 10, 0)).await,
        ["tr-3", "tr-2"]
    );
    assert_eq!(
        ids(&store, query(&exp, "tags.team = 'ml'", &[], 10, 0)).await,
        ["tr-3"]
    );
    assert_eq!(
        ids(
            &store,
            query(&exp, "trace.name LIKE 'name-tr-1'", &[], 10, 0)
        )
        .await,
        ["tr-1"]
    );
    assert_eq!(
        ids(
            &store,
            query(&exp, "metadata.`mlflow.user` = 'me'", &[], 10, 0)
        )
        .await
        .len(),
        3
    );
    assert_eq!(
        ids(&store, query(&exp, &format!("run_id = '{r}'"), &[], 10, 0)).await,
        ["tr-1"]
    );
    assert_eq!(
        ids(&store, query(&exp, "execution_time_ms > 100", &[], 10, 0))
            .await
            .len(),
        0
    );
    let first = store
        .search_traces(query(&exp, "", &[], 2, 0))
        .await
        .expect("page");
    assert_eq!(first.items.len(), 2);
    assert!(first.next_page_token.is_some());
    assert_eq!(ids(&store, query(&exp, "", &[], 2, 2)).await, ["tr-1"]);

    store
        .set_trace_tag("tr-1", "mlflow.traceName", "renamed")
        .await
        .expect("tag");
    assert_eq!(
        ids(&store, query(&exp, "name = 'renamed'", &[], 10, 0)).await,
        ["tr-1"]
    );
    store
        .delete_trace_tag("tr-1", "mlflow.traceName")
        .await
        .expect("untag");
    let e = store
        .delete_trace_tag("tr-1", "mlflow.traceName")
        .await
        .expect_err("twice");
    assert_eq!(e.code, ErrorCode::ResourceDoesNotExist);
    let e = store
        .set_trace_tag("tr-nope", "k", "v")
        .await
        .expect_err("missing");
    assert_eq!(e.code, ErrorCode::ResourceDoesNotExist);
    assert_eq!(e.message, "Trace with ID 'tr-nope' not found.");

    let batch = store
        .batch_get_trace_infos(vec!["tr-2".into(), "tr-nope".into(), "tr-1".into()])
        .await
        .expect("batch");
    assert_eq!(
        batch
            .iter()
            .map(|t| t.trace_id.as_str())
            .collect::<Vec<_>>(),
        ["tr-2", "tr-1"]
    );

    let r2 = run(&store, &exp, "r2").await;
    store
        .link_traces_to_run(vec!["tr-2".into()], &r2)
        .await
        .expect("link");
    assert_eq!(
        ids(&store, query(&exp, &format!("run_id = '{r2}'"), &[], 10, 0)).await,
        ["tr-2"]
    );
    let e = store
        .link_traces_to_run(vec!["tr-2".into()], "no-such-run")
        .await
        .expect_err("missing run");
    assert_eq!(e.code, ErrorCode::ResourceDoesNotExist);

    // Deletion stays inside the experiment.
    let n = store
        .delete_traces(
            &exp,
            TraceSelection::Ids(vec!["tr-2".into(), "tr-x".into()]),
        )
        .await
        .expect("delete");
    assert_eq!(n, 1);
    let n = store
        .delete_traces(
            &exp,
            TraceSelection::Before {
                max_timestamp_ms: 5000,
                max_traces: Some(1),
            },
        )
        .await
        .expect("delete oldest");
    assert_eq!(n, 1);
    assert_eq!(ids(&store, query(&exp, "", &[], 10, 0)).await, ["tr-3"]);
    assert!(store.get_trace_info("tr-x").await.is_ok());
    let e = store.get_trace_info("tr-1").await.expect_err("deleted");
    assert_eq!(e.code, ErrorCode::ResourceDoesNotExist);

    // A deleted experiment takes no new traces.
    store
        .delete_experiment(&other)
        .await
        .expect("delete experiment");
    let e = store
        .start_trace(trace("tr-late", &other, 1, "OK", None))
        .await
        .expect_err("inactive experiment");
    assert!(
        e.message.contains("must be in the 'active' state"),
        "{}",
        e.message
    );
}

fn span(trace: &str, id: &str, parent: Option<&str>, start_ns: i64, status: &str) -> SpanRecord {
    SpanRecord {
        trace_id: trace.into(),
        span_id: id.into(),
        parent_span_id: parent.map(str::to_string),
        name: format!("span-{id}"),
        span_type: Some("LLM".into()),
        status: status.into(),
        start_ns,
        end_ns: Some(start_ns + 2_000_000),
        content: format!("{{\"name\": \"span-{id}\"}}"),
        inputs: Some("{\"q\": 1}".into()),
        outputs: None,
        tokens: None,
    }
}

pub async fn spans_create_and_complete_traces(store: Store) {
    let exp = experiment(&store, "otel").await;
    // A child arrives first: the trace exists, in progress, keeping its spans in the database.
    store
        .log_spans(
            &exp,
            vec![span("tr-a", "c1", Some("r1"), 5_000_000_000, "OK")],
        )
        .await
        .expect("child");
    let t = store.get_trace_info("tr-a").await.expect("created");
    assert_eq!((t.state.as_str(), t.request_time_ms), ("IN_PROGRESS", 5000));
    assert_eq!(
        t.tags.get("mlflow.trace.spansLocation").map(String::as_str),
        Some("TRACKING_STORE")
    );
    // The root completes it; a span sent again replaces the stored one.
    store
        .log_spans(
            &exp,
            vec![
                span("tr-a", "r1", None, 4_000_000_000, "ERROR"),
                span("tr-a", "c1", Some("r1"), 5_000_000_000, "OK"),
            ],
        )
        .await
        .expect("root");
    let t = store.get_trace_info("tr-a").await.expect("info");
    assert_eq!(
        (t.state.as_str(), t.request_time_ms, t.execution_ms),
        ("ERROR", 4000, Some(2))
    );
    assert_eq!(
        t.tags.get("mlflow.traceName").map(String::as_str),
        Some("span-r1")
    );
    assert_eq!(t.request_preview.as_deref(), Some("{\"q\": 1}"));
    let spans = store.get_spans("tr-a").await.expect("spans");
    assert_eq!(
        spans.iter().map(|s| s.span_id.as_str()).collect::<Vec<_>>(),
        ["r1", "c1"],
        "by start time, each once"
    );
    let e = store
        .log_spans("999", vec![span("tr-b", "x", None, 1, "OK")])
        .await
        .expect_err("unknown experiment");
    assert_eq!(e.code, ErrorCode::ResourceDoesNotExist);
    assert_eq!(
        store
            .delete_traces(&exp, TraceSelection::Ids(vec!["tr-a".into()]))
            .await
            .expect("delete"),
        1
    );
    assert!(store.get_spans("tr-a").await.expect("spans").is_empty());
}

pub async fn assessments_override_and_restore(store: Store) {
    let exp = experiment(&store, "judged").await;
    store
        .start_trace(trace("tr-j", &exp, 1000, "OK", None))
        .await
        .expect("trace");
    let make = |id: &str, overrides: Option<&str>| AssessmentRecord {
        assessment_id: id.into(),
        trace_id: "tr-j".into(),
        name: "correct".into(),
        created_ms: 10,
        updated_ms: 10,
        valid: true,
        overrides: overrides.map(str::to_string),
        body: serde_json::from_str(r#"{"feedback": {"value": true}}"#).expect("json"),
    };
    store
        .create_assessment(make("a-1", None))
        .await
        .expect("a-1");
    let e = store
        .create_assessment(make("a-2", Some("a-nope")))
        .await
        .expect_err("overrides a missing one");
    assert_eq!(e.code, ErrorCode::ResourceDoesNotExist);
    store
        .create_assessment(make("a-2", Some("a-1")))
        .await
        .expect("a-2");
    assert!(
        !store
            .get_assessment("tr-j", "a-1")
            .await
            .expect("a-1")
            .valid
    );
    let info = store.get_trace_info("tr-j").await.expect("info");
    assert_eq!(info.assessments.len(), 2);
    let patch = AssessmentPatch {
        name: Some("still-correct".into()),
        body: serde_json::from_str(r#"{"expectation": {"value": "Paris"}}"#).expect("json"),
        valid: None,
    };
    let a = store
        .update_assessment("tr-j", "a-2", patch, 20)
        .await
        .expect("update");
    assert_eq!((a.name.as_str(), a.updated_ms), ("still-correct", 20));
    assert!(a.body.contains_key("expectation") && !a.body.contains_key("feedback"));
    store
        .delete_assessment("tr-j", "a-2")
        .await
        .expect("delete");
    assert!(
        store
            .get_assessment("tr-j", "a-1")
            .await
            .expect("a-1")
            .valid,
        "restored"
    );
    let e = store.get_assessment("tr-j", "a-2").await.expect_err("gone");
    assert_eq!(e.code, ErrorCode::ResourceDoesNotExist);
    let e = store
        .create_assessment(AssessmentRecord {
            trace_id: "tr-none".into(),
            ..make("a-3", None)
        })
        .await
        .expect_err("no trace");
    assert_eq!(e.code, ErrorCode::ResourceDoesNotExist);
}

pub async fn traces_searched_by_spans_and_assessments(store: Store) {
    let exp = experiment(&store, "searched").await;
    let with_attrs = |trace: &str, id: &str, name: &str, attrs: &str, status: &str| SpanRecord {
        name: name.into(),
        content: format!(r#"{{"name":"{name}","attributes":{attrs}}}"#),
        ..span(trace, id, None, 1_000_000_000, status)
    };
    store
        .log_spans(
            &exp,
            vec![
                with_attrs(
                    "tr-1",
                    "a",
                    "chat",
                    r#"{"model":"\"gpt-4\"","n":"5"}"#,
                    "OK",
                ),
                with_attrs(
                    "tr-2",
                    "b",
                    "retrieve",
                    r#"{"model":"\"gpt-4o_mini\""}"#,
                    "ERROR",
                ),
                with_attrs("tr-3", "c", "chat", r#"{"model":"\"50%\""}"#, "ERROR"),
            ],
        )
        .await
        .expect("spans");
    let feedback = |id: &str, trace: &str, name: &str, body: &str| AssessmentRecord {
        assessment_id: id.into(),
        trace_id: trace.into(),
        name: name.into(),
        created_ms: 10,
        updated_ms: 10,
        valid: true,
        overrides: None,
        body: serde_json::from_str(body).expect("json"),
    };
    for a in [
        feedback("a-1", "tr-1", "rating", r#"{"feedback": {"value": 5}}"#),
        feedback("a-2", "tr-2", "rating", r#"{"feedback": {"value": 2}}"#),
        feedback("a-3", "tr-1", "correct", r#"{"feedback": {"value": true}}"#),
        feedback("a-4", "tr-2", "tone", r#"{"feedback": {"value": "yes"}}"#),
        feedback(
            "a-5",
            "tr-3",
            "answer",
            r#"{"expectation": {"value": "Paris"}}"#,
        ),
    ] {
        store.create_assessment(a).await.expect("assessment");
    }
    let found = |f: &'static str| {
        let store = store.clone();
        let exp = exp.clone();
        async move {
            let mut v = ids(&store, query(&exp, f, &[], 100, 0)).await;
            v.sort();
            v
        }
    };
    assert_eq!(found("span.name = 'chat'").await, ["tr-1", "tr-3"]);
    assert_eq!(found("span.name IN ('retrieve')").await, ["tr-2"]);
    assert_eq!(found("span.status = 'ERROR'").await, ["tr-2", "tr-3"]);
    assert_eq!(
        found("span.name = 'chat' AND span.status = 'ERROR'").await,
        ["tr-3"],
        "one span meets both"
    );
    assert_eq!(found("span.type = 'LLM'").await.len(), 3);
    assert_eq!(found("span.attributes.model = 'gpt-4'").await, ["tr-1"]);
    assert_eq!(found("span.attributes.n = '5'").await, ["tr-1"]);
    assert_eq!(
        found("span.attributes.model != 'gpt-4'").await,
        ["tr-2", "tr-3"]
    );
    assert_eq!(
        found("span.attributes.model LIKE '%gpt%'").await,
        ["tr-1", "tr-2"]
    );
    assert_eq!(found("span.attributes.model = '50%'").await, ["tr-3"]);
    assert_eq!(
        found("span.attributes.model = 'gpt-4o%mini'").await,
        Vec::<String>::new(),
        "a value's % is literal"
    );
    assert_eq!(found("text LIKE '%retrieve%'").await, ["tr-2"]);
    assert_eq!(found("feedback.rating > 3").await, ["tr-1"]);
    assert_eq!(found("feedback.rating <= 2").await, ["tr-2"]);
    assert_eq!(found("feedback.rating = 5").await, ["tr-1"]);
    assert_eq!(found("feedback.rating = 5.0").await, ["tr-1"]);
    assert_eq!(found("feedback.rating = '5.0'").await, ["tr-1"]);
    assert_eq!(found("feedback.rating != '5'").await, ["tr-2"]);
    assert_eq!(found("feedback.correct = 'true'").await, ["tr-1"]);
    assert_eq!(found("feedback.tone = 'yes'").await, ["tr-2"]);
    assert_eq!(
        found("feedback.tone > 0").await,
        Vec::<String>::new(),
        "yes is not a number"
    );
    assert_eq!(found("feedback.rating IS NULL").await, ["tr-3"]);
    assert_eq!(found("expectation.answer = 'Paris'").await, ["tr-3"]);
    assert_eq!(
        found("expectation.answer LIKE 'P%'").await,
        Vec::<String>::new()
    );
    assert_eq!(found("expectation.answer LIKE '\"P%'").await, ["tr-3"]);
    assert_eq!(
        found("feedback.answer IS NOT NULL").await,
        Vec::<String>::new(),
        "an expectation is not feedback"
    );
    // An overridden assessment no longer matches; its replacement does.
    store
        .create_assessment(AssessmentRecord {
            overrides: Some("a-1".into()),
            ..feedback("a-6", "tr-1", "rating", r#"{"feedback": {"value": 1}}"#)
        })
        .await
        .expect("override");
    assert_eq!(found("feedback.rating > 3").await, Vec::<String>::new());
    assert_eq!(found("feedback.rating < 2").await, ["tr-1"]);
    // An update moves the searchable value too.
    store
        .update_assessment(
            "tr-2",
            "a-4",
            AssessmentPatch {
                name: None,
                body: serde_json::from_str(r#"{"feedback": {"value": "no"}}"#).expect("json"),
                valid: None,
            },
            20,
        )
        .await
        .expect("update");
    assert_eq!(found("feedback.tone = 'no'").await, ["tr-2"]);
    assert_eq!(
        found("trace.end_time_ms > 0 AND span.name = 'retrieve'").await,
        ["tr-2"]
    );
}

pub async fn trace_metrics_and_correlation(store: Store) {
    use crate::traces::{MetricAgg, MetricView, TraceMetricsQuery};
    use plumb_core::search::parse_metric_filter;
    let exp = experiment(&store, "metered").await;
    // Five traces a minute apart: latencies 10..50 ms, two errors, token usage on three.
    for i in 0..5i64 {
        let mut t = trace(
            &format!("tr-m{i}"),
            &exp,
            60_000 * i,
            if i % 2 == 1 { "ERROR" } else { "OK" },
            None,
        );
        t.execution_ms = Some(10 * (i + 1));
        t.tags.insert(
            "mlflow.traceName".into(),
            if i < 3 { "chat" } else { "rag" }.into(),
        );
        if i < 3 {
            t.metadata.insert(
                "mlflow.trace.tokenUsage".into(),
                format!(
                    r#"{{"input_tokens": {}, "output_tokens": 5, "total_tokens": {}}}"#,
                    100 * (i + 1),
                    100 * (i + 1) + 5
                ),
            );
        }
        store.start_trace(t).await.expect("trace");
    }
    let q = |view, metric: &str, aggs: Vec<MetricAgg>, dims: &[&str], filters: &[&str]| {
        TraceMetricsQuery {
            experiment_ids: vec![exp.clone()],
            view,
            metric: metric.into(),
            aggregations: aggs,
            dimensions: dims.iter().map(|d| d.to_string()).collect(),
            filters: filters
                .iter()
                .map(|f| parse_metric_filter(f).expect("filter"))
                .collect(),
            interval_s: None,
            start_ms: None,
            end_ms: None,
            max_results: 1000,
        }
    };
    let run = |query: TraceMetricsQuery| {
        let store = store.clone();
        async move { store.query_trace_metrics(query).await.expect("metrics") }
    };
    let got = run(q(
        MetricView::Traces,
        "trace_count",
        vec![MetricAgg::Count],
        &["trace_status"],
        &[],
    ))
    .await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].dimensions["trace_status"], "ERROR");
    assert_eq!(got[0].values["COUNT"], 2.0);
    assert_eq!(got[1].values["COUNT"], 3.0);
    let got = run(q(
        MetricView::Traces,
        "latency",
        vec![
            MetricAgg::Avg,
            MetricAgg::Min,
            MetricAgg::Max,
            MetricAgg::Percentile(50.0),
            MetricAgg::Percentile(90.0),
        ],
        &[],
        &[],
    ))
    .await;
    assert_eq!(got.len(), 1);
    let v = &got[0].values;
    assert_eq!(
        (v["AVG"], v["MIN"], v["MAX"], v["P50.0"]),
        (30.0, 10.0, 50.0, 30.0)
    );
    assert!((v["P90.0"] - 46.0).abs() < 1e-9, "interpolated: {v:?}");
    let got = run(q(
        MetricView::Traces,
        "latency",
        vec![MetricAgg::Max],
        &["trace_name"],
        &["trace.status = 'OK'"],
    ))
    .await;
    assert_eq!(
        got.iter()
            .map(|p| (p.dimensions["trace_name"].as_str(), p.values["MAX"]))
            .collect::<Vec<_>>(),
        [("chat", 30.0), ("rag", 50.0)]
    );
    let got = run(q(
        MetricView::Traces,
        "input_tokens",
        vec![MetricAgg::Sum, MetricAgg::Avg],
        &[],
        &[],
    ))
    .await;
    assert_eq!((got[0].values["SUM"], got[0].values["AVG"]), (600.0, 200.0));
    // Time buckets of two minutes over [0, 4 min]: request times 0, 1, 2, 3, 4 minutes.
    let mut bucketed = q(
        MetricView::Traces,
        "trace_count",
        vec![MetricAgg::Count],
        &[],
        &[],
    );
    bucketed.interval_s = Some(120);
    bucketed.start_ms = Some(0);
    bucketed.end_ms = Some(180_000);
    let got = run(bucketed.clone()).await;
    assert_eq!(
        got.iter()
            .map(|p| (p.bucket_ms, p.values["COUNT"]))
            .collect::<Vec<_>>(),
        [(Some(0), 2.0), (Some(120_000), 2.0)],
        "end inclusive at 3 min"
    );
    bucketed.max_results = 1;
    assert_eq!(run(bucketed).await.len(), 1);
    // Spans: latency by name, filtered by status; assessments: values by name.
    store
        .log_spans(
            &exp,
            vec![
                SpanRecord {
                    name: "llm".into(),
                    ..span("tr-m0", "s1", Some("x"), 0, "OK")
                },
                SpanRecord {
                    name: "llm".into(),
                    end_ns: Some(8_000_000),
                    ..span("tr-m1", "s2", Some("x"), 0, "ERROR")
                },
                SpanRecord {
                    name: "tool".into(),
                    ..span("tr-m1", "s3", Some("x"), 0, "OK")
                },
            ],
        )
        .await
        .expect("spans");
    let got = run(q(
        MetricView::Spans,
        "latency",
        vec![MetricAgg::Max],
        &["span_name"],
        &["span.status = 'OK'"],
    ))
    .await;
    assert_eq!(
        got.iter()
            .map(|p| (p.dimensions["span_name"].as_str(), p.values["MAX"]))
            .collect::<Vec<_>>(),
        [("llm", 2.0), ("tool", 2.0)]
    );
    let got = run(q(
        MetricView::Spans,
        "span_count",
        vec![MetricAgg::Count],
        &["span_name"],
        &["trace.status = 'ERROR'"],
    ))
    .await;
    assert_eq!(
        got.iter().map(|p| p.values["COUNT"]).collect::<Vec<_>>(),
        [1.0, 1.0]
    );
    for (id, trace, value) in [
        ("a-m1", "tr-m0", "4"),
        ("a-m2", "tr-m1", "2"),
        ("a-m3", "tr-m2", "true"),
    ] {
        store
            .create_assessment(AssessmentRecord {
                assessment_id: id.into(),
                trace_id: trace.into(),
                name: if value == "true" { "ok" } else { "rating" }.into(),
                created_ms: 1,
                updated_ms: 1,
                valid: true,
                overrides: None,
                body: serde_json::from_str(&format!(r#"{{"feedback": {{"value": {value}}}}}"#))
                    .expect("json"),
            })
            .await
            .expect("assessment");
    }
    let got = run(q(
        MetricView::Assessments,
        "assessment_value",
        vec![MetricAgg::Avg],
        &["assessment_name"],
        &["assessment.type = 'feedback'"],
    ))
    .await;
    assert_eq!(
        got.iter()
            .map(|p| (p.dimensions["assessment_name"].as_str(), p.values["AVG"]))
            .collect::<Vec<_>>(),
        [("ok", 1.0), ("rating", 3.0)]
    );
    let got = run(q(
        MetricView::Assessments,
        "assessment_count",
        vec![MetricAgg::Count],
        &["assessment_value"],
        &["assessment.name = 'rating'"],
    ))
    .await;
    assert_eq!(got.len(), 2);
    // Refusals: a metric of another view, an aggregation or dimension it lacks, a span filter
    // on traces, a bucket without a range.
    for bad in [
        q(
            MetricView::Traces,
            "span_count",
            vec![MetricAgg::Count],
            &[],
            &[],
        ),
        q(
            MetricView::Traces,
            "latency",
            vec![MetricAgg::Count],
            &[],
            &[],
        ),
        q(
            MetricView::Traces,
            "latency",
            vec![MetricAgg::Avg],
            &["span_name"],
            &[],
        ),
        q(
            MetricView::Traces,
            "latency",
            vec![MetricAgg::Avg],
            &[],
            &["span.name = 'x'"],
        ),
        TraceMetricsQuery {
            interval_s: Some(60),
            ..q(
                MetricView::Traces,
                "trace_count",
                vec![MetricAgg::Count],
                &[],
                &[],
            )
        },
        TraceMetricsQuery {
            experiment_ids: vec!["x".into()],
            ..q(
                MetricView::Traces,
                "trace_count",
                vec![MetricAgg::Count],
                &[],
                &[],
            )
        },
    ] {
        let e = store
            .query_trace_metrics(bad.clone())
            .await
            .expect_err("refused");
        assert_eq!(e.code, ErrorCode::InvalidParameterValue, "{bad:?}");
    }
    // Correlation: errors against the rag name, within the first four minutes.
    let counts = store
        .trace_correlation_counts(
            vec![exp.clone()],
            parse_trace_filter("timestamp_ms <= 180000").expect("base"),
            parse_trace_filter("status = 'ERROR'").expect("f1"),
            parse_trace_filter("name = 'rag'").expect("f2"),
        )
        .await
        .expect("counts");
    assert_eq!(
        (counts.total, counts.first, counts.second, counts.joint),
        (4, 2, 1, 1)
    );
}

pub async fn trace_tokens_sum_spans_once(store: Store) {
    let exp = experiment(&store, "tokens").await;
    let with = |id: &str, parent: Option<&str>, tokens: Option<(i64, i64, i64)>| SpanRecord {
        tokens,
        ..span("tr-t", id, parent, 1_000, "OK")
    };
    // An agent span reporting its two LLM calls' total, a tool call of its own, and a second
    // call in another request.
    store
        .log_spans(
            &exp,
            vec![
                with("agent", Some("root"), Some((30, 12, 42))),
                with("llm1", Some("agent"), Some((10, 2, 12))),
                with("llm2", Some("agent"), Some((20, 10, 30))),
            ],
        )
        .await
        .expect("spans");
    store
        .log_spans(
            &exp,
            vec![
                with("root", None, None),
                with("tool", Some("root"), Some((5, 1, 6))),
            ],
        )
        .await
        .expect("more spans");
    let t = store.get_trace_info("tr-t").await.expect("info");
    let usage: serde_json::Value =
        serde_json::from_str(&t.metadata["mlflow.trace.tokenUsage"]).expect("json");
    assert_eq!(
        usage,
        serde_json::json!({"input_tokens": 35, "output_tokens": 13, "total_tokens": 48})
    );
    // A trace the client started with its own counts keeps them.
    let mut own = trace("tr-own", &exp, 1, "OK", None);
    own.metadata.insert(
        "mlflow.trace.tokenUsage".into(),
        r#"{"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}"#.into(),
    );
    own.metadata
        .insert("mlflow.trace.infoFinalized".into(), "true".into());
    store.start_trace(own).await.expect("trace");
    store
        .log_spans(
            &exp,
            vec![SpanRecord {
                tokens: Some((100, 100, 200)),
                ..span("tr-own", "x", Some("y"), 1_000, "OK")
            }],
        )
        .await
        .expect("span");
    let t = store.get_trace_info("tr-own").await.expect("info");
    assert!(t.metadata["mlflow.trace.tokenUsage"].contains("\"total_tokens\": 2"));
    assert_eq!(
        store.get_spans("tr-own").await.expect("spans")[0].tokens,
        Some((100, 100, 200))
    );
}
