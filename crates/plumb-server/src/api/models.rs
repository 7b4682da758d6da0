//! MLflow 3 logged-model endpoints: create, get, finalize, delete, tags, params, search.

use axum::extract::{Path, State};
use axum::Json;
use plumb_core::entities::LoggedModelStatus;
use plumb_core::search::{parse_filter, parse_order_by, Domain, OrderKey};
use plumb_core::validation::decode_offset_token;
use plumb_core::Error;
use plumb_store::{LoggedModelQuery, NewLoggedModel};
use serde_json::{json, Value};

use crate::api::{empty, tag_list};
use crate::error::ApiResult;
use crate::extract::Params;
use crate::{wire, ApiError, AppState};

fn validate_name(name: &str) -> ApiResult<()> {
    if name
        .chars()
        .any(|c| matches!(c, '/' | ':' | '.' | '%' | '"' | '\''))
    {
        return Err(ApiError::invalid(format!(
            "Invalid model name ('{name}') provided. Model name must be a non-empty string and cannot contain the following characters: ('/', ':', '.', '%', '\"', \"'\")"
        )));
    }
    Ok(())
}

pub async fn create(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let experiment_id = p.req_str("experiment_id")?;
    let name = p.opt_str("name")?.filter(|s| !s.is_empty());
    if let Some(n) = &name {
        validate_name(n)?;
    }
    let new = NewLoggedModel {
        experiment_id,
        name,
        model_type: p.opt_str("model_type")?,
        source_run_id: p.opt_str("source_run_id")?.filter(|s| !s.is_empty()),
        params: tag_list(&p, "params")?,
        tags: tag_list(&p, "tags")?,
    };
    let model = st.store.create_logged_model(new).await?;
    Ok(Json(json!({ "model": wire::logged_model(&model) })))
}

pub async fn get(
    State(st): State<AppState>,
    Path(model_id): Path<String>,
    p: Params,
) -> ApiResult<Json<Value>> {
    let allow_deleted = p.opt_bool("allow_deleted")?.unwrap_or(false);
    let model = st.store.get_logged_model(&model_id, allow_deleted).await?;
    Ok(Json(json!({ "model": wire::logged_model(&model) })))
}

pub async fn finalize(
    State(st): State<AppState>,
    Path(path_id): Path<String>,
    p: Params,
) -> ApiResult<Json<Value>> {
    let model_id = p
        .opt_str("model_id")?
        .filter(|s| !s.is_empty())
        .unwrap_or(path_id);
    let status_text = p.req_str("status")?;
    let status = LoggedModelStatus::parse(&status_text)
        .filter(|s| matches!(s, LoggedModelStatus::Ready | LoggedModelStatus::UploadFailed))
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "Invalid model status '{status_text}': must be LOGGED_MODEL_READY or LOGGED_MODEL_UPLOAD_FAILED"
            ))
        })?;
    let model = st.store.finalize_logged_model(&model_id, status).await?;
    Ok(Json(json!({ "model": wire::logged_model(&model) })))
}

pub async fn delete(
    State(st): State<AppState>,
    Path(model_id): Path<String>,
) -> ApiResult<Json<Value>> {
    st.store.delete_logged_model(&model_id).await?;
    Ok(empty())
}

pub async fn set_tags(
    State(st): State<AppState>,
    Path(model_id): Path<String>,
    p: Params,
) -> ApiResult<Json<Value>> {
    st.store
        .set_logged_model_tags(&model_id, tag_list(&p, "tags")?)
        .await?;
    Ok(empty())
}

pub async fn delete_tag(
    State(st): State<AppState>,
    Path((model_id, key)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    st.store.delete_logged_model_tag(&model_id, &key).await?;
    Ok(empty())
}

pub async fn log_params(
    State(st): State<AppState>,
    Path(model_id): Path<String>,
    p: Params,
) -> ApiResult<Json<Value>> {
    st.store
        .log_logged_model_params(&model_id, tag_list(&p, "params")?)
        .await?;
    Ok(empty())
}

pub async fn search(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let experiment_ids = p.str_list("experiment_ids")?;
    if experiment_ids.is_empty() {
        return Err(Error::missing("experiment_ids").into());
    }
    plumb_core::validation::validate_search_experiment_ids(&experiment_ids)?;
    let max_results = match p.opt_i64("max_results")? {
        None | Some(0) => 100,
        Some(n) if (1..=50000).contains(&n) => n,
        Some(n) => {
            return Err(ApiError::invalid(format!(
                "Invalid value {n} for parameter 'max_results' supplied. It must be between 1 and 50000"
            )))
        }
    };
    let mut order_by: Vec<OrderKey> = Vec::new();
    for (i, o) in p.objects("order_by")?.iter().enumerate() {
        let field = o
            .opt_str("field_name")?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::missing(&format!("order_by[{i}].field_name")))?;
        let ascending = o.opt_bool("ascending")?.unwrap_or(true);
        let clause = format!("{field} {}", if ascending { "ASC" } else { "DESC" });
        order_by.extend(parse_order_by(Domain::LoggedModels, &[clause])?);
    }
    let mut datasets = Vec::new();
    for d in p.objects("datasets")?.iter() {
        let name = d
            .opt_str("dataset_name")?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                Error::invalid("`dataset_name` in the `datasets` clause must be specified.")
            })?;
        let digest = d.opt_str("dataset_digest")?.filter(|s| !s.is_empty());
        datasets.push((name, digest));
    }
    let query = LoggedModelQuery {
        datasets,
        experiment_ids,
        filter: parse_filter(
            Domain::LoggedModels,
            &p.opt_str("filter")?.unwrap_or_default(),
        )?,
        order_by,
        max_results,
        offset: decode_offset_token(p.opt_str("page_token")?.as_deref())?,
    };
    let page = st.store.search_logged_models(query).await?;
    Ok(Json(wire::page(
        "models",
        page.items.iter().map(wire::logged_model).collect(),
        page.next_page_token,
    )))
}
