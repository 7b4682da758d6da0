//! Monitors' alert notifications. Each alert change to `firing` or `resolved` becomes one
//! delivery per target of its monitor's `notify:` list, queued in the transaction that marks
//! the change notified (so once, across replicas); the request is shaped per target at send
//! time: plumb's JSON (the MLflow webhook envelope, signed), a Slack message, or an
//! Alertmanager `POST /api/v2/alerts`. Firing alerts are pushed to Alertmanager again every
//! minute by the monitoring leader, with `endsAt` a few minutes ahead, as Prometheus does, so
//! Alertmanager does not resolve them on its own while they still fire.

use std::time::{Duration, Instant};

use plumb_core::now_millis;
use plumb_monitor::spec::{MonitorSpec, NotifyKind, NotifyTarget};
use plumb_store::monitoring::{AlertChange, AlertState};
use plumb_store::webhooks::{Delivery, NewDelivery, Target};
use plumb_store::Store;
use serde_json::{json, Value};

use crate::deliver::{envelope, iso};
use crate::Config;

/// The entity of alert notifications in plumb's envelope (not an MLflow webhook entity).
pub const ALERT_ENTITY: &str = "alert";
/// How often firing alerts are pushed to Alertmanager again.
const RESEND: Duration = Duration::from_secs(60);
/// How far ahead a firing alert's `endsAt` is (4 resend periods, as Prometheus).
const ENDS_AHEAD_MS: i64 = 4 * 60_000;

/// A request to make for a notification delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub url: String,
    pub body: String,
    pub secret: Option<String>,
}

/// Turns alert changes into deliveries; remembers only when it last re-sent firing alerts.
#[derive(Debug, Default)]
pub struct Notifier {
    last_resend: Option<Instant>,
}

impl Notifier {
    pub async fn round(&mut self, config: &Config, store: &dyn Store) -> plumb_core::Result<()> {
        let now = now_millis();
        for change in store.pending_notices(100).await? {
            let deliveries = if matches!(change.to.as_str(), "firing" | "resolved") {
                deliveries_for(config, store, &change).await?
            } else {
                Vec::new()
            };
            store.settle_notice(change.seq, deliveries, now).await?;
        }
        if self.last_resend.is_none_or(|t| t.elapsed() >= RESEND) {
            self.last_resend = Some(Instant::now());
            if store.lead().await? {
                resend_firing(config, store).await?;
            }
        }
        Ok(())
    }
}

async fn spec_of(store: &dyn Store, monitor: &str) -> plumb_core::Result<Option<MonitorSpec>> {
    match store.get_monitor(monitor).await {
        Ok(m) => Ok(serde_json::from_str(&m.spec)
            .ok()
            .and_then(|v| MonitorSpec::from_json(v).ok())),
        Err(e) if e.code == plumb_core::ErrorCode::ResourceDoesNotExist => Ok(None),
        Err(e) => Err(e),
    }
}

fn delivery(
    monitor: &str,
    target: &NotifyTarget,
    action: &str,
    data: &Value,
    at_ms: i64,
) -> NewDelivery {
    NewDelivery {
        target: Target::Notify {
            monitor: monitor.to_string(),
            target: serde_json::to_string(target).unwrap_or_default(),
        },
        entity: ALERT_ENTITY.into(),
        action: action.to_string(),
        data: data.to_string(),
        created_ms: at_ms,
    }
}

async fn deliveries_for(
    config: &Config,
    store: &dyn Store,
    change: &AlertChange,
) -> plumb_core::Result<Vec<NewDelivery>> {
    let Some(spec) = spec_of(store, &change.monitor).await? else {
        return Ok(Vec::new());
    };
    if spec.notify.is_empty() {
        return Ok(Vec::new());
    }
    let alert = Alert {
        monitor: &change.monitor,
        rule: &change.rule,
        state: &change.to,
        previous_state: Some(&change.from),
        severity: &change.severity,
        value: change.value,
        baseline: change.baseline,
        message: &change.message,
        at_ms: change.at_ms,
    };
    let data = alert_data(config, store, &spec, &alert).await;
    Ok(spec
        .notify
        .iter()
        .map(|t| delivery(&change.monitor, t, &change.to, &data, change.at_ms))
        .collect())
}

async fn resend_firing(config: &Config, store: &dyn Store) -> plumb_core::Result<()> {
    let firing: Vec<AlertState> = store
        .alert_states(None)
        .await?
        .into_iter()
        .filter(|s| s.state == "firing")
        .collect();
    let mut queued = Vec::new();
    for s in &firing {
        let Some(spec) = spec_of(store, &s.monitor).await? else {
            continue;
        };
        let targets: Vec<&NotifyTarget> = spec
            .notify
            .iter()
            .filter(|t| {
                t.kind_and_url()
                    .is_some_and(|(k, _)| k == NotifyKind::Alertmanager)
            })
            .collect();
        if targets.is_empty() {
            continue;
        }
        let alert = Alert {
            monitor: &s.monitor,
            rule: &s.rule,
            state: "firing",
            previous_state: None,
            severity: &s.severity,
            value: s.value,
            baseline: s.baseline,
            message: &s.message,
            at_ms: s.fired_ms.or(s.active_ms).unwrap_or(s.evaluated_ms),
        };
        let data = alert_data(config, store, &spec, &alert).await;
        for t in targets {
            queued.push(delivery(&s.monitor, t, "firing", &data, now_millis()));
        }
    }
    if !queued.is_empty() {
        store.enqueue_deliveries(queued).await?;
    }
    Ok(())
}

