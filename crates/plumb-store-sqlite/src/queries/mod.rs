//! Synchronous SQL for each entity, run on the writer thread or a pooled reader.

pub(crate) mod experiments;
pub(crate) mod metrics;
pub(crate) mod models;
pub(crate) mod registry;
pub(crate) mod runs;
