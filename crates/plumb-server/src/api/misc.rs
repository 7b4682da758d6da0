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

pub async fn version() -> impl IntoResponse {
    env!("CARGO_PKG_VERSION")
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
