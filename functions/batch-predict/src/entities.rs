//! Where raw records' entities are read in online mode: the online store when there is one,
//! otherwise the records the view's newest feature version carries (`online.bin`), which is
//! what the feature stage wrote beside the online store.

use std::path::Path;
use std::sync::Arc;

use features::{OnlineError, OnlineRecord, OnlineStore, SnapshotStore};
use inference::Model;
use storage::Store;

use crate::BatchError;

/// The entity source of one batch.
pub enum Entities {
    /// The online store (embedded or DynamoDB).
    Backend(Arc<online::Backend>),
    /// The newest feature version's `online.bin`, read from `key`.
    Snapshot { key: String, records: SnapshotStore },
    /// Feature vectors or point-in-time: no entity is read online.
    None,
}

impl std::fmt::Debug for Entities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Entities {
    /// The source for scoring `input` with `model`: none when its rows are feature vectors
    /// (every model input a column) or `point_in_time`, `backend` when given, else the
    /// newest version's records.
    pub async fn open(
        store: &Store,
        model: &Model,
        input: &Path,
        point_in_time: bool,
        backend: Option<Arc<online::Backend>>,
    ) -> Result<Entities, BatchError> {
        let Some(spec) = &model.spec else {
            return Ok(Entities::None);
        };
        if point_in_time {
            return Ok(Entities::None);
        }
        let columns = crate::input::Reader::open(input, 1)?.columns().to_vec();
        if model.input_names().all(|i| columns.iter().any(|c| c == i)) {
            return Ok(Entities::None);
        }
        if let Some(b) = backend {
            return Ok(Entities::Backend(b));
        }
        // Every view's newest records in one snapshot (records are keyed by view).
        let mut all = Vec::new();
        let mut keys = Vec::new();
        for v in spec
            .views
            .iter()
            .filter(|v| !v.plan.is_empty() && !v.view.entity.is_empty())
        {
            let view = &v.view.name;
            let manifest = feature_stage::view_versions(store, view)
                .await
                .map_err(|e| BatchError::Features(e.to_string()))?
                .pop()
                .ok_or_else(|| {
                    BatchError::Features(format!("feature view '{view}' has no version"))
                })?;
            let part = manifest.online_snapshot.ok_or_else(|| {
                BatchError::Features(format!(
                    "no online store, and version {} of '{view}' carries no online records: configure an online store",
                    manifest.version
                ))
            })?;
            let bytes = store.get(&part.key).await?.bytes;
            let records = SnapshotStore::decode(&bytes).map_err(BatchError::Online)?;
            all.extend(records.records().cloned());
            keys.push(part.key);
        }
        Ok(Entities::Snapshot {
            key: keys.join(", "),
            records: SnapshotStore::from_records(all),
        })
    }

    /// Where entities are read, for logs and messages.
    pub fn describe(&self) -> String {
        match self {
            Entities::Backend(b) => format!("online store {}", b.describe()),
            Entities::Snapshot { key, .. } => format!("online records in {key}"),
            Entities::None => "no online entities".into(),
        }
    }
}

impl OnlineStore for Entities {
    async fn read(&self, view: &str, entity: &str) -> Result<Option<OnlineRecord>, OnlineError> {
        match self {
            Entities::Backend(b) => b.read(view, entity).await,
            Entities::Snapshot { records, .. } => records.read(view, entity).await,
            Entities::None => Ok(None),
        }
    }

    async fn write(&self, _records: &[OnlineRecord]) -> Result<usize, OnlineError> {
        Err(OnlineError::ReadOnly)
    }
}
