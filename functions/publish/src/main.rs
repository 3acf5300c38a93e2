//! The publish-stage Lambda binary: wiring only. The adapter is `publish_stage::lambda::handle`.
//!
//! `MLPIPE_STORE`: the pipeline store. The edge target comes from `MLPIPE_EDGE_*` variables
//! (see `publish_stage::TargetSettings`): on AWS, `MLPIPE_EDGE_R2` (R2's S3 URL; its S3 key
//! pair in `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` of the URL's query), the KV account and
//! namespace, and `CLOUDFLARE_API_TOKEN`. With none set, events are acknowledged as skipped.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use publish_stage::EdgeTarget;
use serde_json::Value;
use storage::Store;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // Logs as JSON lines; traces and metrics over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is
    // set (e.g. the ADOT collector layer), exported before each invocation returns.
    let telemetry = telemetry::sdk::init(telemetry::sdk::Options::new(
        "mlpipe-publish",
        telemetry::sdk::Logs::LambdaJson,
    ));
    let url = std::env::var("MLPIPE_STORE")
        .map_err(|_| "MLPIPE_STORE is not set (e.g. s3://my-bucket)")?;
    let store = Store::open(&url)?;
    let target = EdgeTarget::from_env()?;
    if target.is_none() {
        tracing::warn!("no edge target configured: events will be acknowledged as skipped");
    }
    run(service_fn(|event: LambdaEvent<Value>| {
        telemetry.invocation(
            "publish",
            publish_stage::lambda::handle(&store, target.as_ref(), event),
        )
    }))
    .await
}
