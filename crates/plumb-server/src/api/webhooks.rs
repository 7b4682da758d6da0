//! MLflow's webhook API (`/mlflow/webhooks`: create, list, get, update, delete, test) with
//! MLflow's checks and messages, and plumb's delivery log (`/api/2.0/plumb/deliveries`). A
//! secret is sealed before it is stored and never shown.

use axum::extract::{Path, Query, State};
use axum::Json;
use plumb_core::validation::decode_offset_token;
use plumb_core::{now_millis, Error};
use plumb_store::webhooks::{Delivery, DeliveryQuery, Target, Webhook, WebhookPatch};
use plumb_webhooks::events::{self, parse_event};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::api::empty;
use crate::error::{ApiError, ApiResult};
use crate::extract::{bad_type, Params};
use crate::AppState;

const MAX_URL: usize = 500;
const MAX_DESCRIPTION: usize = 1000;
const MAX_SECRET: usize = 500;

/// A webhook as MLflow's `Webhook` message (no secret).
pub fn wire(w: &Webhook) -> Value {
    let mut o = Map::new();
    o.insert("webhook_id".into(), json!(w.webhook_id));
    o.insert("name".into(), json!(w.name));
    if let Some(d) = w.description.as_ref().filter(|d| !d.is_empty()) {
        o.insert("description".into(), json!(d));
    }
    o.insert("url".into(), json!(w.url));
    o.insert(
        "events".into(),
        Value::Array(w.events.iter().map(|(e, a)| events::wire(e, a)).collect()),
    );
    o.insert("status".into(), json!(w.status));
    o.insert("creation_timestamp".into(), json!(w.created_ms));
    o.insert("last_updated_timestamp".into(), json!(w.updated_ms));
    Value::Object(o)
}

fn webhook_json(w: &Webhook) -> Json<Value> {
    Json(json!({ "webhook": wire(w) }))
}

fn check_name(name: &str) -> ApiResult<()> {
    let b = name.as_bytes();
    let edge = |c: &u8| c.is_ascii_alphanumeric();
    let ok = (1..=63).contains(&b.len())
        && b.first().is_some_and(edge)
        && b.last().is_some_and(edge)
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "Webhook name '{name}' is invalid. It must start and end with a letter or digit, be \
             less than 63 characters long, and contain only letters, digits, dots (.), \
             underscores (_), and hyphens (-)."
        )))
    }
}

async fn check_url(st: &AppState, url: &str) -> ApiResult<()> {
    if url.len() > MAX_URL {
        return Err(ApiError::invalid(format!(
            "Webhook URL is longer than {MAX_URL} characters"
        )));
    }
    st.config
        .webhooks
        .policy
        .check(url, "Webhook URL")
        .await
        .map(|_| ())
        .map_err(ApiError::invalid)
}

fn event_list(p: &Params) -> ApiResult<Option<Vec<(String, String)>>> {
    let Some(raw) = p.raw("events")? else {
        return Ok(None);
    };
    let Value::Array(items) = raw else {
        return Err(bad_type("events", raw));
    };
    let mut out: Vec<(String, String)> = Vec::new();
    for item in items {
        let e = parse_event(item).map_err(ApiError::invalid)?;
        if !out.contains(&e) {
            out.push(e);
        }
    }
    Ok((!out.is_empty()).then_some(out))
}

fn status(p: &Params) -> ApiResult<Option<String>> {
    match p.raw("status")? {
        None => Ok(None),
        Some(v) => match v {
            Value::String(s) if s.eq_ignore_ascii_case("active") => Ok(Some("ACTIVE".into())),
            Value::String(s) if s.eq_ignore_ascii_case("disabled") => Ok(Some("DISABLED".into())),
            Value::Number(n) if n.as_u64() == Some(1) => Ok(Some("ACTIVE".into())),
            Value::Number(n) if n.as_u64() == Some(2) => Ok(Some("DISABLED".into())),
            other => Err(ApiError::invalid(format!(
                "Invalid webhook status {other}: must be ACTIVE or DISABLED"
            ))),
        },
    }
}

