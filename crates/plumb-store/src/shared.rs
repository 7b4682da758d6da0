//! Backend-neutral pieces of store logic every backend uses the same way: generated names,
//! how metric values are stored, MLflow's param-conflict message, NTILE sampling arithmetic and
//! the JSON lists MLflow keeps in tags.

use std::collections::HashMap;

use plumb_core::entities::{
    Dataset, DatasetInput, LifecycleStage, Metric, ModelOutput, Param, Run, RunData, RunInfo,
    RunInputs, RunStatus, Tag,
};
use plumb_core::validation::CLAMPED_INF;
use plumb_core::Error;
use serde_json::Value;

const ADJECTIVES: &[&str] = &[
    "amber", "bold", "brisk", "calm", "clever", "crisp", "dapper", "eager", "fancy", "gentle",
    "glad", "honest", "jolly", "keen", "lucid", "merry", "nimble", "placid", "quiet", "rare",
    "sleek", "steady", "sunny", "swift", "tidy", "vivid", "wise", "zesty",
];
const NOUNS: &[&str] = &[
    "ant", "bass", "bear", "crane", "deer", "eel", "finch", "fox", "gnu", "hare", "hawk", "ibis",
    "koi", "lark", "lynx", "mole", "newt", "otter", "owl", "panda", "quail", "ram", "seal",
    "shrew", "toad", "trout", "wasp", "wren",
];

/// An adjective-noun-NNN name, as MLflow gives unnamed runs.
pub fn random_run_name() -> String {
    let bytes = *uuid::Uuid::new_v4().as_bytes();
    let a = ADJECTIVES[bytes[0] as usize % ADJECTIVES.len()];
    let n = NOUNS[bytes[1] as usize % NOUNS.len()];
    let num = u16::from_le_bytes([bytes[2], bytes[3]]) % 1000;
    format!("{a}-{n}-{num}")
}

/// A `model-xxxxxx` name for a logged model created without one.
pub fn random_model_name() -> String {
    let b = *uuid::Uuid::new_v4().as_bytes();
    format!("model-{:02x}{:02x}{:02x}", b[0], b[1], b[2])
}

/// A new run's public id.
pub fn new_run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A new logged model's id.
pub fn new_model_id() -> String {
    format!("m-{}", uuid::Uuid::new_v4().simple())
}

/// How a metric value is stored: NaN as (0, true), +/-inf clamped to +/-f64::MAX.
pub fn stored_metric(value: f64) -> (f64, bool) {
    if value.is_nan() {
        (0.0, true)
    } else if value.is_infinite() {
        (value.signum() * CLAMPED_INF, false)
    } else {
        (value, false)
    }
}

/// MLflow's refusal of changed param values; `conflicts` holds (param, stored value), and
/// `batch_len` is how many params the request logged.
pub fn param_conflict_error(
    run_id: &str,
    conflicts: &[(&Param, String)],
    batch_len: usize,
) -> Error {
    match conflicts {
        [(p, old)] if batch_len == 1 => Error::invalid(format!(
            "Changing param values is not allowed. Param with key='{}' was already logged with \
             value='{old}' for run ID='{run_id}'. Attempted logging new value '{}'.",
            p.key, p.value
        )),
        many => {
            let list: Vec<String> = many
                .iter()
                .map(|(p, old)| {
                    format!(
                        "{{'key': '{}', 'old_value': '{old}', 'new_value': '{}'}}",
                        p.key, p.value
                    )
                })
                .collect();
            Error::invalid(format!(
                "Changing param values is not allowed. Params were already logged='[{}]' for run ID='{run_id}'.",
                list.join(", ")
            ))
        }
    }
}

/// Row index of the first row of each NTILE(`buckets`) bucket over `n` rows: the first
/// `n % buckets` buckets hold `n / buckets + 1` rows, the others `n / buckets`.
pub fn bucket_starts(n: i64, buckets: i64) -> Vec<i64> {
    let buckets = buckets.min(n).max(1);
    let (q, r) = (n / buckets, n % buckets);
    (0..buckets).map(|k| k * q + k.min(r)).collect()
}

/// Ends a sample with the range's last point (MLflow always includes it), replacing the last
/// sample when there are already `max`.
pub fn push_last_sample(sampled: &mut Vec<Metric>, last: Metric, max: usize) {
    let same = |a: &Metric, b: &Metric| {
        (a.step, a.timestamp, a.value.is_nan()) == (b.step, b.timestamp, b.value.is_nan())
            && (a.value == b.value || a.value.is_nan())
    };
    if sampled.last().is_none_or(|l| !same(l, &last)) {
        if sampled.len() >= max {
            sampled.pop();
        }
        sampled.push(last);
    }
}

/// A page of runs' child rows, each grouped by the run's row id (one query per kind, never one
/// per run). Datasets and input tags carry the dataset's row id.
#[derive(Default)]
pub struct RunParts {
    pub metrics: HashMap<i64, Vec<Metric>>,
    pub params: HashMap<i64, Vec<Param>>,
    pub tags: HashMap<i64, Vec<Tag>>,
    pub outputs: HashMap<i64, Vec<ModelOutput>>,
    pub model_inputs: HashMap<i64, Vec<String>>,
    pub datasets: HashMap<i64, Vec<(i64, Dataset)>>,
    pub input_tags: HashMap<i64, Vec<(i64, Tag)>>,
}

