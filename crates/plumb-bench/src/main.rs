//! `plumb-bench`: the benchmark load generator. Drives any MLflow-compatible server over its REST
//! API (plumb, MLflow, FastTrackML) with unique points, closed-loop on N connections, and prints
//! one JSON line of throughput and latency percentiles. Orchestration lives in `bench/run.py`.
//! `floor` serves the write endpoints while storing nothing: the same load against it measures
//! what the HTTP stack and the load generator alone allow on the machine.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use serde_json::{json, Value};

mod monitoring;
mod traces;

#[derive(Parser)]
#[command(
    name = "plumb-bench",
    about = "Load generator for MLflow-compatible tracking servers"
)]
struct Cli {
    /// Base URL of the server, e.g. http://127.0.0.1:5000
    #[arg(long)]
    url: String,
    #[command(subcommand)]
    workload: Workload,
}

#[derive(Subcommand)]
enum Workload {
    /// log-metric, one unique point per request.
    LogMetric {
        #[arg(long, default_value_t = 8)]
        connections: usize,
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
    },
    /// log-batch of `batch` unique points per request.
    LogBatch {
        #[arg(long, default_value_t = 8)]
        connections: usize,
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        #[arg(long, default_value_t = 1000)]
        batch: usize,
    },
    /// get-history of one metric holding `points` points (loaded first).
    History {
        #[arg(long, default_value_t = 100_000)]
        points: usize,
        #[arg(long, default_value_t = 30)]
        requests: usize,
    },
    /// get-history-bulk-interval sampling a `points`-point metric to `max_results`.
    BulkInterval {
        #[arg(long, default_value_t = 1_000_000)]
        points: usize,
        #[arg(long, default_value_t = 1000)]
        max_results: usize,
        #[arg(long, default_value_t = 30)]
        requests: usize,
    },
    /// runs/search over an experiment of `runs` runs (20 metrics, 20 params, 10 tags each).
    Search {
        #[arg(long, default_value_t = 100_000)]
        runs: usize,
        #[arg(long, default_value_t = 20)]
        requests: usize,
        #[arg(long, default_value_t = 8)]
        load_connections: usize,
    },
    /// POST inference events (10 numeric features each) to a monitor, `batch` per request.
    MonitorIngest {
        #[arg(long, default_value_t = 8)]
        connections: usize,
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        #[arg(long, default_value_t = 1000)]
        batch: usize,
    },
    /// A 1-hour window query over a monitor holding `events` events, once folded.
    MonitorWindow {
        #[arg(long, default_value_t = 10_000_000)]
        events: usize,
        #[arg(long, default_value_t = 20)]
        requests: usize,
        #[arg(long, default_value_t = 4)]
        load_connections: usize,
    },
    /// From an acknowledged batch of failing requests to its alert firing (`for: 0`); the
    /// server runs with `--monitor-interval` = `interval_ms`.
    MonitorLag {
        #[arg(long, default_value_t = 10)]
        rounds: usize,
        #[arg(long, default_value_t = 1000)]
        interval_ms: u64,
    },
    /// OTLP span ingest: `traces` traces of `spans` spans per protobuf request to /v1/traces.
    TraceIngest {
        #[arg(long, default_value_t = 8)]
        connections: usize,
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        #[arg(long, default_value_t = 100)]
        traces: usize,
        #[arg(long, default_value_t = 5)]
        spans: usize,
    },
    /// traces/search (a status filter, 100 newest) over an experiment of `traces` traces.
    TraceSearch {
        #[arg(long, default_value_t = 100_000)]
        traces: usize,
        #[arg(long, default_value_t = 20)]
        requests: usize,
        #[arg(long, default_value_t = 4)]
        load_connections: usize,
    },
    /// Serves on the --url's address, until killed, a server that reads and parses each request
    /// and stores nothing (the ceiling of the write workloads on this machine).
    Floor,
}

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    /// The same client for plumb's own API (`/api/2.0/plumb`).
    fn plumb(url: &str) -> anyhow::Result<Self> {
        let mut api = Self::new(url)?;
        api.base = format!("{}/api/2.0/plumb", url.trim_end_matches('/'));
        Ok(api)
    }

    fn new(url: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .http1_only()
            .pool_max_idle_per_host(1024)
            .timeout(Duration::from_secs(600))
            .build()?;
        Ok(Self {
            http,
            base: format!("{}/api/2.0/mlflow", url.trim_end_matches('/')),
        })
    }

    async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let text = self.post_raw(path, &body.to_string()).await?;
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// The answer's text, unparsed: timed reads stop the clock when the last byte arrived,
    /// not after the load generator has parsed it.
    async fn post_raw(&self, path: &str, body: &str) -> anyhow::Result<String> {
        let resp = self
            .http
            .post(format!("{}/{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            bail!("{path}: {status}: {text}");
        }
        Ok(text)
    }

    async fn get(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<usize> {
        let url = reqwest::Url::parse_with_params(&format!("{}/{path}", self.base), query)?;
        let resp = self.http.get(url).send().await?;
        let status = resp.status();
        let bytes = resp.bytes().await?;
        if !status.is_success() {
            bail!("{path}: {status}: {}", String::from_utf8_lossy(&bytes));
        }
        Ok(bytes.len())
    }

    async fn new_run(&self, name: &str) -> anyhow::Result<(String, String)> {
        let exp = self
            .post(
                "experiments/create",
                &json!({"name": format!("{name}-{}", stamp())}),
            )
            .await?;
        let exp_id = exp["experiment_id"]
            .as_str()
            .context("experiment id")?
            .to_string();
        let run = self
            .post(
                "runs/create",
                &json!({"experiment_id": exp_id, "start_time": stamp()}),
            )
            .await?;
        let run_id = run["run"]["info"]["run_id"]
            .as_str()
            .context("run id")?
            .to_string();
        Ok((exp_id, run_id))
    }

    /// Loads `points` points of `key` (steps 0..points) in batches of 1000.
    async fn load_points(&self, run_id: &str, key: &str, points: usize) -> anyhow::Result<()> {
        let mut start = 0;
        while start < points {
            let end = (start + 1000).min(points);
            let metrics: Vec<Value> = (start..end)
                .map(|i| json!({"key": key, "value": i as f64 * 0.5, "timestamp": 1_700_000_000_000i64 + i as i64, "step": i}))
                .collect();
            self.post(
                "runs/log-batch",
                &json!({"run_id": run_id, "metrics": metrics}),
            )
            .await?;
            start = end;
        }
        Ok(())
    }
}

fn stamp() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds")
}

