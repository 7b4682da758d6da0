//! Hostile input (issue: hardening): experiment locations plumb cannot own, symlinks in local
//! artifact folders, oversized filters, names and bodies, foreign `Host`s and origins. Each is a
//! clear 4xx in MLflow's shape, and nothing outside the artifact root is touched.

use std::os::unix::fs::symlink;

use serde_json::{json, Value};

use crate::support::TestServer;

fn assert_invalid(status: u16, body: &Value, needle: &str) {
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error_code"], "INVALID_PARAMETER_VALUE", "{body}");
    let message = body["message"].as_str().unwrap_or("");
    assert!(message.contains(needle), "{needle:?} not in {message:?}");
}

#[tokio::test]
async fn experiment_locations_plumb_cannot_own_are_refused() {
    let s = TestServer::spawn_with(|c, dir| {
        c.protected_roots = vec![dir.join("artifacts")];
    })
    .await;
    let artifacts = s.dir.path().join("artifacts");
    let create = |name: &str, loc: &str| {
        let body = json!({"name": name, "artifact_location": loc});
        let s = &s;
        async move { s.post("/api/2.0/mlflow/experiments/create", body).await }
    };
    let refused = [
        "mlflow-artifacts:/",
        "mlflow-artifacts:",
        "mlflow-artifacts:/team/../0",
        "mlflow-artifacts:/%2e%2e/x",
        "mlflow-artifacts:/0",
        "mlflow-artifacts:/0/inside-default",
        "mlflow-artifacts:/7",
        "mlflow-artifacts:/12/x",
        "file:///tmp/x/../../etc",
        "/tmp/with\0nul",
        "/tmp/with\nnewline",
        "relative/../escape",
        &format!("file://{}", artifacts.display()),
        &format!("file://{}", s.dir.path().display()),
        &format!("{}/3", artifacts.display()),
        "/",
        "s3://bucket/../other",
    ];
    for (i, loc) in refused.iter().enumerate() {
        let (status, body) = create(&format!("bad-{i}"), loc).await;
        assert_eq!(status, 400, "{loc:?} was accepted: {body}");
        assert_invalid(status, &body, "artifact_location");
    }
    // Places no one owns yet are fine, once; then their insides and outsides are taken.
    for (i, loc) in [
        "mlflow-artifacts:/team-a",
        "mlflow-artifacts:/team-ab",
        "s3://bucket/x",
        "file:///srv/ml/exp",
    ]
    .iter()
    .enumerate()
    {
        let (status, body) = create(&format!("ok-{i}"), loc).await;
        assert_eq!(status, 200, "{loc}: {body}");
    }
    for (i, loc) in [
        "mlflow-artifacts:/team-a/sub",
        "mlflow-artifacts://host:5000/team-a",
        "s3://bucket/x/y",
        "s3://bucket",
        "/srv/ml",
        "file:///srv/ml/exp/run",
    ]
    .iter()
    .enumerate()
    {
        let (status, body) = create(&format!("overlap-{i}"), loc).await;
        assert_invalid(
            status,
            &body,
            "overlaps the artifact location of experiment",
        );
    }
    // Nothing was stored for the refused ones.
    let (_, listed) = s
        .post(
            "/api/2.0/mlflow/experiments/search",
            json!({"max_results": 1000, "view_type": "ALL"}),
        )
        .await;
    assert_eq!(listed["experiments"].as_array().map(Vec::len), Some(5));
}

#[tokio::test]
async fn artifact_delete_and_list_never_follow_symlinks() {
    let s = TestServer::spawn().await;
    let outside = tempfile::tempdir().expect("outside");
    std::fs::write(outside.path().join("precious.txt"), "keep me").expect("write");
    let root = s.dir.path().join("artifacts");
    let run = root.join("1/run/artifacts");
    std::fs::create_dir_all(&run).expect("mkdir");
    std::fs::write(run.join("model.bin"), "weights").expect("write");
    symlink(outside.path(), run.join("link-out")).expect("symlink");
    symlink(run.join("loop"), run.join("loop")).expect("loop");
    symlink(outside.path(), root.join("1/linked")).expect("symlink");

    // A listing skips the loop and the link that leads out instead of failing.
    let (status, listed) = s
        .get("/api/2.0/mlflow-artifacts/artifacts?path=1/run/artifacts")
        .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(
        listed,
        json!({"files": [{"path": "model.bin", "is_dir": false, "file_size": 7}]})
    );
    // Deleting through a symlinked folder is refused; the target stays.
    let del = s
        .client
        .delete(s.url("/api/2.0/mlflow-artifacts/artifacts/1/linked/precious.txt"))
        .send()
        .await
        .expect("delete");
    assert_eq!(del.status().as_u16(), 400);
    // Deleting the run's folder removes the links themselves, never what they point to.
    let del = s
        .client
        .delete(s.url("/api/2.0/mlflow-artifacts/artifacts/1/run"))
        .send()
        .await
        .expect("delete");
    assert_eq!(del.status().as_u16(), 200);
    assert!(!root.join("1/run").exists());
    assert_eq!(
        std::fs::read_to_string(outside.path().join("precious.txt")).expect("still there"),
        "keep me"
    );
}

