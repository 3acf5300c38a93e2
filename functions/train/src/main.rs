//! `train-job`: the training stage as a container job (AWS Batch on GPU instances in the
//! cloud). Wiring only; the work is `train::job::handle`.
//!
//! The trigger is a feature manifest (`features/<view>/v=<version>/_manifest.json`) or a
//! retrain request (`requests/retrain/<id>.json`), passed as `--key` or `MLPIPE_TRIGGER_KEY`
//! (EventBridge's Batch target maps the S3 key into it). `MLPIPE_STORE` names the store;
//! `MLFLOW_TRACKING_URI`, when set, receives the run too. Exit status 0: trained or already
//! done; 1: rejected (bad data or configuration; retrying will not help); 75: retryable.

use clap::Parser;
use stage::StageError as _;
use storage::Store;

#[derive(Parser)]
#[command(name = "train-job", version, about = "mlpipe training job")]
struct Args {
    /// The pipeline store, e.g. s3://my-bucket or file:///data/store.
    #[arg(long, env = "MLPIPE_STORE", hide_env_values = true)]
    store: String,
    /// The object that triggered the job.
    #[arg(long, env = "MLPIPE_TRIGGER_KEY")]
    key: String,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // JSON logs; traces and metrics over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set.
    let telemetry = telemetry::sdk::init(telemetry::sdk::Options::new(
        "mlpipe-train",
        telemetry::sdk::Logs::Json,
    ));
    let args = Args::parse();
    let result = telemetry
        .invocation("train", async {
            let store = Store::open(&args.store)?;
            let job = train::job::JobConfig::from_env()?;
            train::job::handle(&store, &args.key, &job).await
        })
        .await;
    telemetry.shutdown();
    match result {
        Ok(outcomes) => {
            println!("{}", serde_json::to_string(&outcomes).unwrap_or_default());
            std::process::ExitCode::SUCCESS
        }
        Err(e) if e.is_retryable() => {
            tracing::error!(error = %e, "retryable failure");
            std::process::ExitCode::from(75)
        }
        Err(e) => {
            tracing::error!(error = %e, "rejected");
            std::process::ExitCode::from(1)
        }
    }
}