struct Alert<'a> {
    monitor: &'a str,
    rule: &'a str,
    state: &'a str,
    previous_state: Option<&'a str>,
    severity: &'a str,
    value: Option<f64>,
    baseline: Option<f64>,
    message: &'a str,
    at_ms: i64,
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The model version a monitor watches now (an alias is resolved), as (name, version).
async fn watched_version(store: &dyn Store, model: Option<&str>) -> Option<(String, i64)> {
    let rest = model?.strip_prefix("models:/")?;
    if let Some((name, alias)) = rest.split_once('@') {
        let v = store.get_version_by_alias(name, alias).await.ok()?;
        return Some((name.to_string(), v.version));
    }
    let (name, version) = rest.rsplit_once('/')?;
    Some((name.to_string(), version.parse().ok()?))
}

/// The documented `data` of an alert notification (README, "Alert notifications").
async fn alert_data(
    config: &Config,
    store: &dyn Store,
    spec: &MonitorSpec,
    a: &Alert<'_>,
) -> Value {
    let base = config
        .external_url
        .as_deref()
        .unwrap_or("")
        .trim_end_matches('/');
    let rule = spec.rules.iter().find(|r| r.name == a.rule);
    let version = watched_version(store, spec.model.as_deref()).await;
    let mut links = json!({
        "monitor": format!("{base}/api/2.0/plumb/monitors/{}", enc(a.monitor)),
        "alerts": format!("{base}/api/2.0/plumb/alerts/history?monitor={}", enc(a.monitor)),
    });
    if let Some((name, v)) = &version {
        links["model_version"] = json!(format!(
            "{base}/api/2.0/mlflow/model-versions/get?name={}&version={v}",
            enc(name)
        ));
    }
    json!({
        "monitor": a.monitor,
        "rule": a.rule,
        "state": a.state,
        "previous_state": a.previous_state,
        "severity": a.severity,
        "value": a.value,
        "baseline": a.baseline,
        "message": a.message,
        "at": iso(a.at_ms),
        "at_ms": a.at_ms,
        "metric": rule.map(|r| r.metric.clone()),
        "window": rule.map(|r| r.window.clone()),
        "condition": rule.and_then(|r| serde_json::to_value(r).ok()),
        "model": spec.model,
        "model_version": version.map(|(name, v)| json!({"name": name, "version": v.to_string()})),
        "labels": spec.labels,
        "links": links,
    })
}

fn number(v: &Value) -> String {
    v.as_f64()
        .map(|f| {
            format!("{f:.4}")
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_string()
        })
        .unwrap_or_else(|| "n/a".into())
}

