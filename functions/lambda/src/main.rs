//! `mlpipe-lambda`: the Lambda binary of every function stage (ingest, features, publish,
//! drift). Each stage is still its own function with its own role, triggers and dead-letter
//! queue; they share this one binary so that packaging builds polars and the runtime once
//! (one ~10 MB zip instead of four) and a deployment ships one artifact. The stage comes
//! from `MLPIPE_STAGE`; the training stage is a container job (`train-job`), not a function.
//!
//! Settings, all from the environment:
//! - `MLPIPE_STAGE`: `ingest`, `features`, `publish` or `drift`;
//! - `MLPIPE_STORE`: the pipeline store (e.g. `s3://my-bucket`);
//! - features: `MLPIPE_ONLINE_STORE` (e.g. `dynamodb://table?region=eu-west-1`), optional;
//! - publish: the edge target, `MLPIPE_EDGE_*` and `CLOUDFLARE_API_TOKEN` (see
//!   `publish_stage::TargetSettings`); without one, events are acknowledged as skipped;
//! - drift: `MLPIPE_LOGS_STORE`, where prediction logs are when not in the pipeline store
//!   (e.g. the Worker's R2 bucket through its S3 API);
//! - `OTEL_EXPORTER_OTLP_ENDPOINT`: traces and metrics over OTLP (e.g. the ADOT collector
//!   layer), exported before each invocation returns.

use std::sync::Arc;

use events::{Stage, Target, routing_table};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;
use storage::Store;
use telemetry::sdk::{Logs, Options};

/// The function stage named by `value`, checked against the routing table so that a new
/// stage or a batch-only one gets a precise error rather than a silent default.
fn function_stage(value: Option<&str>) -> Result<Stage, String> {
    let functions: Vec<&'static str> = routing_table()
        .iter()
        .filter(|r| r.target == Target::Function)
        .map(|r| r.stage.name())
        .collect();
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Err(format!(
            "MLPIPE_STAGE is not set; name the stage this function runs: {}",
            functions.join(", ")
        ));
    };
    match routing_table().iter().find(|r| r.stage.name() == value) {
        Some(route) if route.target == Target::Function => Ok(route.stage),
        Some(_) => Err(format!(
            "MLPIPE_STAGE={value}: that stage runs as a container job (train-job), not a Lambda; function stages: {}",
            functions.join(", ")
        )),
        None => Err(format!(
            "MLPIPE_STAGE={value} is not a stage; function stages: {}",
            functions.join(", ")
        )),
    }
}

/// `service.name` of the stage's telemetry.
fn service_name(stage: Stage) -> &'static str {
    match stage {
        Stage::Ingest => "mlpipe-ingest",
        Stage::Features => "mlpipe-features",
        Stage::Train => "mlpipe-train",
        Stage::Publish => "mlpipe-publish",
        Stage::Drift => "mlpipe-drift",
    }
}

/// A store named by an optional variable, or `None` when unset or empty.
fn optional_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let stage = function_stage(std::env::var("MLPIPE_STAGE").ok().as_deref())?;
    let telemetry = telemetry::sdk::init(Options::new(service_name(stage), Logs::LambdaJson));
    let url = std::env::var("MLPIPE_STORE")
        .map_err(|_| "MLPIPE_STORE is not set (e.g. s3://my-bucket)")?;
    let store = Store::open(&url)?;
    let name = stage.name();
    tracing::info!(stage = name, "starting");
    match stage {
        Stage::Ingest => {
            run(service_fn(|event: LambdaEvent<Value>| {
                telemetry.invocation(name, ingest::lambda::handle(&store, event))
            }))
            .await
        }
        Stage::Features => {
            let online = match optional_env("MLPIPE_ONLINE_STORE") {
                Some(u) => Some(Arc::new(online::Backend::open(&u).await?)),
                None => None,
            };
            let config = feature_stage::Config { online };
            run(service_fn(|event: LambdaEvent<Value>| {
                telemetry.invocation(name, feature_stage::lambda::handle(&store, &config, event))
            }))
            .await
        }
        Stage::Publish => {
            let target = publish_stage::EdgeTarget::from_env()?;
            if target.is_none() {
                tracing::warn!("no edge target configured: events will be acknowledged as skipped");
            }
            run(service_fn(|event: LambdaEvent<Value>| {
                telemetry.invocation(
                    name,
                    publish_stage::lambda::handle(&store, target.as_ref(), event),
                )
            }))
            .await
        }
        Stage::Drift => {
            let logs = match optional_env("MLPIPE_LOGS_STORE") {
                Some(u) => Store::open(&u)?,
                None => store.clone(),
            };
            run(service_fn(|event: LambdaEvent<Value>| {
                telemetry.invocation(name, drift::lambda::handle(&store, &logs, event))
            }))
            .await
        }
        Stage::Train => Err("the training stage runs as the train-job container".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_function_stage_is_accepted() {
        for route in routing_table() {
            let parsed = function_stage(Some(route.stage.name()));
            match route.target {
                Target::Function => assert_eq!(parsed, Ok(route.stage)),
                Target::BatchJob => {
                    let err = parsed.expect_err("batch stages are not functions");
                    assert!(err.contains("container job"), "{err}");
                }
            }
        }
    }

    #[test]
    fn missing_or_unknown_stages_are_named_in_the_error() {
        let err = function_stage(None).expect_err("unset");
        assert!(err.contains("MLPIPE_STAGE is not set"), "{err}");
        assert!(err.contains("ingest, features, publish, drift"), "{err}");
        assert!(function_stage(Some("  ")).is_err());
        let err = function_stage(Some("ingestt")).expect_err("typo");
        assert!(err.contains("ingestt is not a stage"), "{err}");
        assert_eq!(function_stage(Some(" drift ")), Ok(Stage::Drift));
    }
}
