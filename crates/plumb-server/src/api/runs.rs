//! Run endpoints: lifecycle, search, tags, and the logging write path (metric, param, batch,
//! inputs, outputs, MLflow 2 log-model).

use axum::extract::State;
use axum::response::Response;
use axum::Json;
use plumb_core::entities::{Dataset, DatasetInput, Metric, ModelOutput, Param, RunStatus, Tag};
use plumb_core::search::{parse_filter, parse_order_by, Domain};
use plumb_core::validation::{self, decode_offset_token};
use plumb_core::Error;
use plumb_store::{Batch, NewRun, RunQuery, RunUpdate};
use serde_json::{json, Value};

use crate::api::experiments::view_type;
use crate::api::{empty, tag_list};
use crate::error::ApiResult;
use crate::extract::{Fast, Params};
use crate::{wire, ApiError, AppState};

fn prepared_tags(p: &Params, field: &str) -> ApiResult<Vec<Tag>> {
    let mut tags = tag_list(p, field)?;
    for (i, t) in tags.iter_mut().enumerate() {
        validation::prepare_tag(t, &format!("{field}[{i}].key"))?;
    }
    Ok(tags)
}

pub async fn create(State(st): State<AppState>, p: Params) -> ApiResult<Response> {
    let experiment_id = p
        .opt_str("experiment_id")?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                plumb_core::ErrorCode::BadRequest,
                "Missing value for required parameter 'experiment_id'.",
            )
        })?;
    validation::validate_experiment_id(&experiment_id)?;
    let new = NewRun {
        experiment_id,
        user_id: p.opt_str("user_id")?.unwrap_or_default(),
        run_name: p.opt_str("run_name")?,
        start_time: p.opt_i64("start_time")?,
        tags: prepared_tags(&p, "tags")?,
    };
    let run = st.store.create_run(new).await?;
    Ok(wire::run_response(&run, false))
}

pub async fn get(State(st): State<AppState>, p: Params) -> ApiResult<Response> {
    let run = st.store.get_run(&p.run_id()?).await?;
    Ok(wire::run_response(&run, true))
}

pub async fn update(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let run_id = p.run_id()?;
    let status = match p.opt_str("status")? {
        None => None,
        Some(s) => Some(RunStatus::parse(&s).ok_or_else(|| {
            ApiError::invalid(format!(
                "Invalid value '{s}' for parameter 'status' supplied."
            ))
        })?),
    };
    let update = RunUpdate {
        status,
        end_time: p.opt_i64("end_time")?,
        run_name: p.opt_str("run_name")?,
    };
    let info = st.store.update_run(&run_id, update).await?;
    Ok(Json(json!({ "run_info": wire::run_info(&info) })))
}

pub async fn delete(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    st.store.delete_run(&p.run_id()?).await?;
    Ok(empty())
}

pub async fn restore(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    st.store.restore_run(&p.run_id()?).await?;
    Ok(empty())
}

pub async fn search(State(st): State<AppState>, p: Params) -> ApiResult<Response> {
    let max_results = validation::search_max_results(p.opt_i64("max_results")?)?;
    let experiment_ids = p.str_list("experiment_ids")?;
    validation::validate_search_experiment_ids(&experiment_ids)?;
    let query = RunQuery {
        experiment_ids,
        filter: parse_filter(Domain::Runs, &p.opt_str("filter")?.unwrap_or_default())?,
        order_by: parse_order_by(Domain::Runs, &p.str_list("order_by")?)?,
        view_type: view_type(&p, "run_view_type")?,
        max_results,
        offset: decode_offset_token(p.opt_str("page_token")?.as_deref())?,
    };
    let page = st.store.search_runs(query).await?;
    Ok(wire::runs_page(page.items, page.next_page_token).await)
}

pub async fn set_tag(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let run_id = p.run_id()?;
    let mut tag = Tag::new(p.req_str("key")?, p.opt_str("value")?.unwrap_or_default());
    validation::prepare_tag(&mut tag, "key")?;
    st.store
        .log_batch(
            &run_id,
            Batch {
                tags: vec![tag],
                ..Batch::default()
            },
        )
        .await?;
    Ok(empty())
}

pub async fn delete_tag(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let run_id = p.run_id()?;
    st.store.delete_tag(&run_id, &p.req_str("key")?).await?;
    Ok(empty())
}

