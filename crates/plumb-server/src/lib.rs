//! plumb-server: the HTTP layer. The route table, `AppState`, and `serve(listener, state, shutdown)`.
//!
//! Handlers decode a request (`extract`), validate it with `plumb_core`, make store or artifact
//! calls, and encode the answer (`wire`). They never see SQL or filesystem paths.

mod api;
mod error;
mod extract;
mod security;
mod serve;
mod telemetry;
mod ui;
mod wire;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use plumb_artifacts::ArtifactStore;
use plumb_store::{RegistryStore, Store, TrackingStore};

pub use error::ApiError;
pub use security::{default_allowed_hosts, Security};
pub use serve::{serve, Limits};

/// Settings the HTTP layer needs, built once by the binary.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Whether the `mlflow-artifacts` proxy routes are served.
    pub serve_artifacts: bool,
    /// Artifact root of new experiments (`--default-artifact-root`): the folders directly
    /// under it named by a number are plumb's own experiments' (clients cannot claim them).
    pub default_artifact_root: String,
    /// Local folders (absolute) that client-given `file://` experiment locations must not
    /// equal or enclose: the artifact destination and the default root, when local.
    pub protected_roots: Vec<std::path::PathBuf>,
    pub security: Security,
    pub limits: Limits,
    /// Monitoring's evaluation interval and raw-event retention.
    pub monitoring: plumb_monitor::engine::Settings,
    /// Webhook and notification delivery (address policy, secret key, retries).
    pub webhooks: plumb_webhooks::Config,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            serve_artifacts: true,
            default_artifact_root: "mlflow-artifacts:/".into(),
            protected_roots: Vec::new(),
            security: Security::default(),
            limits: Limits::default(),
            monitoring: plumb_monitor::engine::Settings {
                interval: std::time::Duration::from_secs(15),
                retention: std::time::Duration::from_secs(7 * 86_400),
            },
            webhooks: plumb_webhooks::Config::default(),
        }
    }
}

/// Everything a handler can reach. No global state exists besides this.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn TrackingStore>,
    pub registry: Arc<dyn RegistryStore>,
    /// All of the store at once (monitoring reads runs, the registry and its own tables).
    pub all: Arc<dyn Store>,
    /// Where `mlflow-artifacts:/` bytes live (`--artifacts-destination`).
    pub artifacts: ArtifactStore,
    pub config: Arc<ServerConfig>,
}

