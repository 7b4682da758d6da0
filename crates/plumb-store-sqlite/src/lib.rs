//! SQLite implementation of `TrackingStore`: one group-committing writer thread, pooled readers.
//!
//! Every write is a closure run by the single writer thread inside a transaction shared with the
//! other writes that queued up meanwhile (group commit), each in its own SAVEPOINT so one failing
//! write never undoes another. A write is acknowledged only after COMMIT returned: with WAL and
//! `synchronous=NORMAL` a committed transaction survives `kill -9` of the server. Reads run on a
//! small pool of WAL readers via `spawn_blocking`, so they never wait for the writer and no caller
//! ever sees "database is locked".

mod checkpoint;
mod conn;
mod error;
mod migrate;
mod monitoring;
mod queries;
mod readers;
mod render;
mod traces;
mod webhooks;
mod writer;

pub(crate) use error::db_err;

use checkpoint::{Checkpointer, CHECKPOINT_AT};
use conn::SqliteConn;
use plumb_store::queries::runs as shared_runs;
use plumb_store::queries::{experiments, gc, models, registry};
use readers::Readers;
use writer::{writer_loop, Finish, Job, Msg};

use std::path::Path;
use std::sync::Arc;

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
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

/// The SQLite store. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
    /// Run searches are asked as two row-id ranges at once from this many runs in the database.
    ranged_search_from: i64,
}

struct Inner {
    default_artifact_root: String,
    writer: mpsc::Sender<Msg>,
    readers: Readers,
}

fn open_connection(path: &Path) -> error::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 20000;
         PRAGMA case_sensitive_like = ON;
         PRAGMA cache_size = -4000;",
    )?;
    // `rarray(?)`: a bound list of run row ids to join against (see `queries::per_run`).
    rusqlite::vtab::array::load_module(&conn)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// (schema version of the database at `path`, newest version this binary knows), read without
/// creating or migrating anything.
pub fn schema_status(path: impl AsRef<Path>) -> Result<(i64, i64)> {
    let path = path.as_ref();
    if !path.exists() {
        return Ok((0, migrate::latest()));
    }
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(db_err)?;
    Ok((migrate::current(&conn)?, migrate::latest()))
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) the database at `path`. New experiments without
    /// an explicit location get `<default_artifact_root>/<experiment_id>`.
    pub fn open(path: impl AsRef<Path>, default_artifact_root: &str) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::internal(format!("cannot create {}: {e}", parent.display())))?;
        }
        let mut conn = open_connection(&path)?;
        conn.execute_batch("PRAGMA journal_size_limit = 67108864;")
            .map_err(db_err)?;
        migrate::run(&mut conn)?;
        conn::sync(experiments::ensure_default(
            &mut SqliteConn(&conn),
            default_artifact_root,
        ))?;
        let checkpointer = Checkpointer::start(&path, &mut conn, CHECKPOINT_AT)?;
        let (tx, rx) = mpsc::channel::<Msg>(4096);
        let stats = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let writer_stats = stats.clone();
        std::thread::Builder::new()
            .name("plumb-sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx, checkpointer, &writer_stats))
            .map_err(|e| Error::internal(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                default_artifact_root: default_artifact_root.to_string(),
                writer: tx,
                readers: Readers::new(path.clone(), stats),
            }),
            ranged_search_from: RANGED_SEARCH_FROM_RUNS,
        })
    }

    /// Asks run searches as two row-id ranges at once (merged in order) from `runs` runs in
    /// the database on, instead of the default 20,000. The conformance suite sets 0, so that
    /// every search it makes goes through the merge.
    pub fn with_ranged_search_from(mut self, runs: i64) -> Self {
        self.ranged_search_from = runs;
        self
    }

    /// Runs `f` in the writer's current transaction; resolves once it is committed.
    async fn write<T, X, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        X: Into<Error>,
        F: FnOnce(&Connection) -> std::result::Result<T, X> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |conn| {
            let outcome = f(conn).map_err(Into::into);
            let ok = outcome.is_ok();
            let finish: Finish = Box::new(move |committed: Result<()>| {
                let _ = tx.send(committed.and(outcome));
            });
            (ok, finish)
        });
        self.inner
            .writer
            .send(Msg::Job(job))
            .await
            .map_err(|_| Error::unavailable("the store is shutting down"))?;
        rx.await
            .map_err(|_| Error::unavailable("the write was not committed; try again"))?
    }

    /// Finishes queued writes, checkpoints the WAL and stops the writer. Later writes get 503.
    pub async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.inner.writer.send(Msg::Close(tx)).await.is_ok() {
            let _ = rx.await;
        }
        self.inner.readers.clear();
    }

    /// Runs `f` on a pooled read connection, off the async runtime.
    async fn read<T, X, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        X: Into<Error>,
        F: FnOnce(&Connection) -> std::result::Result<T, X> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.readers.with(|c| f(c).map_err(Into::into)))
            .await
            .map_err(|e| Error::internal(format!("read task failed: {e}")))?
    }
}

