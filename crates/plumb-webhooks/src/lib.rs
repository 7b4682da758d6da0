//! Webhooks and notifications: MLflow's webhook events and their payloads (`events`), the
//! URL rules that keep deliveries off private networks (`policy`), secrets sealed at rest
//! (`secret`) and signed deliveries (`sign`), the outbox worker that sends what the store
//! queued (`deliver`), and monitors' alert notifications in plumb's, Slack's and
//! Alertmanager's shapes (`notify`).

use std::time::Duration;

pub mod deliver;
pub mod events;
pub mod notify;
pub mod policy;
pub mod secret;
pub mod sign;

pub use deliver::Sender;
pub use policy::Policy;
pub use secret::SecretBox;

/// How webhooks and notifications are delivered, from MLflow's environment variables
/// (`MLFLOW_WEBHOOK_*`) and plumb's flags; built once in `main`.
#[derive(Clone, Debug)]
pub struct Config {
    pub policy: Policy,
    /// Each attempt's whole time (connect, send, response head and the kept part of the body).
    pub timeout: Duration,
    /// Attempts after the first, on 429, 5xx and network errors.
    pub max_retries: u32,
    /// The first retry's delay; it doubles each time, up to `backoff_max`.
    pub backoff: Duration,
    pub backoff_max: Duration,
    /// Seals webhook secrets at rest; without it, webhooks with a secret are refused.
    pub secrets: Option<SecretBox>,
    /// How often each server looks for due deliveries.
    pub poll: Duration,
    /// The server's address as people reach it, for links in notifications (`--external-url`).
    pub external_url: Option<String>,
    /// Finished deliveries are kept this long (the delivery log).
    pub keep: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            policy: Policy::default(),
            timeout: Duration::from_secs(30),
            max_retries: 3,
            backoff: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            secrets: None,
            poll: Duration::from_millis(500),
            external_url: None,
            keep: Duration::from_secs(7 * 86_400),
        }
    }
}
