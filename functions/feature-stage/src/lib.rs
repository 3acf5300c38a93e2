//! The feature stage: a new dataset snapshot -> for every feature view over that dataset, the
//! offline feature table, the online store, the reference profile and a manifest.
//!
//! Idempotent: a view version is named by the hash of (definition, snapshot[, labels
//! snapshot]); its manifest is written last with create-if-absent, and a delivery that finds
//! the manifest does nothing. Online writes never replace a record with an older one.
//!
//! Layout of one version, `features/<view>/v=<version>/`: `spec.json` (definition +
//! vocabularies; what serving evaluates), `table.parquet` (one row per label event: entity
//! keys, time, model inputs, label, `__split`), `online.bin` (every entity's online record),
//! `_manifest.json`; and the profile at `features/<view>/profiles/<sha256>.parquet`.

pub mod definitions;
pub mod join;
pub mod offline;
pub mod profile;

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::Arc;
use std::time::Instant;

use contracts::{sha256_hex, short_hash};
use events::{Event, ObjectCreated};
use features::{FeatureView, LabelSource, OnlineRecord, OnlineStore, SnapshotStore, ViewSpec};
pub use polars;
use polars::prelude::*;
use records::keys as zones;
use records::pipeline::{
    FEATURE_MANIFEST_FORMAT, FeatureManifest, FeatureRows, Manifest, OnlineSummary, PartRef,
    Snapshot, SnapshotRef,
};
use serde::Serialize;
use storage::{Created, StorageError, Store};

pub use join::{JoinedTable, joined_table};
pub use offline::{OfflineTable, build_table};