impl SqliteStore {
    /// The page of a run search, without the runs' data. In a large database the search is
    /// asked as two row-id ranges on two connections at once, each answering its first
    /// `offset + max_results + 1` runs with their sort keys, merged here in order
    /// (`RunSearch::range`): filtering and ordering tens of thousands of candidate runs is
    /// B-tree work, and this way it uses both cores. (The ranges are two snapshots, as the
    /// halves of a long history are.) Deep or huge pages stay one query.
    async fn search_run_infos(&self, q: RunQuery) -> Result<queries::runs::InfoPage> {
        use plumb_store::sql::searches::RunSearch;
        use queries::runs::{max_pk, merge_ranges, search, search_range};
        let want = q.offset.saturating_add(q.max_results).saturating_add(1);
        if want > RANGED_SEARCH_MAX_ROWS {
            return self.read(move |c| search(c, &q)).await;
        }
        let max = self.read(max_pk).await?;
        if max < self.ranged_search_from {
            return self.read(move |c| search(c, &q)).await;
        }
        let Some(run_search) = RunSearch::new(&q)? else {
            return Ok((Vec::new(), None));
        };
        let run_search = Arc::new(run_search);
        let range = |from: i64, to: i64| {
            let run_search = run_search.clone();
            self.read(move |c| search_range(c, &run_search, from, to, want))
        };
        let (low, high) = tokio::try_join!(range(i64::MIN, max / 2), range(max / 2 + 1, i64::MAX))?;
        Ok(merge_ranges(
            vec![low, high],
            &run_search.directions(),
            q.max_results,
            q.offset,
        ))
    }
}

/// Series at least this long are read in two halves at once (see `metric_history`).
const SPLIT_READ_POINTS: usize = 20_000;
/// Search pages of at least this many runs load their data in two halves at once.
const SPLIT_LOAD_RUNS: usize = 200;
/// Run searches are asked as two row-id ranges at once in databases of at least this many runs
/// (`SqliteStore::with_ranged_search_from`) ...
const RANGED_SEARCH_FROM_RUNS: i64 = 20_000;
/// ... when the rows up to the end of the page (offset + page + 1) are at most this many.
const RANGED_SEARCH_MAX_ROWS: i64 = 5_000;

