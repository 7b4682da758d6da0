//! plumb-core: the tracking domain (entities, validation, search DSL, error codes); no IO, no async.

pub mod entities;
pub mod error;
pub mod registry;
pub mod search;
pub mod validation;

pub use error::{Error, ErrorCode, Result};

/// Milliseconds since the Unix epoch, the unit of every MLflow timestamp.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
