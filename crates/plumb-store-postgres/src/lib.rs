//! PostgreSQL implementation of `TrackingStore` and `RegistryStore`: a connection pool, one
//! transaction per call, batched writes, nothing cached in process.
//!
//! Several `plumb server` processes may share one database (stateless replicas): every answer
//! is read from PostgreSQL, and every rule that depends on stored state (param immutability,
//! latest metrics, version numbers, unique names) is enforced by the database inside the write's
//! transaction: row locks, `ON CONFLICT`, unique keys. Writes that lose a deadlock or a
//! serialization race are retried here; a lost or refused connection answers 503
//! (`TEMPORARILY_UNAVAILABLE`), which the official client retries, and the pool reconnects by
//! itself once PostgreSQL is back.

mod conn;
mod error;
mod migrate;
mod queries;

use std::time::Duration;

use async_trait::async_trait;
use plumb_core::entities::{
    DatasetInput, DatasetSummary, Experiment, LoggedModel, LoggedModelStatus, Metric, ModelOutput,
    Page, Param, Run, RunInfo, RunMetric, Tag,
};
use plumb_core::registry::{ModelVersion, RegisteredModel, RegistryChange, Stage};
use plumb_core::{Error, Result};
use plumb_store::{
    Batch, Deleted, ExperimentQuery, IntervalQuery, LoggedModelQuery, NewExperiment,
    NewLoggedModel, NewModelVersion, NewRun, RegistryQuery, RegistryStore, RunQuery, RunUpdate,
    TrackingStore,
};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::PgConnection;

pub(crate) use error::{E, R};

/// How a pool is sized and how long a caller waits for a connection.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Maximum open connections of this process.
    pub pool_size: u32,
    /// How long a request waits for a free (or new) connection before it answers 503.
    pub acquire_timeout: Duration,
    /// PostgreSQL's `statement_timeout` for request queries: a statement running longer is
    /// cancelled by the server (the request answers 400). `None`: no limit. Migrations and
    /// `ANALYZE` run without it.
    pub statement_timeout: Option<Duration>,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            pool_size: 10,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Some(Duration::from_secs(30)),
        }
    }
}

/// The PostgreSQL store. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    default_artifact_root: String,
    /// Log-batch writes, grouped into shared transactions.
    committer: std::sync::Arc<group::Committer>,
    /// Alive while any clone of the store is: the statistics task stops when it is gone.
    _alive: std::sync::Arc<()>,
    /// The connection holding the monitoring leader's advisory lock, once taken.
    leader: std::sync::Arc<tokio::sync::Mutex<Option<PgConnection>>>,
}

/// The first and the longest pause between two refreshes of the planner's statistics.
const ANALYZE_FIRST: Duration = Duration::from_secs(10);
const ANALYZE_MAX: Duration = Duration::from_secs(600);
/// Advisory-lock key under which one replica at a time refreshes them.
const ANALYZE_LOCK: i64 = 0x706c_756d_6201;