#[tokio::test]
async fn local_roots_resolving_outside_their_experiment_are_not_served() {
    let s = TestServer::spawn().await;
    let exp_dir = s.dir.path().join("local-exp");
    std::fs::create_dir_all(&exp_dir).expect("mkdir");
    let outside = tempfile::tempdir().expect("outside");
    std::fs::write(outside.path().join("secret.txt"), "top secret").expect("write");
    let exp = s
        .ok(
            "/api/2.0/mlflow/experiments/create",
            json!({"name": "local", "artifact_location": format!("file://{}", exp_dir.display())}),
        )
        .await;
    let exp_id = exp["experiment_id"].as_str().expect("id").to_string();
    let mut runs = Vec::new();
    for _ in 0..2 {
        let run = s
            .ok(
                "/api/2.0/mlflow/runs/create",
                json!({"experiment_id": exp_id}),
            )
            .await;
        runs.push(
            run["run"]["info"]["run_id"]
                .as_str()
                .expect("id")
                .to_string(),
        );
    }
    // Run 0: a real folder (served). Run 1: its artifacts folder is a symlink out.
    let good = exp_dir.join(&runs[0]).join("artifacts");
    std::fs::create_dir_all(&good).expect("mkdir");
    std::fs::write(good.join("secret.txt"), "mine").expect("write");
    std::fs::create_dir_all(exp_dir.join(&runs[1])).expect("mkdir");
    symlink(outside.path(), exp_dir.join(&runs[1]).join("artifacts")).expect("symlink");

    let (status, _) = s
        .get(&format!("/get-artifact?run_id={}&path=secret.txt", runs[0]))
        .await;
    assert_eq!(status, 200);
    for path in [
        format!("/get-artifact?run_id={}&path=secret.txt", runs[1]),
        format!("/api/2.0/mlflow/artifacts/list?run_id={}", runs[1]),
    ] {
        let resp = s.client.get(s.url(&path)).send().await.expect("get");
        assert_eq!(resp.status().as_u16(), 400, "{path}");
        let text = resp.text().await.expect("text");
        assert!(!text.contains("top secret"), "{text}");
    }
}

#[tokio::test]
async fn oversized_searches_names_paths_and_bodies_are_4xx() {
    let s = TestServer::spawn().await;
    let clauses = |n: usize| {
        (0..n)
            .map(|i| format!("metrics.m{i} > 0"))
            .collect::<Vec<_>>()
            .join(" and ")
    };
    for n in [41, 64, 200, 10_000] {
        let (status, body) = s
            .post(
                "/api/2.0/mlflow/runs/search",
                json!({"experiment_ids": ["0"], "filter": clauses(n)}),
            )
            .await;
        assert_invalid(status, &body, "at most 40");
    }
    let keys: Vec<String> = (0..64).map(|i| format!("metrics.m{i}")).collect();
    let (status, body) = s
        .post(
            "/api/2.0/mlflow/runs/search",
            json!({"experiment_ids": ["0"], "order_by": keys}),
        )
        .await;
    assert_invalid(status, &body, "at most 10");
    let ids: Vec<String> = (0..40_000).map(|i| i.to_string()).collect();
    for path in [
        "/api/2.0/mlflow/runs/search",
        "/api/2.0/mlflow/logged-models/search",
    ] {
        let (status, body) = s.post(path, json!({"experiment_ids": ids})).await;
        assert_invalid(status, &body, "experiment_ids");
    }
    let items: Vec<String> = (0..40_000).map(|i| format!("'{i}'")).collect();
    let (status, body) = s
        .post(
            "/api/2.0/mlflow/runs/search",
            json!({"experiment_ids": ["0"], "filter": format!("attributes.run_id IN ({})", items.join(","))}),
        )
        .await;
    assert_invalid(status, &body, "IN lists");

    // A path segment longer than a file name may be, on every artifact surface.
    let long = "n".repeat(300);
    let run = s.new_run().await;
    for (method, path) in [
        (
            "PUT",
            format!("/api/2.0/mlflow-artifacts/artifacts/0/{long}"),
        ),
        (
            "GET",
            format!("/api/2.0/mlflow-artifacts/artifacts/0/{long}"),
        ),
        (
            "DELETE",
            format!("/api/2.0/mlflow-artifacts/artifacts/0/{long}"),
        ),
        (
            "GET",
            format!("/api/2.0/mlflow-artifacts/artifacts?path=0/{long}"),
        ),
        ("GET", format!("/get-artifact?run_id={run}&path={long}")),
        (
            "GET",
            format!("/api/2.0/mlflow/artifacts/list?run_id={run}&path={long}"),
        ),
    ] {
        let (status, body) = s.raw(method, &path, b"x").await;
        assert_invalid(status, &body, "longer than 255 bytes");
    }

    for name in ["nul\0name", "bell\u{7}", "line\nbreak"] {
        let (status, body) = s
            .post(
                "/api/2.0/mlflow/registered-models/create",
                json!({"name": name}),
            )
            .await;
        assert_invalid(status, &body, "control characters");
    }

    // A declared body over the limit is answered at once with 413, without reading it.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /api/2.0/mlflow/runs/log-batch HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 68719476736\r\n\r\n{{"
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut buf))
        .await
        .expect("answered without waiting for the body")
        .expect("read");
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("Request body too large"), "{text}");
}

