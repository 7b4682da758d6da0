//! Request decoding as MLflow's server does it: query string or JSON body into one `Params` map,
//! read with protobuf-JSON leniency (snake_case or lowerCamel names, int64 as strings, "NaN").
//! Every decode failure is an `ApiError`, so malformed requests still get MLflow-shaped answers.

use axum::body::to_bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, Method};
use plumb_core::Error;
use serde_json::{Map, Value};

use crate::error::ApiError;

/// The largest JSON body accepted (dataset profiles may reach 16 MB).
const MAX_JSON_BODY: usize = 32 * 1024 * 1024;

/// A request's parameters, from the query string (GET) or the JSON body.
/// `.1` is true when the values came from a query string (all strings, repeated keys as lists).
#[derive(Debug, Clone, Default)]
pub struct Params(pub Map<String, Value>, pub bool);

fn parse_query(query: &str) -> Map<String, Value> {
    let mut map = Map::new();
    for (k, v) in form_urlencoded_pairs(query) {
        match map.get_mut(&k) {
            Some(Value::Array(items)) => items.push(Value::String(v)),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, Value::String(v)]);
            }
            None => {
                map.insert(k, Value::String(v));
            }
        }
    }
    map
}

fn form_urlencoded_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let dec = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (dec(k), dec(v))
        })
        .collect()
}

fn parse_body(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            plumb_core::ErrorCode::BadRequest,
            format!("Malformed JSON body: {e}"),
        )
    })?;
    match value {
        Value::Object(map) => Ok(map),
        // Legacy double encoding: a JSON string holding JSON.
        Value::String(inner) => match serde_json::from_str::<Value>(&inner) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(ApiError::new(
                plumb_core::ErrorCode::BadRequest,
                "Malformed JSON body: expected a JSON object",
            )),
        },
        _ => Err(ApiError::new(
            plumb_core::ErrorCode::BadRequest,
            "Malformed JSON body: expected a JSON object",
        )),
    }
}

/// A JSON request body as bytes, read with the same rules and size limit as MLflow's requests
/// (plumb's own routes decode it into their typed structs).
pub struct Body(pub bytes::Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        match read(req).await? {
            Raw::Body(bytes, _) => Ok(Body(bytes)),
            Raw::Query(_) => Ok(Body(bytes::Bytes::new())),
        }
    }
}

/// A request as read off the wire: a GET's query string, or a body (and the query string).
enum Raw {
    Query(String),
    Body(bytes::Bytes, String),
}

/// Reads a request with MLflow's rules: GET parameters from the query string; POST and PUT must
/// say `Content-Type: application/json`; PATCH and DELETE bodies are JSON without that check.
async fn read(req: Request) -> Result<Raw, ApiError> {
    let query = req.uri().query().unwrap_or("").to_string();
    let method = req.method().clone();
    if method == Method::GET && !query.is_empty() {
        return Ok(Raw::Query(query));
    }
    if method == Method::POST || method == Method::PUT {
        match req.headers().get(header::CONTENT_TYPE) {
            None => {
                return Err(ApiError::invalid(
                    "Bad Request. Content-Type header is missing.",
                ))
            }
            Some(ct) => {
                let ct = ct.to_str().unwrap_or("");
                let mime = ct.split(';').next().unwrap_or("").trim();
                if !mime.eq_ignore_ascii_case("application/json") {
                    return Err(ApiError::invalid(
                        "Bad Request. Content-Type must be one of ['application/json'].",
                    ));
                }
            }
        }
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_JSON_BODY as u64) {
        return Err(ApiError::too_large(MAX_JSON_BODY));
    }
    let bytes = to_bytes(req.into_body(), MAX_JSON_BODY)
        .await
        .map_err(|e| {
            let over = std::error::Error::source(&e)
                .is_some_and(|s| s.to_string().contains("length limit exceeded"));
            if over {
                ApiError::too_large(MAX_JSON_BODY)
            } else {
                ApiError::invalid(format!("Cannot read the request body: {e}"))
            }
        })?;
    Ok(Raw::Body(bytes, query))
}

fn params_of(raw: Raw) -> Result<Params, ApiError> {
    match raw {
        Raw::Query(query) => Ok(Params(parse_query(&query), true)),
        Raw::Body(bytes, query) => {
            let map = parse_body(&bytes)?;
            if map.is_empty() && !query.is_empty() {
                return Ok(Params(parse_query(&query), true));
            }
            Ok(Params(map, false))
        }
    }
}

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        params_of(read(req).await?)
    }
}

