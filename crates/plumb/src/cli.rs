//! Command-line interface: subcommands and their flags, mirroring `mlflow server` where it has them.

use clap::{Args, Parser, Subcommand, ValueEnum};

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
    /// Create, find, rename, delete and restore experiments.
    #[command(subcommand)]
    Experiments(ExperimentsCmd),
    /// List, describe, search, delete and restore runs.
    #[command(subcommand)]
    Runs(RunsCmd),
    /// Registered models: list, describe, versions, aliases.
    #[command(subcommand)]
    Models(ModelsCmd),
    /// The database schema: status and upgrade.
    #[command(subcommand)]
    Db(DbCmd),
    /// Production monitors: apply a YAML file of them, list, show, delete.
    #[command(subcommand)]
    Monitor(MonitorCmd),
    /// Alerts of the monitors' rules: current states, the history of changes, or the
    /// notifications sent.
    #[command(subcommand)]
    Alerts(AlertsCmd),
    /// MLflow registry webhooks: list with their last delivery, test one, the delivery log.
    #[command(subcommand)]
    Webhooks(WebhooksCmd),
    /// Permanently remove deleted runs and experiments, with their artifacts.
    Gc(GcArgs),
    /// A CI gate: compare a candidate's metrics with a baseline's (MLflow's MetricThreshold
    /// rules); exit 0 when all pass, 1 when one fails, 2 when the check cannot be made.
    Check(CheckArgs),
    /// Write everything a tracking server (plumb or MLflow) holds to a folder.
    Export {
        /// The folder to write (created if missing).
        dir: std::path::PathBuf,
        #[command(flatten)]
        target: Target,
        /// Where artifacts are, when the tracking URI is a store opened directly.
        #[arg(long, default_value = "./mlartifacts")]
        artifacts_destination: String,
    },
    /// Bring history into a plumb store, from a folder written by `plumb export` or straight
    /// from a running MLflow (or plumb) server (original ids kept; what is already there is
    /// skipped, so an interrupted import can run again).
    Import {
        /// The folder `plumb export` wrote, the `http(s)://` URL of a tracking server, an MLflow
        /// file store (`./mlruns`), or an MLflow database (`sqlite:///mlflow.db`,
        /// `postgresql://...`) read directly.
        source: String,
        #[arg(long, default_value = "sqlite:///plumb.db")]
        backend_store_uri: String,
        #[arg(long, default_value = "./mlartifacts")]
        artifacts_destination: String,
        /// With an MLflow database: the MLflow server's `--artifacts-destination` folder, where
        /// its `mlflow-artifacts:` runs keep their files.
        #[arg(long)]
        source_artifacts: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Clone, Args)]
pub struct GcArgs {
    /// The store, opened directly (as `plumb server --backend-store-uri`).
    #[arg(long, default_value = "sqlite:///plumb.db")]
    pub backend_store_uri: String,
    /// Where the server keeps proxied artifacts (as `plumb server --artifacts-destination`).
    #[arg(long, default_value = "./mlartifacts")]
    pub artifacts_destination: String,
    /// Only what was deleted at least this long ago, e.g. `30d`, `1d 12h`, `90min`.
    #[arg(long)]
    pub older_than: Option<String>,
    /// Only these runs (comma-separated ids); each must be deleted.
    #[arg(long, value_delimiter = ',')]
    pub run_ids: Vec<String>,
    /// Only these experiments (comma-separated ids); each must be deleted.
    #[arg(long, value_delimiter = ',')]
    pub experiment_ids: Vec<String>,
    /// Print what would be removed, remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// A local folder (repeatable) under which runs' artifact folders may be removed besides a
    /// local `--artifacts-destination`, e.g. the server's `--default-artifact-root` folder.
    /// Run folders anywhere else are left in place (their rows are still removed).
    #[arg(long = "artifact-root")]
    pub artifact_roots: Vec<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub target: Target,
    /// What is checked: `runs:/<run_id>`, `models:/<name>@<alias>` or `models:/<name>/<version>`
    /// (the version's run).
    #[arg(long)]
    pub candidate: String,
    /// What it is compared with, in the same forms (needed by `min_abs` and `min_rel`).
    #[arg(long)]
    pub baseline: Option<String>,
    /// Repeatable: `NAME:higher|lower[:threshold=X][:min_abs=X][:min_rel=X]`, e.g.
    /// `accuracy:higher:min_abs=0.01` (the candidate must beat the baseline by 0.01) or
    /// `latency_ms:lower:threshold=250`.
    #[arg(long, required = true)]
    pub metric: Vec<crate::check::MetricRule>,
    #[arg(long, value_enum, default_value_t)]
    pub output_format: Format,
}

