//! SQLite implementation of `TrackingStore`: one group-committing writer thread, pooled readers.
//!
//! Every write is a closure run by the single writer thread inside a transaction shared with the
//! other writes that queued up meanwhile (group commit), each in its own SAVEPOINT so one failing
//! write never undoes another. A write is acknowledged only after COMMIT returned: with WAL and
//! `synchronous=NORMAL` a committed transaction survives `kill -9` of the server. Reads run on a
//! small pool of WAL readers via `spawn_blocking`, so they never wait for the writer and no caller
//! ever sees "database is locked".

mod conn;
mod migrate;
mod queries;
mod render;

use conn::SqliteConn;
use plumb_store::queries::{experiments, gc, models, registry};

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use plumb_core::entities::{
    DatasetInput, DatasetSummary, Experiment, LoggedModel, LoggedModelStatus, Metric, ModelOutput,
    Page, Param, Run, RunInfo, RunMetric, Tag,
};
use plumb_core::registry::{ModelVersion, RegisteredModel, Stage};
use plumb_core::{Error, Result};
use plumb_store::{
    Batch, Deleted, ExperimentQuery, IntervalQuery, LoggedModelQuery, NewExperiment,
    NewLoggedModel, NewModelVersion, NewRun, RegistryQuery, RegistryStore, RunQuery, RunUpdate,
    TrackingStore,
};
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

/// How many queued writes one transaction may take at most.
const MAX_GROUP: usize = 512;
/// How many idle reader connections are kept.
const MAX_IDLE_READERS: usize = 8;

type Finish = Box<dyn FnOnce(Result<()>) + Send>;
type Job = Box<dyn FnOnce(&Connection) -> (bool, Finish) + Send>;

/// What the writer thread receives: a write, or the request to close the database.
enum Msg {
    Job(Job),
    Close(oneshot::Sender<()>),
}

/// The SQLite store. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
    /// Run searches are asked as two row-id ranges at once from this many runs in the database.
    ranged_search_from: i64,
}

struct Inner {
    path: PathBuf,
    default_artifact_root: String,
    writer: mpsc::Sender<Msg>,
    /// Idle read connections, each with the `stats` generation it loaded.
    readers: Mutex<Vec<(Connection, u64)>>,
    /// Bumped each time the writer refreshed the query planner's statistics: SQLite loads them
    /// into a connection once, when it first reads the schema, so a reader opened before a
    /// refresh keeps planning with the old ones (for a database loaded from empty: none).
    stats: Arc<std::sync::atomic::AtomicU64>,
}

/// Maps a SQLite failure to an MLflow error; busy/locked become 503 (retried by clients).
pub(crate) fn db_err(e: rusqlite::Error) -> Error {
    if let rusqlite::Error::SqliteFailure(f, _) = &e {
        if matches!(
            f.code,
            rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
        ) {
            return Error::unavailable(format!("database busy: {e}"));
        }
    }
    Error::internal(format!("database error: {e}"))
}

fn open_connection(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).map_err(db_err)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 20000;
         PRAGMA case_sensitive_like = ON;
         PRAGMA cache_size = -4000;",
    )
    .map_err(db_err)?;
    // `rarray(?)`: a bound list of run row ids to join against (see `queries::per_run`).
    rusqlite::vtab::array::load_module(&conn).map_err(db_err)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// A connection for reads. It maps the database file into memory: a search over a large
/// experiment touches thousands of pages, and reading each through `pread` into the page cache
/// was a third of its time. The mapping is the OS page cache itself (no copy per connection);
/// pages still in the WAL are read as before.
fn open_reader(path: &Path) -> Result<Connection> {
    let conn = open_connection(path)?;
    conn.execute_batch("PRAGMA mmap_size = 1073741824;")
        .map_err(db_err)?;
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
                path,
                default_artifact_root: default_artifact_root.to_string(),
                writer: tx,
                readers: Mutex::new(Vec::new()),
                stats,
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
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |conn| {
            let outcome = f(conn);
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
        if let Ok(mut idle) = self.inner.readers.lock() {
            idle.clear();
        }
    }

    /// Runs `f` on a pooled read connection, off the async runtime.
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let current = inner.stats.load(std::sync::atomic::Ordering::Acquire);
            let pooled = inner.readers.lock().map(|mut v| v.pop()).unwrap_or(None);
            // A connection that planned with older statistics is replaced (once a minute at
            // most: see `ANALYZE_EVERY`).
            let (conn, stats) = match pooled {
                Some((c, stats)) if stats == current => (c, stats),
                _ => (open_reader(&inner.path)?, current),
            };
            let out = f(&conn);
            if let Ok(mut idle) = inner.readers.lock() {
                if idle.len() < MAX_IDLE_READERS {
                    idle.push((conn, stats));
                }
            }
            out
        })
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