#[async_trait]
impl TrackingStore for SqliteStore {
    async fn ping(&self) -> Result<()> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(db_err))
            .await
    }

    async fn create_experiment(&self, new: NewExperiment) -> Result<String> {
        let root = self.inner.default_artifact_root.clone();
        self.write(move |c| conn::sync(experiments::create(&mut SqliteConn(c), &new, &root)))
            .await
    }
    async fn get_experiment(&self, id: &str) -> Result<Experiment> {
        let id = id.to_string();
        self.read(move |c| conn::sync(experiments::get(&mut SqliteConn(c), &id)))
            .await
    }
    async fn get_experiment_by_name(&self, name: &str) -> Result<Experiment> {
        let name = name.to_string();
        self.read(move |c| conn::sync(experiments::get_by_name(&mut SqliteConn(c), &name)))
            .await
    }
    async fn search_experiments(&self, q: ExperimentQuery) -> Result<Page<Experiment>> {
        self.read(move |c| conn::sync(experiments::search(&mut SqliteConn(c), &q)))
            .await
    }
    async fn rename_experiment(&self, id: &str, new_name: &str) -> Result<()> {
        let (id, new_name) = (id.to_string(), new_name.to_string());
        self.write(move |c| conn::sync(experiments::rename(&mut SqliteConn(c), &id, &new_name)))
            .await
    }
    async fn delete_experiment(&self, id: &str) -> Result<()> {
        let id = id.to_string();
        self.write(move |c| conn::sync(experiments::set_lifecycle(&mut SqliteConn(c), &id, true)))
            .await
    }
    async fn restore_experiment(&self, id: &str) -> Result<()> {
        let id = id.to_string();
        self.write(move |c| conn::sync(experiments::set_lifecycle(&mut SqliteConn(c), &id, false)))
            .await
    }
    async fn set_experiment_tag(&self, id: &str, tag: Tag) -> Result<()> {
        let id = id.to_string();
        self.write(move |c| conn::sync(experiments::set_tag(&mut SqliteConn(c), &id, &tag)))
            .await
    }
    async fn delete_experiment_tag(&self, id: &str, key: &str) -> Result<()> {
        let (id, key) = (id.to_string(), key.to_string());
        self.write(move |c| conn::sync(experiments::delete_tag(&mut SqliteConn(c), &id, &key)))
            .await
    }

    async fn create_run(&self, new: NewRun) -> Result<Run> {
        // Created and read back in the same transaction: one trip to the writer, no reader.
        self.write(move |c| {
            let run_id = queries::runs::create(c, new)?;
            queries::runs::get(c, &run_id)
        })
        .await
    }
    async fn get_run(&self, run_id: &str) -> Result<Run> {
        let run_id = run_id.to_string();
        self.read(move |c| queries::runs::get(c, &run_id)).await
    }
    async fn update_run(&self, run_id: &str, update: RunUpdate) -> Result<RunInfo> {
        let run_id = run_id.to_string();
        self.write(move |c| queries::runs::update(c, &run_id, &update))
            .await
    }
    async fn delete_run(&self, run_id: &str) -> Result<()> {
        let run_id = run_id.to_string();
        self.write(move |c| {
            conn::sync(shared_runs::set_lifecycle(
                &mut SqliteConn(c),
                &run_id,
                true,
            ))
        })
        .await
    }
    async fn restore_run(&self, run_id: &str) -> Result<()> {
        let run_id = run_id.to_string();
        self.write(move |c| {
            conn::sync(shared_runs::set_lifecycle(
                &mut SqliteConn(c),
                &run_id,
                false,
            ))
        })
        .await
    }
    async fn search_runs(&self, q: RunQuery) -> Result<Page<Run>> {
        use queries::runs::load_runs;
        let (mut rows, next_page_token) = self.search_run_infos(q).await?;
        // A long page's data (tens of rows per run) is read in two halves on two connections
        // at once, like a long metric history (two snapshots; see `metric_history`).
        let items = if rows.len() >= SPLIT_LOAD_RUNS {
            let high = rows.split_off(rows.len() / 2);
            let (mut low, high) = tokio::try_join!(
                self.read(move |c| load_runs(c, rows)),
                self.read(move |c| load_runs(c, high))
            )?;
            low.extend(high);
            low
        } else {
            self.read(move |c| load_runs(c, rows)).await?
        };
        Ok(Page {
            items,
            next_page_token,
        })
    }
    async fn log_batch(&self, run_id: &str, batch: Batch) -> Result<()> {
        let run_id = run_id.to_string();
        self.write(move |c| queries::runs::log_batch(c, &run_id, &batch))
            .await
    }
    async fn delete_tag(&self, run_id: &str, key: &str) -> Result<()> {
        let (run_id, key) = (run_id.to_string(), key.to_string());
        self.write(move |c| conn::sync(shared_runs::delete_tag(&mut SqliteConn(c), &run_id, &key)))
            .await
    }
    async fn append_logged_model_history(&self, run_id: &str, model_json: &str) -> Result<()> {
        let (run_id, json) = (run_id.to_string(), model_json.to_string());
        self.write(move |c| {
            conn::sync(shared_runs::append_model_history(
                &mut SqliteConn(c),
                &run_id,
                &json,
            ))
        })
        .await
    }
    async fn log_inputs(
        &self,
        run_id: &str,
        datasets: Vec<DatasetInput>,
        model_ids: Vec<String>,
    ) -> Result<()> {
        let run_id = run_id.to_string();
        self.write(move |c| {
            conn::sync(shared_runs::log_inputs(
                &mut SqliteConn(c),
                &run_id,
                &datasets,
                &model_ids,
            ))
        })
        .await
    }
    async fn log_outputs(&self, run_id: &str, models: Vec<ModelOutput>) -> Result<()> {
        let run_id = run_id.to_string();
        self.write(move |c| {
            conn::sync(shared_runs::log_outputs(
                &mut SqliteConn(c),
                &run_id,
                &models,
            ))
        })
        .await
    }
    async fn search_datasets(&self, experiment_ids: Vec<String>) -> Result<Vec<DatasetSummary>> {
        self.read(move |c| {
            conn::sync(shared_runs::search_datasets(
                &mut SqliteConn(c),
                &experiment_ids,
            ))
        })
        .await
    }

    async fn metric_history(
        &self,
        run_id: &str,
        key: &str,
        offset: i64,
        limit: Option<i64>,
    ) -> Result<Page<Metric>> {
        use queries::metrics::{history_page, points_in_steps, series_shape};
        let (run_id, key) = (run_id.to_string(), key.to_string());
        let k = key.clone();
        let Some(shape) = self.read(move |c| series_shape(c, &run_id, &k)).await? else {
            return Ok(Page {
                items: Vec::new(),
                next_page_token: None,
            });
        };
        let (pk, points) = (shape.pk, usize::try_from(shape.points).unwrap_or(0));
        let half = |from: i64, to: i64, capacity: usize| {
            let key = key.clone();
            self.read(move |c| points_in_steps(c, pk, &key, from, to, capacity))
        };
        // A long series is read as two step ranges on two connections at once: decoding
        // rows is most of the time, and a history request should use both cores. (The halves
        // are two snapshots: a write landing between them shows in one half only, as it would
        // between two pages of the same history.)
        let items = if points >= SPLIT_READ_POINTS && shape.max_step > shape.min_step {
            let mid = shape.min_step + (shape.max_step - shape.min_step) / 2;
            let (mut low, high) = tokio::try_join!(
                half(i64::MIN, mid, points / 2 + 1),
                half(mid + 1, i64::MAX, points / 2 + 1)
            )?;
            low.extend(high);
            low
        } else {
            half(i64::MIN, i64::MAX, points).await?
        };
        Ok(history_page(items, offset, limit))
    }
    async fn metric_history_bulk_interval(&self, q: IntervalQuery) -> Result<Vec<RunMetric>> {
        self.read(move |c| queries::metrics::bulk_interval(c, &q))
            .await
    }

    async fn create_logged_model(&self, new: NewLoggedModel) -> Result<LoggedModel> {
        let id = self
            .write(move |c| conn::sync(models::create(&mut SqliteConn(c), &new)))
            .await?;
        self.get_logged_model(&id, false).await
    }
    async fn get_logged_model(&self, model_id: &str, allow_deleted: bool) -> Result<LoggedModel> {
        let id = model_id.to_string();
        self.read(move |c| conn::sync(models::get(&mut SqliteConn(c), &id, allow_deleted)))
            .await
    }
    async fn finalize_logged_model(
        &self,
        model_id: &str,
        status: LoggedModelStatus,
    ) -> Result<LoggedModel> {
        let id = model_id.to_string();
        self.write(move |c| conn::sync(models::set_status(&mut SqliteConn(c), &id, status)))
            .await?;
        self.get_logged_model(model_id, false).await
    }
    async fn delete_logged_model(&self, model_id: &str) -> Result<()> {
        let id = model_id.to_string();
        self.write(move |c| conn::sync(models::delete(&mut SqliteConn(c), &id)))
            .await
    }
    async fn set_logged_model_tags(&self, model_id: &str, tags: Vec<Tag>) -> Result<()> {
        let id = model_id.to_string();
        self.write(move |c| conn::sync(models::set_tags(&mut SqliteConn(c), &id, &tags)))
            .await
    }
    async fn delete_logged_model_tag(&self, model_id: &str, key: &str) -> Result<()> {
        let (id, key) = (model_id.to_string(), key.to_string());
        self.write(move |c| conn::sync(models::delete_tag(&mut SqliteConn(c), &id, &key)))
            .await
    }
    async fn log_logged_model_params(&self, model_id: &str, params: Vec<Param>) -> Result<()> {
        let id = model_id.to_string();
        self.write(move |c| conn::sync(models::log_params(&mut SqliteConn(c), &id, &params)))
            .await
    }
    async fn search_logged_models(&self, q: LoggedModelQuery) -> Result<Page<LoggedModel>> {
        self.read(move |c| conn::sync(models::search(&mut SqliteConn(c), &q)))
            .await
    }

    async fn deleted(&self, before_ms: Option<i64>) -> Result<Deleted> {
        self.read(move |c| conn::sync(gc::deleted(&mut SqliteConn(c), before_ms)))
            .await
    }
    async fn purge(&self, run_ids: Vec<String>, experiment_ids: Vec<String>) -> Result<()> {
        self.write(move |c| conn::sync(gc::purge(&mut SqliteConn(c), &run_ids, &experiment_ids)))
            .await
    }

    async fn import_experiment(&self, experiment: Experiment) -> Result<bool> {
        self.write(move |c| conn::sync(experiments::import(&mut SqliteConn(c), &experiment)))
            .await
    }
    async fn import_run(&self, run: Run) -> Result<bool> {
        self.write(move |c| queries::runs::import_run(c, &run))
            .await
    }
    async fn import_points(&self, run_id: &str, points: Vec<Metric>) -> Result<()> {
        let run_id = run_id.to_string();
        self.write(move |c| queries::runs::import_points(c, &run_id, &points))
            .await
    }
    async fn import_logged_model(&self, model: LoggedModel) -> Result<bool> {
        self.write(move |c| conn::sync(models::import(&mut SqliteConn(c), &model)))
            .await
    }
}

