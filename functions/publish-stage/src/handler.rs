//! The publish stage as the pipeline runs it: one handler for the events it listens to
//! (see `events::routing_table`), each mapped to [`publish_champion`], [`publish_traffic`],
//! [`publish_online`] or [`publish_keys`].

use events::Event;
use records::pipeline::FeatureManifest;
use serde::Serialize;
use storage::Store;

use crate::{
    Edge, Outcome, Publication, PublishError, online_blob_key, publish_champion, publish_keys,
    publish_online, publish_traffic,
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
            Outcome::Superseded {
                pointer,
                seq,
                edge_seq,
            } => StageOutcome::Skipped {
                key: pointer,
                reason: format!(
                    "superseded: the edge already holds move {edge_seq}, later than this one ({seq})"
                ),
            },
        }
    }
}

use records::keys::{champion_alias_model, traffic_model};

/// Whether `key` is an API key's record (`keys/<id>.json`).
fn is_api_key(key: &str) -> bool {
    key.starts_with(records::keys::API_KEYS) && key.ends_with(".json")
}

/// Whether `key` is a feature-view version's manifest (`features/<view>/v=<version>/_manifest.json`).
fn is_feature_manifest(key: &str) -> bool {
    records::keys::feature_manifest_parts(key).is_some()
}

/// The publish stage: a moved `champion` alias publishes that model's champion, a new
/// feature-view manifest publishes the version's online records, both to `target`. With no
/// target configured (`None`), events are acknowledged as skipped.
#[derive(Debug, Clone, Default)]
pub struct Publish<E> {
    pub target: Option<E>,
}

impl stage::Output for StageOutcome {
    fn summary(&self) -> stage::Summary {
        match self {
            StageOutcome::Published { publication } => {
                stage::summary_of(true, Some(publication.version.clone()))
            }
            StageOutcome::AlreadyDone { .. } => stage::summary_of(false, None),
            StageOutcome::Skipped { reason, .. } => stage::Summary {
                outcome: stage::RunOutcome::Skipped,
                message: Some(reason.clone()),
                ..stage::Summary::default()
            },
        }
    }
}

impl<E: Edge + Send + Sync> stage::Handler for Publish<E> {
    const STAGE: stage::Stage = stage::Stage::Publish;
    type Output = StageOutcome;
    type Error = PublishError;

    fn subject(&self, event: &Event) -> String {
        event
            .key()
            .and_then(|k| {
                champion_alias_model(k)
                    .or_else(|| traffic_model(k))
                    .or_else(|| is_api_key(k).then_some("_keys"))
            })
            .unwrap_or("_features")
            .to_string()
    }

    async fn handle(&self, store: &Store, event: &Event) -> Result<StageOutcome, PublishError> {
        handle_inner(store, &event.trigger(), self.target.as_ref()).await
    }
}

/// Handles one object event through the stage runner (run record, telemetry), as every
/// adapter does. See [`Publish`].
pub async fn handle<E: Edge + Send + Sync>(
    store: &Store,
    key: &str,
    target: Option<&E>,
) -> Result<StageOutcome, PublishError> {
    stage::run(&Publish { target }, store, &Event::for_key(key)).await
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
    if let Some(model) = traffic_model(key) {
        let Some(edge) = target else {
            return skipped(
                "no edge target is configured (MLPIPE_EDGE_OBJECTS, MLPIPE_EDGE_R2 or MLPIPE_EDGE_WRANGLER_STATE)",
            );
        };
        return Ok(publish_traffic(store, model, edge).await?.into());
    }
    if is_api_key(key) {
        let Some(edge) = target else {
            return skipped(
                "no edge target is configured (MLPIPE_EDGE_OBJECTS, MLPIPE_EDGE_R2 or MLPIPE_EDGE_WRANGLER_STATE)",
            );
        };
        return Ok(publish_keys(store, edge).await?.into());
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
    skipped("not a champion alias, a traffic policy, a feature-view manifest or an API key")
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
        assert!(is_api_key("keys/0123456789ab.json"));
        assert!(!is_api_key("models/keys/0123456789ab.json"));
    }
}
