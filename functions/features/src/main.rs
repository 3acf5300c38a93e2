//! The feature-stage Lambda binary: wiring only. The adapter is `feature_stage::lambda::handle`.
//!
//! `MLPIPE_STORE`: the pipeline store (e.g. `s3://bucket`); `MLPIPE_ONLINE_STORE`: where online
//! records go (e.g. `dynamodb://mlpipe-online`); unset, only `online.bin` is written.

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;
use storage::Store;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // Logs as JSON lines; traces and metrics over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is
    // set (e.g. the ADOT collector layer), exported before each invocation returns.
    let telemetry = telemetry::sdk::init(telemetry::sdk::Options::new(
        "mlpipe-features",
        telemetry::sdk::Logs::LambdaJson,
    ));
    let url = std::env::var("MLPIPE_STORE")
        .map_err(|_| "MLPIPE_STORE is not set (e.g. s3://my-bucket)")?;
    let store = Store::open(&url)?;
    let online = match std::env::var("MLPIPE_ONLINE_STORE") {
        Ok(u) if !u.is_empty() => Some(Arc::new(online::Backend::open(&u).await?)),
        _ => None,
    };
    let config = feature_stage::Config { online };
    run(service_fn(|event: LambdaEvent<Value>| {
        telemetry.invocation(
            "features",
            feature_stage::lambda::handle(&store, &config, event),
        )
    }))
    .await
}
