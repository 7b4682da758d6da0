//! Experiment endpoints: create, get, get-by-name, search, update, delete, restore, tags, datasets.

use axum::extract::State;
use axum::Json;
use plumb_artifacts::Location;
use plumb_core::entities::{Tag, ViewType};
use plumb_core::search::{parse_filter, parse_order_by, Domain};
use plumb_core::validation::{self, decode_offset_token, SEARCH_MAX_RESULTS_THRESHOLD};
use plumb_store::{ExperimentQuery, NewExperiment};
use serde_json::{json, Value};

use crate::api::{empty, tag_list};
use crate::error::ApiResult;
use crate::extract::Params;
use crate::{wire, ApiError, AppState};

pub async fn create(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let name = p.req_str("name")?;
    validation::validate_experiment_name(&name)?;
    let artifact_location = p.opt_str("artifact_location")?.filter(|s| !s.is_empty());
    if let Some(loc) = &artifact_location {
        validate_artifact_location(loc)?;
    }
    let tags = tag_list(&p, "tags")?;
    for t in &tags {
        validation::validate_experiment_tag(t)?;
    }
    let artifact_location = artifact_location.map(|l| absolutize(&l));
    if let Some(loc) = &artifact_location {
        check_location_is_free(&st, loc).await?;
    }
    let experiment_id = st
        .store
        .create_experiment(NewExperiment {
            name,
            artifact_location,
            tags,
        })
        .await?;
    Ok(Json(json!({ "experiment_id": experiment_id })))
}

fn validate_artifact_location(loc: &str) -> ApiResult<()> {
    validation::validate_length(
        loc,
        validation::MAX_ARTIFACT_LOCATION_LENGTH,
        "artifact_location",
    )?;
    if loc.starts_with("runs:") {
        return Err(ApiError::invalid(
            "Artifact location cannot be a runs:/ URI. Use a URI such as 'mlflow-artifacts:/...' or a path.",
        ));
    }
    if loc.contains('#') || loc.contains('?') {
        return Err(ApiError::invalid(format!(
            "Invalid artifact location '{loc}': query parameters and fragments are not allowed."
        )));
    }
    Ok(())
}

fn location_error(why: impl std::fmt::Display) -> ApiError {
    ApiError::invalid(format!(
        "Invalid value for parameter 'artifact_location': {why}"
    ))
}

/// A client-given location must be a place no one else owns: not the artifact root itself nor
/// a folder enclosing a root plumb writes to, not a numbered folder directly under the default
/// root (plumb's own experiments' folders), and not overlapping another experiment's location
/// (`plumb gc` relies on this: what it removes belongs to one run only).
async fn check_location_is_free(st: &AppState, loc: &str) -> ApiResult<()> {
    let wanted = Location::parse(loc).map_err(|e| location_error(e.message))?;
    let dest = st.artifacts.local_root();
    if matches!(&wanted, Location::Proxy(p) if p.is_root()) {
        return Err(location_error(
            "the artifact proxy's root cannot be an experiment's location",
        ));
    }
    for root in &st.config.protected_roots {
        let root = Location::Local(root.clone());
        if wanted.contains(&root, dest) {
            return Err(location_error(format!(
                "'{loc}' is, or encloses, a folder this server stores artifacts in"
            )));
        }
    }
    if let Ok(default_root) = Location::parse(&st.config.default_artifact_root) {
        if wanted.contains(&default_root, dest) {
            return Err(location_error(format!(
                "'{loc}' is, or encloses, the default artifact root"
            )));
        }
        let below = wanted.below(&default_root, dest).unwrap_or_default();
        if below
            .first()
            .is_some_and(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()))
        {
            return Err(location_error(format!(
                "'{loc}' lies in a folder reserved for the experiments this server numbers"
            )));
        }
    }
    for exp in plumb_store::all_experiments(st.store.as_ref()).await? {
        let Ok(theirs) = Location::parse(&exp.artifact_location) else {
            continue;
        };
        if wanted.overlaps(&theirs, dest) {
            return Err(location_error(format!(
                "'{loc}' overlaps the artifact location of experiment {}",
                exp.experiment_id
            )));
        }
    }
    Ok(())
}

