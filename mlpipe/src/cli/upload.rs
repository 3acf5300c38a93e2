//! `mlpipe upload`: put one file under raw/ (a dataset's data) or batch-input/ (rows for the
//! batch stage to score) and run the pipeline on it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use mlpipe::pipeline;

use super::{Context, drain, exit, print_deliveries};

#[derive(Args)]
#[command(group = clap::ArgGroup::new("to").required(true).args(["dataset", "batch"]))]
pub struct UploadArgs {
    file: PathBuf,
    /// The dataset the file adds data to (raw/<dataset>/).
    #[arg(long)]
    dataset: Option<String>,
    /// Score the file's rows with this model's champion in the batch stage instead
    /// (batch-input/<model>/; predictions in batch-output/<model>/<file>/).
    #[arg(long, value_name = "MODEL")]
    batch: Option<String>,
    /// With --batch: score raw records point-in-time from the curated data
    /// (batch-input/<model>/point-in-time/).
    #[arg(long, requires = "batch")]
    point_in_time: bool,
    #[arg(long)]
    json: bool,
}

pub async fn run(ctx: &Context, args: UploadArgs) -> Result<ExitCode> {
    let UploadArgs {
        file,
        dataset,
        batch,
        point_in_time,
        json,
    } = args;
    if let Some(model) = &batch
        && (model.is_empty() || model.contains(['/', '@', ':']))
    {
        anyhow::bail!("--batch takes a model name (its champion scores the rows): got '{model}'");
    }
    let folder = match (dataset, batch) {
        (Some(dataset), _) => records::keys::raw(&dataset, ""),
        (None, Some(model)) if point_in_time => format!(
            "{}{model}/{}",
            records::keys::BATCH_INPUT,
            batch_predict::POINT_IN_TIME
        ),
        (None, Some(model)) => format!("{}{model}/", records::keys::BATCH_INPUT),
        (None, None) => anyhow::bail!("name --dataset or --batch"),
    };
    let stack = ctx.stack().await?;
    let uploaded = pipeline::upload_under(&stack, &folder, &file).await?;
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
