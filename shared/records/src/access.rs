//! API keys of the edge. A key is shown to its owner once; what is stored (`keys/<id>.json`
//! in the pipeline's store) and published to the edge (`edge/keys.json`) is its SHA-256, so
//! neither the store nor an edge bucket holds a usable credential.
//!
//! A key reads `mlp_<id>_<secret>`: the id (12 hex digits) is public and finds the record
//! without a scan; the secret (48 hex digits, 192 random bits) is only ever hashed. A plain
//! SHA-256 is enough (no slow KDF on the hot path): the secret is random and long, so there
//! is nothing to guess a dictionary for.

use serde::{Deserialize, Serialize};

/// What every key starts with (so scanners and people recognise one).
pub const KEY_PREFIX: &str = "mlp_";
/// Hex digits of a key id.
pub const ID_LEN: usize = 12;
/// Hex digits of a key's secret part.
pub const SECRET_LEN: usize = 48;

/// One API key as stored: `keys/<id>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    /// Public id, part of the key itself (`mlp_<id>_...`).
    pub id: String,
    /// The owner's name for it, unique among keys (what `revoke` takes).
    pub name: String,
    /// SHA-256 of the whole key string, lowercase hex.
    pub sha256: String,
    /// Models the key may call; empty means every model.
    #[serde(default)]
    pub models: Vec<String>,
    /// Whether the key may call model versions by number (beyond the aliased ones).
    #[serde(default)]
    pub any_version: bool,
    /// Requests per second this key may make (none: the server's default).
    #[serde(default)]
    pub rate_per_s: Option<f64>,
    pub created_at_us: i64,
    #[serde(default)]
    pub expires_at_us: Option<i64>,
    #[serde(default)]
    pub revoked_at_us: Option<i64>,
}

impl ApiKey {
    /// `mlp_<id>`: what lists show and logs may name.
    pub fn prefix(&self) -> String {
        format!("{KEY_PREFIX}{}", self.id)
    }

    /// Whether the key may call `model`.
    pub fn allows_model(&self, model: &str) -> bool {
        self.models.is_empty() || self.models.iter().any(|m| m == model)
    }
}

/// The keys as published to the edge (`edge/keys.json`): every key record, revoked and
/// expired ones included (the edge answers those with 403, not 401).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeySet {
    pub format: u32,
    pub keys: Vec<ApiKey>,
}

/// The id in a presented key (`mlp_<id>_<secret>`), if it has the shape of one.
pub fn key_id(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(id, ID_LEN) && hex(secret, SECRET_LEN)).then_some(id)
}

/// Builds a key string from its id and secret (both hex, of the lengths above).
pub fn key_string(id: &str, secret: &str) -> String {
    format!("{KEY_PREFIX}{id}_{secret}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_carries_its_id_and_only_well_formed_keys_parse() {
        let id = "0123456789ab";
        let secret = "ab".repeat(24);
        let key = key_string(id, &secret);
        assert_eq!(key_id(&key), Some(id));
        assert_eq!(key_id("mlp_0123456789ab"), None);
        assert_eq!(key_id(&key[..key.len() - 1]), None);
        assert_eq!(key_id(&key.replace("mlp_", "xyz_")), None);
        assert_eq!(key_id(&format!("mlp_0123456789ag_{secret}")), None);
        assert_eq!(key_id(""), None);
    }

    #[test]
    fn older_records_without_the_optional_fields_read() {
        let k: ApiKey = serde_json::from_str(
            r#"{"id":"0123456789ab","name":"a","sha256":"00","created_at_us":1}"#,
        )
        .unwrap();
        assert!(k.models.is_empty() && !k.any_version && k.revoked_at_us.is_none());
        assert!(k.allows_model("anything"));
        assert_eq!(k.prefix(), "mlp_0123456789ab");
    }
}

/// `keys/<id>.last-used`: the latest time a server reported admitting the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyUse {
    pub at_us: i64,
}