/// A relative local path becomes absolute against the server's working directory, as in MLflow.
fn absolutize(loc: &str) -> String {
    if loc.contains(':') || loc.starts_with('/') {
        return loc.to_string();
    }
    match std::env::current_dir() {
        Ok(cwd) => cwd.join(loc).to_string_lossy().into_owned(),
        Err(_) => loc.to_string(),
    }
}

pub async fn get(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let id = p.req_str("experiment_id")?;
    validation::validate_experiment_id(&id)?;
    let exp = st.store.get_experiment(&id).await?;
    Ok(Json(json!({ "experiment": wire::experiment(&exp) })))
}

pub async fn get_by_name(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let name = p.req_str("experiment_name")?;
    let exp = st.store.get_experiment_by_name(&name).await?;
    Ok(Json(json!({ "experiment": wire::experiment(&exp) })))
}

pub(crate) fn view_type(p: &Params, name: &str) -> ApiResult<ViewType> {
    Ok(match p.opt_str(name)? {
        None => ViewType::ActiveOnly,
        // Unknown enum names leave the field unset, as protobuf parsing does.
        Some(s) => ViewType::parse(&s).unwrap_or_default(),
    })
}

pub async fn search(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let max_results = match p.opt_i64("max_results")? {
        Some(n) if (1..=SEARCH_MAX_RESULTS_THRESHOLD).contains(&n) => n,
        Some(n) if n > SEARCH_MAX_RESULTS_THRESHOLD => {
            return Err(ApiError::invalid(format!(
                "Invalid value {n} for parameter 'max_results' supplied. It must be at most {SEARCH_MAX_RESULTS_THRESHOLD}"
            )))
        }
        other => {
            return Err(ApiError::invalid(format!(
                "Invalid value {} for parameter 'max_results' supplied. It must be a positive integer",
                other.unwrap_or(0)
            )))
        }
    };
    let filter = parse_filter(
        Domain::Experiments,
        &p.opt_str("filter")?.unwrap_or_default(),
    )?;
    let order_by = parse_order_by(Domain::Experiments, &p.str_list("order_by")?)?;
    let query = ExperimentQuery {
        filter,
        order_by,
        view_type: view_type(&p, "view_type")?,
        max_results,
        offset: decode_offset_token(p.opt_str("page_token")?.as_deref())?,
    };
    let page = st.store.search_experiments(query).await?;
    Ok(Json(wire::page(
        "experiments",
        page.items.iter().map(wire::experiment).collect(),
        page.next_page_token,
    )))
}

pub async fn update(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let id = p.req_str("experiment_id")?;
    let new_name = p.req_str("new_name")?;
    validation::validate_experiment_name(&new_name)?;
    st.store.rename_experiment(&id, &new_name).await?;
    Ok(empty())
}

pub async fn delete(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    // As MLflow's SQL store: even the Default experiment may be deleted (and restored).
    st.store
        .delete_experiment(&p.req_str("experiment_id")?)
        .await?;
    Ok(empty())
}

pub async fn restore(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    st.store
        .restore_experiment(&p.req_str("experiment_id")?)
        .await?;
    Ok(empty())
}

pub async fn set_tag(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let id = p.req_str("experiment_id")?;
    let tag = Tag::new(p.req_str("key")?, p.opt_str("value")?.unwrap_or_default());
    validation::validate_experiment_tag(&tag)?;
    st.store.set_experiment_tag(&id, tag).await?;
    Ok(empty())
}

pub async fn delete_tag(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let id = p.req_str("experiment_id")?;
    st.store
        .delete_experiment_tag(&id, &p.req_str("key")?)
        .await?;
    Ok(empty())
}

pub async fn search_datasets(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let ids = p.str_list("experiment_ids")?;
    if ids.is_empty() {
        return Err(ApiError::invalid(
            "SearchDatasets request must specify at least one experiment_id.",
        ));
    }
    if ids.len() > 20 {
        return Err(ApiError::invalid(format!(
            "SearchDatasets request cannot specify more than 20 experiment_ids. Received {} experiment_ids.",
            ids.len()
        )));
    }
    let summaries = st.store.search_datasets(ids).await?;
    Ok(Json(wire::page(
        "dataset_summaries",
        summaries.iter().map(wire::dataset_summary).collect(),
        None,
    )))
}