/// Refreshes the planner's statistics (`ANALYZE`) now and then, whatever the server's
/// autovacuum settings: sqlx keeps prepared statements per connection, and PostgreSQL keeps a
/// generic plan chosen while a table was small — a sequential scan of `params` for every
/// `get_run` once it holds millions of rows (seen in the benchmark on a server with autovacuum
/// off). A fresh `ANALYZE` invalidates those plans. Pauses double from 10 s to 10 min; one
/// replica at a time (advisory lock); stops with the store.
fn spawn_statistics(pool: PgPool, alive: std::sync::Weak<()>) {
    tokio::spawn(async move {
        let mut pause = ANALYZE_FIRST;
        loop {
            if alive.upgrade().is_none() || pool.is_closed() {
                return;
            }
            if let Err(e) = analyze(&pool).await {
                tracing::warn!(error = %e, "refreshing PostgreSQL's planner statistics failed");
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(ANALYZE_MAX);
        }
    });
}

async fn analyze(pool: &PgPool) -> Result<(), sqlx::Error> {
    let mut c = pool.acquire().await?;
    let mine: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(ANALYZE_LOCK)
        .fetch_one(&mut *c)
        .await?;
    if mine {
        let _ = sqlx::query("SET statement_timeout = 0")
            .execute(&mut *c)
            .await;
        let done = sqlx::query("ANALYZE").execute(&mut *c).await;
        let _ = sqlx::query("RESET statement_timeout")
            .execute(&mut *c)
            .await;
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(ANALYZE_LOCK)
            .execute(&mut *c)
            .await?;
        done?;
    }
    Ok(())
}

/// How many times a write that lost a deadlock or serialization race is tried in all.
const WRITE_ATTEMPTS: u32 = 6;

/// Runs `$body` (an expression using the connection `$c`) in a transaction, committing it and
/// retrying the whole transaction when PostgreSQL reports a deadlock or a serialization failure.
macro_rules! in_tx {
    ($self:expr, |$c:ident| $body:expr) => {{
        let mut attempt = 1u32;
        loop {
            let outcome: $crate::R<_> = async {
                let mut tx = $self.pool.begin().await?;
                let out = {
                    let $c: &mut sqlx::PgConnection = &mut *tx;
                    $body.await?
                };
                tx.commit().await?;
                Ok(out)
            }
            .await;
            match outcome {
                Err(e) if e.is_retryable() && attempt < $crate::WRITE_ATTEMPTS => {
                    tracing::debug!(attempt, error = %e, "retrying a write transaction");
                    tokio::time::sleep(std::time::Duration::from_millis(5 << attempt)).await;
                    attempt += 1;
                }
                other => break other.map_err($crate::E::into_domain),
            }
        }
    }};
}

mod group;

/// (schema version of the database at `url`, newest version this binary knows), read without
/// creating or migrating anything.
pub async fn schema_status(url: &str) -> Result<(i64, i64)> {
    let normalized = normalize_url(url)
        .ok_or_else(|| Error::invalid(format!("not a PostgreSQL URI: {}", redact(url))))?;
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&normalized)
        .await
        .map_err(|e| {
            Error::unavailable(format!(
                "cannot connect to PostgreSQL at {}: {e}",
                redact(url)
            ))
        })?;
    let current = migrate::current(&pool).await.map_err(E::into_domain);
    pool.close().await;
    Ok((current?, migrate::latest()))
}

impl PgStore {
    /// Connects to `url` (any spelling [`normalize_url`] accepts), creates or upgrades the schema
    /// (refusing a database newer than this binary) and makes sure experiment 0 exists.
    pub async fn connect(
        url: &str,
        default_artifact_root: &str,
        options: PgOptions,
    ) -> Result<Self> {
        let normalized = normalize_url(url)
            .ok_or_else(|| Error::invalid(format!("not a PostgreSQL URI: {}", redact(url))))?;
        let connect: PgConnectOptions = normalized
            .parse()
            .map_err(|e| Error::invalid(format!("bad PostgreSQL URI {}: {e}", redact(url))))?;
        let mut connect = connect.application_name("plumb");
        if let Some(limit) = options.statement_timeout {
            connect = connect.options([("statement_timeout", format!("{}", limit.as_millis()))]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.pool_size.max(1))
            .min_connections(0)
            .acquire_timeout(options.acquire_timeout)
            .idle_timeout(Duration::from_secs(300))
            // No ping before each use (one round trip less per request): a connection broken
            // by a database restart fails its one request with 503, is dropped, and the pool
            // opens a fresh one (the restart test pins this).
            .test_before_acquire(false)
            .connect_with(connect)
            .await
            .map_err(|e| {
                Error::unavailable(format!(
                    "cannot connect to PostgreSQL at {}: {e}",
                    redact(url)
                ))
            })?;
        migrate::run(&pool).await.map_err(E::into_domain)?;
        let store = Self {
            committer: std::sync::Arc::new(group::Committer::start(pool.clone())),
            pool,
            default_artifact_root: default_artifact_root.to_string(),
            _alive: std::sync::Arc::new(()),
            leader: std::sync::Arc::default(),
        };
        let root = store.default_artifact_root.clone();
        in_tx!(store, |c| experiments::ensure_default(
            &mut PgConn(c),
            &root
        ))?;
        spawn_statistics(store.pool.clone(), std::sync::Arc::downgrade(&store._alive));
        Ok(store)
    }

    /// Closes every connection; later calls answer 503.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A pooled connection for a read.
    async fn conn(&self) -> R<sqlx::pool::PoolConnection<sqlx::Postgres>> {
        Ok(self.pool.acquire().await?)
    }
}

/// Runs a read on a pooled connection and maps its error.
macro_rules! read {
    ($self:expr, |$c:ident| $body:expr) => {{
        let outcome: $crate::R<_> = async {
            let mut pooled = $self.conn().await?;
            let $c: &mut PgConnection = &mut *pooled;
            $body.await.map_err($crate::E::from)
        }
        .await;
        outcome.map_err($crate::E::into_domain)
    }};
}

/// A pooled connection running a search that the client may abandon: when the request is
/// dropped before the search ends (the client went away), the statement is cancelled on the
/// server (`pg_cancel_backend`) and the connection goes back to the pool only after that, so
/// the cancel can never reach another request's statement.
struct Cancellable {
    conn: Option<sqlx::pool::PoolConnection<sqlx::Postgres>>,
    pool: PgPool,
    pid: i32,
}

impl Cancellable {
    async fn new(store: &PgStore) -> R<Self> {
        let mut conn = store.conn().await?;
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut *conn)
            .await?;
        Ok(Self {
            conn: Some(conn),
            pool: store.pool.clone(),
            pid,
        })
    }