fn description(p: &Params) -> ApiResult<Option<String>> {
    let d = p.opt_str("description")?;
    if d.as_ref()
        .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION)
    {
        return Err(ApiError::invalid(format!(
            "Webhook description is longer than {MAX_DESCRIPTION} characters"
        )));
    }
    Ok(d)
}

/// Seals a secret for storage; `""` stays `""` (no secret).
fn seal(st: &AppState, secret: &str) -> ApiResult<String> {
    if secret.is_empty() {
        return Ok(String::new());
    }
    if secret.chars().count() > MAX_SECRET {
        return Err(ApiError::invalid(format!(
            "Webhook secret is longer than {MAX_SECRET} characters"
        )));
    }
    let key = st.config.webhooks.secrets.as_ref().ok_or_else(|| {
        ApiError::invalid(
            "This server cannot store webhook secrets: start it with \
             MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY set (a Fernet key) so secrets are encrypted \
             at rest, or create the webhook without a secret.",
        )
    })?;
    Ok(key.seal(secret))
}

pub async fn create(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let name = p.req_str("name")?;
    let url = p.req_str("url")?;
    let events = match event_list(&p)? {
        Some(e) => e,
        // Present but empty is MLflow's store's message; absent is the request check's.
        None if p.raw("events")?.is_some() => {
            return Err(ApiError::invalid(
                "Webhook events must be a non-empty list of WebhookEvent objects: [].",
            ))
        }
        None => return Err(Error::missing("events").into()),
    };
    let description = description(&p)?;
    let secret = p.opt_str("secret")?.unwrap_or_default();
    let status = status(&p)?.unwrap_or_else(|| "ACTIVE".into());
    check_name(&name)?;
    let sealed = seal(&st, &secret)?;
    check_url(&st, &url).await?;
    let now = now_millis();
    let w = st
        .all
        .create_webhook(Webhook {
            webhook_id: uuid::Uuid::new_v4().to_string(),
            name,
            description: description.filter(|d| !d.is_empty()),
            url,
            events,
            status,
            secret: (!sealed.is_empty()).then_some(sealed),
            created_ms: now,
            updated_ms: now,
        })
        .await?;
    Ok(webhook_json(&w))
}

pub async fn list(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let max_results = match p.opt_i64("max_results")? {
        None | Some(0) => 100,
        Some(n) => n,
    };
    if !(1..=1000).contains(&max_results) {
        return Err(ApiError::invalid("max_results must be between 1 and 1000."));
    }
    let offset = decode_offset_token(p.opt_str("page_token")?.as_deref())?;
    let page = st.all.list_webhooks(max_results, offset).await?;
    let mut o = Map::new();
    if !page.items.is_empty() {
        o.insert(
            "webhooks".into(),
            Value::Array(page.items.iter().map(wire).collect()),
        );
    }
    if let Some(t) = page.next_page_token {
        o.insert("next_page_token".into(), json!(t));
    }
    Ok(Json(Value::Object(o)))
}

pub async fn get(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    Ok(webhook_json(&st.all.get_webhook(&id).await?))
}

