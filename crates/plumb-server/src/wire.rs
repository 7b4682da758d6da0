//! Wire encoding of domain types as MLflow's REST JSON: proto field names, enum names, int64 as
//! numbers, NaN as the string "NaN", unset fields omitted. The only place that knows the shapes.

use plumb_core::entities::{
    DatasetInput, DatasetSummary, Experiment, LoggedModel, Metric, Run, RunInfo, RunMetric, Tag,
};
use serde_json::{json, Map, Value};

pub fn double(v: f64) -> Value {
    if v.is_nan() {
        json!("NaN")
    } else if v.is_infinite() {
        json!(if v > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        json!(v)
    }
}

pub fn tags(tags: &[Tag]) -> Value {
    Value::Array(
        tags.iter()
            .map(|t| json!({"key": t.key, "value": t.value}))
            .collect(),
    )
}

/// Inserts `key: value` unless the list is empty (proto3 repeated fields are omitted when empty).
fn put_list(map: &mut Map<String, Value>, key: &str, value: Value) {
    if value.as_array().is_some_and(|a| !a.is_empty()) {
        map.insert(key.to_string(), value);
    }
}

pub fn experiment(e: &Experiment) -> Value {
    let mut m = Map::new();
    m.insert("experiment_id".into(), json!(e.experiment_id));
    m.insert("name".into(), json!(e.name));
    m.insert("artifact_location".into(), json!(e.artifact_location));
    m.insert("lifecycle_stage".into(), json!(e.lifecycle_stage.as_str()));
    m.insert("last_update_time".into(), json!(e.last_update_time));
    m.insert("creation_time".into(), json!(e.creation_time));
    put_list(&mut m, "tags", tags(&e.tags));
    Value::Object(m)
}

pub fn metric(m: &Metric) -> Value {
    let mut o = Map::new();
    o.insert("key".into(), json!(m.key));
    o.insert("value".into(), double(m.value));
    o.insert("timestamp".into(), json!(m.timestamp));
    o.insert("step".into(), json!(m.step));
    if let Some(id) = &m.model_id {
        o.insert("model_id".into(), json!(id));
    }
    if let Some(n) = &m.dataset_name {
        o.insert("dataset_name".into(), json!(n));
    }
    if let Some(d) = &m.dataset_digest {
        o.insert("dataset_digest".into(), json!(d));
    }
    Value::Object(o)
}

pub fn run_metric(rm: &RunMetric) -> Value {
    let mut v = metric(&rm.metric);
    v["run_id"] = json!(rm.run_id);
    v
}

pub fn run_info(i: &RunInfo) -> Value {
    let mut m = Map::new();
    m.insert("run_uuid".into(), json!(i.run_id));
    m.insert("experiment_id".into(), json!(i.experiment_id));
    m.insert("run_name".into(), json!(i.run_name));
    m.insert("user_id".into(), json!(i.user_id));
    m.insert("status".into(), json!(i.status.as_str()));
    if let Some(t) = i.start_time {
        m.insert("start_time".into(), json!(t));
    }
    if let Some(t) = i.end_time {
        m.insert("end_time".into(), json!(t));
    }
    m.insert("artifact_uri".into(), json!(i.artifact_uri));
    m.insert("lifecycle_stage".into(), json!(i.lifecycle_stage.as_str()));
    m.insert("run_id".into(), json!(i.run_id));
    Value::Object(m)
}

#[derive(serde::Serialize)]
struct KvOut<'a> {
    key: &'a str,
    value: &'a str,
}

fn kvs(tags: &[Tag]) -> Vec<KvOut<'_>> {
    tags.iter()
        .map(|t| KvOut {
            key: &t.key,
            value: &t.value,
        })
        .collect()
}

#[derive(serde::Serialize)]
struct RunInfoOut<'a> {
    run_uuid: &'a str,
    experiment_id: &'a str,
    run_name: &'a str,
    user_id: &'a str,
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    start_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_time: Option<i64>,
    artifact_uri: &'a str,
    lifecycle_stage: &'a str,
    run_id: &'a str,
}

#[derive(serde::Serialize)]
struct RunDataOut<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    metrics: Vec<PointOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    params: Vec<KvOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<KvOut<'a>>,
}

#[derive(serde::Serialize)]
struct DatasetOut<'a> {
    name: &'a str,
    digest: &'a str,
    source_type: &'a str,
    source: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    schema: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    profile: Option<&'a str>,
}

