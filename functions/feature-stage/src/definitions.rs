//! Feature-view definitions stored beside the data: `definitions/features/<view>/<hash>.toml`
//! (as written) and `<hash>.json` (parsed and checked against the contracts at publish time),
//! with `_current.json` moved by compare-and-swap. Deployed functions read views only here.

use features::FeatureView;
use records::keys as zones;
use records::pipeline::FeaturePointer;
use storage::{Store, Swapped};

use crate::{FeatureStageError, now_rfc3339, read_json};

/// Publishes a view (idempotent: an unchanged definition writes nothing). Returns whether the
/// current definition changed.
pub async fn publish_view(
    store: &Store,
    view: &FeatureView,
    text: &str,
) -> Result<bool, FeatureStageError> {
    let hash = view.hash();
    store
        .put_if_absent(
            &zones::feature_definition(&view.name, &hash, "toml"),
            text.to_string(),
        )
        .await?;
    store
        .put_if_absent(
            &zones::feature_definition(&view.name, &hash, "json"),
            serde_json::to_vec_pretty(view).unwrap_or_default(),
        )
        .await?;
    let key = zones::feature_current(&view.name);
    loop {
        let current = store.get_opt(&key).await?;
        if let Some(obj) = &current
            && let Ok(p) = serde_json::from_slice::<FeaturePointer>(&obj.bytes)
            && p.hash == hash
        {
            return Ok(false);
        }
        let pointer = FeaturePointer {
            view: view.name.clone(),
            hash: hash.clone(),
            datasets: view.datasets().iter().map(|d| d.to_string()).collect(),
            updated_at: now_rfc3339(),
        };
        let body = serde_json::to_vec_pretty(&pointer).unwrap_or_default();
        match store
            .compare_and_swap(&key, current.as_ref().map(|o| &o.info), body)
            .await?
        {
            Swapped::Swapped(_) => return Ok(true),
            Swapped::Conflict => continue,
        }
    }
}

/// Every view's current definition.
pub async fn current_views(store: &Store) -> Result<Vec<FeatureView>, FeatureStageError> {
    let mut out = Vec::new();
    for info in store.list(&zones::feature_definitions_prefix()).await? {
        if !info.key.ends_with("/_current.json") {
            continue;
        }
        let pointer: FeaturePointer = read_json(store, &info.key).await?;
        let view: FeatureView = read_json(
            store,
            &zones::feature_definition(&pointer.view, &pointer.hash, "json"),
        )
        .await?;
        out.push(view);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The current definition of one view.
pub async fn current_view(
    store: &Store,
    name: &str,
) -> Result<Option<FeatureView>, FeatureStageError> {
    let Some(obj) = store.get_opt(&zones::feature_current(name)).await? else {
        return Ok(None);
    };
    let pointer: FeaturePointer =
        serde_json::from_slice(&obj.bytes).map_err(|e| FeatureStageError::Record {
            key: obj.info.key.clone(),
            message: e.to_string(),
        })?;
    Ok(Some(
        read_json(
            store,
            &zones::feature_definition(&pointer.view, &pointer.hash, "json"),
        )
        .await?,
    ))
}

/// Views recomputed by a new snapshot of `dataset`.
pub async fn views_for_dataset(
    store: &Store,
    dataset: &str,
) -> Result<Vec<FeatureView>, FeatureStageError> {
    Ok(current_views(store)
        .await?
        .into_iter()
        .filter(|v| v.datasets().contains(&dataset))
        .collect())
}
