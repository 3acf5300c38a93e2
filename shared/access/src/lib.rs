//! API keys of the edge over the pipeline's store: `create` makes a random key, returns it
//! once and keeps only its SHA-256 (`keys/<id>.json`); `list` reads them back; `revoke`
//! marks one revoked (kept, so the edge answers 403 rather than 401 and lists still show
//! it); `key_set` is what the publish stage gives the edge and the native server loads.
//!
//! Invariant: no plaintext key is written anywhere; the key string leaves this crate only
//! as the return value of [`create`].

use records::access::{ApiKey, ID_LEN, KeySet, SECRET_LEN, key_string};
use records::keys::API_KEYS;
use sha2::{Digest, Sha256};
use storage::{Created, Store, Swapped};

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    #[error("{key}: not an API key record: {message}")]
    Invalid { key: String, message: String },
    #[error("a key named '{0}' already exists (names are unique; revoke it or pick another)")]
    NameTaken(String),
    #[error("no key is named '{0}'")]
    NoSuchKey(String),
    #[error("key name '{0}': use 1 to 64 letters, digits, '-', '_' or '.'")]
    BadName(String),
    #[error("the system's random source failed: {0}")]
    Random(String),
    #[error("{0} changed while it was being revoked; try again")]
    Conflict(String),
}

/// `keys/<id>.json`.
pub fn record_key(id: &str) -> String {
    format!("{API_KEYS}{id}.json")
}

use records::access::KeyUse as LastUsed;
pub use records::keys::api_key_last_used as last_used_key;

/// Records that key `id` was used at `at_us`, unless a later use is already recorded (several
/// servers may report the same key; the latest wins, approximately under races).
pub async fn record_use(store: &Store, id: &str, at_us: i64) -> Result<(), AccessError> {
    let key = last_used_key(id);
    if let Some(o) = store.get_opt(&key).await?
        && serde_json::from_slice::<LastUsed>(&o.bytes).is_ok_and(|u| u.at_us >= at_us)
    {
        return Ok(());
    }
    let body = serde_json::to_vec(&LastUsed { at_us }).unwrap_or_default();
    store.put(&key, body).await?;
    Ok(())
}

/// When each key was last used, by id, as far as servers reported it.
pub async fn last_used(
    store: &Store,
) -> Result<std::collections::HashMap<String, i64>, AccessError> {
    let mut out = std::collections::HashMap::new();
    for info in store.list(API_KEYS).await? {
        let Some(id) = info
            .key
            .strip_prefix(API_KEYS)
            .and_then(|k| k.strip_suffix(records::keys::LAST_USED_SUFFIX))
        else {
            continue;
        };
        if let Some(o) = store.get_opt(&info.key).await?
            && let Ok(u) = serde_json::from_slice::<LastUsed>(&o.bytes)
        {
            out.insert(id.to_string(), u.at_us);
        }
    }
    Ok(out)
}

/// SHA-256 of a whole key string, lowercase hex: what records and the edge compare.
pub fn key_sha256(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// What a new key may do.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Models it may call (empty: all).
    pub models: Vec<String>,
    /// Microseconds since the epoch after which it is refused.
    pub expires_at_us: Option<i64>,
    /// Whether it may call versions by number.
    pub any_version: bool,
    /// Its own request rate (per second), instead of the server's default.
    pub rate_per_s: Option<f64>,
}

