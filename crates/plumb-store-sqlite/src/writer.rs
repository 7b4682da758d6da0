//! The single writer thread: queued writes run in one transaction each in its own savepoint
//! (group commit), callers are answered after COMMIT, and the planner's statistics are
//! refreshed now and then.

use std::sync::atomic::AtomicU64;

use plumb_core::Result;
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::checkpoint::Checkpointer;
use crate::db_err;

/// How many queued writes one transaction may take at most.
pub(crate) const MAX_GROUP: usize = 512;
pub(crate) type Finish = Box<dyn FnOnce(Result<()>) + Send>;
pub(crate) type Job = Box<dyn FnOnce(&Connection) -> (bool, Finish) + Send>;

/// What the writer thread receives: a write, or the request to close the database.
pub(crate) enum Msg {
    Job(Job),
    Close(oneshot::Sender<()>),
}

/// How often, at most, the writer refreshes the query planner's statistics while writes come in
/// (and whenever the database doubled in size since the last refresh: a database loaded from
/// empty in under a minute would keep the statistics of an empty one).
const ANALYZE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);
/// How often, at most, a database that doubled in size gets its statistics refreshed (each
/// refresh holds the writer for tens of milliseconds).
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

/// How long the writer polls for the next write before it sleeps (`next_job`) ...
const WRITER_POLL: std::time::Duration = std::time::Duration::from_micros(200);
/// ... after committing a group of at most this many writes.
const WRITER_POLL_AFTER_GROUP: usize = 8;

/// The next message for the writer. After a small group it is polled for a short while first
/// (yielding the core to any thread that can run), then waited for: a client logging point
/// after point sends its next write a few tens of microseconds after its answer, about what
/// waking a sleeping thread costs. After a large group it sleeps at once: the next group then
/// gathers while it sleeps. (The A/B of both is in bench/notes.md.)
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

pub(crate) fn writer_loop(
    mut conn: Connection,
    mut rx: mpsc::Receiver<Msg>,
    checkpointer: Checkpointer,
    stats: &AtomicU64,
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