fn report(workload: &str, extra: Value, hist: &Histogram<u64>, elapsed: f64, errors: u64) -> Value {
    let q = |p: f64| hist.value_at_quantile(p) as f64 / 1000.0;
    let mut out = json!({
        "workload": workload,
        "requests": hist.len(),
        "errors": errors,
        "seconds": elapsed,
        "rps": hist.len() as f64 / elapsed,
        "p50_ms": q(0.50),
        "p95_ms": q(0.95),
        "p99_ms": q(0.99),
    });
    if let (Value::Object(o), Value::Object(e)) = (&mut out, extra) {
        o.extend(e);
    }
    out
}

/// Closed loop on `connections` tasks for `seconds`; `body(task, i)` builds each request.
async fn closed_loop(
    api: Arc<Api>,
    path: &'static str,
    connections: usize,
    seconds: f64,
    body: Arc<dyn Fn(usize, u64) -> String + Send + Sync>,
) -> anyhow::Result<(Histogram<u64>, f64, u64)> {
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let url = format!("{}/{path}", api.base);
    let mut tasks = Vec::new();
    for task in 0..connections {
        let (api, url, body, errors) = (api.clone(), url.clone(), body.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut hist = new_histogram();
            let mut i = 0u64;
            while Instant::now() < deadline {
                let payload = body(task, i);
                let t = Instant::now();
                let ok = match api
                    .http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(payload)
                    .send()
                    .await
                {
                    Ok(resp) => {
                        let good = resp.status().is_success();
                        let _ = resp.bytes().await;
                        good
                    }
                    Err(_) => false,
                };
                if ok {
                    let _ = hist.record(t.elapsed().as_micros().max(1) as u64);
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
                i += 1;
            }
            hist
        }));
    }
    let mut total = new_histogram();
    for t in tasks {
        total.add(t.await?)?;
    }
    Ok((
        total,
        start.elapsed().as_secs_f64(),
        errors.load(Ordering::Relaxed),
    ))
}

