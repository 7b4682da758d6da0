//! The trace workloads, driven through the same endpoints on plumb and MLflow's server: OTLP
//! span ingest (`POST /v1/traces`, protobuf, `traces` traces of `spans` spans per request) and
//! a trace search (`traces/search` with a status filter, newest first, 100 per page) over an
//! experiment holding `traces` traces.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::{status, ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use serde_json::{json, Value};

use crate::{new_histogram, report, stamp, Api};

fn attr(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..KeyValue::default()
    }
}

/// An export request of `traces` traces (numbered from `first`) of `spans` spans each: a root
/// (every tenth trace failed) and its children, with MLflow's span attributes.
fn export(source: u64, first: u64, traces: usize, spans: usize) -> Vec<u8> {
    let now_ns = stamp() as u64 * 1_000_000;
    let mut out = Vec::with_capacity(traces * spans);
    for t in 0..traces as u64 {
        let n = first + t;
        let mut trace_id = [0u8; 16];
        trace_id[..8].copy_from_slice(&source.to_be_bytes());
        trace_id[8..].copy_from_slice(&n.to_be_bytes());
        for s in 0..spans as u64 {
            let span_id = ((n << 8) | (s + 1)).to_be_bytes().to_vec();
            let root = s == 0;
            let failed = root && n.is_multiple_of(10);
            out.push(Span {
                trace_id: trace_id.to_vec(),
                span_id,
                parent_span_id: if root {
                    Vec::new()
                } else {
                    ((n << 8) | 1).to_be_bytes().to_vec()
                },
                name: if root {
                    "chat".into()
                } else {
                    format!("step-{s}")
                },
                start_time_unix_nano: now_ns + s * 1000,
                end_time_unix_nano: now_ns + 5_000_000,
                attributes: vec![
                    attr(
                        "mlflow.spanType",
                        if root { "\"CHAIN\"" } else { "\"LLM\"" },
                    ),
                    attr("mlflow.spanInputs", &format!("{{\"question\": \"q{n}\"}}")),
                    attr("mlflow.spanOutputs", "\"an answer of some length\""),
                ],
                status: Some(Status {
                    code: if failed {
                        status::StatusCode::Error as i32
                    } else {
                        status::StatusCode::Ok as i32
                    },
                    message: String::new(),
                }),
                ..Span::default()
            });
        }
    }
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: out,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
    .encode_to_vec()
}

async fn experiment(api: &Api, name: &str) -> anyhow::Result<String> {
    let exp = api
        .post(
            "experiments/create",
            &json!({"name": format!("{name}-{}", stamp())}),
        )
        .await?;
    Ok(exp["experiment_id"]
        .as_str()
        .context("experiment id")?
        .to_string())
}

async fn send(api: &Api, url: &str, exp: &str, body: Vec<u8>) -> anyhow::Result<()> {
    let resp = api
        .http
        .post(url)
        .header("content-type", "application/x-protobuf")
        .header("x-mlflow-experiment-id", exp)
        .body(body)
        .send()
        .await?;
    let status = resp.status();
    if !status.is_success() {
        bail!("/v1/traces: {status}: {}", resp.text().await?);
    }
    Ok(())
}

pub async fn ingest(
    url: &str,
    connections: usize,
    seconds: f64,
    traces: usize,
    spans: usize,
) -> anyhow::Result<Value> {
    let api = Arc::new(Api::new(url)?);
    let exp = experiment(&api, "bench-otlp").await?;
    let otlp = format!("{}/v1/traces", url.trim_end_matches('/'));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for task in 0..connections {
        let (api, otlp, exp) = (api.clone(), otlp.clone(), exp.clone());
        tasks.push(tokio::spawn(async move {
            let mut hist = new_histogram();
            let mut errors = 0u64;
            let mut i = 0u64;
            while Instant::now() < deadline {
                let body = export(task as u64 + 1, i * traces as u64, traces, spans);
                let t = Instant::now();
                match send(&api, &otlp, &exp, body).await {
                    Ok(()) => {
                        let _ = hist.record(t.elapsed().as_micros() as u64);
                    }
                    Err(_) => errors += 1,
                }
                i += 1;
            }
            (hist, errors)
        }));
    }
    let mut hist = new_histogram();
    let mut errors = 0;
    for t in tasks {
        let (h, e) = t.await?;
        hist.add(&h)?;
        errors += e;
    }
    let secs = start.elapsed().as_secs_f64();
    let per_request = (traces * spans) as f64;
    Ok(report(
        "trace-ingest",
        json!({"connections": connections, "traces_per_request": traces,
               "spans_per_trace": spans, "spans_per_s": hist.len() as f64 * per_request / secs}),
        &hist,
        secs,
        errors,
    ))
}

pub async fn search(
    url: &str,
    traces: usize,
    requests: usize,
    connections: usize,
) -> anyhow::Result<Value> {
    let api = Arc::new(Api::new(url)?);
    let exp = experiment(&api, "bench-trace-search").await?;
    let otlp = format!("{}/v1/traces", url.trim_end_matches('/'));
    // Load: one root span per trace, 1000 traces per request.
    let batch = 1000usize;
    let batches = traces.div_ceil(batch) as u64;
    let next = Arc::new(AtomicU64::new(0));
    let load = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (api, otlp, exp, next) = (api.clone(), otlp.clone(), exp.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= batches {
                    return anyhow::Ok(());
                }
                send(&api, &otlp, &exp, export(0, i * batch as u64, batch, 1)).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let load_secs = load.elapsed().as_secs_f64();
    let search = format!("{}/api/3.0/mlflow/traces/search", url.trim_end_matches('/'));
    let body = json!({
        "locations": [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": exp}}],
        "filter": "trace.status = 'ERROR'",
        "max_results": 100,
    })
    .to_string();
    let mut hist = new_histogram();
    let mut found = 0;
    let start = Instant::now();
    for _ in 0..requests {
        let t = Instant::now();
        let resp = api
            .http
            .post(&search)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await?;
        let status = resp.status();
        let text = resp.text().await?;
        let _ = hist.record(t.elapsed().as_micros() as u64);
        if !status.is_success() {
            bail!("traces/search: {status}: {text}");
        }
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        found = v["traces"].as_array().map(Vec::len).unwrap_or(0);
    }
    if found != 100.min(traces / 10) {
        bail!("traces/search returned {found} traces");
    }
    Ok(report(
        "trace-search",
        json!({"traces": traces, "load_seconds": load_secs, "page": found,
               "filter": "trace.status = 'ERROR'"}),
        &hist,
        start.elapsed().as_secs_f64(),
        0,
    ))
}