/// How often, at most, the writer refreshes the query planner's statistics while writes come in
/// (and whenever the database doubled in size since the last refresh: a database loaded from
/// empty in under a minute kept the statistics of an empty one, and the 100k-run search took
/// 23 ms instead of 13 in the `sqlite3` shell).
const ANALYZE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);
/// How often, at most, a database that doubled in size gets its statistics refreshed (each
/// refresh holds the writer for tens of milliseconds: every doubling of a database growing
/// from empty under log-batch cost it 8% of its throughput).
const ANALYZE_GROWN_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
/// Writes since the last refresh that make the next one worth it.
const ANALYZE_AFTER_WRITES: usize = 1_000;

/// The database's size in pages (0 when it cannot be read).
fn page_count(conn: &Connection) -> i64 {
    conn.query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap_or(0)
}

/// Refreshes `sqlite_stat1` from a bounded sample of each index (tens of milliseconds whatever
/// the size of the database). Without statistics SQLite cannot tell that `params.p0 = 'v1'`
/// selects 10,000 runs of 100,000, and a search walks the whole experiment instead.
fn analyze(conn: &Connection) {
    if let Err(e) = conn.execute_batch("PRAGMA analysis_limit = 20000; ANALYZE;") {
        tracing::warn!(error = %e, "refreshing the query planner's statistics failed");
    }
}

/// When the WAL is copied back into the database file, in WAL frames (pages).
#[derive(Clone, Copy)]
struct CheckpointAt {
    /// A commit leaving at least this many frames wakes the checkpointer.
    wake: std::ffi::c_int,
    /// A commit leaving at least this many frames checkpoints itself, before it is answered:
    /// the background checkpoint can fall behind a sustained write load, and the WAL must not
    /// grow without bound.
    force: std::ffi::c_int,
    /// Once no commit came for this long, the checkpointer copies back what the WAL holds.
    idle: std::time::Duration,
}

/// Letting the WAL grow to ~40 MB between checkpoints means a hot page rewritten by thousands
/// of small commits is copied back once, not each time.
const CHECKPOINT_AT: CheckpointAt = CheckpointAt {
    wake: 10_000,
    force: 40_000,
    idle: std::time::Duration::from_millis(250),
};

/// Copies the WAL back into the database file mostly on its own thread and connection, so that
/// writes do not wait for it. SQLite's automatic checkpoint runs inside the COMMIT that crosses
/// the threshold: that commit (and every write grouped into it) waited for ~40 MB of copying
/// and an fsync, which was the log-batch workload's p99.
///
/// In two steps: a commit that leaves `wake` frames wakes the thread, which copies back what
/// the WAL holds then (PASSIVE: it blocks neither the writer nor the readers). The writes
/// committed meanwhile are still only in the WAL, and under a steady load a background
/// checkpoint never catches up with them; so the first commit past `wake` after the thread is
/// done checkpoints itself, copying just those (a few pages, mostly), and the writer restarts
/// the WAL from its start at its next transaction. (Re-running the background checkpoint until
/// it happened to catch up cost log-metric 10% of its throughput: an fsync each time.)
///
/// And once writes stop for `CheckpointAt::idle`, the thread copies back whatever the WAL
/// holds. Until then every page a reader fetches is first looked up in the WAL's index: with
/// ~10,000 frames in the WAL, the 100k-run search's query took 46 ms in the `sqlite3` shell
/// instead of 11 (the same after a checkpoint), whatever those frames held. A WAL short of the
/// `wake` mark otherwise stayed so until the next writes, however long that took.
struct Checkpointer {
    thread: std::thread::JoinHandle<()>,
}

/// Where the background step is (`Checkpointer`).
const IDLE: u8 = 0;
const COPYING: u8 = 1;
const COPIED: u8 = 2;

/// What the writer's commits tell the checkpointer thread.
#[derive(Default)]
struct WalState {
    /// The background step: `IDLE`, `COPYING` or `COPIED`.
    step: std::sync::atomic::AtomicU8,
    /// Commits so far.
    commits: std::sync::atomic::AtomicU64,
    /// Commits were made since the thread last copied everything back.
    dirty: std::sync::atomic::AtomicBool,
}