/// Runs `requests` sequential GETs and records their latencies.
async fn timed_gets(
    api: &Api,
    path: &str,
    query: &[(&str, String)],
    requests: usize,
) -> anyhow::Result<(Histogram<u64>, f64, usize)> {
    api.get(path, query).await?; // warm-up
    let mut hist = new_histogram();
    let start = Instant::now();
    let mut bytes = 0;
    for _ in 0..requests {
        let t = Instant::now();
        bytes = api.get(path, query).await?;
        hist.record(t.elapsed().as_micros().max(1) as u64)?;
    }
    Ok((hist, start.elapsed().as_secs_f64(), bytes))
}

/// The floor server's answer to every request: the body parsed as JSON (a write server must do
/// at least that), then the few fields the workloads read back (experiment and run ids).
async fn floor_answer(uri: axum::http::Uri, body: bytes::Bytes) -> axum::response::Response {
    use axum::response::IntoResponse;
    if !body.is_empty() && serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_err() {
        return (axum::http::StatusCode::BAD_REQUEST, "{}").into_response();
    }
    let answer = match uri.path().rsplit("/mlflow/").next() {
        Some("experiments/create") => r#"{"experiment_id":"0"}"#,
        Some("runs/create") => r#"{"run":{"info":{"run_id":"floor"}}}"#,
        _ => "{}",
    };
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        answer,
    )
        .into_response()
}

async fn floor(url: &str) -> anyhow::Result<Value> {
    let addr = reqwest::Url::parse(url)?;
    let host = addr.host_str().context("the --url has no host")?;
    let port = addr.port().context("the --url has no port")?;
    let listener = tokio::net::TcpListener::bind((host, port)).await?;
    let app = axum::Router::new().fallback(floor_answer);
    axum::serve(listener, app).await?;
    Ok(Value::Null)
}

