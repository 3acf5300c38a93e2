//! The drift-stage Lambda binary: wiring only. The adapter is `drift::lambda::handle`.
//!
//! `MLPIPE_STORE`: the pipeline store; `MLPIPE_LOGS_STORE`: where prediction logs are when
//! not in the pipeline store (e.g. the Worker's R2 bucket through its S3 API); a model's
//! `[drift] logs` setting overrides both.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;
use storage::Store;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .with_target(false)
        .without_time()
        .init();
    let url = std::env::var("MLPIPE_STORE")
        .map_err(|_| "MLPIPE_STORE is not set (e.g. s3://my-bucket)")?;
    let store = Store::open(&url)?;
    let logs = match std::env::var("MLPIPE_LOGS_STORE") {
        Ok(u) if !u.is_empty() => Store::open(&u)?,
        _ => store.clone(),
    };
    run(service_fn(|event: LambdaEvent<Value>| {
        drift::lambda::handle(&store, &logs, event)
    }))
    .await
}
