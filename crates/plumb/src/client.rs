//! How CLI verbs reach MLflow's REST API: over HTTP to a tracking server, or in process to plumb's
//! own router over a backend store opened directly. Every verb is written once, against this.

use std::sync::Arc;

use anyhow::{anyhow, Context};
use axum::body::Body;
use axum::http::{Method, Request};
use axum::Router;
use plumb_artifacts::ArtifactStore;
use plumb_server::{AppState, ServerConfig};
use serde_json::Value;
use tower::ServiceExt;

use crate::wiring::Backend;

/// An MLflow error answer, shown to the user as `CODE: message`.
#[derive(Debug)]
pub struct ApiError {
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

enum Transport {
    Http {
        client: reqwest::Client,
        base: String,
    },
    Local {
        router: Router,
        backend: Backend,
    },
}

/// A connection to a tracking server or store, chosen by the tracking URI.
pub struct Client {
    transport: Transport,
}

/// The largest answer read from the in-process router.
const MAX_BODY: usize = 512 * 1024 * 1024;

impl Client {
    pub async fn connect(tracking_uri: &str) -> anyhow::Result<Self> {
        Self::connect_with_artifacts(tracking_uri, None).await
    }

    /// [`Client::connect`]; a store opened directly also serves the artifacts kept in
    /// `artifacts` (the server's `--artifacts-destination`), for tools that read them.
    pub async fn connect_with_artifacts(
        tracking_uri: &str,
        artifacts: Option<&str>,
    ) -> anyhow::Result<Self> {
        if tracking_uri.starts_with("http://") || tracking_uri.starts_with("https://") {
            let client = reqwest::Client::builder()
                .build()
                .context("cannot build the HTTP client")?;
            return Ok(Self {
                transport: Transport::Http {
                    client,
                    base: tracking_uri.trim_end_matches('/').to_string(),
                },
            });
        }
        let backend = Backend::open(tracking_uri, "mlflow-artifacts:/", 2).await?;
        let state = AppState {
            store: backend.tracking(),
            registry: backend.registry(),
            all: backend.all(),
            artifacts: match artifacts {
                Some(dest) => ArtifactStore::from_uri(dest)
                    .map_err(|e| anyhow!("{}", e.message))
                    .with_context(|| format!("opening the artifact destination {dest}"))?,
                None => ArtifactStore::memory(),
            },
            config: Arc::new(ServerConfig {
                serve_artifacts: artifacts.is_some(),
                ..ServerConfig::default()
            }),
        };
        Ok(Self {
            transport: Transport::Local {
                router: plumb_server::router(state),
                backend,
            },
        })
    }

    /// Calls `/api/2.0/mlflow/<path>`: GET with `params` as the query string, POST with them as
    /// the JSON body. Answers the JSON body, or the MLflow error.
    pub async fn call(&self, method: Method, path: &str, params: Value) -> anyhow::Result<Value> {
        self.send(method, format!("/api/2.0/mlflow/{path}"), params)
            .await
    }

    /// Calls plumb's own `/api/2.0/plumb/<path>` the same way (the path's segments already
    /// percent-encoded).
    pub async fn plumb(&self, method: Method, path: &str, params: Value) -> anyhow::Result<Value> {
        self.send(method, format!("/api/2.0/plumb/{path}"), params)
            .await
    }