/// The MLflow REST routes, relative to a version prefix such as `/api/2.0`.
fn mlflow_routes() -> Router<AppState> {
    use api::{artifacts, experiments, metrics, models, registry, runs};
    use axum::routing::patch;
    Router::new()
        // experiments
        .route("/mlflow/experiments/create", post(experiments::create))
        .route("/mlflow/experiments/get", get(experiments::get))
        .route(
            "/mlflow/experiments/get-by-name",
            get(experiments::get_by_name),
        )
        .route(
            "/mlflow/experiments/search",
            post(experiments::search).get(experiments::search),
        )
        .route("/mlflow/experiments/list", get(experiments::search))
        .route("/mlflow/experiments/update", post(experiments::update))
        .route("/mlflow/experiments/delete", post(experiments::delete))
        .route("/mlflow/experiments/restore", post(experiments::restore))
        .route(
            "/mlflow/experiments/set-experiment-tag",
            post(experiments::set_tag),
        )
        .route(
            "/mlflow/experiments/delete-experiment-tag",
            post(experiments::delete_tag),
        )
        .route(
            "/mlflow/experiments/search-datasets",
            post(experiments::search_datasets),
        )
        // runs
        .route("/mlflow/runs/create", post(runs::create))
        .route("/mlflow/runs/get", get(runs::get))
        .route("/mlflow/runs/update", post(runs::update))
        .route("/mlflow/runs/delete", post(runs::delete))
        .route("/mlflow/runs/restore", post(runs::restore))
        .route("/mlflow/runs/search", post(runs::search).get(runs::search))
        .route("/mlflow/runs/set-tag", post(runs::set_tag))
        .route("/mlflow/runs/delete-tag", post(runs::delete_tag))
        .route("/mlflow/runs/log-metric", post(runs::log_metric))
        .route("/mlflow/runs/log-parameter", post(runs::log_param))
        .route("/mlflow/runs/log-batch", post(runs::log_batch))
        .route("/mlflow/runs/log-inputs", post(runs::log_inputs))
        .route("/mlflow/runs/outputs", post(runs::log_outputs))
        .route("/mlflow/runs/log-model", post(runs::log_model))
        // metric history
        .route("/mlflow/metrics/get-history", get(metrics::history))
        .route("/mlflow/metrics/get-history-bulk", get(metrics::bulk))
        .route(
            "/mlflow/metrics/get-history-bulk-interval",
            get(metrics::bulk_interval),
        )
        // run artifacts
        .route("/mlflow/artifacts/list", get(artifacts::list_run))
        // logged models (MLflow 3)
        .route("/mlflow/logged-models", post(models::create))
        .route("/mlflow/logged-models/search", post(models::search))
        .route(
            "/mlflow/logged-models/{model_id}",
            get(models::get)
                .patch(models::finalize)
                .delete(models::delete),
        )
        .route(
            "/mlflow/logged-models/{model_id}/tags",
            axum::routing::patch(models::set_tags),
        )
        .route(
            "/mlflow/logged-models/{model_id}/tags/{key}",
            delete(models::delete_tag),
        )
        .route(
            "/mlflow/logged-models/{model_id}/params",
            post(models::log_params),
        )
        .route(
            "/mlflow/logged-models/{model_id}/artifacts/directories",
            get(artifacts::list_logged_model),
        )
        .route(
            "/mlflow/logged-models/{model_id}/artifacts/files",
            get(artifacts::get_logged_model_file),
        )
        // model registry
        // webhooks
        .route(
            "/mlflow/webhooks",
            post(api::webhooks::create).get(api::webhooks::list),
        )
        .route(
            "/mlflow/webhooks/{webhook_id}",
            get(api::webhooks::get)
                .patch(api::webhooks::update)
                .delete(api::webhooks::delete),
        )
        .route(
            "/mlflow/webhooks/{webhook_id}/test",
            post(api::webhooks::test),
        )
        .route(
            "/mlflow/registered-models/create",
            post(registry::create_model),
        )
        .route("/mlflow/registered-models/get", get(registry::get_model))
        .route(
            "/mlflow/registered-models/rename",
            post(registry::rename_model),
        )
        .route(
            "/mlflow/registered-models/update",
            patch(registry::update_model),
        )
        .route(
            "/mlflow/registered-models/delete",
            delete(registry::delete_model),
        )
        .route(
            "/mlflow/registered-models/search",
            get(registry::search_models),
        )
        .route(
            "/mlflow/registered-models/get-latest-versions",
            post(registry::latest_versions).get(registry::latest_versions),
        )
        .route(
            "/mlflow/registered-models/set-tag",
            post(registry::set_model_tag),
        )
        .route(
            "/mlflow/registered-models/delete-tag",
            delete(registry::delete_model_tag),
        )
        .route(
            "/mlflow/registered-models/alias",
            post(registry::set_alias)
                .delete(registry::delete_alias)
                .get(registry::get_by_alias),
        )
        .route(
            "/mlflow/model-versions/create",
            post(registry::create_version),
        )
        .route("/mlflow/model-versions/get", get(registry::get_version))
        .route(
            "/mlflow/model-versions/update",
            patch(registry::update_version),
        )
        .route(
            "/mlflow/model-versions/delete",
            delete(registry::delete_version),
        )
        .route(
            "/mlflow/model-versions/search",
            get(registry::search_versions),
        )
        .route(
            "/mlflow/model-versions/transition-stage",
            post(registry::transition_stage),
        )
        .route(
            "/mlflow/model-versions/set-tag",
            post(registry::set_version_tag),
        )
        .route(
            "/mlflow/model-versions/delete-tag",
            delete(registry::delete_version_tag),
        )
        .route(
            "/mlflow/model-versions/get-download-uri",
            get(registry::get_download_uri),
        )
        // artifact proxy
        .route("/mlflow-artifacts/artifacts", get(artifacts::list_proxy))
        .route(
            "/mlflow-artifacts/artifacts/{*path}",
            get(artifacts::download)
                .put(artifacts::upload)
                .delete(artifacts::delete),
        )
        .route(
            "/mlflow-artifacts/mpu/create/{*path}",
            post(artifacts::multipart_unsupported),
        )
        .route(
            "/mlflow-artifacts/mpu/complete/{*path}",
            post(artifacts::multipart_unsupported),
        )
        .route(
            "/mlflow-artifacts/mpu/abort/{*path}",
            post(artifacts::multipart_unsupported),
        )
        .route(
            "/mlflow-artifacts/presigned/{*path}",
            get(artifacts::multipart_unsupported),
        )
}

/// plumb's own routes, relative to `/api/2.0/plumb` (and `/ajax-api/2.0/plumb` for the UI).
/// MLflow 3's trace routes, relative to `/api/3.0` (v3 only: under 2.0 the same paths are the
/// v2 trace API, not served), with the routes v2 shares.
fn trace_routes() -> Router<AppState> {
    use api::traces as t;
    Router::new()
        .route("/mlflow/traces", post(t::start))
        .route("/mlflow/traces/search", post(t::search))
        .route("/mlflow/traces/get", get(t::get_trace))
        .route("/mlflow/traces/batchGet", get(t::batch_get))
        .route("/mlflow/traces/batchGetInfos", post(t::batch_get_infos))
        .route("/mlflow/traces/metrics", post(api::trace_metrics::query))
        .route(
            "/mlflow/traces/calculate-filter-correlation",
            post(api::trace_metrics::correlation),
        )
        .route("/mlflow/traces/{trace_id}", get(t::get_info))
        .route(
            "/mlflow/traces/{trace_id}/assessments",
            post(t::create_assessment),
        )
        .route(
            "/mlflow/traces/{trace_id}/assessments/{assessment_id}",
            get(t::get_assessment)
                .patch(t::update_assessment)
                .delete(t::delete_assessment),
        )
        .merge(trace_routes_v2())
}

