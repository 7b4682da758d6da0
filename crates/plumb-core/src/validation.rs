//! MLflow's input-shape rules (names, lengths, batch limits, page tokens); pure and table-tested.

use base64::Engine as _;

use crate::entities::{Metric, Param, Tag};
use crate::error::{Error, Result};

pub const MAX_METRICS_PER_BATCH: usize = 1000;
pub const MAX_PARAMS_TAGS_PER_BATCH: usize = 100;
pub const MAX_ENTITIES_PER_BATCH: usize = 1000;
pub const MAX_PARAM_VAL_LENGTH: usize = 6000;
pub const MAX_TAG_VAL_LENGTH: usize = 8000;
pub const MAX_ENTITY_KEY_LENGTH: usize = 250;
pub const MAX_EXPERIMENT_NAME_LENGTH: usize = 500;
pub const MAX_EXPERIMENT_TAG_KEY_LENGTH: usize = 250;
pub const MAX_EXPERIMENT_TAG_VAL_LENGTH: usize = 20000;
pub const MAX_ARTIFACT_LOCATION_LENGTH: usize = 2048;
pub const MAX_DATASET_NAME_SIZE: usize = 500;
pub const MAX_DATASET_DIGEST_SIZE: usize = 36;
pub const MAX_DATASET_SOURCE_SIZE: usize = 65535;
pub const MAX_DATASET_SCHEMA_SIZE: usize = 1_048_575;
pub const MAX_DATASET_PROFILE_SIZE: usize = 16_777_215;
pub const MAX_INPUT_TAG_KEY_SIZE: usize = 255;
pub const MAX_INPUT_TAG_VALUE_SIZE: usize = 500;
pub const SEARCH_MAX_RESULTS_DEFAULT: i64 = 1000;
pub const SEARCH_MAX_RESULTS_THRESHOLD: i64 = 50000;
pub const GET_METRIC_HISTORY_MAX_RESULTS: i64 = 25000;
/// The most experiment ids one search may name (each is a bound value; SQLite takes at most
/// 32,766 per statement): more is a 400, not a database error.
pub const MAX_SEARCH_EXPERIMENT_IDS: usize = 10_000;

/// Refuses a search over more experiments than [`MAX_SEARCH_EXPERIMENT_IDS`].
pub fn validate_search_experiment_ids(ids: &[String]) -> Result<()> {
    if ids.len() > MAX_SEARCH_EXPERIMENT_IDS {
        return Err(Error::invalid(format!(
            "Invalid value for 'experiment_ids': {} ids given, at most {MAX_SEARCH_EXPERIMENT_IDS} are allowed.",
            ids.len()
        )));
    }
    Ok(())
}
/// Largest finite double; MLflow stores +/-inf as +/- this value.
pub const CLAMPED_INF: f64 = f64::MAX;

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ' ' | '/' | ':')
}

/// True when a key would normalise to another path (`..`, leading `/`, `.` segments, `//`).
fn is_unnormalised_path(key: &str) -> bool {
    if key.starts_with('/') || key.contains("//") {
        return true;
    }
    key.split('/').any(|seg| seg == "." || seg == "..")
}

/// Validates a metric/param/tag key. `what` names the parameter in messages (e.g. `metrics[0].name`).
pub fn validate_key(key: &str, what: &str) -> Result<()> {
    if !key.chars().all(is_name_char) {
        return Err(Error::invalid(format!(
            "Invalid value {key:?} for parameter '{what}' supplied: Names may only contain \
             alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/)."
        )));
    }
    if is_unnormalised_path(key) {
        return Err(Error::invalid(format!(
            "Invalid value {key:?} for parameter '{what}' supplied: Names cannot be a path that \
             would be resolved to a different location (e.g. '..', '.', leading '/' or '//')."
        )));
    }
    validate_length(key, MAX_ENTITY_KEY_LENGTH, what)
}

pub fn validate_length(value: &str, max: usize, what: &str) -> Result<()> {
    if value.chars().count() > max {
        return Err(Error::invalid(format!(
            "'{what}' exceeds the maximum length of {max} characters"
        )));
    }
    Ok(())
}

/// Truncates to `max` characters, as MLflow does with `MLFLOW_TRUNCATE_LONG_VALUES` (its default).
pub fn truncate(value: &mut String, max: usize) {
    if let Some((idx, _)) = value.char_indices().nth(max) {
        value.truncate(idx);
    }
}

