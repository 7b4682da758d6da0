//! Store logic written once for both databases, on [`crate::db::Conn`]. Each backend calls
//! these from its own transaction (writes) or connection (reads); a backend keeps its own
//! query only where a benchmark showed the need (hot paths: log-batch, metric history, run
//! search).

pub mod experiments;
pub mod gc;
pub mod models;
pub mod monitoring;
pub mod registry;
pub mod registry_history;
pub mod runs;
pub mod trace_metrics;
pub mod traces;
pub mod webhooks;
