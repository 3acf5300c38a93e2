//! Feature definitions and the code both sides of the feature store share.
//!
//! - [`definition`]: the feature file (one view per file), parsed and checked against the
//!   dataset's contract.
//! - [`window`]: the bucketed trailing-window kernel. The offline stage runs it over a whole
//!   event history; the online record *is* its per-entity state; so both sides compute the
//!   same number by construction.
//! - [`spec`]: a view version's spec (definition + vocabularies) and the pure request-time
//!   evaluator.
//! - [`online`]: the online-store trait, the record format and the in-memory snapshot store.
//! - [`set`]: what a model reads: one or several view specs, joined in order.
//!
//! Invariant: no polars, no I/O, no async runtime; this crate builds for wasm32 so the edge
//! evaluates exactly what training saw.

pub mod definition;
pub mod online;
pub mod set;
pub mod spec;
pub mod window;

pub use definition::{
    Agg, Encoding, Feature, FeatureKind, FeatureView, LabelSource, Split, SplitMethod, TimePart,
    UNBOUNDED_US,
};
pub use online::{FeatureVector, OnlineRecord, OnlineStore, SnapshotStore, online_features};
pub use set::FeatureSet;
pub use spec::{Assembled, KEY_SEPARATOR, ViewSpec};
pub use window::{AggPlan, EntityState, SlotValue, entity_pass};

/// Errors in feature files. Each names the file and the field.
#[derive(Debug, thiserror::Error)]
pub enum FeatureError {
    #[error("{file}: invalid TOML: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: {field}: {message}")]
    Invalid {
        file: String,
        field: String,
        message: String,
    },
}

/// Errors from the online store.
#[derive(Debug, thiserror::Error)]
pub enum OnlineError {
    #[error("online record encoding: {0}")]
    Encoding(String),
    #[error("this online store is read-only")]
    ReadOnly,
    #[error("online store: {0}")]
    Backend(String),
    #[error("online record for '{key}' is {bytes} bytes, over the store's limit of {limit}")]
    TooLarge {
        key: String,
        bytes: usize,
        limit: usize,
    },
}

/// Errors evaluating a request.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("field '{field}': {message}")]
    Field { field: String, message: String },
    #[error(transparent)]
    Online(#[from] OnlineError),
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