#[derive(serde::Serialize)]
struct DatasetInputOut<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<KvOut<'a>>,
    dataset: DatasetOut<'a>,
}

#[derive(serde::Serialize)]
struct ModelIdOut<'a> {
    model_id: &'a str,
}

#[derive(serde::Serialize)]
struct ModelOutputOut<'a> {
    model_id: &'a str,
    step: i64,
}

#[derive(serde::Serialize)]
struct RunInputsOut<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    dataset_inputs: Vec<DatasetInputOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    model_inputs: Vec<ModelIdOut<'a>>,
}

#[derive(serde::Serialize)]
struct RunOutputsOut<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    model_outputs: Vec<ModelOutputOut<'a>>,
}

/// A run on the wire, serialised straight from the domain value (searches return up to
/// thousands of runs; no intermediate JSON tree is built).
#[derive(serde::Serialize)]
pub struct RunOut<'a> {
    info: RunInfoOut<'a>,
    data: RunDataOut<'a>,
    inputs: RunInputsOut<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outputs: Option<RunOutputsOut<'a>>,
}

/// A run; `with_outputs` is false for `runs/create`, which MLflow answers without `outputs`.
pub fn run(r: &Run, with_outputs: bool) -> RunOut<'_> {
    let i = &r.info;
    RunOut {
        info: RunInfoOut {
            run_uuid: &i.run_id,
            experiment_id: &i.experiment_id,
            run_name: &i.run_name,
            user_id: &i.user_id,
            status: i.status.as_str(),
            start_time: i.start_time,
            end_time: i.end_time,
            artifact_uri: &i.artifact_uri,
            lifecycle_stage: i.lifecycle_stage.as_str(),
            run_id: &i.run_id,
        },
        data: RunDataOut {
            metrics: r
                .data
                .metrics
                .iter()
                .map(|m| PointOut {
                    key: &m.key,
                    value: Double(m.value),
                    timestamp: m.timestamp,
                    step: m.step,
                    run_id: None,
                })
                .collect(),
            params: kvs(&r.data.params),
            tags: kvs(&r.data.tags),
        },
        inputs: RunInputsOut {
            dataset_inputs: r
                .inputs
                .dataset_inputs
                .iter()
                .map(|d: &DatasetInput| DatasetInputOut {
                    tags: kvs(&d.tags),
                    dataset: DatasetOut {
                        name: &d.dataset.name,
                        digest: &d.dataset.digest,
                        source_type: &d.dataset.source_type,
                        source: &d.dataset.source,
                        schema: d.dataset.schema.as_deref(),
                        profile: d.dataset.profile.as_deref(),
                    },
                })
                .collect(),
            model_inputs: r
                .inputs
                .model_inputs
                .iter()
                .map(|id| ModelIdOut { model_id: id })
                .collect(),
        },
        outputs: with_outputs.then(|| RunOutputsOut {
            model_outputs: r
                .outputs
                .iter()
                .map(|o| ModelOutputOut {
                    model_id: &o.model_id,
                    step: o.step,
                })
                .collect(),
        }),
    }
}

#[derive(serde::Serialize)]
struct RunEnvelope<'a> {
    run: RunOut<'a>,
}

/// `{"run": ...}` for runs/create (`with_outputs` false) and runs/get.
pub fn run_response(r: &Run, with_outputs: bool) -> axum::response::Response {
    json_response(&RunEnvelope {
        run: run(r, with_outputs),
    })
}

#[derive(serde::Serialize)]
struct RunsPage<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    runs: Vec<RunOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<&'a str>,
}

/// Pages of at least this many runs are encoded off the async workers, in two halves at once.
const PARALLEL_ENCODE_RUNS: usize = 200;

/// `{"runs": [...], "next_page_token": ...}` for runs/search. A long page (a thousand runs
/// with their data is megabytes) is encoded by two threads into two body chunks.
pub async fn runs_page(
    runs: Vec<Run>,
    next_page_token: Option<String>,
) -> axum::response::Response {
    if runs.len() < PARALLEL_ENCODE_RUNS {
        return json_response(&RunsPage {
            runs: runs.iter().map(|r| run(r, true)).collect(),
            next_page_token: next_page_token.as_deref(),
        });
    }
    let encoded = tokio::task::spawn_blocking(move || {
        let encoded = encode_halves(&runs, next_page_token.as_deref());
        // Freeing the page's tens of thousands of strings took a third as long as encoding
        // them: it happens beside sending the answer, not before it.
        tokio::task::spawn_blocking(move || drop(runs));
        encoded
    })
    .await
    .unwrap_or_else(|e| Err(serde::ser::Error::custom(e.to_string())));
    chunked_json(encoded)
}

