//! The real `plumb` binary: readiness, graceful SIGTERM, no acknowledged write lost to kill -9,
//! streamed artifacts; on PostgreSQL: replicas sharing one database, and database restarts.

mod check;
mod cli;
mod hardening;
mod monitoring;
mod pg;
mod pg_schema;
mod replicas;
mod restarts;
mod s3;
mod webhooks;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub(crate) struct Plumb {
    pub(crate) child: Child,
    pub(crate) base: String,
}

/// A test that fails half-way must not leave servers behind.
impl Drop for Plumb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

impl Plumb {
    pub(crate) async fn start(dir: &Path) -> Self {
        Self::start_with(dir, &[]).await
    }

    /// Starts `plumb server` in `dir` with extra flags and waits for `/health`.
    pub(crate) async fn start_with(dir: &Path, extra: &[&str]) -> Self {
        Self::start_env(dir, extra, &[]).await
    }

    /// [`Plumb::start_with`] with extra environment variables.
    pub(crate) async fn start_env(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_plumb"))
            .args(["server", "--port", &port.to_string()])
            .args(extra)
            .envs(env.iter().copied())
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn plumb");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = reqwest::get(format!("{base}/health")).await {
                if r.status().is_success() {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "plumb did not become ready");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Self { child, base }
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> Value {
        let resp = reqwest::Client::new()
            .post(format!("{}/api/2.0/mlflow/{path}", self.base))
            .json(&body)
            .send()
            .await
            .expect("send");
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        resp.json().await.expect("json")
    }
}

#[tokio::test]
async fn sigterm_stops_cleanly_and_leaves_a_checkpointed_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut plumb = Plumb::start(dir.path()).await;
    plumb.post("experiments/create", json!({"name": "e"})).await;
    let status = Command::new("kill")
        .args(["-TERM", &plumb.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = plumb.child.wait().expect("wait");
    assert!(exit.success(), "exit status {exit:?}");
    let wal = dir.path().join("plumb.db-wal");
    assert!(
        !wal.exists() || std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0) == 0,
        "WAL left behind"
    );
    assert!(dir.path().join("plumb.db").exists());
}

#[tokio::test]
async fn kill_9_loses_no_acknowledged_point() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut plumb = Plumb::start(dir.path()).await;
    let run = plumb
        .post("runs/create", json!({"experiment_id": "0"}))
        .await;
    let run_id = run["run"]["info"]["run_id"]
        .as_str()
        .expect("run id")
        .to_string();
    let mut tasks = Vec::new();
    for w in 0..8i64 {
        let (base, run_id) = (plumb.base.clone(), run_id.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            for i in 0..50i64 {
                let step = w * 1000 + i;
                let resp = client
                    .post(format!("{base}/api/2.0/mlflow/runs/log-metric"))
                    .json(&json!({"run_id": run_id, "key": "x", "value": step, "timestamp": step, "step": step}))
                    .send()
                    .await
                    .expect("send");
                assert!(resp.status().is_success());
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    plumb.child.kill().expect("kill -9");
    plumb.child.wait().expect("wait");

    let mut again = Plumb::start(dir.path()).await;
    let resp: Value = reqwest::get(format!(
        "{}/api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key=x",
        again.base
    ))
    .await
    .expect("history")
    .json()
    .await
    .expect("json");
    assert_eq!(resp["metrics"].as_array().map(Vec::len), Some(400));
    again.child.kill().expect("kill");
    again.child.wait().expect("wait");
}

/// Peak resident memory of a process, from /proc (Linux).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[tokio::test]
async fn large_artifacts_stream_through_without_being_held_in_memory() {
    const CHUNK: usize = 1024 * 1024;
    const CHUNKS: usize = 256; // 256 MiB each way
    let dir = tempfile::tempdir().expect("tempdir");
    let mut plumb = Plumb::start(dir.path()).await;
    let url = format!(
        "{}/api/2.0/mlflow-artifacts/artifacts/1/run/artifacts/big.bin",
        plumb.base
    );
    let body = futures_stream(CHUNK, CHUNKS);
    let resp = reqwest::Client::new()
        .put(&url)
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .expect("upload");
    assert!(resp.status().is_success(), "{}", resp.status());
    assert_eq!(
        std::fs::metadata(dir.path().join("mlartifacts/1/run/artifacts/big.bin"))
            .expect("stored")
            .len(),
        (CHUNK * CHUNKS) as u64
    );
    let mut resp = reqwest::get(&url).await.expect("download");
    assert!(resp.status().is_success());
    let mut total = 0usize;
    let mut expected_byte = 0u8;
    while let Some(chunk) = resp.chunk().await.expect("chunk") {
        for b in chunk.iter() {
            assert_eq!(*b, expected_byte);
            expected_byte = expected_byte.wrapping_add(1);
        }
        total += chunk.len();
    }
    assert_eq!(total, CHUNK * CHUNKS);
    let peak_mib = peak_rss_kib(plumb.child.id()) / 1024;
    eprintln!("plumb peak RSS moving 256 MiB each way: {peak_mib} MiB");
    assert!(
        peak_mib < 128,
        "plumb peaked at {peak_mib} MiB moving 256 MiB each way"
    );
    plumb.child.kill().expect("kill");
    plumb.child.wait().expect("wait");
}

/// `chunks` chunks of `size` bytes counting 0, 1, 2, ... (mod 256), produced lazily.
fn futures_stream(
    size: usize,
    chunks: usize,
) -> impl futures::stream::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    let mut next = 0u8;
    futures::stream::iter((0..chunks).map(move |_| {
        let chunk: Vec<u8> = (0..size)
            .map(|_| {
                let b = next;
                next = next.wrapping_add(1);
                b
            })
            .collect();
        Ok(chunk)
    }))
}
