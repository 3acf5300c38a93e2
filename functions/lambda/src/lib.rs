//! The one Lambda adapter of every function stage: it turns what AWS delivers (an S3
//! notification, SQS messages holding them, EventBridge "Object Created" or "Scheduled
//! Event") into events, hands each one routed to this function's stage to the stage's
//! handler through the one runner (`stage::Runner`), and maps the outcome to Lambda's
//! contract: a retryable failure fails the invocation so the platform redelivers (handlers
//! are idempotent; when the platform's retries run out, its dead-letter queue keeps the
//! event); a permanent fault (access denied, a key the store refuses) is written to the
//! store's typed dead-letter record and acknowledged; a rejection (bad file, bad
//! definition) is reported in the result and acknowledged, since retrying cannot fix it.
//!
//! The handler is a plain function over JSON and a [`handlers::Table`], tested with the
//! fixtures AWS delivers; `main.rs` only wires the runtime.

use events::{Stage, Target, parse_events, routing_table};
use handlers::Table;
use serde_json::{Value, json};
use storage::Store;

/// What fails an invocation (and so makes the platform redeliver it).
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The function stage named by `value` (`MLPIPE_STAGE`), checked against the routing table so
/// that a new stage or a batch-only one gets a precise error rather than a silent default.
pub fn function_stage(value: Option<&str>) -> Result<Stage, String> {
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
    let rows: Vec<_> = routing_table()
        .into_iter()
        .filter(|r| r.stage.name() == value)
        .collect();
    if rows.iter().any(|r| r.target == Target::Function) {
        return Ok(rows[0].stage);
    }
    if rows.is_empty() {
        return Err(format!(
            "MLPIPE_STAGE={value} is not a stage; function stages: {}",
            functions.join(", ")
        ));
    }
    Err(format!(
        "MLPIPE_STAGE={value}: that stage runs as a container job, not a Lambda; function stages: {}",
        functions.join(", ")
    ))
}

/// The watcher's settings from its environment's values (unset: the defaults).
pub fn watch_settings(
    queues: Option<&str>,
    threshold_seconds: Option<&str>,
    namespace: Option<&str>,
) -> Result<batch_watch::Settings, String> {
    let mut settings = batch_watch::Settings::default();
    if let Some(queues) = queues {
        settings.queues = queues
            .split(',')
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(str::to_string)
            .collect();
    }
    if let Some(value) = threshold_seconds.map(str::trim).filter(|v| !v.is_empty()) {
        let seconds: u32 = value.parse().map_err(|_| {
            format!("MLPIPE_RUNNABLE_THRESHOLD_SECONDS={value} is not a whole number of seconds")
        })?;
        settings.threshold = chrono::Duration::seconds(seconds.into());
    }
    if let Some(namespace) = namespace.map(str::trim).filter(|v| !v.is_empty()) {
        settings.namespace = namespace.to_string();
    }
    Ok(settings)
}