async fn run(cli: Cli) -> anyhow::Result<Value> {
    let api = Arc::new(Api::new(&cli.url)?);
    match cli.workload {
        Workload::Floor => floor(&cli.url).await,
        Workload::TraceIngest {
            connections,
            seconds,
            traces,
            spans,
        } => traces::ingest(&cli.url, connections, seconds, traces, spans).await,
        Workload::TraceSearch {
            traces,
            requests,
            load_connections,
        } => traces::search(&cli.url, traces, requests, load_connections).await,
        Workload::MonitorIngest {
            connections,
            seconds,
            batch,
        } => monitoring::ingest(&cli.url, connections, seconds, batch).await,
        Workload::MonitorWindow {
            events,
            requests,
            load_connections,
        } => monitoring::window(&cli.url, events, requests, load_connections).await,
        Workload::MonitorLag {
            rounds,
            interval_ms,
        } => monitoring::lag(&cli.url, rounds, interval_ms).await,
        Workload::LogMetric {
            connections,
            seconds,
        } => {
            let (_, run_id) = api.new_run("bench-log-metric").await?;
            let base = stamp();
            let body = Arc::new(move |task: usize, i: u64| {
                format!(
                    r#"{{"run_id":"{run_id}","key":"m{task}","value":{}.5,"timestamp":{},"step":{i}}}"#,
                    i,
                    base + i as i64
                )
            });
            let (hist, secs, errors) =
                closed_loop(api.clone(), "runs/log-metric", connections, seconds, body).await?;
            Ok(report(
                "log-metric",
                json!({"connections": connections}),
                &hist,
                secs,
                errors,
            ))
        }
        Workload::LogBatch {
            connections,
            seconds,
            batch,
        } => {
            let (_, run_id) = api.new_run("bench-log-batch").await?;
            let base = stamp();
            let body = Arc::new(move |task: usize, i: u64| {
                let mut s = String::with_capacity(batch * 80);
                s.push_str(&format!(r#"{{"run_id":"{run_id}","metrics":["#));
                for j in 0..batch {
                    let step = i * batch as u64 + j as u64;
                    if j > 0 {
                        s.push(',');
                    }
                    s.push_str(&format!(
                        r#"{{"key":"b{task}","value":{step}.25,"timestamp":{},"step":{step}}}"#,
                        base + step as i64
                    ));
                }
                s.push_str("]}");
                s
            });
            let (hist, secs, errors) =
                closed_loop(api.clone(), "runs/log-batch", connections, seconds, body).await?;
            let points = hist.len() as f64 * batch as f64 / secs;
            Ok(report(
                "log-batch",
                json!({"connections": connections, "batch": batch, "points_per_s": points}),
                &hist,
                secs,
                errors,
            ))
        }
        Workload::History { points, requests } => {
            let (_, run_id) = api.new_run("bench-history").await?;
            api.load_points(&run_id, "loss", points).await?;
            let q = [
                ("run_id", run_id.clone()),
                ("metric_key", "loss".to_string()),
            ];
            let (hist, secs, bytes) = timed_gets(&api, "metrics/get-history", &q, requests).await?;
            Ok(report(
                "get-history",
                json!({"points": points, "bytes": bytes}),
                &hist,
                secs,
                0,
            ))
        }
        Workload::BulkInterval {
            points,
            max_results,
            requests,
        } => {
            let (_, run_id) = api.new_run("bench-interval").await?;
            api.load_points(&run_id, "loss", points).await?;
            let q = [
                ("run_ids", run_id.clone()),
                ("metric_key", "loss".to_string()),
                ("max_results", max_results.to_string()),
            ];
            let (hist, secs, bytes) =
                timed_gets(&api, "metrics/get-history-bulk-interval", &q, requests).await?;
            Ok(report(
                "get-history-bulk-interval",
                json!({"points": points, "max_results": max_results, "bytes": bytes}),
                &hist,
                secs,
                0,
            ))
        }
        Workload::Search {
            runs,
            requests,
            load_connections,
        } => {
            let exp = api
                .post(
                    "experiments/create",
                    &json!({"name": format!("bench-search-{}", stamp())}),
                )
                .await?;
            let exp_id = exp["experiment_id"]
                .as_str()
                .context("experiment id")?
                .to_string();
            let load_start = Instant::now();
            let next = Arc::new(AtomicU64::new(0));
            let mut tasks = Vec::new();
            for _ in 0..load_connections {
                let (api, exp_id, next) = (api.clone(), exp_id.clone(), next.clone());
                tasks.push(tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                        if i >= runs {
                            return anyhow::Ok(());
                        }
                        let run = api
                            .post("runs/create", &json!({"experiment_id": exp_id, "start_time": 1_700_000_000_000i64 + i as i64}))
                            .await?;
                        let run_id = run["run"]["info"]["run_id"].as_str().context("run id")?.to_string();
                        let ts = 1_700_000_000_000i64 + i as i64;
                        let metrics: Vec<Value> = (0..20)
                            .map(|m| json!({"key": format!("m{m}"), "value": ((i * 7919 + m * 104_729) % 1000) as f64 / 1000.0, "timestamp": ts, "step": 0}))
                            .collect();
                        let params: Vec<Value> = (0..20)
                            .map(|p| json!({"key": format!("p{p}"), "value": format!("v{}", (i + p) % 10)}))
                            .collect();
                        let tags: Vec<Value> = (0..10)
                            .map(|t| json!({"key": format!("t{t}"), "value": format!("tag{}", (i * t) % 5)}))
                            .collect();
                        api.post(
                            "runs/log-batch",
                            &json!({"run_id": run_id, "metrics": metrics, "params": params, "tags": tags}),
                        )
                        .await?;
                    }
                }));
            }
            for t in tasks {
                t.await??;
            }
            let load_secs = load_start.elapsed().as_secs_f64();
            let body = json!({
                "experiment_ids": [exp_id],
                "filter": "metrics.m0 > 0.5 and params.p0 = 'v1'",
                "order_by": ["metrics.m1 DESC"],
                "max_results": 1000,
            });
            let body = body.to_string();
            api.post_raw("runs/search", &body).await?; // warm-up
            let mut hist = new_histogram();
            let start = Instant::now();
            let mut found = 0;
            for _ in 0..requests {
                let t = Instant::now();
                let text = api.post_raw("runs/search", &body).await?;
                hist.record(t.elapsed().as_micros().max(1) as u64)?;
                let v: Value = serde_json::from_str(&text)?;
                found = v["runs"].as_array().map(Vec::len).unwrap_or(0);
            }
            Ok(report(
                "search-runs",
                json!({"runs": runs, "matched_page": found, "load_seconds": load_secs}),
                &hist,
                start.elapsed().as_secs_f64(),
                0,
            ))
        }
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(v) => {
            println!("{v}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
