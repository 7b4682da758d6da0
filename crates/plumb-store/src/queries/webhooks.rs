//! Webhooks' tables (the `webhooks` feature) and every query on them, written once for both
//! databases: webhooks and their events, the delivery outbox and log, the registry events
//! queued inside the registry's own transactions ([`emit`]), and the alert changes awaiting
//! their notifications.

use plumb_core::entities::{Page, Tag};
use plumb_core::Error;
use serde_json::{json, Map, Value};

use crate::db::{fetch_page, Bind, Conn, DbResult, Row};
use crate::migrations::{Feature, Migration};
use crate::monitoring::AlertChange;
use crate::queries::monitoring::{change_row, CHANGE_COLUMNS};
use crate::webhooks::{
    Claimed, Delivery, DeliveryQuery, NewDelivery, Outcome, Target, Webhook, WebhookPatch,
};

const V1: Migration = Migration {
    version: 1,
    sqlite: "
CREATE TABLE plumb_webhooks (
    webhook_id  TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT,
    url         TEXT NOT NULL,
    status      TEXT NOT NULL,
    secret      TEXT,
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL,
    deleted_ms  INTEGER
);
CREATE INDEX plumb_webhooks_created ON plumb_webhooks (created_ms);
CREATE TABLE plumb_webhook_events (
    webhook_id TEXT NOT NULL REFERENCES plumb_webhooks (webhook_id) ON DELETE CASCADE,
    entity     TEXT NOT NULL,
    action     TEXT NOT NULL,
    PRIMARY KEY (webhook_id, entity, action)
);
CREATE INDEX plumb_webhook_events_event ON plumb_webhook_events (entity, action);
CREATE TABLE plumb_deliveries (
    delivery_id TEXT PRIMARY KEY,
    webhook_id  TEXT,
    monitor     TEXT,
    target      TEXT,
    entity      TEXT NOT NULL,
    action      TEXT NOT NULL,
    data        TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    state       TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_ms     INTEGER NOT NULL,
    lease_ms    INTEGER NOT NULL DEFAULT 0,
    status_code INTEGER,
    error       TEXT,
    done_ms     INTEGER
);
CREATE INDEX plumb_deliveries_due ON plumb_deliveries (next_ms) WHERE state = 'pending';
CREATE INDEX plumb_deliveries_webhook ON plumb_deliveries (webhook_id, created_ms);
CREATE INDEX plumb_deliveries_monitor ON plumb_deliveries (monitor, created_ms);
CREATE INDEX plumb_deliveries_done ON plumb_deliveries (done_ms) WHERE state <> 'pending';
ALTER TABLE plumb_alert_history ADD COLUMN notified_ms INTEGER;
UPDATE plumb_alert_history SET notified_ms = 0;
CREATE INDEX plumb_alert_history_unnotified ON plumb_alert_history (seq)
    WHERE notified_ms IS NULL;
",
    postgres: "
CREATE TABLE plumb_webhooks (
    webhook_id  TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT,
    url         TEXT NOT NULL,
    status      TEXT NOT NULL,
    secret      TEXT,
    created_ms  BIGINT NOT NULL,
    updated_ms  BIGINT NOT NULL,
    deleted_ms  BIGINT
);
CREATE INDEX plumb_webhooks_created ON plumb_webhooks (created_ms);
CREATE TABLE plumb_webhook_events (
    webhook_id TEXT NOT NULL REFERENCES plumb_webhooks (webhook_id) ON DELETE CASCADE,
    entity     TEXT NOT NULL,
    action     TEXT NOT NULL,
    PRIMARY KEY (webhook_id, entity, action)
);
CREATE INDEX plumb_webhook_events_event ON plumb_webhook_events (entity, action);
CREATE TABLE plumb_deliveries (
    delivery_id TEXT PRIMARY KEY,
    webhook_id  TEXT,
    monitor     TEXT,
    target      TEXT,
    entity      TEXT NOT NULL,
    action      TEXT NOT NULL,
    data        TEXT NOT NULL,
    created_ms  BIGINT NOT NULL,
    state       TEXT NOT NULL,
    attempts    BIGINT NOT NULL DEFAULT 0,
    next_ms     BIGINT NOT NULL,
    lease_ms    BIGINT NOT NULL DEFAULT 0,
    status_code BIGINT,
    error       TEXT,
    done_ms     BIGINT
);
CREATE INDEX plumb_deliveries_due ON plumb_deliveries (next_ms) WHERE state = 'pending';
CREATE INDEX plumb_deliveries_webhook ON plumb_deliveries (webhook_id, created_ms);
CREATE INDEX plumb_deliveries_monitor ON plumb_deliveries (monitor, created_ms);
CREATE INDEX plumb_deliveries_done ON plumb_deliveries (done_ms) WHERE state <> 'pending';
ALTER TABLE plumb_alert_history ADD COLUMN notified_ms BIGINT;
UPDATE plumb_alert_history SET notified_ms = 0;
CREATE INDEX plumb_alert_history_unnotified ON plumb_alert_history (seq)
    WHERE notified_ms IS NULL;
",
};

