//! Conformance cases of the webhook tables: webhooks' lifecycle and paging, registry events
//! queued with (and only with) their change, leased claims that one process wins, the delivery
//! log, and alert changes settled into notifications once.

use std::sync::Arc;

use plumb_core::entities::Tag;
use plumb_core::ErrorCode;
use serde_json::Value;

use super::Store;
use crate::monitoring::{AlertChange, AlertState};
use crate::webhooks::{DeliveryQuery, NewDelivery, Outcome, Target, Webhook, WebhookPatch};
use crate::NewModelVersion;

fn hook(id: &str, created_ms: i64, events: &[(&str, &str)]) -> Webhook {
    Webhook {
        webhook_id: id.into(),
        name: format!("hook-{id}"),
        description: None,
        url: "https://example.com/hook".into(),
        events: events
            .iter()
            .map(|(e, a)| (e.to_string(), a.to_string()))
            .collect(),
        status: "ACTIVE".into(),
        secret: Some("sealed".into()),
        created_ms,
        updated_ms: created_ms,
    }
}

fn all(webhook_id: Option<&str>) -> DeliveryQuery {
    DeliveryQuery {
        webhook_id: webhook_id.map(str::to_string),
        max_results: 100,
        ..DeliveryQuery::default()
    }
}

pub async fn webhooks_lifecycle_and_paging(store: Store) {
    for i in 0..5 {
        let w = store
            .create_webhook(hook(
                &format!("w{i}"),
                100 + i,
                &[("model_version", "created")],
            ))
            .await
            .expect("create");
        assert_eq!(w.events, [("model_version".into(), "created".into())]);
        assert_eq!(w.secret.as_deref(), Some("sealed"));
    }
    let first = store.list_webhooks(2, 0).await.expect("page 1");
    let ids: Vec<_> = first.items.iter().map(|w| w.webhook_id.as_str()).collect();
    assert_eq!(ids, ["w4", "w3"], "newest first");
    assert!(first.next_page_token.is_some());
    let last = store.list_webhooks(2, 4).await.expect("page 3");
    assert_eq!(last.items.len(), 1);
    assert!(last.next_page_token.is_none());

    let patched = store
        .update_webhook(
            "w1",
            WebhookPatch {
                description: Some("d".into()),
                events: Some(vec![
                    ("model_version_alias".into(), "created".into()),
                    ("model_version_tag".into(), "set".into()),
                ]),
                secret: Some(String::new()),
                status: Some("DISABLED".into()),
                ..WebhookPatch::default()
            },
            500,
        )
        .await
        .expect("update");
    assert_eq!(patched.name, "hook-w1", "unset fields stay");
    assert_eq!(patched.description.as_deref(), Some("d"));
    assert_eq!(patched.events.len(), 2);
    assert_eq!(
        (patched.secret, patched.status.as_str()),
        (None, "DISABLED")
    );
    assert_eq!((patched.created_ms, patched.updated_ms), (101, 500));

    store.delete_webhook("w1", 600).await.expect("delete");
    let gone = store.get_webhook("w1").await.expect_err("deleted");
    assert_eq!(gone.code, ErrorCode::ResourceDoesNotExist);
    assert_eq!(gone.message, "Webhook with ID w1 not found.");
    let again = store.delete_webhook("w1", 700).await.expect_err("twice");
    assert_eq!(again.code, ErrorCode::ResourceDoesNotExist);
    let missing = store
        .update_webhook("nope", WebhookPatch::default(), 1)
        .await
        .expect_err("missing");
    assert_eq!(missing.code, ErrorCode::ResourceDoesNotExist);
    assert_eq!(
        store.list_webhooks(100, 0).await.expect("list").items.len(),
        4
    );
}

fn data(d: &str) -> Value {
    serde_json::from_str(d).expect("delivery data is JSON")
}

