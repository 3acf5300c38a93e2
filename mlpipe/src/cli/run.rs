//! `mlpipe run`: the whole pipeline for a project on the local stack (definitions, sample
//! uploads, every event until quiet, a holdout drift check), and its summary.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use mlpipe::pipeline::{self, DatasetRun, RunSummary};

use super::{Context, drain, exit, load_project, print_deliveries};

#[derive(Args)]
pub struct RunArgs {
    /// Project folder (default: the shipped sample, examples/fraud).
    #[arg(long)]
    project: Option<PathBuf>,
    /// Print one JSON object instead of the human summary.
    #[arg(long)]
    json: bool,
}

pub async fn run(ctx: &Context, args: RunArgs) -> Result<ExitCode> {
    let RunArgs { project, json } = args;
    let stack = ctx.stack().await?;
    let started = Instant::now();
    let project = load_project(project)?;
    let store = stack.store().clone();
    let published = pipeline::push_project(stack.store(), &project).await?;
    let mut uploads: Vec<(String, Vec<pipeline::Uploaded>)> = Vec::new();
    for (name, entry) in &project.project.datasets {
        let mut list = Vec::new();
        for sample in &entry.samples {
            list.push(pipeline::upload(&stack, name, &project.root.join(sample)).await?);
        }
        uploads.push((name.clone(), list));
    }
    let deliveries = drain(&stack, json).await;
    let mut datasets = Vec::new();
    for (name, list) in uploads {
        let state = pipeline::dataset_state(&store, &name).await?;
        let pointer = published
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| p.pointer().clone());
        datasets.push(DatasetRun {
            contract: pointer
                .as_ref()
                .map(|p| format!("{} (lineage {})", p.hash, p.lineage))
                .unwrap_or_default(),
            contract_change: pointer.map(|p| p.change).unwrap_or_default(),
            uploads: list,
            versions: state.versions.len(),
            snapshot: state.latest_snapshot.map(|s| s.hash),
            rows_valid: state.rows_valid,
            rows_quarantined: state.rows_quarantined,
            dataset: name,
        });
    }
    let ok = deliveries.iter().all(|d| d.ok);
    let feature_views = pipeline::view_runs(&store).await?;
    let training: Vec<serde_json::Value> = deliveries
        .iter()
        .filter(|d| d.stage == events::Stage::Train && d.ok)
        .flat_map(|d| d.result.as_array().cloned().unwrap_or_default())
        .collect();
    // The run ends with a drift check of each champion's held-out test split.
    let drift = mlpipe::drift_ops::holdout(&store).await?;
    let summary = RunSummary {
        project: project.project.name.clone(),
        store: store.url().to_string(),
        datasets,
        feature_views,
        training,
        drift,
        deliveries,
        ok,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!("project {} on {}", summary.project, summary.store);
        print_deliveries(&summary.deliveries);
        for d in &summary.datasets {
            println!(
                "dataset {}: {} version(s), snapshot {}, {} valid rows, {} quarantined (contract {})",
                d.dataset,
                d.versions,
                d.snapshot.as_deref().unwrap_or("-"),
                d.rows_valid,
                d.rows_quarantined,
                d.contract
            );
        }
        for v in &summary.feature_views {
            println!(
                "feature view {} ({}): version {}, {} rows ({} train / {} validation / {} test), {} features, {} entities online{}",
                v.view,
                v.dataset,
                v.version.as_deref().unwrap_or("-"),
                v.rows,
                v.train,
                v.validation,
                v.test,
                v.features.len(),
                v.entities,
                v.online
                    .as_deref()
                    .map(|o| format!(" in {o}"))
                    .unwrap_or_default()
            );
        }
        for t in &summary.training {
            println!("{}", mlpipe::train_ops::describe_outcome(t));
        }
        for d in &summary.drift {
            println!(
                "drift check of {} v{} on its held-out test split: {} rows, {} of {} features drifted{} ({})",
                d.model,
                d.version,
                d.rows,
                d.features_drifted,
                d.features_tested,
                if d.dataset_drift {
                    ", DATASET DRIFT"
                } else {
                    ""
                },
                d.report
            );
        }
        println!(
            "{} in {:.1}s",
            if ok {
                "pipeline quiet"
            } else {
                "pipeline quiet, with failures"
            },
            started.elapsed().as_secs_f64()
        );
        println!(
            "next: `mlpipe data versions <dataset>`, `mlpipe features list`, `mlpipe models list`, `mlpipe runs list`, `mlpipe status`"
        );
    }
    Ok(exit(ok))
}
