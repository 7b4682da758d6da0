//! Composition root: the only place that names concrete backends and builds `AppState`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use plumb_artifacts::ArtifactStore;
use plumb_server::{AppState, ServerConfig};
use plumb_store::{RegistryStore, TrackingStore};
use plumb_store_postgres::{PgOptions, PgStore};
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
            "unsupported backend store URI '{uri}': use sqlite:///path/to/file.db or \
             postgresql://user:password@host:port/database"
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

/// (database schema version, this binary's) of the store a URI names, changing nothing.
pub async fn schema_status(uri: &str) -> anyhow::Result<(i64, i64)> {
    if plumb_store_postgres::normalize_url(uri).is_some() {
        return Ok(plumb_store_postgres::schema_status(uri).await?);
    }
    let path = sqlite_path(uri)?;
    Ok(tokio::task::spawn_blocking(move || plumb_store_sqlite::schema_status(path)).await??)
}

/// The one backend this process runs on.
pub enum Backend {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl Backend {
    /// Opens the backend the URI names: PostgreSQL for `postgres[ql][+driver]://`, else SQLite.
    pub async fn open(uri: &str, root: &str, pool_size: u32) -> anyhow::Result<Self> {
        if plumb_store_postgres::normalize_url(uri).is_some() {
            let options = PgOptions {
                pool_size,
                ..PgOptions::default()
            };
            let store = PgStore::connect(uri, root, options)
                .await
                .with_context(|| {
                    format!(
                        "cannot open the store at {}",
                        plumb_store_postgres::redact(uri)
                    )
                })?;
            return Ok(Self::Postgres(store));
        }
        let db_path = sqlite_path(uri)?;
        let (path, root) = (db_path.clone(), root.to_string());
        let store = tokio::task::spawn_blocking(move || SqliteStore::open(path, &root))
            .await?
            .with_context(|| format!("cannot open the store at {}", db_path.display()))?;
        Ok(Self::Sqlite(store))
    }

    pub fn tracking(&self) -> Arc<dyn TrackingStore> {
        match self {
            Self::Sqlite(s) => Arc::new(s.clone()),
            Self::Postgres(s) => Arc::new(s.clone()),
        }
    }

    pub fn registry(&self) -> Arc<dyn RegistryStore> {
        match self {
            Self::Sqlite(s) => Arc::new(s.clone()),
            Self::Postgres(s) => Arc::new(s.clone()),
        }
    }

    fn describe(&self, uri: &str) -> String {
        match self {
            Self::Sqlite(_) => uri.to_string(),
            Self::Postgres(_) => plumb_store_postgres::redact(uri),
        }
    }

    pub async fn close(&self) {
        match self {
            Self::Sqlite(s) => s.close().await,
            Self::Postgres(s) => s.close().await,
        }
    }
}

pub async fn run_server(args: ServerArgs) -> anyhow::Result<()> {
    let serve_artifacts = !args.no_serve_artifacts;
    let root = default_artifact_root(&args, serve_artifacts)?;
    let backend = Backend::open(&args.backend_store_uri, &root, args.db_pool_size).await?;
    let artifacts = ArtifactStore::from_uri(&args.artifacts_destination).with_context(|| {
        format!(
            "cannot open the artifact destination {}",
            args.artifacts_destination
        )
    })?;
    let state = AppState {
        store: backend.tracking(),
        registry: backend.registry(),
        artifacts,
        config: Arc::new(ServerConfig { serve_artifacts }),
    };
    let listener = TcpListener::bind((args.host.as_str(), args.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
    let addr = listener.local_addr()?;
    tracing::info!(
        %addr,
        store = %backend.describe(&args.backend_store_uri),
        artifacts = %args.artifacts_destination,
        default_artifact_root = %root,
        "plumb is listening on http://{addr}"
    );
    plumb_server::serve(listener, state, shutdown_signal()).await?;
    backend.close().await;
    tracing::info!("stopped cleanly");
    Ok(())
}
