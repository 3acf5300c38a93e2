//! `batch-predict-job`: the batch stage as a container job, for inputs too large for a
//! function (the routing table's size split). Wiring only; the work is
//! `batch_predict::BatchPredict` through the one stage runner, so its run record, retries
//! and idempotency are the function's.
//!
//! The trigger is the uploaded input (`batch-input/<model>/<file>`), passed as `--key` or
//! `MLPIPE_TRIGGER_KEY` (EventBridge's Batch target maps the S3 key into it).
//! `MLPIPE_STORE` names the store, `MLPIPE_ONLINE_STORE` the online store (without it the
//! newest feature version's records are read). Exit status 0: scored or already done; 1:
//! rejected (bad input or no such model; retrying will not help); 75: retryable.

use std::process::ExitCode;
use std::sync::Arc;

use batch_predict::BatchPredict;
use clap::Parser;
use events::{Event, ObjectCreated};
use storage::Store;

#[derive(Parser)]
#[command(
    name = "batch-predict-job",
    version,
    about = "mlpipe batch inference job"
)]
struct Args {
    /// The pipeline store, e.g. s3://my-bucket or file:///data/store.
    #[arg(long, env = "MLPIPE_STORE", hide_env_values = true)]
    store: String,
    /// The uploaded input that triggered the job (batch-input/<model>/<file>).
    #[arg(long, env = "MLPIPE_TRIGGER_KEY")]
    key: String,
    /// The online store raw records are scored against (e.g. dynamodb://table?region=...).
    #[arg(long, env = "MLPIPE_ONLINE_STORE", hide_env_values = true)]
    online: Option<String>,
}

#[derive(Debug, thiserror::Error)]
enum JobError {
    #[error(transparent)]
    Batch(#[from] batch_predict::BatchError),
    #[error("{0} does not exist")]
    Missing(String),
}

#[tokio::main]
async fn main() -> ExitCode {
    let telemetry = telemetry::sdk::init(telemetry::sdk::Options::new(
        "mlpipe-batch-predict",
        telemetry::sdk::Logs::Json,
    ));
    let args = Args::parse();
    let result = telemetry.invocation("batch-predict", job(&args)).await;
    telemetry.shutdown();
    match result {
        Ok(outcome) => {
            println!("{}", serde_json::to_string(&outcome).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(JobError::Batch(e)) if e.is_retryable() => {
            tracing::error!(error = %e, "retryable failure");
            ExitCode::from(75)
        }
        Err(e) => {
            tracing::error!(error = %e, "rejected");
            ExitCode::from(1)
        }
    }
}

async fn job(args: &Args) -> Result<batch_predict::StageOutcome, JobError> {
    let store = Store::open(&args.store).map_err(batch_predict::BatchError::from)?;
    let online = match &args.online {
        Some(url) => Some(Arc::new(
            online::Backend::open(url)
                .await
                .map_err(batch_predict::BatchError::Online)?,
        )),
        None => None,
    };
    let info = store
        .head(&args.key)
        .await
        .map_err(batch_predict::BatchError::from)?
        .ok_or_else(|| JobError::Missing(args.key.clone()))?;
    let event = Event::Object(ObjectCreated {
        bucket: store.bucket_name(),
        key: info.key.clone(),
        size: info.size,
        etag: info.etag.clone(),
        version_id: info.version.clone(),
        sequencer: None,
        event_time: chrono::DateTime::from_timestamp_millis(info.last_modified_ms)
            .unwrap_or_default(),
    });
    Ok(stage::run(&BatchPredict { online }, &store, &event).await?)
}