pub async fn registry_events_queue_deliveries(store: Store) {
    store
        .create_webhook(hook("versions", 1, &[("model_version", "created")]))
        .await
        .expect("hook");
    store
        .create_webhook(hook(
            "aliases",
            2,
            &[
                ("model_version_alias", "created"),
                ("model_version_alias", "deleted"),
            ],
        ))
        .await
        .expect("hook");
    let mut off = hook("off", 3, &[("model_version", "created")]);
    off.status = "DISABLED".into();
    store.create_webhook(off).await.expect("disabled hook");

    store
        .create_registered_model("iris", vec![], None)
        .await
        .expect("model");
    let mv = store
        .create_model_version(NewModelVersion {
            name: "iris".into(),
            source: "runs:/abc/model".into(),
            run_id: Some("abc".into()),
            tags: vec![Tag::new("team", "ml")],
            ..NewModelVersion::default()
        })
        .await
        .expect("version");
    store
        .set_alias("iris", "champion", mv.version)
        .await
        .expect("alias");
    store
        .delete_alias("iris", "champion")
        .await
        .expect("unalias");
    // A refused change queues nothing.
    store
        .set_alias("iris", "ghost", 99)
        .await
        .expect_err("no version 99");
    store
        .set_model_version_tag("iris", mv.version, Tag::new("k", "v"))
        .await
        .expect("tag: nobody subscribed");

    let versions = store
        .list_deliveries(all(Some("versions")))
        .await
        .expect("log");
    assert_eq!(versions.len(), 1, "{versions:?}");
    let d = &versions[0];
    assert_eq!(
        (d.entity.as_str(), d.action.as_str()),
        ("model_version", "created")
    );
    assert_eq!((d.state.as_str(), d.attempts), ("pending", 0));
    let v = data(&d.data);
    assert_eq!(v["name"], "iris");
    assert_eq!(v["version"], "1");
    assert_eq!(v["source"], "runs:/abc/model");
    assert_eq!(v["run_id"], "abc");
    assert_eq!(v["tags"]["team"], "ml");
    assert!(v["description"].is_null());

    let aliases = store
        .list_deliveries(all(Some("aliases")))
        .await
        .expect("log");
    let mut actions: Vec<_> = aliases.iter().map(|d| d.action.clone()).collect();
    actions.sort();
    assert_eq!(actions, ["created", "deleted"]);
    let created = aliases
        .iter()
        .find(|d| d.action == "created")
        .expect("created");
    assert_eq!(data(&created.data)["alias"], "champion");
    assert_eq!(data(&created.data)["version"], "1");
    assert!(store
        .list_deliveries(all(Some("off")))
        .await
        .expect("log")
        .is_empty());

    // Prompts are announced as prompt events.
    store
        .create_webhook(hook(
            "prompts",
            4,
            &[("prompt", "created"), ("prompt_tag", "set")],
        ))
        .await
        .expect("hook");
    store
        .create_registered_model(
            "greeting",
            vec![Tag::new("mlflow.prompt.is_prompt", "true")],
            Some("says hi".into()),
        )
        .await
        .expect("prompt");
    store
        .set_registered_model_tag("greeting", Tag::new("lang", "en"))
        .await
        .expect("prompt tag");
    store
        .set_registered_model_tag("iris", Tag::new("lang", "en"))
        .await
        .expect("model tag: not a prompt event");
    let prompts = store
        .list_deliveries(all(Some("prompts")))
        .await
        .expect("log");
    assert_eq!(prompts.len(), 2, "{prompts:?}");
    let created = prompts
        .iter()
        .find(|d| d.entity == "prompt")
        .expect("prompt");
    let v = data(&created.data);
    assert_eq!(
        (v["name"].as_str(), v["description"].as_str()),
        (Some("greeting"), Some("says hi"))
    );
    assert_eq!(
        v["tags"],
        serde_json::json!({}),
        "the prompt marker is not a user tag"
    );
}

