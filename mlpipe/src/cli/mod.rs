//! The `mlpipe` command line: the top-level parser, one module per command group, and the
//! helpers several commands share (the store, the local stack, draining and printing it).

pub mod data;
pub mod drift;
pub mod features;
pub mod keys;
pub mod models;
pub mod predict;
pub mod publish;
pub mod pull;
pub mod push;
pub mod quarantine;
pub mod redrive;
pub mod routes;
pub mod run;
pub mod runs;
pub mod sample;
pub mod serve;
pub mod status;
pub mod train;
pub mod upload;
pub mod worker;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};
use contracts::LoadedProject;
use indicatif::{ProgressBar, ProgressStyle};
use mlpipe::default_project;
use mlpipe::stack::{Delivery, LocalStack};
use storage::Store;

#[derive(Parser)]
#[command(
    name = "mlpipe",
    version,
    about = "A typed ML pipeline of serverless stages joined by object-store events"
)]
pub struct Cli {
    /// Store URL: a folder path, file:///abs/path, memory://, or s3://bucket[/prefix]
    /// (S3 and compatible endpoints are configured by AWS_* variables or ?endpoint=...).
    #[arg(long, global = true, env = "MLPIPE_STORE", hide_env_values = true, default_value = storage::DEFAULT_LOCAL_STORE)]
    pub store: String,
    /// Online feature store: `embedded:<path>`, `dynamodb://<table>[?endpoint=..&region=..]`,
    /// or `none`. Default: an embedded store in `<store>/_online/` for a local store, none
    /// otherwise (each feature-view version still carries its records in `online.bin`).
    #[arg(
        long,
        global = true,
        env = "MLPIPE_ONLINE_STORE",
        hide_env_values = true
    )]
    pub online: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

// No doc comments on this enum or on the argument types of its variants: clap would take
// them as the commands' `about`. Each variant's doc comment is its command's help.
#[derive(Subcommand)]
pub enum Command {
    /// Serve models over HTTP with the edge's API (Open Inference Protocol v2 + /v1 predict):
    /// each model's champion (re-read every --refresh seconds), online features from the
    /// online store, prediction logs to inference-logs/ in the store.
    Serve(serve::ServeArgs),
    /// Publish champions to the edge: each model's champion (bundle, ONNX, feature spec, then
    /// the alias), the online records of the feature-view version it was trained on and the
    /// API keys' hashes, to Cloudflare (R2 via its S3 API + KV via the HTTP API), an object
    /// store, or wrangler's local R2/KV. The pipeline does the same on its own events when a target is set by
    /// the same MLPIPE_EDGE_* variables.
    Publish(publish::PublishArgs),
    /// Run the whole pipeline for a project: publish its definitions, upload its sample files
    /// and deliver events until the pipeline is quiet.
    Run(run::RunArgs),
    /// Publish a project's definitions (project file, contracts) to the store.
    Push(push::PushArgs),
    /// Upload a file to raw/<dataset>/ and run the pipeline on it.
    Upload(upload::UploadArgs),
    /// Dataset versions and snapshots.
    Data {
        #[command(subcommand)]
        command: data::DataCommand,
    },
    /// Feature views: versions, online reads, point-in-time training sets.
    Features {
        #[command(subcommand)]
        command: features::FeaturesCommand,
    },
    /// Train every model of a project now, on the newest feature version of its view (or the
    /// one built from --snapshot). `mlpipe run` trains too, on every new feature version.
    Train(train::TrainArgs),
    /// Score a file (CSV, JSON Lines or Parquet) with a registered model: feature vectors, or
    /// raw records against the online state (or point-in-time with --point-in-time); writes
    /// Parquet predictions and refused rows to an errors file.
    Predict(predict::PredictArgs),
    /// Drift: check served models' prediction logs against their reference profiles, and
    /// read the reports.
    Drift {
        #[command(subcommand)]
        command: drift::DriftCommand,
    },
    /// API keys for the edge endpoints: create (shown once), list, revoke.
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// The model registry: versions, aliases and their history, promotion, rollback.
    Models {
        #[command(subcommand)]
        command: models::ModelsCommand,
    },
    /// Training runs: parameters, trials, metrics, artifacts.
    Runs {
        #[command(subcommand)]
        command: runs::RunsCommand,
    },
    /// Re-deliver dead-lettered events (`dead-letters/`) to the stage each failed in.
    Redrive(redrive::RedriveArgs),
    /// Rejected rows and files.
    Quarantine {
        #[command(subcommand)]
        command: quarantine::QuarantineCommand,
    },
    /// Per dataset and stage: latest version, last run and outcome, failures.
    Status(status::StatusArgs),
    /// Consume S3 event notifications from an SQS queue and run the stages they route to.
    Worker(worker::WorkerArgs),
    /// Fetch the project's HTTP pull sources into raw/ and run the pipeline on what is new.
    Pull(pull::PullArgs),
    /// Generate seeded sample card transactions as CSV.
    Sample(sample::SampleArgs),
    /// Print the routing table (stages, triggers, read/write prefixes).
    Routes(routes::RoutesArgs),
}

