//! The registry's history that MLflow keeps no time for (aliases set and removed, stage
//! changes), recorded in the same transaction as the change itself; the version page's timeline
//! reads it. Rows follow their model on rename and go with it on delete (foreign key).

use plumb_core::registry::{ChangeKind, RegistryChange};

use crate::db::{Conn, DbResult};
use crate::migrations::{Feature, Migration};

const V1: Migration = Migration {
    version: 1,
    sqlite: "
CREATE TABLE plumb_registry_changes (
    seq     INTEGER PRIMARY KEY,
    name    TEXT NOT NULL REFERENCES registered_models (name) ON UPDATE CASCADE ON DELETE CASCADE,
    version INTEGER NOT NULL,
    kind    TEXT NOT NULL,
    value   TEXT NOT NULL,
    time_ms INTEGER NOT NULL
);
CREATE INDEX plumb_registry_changes_name ON plumb_registry_changes (name, seq);
",
    postgres: "
CREATE TABLE plumb_registry_changes (
    seq     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name    TEXT NOT NULL REFERENCES registered_models (name) ON UPDATE CASCADE ON DELETE CASCADE,
    version BIGINT NOT NULL,
    kind    TEXT NOT NULL,
    value   TEXT NOT NULL,
    time_ms BIGINT NOT NULL
);
CREATE INDEX plumb_registry_changes_name ON plumb_registry_changes (name, seq);
",
};

/// The `registry_history` feature (after the core registry tables it references).
pub const REGISTRY_HISTORY: Feature = Feature {
    name: "registry_history",
    migrations: &[V1],
};

fn spell(kind: &ChangeKind) -> (&'static str, &str) {
    match kind {
        ChangeKind::AliasSet(a) => ("alias_set", a),
        ChangeKind::AliasRemoved(a) => ("alias_removed", a),
        ChangeKind::Stage(s) => ("stage", s),
    }
}

pub async fn record<C: Conn>(
    c: &mut C,
    name: &str,
    version: i64,
    kind: &ChangeKind,
    time_ms: i64,
) -> DbResult<()> {
    let (kind, value) = spell(kind);
    c.execute(
        "INSERT INTO plumb_registry_changes (name, version, kind, value, time_ms)
         VALUES (?, ?, ?, ?, ?)",
        vec![
            name.into(),
            version.into(),
            kind.into(),
            value.into(),
            time_ms.into(),
        ],
    )
    .await?;
    Ok(())
}

/// Records that the versions of `name` in `stage`, but `except`, are being archived (called
/// before the update that archives them).
pub async fn record_archived<C: Conn>(
    c: &mut C,
    name: &str,
    except: i64,
    stage: &str,
    time_ms: i64,
) -> DbResult<()> {
    c.execute(
        "INSERT INTO plumb_registry_changes (name, version, kind, value, time_ms)
         SELECT name, version, 'stage', 'Archived', ? FROM model_versions
         WHERE name = ? AND version != ? AND current_stage = ? ORDER BY version",
        vec![time_ms.into(), name.into(), except.into(), stage.into()],
    )
    .await?;
    Ok(())
}

/// Records that every alias on a version is being removed (called before it is deleted).
pub async fn record_aliases_removed<C: Conn>(
    c: &mut C,
    name: &str,
    version: i64,
    time_ms: i64,
) -> DbResult<()> {
    c.execute(
        "INSERT INTO plumb_registry_changes (name, version, kind, value, time_ms)
         SELECT name, version, 'alias_removed', alias, ? FROM registered_model_aliases
         WHERE name = ? AND version = ? ORDER BY alias",
        vec![time_ms.into(), name.into(), version.into()],
    )
    .await?;
    Ok(())
}

/// The model's newest `max` changes, oldest first. (The caller checks that the model exists.)
pub async fn changes<C: Conn>(c: &mut C, name: &str, max: i64) -> DbResult<Vec<RegistryChange>> {
    let rows = c
        .query(
            "SELECT version, kind, value, time_ms FROM plumb_registry_changes
             WHERE name = ? ORDER BY seq DESC LIMIT ?",
            vec![name.into(), max.into()],
        )
        .await?;
    let mut out = rows
        .iter()
        .map(|r| {
            let value = r.text(2)?;
            let kind = match r.text(1)?.as_str() {
                "alias_set" => ChangeKind::AliasSet(value),
                "alias_removed" => ChangeKind::AliasRemoved(value),
                _ => ChangeKind::Stage(value),
            };
            Ok(RegistryChange {
                version: r.int(0)?,
                kind,
                time_ms: r.int(3)?,
            })
        })
        .collect::<DbResult<Vec<_>>>()?;
    out.reverse();
    Ok(out)
}
