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

/// One code's row of the table: wire name, HTTP status, MLflow 3's `error_class`.
struct Row {
    name: &'static str,
    status: u16,
    class: Option<&'static str>,
}

const fn row(name: &'static str, status: u16, class: Option<&'static str>) -> Row {
    Row {
        name,
        status,
        class,
    }
}

impl ErrorCode {
    /// The single table: an exhaustive match, so a new code cannot lack its row.
    fn row(self) -> Row {
        use ErrorCode::*;
        match self {
            InvalidParameterValue => row(
                "INVALID_PARAMETER_VALUE",
                400,
                Some("INVALID_PARAMETER_VALUE"),
            ),
            BadRequest => row("BAD_REQUEST", 400, Some("INVALID_PARAMETER_VALUE")),
            ResourceAlreadyExists => row(
                "RESOURCE_ALREADY_EXISTS",
                400,
                Some("RESOURCE_ALREADY_EXISTS"),
            ),
            ResourceDoesNotExist => row("RESOURCE_DOES_NOT_EXIST", 404, Some("RESOURCE_NOT_FOUND")),
            EndpointNotFound => row("ENDPOINT_NOT_FOUND", 404, Some("RESOURCE_NOT_FOUND")),
            PermissionDenied => row("PERMISSION_DENIED", 403, Some("PERMISSION_DENIED")),
            Unauthenticated => row("UNAUTHENTICATED", 401, None),
            ResourceConflict => row("RESOURCE_CONFLICT", 409, None),
            RequestLimitExceeded => row("REQUEST_LIMIT_EXCEEDED", 429, None),
            InternalError => row("INTERNAL_ERROR", 500, Some("CLIENT_INTERNAL_ERROR")),
            // MLflow answers INVALID_STATE with 500; plumb answers 400 because it is always a
            // client mistake (e.g. renaming a deleted experiment) and clients retry 5xx for
            // minutes.
            InvalidState => row("INVALID_STATE", 400, Some("INVALID_PARAMETER_VALUE")),
            NotImplemented => row("NOT_IMPLEMENTED", 501, None),
            TemporarilyUnavailable => row(
                "TEMPORARILY_UNAVAILABLE",
                503,
                Some("CLIENT_INTERNAL_ERROR"),
            ),
        }
    }

    /// The wire name, e.g. `RESOURCE_DOES_NOT_EXIST`.
    pub fn as_str(self) -> &'static str {
        self.row().name
    }

    /// The HTTP status the server answers with.
    pub fn http_status(self) -> u16 {
        self.row().status
    }

    /// MLflow 3's `error_class` (with `sqlstate` derived from it), when it emits one.
    pub fn error_class(self) -> Option<&'static str> {
        self.row().class
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
    fn the_table_holds_mlflows_names_and_statuses() {
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
        let mut names: Vec<&str> = all.iter().map(|c| c.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len(), "each code has its own wire name");
        assert_eq!(ErrorCode::ResourceAlreadyExists.http_status(), 400);
        assert_eq!(ErrorCode::ResourceDoesNotExist.http_status(), 404);
        assert_eq!(ErrorCode::InternalError.sqlstate(), Some("XXM00"));
        assert_eq!(ErrorCode::InvalidParameterValue.sqlstate(), Some("KAM00"));
    }
}
