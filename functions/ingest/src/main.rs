//! The ingest Lambda binary: wiring only. The adapter is `ingest::lambda::handle`.

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
    run(service_fn(|event: LambdaEvent<Value>| {
        ingest::lambda::handle(&store, event)
    }))
    .await
}