    async fn send(&self, method: Method, path: String, params: Value) -> anyhow::Result<Value> {
        let query = if method == Method::GET {
            let pairs: Vec<(String, String)> = params
                .as_object()
                .into_iter()
                .flatten()
                .flat_map(|(k, v)| match v {
                    Value::Array(items) => items.iter().map(|i| (k.clone(), scalar(i))).collect(),
                    other => vec![(k.clone(), scalar(other))],
                })
                .collect();
            serde_urlencoded(&pairs)
        } else {
            String::new()
        };
        let (status, bytes) = match &self.transport {
            Transport::Http { client, base } => {
                let url = if query.is_empty() {
                    format!("{base}{path}")
                } else {
                    format!("{base}{path}?{query}")
                };
                let mut req = client.request(method.clone(), &url);
                if method != Method::GET {
                    req = req.json(&params);
                }
                let resp = req
                    .send()
                    .await
                    .with_context(|| format!("cannot reach the tracking server at {base}"))?;
                let status = resp.status().as_u16();
                (
                    status,
                    resp.bytes().await.context("reading the answer")?.to_vec(),
                )
            }
            Transport::Local { router, .. } => {
                let uri = if query.is_empty() {
                    path.clone()
                } else {
                    format!("{path}?{query}")
                };
                let body = if method == Method::GET {
                    Body::empty()
                } else {
                    Body::from(params.to_string())
                };
                let req = Request::builder()
                    .method(method.clone())
                    .uri(uri)
                    .header("content-type", "application/json")
                    .body(body)
                    .context("building the request")?;
                let resp = router
                    .clone()
                    .oneshot(req)
                    .await
                    .map_err(|e| anyhow!("{e}"))?;
                let status = resp.status().as_u16();
                let bytes = axum::body::to_bytes(resp.into_body(), MAX_BODY)
                    .await
                    .context("reading the answer")?;
                (status, bytes.to_vec())
            }
        };
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(value);
        }
        Err(ApiError {
            code: value["error_code"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("HTTP {status}")),
            message: value["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned()),
        }
        .into())
    }

    /// Downloads `/get-artifact?run_id=&path=` into `file`, streamed.
    pub async fn download_artifact(
        &self,
        run_id: &str,
        path: &str,
        file: &std::path::Path,
    ) -> anyhow::Result<u64> {
        let query = serde_urlencoded(&[
            ("run_id".to_string(), run_id.to_string()),
            ("path".to_string(), path.to_string()),
        ]);
        self.download(
            &format!("/get-artifact?{query}"),
            file,
            &format!("{path} of run {run_id}"),
        )
        .await
    }

    /// One file of an MLflow 3 logged model, through the server's model-files endpoint.
    pub async fn download_model_file(
        &self,
        model_id: &str,
        path: &str,
        file: &std::path::Path,
    ) -> anyhow::Result<u64> {
        let id =
            percent_encoding::utf8_percent_encode(model_id, percent_encoding::NON_ALPHANUMERIC);
        let query = serde_urlencoded(&[("artifact_file_path".to_string(), path.to_string())]);
        let uri = format!("/ajax-api/2.0/mlflow/logged-models/{id}/artifacts/files?{query}");
        self.download(&uri, file, &format!("{path} of logged model {model_id}"))
            .await
    }

    /// Streams the body of `GET uri` into `file`; `what` names it in errors.
    async fn download(&self, uri: &str, file: &std::path::Path, what: &str) -> anyhow::Result<u64> {
        use tokio::io::AsyncWriteExt;
        if let Some(parent) = file.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        let mut out = tokio::fs::File::create(file)
            .await
            .with_context(|| format!("creating {}", file.display()))?;
        let mut written = 0u64;
        match &self.transport {
            Transport::Http { client, base } => {
                let mut resp = client
                    .get(format!("{base}{uri}"))
                    .send()
                    .await
                    .with_context(|| format!("cannot reach the tracking server at {base}"))?;
                if !resp.status().is_success() {
                    anyhow::bail!("downloading {what}: HTTP {}", resp.status());
                }
                while let Some(chunk) = resp.chunk().await? {
                    out.write_all(&chunk).await?;
                    written += chunk.len() as u64;
                }
            }
            Transport::Local { router, .. } => {
                let req = Request::builder()
                    .uri(uri)
                    .body(Body::empty())
                    .context("building the request")?;
                let resp = router
                    .clone()
                    .oneshot(req)
                    .await
                    .map_err(|e| anyhow!("{e}"))?;
                if !resp.status().is_success() {
                    anyhow::bail!("downloading {what}: HTTP {}", resp.status());
                }
                let mut stream = resp.into_body().into_data_stream();
                use futures::StreamExt;
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(|e| anyhow!("{e}"))?;
                    out.write_all(&chunk).await?;
                    written += chunk.len() as u64;
                }
            }
        }
        out.flush().await?;
        Ok(written)
    }

    /// Closes a directly opened store (flushes SQLite's writer).
    pub async fn close(self) {
        if let Transport::Local { backend, .. } = self.transport {
            backend.close().await;
        }
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `k=v&k=v` with percent-encoded keys and values.
fn serde_urlencoded(pairs: &[(String, String)]) -> String {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                utf8_percent_encode(k, NON_ALPHANUMERIC),
                utf8_percent_encode(v, NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}