/// What the global flags give every command: where the store is and which online store to
/// use.
pub struct Context {
    /// `--store`, as given.
    pub store: String,
    /// `--online`, as given (`none` or empty: no online store; unset: the default).
    pub online: Option<String>,
}

impl Context {
    /// Opens the store `--store` names.
    pub fn open(&self) -> Result<Store> {
        Store::open(&self.store)
            .with_context(|| format!("opening store {}", storage::redact_url(&self.store)))
    }

    /// The local stack on the store, with the stages' settings from [`stack_settings`].
    pub async fn stack(&self) -> Result<LocalStack> {
        let store = self.open()?;
        let settings = stack_settings(&store, self.online.as_deref()).await?;
        Ok(LocalStack::new(&store).with_settings(settings))
    }
}

/// The online store URL: `--online`, else an embedded store inside a local store.
pub fn online_url(store: &Store, flag: Option<&str>) -> Option<String> {
    match flag {
        Some("none") | Some("") => None,
        Some(url) => Some(url.to_string()),
        None => match store.backend() {
            storage::Backend::Local { root } => Some(format!(
                "embedded:{}",
                root.join("_online").join("features.redb").display()
            )),
            _ => None,
        },
    }
}

async fn feature_config(store: &Store, flag: Option<&str>) -> Result<feature_stage::Config> {
    let online = match online_url(store, flag) {
        Some(url) => Some(Arc::new(online::Backend::open(&url).await.with_context(
            || format!("opening online store {}", storage::redact_url(url.as_ref())),
        )?)),
        None => None,
    };
    Ok(feature_stage::Config { online })
}

/// The stages' settings for a local stack on `store`: the online store from `--online` (or
/// the embedded default beside a local store), MLflow and the edge target from the
/// environment; prediction logs in the pipeline store.
pub async fn stack_settings(store: &Store, online: Option<&str>) -> Result<handlers::Settings> {
    Ok(handlers::Settings {
        features: feature_config(store, online).await?,
        // `::train`: the crate, not this module's `train` command.
        train: ::train::job::JobConfig::from_env()?,
        edge: publish_stage::EdgeTarget::from_env()?,
        logs: None,
    })
}

