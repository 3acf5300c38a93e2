//! `mlpipe-bench`: the measured runs behind `cargo xtask bench ingest|features|drift|train`.
//! Each prints one JSON line (time, rows, peak memory, ...) for xtask to read; not part of
//! the `mlpipe` CLI.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use contracts::LoadedProject;
use ingest::polars::prelude::{CsvReadOptions, ParquetCompression, ParquetWriter, SerReader};
use mlpipe::{default_project, pipeline};
use records::keys as zones;
use storage::Store;

#[derive(Parser)]
#[command(
    name = "mlpipe-bench",
    version,
    about = "Benchmark helpers used by `cargo xtask bench`"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Benchmark helper used by `cargo xtask bench features`.
    Features {
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
    Drift {
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
    Train {
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
    /// The bare HTTP handler `cargo xtask bench edge` sets the server beside: axum on the
    /// same HTTP stack, answering every request with a fixed inference-sized JSON body.
    /// Prints `listening on ADDR`, then serves until killed.
    Bare {
        #[arg(long, default_value = "127.0.0.1:0")]
        addr: std::net::SocketAddr,
    },
    /// The gRPC load generator of `cargo xtask bench edge`: `--streams` concurrent
    /// ModelInfer calls (one row, `raw_input_contents`) over one HTTP/2 connection, on one
    /// thread (as wrk runs on one), for `--secs` seconds or `--max-requests` calls. Prints
    /// one JSON object: requests/s, p50/p99 latency (ms), failures.
    GrpcLoad {
        #[arg(long)]
        addr: String,
        #[arg(long, default_value = "fraud")]
        model: String,
        /// Features per row (FP32).
        #[arg(long)]
        inputs: usize,
        #[arg(long, default_value_t = 10)]
        secs: u64,
        #[arg(long, default_value_t = 16)]
        streams: usize,
        #[arg(long, default_value_t = 5_000_000)]
        max_requests: u64,
        /// An API key, sent as `authorization: Bearer KEY` metadata.
        #[arg(long)]
        key: Option<String>,
    },
    /// The delivery half of `cargo xtask soak`: `--uploads` files to the S3 server at
    /// `--endpoint` (moto: S3 and SQS on one port), each object-created notification put on
    /// the queue twice, consumed by `--workers` worker loops at once. Prints one JSON object;
    /// fails when a version was committed twice or not at all or anything was dead-lettered.
    UploadSoak {
        #[arg(long)]
        endpoint: String,
        #[arg(long, default_value_t = 200)]
        uploads: usize,
        #[arg(long, default_value_t = 4)]
        workers: usize,
        /// Rows per file (the sample contract wants at least 100 valid ones).
        #[arg(long, default_value_t = 200)]
        rows: usize,
        #[arg(long, default_value = "examples/fraud")]
        project: PathBuf,
        #[arg(long, default_value = "transactions")]
        dataset: String,
    },
    /// Benchmark helper used by `cargo xtask bench ingest`.
    Ingest {
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
    // As `mlpipe` sets it up, so the stages run (and log) as they do there.
    let telemetry = telemetry::sdk::init(telemetry::sdk::Options::new(
        "mlpipe-bench",
        telemetry::sdk::Logs::Stderr {
            default_level: "warn",
        },
    ));
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
    let code = match runtime.block_on(dispatch(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    };
    telemetry.shutdown();
    code
}

/// A fixed body the size of the server's answer to one row (`/v2` infer, JSON).
const BARE_BODY: &str = r#"{"model_name":"fraud","model_version":"1","id":"00000000-0000-0000-0000-000000000000","parameters":{"threshold":0.8921493},"outputs":[{"name":"label","datatype":"BYTES","shape":[1],"data":["false"]},{"name":"probability","datatype":"FP32","shape":[1],"data":[0.5808461]},{"name":"probabilities","datatype":"FP32","shape":[1,2],"data":[0.41915387,0.5808461]}]}"#;

async fn bare(addr: std::net::SocketAddr) -> Result<ExitCode> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on {}", listener.local_addr()?);
    let app = axum::Router::new().fallback(|| async {
        (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            BARE_BODY,
        )
    });
    axum::serve(listener, app).await?;
    Ok(ExitCode::SUCCESS)
}

/// One load run's tallies.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    failed: u64,
    first_error: Option<String>,
}

fn grpc_load(
    addr: &str,
    model: &str,
    inputs: usize,
    secs: u64,
    streams: usize,
    max_requests: u64,
    key: Option<&str>,
) -> Result<ExitCode> {
    use inference_grpc::pb::grpc_inference_service_client::GrpcInferenceServiceClient;
    use inference_grpc::pb::{ModelInferRequest, model_infer_request::InferInputTensor};
    use std::sync::atomic::{AtomicU64, Ordering};
    // One thread, as wrk runs the HTTP load: the server keeps the other core.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let row: Vec<u8> = (0..inputs)
        .flat_map(|j| ((j * 7 % 11) as f32 * 0.5).to_le_bytes())
        .collect();
    let request = ModelInferRequest {
        model_name: model.to_string(),
        inputs: vec![InferInputTensor {
            name: "features".into(),
            datatype: "FP32".into(),
            shape: vec![1, inputs as i64],
            ..Default::default()
        }],
        raw_input_contents: vec![row],
        ..Default::default()
    };
    let bearer: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>> =
        key.map(|k| format!("Bearer {k}").parse()).transpose()?;
    let (tally, elapsed) = runtime.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
            .connect()
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        let sent = std::sync::Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + std::time::Duration::from_secs(secs);
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..streams.max(1) {
            let mut client = GrpcInferenceServiceClient::new(channel.clone());
            let (request, bearer, sent) = (request.clone(), bearer.clone(), sent.clone());
            tasks.spawn(async move {
                let mut tally = Tally::default();
                while Instant::now() < deadline
                    && sent.fetch_add(1, Ordering::Relaxed) < max_requests
                {
                    let mut call = tonic::Request::new(request.clone());
                    if let Some(b) = &bearer {
                        call.metadata_mut().insert("authorization", b.clone());
                    }
                    let t = Instant::now();
                    match client.model_infer(call).await {
                        Ok(_) => tally.latencies_us.push(t.elapsed().as_micros() as u64),
                        Err(e) => {
                            tally.failed += 1;
                            tally.first_error.get_or_insert_with(|| e.to_string());
                        }
                    }
                }
                tally
            });
        }
        let mut all = Tally::default();
        while let Some(t) = tasks.join_next().await {
            let t = t?;
            all.latencies_us.extend(t.latencies_us);
            all.failed += t.failed;
            if all.first_error.is_none() {
                all.first_error = t.first_error;
            }
        }
        anyhow::Ok((all, started.elapsed().as_secs_f64()))
    })?;
    let mut lat = tally.latencies_us;
    lat.sort_unstable();
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return 0.0;
        }
        lat[((lat.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0
    };
    println!(
        "{}",
        serde_json::json!({
            "requests": lat.len(),
            "rps": lat.len() as f64 / elapsed,
            "p50_ms": pct(0.5),
            "p99_ms": pct(0.99),
            "failed": tally.failed,
            "first_error": tally.first_error,
        })
    );
    Ok(ExitCode::SUCCESS)
}

async fn dispatch(command: Command) -> Result<ExitCode> {
    match command {
        Command::Bare { addr } => bare(addr).await,
        Command::UploadSoak {
            endpoint,
            uploads,
            workers,
            rows,
            project,
            dataset,
        } => {
            let v = mlpipe::soak::uploads(&mlpipe::soak::UploadSoak {
                endpoint,
                uploads,
                workers,
                rows,
                project,
                dataset,
            })
            .await?;
            println!("{v}");
            Ok(ExitCode::SUCCESS)
        }
        Command::GrpcLoad {
            addr,
            model,
            inputs,
            secs,
            streams,
            max_requests,
            key,
        } => {
            tokio::task::spawn_blocking(move || {
                grpc_load(
                    &addr,
                    &model,
                    inputs,
                    secs,
                    streams,
                    max_requests,
                    key.as_deref(),
                )
            })
            .await?
        }
        Command::Train {
            file,
            label,
            metric,
            config,
        } => {
            let v = mlpipe::bench::train(&file, &label, &metric, config.as_deref())?;
            println!("{}", serde_json::to_string(&v)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Drift {
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
        Command::Features {
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
        Command::Ingest {
            file,
            mode,
            project,
            workdir,
        } => bench_ingest(&file, &mode, project, &workdir).await,
    }
}

/// The project in `dir` (default: the shipped sample), as `mlpipe` loads it.
fn load_project(dir: Option<PathBuf>) -> Result<LoadedProject> {
    let dir = dir.unwrap_or_else(default_project);
    if !dir.join("mlpipe.toml").is_file() {
        bail!("{} has no mlpipe.toml (pass --project DIR)", dir.display());
    }
    Ok(LoadedProject::load(&dir)?)
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
