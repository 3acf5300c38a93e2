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
    // Logs as JSON lines; traces and metrics over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is
    // set (e.g. the ADOT collector layer), exported before each invocation returns.
    let telemetry = telemetry::sdk::init(telemetry::sdk::Options::new(
        "mlpipe-drift",
        telemetry::sdk::Logs::LambdaJson,
    ));
    let url = std::env::var("MLPIPE_STORE")
        .map_err(|_| "MLPIPE_STORE is not set (e.g. s3://my-bucket)")?;
    let store = Store::open(&url)?;
    let logs = match std::env::var("MLPIPE_LOGS_STORE") {
        Ok(u) if !u.is_empty() => Store::open(&u)?,
        _ => store.clone(),
    };
    run(service_fn(|event: LambdaEvent<Value>| {
        telemetry.invocation("drift", drift::lambda::handle(&store, &logs, event))
    }))
    .await
}
