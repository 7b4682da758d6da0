//! The backend-neutral way to run SQL: a connection ([`Conn`]) that queries and executes SQL
//! with `?` marks and [`Bind`] values, rows read by column ([`Row`]), errors that keep what a
//! backend needs to know ([`DbError`]: retry, unique key), and the [`Dialect`] for the few
//! spellings the two databases do not share. Store logic written once on it (`crate::queries`)
//! runs on SQLite inside its writer thread or a reader, and on PostgreSQL inside a transaction
//! or on a pooled connection.

use plumb_core::validation::encode_offset_token;
use plumb_core::{Error, ErrorCode};

pub use crate::sql::Bind;

/// Which database a [`Conn`] talks to, for the spellings they do not share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// `expr` is one of the values of a list bound to its `?` ([`Bind::IntList`],
    /// [`Bind::TextList`]): one statement whatever the list's length.
    pub fn in_list(self, expr: &str) -> String {
        match self {
            Self::Sqlite => format!("{expr} IN (SELECT value FROM rarray(?))"),
            Self::Postgres => format!("{expr} = ANY(?)"),
        }
    }

    /// The column that orders a table's rows as they were inserted (`rowid` in SQLite, the
    /// `seq` identity column in the PostgreSQL schema).
    pub fn insertion_order(self) -> &'static str {
        match self {
            Self::Sqlite => "rowid",
            Self::Postgres => "seq",
        }
    }

    /// Locks the rows a `SELECT` read until the transaction ends (PostgreSQL; SQLite's single
    /// writer needs no lock).
    pub fn for_update(self) -> &'static str {
        match self {
            Self::Sqlite => "",
            Self::Postgres => " FOR UPDATE",
        }
    }
}

/// One value of a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

/// A row read by column index.
#[derive(Debug, Clone, PartialEq)]
pub struct Row(pub Vec<Cell>);

fn column(i: usize, want: &str, got: &Cell) -> DbError {
    DbError::other(Error::internal(format!(
        "database column {i}: expected {want}, found {got:?}"
    )))
}

impl Row {
    fn cell(&self, i: usize) -> DbResult<&Cell> {
        self.0
            .get(i)
            .ok_or_else(|| column(i, "a column", &Cell::Null))
    }

    pub fn int(&self, i: usize) -> DbResult<i64> {
        match self.cell(i)? {
            Cell::Int(v) => Ok(*v),
            other => Err(column(i, "an integer", other)),
        }
    }

    pub fn opt_int(&self, i: usize) -> DbResult<Option<i64>> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            _ => self.int(i).map(Some),
        }
    }

    pub fn real(&self, i: usize) -> DbResult<f64> {
        match self.cell(i)? {
            Cell::Real(v) => Ok(*v),
            Cell::Int(v) => Ok(*v as f64),
            other => Err(column(i, "a number", other)),
        }
    }

    pub fn opt_real(&self, i: usize) -> DbResult<Option<f64>> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            _ => self.real(i).map(Some),
        }
    }

    pub fn text(&self, i: usize) -> DbResult<String> {
        match self.cell(i)? {
            Cell::Text(v) => Ok(v.clone()),
            other => Err(column(i, "text", other)),
        }
    }

    pub fn opt_text(&self, i: usize) -> DbResult<Option<String>> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            _ => self.text(i).map(Some),
        }
    }
}

/// What kind of failure a [`DbError`] is, for the backend's transaction handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbErrorKind {
    /// An MLflow error the store logic decided (not found, invalid state, ...).
    Domain,
    /// The transaction lost a race (deadlock, serialization): run it again.
    Retry,
    /// A unique key refused the row.
    Unique,
    /// Anything else the database said; `error` holds its client-facing form.
    Other,
}

/// A failure while running store logic: the client-facing error and its kind.
#[derive(Debug, Clone)]
pub struct DbError {
    pub kind: DbErrorKind,
    pub error: Error,
}