/// Puts runs together from their info rows (with row ids) and their child rows.
pub fn assemble_runs(rows: Vec<(i64, RunInfo)>, mut parts: RunParts) -> Vec<Run> {
    rows.into_iter()
        .map(|(pk, info)| {
            let run_tags = parts.input_tags.remove(&pk).unwrap_or_default();
            let dataset_inputs = parts
                .datasets
                .remove(&pk)
                .unwrap_or_default()
                .into_iter()
                .map(|(dpk, dataset)| DatasetInput {
                    tags: run_tags
                        .iter()
                        .filter(|(d, _)| *d == dpk)
                        .map(|(_, t)| t.clone())
                        .collect(),
                    dataset,
                })
                .collect();
            Run {
                info,
                data: RunData {
                    metrics: parts.metrics.remove(&pk).unwrap_or_default(),
                    params: parts.params.remove(&pk).unwrap_or_default(),
                    tags: parts.tags.remove(&pk).unwrap_or_default(),
                },
                inputs: RunInputs {
                    dataset_inputs,
                    model_inputs: parts.model_inputs.remove(&pk).unwrap_or_default(),
                },
                outputs: parts.outputs.remove(&pk).unwrap_or_default(),
            }
        })
        .collect()
}

/// Python's `json.dumps` spacing (`", "` and `": "`), which MLflow's tests compare verbatim.
pub fn python_json(v: &Value) -> String {
    match v {
        Value::Array(items) => {
            format!(
                "[{}]",
                items.iter().map(python_json).collect::<Vec<_>>().join(", ")
            )
        }
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{}: {}", Value::String(k.clone()), python_json(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

/// The `mlflow.modelVersions` tag value after appending `{"name", "version"}` to `current`.
pub fn model_versions_tag(current: Option<String>, name: &str, version: i64) -> String {
    let mut list: Vec<Value> = current
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    let mut entry = serde_json::Map::new();
    entry.insert("name".into(), Value::String(name.to_string()));
    entry.insert("version".into(), Value::from(version));
    list.push(Value::Object(entry));
    python_json(&Value::Array(list))
}

/// The `mlflow.log-model.history` tag value after appending `model_json` to `current`.
pub fn log_model_history_tag(
    current: Option<String>,
    model_json: &str,
) -> plumb_core::Result<String> {
    let mut list: Vec<Value> = current
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    let model: Value = serde_json::from_str(model_json)
        .map_err(|e| Error::invalid(format!("Malformed model_json: {e}")))?;
    list.push(model);
    serde_json::to_string(&list).map_err(|e| Error::internal(e.to_string()))
}

/// A new run's name: `run_name`, else the `mlflow.runName` tag, else a random one; both given
/// must agree.
pub fn new_run_name(new: &crate::NewRun) -> Result<String, Error> {
    let tagged = new
        .tags
        .iter()
        .find(|t| t.key == crate::RUN_NAME_TAG)
        .map(|t| t.value.clone());
    let given = new.run_name.clone().filter(|n| !n.is_empty());
    if let (Some(given), Some(tagged)) = (&given, &tagged) {
        if given != tagged {
            return Err(Error::invalid(format!(
                "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with \
                 different values (run_name='{given}', mlflow.runName='{tagged}')."
            )));
        }
    }
    Ok(given.or(tagged).unwrap_or_else(random_run_name))
}

/// Column access on a backend's native row, so the row mappers of the hot read paths (which
/// skip the neutral [`Row`](crate::db::Row) for speed) are written once.
pub trait Columns {
    type Error;
    fn int(&self, i: usize) -> Result<i64, Self::Error>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>, Self::Error>;
    fn text(&self, i: usize) -> Result<String, Self::Error>;
}

/// The columns [`run_info`] reads, in its order (`r`: the runs table).
pub const RUN_INFO_COLUMNS: &str = "r.run_pk, r.run_uuid, r.experiment_id, r.name, r.user_id, \
     r.status, r.start_time, r.end_time, r.artifact_uri, r.lifecycle_stage";

/// A run's row id and info from a row selecting [`RUN_INFO_COLUMNS`].
pub fn run_info<C: Columns>(r: &C) -> Result<(i64, RunInfo), C::Error> {
    Ok((
        r.int(0)?,
        RunInfo {
            run_id: r.text(1)?,
            experiment_id: r.int(2)?.to_string(),
            run_name: r.text(3)?,
            user_id: r.text(4)?,
            status: RunStatus::parse(&r.text(5)?).unwrap_or(RunStatus::Running),
            start_time: r.opt_int(6)?,
            end_time: r.opt_int(7)?,
            artifact_uri: r.text(8)?,
            lifecycle_stage: LifecycleStage::parse(&r.text(9)?).unwrap_or(LifecycleStage::Active),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntile_bucket_starts() {
        assert_eq!(bucket_starts(10, 3), vec![0, 4, 7]);
        assert_eq!(bucket_starts(2, 5), vec![0, 1]);
        assert_eq!(bucket_starts(0, 5), vec![0]);
    }

    #[test]
    fn python_spacing() {
        let v: Value = serde_json::from_str(r#"[{"name":"m","version":1}]"#).unwrap_or_default();
        assert_eq!(python_json(&v), r#"[{"name": "m", "version": 1}]"#);
        assert_eq!(
            model_versions_tag(Some(python_json(&v)), "m", 2),
            r#"[{"name": "m", "version": 1}, {"name": "m", "version": 2}]"#
        );
    }
}
