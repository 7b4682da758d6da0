//! MLflow 3's trace API under `/api/3.0` (start a trace, get its info one or many at a time,
//! search, set and delete tags, delete traces, link traces to a run), in `TraceInfoV3`'s JSON:
//! request time as an RFC 3339 timestamp, duration as `"<seconds>s"`. Spans travel as the
//! trace's `traces.json` artifact, which the client uploads to the `mlflow.artifactLocation` tag.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::Json;
use plumb_core::search::{parse_trace_filter, parse_trace_order_by};
use plumb_core::validation::decode_offset_token;
use plumb_core::Error;
use plumb_store::traces::{
    AssessmentPatch, AssessmentRecord, TraceInfo, TraceQuery, TraceSelection,
};
use serde_json::{json, Map, Value};

use crate::api::empty;
use crate::error::{ApiError, ApiResult};
use crate::extract::{bad_type, Params};
use crate::AppState;

const MAX_TAG_KEY: usize = 250;
const MAX_TAG_VALUE: usize = 8000;
const STATES: &[&str] = &["STATE_UNSPECIFIED", "OK", "ERROR", "IN_PROGRESS"];

/// Protobuf JSON of a `Timestamp` from milliseconds: `2024-05-01T10:00:00.123Z`, or without a
/// fraction when it is zero (`2024-05-01T10:00:00Z`), as protobuf writes it.
fn timestamp(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    if ms % 1000 == 0 {
        humantime::format_rfc3339_seconds(t).to_string()
    } else {
        humantime::format_rfc3339_millis(t).to_string()
    }
}

/// Protobuf JSON of a `Duration` from milliseconds: `1.500s`, `2s`.
fn duration(ms: i64) -> String {
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{}.{:03}s", ms / 1000, (ms % 1000).abs())
    }
}

fn parse_timestamp(v: &Value, field: &str) -> ApiResult<i64> {
    match v {
        Value::String(s) => {
            let t = humantime::parse_rfc3339_weak(s.trim_end_matches('Z'))
                .map_err(|_| bad_type(field, v))?;
            let ms = t
                .duration_since(UNIX_EPOCH)
                .map_err(|_| bad_type(field, v))?
                .as_millis();
            i64::try_from(ms).map_err(|_| bad_type(field, v))
        }
        _ => Err(bad_type(field, v)),
    }
}

fn parse_duration(v: &Value, field: &str) -> ApiResult<i64> {
    let Some(s) = v.as_str().and_then(|s| s.strip_suffix('s')) else {
        return Err(bad_type(field, v));
    };
    let secs: f64 = s.parse().map_err(|_| bad_type(field, v))?;
    if !secs.is_finite() || !(0.0..=3.2e8).contains(&secs) {
        return Err(bad_type(field, v));
    }
    Ok((secs * 1000.0).round() as i64)
}

fn string_map(p: &Params, field: &str) -> ApiResult<BTreeMap<String, String>> {
    match p.raw(field)? {
        None => Ok(BTreeMap::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                other => Err(bad_type(field, other)),
            })
            .collect(),
        // Proto JSON of a map may also come as a list of {key, value}.
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                let k = i.get("key").and_then(Value::as_str);
                let v = i.get("value").and_then(Value::as_str).unwrap_or("");
                k.map(|k| (k.to_string(), v.to_string()))
                    .ok_or_else(|| bad_type(field, i))
            })
            .collect(),
        Some(other) => Err(bad_type(field, other)),
    }
}

pub(crate) fn check_tag(key: &str, value: &str) -> ApiResult<()> {
    if key.is_empty() || key.chars().count() > MAX_TAG_KEY {
        return Err(ApiError::invalid(format!(
            "Trace tag key '{key}' must be 1 to {MAX_TAG_KEY} characters long"
        )));
    }
    if value.chars().count() > MAX_TAG_VALUE {
        return Err(ApiError::invalid(format!(
            "Trace tag value of '{key}' is longer than {MAX_TAG_VALUE} characters"
        )));
    }
    Ok(())
}

/// A trace id as the client makes them: printable, no path separators, bounded.
fn check_trace_id(id: &str) -> ApiResult<()> {
    let ok = !id.is_empty()
        && id.len() <= 256
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'))
        && id != "."
        && id != "..";
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(format!("Invalid trace ID '{id}'")))
    }
}

