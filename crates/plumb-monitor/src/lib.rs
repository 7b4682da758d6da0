//! Production monitoring: monitor specs (`spec`, read from JSON or a YAML file), the metric
//! names rules watch (`metric`), event batches (`events`), per-minute rollups with DDSketch
//! quantiles (`rollup`), MLflow's `MetricThreshold` rules (`threshold`), the Prometheus-like
//! alert state machine (`rules`) and the background folding and evaluation (`engine`) over
//! any store.

pub mod engine;
pub mod events;
pub mod metric;
pub mod rollup;
pub mod rules;
pub mod spec;
pub mod threshold;
mod yaml;
