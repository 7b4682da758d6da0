//! Embedded, numbered SQLite migrations, then the feature areas' (`plumb_store::migrations`);
//! refuses a database newer than this binary.

use plumb_core::Error;
use rusqlite::Connection;

use crate::error::{Result, E};

/// (version, SQL). Append only: a landed migration is never edited.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_init.sql")),
    (2, include_str!("../migrations/0002_registry.sql")),
    (3, include_str!("../migrations/0003_covering_key_value.sql")),
];

/// The newest schema version this binary knows.
pub(crate) fn latest() -> i64 {
    MIGRATIONS.last().map(|m| m.0).unwrap_or(0)
}

/// The schema version of a database (0 for a new one), without changing it.
pub(crate) fn current(conn: &Connection) -> Result<i64> {
    let exists: bool = conn.query_row(
        "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'plumb_schema'",
        [],
        |r| r.get(0),
    )?;
    if !exists {
        return Ok(0);
    }
    conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM plumb_schema",
        [],
        |r| r.get(0),
    )
    .map_err(E::from)
}

pub(crate) fn run(conn: &mut Connection) -> Result<()> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS plumb_schema (version INTEGER NOT NULL)")?;
    let current: i64 = conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM plumb_schema",
        [],
        |r| r.get(0),
    )?;
    let latest = latest();
    if current > latest {
        return Err(Error::internal(format!(
            "the database schema is version {current}, newer than this plumb knows ({latest}); \
             upgrade plumb"
        ))
        .into());
    }
    for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute("INSERT INTO plumb_schema (version) VALUES (?1)", [version])?;
        tx.commit()?;
        tracing::info!(version, "applied sqlite migration");
    }
    let tx = conn.transaction()?;
    crate::conn::sync(plumb_store::migrations::apply(
        &mut crate::conn::SqliteConn(&tx),
        plumb_store::migrations::FEATURES,
    ))?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn feature_migrations_apply_on_sqlite() {
        let mut conn = rusqlite::Connection::open_in_memory().expect("open");
        super::run(&mut conn).expect("core migrations");
        let tx = conn.transaction().expect("tx");
        futures::executor::block_on(plumb_store::migrations::check_apply(
            &mut crate::conn::SqliteConn(&tx),
        ));
    }
}
