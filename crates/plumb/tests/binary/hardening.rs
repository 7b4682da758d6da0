//! Hardening on the real binary: `plumb gc` removes only the folders plumb made for deleted
//! runs (never an experiment's location, a root, a folder holding another experiment's
//! location, or anything through a symlink), and the server's connection limits and timeouts.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::cli::{db, plumb};
use crate::Plumb;

async fn run_in(server: &Plumb, experiment_id: &str) -> String {
    let run = server
        .post("runs/create", json!({"experiment_id": experiment_id}))
        .await;
    run["run"]["info"]["run_id"]
        .as_str()
        .expect("run id")
        .to_string()
}

async fn put(server: &Plumb, path: &str, body: &str) {
    let resp = reqwest::Client::new()
        .put(format!(
            "{}/api/2.0/mlflow-artifacts/artifacts/{path}",
            server.base
        ))
        .body(body.to_string())
        .send()
        .await
        .expect("upload");
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
}

fn sql(dir: &Path, statement: &str) {
    let conn = rusqlite::Connection::open(dir.join("plumb.db")).expect("open");
    conn.execute_batch(statement).expect(statement);
}

fn gone(dir: &Path, run_id: &str) -> bool {
    plumb(
        dir,
        "sqlite:///plumb.db",
        &["runs", "describe", "--run-id", run_id],
    )
    .stderr
    .contains("RESOURCE_DOES_NOT_EXIST")
}

