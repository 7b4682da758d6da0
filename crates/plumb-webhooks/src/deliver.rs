//! The outbox worker: every server claims due deliveries (a lease makes one attempt at a time
//! per delivery across replicas), sends each as a signed POST through a client that follows no
//! redirect, uses no proxy and resolves through [`Guard`], keeps at most 64 KiB of an answer,
//! and records the outcome: delivered, retried later with exponential backoff (429, 5xx,
//! network errors, honouring `Retry-After`), or failed.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use plumb_core::now_millis;
use plumb_store::webhooks::{Claimed, Delivery, Outcome, Target, Webhook};
use plumb_store::Store;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use serde_json::{json, Value};

use crate::events;
use crate::notify;
use crate::policy::{host_of, is_public, Guard};
use crate::sign::{signature, DELIVERY_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::Config;

/// The most of an answer's body kept (test results, the delivery log).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// The most of an answer kept in the delivery log's error text.
const LOG_BODY_CHARS: usize = 500;
/// Deliveries claimed per round by one server.
const CLAIM: i64 = 32;
/// Attempts in flight at once per server (a slow receiver holds one, not the worker).
const IN_FLIGHT: usize = 64;

/// What a webhook test returned (MLflow's `WebhookTestResult`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TestResult {
    pub success: bool,
    pub response_status: Option<u16>,
    pub response_body: Option<String>,
    pub error_message: Option<String>,
}

/// How one POST went.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub status: Option<u16>,
    pub body: String,
    /// A failure before an answer (refused address, timeout, connection), or a body cut short.
    pub error: Option<String>,
    pub retry_after: Option<Duration>,
    /// Whether the failure is permanent (the address policy refused it).
    pub refused: bool,
}

/// An ISO 8601 UTC timestamp with milliseconds, as the payloads' `timestamp`.
pub fn iso(ms: i64) -> String {
    let t = SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}

/// The MLflow envelope every webhook body has (alert notifications too).
pub fn envelope(entity: &str, action: &str, created_ms: i64, data: Value) -> Value {
    json!({"entity": entity, "action": action, "timestamp": iso(created_ms), "data": data})
}

/// Sends deliveries; cheap to clone.
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    config: Arc<Config>,
    in_flight: Arc<tokio::sync::Semaphore>,
}