/// The `webhooks` feature: applied after `monitoring` (it marks alert changes notified).
pub const WEBHOOKS: Feature = Feature {
    name: "webhooks",
    migrations: &[V1],
};

/// The tag that makes a registered model or version a prompt (MLflow's prompt registry).
const IS_PROMPT_TAG: &str = "mlflow.prompt.is_prompt";
const PROMPT_TEXT_TAG: &str = "mlflow.prompt.text";
const PROMPT_TYPE_TAG: &str = "_mlflow_prompt_type";

fn not_found(webhook_id: &str) -> Error {
    Error::not_found(format!("Webhook with ID {webhook_id} not found."))
}

const WEBHOOK_COLUMNS: &str =
    "webhook_id, name, description, url, status, secret, created_ms, updated_ms";

fn webhook_row(r: &Row) -> DbResult<Webhook> {
    Ok(Webhook {
        webhook_id: r.text(0)?,
        name: r.text(1)?,
        description: r.opt_text(2)?,
        url: r.text(3)?,
        events: Vec::new(),
        status: r.text(4)?,
        secret: r.opt_text(5)?,
        created_ms: r.int(6)?,
        updated_ms: r.int(7)?,
    })
}

/// Fills each webhook's events (in MLflow's entity/action order of storage: sorted).
async fn with_events<C: Conn>(c: &mut C, mut hooks: Vec<Webhook>) -> DbResult<Vec<Webhook>> {
    if hooks.is_empty() {
        return Ok(hooks);
    }
    let ids: Vec<String> = hooks.iter().map(|w| w.webhook_id.clone()).collect();
    let sql = format!(
        "SELECT webhook_id, entity, action FROM plumb_webhook_events WHERE {}
         ORDER BY webhook_id, entity, action",
        c.dialect().in_list("webhook_id")
    );
    for r in c.query(&sql, vec![Bind::TextList(ids)]).await? {
        let id = r.text(0)?;
        if let Some(w) = hooks.iter_mut().find(|w| w.webhook_id == id) {
            w.events.push((r.text(1)?, r.text(2)?));
        }
    }
    Ok(hooks)
}

async fn find<C: Conn>(c: &mut C, webhook_id: &str) -> DbResult<Option<Webhook>> {
    let row = c
        .query_opt(
            &format!(
                "SELECT {WEBHOOK_COLUMNS} FROM plumb_webhooks
                 WHERE webhook_id = ? AND deleted_ms IS NULL"
            ),
            vec![webhook_id.into()],
        )
        .await?;
    match row {
        Some(r) => Ok(with_events(c, vec![webhook_row(&r)?]).await?.pop()),
        None => Ok(None),
    }
}

async fn put_events<C: Conn>(
    c: &mut C,
    webhook_id: &str,
    events: &[(String, String)],
) -> DbResult<()> {
    c.execute(
        "DELETE FROM plumb_webhook_events WHERE webhook_id = ?",
        vec![webhook_id.into()],
    )
    .await?;
    for (entity, action) in events {
        c.execute(
            "INSERT INTO plumb_webhook_events (webhook_id, entity, action) VALUES (?, ?, ?)
             ON CONFLICT DO NOTHING",
            vec![webhook_id.into(), entity.into(), action.into()],
        )
        .await?;
    }
    Ok(())
}