impl Checkpointer {
    /// Opens the checkpointer's connection and hooks the writer's commits to it (which also
    /// turns off SQLite's own automatic checkpoint on `writer`).
    fn start(path: &Path, writer: &mut Connection, at: CheckpointAt) -> Result<Self> {
        use std::sync::atomic::Ordering;
        let conn = open_connection(path)?;
        let state = Arc::new(WalState::default());
        let (wake, woken) = std::sync::mpsc::sync_channel::<()>(1);
        let hook_state = state.clone();
        writer
            .wal_hook(Some(
                move |wal: &mut rusqlite::hooks::Wal, frames: std::ffi::c_int| {
                    let state = &hook_state;
                    state.commits.fetch_add(1, Ordering::Relaxed);
                    // The first commit since the thread last copied everything back starts its
                    // wait for the writes to stop.
                    let first = !state.dirty.swap(true, Ordering::AcqRel);
                    let step = state.step.load(Ordering::Acquire);
                    // An error returned here would fail a COMMIT that did commit: a checkpoint
                    // that could not run (the thread is at work) is let go.
                    if frames >= at.force || (frames >= at.wake && step == COPIED) {
                        let _ = wal.checkpoint();
                        state.step.store(IDLE, Ordering::Release);
                    } else if frames >= at.wake
                        && state
                            .step
                            .compare_exchange(IDLE, COPYING, Ordering::AcqRel, Ordering::Acquire)
                            .is_ok()
                    {
                        let _ = wake.try_send(());
                    } else {
                        if frames < at.wake && step == COPIED {
                            // The WAL started over meanwhile: nothing is left to finish.
                            let _ = state.step.compare_exchange(
                                COPIED,
                                IDLE,
                                Ordering::AcqRel,
                                Ordering::Acquire,
                            );
                        }
                        if first {
                            let _ = wake.try_send(());
                        }
                    }
                    Ok(())
                },
            ))
            .map_err(db_err)?;
        let thread = std::thread::Builder::new()
            .name("plumb-sqlite-checkpoint".into())
            .spawn(move || checkpointer_loop(&conn, &state, &woken, at.idle))
            .map_err(|e| Error::internal(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Self { thread })
    }

    /// Unhooks `writer` (which ends the thread's wake-ups) and waits for the thread to finish.
    fn stop(self, writer: &mut Connection) {
        type Hook = fn(&mut rusqlite::hooks::Wal, std::ffi::c_int) -> rusqlite::Result<()>;
        if let Err(e) = writer.wal_hook(None::<Hook>) {
            tracing::warn!(error = %e, "cannot unhook the WAL checkpointer");
        }
        let _ = self.thread.join();
    }
}

/// The checkpointer thread (`Checkpointer`): sleeps until a commit wakes it, copies the WAL
/// back when asked to, and once no commit came for `idle`, copies back whatever is left.
fn checkpointer_loop(
    conn: &Connection,
    state: &WalState,
    woken: &std::sync::mpsc::Receiver<()>,
    idle: std::time::Duration,
) {
    use std::sync::atomic::Ordering;
    use std::sync::mpsc::RecvTimeoutError;
    let checkpoint = || {
        if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE)") {
            tracing::warn!(error = %e, "background WAL checkpoint failed");
        }
    };
    let mut seen = state.commits.load(Ordering::Relaxed);
    loop {
        let woke = if state.dirty.load(Ordering::Acquire) {
            woken.recv_timeout(idle)
        } else {
            woken.recv().map_err(|_| RecvTimeoutError::Disconnected)
        };
        match woke {
            Err(RecvTimeoutError::Disconnected) => break,
            Ok(()) => {
                if state.step.load(Ordering::Acquire) == COPYING {
                    checkpoint();
                    // Only a COPYING step becomes COPIED: a forced checkpoint meanwhile
                    // started the cycle over.
                    let _ = state.step.compare_exchange(
                        COPYING,
                        COPIED,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    );
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                let commits = state.commits.load(Ordering::Relaxed);
                if commits == seen {
                    // No commit for a whole `idle`. Cleared first: a commit from here on
                    // wakes the thread again, so none is left in the WAL unseen.
                    state.dirty.store(false, Ordering::Release);
                    checkpoint();
                }
                seen = commits;
            }
        }
    }
}

/// How long the writer polls for the next write before it sleeps (`next_job`) ...
const WRITER_POLL: std::time::Duration = std::time::Duration::from_micros(200);
/// ... after committing a group of at most this many writes.
const WRITER_POLL_AFTER_GROUP: usize = 8;

