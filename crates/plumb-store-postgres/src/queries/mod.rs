//! Async SQL for each entity, run inside the caller's transaction or on a pooled connection.

pub(crate) mod metrics;
pub(crate) mod runs;

use plumb_core::validation::encode_offset_token;
use plumb_store::sql::{number_marks, Bind};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::PgConnection;

use crate::{E, R};

/// Binds shared-renderer values in order.
pub(crate) fn args(binds: Vec<Bind>) -> R<PgArguments> {
    crate::conn::args(binds).map_err(E::Db)
}

/// Runs a search rendered with `?` marks and `LIMIT max_results + 1 OFFSET offset` as its last
/// two binds; returns at most `max_results` rows and the next page's token when there is more.
pub(crate) async fn fetch_page<T>(
    c: &mut PgConnection,
    sql: &str,
    binds: Vec<Bind>,
    max_results: i64,
    offset: i64,
    map: impl Fn(&PgRow) -> Result<T, sqlx::Error>,
) -> R<(Vec<T>, Option<String>)> {
    let rows = sqlx::query_with(&number_marks(sql), args(binds)?)
        .fetch_all(&mut *c)
        .await?;
    let mut items = rows.iter().map(map).collect::<Result<Vec<T>, _>>()?;
    let next = if items.len() as i64 > max_results {
        items.truncate(max_results as usize);
        Some(encode_offset_token(offset + max_results))
    } else {
        None
    };
    Ok((items, next))
}

/// How a metric value comes back: NaN was stored as (0, 1).
pub(crate) fn stored_to_value(value: f64, is_nan: i16) -> f64 {
    if is_nan != 0 {
        f64::NAN
    } else {
        value
    }
}
