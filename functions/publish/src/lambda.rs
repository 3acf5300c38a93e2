//! The Lambda adapter, kept in the library so it is tested with the JSON AWS delivers.
//! A retryable failure (store, network, KV API) fails the invocation so the platform
//! redelivers; publication records make the redelivery do the work once. Anything else is
//! logged and acknowledged.

use events::{Stage, parse_envelope, routes_for};
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use storage::Store;

use crate::{Edge, handle as handle_key};

pub async fn handle<E: Edge>(
    store: &Store,
    target: Option<&E>,
    event: LambdaEvent<Value>,
) -> Result<Value, lambda_runtime::Error> {
    let objects = parse_envelope(&event.payload)?;
    let mut results = Vec::new();
    for object in objects
        .iter()
        .filter(|o| routes_for(&o.key).iter().any(|r| r.stage == Stage::Publish))
    {
        match handle_key(store, &object.key, target).await {
            Ok(outcome) => results.push(serde_json::to_value(outcome)?),
            Err(e) if e.is_retryable() => return Err(e.into()),
            Err(e) => {
                tracing::error!(key = %object.key, error = %e, "not published");
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

    use crate::ObjectEdge;

    fn eventbridge(key: &str) -> Value {
        let path = format!(
            "{}/../../shared/events/tests/fixtures/eventbridge-s3.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        v["detail"]["object"]["key"] = Value::String(key.into());
        v
    }

    #[tokio::test]
    async fn alias_events_publish_other_keys_are_ignored_bad_ones_are_rejected() {
        let store = Store::memory();
        let edge = ObjectEdge::new(Store::memory());
        // Not a publish trigger: filtered out before the stage.
        let out = super::handle(
            &store,
            Some(&edge),
            LambdaEvent::new(eventbridge("raw/tx/a.csv"), Context::default()),
        )
        .await
        .unwrap();
        assert_eq!(out["results"].as_array().unwrap().len(), 0);
        // A champion alias whose model has no champion object: not retryable, reported.
        let out = super::handle(
            &store,
            Some(&edge),
            LambdaEvent::new(
                eventbridge("models/fraud/aliases/champion.json"),
                Context::default(),
            ),
        )
        .await
        .unwrap();
        assert_eq!(out["results"][0]["outcome"], "rejected");
        assert!(
            out["results"][0]["error"]
                .as_str()
                .unwrap()
                .contains("has no champion"),
            "{out}"
        );
    }
}