/// A hot-path request: decoded straight into `T` when the body has MLflow's canonical shape
/// (what the official client sends: snake_case, numbers as numbers; `T` denies unknown fields),
/// else through the lenient [`Params`] with all of its rules. Both paths feed the same checks.
pub enum Fast<T> {
    Typed(T),
    Lenient(Params),
}

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for Fast<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let raw = read(req).await?;
        if let Raw::Body(bytes, _) = &raw {
            if let Ok(typed) = serde_json::from_slice::<T>(bytes) {
                return Ok(Fast::Typed(typed));
            }
        }
        Ok(Fast::Lenient(params_of(raw)?))
    }
}

fn camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// MLflow's wording for a value of the wrong type.
pub fn bad_type(field: &str, v: &Value) -> ApiError {
    ApiError::invalid(format!(
        "Invalid value {v} for parameter '{field}' supplied:  Hint: Value was of type '{}'. See the API docs for more information about request parameters.",
        type_name(v)
    ))
}

impl Params {
    /// The raw value of a field under its proto or lowerCamel name; both at once is an error.
    pub fn raw(&self, name: &str) -> Result<Option<&Value>, ApiError> {
        let a = self.0.get(name).filter(|v| !v.is_null());
        // Most names have no underscore, and most requests use snake_case: only build the
        // lowerCamel spelling when it differs and could be present.
        if !name.contains('_') {
            return Ok(a);
        }
        let camel_name = camel(name);
        let b = self.0.get(&camel_name).filter(|v| !v.is_null());
        match (a, b) {
            (Some(_), Some(_)) => Err(ApiError::invalid(format!(
                "Request specifies both '{name}' and '{camel_name}'; provide only one of them."
            ))),
            (a, b) => Ok(a.or(b)),
        }
    }

    pub fn opt_str(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.raw(name)? {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            // A query string repeats a key into a list; the first one wins, as in Flask.
            Some(Value::Array(items)) if self.1 => {
                Ok(items.first().and_then(Value::as_str).map(str::to_string))
            }
            Some(v) => Err(bad_type(name, v)),
        }
    }

    /// A required string: missing or empty gives MLflow's "Missing value" error.
    pub fn req_str(&self, name: &str) -> Result<String, ApiError> {
        match self.opt_str(name)? {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(Error::missing(name).into()),
        }
    }

    /// `run_id`, falling back to the legacy `run_uuid`.
    pub fn run_id(&self) -> Result<String, ApiError> {
        match self.opt_str("run_id")?.filter(|s| !s.is_empty()) {
            Some(id) => Ok(id),
            None => match self.opt_str("run_uuid")?.filter(|s| !s.is_empty()) {
                Some(id) => Ok(id),
                None => Err(Error::missing("run_id").into()),
            },
        }
    }

    pub fn opt_i64(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.raw(name)? {
            None => Ok(None),
            Some(v @ Value::Number(n)) => match n.as_i64() {
                Some(i) => Ok(Some(i)),
                None => match n.as_f64() {
                    Some(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Ok(Some(f as i64)),
                    _ => Err(bad_type(name, v)),
                },
            },
            Some(v @ Value::String(s)) => s
                .trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| bad_type(name, v)),
            Some(v) => Err(bad_type(name, v)),
        }
    }

    pub fn opt_bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.raw(name)? {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(Value::String(s)) => Err(ApiError::invalid(format!(
                "Invalid boolean value: {s}, must be 'true' or 'false'."
            ))),
            Some(v) => Err(bad_type(name, v)),
        }
    }

    /// A repeated string field (a single value counts as a list of one).
    pub fn str_list(&self, name: &str) -> Result<Vec<String>, ApiError> {
        match self.raw(name)? {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(bad_type(name, other)),
                })
                .collect(),
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(v) => Err(bad_type(name, v)),
        }
    }

    /// A repeated message field, each item as its own `Params`.
    pub fn objects(&self, name: &str) -> Result<Vec<Params>, ApiError> {
        match self.raw(name)? {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::Object(m) => Ok(Params(m.clone(), false)),
                    other => Err(bad_type(name, other)),
                })
                .collect(),
            Some(v) => Err(bad_type(name, v)),
        }
    }

    /// Like [`Params::objects`], but moves the items out instead of copying them (hot paths).
    pub fn take_objects(&mut self, name: &str) -> Result<Vec<Params>, ApiError> {
        self.raw(name)?; // both spellings at once is still an error
        let camel_name = camel(name);
        let value = match self.0.remove(name) {
            Some(v) if !v.is_null() => Some(v),
            _ => self.0.remove(&camel_name),
        };
        match value {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|v| match v {
                    Value::Object(m) => Ok(Params(m, false)),
                    other => Err(bad_type(name, &other)),
                })
                .collect(),
            Some(v) => Err(bad_type(name, &v)),
        }
    }

    /// A nested message field.
    pub fn object(&self, name: &str) -> Result<Option<Params>, ApiError> {
        match self.raw(name)? {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(Params(m.clone(), false))),
            Some(v) => Err(bad_type(name, v)),
        }
    }
}

