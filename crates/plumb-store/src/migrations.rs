//! Schema migrations of feature areas (monitoring, webhooks, ...), declared once per dialect
//! beside the feature's queries and applied by every backend through [`Conn`], after the
//! backend's own (core) migrations and in the same transaction and lock.
//!
//! Each feature keeps its own version in `plumb_features`, so features evolve independently
//! and a database written by a newer plumb (a feature version this binary does not know) is
//! refused instead of being written with an old idea of the schema.

use plumb_core::Error;

use crate::db::{Conn, DbError, DbResult, Dialect};

/// One step of a feature's schema, spelled for each dialect.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// 1, 2, 3, ... within its feature; append only: a landed migration is never edited.
    pub version: i64,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

impl Migration {
    pub fn sql(&self, dialect: Dialect) -> &'static str {
        match dialect {
            Dialect::Sqlite => self.sqlite,
            Dialect::Postgres => self.postgres,
        }
    }
}

/// A feature area's tables: its name (the key in `plumb_features`) and its migrations.
#[derive(Debug, Clone, Copy)]
pub struct Feature {
    pub name: &'static str,
    pub migrations: &'static [Migration],
}

impl Feature {
    /// The newest version this binary knows.
    pub fn latest(&self) -> i64 {
        self.migrations.last().map(|m| m.version).unwrap_or(0)
    }
}

/// Every feature area whose tables a store holds, in the order they are applied.
pub const FEATURES: &[Feature] = &[
    crate::queries::monitoring::MONITORING,
    crate::queries::webhooks::WEBHOOKS,
    crate::queries::traces::TRACES,
    crate::queries::registry_history::REGISTRY_HISTORY,
];

/// Creates or upgrades the tables of `features`. Run inside the backend's migration
/// transaction (and, on PostgreSQL, under its advisory lock).
pub async fn apply<C: Conn>(c: &mut C, features: &[Feature]) -> DbResult<()> {
    c.execute_script(
        "CREATE TABLE IF NOT EXISTS plumb_features (
             name    TEXT PRIMARY KEY,
             version BIGINT NOT NULL
         )",
    )
    .await?;
    for feature in features {
        let current = version(c, feature.name).await?;
        let latest = feature.latest();
        if current > latest {
            return Err(DbError::other(Error::internal(format!(
                "the database's '{}' tables are version {current}, newer than this plumb \
                 knows ({latest}); upgrade plumb",
                feature.name
            ))));
        }
        for m in feature.migrations.iter().filter(|m| m.version > current) {
            c.execute_script(m.sql(c.dialect())).await?;
            c.execute(
                "INSERT INTO plumb_features (name, version) VALUES (?, ?)
                 ON CONFLICT (name) DO UPDATE SET version = excluded.version",
                vec![feature.name.into(), m.version.into()],
            )
            .await?;
        }
    }
    Ok(())
}

/// The version of a feature's tables in the database (0: none yet).
pub async fn version<C: Conn>(c: &mut C, feature: &str) -> DbResult<i64> {
    match c
        .query_opt(
            "SELECT version FROM plumb_features WHERE name = ?",
            vec![feature.into()],
        )
        .await?
    {
        Some(row) => row.int(0),
        None => Ok(0),
    }
}

/// Checks [`apply`] on a backend's connection (called from each backend's tests): tables are
/// created once, upgrades apply only what is new, a newer database is refused.
#[cfg(feature = "testing")]
pub async fn check_apply<C: Conn>(c: &mut C) {
    const V1: Migration = Migration {
        version: 1,
        sqlite: "CREATE TABLE feature_probe (id INTEGER PRIMARY KEY, note TEXT NOT NULL);
                 CREATE INDEX feature_probe_note ON feature_probe (note);",
        postgres: "CREATE TABLE feature_probe (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                                              note TEXT NOT NULL);
                   CREATE INDEX feature_probe_note ON feature_probe (note);",
    };
    const V2: Migration = Migration {
        version: 2,
        sqlite: "ALTER TABLE feature_probe ADD COLUMN weight REAL NOT NULL DEFAULT 1.5",
        postgres: "ALTER TABLE feature_probe ADD COLUMN weight DOUBLE PRECISION NOT NULL \
                   DEFAULT 1.5",
    };
    let v1 = Feature {
        name: "probe",
        migrations: &[V1],
    };
    let v2 = Feature {
        name: "probe",
        migrations: &[V1, V2],
    };
    apply(c, &[v1]).await.expect("create");
    apply(c, &[v1]).await.expect("again: nothing to do");
    assert_eq!(version(c, "probe").await.expect("version"), 1);
    c.execute(
        "INSERT INTO feature_probe (note) VALUES (?)",
        vec!["kept".into()],
    )
    .await
    .expect("insert");
    apply(c, &[v2]).await.expect("upgrade");
    assert_eq!(version(c, "probe").await.expect("version"), 2);
    let row = c
        .query_opt("SELECT note, weight FROM feature_probe", vec![])
        .await
        .expect("select")
        .expect("the row survived the upgrade");
    assert_eq!(row.text(0).expect("note"), "kept");
    assert_eq!(row.real(1).expect("weight"), 1.5);
    let refused = apply(c, &[v1])
        .await
        .expect_err("a newer database is refused");
    assert!(
        refused.error.message.contains("newer than this plumb"),
        "{}",
        refused.error.message
    );
}