/// The next message for the writer. After a small group it is polled for a short while first
/// (yielding the core to any thread that can run), then waited for: a client logging point
/// after point sends its next write a few tens of microseconds after its answer, about what
/// waking a sleeping thread costs. A/B (fresh databases, 5-second runs): one connection
/// 8.0k -> 12.6-13.7k requests/s, eight 31k -> 38k. After a large group it sleeps at once: the
/// next group then gathers while it sleeps (polling after every group cost 64 connections 2-10%).
fn next_job(rx: &mut mpsc::Receiver<Msg>, last_group: usize) -> Option<Msg> {
    if last_group <= WRITER_POLL_AFTER_GROUP {
        let start = std::time::Instant::now();
        while start.elapsed() < WRITER_POLL {
            match rx.try_recv() {
                Ok(m) => return Some(m),
                Err(mpsc::error::TryRecvError::Disconnected) => return None,
                Err(mpsc::error::TryRecvError::Empty) => std::thread::yield_now(),
            }
        }
    }
    rx.blocking_recv()
}

fn writer_loop(
    mut conn: Connection,
    mut rx: mpsc::Receiver<Msg>,
    checkpointer: Checkpointer,
    stats: &std::sync::atomic::AtomicU64,
) {
    let mut closed: Option<oneshot::Sender<()>> = None;
    let refresh = |conn: &Connection| {
        analyze(conn);
        stats.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        (std::time::Instant::now(), 0usize, page_count(conn))
    };
    let (mut analyzed, mut writes, mut pages) = refresh(&conn);
    let mut last_group = usize::MAX;
    while let Some(first) = next_job(&mut rx, last_group) {
        let mut jobs = Vec::new();
        let mut msg = Some(first);
        while let Some(m) = msg.take() {
            match m {
                Msg::Job(job) => jobs.push(job),
                Msg::Close(reply) => closed = Some(reply),
            }
            if closed.is_none() && jobs.len() < MAX_GROUP {
                msg = rx.try_recv().ok();
            }
        }
        last_group = jobs.len();
        if !jobs.is_empty() {
            writes += jobs.len();
            commit_group(&conn, jobs);
            if writes >= ANALYZE_AFTER_WRITES
                && (analyzed.elapsed() >= ANALYZE_EVERY
                    || (analyzed.elapsed() >= ANALYZE_GROWN_EVERY
                        && pages > 0
                        && page_count(&conn) >= pages.saturating_mul(2)))
            {
                (analyzed, writes, pages) = refresh(&conn);
            }
        }
        if closed.is_some() {
            break;
        }
    }
    rx.close();
    checkpointer.stop(&mut conn);
    let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
    drop(conn);
    tracing::debug!("sqlite writer stopped");
    if let Some(reply) = closed {
        let _ = reply.send(());
    }
}

