//! Synchronous SQL for each entity, run on the writer thread or a pooled reader.

pub(crate) mod metrics;
pub(crate) mod runs;

use std::collections::HashMap;
use std::hash::Hash;

use plumb_core::Result;
use rusqlite::{Connection, Row};

use crate::db_err;

/// Adds each row, mapped, to the list of its key.
fn group_rows<K: Hash + Eq, T>(
    mut rows: rusqlite::Rows<'_>,
    out: &mut HashMap<K, Vec<T>>,
    key: impl Fn(&Row<'_>) -> rusqlite::Result<K>,
    map: impl Fn(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<()> {
    while let Some(row) = rows.next().map_err(db_err)? {
        let k = key(row).map_err(db_err)?;
        out.entry(k).or_default().push(map(row).map_err(db_err)?);
    }
    Ok(())
}

/// Runs `sql`, which reads the bound list `rarray(?1)` of `ids` (`FROM rarray(?1) ids CROSS
/// JOIN <table> t ON t.<owner> = ids.value`), and groups the mapped rows by `key`. The list
/// drives the join, one index seek per id, where an `IN (?, ?, ...)` list is first copied into
/// a temporary index (loading a 1000-run search page this way: -6% instructions), and it is
/// one statement whatever the number of ids.
/// Row order within an id is the caller's to put right (a join promises none).
pub(crate) fn per_id<K: Hash + Eq, T>(
    conn: &Connection,
    sql: &str,
    ids: &[i64],
    key: impl Fn(&Row<'_>) -> rusqlite::Result<K>,
    map: impl Fn(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<HashMap<K, Vec<T>>> {
    let list = std::rc::Rc::new(
        ids.iter()
            .copied()
            .map(rusqlite::types::Value::Integer)
            .collect::<Vec<_>>(),
    );
    let mut out: HashMap<K, Vec<T>> = HashMap::with_capacity(ids.len());
    let mut stmt = conn.prepare_cached(sql).map_err(db_err)?;
    group_rows(stmt.query([list]).map_err(db_err)?, &mut out, key, map)?;
    Ok(out)
}