fn random_hex(len: usize) -> Result<String, AccessError> {
    let mut bytes = vec![0u8; len / 2];
    getrandom::fill(&mut bytes).map_err(|e| AccessError::Random(e.to_string()))?;
    Ok(hex::encode(bytes))
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Every key record under `keys/`, oldest first.
pub async fn list(store: &Store) -> Result<Vec<ApiKey>, AccessError> {
    let mut keys = Vec::new();
    for info in store.list(API_KEYS).await? {
        if !info.key.ends_with(".json") {
            continue;
        }
        let Some(object) = store.get_opt(&info.key).await? else {
            continue; // removed between the list and the read
        };
        let key: ApiKey =
            serde_json::from_slice(&object.bytes).map_err(|e| AccessError::Invalid {
                key: info.key.clone(),
                message: e.to_string(),
            })?;
        keys.push(key);
    }
    keys.sort_by(|a, b| (a.created_at_us, &a.id).cmp(&(b.created_at_us, &b.id)));
    Ok(keys)
}

/// The set the edge checks requests against (every record, revoked ones included).
pub async fn key_set(store: &Store) -> Result<KeySet, AccessError> {
    Ok(KeySet {
        format: 1,
        keys: list(store).await?,
    })
}

/// Creates a key named `name`: returns the key (the only time it exists in plaintext) and
/// the record written.
pub async fn create(
    store: &Store,
    name: &str,
    scope: Scope,
    now_us: i64,
) -> Result<(String, ApiKey), AccessError> {
    if !valid_name(name) {
        return Err(AccessError::BadName(name.to_string()));
    }
    if list(store).await?.iter().any(|k| k.name == name) {
        return Err(AccessError::NameTaken(name.to_string()));
    }
    loop {
        let id = random_hex(ID_LEN)?;
        let key = key_string(&id, &random_hex(SECRET_LEN)?);
        let record = ApiKey {
            id: id.clone(),
            name: name.to_string(),
            sha256: key_sha256(&key),
            models: scope.models.clone(),
            any_version: scope.any_version,
            rate_per_s: scope.rate_per_s,
            created_at_us: now_us,
            expires_at_us: scope.expires_at_us,
            revoked_at_us: None,
        };
        let bytes = serde_json::to_vec_pretty(&record).map_err(|e| AccessError::Invalid {
            key: record_key(&id),
            message: e.to_string(),
        })?;
        // A 48-bit id collides about never; if it does, draw another.
        if let Created::Created(_) = store.put_if_absent(&record_key(&id), bytes).await? {
            return Ok((key, record));
        }
    }
}

/// Marks the key named `name` revoked at `now_us` (a compare-and-swap on its record, so a
/// concurrent change is not lost). Revoking a revoked key changes nothing.
pub async fn revoke(store: &Store, name: &str, now_us: i64) -> Result<ApiKey, AccessError> {
    let keys = list(store).await?;
    let Some(found) = keys.into_iter().find(|k| k.name == name) else {
        return Err(AccessError::NoSuchKey(name.to_string()));
    };
    if found.revoked_at_us.is_some() {
        return Ok(found);
    }
    let key = record_key(&found.id);
    let object = store.get(&key).await?;
    let mut record: ApiKey =
        serde_json::from_slice(&object.bytes).map_err(|e| AccessError::Invalid {
            key: key.clone(),
            message: e.to_string(),
        })?;
    record.revoked_at_us = Some(now_us);
    let bytes = serde_json::to_vec_pretty(&record).map_err(|e| AccessError::Invalid {
        key: key.clone(),
        message: e.to_string(),
    })?;
    match store
        .compare_and_swap(&key, Some(&object.info), bytes)
        .await?
    {
        Swapped::Swapped(_) => Ok(record),
        Swapped::Conflict => Err(AccessError::Conflict(key)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_created_key_is_stored_as_its_hash_and_can_be_revoked() {
        let store = Store::memory();
        let scope = Scope {
            models: vec!["fraud".into()],
            ..Scope::default()
        };
        let (key, record) = create(&store, "ci", scope, 5).await.unwrap();
        assert_eq!(records::access::key_id(&key), Some(record.id.as_str()));
        assert_eq!(record.sha256, key_sha256(&key));
        // Only the hash is stored: the key's secret appears nowhere in the store.
        let secret = key.rsplit('_').next().unwrap();
        for info in store.list(API_KEYS).await.unwrap() {
            let bytes = store.get(&info.key).await.unwrap().bytes;
            assert!(!String::from_utf8_lossy(&bytes).contains(secret));
        }
        assert!(matches!(
            create(&store, "ci", Scope::default(), 6).await,
            Err(AccessError::NameTaken(_))
        ));
        assert!(matches!(
            create(&store, "no spaces", Scope::default(), 6).await,
            Err(AccessError::BadName(_))
        ));
        let (other, _) = create(&store, "other", Scope::default(), 7).await.unwrap();
        assert_ne!(other, key);
        let listed = list(&store).await.unwrap();
        assert_eq!(
            listed.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(),
            ["ci", "other"]
        );
        let revoked = revoke(&store, "ci", 9).await.unwrap();
        assert_eq!(revoked.revoked_at_us, Some(9));
        assert_eq!(
            revoke(&store, "ci", 10).await.unwrap().revoked_at_us,
            Some(9)
        );
        assert!(matches!(
            revoke(&store, "nobody", 9).await,
            Err(AccessError::NoSuchKey(_))
        ));
        let set = key_set(&store).await.unwrap();
        assert_eq!(set.keys.len(), 2);
        assert_eq!(set.keys[0].revoked_at_us, Some(9));
    }

    #[test]
    fn keys_carry_192_random_bits_in_hex() {
        let a = random_hex(SECRET_LEN).unwrap();
        assert_eq!(a.len(), SECRET_LEN);
        assert_ne!(a, random_hex(SECRET_LEN).unwrap());
    }

    #[tokio::test]
    async fn the_latest_use_is_kept_beside_the_record_and_list_ignores_it() {
        let store = Store::memory();
        let (_, record) = create(&store, "used", Scope::default(), 5).await.unwrap();
        assert!(last_used(&store).await.unwrap().is_empty());
        record_use(&store, &record.id, 100).await.unwrap();
        record_use(&store, &record.id, 50).await.unwrap();
        assert_eq!(last_used(&store).await.unwrap()[&record.id], 100);
        // Not a key record (and not `.json`: no publish event).
        assert_eq!(list(&store).await.unwrap().len(), 1);
        assert!(!last_used_key(&record.id).ends_with(".json"));
    }
}
