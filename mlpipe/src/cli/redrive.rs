//! `mlpipe redrive`: re-deliver the events of dead-letter records (`dead-letters/<stage>/`)
//! to the stage each failed in, once the cause is fixed.

use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Args;

use super::{Context, drain, exit, print_deliveries};

#[derive(Args)]
pub struct RedriveArgs {
    /// Only this stage's dead letters (ingest, features, train, publish, drift).
    #[arg(long)]
    stage: Option<String>,
    #[arg(long)]
    json: bool,
}

pub async fn run(ctx: &Context, args: RedriveArgs) -> Result<ExitCode> {
    let stage = match args.stage.as_deref() {
        Some(name) => Some(events::Stage::from_name(name).ok_or_else(|| {
            anyhow::anyhow!(
                "no stage '{name}' (one of: {})",
                events::Stage::ALL.map(|s| s.name()).join(", ")
            )
        })?),
        None => None,
    };
    let stack = ctx.stack().await?;
    let redriven = stack.redrive(stage).await?;
    // What the redelivered work raised, until quiet.
    let followed = drain(&stack, args.json).await;
    let ok = redriven
        .iter()
        .all(|r| r.delivery.as_ref().is_some_and(|d| d.ok))
        && followed.iter().all(|d| d.ok);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "redriven": redriven,
                "deliveries": followed,
            }))?
        );
        return Ok(exit(ok));
    }
    if redriven.is_empty() {
        println!(
            "no dead letters{}",
            stage.map_or(String::new(), |s| format!(" for {}", s.name()))
        );
        return Ok(ExitCode::SUCCESS);
    }
    for r in &redriven {
        match (&r.delivery, &r.note) {
            (Some(d), _) => println!(
                "{} {}: {} ({} attempt{})",
                d.stage.name(),
                r.trigger_key,
                if d.ok { "delivered" } else { "failed again" },
                d.attempts,
                if d.attempts == 1 { "" } else { "s" }
            ),
            (None, Some(note)) => println!("{}: {note}", r.record),
            (None, None) => {}
        }
    }
    print_deliveries(&followed);
    if !ok && redriven.iter().all(|r| r.delivery.is_none()) {
        bail!("nothing could be redelivered");
    }
    Ok(exit(ok))
}
