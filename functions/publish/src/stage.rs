//! The publish stage as the pipeline runs it: one handler for the two events it listens
//! to (see `events::routing_table`), each mapped to [`publish_champion`] or
//! [`publish_online`].

use serde::Serialize;
use storage::Store;
use storage::records::FeatureManifest;

use crate::{
    Edge, Outcome, Publication, PublishError, online_blob_key, publish_champion, publish_online,
};

/// What one event did, as the local stack and the Lambda report it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum StageOutcome {
    Published {
        publication: Publication,
    },
    /// Recorded as published before: nothing was written (a redelivered event).
    AlreadyDone {
        record: String,
    },
    /// Nothing to publish for this event, and why.
    Skipped {
        key: String,
        reason: String,
    },
}

impl From<Outcome> for StageOutcome {
    fn from(o: Outcome) -> StageOutcome {
        match o {
            Outcome::Published(publication) => StageOutcome::Published { publication },
            Outcome::AlreadyDone(record) => StageOutcome::AlreadyDone { record },
        }
    }
}

/// The model whose `champion` alias object `key` is (`models/<model>/aliases/champion.json`).
fn champion_alias_model(key: &str) -> Option<&str> {
    key.strip_prefix(registry::MODELS)?
        .strip_suffix("/aliases/champion.json")
        .filter(|m| !m.is_empty() && !m.contains('/'))
}

/// Whether `key` is a feature-view version's manifest (`features/<view>/v=<version>/_manifest.json`).
fn is_feature_manifest(key: &str) -> bool {
    key.strip_prefix("features/")
        .and_then(|k| k.strip_suffix("/_manifest.json"))
        .is_some_and(|k| {
            let mut parts = k.split('/');
            matches!(
                (parts.next(), parts.next(), parts.next()),
                (Some(v), Some(ver), None) if !v.is_empty() && ver.starts_with("v=")
            )
        })
}

/// Handles one object event: a moved `champion` alias publishes that model's champion, a
/// new feature-view manifest publishes the version's online records. With no target
/// configured (`None`), the event is acknowledged as skipped.
pub async fn handle<E: Edge>(
    store: &Store,
    key: &str,
    target: Option<&E>,
) -> Result<StageOutcome, PublishError> {
    let started = std::time::Instant::now();
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let result = handle_inner(store, key, target).await;
    let (outcome, message) = match &result {
        Ok(StageOutcome::Published { .. }) => ("committed", None),
        Ok(StageOutcome::AlreadyDone { .. }) => ("already-done", None),
        Ok(StageOutcome::Skipped { reason, .. }) => ("skipped", Some(reason.clone())),
        Err(e) if e.is_retryable() => ("failed", Some(e.to_string())),
        Err(e) => ("rejected", Some(e.to_string())),
    };
    // The run record (for `mlpipe status`) is also where the stage's metrics are recorded.
    store
        .record_run(&storage::records::RunRecord {
            stage: "publish".into(),
            dataset: champion_alias_model(key).unwrap_or("_features").to_string(),
            trigger_key: key.to_string(),
            started_at,
            duration_ms: started.elapsed().as_millis() as u64,
            outcome: outcome.into(),
            message,
            ..Default::default()
        })
        .await;
    result
}

async fn handle_inner<E: Edge>(
    store: &Store,
    key: &str,
    target: Option<&E>,
) -> Result<StageOutcome, PublishError> {
    let skipped = |reason: &str| {
        Ok(StageOutcome::Skipped {
            key: key.into(),
            reason: reason.into(),
        })
    };
    if let Some(model) = champion_alias_model(key) {
        let Some(edge) = target else {
            return skipped(
                "no edge target is configured (MLPIPE_EDGE_OBJECTS, MLPIPE_EDGE_R2 or MLPIPE_EDGE_WRANGLER_STATE)",
            );
        };
        return Ok(publish_champion(store, model, edge).await?.into());
    }
    if is_feature_manifest(key) {
        let bytes = store
            .get_opt(key)
            .await?
            .ok_or_else(|| PublishError::Missing(format!("{key} is missing")))?
            .bytes;
        let manifest: FeatureManifest =
            serde_json::from_slice(&bytes).map_err(|e| PublishError::Invalid {
                key: key.into(),
                message: format!("not a feature manifest: {e}"),
            })?;
        if manifest.online_snapshot.is_none() {
            if manifest.online.records == 0 {
                return skipped("the view keeps no online state");
            }
            return Err(PublishError::Missing(format!(
                "{}: {} online records exceed the single-blob limit, so there is no {} to publish from",
                key,
                manifest.online.records,
                online_blob_key(&manifest.view, &manifest.version)
            )));
        }
        let Some(edge) = target else {
            return skipped(
                "no edge target is configured (MLPIPE_EDGE_OBJECTS, MLPIPE_EDGE_R2 or MLPIPE_EDGE_WRANGLER_STATE)",
            );
        };
        return Ok(
            publish_online(store, &manifest.view, &manifest.version, edge)
                .await?
                .into(),
        );
    }
    skipped("not a champion alias or a feature-view manifest")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_their_publication() {
        assert_eq!(
            champion_alias_model("models/fraud/aliases/champion.json"),
            Some("fraud")
        );
        assert_eq!(
            champion_alias_model("models/fraud/aliases/challenger.json"),
            None
        );
        assert_eq!(
            champion_alias_model("models/fraud/aliases/_history/champion.json"),
            None
        );
        assert!(is_feature_manifest("features/card/v=abc/_manifest.json"));
        assert!(!is_feature_manifest(
            "features/card/profiles/_manifest.json"
        ));
        assert!(!is_feature_manifest("features/card/v=abc/x/_manifest.json"));
    }
}
