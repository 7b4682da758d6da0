//! Model registry endpoints: registered models, versions, aliases, stages, tags, searches,
//! download URIs. Version sources are checked against their run or logged model here.

use axum::extract::State;
use axum::response::Response;
use axum::Json;
use plumb_core::entities::Tag;
use plumb_core::registry::{self, SourceContext, Stage};
use plumb_core::search::{parse_filter, parse_order_by, Domain};
use plumb_core::validation::decode_offset_token;
use plumb_store::{NewModelVersion, RegistryQuery};
use serde_json::{json, Value};

use crate::api::{empty, tag_list};
use crate::error::ApiResult;
use crate::extract::Params;
use crate::{wire, ApiError, AppState};

fn name(p: &Params) -> ApiResult<String> {
    p.req_str("name")
}

fn version(p: &Params) -> ApiResult<i64> {
    Ok(registry::parse_version(&p.req_str("version")?)?)
}

fn registry_tags(p: &Params) -> ApiResult<Vec<Tag>> {
    let tags = tag_list(p, "tags")?;
    for t in &tags {
        registry::validate_registry_tag(t)?;
    }
    Ok(tags)
}

fn description(p: &Params) -> ApiResult<Option<String>> {
    let d = p.opt_str("description")?;
    if let Some(d) = &d {
        plumb_core::validation::validate_length(
            d,
            registry::MAX_DESCRIPTION_LENGTH,
            "description",
        )?;
    }
    Ok(d)
}

fn rm_json(rm: &registry::RegisteredModel) -> Json<Value> {
    Json(json!({ "registered_model": wire::registered_model(rm) }))
}

fn mv_json(mv: &registry::ModelVersion) -> Json<Value> {
    Json(json!({ "model_version": wire::model_version(mv) }))
}

pub async fn create_model(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let name = name(&p)?;
    registry::validate_model_name(&name)?;
    let rm = st
        .registry
        .create_registered_model(&name, registry_tags(&p)?, description(&p)?)
        .await?;
    Ok(rm_json(&rm))
}

pub async fn get_model(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    Ok(rm_json(
        &st.registry.get_registered_model(&name(&p)?).await?,
    ))
}

pub async fn rename_model(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let new_name = p.req_str("new_name")?;
    registry::validate_model_name(&new_name)?;
    Ok(rm_json(
        &st.registry
            .rename_registered_model(&name(&p)?, &new_name)
            .await?,
    ))
}

pub async fn update_model(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    Ok(rm_json(
        &st.registry
            .update_registered_model(&name(&p)?, description(&p)?)
            .await?,
    ))
}

pub async fn delete_model(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    st.registry.delete_registered_model(&name(&p)?).await?;
    Ok(empty())
}

fn registry_query(
    p: &Params,
    domain: Domain,
    default_max: i64,
    max: i64,
) -> ApiResult<RegistryQuery> {
    let max_results = match p.opt_i64("max_results")? {
        None => default_max,
        Some(n) if (1..=max).contains(&n) => n,
        Some(n) => {
            return Err(ApiError::invalid(format!(
                "Invalid value for request parameter max_results. It must be at most {max}, but got value {n}"
            )))
        }
    };
    let filter = parse_filter(domain, &p.opt_str("filter")?.unwrap_or_default())?;
    let (filter, exclude_prompts) = registry::split_prompt_filter(filter);
    Ok(RegistryQuery {
        filter,
        exclude_prompts,
        order_by: parse_order_by(domain, &p.str_list("order_by")?)?,
        max_results,
        offset: decode_offset_token(p.opt_str("page_token")?.as_deref())?,
    })
}

pub async fn search_models(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let q = registry_query(
        &p,
        Domain::RegisteredModels,
        registry::SEARCH_REGISTERED_MODELS_DEFAULT,
        registry::SEARCH_REGISTERED_MODELS_MAX,
    )?;
    let page = st.registry.search_registered_models(q).await?;
    Ok(Json(wire::page(
        "registered_models",
        page.items.iter().map(wire::registered_model).collect(),
        page.next_page_token,
    )))
}