// Where a CLI verb acts: a tracking server over REST, or a backend store opened directly (a
// plain comment: a doc comment here would become the help text of verbs that flatten it).
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// `http(s)://host:port` of plumb or any MLflow-compatible server, or a backend store URI
    /// (`sqlite:///plumb.db`, `postgresql://...`) opened directly.
    #[arg(
        long,
        env = "MLFLOW_TRACKING_URI",
        default_value = "http://127.0.0.1:5000"
    )]
    pub tracking_uri: String,
}

#[derive(Debug, Subcommand)]
pub enum WebhooksCmd {
    /// List webhooks with their events and the state of their last delivery.
    List {
        #[command(flatten)]
        target: Target,
        #[arg(long, value_enum, default_value_t)]
        output_format: Format,
    },
    /// Send a webhook a signed sample event now and show what its receiver answered.
    Test {
        #[command(flatten)]
        target: Target,
        webhook_id: String,
        /// The event to sample, `entity.action` as MLflow spells it (`model_version.created`);
        /// default: the webhook's first.
        #[arg(long)]
        event: Option<String>,
    },
    /// The delivery log of one webhook (or of all), newest first.
    Deliveries {
        #[command(flatten)]
        target: Target,
        webhook_id: Option<String>,
        /// pending, delivered or failed.
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 100)]
        max_results: i64,
        #[arg(long, value_enum, default_value_t)]
        output_format: Format,
    },
}

#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub enum ViewArg {
    #[default]
    ActiveOnly,
    DeletedOnly,
    All,
}

