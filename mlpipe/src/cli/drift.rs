//! `mlpipe drift`: check served models' prediction logs against their reference profiles,
//! and show the reports (writing each one's HTML page).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::Subcommand;

use super::Context;

#[derive(Subcommand)]
pub enum DriftCommand {
    /// Check every complete window not reported yet (the stage's scheduled run), writing
    /// `drift/<model>/<run>/report.{json,html}` and, when drift holds for the configured
    /// number of windows, a retrain request.
    Check {
        /// Only this model (default: every model with a champion).
        #[arg(long)]
        model: Option<String>,
        /// Prediction logs store when not the pipeline's (e.g. R2's S3 URL); a model's
        /// `[drift] logs` setting wins.
        #[arg(long, env = "MLPIPE_LOGS_STORE", hide_env_values = true)]
        logs: Option<String>,
        /// Check as of this time (RFC 3339; default now).
        #[arg(long)]
        at: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show a report (default: the newest of each model) and write its HTML page to a file.
    Report {
        #[arg(long)]
        model: Option<String>,
        /// The window's run name (`w=...`); default the newest.
        #[arg(long)]
        run: Option<String>,
        /// Where to write the HTML page (default: drift-<model>-<run>.html here).
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(ctx: &Context, command: DriftCommand) -> Result<ExitCode> {
    let store = ctx.open()?;
    match command {
        DriftCommand::Check {
            model,
            logs,
            at,
            json,
        } => {
            let at_us = match at {
                Some(t) => chrono::DateTime::parse_from_rfc3339(&t)
                    .with_context(|| format!("--at {t} is not an RFC 3339 time"))?
                    .timestamp_micros(),
                None => chrono::Utc::now().timestamp_micros(),
            };
            let runs =
                mlpipe::drift_ops::check(&store, logs.as_deref(), model.as_deref(), at_us).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&runs)?);
                return Ok(ExitCode::SUCCESS);
            }
            if runs.is_empty() {
                println!("no models with a champion in {}", store.url());
            }
            for r in &runs {
                if let Some(note) = &r.note {
                    println!("{}: {note}", r.model);
                }
                if r.checked.is_empty() && r.note.is_none() {
                    println!("{}: every complete window is already reported", r.model);
                }
                for w in &r.checked {
                    println!(
                        "{} {}: {} rows, {}{} -> {}",
                        r.model,
                        w.run,
                        w.rows,
                        if w.judged {
                            format!(
                                "{} of {} features drifted",
                                w.features_drifted, w.features_tested
                            )
                        } else {
                            "not judged (too few rows)".to_string()
                        },
                        if w.dataset_drift {
                            ", DATASET DRIFT"
                        } else {
                            ""
                        },
                        w.report
                    );
                }
                for p in r.performance.iter().filter(|p| p.updated) {
                    println!(
                        "{} {}: live {} {} on {} labelled predictions (test {}){}",
                        r.model,
                        p.run,
                        p.metric,
                        p.value.map_or("undefined".into(), |v| format!("{v:.4}")),
                        p.labelled,
                        p.test_value.map_or("-".into(), |v| format!("{v:.4}")),
                        if p.degraded { ", DEGRADED" } else { "" }
                    );
                }
                if let Some(k) = &r.retrain_request {
                    println!("{}: the rule held; retrain requested ({k})", r.model);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        DriftCommand::Report {
            model,
            run,
            out,
            json,
        } => {
            let reports =
                mlpipe::drift_ops::reports(&store, model.as_deref(), run.as_deref()).await?;
            if reports.is_empty() {
                bail!(
                    "no drift reports in {} (run `mlpipe drift check` first)",
                    store.url()
                );
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&reports)?);
            }
            for r in &reports {
                let path = match (&out, reports.len()) {
                    (Some(p), 1) => p.clone(),
                    (Some(p), _) => p.join(format!(
                        "drift-{}-{}.html",
                        r.model,
                        r.run.trim_start_matches("w=")
                    )),
                    (None, _) => PathBuf::from(format!(
                        "drift-{}-{}.html",
                        r.model,
                        r.run.trim_start_matches("w=")
                    )),
                };
                // `::drift`: the drift stage's crate, not this module.
                std::fs::write(&path, ::drift::html::render(r))
                    .with_context(|| format!("writing {}", path.display()))?;
                if json {
                    continue;
                }
                let v = &r.verdict;
                println!(
                    "{} version {} window {} ({}): {} rows, {} of {} features drifted{}",
                    r.model,
                    r.version,
                    r.run,
                    r.window,
                    v.rows,
                    v.features_drifted,
                    v.features_tested,
                    if v.dataset_drift {
                        ": DATASET DRIFT"
                    } else {
                        ""
                    }
                );
                println!(
                    "  {:<28} {:<12} {:<14} {:>10} {:>10}  drift",
                    "FEATURE", "KIND", "TEST", "SCORE", "THRESHOLD"
                );
                for f in &r.features {
                    println!(
                        "  {:<28} {:<12} {:<14} {:>10} {:>10}  {}",
                        f.feature,
                        f.kind,
                        format!("{:?}", f.test).to_lowercase(),
                        f.score.map_or("-".to_string(), |x| format!("{x:.4}")),
                        f.threshold,
                        if f.ignored {
                            "not tested"
                        } else if f.drifted {
                            "DRIFT"
                        } else {
                            "ok"
                        }
                    );
                }
                println!("  page: {}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
