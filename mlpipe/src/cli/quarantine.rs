//! `mlpipe quarantine`: rejected rows and files with their most common reasons, and replay
//! of quarantined rows under the current contract.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use records::keys as zones;

use super::{Context, drain};

#[derive(Subcommand)]
pub enum QuarantineCommand {
    /// List quarantined versions, file errors and the most common reasons.
    List {
        dataset: String,
        #[arg(long)]
        json: bool,
    },
    /// Re-check quarantined rows under the current contract; admitted rows become new versions.
    Replay {
        dataset: String,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(ctx: &Context, command: QuarantineCommand) -> Result<ExitCode> {
    let stack = ctx.stack().await?;
    let store = stack.store().clone();
    match command {
        QuarantineCommand::List { dataset, json } => {
            let infos = store.list(&zones::quarantine_prefix(&dataset)).await?;
            let mut reasons: std::collections::BTreeMap<(String, String), u64> = Default::default();
            let mut errors = Vec::new();
            for info in &infos {
                if info.key.ends_with("/reasons.jsonl") {
                    let obj = store.get(&info.key).await?;
                    for line in obj.bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(line) {
                            let k = (
                                v["column"].as_str().unwrap_or("").to_string(),
                                v["rule"].as_str().unwrap_or("").to_string(),
                            );
                            *reasons.entry(k).or_default() += 1;
                        }
                    }
                } else if info.key.contains("/_errors/") {
                    let obj = store.get(&info.key).await?;
                    errors.push(
                        serde_json::from_slice::<serde_json::Value>(&obj.bytes).unwrap_or_default(),
                    );
                }
            }
            if json {
                let reasons: Vec<_> = reasons
                    .iter()
                    .map(|((c, r), n)| serde_json::json!({"column": c, "rule": r, "count": n}))
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({"objects": infos.iter().map(|i| &i.key).collect::<Vec<_>>(), "reasons": reasons, "file_errors": errors})
                );
                return Ok(ExitCode::SUCCESS);
            }
            for info in &infos {
                println!("{} ({} bytes)", info.key, info.size);
            }
            if !reasons.is_empty() {
                println!("\nbroken rules:");
                for ((column, rule), n) in &reasons {
                    println!("  {n:>8}  {column}: {rule}");
                }
            }
            for e in &errors {
                println!(
                    "\nfile {} refused ({}): {}",
                    e["source"].as_str().unwrap_or("?"),
                    e["rule"].as_str().unwrap_or("?"),
                    e["error"].as_str().unwrap_or("?")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        QuarantineCommand::Replay { dataset, json } => {
            let outcomes = ingest::replay::replay(stack.store(), &dataset).await?;
            let deliveries = drain(&stack, json).await;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"replays": outcomes, "deliveries": deliveries})
                );
            } else if outcomes.is_empty() {
                println!(
                    "nothing to replay: no quarantined rows under a contract other than the current one"
                );
            } else {
                for o in &outcomes {
                    println!(
                        "replay of {}: {} admitted{}, {} still rejected, {} already admitted before",
                        o.replay_of,
                        o.admitted,
                        o.version
                            .as_ref()
                            .map(|v| format!(" as version {v}"))
                            .unwrap_or_default(),
                        o.still_rejected,
                        o.skipped_already_admitted
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
