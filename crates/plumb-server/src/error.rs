//! `ApiError`: every failure leaves the server as MLflow's `{"error_code", "message"}` body.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use plumb_core::{Error, ErrorCode};
use serde_json::json;

/// A domain error on its way to the wire (with a status other than its code's, rarely: 413).
#[derive(Debug)]
pub struct ApiError(pub Error, pub Option<StatusCode>);

pub type ApiResult<T> = Result<T, ApiError>;

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        Self(e, None)
    }
}

impl ApiError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self(Error::invalid(message), None)
    }
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self(Error::new(code, message), None)
    }
    /// A request body over `limit` bytes: 413, in MLflow's error shape.
    pub fn too_large(limit: usize) -> Self {
        Self(
            Error::new(
                ErrorCode::BadRequest,
                format!("Request body too large: at most {limit} bytes are accepted."),
            ),
            Some(StatusCode::PAYLOAD_TOO_LARGE),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.0.code;
        let status = self.1.unwrap_or_else(|| {
            StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        });
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