pub async fn latest_versions(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let stages = p
        .str_list("stages")?
        .iter()
        .map(|s| Stage::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let versions = st.registry.get_latest_versions(&name(&p)?, stages).await?;
    Ok(Json(wire::page(
        "model_versions",
        versions.iter().map(wire::model_version).collect(),
        None,
    )))
}

pub async fn set_model_tag(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let tag = Tag::new(p.req_str("key")?, p.opt_str("value")?.unwrap_or_default());
    registry::validate_registry_tag(&tag)?;
    st.registry
        .set_registered_model_tag(&name(&p)?, tag)
        .await?;
    Ok(empty())
}

pub async fn delete_model_tag(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    st.registry
        .delete_registered_model_tag(&name(&p)?, &p.req_str("key")?)
        .await?;
    Ok(empty())
}

pub async fn set_alias(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let alias = p.req_str("alias")?;
    registry::validate_alias(&alias)?;
    st.registry
        .set_alias(&name(&p)?, &alias, version(&p)?)
        .await?;
    Ok(empty())
}

pub async fn delete_alias(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    st.registry
        .delete_alias(&name(&p)?, &p.req_str("alias")?)
        .await?;
    Ok(empty())
}

pub async fn get_by_alias(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    Ok(mv_json(
        &st.registry
            .get_version_by_alias(&name(&p)?, &p.req_str("alias")?)
            .await?,
    ))
}

/// `models:/<name>/<version>` or `models:/<name>@<alias>` (not a logged model id).
fn registry_reference(source: &str) -> Option<(&str, &str, bool)> {
    let rest = source.strip_prefix("models:/")?.trim_start_matches('/');
    if rest.starts_with("m-") && !rest.contains('/') && !rest.contains('@') {
        return None;
    }
    if let Some((name, alias)) = rest.split_once('@') {
        return Some((name, alias, true));
    }
    let (name, version) = rest.rsplit_once('/')?;
    Some((name, version, false))
}

pub async fn create_version(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let name = name(&p)?;
    let mut source = p.req_str("source")?;
    let mut run_id = p.opt_str("run_id")?.filter(|s| !s.is_empty());
    // `models:/<model_id>` names its logged model even without a model_id parameter.
    let model_id = p
        .opt_str("model_id")?
        .filter(|s| !s.is_empty())
        .or_else(|| {
            source
                .strip_prefix("models:/")
                .filter(|id| id.starts_with("m-") && !id.contains(['/', '@']))
                .map(str::to_string)
        });
    let model = match &model_id {
        Some(id) => Some(st.store.get_logged_model(id, false).await?),
        None => None,
    };
    // As MLflow: a version of a logged model belongs to the run that produced it.
    if run_id.is_none() {
        run_id = model.as_ref().and_then(|m| m.source_run_id.clone());
    }
    // As MLflow: a `runs:/` source is only compared with run_id (the run may live on another
    // server), a registry or logged-model reference needs no run; other sources are checked
    // against the run's artifacts, and a missing run fails a non-local source's check (400).
    let needs_run = !source.starts_with("runs:/") && !source.starts_with("models:/");
    let run_root = match &run_id {
        Some(id) if needs_run => match st.store.get_run(id).await {
            Ok(run) => Some(run.info.artifact_uri),
            Err(e)
                if e.code == plumb_core::ErrorCode::ResourceDoesNotExist
                    && !registry::is_local_source(&source) =>
            {
                None
            }
            Err(e) => return Err(e.into()),
        },
        _ => None,
    };
    let model_root = model.map(|m| m.artifact_uri);
    let mut storage_location = None;
    if let Some((ref_name, which, is_alias)) = registry_reference(&source) {
        let referenced = if is_alias {
            st.registry.get_version_by_alias(ref_name, which).await?
        } else {
            st.registry
                .get_model_version(ref_name, registry::parse_version(which)?)
                .await?
        };
        storage_location = Some(
            referenced
                .storage_location
                .clone()
                .unwrap_or(referenced.source.clone()),
        );
        source = format!("models:/{}/{}", referenced.name, referenced.version);
    } else {
        let hosts = st.config.security.server_hosts();
        let ctx = SourceContext {
            run_id: run_id.as_deref(),
            run_artifact_uri: run_root.as_deref(),
            model_id: model_id.as_deref(),
            model_artifact_uri: model_root.as_deref(),
            server_hosts: &hosts,
        };
        storage_location = registry::check_source(&source, &ctx)?.or(storage_location);
    }
    let new = NewModelVersion {
        name,
        source,
        run_id,
        run_link: p.opt_str("run_link")?,
        description: description(&p)?,
        tags: registry_tags(&p)?,
        model_id,
        storage_location,
    };
    Ok(mv_json(&st.registry.create_model_version(new).await?))
}

pub async fn get_version(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    Ok(mv_json(
        &st.registry
            .get_model_version(&name(&p)?, version(&p)?)
            .await?,
    ))
}

pub async fn update_version(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let mv = st
        .registry
        .update_model_version(&name(&p)?, version(&p)?, description(&p)?)
        .await?;
    Ok(mv_json(&mv))
}

pub async fn delete_version(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    st.registry
        .delete_model_version(&name(&p)?, version(&p)?)
        .await?;
    Ok(empty())
}

pub async fn search_versions(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let q = registry_query(
        &p,
        Domain::ModelVersions,
        registry::SEARCH_MODEL_VERSIONS_MAX,
        registry::SEARCH_MODEL_VERSIONS_MAX,
    )?;
    let page = st.registry.search_model_versions(q).await?;
    Ok(Json(wire::page(
        "model_versions",
        page.items.iter().map(wire::model_version).collect(),
        page.next_page_token,
    )))
}

pub async fn transition_stage(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let stage = Stage::parse(&p.req_str("stage")?)?;
    let archive = p.opt_bool("archive_existing_versions")?.unwrap_or(false);
    let mv = st
        .registry
        .transition_stage(&name(&p)?, version(&p)?, stage, archive)
        .await?;
    Ok(mv_json(&mv))
}

pub async fn set_version_tag(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let tag = Tag::new(p.req_str("key")?, p.opt_str("value")?.unwrap_or_default());
    registry::validate_registry_tag(&tag)?;
    st.registry
        .set_model_version_tag(&name(&p)?, version(&p)?, tag)
        .await?;
    Ok(empty())
}

pub async fn delete_version_tag(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    st.registry
        .delete_model_version_tag(&name(&p)?, version(&p)?, &p.req_str("key")?)
        .await?;
    Ok(empty())
}

/// Where a version's files are: its storage location, else its source.
async fn download_uri(st: &AppState, p: &Params) -> ApiResult<String> {
    Ok(version_files(st, p).await?.0)
}

/// A version's files: its download URI and the experiment they belong to (its run's, else its
/// logged model's), against whose location a local root is confined.
async fn version_files(st: &AppState, p: &Params) -> ApiResult<(String, Option<String>)> {
    let mv = st
        .registry
        .get_model_version(&name(p)?, version(p)?)
        .await?;
    let mut experiment = None;
    if !mv.run_id.is_empty() {
        if let Ok(run) = st.store.get_run(&mv.run_id).await {
            experiment = Some(run.info.experiment_id);
        }
    }
    if experiment.is_none() {
        if let Some(id) = &mv.model_id {
            if let Ok(model) = st.store.get_logged_model(id, false).await {
                experiment = Some(model.experiment_id);
            }
        }
    }
    Ok((mv.storage_location.unwrap_or(mv.source), experiment))
}

pub async fn get_download_uri(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    Ok(Json(
        json!({ "artifact_uri": download_uri(&st, &p).await? }),
    ))
}

/// `GET /model-versions/get-artifact?name=&version=&path=`: the UI's download of a version file.
pub async fn get_artifact(State(st): State<AppState>, p: Params) -> ApiResult<Response> {
    let (root, experiment) = version_files(&st, &p).await?;
    let path = p.req_str("path")?;
    crate::api::artifacts::serve_file_under(&st, &root, experiment.as_deref(), &path).await
}