    fn conn(&mut self) -> &mut PgConnection {
        self.conn.as_deref_mut().expect("held until finished")
    }

    /// The search ended: nothing to cancel.
    fn finish(mut self) {
        self.conn = None;
    }
}

impl Drop for Cancellable {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (pool, pid) = (self.pool.clone(), self.pid);
        runtime.spawn(async move {
            let cancelled = sqlx::query("SELECT pg_cancel_backend($1)")
                .bind(pid)
                .execute(&pool)
                .await;
            tracing::debug!(pid, ok = cancelled.is_ok(), "cancelled an abandoned search");
            // Wait for the cancelled statement's end before the connection is reused.
            if sqlx::query("SELECT 1").execute(&mut *conn).await.is_err() {
                conn.detach();
            }
        });
    }
}

/// [`read!`] for searches, whose cost the client's filter decides: cancelled in the database
/// when the request is dropped (see [`Cancellable`]).
macro_rules! search {
    ($self:expr, |$c:ident| $body:expr) => {{
        let outcome: $crate::R<_> = async {
            let mut held = Cancellable::new($self).await?;
            let out = {
                let $c: &mut PgConnection = held.conn();
                $body.await.map_err($crate::E::from)
            };
            held.finish();
            out
        }
        .await;
        outcome.map_err($crate::E::into_domain)
    }};
}

mod monitoring;
mod traces;
mod webhooks;

use conn::PgConn;
use plumb_store::queries::runs as shared_runs;
use plumb_store::queries::{experiments, gc, models, registry};
use plumb_store::uri::{normalize_url, redact};
use queries::{metrics, runs};

#[async_trait]
impl TrackingStore for PgStore {
    async fn ping(&self) -> Result<()> {
        read!(self, |c| async {
            sqlx::query("SELECT 1").execute(&mut *c).await?;
            Ok::<(), E>(())
        })
    }

