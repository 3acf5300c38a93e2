//! The model registry: immutable, integer-numbered model versions with their bundles, and
//! aliases (`champion`, `challenger`, ...) moved by compare-and-swap with an append-only
//! history of every move.
//!
//! Layout, under `models/<name>/`:
//! - `<version>/_claim` — create-if-absent: whoever creates it owns that version number, so
//!   two concurrent registrations never share one;
//! - `<version>/model.onnx`, then `<version>/bundle.json` — the commit marker, written last:
//!   a version exists iff its bundle does;
//! - `_by_hash/<content hash>.json` — makes registration idempotent: the same model content
//!   registered twice is one version;
//! - `aliases/<alias>.json` — the alias, moved by compare-and-swap; its change raises the
//!   event the edge publisher listens for;
//! - `aliases/_history/<alias>/<seq>.json` — one entry per move (who, what, when, why).
//!
//! Invariant: knows storage and its own records only; no training or serving code.

//!
//! Without the default `store` feature only the records and key functions are compiled
//! (no storage, no async): what the edge needs to read bundles and aliases.

mod model_records;
pub use model_records::*;

#[cfg(feature = "store")]
mod store;
#[cfg(feature = "store")]
pub use store::*;

#[cfg(all(test, feature = "store"))]
#[allow(clippy::unwrap_used)]
mod tests;
