//! The registry's records and keys, defined in the `records` crate (the one home of every
//! record that crosses a stage boundary) and re-exported here under the registry's names.

pub use records::keys::{
    BUNDLE, MODELS, REFERENCE_SCORES, alias_key, history_prefix, model_prefix,
    traffic as traffic_key, version_key,
};
pub use records::models::*;
