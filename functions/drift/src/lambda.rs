//! The Lambda adapter: an EventBridge schedule (or any event) runs a check of every model
//! at the current time. A store failure fails the invocation so it is retried; reports of
//! windows already checked are not recomputed.

use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use storage::Store;

pub async fn handle(
    store: &Store,
    logs: &Store,
    event: LambdaEvent<Value>,
) -> Result<Value, lambda_runtime::Error> {
    let now_us = chrono::Utc::now().timestamp_micros();
    tracing::info!(source = %event.payload["source"], "drift check");
    match crate::check_all(store, logs, now_us).await {
        Ok(runs) => Ok(json!({ "models": runs })),
        Err(e) if e.is_retryable() => Err(e.into()),
        Err(e) => {
            tracing::error!(error = %e, "drift check failed");
            Ok(json!({ "outcome": "rejected", "error": e.to_string() }))
        }
    }
}