/// Experiment 1 at `<o>/data` (a folder holding `precious.txt`), and a run in it whose client
/// wrote its artifact folder there itself; answers the run id and that folder.
async fn local_experiment_run(server: &Plumb, o: &Path) -> (String, std::path::PathBuf) {
    std::fs::create_dir_all(o.join("data")).expect("mkdir");
    std::fs::write(o.join("data/precious.txt"), "years of work").expect("write");
    server
        .post(
            "experiments/create",
            json!({"name": "local", "artifact_location": format!("file://{}/data", o.display())}),
        )
        .await;
    let run = run_in(server, "1").await;
    let artifacts = o.join("data").join(&run).join("artifacts");
    std::fs::create_dir_all(&artifacts).expect("mkdir");
    std::fs::write(artifacts.join("model.bin"), "w").expect("write");
    (run, artifacts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_removes_only_the_folders_plumb_made_for_deleted_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let outside = tempfile::tempdir().expect("outside");
    let o = outside.path();
    std::fs::create_dir_all(o.join("target")).expect("mkdir");
    std::fs::write(o.join("target/linked.txt"), "not yours").expect("write");

    let server = Plumb::start(d).await;
    // Experiment 1: a local folder outside every root gc may touch.
    let (local_run, local_artifacts) = local_experiment_run(&server, o).await;
    // Experiment 2: proxied; one run holds a symlink out, one gets a hostile stored URI.
    server
        .post("experiments/create", json!({"name": "proxied"}))
        .await;
    let linked_run = run_in(&server, "2").await;
    put(&server, &format!("2/{linked_run}/artifacts/model.bin"), "w").await;
    symlink(
        o.join("target"),
        d.join(format!("mlartifacts/2/{linked_run}/artifacts/out")),
    )
    .expect("symlink");
    let hostile_run = run_in(&server, "2").await;
    // Experiment 3: its run's folder will be claimed by experiment 4's (forged) location.
    server
        .post("experiments/create", json!({"name": "shared"}))
        .await;
    let shared_run = run_in(&server, "3").await;
    put(&server, &format!("3/{shared_run}/artifacts/model.bin"), "w").await;
    server
        .post("experiments/create", json!({"name": "squatter"}))
        .await;
    // The Default experiment: its run, and files of its own and of others in the store.
    let default_run = run_in(&server, "0").await;
    put(
        &server,
        &format!("0/{default_run}/artifacts/model.bin"),
        "w",
    )
    .await;
    put(&server, "0/keep.txt", "experiment-level file").await;
    put(&server, "other/file.txt", "someone else's").await;

    for id in ["0", "1", "2"] {
        server
            .post("experiments/delete", json!({"experiment_id": id}))
            .await;
    }
    server
        .post("runs/delete", json!({"run_id": shared_run}))
        .await;
    drop(server);
    // What older versions let clients store: the proxy root as a location, escapes as URIs.
    sql(
        d,
        &format!(
            "UPDATE experiments SET artifact_location = 'mlflow-artifacts:/' WHERE experiment_id = 2;
             UPDATE runs SET artifact_uri = 'mlflow-artifacts:/../../' WHERE run_uuid = '{hostile_run}';
             UPDATE experiments SET artifact_location = 'mlflow-artifacts:/3/{shared_run}/x'
               WHERE experiment_id = 4;"
        ),
    );

    let out = db(d, &["gc"]);
    assert!(out.ok, "{}\n{}", out.stdout, out.stderr);
    let art = d.join("mlartifacts");
    assert!(
        !art.join(format!("0/{default_run}")).exists(),
        "run folder removed"
    );
    assert!(
        !art.join(format!("2/{linked_run}")).exists(),
        "run folder removed"
    );
    assert!(
        art.join("0/keep.txt").exists(),
        "experiment-level file kept"
    );
    assert!(art.join("other/file.txt").exists(), "other folders kept");
    assert!(
        art.join(format!("3/{shared_run}/artifacts/model.bin"))
            .exists(),
        "a folder holding another experiment's location is left"
    );
    assert_eq!(
        std::fs::read_to_string(o.join("target/linked.txt")).expect("link target kept"),
        "not yours"
    );
    assert!(
        o.join("data/precious.txt").exists(),
        "experiment location kept"
    );
    assert!(
        local_artifacts.join("model.bin").exists(),
        "outside every root: left in place"
    );
    for needle in [
        format!("run {local_run}: artifacts left in place"),
        format!("run {hostile_run}: artifacts left in place"),
        format!("run {shared_run}: artifacts left in place"),
        "the artifact location of experiment 4".to_string(),
    ] {
        assert!(
            out.stderr.contains(&needle),
            "{needle:?} not in {}",
            out.stderr
        );
    }
    for run in [
        &default_run,
        &local_run,
        &linked_run,
        &hostile_run,
        &shared_run,
    ] {
        assert!(gone(d, run), "run {run} purged");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_removes_local_run_folders_under_an_operator_root_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let outside = tempfile::tempdir().expect("outside");
    let o = outside.path();
    let server = Plumb::start(d).await;
    let (run, _) = local_experiment_run(&server, o).await;
    server
        .post("experiments/delete", json!({"experiment_id": "1"}))
        .await;
    drop(server);
    let root = o.to_string_lossy().into_owned();
    let out = db(d, &["gc", "--artifact-root", &root]);
    assert!(out.ok, "{}", out.stderr);
    assert!(!o.join("data").join(&run).exists(), "run folder removed");
    assert!(
        o.join("data/precious.txt").exists(),
        "experiment folder kept"
    );
    assert!(gone(d, &run));
}

/// Reads until the server closes the connection (or `limit` passes): true when it closed.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_slow_and_surplus_connections_are_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Plumb::start_with(
        dir.path(),
        &[
            // Long enough that a loaded CI machine still sends the requests below before the
            // silent connections time out.
            "--idle-timeout",
            "3s",
            "--header-timeout",
            "3s",
            "--max-connections",
            "8",
        ],
    )
    .await;
    let addr = server.base.trim_start_matches("http://").to_string();
    // The open-file limit was raised to its hard limit.
    let limits =
        std::fs::read_to_string(format!("/proc/{}/limits", server.child.id())).expect("limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("line");
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cols[3], cols[4], "{line}");

    // 20 silent connections: 8 take the slots, the rest spare ones.
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(TcpStream::connect(&addr).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let health = client
        .get(format!("{}/health", server.base))
        .send()
        .await
        .expect("health");
    assert_eq!(
        health.status().as_u16(),
        200,
        "/health answers past the cap"
    );
    let busy = client
        .get(format!(
            "{}/api/2.0/mlflow/experiments/search?max_results=1",
            server.base
        ))
        .send()
        .await
        .expect("search");
    assert_eq!(busy.status().as_u16(), 503, "other requests: try again");
    let body: Value = busy.json().await.expect("json");
    assert_eq!(body["error_code"], "TEMPORARILY_UNAVAILABLE");
    // Silent connections are closed by the server.
    for stream in &mut idle {
        assert!(closed_within(stream, Duration::from_secs(10)).await);
    }
    let ok = client
        .get(format!(
            "{}/api/2.0/mlflow/experiments/search?max_results=1",
            server.base
        ))
        .send()
        .await
        .expect("search");
    assert_eq!(ok.status().as_u16(), 200, "slots free again");

    // Headers sent too slowly, a body that stops half-way, and a keep-alive connection that
    // goes quiet after an answer: all closed (opened together, so their timeouts overlap).
    let mut slow = TcpStream::connect(&addr).await.expect("connect");
    slow.write_all(b"GET /health HTTP/1.1\r\nHo")
        .await
        .expect("write");
    let mut stalled = TcpStream::connect(&addr).await.expect("connect");
    stalled
        .write_all(
            format!(
                "PUT /api/2.0/mlflow-artifacts/artifacts/0/x.bin HTTP/1.1\r\nHost: {addr}\r\n\
                 Content-Length: 1000\r\n\r\nonly-a-little"
            )
            .as_bytes(),
        )
        .await
        .expect("write");
    let mut quiet = TcpStream::connect(&addr).await.expect("connect");
    quiet
        .write_all(format!("GET /health HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .expect("write");
    for stream in [&mut slow, &mut stalled, &mut quiet] {
        assert!(closed_within(stream, Duration::from_secs(10)).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staging_files_of_interrupted_uploads_are_removed_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let art = dir.path().join("mlartifacts/1/run/artifacts");
    std::fs::create_dir_all(&art).expect("mkdir");
    std::fs::write(art.join("model.bin#3"), "half an upload").expect("write");
    std::fs::write(art.join("model.bin"), "a whole one").expect("write");
    let _server = Plumb::start(dir.path()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while art.join("model.bin#3").exists() {
        assert!(tokio::time::Instant::now() < deadline, "staging file left");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(art.join("model.bin").exists());
}

/// The hostile request corpus on PostgreSQL (each a 4xx, never a 5xx), over TLS: the URI's
/// `sslmode` is honoured (the machine's server has TLS on, as Debian sets it up).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_over_tls_answers_the_hostile_corpus_with_4xx() {
    use sqlx::Connection;
    let admin = crate::pg::admin_url();
    let mut c = sqlx::PgConnection::connect(&admin).await.expect("admin");
    let ssl: String = sqlx::query_scalar("SHOW ssl")
        .fetch_one(&mut c)
        .await
        .expect("show ssl");
    assert_eq!(
        ssl, "on",
        "the test server must have TLS on (Debian's default)"
    );
    let db = crate::pg::TempDb::create(&admin).await;
    let url = format!("{}?sslmode=require", db.url());
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Plumb::start_with(dir.path(), &["--backend-store-uri", &url]).await;
    let encrypted: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
         WHERE a.datname = $1 AND a.application_name = 'plumb' AND s.ssl",
    )
    .bind(&db.name)
    .fetch_one(&mut c)
    .await
    .expect("pg_stat_ssl");
    assert!(encrypted > 0, "plumb's connections use TLS");

    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        client
            .post(format!("{}/api/2.0/mlflow/{path}", server.base))
            .json(&body)
            .send()
    };
    let clauses = |n: usize| {
        (0..n)
            .map(|i| format!("params.p{i} = 'x'"))
            .collect::<Vec<_>>()
            .join(" and ")
    };
    let ids: Vec<String> = (0..70_000).map(|i| i.to_string()).collect();
    let items: Vec<String> = (0..70_000).map(|i| format!("'{i}'")).collect();
    let keys: Vec<String> = (0..70).map(|i| format!("metrics.m{i}")).collect();
    let corpus = [
        (
            "runs/search",
            json!({"experiment_ids": ["0"], "filter": clauses(120)}),
        ),
        (
            "runs/search",
            json!({"experiment_ids": ["0"], "filter": clauses(10_000)}),
        ),
        ("runs/search", json!({"experiment_ids": ids})),
        (
            "runs/search",
            json!({"experiment_ids": ["0"], "filter": format!("attributes.run_id IN ({})", items.join(","))}),
        ),
        (
            "runs/search",
            json!({"experiment_ids": ["0"], "order_by": keys}),
        ),
        (
            "experiments/create",
            json!({"name": "x", "artifact_location": "mlflow-artifacts:/"}),
        ),
        (
            "experiments/create",
            json!({"name": "y", "artifact_location": "/tmp/a\u{0}b"}),
        ),
        ("registered-models/create", json!({"name": "a\u{0}b"})),
    ];
    for (path, body) in corpus {
        let resp = post(path, body).await.expect("send");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("text");
        assert_eq!(status, 400, "{path}: {text}");
    }
}

/// plumb's statements of database `name` waiting on a lock (the background `ANALYZE`, which
/// may start meanwhile and wait on the same lock, left out).
async fn waiting(c: &mut sqlx::PgConnection, name: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1
         AND application_name = 'plumb' AND state = 'active' AND wait_event_type = 'Lock'
         AND query NOT ILIKE 'analyze%'",
    )
    .bind(name)
    .fetch_one(c)
    .await
    .expect("pg_stat_activity")
}

/// A search whose client went away is cancelled in PostgreSQL, not left running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_search_is_cancelled_in_postgres() {
    use sqlx::Connection;
    let admin = crate::pg::admin_url();
    let db = crate::pg::TempDb::create(&admin).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let url = db.url();
    let server = Plumb::start_with(
        dir.path(),
        &[
            "--backend-store-uri",
            &url,
            "--db-statement-timeout",
            "5min",
        ],
    )
    .await;
    let db_admin = format!("{}/{}", admin.rsplit_once('/').expect("url").0, db.name);
    let mut blocker = sqlx::PgConnection::connect(&db_admin)
        .await
        .expect("connect");
    sqlx::query("BEGIN")
        .execute(&mut blocker)
        .await
        .expect("begin");
    sqlx::query("LOCK TABLE runs IN ACCESS EXCLUSIVE MODE")
        .execute(&mut blocker)
        .await
        .expect("lock");
    let mut watcher = sqlx::PgConnection::connect(&admin).await.expect("connect");
    let addr = server.base.trim_start_matches("http://").to_string();
    let mut client = TcpStream::connect(&addr).await.expect("connect");
    let body = r#"{"experiment_ids": ["0"]}"#;
    client
        .write_all(
            format!(
                "POST /api/2.0/mlflow/runs/search HTTP/1.1\r\nHost: {addr}\r\nContent-Type: \
                 application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .expect("write");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while waiting(&mut watcher, &db.name).await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "search never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(client); // the client gives up
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while waiting(&mut watcher, &db.name).await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the abandoned search still runs in PostgreSQL"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sqlx::query("ROLLBACK")
        .execute(&mut blocker)
        .await
        .expect("rollback");
    // The server goes on answering (the connection was not poisoned).
    let resp = reqwest::Client::new()
        .post(format!("{}/api/2.0/mlflow/runs/search", server.base))
        .json(&json!({"experiment_ids": ["0"]}))
        .send()
        .await
        .expect("search");
    assert_eq!(resp.status().as_u16(), 200);
}