/// Decodes one metric; `prefix` names it in messages (`metrics[3].`), empty for log-metric.
fn metric_from(p: &Params, prefix: &str, idx: Option<usize>) -> ApiResult<Metric> {
    let field = |f: &str| format!("{prefix}{f}");
    let key = p
        .opt_str("key")?
        .filter(|k| !k.is_empty())
        .ok_or_else(|| Error::missing(&field("key")))?;
    let value = match p.raw("value")? {
        None => return Err(Error::missing(&field("value")).into()),
        Some(v) => crate::extract::value_f64(v)
            .ok_or_else(|| crate::extract::bad_type(&field("value"), v))?,
    };
    let timestamp = p
        .opt_i64("timestamp")?
        .ok_or_else(|| Error::missing(&field("timestamp")))?;
    let mut m = Metric::new(key, value, timestamp, p.opt_i64("step")?.unwrap_or(0));
    m.model_id = p.opt_str("model_id")?.filter(|s| !s.is_empty());
    m.dataset_name = p.opt_str("dataset_name")?.filter(|s| !s.is_empty());
    m.dataset_digest = p.opt_str("dataset_digest")?.filter(|s| !s.is_empty());
    validation::validate_metric(&m, idx)?;
    Ok(m)
}

pub async fn log_metric(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let run_id = p.run_id()?;
    let metric = metric_from(&p, "", None)?;
    st.store
        .log_batch(
            &run_id,
            Batch {
                metrics: vec![metric],
                ..Batch::default()
            },
        )
        .await?;
    Ok(empty())
}

pub async fn log_param(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let run_id = p.run_id()?;
    let mut param = Param::new(p.req_str("key")?, p.opt_str("value")?.unwrap_or_default());
    validation::prepare_param(&mut param, "key")?;
    st.store
        .log_batch(
            &run_id,
            Batch {
                params: vec![param],
                ..Batch::default()
            },
        )
        .await?;
    Ok(empty())
}

/// log-batch in its canonical wire shape (the fast path of [`crate::extract::Fast`]).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanonicalBatch {
    run_id: Option<String>,
    run_uuid: Option<String>,
    #[serde(default)]
    metrics: Vec<CanonicalMetric>,
    #[serde(default)]
    params: Vec<CanonicalKv>,
    #[serde(default)]
    tags: Vec<CanonicalKv>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CanonicalMetric {
    key: String,
    value: f64,
    timestamp: i64,
    #[serde(default)]
    step: i64,
    model_id: Option<String>,
    dataset_name: Option<String>,
    dataset_digest: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CanonicalKv {
    key: String,
    #[serde(default)]
    value: String,
}

type Decoded = (String, Vec<Metric>, Vec<Param>, Vec<Tag>);

/// A canonical batch as domain values, with the same messages as the lenient path for required
/// fields that are present but empty. Metric keys and timestamps are checked by the caller.
fn canonical_batch(b: CanonicalBatch) -> ApiResult<Decoded> {
    let run_id = b
        .run_id
        .or(b.run_uuid)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::missing("run_id"))?;
    let mut metrics = Vec::with_capacity(b.metrics.len());
    for (i, m) in b.metrics.into_iter().enumerate() {
        if m.key.is_empty() {
            return Err(Error::missing(&format!("metrics[{i}].key")).into());
        }
        let metric = Metric {
            key: m.key,
            value: m.value,
            timestamp: m.timestamp,
            step: m.step,
            model_id: m.model_id.filter(|s| !s.is_empty()),
            dataset_name: m.dataset_name.filter(|s| !s.is_empty()),
            dataset_digest: m.dataset_digest.filter(|s| !s.is_empty()),
        };
        validation::validate_metric(&metric, Some(i))?;
        metrics.push(metric);
    }
    let kvs = |items: Vec<CanonicalKv>, field: &str| -> ApiResult<Vec<Tag>> {
        items
            .into_iter()
            .enumerate()
            .map(|(i, kv)| {
                if kv.key.is_empty() {
                    return Err(Error::missing(&format!("{field}[{i}].key")).into());
                }
                Ok(Tag::new(kv.key, kv.value))
            })
            .collect()
    };
    Ok((
        run_id,
        metrics,
        kvs(b.params, "params")?,
        kvs(b.tags, "tags")?,
    ))
}

/// Any other shape (camelCase, numbers as strings, "NaN"...): MLflow's lenient decoding.
fn lenient_batch(mut p: Params) -> ApiResult<Decoded> {
    let run_id = p.run_id()?;
    let metrics = p
        .take_objects("metrics")?
        .iter()
        .enumerate()
        .map(|(i, m)| metric_from(m, &format!("metrics[{i}]."), Some(i)))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok((
        run_id,
        metrics,
        tag_list(&p, "params")?,
        tag_list(&p, "tags")?,
    ))
}