/// A double as protobuf JSON allows it: a number, a numeric string, "NaN", "Infinity", "-Infinity".
pub fn value_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.trim() {
            "NaN" | "nan" => Some(f64::NAN),
            "Infinity" | "inf" => Some(f64::INFINITY),
            "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
            t => t.parse::<f64>().ok(),
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(v: Value) -> Params {
        Params(v.as_object().cloned().unwrap_or_default(), false)
    }

    #[test]
    fn snake_and_camel_and_both() {
        assert_eq!(
            p(json!({"experimentIds": ["1"]}))
                .str_list("experiment_ids")
                .unwrap(),
            vec!["1"]
        );
        assert!(p(json!({"experiment_ids": ["1"], "experimentIds": ["2"]}))
            .str_list("experiment_ids")
            .is_err());
    }

    #[test]
    fn lenient_scalars() {
        let q = p(json!({"a": "17", "b": 17, "c": "NaN", "d": "-Infinity", "e": "TRUE", "f": "x"}));
        assert_eq!(q.opt_i64("a").unwrap(), Some(17));
        assert_eq!(q.opt_i64("b").unwrap(), Some(17));
        assert!(value_f64(&q.0["c"]).unwrap().is_nan());
        assert_eq!(value_f64(&q.0["d"]), Some(f64::NEG_INFINITY));
        assert_eq!(q.opt_bool("e").unwrap(), Some(true));
        assert!(q.opt_i64("f").is_err());
        let e = q.opt_bool("f").unwrap_err();
        assert!(e.0.message.contains("Invalid boolean value: x"));
    }

    #[test]
    fn query_strings_repeat_keys_into_lists() {
        let m = parse_query("run_ids=a&run_ids=b&metric_key=loss%20x&flag=1+2");
        assert_eq!(m["run_ids"], json!(["a", "b"]));
        assert_eq!(m["metric_key"], json!("loss x"));
        assert_eq!(m["flag"], json!("1 2"));
    }

    #[test]
    fn bodies() {
        assert!(parse_body(b"").unwrap().is_empty());
        assert_eq!(parse_body(br#""{\"a\": 1}""#).unwrap()["a"], json!(1));
        assert!(parse_body(b"[1]").is_err());
        assert!(parse_body(b"{").is_err());
    }

    // Fuzz target: `PROPTEST_CASES=200000 cargo nextest run -E 'test(/fuzz_/)'` by hand.
    proptest::proptest! {
        #[test]
        fn fuzz_body_decoder_any_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            if let Err(e) = parse_body(&bytes) {
                assert!(e.0.code.http_status() < 500, "{e:?}");
            }
        }

        #[test]
        fn fuzz_body_decoder_json_like(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "{", "}", "[", "]", ":", ",", "\"run_id\"", "\"experiment_ids\"", "\"value\"",
                    "\"NaN\"", "1e999", "-0", "null", "true", "\"\\u0000\"", "\"\\ud800\"",
                    "\"{\\\"a\\\": 1}\"", "12345678901234567890", "\"x\"",
                ]),
                0..24,
            )
        ) {
            let text = parts.concat();
            match parse_body(text.as_bytes()) {
                Ok(map) => {
                    let params = Params(map, false);
                    for name in ["run_id", "experiment_ids", "value"] {
                        for r in [
                            params.opt_str(name).map(|_| ()),
                            params.opt_i64(name).map(|_| ()),
                            params.str_list(name).map(|_| ()),
                        ] {
                            if let Err(e) = r {
                                assert!(e.0.code.http_status() < 500, "{e:?}");
                            }
                        }
                    }
                }
                Err(e) => assert!(e.0.code.http_status() < 500, "{e:?}"),
            }
        }
    }
}
