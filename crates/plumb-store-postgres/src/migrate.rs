//! Embedded, numbered PostgreSQL migrations, then the feature areas' (`plumb_store::migrations`),
//! applied under an advisory lock so replicas that start together migrate once; refuses a
//! database newer than this binary.

use plumb_core::Error;
use sqlx::PgPool;

use crate::R;

/// (version, SQL). Append only: a landed migration is never edited.
const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("../migrations/0001_init.sql"))];

/// Any constant works; it only has to be the same in every plumb.
const MIGRATION_LOCK: i64 = 0x0070_6c75_6d62;

/// The newest schema version this binary knows.
pub fn latest() -> i64 {
    MIGRATIONS.last().map(|m| m.0).unwrap_or(0)
}

/// The schema version of a database (0 for a new one), without changing it.
pub(crate) async fn current(pool: &PgPool) -> R<i64> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('plumb_schema') IS NOT NULL")
        .fetch_one(pool)
        .await?;
    if !exists {
        return Ok(0);
    }
    Ok(
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0)::BIGINT FROM plumb_schema")
            .fetch_one(pool)
            .await?,
    )
}

pub(crate) async fn run(pool: &PgPool) -> R<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL statement_timeout = 0")
        .execute(&mut *tx)
        .await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS plumb_schema (version BIGINT NOT NULL)")
        .execute(&mut *tx)
        .await?;
    let current: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0)::BIGINT FROM plumb_schema")
            .fetch_one(&mut *tx)
            .await?;
    let latest = latest();
    if current > latest {
        return Err(Error::internal(format!(
            "the database schema is version {current}, newer than this plumb knows ({latest}); \
             upgrade plumb"
        ))
        .into());
    }
    for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO plumb_schema (version) VALUES ($1)")
            .bind(version)
            .execute(&mut *tx)
            .await?;
        tracing::info!(version, "applied postgresql migration");
    }
    plumb_store::migrations::apply(
        &mut crate::conn::PgConn(&mut tx),
        plumb_store::migrations::FEATURES,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use sqlx::Connection;

    #[tokio::test]
    async fn feature_migrations_apply_on_postgres() {
        let url = std::env::var("PLUMB_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let mut c = sqlx::PgConnection::connect(&url).await.expect("connect");
        // Everything in a transaction that is rolled back: the shared database stays as it was.
        let mut tx = c.begin().await.expect("begin");
        plumb_store::migrations::check_apply(&mut crate::conn::PgConn(&mut tx)).await;
        tx.rollback().await.expect("rollback");
    }
}