pub async fn create_webhook<C: Conn>(c: &mut C, w: Webhook) -> DbResult<Webhook> {
    c.execute(
        &format!("INSERT INTO plumb_webhooks ({WEBHOOK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
        vec![
            (&w.webhook_id).into(),
            (&w.name).into(),
            w.description.clone().into(),
            (&w.url).into(),
            (&w.status).into(),
            w.secret.clone().into(),
            w.created_ms.into(),
            w.updated_ms.into(),
        ],
    )
    .await?;
    put_events(c, &w.webhook_id, &w.events).await?;
    get_webhook(c, &w.webhook_id).await
}

pub async fn get_webhook<C: Conn>(c: &mut C, webhook_id: &str) -> DbResult<Webhook> {
    find(c, webhook_id)
        .await?
        .ok_or_else(|| not_found(webhook_id).into())
}

pub async fn list_webhooks<C: Conn>(
    c: &mut C,
    max_results: i64,
    offset: i64,
) -> DbResult<Page<Webhook>> {
    let (items, next_page_token) = fetch_page(
        c,
        &format!(
            "SELECT {WEBHOOK_COLUMNS} FROM plumb_webhooks WHERE deleted_ms IS NULL
             ORDER BY created_ms DESC, webhook_id LIMIT ? OFFSET ?"
        ),
        vec![(max_results + 1).into(), offset.into()],
        max_results,
        offset,
        webhook_row,
    )
    .await?;
    Ok(Page {
        items: with_events(c, items).await?,
        next_page_token,
    })
}

pub async fn update_webhook<C: Conn>(
    c: &mut C,
    webhook_id: &str,
    p: WebhookPatch,
    now_ms: i64,
) -> DbResult<Webhook> {
    let mut w = get_webhook(c, webhook_id).await?;
    if let Some(v) = p.name {
        w.name = v;
    }
    if let Some(v) = p.description {
        w.description = Some(v);
    }
    if let Some(v) = p.url {
        w.url = v;
    }
    if let Some(v) = p.secret {
        w.secret = (!v.is_empty()).then_some(v);
    }
    if let Some(v) = p.status {
        w.status = v;
    }
    c.execute(
        "UPDATE plumb_webhooks SET name = ?, description = ?, url = ?, secret = ?, status = ?,
             updated_ms = ?
         WHERE webhook_id = ?",
        vec![
            w.name.into(),
            w.description.into(),
            w.url.into(),
            w.secret.into(),
            w.status.into(),
            now_ms.into(),
            webhook_id.into(),
        ],
    )
    .await?;
    if let Some(events) = p.events {
        put_events(c, webhook_id, &events).await?;
    }
    get_webhook(c, webhook_id).await
}

pub async fn delete_webhook<C: Conn>(c: &mut C, webhook_id: &str, now_ms: i64) -> DbResult<()> {
    let n = c
        .execute(
            "UPDATE plumb_webhooks SET deleted_ms = ?, updated_ms = ?
             WHERE webhook_id = ? AND deleted_ms IS NULL",
            vec![now_ms.into(), now_ms.into(), webhook_id.into()],
        )
        .await?;
    if n == 0 {
        return Err(not_found(webhook_id).into());
    }
    Ok(())
}

// ---- the outbox --------------------------------------------------------------------------------

pub async fn enqueue<C: Conn>(c: &mut C, deliveries: &[NewDelivery]) -> DbResult<()> {
    for d in deliveries {
        let (webhook_id, monitor, target) = match &d.target {
            Target::Webhook(id) => (Some(id.clone()), None, None),
            Target::Notify { monitor, target } => {
                (None, Some(monitor.clone()), Some(target.clone()))
            }
        };
        c.execute(
            "INSERT INTO plumb_deliveries (delivery_id, webhook_id, monitor, target, entity,
                 action, data, created_ms, state, next_ms)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
            vec![
                uuid::Uuid::new_v4().to_string().into(),
                webhook_id.into(),
                monitor.into(),
                target.into(),
                (&d.entity).into(),
                (&d.action).into(),
                (&d.data).into(),
                d.created_ms.into(),
                d.created_ms.into(),
            ],
        )
        .await?;
    }
    Ok(())
}