/// Success or failure, as the process's exit code.
pub fn exit(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The project in `dir` (default: the shipped sample).
pub fn load_project(dir: Option<PathBuf>) -> Result<LoadedProject> {
    let dir = dir.unwrap_or_else(default_project);
    if !dir.join("mlpipe.toml").is_file() {
        bail!("{} has no mlpipe.toml (pass --project DIR)", dir.display());
    }
    Ok(LoadedProject::load(&dir)?)
}

/// Runs the local stack until quiet, with a spinner on a terminal.
pub async fn drain(stack: &LocalStack, quiet: bool) -> Vec<Delivery> {
    let bar = if quiet || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar.set_message("delivering events");
    let deliveries = stack
        .run_until_quiet(|d| {
            bar.set_message(format!(
                "{} {} {}",
                d.stage.name(),
                if d.ok { "done" } else { "failed" },
                d.key
            ));
        })
        .await;
    bar.finish_and_clear();
    deliveries
}

/// One line for a delivery of the feature, training, drift or batch stage: what ran, on
/// which object, the outcome and its key figures (never the raw JSON; `--json` has that).
pub fn describe_delivery(d: &Delivery) -> String {
    let r = &d.result;
    let s = |v: &serde_json::Value| v.as_str().unwrap_or("?").to_string();
    let stage = d.stage.name();
    let key = &d.key;
    match d.stage {
        events::Stage::Features => {
            let views: Vec<String> = r["views"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|v| match v["outcome"].as_str() {
                    Some("committed") => format!(
                        "view {} version {}: {} rows, {} features, {} entities ({} online records written)",
                        s(&v["view"]),
                        s(&v["version"]),
                        v["rows"],
                        v["features"],
                        v["entities"],
                        v["online_written"]
                    ),
                    _ => format!(
                        "view {} version {} already computed",
                        s(&v["view"]),
                        s(&v["version"])
                    ),
                })
                .collect();
            let snapshot = s(&r["snapshot"]);
            if views.is_empty() {
                format!("{stage} {key}: snapshot {snapshot}, no view reads it yet")
            } else {
                format!("{stage} {key}: snapshot {snapshot}; {}", views.join("; "))
            }
        }
        events::Stage::Train => {
            let runs: Vec<String> = r
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(mlpipe::train_ops::describe_outcome)
                .collect();
            if runs.is_empty() {
                format!("{stage} {key}: no training file uses this view")
            } else {
                format!("{stage} {key}: {}", runs.join("; "))
            }
        }
        events::Stage::Drift => {
            let models: Vec<String> = r
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|m| {
                    let windows = m["checked"]
                        .as_array()
                        .map(Vec::as_slice)
                        .unwrap_or_default();
                    let drifted = windows
                        .iter()
                        .filter(|w| w["dataset_drift"].as_bool() == Some(true))
                        .count();
                    let mut line = format!(
                        "model {}: {} window(s) checked, {} with dataset drift",
                        s(&m["model"]),
                        windows.len(),
                        drifted
                    );
                    if let Some(note) = m["note"].as_str() {
                        line.push_str(&format!(" ({note})"));
                    }
                    if let Some(req) = m["retrain_request"].as_str() {
                        line.push_str(&format!(", retrain requested ({req})"));
                    }
                    line
                })
                .collect();
            format!("{stage} {key}: {}", models.join("; "))
        }
        events::Stage::BatchPredict => match r["outcome"].as_str() {
            Some("committed") => format!(
                "{stage} {key}: model {} version {}, {} rows, {} scored, {} refused ({} mode) -> {}",
                s(&r["model"]),
                r["version"],
                r["rows"],
                r["scored"],
                r["errors"],
                s(&r["mode"]),
                s(&r["predictions"])
            ),
            _ => format!("{stage} {key}: already scored ({})", s(&r["manifest_key"])),
        },
        _ => format!("{stage} {key}: {}", r["outcome"].as_str().unwrap_or("done")),
    }
}

/// One line per delivery: what each stage committed, published or why it failed.
pub fn print_deliveries(deliveries: &[Delivery]) {
    for d in deliveries {
        if d.ok && d.stage == events::Stage::Publish {
            let r = &d.result;
            let p = &r["publication"];
            match r["outcome"].as_str() {
                Some("published") => println!(
                    "  publish {}: {} {} version {} ({} entries) to {}",
                    d.key,
                    p["kind"].as_str().unwrap_or("?"),
                    p["name"].as_str().unwrap_or("?"),
                    p["version"].as_str().unwrap_or("?"),
                    p["entries"],
                    p["target"].as_str().unwrap_or("?")
                ),
                Some("already-done") => println!(
                    "  publish {}: already published ({})",
                    d.key,
                    r["record"].as_str().unwrap_or("?")
                ),
                _ => println!(
                    "  publish {}: skipped, {}",
                    d.key,
                    r["reason"].as_str().unwrap_or("?")
                ),
            }
        } else if d.ok && d.stage != events::Stage::Ingest {
            println!("  {}", describe_delivery(d));
        } else if d.ok {
            let r = &d.result;
            match r["outcome"].as_str() {
                Some("committed") => println!(
                    "  {} {}: version {} ({} valid, {} quarantined), snapshot {}",
                    d.stage.name(),
                    d.key,
                    r["version"].as_str().unwrap_or("?"),
                    r["rows"]["valid"],
                    r["rows"]["quarantined"],
                    r["snapshot"].as_str().unwrap_or("?")
                ),
                Some("already-done") => println!(
                    "  {} {}: already ingested as version {}",
                    d.stage.name(),
                    d.key,
                    r["version"].as_str().unwrap_or("?")
                ),
                _ => println!("  {}", describe_delivery(d)),
            }
        } else {
            println!(
                "  {} {}: FAILED after {} attempt(s): {}",
                d.stage.name(),
                d.key,
                d.attempts,
                d.result.as_str().unwrap_or(&d.result.to_string())
            );
        }
    }
}