pub type DbResult<T> = std::result::Result<T, DbError>;

impl DbError {
    pub fn other(error: Error) -> Self {
        Self {
            kind: DbErrorKind::Other,
            error,
        }
    }

    pub fn is_unique(&self) -> bool {
        self.kind == DbErrorKind::Unique
    }
}

impl From<Error> for DbError {
    fn from(error: Error) -> Self {
        Self {
            kind: DbErrorKind::Domain,
            error,
        }
    }
}

impl From<DbError> for Error {
    fn from(e: DbError) -> Self {
        e.error
    }
}

/// A database connection store logic runs on: inside the caller's transaction for writes.
/// Statements use `?` marks; binds are taken in order.
///
/// The futures are not declared `Send`: SQLite's connection is not `Sync`, and its statements
/// complete without suspending (the writer thread and readers poll them to the end at once).
/// Logic generic over `Conn` and used with the PostgreSQL connection is `Send` as a whole.
#[allow(async_fn_in_trait)]
pub trait Conn {
    fn dialect(&self) -> Dialect;

    /// Runs a statement and returns its rows.
    async fn query(&mut self, sql: &str, binds: Vec<Bind>) -> DbResult<Vec<Row>>;

    /// Runs a statement and returns how many rows it changed.
    async fn execute(&mut self, sql: &str, binds: Vec<Bind>) -> DbResult<u64>;

    /// Runs statements separated by `;`, without binds (schema migrations).
    async fn execute_script(&mut self, sql: &str) -> DbResult<()>;

    /// The first row, if any.
    async fn query_opt(&mut self, sql: &str, binds: Vec<Bind>) -> DbResult<Option<Row>> {
        Ok(self.query(sql, binds).await?.into_iter().next())
    }
}

/// Runs a search rendered with `LIMIT max_results + 1 OFFSET offset` as its last two binds;
/// returns at most `max_results` mapped rows and the next page's token when there is more.
pub async fn fetch_page<C: Conn, T>(
    c: &mut C,
    sql: &str,
    binds: Vec<Bind>,
    max_results: i64,
    offset: i64,
    map: impl Fn(&Row) -> DbResult<T>,
) -> DbResult<(Vec<T>, Option<String>)> {
    let rows = c.query(sql, binds).await?;
    let mut items = rows.iter().map(map).collect::<DbResult<Vec<T>>>()?;
    let next = if items.len() as i64 > max_results {
        items.truncate(usize::try_from(max_results).unwrap_or(0));
        Some(encode_offset_token(offset + max_results))
    } else {
        None
    };
    Ok((items, next))
}

/// The error for a statement that should have returned a row and did not.
pub fn no_row(what: &str) -> DbError {
    DbError::other(Error::new(
        ErrorCode::InternalError,
        format!("the database returned no row for {what}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialect_spellings() {
        assert_eq!(
            Dialect::Sqlite.in_list("t.id"),
            "t.id IN (SELECT value FROM rarray(?))"
        );
        assert_eq!(Dialect::Postgres.in_list("t.id"), "t.id = ANY(?)");
        assert_eq!(Dialect::Postgres.for_update(), " FOR UPDATE");
        assert_eq!(Dialect::Sqlite.for_update(), "");
    }

    #[test]
    fn rows_read_by_type() {
        let r = Row(vec![
            Cell::Int(3),
            Cell::Null,
            Cell::Text("x".into()),
            Cell::Real(1.5),
        ]);
        assert_eq!(r.int(0).ok(), Some(3));
        assert_eq!(r.opt_int(1).ok(), Some(None));
        assert_eq!(r.text(2).ok().as_deref(), Some("x"));
        assert_eq!(r.real(3).ok(), Some(1.5));
        assert_eq!(r.real(0).ok(), Some(3.0));
        assert!(r.int(2).is_err());
        assert!(r.text(9).is_err());
    }
}
