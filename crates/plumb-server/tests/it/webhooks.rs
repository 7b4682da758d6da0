//! Webhooks over HTTP: MLflow's wire shapes (snapshots), registry events delivered signed to a
//! receiver by the outbox worker, the delivery log, addresses refused again at delivery time,
//! and hostile input answered 4xx with nothing stored lost.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use plumb_store::webhooks::{Target, Webhook};
use plumb_webhooks::sign::signature;
use plumb_webhooks::{Config, Policy, SecretBox, Sender};
use serde_json::{json, Value};

use crate::support::TestServer;

const W: &str = "/api/2.0/mlflow/webhooks";
const KEY: &str = "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s="; // base64url of 32 bytes

type Seen = Arc<Mutex<Vec<(HeaderMap, String)>>>;

/// A receiver on 127.0.0.1 recording what it is sent; answers 204.
async fn receiver() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let keep = seen.clone();
    let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
        let keep = keep.clone();
        async move {
            keep.lock()
                .expect("lock")
                .push((headers, String::from_utf8_lossy(&body).into_owned()));
            StatusCode::NO_CONTENT
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

fn open_config() -> Config {
    Config {
        policy: Policy {
            allowed_schemes: vec!["http".into(), "https".into()],
            allow_private_ips: true,
        },
        secrets: Some(SecretBox::from_key(KEY).expect("key")),
        ..Config::default()
    }
}

async fn send(s: &TestServer, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
    s.send(s.client.request(method, s.url(path)).json(&body))
        .await
}

#[tokio::test]
async fn registry_events_are_delivered_signed_with_mlflow_shapes() {
    let s = TestServer::spawn_with(|c, _| c.webhooks = open_config()).await;
    let (url, seen) = receiver().await;
    let created = s
        .ok(
            W,
            json!({"name": "deploy", "url": format!("{url}/hook"), "secret": "whsec",
                   "description": "ship it",
                   "events": [{"entity": "MODEL_VERSION", "action": "CREATED"},
                              {"entity": 4, "action": "DELETED"},
                              {"entity": "model_version", "action": "created"}]}),
        )
        .await;
    insta::assert_json_snapshot!("webhook_create", created, {
        ".webhook.webhook_id" => "[id]",
        ".webhook.url" => "[url]",
        ".webhook.creation_timestamp" => "[ms]",
        ".webhook.last_updated_timestamp" => "[ms]",
    });
    assert!(!created.to_string().contains("whsec"));
    let id = created["webhook"]["webhook_id"]
        .as_str()
        .expect("id")
        .to_string();
    let stored = s.store.get_webhook(&id).await.expect("stored");
    let sealed = stored.secret.expect("a sealed secret");
    assert!(!sealed.contains("whsec"), "the secret is encrypted at rest");

    s.ok(
        "/api/2.0/mlflow/registered-models/create",
        json!({"name": "m"}),
    )
    .await;
    let run = s.new_run().await;
    s.ok(
        "/api/2.0/mlflow/model-versions/create",
        json!({"name": "m", "source": format!("runs:/{run}/model"), "run_id": run,
               "description": "v1"}),
    )
    .await;
    let sender = Sender::new(open_config()).expect("sender");
    assert_eq!(sender.round(&s.store).await.expect("round"), 1);
    let got = seen.lock().expect("lock").clone();
    assert_eq!(got.len(), 1);
    let (headers, body) = &got[0];
    let h = |k: &str| headers[k].to_str().expect("ascii").to_string();
    assert_eq!(
        h("x-mlflow-signature"),
        signature(
            "whsec",
            &h("x-mlflow-delivery-id"),
            &h("x-mlflow-timestamp"),
            body
        )
    );
    assert_eq!(h("content-type"), "application/json");
    let v: Value = serde_json::from_str(body).expect("JSON");
    insta::assert_json_snapshot!("webhook_delivery", v, {
        ".timestamp" => "[iso]",
        ".data.source" => "[source]",
        ".data.run_id" => "[run]",
    });

    let (st, log) = s
        .get(&format!("/api/2.0/plumb/deliveries?webhook_id={id}"))
        .await;
    assert_eq!(st, 200, "{log}");
    insta::assert_json_snapshot!("webhook_delivery_log", log, {
        ".deliveries[].delivery_id" => "[id]",
        ".deliveries[].webhook_id" => "[id]",
        ".deliveries[].created_ms" => "[ms]",
        ".deliveries[].done_ms" => "[ms]",
    });

    // MLflow's test endpoint: a sample, signed, sent now.
    let (st, test) = send(
        &s,
        reqwest::Method::POST,
        &format!("{W}/{id}/test"),
        json!({
            "event": {"entity": "MODEL_VERSION_ALIAS", "action": "DELETED"}
        }),
    )
    .await;
    assert_eq!(st, 200, "{test}");
    assert_eq!(
        test,
        json!({"result": {"success": true, "response_status": 204}})
    );
    let last = seen.lock().expect("lock").last().cloned().expect("sample");
    let sample: Value = serde_json::from_str(&last.1).expect("JSON");
    assert_eq!(
        (sample["entity"].as_str(), sample["action"].as_str()),
        (Some("model_version_alias"), Some("deleted"))
    );
}

#[tokio::test]
async fn private_addresses_are_refused_again_when_delivering() {
    let s = TestServer::spawn().await;
    let (url, seen) = receiver().await;
    let port = url.rsplit(':').next().expect("port").to_string();
    // Stored while private addresses were allowed (or by a name that resolved elsewhere then).
    for (id, target) in [
        ("literal", url.clone()),
        ("name", format!("http://localhost:{port}")),
        ("mapped", format!("http://[::ffff:127.0.0.1]:{port}")),
    ] {
        s.store
            .create_webhook(Webhook {
                webhook_id: id.into(),
                name: id.into(),
                description: None,
                url: target,
                events: vec![("registered_model".into(), "created".into())],
                status: "ACTIVE".into(),
                secret: None,
                created_ms: 1,
                updated_ms: 1,
            })
            .await
            .expect("stored");
    }
    s.ok(
        "/api/2.0/mlflow/registered-models/create",
        json!({"name": "m"}),
    )
    .await;
    let strict = Config {
        policy: Policy {
            allowed_schemes: vec!["http".into()],
            allow_private_ips: false,
        },
        ..Config::default()
    };
    let sender = Sender::new(strict).expect("sender");
    assert_eq!(sender.round(&s.store).await.expect("round"), 3);
    assert!(
        seen.lock().expect("lock").is_empty(),
        "nothing reached 127.0.0.1"
    );
    let (_, log) = s.get("/api/2.0/plumb/deliveries?state=failed").await;
    let log = log["deliveries"].as_array().expect("list").clone();
    assert_eq!(log.len(), 3, "{log:?}");
    for d in &log {
        assert_eq!(d["attempts"], 1, "refusals are not retried: {d}");
        let e = d["error"].as_str().unwrap_or_default();
        assert!(
            e.contains("non-public") || e.contains("not a public address"),
            "{e}"
        );
    }
    // The delivery log of a monitor target reads the target back.
    assert!(matches!(
        s.store
            .list_deliveries(plumb_store::webhooks::DeliveryQuery {
                max_results: 10,
                ..Default::default()
            })
            .await
            .expect("log")[0]
            .target,
        Target::Webhook(_)
    ));
}

#[tokio::test]
async fn hostile_input_gets_4xx_and_loses_nothing() {
    let s = TestServer::spawn_with(|c, _| c.webhooks = open_config()).await;
    let good = json!({"name": "keep", "url": "http://127.0.0.1:9/x",
                      "events": [{"entity": "REGISTERED_MODEL", "action": "CREATED"}]});
    let kept = s.ok(W, good.clone()).await;
    let id = kept["webhook"]["webhook_id"]
        .as_str()
        .expect("id")
        .to_string();
    let client_error = |st: u16, b: &Value, what: &str| {
        assert!((400..500).contains(&st), "{what}: {st} {b}");
    };
    let with = |k: &str, v: Value| {
        let mut b = good.clone();
        b[k] = v;
        b
    };
    for (what, body) in [
        (
            "CRLF in url",
            with("url", json!("http://127.0.0.1:9/x\r\nX-Evil: 1")),
        ),
        (
            "long url",
            with(
                "url",
                json!(format!("http://127.0.0.1:9/{}", "a".repeat(100_000))),
            ),
        ),
        ("file url", with("url", json!("file:///etc/passwd"))),
        ("javascript url", with("url", json!("javascript:alert(1)"))),
        ("credentials", with("url", json!("http://u:p@127.0.0.1:9/"))),
        ("url as number", with("url", json!(5))),
        ("unicode name", with("name", json!("ünïcode"))),
        ("NUL name", with("name", json!("a\u{0}b"))),
        ("path name", with("name", json!("../../etc"))),
        (
            "events string",
            with("events", json!("model_version.created")),
        ),
        ("events of null", with("events", json!([null]))),
        (
            "unknown entity",
            with("events", json!([{"entity": "RUN", "action": "CREATED"}])),
        ),
        (
            "entity 0",
            with("events", json!([{"entity": 0, "action": 1}])),
        ),
        ("status", with("status", json!("MAYBE"))),
        (
            "description",
            with("description", json!("d".repeat(1_000_001))),
        ),
        ("secret", with("secret", json!("s".repeat(10_000)))),
        (
            "10000 events",
            with(
                "events",
                json!(vec![json!({"entity": "RUN", "action": "CREATED"}); 10_000]),
            ),
        ),
    ] {
        let (st, b) = s.post(W, body).await;
        client_error(st, &b, what);
    }
    let (st, b) = s.raw("POST", W, b"{\"name\": \"\xff\xfe\"}").await;
    client_error(st, &b, "invalid UTF-8");
    let (st, b) = s.raw("POST", W, b"{\"name\": ").await;
    client_error(st, &b, "truncated JSON");
    let huge = vec![b' '; 33 * 1024 * 1024];
    let (st, _) = s
        .send(
            s.client
                .post(s.url(W))
                .header("content-type", "application/json")
                .body(huge),
        )
        .await;
    assert_eq!(st, 413);
    for path in [
        format!("{W}/..%2F..%2Fetc%2Fpasswd"),
        format!("{W}/%00"),
        format!("{W}/{}", "a".repeat(10_000)),
        format!("{W}/%E2%80%AE"),
        format!("{W}/{id}%20"),
    ] {
        let (st, b) = s.get(&path).await;
        assert_eq!(
            (st, b["error_code"].as_str()),
            (404, Some("RESOURCE_DOES_NOT_EXIST")),
            "{path}"
        );
        let (st, _) = send(
            &s,
            reqwest::Method::PATCH,
            &path,
            json!({"description": "x"}),
        )
        .await;
        assert_eq!(st, 404, "{path}");
        let (st, _) = send(
            &s,
            reqwest::Method::POST,
            &format!("{path}/test"),
            json!({}),
        )
        .await;
        assert_eq!(st, 404, "{path}");
    }
    for q in [
        "?max_results=-1",
        "?max_results=1001",
        "?max_results=x",
        "?page_token=%00%ff",
    ] {
        let (st, b) = s.get(&format!("{W}{q}")).await;
        client_error(st, &b, q);
    }
    for q in [
        "?state=lost",
        "?max_results=0",
        "?max_results=abc",
        "?sneaky=1",
    ] {
        let (st, b) = s.get(&format!("/api/2.0/plumb/deliveries{q}")).await;
        client_error(st, &b, q);
    }
    let (st, b) = send(
        &s,
        reqwest::Method::PATCH,
        &format!("{W}/{id}"),
        json!({"url": "gopher://x"}),
    )
    .await;
    client_error(st, &b, "patch scheme");
    // Nothing was lost or changed by all that.
    let (_, list) = s.get(W).await;
    assert_eq!(list["webhooks"].as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list["webhooks"][0], kept["webhook"]);
    // Without a key, a secret is refused (not stored in clear).
    let keyless = TestServer::spawn_with(|c, _| {
        c.webhooks = Config {
            secrets: None,
            ..open_config()
        }
    })
    .await;
    let (st, b) = keyless.post(W, with("secret", json!("s"))).await;
    assert_eq!(st, 400);
    assert!(b["message"]
        .as_str()
        .unwrap_or_default()
        .contains("MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"));
}