const DELIVERY_COLUMNS: &str = "delivery_id, webhook_id, monitor, target, entity, action, data, \
     created_ms, state, attempts, next_ms, status_code, error, done_ms";

fn delivery_row(r: &Row) -> DbResult<Delivery> {
    let target = match r.opt_text(1)? {
        Some(id) => Target::Webhook(id),
        None => Target::Notify {
            monitor: r.opt_text(2)?.unwrap_or_default(),
            target: r.opt_text(3)?.unwrap_or_default(),
        },
    };
    Ok(Delivery {
        delivery_id: r.text(0)?,
        target,
        entity: r.text(4)?,
        action: r.text(5)?,
        data: r.text(6)?,
        created_ms: r.int(7)?,
        state: r.text(8)?,
        attempts: r.int(9)?,
        next_ms: r.int(10)?,
        status_code: r.opt_int(11)?,
        error: r.opt_text(12)?,
        done_ms: r.opt_int(13)?,
    })
}

/// Claims due deliveries one by one with a conditional update, so two processes never hold
/// the same delivery: the one whose update changed the row owns the attempt.
pub async fn claim<C: Conn>(
    c: &mut C,
    now_ms: i64,
    lease_until_ms: i64,
    limit: i64,
) -> DbResult<Vec<Claimed>> {
    let due = c
        .query(
            &format!(
                "SELECT {DELIVERY_COLUMNS} FROM plumb_deliveries
                 WHERE state = 'pending' AND next_ms <= ? AND lease_ms <= ?
                 ORDER BY next_ms LIMIT ?"
            ),
            vec![now_ms.into(), now_ms.into(), limit.into()],
        )
        .await?;
    let mut out = Vec::new();
    for r in &due {
        let mut d = delivery_row(r)?;
        let won = c
            .execute(
                "UPDATE plumb_deliveries SET lease_ms = ?, attempts = attempts + 1
                 WHERE delivery_id = ? AND state = 'pending' AND lease_ms <= ?",
                vec![
                    lease_until_ms.into(),
                    (&d.delivery_id).into(),
                    now_ms.into(),
                ],
            )
            .await?;
        if won == 0 {
            continue;
        }
        d.attempts += 1;
        let webhook = match &d.target {
            Target::Webhook(id) => find(c, id).await?,
            Target::Notify { .. } => None,
        };
        out.push(Claimed {
            delivery: d,
            webhook,
        });
    }
    Ok(out)
}

pub async fn finish<C: Conn>(
    c: &mut C,
    delivery_id: &str,
    outcome: Outcome,
    now_ms: i64,
) -> DbResult<()> {
    // A delivery that succeeded after failed attempts keeps the last error it met.
    let (state, code, error, next, done): (&str, Option<i64>, Option<String>, Option<i64>, _) =
        match outcome {
            Outcome::Delivered { status_code } => {
                ("delivered", Some(status_code), None, None, Some(now_ms))
            }
            Outcome::Retry {
                status_code,
                error,
                next_ms,
            } => ("pending", status_code, Some(error), Some(next_ms), None),
            Outcome::Failed { status_code, error } => {
                ("failed", status_code, Some(error), None, Some(now_ms))
            }
        };
    c.execute(
        "UPDATE plumb_deliveries SET state = ?, status_code = ?, error = COALESCE(?, error),
             next_ms = COALESCE(?, next_ms), done_ms = ?, lease_ms = 0
         WHERE delivery_id = ?",
        vec![
            state.into(),
            code.into(),
            error.into(),
            next.into(),
            done.into(),
            delivery_id.into(),
        ],
    )
    .await?;
    Ok(())
}

pub async fn list_deliveries<C: Conn>(c: &mut C, q: &DeliveryQuery) -> DbResult<Vec<Delivery>> {
    let mut sql = format!("SELECT {DELIVERY_COLUMNS} FROM plumb_deliveries WHERE 1 = 1");
    let mut binds: Vec<Bind> = Vec::new();
    if let Some(id) = &q.webhook_id {
        sql.push_str(" AND webhook_id = ?");
        binds.push(id.into());
    }
    if let Some(m) = &q.monitor {
        sql.push_str(" AND monitor = ?");
        binds.push(m.into());
    }
    if let Some(s) = &q.state {
        sql.push_str(" AND state = ?");
        binds.push(s.into());
    }
    sql.push_str(" ORDER BY created_ms DESC, delivery_id LIMIT ?");
    binds.push(q.max_results.into());
    c.query(&sql, binds)
        .await?
        .iter()
        .map(delivery_row)
        .collect()
}