/// A runs page's body in two chunks, the halves encoded by two threads at once.
fn encode_halves(runs: &[Run], next_page_token: Option<&str>) -> serde_json::Result<Vec<Vec<u8>>> {
    let (low, high) = runs.split_at(runs.len() / 2);
    let list = |runs: &[Run], out: &mut Vec<u8>| -> serde_json::Result<()> {
        for (i, r) in runs.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut *out, &run(r, true))?;
        }
        Ok(())
    };
    std::thread::scope(|scope| {
        let second = scope.spawn(|| {
            let mut out = Vec::with_capacity(1 << 20);
            out.push(b',');
            list(high, &mut out)?;
            out.push(b']');
            if let Some(token) = next_page_token {
                out.extend_from_slice(b",\"next_page_token\":");
                serde_json::to_writer(&mut out, token)?;
            }
            out.push(b'}');
            serde_json::Result::Ok(out)
        });
        let mut first = Vec::with_capacity(1 << 20);
        first.extend_from_slice(b"{\"runs\":[");
        list(low, &mut first)?;
        let second = second
            .join()
            .map_err(|_| serde::ser::Error::custom("the encoding thread panicked"))??;
        Ok(vec![first, second])
    })
}

/// Serialises any wire value as the response body.
pub fn json_response<T: serde::Serialize>(value: &T) -> axum::response::Response {
    use axum::response::IntoResponse;
    match serde_json::to_vec(value) {
        Ok(body) => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Err(e) => crate::ApiError::from(plumb_core::Error::internal(e.to_string())).into_response(),
    }
}

pub fn dataset_summary(d: &DatasetSummary) -> Value {
    let mut m = Map::new();
    m.insert("experiment_id".into(), json!(d.experiment_id));
    m.insert("name".into(), json!(d.name));
    m.insert("digest".into(), json!(d.digest));
    if let Some(c) = &d.context {
        m.insert("context".into(), json!(c));
    }
    Value::Object(m)
}

pub fn logged_model(m: &LoggedModel) -> Value {
    let mut info = Map::new();
    info.insert("model_id".into(), json!(m.model_id));
    info.insert("experiment_id".into(), json!(m.experiment_id));
    info.insert("name".into(), json!(m.name));
    info.insert(
        "creation_timestamp_ms".into(),
        json!(m.creation_timestamp_ms),
    );
    info.insert(
        "last_updated_timestamp_ms".into(),
        json!(m.last_updated_timestamp_ms),
    );
    info.insert("artifact_uri".into(), json!(m.artifact_uri));
    info.insert("status".into(), json!(m.status.as_str()));
    // MLflow emits these two as "" when unset.
    info.insert(
        "model_type".into(),
        json!(m.model_type.as_deref().unwrap_or("")),
    );
    info.insert(
        "source_run_id".into(),
        json!(m.source_run_id.as_deref().unwrap_or("")),
    );
    if let Some(s) = &m.status_message {
        info.insert("status_message".into(), json!(s));
    }
    put_list(&mut info, "tags", tags(&m.tags));
    let mut data = Map::new();
    put_list(&mut data, "params", tags(&m.params));
    put_list(
        &mut data,
        "metrics",
        Value::Array(
            m.metrics
                .iter()
                .map(|rm| {
                    let mut v = metric(&rm.metric);
                    v["run_id"] = json!(rm.run_id);
                    v
                })
                .collect(),
        ),
    );
    json!({"info": Value::Object(info), "data": Value::Object(data)})
}

/// `{"key": list}` or `{}` when the list is empty, plus an optional `next_page_token`.
pub fn page(key: &str, items: Vec<Value>, next_page_token: Option<String>) -> Value {
    let mut m = Map::new();
    put_list(&mut m, key, Value::Array(items));
    if let Some(t) = next_page_token {
        m.insert("next_page_token".into(), json!(t));
    }
    Value::Object(m)
}