/// MLflow's run id shape: `^[a-zA-Z0-9][\w\-]{0,255}$`.
pub fn validate_run_id(run_id: &str) -> Result<()> {
    let mut chars = run_id.chars();
    let ok = match chars.next() {
        Some(first) if first.is_ascii_alphanumeric() => {
            run_id.len() <= 256 && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!("Invalid run ID: '{run_id}'")))
    }
}

pub fn validate_experiment_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::missing("name"));
    }
    validate_length(name, MAX_EXPERIMENT_NAME_LENGTH, "name")
}

pub fn validate_experiment_id(id: &str) -> Result<i64> {
    id.parse::<i64>().map_err(|_| {
        Error::invalid(format!(
            "Invalid experiment ID '{id}'. Experiment ID must be a valid integer."
        ))
    })
}

pub fn validate_metric(metric: &Metric, idx: Option<usize>) -> Result<()> {
    let field = |f: &str| match idx {
        Some(i) => format!("metrics[{i}].{f}"),
        None => f.to_string(),
    };
    // The parameter's name is only spelled out when there is something to report: this runs
    // for every point of every batch.
    if validate_key(&metric.key, "name").is_err() {
        validate_key(&metric.key, &field("name"))?;
    }
    if metric.timestamp < 0 {
        return Err(Error::invalid(format!(
            "Invalid value {} for parameter '{}' supplied: must be a non-negative integer",
            metric.timestamp,
            field("timestamp")
        )));
    }
    if metric.dataset_name.is_some() != metric.dataset_digest.is_some() {
        return Err(Error::invalid(
            "Both dataset_name and dataset_digest must be provided if one is provided",
        ));
    }
    Ok(())
}

/// Checks a batch's counts in MLflow's order and wording; items were validated one by one before.
pub fn validate_batch_limits(metrics: usize, params: &[Param], tags: usize) -> Result<()> {
    let too_many = |n: usize, max: usize, what: &str| {
        Error::invalid(format!(
            "A batch logging request can contain at most {max} {what}. Got {n} {what}. \
             Please split up {what} across multiple requests and try again."
        ))
    };
    if metrics > MAX_METRICS_PER_BATCH {
        return Err(too_many(metrics, MAX_METRICS_PER_BATCH, "metrics"));
    }
    if params.len() > MAX_PARAMS_TAGS_PER_BATCH {
        return Err(too_many(params.len(), MAX_PARAMS_TAGS_PER_BATCH, "params"));
    }
    if tags > MAX_PARAMS_TAGS_PER_BATCH {
        return Err(too_many(tags, MAX_PARAMS_TAGS_PER_BATCH, "tags"));
    }
    let total = metrics + params.len() + tags;
    if total > MAX_ENTITIES_PER_BATCH {
        return Err(too_many(
            total,
            MAX_ENTITIES_PER_BATCH,
            "metrics, params, and tags",
        ));
    }
    let mut seen = std::collections::HashSet::new();
    let mut dups: Vec<&str> = Vec::new();
    for p in params {
        if !seen.insert(p.key.as_str()) && !dups.contains(&p.key.as_str()) {
            dups.push(&p.key);
        }
    }
    if !dups.is_empty() {
        let list: Vec<String> = dups.iter().map(|k| format!("'{k}'")).collect();
        return Err(Error::invalid(format!(
            "Duplicate parameter keys have been submitted: [{}]. Please ensure the request \
             contains only one param value per param key.",
            list.join(", ")
        )));
    }
    Ok(())
}

/// Validates and truncates a param as MLflow 3.17 does.
pub fn prepare_param(param: &mut Param, what: &str) -> Result<()> {
    validate_key(&param.key, what)?;
    truncate(&mut param.value, MAX_PARAM_VAL_LENGTH);
    Ok(())
}

/// Validates and truncates a run tag as MLflow 3.17 does.
pub fn prepare_tag(tag: &mut Tag, what: &str) -> Result<()> {
    validate_key(&tag.key, what)?;
    truncate(&mut tag.value, MAX_TAG_VAL_LENGTH);
    Ok(())
}