fn info_of(p: &Params) -> ApiResult<TraceInfo> {
    let trace_id = p.req_str("trace_id")?;
    check_trace_id(&trace_id)?;
    let experiment_id = p
        .object("trace_location")?
        .and_then(|l| l.object("mlflow_experiment").ok().flatten())
        .and_then(|e| e.opt_str("experiment_id").ok().flatten())
        .filter(|e| !e.is_empty())
        .ok_or_else(|| Error::missing("trace_location.mlflow_experiment.experiment_id"))?;
    let request_time_ms = match p.raw("request_time")? {
        Some(v) => parse_timestamp(v, "request_time")?,
        None => 0,
    };
    let execution_ms = p
        .raw("execution_duration")?
        .map(|v| parse_duration(v, "execution_duration"))
        .transpose()?;
    let state = match p.raw("state")? {
        None => "STATE_UNSPECIFIED".to_string(),
        Some(Value::String(s)) if STATES.contains(&s.as_str()) => s.clone(),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|i| STATES.get(usize::try_from(i).ok()?))
            .map(|s| s.to_string())
            .ok_or_else(|| bad_type("state", &Value::Number(n.clone())))?,
        Some(other) => return Err(bad_type("state", other)),
    };
    let tags = string_map(p, "tags")?;
    for (k, v) in &tags {
        check_tag(k, v)?;
    }
    Ok(TraceInfo {
        trace_id,
        client_request_id: p.opt_str("client_request_id")?.filter(|s| !s.is_empty()),
        experiment_id,
        request_time_ms,
        execution_ms,
        state,
        request_preview: p.opt_str("request_preview")?,
        response_preview: p.opt_str("response_preview")?,
        metadata: string_map(p, "trace_metadata")?,
        tags,
        // Assessments are written with their own calls.
        assessments: Vec::new(),
    })
}

/// `TraceInfoV3` as JSON.
pub fn wire(t: &TraceInfo) -> Value {
    let mut o = Map::new();
    o.insert("trace_id".into(), json!(t.trace_id));
    if let Some(c) = &t.client_request_id {
        o.insert("client_request_id".into(), json!(c));
    }
    o.insert(
        "trace_location".into(),
        json!({"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": t.experiment_id}}),
    );
    if let Some(r) = t.request_preview.as_ref().filter(|r| !r.is_empty()) {
        o.insert("request_preview".into(), json!(r));
    }
    if let Some(r) = t.response_preview.as_ref().filter(|r| !r.is_empty()) {
        o.insert("response_preview".into(), json!(r));
    }
    o.insert("request_time".into(), json!(timestamp(t.request_time_ms)));
    if let Some(ms) = t.execution_ms {
        o.insert("execution_duration".into(), json!(duration(ms)));
    }
    o.insert("state".into(), json!(t.state));
    if !t.metadata.is_empty() {
        o.insert("trace_metadata".into(), json!(t.metadata));
    }
    if !t.tags.is_empty() {
        o.insert("tags".into(), json!(t.tags));
    }
    if !t.assessments.is_empty() {
        o.insert(
            "assessments".into(),
            Value::Array(t.assessments.iter().map(assessment_wire).collect()),
        );
    }
    Value::Object(o)
}

/// MLflow's `Assessment` as JSON.
pub fn assessment_wire(a: &AssessmentRecord) -> Value {
    let mut o = a.body.clone();
    o.insert("assessment_id".into(), json!(a.assessment_id));
    o.insert("assessment_name".into(), json!(a.name));
    o.insert("trace_id".into(), json!(a.trace_id));
    o.insert("create_time".into(), json!(timestamp(a.created_ms)));
    o.insert("last_update_time".into(), json!(timestamp(a.updated_ms)));
    o.insert("valid".into(), json!(a.valid));
    if let Some(ov) = &a.overrides {
        o.insert("overrides".into(), json!(ov));
    }
    Value::Object(o)
}

/// The fields of an assessment a client writes, kept as they came (checked for shape and size).
const ASSESSMENT_FIELDS: &[&str] = &[
    "span_id",
    "source",
    "feedback",
    "expectation",
    "rationale",
    "error",
    "metadata",
];
const MAX_ASSESSMENT_BYTES: usize = 1024 * 1024;

