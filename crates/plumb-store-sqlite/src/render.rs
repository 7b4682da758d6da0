//! SQLite glue for the shared search renderer (`plumb_store::sql`): binds and paging.

use crate::error::Result;
use plumb_store::sql::Bind;

use crate::conn::{param, Param};

/// Shared-renderer binds as SQLite parameters.
pub(crate) fn to_sql(binds: Vec<Bind>) -> Vec<Param> {
    binds.into_iter().map(param).collect()
}

/// Runs a search that was rendered with `LIMIT max_results + 1 OFFSET offset` as its last two
/// binds; returns at most `max_results` rows and the next page's token when there is more.
pub(crate) fn fetch_page<T>(
    conn: &rusqlite::Connection,
    sql: &str,
    binds: Vec<Param>,
    max_results: i64,
    offset: i64,
    map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<(Vec<T>, Option<String>)> {
    let mut stmt = conn.prepare(sql)?;
    let mut rows: Vec<T> = stmt
        .query_map(rusqlite::params_from_iter(binds), map)
        .and_then(|rows| rows.collect())?;
    let next = if rows.len() as i64 > max_results {
        rows.truncate(max_results as usize);
        Some(plumb_core::validation::encode_offset_token(
            offset + max_results,
        ))
    } else {
        None
    };
    Ok((rows, next))
}
