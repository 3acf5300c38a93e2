//! The Lambda adapter, kept in the library so it is tested with the JSON AWS delivers.
//! A retryable failure fails the invocation (the platform redelivers; the stage is
//! idempotent); a definition or data error is logged and acknowledged.

use events::{Stage, parse_envelope, routes_for};
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use storage::Store;

use crate::Config;

pub async fn handle(
    store: &Store,
    config: &Config,
    event: LambdaEvent<Value>,
) -> Result<Value, lambda_runtime::Error> {
    let objects = parse_envelope(&event.payload)?;
    let mut results = Vec::new();
    for object in objects.iter().filter(|o| {
        routes_for(&o.key)
            .iter()
            .any(|r| r.stage == Stage::Features)
    }) {
        match crate::handle(store, object, config).await {
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