fn assessment_body(a: &Params, only: Option<&[String]>) -> ApiResult<Map<String, Value>> {
    let mut body = Map::new();
    for f in ASSESSMENT_FIELDS {
        if only.is_some_and(|o| !o.iter().any(|p| p == f)) {
            continue;
        }
        let Some(v) = a.raw(f)? else { continue };
        let ok = match *f {
            "span_id" | "rationale" => v.is_string(),
            "metadata" => v
                .as_object()
                .is_some_and(|m| m.values().all(Value::is_string)),
            _ => v.is_object(),
        };
        if !ok {
            return Err(bad_type(&format!("assessment.{f}"), v));
        }
        body.insert(f.to_string(), v.clone());
    }
    if Value::Object(body.clone()).to_string().len() > MAX_ASSESSMENT_BYTES {
        return Err(ApiError::invalid(format!(
            "An assessment is limited to {MAX_ASSESSMENT_BYTES} bytes"
        )));
    }
    Ok(body)
}

fn assessment_json(a: &AssessmentRecord) -> Json<Value> {
    Json(json!({ "assessment": assessment_wire(a) }))
}

pub async fn create_assessment(
    State(st): State<AppState>,
    Path(trace_id): Path<String>,
    p: Params,
) -> ApiResult<Json<Value>> {
    let a = p
        .object("assessment")?
        .ok_or_else(|| Error::missing("assessment"))?;
    let name = a
        .opt_str("assessment_name")?
        .filter(|n| !n.is_empty())
        .ok_or_else(|| Error::missing("assessment.assessment_name"))?;
    if name.chars().count() > 250 {
        return Err(ApiError::invalid("assessment_name: at most 250 characters"));
    }
    let body = assessment_body(&a, None)?;
    if body.contains_key("feedback") == body.contains_key("expectation") {
        return Err(ApiError::invalid(
            "An assessment must have exactly one of `feedback` or `expectation`.",
        ));
    }
    let now = plumb_core::now_millis();
    let record = AssessmentRecord {
        assessment_id: format!("a-{}", uuid::Uuid::new_v4().simple()),
        trace_id,
        name,
        created_ms: now,
        updated_ms: now,
        valid: true,
        overrides: a.opt_str("overrides")?.filter(|o| !o.is_empty()),
        body,
    };
    Ok(assessment_json(&st.all.create_assessment(record).await?))
}