pub fn model_version(v: &plumb_core::registry::ModelVersion) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(v.name));
    m.insert("version".into(), json!(v.version.to_string()));
    m.insert("creation_timestamp".into(), json!(v.creation_timestamp));
    m.insert(
        "last_updated_timestamp".into(),
        json!(v.last_updated_timestamp),
    );
    if let Some(u) = &v.user_id {
        m.insert("user_id".into(), json!(u));
    }
    m.insert("current_stage".into(), json!(v.current_stage));
    m.insert("description".into(), json!(v.description));
    m.insert("source".into(), json!(v.source));
    m.insert("run_id".into(), json!(v.run_id));
    m.insert("status".into(), json!(v.status));
    if let Some(s) = &v.status_message {
        m.insert("status_message".into(), json!(s));
    }
    put_list(&mut m, "tags", tags(&v.tags));
    m.insert("run_link".into(), json!(v.run_link));
    put_list(&mut m, "aliases", json!(v.aliases));
    Value::Object(m)
}

pub fn registered_model(rm: &plumb_core::registry::RegisteredModel) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(rm.name));
    m.insert("creation_timestamp".into(), json!(rm.creation_timestamp));
    m.insert(
        "last_updated_timestamp".into(),
        json!(rm.last_updated_timestamp),
    );
    if !rm.description.is_empty() {
        m.insert("description".into(), json!(rm.description));
    }
    put_list(
        &mut m,
        "latest_versions",
        Value::Array(rm.latest_versions.iter().map(model_version).collect()),
    );
    put_list(&mut m, "tags", tags(&rm.tags));
    put_list(
        &mut m,
        "aliases",
        Value::Array(
            rm.aliases
                .iter()
                .map(|(alias, version)| json!({"alias": alias, "version": version.to_string()}))
                .collect(),
        ),
    );
    Value::Object(m)
}

/// A double as MLflow writes it: NaN and infinities as strings.
struct Double(f64);

impl serde::Serialize for Double {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_nan() {
            s.serialize_str("NaN")
        } else if self.0.is_infinite() {
            s.serialize_str(if self.0 > 0.0 {
                "Infinity"
            } else {
                "-Infinity"
            })
        } else {
            s.serialize_f64(self.0)
        }
    }
}

#[derive(serde::Serialize)]
struct PointOut<'a> {
    key: &'a str,
    value: Double,
    timestamp: i64,
    step: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    run_id: Option<&'a str>,
}

/// A list item that holds one point, and the run it belongs to when the answer names runs.
pub trait PointItem: Send + Sync + 'static {
    fn point(&self) -> (Option<&str>, &Metric);
}

impl PointItem for Metric {
    fn point(&self) -> (Option<&str>, &Metric) {
        (None, self)
    }
}

impl PointItem for RunMetric {
    fn point(&self) -> (Option<&str>, &Metric) {
        (Some(&self.run_id), &self.metric)
    }
}

/// Pages at least this long are encoded off the async workers, in two halves at once.
const PARALLEL_ENCODE_POINTS: usize = 20_000;

/// `{"metrics": [...], "next_page_token": ...}` written straight from the points: metric
/// histories hold hundreds of thousands of them, so there is no intermediate JSON tree, buffers
/// are sized up front, a key or run id repeated from the previous point is copied in its
/// already-escaped form, and a long page is encoded by two threads into two body chunks. Field
/// order and number formats are serde_json's, as everywhere.
pub async fn points_page<T: PointItem>(
    items: Vec<T>,
    next_page_token: Option<String>,
) -> axum::response::Response {
    let encoded = if items.len() < PARALLEL_ENCODE_POINTS {
        encode_points_page(&items, next_page_token.as_deref()).map(|b| vec![b])
    } else {
        tokio::task::spawn_blocking(move || {
            let (low, high) = items.split_at(items.len() / 2);
            std::thread::scope(|scope| {
                let second = scope.spawn(|| encode_points(high, false));
                let mut first = Vec::with_capacity(16 + low.len() * 80);
                first.extend_from_slice(b"{\"metrics\":[");
                first.extend(encode_points(low, true)?);
                let mut second = second
                    .join()
                    .map_err(|_| serde::ser::Error::custom("the encoding thread panicked"))??;
                close_points_page(&mut second, true, next_page_token.as_deref())?;
                Ok(vec![first, second])
            })
        })
        .await
        .unwrap_or_else(|e| Err(serde::ser::Error::custom(e.to_string())))
    };
    chunked_json(encoded)
}

