//! The ingest Lambda binary: wiring only. The adapter is `ingest::lambda::handle`.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;
use storage::Store;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // Logs as JSON lines; traces and metrics over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is
    // set (e.g. the ADOT collector layer), exported before each invocation returns.
    let telemetry = telemetry::sdk::init(telemetry::sdk::Options::new(
        "mlpipe-ingest",
        telemetry::sdk::Logs::LambdaJson,
    ));
    let url = std::env::var("MLPIPE_STORE")
        .map_err(|_| "MLPIPE_STORE is not set (e.g. s3://my-bucket)")?;
    let store = Store::open(&url)?;
    run(service_fn(|event: LambdaEvent<Value>| {
        telemetry.invocation("ingest", ingest::lambda::handle(&store, event))
    }))
    .await
}