pub async fn log_batch(
    State(st): State<AppState>,
    req: Fast<CanonicalBatch>,
) -> ApiResult<Json<Value>> {
    let (run_id, metrics, mut params, mut tags) = match req {
        Fast::Typed(batch) => canonical_batch(batch)?,
        Fast::Lenient(p) => lenient_batch(p)?,
    };
    validation::validate_run_id(&run_id)?;
    for (i, param) in params.iter_mut().enumerate() {
        validation::prepare_param(param, &format!("params[{i}].key"))?;
    }
    for (i, tag) in tags.iter_mut().enumerate() {
        validation::prepare_tag(tag, &format!("tags[{i}].key"))?;
    }
    validation::validate_batch_limits(metrics.len(), &params, tags.len())?;
    st.store
        .log_batch(
            &run_id,
            Batch {
                metrics,
                params,
                tags,
            },
        )
        .await?;
    Ok(empty())
}

fn limited(value: Option<String>, max: usize, what: &str) -> ApiResult<Option<String>> {
    if let Some(v) = &value {
        validation::validate_length(v, max, what)?;
    }
    Ok(value)
}

pub async fn log_inputs(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let run_id = p.run_id()?;
    let mut datasets = Vec::new();
    for (i, input) in p.objects("datasets")?.iter().enumerate() {
        let d = input
            .object("dataset")?
            .ok_or_else(|| Error::missing(&format!("datasets[{i}].dataset")))?;
        let req = |f: &str| -> ApiResult<String> {
            d.opt_str(f)?
                .filter(|s| !s.is_empty())
                .ok_or_else(|| Error::missing(&format!("datasets[{i}].dataset.{f}")).into())
        };
        let dataset = Dataset {
            name: limited(
                Some(req("name")?),
                validation::MAX_DATASET_NAME_SIZE,
                "dataset.name",
            )?
            .unwrap_or_default(),
            digest: limited(
                Some(req("digest")?),
                validation::MAX_DATASET_DIGEST_SIZE,
                "dataset.digest",
            )?
            .unwrap_or_default(),
            source_type: req("source_type")?,
            source: limited(
                Some(req("source")?),
                validation::MAX_DATASET_SOURCE_SIZE,
                "dataset.source",
            )?
            .unwrap_or_default(),
            schema: limited(
                d.opt_str("schema")?,
                validation::MAX_DATASET_SCHEMA_SIZE,
                "dataset.schema",
            )?,
            profile: limited(
                d.opt_str("profile")?,
                validation::MAX_DATASET_PROFILE_SIZE,
                "dataset.profile",
            )?,
        };
        let tags = tag_list(input, "tags")?;
        for t in &tags {
            validation::validate_length(&t.key, validation::MAX_INPUT_TAG_KEY_SIZE, "tag.key")?;
            validation::validate_length(
                &t.value,
                validation::MAX_INPUT_TAG_VALUE_SIZE,
                "tag.value",
            )?;
        }
        datasets.push(DatasetInput { tags, dataset });
    }
    let models = p
        .objects("models")?
        .iter()
        .enumerate()
        .map(|(i, m)| {
            m.opt_str("model_id")?
                .filter(|s| !s.is_empty())
                .ok_or_else(|| Error::missing(&format!("models[{i}].model_id")).into())
        })
        .collect::<ApiResult<Vec<String>>>()?;
    st.store.log_inputs(&run_id, datasets, models).await?;
    Ok(empty())
}

pub async fn log_outputs(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let run_id = p.run_id()?;
    let models = p
        .objects("models")?
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let model_id = m
                .opt_str("model_id")?
                .filter(|s| !s.is_empty())
                .ok_or_else(|| Error::missing(&format!("models[{i}].model_id")))?;
            Ok(ModelOutput {
                model_id,
                step: m.opt_i64("step")?.unwrap_or(0),
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    st.store.log_outputs(&run_id, models).await?;
    Ok(empty())
}

pub async fn log_model(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let run_id = p.run_id()?;
    let model_json = p.req_str("model_json")?;
    let parsed: Value = serde_json::from_str(&model_json)
        .map_err(|e| ApiError::invalid(format!("Malformed model info. \n {e}")))?;
    let missing: Vec<&str> = ["artifact_path", "flavors", "utc_time_created", "run_id"]
        .into_iter()
        .filter(|k| parsed.get(k).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::invalid(format!(
            "Model json is missing mandatory fields: {missing:?}"
        )));
    }
    st.store
        .append_logged_model_history(&run_id, &model_json)
        .await?;
    Ok(empty())
}
