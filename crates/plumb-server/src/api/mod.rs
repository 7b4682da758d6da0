//! One module per MLflow service; each handler decodes, validates, calls the store, encodes.

pub mod artifacts;
pub mod experiments;
pub mod metrics;
pub mod misc;
pub mod models;
pub mod monitoring;
pub mod otlp;
pub mod registry;
pub mod registry_history;
pub mod runs;
pub mod sampled;
pub mod trace_metrics;
pub mod traces;
pub mod traces_v2;
pub mod webhooks;

use axum::Json;
use plumb_core::entities::Tag;
use serde_json::{json, Value};

use crate::error::ApiResult;
use crate::extract::Params;

/// MLflow's empty response, `{}`.
pub(crate) fn empty() -> Json<Value> {
    Json(json!({}))
}

/// A repeated `{key, value}` field; `key` is required, `value` defaults to "".
pub(crate) fn tag_list(p: &Params, field: &str) -> ApiResult<Vec<Tag>> {
    p.objects(field)?
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let key = t
                .opt_str("key")?
                .filter(|k| !k.is_empty())
                .ok_or_else(|| plumb_core::Error::missing(&format!("{field}[{i}].key")))?;
            Ok(Tag::new(key, t.opt_str("value")?.unwrap_or_default()))
        })
        .collect()
}
