//! `mlpipe features`: published feature views and their versions, online reads, and
//! point-in-time training sets.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::Subcommand;
use ingest::polars::prelude::{ParquetReader, SerReader};
use mlpipe::pipeline;

use super::{Context, online_url};

#[derive(Subcommand)]
pub enum FeaturesCommand {
    /// Every published feature view with its newest version.
    List {
        #[arg(long)]
        json: bool,
    },
    /// A view's definition, output columns, newest manifest and first rows.
    Show {
        view: String,
        #[arg(long, default_value_t = 5)]
        rows: usize,
        #[arg(long)]
        json: bool,
    },
    /// Online read: the feature vector served for an entity now (or at --at).
    Get {
        view: String,
        /// Entity key column and value, e.g. --entity card_id=card_000042 (repeat for
        /// multi-column keys).
        #[arg(long = "entity", value_parser = parse_pair)]
        entity: Vec<(String, String)>,
        /// A raw request field for request-time features, e.g. --field amount=120.5
        /// (numbers, true/false and null are read as JSON; anything else as text).
        #[arg(long = "field", value_parser = parse_pair)]
        fields: Vec<(String, String)>,
        /// Evaluation time (RFC 3339); default now.
        #[arg(long)]
        at: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Export a point-in-time training set to Parquet: the newest version's table, or, with
    /// --labels, features as of each row of a labels file (CSV or Parquet with the view's
    /// entity columns, a timestamp and the label).
    TrainingSet {
        view: String,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        labels: Option<PathBuf>,
        /// Timestamp column of the labels file (default: the view's event-time column name).
        #[arg(long)]
        time_column: Option<String>,
        /// Label column of the labels file (default: the view's label column name).
        #[arg(long)]
        label_column: Option<String>,
    },
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .ok_or_else(|| format!("expected NAME=VALUE, got '{s}'"))
}

pub async fn run(ctx: &Context, command: FeaturesCommand) -> Result<ExitCode> {
    let store = ctx.open()?;
    let online = ctx.online.as_deref();
    match command {
        FeaturesCommand::List { json } => {
            let views = pipeline::view_runs(&store).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&views)?);
                return Ok(ExitCode::SUCCESS);
            }
            if views.is_empty() {
                println!("no feature views published in {}", store.url());
            }
            println!(
                "{:<20} {:<16} {:<18} {:>9} {:>9} {:>9}  created",
                "VIEW", "DATASET", "VERSION", "ROWS", "FEATURES", "ENTITIES"
            );
            for v in &views {
                println!(
                    "{:<20} {:<16} {:<18} {:>9} {:>9} {:>9}  {}",
                    v.view,
                    v.dataset,
                    v.version.as_deref().unwrap_or("-"),
                    v.rows,
                    v.features.len(),
                    v.entities,
                    v.created_at.as_deref().unwrap_or("-")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        FeaturesCommand::Show { view, rows, json } => {
            let definition = feature_stage::definitions::current_view(&store, &view)
                .await?
                .with_context(|| format!("no feature view '{view}' in {}", store.url()))?;
            let manifest = pipeline::latest_view_version(&store, &view).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"definition": definition, "latest": manifest})
                    )?
                );
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "view {} over dataset {} (definition {})",
                definition.name,
                definition.dataset,
                definition.hash()
            );
            if !definition.description.is_empty() {
                println!("  {}", definition.description);
            }
            println!(
                "  entity: {}  event time: {}  label: {}",
                if definition.entity.is_empty() {
                    "-".to_string()
                } else {
                    definition.entity.join(", ")
                },
                definition.event_time.as_deref().unwrap_or("-"),
                definition
                    .label
                    .as_ref()
                    .map(|l| l.column().to_string())
                    .unwrap_or_else(|| "-".into())
            );
            for f in &definition.features {
                println!(
                    "  {:<28} {}{}",
                    f.name,
                    mlpipe::feature_ops::describe_kind(&f.kind),
                    if f.output { "" } else { " (not a model input)" }
                );
            }
            match manifest {
                None => println!("no version computed yet"),
                Some(m) => {
                    println!(
                        "newest version {} from snapshot {} ({}): {} rows, {} train / {} validation / {} test, {} entities",
                        m.version,
                        m.snapshot.hash,
                        m.created_at,
                        m.rows.rows,
                        m.rows.train,
                        m.rows.validation,
                        m.rows.test,
                        m.rows.entities
                    );
                    println!(
                        "model inputs ({}): {}",
                        m.features.len(),
                        m.features.join(", ")
                    );
                    println!("profile: {}", m.profile.key);
                    let bytes = store.get(&m.table.key).await?.bytes;
                    let df = ParquetReader::new(std::io::Cursor::new(bytes.as_ref()))
                        .with_slice(Some((0, rows)))
                        .finish()?;
                    println!("{df}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        FeaturesCommand::Get {
            view,
            entity,
            fields,
            at,
            json,
        } => {
            let url = online_url(&store, online);
            let served = mlpipe::feature_ops::online_get(
                &store,
                url.as_deref(),
                &view,
                &entity,
                &fields,
                at.as_deref(),
            )
            .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&served)?);
                return Ok(ExitCode::SUCCESS);
            }
            let v = &served.vector;
            println!(
                "view {} version {} entity {} ({}){}",
                view,
                served.version,
                // `::features`: the crate, not this module.
                v.entity.replace(::features::KEY_SEPARATOR, "|"),
                served.source,
                match (
                    v.assembled.unknown_entity,
                    v.assembled.expired,
                    v.staleness_s
                ) {
                    (true, _, _) => ": unknown entity (no online record)".to_string(),
                    (_, true, _) => ": record expired by TTL".to_string(),
                    (_, _, Some(s)) => format!(": record materialized {s:.0}s ago"),
                    _ => String::new(),
                }
            );
            for (name, value) in v.columns.iter().zip(&v.assembled.values) {
                match value {
                    Some(x) => println!("  {name:<32} {x}"),
                    None => println!("  {name:<32} (missing)"),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        FeaturesCommand::TrainingSet {
            view,
            out,
            labels,
            time_column,
            label_column,
        } => {
            let written = mlpipe::feature_ops::training_set(
                &store,
                &view,
                &out,
                labels.as_deref(),
                time_column.as_deref(),
                label_column.as_deref(),
            )
            .await?;
            println!(
                "wrote {} ({} rows, {} feature columns) from version {}",
                out.display(),
                written.rows,
                written.features,
                written.version
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
