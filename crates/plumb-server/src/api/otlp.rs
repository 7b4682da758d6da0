//! OTLP over HTTP: `POST /v1/traces` takes an `ExportTraceServiceRequest` (protobuf or JSON, as
//! the OpenTelemetry SDKs send it) into the experiment named by `x-mlflow-experiment-id`, as
//! MLflow's server does; spans are stored as MLflow's span dictionaries. Also the conversions
//! back: spans as OTLP JSON for `traces/get`, and as `traces.json` for `get-trace-artifact`.

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::{status::StatusCode as OtelCode, Span};
use plumb_store::traces::SpanRecord;
use prost::Message;
use serde_json::{json, Map, Value};

use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// The header naming the experiment spans go to.
pub const EXPERIMENT_HEADER: &str = "x-mlflow-experiment-id";
/// The largest export request read (the SDKs batch 512 spans by default).
const MAX_BODY: usize = 32 * 1024 * 1024;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An OTLP attribute value as a JSON value (arrays and maps kept as such).
fn decode(v: &AnyValue) -> Value {
    match &v.value {
        None => Value::Null,
        Some(any_value::Value::StringValue(s)) => json!(s),
        Some(any_value::Value::BoolValue(b)) => json!(b),
        Some(any_value::Value::IntValue(i)) => json!(i),
        Some(any_value::Value::DoubleValue(d)) => json!(d),
        Some(any_value::Value::BytesValue(b)) => json!(B64.encode(b)),
        Some(any_value::Value::ArrayValue(a)) => {
            Value::Array(a.values.iter().map(decode).collect())
        }
        Some(any_value::Value::KvlistValue(kv)) => Value::Object(
            kv.values
                .iter()
                .map(|k| {
                    (
                        k.key.clone(),
                        k.value.as_ref().map(decode).unwrap_or(Value::Null),
                    )
                })
                .collect(),
        ),
        #[allow(unreachable_patterns)]
        Some(_) => Value::Null,
    }
}

/// A JSON value as OTLP JSON's `AnyValue` (the inverse of [`decode`]).
fn encode(v: &Value) -> Value {
    match v {
        Value::Null => json!({}),
        Value::Bool(b) => json!({"boolValue": b}),
        Value::Number(n) if n.is_i64() => json!({"intValue": n.to_string()}),
        Value::Number(n) => json!({"doubleValue": n.as_f64()}),
        Value::String(s) => json!({"stringValue": s}),
        Value::Array(a) => {
            json!({"arrayValue": {"values": a.iter().map(encode).collect::<Vec<_>>()}})
        }
        Value::Object(o) => json!({"kvlistValue": {"values": o.iter()
            .map(|(k, v)| json!({"key": k, "value": encode(v)}))
            .collect::<Vec<_>>()}}),
    }
}

fn attributes(kvs: &[KeyValue]) -> Map<String, Value> {
    kvs.iter()
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value.as_ref().map(decode).unwrap_or(Value::Null),
            )
        })
        .collect()
}

/// One OTLP span as a stored span (MLflow's span dictionary as content).
fn record(span: &Span) -> ApiResult<SpanRecord> {
    if span.trace_id.len() != 16 || span.span_id.len() != 8 {
        return Err(ApiError::invalid(
            "Invalid OpenTelemetry format - trace_id must be 16 bytes and span_id 8 bytes",
        ));
    }
    if !(span.parent_span_id.is_empty() || span.parent_span_id.len() == 8) {
        return Err(ApiError::invalid(
            "Invalid OpenTelemetry format - parent_span_id must be 8 bytes",
        ));
    }
    let trace_id = format!("tr-{}", hex(&span.trace_id));
    let decoded = attributes(&span.attributes);
    let mut attrs: Map<String, Value> = decoded
        .iter()
        .map(|(k, v)| (k.clone(), json!(v.to_string())))
        .collect();
    attrs.insert(
        "mlflow.traceRequestId".into(),
        json!(json!(trace_id).to_string()),
    );
    let text = |k: &str| match decoded.get(k) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Null) | None => None,
        Some(other) => Some(other.to_string()),
    };
    let (status, code_name) = match span.status.as_ref().map(|s| s.code()) {
        Some(OtelCode::Ok) => ("OK", "STATUS_CODE_OK"),
        Some(OtelCode::Error) => ("ERROR", "STATUS_CODE_ERROR"),
        _ => ("UNSET", "STATUS_CODE_UNSET"),
    };
    let start_ns = i64::try_from(span.start_time_unix_nano)
        .map_err(|_| ApiError::invalid("Invalid OpenTelemetry format - start time out of range"))?;
    let end_ns = (span.end_time_unix_nano != 0)
        .then(|| i64::try_from(span.end_time_unix_nano).ok())
        .flatten();
    let parent = (!span.parent_span_id.is_empty()).then(|| B64.encode(&span.parent_span_id));
    let content = json!({
        "trace_id": B64.encode(&span.trace_id),
        "span_id": B64.encode(&span.span_id),
        "parent_span_id": parent,
        "name": span.name,
        "start_time_unix_nano": span.start_time_unix_nano,
        "end_time_unix_nano": if span.end_time_unix_nano == 0 { Value::Null } else { json!(span.end_time_unix_nano) },
        "events": span.events.iter().map(|e| json!({
            "name": e.name,
            "time_unix_nano": e.time_unix_nano,
            "attributes": Value::Object(attributes(&e.attributes)),
        })).collect::<Vec<_>>(),
        "status": {
            "code": code_name,
            "message": span.status.as_ref().map(|s| s.message.clone()).unwrap_or_default(),
        },
        "attributes": Value::Object(attrs),
        "links": [],
    });
    Ok(SpanRecord {
        trace_id,
        span_id: hex(&span.span_id),
        parent_span_id: (!span.parent_span_id.is_empty()).then(|| hex(&span.parent_span_id)),
        name: span.name.clone(),
        span_type: text("mlflow.spanType"),
        status: status.into(),
        start_ns,
        end_ns,
        content: content.to_string(),
        inputs: text("mlflow.spanInputs"),
        outputs: text("mlflow.spanOutputs"),
        tokens: tokens(&decoded),
    })
}

