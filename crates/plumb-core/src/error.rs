//! The one error vocabulary: MLflow's error codes, their HTTP statuses, and `Error`.

use std::fmt;

/// MLflow's `ErrorCode` names (databricks.proto) that plumb emits, with their HTTP statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    InvalidParameterValue,
    BadRequest,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
    EndpointNotFound,
    PermissionDenied,
    Unauthenticated,
    ResourceConflict,
    RequestLimitExceeded,
    InternalError,
    InvalidState,
    NotImplemented,
    TemporarilyUnavailable,
}

/// One row per code: (code, wire name, HTTP status, error_class). The single table.
const TABLE: &[(ErrorCode, &str, u16, Option<&str>)] = &[
    (
        ErrorCode::InvalidParameterValue,
        "INVALID_PARAMETER_VALUE",
        400,
        Some("INVALID_PARAMETER_VALUE"),
    ),
    (
        ErrorCode::BadRequest,
        "BAD_REQUEST",
        400,
        Some("INVALID_PARAMETER_VALUE"),
    ),
    (
        ErrorCode::ResourceAlreadyExists,
        "RESOURCE_ALREADY_EXISTS",
        400,
        Some("RESOURCE_ALREADY_EXISTS"),
    ),
    (
        ErrorCode::ResourceDoesNotExist,
        "RESOURCE_DOES_NOT_EXIST",
        404,
        Some("RESOURCE_NOT_FOUND"),
    ),
    (
        ErrorCode::EndpointNotFound,
        "ENDPOINT_NOT_FOUND",
        404,
        Some("RESOURCE_NOT_FOUND"),
    ),
    (
        ErrorCode::PermissionDenied,
        "PERMISSION_DENIED",
        403,
        Some("PERMISSION_DENIED"),
    ),
    (ErrorCode::Unauthenticated, "UNAUTHENTICATED", 401, None),
    (ErrorCode::ResourceConflict, "RESOURCE_CONFLICT", 409, None),
    (
        ErrorCode::RequestLimitExceeded,
        "REQUEST_LIMIT_EXCEEDED",
        429,
        None,
    ),
    (
        ErrorCode::InternalError,
        "INTERNAL_ERROR",
        500,
        Some("CLIENT_INTERNAL_ERROR"),
    ),
    // MLflow answers INVALID_STATE with 500; plumb answers 400 because it is always a
    // client mistake (e.g. renaming a deleted experiment) and clients retry 5xx for minutes.
    (
        ErrorCode::InvalidState,
        "INVALID_STATE",
        400,
        Some("INVALID_PARAMETER_VALUE"),
    ),
    (ErrorCode::NotImplemented, "NOT_IMPLEMENTED", 501, None),
    (
        ErrorCode::TemporarilyUnavailable,
        "TEMPORARILY_UNAVAILABLE",
        503,
        Some("CLIENT_INTERNAL_ERROR"),
    ),
];

impl ErrorCode {
    fn row(self) -> &'static (ErrorCode, &'static str, u16, Option<&'static str>) {
        TABLE.iter().find(|row| row.0 == self).unwrap_or(&TABLE[9]) // INTERNAL_ERROR; every variant has a row (tested)
    }

    /// The wire name, e.g. `RESOURCE_DOES_NOT_EXIST`.
    pub fn as_str(self) -> &'static str {
        self.row().1
    }

    /// The HTTP status the server answers with.
    pub fn http_status(self) -> u16 {
        self.row().2
    }

    /// MLflow 3's `error_class` (with `sqlstate` derived from it), when it emits one.
    pub fn error_class(self) -> Option<&'static str> {
        self.row().3
    }

    /// MLflow 3's `sqlstate`, derived from the status class.
    pub fn sqlstate(self) -> Option<&'static str> {
        self.error_class().map(|_| {
            if self.http_status() >= 500 {
                "XXM00"
            } else {
                "KAM00"
            }
        })
    }
}

/// A domain error: an MLflow error code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParameterValue, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceDoesNotExist, message)
    }
    pub fn already_exists(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceAlreadyExists, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InternalError, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::TemporarilyUnavailable, message)
    }
    /// `Missing value for required parameter 'x'. ...` as MLflow words it.
    pub fn missing(field: &str) -> Self {
        Self::invalid(format!(
            "Missing value for required parameter '{field}'. See the API docs for more information about request parameters."
        ))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_own_row() {
        let all = [
            ErrorCode::InvalidParameterValue,
            ErrorCode::BadRequest,
            ErrorCode::ResourceAlreadyExists,
            ErrorCode::ResourceDoesNotExist,
            ErrorCode::EndpointNotFound,
            ErrorCode::PermissionDenied,
            ErrorCode::Unauthenticated,
            ErrorCode::ResourceConflict,
            ErrorCode::RequestLimitExceeded,
            ErrorCode::InternalError,
            ErrorCode::InvalidState,
            ErrorCode::NotImplemented,
            ErrorCode::TemporarilyUnavailable,
        ];
        for code in all {
            assert_eq!(code.row().0, code, "{code:?} has no row");
        }
        assert_eq!(ErrorCode::ResourceAlreadyExists.http_status(), 400);
        assert_eq!(ErrorCode::ResourceDoesNotExist.http_status(), 404);
        assert_eq!(ErrorCode::InternalError.sqlstate(), Some("XXM00"));
        assert_eq!(ErrorCode::InvalidParameterValue.sqlstate(), Some("KAM00"));
    }
}