pub async fn prune<C: Conn>(c: &mut C, before_ms: i64) -> DbResult<u64> {
    c.execute(
        "DELETE FROM plumb_deliveries WHERE state <> 'pending' AND done_ms < ?",
        vec![before_ms.into()],
    )
    .await
}

// ---- alert notices -----------------------------------------------------------------------------

pub async fn pending_notices<C: Conn>(c: &mut C, limit: i64) -> DbResult<Vec<AlertChange>> {
    c.query(
        &format!(
            "SELECT {CHANGE_COLUMNS} FROM plumb_alert_history WHERE notified_ms IS NULL
             ORDER BY seq LIMIT ?"
        ),
        vec![limit.into()],
    )
    .await?
    .iter()
    .map(change_row)
    .collect()
}

pub async fn settle_notice<C: Conn>(
    c: &mut C,
    seq: i64,
    deliveries: &[NewDelivery],
    now_ms: i64,
) -> DbResult<bool> {
    let won = c
        .execute(
            "UPDATE plumb_alert_history SET notified_ms = ? WHERE seq = ? AND notified_ms IS NULL",
            vec![now_ms.into(), seq.into()],
        )
        .await?;
    if won == 0 {
        return Ok(false);
    }
    enqueue(c, deliveries).await?;
    Ok(true)
}

// ---- registry events ---------------------------------------------------------------------------

/// Queues `data` for every active webhook subscribed to `entity.action`, in the caller's
/// transaction: the event goes out only if the change commits.
pub async fn emit<C: Conn>(c: &mut C, entity: &str, action: &str, data: Value) -> DbResult<()> {
    let hooks = c
        .query(
            "SELECT w.webhook_id FROM plumb_webhooks w
             JOIN plumb_webhook_events e ON e.webhook_id = w.webhook_id
             WHERE e.entity = ? AND e.action = ? AND w.status = 'ACTIVE'
               AND w.deleted_ms IS NULL",
            vec![entity.into(), action.into()],
        )
        .await?;
    if hooks.is_empty() {
        return Ok(());
    }
    let now = plumb_core::now_millis();
    let data = data.to_string();
    let deliveries = hooks
        .iter()
        .map(|r| {
            Ok(NewDelivery {
                target: Target::Webhook(r.text(0)?),
                entity: entity.to_string(),
                action: action.to_string(),
                data: data.clone(),
                created_ms: now,
            })
        })
        .collect::<DbResult<Vec<_>>>()?;
    enqueue(c, &deliveries).await
}

/// Whether any webhook could want an event: registry writes skip building events (and the
/// prompt lookup) when none is active, the common case.
async fn any_active<C: Conn>(c: &mut C) -> DbResult<bool> {
    Ok(c.query_opt(
        "SELECT 1 FROM plumb_webhooks WHERE status = 'ACTIVE' AND deleted_ms IS NULL LIMIT 1",
        vec![],
    )
    .await?
    .is_some())
}

fn is_true(v: &str) -> bool {
    v.eq_ignore_ascii_case("true")
}

/// Whether the registered model is a prompt (MLflow's prompt registry keeps prompts as
/// registered models tagged `mlflow.prompt.is_prompt=true`).
pub async fn is_prompt<C: Conn>(c: &mut C, name: &str) -> DbResult<bool> {
    Ok(c.query_opt(
        "SELECT value FROM registered_model_tags WHERE name = ? AND key = ?",
        vec![name.into(), IS_PROMPT_TAG.into()],
    )
    .await?
    .map(|r| r.text(0))
    .transpose()?
    .is_some_and(|v| is_true(&v)))
}

fn tag_map<'a>(tags: impl IntoIterator<Item = &'a Tag>, skip: &[&str]) -> Value {
    let mut m = Map::new();
    for t in tags {
        if !skip.contains(&t.key.as_str()) {
            m.insert(t.key.clone(), Value::String(t.value.clone()));
        }
    }
    Value::Object(m)
}

