//! `mlpipe models`: the model registry's versions and aliases with their history, promotion
//! and rollback, and models imported from other tools.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use mlpipe::train_ops;

use super::Context;

#[derive(Subcommand)]
pub enum ModelsCommand {
    /// Every model with its version count, champion and challenger.
    List {
        #[arg(long)]
        json: bool,
    },
    /// A version's bundle (default: the champion) with every alias's history.
    Show {
        name: String,
        #[arg(long)]
        version: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    /// Make VERSION the champion (recorded in the alias history).
    Promote {
        name: String,
        version: u64,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Move the champion back to the version it replaced.
    Rollback { name: String },
    /// Register an ONNX model exported by another tool (skl2onnx, onnxmltools, a PyTorch or
    /// TensorFlow float graph) as NAME's next version, with a bundle generated from the
    /// graph: its inputs (name, type, width), the served output (class probabilities, a
    /// ZipMap rewritten to the tensor feeding it, or the regression value), the task and
    /// classes (inferred, or from the flags). Checked in tract before it is registered; an
    /// operator tract cannot run is named. Served over /v2 (it has no feature view for /v1).
    Import {
        name: String,
        /// The .onnx file.
        #[arg(long)]
        onnx: std::path::PathBuf,
        /// binary, multiclass, classification or regression (default: inferred).
        #[arg(long)]
        task: Option<String>,
        /// Class labels in the model's output order, comma-separated (default: from the
        /// graph).
        #[arg(long, value_delimiter = ',')]
        classes: Option<Vec<String>>,
        /// Decision threshold on the positive class's probability (binary; default 0.5).
        #[arg(long)]
        threshold: Option<f64>,
        /// Make the imported version the champion.
        #[arg(long)]
        promote: bool,
        #[arg(long)]
        json: bool,
    },
    /// Send a share of live traffic to the challenger (the version the `challenger` alias
    /// holds now), chosen by a hash of the request's entity key (or request id): `--share 0`
    /// ends it. Run `mlpipe publish` (or let the publish stage) to reach the edge.
    Canary {
        name: String,
        /// Share of requests the challenger answers, 0 to 1.
        #[arg(long)]
        share: f64,
    },
    /// Score every request with the challenger too, logging its prediction beside the
    /// champion's and returning only the champion's; `--off` stops it.
    Shadow {
        name: String,
        #[arg(long)]
        off: bool,
    },
}

/// One line saying what a traffic policy does.
fn describe_traffic(t: &registry::Traffic) -> String {
    let challenger = t.challenger.map_or("-".into(), |v| format!("v{v}"));
    match (t.canary_share > 0.0, t.shadow) {
        (false, false) => "no canary, no shadow: the champion answers every request".into(),
        (true, false) => format!(
            "canary: challenger {challenger} answers {:.1}% of requests",
            t.canary_share * 100.0
        ),
        (false, true) => format!("shadow: challenger {challenger} scores every request in shadow"),
        (true, true) => format!(
            "canary: challenger {challenger} answers {:.1}% of requests and scores the rest in shadow",
            t.canary_share * 100.0
        ),
    }
}

/// One arm of a live-performance window: `v3 roc_auc 0.9120 on 120 labels`.
fn live_arm(version: &serde_json::Value, metric: &str, arm: &serde_json::Value) -> String {
    format!(
        "v{} {metric} {} on {} of {} predictions labelled",
        version,
        arm["value"]
            .as_f64()
            .map_or("-".into(), |v| format!("{v:.4}")),
        arm["labelled"],
        arm["predictions"]
    )
}

pub async fn run(ctx: &Context, command: ModelsCommand) -> Result<ExitCode> {
    let store = ctx.open()?;
    match command {
        ModelsCommand::List { json } => {
            let rows = train_ops::models(&store).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else if rows.is_empty() {
                println!("no models yet (run `mlpipe run` or `mlpipe train`)");
            } else {
                for r in rows {
                    println!(
                        "{}: {} version(s), champion {}, challenger {}{}",
                        r.model,
                        r.versions,
                        r.champion.map_or("-".into(), |v| format!("v{v}")),
                        r.challenger.map_or("-".into(), |v| format!("v{v}")),
                        match (&r.metric, r.champion_metric) {
                            (Some(m), Some(v)) => format!(", champion test {m} {v:.4}"),
                            _ => String::new(),
                        }
                    );
                }
            }
        }
        ModelsCommand::Show {
            name,
            version,
            json,
        } => {
            let v = train_ops::show(&store, &name, version).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                let b = &v["bundle"];
                println!(
                    "{} v{} ({}, {}), created {}",
                    name,
                    b["version"],
                    b["family"].as_str().unwrap_or("?"),
                    b["task"].as_str().unwrap_or("?"),
                    b["created_at"].as_str().unwrap_or("?")
                );
                println!(
                    "  feature view {} version {}, snapshot {}, run {}",
                    b["feature_view"].as_str().unwrap_or("?"),
                    b["feature_view_version"].as_str().unwrap_or("?"),
                    b["dataset_snapshot"].as_str().unwrap_or("?"),
                    b["training_run"].as_str().unwrap_or("?")
                );
                println!(
                    "  model {} (sha256 {})",
                    b["model_key"].as_str().unwrap_or("?"),
                    b["content_hash"].as_str().unwrap_or("?")
                );
                if let Some(t) = b["threshold"].as_f64() {
                    println!("  threshold {t:.4}");
                }
                if let Some(m) = b["metrics"].as_object() {
                    let line: Vec<String> = m
                        .iter()
                        .map(|(k, v)| {
                            format!(
                                "{k} {}",
                                v.as_f64().map_or(v.to_string(), |x| format!("{x:.4}"))
                            )
                        })
                        .collect();
                    println!("  test: {}", line.join(", "));
                }
                println!(
                    "  traffic: {}",
                    describe_traffic(&serde_json::from_value(v["traffic"].clone())?)
                );
                for w in v["live"].as_array().cloned().unwrap_or_default() {
                    let metric = w["metric"].as_str().unwrap_or("?");
                    let mut line = format!(
                        "  live {}: champion {}",
                        w["run"].as_str().unwrap_or("?"),
                        live_arm(&w["version"], metric, &w)
                    );
                    if let Some(c) = w.get("challenger").filter(|c| !c.is_null()) {
                        line.push_str(&format!(
                            "; challenger {}",
                            live_arm(&c["version"], metric, c)
                        ));
                    }
                    println!("{line}");
                }
                for alias in ["champion", "challenger"] {
                    for h in v["history"][alias].as_array().cloned().unwrap_or_default() {
                        println!(
                            "  {alias} #{}: v{} (was {}) at {} by {}: {}",
                            h["seq"],
                            h["version"],
                            h["previous"]
                                .as_u64()
                                .map_or("-".into(), |p| format!("v{p}")),
                            h["moved_at"].as_str().unwrap_or("?"),
                            h["by"].as_str().unwrap_or("?"),
                            h["reason"].as_str().unwrap_or("")
                        );
                    }
                }
            }
        }
        ModelsCommand::Import {
            name,
            onnx,
            task,
            classes,
            threshold,
            promote,
            json,
        } => {
            let bytes = std::fs::read(&onnx)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", onnx.display()))?;
            let file = onnx.display().to_string();
            let opts = onnx_import::Options {
                task,
                classes,
                threshold,
                family: None,
            };
            let by = format!("cli:{}", train_ops::user());
            let imported = onnx_import::import(
                &store,
                &name,
                &file,
                &bytes,
                &opts,
                promote.then_some(by.as_str()),
            )
            .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&imported)?);
            } else {
                println!(
                    "{name}: {} v{} ({}{}), serving output '{}'{}",
                    if imported.new {
                        "imported as"
                    } else {
                        "already registered as"
                    },
                    imported.version,
                    imported.task,
                    if imported.classes.is_empty() {
                        String::new()
                    } else {
                        format!(", classes {}", imported.classes.join(", "))
                    },
                    imported.output,
                    if imported.promoted {
                        "; now the champion"
                    } else {
                        ""
                    }
                );
                for i in &imported.inputs {
                    println!("  input {} {} [N, {}]", i.name, i.ty, i.width.unwrap_or(1));
                }
                for r in &imported.rewrites {
                    println!("  {r}");
                }
            }
        }
        ModelsCommand::Promote {
            name,
            version,
            reason,
        } => {
            let a = train_ops::promote(&store, &name, version, reason).await?;
            println!(
                "{name}: champion is now v{} (was {})",
                a.version,
                a.previous.map_or("-".into(), |p| format!("v{p}"))
            );
        }
        ModelsCommand::Canary { name, share } => {
            let t = train_ops::canary(&store, &name, share).await?;
            println!("{name}: {} (policy #{})", describe_traffic(&t), t.seq);
        }
        ModelsCommand::Shadow { name, off } => {
            let t = train_ops::shadow(&store, &name, !off).await?;
            println!("{name}: {} (policy #{})", describe_traffic(&t), t.seq);
        }
        ModelsCommand::Rollback { name } => {
            let a = train_ops::rollback(&store, &name).await?;
            println!(
                "{name}: champion rolled back to v{} (from {})",
                a.version,
                a.previous.map_or("-".into(), |p| format!("v{p}"))
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
