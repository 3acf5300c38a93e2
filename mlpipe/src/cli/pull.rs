//! `mlpipe pull`: fetch the project's HTTP pull sources into raw/ and run the pipeline on
//! what is new.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use super::{Context, drain, exit, load_project, print_deliveries};

#[derive(Args)]
pub struct PullArgs {
    #[arg(long)]
    project: Option<PathBuf>,
}

pub async fn run(ctx: &Context, args: PullArgs) -> Result<ExitCode> {
    let project = load_project(args.project)?;
    let stack = ctx.stack().await?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()?;
    let mut failed = false;
    for (name, entry) in &project.project.datasets {
        for source in &entry.pull {
            match ingest::pull::pull(&client, stack.store(), name, source).await {
                Ok(p) => println!(
                    "{}: {} -> {} ({} bytes{})",
                    name,
                    p.url,
                    p.key,
                    p.bytes,
                    if p.new { "" } else { ", unchanged" }
                ),
                Err(e) => {
                    failed = true;
                    eprintln!("{name}: {e}");
                }
            }
        }
    }
    let deliveries = drain(&stack, false).await;
    print_deliveries(&deliveries);
    Ok(exit(!failed && deliveries.iter().all(|d| d.ok)))
}
