//! `ApiError`: every failure leaves the server as MLflow's `{"error_code", "message"}` body.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use plumb_core::{Error, ErrorCode};
use serde_json::json;

/// A domain error on its way to the wire.
#[derive(Debug)]
pub struct ApiError(pub Error);

pub type ApiResult<T> = Result<T, ApiError>;

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

impl ApiError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self(Error::invalid(message))
    }
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self(Error::new(code, message))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.0.code;
        let status =
            StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(error_code = code.as_str(), message = %self.0.message, "request failed");
        } else {
            tracing::debug!(error_code = code.as_str(), message = %self.0.message, "client error");
        }
        let mut body = json!({ "error_code": code.as_str(), "message": self.0.message });
        if let (Some(class), Some(state)) = (code.error_class(), code.sqlstate()) {
            body["error_class"] = json!(class);
            body["sqlstate"] = json!(state);
        }
        (status, axum::Json(body)).into_response()
    }
}
