//! Reading a batch of inference events or late labels from a request body, with errors that
//! name the field (`events[3].latency_ms: ...`). JSON-valued fields are kept as their JSON text.

use serde::Deserialize;
use serde_json::value::RawValue;

use plumb_store::monitoring::{Event, Label};

/// Events or labels in one request, at most.
pub const MAX_BATCH: usize = 10_000;
/// A request id's length, at most.
pub const MAX_REQUEST_ID: usize = 256;
/// The JSON text of one event's prediction, label, scores, features and segment, at most.
pub const MAX_EVENT_JSON: usize = 64 * 1024;
/// How far in the future an event's timestamp may be (clocks differ).
pub const MAX_AHEAD_MS: i64 = 3_600_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsIn<'a> {
    #[serde(borrow)]
    events: Vec<EventIn<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventIn<'a> {
    timestamp_ms: Option<i64>,
    request_id: Option<String>,
    latency_ms: Option<f64>,
    #[serde(default)]
    error: bool,
    #[serde(borrow)]
    prediction: Option<&'a RawValue>,
    #[serde(borrow)]
    label: Option<&'a RawValue>,
    #[serde(borrow)]
    scores: Option<&'a RawValue>,
    #[serde(borrow)]
    features: Option<&'a RawValue>,
    #[serde(borrow)]
    segment: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LabelsIn<'a> {
    #[serde(borrow)]
    labels: Vec<LabelIn<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LabelIn<'a> {
    request_id: String,
    #[serde(borrow)]
    label: &'a RawValue,
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, String> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            format!("the body is not the expected JSON: {}", e.inner())
        } else {
            format!("{path}: {}", e.inner())
        }
    })
}

fn request_id(field: &str, id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_REQUEST_ID || id.chars().any(char::is_control) {
        return Err(format!(
            "{field}: must be 1-{MAX_REQUEST_ID} bytes without control characters"
        ));
    }
    Ok(())
}

/// A scalar class or value (string, number, boolean); `null` is absent.
fn scalar(field: &str, v: Option<&RawValue>) -> Result<Option<String>, String> {
    let Some(v) = v else { return Ok(None) };
    let text = v.get();
    match text.as_bytes().first() {
        Some(b'n') => Ok(None),
        Some(b'{' | b'[') => Err(format!("{field}: must be a string, number or boolean")),
        _ if text.len() > MAX_EVENT_JSON => {
            Err(format!("{field}: longer than {MAX_EVENT_JSON} bytes"))
        }
        _ => Ok(Some(text.to_string())),
    }
}

/// A JSON object (features, segment) or array/object (scores); `null` is absent.
fn compound(field: &str, v: Option<&RawValue>, arrays: bool) -> Result<Option<String>, String> {
    let Some(v) = v else { return Ok(None) };
    let text = v.get();
    match text.as_bytes().first() {
        Some(b'n') => Ok(None),
        Some(b'{') => Ok(Some(text.to_string())),
        Some(b'[') if arrays => Ok(Some(text.to_string())),
        _ if arrays => Err(format!("{field}: must be an object or a list of numbers")),
        _ => Err(format!("{field}: must be an object")),
    }
}

/// Reads `{"events": [...]}`. Timestamps default to `now_ms`; they may not be older than
/// `oldest_ms` (raw events past retention could not be folded again) nor an hour ahead.
pub fn parse_events(body: &[u8], now_ms: i64, oldest_ms: i64) -> Result<Vec<Event>, String> {
    let input: EventsIn = parse(body)?;
    if input.events.len() > MAX_BATCH {
        return Err(format!(
            "events: at most {MAX_BATCH} per request, got {}",
            input.events.len()
        ));
    }
    let mut out = Vec::with_capacity(input.events.len());
    for (i, e) in input.events.into_iter().enumerate() {
        let at = |f: &str| format!("events[{i}].{f}");
        let ts_ms = e.timestamp_ms.unwrap_or(now_ms);
        if ts_ms < oldest_ms || ts_ms > now_ms + MAX_AHEAD_MS {
            return Err(format!(
                "{}: {ts_ms} is outside the accepted range [{oldest_ms}, {}] (the retention \
                 period up to an hour ahead)",
                at("timestamp_ms"),
                now_ms + MAX_AHEAD_MS
            ));
        }
        let request_id = match e.request_id {
            Some(id) => {
                request_id(&at("request_id"), &id)?;
                id
            }
            // Time-ordered (UUIDv7): new ids land at the end of the request-id index.
            None => uuid::Uuid::now_v7().simple().to_string(),
        };
        if let Some(l) = e.latency_ms {
            if !l.is_finite() || l < 0.0 {
                return Err(format!(
                    "{}: must be a finite number >= 0",
                    at("latency_ms")
                ));
            }
        }
        let event = Event {
            ts_ms,
            request_id,
            latency_ms: e.latency_ms,
            error: e.error,
            prediction: scalar(&at("prediction"), e.prediction)?,
            label: scalar(&at("label"), e.label)?,
            scores: compound(&at("scores"), e.scores, true)?,
            features: compound(&at("features"), e.features, false)?,
            segment: compound(&at("segment"), e.segment, false)?,
        };
        let size = [&event.scores, &event.features, &event.segment]
            .iter()
            .map(|s| s.as_ref().map_or(0, String::len))
            .sum::<usize>();
        if size > MAX_EVENT_JSON {
            return Err(format!(
                "events[{i}]: scores, features and segment hold more than {MAX_EVENT_JSON} bytes"
            ));
        }
        out.push(event);
    }
    Ok(out)
}