/// Runs queued writes in one transaction, each in its own savepoint, then commits once and
/// only then answers every caller.
fn commit_group(conn: &Connection, jobs: Vec<Job>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        // Dropping the jobs drops their reply channels: callers get 503 and retry.
        tracing::error!(error = %db_err(e), "cannot begin a write transaction");
        return;
    }
    // Savepoint statements are prepared once: this loop runs for every write.
    let run = |sql: &str| {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.execute([]).map(|_| ()))
    };
    let mut finishes = Vec::with_capacity(jobs.len());
    for job in jobs {
        let savepoint = run("SAVEPOINT job");
        let (ok, finish) = job(conn);
        if savepoint.is_ok() {
            let end = if ok {
                run("RELEASE job")
            } else {
                run("ROLLBACK TO job").and(run("RELEASE job"))
            };
            if let Err(e) = end {
                tracing::error!(error = %e, "savepoint handling failed");
            }
        }
        finishes.push(finish);
    }
    let committed = conn.execute_batch("COMMIT").map_err(|e| {
        let _ = conn.execute_batch("ROLLBACK");
        db_err(e)
    });
    for finish in finishes {
        finish(committed.clone());
    }
}

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
        self.write(move |c| queries::runs::set_lifecycle(c, &run_id, true))
            .await
    }
    async fn restore_run(&self, run_id: &str) -> Result<()> {
        let run_id = run_id.to_string();
        self.write(move |c| queries::runs::set_lifecycle(c, &run_id, false))
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
        self.write(move |c| queries::runs::delete_tag(c, &run_id, &key))
            .await
    }
    async fn append_logged_model_history(&self, run_id: &str, model_json: &str) -> Result<()> {
        let (run_id, json) = (run_id.to_string(), model_json.to_string());
        self.write(move |c| queries::runs::append_model_history(c, &run_id, &json))
            .await
    }
    async fn log_inputs(
        &self,
        run_id: &str,
        datasets: Vec<DatasetInput>,
        model_ids: Vec<String>,
    ) -> Result<()> {
        let run_id = run_id.to_string();
        self.write(move |c| queries::runs::log_inputs(c, &run_id, &datasets, &model_ids))
            .await
    }
    async fn log_outputs(&self, run_id: &str, models: Vec<ModelOutput>) -> Result<()> {
        let run_id = run_id.to_string();
        self.write(move |c| queries::runs::log_outputs(c, &run_id, &models))
            .await
    }
    async fn search_datasets(&self, experiment_ids: Vec<String>) -> Result<Vec<DatasetSummary>> {
        self.read(move |c| queries::runs::search_datasets(c, &experiment_ids))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh WAL database with one table, its writer connection, and the database file's path.
    fn writer() -> (tempfile::TempDir, PathBuf, Connection) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("plumb.db");
        let conn = open_connection(&path).expect("open");
        conn.execute_batch("CREATE TABLE t (x BLOB)")
            .expect("create");
        (dir, path, conn)
    }

    /// A fresh database whose writer is hooked to a checkpointer with these marks, and the
    /// database file's size before any checkpoint.
    fn hooked(at: CheckpointAt) -> (tempfile::TempDir, PathBuf, Connection, Checkpointer, u64) {
        let (dir, path, mut conn) = writer();
        let checkpointer = Checkpointer::start(&path, &mut conn, at).expect("start");
        let before = std::fs::metadata(&path).expect("stat").len();
        (dir, path, conn, checkpointer, before)
    }

    /// Ten commits of ~10 pages each, then the database file's size.
    fn write_pages(conn: &Connection, path: &Path) -> u64 {
        for _ in 0..10 {
            conn.execute("INSERT INTO t VALUES (zeroblob(40000))", [])
                .expect("insert");
        }
        std::fs::metadata(path).expect("stat").len()
    }

    /// No idle checkpoint within a test.
    const NEVER: std::time::Duration = std::time::Duration::from_secs(3600);

    /// Waits (up to a bound) for the database file to reach `len` bytes; its final size.
    fn grown_to(path: &Path, len: u64) -> u64 {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let now = std::fs::metadata(path).expect("stat").len();
            if now >= len || std::time::Instant::now() > deadline {
                return now;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    #[test]
    fn once_writes_stop_the_wal_is_copied_back_each_time() {
        let (_dir, path, mut conn, checkpointer, before) = hooked(CheckpointAt {
            wake: c_int_max(),
            force: c_int_max(),
            idle: std::time::Duration::from_millis(20),
        });
        write_pages(&conn, &path);
        let first = grown_to(&path, before + 200_000);
        assert!(first >= before + 200_000, "not copied back: {first} bytes");
        // A second burst after the first copy: the wait for the writes to stop starts again.
        write_pages(&conn, &path);
        let second = grown_to(&path, first + 200_000);
        assert!(
            second >= first + 200_000,
            "second burst not copied back: {second} bytes"
        );
        checkpointer.stop(&mut conn);
    }

    #[test]
    fn the_checkpointer_copies_the_wal_back_off_the_commit() {
        let (_dir, path, mut conn, checkpointer, before) = hooked(CheckpointAt {
            wake: 20,
            force: c_int_max(),
            idle: NEVER,
        });
        write_pages(&conn, &path);
        // The copy happens on the checkpointer's thread, of what the WAL held when it woke: at
        // least the 20 frames of the mark (the rest waits for the next commit past the mark).
        let copied = grown_to(&path, before + 40_000);
        assert!(
            copied >= before + 40_000,
            "nothing was checkpointed: {copied} bytes"
        );
        checkpointer.stop(&mut conn);
    }

    #[test]
    fn a_wal_past_the_force_mark_is_checkpointed_in_the_commit() {
        let (_dir, path, mut conn, checkpointer, before) = hooked(CheckpointAt {
            wake: c_int_max(),
            force: 20,
            idle: NEVER,
        });
        // No waiting: the commit itself copied the WAL back.
        assert!(write_pages(&conn, &path) >= before + 200_000);
        checkpointer.stop(&mut conn);
    }

    #[test]
    fn no_checkpoint_below_the_marks() {
        // The hook replaces SQLite's own automatic checkpoint (1000 frames by default).
        let (_dir, path, mut conn, checkpointer, before) = hooked(CheckpointAt {
            wake: c_int_max(),
            force: c_int_max(),
            idle: NEVER,
        });
        for _ in 0..15 {
            write_pages(&conn, &path);
        }
        assert_eq!(std::fs::metadata(&path).expect("stat").len(), before);
        checkpointer.stop(&mut conn);
    }

    fn c_int_max() -> std::ffi::c_int {
        std::ffi::c_int::MAX
    }
}
