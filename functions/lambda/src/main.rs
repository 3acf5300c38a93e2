//! `mlpipe-lambda`: the Lambda binary of every function stage (ingest, features, publish,
//! drift, batch-predict). Each stage is still its own function with its own role, triggers
//! and dead-letter queue; they share this one binary so that packaging builds polars and the
//! runtime once and a deployment ships one artifact. Wiring only: the adapter is `lambda::handle`.
//!
//! Settings, all from the environment:
//! - `MLPIPE_STAGE`: `ingest`, `features`, `publish`, `drift` or `batch-predict`;
//! - `MLPIPE_STORE`: the pipeline store (e.g. `s3://my-bucket`);
//! - the stage's own settings (`handlers::Settings`): `MLPIPE_ONLINE_STORE` (features and
//!   batch-predict), `MLPIPE_EDGE_*` and `CLOUDFLARE_API_TOKEN` (publish; without a target,
//!   events are acknowledged as skipped), `MLPIPE_LOGS_STORE` (drift);
//! - `OTEL_EXPORTER_OTLP_ENDPOINT`: traces and metrics over OTLP (e.g. the ADOT collector
//!   layer), exported before each invocation returns.
//!
//! `MLPIPE_STAGE=batch-watch` runs the training queue's watcher instead (`batch_watch`), with
//! `MLPIPE_BATCH_QUEUES`, `MLPIPE_RUNNABLE_THRESHOLD_SECONDS` and `MLPIPE_METRIC_NAMESPACE`.

use handlers::{Settings, Table};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;
use stage::env;
use storage::Store;
use telemetry::sdk::{Logs, Options};

#[tokio::main]
async fn main() -> Result<(), Error> {
    if env::var("MLPIPE_STAGE").as_deref() == Some(batch_watch::FUNCTION) {
        return watch().await;
    }
    let stage = lambda::function_stage(env::var("MLPIPE_STAGE").as_deref())?;
    // `service.name`, made once for the life of the sandbox.
    let service: &'static str = Box::leak(format!("mlpipe-{}", stage.name()).into_boxed_str());
    let telemetry = telemetry::sdk::init(Options::new(service, Logs::LambdaJson));
    let store = Store::open(&env::required("MLPIPE_STORE", "s3://my-bucket")?)?;
    let settings = Settings::for_stage(stage).await?;
    if stage == events::Stage::Publish && settings.edge.is_none() {
        tracing::warn!("no edge target configured: events will be acknowledged as skipped");
    }
    let table = Table::new(&settings);
    tracing::info!(stage = stage.name(), "starting");
    run(service_fn(|event: LambdaEvent<Value>| {
        let (table, store) = (&table, &store);
        telemetry.invocation(stage.name(), async move {
            lambda::handle(table, stage, store, &event.payload).await
        })
    }))
    .await
}

/// The training queue's watcher: Batch state changes and its schedule.
async fn watch() -> Result<(), Error> {
    let telemetry = telemetry::sdk::init(Options::new("mlpipe-batch-watch", Logs::LambdaJson));
    let store = Store::open(&env::required("MLPIPE_STORE", "s3://my-bucket")?)?;
    let settings = lambda::watch_settings(
        env::var("MLPIPE_BATCH_QUEUES").as_deref(),
        env::var("MLPIPE_RUNNABLE_THRESHOLD_SECONDS").as_deref(),
        env::var("MLPIPE_METRIC_NAMESPACE").as_deref(),
    )?;
    run(service_fn(|event: LambdaEvent<Value>| {
        let (store, settings) = (&store, &settings);
        telemetry.invocation(batch_watch::FUNCTION, async move {
            batch_watch::handle(store, settings, &event.payload)
                .await
                .map_err(|e| Box::new(e) as lambda::Error)
        })
    }))
    .await
}
