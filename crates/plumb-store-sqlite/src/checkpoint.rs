//! The WAL checkpointer: copies the WAL back into the database file on its own thread and
//! connection, woken by the writer's commits, so that no commit waits for the bulk copy.

use std::path::Path;
use std::sync::Arc;

use plumb_core::{Error, Result};
use rusqlite::Connection;

use crate::{db_err, open_connection};

/// When the WAL is copied back into the database file, in WAL frames (pages).
#[derive(Clone, Copy)]
pub(crate) struct CheckpointAt {
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
pub(crate) const CHECKPOINT_AT: CheckpointAt = CheckpointAt {
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
/// it happened to catch up costs an fsync each time: see bench/notes.md.)
///
/// And once writes stop for `CheckpointAt::idle`, the thread copies back whatever the WAL
/// holds: until then every page a reader fetches is first looked up in the WAL's index, and a
/// WAL short of the `wake` mark would otherwise stay so until the next writes (measured in
/// bench/notes.md).
pub(crate) struct Checkpointer {
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
    pub(crate) fn start(path: &Path, writer: &mut Connection, at: CheckpointAt) -> Result<Self> {
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
    pub(crate) fn stop(self, writer: &mut Connection) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

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