/// `registered_model.created` (or `prompt.created`), with the request's tags and description.
pub async fn registered_model_created<C: Conn>(
    c: &mut C,
    name: &str,
    tags: &[Tag],
    description: Option<&str>,
) -> DbResult<()> {
    let prompt = tags
        .iter()
        .rev()
        .find(|t| t.key == IS_PROMPT_TAG)
        .is_some_and(|t| is_true(&t.value));
    let (entity, skip) = if prompt {
        ("prompt", &[IS_PROMPT_TAG, PROMPT_TYPE_TAG][..])
    } else {
        ("registered_model", &[][..])
    };
    let data = json!({"name": name, "tags": tag_map(tags, skip), "description": description});
    emit(c, entity, "created", data).await
}

/// `model_version.created` (or `prompt_version.created`).
#[allow(clippy::too_many_arguments)]
pub async fn model_version_created<C: Conn>(
    c: &mut C,
    name: &str,
    version: i64,
    source: &str,
    run_id: Option<&str>,
    tags: &[Tag],
    description: Option<&str>,
) -> DbResult<()> {
    let prompt = tags
        .iter()
        .rev()
        .find(|t| t.key == IS_PROMPT_TAG)
        .is_some_and(|t| is_true(&t.value));
    let description = description.filter(|d| !d.is_empty());
    if prompt {
        let template = tags.iter().rev().find(|t| t.key == PROMPT_TEXT_TAG);
        let data = json!({
            "name": name,
            "version": version.to_string(),
            "template": template.map(|t| t.value.clone()),
            "tags": tag_map(tags, &[IS_PROMPT_TAG, PROMPT_TYPE_TAG, PROMPT_TEXT_TAG]),
            "description": description,
        });
        emit(c, "prompt_version", "created", data).await
    } else {
        let data = json!({
            "name": name,
            "version": version.to_string(),
            "source": source,
            "run_id": run_id.filter(|r| !r.is_empty()),
            "tags": tag_map(tags, &[]),
            "description": description,
        });
        emit(c, "model_version", "created", data).await
    }
}

/// A registered model's tag set (`Some(value)`) or deleted: announced for prompts only, as
/// MLflow does.
pub async fn registered_model_tag<C: Conn>(
    c: &mut C,
    name: &str,
    key: &str,
    value: Option<&str>,
) -> DbResult<()> {
    if !any_active(c).await? {
        return Ok(());
    }
    if !is_prompt(c, name).await? {
        return Ok(());
    }
    match value {
        Some(v) => {
            emit(
                c,
                "prompt_tag",
                "set",
                json!({"name": name, "key": key, "value": v}),
            )
            .await
        }
        None => {
            emit(
                c,
                "prompt_tag",
                "deleted",
                json!({"name": name, "key": key}),
            )
            .await
        }
    }
}

/// A version's tag set (`Some(value)`) or deleted.
pub async fn model_version_tag<C: Conn>(
    c: &mut C,
    name: &str,
    version: i64,
    key: &str,
    value: Option<&str>,
) -> DbResult<()> {
    if !any_active(c).await? {
        return Ok(());
    }
    let entity = if is_prompt(c, name).await? {
        "prompt_version_tag"
    } else {
        "model_version_tag"
    };
    let version = version.to_string();
    match value {
        Some(v) => {
            let data = json!({"name": name, "version": version, "key": key, "value": v});
            emit(c, entity, "set", data).await
        }
        None => {
            let data = json!({"name": name, "version": version, "key": key});
            emit(c, entity, "deleted", data).await
        }
    }
}

/// An alias set to `Some(version)` or deleted.
pub async fn alias<C: Conn>(
    c: &mut C,
    name: &str,
    alias: &str,
    version: Option<i64>,
) -> DbResult<()> {
    if !any_active(c).await? {
        return Ok(());
    }
    let entity = if is_prompt(c, name).await? {
        "prompt_alias"
    } else {
        "model_version_alias"
    };
    match version {
        Some(v) => {
            let data = json!({"name": name, "alias": alias, "version": v.to_string()});
            emit(c, entity, "created", data).await
        }
        None => emit(c, entity, "deleted", json!({"name": name, "alias": alias})).await,
    }
}
