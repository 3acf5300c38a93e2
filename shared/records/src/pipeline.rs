//! The JSON records the data stages leave in the store for each other: version manifests,
//! dataset snapshots, contract and feature pointers, feature-view manifests, and the run and
//! dead-letter records every stage writes. Each manifest carries a format version so readers
//! can refuse what they do not understand.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Stage;

pub const MANIFEST_FORMAT: u32 = 1;
pub const SNAPSHOT_FORMAT: u32 = 1;

/// `curated/<dataset>/v=<version>/_manifest.json`, the commit marker of one version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub dataset: String,
    pub version: String,
    /// RFC 3339.
    pub created_at: String,
    pub source: SourceRef,
    pub contract: ContractRef,
    pub lineage: Lineage,
    pub parts: Vec<PartRef>,
    /// sha256 over the parts' sha256 values, in order.
    pub content_hash: String,
    pub rows: RowCounts,
    pub schema: Vec<SchemaField>,
    /// File columns not in the contract (dropped).
    pub dropped_columns: Vec<String>,
    /// Nullable contract columns absent from the file (stored as all-null).
    pub missing_columns: Vec<String>,
    /// Broken rules by name, counted once per (row, column, rule).
    pub rule_counts: BTreeMap<String, u64>,
    /// Dataset rules that failed with `on_fail = "warn"`.
    pub findings: Vec<String>,
    pub quarantine: Option<QuarantineRef>,
    /// Event-time range of admitted rows (RFC 3339), when the dataset has an event time.
    pub event_time_range: Option<(String, String)>,
    pub timings_ms: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceRef {
    pub key: String,
    pub etag: Option<String>,
    pub size: u64,
    pub sha256: String,
    pub format: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContractRef {
    pub hash: String,
    pub version: u32,
    pub lineage: u32,
}

/// Where a version's rows came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Lineage {
    /// The validated batch of one raw object.
    Upload,
    /// Rows replayed from quarantine after a contract change.
    Replay {
        /// The version whose quarantined rows were replayed.
        replay_of: String,
        /// The raw object those rows first came from.
        original_source: String,
        /// Contract the rows failed under.
        original_contract: String,
        /// 1-based source row numbers admitted by this replay.
        admitted_rows: Vec<u64>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRef {
    pub key: String,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RowCounts {
    pub read: u64,
    pub valid: u64,
    pub quarantined: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaField {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
    pub nullable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineRef {
    pub rows_key: String,
    pub reasons_key: String,
    pub rows: u64,
}

/// `snapshots/<dataset>/<hash>.json`: the set of versions later stages read together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub format: u32,
    pub dataset: String,
    pub hash: String,
    /// Sorted version ids.
    pub versions: Vec<String>,
    pub contract_lineage: u32,
    pub created_at: String,
}

/// `definitions/contracts/<dataset>/_current.json`, moved by compare-and-swap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContractPointer {
    pub dataset: String,
    pub hash: String,
    pub version: u32,
    pub lineage: u32,
    /// Increases by one with every accepted change; names the history entry.
    pub seq: u64,
    pub updated_at: String,
    /// `initial`, `compatible`, `tightened` or `new-lineage`.
    pub change: String,
    pub changes: Vec<String>,
}

/// How a stage run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunOutcome {
    /// New work was written.
    #[default]
    Committed,
    /// The same event was handled before; nothing new was written.
    AlreadyDone,
    /// Nothing to do for this event (e.g. no edge target configured).
    Skipped,
    /// Bad input or configuration: retrying cannot help; reported and acknowledged.
    Rejected,
    /// A failure that may pass on a retry (store, network).
    Failed,
}

impl RunOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Committed => "committed",
            RunOutcome::AlreadyDone => "already-done",
            RunOutcome::Skipped => "skipped",
            RunOutcome::Rejected => "rejected",
            RunOutcome::Failed => "failed",
        }
    }
}

