//! Composition root: the only place that names concrete backends and builds `AppState`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use plumb_artifacts::ArtifactStore;
use plumb_server::{AppState, Limits, Security, ServerConfig};
use plumb_store::{RegistryStore, Store, TrackingStore};
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
    if plumb_store::uri::normalize_url(uri).is_some() {
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
        Self::open_with(uri, root, pool_size, PgOptions::default().statement_timeout).await
    }

    /// [`Backend::open`] with PostgreSQL's statement timeout.
    pub async fn open_with(
        uri: &str,
        root: &str,
        pool_size: u32,
        statement_timeout: Option<std::time::Duration>,
    ) -> anyhow::Result<Self> {
        if plumb_store::uri::normalize_url(uri).is_some() {
            let options = PgOptions {
                pool_size,
                statement_timeout,
                ..PgOptions::default()
            };
            let store = PgStore::connect(uri, root, options)
                .await
                .with_context(|| {
                    format!("cannot open the store at {}", plumb_store::uri::redact(uri))
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

    pub fn all(&self) -> Arc<dyn Store> {
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
            Self::Postgres(_) => plumb_store::uri::redact(uri),
        }
    }

    pub async fn close(&self) {
        match self {
            Self::Sqlite(s) => s.close().await,
            Self::Postgres(s) => s.close().await,
        }
    }
}

/// Raises the soft open-file limit to the hard one; answers the limit in force.
fn raise_open_files() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the open-file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE)
                .map(|(soft, _)| soft)
                .unwrap_or(1024)
        }
    }
}

/// A local folder named by an artifact root or destination (`file://`, a path), made absolute.
fn local_folder(uri: &str) -> Option<PathBuf> {
    let path = uri
        .strip_prefix("file://")
        .or_else(|| (!uri.contains(':')).then_some(uri))?;
    std::path::absolute(path).ok()
}

pub async fn run_server(args: ServerArgs) -> anyhow::Result<()> {
    let serve_artifacts = !args.no_serve_artifacts;
    let root = default_artifact_root(&args, serve_artifacts)?;
    let statement_timeout = Some(args.db_statement_timeout).filter(|d| !d.is_zero());
    let backend = Backend::open_with(
        &args.backend_store_uri,
        &root,
        args.db_pool_size,
        statement_timeout,
    )
    .await?;
    let artifacts = ArtifactStore::from_uri(&args.artifacts_destination).with_context(|| {
        format!(
            "cannot open the artifact destination {}",
            args.artifacts_destination
        )
    })?;
    let stale = artifacts.clone();
    tokio::task::spawn_blocking(move || {
        let removed = stale.remove_stale_uploads();
        if removed > 0 {
            tracing::info!(removed, "removed staging files of interrupted uploads");
        }
    });
    let open_files = raise_open_files();
    let fd_budget = usize::try_from(open_files.saturating_sub(256)).unwrap_or(usize::MAX);
    let max_connections = args.max_connections.min(fd_budget.max(16));
    if max_connections < args.max_connections {
        tracing::warn!(
            max_connections,
            open_files,
            "--max-connections lowered to fit the open-file limit"
        );
    }
    let allowed_hosts = if args.allowed_hosts.is_empty() {
        plumb_server::default_allowed_hosts(&args.host)
    } else {
        args.allowed_hosts.clone()
    };
    let mut protected_roots: Vec<PathBuf> = artifacts
        .local_root()
        .map(PathBuf::from)
        .into_iter()
        .collect();
    protected_roots.extend(local_folder(&args.artifacts_destination));
    protected_roots.extend(local_folder(&root));
    let monitoring = plumb_monitor::engine::Settings {
        interval: args.monitor_interval,
        retention: args.monitor_retention,
    };
    let secrets = args
        .webhook_secret_key
        .as_deref()
        .filter(|k| !k.is_empty())
        .map(plumb_webhooks::SecretBox::from_key)
        .transpose()
        .map_err(|e| anyhow::anyhow!(e))?;
    let webhooks = plumb_webhooks::Config {
        policy: plumb_webhooks::Policy {
            allowed_schemes: args
                .webhook_allowed_schemes
                .iter()
                .map(|s| s.trim().to_lowercase())
                .filter(|s| !s.is_empty())
                .collect(),
            allow_private_ips: args.webhook_allow_private_ips,
        },
        timeout: std::time::Duration::from_secs(args.webhook_timeout.max(1)),
        max_retries: args.webhook_max_retries,
        secrets,
        external_url: args.external_url.clone(),
        ..plumb_webhooks::Config::default()
    };
    let sender = plumb_webhooks::Sender::new(webhooks.clone()).map_err(|e| anyhow::anyhow!(e))?;
    let state = AppState {
        store: backend.tracking(),
        registry: backend.registry(),
        all: backend.all(),
        artifacts,
        config: Arc::new(ServerConfig {
            serve_artifacts,
            default_artifact_root: root.clone(),
            protected_roots,
            security: Security {
                allowed_hosts,
                cors_allowed_origins: args.cors_allowed_origins.clone(),
                x_frame_options: args.x_frame_options.clone(),
            },
            limits: Limits {
                header_timeout: args.header_timeout,
                idle_timeout: args.idle_timeout,
                max_connections,
            },
            monitoring,
            webhooks,
        }),
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
    if addr.ip().is_unspecified() && args.allowed_hosts.is_empty() {
        tracing::warn!(
            "listening on all interfaces, but only localhost names are answered: name the \
             hosts clients use with --allowed-hosts (or '*')"
        );
    }
    let evaluator = plumb_monitor::engine::spawn(backend.all(), monitoring);
    let deliveries = sender.spawn(backend.all());
    plumb_server::serve(listener, state, shutdown_signal()).await?;
    evaluator.abort();
    deliveries.abort();
    backend.close().await;
    tracing::info!("stopped cleanly");
    Ok(())
}