    async fn create_experiment(&self, new: NewExperiment) -> Result<String> {
        let root = &self.default_artifact_root;
        in_tx!(self, |c| experiments::create(&mut PgConn(c), &new, root))
    }
    async fn get_experiment(&self, id: &str) -> Result<Experiment> {
        read!(self, |c| experiments::get(&mut PgConn(c), id))
    }
    async fn get_experiment_by_name(&self, name: &str) -> Result<Experiment> {
        read!(self, |c| experiments::get_by_name(&mut PgConn(c), name))
    }
    async fn search_experiments(&self, q: ExperimentQuery) -> Result<Page<Experiment>> {
        search!(self, |c| experiments::search(&mut PgConn(c), &q))
    }
    async fn rename_experiment(&self, id: &str, new_name: &str) -> Result<()> {
        in_tx!(self, |c| experiments::rename(&mut PgConn(c), id, new_name))
    }
    async fn delete_experiment(&self, id: &str) -> Result<()> {
        in_tx!(self, |c| experiments::set_lifecycle(
            &mut PgConn(c),
            id,
            true
        ))
    }
    async fn restore_experiment(&self, id: &str) -> Result<()> {
        in_tx!(self, |c| experiments::set_lifecycle(
            &mut PgConn(c),
            id,
            false
        ))
    }
    async fn set_experiment_tag(&self, id: &str, tag: Tag) -> Result<()> {
        in_tx!(self, |c| experiments::set_tag(&mut PgConn(c), id, &tag))
    }
    async fn delete_experiment_tag(&self, id: &str, key: &str) -> Result<()> {
        in_tx!(self, |c| experiments::delete_tag(&mut PgConn(c), id, key))
    }

    async fn create_run(&self, new: NewRun) -> Result<Run> {
        in_tx!(self, |c| async {
            let run_id = runs::create(&mut *c, &new).await?;
            runs::get(c, &run_id).await
        })
    }
    async fn get_run(&self, run_id: &str) -> Result<Run> {
        read!(self, |c| runs::get(c, run_id))
    }
    async fn update_run(&self, run_id: &str, update: RunUpdate) -> Result<RunInfo> {
        in_tx!(self, |c| runs::update(c, run_id, &update))
    }
    async fn delete_run(&self, run_id: &str) -> Result<()> {
        in_tx!(self, |c| shared_runs::set_lifecycle(
            &mut PgConn(c),
            run_id,
            true
        ))
    }
    async fn restore_run(&self, run_id: &str) -> Result<()> {
        in_tx!(self, |c| shared_runs::set_lifecycle(
            &mut PgConn(c),
            run_id,
            false
        ))
    }
    async fn search_runs(&self, q: RunQuery) -> Result<Page<Run>> {
        search!(self, |c| runs::search(c, &q))
    }
    async fn log_batch(&self, run_id: &str, batch: Batch) -> Result<()> {
        self.committer.log_batch(run_id, batch).await
    }
    async fn delete_tag(&self, run_id: &str, key: &str) -> Result<()> {
        in_tx!(self, |c| shared_runs::delete_tag(
            &mut PgConn(c),
            run_id,
            key
        ))
    }
    async fn append_logged_model_history(&self, run_id: &str, model_json: &str) -> Result<()> {
        in_tx!(self, |c| shared_runs::append_model_history(
            &mut PgConn(c),
            run_id,
            model_json
        ))
    }
    async fn log_inputs(
        &self,
        run_id: &str,
        datasets: Vec<DatasetInput>,
        model_ids: Vec<String>,
    ) -> Result<()> {
        in_tx!(self, |c| shared_runs::log_inputs(
            &mut PgConn(c),
            run_id,
            &datasets,
            &model_ids
        ))
    }
    async fn log_outputs(&self, run_id: &str, models: Vec<ModelOutput>) -> Result<()> {
        in_tx!(self, |c| shared_runs::log_outputs(
            &mut PgConn(c),
            run_id,
            &models
        ))
    }
    async fn search_datasets(&self, experiment_ids: Vec<String>) -> Result<Vec<DatasetSummary>> {
        read!(self, |c| shared_runs::search_datasets(
            &mut PgConn(c),
            &experiment_ids
        ))
    }

    async fn metric_history(
        &self,
        run_id: &str,
        key: &str,
        offset: i64,
        limit: Option<i64>,
    ) -> Result<Page<Metric>> {
        read!(self, |c| metrics::history(c, run_id, key, offset, limit))
    }
    async fn metric_history_bulk_interval(&self, q: IntervalQuery) -> Result<Vec<RunMetric>> {
        read!(self, |c| metrics::bulk_interval(c, &q))
    }