pub async fn get_assessment(
    State(st): State<AppState>,
    Path((trace_id, assessment_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    Ok(assessment_json(
        &st.all.get_assessment(&trace_id, &assessment_id).await?,
    ))
}

pub async fn update_assessment(
    State(st): State<AppState>,
    Path((trace_id, assessment_id)): Path<(String, String)>,
    p: Params,
) -> ApiResult<Json<Value>> {
    let a = p
        .object("assessment")?
        .ok_or_else(|| Error::missing("assessment"))?;
    // A FieldMask is a comma-separated string in JSON, or an object with `paths`.
    let paths: Vec<String> = match p.raw("update_mask")? {
        Some(Value::String(s)) => s.split(',').map(|x| x.trim().to_string()).collect(),
        Some(Value::Object(m)) => match m.get("paths") {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        },
        Some(other) => return Err(bad_type("update_mask", other)),
        None => return Err(Error::missing("update_mask").into()),
    };
    let name = if paths.iter().any(|p| p == "assessment_name") {
        a.opt_str("assessment_name")?.filter(|n| !n.is_empty())
    } else {
        None
    };
    let valid = if paths.iter().any(|p| p == "valid") {
        a.opt_bool("valid")?
    } else {
        None
    };
    let body = assessment_body(&a, Some(&paths))?;
    let updated = st
        .all
        .update_assessment(
            &trace_id,
            &assessment_id,
            AssessmentPatch { name, body, valid },
            plumb_core::now_millis(),
        )
        .await?;
    Ok(assessment_json(&updated))
}

pub async fn delete_assessment(
    State(st): State<AppState>,
    Path((trace_id, assessment_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    st.all.delete_assessment(&trace_id, &assessment_id).await?;
    Ok(empty())
}

fn trace_json(t: &TraceInfo) -> Json<Value> {
    Json(json!({"trace": {"trace_info": wire(t)}}))
}

pub async fn start(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let trace = p.object("trace")?.ok_or_else(|| Error::missing("trace"))?;
    let info = trace
        .object("trace_info")?
        .ok_or_else(|| Error::missing("trace.trace_info"))?;
    let mut info = info_of(&info)?;
    // As MLflow: the info is final once the client started the trace with it (v3 only).
    info.metadata.insert(
        plumb_store::queries::traces::INFO_FINALIZED_METADATA.to_string(),
        "true".to_string(),
    );
    let info = st.all.start_trace(info).await?;
    Ok(trace_json(&info))
}

pub async fn get_info(
    State(st): State<AppState>,
    Path(trace_id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(trace_json(&st.all.get_trace_info(&trace_id).await?))
}

fn id_list(p: &Params, field: &str) -> ApiResult<Vec<String>> {
    let ids = p.str_list(field)?;
    if ids.len() > 1000 {
        return Err(ApiError::invalid(format!("{field}: at most 1000 ids")));
    }
    Ok(ids)
}

/// `GET /mlflow/traces/get?trace_id=`: the info and the spans kept in the database.
pub async fn get_trace(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let trace_id = p.req_str("trace_id")?;
    let info = st.all.get_trace_info(&trace_id).await?;
    let spans = st.all.get_spans(&trace_id).await?;
    Ok(Json(json!({"trace": {
        "trace_info": wire(&info),
        "spans": spans.iter().map(crate::api::otlp::otlp_json).collect::<Vec<_>>(),
    }})))
}

/// `GET /mlflow/traces/batchGet?trace_ids=...`: whole traces (info and database spans) of the
/// ids that exist, optionally only in the given experiments.
pub async fn batch_get(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let ids = id_list(&p, "trace_ids")?;
    if ids.is_empty() {
        return Err(Error::missing("trace_ids").into());
    }
    let experiments = p.str_list("experiment_ids")?;
    let mut traces = Vec::new();
    for info in st.all.batch_get_trace_infos(ids).await? {
        if p.raw("experiment_ids")?.is_some() && !experiments.contains(&info.experiment_id) {
            continue;
        }
        let spans = st.all.get_spans(&info.trace_id).await?;
        traces.push(json!({
            "trace_info": wire(&info),
            "spans": spans.iter().map(crate::api::otlp::otlp_json).collect::<Vec<_>>(),
        }));
    }
    let mut o = Map::new();
    if !traces.is_empty() {
        o.insert("traces".into(), Value::Array(traces));
    }
    Ok(Json(Value::Object(o)))
}

/// `GET get-trace-artifact?request_id=`: the trace's `traces.json` (`{"spans": [...]}` in MLflow's
/// span dictionaries), from the spans kept in the database.
pub async fn trace_artifact(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let trace_id = p.req_str("request_id")?;
    st.all.get_trace_info(&trace_id).await?;
    let spans = st.all.get_spans(&trace_id).await?;
    if spans.is_empty() {
        return Err(Error::not_found(format!(
            "Trace with ID '{trace_id}' has no spans in the tracking store (its client uploaded \
             them as an artifact: read the trace's mlflow.artifactLocation)"
        ))
        .into());
    }
    let spans: Vec<Value> = spans
        .iter()
        .map(|s| serde_json::from_str(&s.content).unwrap_or(Value::Null))
        .collect();
    Ok(Json(json!({ "spans": spans })))
}

pub async fn batch_get_infos(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let ids = id_list(&p, "trace_ids")?;
    if ids.is_empty() {
        return Err(Error::missing("trace_ids").into());
    }
    let infos = st.all.batch_get_trace_infos(ids).await?;
    let mut o = Map::new();
    if !infos.is_empty() {
        o.insert(
            "trace_infos".into(),
            Value::Array(infos.iter().map(wire).collect()),
        );
    }
    Ok(Json(Value::Object(o)))
}

pub async fn search(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let locations = p.objects("locations")?;
    if locations.is_empty() {
        return Err(Error::missing("locations").into());
    }
    let experiment_ids: Vec<String> = locations
        .iter()
        .filter_map(|l| l.object("mlflow_experiment").ok().flatten())
        .filter_map(|e| e.opt_str("experiment_id").ok().flatten())
        .collect();
    let max_results = match p.opt_i64("max_results")? {
        None | Some(0) => 100,
        Some(n) if !(0..=500).contains(&n) => return Err(bad_type("max_results", &json!(n))),
        Some(n) => n,
    };
    let filter = parse_trace_filter(&p.opt_str("filter")?.unwrap_or_default())?;
    let order_by = parse_trace_order_by(&p.str_list("order_by")?)?;
    let offset = decode_offset_token(p.opt_str("page_token")?.as_deref())?;
    let page = st
        .all
        .search_traces(TraceQuery {
            experiment_ids,
            filter,
            order_by,
            max_results,
            offset,
        })
        .await?;
    Ok(trace_page(&page, wire))
}

/// A page of traces as `{"traces": [...], "next_page_token"}`, each in `shape` (v3's or v2's).
pub(crate) fn trace_page(
    page: &plumb_core::entities::Page<TraceInfo>,
    shape: fn(&TraceInfo) -> Value,
) -> Json<Value> {
    let mut o = Map::new();
    if !page.items.is_empty() {
        o.insert(
            "traces".into(),
            Value::Array(page.items.iter().map(shape).collect()),
        );
    }
    if let Some(t) = &page.next_page_token {
        o.insert("next_page_token".into(), json!(t));
    }
    Json(Value::Object(o))
}

pub async fn set_tag(
    State(st): State<AppState>,
    Path(trace_id): Path<String>,
    p: Params,
) -> ApiResult<Json<Value>> {
    let key = p.req_str("key")?;
    let value = p.opt_str("value")?.unwrap_or_default();
    check_tag(&key, &value)?;
    st.all.set_trace_tag(&trace_id, &key, &value).await?;
    Ok(empty())
}

pub async fn delete_tag(
    State(st): State<AppState>,
    Path(trace_id): Path<String>,
    p: Params,
) -> ApiResult<Json<Value>> {
    let key = p.req_str("key")?;
    st.all.delete_trace_tag(&trace_id, &key).await?;
    Ok(empty())
}

pub async fn delete(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let experiment_id = p.req_str("experiment_id")?;
    let ids = id_list(&p, "request_ids")?;
    let max_ts = p.opt_i64("max_timestamp_millis")?;
    let max_traces = p.opt_i64("max_traces")?;
    let which = match (max_ts, ids.is_empty()) {
        (Some(_), false) => {
            return Err(ApiError::invalid(
                "Only one of `max_timestamp_millis` and `trace_ids` can be specified.",
            ))
        }
        (None, true) => {
            return Err(ApiError::invalid(
                "Either `max_timestamp_millis` or `trace_ids` must be specified.",
            ))
        }
        (Some(ts), true) => {
            if max_traces.is_some_and(|n| n <= 0) {
                return Err(ApiError::invalid(
                    "`max_traces` must be a positive integer.",
                ));
            }
            TraceSelection::Before {
                max_timestamp_ms: ts,
                max_traces,
            }
        }
        (None, false) => {
            if max_traces.is_some() {
                return Err(ApiError::invalid(
                    "`max_traces` can't be specified if `trace_ids` is specified.",
                ));
            }
            TraceSelection::Ids(ids)
        }
    };
    let n = st.all.delete_traces(&experiment_id, which).await?;
    Ok(Json(json!({"traces_deleted": n})))
}

pub async fn link_to_run(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let run_id = p.req_str("run_id")?;
    let ids = id_list(&p, "trace_ids")?;
    st.all.link_traces_to_run(ids, &run_id).await?;
    Ok(empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_as_protobuf_json() {
        assert_eq!(timestamp(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(timestamp(1_700_000_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(
            parse_timestamp(&json!("2023-11-14T22:13:20.123Z"), "t").ok(),
            Some(1_700_000_000_123)
        );
        assert_eq!(
            parse_timestamp(&json!("2023-11-14T22:13:20Z"), "t").ok(),
            Some(1_700_000_000_000)
        );
        assert!(parse_timestamp(&json!("yesterday"), "t").is_err());
        assert_eq!(
            (duration(1500), duration(2000), duration(7)),
            ("1.500s".into(), "2s".into(), "0.007s".into())
        );
        assert_eq!(parse_duration(&json!("1.5s"), "d").ok(), Some(1500));
        assert_eq!(parse_duration(&json!("0.000123s"), "d").ok(), Some(0));
        assert!(parse_duration(&json!("-1s"), "d").is_err());
        assert!(parse_duration(&json!("NaNs"), "d").is_err());
        assert!(parse_duration(&json!(5), "d").is_err());
    }
}
