//! `mlpipe upload`: put one file under raw/ and run the pipeline on it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use mlpipe::pipeline;

use super::{Context, drain, exit, print_deliveries};

#[derive(Args)]
pub struct UploadArgs {
    file: PathBuf,
    #[arg(long)]
    dataset: String,
    #[arg(long)]
    json: bool,
}

pub async fn run(ctx: &Context, args: UploadArgs) -> Result<ExitCode> {
    let UploadArgs {
        file,
        dataset,
        json,
    } = args;
    let stack = ctx.stack().await?;
    let uploaded = pipeline::upload(&stack, &dataset, &file).await?;
    let deliveries = drain(&stack, json).await;
    let ok = deliveries.iter().all(|d| d.ok);
    if json {
        println!(
            "{}",
            serde_json::json!({"upload": uploaded, "deliveries": deliveries, "ok": ok})
        );
    } else {
        println!(
            "uploaded {} ({} bytes{})",
            uploaded.key,
            uploaded.bytes,
            if uploaded.new {
                ""
            } else {
                ", already present"
            }
        );
        print_deliveries(&deliveries);
    }
    Ok(exit(ok))
}