    async fn create_logged_model(&self, new: NewLoggedModel) -> Result<LoggedModel> {
        in_tx!(self, |c| async {
            let mut c = PgConn(c);
            let id = models::create(&mut c, &new).await?;
            models::get(&mut c, &id, false).await
        })
    }
    async fn get_logged_model(&self, model_id: &str, allow_deleted: bool) -> Result<LoggedModel> {
        read!(self, |c| models::get(
            &mut PgConn(c),
            model_id,
            allow_deleted
        ))
    }
    async fn finalize_logged_model(
        &self,
        model_id: &str,
        status: LoggedModelStatus,
    ) -> Result<LoggedModel> {
        in_tx!(self, |c| async {
            let mut c = PgConn(c);
            models::set_status(&mut c, model_id, status).await?;
            models::get(&mut c, model_id, false).await
        })
    }
    async fn delete_logged_model(&self, model_id: &str) -> Result<()> {
        in_tx!(self, |c| models::delete(&mut PgConn(c), model_id))
    }
    async fn set_logged_model_tags(&self, model_id: &str, tags: Vec<Tag>) -> Result<()> {
        in_tx!(self, |c| models::set_tags(&mut PgConn(c), model_id, &tags))
    }
    async fn delete_logged_model_tag(&self, model_id: &str, key: &str) -> Result<()> {
        in_tx!(self, |c| models::delete_tag(&mut PgConn(c), model_id, key))
    }
    async fn log_logged_model_params(&self, model_id: &str, params: Vec<Param>) -> Result<()> {
        in_tx!(self, |c| models::log_params(
            &mut PgConn(c),
            model_id,
            &params
        ))
    }
    async fn search_logged_models(&self, q: LoggedModelQuery) -> Result<Page<LoggedModel>> {
        search!(self, |c| models::search(&mut PgConn(c), &q))
    }

    async fn deleted(&self, before_ms: Option<i64>) -> Result<Deleted> {
        read!(self, |c| gc::deleted(&mut PgConn(c), before_ms))
    }
    async fn purge(&self, run_ids: Vec<String>, experiment_ids: Vec<String>) -> Result<()> {
        in_tx!(self, |c| gc::purge(
            &mut PgConn(c),
            &run_ids,
            &experiment_ids
        ))
    }

    async fn import_experiment(&self, experiment: Experiment) -> Result<bool> {
        in_tx!(self, |c| experiments::import(&mut PgConn(c), &experiment))
    }
    async fn import_run(&self, run: Run) -> Result<bool> {
        in_tx!(self, |c| runs::import_run(c, &run))
    }
    async fn import_points(&self, run_id: &str, points: Vec<Metric>) -> Result<()> {
        in_tx!(self, |c| runs::import_points(c, run_id, &points))
    }
    async fn import_logged_model(&self, model: LoggedModel) -> Result<bool> {
        in_tx!(self, |c| models::import(&mut PgConn(c), &model))
    }
}