impl Sender {
    pub fn new(config: Config) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("plumb/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(Guard {
                allow_private_ips: config.policy.allow_private_ips,
            }))
            .build()
            .map_err(|e| format!("cannot build the webhook client: {e}"))?;
        Ok(Self {
            client,
            config: Arc::new(config),
            in_flight: Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT)),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// One signed POST of `body` to `url`. The URL is checked again first (schemes, and an
    /// address literal's kind, which no resolver sees); names are checked by the resolver.
    pub async fn post(
        &self,
        url: &str,
        body: String,
        delivery_id: &str,
        secret: Option<&str>,
    ) -> Attempt {
        let refused = |error: String| Attempt {
            status: None,
            body: String::new(),
            error: Some(error),
            retry_after: None,
            refused: true,
        };
        let parsed = match self.config.policy.check_syntax(url, "Webhook URL") {
            Ok(u) => u,
            Err(e) => return refused(e),
        };
        if !self.config.policy.allow_private_ips {
            if let Ok(ip) = host_of(&parsed).parse::<std::net::IpAddr>() {
                if !is_public(ip) {
                    return refused(format!(
                        "{ip} is not a public address: not delivered \
                         (MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS allows it)"
                    ));
                }
            }
        }
        let timestamp = (now_millis() / 1000).to_string();
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let header = |v: &str| HeaderValue::from_str(v).unwrap_or(HeaderValue::from_static(""));
        headers.insert(DELIVERY_ID_HEADER, header(delivery_id));
        headers.insert(TIMESTAMP_HEADER, header(&timestamp));
        if let Some(secret) = secret.filter(|s| !s.is_empty()) {
            let sig = signature(secret, delivery_id, &timestamp, &body);
            headers.insert(SIGNATURE_HEADER, header(&sig));
        }
        let sent = self
            .client
            .post(parsed)
            .headers(headers)
            .body(body)
            .send()
            .await;
        let mut response = match sent {
            Ok(r) => r,
            Err(e) => {
                let refused_by_guard = error_chain(&e).contains("non-public address");
                return Attempt {
                    status: None,
                    body: String::new(),
                    error: Some(error_chain(&e)),
                    retry_after: None,
                    refused: refused_by_guard,
                };
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let mut kept = Vec::new();
        let mut error = None;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MAX_RESPONSE_BYTES - kept.len();
                    kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if kept.len() >= MAX_RESPONSE_BYTES {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    error = Some(format!("reading the answer: {}", error_chain(&e)));
                    break;
                }
            }
        }
        Attempt {
            status: Some(status),
            body: String::from_utf8_lossy(&kept).into_owned(),
            error,
            retry_after,
            refused: false,
        }
    }

    /// MLflow's `test`: a sample of `event` (default: the webhook's first) sent now, outside the
    /// outbox, answered with what the receiver said.
    pub async fn test(&self, webhook: &Webhook, event: Option<(String, String)>) -> TestResult {
        let Some((entity, action)) = event.or_else(|| webhook.events.first().cloned()) else {
            return TestResult {
                error_message: Some("the webhook has no events".into()),
                ..TestResult::default()
            };
        };
        let secret = match self.open_secret(webhook) {
            Ok(s) => s,
            Err(e) => {
                return TestResult {
                    error_message: Some(format!("Failed to test webhook: {e}")),
                    ..TestResult::default()
                }
            }
        };
        let body = envelope(
            &entity,
            &action,
            now_millis(),
            events::example(&entity, &action),
        );
        let id = uuid::Uuid::new_v4().to_string();
        let a = self
            .post(&webhook.url, body.to_string(), &id, secret.as_deref())
            .await;
        match a.status {
            Some(status) => TestResult {
                success: status < 400,
                response_status: Some(status),
                response_body: Some(a.body),
                error_message: None,
            },
            None => TestResult {
                error_message: Some(format!(
                    "Failed to test webhook: {}",
                    a.error.unwrap_or_default()
                )),
                ..TestResult::default()
            },
        }
    }

    fn open_secret(&self, webhook: &Webhook) -> Result<Option<String>, String> {
        let Some(sealed) = &webhook.secret else {
            return Ok(None);
        };
        let key = self.config.secrets.as_ref().ok_or(
            "the webhook has a secret but MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY is not set",
        )?;
        key.open(sealed).map(Some).ok_or_else(|| {
            "the webhook's secret was sealed with another MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"
                .to_string()
        })
    }

    /// The delay before attempt `attempts + 1`: the backoff doubled per attempt made, or the
    /// receiver's `Retry-After`, at most `backoff_max`.
    fn delay(&self, attempts: i64, retry_after: Option<Duration>) -> Duration {
        let doubled = self
            .config
            .backoff
            .saturating_mul(1u32 << (attempts.clamp(1, 16) - 1));
        retry_after.unwrap_or(doubled).min(self.config.backoff_max)
    }

    /// How an attempt ends in the log.
    fn outcome(&self, d: &Delivery, a: Attempt, now_ms: i64) -> Outcome {
        let code = a.status.map(i64::from);
        if let Some(s) = a.status.filter(|s| (200..300).contains(s)) {
            return Outcome::Delivered {
                status_code: i64::from(s),
            };
        }
        let error = match (a.status, a.error) {
            (_, Some(e)) => e,
            (Some(s), None) => {
                let body: String = a.body.chars().take(LOG_BODY_CHARS).collect();
                format!("HTTP {s}: {body}")
            }
            (None, None) => "no answer".into(),
        };
        let transient = match a.status {
            Some(s) => s == 429 || s >= 500,
            None => !a.refused,
        };
        let attempts_left = d.attempts <= i64::from(self.config.max_retries);
        if transient && attempts_left {
            let delay = self.delay(d.attempts, a.retry_after);
            Outcome::Retry {
                status_code: code,
                error,
                next_ms: now_ms + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 4),
            }
        } else {
            Outcome::Failed {
                status_code: code,
                error,
            }
        }
    }

    /// One attempt of a claimed delivery, recorded.
    pub async fn attempt(&self, store: &dyn Store, claimed: Claimed) -> plumb_core::Result<()> {
        let d = claimed.delivery;
        let failed = |error: String| Outcome::Failed {
            status_code: None,
            error,
        };
        let outcome = match &d.target {
            Target::Webhook(id) => match &claimed.webhook {
                None => failed(format!("webhook {id} was deleted")),
                Some(w) if w.status != "ACTIVE" => failed(format!("webhook {id} is disabled")),
                Some(w) => match (self.open_secret(w), serde_json::from_str(&d.data)) {
                    (Err(e), _) => failed(e),
                    (_, Err(e)) => failed(format!("stored data is not JSON: {e}")),
                    (Ok(secret), Ok(data)) => {
                        let body = envelope(&d.entity, &d.action, d.created_ms, data);
                        let a = self
                            .post(&w.url, body.to_string(), &d.delivery_id, secret.as_deref())
                            .await;
                        self.outcome(&d, a, now_millis())
                    }
                },
            },
            Target::Notify { target, .. } => match notify::request(target, &d) {
                Err(e) => failed(e),
                Ok(req) => {
                    let a = self
                        .post(&req.url, req.body, &d.delivery_id, req.secret.as_deref())
                        .await;
                    self.outcome(&d, a, now_millis())
                }
            },
        };
        match &outcome {
            Outcome::Delivered { status_code } => {
                tracing::debug!(delivery = %d.delivery_id, status_code, "delivered")
            }
            Outcome::Retry { error, .. } => {
                tracing::info!(delivery = %d.delivery_id, attempts = d.attempts, %error, "delivery will be retried")
            }
            Outcome::Failed { error, .. } => {
                tracing::warn!(delivery = %d.delivery_id, attempts = d.attempts, %error, "delivery failed")
            }
        }
        store
            .finish_delivery(&d.delivery_id, outcome, now_millis())
            .await
    }

    async fn claim(&self, store: &Arc<dyn Store>, limit: i64) -> plumb_core::Result<Vec<Claimed>> {
        let now = now_millis();
        let lease = self.config.timeout.saturating_mul(2) + Duration::from_secs(10);
        let lease_until = now + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 4);
        store.claim_deliveries(now, lease_until, limit).await
    }

    /// Claims due deliveries and attempts them concurrently, waiting for the attempts; returns
    /// how many were attempted.
    pub async fn round(&self, store: &Arc<dyn Store>) -> plumb_core::Result<usize> {
        let claimed = self.claim(store, CLAIM).await?;
        let n = claimed.len();
        let mut set = tokio::task::JoinSet::new();
        for c in claimed {
            let (sender, store) = (self.clone(), Arc::clone(store));
            set.spawn(async move { sender.attempt(store.as_ref(), c).await });
        }
        while let Some(done) = set.join_next().await {
            report(done);
        }
        Ok(n)
    }

    /// Claims as many due deliveries as there is room in flight for and starts their attempts
    /// without waiting for them; returns how many were started.
    async fn dispatch(&self, store: &Arc<dyn Store>) -> plumb_core::Result<usize> {
        let room = self.in_flight.available_permits().min(CLAIM as usize);
        if room == 0 {
            return Ok(0);
        }
        let claimed = self.claim(store, room as i64).await?;
        let n = claimed.len();
        for c in claimed {
            let Ok(permit) = Arc::clone(&self.in_flight).acquire_owned().await else {
                break;
            };
            let (sender, store) = (self.clone(), Arc::clone(store));
            tokio::spawn(async move {
                let _permit = permit;
                report(Ok(sender.attempt(store.as_ref(), c).await));
            });
        }
        Ok(n)
    }

    /// The background loop of every server: turn alert changes into notifications, send what
    /// is due, prune the log now and then.
    pub fn spawn(self, store: Arc<dyn Store>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut rounds: u64 = 0;
            let mut notifier = notify::Notifier::default();
            loop {
                if let Err(e) = notifier.round(&self.config, store.as_ref()).await {
                    tracing::warn!(error = %e.message, "turning alerts into notifications failed");
                }
                match self.dispatch(&store).await {
                    // More may be due: go again at once.
                    Ok(n) if n as i64 == CLAIM => continue,
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e.message, "claiming deliveries failed"),
                }
                rounds += 1;
                if rounds % 7200 == 1 {
                    let keep = i64::try_from(self.config.keep.as_millis()).unwrap_or(i64::MAX / 4);
                    if let Err(e) = store.prune_deliveries(now_millis() - keep).await {
                        tracing::warn!(error = %e.message, "pruning the delivery log failed");
                    }
                }
                tokio::time::sleep(self.config.poll).await;
            }
        })
    }
}