/// Online records larger than this in total are not also written as one `online.bin` blob.
pub const MAX_ONLINE_SNAPSHOT: usize = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FeatureStageError {
    #[error(transparent)]
    Store(#[from] StorageError),
    #[error("data: {0}")]
    Polars(#[from] PolarsError),
    #[error("online store: {0}")]
    Online(#[from] features::OnlineError),
    #[error("{0}")]
    Data(String),
    #[error("{key}: {message}")]
    Record { key: String, message: String },
}

impl stage::StageError for FeatureStageError {
    /// Store and online-store failures may pass on redelivery; bad data or definitions do not.
    fn is_retryable(&self) -> bool {
        match self {
            FeatureStageError::Store(e) => e.is_retryable(),
            FeatureStageError::Online(features::OnlineError::Backend(_)) => true,
            _ => false,
        }
    }

    fn is_fault(&self) -> bool {
        match self {
            FeatureStageError::Store(e) => e.is_fault(),
            other => stage::StageError::is_retryable(other),
        }
    }
}

/// Where the stage writes online records. `None`: only the `online.bin` blob in the store.
#[derive(Clone, Default)]
pub struct Config {
    pub online: Option<Arc<online::Backend>>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("online", &self.online.as_ref().map(|b| b.describe()))
            .finish()
    }
}

/// Result for one view.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum ViewOutcome {
    Committed {
        view: String,
        version: String,
        rows: u64,
        features: usize,
        entities: u64,
        online_written: u64,
    },
    AlreadyDone {
        view: String,
        version: String,
    },
}

impl ViewOutcome {
    pub fn view(&self) -> &str {
        match self {
            ViewOutcome::Committed { view, .. } | ViewOutcome::AlreadyDone { view, .. } => view,
        }
    }
    pub fn version(&self) -> &str {
        match self {
            ViewOutcome::Committed { version, .. } | ViewOutcome::AlreadyDone { version, .. } => {
                version
            }
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FeatureOutcome {
    pub dataset: String,
    pub snapshot: String,
    pub views: Vec<ViewOutcome>,
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The feature stage: a dataset snapshot -> every view that reads the dataset, recomputed.
#[derive(Debug, Clone, Default)]
pub struct Features {
    pub config: Config,
}

impl stage::Handler for Features {
    const STAGE: stage::Stage = stage::Stage::Features;
    type Output = FeatureOutcome;
    type Error = FeatureStageError;

    fn subject(&self, event: &Event) -> String {
        event
            .key()
            .and_then(zones::dataset_of_snapshot)
            .unwrap_or("_unknown")
            .to_string()
    }

    async fn handle(
        &self,
        store: &Store,
        event: &Event,
    ) -> Result<FeatureOutcome, FeatureStageError> {
        process_snapshot(store, &event.trigger(), &self.config).await
    }
}

impl stage::Output for FeatureOutcome {
    fn summary(&self) -> stage::Summary {
        let committed = self
            .views
            .iter()
            .any(|v| !matches!(v, ViewOutcome::AlreadyDone { .. }));
        let version = self
            .views
            .iter()
            .map(|v| v.version())
            .collect::<Vec<_>>()
            .join(",");
        // Rows out: the training-table rows of every view version written.
        let rows_out = self
            .views
            .iter()
            .map(|v| match v {
                ViewOutcome::Committed { rows, .. } => *rows,
                ViewOutcome::AlreadyDone { .. } => 0,
            })
            .sum();
        stage::Summary {
            rows_out: Some(rows_out),
            ..stage::summary_of(committed, Some(version))
        }
    }
}

/// Handles one object-created event for `snapshots/<dataset>/<hash>.json` through the stage
/// runner (run record, telemetry), as every adapter does.
pub async fn handle(
    store: &Store,
    event: &ObjectCreated,
    config: &Config,
) -> Result<FeatureOutcome, FeatureStageError> {
    let stage = Features {
        config: config.clone(),
    };
    stage::run(&stage, store, &Event::Object(event.clone())).await
}

/// Recomputes every view that reads the snapshot's dataset.
pub async fn process_snapshot(
    store: &Store,
    key: &str,
    config: &Config,
) -> Result<FeatureOutcome, FeatureStageError> {
    let dataset = zones::dataset_of_snapshot(key).ok_or_else(|| FeatureStageError::Record {
        key: key.into(),
        message: "not a dataset snapshot key (snapshots/<dataset>/<hash>.json)".into(),
    })?;
    let snapshot: Snapshot = read_json(store, key).await?;
    let mut views = Vec::new();
    for view in definitions::views_for_dataset(store, dataset).await? {
        let own = if view.dataset == dataset {
            snapshot.clone()
        } else {
            match latest_snapshot(store, &view.dataset).await? {
                Some(s) => s,
                // The view's own data has not arrived yet; its snapshot will trigger it.
                None => continue,
            }
        };
        let labels = match &view.label {
            Some(LabelSource::Dataset { dataset: l, .. }) if l == dataset => Some(snapshot.clone()),
            Some(LabelSource::Dataset { dataset: l, .. }) => match latest_snapshot(store, l).await?
            {
                Some(s) => Some(s),
                None => continue,
            },
            _ => None,
        };
        views.push(materialize(store, &view, &own, labels.as_ref(), config).await?);
    }
    Ok(FeatureOutcome {
        dataset: dataset.to_string(),
        snapshot: snapshot.hash,
        views,
    })
}

async fn read_json<T: serde::de::DeserializeOwned>(
    store: &Store,
    key: &str,
) -> Result<T, FeatureStageError> {
    let object = store.get(key).await?;
    serde_json::from_slice(&object.bytes).map_err(|e| FeatureStageError::Record {
        key: key.into(),
        message: e.to_string(),
    })
}

/// The most recently created snapshot of a dataset.
pub async fn latest_snapshot(
    store: &Store,
    dataset: &str,
) -> Result<Option<Snapshot>, FeatureStageError> {
    let mut best: Option<Snapshot> = None;
    for info in store.list(&zones::snapshots_prefix(dataset)).await? {
        if !info.key.ends_with(".json") {
            continue;
        }
        let s: Snapshot = read_json(store, &info.key).await?;
        if best.as_ref().is_none_or(|b| {
            (s.contract_lineage, s.versions.len(), &s.created_at)
                > (b.contract_lineage, b.versions.len(), &b.created_at)
        }) {
            best = Some(s);
        }
    }
    Ok(best)
}

/// Reads the columns `columns` of every version of a snapshot into one frame (columns a
/// version lacks are null).
pub async fn load_snapshot(
    store: &Store,
    snapshot: &Snapshot,
    columns: &[String],
) -> Result<DataFrame, FeatureStageError> {
    let mut frames: Vec<DataFrame> = Vec::new();
    for version in &snapshot.versions {
        let key = zones::curated_manifest(&snapshot.dataset, version);
        let manifest: Manifest = read_json(store, &key).await?;
        for part in &manifest.parts {
            let bytes = store.get(&part.key).await?.bytes;
            let df = ParquetReader::new(Cursor::new(bytes.as_ref())).finish()?;
            frames.push(df);
        }
    }
    // The union schema: first seen type of each column.
    let mut schema: BTreeMap<&str, DataType> = BTreeMap::new();
    for f in &frames {
        for c in f.columns() {
            schema
                .entry(c.name().as_str())
                .or_insert_with(|| c.dtype().clone());
        }
    }
    let mut out: Option<DataFrame> = None;
    for f in &frames {
        let mut cols = Vec::new();
        for name in columns {
            let c = match f.column(name) {
                Ok(c) => c.clone(),
                Err(_) => {
                    let dtype = schema.get(name.as_str()).cloned().ok_or_else(|| {
                        FeatureStageError::Data(format!(
                            "dataset '{}' has no column '{name}' in snapshot {}",
                            snapshot.dataset, snapshot.hash
                        ))
                    })?;
                    Column::full_null(name.as_str().into(), f.height(), &dtype)
                }
            };
            cols.push(c);
        }
        let df = DataFrame::new(f.height(), cols)?;
        match &mut out {
            Some(o) => {
                o.vstack_mut_owned(df)?;
            }
            None => out = Some(df),
        }
    }
    match out {
        Some(mut df) => {
            df.rechunk_mut();
            Ok(df)
        }
        None => {
            let cols = columns
                .iter()
                .map(|c| {
                    Column::full_null(
                        c.as_str().into(),
                        0,
                        schema.get(c.as_str()).unwrap_or(&DataType::String),
                    )
                })
                .collect();
            Ok(DataFrame::new(0, cols)?)
        }
    }
}

/// The dataset columns a view reads. Request-time fields come from the label events: the
/// view's own rows, or a separate labels dataset's (`label_columns`), whose fields the view's
/// dataset need not have.
pub fn event_columns(view: &FeatureView) -> Vec<String> {
    let mut cols: Vec<String> = view.entity.clone();
    cols.extend(view.event_time.iter().cloned());
    if !matches!(view.label, Some(LabelSource::Dataset { .. })) {
        cols.extend(view.inputs.keys().cloned());
    }
    for f in &view.features {
        if let features::FeatureKind::Aggregate {
            column: Some(c), ..
        } = &f.kind
        {
            cols.push(c.clone());
        }
    }
    if let Some(LabelSource::Column { column }) = &view.label {
        cols.push(column.clone());
    }
    let mut seen = std::collections::HashSet::new();
    cols.retain(|c| seen.insert(c.clone()));
    cols
}

/// Columns read from a separate labels dataset.
pub fn label_columns(view: &FeatureView) -> Vec<String> {
    let Some(LabelSource::Dataset {
        entity,
        time,
        column,
        ..
    }) = &view.label
    else {
        return Vec::new();
    };
    let mut cols = entity.clone();
    cols.push(time.clone());
    cols.push(column.clone());
    cols.extend(view.inputs.keys().cloned());
    let mut seen = std::collections::HashSet::new();
    cols.retain(|c| seen.insert(c.clone()));
    cols
}

fn parquet_bytes(df: &mut DataFrame) -> Result<Vec<u8>, FeatureStageError> {
    let mut buf = Vec::new();
    ParquetWriter::new(&mut buf)
        .with_compression(ParquetCompression::Zstd(None))
        .finish(df)?;
    Ok(buf)
}

async fn put_part(
    store: &Store,
    key: String,
    bytes: Vec<u8>,
    rows: u64,
) -> Result<PartRef, FeatureStageError> {
    let sha = sha256_hex(&bytes);
    let len = bytes.len() as u64;
    store.put(&key, bytes).await?;
    Ok(PartRef {
        key,
        rows,
        bytes: len,
        sha256: sha,
    })
}

fn snapshot_ref(s: &Snapshot) -> SnapshotRef {
    SnapshotRef {
        dataset: s.dataset.clone(),
        hash: s.hash.clone(),
        versions: s.versions.clone(),
    }
}

/// Computes and commits one view version.
pub async fn materialize(
    store: &Store,
    view: &FeatureView,
    snapshot: &Snapshot,
    labels_snapshot: Option<&Snapshot>,
    config: &Config,
) -> Result<ViewOutcome, FeatureStageError> {
    let definition_hash = view.hash();
    let version = short_hash(&[
        b"features/v1",
        definition_hash.as_bytes(),
        snapshot.hash.as_bytes(),
        labels_snapshot.map_or(&b""[..], |s| s.hash.as_bytes()),
    ]);
    let manifest_key = zones::feature_manifest(&view.name, &version);
    // Order of writes: the parts, the manifest (the commit; readers and the next stage see
    // the version only from here), then the online store, then `_online.json`. A delivery
    // that finds the manifest but not the marker died in between (or its online write
    // failed): it writes the same records again (same version, same materialization time;
    // writes are idempotent) and the marker, and commits nothing new.
    let online_marker = zones::feature_file(&view.name, &version, ONLINE_MARKER);
    let wants_online = config.online.is_some() && view.has_state();
    let committed: Option<FeatureManifest> = match store.get_opt(&manifest_key).await? {
        Some(obj) => Some(serde_json::from_slice(&obj.bytes).map_err(|e| {
            FeatureStageError::Data(format!("'{manifest_key}' is not a feature manifest: {e}"))
        })?),
        None => None,
    };
    if committed.is_some() && (!wants_online || store.head(&online_marker).await?.is_some()) {
        return Ok(ViewOutcome::AlreadyDone {
            view: view.name.clone(),
            version,
        });
    }
    let mut timings = BTreeMap::new();
    let t = Instant::now();
    let events = load_snapshot(store, snapshot, &event_columns(view)).await?;
    let labels = match labels_snapshot {
        Some(s) => Some(load_snapshot(store, s, &label_columns(view)).await?),
        None => None,
    };
    timings.insert("read".to_string(), t.elapsed().as_millis() as u64);

    let t = Instant::now();
    let view_owned = view.clone();
    let (offline, events_n) = tokio::task::spawn_blocking(move || {
        let n = events.height() as u64;
        build_table(&view_owned, &events, labels.as_ref(), None).map(|o| (o, n))
    })
    .await
    .map_err(|e| FeatureStageError::Data(format!("feature computation panicked: {e}")))??;
    timings.insert("compute".to_string(), t.elapsed().as_millis() as u64);

    if let Some(manifest) = committed {
        let materialized_at_us =
            chrono::DateTime::parse_from_rfc3339(&manifest.online.materialized_at)
                .map(|d| d.timestamp_micros())
                .map_err(|e| {
                    FeatureStageError::Data(format!(
                        "'{manifest_key}': online.materialized_at is not a time: {e}"
                    ))
                })?;
        let records = online_records(view, &version, offline.states, materialized_at_us);
        finish_online(store, config, &online_marker, &records).await?;
        return Ok(ViewOutcome::AlreadyDone {
            view: view.name.clone(),
            version,
        });
    }

    let t = Instant::now();
    let spec = ViewSpec::new(view.clone(), version.clone(), offline.vocabularies.clone());
    let spec_part = put_part(
        store,
        zones::feature_file(&view.name, &version, "spec.json"),
        serde_json::to_vec_pretty(&spec).unwrap_or_default(),
        0,
    )
    .await?;
    let mut table = offline.table;
    let rows = table.height() as u64;
    let table_part = put_part(
        store,
        zones::feature_file(&view.name, &version, "table.parquet"),
        parquet_bytes(&mut table)?,
        rows,
    )
    .await?;
    let mut profile = profile::build_profile(
        &table,
        &offline.columns,
        &offline.categories,
        view.split.seed,
    )?;
    let profile_bytes = parquet_bytes(&mut profile)?;
    let profile_sha = sha256_hex(&profile_bytes);
    let profile_part = put_part(
        store,
        zones::feature_profile(&view.name, &profile_sha),
        profile_bytes,
        profile.height() as u64,
    )
    .await?;
    timings.insert("write".to_string(), t.elapsed().as_millis() as u64);

    // Online: every entity's state after its last event.
    let t = Instant::now();
    // Whole microseconds of a time that survives RFC 3339 and back (a resumed delivery
    // rebuilds the records with the manifest's time).
    let materialized_at_us = chrono::Utc::now().timestamp_micros();
    let records = online_records(view, &version, offline.states, materialized_at_us);
    let entities = records.len() as u64;
    let mut online_snapshot = None;
    if view.has_state() {
        let blob = SnapshotStore::from_records(records.iter().cloned()).encode()?;
        if blob.len() <= MAX_ONLINE_SNAPSHOT {
            online_snapshot = Some(
                put_part(
                    store,
                    zones::feature_file(&view.name, &version, "online.bin"),
                    blob,
                    entities,
                )
                .await?,
            );
        }
    }
    // What the online store receives after the commit (below); `_online.json` confirms it.
    let written = if wants_online { entities } else { 0 };
    timings.insert("online".to_string(), t.elapsed().as_millis() as u64);

    let manifest = FeatureManifest {
        format: FEATURE_MANIFEST_FORMAT,
        view: view.name.clone(),
        version: version.clone(),
        created_at: now_rfc3339(),
        definition_hash,
        snapshot: snapshot_ref(snapshot),
        labels_snapshot: labels_snapshot.map(snapshot_ref),
        spec: spec_part,
        table: table_part,
        profile: profile_part,
        online_snapshot,
        online: OnlineSummary {
            backend: config.online.as_ref().map(|b| b.describe()),
            records: entities,
            written,
            materialized_at: chrono::DateTime::from_timestamp_micros(materialized_at_us)
                .map(|d| d.to_rfc3339())
                .unwrap_or_default(),
        },
        features: offline.columns.clone(),
        label: view.label.as_ref().map(|l| l.column().to_string()),
        entity: view.entity.clone(),
        event_time: match &view.label {
            Some(LabelSource::Dataset { time, .. }) => Some(time.clone()),
            _ => view.event_time.clone(),
        },
        rows: FeatureRows {
            events: events_n,
            rows,
            train: offline.counts.train,
            validation: offline.counts.validation,
            test: offline.counts.test,
            entities,
        },
        timings_ms: timings,
    };
    let created = store
        .put_if_absent(
            &manifest_key,
            serde_json::to_vec_pretty(&manifest).unwrap_or_default(),
        )
        .await?;
    if matches!(created, Created::AlreadyExists) {
        return Ok(ViewOutcome::AlreadyDone {
            view: view.name.clone(),
            version,
        });
    }
    if wants_online {
        finish_online(store, config, &online_marker, &records).await?;
    }
    Ok(ViewOutcome::Committed {
        view: view.name.clone(),
        version,
        rows,
        features: offline.columns.len(),
        entities,
        online_written: written,
    })
}

/// The marker written beside a committed version once the online store holds its records.
pub const ONLINE_MARKER: &str = "_online.json";

/// Each entity's online record of one version.
fn online_records(
    view: &FeatureView,
    version: &str,
    states: Vec<(String, features::EntityState)>,
    materialized_at_us: i64,
) -> Vec<OnlineRecord> {
    states
        .into_iter()
        .map(|(entity, state)| OnlineRecord {
            view: view.name.clone(),
            version: version.to_string(),
            entity,
            materialized_at_us,
            state,
        })
        .collect()
}

/// Writes a committed version's records to the online store, then the marker that says so.
async fn finish_online(
    store: &Store,
    config: &Config,
    marker: &str,
    records: &[OnlineRecord],
) -> Result<(), FeatureStageError> {
    let Some(backend) = &config.online else {
        return Ok(());
    };
    let written = backend.write(records).await? as u64;
    let body = serde_json::json!({
        "backend": backend.describe(),
        "records": records.len(),
        "written": written,
        "at": now_rfc3339(),
    });
    store
        .put(marker, serde_json::to_vec_pretty(&body).unwrap_or_default())
        .await?;
    Ok(())
}

/// The committed versions of a view, oldest first.
pub async fn view_versions(
    store: &Store,
    view: &str,
) -> Result<Vec<FeatureManifest>, FeatureStageError> {
    let mut out = Vec::new();
    for info in store.list(&zones::features_prefix(view)).await? {
        if info.key.ends_with(zones::MANIFEST) {
            out.push(read_json::<FeatureManifest>(store, &info.key).await?);
        }
    }
    out.sort_by(|a, b| a.created_at.cmp(&b.created_at));
    Ok(out)
}

/// The spec of a committed version.
pub async fn load_spec(
    store: &Store,
    manifest: &FeatureManifest,
) -> Result<ViewSpec, FeatureStageError> {
    read_json(store, &manifest.spec.key).await
}