/// A JSON body already encoded in chunks (sent as they are, with their total length).
fn chunked_json(encoded: serde_json::Result<Vec<Vec<u8>>>) -> axum::response::Response {
    use axum::response::IntoResponse;
    match encoded {
        Ok(chunks) => {
            let length: usize = chunks.iter().map(Vec::len).sum();
            let stream = futures::stream::iter(
                chunks
                    .into_iter()
                    .map(|c| Ok::<_, std::convert::Infallible>(bytes::Bytes::from(c))),
            );
            (
                [
                    (
                        axum::http::header::CONTENT_TYPE,
                        "application/json".to_string(),
                    ),
                    (axum::http::header::CONTENT_LENGTH, length.to_string()),
                ],
                axum::body::Body::from_stream(stream),
            )
                .into_response()
        }
        Err(e) => crate::ApiError::from(plumb_core::Error::internal(e.to_string())).into_response(),
    }
}

/// The whole page in one buffer.
fn encode_points_page<T: PointItem>(
    items: &[T],
    next_page_token: Option<&str>,
) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(64 + items.len() * 80);
    out.push(b'{');
    if !items.is_empty() {
        out.extend_from_slice(b"\"metrics\":[");
        out.extend(encode_points(items, true)?);
    }
    close_points_page(&mut out, !items.is_empty(), next_page_token)?;
    Ok(out)
}

/// Ends a page: the list (when there was one), the token, the object.
fn close_points_page(
    out: &mut Vec<u8>,
    had_points: bool,
    next_page_token: Option<&str>,
) -> serde_json::Result<()> {
    if had_points {
        out.push(b']');
    }
    if let Some(token) = next_page_token {
        if had_points {
            out.push(b',');
        }
        out.extend_from_slice(b"\"next_page_token\":");
        serde_json::to_writer(&mut *out, token)?;
    }
    out.push(b'}');
    Ok(())
}

/// The list items, comma-separated; `leading` says whether these start the list.
fn encode_points<T: PointItem>(items: &[T], leading: bool) -> serde_json::Result<Vec<u8>> {
    /// A string's JSON form, kept while the next point repeats it.
    struct Cached<'a> {
        raw: &'a str,
        json: Vec<u8>,
    }
    fn put<'a>(
        out: &mut Vec<u8>,
        cache: &mut Option<Cached<'a>>,
        s: &'a str,
    ) -> serde_json::Result<()> {
        match cache {
            Some(c) if c.raw == s => {}
            _ => {
                *cache = Some(Cached {
                    raw: s,
                    json: serde_json::to_vec(s)?,
                })
            }
        }
        if let Some(c) = cache {
            out.extend_from_slice(&c.json);
        }
        Ok(())
    }
    let mut out = Vec::with_capacity(items.len() * 80);
    let mut ints = itoa::Buffer::new();
    let (mut key_json, mut run_json) = (None, None);
    for (i, item) in items.iter().enumerate() {
        let (run_id, m) = item.point();
        out.extend_from_slice(if i == 0 && leading {
            b"{\"key\":"
        } else {
            b",{\"key\":"
        });
        put(&mut out, &mut key_json, &m.key)?;
        out.extend_from_slice(b",\"value\":");
        serde_json::to_writer(&mut out, &Double(m.value))?;
        out.extend_from_slice(b",\"timestamp\":");
        out.extend_from_slice(ints.format(m.timestamp).as_bytes());
        out.extend_from_slice(b",\"step\":");
        out.extend_from_slice(ints.format(m.step).as_bytes());
        if let Some(run_id) = run_id {
            out.extend_from_slice(b",\"run_id\":");
            put(&mut out, &mut run_json, run_id)?;
        }
        out.push(b'}');
    }
    Ok(out)
}

#[cfg(test)]
mod points_tests {
    use super::*;

    fn points() -> Vec<RunMetric> {
        let metrics = [
            Metric::new("loss", 0.1, 1_700_000_000_000, 0),
            Metric::new("loss", f64::NAN, 2, -1),
            Metric::new("loss", f64::INFINITY, 3, i64::MAX),
            Metric::new("we\"ird\\\u{1}ключ", f64::NEG_INFINITY, i64::MIN, 4),
            Metric::new("we\"ird\\\u{1}ключ", 1e-300, 5, 5),
            Metric::new("loss", -0.0, 6, 6),
            Metric::new("loss", 1.0 / 3.0, 7, 7),
            Metric::new("x", 12345678901234567890.0, 8, 8),
        ];
        let runs = ["r1", "r1", "r\"2", "r\"2", "r1", "r1", "r3", "r3"];
        metrics
            .into_iter()
            .zip(runs)
            .map(|(metric, run_id)| RunMetric {
                run_id: run_id.to_string(),
                metric,
            })
            .collect()
    }

