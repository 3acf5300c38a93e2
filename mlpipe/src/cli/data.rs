//! `mlpipe data`: a dataset's committed versions and snapshots, and one version's manifest
//! with its first rows.

use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::Subcommand;
use ingest::polars::prelude::{ParquetReader, SerReader};
use mlpipe::pipeline;
use records::keys as zones;

use super::Context;

#[derive(Subcommand)]
pub enum DataCommand {
    /// List a dataset's versions and its latest snapshot.
    Versions {
        dataset: String,
        #[arg(long)]
        json: bool,
    },
    /// Show one version's manifest and first rows: NAME@VERSION.
    Show {
        spec: String,
        #[arg(long, default_value_t = 10)]
        rows: usize,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(ctx: &Context, command: DataCommand) -> Result<ExitCode> {
    let store = ctx.open()?;
    match command {
        DataCommand::Versions { dataset, json } => {
            let state = pipeline::dataset_state(&store, &dataset).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&state)?);
                return Ok(ExitCode::SUCCESS);
            }
            if state.versions.is_empty() {
                println!(
                    "dataset {dataset} has no committed versions in {}",
                    store.url()
                );
            }
            println!(
                "{:<18} {:<26} {:>10} {:>10} {:>11}  {:<8} source",
                "VERSION", "CREATED", "READ", "VALID", "QUARANTINED", "LINEAGE"
            );
            for v in &state.versions {
                println!(
                    "{:<18} {:<26} {:>10} {:>10} {:>11}  {:<8} {}",
                    v.version,
                    v.created_at,
                    v.rows_read,
                    v.rows_valid,
                    v.rows_quarantined,
                    v.lineage,
                    v.source
                );
            }
            match &state.latest_snapshot {
                Some(s) => println!(
                    "latest snapshot {} ({} versions: {})",
                    s.hash,
                    s.versions.len(),
                    s.versions.join(", ")
                ),
                None => println!("no snapshot yet"),
            }
            Ok(ExitCode::SUCCESS)
        }
        DataCommand::Show { spec, rows, json } => {
            let (dataset, version) = spec
                .split_once('@')
                .context("expected NAME@VERSION, e.g. transactions@3f2a9c0d1e2b4a5c")?;
            let key = zones::curated_manifest(dataset, version);
            let obj = store
                .get(&key)
                .await
                .with_context(|| format!("version {version} of {dataset}"))?;
            let manifest: records::pipeline::Manifest = serde_json::from_slice(&obj.bytes)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&manifest)?);
                return Ok(ExitCode::SUCCESS);
            }
            println!("{}", serde_json::to_string_pretty(&manifest)?);
            if let Some(part) = manifest.parts.first() {
                let bytes = store.get(&part.key).await?.bytes;
                let df = ParquetReader::new(std::io::Cursor::new(bytes.as_ref()))
                    .with_slice(Some((0, rows)))
                    .finish()?;
                println!("{df}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
