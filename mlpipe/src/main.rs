//! `mlpipe`: run the pipeline on a project, inspect and operate a store.

mod cli;

use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use telemetry::sdk::Telemetry;

use cli::{Cli, Command, Context};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    // Logs on stderr; traces and metrics over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set;
    // `mlpipe serve` also keeps the Prometheus text it serves at /metrics.
    let telemetry = telemetry::sdk::init(telemetry::sdk::Options {
        prometheus: matches!(cli.command, Command::Serve(_)),
        ..telemetry::sdk::Options::new(
            "mlpipe",
            telemetry::sdk::Logs::Stderr {
                default_level: "warn",
            },
        )
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = match runtime.block_on(dispatch(cli, telemetry.clone())) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    };
    telemetry.shutdown();
    code
}

/// Routes each command to its module; `serve` gets the telemetry for its `/metrics`.
async fn dispatch(cli: Cli, telemetry: Telemetry) -> Result<ExitCode> {
    let Cli {
        store,
        online,
        command,
    } = cli;
    let ctx = Context { store, online };
    match command {
        Command::Serve(args) => cli::serve::run(&ctx, args, telemetry).await,
        Command::Publish(args) => cli::publish::run(&ctx, args).await,
        Command::Run(args) => cli::run::run(&ctx, args).await,
        Command::Push(args) => cli::push::run(&ctx, args).await,
        Command::Upload(args) => cli::upload::run(&ctx, args).await,
        Command::Data { command } => cli::data::run(&ctx, command).await,
        Command::Features { command } => cli::features::run(&ctx, command).await,
        Command::Train(args) => cli::train::run(&ctx, args).await,
        Command::Drift { command } => cli::drift::run(&ctx, command).await,
        Command::Keys { command } => cli::keys::run(&ctx, command).await,
        Command::Models { command } => cli::models::run(&ctx, command).await,
        Command::Runs { command } => cli::runs::run(&ctx, command).await,
        Command::Quarantine { command } => cli::quarantine::run(&ctx, command).await,
        Command::Redrive(args) => cli::redrive::run(&ctx, args).await,
        Command::Status(args) => cli::status::run(&ctx, args).await,
        Command::Worker(args) => cli::worker::run(&ctx, args).await,
        Command::Pull(args) => cli::pull::run(&ctx, args).await,
        Command::Sample(args) => cli::sample::run(args),
        Command::Routes(args) => cli::routes::run(args),
        Command::Predict(args) => cli::predict::run(&ctx, args).await,
    }
}
