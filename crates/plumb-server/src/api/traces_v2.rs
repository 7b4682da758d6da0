//! The v2 trace API the 2.x client uses (MLflow 3 still serves it, deprecated): start a trace
//! (the server makes its id), end it, get its info, search, in `TraceInfo` v2's JSON (request
//! id, status, metadata and tags as key-value lists). The client uploads the spans as the
//! trace's `traces.json` artifact at its `mlflow.artifactLocation` tag; the stored trace is the
//! same one the v3 API reads.

use axum::extract::{Path, State};
use axum::Json;
use plumb_core::search::{parse_trace_filter, parse_trace_order_by};
use plumb_core::validation::decode_offset_token;
use plumb_core::Error;
use plumb_store::traces::{TraceInfo, TraceQuery};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

use crate::api::traces::{check_tag, trace_page};
use crate::error::{ApiError, ApiResult};
use crate::extract::{bad_type, Params};
use crate::AppState;

/// v2's `TraceStatus` names by the v3 state they stand for.
fn status_of(state: &str) -> &'static str {
    match state {
        "OK" => "OK",
        "ERROR" => "ERROR",
        "IN_PROGRESS" => "IN_PROGRESS",
        _ => "TRACE_STATUS_UNSPECIFIED",
    }
}

fn state_of(p: &Params) -> ApiResult<Option<String>> {
    let Some(v) = p.raw("status")? else {
        return Ok(None);
    };
    let s = match v {
        Value::String(s) => s.as_str(),
        Value::Number(n) => match n.as_i64() {
            Some(0) => "TRACE_STATUS_UNSPECIFIED",
            Some(1) => "OK",
            Some(2) => "ERROR",
            Some(3) => "IN_PROGRESS",
            _ => return Err(bad_type("status", v)),
        },
        _ => return Err(bad_type("status", v)),
    };
    Ok(Some(
        match s {
            "OK" | "ERROR" | "IN_PROGRESS" => s,
            "TRACE_STATUS_UNSPECIFIED" => "STATE_UNSPECIFIED",
            _ => return Err(bad_type("status", v)),
        }
        .to_string(),
    ))
}

/// `[{key, value}, ...]` as a map (a key given twice keeps its last value).
fn key_values(p: &Params, field: &str, tags: bool) -> ApiResult<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for kv in p.objects(field)? {
        let key = kv.req_str("key")?;
        let value = kv.opt_str("value")?.unwrap_or_default();
        if tags {
            check_tag(&key, &value)?;
        } else if key.is_empty() || key.chars().count() > 250 {
            return Err(ApiError::invalid(format!(
                "{field}: key '{key}' must be 1 to 250 characters long"
            )));
        }
        out.insert(key, value);
    }
    Ok(out)
}

fn truncated(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// `TraceInfo` (v2) as JSON.
pub fn wire(t: &TraceInfo) -> Value {
    let list = |m: &BTreeMap<String, String>, k: usize, v: usize| -> Vec<Value> {
        m.iter()
            .map(|(key, value)| json!({"key": truncated(key, k), "value": truncated(value, v)}))
            .collect()
    };
    let mut o = Map::new();
    o.insert("request_id".into(), json!(t.trace_id));
    o.insert("experiment_id".into(), json!(t.experiment_id));
    o.insert("timestamp_ms".into(), json!(t.request_time_ms));
    o.insert(
        "execution_time_ms".into(),
        json!(t.execution_ms.unwrap_or(0)),
    );
    o.insert("status".into(), json!(status_of(&t.state)));
    let metadata = list(&t.metadata, 250, 250);
    if !metadata.is_empty() {
        o.insert("request_metadata".into(), Value::Array(metadata));
    }
    let tags = list(&t.tags, 250, 4096);
    if !tags.is_empty() {
        o.insert("tags".into(), Value::Array(tags));
    }
    Value::Object(o)
}

/// `POST /api/2.0/mlflow/traces`.
pub async fn start(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let experiment_id = p
        .opt_str("experiment_id")?
        .filter(|e| !e.is_empty())
        .ok_or_else(|| Error::missing("experiment_id"))?;
    let info = TraceInfo {
        trace_id: uuid::Uuid::new_v4().simple().to_string(),
        experiment_id,
        request_time_ms: p.opt_i64("timestamp_ms")?.unwrap_or(0),
        execution_ms: None,
        state: "IN_PROGRESS".into(),
        metadata: key_values(&p, "request_metadata", false)?,
        tags: key_values(&p, "tags", true)?,
        ..TraceInfo::default()
    };
    let info = st.all.start_trace(info).await?;
    Ok(Json(json!({"trace_info": wire(&info)})))
}

/// `PATCH /api/2.0/mlflow/traces/{request_id}`: the end time (the duration is counted from
/// the start), the status, and metadata and tags merged into the stored ones.
pub async fn end(
    State(st): State<AppState>,
    Path(trace_id): Path<String>,
    p: Params,
) -> ApiResult<Json<Value>> {
    let mut info = st.all.get_trace_info(&trace_id).await?;
    if let Some(end) = p.opt_i64("timestamp_ms")? {
        info.execution_ms = Some(end.saturating_sub(info.request_time_ms).max(0));
    }
    if let Some(state) = state_of(&p)? {
        info.state = state;
    }
    info.metadata
        .extend(key_values(&p, "request_metadata", false)?);
    info.tags.extend(key_values(&p, "tags", true)?);
    info.assessments.clear();
    let info = st.all.start_trace(info).await?;
    Ok(Json(json!({"trace_info": wire(&info)})))
}

/// `GET /api/2.0/mlflow/traces/{request_id}/info`.
pub async fn get_info(
    State(st): State<AppState>,
    Path(trace_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let info = st.all.get_trace_info(&trace_id).await?;
    Ok(Json(json!({"trace_info": wire(&info)})))
}

/// `GET /api/2.0/mlflow/traces?experiment_ids=...`.
pub async fn search(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let experiment_ids = p.str_list("experiment_ids")?;
    if experiment_ids.is_empty() {
        return Err(Error::missing("experiment_ids").into());
    }
    let max_results = match p.opt_i64("max_results")? {
        None | Some(0) => 100,
        Some(n) if !(1..=500).contains(&n) => {
            let raw = p.raw("max_results")?.cloned().unwrap_or(json!(n));
            return Err(bad_type("max_results", &raw));
        }
        Some(n) => n,
    };
    let page = st
        .all
        .search_traces(TraceQuery {
            experiment_ids,
            filter: parse_trace_filter(&p.opt_str("filter")?.unwrap_or_default())?,
            order_by: parse_trace_order_by(&p.str_list("order_by")?)?,
            max_results,
            offset: decode_offset_token(p.opt_str("page_token")?.as_deref())?,
        })
        .await?;
    Ok(trace_page(&page, wire))
}
