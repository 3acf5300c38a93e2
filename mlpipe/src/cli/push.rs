//! `mlpipe push`: publish a project's definitions (project file, contracts) to the store.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use mlpipe::pipeline;

use super::{Context, load_project};

#[derive(Args)]
pub struct PushArgs {
    #[arg(long)]
    project: Option<PathBuf>,
}

pub async fn run(ctx: &Context, args: PushArgs) -> Result<ExitCode> {
    let project = load_project(args.project)?;
    for (name, published) in pipeline::push_project(&ctx.open()?, &project).await? {
        let p = published.pointer();
        println!(
            "{name}: contract {} (lineage {}, {})",
            p.hash,
            p.lineage,
            if matches!(published, ingest::definitions::Published::Unchanged(_)) {
                "unchanged"
            } else {
                &p.change
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}