/// The v2 trace API of the 2.x client, under `/api/2.0` only (under 3.0 the same paths are
/// v3 calls).
fn trace_routes_v2_only() -> Router<AppState> {
    use api::traces_v2 as t;
    use axum::routing::patch;
    Router::new()
        .route("/mlflow/traces", post(t::start).get(t::search))
        .route("/mlflow/traces/{trace_id}", patch(t::end))
        .route("/mlflow/traces/{trace_id}/info", get(t::get_info))
}

/// The trace routes whose v2 form (under `/api/2.0`) is the same call as v3's; the 3.x client
/// uses these paths for tags and deletion.
fn trace_routes_v2() -> Router<AppState> {
    use api::traces as t;
    use axum::routing::patch;
    Router::new()
        .route("/mlflow/traces/delete-traces", post(t::delete))
        .route("/mlflow/traces/link-to-run", post(t::link_to_run))
        .route("/mlflow/get-trace-artifact", get(t::trace_artifact))
        .route(
            "/mlflow/traces/{trace_id}/tags",
            patch(t::set_tag).delete(t::delete_tag),
        )
}

fn plumb_routes() -> Router<AppState> {
    use api::monitoring as m;
    Router::new()
        .route("/monitors", post(m::create).get(m::list))
        .route(
            "/monitors/{name}",
            get(m::get)
                .put(m::replace)
                .patch(m::update)
                .delete(m::delete),
        )
        .route("/monitors/{name}/events", post(m::events))
        .route("/monitors/{name}/labels", post(m::labels))
        .route("/monitors/{name}/metrics", get(m::series))
        .route("/alerts", get(m::alerts))
        .route("/metrics/sampled", get(api::sampled::sampled))
        .route("/registry/history", get(api::registry_history::history))
        .route("/alerts/history", get(m::history))
        .route("/deliveries", get(api::webhooks::deliveries))
        .route("/version", get(api::misc::plumb_version))
}

/// The whole application: MLflow routes under `/api` and `/ajax-api` (2.0 and 3.0), plus
/// `/health`, `/version`, `/get-artifact` and the 3.x `server-info` probe.
pub fn router(state: AppState) -> Router {
    let mlflow = mlflow_routes();
    let server_info = get(api::misc::server_info);
    let telemetry = Arc::new(telemetry::Telemetry::default());
    let exposition = telemetry.clone();
    Router::new()
        .route("/", get(ui::index))
        .route("/static/{file}", get(ui::static_file))
        .route("/health", get(api::misc::health))
        .route(
            "/metrics",
            get(move |State(st): State<AppState>| {
                let t = exposition.clone();
                async move { t.render(st.all.as_ref()).await }
            }),
        )
        .route("/version", get(api::misc::version))
        .route("/v1/traces", post(api::otlp::export))
        .route("/get-artifact", get(api::artifacts::get_artifact))
        .route(
            "/model-versions/get-artifact",
            get(api::registry::get_artifact),
        )
        .route("/api/3.0/mlflow/server-info", server_info.clone())
        .route("/ajax-api/3.0/mlflow/server-info", server_info)
        .nest(
            "/api/2.0",
            mlflow
                .clone()
                .merge(trace_routes_v2())
                .merge(trace_routes_v2_only()),
        )
        .route(
            "/ajax-api/2.0/mlflow/upload-artifact",
            post(api::artifacts::upload_for_run),
        )
        .nest(
            "/ajax-api/2.0",
            mlflow
                .clone()
                .merge(trace_routes_v2())
                .merge(trace_routes_v2_only()),
        )
        .nest("/api/3.0", mlflow.clone().merge(trace_routes()))
        .nest("/ajax-api/3.0", mlflow.merge(trace_routes()))
        .nest("/api/2.0/plumb", plumb_routes())
        .nest("/ajax-api/2.0/plumb", plumb_routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security::guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            telemetry,
            telemetry::record,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

async fn not_found(req: Request) -> Response {
    ApiError::new(
        plumb_core::ErrorCode::EndpointNotFound,
        format!("No endpoint {} {}", req.method(), req.uri().path()),
    )
    .into_response()
}

async fn method_not_allowed(method: Method) -> Response {
    let mut resp = ApiError::new(
        plumb_core::ErrorCode::BadRequest,
        format!("Method {method} is not allowed on this endpoint"),
    )
    .into_response();
    *resp.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    resp
}
