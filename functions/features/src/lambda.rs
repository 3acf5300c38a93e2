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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use lambda_runtime::{Context, LambdaEvent};
    use serde_json::Value;
    use storage::Store;
    use storage::records::Snapshot;

    use crate::Config;

    /// The EventBridge fixture AWS delivers, pointed at `key`.
    fn eventbridge(key: &str) -> Value {
        let path = format!(
            "{}/../../shared/events/tests/fixtures/eventbridge-s3.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        v["detail"]["object"]["key"] = Value::String(key.into());
        v
    }

    async fn invoke(store: &Store, payload: Value) -> Result<Value, lambda_runtime::Error> {
        super::handle(
            store,
            &Config::default(),
            LambdaEvent::new(payload, Context::default()),
        )
        .await
    }

    #[tokio::test]
    async fn snapshot_events_reach_the_stage_other_keys_do_not() {
        let store = Store::memory();
        let snapshot = Snapshot {
            format: 1,
            dataset: "transactions".into(),
            hash: "abc".into(),
            versions: vec![],
            contract_lineage: 1,
            created_at: "2026-01-01T00:00:00Z".into(),
        };
        store
            .put(
                "snapshots/transactions/abc.json",
                serde_json::to_vec(&snapshot).unwrap(),
            )
            .await
            .unwrap();
        // No view reads the dataset: a committed no-op.
        let out = invoke(&store, eventbridge("snapshots/transactions/abc.json"))
            .await
            .unwrap();
        assert_eq!(out["results"][0]["dataset"], "transactions", "{out}");
        assert_eq!(out["results"][0]["views"], Value::Array(vec![]));
        // Raw uploads belong to ingest.
        let out = invoke(&store, eventbridge("raw/transactions/a.csv"))
            .await
            .unwrap();
        assert_eq!(out["results"], Value::Array(vec![]));
        // A snapshot that is gone is reported, not retried forever.
        let out = invoke(&store, eventbridge("snapshots/transactions/gone.json"))
            .await
            .unwrap();
        assert_eq!(out["results"][0]["outcome"], "rejected", "{out}");
        // A payload that is no event at all fails the invocation.
        assert!(
            invoke(&store, serde_json::json!({"nope": 1}))
                .await
                .is_err()
        );
    }
}