pub async fn claims_are_leased_and_finished(store: Store) {
    let notify = |i: i64| NewDelivery {
        target: Target::Notify {
            monitor: "iris".into(),
            target: "{\"webhook\": \"https://example.com\"}".into(),
        },
        entity: "alert".into(),
        action: "firing".into(),
        data: format!("{{\"n\": {i}}}"),
        created_ms: 1000 + i,
    };
    store
        .enqueue_deliveries((0..6).map(notify).collect())
        .await
        .expect("enqueue");
    // Two processes claim at once: each delivery is won by one of them.
    let (a, b) = tokio::join!(
        store.claim_deliveries(2000, 9000, 4),
        store.claim_deliveries(2000, 9000, 4)
    );
    let (a, b) = (a.expect("claim a"), b.expect("claim b"));
    let mut ids: Vec<_> = a
        .iter()
        .chain(&b)
        .map(|c| c.delivery.delivery_id.clone())
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "a delivery was claimed twice");
    assert!(n >= 4, "claimed {n}");
    assert!(a
        .iter()
        .chain(&b)
        .all(|c| c.delivery.attempts == 1 && c.webhook.is_none()));
    // While leased, nobody else gets them.
    let rest = store.claim_deliveries(3000, 9000, 10).await.expect("claim");
    assert_eq!(rest.len(), 6 - n);

    let first = &a
        .first()
        .or(b.first())
        .expect("one claimed")
        .delivery
        .delivery_id;
    store
        .finish_delivery(
            first,
            Outcome::Retry {
                status_code: Some(503),
                error: "busy".into(),
                next_ms: 5000,
            },
            3000,
        )
        .await
        .expect("retry");
    assert!(store
        .claim_deliveries(4999, 99_000, 10)
        .await
        .expect("claim")
        .is_empty());
    let retried = store
        .claim_deliveries(5000, 99_000, 10)
        .await
        .expect("claim");
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].delivery.attempts, 2);
    store
        .finish_delivery(first, Outcome::Delivered { status_code: 204 }, 5100)
        .await
        .expect("delivered");
    let log = store
        .list_deliveries(DeliveryQuery {
            monitor: Some("iris".into()),
            state: Some("delivered".into()),
            max_results: 10,
            ..DeliveryQuery::default()
        })
        .await
        .expect("log");
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0].status_code, log[0].done_ms),
        (Some(204), Some(5100))
    );
    assert_eq!(
        log[0].error.as_deref(),
        Some("busy"),
        "the last error is kept"
    );
    // A lease that ran out is claimable again (its process died mid-attempt).
    let expired = store
        .claim_deliveries(10_000, 20_000, 10)
        .await
        .expect("claim");
    assert_eq!(expired.len(), 5);
    assert_eq!(store.prune_deliveries(6000).await.expect("prune"), 1);
}

pub async fn alert_changes_are_notified_once(store: Store) {
    for (i, to) in ["pending", "firing"].iter().enumerate() {
        let state = AlertState {
            monitor: "iris".into(),
            rule: "acc".into(),
            state: to.to_string(),
            severity: "critical".into(),
            evaluated_ms: 1000 + i as i64,
            ..AlertState::default()
        };
        let change = AlertChange {
            monitor: "iris".into(),
            rule: "acc".into(),
            from: "inactive".into(),
            to: to.to_string(),
            severity: "critical".into(),
            at_ms: 1000 + i as i64,
            ..AlertChange::default()
        };
        store
            .put_alert_state(state, Some(change))
            .await
            .expect("state");
    }
    let pending = store.pending_notices(10).await.expect("pending");
    assert_eq!(pending.len(), 2);
    assert!(pending[0].seq < pending[1].seq, "oldest first");
    let delivery = NewDelivery {
        target: Target::Notify {
            monitor: "iris".into(),
            target: "{}".into(),
        },
        entity: "alert".into(),
        action: "firing".into(),
        data: "{}".into(),
        created_ms: 2000,
    };
    let store2 = Arc::clone(&store);
    let seq = pending[1].seq;
    let (x, y) = tokio::join!(
        store.settle_notice(seq, vec![delivery.clone()], 3000),
        store2.settle_notice(seq, vec![delivery.clone()], 3000)
    );
    assert!(
        x.expect("settle") ^ y.expect("settle"),
        "exactly one process settles it"
    );
    assert!(store
        .settle_notice(pending[0].seq, vec![], 3000)
        .await
        .expect("settle"));
    assert!(store.pending_notices(10).await.expect("pending").is_empty());
    let queued = store
        .list_deliveries(DeliveryQuery {
            monitor: Some("iris".into()),
            max_results: 10,
            ..DeliveryQuery::default()
        })
        .await
        .expect("log");
    assert_eq!(queued.len(), 1);
}
