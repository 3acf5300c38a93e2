//! The online store: per entity, the state request-time evaluation needs. One trait, several
//! backends: the in-memory snapshot here (also what ships inside a model bundle for small
//! tables), the embedded file store and DynamoDB in `shared/online`, Workers KV or HTTP at
//! the edge.

use std::collections::BTreeMap;
use std::future::Future;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::spec::{Assembled, ViewSpec};
use crate::window::EntityState;
use crate::{EvalError, OnlineError};

/// Format of encoded records; bumped when [`OnlineRecord`] changes shape.
pub const RECORD_FORMAT: u8 = 1;

/// One entity's online record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OnlineRecord {
    pub view: String,
    /// Feature-view version that materialized it.
    pub version: String,
    pub entity: String,
    pub materialized_at_us: i64,
    pub state: EntityState,
}

impl OnlineRecord {
    /// Compact binary form (postcard) with a leading format byte.
    pub fn encode(&self) -> Result<Vec<u8>, OnlineError> {
        let mut out = vec![RECORD_FORMAT];
        out.extend(postcard::to_allocvec(self).map_err(|e| OnlineError::Encoding(e.to_string()))?);
        Ok(out)
    }

    pub fn decode(bytes: &[u8]) -> Result<OnlineRecord, OnlineError> {
        match bytes.split_first() {
            Some((&RECORD_FORMAT, rest)) => {
                postcard::from_bytes(rest).map_err(|e| OnlineError::Encoding(e.to_string()))
            }
            Some((other, _)) => Err(OnlineError::Encoding(format!(
                "record format {other} is not supported (expected {RECORD_FORMAT})"
            ))),
            None => Err(OnlineError::Encoding("empty record".into())),
        }
    }

    /// The store key of an entity of a view.
    pub fn key(view: &str, entity: &str) -> String {
        format!("{view}#{entity}")
    }
}

/// A key-value store of online records. Async so network backends (DynamoDB, KV, HTTP) and
/// the embedded one share it; implementations need not be `Send` (wasm).
pub trait OnlineStore {
    /// The record of `entity` in `view`, if any.
    fn read(
        &self,
        view: &str,
        entity: &str,
    ) -> impl Future<Output = Result<Option<OnlineRecord>, OnlineError>>;

    /// Writes records, keeping an existing record whose last event is newer (a late
    /// redelivery of an older snapshot must not roll an entity back). Returns how many were
    /// written.
    fn write(&self, records: &[OnlineRecord]) -> impl Future<Output = Result<usize, OnlineError>>;
}

/// True when `new` may replace `old`.
pub fn supersedes(new: &OnlineRecord, old: &OnlineRecord) -> bool {
    new.state.last_event_us >= old.state.last_event_us
}

/// A whole view's records in memory, loaded from one encoded blob (`online.bin` in each
/// feature-view version; small enough to ship in a model bundle for small tables).
#[derive(Debug, Clone, Default)]
pub struct SnapshotStore {
    records: BTreeMap<String, OnlineRecord>,
}

#[derive(Serialize, Deserialize)]
struct SnapshotBlob {
    format: u8,
    records: Vec<OnlineRecord>,
}

impl SnapshotStore {
    pub fn from_records(records: impl IntoIterator<Item = OnlineRecord>) -> SnapshotStore {
        SnapshotStore {
            records: records
                .into_iter()
                .map(|r| (OnlineRecord::key(&r.view, &r.entity), r))
                .collect(),
        }
    }

    pub fn encode(&self) -> Result<Vec<u8>, OnlineError> {
        postcard::to_allocvec(&SnapshotBlob {
            format: RECORD_FORMAT,
            records: self.records.values().cloned().collect(),
        })
        .map_err(|e| OnlineError::Encoding(e.to_string()))
    }

    pub fn decode(bytes: &[u8]) -> Result<SnapshotStore, OnlineError> {
        let blob: SnapshotBlob =
            postcard::from_bytes(bytes).map_err(|e| OnlineError::Encoding(e.to_string()))?;
        if blob.format != RECORD_FORMAT {
            return Err(OnlineError::Encoding(format!(
                "snapshot format {} is not supported",
                blob.format
            )));
        }
        Ok(SnapshotStore::from_records(blob.records))
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn get(&self, view: &str, entity: &str) -> Option<&OnlineRecord> {
        self.records.get(&OnlineRecord::key(view, entity))
    }

    /// Every record, ordered by view and entity.
    pub fn records(&self) -> impl Iterator<Item = &OnlineRecord> {
        self.records.values()
    }
}

/// The key of a record in an edge key-value store (Cloudflare KV, which the publish stage
/// fills and the Worker reads): `<view>/<entity>`. View names cannot contain `/`, so the
/// first `/` separates them.
pub fn edge_key(view: &str, entity: &str) -> String {
    format!("{view}/{entity}")
}

impl OnlineStore for SnapshotStore {
    async fn read(&self, view: &str, entity: &str) -> Result<Option<OnlineRecord>, OnlineError> {
        Ok(self.get(view, entity).cloned())
    }

    async fn write(&self, _records: &[OnlineRecord]) -> Result<usize, OnlineError> {
        Err(OnlineError::ReadOnly)
    }
}

/// A served feature vector: the values, what was missing, and how stale the entity's record
/// was.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureVector {
    pub entity: String,
    pub columns: Vec<String>,
    #[serde(flatten)]
    pub assembled: Assembled,
    /// Seconds since the record was materialized; `None` when the entity has no record.
    pub staleness_s: Option<f64>,
    /// Version of the view that materialized the record.
    pub record_version: Option<String>,
}

/// Reads the entity of `request` from `store` and evaluates the view at the request's event
/// time (or `now_us` when it has none).
pub async fn online_features<S: OnlineStore>(
    store: &S,
    spec: &ViewSpec,
    request: &Map<String, Value>,
    now_us: i64,
) -> Result<FeatureVector, EvalError> {
    let at = spec.event_time_us(request)?.unwrap_or(now_us);
    let (entity, record) = if spec.view.entity.is_empty() {
        (String::new(), None)
    } else {
        let entity = spec.entity_key(request)?;
        let record = if spec.plan.is_empty() {
            None
        } else {
            store.read(&spec.view.name, &entity).await?
        };
        (entity, record)
    };
    let assembled = spec.evaluate(request, record.as_ref().map(|r| &r.state), at)?;
    Ok(FeatureVector {
        entity,
        columns: spec.output_columns(),
        assembled,
        staleness_s: record
            .as_ref()
            .map(|r| (now_us - r.materialized_at_us) as f64 / 1e6),
        record_version: record.map(|r| r.version),
    })
}
