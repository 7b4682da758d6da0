//! The monitoring workloads: inference-event ingest (10 numeric features per event, batches of
//! `batch`), a 1-hour window query over a monitor holding `events` events (timed once the
//! evaluator has folded them), and the lag from an acknowledged batch to its alert firing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::{closed_loop, new_histogram, report, stamp, Api};

/// One event's JSON: latency, prediction, label and ten numeric features.
fn event(out: &mut String, ts: i64, id: &str, n: u64) {
    use std::fmt::Write;
    let _ = write!(
        out,
        r#"{{"timestamp_ms":{ts},"request_id":"{id}","latency_ms":{}.5,"prediction":{},"label":{},"features":{{"#,
        20 + n % 80,
        n % 2,
        (n / 3) % 2
    );
    for f in 0..10 {
        if f > 0 {
            out.push(',');
        }
        let _ = write!(out, r#""f{f}":{}.{}"#, (n * 7 + f) % 100, n % 10);
    }
    out.push_str("}}");
}

/// A batch of events as a service sends them: timestamps from `first_ts` on, `step_ms` apart,
/// and time-ordered request ids (as `plumb_monitor.Monitor` makes them, UUIDv7-like).
fn batch_body(batch: usize, first_ts: i64, step_ms: f64, source: usize, i: u64) -> String {
    let mut s = String::with_capacity(batch * 260);
    s.push_str(r#"{"events":["#);
    for j in 0..batch {
        if j > 0 {
            s.push(',');
        }
        let n = i * batch as u64 + j as u64;
        let ts = first_ts + (j as f64 * step_ms) as i64;
        event(&mut s, ts, &format!("{ts:012x}{source:04x}{n:016x}"), n);
    }
    s.push_str("]}");
    s
}

async fn monitor(api: &Api, name: &str, rules: Value) -> anyhow::Result<()> {
    let resp = api
        .http
        .put(format!("{}/monitors/{name}", api.base))
        .json(&json!({ "rules": rules }))
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!("creating monitor {name}: {}", resp.text().await?);
    }
    Ok(())
}

pub async fn ingest(
    url: &str,
    connections: usize,
    seconds: f64,
    batch: usize,
) -> anyhow::Result<Value> {
    let api = Arc::new(Api::plumb(url)?);
    let name = format!("bench-ingest-{}", stamp());
    monitor(
        &api,
        &name,
        json!([{"name": "slow", "metric": "latency_ms:p95", "window": "5m", "above": 1000}]),
    )
    .await?;
    let path: &'static str = Box::leak(format!("monitors/{name}/events").into_boxed_str());
    let base = stamp();
    let _ = base;
    let body = Arc::new(move |task: usize, i: u64| batch_body(batch, stamp(), 0.0, task, i));
    let (hist, secs, errors) = closed_loop(api, path, connections, seconds, body).await?;
    let events = hist.len() as f64 * batch as f64 / secs;
    Ok(report(
        "monitor-ingest",
        json!({"connections": connections, "batch": batch, "events_per_s": events, "features": 10}),
        &hist,
        secs,
        errors,
    ))
}

pub async fn window(
    url: &str,
    events: usize,
    requests: usize,
    connections: usize,
) -> anyhow::Result<Value> {
    let api = Arc::new(Api::plumb(url)?);
    let name = format!("bench-window-{}", stamp());
    monitor(&api, &name, json!([])).await?;
    // Events over the hour that ended at the last minute boundary: every bucket is closed.
    let now = stamp();
    let end = now - now.rem_euclid(60_000);
    let start = end - 3_600_000;
    let batch = 1000usize;
    let batches = events.div_ceil(batch) as u64;
    let next = Arc::new(AtomicU64::new(0));
    let load = Instant::now();
    let mut tasks = Vec::new();
    for task in 0..connections {
        let (api, next, name) = (api.clone(), next.clone(), name.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= batches {
                    return anyhow::Ok(());
                }
                // Batch i covers its slice of the hour, in order.
                let step = 3_600_000.0 / (batches as f64 * batch as f64);
                let first = start + (i as f64 * batch as f64 * step) as i64;
                let body = batch_body(batch, first, step, task, i);
                api.post_raw(&format!("monitors/{name}/events"), &body)
                    .await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let load_secs = load.elapsed().as_secs_f64();
    // Wait for the evaluator to fold every bucket.
    let fold = Instant::now();
    loop {
        let text = api
            .http
            .get(format!("{}/monitors/{name}", api.base))
            .send()
            .await?
            .text()
            .await?;
        let v: Value = serde_json::from_str(&text).context("monitor")?;
        if v["stale_buckets"].as_u64() == Some(0) {
            break;
        }
        if fold.elapsed() > Duration::from_secs(1800) {
            bail!("the evaluator did not fold the buckets in 30 minutes: {text}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let fold_secs = fold.elapsed().as_secs_f64();
    let q = [
        ("metric", "latency_ms:p95".to_string()),
        ("window", "60m".to_string()),
        ("start_ms", (end - 1).to_string()),
        ("end_ms", (end - 1).to_string()),
    ];
    let path = format!("monitors/{name}/metrics");
    let (mut hist, secs, _) = crate::timed_gets(&api, &path, &q, requests).await?;
    let mut counted = 0;
    for m in ["count", "accuracy"] {
        let q = [
            ("metric", m.to_string()),
            ("window", "60m".to_string()),
            ("start_ms", (end - 1).to_string()),
            ("end_ms", (end - 1).to_string()),
        ];
        let (h, _, _) = crate::timed_gets(&api, &path, &q, requests).await?;
        hist.add(h)?;
        if m == "count" {
            let v: Value = api
                .http
                .get(reqwest::Url::parse_with_params(
                    &format!("{}/{path}", api.base),
                    &q,
                )?)
                .send()
                .await?
                .json()
                .await?;
            counted = v["points"][0]["value"].as_f64().unwrap_or(0.0) as u64;
        }
    }
    Ok(report(
        "monitor-window-1h",
        json!({"events": events, "counted": counted, "load_seconds": load_secs, "events_per_s_loading": events as f64 / load_secs, "fold_seconds": fold_secs}),
        &hist,
        secs,
        0,
    ))
}

pub async fn lag(url: &str, rounds: usize, interval_ms: u64) -> anyhow::Result<Value> {
    let api = Api::plumb(url)?;
    let mut hist = new_histogram();
    let start = Instant::now();
    for round in 0..rounds {
        let name = format!("bench-lag-{}-{round}", stamp());
        monitor(&api, &name, json!([{"name": "errors", "metric": "error_rate", "window": "1m", "above": 0.5, "min_samples": 10}])).await?;
        let now = stamp();
        let events: Vec<Value> = (0..100)
            .map(|i| json!({"timestamp_ms": now, "request_id": format!("e{i}"), "error": true}))
            .collect();
        // Wait for a random point in the evaluation cycle, then write.
        tokio::time::sleep(Duration::from_millis(
            (round as u64 * 377) % interval_ms.max(1),
        ))
        .await;
        api.post_raw(
            &format!("monitors/{name}/events"),
            &json!({ "events": events }).to_string(),
        )
        .await?;
        let acked = Instant::now();
        loop {
            let v: Value = api
                .http
                .get(format!("{}/alerts?monitor={name}&state=firing", api.base))
                .send()
                .await?
                .json()
                .await?;
            if v["alerts"].as_array().is_some_and(|a| !a.is_empty()) {
                break;
            }
            if acked.elapsed() > Duration::from_secs(60) {
                bail!("no alert within a minute");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        hist.record(acked.elapsed().as_micros().max(1) as u64)?;
        let resp = api
            .http
            .delete(format!("{}/monitors/{name}", api.base))
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("deleting {name}");
        }
    }
    Ok(report(
        "monitor-lag",
        json!({"rounds": rounds, "interval_ms": interval_ms, "max_ms": hist.max() as f64 / 1000.0}),
        &hist,
        start.elapsed().as_secs_f64(),
        0,
    ))
}
