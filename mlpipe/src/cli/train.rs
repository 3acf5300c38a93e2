//! `mlpipe train`: train every model of a project now, on the newest feature version of its
//! view (or the one built from a given snapshot).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use indicatif::ProgressBar;
use mlpipe::pipeline;

use super::{Context, load_project};

#[derive(Args)]
pub struct TrainArgs {
    #[arg(long)]
    project: Option<PathBuf>,
    /// Dataset snapshot hash (or prefix) whose feature version to train on.
    #[arg(long)]
    snapshot: Option<String>,
    #[arg(long)]
    json: bool,
}

// `::train` below is the training crate, not this module.
pub async fn run(ctx: &Context, args: TrainArgs) -> Result<ExitCode> {
    let TrainArgs {
        project,
        snapshot,
        json,
    } = args;
    let stack = ctx.stack().await?;
    let project = load_project(project)?;
    pipeline::push_project(stack.store(), &project).await?;
    if project.training_files.is_empty() {
        bail!(
            "project '{}' lists no training files (`training = [...]` in mlpipe.toml)",
            project.project.name
        );
    }
    let job = ::train::job::JobConfig::from_env()?;
    let mut results = Vec::new();
    for (path, text) in &project.training_files {
        let cfg = ::train::TrainingConfig::from_toml(text, &path.display().to_string())?;
        let spinner = if json || !std::io::stderr().is_terminal() {
            ProgressBar::hidden()
        } else {
            let b = ProgressBar::new_spinner();
            b.set_message(format!("training {}", cfg.model));
            b.enable_steady_tick(Duration::from_millis(120));
            b
        };
        let request = ::train::job::RetrainRequest {
            model: cfg.model.clone(),
            snapshot: snapshot.clone(),
            reason: Some("mlpipe train".into()),
        };
        let outcome = ::train::job::retrain(stack.store(), &request, "cli:mlpipe-train", &job)
            .await
            .with_context(|| format!("training '{}'", cfg.model))?;
        spinner.finish_and_clear();
        results.push(serde_json::to_value(outcome)?);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        for r in &results {
            println!("{}", mlpipe::train_ops::describe_outcome(r));
        }
    }
    Ok(ExitCode::SUCCESS)
}
