//! The store's internal error (a domain error or a database failure) and how database failures
//! become MLflow errors: lost connections and overload are 503, retryable races are retried.

use std::fmt;

use plumb_core::Error;

/// What a query function fails with.
#[derive(Debug)]
pub(crate) enum E {
    /// An MLflow error decided by the query (not found, invalid state, ...).
    Domain(Error),
    /// The database failed.
    Db(sqlx::Error),
    /// Store logic written once (`plumb_store::queries`) failed.
    Neutral(plumb_store::db::DbError),
}

impl From<plumb_store::db::DbError> for E {
    fn from(e: plumb_store::db::DbError) -> Self {
        E::Neutral(e)
    }
}

pub(crate) type R<T> = std::result::Result<T, E>;

impl From<Error> for E {
    fn from(e: Error) -> Self {
        E::Domain(e)
    }
}

impl From<sqlx::Error> for E {
    fn from(e: sqlx::Error) -> Self {
        E::Db(e)
    }
}

impl fmt::Display for E {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            E::Domain(e) => write!(f, "{}", e.message),
            E::Db(e) => write!(f, "{e}"),
            E::Neutral(e) => write!(f, "{}", e.error.message),
        }
    }
}

/// The SQLSTATE of a database error, if it is one.
pub(crate) fn sqlstate(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}

impl E {
    /// A deadlock or serialization failure: the whole transaction may simply run again.
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            E::Db(e) => matches!(sqlstate(e).as_deref(), Some("40001" | "40P01")),
            E::Neutral(e) => e.kind == plumb_store::db::DbErrorKind::Retry,
            E::Domain(_) => false,
        }
    }

    pub(crate) fn into_domain(self) -> Error {
        match self {
            E::Domain(e) => e,
            E::Db(e) => db_err(e),
            E::Neutral(e) => e.error,
        }
    }
}

/// Maps a database failure to an MLflow error: anything that says "the database is not
/// reachable right now" is 503 (retried by the client), bad data is 400, the rest 500.
pub(crate) fn db_err(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => {
            Error::unavailable(format!("the database is unavailable, try again: {e}"))
        }
        sqlx::Error::Database(_) => {
            let code = sqlstate(&e).unwrap_or_default();
            if code == "57014" {
                // query_canceled: the statement timeout fired. The same request would run as
                // long again, so this is no "try again".
                return Error::invalid(
                    "The query ran longer than the server's statement timeout and was \
                     cancelled; narrow the filter or the page.",
                );
            }
            match code.get(..2) {
                // connection exception, insufficient resources, operator intervention
                // (admin shutdown, crash shutdown, cannot connect now), transaction rollback
                Some("08" | "53" | "57" | "40") => {
                    Error::unavailable(format!("the database is unavailable, try again: {e}"))
                }
                // data exception (a value PostgreSQL cannot take)
                Some("22") => Error::invalid(format!("invalid value: {e}")),
                _ => Error::internal(format!("database error: {e}")),
            }
        }
        _ => Error::internal(format!("database error: {e}")),
    }
}
