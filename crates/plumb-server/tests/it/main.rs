//! HTTP integration tests of plumb-server: one binary, a real server on 127.0.0.1:0 per test.

mod artifacts;
mod errors;
mod fuzz;
mod hostile;
mod monitoring;
mod support;
mod telemetry;
mod traces;
mod tracking;
mod ui;
mod webhooks;
