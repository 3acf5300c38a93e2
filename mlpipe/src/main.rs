//! `mlpipe`: run the pipeline on a project, inspect and operate a store.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use contracts::LoadedProject;
use indicatif::{ProgressBar, ProgressStyle};
use ingest::polars::prelude::*;
use mlpipe::pipeline::{self, DatasetRun, RunSummary};
use mlpipe::stack::{Delivery, LocalStack};
use mlpipe::{default_project, sample, sqs};
use storage::Store;
use records::keys as zones;

#[derive(Parser)]
#[command(
    name = "mlpipe",
    version,
    about = "A typed ML pipeline of serverless stages joined by object-store events"
)]
struct Cli {
    /// Store URL: a folder path, file:///abs/path, memory://, or s3://bucket[/prefix]
    /// (S3 and compatible endpoints are configured by AWS_* variables or ?endpoint=...).
    #[arg(long, global = true, env = "MLPIPE_STORE", default_value = storage::DEFAULT_LOCAL_STORE)]
    store: String,
    /// Online feature store: `embedded:<path>`, `dynamodb://<table>[?endpoint=..&region=..]`,
    /// or `none`. Default: an embedded store in `<store>/_online/` for a local store, none
    /// otherwise (each feature-view version still carries its records in `online.bin`).
    #[arg(long, global = true, env = "MLPIPE_ONLINE_STORE")]
    online: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve models over HTTP with the edge's API (Open Inference Protocol v2 + /v1 predict):
    /// each model's champion (re-read every --refresh seconds), online features from the
    /// online store, prediction logs to inference-logs/ in the store.
    Serve {
        /// Models to serve (default: every model in the registry).
        #[arg(long = "model")]
        models: Vec<String>,
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: std::net::SocketAddr,
        /// Seconds between re-reads of the champion alias.
        #[arg(long, default_value_t = 5)]
        refresh: u64,
        /// Share of requests whose predictions are logged (0 to 1).
        #[arg(long, default_value_t = 1.0)]
        log_sample: f64,
        /// Largest request body in bytes.
        #[arg(long, default_value_t = 4 << 20)]
        max_body: usize,
        /// Most rows (tensor rows or records) in one request.
        #[arg(long, default_value_t = 1024)]
        max_batch: usize,
    },
    /// Publish champions to the edge: each model's champion (bundle, ONNX, feature spec, then
    /// the alias) and the online records of the feature-view version it was trained on, to
    /// Cloudflare (R2 via its S3 API + KV via the HTTP API), an object store, or wrangler's
    /// local R2/KV. The pipeline does the same on its own events when a target is set by
    /// the same MLPIPE_EDGE_* variables.
    Publish {
        /// Models to publish (default: every model in the registry).
        #[arg(long = "model")]
        models: Vec<String>,
        /// Local target: the `wrangler dev --persist-to` state folder.
        #[arg(long, env = "MLPIPE_EDGE_WRANGLER_STATE", conflicts_with_all = ["r2", "objects"])]
        wrangler_state: Option<PathBuf>,
        /// Object-store target (what the Spin component reads over HTTP): a store URL
        /// (s3://BUCKET?endpoint=..., or a folder); online records go under online/.
        #[arg(long, env = "MLPIPE_EDGE_OBJECTS", conflicts_with = "r2")]
        objects: Option<String>,
        /// The Worker's wrangler.toml (local target).
        #[arg(
            long,
            env = "MLPIPE_EDGE_WRANGLER_CONFIG",
            default_value = "edge/worker/wrangler.toml"
        )]
        wrangler_config: PathBuf,
        /// The wrangler executable (local target).
        #[arg(long, env = "MLPIPE_EDGE_WRANGLER", default_value = "wrangler")]
        wrangler: PathBuf,
        /// Deployed target: the R2 bucket as an S3 URL
        /// (s3://BUCKET?endpoint=https://ACCOUNT.r2.cloudflarestorage.com; credentials from
        /// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, an R2 API token's S3 pair).
        #[arg(long, env = "MLPIPE_EDGE_R2", requires_all = ["kv_account", "kv_namespace"])]
        r2: Option<String>,
        /// Cloudflare account id (KV API; token from CLOUDFLARE_API_TOKEN).
        #[arg(long, env = "MLPIPE_EDGE_KV_ACCOUNT")]
        kv_account: Option<String>,
        /// KV namespace id of the Worker's FEATURES binding.
        #[arg(long, env = "MLPIPE_EDGE_KV_NAMESPACE")]
        kv_namespace: Option<String>,
    },
    /// Run the whole pipeline for a project: publish its definitions, upload its sample files
    /// and deliver events until the pipeline is quiet.
    Run {
        /// Project folder (default: the shipped sample, examples/fraud).
        #[arg(long)]
        project: Option<PathBuf>,
        /// Print one JSON object instead of the human summary.
        #[arg(long)]
        json: bool,
    },
    /// Publish a project's definitions (project file, contracts) to the store.
    Push {
        #[arg(long)]
        project: Option<PathBuf>,
    },
    /// Upload a file to raw/<dataset>/ and run the pipeline on it.
    Upload {
        file: PathBuf,
        #[arg(long)]
        dataset: String,
        #[arg(long)]
        json: bool,
    },
    /// Dataset versions and snapshots.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// Feature views: versions, online reads, point-in-time training sets.
    Features {
        #[command(subcommand)]
        command: FeaturesCommand,
    },
    /// Train every model of a project now, on the newest feature version of its view (or the
    /// one built from --snapshot). `mlpipe run` trains too, on every new feature version.
    Train {
        #[arg(long)]
        project: Option<PathBuf>,
        /// Dataset snapshot hash (or prefix) whose feature version to train on.
        #[arg(long)]
        snapshot: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Drift: check served models' prediction logs against their reference profiles, and
    /// read the reports.
    Drift {
        #[command(subcommand)]
        command: DriftCommand,
    },
    /// The model registry: versions, aliases and their history, promotion, rollback.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// Training runs: parameters, trials, metrics, artifacts.
    Runs {
        #[command(subcommand)]
        command: RunsCommand,
    },
    /// Rejected rows and files.
    Quarantine {
        #[command(subcommand)]
        command: QuarantineCommand,
    },
    /// Per dataset and stage: latest version, last run and outcome, failures.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Consume S3 event notifications from an SQS queue and run the stages they route to.
    Worker {
        /// Queue URL, e.g. https://sqs.eu-west-1.amazonaws.com/123456789012/mlpipe-events.
        #[arg(long)]
        queue: String,
        /// Exit after this many seconds without a message (default: run forever).
        #[arg(long)]
        idle_exit: Option<u64>,
    },
    /// Fetch the project's HTTP pull sources into raw/ and run the pipeline on what is new.
    Pull {
        #[arg(long)]
        project: Option<PathBuf>,
    },
    /// Generate seeded sample card transactions as CSV.
    Sample {
        #[arg(long, default_value_t = 20_000)]
        rows: usize,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Deliberately broken rows to include (they land in quarantine).
        #[arg(long, default_value_t = 12)]
        bad_rows: usize,
    },
    /// Print the routing table (stages, triggers, read/write prefixes).
    Routes {
        #[arg(long)]
        json: bool,
    },
    /// Benchmark helper used by `cargo xtask bench features`.
    #[command(hide = true)]
    BenchFeatures {
        #[arg(long)]
        file: PathBuf,
        /// `windows`, `join` or `online`.
        #[arg(long)]
        mode: String,
        #[arg(long)]
        project: Option<PathBuf>,
        #[arg(long)]
        workdir: PathBuf,
        /// Label events (join) or reads (online).
        #[arg(long, default_value_t = 100_000)]
        n: usize,
    },
    /// Benchmark helper used by `cargo xtask bench drift`.
    #[command(hide = true)]
    BenchDrift {
        /// `generate` or `check`.
        #[arg(long)]
        mode: String,
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 100_000)]
        reference: usize,
        #[arg(long, default_value_t = 1_000_000)]
        rows: usize,
        #[arg(long, default_value_t = 20)]
        features: usize,
        /// `default` (the stage's default tests) or `ks`.
        #[arg(long, default_value = "default")]
        test: String,
    },
    /// Benchmark helper used by `cargo xtask bench train`.
    #[command(hide = true)]
    BenchTrain {
        #[arg(long)]
        file: PathBuf,
        #[arg(long, default_value = "y")]
        label: String,
        #[arg(long, default_value = "roc_auc")]
        metric: String,
        /// A training file to use instead of the default (gbm + linear, no class weights).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Benchmark helper used by `cargo xtask bench ingest`.
    #[command(hide = true)]
    BenchIngest {
        #[arg(long)]
        file: PathBuf,
        /// `ingest` (the stage, validation included) or `plain` (polars CSV -> Parquet).
        #[arg(long)]
        mode: String,
        #[arg(long)]
        project: Option<PathBuf>,
        #[arg(long)]
        workdir: PathBuf,
    },
}