#[tokio::test]
async fn foreign_hosts_and_origins_are_refused_and_headers_are_set() {
    let s = TestServer::spawn_with(|c, _| {
        c.security.allowed_hosts = plumb_server::default_allowed_hosts("127.0.0.1");
        c.security.cors_allowed_origins = vec!["https://app.example".into()];
    })
    .await;
    let search = s.url("/api/2.0/mlflow/experiments/search?max_results=10");
    let ok = s.client.get(&search).send().await.expect("get");
    assert_eq!(ok.status().as_u16(), 200);
    let h = ok.headers();
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "SAMEORIGIN");
    assert!(h.contains_key("content-security-policy"));

    let rebound = s
        .client
        .get(&search)
        .header("host", "attacker.example:5000")
        .send()
        .await
        .expect("get");
    assert_eq!(rebound.status().as_u16(), 403);
    let body: Value = rebound.json().await.expect("json");
    assert_eq!(body["error_code"], "PERMISSION_DENIED");
    let health = s
        .client
        .get(s.url("/health"))
        .header("host", "attacker.example")
        .send()
        .await
        .expect("health");
    assert_eq!(health.status().as_u16(), 200, "/health is exempt");

    let create = s.url("/api/2.0/mlflow/experiments/create");
    let foreign = s
        .client
        .post(&create)
        .header("origin", "https://evil.example")
        .json(&json!({"name": "csrf"}))
        .send()
        .await
        .expect("post");
    assert_eq!(foreign.status().as_u16(), 403);
    let allowed = s
        .client
        .post(&create)
        .header("origin", "https://app.example")
        .json(&json!({"name": "from-app"}))
        .send()
        .await
        .expect("post");
    assert_eq!(allowed.status().as_u16(), 200);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let preflight = s
        .client
        .request(reqwest::Method::OPTIONS, &create)
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .expect("options");
    assert_eq!(preflight.status().as_u16(), 204);
    let same_origin = s
        .client
        .post(&create)
        .header("origin", s.base.clone())
        .json(&json!({"name": "same-origin"}))
        .send()
        .await
        .expect("post");
    assert_eq!(same_origin.status().as_u16(), 200);
}

#[tokio::test]
async fn version_sources_never_trust_the_host_header() {
    // Any Host is answered here, so only the configured names may vouch for a source.
    let s = TestServer::spawn().await;
    let run = s.new_run().await;
    s.ok(
        "/api/2.0/mlflow/registered-models/create",
        json!({"name": "m"}),
    )
    .await;
    let source =
        format!("http://evil.example/api/2.0/mlflow-artifacts/artifacts/0/{run}/artifacts/model");
    let resp = s
        .client
        .post(s.url("/api/2.0/mlflow/model-versions/create"))
        .header("host", "evil.example")
        .json(&json!({"name": "m", "source": source, "run_id": run}))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status().as_u16(), 400);
    let ok = s
        .ok(
            "/api/2.0/mlflow/model-versions/create",
            json!({"name": "m", "source": format!("mlflow-artifacts:/0/{run}/artifacts/model"), "run_id": run}),
        )
        .await;
    assert_eq!(ok["model_version"]["version"], "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_racing_uploads_into_its_folder_is_never_5xx() {
    let s = TestServer::spawn().await;
    let folder = s.dir.path().display().to_string();
    for round in 0..5 {
        let mut uploads = Vec::new();
        for i in 0..40 {
            let (client, url) = (
                s.client.clone(),
                s.url(&format!(
                    "/api/2.0/mlflow-artifacts/artifacts/race/{round}/d{}/f{i}.bin",
                    i % 4
                )),
            );
            uploads.push(tokio::spawn(async move {
                let resp = client
                    .put(url)
                    .body("x".repeat(4096))
                    .send()
                    .await
                    .expect("put");
                (
                    resp.status().as_u16(),
                    resp.text().await.unwrap_or_default(),
                )
            }));
        }
        let mut deletes = Vec::new();
        for _ in 0..4 {
            let (client, url) = (
                s.client.clone(),
                s.url(&format!("/api/2.0/mlflow-artifacts/artifacts/race/{round}")),
            );
            deletes.push(tokio::spawn(async move {
                let resp = client.delete(url).send().await.expect("delete");
                (
                    resp.status().as_u16(),
                    resp.text().await.unwrap_or_default(),
                )
            }));
        }
        for u in uploads {
            let (status, text) = u.await.expect("join");
            assert!(status < 500, "upload answered {status}: {text}");
            assert!(!text.contains(&folder), "a server folder leaked: {text}");
        }
        for d in deletes {
            let (status, text) = d.await.expect("join");
            assert!(status < 500, "delete answered {status}: {text}");
            assert!(!text.contains(&folder), "a server folder leaked: {text}");
        }
    }
}
