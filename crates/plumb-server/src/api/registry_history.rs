//! `GET /api/2.0/plumb/registry/history?name=<model>[&max_results=N]`: when each alias came to
//! or left a version and when each version changed stage, which MLflow's registry API does not
//! say (plumb records it with the change). The UI's version page draws it as a timeline.

use axum::extract::State;
use axum::Json;
use plumb_core::registry::{ChangeKind, RegistryChange};
use plumb_core::Error;
use serde::Serialize;

use crate::error::ApiResult;
use crate::extract::Params;
use crate::AppState;

const DEFAULT_RESULTS: i64 = 1_000;
const MAX_RESULTS: i64 = 10_000;

/// One change: `kind` is `alias_set` or `alias_removed` (with `alias`) or `stage` (with
/// `stage`, the stage entered); `time_ms` is when plumb stored it.
#[derive(Debug, Serialize, PartialEq)]
pub struct Change {
    pub version: String,
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    pub time_ms: i64,
}

/// The model's newest `max_results` changes, oldest first.
#[derive(Debug, Serialize)]
pub struct HistoryAnswer {
    pub name: String,
    pub changes: Vec<Change>,
}

impl From<RegistryChange> for Change {
    fn from(c: RegistryChange) -> Self {
        let (kind, alias, stage) = match c.kind {
            ChangeKind::AliasSet(a) => ("alias_set", Some(a), None),
            ChangeKind::AliasRemoved(a) => ("alias_removed", Some(a), None),
            ChangeKind::Stage(s) => ("stage", None, Some(s)),
        };
        Change {
            version: c.version.to_string(),
            kind,
            alias,
            stage,
            time_ms: c.time_ms,
        }
    }
}

pub async fn history(State(st): State<AppState>, p: Params) -> ApiResult<Json<HistoryAnswer>> {
    let name = p.req_str("name")?;
    let max = p.opt_i64("max_results")?.unwrap_or(DEFAULT_RESULTS);
    if !(1..=MAX_RESULTS).contains(&max) {
        return Err(Error::invalid(format!("max_results: between 1 and {MAX_RESULTS}")).into());
    }
    let changes = st.registry.registry_changes(&name, max).await?;
    Ok(Json(HistoryAnswer {
        name,
        changes: changes.into_iter().map(Change::from).collect(),
    }))
}