pub async fn update(
    State(st): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<Json<Value>> {
    // As MLflow: an empty name, URL or event list leaves the field; an empty description or
    // secret clears it.
    let name = p.opt_str("name")?.filter(|s| !s.is_empty());
    let url = p.opt_str("url")?.filter(|s| !s.is_empty());
    let events = event_list(&p)?;
    let description = description(&p)?;
    let secret = p.opt_str("secret")?;
    let status = status(&p)?;
    // 404 before any other check, as the store looks the webhook up first.
    st.all.get_webhook(&id).await?;
    if let Some(n) = &name {
        check_name(n)?;
    }
    if let Some(u) = &url {
        check_url(&st, u).await?;
    }
    let secret = secret.map(|s| seal(&st, &s)).transpose()?;
    let w = st
        .all
        .update_webhook(
            &id,
            WebhookPatch {
                name,
                description,
                url,
                events,
                secret,
                status,
            },
            now_millis(),
        )
        .await?;
    Ok(webhook_json(&w))
}

pub async fn delete(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    st.all.delete_webhook(&id, now_millis()).await?;
    Ok(empty())
}

pub async fn test(
    State(st): State<AppState>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult<Json<Value>> {
    let event = match p.raw("event")? {
        None => None,
        Some(v) => Some(parse_event(v).map_err(ApiError::invalid)?),
    };
    let w = st.all.get_webhook(&id).await?;
    let sender =
        plumb_webhooks::Sender::new(st.config.webhooks.clone()).map_err(Error::internal)?;
    let r = sender.test(&w, event).await;
    let mut o = Map::new();
    o.insert("success".into(), json!(r.success));
    if let Some(s) = r.response_status {
        o.insert("response_status".into(), json!(s));
    }
    if let Some(b) = r.response_body.filter(|b| !b.is_empty()) {
        o.insert("response_body".into(), json!(b));
    }
    if let Some(e) = r.error_message {
        o.insert("error_message".into(), json!(e));
    }
    Ok(Json(json!({ "result": o })))
}

// ---- plumb's delivery log ----------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    pub webhook_id: Option<String>,
    pub monitor: Option<String>,
    /// `pending`, `delivered` or `failed`.
    pub state: Option<String>,
    /// Default 100, at most 1000.
    pub max_results: Option<i64>,
}

/// One delivery as the log shows it.
#[derive(Debug, Serialize)]
pub struct DeliveryOut {
    pub delivery_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitor: Option<String>,
    /// The target's kind and URL for a monitor's notification (`slack: https://...`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<Value>,
    pub entity: String,
    pub action: String,
    pub state: String,
    pub attempts: i64,
    pub created_ms: i64,
    pub next_attempt_ms: Option<i64>,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub done_ms: Option<i64>,
}

impl From<Delivery> for DeliveryOut {
    fn from(d: Delivery) -> Self {
        let (webhook_id, monitor, target) = match d.target {
            Target::Webhook(id) => (Some(id), None, None),
            Target::Notify { monitor, target } => {
                (None, Some(monitor), serde_json::from_str(&target).ok())
            }
        };
        Self {
            delivery_id: d.delivery_id,
            webhook_id,
            monitor,
            target,
            entity: d.entity,
            action: d.action,
            next_attempt_ms: (d.state == "pending").then_some(d.next_ms),
            state: d.state,
            attempts: d.attempts,
            created_ms: d.created_ms,
            status_code: d.status_code,
            error: d.error,
            done_ms: d.done_ms,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct DeliveryList {
    pub deliveries: Vec<DeliveryOut>,
}

/// `GET /api/2.0/plumb/deliveries`: the delivery log, newest first.
pub async fn deliveries(
    State(st): State<AppState>,
    q: Result<Query<DeliveriesQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<DeliveryList>> {
    let Query(q) = q.map_err(|e| ApiError::invalid(e.body_text()))?;
    if let Some(s) = &q.state {
        if !matches!(s.as_str(), "pending" | "delivered" | "failed") {
            return Err(ApiError::invalid(
                "state: must be pending, delivered or failed",
            ));
        }
    }
    let max_results = q.max_results.unwrap_or(100);
    if !(1..=1000).contains(&max_results) {
        return Err(ApiError::invalid("max_results: must be in [1, 1000]"));
    }
    let deliveries = st
        .all
        .list_deliveries(DeliveryQuery {
            webhook_id: q.webhook_id,
            monitor: q.monitor,
            state: q.state,
            max_results,
        })
        .await?
        .into_iter()
        .map(DeliveryOut::from)
        .collect();
    Ok(Json(DeliveryList { deliveries }))
}