impl ViewArg {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ActiveOnly => "ACTIVE_ONLY",
            Self::DeletedOnly => "DELETED_ONLY",
            Self::All => "ALL",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum MonitorCmd {
    /// Create or update the monitors a YAML file declares (`monitors:` list); unchanged ones
    /// are left alone, so applying the same file again changes nothing.
    Apply {
        #[command(flatten)]
        target: Target,
        /// The monitors file (format in README).
        #[arg(long, short = 'f')]
        file: std::path::PathBuf,
        /// Also delete monitors the file does not declare.
        #[arg(long)]
        prune: bool,
        /// Say what would change, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// List monitors with their firing and pending alerts.
    List {
        #[command(flatten)]
        target: Target,
        #[arg(long, value_enum, default_value_t)]
        output_format: Format,
    },
    /// Show a monitor's spec and its rules' states.
    Show {
        #[command(flatten)]
        target: Target,
        name: String,
        #[arg(long, value_enum, default_value_t)]
        output_format: Format,
    },
    /// Delete a monitor with its events and alert states (the alert history stays).
    Delete {
        #[command(flatten)]
        target: Target,
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AlertsCmd {
    /// Alerts as they are now (every rule's state), or with `--history` their changes.
    List {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        monitor: Option<String>,
        /// inactive, pending, firing or resolved (with --history: the state changed to).
        #[arg(long)]
        state: Option<String>,
        /// List state changes, newest first, instead of current states.
        #[arg(long, conflicts_with = "deliveries")]
        history: bool,
        /// List the notifications sent for alert changes (target, state, attempts, answer),
        /// newest first; --state is then pending, delivered or failed.
        #[arg(long)]
        deliveries: bool,
        /// With --history or --deliveries: rows listed at most.
        #[arg(long, default_value_t = 100)]
        max_results: i64,
        #[arg(long, value_enum, default_value_t)]
        output_format: Format,
    },
}

#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub enum Format {
    /// Aligned columns that fit the terminal.
    #[default]
    Table,
    /// One JSON document, entities in MLflow's REST shapes (stable, for scripts).
    Json,
    /// A header row, then one row per entity.
    Csv,
}

#[derive(Debug, Subcommand)]
pub enum ExperimentsCmd {
    /// Create an experiment; prints its id.
    Create {
        #[command(flatten)]
        target: Target,
        #[arg(long, short = 'n')]
        experiment_name: String,
        #[arg(long, short = 'l')]
        artifact_location: Option<String>,
    },
    /// Search experiments.
    Search {
        #[command(flatten)]
        target: Target,
        #[arg(long, short = 'v', value_enum, default_value_t)]
        view: ViewArg,
        #[arg(long)]
        filter: Option<String>,
        #[arg(long, default_value_t = 1000)]
        max_results: u32,
        #[arg(long, value_enum, default_value_t)]
        output_format: Format,
    },
    /// Show one experiment, by id or name.
    Get {
        #[command(flatten)]
        target: Target,
        #[arg(
            long,
            short = 'x',
            conflicts_with = "experiment_name",
            required_unless_present = "experiment_name"
        )]
        experiment_id: Option<String>,
        #[arg(long, short = 'n')]
        experiment_name: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        output_format: Format,
    },
    /// Give an experiment a new name.
    Rename {
        #[command(flatten)]
        target: Target,
        #[arg(long, short = 'x')]
        experiment_id: String,
        #[arg(long)]
        new_name: String,
    },
    /// Mark an experiment (and its runs) deleted; `plumb gc` removes it for good.
    Delete {
        #[command(flatten)]
        target: Target,
        #[arg(long, short = 'x')]
        experiment_id: String,
    },
    /// Restore a deleted experiment (with the runs deleted with it).
    Restore {
        #[command(flatten)]
        target: Target,
        #[arg(long, short = 'x')]
        experiment_id: String,
    },
}

/// Which experiment: by id or by name.
#[derive(Debug, Clone, Args)]
pub struct ExperimentRef {
    #[arg(
        long,
        short = 'x',
        conflicts_with = "experiment_name",
        required_unless_present = "experiment_name"
    )]
    pub experiment_id: Option<String>,
    #[arg(long, short = 'n')]
    pub experiment_name: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum RunsCmd {
    /// List the runs of an experiment (newest first).
    List {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        experiment: ExperimentRef,
        #[arg(long, short = 'v', value_enum, default_value_t)]
        view: ViewArg,
        #[arg(long, value_enum, default_value_t)]
        output_format: Format,
    },
    /// Show one run: info, params, latest metrics, tags.
    Describe {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        run_id: String,
        #[arg(long, value_enum, default_value_t = Format::Json)]
        output_format: Format,
    },
    /// Search runs with MLflow's filter and order_by syntax.
    Search {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        experiment: ExperimentRef,
        #[arg(long)]
        filter: Option<String>,
        /// Repeatable, e.g. `--order-by "metrics.loss ASC"`.
        #[arg(long)]
        order_by: Vec<String>,
        #[arg(long, default_value_t = 1000)]
        max_results: u32,
        #[arg(long, short = 'v', value_enum, default_value_t)]
        view: ViewArg,
        #[arg(long, value_enum, default_value_t)]
        output_format: Format,
    },
    /// Mark a run deleted (it can be restored until `plumb gc` removes it).
    Delete {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        run_id: String,
    },
    /// Restore a deleted run.
    Restore {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        run_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ModelsCmd {
    /// List registered models.
    List {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        filter: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        output_format: Format,
    },
    /// Show a registered model: description, tags, aliases, latest versions.
    Describe {
        #[command(flatten)]
        target: Target,
        #[arg(long, short = 'n')]
        name: String,
        #[arg(long, value_enum, default_value_t = Format::Json)]
        output_format: Format,
    },
    /// List the versions of a registered model (newest first).
    Versions {
        #[command(flatten)]
        target: Target,
        #[arg(long, short = 'n')]
        name: String,
        #[arg(long, value_enum, default_value_t)]
        output_format: Format,
    },
    /// Point an alias (e.g. `champion`) at a version.
    SetAlias {
        #[command(flatten)]
        target: Target,
        #[arg(long, short = 'n')]
        name: String,
        #[arg(long)]
        alias: String,
        #[arg(long)]
        version: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DbCmd {
    /// Print the schema version of the database and of this plumb.
    Status {
        #[arg(long, default_value = "sqlite:///plumb.db")]
        backend_store_uri: String,
    },
    /// Migrate the database to this plumb's schema (the server also does it on start).
    Upgrade {
        #[arg(long, default_value = "sqlite:///plumb.db")]
        backend_store_uri: String,
    },
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
    /// `Host` header values answered (comma-separated): `name`, `name:port`, `name:*`,
    /// `*.domain`, or `*` for any. Default: localhost, 127.0.0.1, [::1] and the `--host`
    /// address. Others get 403 (`/health` and `/version` excepted): a guard against DNS
    /// rebinding. Behind a load balancer or on a network, name the hosts clients use.
    #[arg(long, env = "MLFLOW_SERVER_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
    /// Origins (`https://app.example:8443`, comma-separated, `*` for any) whose cross-origin
    /// requests are answered. Default: none (state-changing cross-origin requests get 403).
    #[arg(
        long,
        env = "MLFLOW_SERVER_CORS_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_allowed_origins: Vec<String>,
    /// The `X-Frame-Options` header: `SAMEORIGIN`, `DENY`, or `NONE` for none.
    #[arg(
        long,
        env = "MLFLOW_SERVER_X_FRAME_OPTIONS",
        default_value = "SAMEORIGIN"
    )]
    pub x_frame_options: String,
    /// A request's headers must arrive within this long (e.g. `30s`).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub header_timeout: std::time::Duration,
    /// A connection on which no byte moves while the server waits on the client (idle
    /// keep-alive, a stalled upload, a client that stopped reading) is closed after this long.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub idle_timeout: std::time::Duration,
    /// Connections served at once; past it `/health` still answers on a few spare ones and
    /// other requests get 503. Capped by the open-file limit, raised to its maximum at start.
    #[arg(long, default_value_t = 4096)]
    pub max_connections: usize,
    /// PostgreSQL only: a statement running longer is cancelled and its request answers 400
    /// (`0` for no limit).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub db_statement_timeout: std::time::Duration,
    /// How often monitors' rules are evaluated (and closed minutes folded into rollups). One
    /// replica at a time does it.
    #[arg(long, default_value = "15s", value_parser = positive_duration)]
    pub monitor_interval: std::time::Duration,
    /// How long raw inference events are kept; their per-minute rollups are kept for good.
    #[arg(long, default_value = "7d", value_parser = positive_duration)]
    pub monitor_retention: std::time::Duration,
    /// URL schemes webhooks and notifications may use (comma-separated), as MLflow's
    /// variable.
    #[arg(
        long,
        env = "MLFLOW_WEBHOOK_ALLOWED_SCHEMES",
        value_delimiter = ',',
        default_value = "https"
    )]
    pub webhook_allowed_schemes: Vec<String>,
    /// Let webhooks and notifications reach loopback, private and link-local addresses (for
    /// local development, or an Alertmanager on the private network).
    #[arg(
        long,
        env = "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS",
        value_parser = clap::builder::FalseyValueParser::new(),
        default_value = "false"
    )]
    pub webhook_allow_private_ips: bool,
    /// Seconds one delivery attempt may take.
    #[arg(long, env = "MLFLOW_WEBHOOK_REQUEST_TIMEOUT", default_value_t = 30)]
    pub webhook_timeout: u64,
    /// Attempts after the first when a receiver answers 429 or 5xx or cannot be reached
    /// (backoff 1 s, doubling, at most 60 s).
    #[arg(long, env = "MLFLOW_WEBHOOK_REQUEST_MAX_RETRIES", default_value_t = 3)]
    pub webhook_max_retries: u32,
    /// The Fernet key (32 bytes, url-safe base64) that encrypts webhook secrets at rest; the
    /// same variable as MLflow's. Without it, webhooks with a secret are refused.
    #[arg(
        long,
        env = "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY",
        hide_env_values = true
    )]
    pub webhook_secret_key: Option<String>,
    /// The address people reach this server by (`https://plumb.example`), for links in alert
    /// notifications; without it links are paths.
    #[arg(long, env = "PLUMB_EXTERNAL_URL")]
    pub external_url: Option<String>,
}

fn positive_duration(s: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if d.is_zero() {
        return Err("must be longer than zero".to_string());
    }
    Ok(d)
}

#[cfg(test)]
mod help_tests {
    use clap::CommandFactory;

    /// Every verb says what it does, and no two verbs of a group say the same (a shared text
    /// is a doc comment leaking from a flattened struct).
    #[test]
    fn every_verb_has_its_own_description() {
        fn walk(cmd: &clap::Command, path: &str) {
            let mut seen = std::collections::BTreeMap::new();
            for sub in cmd.get_subcommands() {
                let name = format!("{path} {}", sub.get_name());
                let about = sub
                    .get_about()
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| panic!("`{name}` has no description"));
                if let Some(other) = seen.insert(about.clone(), name.clone()) {
                    panic!("`{name}` and `{other}` share the description '{about}'");
                }
                walk(sub, &name);
            }
        }
        walk(&super::Cli::command(), "plumb");
    }
}