    fn expected<T: PointItem>(items: &[T], token: Option<&str>) -> Value {
        let mut want = Map::new();
        if !items.is_empty() {
            let list: Vec<Value> = items
                .iter()
                .map(|i| {
                    let (run_id, m) = i.point();
                    let mut v = metric(m);
                    if let Some(r) = run_id {
                        v["run_id"] = json!(r);
                    }
                    v
                })
                .collect();
            want.insert("metrics".into(), Value::Array(list));
        }
        if let Some(t) = token {
            want.insert("next_page_token".into(), json!(t));
        }
        Value::Object(want)
    }

    async fn body_of(resp: axum::response::Response) -> Value {
        let declared: usize = resp.headers()[axum::http::header::CONTENT_LENGTH]
            .to_str()
            .expect("ascii")
            .parse()
            .expect("a length");
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("body");
        assert_eq!(bytes.len(), declared);
        serde_json::from_slice(&bytes).expect("valid JSON")
    }

    /// The hand-written encoder says exactly what the generic path (`metric` + serde_json)
    /// says, in one chunk and in the two-thread path.
    #[tokio::test]
    async fn points_page_matches_serde_json() {
        let all = points();
        let bare: Vec<Metric> = all.iter().map(|p| p.metric.clone()).collect();
        for token in [None, Some("tok\"en")] {
            for n in [0, 1, all.len()] {
                let got =
                    body_of(points_page(all[..n].to_vec(), token.map(str::to_string)).await).await;
                assert_eq!(got, expected(&all[..n], token), "n={n} token={token:?}");
                let got =
                    body_of(points_page(bare[..n].to_vec(), token.map(str::to_string)).await).await;
                assert_eq!(got, expected(&bare[..n], token), "n={n} token={token:?}");
            }
            let many: Vec<RunMetric> = all
                .iter()
                .cycle()
                .take(PARALLEL_ENCODE_POINTS + 3)
                .cloned()
                .collect();
            let got = body_of(points_page(many.clone(), token.map(str::to_string)).await).await;
            assert_eq!(got, expected(&many, token), "token={token:?}");
        }
    }
}

#[cfg(test)]
mod runs_tests {
    use super::*;
    use plumb_core::entities::{LifecycleStage, RunData, RunInfo, RunInputs, RunStatus};

    fn runs(n: usize) -> Vec<Run> {
        (0..n)
            .map(|i| Run {
                info: RunInfo {
                    run_id: format!("run{i}"),
                    experiment_id: "1".into(),
                    run_name: format!("na\"me-{i}"),
                    user_id: String::new(),
                    status: RunStatus::Finished,
                    start_time: Some(i as i64),
                    end_time: (i % 2 == 0).then_some(i as i64 + 1),
                    artifact_uri: format!("mlflow-artifacts:/1/run{i}/artifacts"),
                    lifecycle_stage: LifecycleStage::Active,
                },
                data: RunData {
                    metrics: vec![Metric::new("m", i as f64 / 3.0, 1, 2)],
                    params: vec![Tag::new("p", "v\u{1}")],
                    tags: if i % 3 == 0 {
                        Vec::new()
                    } else {
                        vec![Tag::new("t", "ключ")]
                    },
                },
                inputs: RunInputs::default(),
                outputs: Vec::new(),
            })
            .collect()
    }

    /// A long page, encoded in two halves by two threads, is byte for byte what serde_json
    /// writes for the whole page; so is a short one.
    #[tokio::test]
    async fn runs_page_matches_serde_json() {
        for n in [0, 3, PARALLEL_ENCODE_RUNS, PARALLEL_ENCODE_RUNS + 1] {
            for token in [None, Some("tok\"en")] {
                let all = runs(n);
                let want = serde_json::to_vec(&RunsPage {
                    runs: all.iter().map(|r| run(r, true)).collect(),
                    next_page_token: token,
                })
                .expect("encodes");
                let resp = runs_page(all, token.map(str::to_string)).await;
                let got = axum::body::to_bytes(resp.into_body(), usize::MAX)
                    .await
                    .expect("body");
                assert_eq!(got.as_ref(), want.as_slice(), "n={n} token={token:?}");
            }
        }
    }
}