/// Reads `{"labels": [{"request_id", "label"}]}`.
pub fn parse_labels(body: &[u8]) -> Result<Vec<Label>, String> {
    let input: LabelsIn = parse(body)?;
    if input.labels.len() > MAX_BATCH {
        return Err(format!(
            "labels: at most {MAX_BATCH} per request, got {}",
            input.labels.len()
        ));
    }
    let mut out = Vec::with_capacity(input.labels.len());
    for (i, l) in input.labels.into_iter().enumerate() {
        request_id(&format!("labels[{i}].request_id"), &l.request_id)?;
        let label = scalar(&format!("labels[{i}].label"), Some(l.label))?
            .ok_or_else(|| format!("labels[{i}].label: must not be null"))?;
        out.push(Label {
            request_id: l.request_id,
            label,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_and_bad_ones_name_their_field() {
        let body = br#"{"events": [
            {"timestamp_ms": 1000, "request_id": "a", "latency_ms": 12.5, "prediction": 1,
             "label": "cat", "features": {"x": 1.5}, "segment": {"region": "eu"}, "scores": [0.1, 0.9]},
            {"latency_ms": 3, "error": true, "prediction": null}
        ]}"#;
        let ev = parse_events(body, 5000, 0).expect("reads");
        assert_eq!(ev[0].prediction.as_deref(), Some("1"));
        assert_eq!(ev[0].label.as_deref(), Some("\"cat\""));
        assert_eq!(ev[0].features.as_deref(), Some("{\"x\": 1.5}"));
        assert_eq!(
            (ev[1].ts_ms, ev[1].error, ev[1].prediction.clone()),
            (5000, true, None)
        );
        assert_eq!(ev[1].request_id.len(), 32);
        let err = |b: &[u8]| parse_events(b, 5000, 100).expect_err("refused");
        assert!(err(br#"{"events": [{}, {"latency_ms": -1}]}"#).starts_with("events[1].latency_ms"));
        assert!(err(br#"{"events": [{"latency_ms": "fast"}]}"#).starts_with("events[0].latency_ms"));
        assert!(err(br#"{"events": [{"timestamp_ms": 5}]}"#).starts_with("events[0].timestamp_ms"));
        assert!(err(br#"{"events": [{"features": [1]}]}"#).starts_with("events[0].features"));
        assert!(
            err(br#"{"events": [{"prediction": {"a": 1}}]}"#).starts_with("events[0].prediction")
        );
        assert!(err(br#"{"events": [{"request_id": ""}]}"#).starts_with("events[0].request_id"));
        assert!(err(br#"{"events": [{"colour": 1}]}"#).starts_with("events[0]"));
        assert!(err(b"\xff\xfe").contains("not the expected JSON"));
        assert!(err(br#"{"events": 3}"#).starts_with("events"));
        let many = format!("{{\"events\": [{}]}}", vec!["{}"; MAX_BATCH + 1].join(","));
        assert!(err(many.as_bytes()).contains("at most"));
    }

    #[test]
    fn labels_read() {
        let l = parse_labels(br#"{"labels": [{"request_id": "a", "label": 1}]}"#).expect("reads");
        assert_eq!(l[0].label, "1");
        assert!(
            parse_labels(br#"{"labels": [{"request_id": "a", "label": null}]}"#)
                .expect_err("null")
                .starts_with("labels[0].label")
        );
        assert!(parse_labels(br#"{"labels": [{"label": 1}]}"#).is_err());
    }
}