#[derive(Subcommand)]
enum DriftCommand {
    /// Check every complete window not reported yet (the stage's scheduled run), writing
    /// `drift/<model>/<run>/report.{json,html}` and, when drift holds for the configured
    /// number of windows, a retrain request.
    Check {
        /// Only this model (default: every model with a champion).
        #[arg(long)]
        model: Option<String>,
        /// Prediction logs store when not the pipeline's (e.g. R2's S3 URL); a model's
        /// `[drift] logs` setting wins.
        #[arg(long, env = "MLPIPE_LOGS_STORE")]
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

#[derive(Subcommand)]
enum ModelsCommand {
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
}

#[derive(Subcommand)]
enum RunsCommand {
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

#[derive(Subcommand)]
enum DataCommand {
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

#[derive(Subcommand)]
enum FeaturesCommand {
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

#[derive(Subcommand)]
enum QuarantineCommand {
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

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    // Logs on stderr; traces and metrics over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set;
    // `mlpipe serve` also keeps the Prometheus text it serves at /metrics.
    let telemetry = telemetry::sdk::init(telemetry::sdk::Options {
        prometheus: matches!(cli.command, Command::Serve { .. }),
        ..telemetry::sdk::Options::new(
            "mlpipe",
            telemetry::sdk::Logs::Stderr {
                default_level: "warn",
            },
        )
    });
    let _ = TELEMETRY.set(telemetry.clone());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    };
    telemetry.shutdown();
    code
}

/// The process's telemetry, for the server's `/metrics`.
static TELEMETRY: std::sync::OnceLock<telemetry::sdk::Telemetry> = std::sync::OnceLock::new();

/// The online store URL: `--online`, else an embedded store inside a local store.
fn online_url(store: &Store, flag: Option<&str>) -> Option<String> {
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
        Some(url) => Some(Arc::new(
            online::Backend::open(&url)
                .await
                .with_context(|| format!("opening online store {url}"))?,
        )),
        None => None,
    };
    Ok(feature_stage::Config { online })
}

/// The stages' settings for a local stack on `store`: the online store from `--online` (or
/// the embedded default beside a local store), MLflow and the edge target from the
/// environment; prediction logs in the pipeline store.
async fn stack_settings(store: &Store, online: Option<&str>) -> Result<handlers::Settings> {
    Ok(handlers::Settings {
        features: feature_config(store, online).await?,
        train: train::job::JobConfig::from_env()?,
        edge: publish_stage::EdgeTarget::from_env()?,
        logs: None,
    })
}

async fn dispatch(cli: Cli) -> Result<ExitCode> {
    let open = || Store::open(&cli.store).with_context(|| format!("opening store {}", cli.store));
    let online = cli.online.clone();
    let stack = |store: Store| {
        let online = online.clone();
        async move {
            let settings = stack_settings(&store, online.as_deref()).await?;
            anyhow::Ok(LocalStack::new(&store).with_settings(settings))
        }
    };
    match cli.command {
        Command::Run { project, json } => run(stack(open()?).await?, project, json).await,
        Command::Train {
            project,
            snapshot,
            json,
        } => train_cmd(stack(open()?).await?, project, snapshot, json).await,
        Command::Models { command } => models_cmd(open()?, command).await,
        Command::Drift { command } => drift_cmd(open()?, command).await,
        Command::Publish {
            models,
            wrangler_state,
            wrangler_config,
            wrangler,
            objects,
            r2,
            kv_account,
            kv_namespace,
        } => {
            let store = open()?;
            let models = if models.is_empty() {
                registry::models(&store).await?
            } else {
                models
            };
            if models.is_empty() {
                bail!("the registry in {} has no models to publish", cli.store);
            }
            let settings = publish_stage::TargetSettings {
                objects,
                r2,
                kv_account,
                kv_namespace,
                kv_api: std::env::var("MLPIPE_EDGE_KV_API").ok(),
                token: std::env::var("CLOUDFLARE_API_TOKEN").ok(),
                wrangler_state,
                wrangler_config: Some(wrangler_config),
                wrangler: Some(wrangler),
            };
            let Some(edge) = settings.build()? else {
                bail!(
                    "say where to publish: --wrangler-state DIR, --objects URL, or --r2 URL with --kv-account and --kv-namespace"
                );
            };
            let outcomes = publish_stage::publish_models(&store, &models, &edge).await?;
            for o in outcomes {
                match o {
                    publish_stage::Outcome::Published(p) => println!(
                        "published {} {} version {} ({} objects, {} entries) to {}",
                        p.kind,
                        p.name,
                        p.version,
                        p.objects.len(),
                        p.entries,
                        p.target
                    ),
                    publish_stage::Outcome::AlreadyDone(k) => {
                        println!("already published (record {k})")
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve {
            models,
            addr,
            refresh,
            log_sample,
            max_body,
            max_batch,
        } => {
            let store = open()?;
            let online = match online_url(&store, cli.online.as_deref()) {
                Some(url) => inference_server::Online::Backend(
                    online::Backend::open(&url)
                        .await
                        .with_context(|| format!("opening the online store {url}"))?,
                ),
                None => inference_server::Online::None,
            };
            let models = if models.is_empty() {
                registry::models(&store).await?
            } else {
                models
            };
            if models.is_empty() {
                bail!("the registry in {} has no models to serve", cli.store);
            }
            if !(0.0..=1.0).contains(&log_sample) {
                bail!("--log-sample must be between 0 and 1");
            }
            let app = std::sync::Arc::new(inference_server::App {
                models: inference_server::store_models(
                    store.clone(),
                    models.clone(),
                    std::time::Duration::from_secs(refresh),
                ),
                store,
                online,
                settings: inference::Settings {
                    max_body_bytes: max_body,
                    max_batch,
                    ..inference::Settings::default()
                },
                log_sample,
                metrics: TELEMETRY.get().cloned().map(|t| {
                    std::sync::Arc::new(move || t.prometheus_text())
                        as inference_server::MetricsText
                }),
            });
            inference_server::serve(app, addr, |bound| {
                // Scripts and tests wait for this line.
                println!("serving {} on http://{bound}", models.join(", "));
            })
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Runs { command } => runs_cmd(open()?, command).await,
        Command::Features { command } => {
            features_cmd(open()?, cli.online.as_deref(), command).await
        }
        Command::Push { project } => {
            let project = load_project(project)?;
            for (name, published) in pipeline::push_project(&open()?, &project).await? {
                let p = published.pointer();
                println!(
                    "{name}: contract {} (lineage {}, {})",
                    p.hash,
                    p.lineage,
                    if matches!(published, ingest::definitions::Published::Unchanged(_)) {
                        "unchanged"
                    } else {
                        &p.change
                    }
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Upload {
            file,
            dataset,
            json,
        } => {
            let stack = stack(open()?).await?;
            let uploaded = pipeline::upload(&stack, &dataset, &file).await?;
            let deliveries = drain(&stack, json).await;
            let ok = deliveries.iter().all(|d| d.ok);
            if json {
                println!(
                    "{}",
                    serde_json::json!({"upload": uploaded, "deliveries": deliveries, "ok": ok})
                );
            } else {
                println!(
                    "uploaded {} ({} bytes{})",
                    uploaded.key,
                    uploaded.bytes,
                    if uploaded.new {
                        ""
                    } else {
                        ", already present"
                    }
                );
                print_deliveries(&deliveries);
            }
            Ok(exit(ok))
        }
        Command::Data { command } => data(open()?, command).await,
        Command::Quarantine { command } => quarantine(stack(open()?).await?, command).await,
        Command::Status { json } => status(open()?, json).await,
        Command::Worker { queue, idle_exit } => {
            let queue_client = sqs::Queue::new(&queue)?;
            eprintln!("worker: consuming {queue} into {}", cli.store);
            let store = open()?;
            let settings = stack_settings(&store, cli.online.as_deref()).await?;
            let stats = mlpipe::worker::run(
                &store,
                &queue_client,
                idle_exit.map(Duration::from_secs),
                settings,
                |d| print_deliveries(std::slice::from_ref(d)),
            )
            .await?;
            eprintln!(
                "worker: {} message(s), {} delivery(ies), {} failed",
                stats.messages, stats.deliveries, stats.failed
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Pull { project } => {
            let project = load_project(project)?;
            let stack = stack(open()?).await?;
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(300))
                .build()?;
            let mut failed = false;
            for (name, entry) in &project.project.datasets {
                for source in &entry.pull {
                    match ingest::pull::pull(&client, stack.store(), name, source).await {
                        Ok(p) => println!(
                            "{}: {} -> {} ({} bytes{})",
                            name,
                            p.url,
                            p.key,
                            p.bytes,
                            if p.new { "" } else { ", unchanged" }
                        ),
                        Err(e) => {
                            failed = true;
                            eprintln!("{name}: {e}");
                        }
                    }
                }
            }
            let deliveries = drain(&stack, false).await;
            print_deliveries(&deliveries);
            Ok(exit(!failed && deliveries.iter().all(|d| d.ok)))
        }
        Command::Sample {
            rows,
            out,
            seed,
            bad_rows,
        } => {
            let file = std::fs::File::create(&out)
                .with_context(|| format!("creating {}", out.display()))?;
            let mut writer = std::io::BufWriter::new(file);
            let opts = sample::SampleOptions {
                rows,
                seed,
                bad_rows,
                ..Default::default()
            };
            let stats = sample::generate(&opts, &mut writer)
                .with_context(|| format!("writing {}", out.display()))?;
            std::io::Write::flush(&mut writer)?;
            println!(
                "wrote {}: {} transactions ({} fraud), {} broken rows",
                out.display(),
                stats.rows,
                stats.fraud,
                stats.bad
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Routes { json } => {
            let table = events::routing_table();
            if json {
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
        Command::BenchTrain {
            file,
            label,
            metric,
            config,
        } => {
            let v = mlpipe::bench::train(&file, &label, &metric, config.as_deref())?;
            println!("{}", serde_json::to_string(&v)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::BenchDrift {
            mode,
            dir,
            reference,
            rows,
            features,
            test,
        } => {
            let v = match mode.as_str() {
                "generate" => mlpipe::bench::drift_generate(&dir, reference, rows, features)?,
                "check" => mlpipe::bench::drift_check(&dir, &test)?,
                other => bail!("unknown mode {other}: generate or check"),
            };
            println!("{v}");
            Ok(ExitCode::SUCCESS)
        }
        Command::BenchFeatures {
            file,
            mode,
            project,
            workdir,
            n,
        } => {
            let project = project.unwrap_or_else(default_project);
            let v = mlpipe::bench::features(&mode, &file, &project, &workdir, n).await?;
            println!("{v}");
            Ok(ExitCode::SUCCESS)
        }
        Command::BenchIngest {
            file,
            mode,
            project,
            workdir,
        } => bench_ingest(&file, &mode, project, &workdir).await,
    }
}

fn exit(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn load_project(dir: Option<PathBuf>) -> Result<LoadedProject> {
    let dir = dir.unwrap_or_else(default_project);
    if !dir.join("mlpipe.toml").is_file() {
        bail!("{} has no mlpipe.toml (pass --project DIR)", dir.display());
    }
    Ok(LoadedProject::load(&dir)?)
}

/// Runs the local stack until quiet, with a spinner on a terminal.
async fn drain(stack: &LocalStack, quiet: bool) -> Vec<Delivery> {
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

fn print_deliveries(deliveries: &[Delivery]) {
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
                _ => println!("  {} {}: {}", d.stage.name(), d.key, r),
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

async fn run(stack: LocalStack, project: Option<PathBuf>, json: bool) -> Result<ExitCode> {
    let started = Instant::now();
    let project = load_project(project)?;
    let store = stack.store().clone();
    let published = pipeline::push_project(stack.store(), &project).await?;
    let mut uploads: Vec<(String, Vec<pipeline::Uploaded>)> = Vec::new();
    for (name, entry) in &project.project.datasets {
        let mut list = Vec::new();
        for sample in &entry.samples {
            list.push(pipeline::upload(&stack, name, &project.root.join(sample)).await?);
        }
        uploads.push((name.clone(), list));
    }
    let deliveries = drain(&stack, json).await;
    let mut datasets = Vec::new();
    for (name, list) in uploads {
        let state = pipeline::dataset_state(&store, &name).await?;
        let pointer = published
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| p.pointer().clone());
        datasets.push(DatasetRun {
            contract: pointer
                .as_ref()
                .map(|p| format!("{} (lineage {})", p.hash, p.lineage))
                .unwrap_or_default(),
            contract_change: pointer.map(|p| p.change).unwrap_or_default(),
            uploads: list,
            versions: state.versions.len(),
            snapshot: state.latest_snapshot.map(|s| s.hash),
            rows_valid: state.rows_valid,
            rows_quarantined: state.rows_quarantined,
            dataset: name,
        });
    }
    let ok = deliveries.iter().all(|d| d.ok);
    let feature_views = pipeline::view_runs(&store).await?;
    let training: Vec<serde_json::Value> = deliveries
        .iter()
        .filter(|d| d.stage == events::Stage::Train && d.ok)
        .flat_map(|d| d.result.as_array().cloned().unwrap_or_default())
        .collect();
    // The run ends with a drift check of each champion's held-out test split.
    let drift = mlpipe::drift_ops::holdout(&store).await?;
    let summary = RunSummary {
        project: project.project.name.clone(),
        store: store.url().to_string(),
        datasets,
        feature_views,
        training,
        drift,
        deliveries,
        ok,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!("project {} on {}", summary.project, summary.store);
        print_deliveries(&summary.deliveries);
        for d in &summary.datasets {
            println!(
                "dataset {}: {} version(s), snapshot {}, {} valid rows, {} quarantined (contract {})",
                d.dataset,
                d.versions,
                d.snapshot.as_deref().unwrap_or("-"),
                d.rows_valid,
                d.rows_quarantined,
                d.contract
            );
        }
        for v in &summary.feature_views {
            println!(
                "feature view {} ({}): version {}, {} rows ({} train / {} validation / {} test), {} features, {} entities online{}",
                v.view,
                v.dataset,
                v.version.as_deref().unwrap_or("-"),
                v.rows,
                v.train,
                v.validation,
                v.test,
                v.features.len(),
                v.entities,
                v.online
                    .as_deref()
                    .map(|o| format!(" in {o}"))
                    .unwrap_or_default()
            );
        }
        for t in &summary.training {
            println!("{}", mlpipe::train_ops::describe_outcome(t));
        }
        for d in &summary.drift {
            println!(
                "drift check of {} v{} on its held-out test split: {} rows, {} of {} features drifted{} ({})",
                d.model,
                d.version,
                d.rows,
                d.features_drifted,
                d.features_tested,
                if d.dataset_drift {
                    ", DATASET DRIFT"
                } else {
                    ""
                },
                d.report
            );
        }
        println!(
            "{} in {:.1}s",
            if ok {
                "pipeline quiet"
            } else {
                "pipeline quiet, with failures"
            },
            started.elapsed().as_secs_f64()
        );
        println!(
            "next: `mlpipe data versions <dataset>`, `mlpipe features list`, `mlpipe models list`, `mlpipe runs list`, `mlpipe status`"
        );
    }
    Ok(exit(ok))
}

async fn data(store: Store, command: DataCommand) -> Result<ExitCode> {
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

async fn quarantine(stack: LocalStack, command: QuarantineCommand) -> Result<ExitCode> {
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

async fn status(store: Store, json: bool) -> Result<ExitCode> {
    let mut rows = Vec::new();
    let views = pipeline::view_runs(&store).await?;
    for dataset in pipeline::datasets(&store).await? {
        let state = pipeline::dataset_state(&store, &dataset).await?;
        let runs = pipeline::recent_runs(&store, "ingest", &dataset, 50).await?;
        let failures: Vec<_> = runs
            .iter()
            .filter(|r| r.outcome == "failed" || r.outcome == "rejected")
            .take(5)
            .cloned()
            .collect();
        rows.push(serde_json::json!({
            "dataset": dataset,
            "stage": "ingest",
            "latest_version": state.versions.last().map(|v| v.version.clone()),
            "versions": state.versions.len(),
            "snapshot": state.latest_snapshot.as_ref().map(|s| s.hash.clone()),
            "last_run": runs.first(),
            "recent_failures": failures,
        }));
        let mine: Vec<&pipeline::ViewRun> = views.iter().filter(|v| v.dataset == dataset).collect();
        let runs = pipeline::recent_runs(&store, "features", &dataset, 50).await?;
        if mine.is_empty() && runs.is_empty() {
            continue;
        }
        let failures: Vec<_> = runs
            .iter()
            .filter(|r| r.outcome == "failed" || r.outcome == "rejected")
            .take(5)
            .cloned()
            .collect();
        rows.push(serde_json::json!({
            "dataset": dataset,
            "stage": "features",
            "latest_version": mine
                .iter()
                .map(|v| format!("{}@{}", v.view, v.version.as_deref().unwrap_or("-")))
                .collect::<Vec<_>>()
                .join(", "),
            "versions": mine.iter().filter(|v| v.version.is_some()).count(),
            "snapshot": state.latest_snapshot.as_ref().map(|s| s.hash.clone()),
            "last_run": runs.first(),
            "recent_failures": failures,
        }));
        // Training runs are recorded per feature view.
        for view in &mine {
            let runs = pipeline::recent_runs(&store, "train", &view.view, 50).await?;
            if runs.is_empty() {
                continue;
            }
            let failures: Vec<_> = runs
                .iter()
                .filter(|r| r.outcome == "failed" || r.outcome == "rejected")
                .take(5)
                .cloned()
                .collect();
            let latest = runs.iter().find_map(|r| r.version.clone());
            rows.push(serde_json::json!({
                "dataset": dataset,
                "stage": "train",
                "latest_version": latest,
                "versions": runs.iter().filter(|r| r.outcome == "committed").count(),
                "snapshot": state.latest_snapshot.as_ref().map(|s| s.hash.clone()),
                "last_run": runs.first(),
                "recent_failures": failures,
            }));
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        println!("no datasets in {} (run `mlpipe run` first)", store.url());
    }
    for r in &rows {
        println!(
            "{} / {}: latest version {} ({} versions), snapshot {}",
            r["dataset"].as_str().unwrap_or("?"),
            r["stage"].as_str().unwrap_or("?"),
            r["latest_version"].as_str().unwrap_or("-"),
            r["versions"],
            r["snapshot"].as_str().unwrap_or("-")
        );
        if let Some(last) = r["last_run"].as_object() {
            println!(
                "  last run {} on {}: {}",
                last["started_at"].as_str().unwrap_or("?"),
                last["trigger_key"].as_str().unwrap_or("?"),
                last["outcome"].as_str().unwrap_or("?")
            );
        }
        for f in r["recent_failures"].as_array().into_iter().flatten() {
            println!(
                "  {} {} {}: {}",
                f["outcome"].as_str().unwrap_or("?"),
                f["started_at"].as_str().unwrap_or("?"),
                f["trigger_key"].as_str().unwrap_or("?"),
                f["message"].as_str().unwrap_or("")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One measured run for `cargo xtask bench ingest`: prints a JSON line with the time, rows and
/// peak resident memory of this process.
async fn bench_ingest(
    file: &Path,
    mode: &str,
    project: Option<PathBuf>,
    workdir: &Path,
) -> Result<ExitCode> {
    let bytes = std::fs::metadata(file)?.len();
    let (secs, rows) = match mode {
        "plain" => {
            let t = Instant::now();
            let mut df = CsvReadOptions::default()
                .with_has_header(true)
                .try_into_reader_with_file_path(Some(file.to_path_buf()))?
                .finish()?;
            let out = std::fs::File::create(workdir.join("plain.parquet"))?;
            ParquetWriter::new(out)
                .with_compression(ParquetCompression::Zstd(None))
                .finish(&mut df)?;
            (t.elapsed().as_secs_f64(), df.height() as u64)
        }
        "ingest" => {
            let project = load_project(project)?;
            let store = Store::local(&workdir.join("store"))?;
            pipeline::push_project(&store, &project).await?;
            let dataset = project
                .contracts
                .keys()
                .next()
                .context("project has no dataset")?
                .clone();
            let key = zones::raw(&dataset, "bench.csv");
            let target = workdir.join("store").join(&key);
            std::fs::create_dir_all(target.parent().context("no parent")?)?;
            std::fs::copy(file, &target)?;
            let t = Instant::now();
            let outcome = ingest::ingest_object(&store, &key).await?;
            let rows = match outcome {
                ingest::IngestOutcome::Committed { rows, .. } => rows.read,
                ingest::IngestOutcome::AlreadyDone { .. } => 0,
            };
            (t.elapsed().as_secs_f64(), rows)
        }
        other => bail!("unknown mode '{other}' (ingest or plain)"),
    };
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let peak_kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    println!(
        "{}",
        serde_json::json!({"mode": mode, "rows": rows, "bytes": bytes, "secs": secs, "peak_rss_bytes": peak_kb * 1024})
    );
    Ok(ExitCode::SUCCESS)
}

async fn train_cmd(
    stack: LocalStack,
    project: Option<PathBuf>,
    snapshot: Option<String>,
    json: bool,
) -> Result<ExitCode> {
    let project = load_project(project)?;
    pipeline::push_project(stack.store(), &project).await?;
    if project.training_files.is_empty() {
        bail!(
            "project '{}' lists no training files (`training = [...]` in mlpipe.toml)",
            project.project.name
        );
    }
    let job = train::job::JobConfig::from_env()?;
    let mut results = Vec::new();
    for (path, text) in &project.training_files {
        let cfg = train::TrainingConfig::from_toml(text, &path.display().to_string())?;
        let spinner = if json || !std::io::stderr().is_terminal() {
            ProgressBar::hidden()
        } else {
            let b = ProgressBar::new_spinner();
            b.set_message(format!("training {}", cfg.model));
            b.enable_steady_tick(std::time::Duration::from_millis(120));
            b
        };
        let request = train::job::RetrainRequest {
            model: cfg.model.clone(),
            snapshot: snapshot.clone(),
            reason: Some("mlpipe train".into()),
        };
        let outcome = train::job::retrain(stack.store(), &request, "cli:mlpipe-train", &job)
            .await
            .with_context(|| format!("training '{}'", cfg.model))?;
        spinner.finish_and_clear();
        results.push(serde_json::to_value(outcome)?);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        for r in &results {
            println!("{}", mlpipe::train_ops::describe_outcome(r));
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn drift_cmd(store: Store, command: DriftCommand) -> Result<ExitCode> {
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
                std::fs::write(&path, drift::html::render(r))
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

async fn models_cmd(store: Store, command: ModelsCommand) -> Result<ExitCode> {
    use mlpipe::train_ops;
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

async fn runs_cmd(store: Store, command: RunsCommand) -> Result<ExitCode> {
    use mlpipe::train_ops;
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

async fn features_cmd(
    store: Store,
    online: Option<&str>,
    command: FeaturesCommand,
) -> Result<ExitCode> {
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
                v.entity.replace(features::KEY_SEPARATOR, "|"),
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
