//! Test harness: a server on an ephemeral port with a fresh SQLite store and artifact folder.

use std::sync::Arc;

use plumb_artifacts::ArtifactStore;
use plumb_server::{AppState, ServerConfig};
use plumb_store_sqlite::SqliteStore;
use serde_json::Value;
use tokio::sync::oneshot;

pub struct TestServer {
    pub base: String,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
    /// The server's store, for tests that run background work (monitor evaluation) by hand.
    pub store: Arc<dyn plumb_store::Store>,
    _stop: oneshot::Sender<()>,
}

impl TestServer {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_, _| {}).await
    }

    /// A server whose configuration `tune` adjusts (given the test's folder).
    pub async fn spawn_with(tune: impl FnOnce(&mut ServerConfig, &std::path::Path)) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            SqliteStore::open(dir.path().join("plumb.db"), "mlflow-artifacts:/").expect("store");
        let artifacts = ArtifactStore::local(dir.path().join("artifacts")).expect("artifacts");
        let all: Arc<dyn plumb_store::Store> = Arc::new(store.clone());
        let state = AppState {
            store: Arc::new(store.clone()),
            registry: Arc::new(store),
            all: all.clone(),
            artifacts,
            config: Arc::new({
                let mut config = ServerConfig::default();
                tune(&mut config, dir.path());
                config
            }),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(plumb_server::serve(listener, state, async {
            let _ = stopped.await;
        }));
        Self {
            base,
            client: reqwest::Client::new(),
            dir,
            store: all,
            _stop: stop,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POST JSON; returns (status, body as JSON or `Null`).
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("send");
        split(resp).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        split(self.client.get(self.url(path)).send().await.expect("send")).await
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        split(req.send().await.expect("send")).await
    }

    /// Sends `path` byte for byte (no client-side URL normalisation) and reads the answer.
    pub async fn raw(&self, method: &str, path: &str, body: &[u8]) -> (u16, Value) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.base.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.expect("write head");
        stream.write_all(body).await.expect("write body");
        let mut buf = Vec::new();
        stream.read_to_end(&mut buf).await.expect("read");
        let text = String::from_utf8_lossy(&buf);
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status line");
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    }

    /// Creates a run in the Default experiment and returns its id.
    pub async fn new_run(&self) -> String {
        let run = self
            .ok(
                "/api/2.0/mlflow/runs/create",
                serde_json::json!({"experiment_id": "0"}),
            )
            .await;
        run["run"]["info"]["run_id"]
            .as_str()
            .expect("run id")
            .to_string()
    }

    /// POST that must succeed.
    pub async fn ok(&self, path: &str, body: Value) -> Value {
        let (status, v) = self.post(path, body).await;
        assert_eq!(status, 200, "{path}: {v}");
        v
    }
}

pub async fn split(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}
