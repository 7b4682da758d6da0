//! The store's one internal error type: every failure inside the SQLite store (a SQLite error,
//! an MLflow error decided by a query, a failure of the shared logic) converts into it with
//! `?`, and it becomes the MLflow error callers see at the trait boundary.

use plumb_core::Error;

/// What a query function fails with: already the MLflow error it will be answered as.
#[derive(Debug)]
pub(crate) struct E(pub(crate) Error);

/// The result of the store's query functions.
pub(crate) type Result<T> = std::result::Result<T, E>;

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

impl From<rusqlite::Error> for E {
    fn from(e: rusqlite::Error) -> Self {
        E(db_err(e))
    }
}

impl From<Error> for E {
    fn from(e: Error) -> Self {
        E(e)
    }
}

impl From<plumb_store::db::DbError> for E {
    fn from(e: plumb_store::db::DbError) -> Self {
        E(e.error)
    }
}

impl From<E> for Error {
    fn from(e: E) -> Self {
        e.0
    }
}
