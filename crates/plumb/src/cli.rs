//! Command-line interface: subcommands and their flags, mirroring `mlflow server` where it has them.

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "plumb",
    version,
    about = "An MLflow-compatible tracking server that also watches models in production"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the tracking server (MLflow REST API, artifact proxy).
    Server(ServerArgs),
    /// Alias of `server`, as `mlflow ui`.
    Ui(ServerArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0 picks a free one; the chosen port is logged).
    #[arg(long, short = 'p', default_value_t = 5000)]
    pub port: u16,
    /// Where tracking data lives: `sqlite:///relative.db`, `sqlite:////absolute.db`, a path, or
    /// `postgresql://user:password@host:port/database` (also `postgres://` and
    /// `postgresql+psycopg2://`).
    #[arg(long, default_value = "sqlite:///plumb.db")]
    pub backend_store_uri: String,
    /// PostgreSQL only: connections this process keeps open at most.
    #[arg(long, env = "MLFLOW_SQLALCHEMYSTORE_POOL_SIZE", default_value_t = 10)]
    pub db_pool_size: u32,
    /// Where proxied artifacts (`mlflow-artifacts:/`) are stored: a local folder.
    #[arg(long, default_value = "./mlartifacts")]
    pub artifacts_destination: String,
    /// Artifact root of new experiments. Default: `mlflow-artifacts:/` when serving artifacts,
    /// else `./mlruns` (made absolute).
    #[arg(long)]
    pub default_artifact_root: Option<String>,
    /// Serve the artifact proxy (default).
    #[arg(long, overrides_with = "no_serve_artifacts")]
    pub serve_artifacts: bool,
    /// Do not serve the artifact proxy; clients write to the artifact root themselves.
    #[arg(long)]
    pub no_serve_artifacts: bool,
}
