//! `mlpipe routes`: print the routing table (stages, triggers, read/write prefixes).

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

#[derive(Args)]
pub struct RoutesArgs {
    #[arg(long)]
    json: bool,
}

pub fn run(args: RoutesArgs) -> Result<ExitCode> {
    let table = events::routing_table();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&table)?);
    } else {
        for r in table {
            println!(
                "{:<8} {:?}  triggers {:?}\n         reads {:?}\n         writes {:?}",
                r.stage.name(),
                r.target,
                r.triggers,
                r.reads,
                r.writes
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