pub fn validate_experiment_tag(tag: &Tag) -> Result<()> {
    validate_key(&tag.key, "key")?;
    validate_length(&tag.key, MAX_EXPERIMENT_TAG_KEY_LENGTH, "key")?;
    validate_length(&tag.value, MAX_EXPERIMENT_TAG_VAL_LENGTH, "value")
}

/// `max_results` for run searches: default 1000, at most 50000.
pub fn search_max_results(max_results: Option<i64>) -> Result<i64> {
    match max_results {
        None => Ok(SEARCH_MAX_RESULTS_DEFAULT),
        Some(n) if (1..=SEARCH_MAX_RESULTS_THRESHOLD).contains(&n) => Ok(n),
        Some(n) if n > SEARCH_MAX_RESULTS_THRESHOLD => Err(Error::invalid(format!(
            "Invalid value {n} for parameter 'max_results' supplied:  Hint: Value was of type 'int'. \
             See the API docs for more information about request parameters."
        ))),
        Some(n) => Err(Error::invalid(format!(
            "Invalid value {n} for parameter 'max_results' supplied. It must be a positive integer"
        ))),
    }
}

/// Offset page tokens: base64 of `{"offset": N}`, readable by anything that reads MLflow's.
pub fn encode_offset_token(offset: i64) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{{\"offset\": {offset}}}"))
}

/// Reads an offset token; `None` or empty means offset 0.
pub fn decode_offset_token(token: Option<&str>) -> Result<i64> {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Ok(0);
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(token.trim()))
        .map_err(|_| Error::invalid("Invalid page token, could not base64-decode"))?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|_| Error::invalid("Invalid page token, decoded value is not JSON"))?;
    let offset = value.get("offset").and_then(|o| {
        o.as_i64()
            .or_else(|| o.as_str().and_then(|s| s.parse::<i64>().ok()))
    });
    match offset {
        Some(n) if n > 0 => Ok(n),
        _ => Err(Error::invalid(format!(
            "Invalid page token, parsed value={value}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        let ok = ["loss", "a/b", "train loss", "m:1", "x-y_z.w", "ünï"];
        for k in ok {
            assert!(validate_key(k, "key").is_ok(), "{k}");
        }
        let bad = ["bad key!", "../x", "/abs", "a//b", "a/./b", "a/..", "x\0"];
        for k in bad {
            assert!(validate_key(k, "key").is_err(), "{k}");
        }
        assert!(validate_key(&"k".repeat(251), "key").is_err());
    }

    #[test]
    fn run_ids() {
        assert!(validate_run_id("0123abcd").is_ok());
        assert!(validate_run_id("-abc").is_err());
        assert!(validate_run_id("a/b").is_err());
        assert!(validate_run_id("").is_err());
    }

    #[test]
    fn batch_limits_and_duplicates() {
        let p = |k: &str| Param::new(k, "v");
        assert!(validate_batch_limits(1000, &[], 0).is_ok());
        let e = validate_batch_limits(1001, &[], 0).unwrap_err();
        assert!(
            e.message.contains("at most 1000 metrics. Got 1001 metrics"),
            "{}",
            e.message
        );
        let e = validate_batch_limits(950, &[], 51).unwrap_err();
        assert!(e.message.contains("metrics, params, and tags"));
        let e = validate_batch_limits(0, &[p("a"), p("dup"), p("dup")], 0).unwrap_err();
        assert!(e.message.contains("['dup']"), "{}", e.message);
    }

    #[test]
    fn truncation_counts_chars() {
        let mut s = "é".repeat(7000);
        truncate(&mut s, MAX_PARAM_VAL_LENGTH);
        assert_eq!(s.chars().count(), 6000);
    }

    #[test]
    fn page_tokens_round_trip_and_match_mlflow() {
        assert_eq!(encode_offset_token(1), "eyJvZmZzZXQiOiAxfQ==");
        assert_eq!(
            decode_offset_token(Some(&encode_offset_token(42))).unwrap(),
            42
        );
        assert_eq!(decode_offset_token(None).unwrap(), 0);
        assert!(decode_offset_token(Some("!!!")).is_err());
        assert!(decode_offset_token(Some(&encode_offset_token(0))).is_err());
    }

    #[test]
    fn max_results() {
        assert_eq!(search_max_results(None).unwrap(), 1000);
        assert!(search_max_results(Some(50001)).is_err());
        assert!(search_max_results(Some(0)).is_err());
    }
}
