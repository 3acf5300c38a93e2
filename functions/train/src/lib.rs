//! The training stage: reads a feature view's point-in-time training table, searches model
//! families (gradient-boosted trees with `forust-ml`; logistic/linear regression and an MLP
//! with `candle`) with seeded random search and successive halving, re-fits the winner,
//! evaluates it on the held-out test split against the current champion, exports it to ONNX
//! that tract runs, registers it and promotes it when the project's rule holds. Every run
//! and trial is recorded under `runs/`, and in MLflow when `MLFLOW_TRACKING_URI` is set.
//!
//! Layers: `config` (the training file), `data` (table -> f32 matrix), `gbm`/`nn`/`model`
//! (families), `search`, `evaluate`/`metrics`, `export`, `pipeline` (all of it, no I/O),
//! `job` (store, registry, tracking; what the binary and the local stack call), `mlflow`.

pub mod config;
pub mod data;
pub mod evaluate;
pub mod export;
pub mod gbm;
pub mod inputs;
pub mod job;
/// The metrics live in their own crate (the drift stage computes live metrics with them).
pub use model_metrics as metrics;
pub mod mlflow;
pub mod model;
pub mod nn;
pub mod pipeline;
pub mod search;
pub mod tracking;

pub use config::{ConfigError, Family, Metric, Task, TrainingConfig};

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("training data: column '{column}': {message}")]
    Data { column: String, message: String },
    #[error("training: {0}")]
    Fit(String),
    #[error("export: {0}")]
    Export(String),
    #[error("training configuration: {0}")]
    Config(String),
    #[error(transparent)]
    ConfigFile(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] storage::StorageError),
    #[error(transparent)]
    Registry(#[from] registry::RegistryError),
    #[error("{key}: {message}")]
    Record { key: String, message: String },
    #[error("MLflow: {0}")]
    Mlflow(String),
    #[error("features: {0}")]
    Features(feature_stage::FeatureStageError),
}

impl stage::StageError for TrainError {
    /// Whether retrying the same event may succeed (a store hiccup, not bad data).
    fn is_retryable(&self) -> bool {
        match self {
            TrainError::Store(e) => e.is_retryable(),
            TrainError::Registry(e) => e.is_retryable(),
            TrainError::Features(e) => e.is_retryable(),
            _ => false,
        }
    }

    fn is_fault(&self) -> bool {
        match self {
            TrainError::Store(e) => e.is_fault(),
            TrainError::Registry(e) => e.is_fault(),
            other => stage::StageError::is_retryable(other),
        }
    }
}
