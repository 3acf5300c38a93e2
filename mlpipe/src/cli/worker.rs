//! `mlpipe worker`: consume S3 event notifications from an SQS queue and run the stages they
//! route to.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use mlpipe::sqs;

use super::{Context, print_deliveries, stack_settings};

#[derive(Args)]
pub struct WorkerArgs {
    /// Queue URL, e.g. https://sqs.eu-west-1.amazonaws.com/123456789012/mlpipe-events.
    #[arg(long)]
    queue: String,
    /// Exit after this many seconds without a message (default: run forever).
    #[arg(long)]
    idle_exit: Option<u64>,
}

pub async fn run(ctx: &Context, args: WorkerArgs) -> Result<ExitCode> {
    let WorkerArgs { queue, idle_exit } = args;
    let queue_client = sqs::Queue::new(&queue)?;
    eprintln!("worker: consuming {queue} into {}", ctx.store);
    let store = ctx.open()?;
    let settings = stack_settings(&store, ctx.online.as_deref()).await?;
    let stats = mlpipe::worker::run(
        &store,
        &queue_client,
        idle_exit.map(Duration::from_secs),
        settings,
        |d| print_deliveries(std::slice::from_ref(d)),
    )
    .await?;
    eprintln!(
        "worker: {} message(s), {} delivery(ies), {} failed",
        stats.messages, stats.deliveries, stats.failed
    );
    Ok(ExitCode::SUCCESS)
}