/// The request of a notification delivery, shaped for its target now (Alertmanager's `endsAt`
/// is relative to the moment of sending).
pub fn request(target: &str, d: &Delivery) -> Result<Request, String> {
    let target: NotifyTarget =
        serde_json::from_str(target).map_err(|e| format!("stored target is not valid: {e}"))?;
    let (kind, url) = target.kind_and_url().ok_or("stored target names no URL")?;
    let data: Value =
        serde_json::from_str(&d.data).map_err(|e| format!("stored data is not JSON: {e}"))?;
    let text = |k: &str| data[k].as_str().unwrap_or("").to_string();
    match kind {
        NotifyKind::Webhook => {
            let secret = match &target.secret_env {
                Some(var) => Some(std::env::var(var).map_err(|_| {
                    format!("{var} is not set on this server: the notification cannot be signed")
                })?),
                None => None,
            };
            let body = envelope(ALERT_ENTITY, &d.action, d.created_ms, data);
            Ok(Request {
                url: url.to_string(),
                body: body.to_string(),
                secret,
            })
        }
        NotifyKind::Slack => {
            let icon = if d.action == "firing" {
                ":rotating_light:"
            } else {
                ":white_check_mark:"
            };
            let mut line = format!(
                "{icon} *{}* {} / {} ({})",
                d.action.to_uppercase(),
                text("monitor"),
                text("rule"),
                text("severity")
            );
            line.push_str(&format!(
                "\n`{}` over {} = {} (baseline {})",
                text("metric"),
                text("window"),
                number(&data["value"]),
                number(&data["baseline"])
            ));
            if !text("message").is_empty() {
                line.push_str(&format!("\n{}", text("message")));
            }
            let link = data["links"]["monitor"].as_str().unwrap_or("");
            if link.starts_with("http") {
                line.push_str(&format!("\n<{link}|monitor>"));
            }
            Ok(Request {
                url: url.to_string(),
                body: json!({"text": line}).to_string(),
                secret: None,
            })
        }
        NotifyKind::Alertmanager => {
            let ends = if d.action == "resolved" {
                data["at_ms"].as_i64().unwrap_or(d.created_ms)
            } else {
                now_millis() + ENDS_AHEAD_MS
            };
            let mut labels = serde_json::Map::new();
            if let Some(extra) = data["labels"].as_object() {
                labels.extend(extra.clone());
            }
            labels.insert("alertname".into(), json!(text("rule")));
            labels.insert("monitor".into(), json!(text("monitor")));
            labels.insert("severity".into(), json!(text("severity")));
            let mut alert = json!({
                "labels": labels,
                "annotations": {
                    "summary": text("message"),
                    "metric": text("metric"),
                    "window": text("window"),
                    "value": number(&data["value"]),
                    "baseline": number(&data["baseline"]),
                },
                "startsAt": text("at"),
                "endsAt": iso(ends),
            });
            let link = data["links"]["monitor"].as_str().unwrap_or("");
            if link.starts_with("http") {
                alert["generatorURL"] = json!(link);
            }
            Ok(Request {
                url: format!("{}/api/v2/alerts", url.trim_end_matches('/')),
                body: json!([alert]).to_string(),
                secret: None,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(action: &str, target: &str) -> Delivery {
        Delivery {
            delivery_id: "d1".into(),
            target: Target::Notify {
                monitor: "iris".into(),
                target: target.into(),
            },
            entity: ALERT_ENTITY.into(),
            action: action.into(),
            data: json!({
                "monitor": "iris", "rule": "acc", "severity": "critical", "state": action,
                "value": 0.81234, "baseline": 0.95, "message": "accuracy dropped",
                "metric": "accuracy", "window": "1h", "at": iso(1_700_000_000_000),
                "at_ms": 1_700_000_000_000i64, "labels": {"team": "ml"},
                "links": {"monitor": "https://plumb.example/api/2.0/plumb/monitors/iris"},
            })
            .to_string(),
            created_ms: 1_700_000_000_000,
            state: "pending".into(),
            attempts: 1,
            next_ms: 0,
            status_code: None,
            error: None,
            done_ms: None,
        }
    }

    #[test]
    fn alertmanager_gets_labels_and_resolved_ends_at_the_change() {
        let target = r#"{"alertmanager": "http://am:9093/"}"#;
        let r = request(target, &delivery("resolved", target)).expect("request");
        assert_eq!(r.url, "http://am:9093/api/v2/alerts");
        let body: Value = serde_json::from_str(&r.body).expect("JSON");
        assert_eq!(
            body[0]["labels"],
            json!({"alertname": "acc", "monitor": "iris", "severity": "critical", "team": "ml"})
        );
        assert_eq!(body[0]["endsAt"], iso(1_700_000_000_000));
        assert_eq!(body[0]["annotations"]["value"], "0.8123");
        assert_eq!(
            body[0]["generatorURL"],
            "https://plumb.example/api/2.0/plumb/monitors/iris"
        );
        let firing = request(target, &delivery("firing", target)).expect("request");
        let body: Value = serde_json::from_str(&firing.body).expect("JSON");
        let ends = body[0]["endsAt"].as_str().expect("endsAt").to_string();
        assert!(
            ends > iso(now_millis()),
            "a firing alert ends in the future: {ends}"
        );
    }

    #[test]
    fn slack_and_plumb_bodies() {
        let target = r#"{"slack": "https://hooks.slack.com/services/T/B/X"}"#;
        let r = request(target, &delivery("firing", target)).expect("request");
        let text = serde_json::from_str::<Value>(&r.body).expect("JSON")["text"]
            .as_str()
            .expect("text")
            .to_string();
        assert!(text.contains("*FIRING* iris / acc (critical)"), "{text}");
        assert!(text.contains("= 0.8123 (baseline 0.95)"), "{text}");
        assert!(text.contains("<https://plumb.example/api/2.0/plumb/monitors/iris|monitor>"));
        assert_eq!(r.secret, None);

        let target = r#"{"webhook": "https://hooks.example/x", "secret_env": "PLUMB_NOTIFY_SECRET_UNSET_IN_TESTS"}"#;
        let e = request(target, &delivery("firing", target)).expect_err("no secret");
        assert!(
            e.contains("PLUMB_NOTIFY_SECRET_UNSET_IN_TESTS is not set"),
            "{e}"
        );
        let target = r#"{"webhook": "https://hooks.example/x"}"#;
        let r = request(target, &delivery("resolved", target)).expect("request");
        let body: Value = serde_json::from_str(&r.body).expect("JSON");
        assert_eq!(
            (body["entity"].as_str(), body["action"].as_str()),
            (Some("alert"), Some("resolved"))
        );
        assert_eq!(body["data"]["message"], "accuracy dropped");
        assert!(request("{}", &delivery("firing", "{}")).is_err());
    }
}
