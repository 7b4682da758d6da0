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

fn dataset_input(d: &DatasetInput) -> Value {
    let mut ds = Map::new();
    ds.insert("name".into(), json!(d.dataset.name));
    ds.insert("digest".into(), json!(d.dataset.digest));
    ds.insert("source_type".into(), json!(d.dataset.source_type));
    ds.insert("source".into(), json!(d.dataset.source));
    if let Some(s) = &d.dataset.schema {
        ds.insert("schema".into(), json!(s));
    }
    if let Some(p) = &d.dataset.profile {
        ds.insert("profile".into(), json!(p));
    }
    let mut m = Map::new();
    put_list(&mut m, "tags", tags(&d.tags));
    m.insert("dataset".into(), Value::Object(ds));
    Value::Object(m)
}

/// A run; `with_outputs` is false for `runs/create`, which MLflow answers without `outputs`.
pub fn run(r: &Run, with_outputs: bool) -> Value {
    let mut data = Map::new();
    put_list(
        &mut data,
        "metrics",
        Value::Array(r.data.metrics.iter().map(metric).collect()),
    );
    put_list(&mut data, "params", tags(&r.data.params));
    put_list(&mut data, "tags", tags(&r.data.tags));
    let mut inputs = Map::new();
    put_list(
        &mut inputs,
        "dataset_inputs",
        Value::Array(r.inputs.dataset_inputs.iter().map(dataset_input).collect()),
    );
    put_list(
        &mut inputs,
        "model_inputs",
        Value::Array(
            r.inputs
                .model_inputs
                .iter()
                .map(|id| json!({"model_id": id}))
                .collect(),
        ),
    );
    let mut out = json!({
        "info": run_info(&r.info),
        "data": Value::Object(data),
        "inputs": Value::Object(inputs),
    });
    if with_outputs {
        let mut outputs = Map::new();
        put_list(
            &mut outputs,
            "model_outputs",
            Value::Array(
                r.outputs
                    .iter()
                    .map(|o| json!({"model_id": o.model_id, "step": o.step}))
                    .collect(),
            ),
        );
        out["outputs"] = Value::Object(outputs);
    }
    out
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
