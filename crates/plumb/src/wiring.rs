//! Composition root: the only place that names concrete backends and builds `AppState`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use plumb_artifacts::ArtifactStore;
use plumb_server::{AppState, ServerConfig};
use plumb_store_sqlite::SqliteStore;
use tokio::net::TcpListener;

use crate::cli::ServerArgs;

/// `sqlite:///rel.db` (relative), `sqlite:////abs.db` (absolute), or a bare path.
fn sqlite_path(uri: &str) -> anyhow::Result<PathBuf> {
    if let Some(rest) = uri.strip_prefix("sqlite:///") {
        if rest.is_empty() {
            bail!("the backend store URI '{uri}' names no file");
        }
        return Ok(PathBuf::from(rest));
    }
    if uri.contains("://") {
        bail!(
            "unsupported backend store URI '{uri}': use sqlite:///path/to/file.db \
             (PostgreSQL support is coming)"
        );
    }
    Ok(PathBuf::from(uri))
}

fn default_artifact_root(args: &ServerArgs, serve: bool) -> anyhow::Result<String> {
    if let Some(root) = &args.default_artifact_root {
        if root.contains(':') {
            return Ok(root.clone());
        }
        let abs = std::env::current_dir()?.join(root);
        return Ok(abs.to_string_lossy().into_owned());
    }
    if serve {
        Ok("mlflow-artifacts:/".to_string())
    } else {
        Ok(std::env::current_dir()?
            .join("mlruns")
            .to_string_lossy()
            .into_owned())
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

pub async fn run_server(args: ServerArgs) -> anyhow::Result<()> {
    let serve_artifacts = !args.no_serve_artifacts;
    let root = default_artifact_root(&args, serve_artifacts)?;
    let db_path = sqlite_path(&args.backend_store_uri)?;
    let store = {
        let (path, root) = (db_path.clone(), root.clone());
        tokio::task::spawn_blocking(move || SqliteStore::open(path, &root))
            .await?
            .with_context(|| format!("cannot open the store at {}", db_path.display()))?
    };
    let artifacts = ArtifactStore::from_uri(&args.artifacts_destination).with_context(|| {
        format!(
            "cannot open the artifact destination {}",
            args.artifacts_destination
        )
    })?;
    let state = AppState {
        store: Arc::new(store.clone()),
        registry: Arc::new(store.clone()),
        artifacts,
        config: Arc::new(ServerConfig { serve_artifacts }),
    };
    let listener = TcpListener::bind((args.host.as_str(), args.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
    let addr = listener.local_addr()?;
    tracing::info!(
        %addr,
        store = %db_path.display(),
        artifacts = %args.artifacts_destination,
        default_artifact_root = %root,
        "plumb is listening on http://{addr}"
    );
    plumb_server::serve(listener, state, shutdown_signal()).await?;
    store.close().await;
    tracing::info!("stopped cleanly");
    Ok(())
}