impl std::fmt::Display for RunOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `pipeline-runs/<stage>/<subject>/<run>.json`: one handler invocation, for `mlpipe status`.
/// Written by the stage runner for every stage; writing it also records the stage's metrics
/// (runs, duration, rows, peak memory).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub stage: Stage,
    /// What the run was about: a dataset, a feature view or a model (`_...` when none).
    pub dataset: String,
    pub trigger_key: String,
    pub started_at: String,
    pub duration_ms: u64,
    pub outcome: RunOutcome,
    pub version: Option<String>,
    pub message: Option<String>,
    /// Rows the stage read, wrote and rejected, where it counts rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_in: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_out: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_rejected: Option<u64>,
    /// Peak resident memory of the process when the run ended (filled by `record_run`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_memory_bytes: Option<u64>,
}

/// `dead-letters/<stage>/<id>.json`: a delivery that still failed after its retries, or
/// failed on a fault no retry fixes (access denied, a key the store refuses). The local
/// stack, the queue worker and the Lambda adapter (for permanent faults) write one; on AWS
/// the dead-letter queues hold the events whose retries ran out.
/// Nothing is lost: the trigger key names the object to redeliver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub stage: Stage,
    pub trigger_key: String,
    pub attempts: u32,
    pub error: String,
    pub failed_at: String,
}

pub const FEATURE_MANIFEST_FORMAT: u32 = 1;

/// `definitions/features/<view>/_current.json`, moved by compare-and-swap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeaturePointer {
    pub view: String,
    pub hash: String,
    /// Datasets whose snapshots recompute the view (its own, and a separate labels dataset).
    pub datasets: Vec<String>,
    pub updated_at: String,
}

/// `features/<view>/v=<version>/_manifest.json`, the commit marker of a feature-view version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureManifest {
    pub format: u32,
    pub view: String,
    pub version: String,
    pub created_at: String,
    pub definition_hash: String,
    /// The snapshot of the view's dataset the version was computed from.
    pub snapshot: SnapshotRef,
    /// The snapshot of a separate labels dataset, when the view has one.
    pub labels_snapshot: Option<SnapshotRef>,
    /// `spec.json`: definition + vocabularies; what serving evaluates.
    pub spec: PartRef,
    /// The offline table: one row per label event, features, label and `__split`.
    pub table: PartRef,
    pub profile: PartRef,
    /// `online.bin`: every entity's online record in one blob, when the view has state.
    pub online_snapshot: Option<PartRef>,
    pub online: OnlineSummary,
    /// Model input columns, in order.
    pub features: Vec<String>,
    pub label: Option<String>,
    pub entity: Vec<String>,
    pub event_time: Option<String>,
    pub rows: FeatureRows,
    pub timings_ms: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRef {
    pub dataset: String,
    pub hash: String,
    pub versions: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FeatureRows {
    /// Events read from the snapshot.
    pub events: u64,
    /// Rows of the offline table (label events).
    pub rows: u64,
    pub train: u64,
    pub validation: u64,
    pub test: u64,
    pub entities: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnlineSummary {
    /// Where the records were written (`embedded:...`, `dynamodb://...`), if anywhere.
    pub backend: Option<String>,
    pub records: u64,
    pub written: u64,
    pub materialized_at: String,
}

pub const BATCH_MANIFEST_FORMAT: u32 = 1;

/// `batch-output/<model>/<input>/_manifest.json`: the commit marker of one batch-inference
/// input's output, written create-if-absent after its predictions (and errors), so an input
/// delivered twice is scored once and a reader that finds the manifest finds the rest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchManifest {
    pub format: u32,
    /// The input's key (`batch-input/<model>/<input>`), size and ETag when scored.
    pub input: String,
    pub input_size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_etag: Option<String>,
    pub model: String,
    pub version: u64,
    /// `feature-vectors`, `online` or `point-in-time`.
    pub mode: String,
    pub rows: u64,
    pub scored: u64,
    pub errors: u64,
    /// The predictions' key (Parquet).
    pub predictions: String,
    /// The refused rows' key (JSON Lines: file, row, column, rule), when a row was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors_file: Option<String>,
    pub created_at: String,
}
