//! The neutral [`Conn`] over a sqlx PostgreSQL connection, so store logic written once
//! (`plumb_store::queries`) runs inside the caller's transaction or on a pooled connection.

use plumb_core::Error;
use plumb_store::db::{Bind, Cell, Conn, DbError, DbErrorKind, DbResult, Dialect, Row};
use plumb_store::sql::number_marks;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::{Arguments, Column, PgConnection, Row as _, TypeInfo};

use crate::error::{db_err, sqlstate};

/// A PostgreSQL connection seen through [`Conn`].
pub(crate) struct PgConn<'a>(pub(crate) &'a mut PgConnection);

/// Binds neutral values in order.
pub(crate) fn args(binds: Vec<Bind>) -> Result<PgArguments, sqlx::Error> {
    let mut a = PgArguments::default();
    for b in binds {
        match b {
            Bind::Int(i) => a.add(i),
            Bind::Real(r) => a.add(r),
            Bind::Text(t) => a.add(t),
            Bind::NullInt => a.add(None::<i64>),
            Bind::NullText => a.add(None::<String>),
            Bind::NullReal => a.add(None::<f64>),
            Bind::IntList(l) => a.add(l),
            Bind::TextList(l) => a.add(l),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    Ok(a)
}

pub(crate) fn err(e: sqlx::Error) -> DbError {
    let kind = match sqlstate(&e).as_deref() {
        Some("40001" | "40P01") => DbErrorKind::Retry,
        Some("23505") => DbErrorKind::Unique,
        _ => DbErrorKind::Other,
    };
    DbError {
        kind,
        error: db_err(e),
    }
}

fn to_row(r: &PgRow) -> DbResult<Row> {
    let mut cells = Vec::with_capacity(r.len());
    for (i, col) in r.columns().iter().enumerate() {
        let cell = match col.type_info().name() {
            "INT8" => r.try_get::<Option<i64>, _>(i).map(|v| v.map(Cell::Int)),
            "INT4" => r
                .try_get::<Option<i32>, _>(i)
                .map(|v| v.map(|v| Cell::Int(v.into()))),
            "INT2" => r
                .try_get::<Option<i16>, _>(i)
                .map(|v| v.map(|v| Cell::Int(v.into()))),
            "BOOL" => r
                .try_get::<Option<bool>, _>(i)
                .map(|v| v.map(|v| Cell::Int(v.into()))),
            "FLOAT8" => r.try_get::<Option<f64>, _>(i).map(|v| v.map(Cell::Real)),
            "FLOAT4" => r
                .try_get::<Option<f32>, _>(i)
                .map(|v| v.map(|v| Cell::Real(v.into()))),
            "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" => {
                r.try_get::<Option<String>, _>(i).map(|v| v.map(Cell::Text))
            }
            "VOID" => Ok(None),
            other => {
                return Err(DbError::other(Error::internal(format!(
                    "column {} has the unsupported type {other}",
                    col.name()
                ))))
            }
        }
        .map_err(err)?;
        cells.push(cell.unwrap_or(Cell::Null));
    }
    Ok(Row(cells))
}

impl Conn for PgConn<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    async fn query(&mut self, sql: &str, binds: Vec<Bind>) -> DbResult<Vec<Row>> {
        let rows = sqlx::query_with(&number_marks(sql), args(binds).map_err(err)?)
            .fetch_all(&mut *self.0)
            .await
            .map_err(err)?;
        rows.iter().map(to_row).collect()
    }

    async fn execute(&mut self, sql: &str, binds: Vec<Bind>) -> DbResult<u64> {
        let done = sqlx::query_with(&number_marks(sql), args(binds).map_err(err)?)
            .execute(&mut *self.0)
            .await
            .map_err(err)?;
        Ok(done.rows_affected())
    }

    async fn execute_script(&mut self, sql: &str) -> DbResult<()> {
        sqlx::raw_sql(sql)
            .execute(&mut *self.0)
            .await
            .map_err(err)?;
        Ok(())
    }
}