/// A span's token counts: MLflow's `mlflow.chat.tokenUsage` (a JSON object, or its text), or
/// the OpenTelemetry GenAI conventions (`gen_ai.usage.input_tokens`/`output_tokens`, or the
/// older `prompt_tokens`/`completion_tokens`). The total is the sum when not given.
fn tokens(attrs: &Map<String, Value>) -> Option<(i64, i64, i64)> {
    let int = |v: Option<&Value>| -> Option<i64> {
        match v? {
            Value::Number(n) => n.as_i64().filter(|x| *x >= 0),
            Value::String(s) => s.trim().parse().ok().filter(|x: &i64| *x >= 0),
            _ => None,
        }
    };
    let (input, output, total) = match attrs.get("mlflow.chat.tokenUsage") {
        Some(v) => {
            let obj = match v {
                Value::String(s) => serde_json::from_str::<Value>(s).ok()?,
                other => other.clone(),
            };
            (
                int(obj.get("input_tokens")),
                int(obj.get("output_tokens")),
                int(obj.get("total_tokens")),
            )
        }
        None => (
            int(attrs.get("gen_ai.usage.input_tokens"))
                .or_else(|| int(attrs.get("gen_ai.usage.prompt_tokens"))),
            int(attrs.get("gen_ai.usage.output_tokens"))
                .or_else(|| int(attrs.get("gen_ai.usage.completion_tokens"))),
            None,
        ),
    };
    if input.is_none() && output.is_none() && total.is_none() {
        return None;
    }
    let (i, o) = (input.unwrap_or(0), output.unwrap_or(0));
    Some((i, o, total.unwrap_or(i.saturating_add(o))))
}

fn protobuf(headers: &HeaderMap) -> Option<bool> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    match ct.split(';').next().unwrap_or("").trim() {
        "application/x-protobuf" => Some(true),
        "application/json" => Some(false),
        _ => None,
    }
}

enum Gunzip {
    TooLarge,
    Invalid,
}

/// A gzip body inflated, refusing more than `limit` bytes of output (a small bomb must not
/// inflate into memory).
fn gunzip(data: &[u8], limit: usize) -> Result<Bytes, Gunzip> {
    use std::io::Read;
    let mut out = Vec::new();
    let mut reader = flate2::read::GzDecoder::new(data).take(limit as u64 + 1);
    reader.read_to_end(&mut out).map_err(|_| Gunzip::Invalid)?;
    if out.len() > limit {
        return Err(Gunzip::TooLarge);
    }
    Ok(out.into())
}

