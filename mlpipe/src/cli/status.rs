//! `mlpipe status`: per dataset and stage, the latest version, the last run and its outcome,
//! and recent failures.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use mlpipe::pipeline;
use records::pipeline::RunOutcome;

use super::Context;

#[derive(Args)]
pub struct StatusArgs {
    #[arg(long)]
    json: bool,
}

pub async fn run(ctx: &Context, args: StatusArgs) -> Result<ExitCode> {
    let json = args.json;
    let store = ctx.open()?;
    let mut rows = Vec::new();
    let views = pipeline::view_runs(&store).await?;
    for dataset in pipeline::datasets(&store).await? {
        let state = pipeline::dataset_state(&store, &dataset).await?;
        let runs = pipeline::recent_runs(&store, "ingest", &dataset, 50).await?;
        let failures: Vec<_> = runs
            .iter()
            .filter(|r| matches!(r.outcome, RunOutcome::Failed | RunOutcome::Rejected))
            .take(5)
            .cloned()
            .collect();
        rows.push(serde_json::json!({
            "dataset": dataset,
            "stage": "ingest",
            "latest_version": state.versions.last().map(|v| v.version.clone()),
            "versions": state.versions.len(),
            "snapshot": state.latest_snapshot.as_ref().map(|s| s.hash.clone()),
            "last_run": runs.first(),
            "recent_failures": failures,
        }));
        let mine: Vec<&pipeline::ViewRun> = views.iter().filter(|v| v.dataset == dataset).collect();
        let runs = pipeline::recent_runs(&store, "features", &dataset, 50).await?;
        if mine.is_empty() && runs.is_empty() {
            continue;
        }
        let failures: Vec<_> = runs
            .iter()
            .filter(|r| matches!(r.outcome, RunOutcome::Failed | RunOutcome::Rejected))
            .take(5)
            .cloned()
            .collect();
        rows.push(serde_json::json!({
            "dataset": dataset,
            "stage": "features",
            "latest_version": mine
                .iter()
                .map(|v| format!("{}@{}", v.view, v.version.as_deref().unwrap_or("-")))
                .collect::<Vec<_>>()
                .join(", "),
            "versions": mine.iter().filter(|v| v.version.is_some()).count(),
            "snapshot": state.latest_snapshot.as_ref().map(|s| s.hash.clone()),
            "last_run": runs.first(),
            "recent_failures": failures,
        }));
        // Training runs are recorded per feature view.
        for view in &mine {
            let runs = pipeline::recent_runs(&store, "train", &view.view, 50).await?;
            if runs.is_empty() {
                continue;
            }
            let failures: Vec<_> = runs
                .iter()
                .filter(|r| matches!(r.outcome, RunOutcome::Failed | RunOutcome::Rejected))
                .take(5)
                .cloned()
                .collect();
            let latest = runs.iter().find_map(|r| r.version.clone());
            rows.push(serde_json::json!({
                "dataset": dataset,
                "stage": "train",
                "latest_version": latest,
                "versions": runs.iter().filter(|r| r.outcome == RunOutcome::Committed).count(),
                "snapshot": state.latest_snapshot.as_ref().map(|s| s.hash.clone()),
                "last_run": runs.first(),
                "recent_failures": failures,
            }));
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        println!("no datasets in {} (run `mlpipe run` first)", store.url());
    }
    for r in &rows {
        println!(
            "{} / {}: latest version {} ({} versions), snapshot {}",
            r["dataset"].as_str().unwrap_or("?"),
            r["stage"].as_str().unwrap_or("?"),
            r["latest_version"].as_str().unwrap_or("-"),
            r["versions"],
            r["snapshot"].as_str().unwrap_or("-")
        );
        if let Some(last) = r["last_run"].as_object() {
            println!(
                "  last run {} on {}: {}",
                last["started_at"].as_str().unwrap_or("?"),
                last["trigger_key"].as_str().unwrap_or("?"),
                last["outcome"].as_str().unwrap_or("?")
            );
        }
        for f in r["recent_failures"].as_array().into_iter().flatten() {
            println!(
                "  {} {} {}: {}",
                f["outcome"].as_str().unwrap_or("?"),
                f["started_at"].as_str().unwrap_or("?"),
                f["trigger_key"].as_str().unwrap_or("?"),
                f["message"].as_str().unwrap_or("")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
