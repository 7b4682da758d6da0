//! The neutral [`Conn`] over a rusqlite connection, so store logic written once
//! (`plumb_store::queries`) runs inside the writer thread's transaction or on a reader.

use std::future::Future;
use std::rc::Rc;

use plumb_core::Result;
use plumb_store::db::{Bind, Cell, Conn, DbError, DbErrorKind, DbResult, Dialect, Row};
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{params_from_iter, Connection, ToSql};

use crate::db_err;

/// A SQLite connection seen through [`Conn`].
pub(crate) struct SqliteConn<'a>(pub(crate) &'a Connection);

/// A bound value: a scalar, or a list read by `rarray(?)`.
pub(crate) enum Param {
    Scalar(Value),
    List(Rc<Vec<Value>>),
}

impl ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        match self {
            Param::Scalar(v) => v.to_sql(),
            Param::List(l) => l.to_sql(),
        }
    }
}

pub(crate) fn param(b: Bind) -> Param {
    match b {
        Bind::Int(i) => Param::Scalar(Value::Integer(i)),
        Bind::Real(r) => Param::Scalar(Value::Real(r)),
        Bind::Text(t) => Param::Scalar(Value::Text(t)),
        Bind::NullInt | Bind::NullText | Bind::NullReal => Param::Scalar(Value::Null),
        Bind::IntList(l) => Param::List(Rc::new(l.into_iter().map(Value::Integer).collect())),
        Bind::TextList(l) => Param::List(Rc::new(l.into_iter().map(Value::Text).collect())),
    }
}

fn err(e: rusqlite::Error) -> DbError {
    let unique = matches!(
        &e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    );
    DbError {
        kind: if unique {
            DbErrorKind::Unique
        } else {
            DbErrorKind::Other
        },
        error: db_err(e),
    }
}

fn cell(v: ValueRef<'_>) -> Cell {
    match v {
        ValueRef::Null => Cell::Null,
        ValueRef::Integer(i) => Cell::Int(i),
        ValueRef::Real(r) => Cell::Real(r),
        ValueRef::Text(t) | ValueRef::Blob(t) => {
            Cell::Text(String::from_utf8_lossy(t).into_owned())
        }
    }
}

impl Conn for SqliteConn<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    async fn query(&mut self, sql: &str, binds: Vec<Bind>) -> DbResult<Vec<Row>> {
        let mut stmt = self.0.prepare_cached(sql).map_err(err)?;
        let n = stmt.column_count();
        let mut rows = stmt
            .query(params_from_iter(binds.into_iter().map(param)))
            .map_err(err)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(err)? {
            let mut cells = Vec::with_capacity(n);
            for i in 0..n {
                cells.push(cell(r.get_ref(i).map_err(err)?));
            }
            out.push(Row(cells));
        }
        Ok(out)
    }

    async fn execute(&mut self, sql: &str, binds: Vec<Bind>) -> DbResult<u64> {
        let mut stmt = self.0.prepare_cached(sql).map_err(err)?;
        let n = stmt
            .execute(params_from_iter(binds.into_iter().map(param)))
            .map_err(err)?;
        Ok(n as u64)
    }

    async fn execute_script(&mut self, sql: &str) -> DbResult<()> {
        self.0.execute_batch(sql).map_err(err)
    }
}

/// Runs neutral store logic on SQLite: its statements never suspend, so the future is polled
/// to its end here, on the writer thread or the reader that called.
pub(crate) fn sync<T>(logic: impl Future<Output = DbResult<T>>) -> Result<T> {
    futures::executor::block_on(logic).map_err(Into::into)
}