fn report(done: Result<plumb_core::Result<()>, tokio::task::JoinError>) {
    match done {
        Ok(Err(e)) => tracing::warn!(error = %e.message, "recording a delivery failed"),
        Err(e) => tracing::warn!(error = %e, "a delivery task stopped"),
        Ok(Ok(())) => {}
    }
}

/// An error with its causes, one line.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let s = Sender::new(Config::default()).expect("client");
        let secs = |n| s.delay(n, None).as_secs();
        assert_eq!(
            (secs(1), secs(2), secs(3), secs(7), secs(30)),
            (1, 2, 4, 60, 60)
        );
        assert_eq!(s.delay(1, Some(Duration::from_secs(5))).as_secs(), 5);
        assert_eq!(s.delay(1, Some(Duration::from_secs(3600))).as_secs(), 60);
    }

    #[test]
    fn outcomes() {
        let s = Sender::new(Config::default()).expect("client");
        let d = |attempts| Delivery {
            delivery_id: "d".into(),
            target: Target::Webhook("w".into()),
            entity: "model_version".into(),
            action: "created".into(),
            data: "{}".into(),
            created_ms: 0,
            state: "pending".into(),
            attempts,
            next_ms: 0,
            status_code: None,
            error: None,
            done_ms: None,
        };
        let answer = |status: u16| Attempt {
            status: Some(status),
            body: "nope".into(),
            error: None,
            retry_after: None,
            refused: false,
        };
        assert_eq!(
            s.outcome(&d(1), answer(204), 0),
            Outcome::Delivered { status_code: 204 }
        );
        assert!(matches!(
            s.outcome(&d(1), answer(503), 0),
            Outcome::Retry { next_ms: 1000, .. }
        ));
        assert!(
            matches!(s.outcome(&d(4), answer(503), 0), Outcome::Failed { .. }),
            "retries run out"
        );
        assert!(
            matches!(s.outcome(&d(1), answer(400), 0), Outcome::Failed { .. }),
            "4xx is final"
        );
        assert!(
            matches!(s.outcome(&d(1), answer(302), 0), Outcome::Failed { .. }),
            "no redirects"
        );
        let refused = Attempt {
            status: None,
            body: String::new(),
            error: Some("private".into()),
            retry_after: None,
            refused: true,
        };
        assert!(matches!(
            s.outcome(&d(1), refused, 0),
            Outcome::Failed { .. }
        ));
        assert_eq!(iso(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }
}
