//! Non-MLflow-service routes: `/health`, `/version`, and the 3.x `server-info` capability probe.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use crate::AppState;

/// 200 `OK` once the store answers; 503 otherwise.
pub async fn health(State(st): State<AppState>) -> impl IntoResponse {
    match st.store.ping().await {
        Ok(()) => (StatusCode::OK, "OK"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "store unavailable"),
    }
}

/// The MLflow version whose REST API plumb implements: clients decide what to call by it (the
/// 3.x client sends spans over OTLP only to servers of 3.4 or later).
pub const MLFLOW_API_VERSION: &str = "3.17.2";

/// `GET /version`, as MLflow's server answers it: the MLflow version (plumb's own is at
/// `/api/2.0/plumb/version`).
pub async fn version() -> impl IntoResponse {
    MLFLOW_API_VERSION
}

/// `GET /api/2.0/plumb/version`: plumb's own version and the MLflow API it implements.
pub async fn plumb_version() -> impl IntoResponse {
    Json(json!({"plumb": env!("CARGO_PKG_VERSION"), "mlflow_api": MLFLOW_API_VERSION}))
}

/// Multipart transfers are off: clients then use plain PUT/GET through the proxy.
pub async fn server_info() -> impl IntoResponse {
    Json(json!({
        "store_type": "SqlStore",
        "workspaces_enabled": false,
        "trace_archival_enabled": false,
        "multipart_uploads_enabled": false,
        "multipart_downloads_enabled": false,
        "presigned_upload_run_id_supported": false,
        "presigned_upload_model_id_supported": false,
        "features_enabled": {"gateway": false}
    }))
}
