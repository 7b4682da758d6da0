//! The server's own Prometheus metrics at `GET /metrics` (text format 0.0.4): requests by route,
//! method and status, and their latency. Per process by design (Prometheus scrapes each replica
//! and sums); the label values come from the route table, never from the raw request, so a
//! client sending random paths or methods cannot grow the series without bound.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use plumb_store::Store;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    /// The route's pattern (`/api/2.0/mlflow/runs/log-batch`), or `unmatched`.
    route: String,
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

/// Request latency buckets, in seconds (100 us to 10 s).
const LATENCY_BUCKETS: [f64; 15] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    10.0,
];

/// The metrics of one server (one router).
pub struct Telemetry {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
}

impl Default for Telemetry {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("plumb");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route pattern, method and status",
            requests.clone(),
        );
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(LATENCY_BUCKETS)) as fn() -> Histogram,
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's head read to its answer's head, by route pattern and method",
            latency.clone(),
        );
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register("build_info", "plumb's version (always 1)", build);
        Self {
            registry,
            requests,
            latency,
        }
    }
}

impl Telemetry {
    /// The text exposition of every metric: this process's own, then the monitors' values
    /// and alerts as the database holds them (the same on every replica).
    pub async fn render(&self, store: &dyn Store) -> Response {
        let mut body = String::new();
        if let Err(e) =
            prometheus_client::encoding::prometheus_text::encode(&mut body, &self.registry)
        {
            tracing::error!(error = %e, "encoding /metrics failed");
        }
        monitoring(store, &mut body).await;
        (
            [(
                header::CONTENT_TYPE,
                prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            )],
            body,
        )
            .into_response()
    }
}

/// A label value in the text format: backslash, double quote and newline escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        format!("{v}")
    }
}

/// Each rule's latest windowed value, baseline and samples, and `ALERTS` for pending and
/// firing alerts with Prometheus' own labels (`alertname`, `alertstate`) plus `monitor` and
/// `severity`. `plumb_monitoring_up` says whether the database could be read.
async fn monitoring(store: &dyn Store, out: &mut String) {
    use std::fmt::Write;
    let read = async {
        let monitors = store.list_monitors().await?;
        let states = store.alert_states(None).await?;
        Ok::<_, plumb_core::Error>((monitors, states))
    };
    let (monitors, states) = match read.await {
        Ok(x) => x,
        Err(e) => {
            tracing::warn!(error = %e.message, "/metrics: monitoring state unreadable");
            out.push_str("# HELP plumb_monitoring_up Whether monitoring state could be read.\n");
            out.push_str("# TYPE plumb_monitoring_up gauge\nplumb_monitoring_up 0\n");
            return;
        }
    };
    let mut rules = std::collections::HashMap::new();
    for m in monitors {
        if let Ok(l) = plumb_monitor::engine::Loaded::new(m) {
            for r in l.spec.rules {
                rules.insert(
                    (l.record.name.clone(), r.name.clone()),
                    (r.metric, r.window),
                );
            }
        }
    }
    out.push_str("# HELP plumb_monitoring_up Whether monitoring state could be read.\n");
    out.push_str("# TYPE plumb_monitoring_up gauge\nplumb_monitoring_up 1\n");
    let series = [
        ("plumb_monitor_value", "A rule's latest windowed value."),
        (
            "plumb_monitor_baseline",
            "The baseline a rule compares with.",
        ),
        (
            "plumb_monitor_samples",
            "Samples in a rule's latest window.",
        ),
    ];
    for (i, (name, help)) in series.iter().enumerate() {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for s in &states {
            let Some((metric, window)) = rules.get(&(s.monitor.clone(), s.rule.clone())) else {
                continue;
            };
            let v = match i {
                0 => s.value,
                1 => s.baseline,
                _ => Some(s.samples as f64),
            };
            if let Some(v) = v {
                let _ = writeln!(
                    out,
                    "{name}{{monitor=\"{}\",rule=\"{}\",metric=\"{}\",window=\"{}\"}} {}",
                    label(&s.monitor),
                    label(&s.rule),
                    label(metric),
                    label(window),
                    number(v)
                );
            }
        }
    }
    out.push_str("# HELP ALERTS Alerts pending or firing, as Prometheus exposes its own.\n");
    out.push_str("# TYPE ALERTS gauge\n");
    for s in states
        .iter()
        .filter(|s| s.state == "pending" || s.state == "firing")
    {
        let _ = writeln!(
            out,
            "ALERTS{{alertname=\"{}\",alertstate=\"{}\",monitor=\"{}\",severity=\"{}\"}} 1",
            label(&s.rule),
            s.state,
            label(&s.monitor),
            label(&s.severity)
        );
    }
}

/// A bounded method label: the standard methods by name, anything else as `other`.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Middleware: counts and times every request by its matched route.
pub async fn record(State(t): State<Arc<Telemetry>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = method_label(req.method());
    let start = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    t.latency
        .get_or_create(&RouteLabels {
            route: route.clone(),
            method,
        })
        .observe(start.elapsed().as_secs_f64());
    t.requests
        .get_or_create(&RequestLabels {
            route,
            method,
            status,
        })
        .inc();
    resp
}
