//! The ingest Lambda: adapts whatever AWS delivers (S3 notification, SQS-wrapped
//! notifications, EventBridge "Object Created") to the library handler.

use events::{ObjectCreated, Stage, parse_envelope, routes_for};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::{Value, json};
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
        handle(&store, event)
    }))
    .await
}

/// Handles every object in the delivery. A retryable failure fails the invocation so the
/// platform redelivers (the handler is idempotent); a bad file is reported in quarantine and
/// acknowledged, since retrying cannot fix it.
async fn handle(store: &Store, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let objects: Vec<ObjectCreated> = parse_envelope(&event.payload)?;
    let mut results = Vec::new();
    for object in objects
        .iter()
        .filter(|o| routes_for(&o.key).iter().any(|r| r.stage == Stage::Ingest))
    {
        match ingest::handle(store, object).await {
            Ok(outcome) => results.push(serde_json::to_value(outcome)?),
            Err(e) if e.is_retryable() => return Err(e.into()),
            Err(e) => {
                tracing::error!(key = %object.key, error = %e, "rejected");
                results.push(
                    json!({"outcome": "rejected", "key": object.key, "error": e.to_string()}),
                );
            }
        }
    }
    Ok(json!({ "results": results }))
}