#[async_trait]
impl RegistryStore for SqliteStore {
    async fn create_registered_model(
        &self,
        name: &str,
        tags: Vec<Tag>,
        description: Option<String>,
    ) -> Result<RegisteredModel> {
        let n = name.to_string();
        self.write(move |c| {
            conn::sync(async {
                let mut s = SqliteConn(c);
                registry::create_rm(&mut s, &n, &tags, description.as_deref()).await?;
                registry::get_rm(&mut s, &n).await
            })
        })
        .await
    }
    async fn get_registered_model(&self, name: &str) -> Result<RegisteredModel> {
        let n = name.to_string();
        self.read(move |c| conn::sync(registry::get_rm(&mut SqliteConn(c), &n)))
            .await
    }
    async fn rename_registered_model(&self, name: &str, new_name: &str) -> Result<RegisteredModel> {
        let (n, new) = (name.to_string(), new_name.to_string());
        self.write(move |c| {
            conn::sync(async {
                let mut s = SqliteConn(c);
                registry::rename_rm(&mut s, &n, &new).await?;
                registry::get_rm(&mut s, &new).await
            })
        })
        .await
    }
    async fn update_registered_model(
        &self,
        name: &str,
        description: Option<String>,
    ) -> Result<RegisteredModel> {
        let n = name.to_string();
        self.write(move |c| {
            conn::sync(async {
                let mut s = SqliteConn(c);
                registry::update_rm(&mut s, &n, description.as_deref()).await?;
                registry::get_rm(&mut s, &n).await
            })
        })
        .await
    }
    async fn delete_registered_model(&self, name: &str) -> Result<()> {
        let n = name.to_string();
        self.write(move |c| conn::sync(registry::delete_rm(&mut SqliteConn(c), &n)))
            .await
    }
    async fn search_registered_models(&self, q: RegistryQuery) -> Result<Page<RegisteredModel>> {
        self.read(move |c| conn::sync(registry::search_rm(&mut SqliteConn(c), &q)))
            .await
    }
    async fn get_latest_versions(
        &self,
        name: &str,
        stages: Vec<Stage>,
    ) -> Result<Vec<ModelVersion>> {
        let n = name.to_string();
        self.read(move |c| conn::sync(registry::get_latest(&mut SqliteConn(c), &n, &stages)))
            .await
    }
    async fn set_registered_model_tag(&self, name: &str, tag: Tag) -> Result<()> {
        let n = name.to_string();
        self.write(move |c| conn::sync(registry::set_rm_tag(&mut SqliteConn(c), &n, &tag)))
            .await
    }
    async fn delete_registered_model_tag(&self, name: &str, key: &str) -> Result<()> {
        let (n, k) = (name.to_string(), key.to_string());
        self.write(move |c| conn::sync(registry::delete_rm_tag(&mut SqliteConn(c), &n, &k)))
            .await
    }
    async fn set_alias(&self, name: &str, alias: &str, version: i64) -> Result<()> {
        let (n, a) = (name.to_string(), alias.to_string());
        self.write(move |c| conn::sync(registry::set_alias(&mut SqliteConn(c), &n, &a, version)))
            .await
    }
    async fn delete_alias(&self, name: &str, alias: &str) -> Result<()> {
        let (n, a) = (name.to_string(), alias.to_string());
        self.write(move |c| conn::sync(registry::delete_alias(&mut SqliteConn(c), &n, &a)))
            .await
    }
    async fn get_version_by_alias(&self, name: &str, alias: &str) -> Result<ModelVersion> {
        let (n, a) = (name.to_string(), alias.to_string());
        self.read(move |c| conn::sync(registry::get_by_alias(&mut SqliteConn(c), &n, &a)))
            .await
    }
    async fn registry_changes(&self, name: &str, max: i64) -> Result<Vec<RegistryChange>> {
        let n = name.to_string();
        self.read(move |c| conn::sync(registry::changes(&mut SqliteConn(c), &n, max)))
            .await
    }
    async fn create_model_version(&self, new: NewModelVersion) -> Result<ModelVersion> {
        self.write(move |c| {
            conn::sync(async {
                let mut s = SqliteConn(c);
                let version = registry::create_mv(&mut s, &new).await?;
                registry::get_mv(&mut s, &new.name, version).await
            })
        })
        .await
    }
    async fn get_model_version(&self, name: &str, version: i64) -> Result<ModelVersion> {
        let n = name.to_string();
        self.read(move |c| conn::sync(registry::get_mv(&mut SqliteConn(c), &n, version)))
            .await
    }
    async fn update_model_version(
        &self,
        name: &str,
        version: i64,
        description: Option<String>,
    ) -> Result<ModelVersion> {
        let n = name.to_string();
        self.write(move |c| {
            conn::sync(async {
                let mut s = SqliteConn(c);
                registry::update_mv(&mut s, &n, version, description.as_deref()).await?;
                registry::get_mv(&mut s, &n, version).await
            })
        })
        .await
    }
    async fn delete_model_version(&self, name: &str, version: i64) -> Result<()> {
        let n = name.to_string();
        self.write(move |c| conn::sync(registry::delete_mv(&mut SqliteConn(c), &n, version)))
            .await
    }
    async fn search_model_versions(&self, q: RegistryQuery) -> Result<Page<ModelVersion>> {
        self.read(move |c| conn::sync(registry::search_mv(&mut SqliteConn(c), &q)))
            .await
    }
    async fn transition_stage(
        &self,
        name: &str,
        version: i64,
        stage: Stage,
        archive_existing_versions: bool,
    ) -> Result<ModelVersion> {
        let n = name.to_string();
        self.write(move |c| {
            conn::sync(async {
                let mut s = SqliteConn(c);
                registry::transition(&mut s, &n, version, stage, archive_existing_versions).await?;
                registry::get_mv(&mut s, &n, version).await
            })
        })
        .await
    }
    async fn set_model_version_tag(&self, name: &str, version: i64, tag: Tag) -> Result<()> {
        let n = name.to_string();
        self.write(move |c| conn::sync(registry::set_mv_tag(&mut SqliteConn(c), &n, version, &tag)))
            .await
    }
    async fn delete_model_version_tag(&self, name: &str, version: i64, key: &str) -> Result<()> {
        let (n, k) = (name.to_string(), key.to_string());
        self.write(move |c| {
            conn::sync(registry::delete_mv_tag(&mut SqliteConn(c), &n, version, &k))
        })
        .await
    }
    async fn import_registered_model(&self, model: RegisteredModel) -> Result<bool> {
        self.write(move |c| conn::sync(registry::import_rm(&mut SqliteConn(c), &model)))
            .await
    }
    async fn import_model_version(&self, version: ModelVersion) -> Result<bool> {
        self.write(move |c| conn::sync(registry::import_mv(&mut SqliteConn(c), &version)))
            .await
    }
}
