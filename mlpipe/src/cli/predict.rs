//! `mlpipe predict`: batch inference over a file (CSV, JSON Lines or Parquet) with one
//! registered model; the scoring is `batch_predict`'s, the same code the batch stage runs.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use batch_predict::{Entities, Job, ModelRef};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::{Context, online_url};

#[derive(Args)]
pub struct PredictArgs {
    /// The model: NAME (its champion), NAME@VERSION or NAME:ALIAS.
    #[arg(long)]
    model: String,
    /// Rows to score: .csv, .jsonl or .parquet, either ready feature vectors (every model
    /// input as a column) or raw records (the fields the model's feature view reads).
    #[arg(long)]
    input: PathBuf,
    /// Where the predictions go (Parquet): the input's key columns and row number, the
    /// prediction, class probabilities, model and version. Refused rows go to
    /// <OUTPUT stem>_errors.jsonl with file, row, column and rule.
    #[arg(long)]
    output: PathBuf,
    /// Score raw records point-in-time from the curated data (the training join), each
    /// seeing only events before its own time: for historical records. Without it raw
    /// records are scored against the current online state, as /v1 does, and a record
    /// older than its entity's last materialized event is refused.
    #[arg(long)]
    point_in_time: bool,
    /// Rows read and scored at once.
    #[arg(long, default_value_t = batch_predict::DEFAULT_CHUNK_ROWS)]
    chunk_rows: usize,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(ctx: &Context, args: PredictArgs) -> Result<ExitCode> {
    let store = ctx.open()?;
    let model_ref: ModelRef = args.model.parse()?;
    let model = Arc::new(batch_predict::load_model(&store, &model_ref).await?);
    // Without an online store (a cloud store without --online) entities come from the
    // records the view's newest version carries, as `mlpipe features get` reads them.
    let backend = match (&model.spec, args.point_in_time) {
        (Some(_), false) => match online_url(&store, ctx.online.as_deref()) {
            Some(url) => Some(Arc::new(online::Backend::open(&url).await.with_context(
                || {
                    format!(
                        "opening the online store {}",
                        storage::redact_url(url.as_ref())
                    )
                },
            )?)),
            None => None,
        },
        _ => None,
    };
    let no_backend = backend.is_none();
    let online = Entities::open(&store, &model, &args.input, args.point_in_time, backend).await?;
    if no_backend && matches!(online, Entities::Snapshot { .. }) {
        eprintln!(
            "no online store given: reading entities from {}",
            online.describe()
        );
    }
    let size = std::fs::metadata(&args.input)
        .with_context(|| format!("reading {}", args.input.display()))?
        .len();
    let bar = if args.json || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(size)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {bytes}/{total_bytes} {msg} ({elapsed}, about {eta} left)",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let job = Job {
        input: args.input.clone(),
        output: args.output.clone(),
        name: None,
        point_in_time: args.point_in_time,
        chunk_rows: args.chunk_rows,
        now_us: chrono::Utc::now().timestamp_micros(),
    };
    let summary = batch_predict::run(model, &store, &online, &job, |rows, bytes| {
        bar.set_position(bytes);
        bar.set_message(format!("{rows} rows"));
    })
    .await?;
    bar.finish_and_clear();
    if args.json {
        let mut v = serde_json::to_value(&summary)?;
        v["peak_rss_mib"] = serde_json::json!(peak_rss_mib());
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "scored {} of {} rows of {} with {} version {} ({}) -> {}",
            summary.scored,
            summary.rows,
            summary.input,
            summary.model,
            summary.version,
            serde_json::to_value(summary.mode)?
                .as_str()
                .unwrap_or_default(),
            summary.output
        );
        if let Some(errors) = &summary.errors_file {
            println!("{} rows refused: {errors}", summary.errors);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The process's peak resident memory in MiB (Linux `VmHWM`), where known.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}
