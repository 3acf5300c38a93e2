//! The Lambda adapter, kept in the library so it is tested with the JSON AWS delivers.
//!
//! Accepts S3 notifications, SQS-wrapped notifications and EventBridge "Object Created"
//! events. A retryable failure fails the invocation so the platform redelivers (the handler is
//! idempotent); a bad file is reported in quarantine and acknowledged, since retrying cannot
//! fix it.

use events::{Stage, parse_envelope, routes_for};
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use storage::Store;

/// Handles one Lambda invocation for the ingest stage.
pub async fn handle(
    store: &Store,
    event: LambdaEvent<Value>,
) -> Result<Value, lambda_runtime::Error> {
    let objects = parse_envelope(&event.payload)?;
    let mut results = Vec::new();
    for object in objects
        .iter()
        .filter(|o| routes_for(&o.key).iter().any(|r| r.stage == Stage::Ingest))
    {
        match crate::handle(store, object).await {
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

#[cfg(test)]
mod tests {
    use lambda_runtime::{Context, LambdaEvent};
    use serde_json::Value;
    use storage::Store;

    const CONTRACT: &str = "dataset = \"transactions\"\n[[columns]]\nname = \"id\"\ntype = \"integer\"\nnullable = false\n";

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/../../shared/events/tests/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    async fn store_with(keys: &[&str]) -> Store {
        let store = Store::memory();
        let contract = contracts::Contract::from_toml(CONTRACT, "c.toml").unwrap();
        crate::definitions::publish_contract(&store, &contract, CONTRACT)
            .await
            .unwrap();
        for key in keys {
            store.put(key, "id\n1\n2\n").await.unwrap();
        }
        store
    }

    async fn invoke(store: &Store, payload: Value) -> Result<Value, lambda_runtime::Error> {
        super::handle(store, LambdaEvent::new(payload, Context::default())).await
    }

    #[tokio::test]
    async fn s3_put_fixture_ingests_the_decoded_key_twice_idempotently() {
        let store = store_with(&["raw/transactions/day 1+2.csv"]).await;
        let first = invoke(&store, fixture("s3-put.json")).await.unwrap();
        assert_eq!(first["results"][0]["outcome"], "committed", "{first}");
        let second = invoke(&store, fixture("s3-put.json")).await.unwrap();
        assert_eq!(second["results"][0]["outcome"], "already-done");
        assert_eq!(
            first["results"][0]["version"],
            second["results"][0]["version"]
        );
    }

    #[tokio::test]
    async fn sqs_and_eventbridge_fixtures() {
        let store = store_with(&[
            "raw/transactions/2024/01/02.csv",
            "raw/transactions/upload.csv",
        ])
        .await;
        let sqs = invoke(&store, fixture("sqs-s3.json")).await.unwrap();
        assert_eq!(
            sqs["results"].as_array().unwrap().len(),
            1,
            "the test event yields nothing: {sqs}"
        );
        assert_eq!(sqs["results"][0]["outcome"], "committed");
        let eb = invoke(&store, fixture("eventbridge-s3.json"))
            .await
            .unwrap();
        // Same bytes and contract as the SQS object: the same version, already committed.
        assert_eq!(eb["results"][0]["outcome"], "already-done", "{eb}");
    }

    #[tokio::test]
    async fn bad_files_and_missing_objects_are_acknowledged_unreadable_events_fail() {
        let store = store_with(&[]).await;
        store.put("raw/transactions/upload.csv", "").await.unwrap();
        let out = invoke(&store, fixture("eventbridge-s3.json"))
            .await
            .unwrap();
        assert_eq!(out["results"][0]["outcome"], "rejected");
        // The object named by the event does not exist (deleted since): retrying cannot help.
        let out = invoke(&store, fixture("s3-put.json")).await.unwrap();
        assert_eq!(out["results"][0]["outcome"], "rejected");
        assert!(
            out["results"][0]["error"]
                .as_str()
                .unwrap()
                .contains("not found"),
            "{out}"
        );
        assert!(
            invoke(&store, serde_json::json!({"unexpected": true}))
                .await
                .is_err()
        );
    }
}