/// `POST /v1/traces`.
pub async fn export(State(st): State<AppState>, req: Request) -> ApiResult<Response> {
    let headers = req.headers().clone();
    let experiment_id = headers
        .get(EXPERIMENT_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::invalid(format!("Missing required header {EXPERIMENT_HEADER}")))?
        .to_string();
    let is_proto = protobuf(&headers).ok_or_else(|| {
        ApiError::invalid(format!(
            "Invalid Content-Type: {}. Expected: application/x-protobuf or application/json",
            headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("none")
        ))
    })?;
    let gzip = match headers.get(header::CONTENT_ENCODING).map(|v| v.as_bytes()) {
        None | Some(b"identity") => false,
        Some(e) if e.eq_ignore_ascii_case(b"gzip") => true,
        Some(e) => {
            return Err(ApiError::invalid(format!(
                "Unsupported Content-Encoding {:?}: send the export as gzip or uncompressed",
                String::from_utf8_lossy(e)
            )))
        }
    };
    let too_large = || {
        ApiError::new(
            plumb_core::ErrorCode::InvalidParameterValue,
            format!("the export request is larger than {MAX_BODY} bytes"),
        )
    };
    let mut body: Bytes = axum::body::to_bytes(req.into_body(), MAX_BODY)
        .await
        .map_err(|_| too_large())?;
    if gzip {
        body = gunzip(&body, MAX_BODY).map_err(|e| match e {
            Gunzip::TooLarge => too_large(),
            Gunzip::Invalid => ApiError::invalid("The export request is not valid gzip"),
        })?;
    }
    let invalid = || ApiError::invalid("Invalid OpenTelemetry format");
    let request = if is_proto {
        ExportTraceServiceRequest::decode(body.as_ref()).map_err(|_| invalid())?
    } else {
        serde_json::from_slice::<ExportTraceServiceRequest>(&body).map_err(|_| invalid())?
    };
    let mut spans = Vec::new();
    for rs in &request.resource_spans {
        for ss in &rs.scope_spans {
            for span in &ss.spans {
                spans.push(record(span)?);
            }
        }
    }
    if spans.is_empty() {
        return Err(ApiError::invalid(
            "Invalid OpenTelemetry format - no spans found",
        ));
    }
    st.all.log_spans(&experiment_id, spans).await?;
    let answer = ExportTraceServiceResponse::default();
    Ok(if is_proto {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            answer.encode_to_vec(),
        )
            .into_response()
    } else {
        (StatusCode::OK, axum::Json(json!({}))).into_response()
    })
}

/// A stored span as OTLP JSON (`opentelemetry.proto.trace.v1.Span`, base64 ids as protobuf's
/// JSON mapping writes bytes), the shape MLflow's `Trace.spans` carries.
pub fn otlp_json(s: &SpanRecord) -> Value {
    let content: Value = serde_json::from_str(&s.content).unwrap_or(Value::Null);
    let attrs = content["attributes"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| {
                    // Stored values are JSON text; the client decodes and re-encodes them.
                    let value = v
                        .as_str()
                        .and_then(|t| serde_json::from_str::<Value>(t).ok())
                        .unwrap_or_else(|| v.clone());
                    json!({"key": k, "value": encode(&value)})
                })
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let mut o = json!({
        "traceId": content["trace_id"],
        "spanId": content["span_id"],
        "name": s.name,
        "startTimeUnixNano": s.start_ns.to_string(),
        "attributes": attrs,
        "status": {"code": content["status"]["code"], "message": content["status"]["message"]},
        "events": content["events"].as_array().map(|events| events.iter().map(|e| json!({
            "name": e["name"],
            "timeUnixNano": e["time_unix_nano"].as_u64().unwrap_or(0).to_string(),
            "attributes": e["attributes"].as_object().map(|a| a.iter()
                .map(|(k, v)| json!({"key": k, "value": encode(v)})).collect::<Vec<_>>())
                .unwrap_or_default(),
        })).collect::<Vec<_>>()).unwrap_or_default(),
    });
    if let Some(end) = s.end_ns {
        o["endTimeUnixNano"] = json!(end.to_string());
    }
    if let Some(p) = content["parent_span_id"].as_str() {
        o["parentSpanId"] = json!(p);
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_otlp_json() {
        for v in [
            json!("text"),
            json!(5),
            json!(1.5),
            json!(true),
            json!([1, "a"]),
            json!({"k": {"n": [1, 2]}}),
        ] {
            let any: AnyValue = serde_json::from_value(encode(&v)).expect("AnyValue");
            assert_eq!(decode(&any), v);
        }
    }

    #[test]
    fn spans_need_well_formed_ids() {
        let mut span = Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: "root".into(),
            start_time_unix_nano: 1_700_000_000_000_000_000,
            end_time_unix_nano: 1_700_000_000_500_000_000,
            ..Span::default()
        };
        let r = record(&span).expect("record");
        assert_eq!(r.trace_id, format!("tr-{}", "01".repeat(16)));
        assert_eq!(
            (r.status.as_str(), r.parent_span_id.as_deref()),
            ("UNSET", None)
        );
        let back = otlp_json(&r);
        assert_eq!(back["spanId"], B64.encode([2u8; 8]));
        span.trace_id = vec![1; 3];
        assert!(record(&span).is_err());
        span.trace_id = vec![1; 16];
        span.parent_span_id = vec![9; 2];
        assert!(record(&span).is_err());
    }
}
