//! What the publish stage records of each publication (`published/...`), which makes a
//! redelivered event do the work once.

use serde::{Deserialize, Serialize};

/// One object published, with its content hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedObject {
    pub key: String,
    pub sha256: String,
    pub bytes: u64,
}

/// The record of one publication (`published/models/<m>/champion-<seq>.json` or
/// `published/features/<view>/<version>.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publication {
    /// `champion` or `online`.
    pub kind: String,
    /// Model name (champion) or feature view (online).
    pub name: String,
    /// Model version or feature-view version.
    pub version: String,
    pub objects: Vec<PublishedObject>,
    pub entries: usize,
    pub target: String,
    pub published_at_ms: i64,
}
