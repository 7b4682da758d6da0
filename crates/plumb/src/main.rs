//! The `plumb` binary: parses the command line, sets up logging, and dispatches; nothing else.

mod check;
mod cli;
mod client;
mod commands;
mod gc;
mod mlflow_db;
mod mlruns;
mod monitor_cmd;
mod output;
mod transfer;
mod wiring;

use std::process::ExitCode;

use clap::Parser;

/// Colour in the logs only on a terminal, and never with `NO_COLOR` set to anything
/// (no-color.org): a log file or a pipe gets plain text.
fn colour(terminal: bool) -> bool {
    terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // Logs go to stderr (stdout is the CLI verbs' output); verbs only say what went wrong.
    let default_level = match cli.command {
        cli::Command::Server(_) | cli::Command::Ui(_) => "info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PLUMB_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_target(false)
        .with_ansi(colour(std::io::IsTerminal::is_terminal(&std::io::stderr())))
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        cli::Command::Server(args) | cli::Command::Ui(args) => {
            runtime.block_on(wiring::run_server(args))
        }
        cli::Command::Experiments(cmd) => runtime.block_on(commands::experiments(cmd)),
        cli::Command::Runs(cmd) => runtime.block_on(commands::runs(cmd)),
        cli::Command::Models(cmd) => runtime.block_on(commands::models(cmd)),
        cli::Command::Db(cmd) => runtime.block_on(commands::db(cmd)),
        cli::Command::Gc(args) => runtime.block_on(gc::run(args)),
        cli::Command::Monitor(cmd) => runtime.block_on(monitor_cmd::monitor(cmd)),
        cli::Command::Alerts(cmd) => runtime.block_on(monitor_cmd::alerts(cmd)),
        cli::Command::Webhooks(cmd) => runtime.block_on(monitor_cmd::webhooks(cmd)),
        // Its own exit codes: 1 is "a metric failed", 2 "could not check".
        cli::Command::Check(args) => return runtime.block_on(check::run(args)),
        cli::Command::Export {
            dir,
            target,
            artifacts_destination,
        } => runtime.block_on(transfer::export(
            &dir,
            &target.tracking_uri,
            &artifacts_destination,
        )),
        cli::Command::Import {
            source,
            backend_store_uri,
            artifacts_destination,
            source_artifacts,
        } => runtime.block_on(transfer::import_from(
            &source,
            &backend_store_uri,
            &artifacts_destination,
            source_artifacts.as_deref(),
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
