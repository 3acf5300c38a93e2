//! The model registry's records: plain types, so the edge (wasm) reads bundles and aliases
//! with the same definitions the registry writes. Their keys are in [`crate::keys`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const BUNDLE_FORMAT: u32 = 1;

/// One model input, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Input {
    pub name: String,
    /// Element type at the model boundary (`f32`).
    #[serde(rename = "type")]
    pub ty: String,
}

/// An object a bundle refers to, pinned by its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    pub key: String,
    pub sha256: String,
}

/// `models/<name>/<version>/bundle.json`: everything serving and monitoring need to know
/// about one model version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bundle {
    pub format: u32,
    pub model: String,
    pub version: u64,
    pub created_at: String,
    /// sha256 of model.onnx; also the registration's idempotency key.
    pub content_hash: String,
    pub model_key: String,
    /// `binary-classification`, `multiclass-classification` or `regression`.
    pub task: String,
    /// Model family (`gbm`, `linear`, `mlp`, ...).
    pub family: String,
    pub inputs: Vec<Input>,
    /// Class labels in output order (classification).
    pub classes: Vec<String>,
    /// Decision threshold on the positive-class probability (binary classification).
    pub threshold: Option<f64>,
    pub feature_view: String,
    pub feature_view_version: String,
    /// The feature-view spec serving evaluates.
    pub feature_spec: ObjectRef,
    pub dataset_snapshot: String,
    pub reference_profile: ObjectRef,
    pub training_run: String,
    pub metrics: BTreeMap<String, f64>,
    /// Free-form extra facts (hyperparameters, code version, ...).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// What a caller registers; the registry assigns the version and fills the rest.
#[derive(Debug, Clone, PartialEq)]
pub struct NewVersion {
    pub task: String,
    pub family: String,
    pub inputs: Vec<Input>,
    pub classes: Vec<String>,
    pub threshold: Option<f64>,
    pub feature_view: String,
    pub feature_view_version: String,
    pub feature_spec: ObjectRef,
    pub dataset_snapshot: String,
    pub reference_profile: ObjectRef,
    pub training_run: String,
    pub metrics: BTreeMap<String, f64>,
    pub tags: BTreeMap<String, String>,
}

/// `models/<name>/aliases/<alias>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alias {
    pub model: String,
    pub alias: String,
    pub version: u64,
    /// The version before this move, if any.
    pub previous: Option<u64>,
    /// Increases by one with every move; names the history entry.
    pub seq: u64,
    pub moved_at: String,
    /// Who or what moved it (`train:<run>`, `cli:<user>`, `drift:<run>`).
    pub by: String,
    pub reason: String,
    /// Set when this move rolled the alias back away from that version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<u64>,
}