#[async_trait]
impl RegistryStore for PgStore {
    async fn create_registered_model(
        &self,
        name: &str,
        tags: Vec<Tag>,
        description: Option<String>,
    ) -> Result<RegisteredModel> {
        in_tx!(self, |c| async {
            let mut c = PgConn(c);
            registry::create_rm(&mut c, name, &tags, description.as_deref()).await?;
            registry::get_rm(&mut c, name).await
        })
    }
    async fn get_registered_model(&self, name: &str) -> Result<RegisteredModel> {
        read!(self, |c| registry::get_rm(&mut PgConn(c), name))
    }
    async fn rename_registered_model(&self, name: &str, new_name: &str) -> Result<RegisteredModel> {
        in_tx!(self, |c| async {
            let mut c = PgConn(c);
            registry::rename_rm(&mut c, name, new_name).await?;
            registry::get_rm(&mut c, new_name).await
        })
    }
    async fn update_registered_model(
        &self,
        name: &str,
        description: Option<String>,
    ) -> Result<RegisteredModel> {
        in_tx!(self, |c| async {
            let mut c = PgConn(c);
            registry::update_rm(&mut c, name, description.as_deref()).await?;
            registry::get_rm(&mut c, name).await
        })
    }
    async fn delete_registered_model(&self, name: &str) -> Result<()> {
        in_tx!(self, |c| registry::delete_rm(&mut PgConn(c), name))
    }
    async fn search_registered_models(&self, q: RegistryQuery) -> Result<Page<RegisteredModel>> {
        search!(self, |c| registry::search_rm(&mut PgConn(c), &q))
    }
    async fn get_latest_versions(
        &self,
        name: &str,
        stages: Vec<Stage>,
    ) -> Result<Vec<ModelVersion>> {
        read!(self, |c| registry::get_latest(
            &mut PgConn(c),
            name,
            &stages
        ))
    }
    async fn set_registered_model_tag(&self, name: &str, tag: Tag) -> Result<()> {
        in_tx!(self, |c| registry::set_rm_tag(&mut PgConn(c), name, &tag))
    }
    async fn delete_registered_model_tag(&self, name: &str, key: &str) -> Result<()> {
        in_tx!(self, |c| registry::delete_rm_tag(&mut PgConn(c), name, key))
    }
    async fn set_alias(&self, name: &str, alias: &str, version: i64) -> Result<()> {
        in_tx!(self, |c| registry::set_alias(
            &mut PgConn(c),
            name,
            alias,
            version
        ))
    }
    async fn delete_alias(&self, name: &str, alias: &str) -> Result<()> {
        in_tx!(self, |c| registry::delete_alias(
            &mut PgConn(c),
            name,
            alias
        ))
    }
    async fn get_version_by_alias(&self, name: &str, alias: &str) -> Result<ModelVersion> {
        read!(self, |c| registry::get_by_alias(
            &mut PgConn(c),
            name,
            alias
        ))
    }
    async fn registry_changes(&self, name: &str, max: i64) -> Result<Vec<RegistryChange>> {
        read!(self, |c| registry::changes(&mut PgConn(c), name, max))
    }
    async fn create_model_version(&self, new: NewModelVersion) -> Result<ModelVersion> {
        in_tx!(self, |c| async {
            let mut c = PgConn(c);
            let version = registry::create_mv(&mut c, &new).await?;
            registry::get_mv(&mut c, &new.name, version).await
        })
    }
    async fn get_model_version(&self, name: &str, version: i64) -> Result<ModelVersion> {
        read!(self, |c| registry::get_mv(&mut PgConn(c), name, version))
    }
    async fn update_model_version(
        &self,
        name: &str,
        version: i64,
        description: Option<String>,
    ) -> Result<ModelVersion> {
        in_tx!(self, |c| async {
            let mut c = PgConn(c);
            registry::update_mv(&mut c, name, version, description.as_deref()).await?;
            registry::get_mv(&mut c, name, version).await
        })
    }
    async fn delete_model_version(&self, name: &str, version: i64) -> Result<()> {
        in_tx!(self, |c| registry::delete_mv(&mut PgConn(c), name, version))
    }
    async fn search_model_versions(&self, q: RegistryQuery) -> Result<Page<ModelVersion>> {
        search!(self, |c| registry::search_mv(&mut PgConn(c), &q))
    }
    async fn transition_stage(
        &self,
        name: &str,
        version: i64,
        stage: Stage,
        archive_existing_versions: bool,
    ) -> Result<ModelVersion> {
        in_tx!(self, |c| async {
            let mut c = PgConn(c);
            registry::transition(&mut c, name, version, stage, archive_existing_versions).await?;
            registry::get_mv(&mut c, name, version).await
        })
    }
    async fn set_model_version_tag(&self, name: &str, version: i64, tag: Tag) -> Result<()> {
        in_tx!(self, |c| registry::set_mv_tag(
            &mut PgConn(c),
            name,
            version,
            &tag
        ))
    }
    async fn delete_model_version_tag(&self, name: &str, version: i64, key: &str) -> Result<()> {
        in_tx!(self, |c| registry::delete_mv_tag(
            &mut PgConn(c),
            name,
            version,
            key
        ))
    }
    async fn import_registered_model(&self, model: RegisteredModel) -> Result<bool> {
        in_tx!(self, |c| registry::import_rm(&mut PgConn(c), &model))
    }
    async fn import_model_version(&self, version: ModelVersion) -> Result<bool> {
        in_tx!(self, |c| registry::import_mv(&mut PgConn(c), &version))
    }
}
