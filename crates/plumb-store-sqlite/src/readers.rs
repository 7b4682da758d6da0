//! The reader pool: read connections (memory-mapped, WAL readers that never wait for the
//! writer) kept idle between requests, and reopened when the writer refreshed the planner's
//! statistics since they were opened.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use plumb_core::Result;
use rusqlite::Connection;

use crate::open_connection;

/// How many idle reader connections are kept.
const MAX_IDLE_READERS: usize = 8;

/// A connection for reads. It maps the database file into memory: a search over a large
/// experiment touches thousands of pages, and reading each through `pread` into the page cache
/// was a third of its time. The mapping is the OS page cache itself (no copy per connection);
/// pages still in the WAL are read as before.
fn open_reader(path: &Path) -> crate::error::Result<Connection> {
    let conn = open_connection(path)?;
    conn.execute_batch("PRAGMA mmap_size = 1073741824;")?;
    Ok(conn)
}

/// Idle read connections, each with the statistics generation it loaded.
pub(crate) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<(Connection, u64)>>,
    /// Bumped each time the writer refreshed the query planner's statistics: SQLite loads them
    /// into a connection once, when it first reads the schema, so a reader opened before a
    /// refresh keeps planning with the old ones (for a database loaded from empty: none).
    stats: Arc<AtomicU64>,
}

impl Readers {
    pub(crate) fn new(path: PathBuf, stats: Arc<AtomicU64>) -> Self {
        Self {
            path,
            idle: Mutex::new(Vec::new()),
            stats,
        }
    }

    /// Runs `f` on an idle connection (or a new one), then keeps the connection for the next.
    /// Blocking: call it off the async runtime.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let current = self.stats.load(Ordering::Acquire);
        let pooled = self.idle.lock().map(|mut v| v.pop()).unwrap_or(None);
        // A connection that planned with older statistics is replaced (once a minute at most:
        // see `writer::ANALYZE_EVERY`).
        let (conn, stats) = match pooled {
            Some((c, stats)) if stats == current => (c, stats),
            _ => (open_reader(&self.path)?, current),
        };
        let out = f(&conn);
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < MAX_IDLE_READERS {
                idle.push((conn, stats));
            }
        }
        out
    }

    /// Closes the idle connections.
    pub(crate) fn clear(&self) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }
}