/// Handles one invocation of `stage`'s function.
pub async fn handle(
    table: &Table,
    stage: Stage,
    store: &Store,
    payload: &Value,
) -> Result<Value, Error> {
    let runner = table
        .runner(stage)
        .ok_or_else(|| format!("no handler for stage {stage}"))?;
    let mut results = Vec::new();
    for event in parse_events(payload)? {
        if !table.stages_for(&event).contains(&stage) {
            continue;
        }
        let attempt = runner.attempt(store, &event).await;
        if attempt.retryable {
            return Err(format!(
                "{stage} on {}: {} (retryable; failing the invocation so it is redelivered)",
                event.trigger(),
                attempt.result.as_str().unwrap_or_default()
            )
            .into());
        }
        results.push(if attempt.ok {
            attempt.result
        } else if attempt.fault {
            // A fault no retry fixes (access denied, a key the store refuses): redelivering
            // would fail the same way, so the event is kept in the typed dead-letter record
            // for `mlpipe redrive` once the cause is fixed, and acknowledged.
            let record = stage::dead_letter(store, stage, &event, 1, &attempt.result).await;
            json!({"outcome": "dead-lettered", "key": event.trigger(), "error": attempt.result, "record": record})
        } else {
            json!({"outcome": "rejected", "key": event.trigger(), "error": attempt.result})
        });
    }
    Ok(json!({ "results": results }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use handlers::Settings;

    const CONTRACT: &str = "dataset = \"transactions\"\n[[columns]]\nname = \"id\"\ntype = \"integer\"\nnullable = false\n";

    fn fixture(name: &str) -> Value {
        let text = match name {
            "s3-put.json" => include_str!("../../../shared/events/tests/fixtures/s3-put.json"),
            "sqs-s3.json" => include_str!("../../../shared/events/tests/fixtures/sqs-s3.json"),
            "eventbridge-s3.json" => {
                include_str!("../../../shared/events/tests/fixtures/eventbridge-s3.json")
            }
            "eventbridge-schedule.json" => {
                include_str!("../../../shared/events/tests/fixtures/eventbridge-schedule.json")
            }
            other => panic!("no fixture {other}"),
        };
        serde_json::from_str(text).unwrap()
    }

    /// The EventBridge fixture AWS delivers, pointed at `key`.
    fn eventbridge(key: &str) -> Value {
        let mut v = fixture("eventbridge-s3.json");
        v["detail"]["object"]["key"] = Value::String(key.into());
        v
    }

    async fn store_with(keys: &[&str]) -> Store {
        let store = Store::memory();
        let contract = contracts::Contract::from_toml(CONTRACT, "c.toml").unwrap();
        ingest::definitions::publish_contract(&store, &contract, CONTRACT)
            .await
            .unwrap();
        for key in keys {
            store.put(key, "id\n1\n2\n").await.unwrap();
        }
        store
    }

    async fn invoke(store: &Store, stage: Stage, payload: Value) -> Result<Value, Error> {
        let table = Table::new(&Settings::default());
        handle(&table, stage, store, &payload).await
    }

    #[test]
    fn the_watcher_reads_its_settings_and_refuses_a_bad_threshold() {
        let s = watch_settings(Some("mlpipe-dev-train, other,"), Some("900"), None).unwrap();
        assert_eq!(s.queues, vec!["mlpipe-dev-train", "other"]);
        assert_eq!(s.threshold, chrono::Duration::minutes(15));
        assert_eq!(s.namespace, "mlpipe");
        let d = watch_settings(None, None, Some("team")).unwrap();
        assert!(d.queues.is_empty());
        assert_eq!(d.threshold, chrono::Duration::minutes(30));
        assert_eq!(d.namespace, "team");
        let err = watch_settings(None, Some("half an hour"), None).unwrap_err();
        assert!(err.contains("MLPIPE_RUNNABLE_THRESHOLD_SECONDS"), "{err}");
    }

    #[test]
    fn every_function_stage_is_accepted_batch_and_unknown_ones_are_named() {
        let table = routing_table();
        for route in &table {
            let parsed = function_stage(Some(route.stage.name()));
            // A stage with a function row (batch-predict: a function below a size, a job
            // above) is a function stage.
            let function = table
                .iter()
                .any(|r| r.stage == route.stage && r.target == Target::Function);
            match route.target {
                _ if function => assert_eq!(parsed, Ok(route.stage)),
                Target::Function => unreachable!(),
                Target::BatchJob => {
                    let err = parsed.expect_err("batch stages are not functions");
                    assert!(err.contains("container job"), "{err}");
                }
            }
        }
        let err = function_stage(None).expect_err("unset");
        assert!(err.contains("MLPIPE_STAGE is not set"), "{err}");
        assert!(err.contains("ingest, features, publish, drift"), "{err}");
        assert!(function_stage(Some("  ")).is_err());
        let err = function_stage(Some("ingestt")).expect_err("typo");
        assert!(err.contains("ingestt is not a stage"), "{err}");
        assert_eq!(function_stage(Some(" drift ")), Ok(Stage::Drift));
    }

    #[tokio::test]
    async fn an_s3_put_is_ingested_once_however_often_it_is_delivered() {
        let store = store_with(&["raw/transactions/day 1+2.csv"]).await;
        let first = invoke(&store, Stage::Ingest, fixture("s3-put.json"))
            .await
            .unwrap();
        assert_eq!(first["results"][0]["outcome"], "committed", "{first}");
        let second = invoke(&store, Stage::Ingest, fixture("s3-put.json"))
            .await
            .unwrap();
        assert_eq!(second["results"][0]["outcome"], "already-done");
        assert_eq!(
            first["results"][0]["version"],
            second["results"][0]["version"]
        );
    }

    #[tokio::test]
    async fn sqs_and_eventbridge_deliveries_reach_the_stage() {
        let store = store_with(&[
            "raw/transactions/2024/01/02.csv",
            "raw/transactions/upload.csv",
        ])
        .await;
        let sqs = invoke(&store, Stage::Ingest, fixture("sqs-s3.json"))
            .await
            .unwrap();
        assert_eq!(
            sqs["results"].as_array().unwrap().len(),
            1,
            "the test event yields nothing: {sqs}"
        );
        assert_eq!(sqs["results"][0]["outcome"], "committed");
        let eb = invoke(&store, Stage::Ingest, fixture("eventbridge-s3.json"))
            .await
            .unwrap();
        // Same bytes and contract as the SQS object: the same version, already committed.
        assert_eq!(eb["results"][0]["outcome"], "already-done", "{eb}");
    }

    #[tokio::test]
    async fn rejections_are_acknowledged_unreadable_events_fail_the_invocation() {
        let store = store_with(&[]).await;
        store.put("raw/transactions/upload.csv", "").await.unwrap();
        let out = invoke(&store, Stage::Ingest, fixture("eventbridge-s3.json"))
            .await
            .unwrap();
        assert_eq!(out["results"][0]["outcome"], "rejected", "{out}");
        // The object named by the event does not exist (deleted since): retrying cannot help.
        let out = invoke(&store, Stage::Ingest, fixture("s3-put.json"))
            .await
            .unwrap();
        assert_eq!(out["results"][0]["outcome"], "rejected");
        assert!(
            out["results"][0]["error"]
                .as_str()
                .unwrap()
                .contains("not found"),
            "{out}"
        );
        assert!(
            invoke(&store, Stage::Ingest, json!({"unexpected": true}))
                .await
                .is_err()
        );
    }

    /// A fault no retry fixes (the store denies a write) is not retried by failing the
    /// invocation: the event is kept in the typed dead-letter record and acknowledged, and
    /// its redelivery once the cause is gone commits the version.
    #[tokio::test]
    async fn a_permanent_store_fault_is_dead_lettered_not_retried() {
        let healthy = store_with(&["raw/transactions/day 1+2.csv"]).await;
        let faults = std::sync::Arc::new(storage::Faults::none().deny(storage::Op::Put, 1));
        let store = healthy.with_faults(faults.clone());
        let out = invoke(&store, Stage::Ingest, fixture("s3-put.json"))
            .await
            .unwrap();
        assert_eq!(out["results"][0]["outcome"], "dead-lettered", "{out}");
        assert_eq!(faults.injected(), 1, "retried: {out}");
        let letters = healthy.list("dead-letters/ingest/").await.unwrap();
        assert_eq!(letters.len(), 1, "{letters:?}");
        assert_eq!(
            out["results"][0]["record"].as_str(),
            Some(letters[0].key.as_str())
        );
        let record: Value =
            serde_json::from_slice(&healthy.get(&letters[0].key).await.unwrap().bytes).unwrap();
        assert_eq!(record["stage"], "ingest");
        assert_eq!(record["trigger_key"], "raw/transactions/day 1+2.csv");
        assert!(
            record["error"].as_str().unwrap().contains("access denied"),
            "{record}"
        );
        let again = invoke(&healthy, Stage::Ingest, fixture("s3-put.json"))
            .await
            .unwrap();
        assert_eq!(again["results"][0]["outcome"], "committed", "{again}");
    }

    #[tokio::test]
    async fn events_routed_elsewhere_are_ignored() {
        let store = store_with(&[]).await;
        // A raw upload belongs to ingest, not to features or publish.
        for stage in [Stage::Features, Stage::Publish] {
            let out = invoke(&store, stage, eventbridge("raw/transactions/a.csv"))
                .await
                .unwrap();
            assert_eq!(out["results"], json!([]), "{stage}: {out}");
        }
        // A snapshot that is not there is reported, not retried forever.
        let out = invoke(
            &store,
            Stage::Features,
            eventbridge("snapshots/transactions/gone.json"),
        )
        .await
        .unwrap();
        assert_eq!(out["results"][0]["outcome"], "rejected", "{out}");
        // A champion move with no edge target configured is acknowledged as skipped.
        let out = invoke(
            &store,
            Stage::Publish,
            eventbridge("models/fraud/aliases/champion.json"),
        )
        .await
        .unwrap();
        assert_eq!(out["results"][0]["outcome"], "skipped", "{out}");
    }

    #[tokio::test]
    async fn the_schedule_runs_the_drift_check_at_the_event_time() {
        let store = Store::memory();
        let out = invoke(&store, Stage::Drift, fixture("eventbridge-schedule.json"))
            .await
            .unwrap();
        // No model has a champion yet: a check of nothing.
        assert_eq!(out["results"], json!([[]]), "{out}");
        let runs = store.list("pipeline-runs/drift/_models/").await.unwrap();
        assert_eq!(runs.len(), 1);
        let record = store.get(&runs[0].key).await.unwrap().bytes;
        let record: Value = serde_json::from_slice(&record).unwrap();
        assert_eq!(record["trigger_key"], "schedule@2026-11-26T11:00:00Z");
        assert_eq!(record["outcome"], "committed");
        // Ingest is not scheduled: the schedule is not routed to it.
        let out = invoke(&store, Stage::Ingest, fixture("eventbridge-schedule.json"))
            .await
            .unwrap();
        assert_eq!(out["results"], json!([]));
    }
}
