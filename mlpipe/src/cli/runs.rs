//! `mlpipe runs`: training runs with their parameters, trials, metrics and artifacts.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use mlpipe::train_ops;

use super::Context;

#[derive(Subcommand)]
pub enum RunsCommand {
    /// Every training run, oldest first.
    List {
        #[arg(long)]
        json: bool,
    },
    /// One run (id or unique prefix) with its trials and their metrics per rung.
    Show {
        run: String,
        #[arg(long)]
        json: bool,
    },
    /// Parameters and test metrics of runs side by side.
    Compare {
        runs: Vec<String>,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(ctx: &Context, command: RunsCommand) -> Result<ExitCode> {
    let store = ctx.open()?;
    match command {
        RunsCommand::List { json } => {
            let runs = train_ops::runs(&store).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&runs)?);
            } else if runs.is_empty() {
                println!("no training runs yet");
            } else {
                for r in runs {
                    let metric = r.metric.clone().unwrap_or_default();
                    println!(
                        "{} {} {} on {} v={}: {} trials, test {} {}, {}",
                        r.started_at,
                        r.run_id,
                        r.status,
                        r.view,
                        r.feature_version,
                        r.trials,
                        metric,
                        r.test_metrics
                            .get(&metric)
                            .map_or("-".into(), |v| format!("{v:.4}")),
                        r.registration
                            .as_ref()
                            .map_or("not registered".into(), |g| format!(
                                "v{}{}",
                                g.version,
                                if g.promoted { " (promoted)" } else { "" }
                            ))
                    );
                }
            }
        }
        RunsCommand::Show { run, json } => {
            let v = train_ops::run_detail(&store, &run).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                let r = &v["run"];
                println!(
                    "run {} ({}), model {}, view {} v={}",
                    r["run_id"].as_str().unwrap_or("?"),
                    r["status"].as_str().unwrap_or("?"),
                    r["model"].as_str().unwrap_or("?"),
                    r["view"].as_str().unwrap_or("?"),
                    r["feature_version"].as_str().unwrap_or("?")
                );
                println!(
                    "  snapshot {}, config {}, code {}",
                    r["dataset_snapshot"].as_str().unwrap_or("?"),
                    r["config_hash"].as_str().unwrap_or("?"),
                    r["code_version"].as_str().unwrap_or("?")
                );
                if let Ok(selection) =
                    serde_json::from_value::<train::search::Selection>(r["selection"].clone())
                {
                    println!("  selection: {}", selection.describe());
                }
                println!("  params {}", r["params"]);
                println!("  test {}", r["test_metrics"]);
                if let Some(e) = r["error"].as_str() {
                    println!("  error: {e}");
                }
                for t in v["trials"].as_array().cloned().unwrap_or_default() {
                    let steps: Vec<String> = t["rungs"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .iter()
                        .map(|g| {
                            format!(
                                "{:.0}%: {}",
                                g["resource"].as_f64().unwrap_or(0.0) * 100.0,
                                g["metric"]
                                    .as_f64()
                                    .map_or("n/a".into(), |m| format!("{m:.4}"))
                            )
                        })
                        .collect();
                    println!(
                        "  trial {} {}: {}",
                        t["id"],
                        t["params"]["family"].as_str().unwrap_or("?"),
                        steps.join(", ")
                    );
                }
            }
        }
        RunsCommand::Compare { runs, json } => {
            let v = train_ops::compare(&store, &runs).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                train_ops::print_compare(&v);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
