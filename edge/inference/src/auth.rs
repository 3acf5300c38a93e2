//! API-key checks for every runtime: the key set is held whole in memory (refreshed by the
//! runtime from `keys/` or the published `edge/keys.json`), so checking a key costs one
//! SHA-256 and one constant-time comparison and never a store or KV read; a flood of random
//! keys therefore reads nothing, and each client address gets only [`FAILURES_PER_WINDOW`]
//! failed attempts per window before it is answered 429.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use records::access::{ApiKey, KeySet, key_id};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::InferenceError;
use crate::registry_models::Blobs;

/// Failed key checks one client address may make per [`FAILURE_WINDOW_US`].
pub const FAILURES_PER_WINDOW: u32 = 20;
pub const FAILURE_WINDOW_US: i64 = 60_000_000;
/// Client addresses the failure counter remembers (oldest windows dropped first).
const FAILURE_ADDRESSES: usize = 10_000;

/// The keys an instance accepts, by id.
#[derive(Debug, Default)]
pub struct Keys {
    by_id: HashMap<String, ApiKey>,
}

impl Keys {
    pub fn new(keys: impl IntoIterator<Item = ApiKey>) -> Keys {
        Keys {
            by_id: keys.into_iter().map(|k| (k.id.clone(), k)).collect(),
        }
    }

    pub fn from_set(set: KeySet) -> Keys {
        Keys::new(set.keys)
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// The key `authorization` presents, if it is a live key allowed to call `model`
    /// (`None`: an endpoint of no model, such as server metadata).
    pub fn check(
        &self,
        authorization: Option<&str>,
        model: Option<&str>,
        now_us: i64,
    ) -> Result<&ApiKey, Denied> {
        let presented = bearer(authorization).ok_or(Denied::Missing)?;
        let key = key_id(presented)
            .and_then(|id| self.by_id.get(id))
            .ok_or(Denied::Unknown)?;
        let Ok(stored) = hex::decode(&key.sha256) else {
            return Err(Denied::Unknown);
        };
        let digest = Sha256::digest(presented.as_bytes());
        if stored.len() != digest.len() || !bool::from(digest.as_slice().ct_eq(&stored)) {
            return Err(Denied::Unknown);
        }
        if key.revoked_at_us.is_some_and(|t| t <= now_us) {
            return Err(Denied::Revoked);
        }
        if key.expires_at_us.is_some_and(|t| t <= now_us) {
            return Err(Denied::Expired);
        }
        if let Some(model) = model
            && !key.allows_model(model)
        {
            return Err(Denied::Scope(model.to_string()));
        }
        Ok(key)
    }
}

/// The token of `Authorization: Bearer <token>` (scheme in any case).
fn bearer(header: Option<&str>) -> Option<&str> {
    let (scheme, token) = header?.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Why a request was refused. Messages never repeat the presented key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No `Authorization: Bearer` header.
    Missing,
    /// A key this instance does not know, or whose secret does not match.
    Unknown,
    Revoked,
    Expired,
    /// The key is not scoped to this model.
    Scope(String),
}

impl Denied {
    /// 401 for no or an unknown key (with `WWW-Authenticate`), 403 for a known key that may
    /// not do this.
    pub fn error(&self) -> InferenceError {
        match self {
            Denied::Missing => InferenceError::Unauthorized(
                "this endpoint needs an API key: send `Authorization: Bearer <key>`".into(),
            ),
            Denied::Unknown => InferenceError::Unauthorized("the API key is not valid".into()),
            Denied::Revoked => InferenceError::Forbidden("the API key was revoked".into()),
            Denied::Expired => InferenceError::Forbidden("the API key has expired".into()),
            Denied::Scope(model) => InferenceError::Forbidden(format!(
                "the API key is not allowed to call model '{model}'"
            )),
        }
    }

    /// Whether the attempt counts against the client's failures (a guessed key does; a
    /// valid key used outside its scope does not).
    fn counts(&self) -> bool {
        matches!(self, Denied::Missing | Denied::Unknown)
    }
}

/// Failed attempts per client address, in fixed windows.
#[derive(Debug, Default)]
pub struct Failures {
    by_client: Mutex<HashMap<String, (i64, u32)>>,
}

impl Failures {
    /// `Err(seconds to wait)` when `client` has used up its failures in this window.
    pub fn allowed(&self, client: &str, now_us: i64) -> Result<(), u64> {
        let map = self.by_client.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(client) {
            Some(&(start, n)) if now_us - start < FAILURE_WINDOW_US && n >= FAILURES_PER_WINDOW => {
                Err(((start + FAILURE_WINDOW_US - now_us) / 1_000_000).max(1) as u64)
            }
            _ => Ok(()),
        }
    }

    pub fn record(&self, client: &str, now_us: i64) {
        let mut map = self.by_client.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= FAILURE_ADDRESSES && !map.contains_key(client) {
            map.retain(|_, (start, _)| now_us - *start < FAILURE_WINDOW_US);
            if map.len() >= FAILURE_ADDRESSES
                && let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, (s, _))| *s)
                    .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        let entry = map.entry(client.to_string()).or_insert((now_us, 0));
        if now_us - entry.0 >= FAILURE_WINDOW_US {
            *entry = (now_us, 0);
        }
        entry.1 += 1;
    }
}

/// Requests per second a key may make when it names no rate of its own, and the burst it
/// may send at once.
pub const DEFAULT_RATE_PER_S: f64 = 100.0;
pub const DEFAULT_BURST: f64 = 200.0;
/// Keys the rate limiter remembers (the least recently seen dropped first).
const RATE_KEYS: usize = 10_000;

/// A token bucket per key: `rate` tokens a second up to `burst`; a request takes one. The
/// native server and the Spin component hold one per instance; the Worker counts with
/// Cloudflare's rate-limiting binding instead.
#[derive(Debug)]
pub struct RateLimits {
    pub rate_per_s: f64,
    pub burst: f64,
    buckets: Mutex<HashMap<String, (f64, i64)>>,
}

impl Default for RateLimits {
    fn default() -> RateLimits {
        RateLimits::new(DEFAULT_RATE_PER_S, DEFAULT_BURST)
    }
}

impl RateLimits {
    pub fn new(rate_per_s: f64, burst: f64) -> RateLimits {
        RateLimits {
            rate_per_s,
            burst: burst.max(1.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `key` (its own rate, when it has one, with a burst of at least
    /// that many); `Err(seconds until a token is back)` when none is left.
    pub fn take(&self, key: &ApiKey, now_us: i64) -> Result<(), u64> {
        let rate = key
            .rate_per_s
            .filter(|r| *r > 0.0)
            .unwrap_or(self.rate_per_s);
        let burst = match key.rate_per_s {
            Some(r) if r > 0.0 => r.max(1.0),
            _ => self.burst,
        };
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= RATE_KEYS
            && !buckets.contains_key(&key.id)
            && let Some(oldest) = buckets
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| k.clone())
        {
            buckets.remove(&oldest);
        }
        let (tokens, at) = buckets.entry(key.id.clone()).or_insert((burst, now_us));
        let elapsed_s = (now_us - *at).max(0) as f64 / 1e6;
        *tokens = (*tokens + elapsed_s * rate).min(burst);
        *at = now_us;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

/// The Worker's rate-limit tiers: Cloudflare's rate-limiting binding counts a fixed number
/// of requests per 10 or 60 seconds (per location, approximately, with no burst), so a key's
/// own rate maps to the tier at or below it, one binding each (`wrangler.toml`'s
/// `[[ratelimits]]`): (binding, requests per second, period in seconds).
pub const WORKER_RATE_TIERS: [(&str, f64, u64); 5] = [
    ("RATE_LIMIT_0_1", 0.1, 10),
    ("RATE_LIMIT_1", 1.0, 10),
    ("RATE_LIMIT_10", 10.0, 10),
    ("RATE_LIMIT_100", 100.0, 10),
    ("RATE_LIMIT_1000", 1000.0, 10),
];

/// The Worker tier for a key: its own rate's tier (the highest at or below it; the lowest
/// when it is below them all), else the default [`DEFAULT_RATE_PER_S`]'s.
pub fn worker_rate_tier(key: &ApiKey) -> (&'static str, u64) {
    let rate = key
        .rate_per_s
        .filter(|r| *r > 0.0)
        .unwrap_or(DEFAULT_RATE_PER_S);
    let (binding, _, period) = WORKER_RATE_TIERS
        .iter()
        .rev()
        .find(|(_, r, _)| *r <= rate)
        .copied()
        .unwrap_or(WORKER_RATE_TIERS[0]);
    (binding, period)
}

/// What a runtime checks requests against.
#[derive(Debug, Clone)]
pub enum Policy {
    /// No keys needed (a native server on loopback with no keys configured).
    Open,
    /// Every protected endpoint needs one of these keys (none: every request is refused).
    Keys(Arc<Keys>),
    /// The keys could not be read (and none were read before): protected endpoints answer
    /// 503 with this reason rather than let anyone in or call every key invalid.
    Unavailable(String),
}

/// A runtime's guard: the policy, the failure counter and (where the runtime counts
/// requests itself) the per-key rate limits.
#[derive(Debug)]
pub struct Guard {
    pub policy: Policy,
    pub failures: Arc<Failures>,
    pub limits: Option<Arc<RateLimits>>,
    /// Where admitted keys' last use is noted (the native server reports it to the store).
    pub usage: Option<Arc<Usage>>,
}

/// When each key was last admitted by this instance, and which of those the owner has not
/// taken yet: what `mlpipe keys list` shows as "last used" once a server reports it.
#[derive(Debug, Default)]
pub struct Usage(Mutex<HashMap<String, (i64, bool)>>);

impl Usage {
    pub fn touch(&self, id: &str, now_us: i64) {
        if let Ok(mut m) = self.0.lock() {
            let e = m.entry(id.to_string()).or_insert((now_us, true));
            if now_us >= e.0 {
                *e = (now_us, true);
            }
        }
    }

    /// The uses noted since the last call: (key id, time).
    pub fn take_changed(&self) -> Vec<(String, i64)> {
        let Ok(mut m) = self.0.lock() else {
            return Vec::new();
        };
        m.iter_mut()
            .filter(|(_, (_, changed))| *changed)
            .map(|(id, (at, changed))| {
                *changed = false;
                (id.clone(), *at)
            })
            .collect()
    }
}

impl Guard {
    pub fn open() -> Guard {
        Guard {
            policy: Policy::Open,
            failures: Arc::default(),
            limits: None,
            usage: None,
        }
    }

    pub fn keys(keys: Arc<Keys>, failures: Arc<Failures>) -> Guard {
        Guard {
            policy: Policy::Keys(keys),
            failures,
            limits: None,
            usage: None,
        }
    }

    /// The same guard, noting each admitted key's use in `usage`.
    pub fn with_usage(mut self, usage: Arc<Usage>) -> Guard {
        self.usage = Some(usage);
        self
    }

    /// The same guard, counting each key's requests against `limits`.
    pub fn with_limits(mut self, limits: Arc<RateLimits>) -> Guard {
        self.limits = Some(limits);
        self
    }

    /// The guard of an edge instance: the keys `cache` holds (re-read from `blobs` when
    /// stale), or 503 for protected endpoints when they cannot be read.
    pub async fn from_cache<B: Blobs>(
        cache: &KeyCache,
        blobs: &B,
        failures: Arc<Failures>,
        now_us: i64,
    ) -> Guard {
        Guard::from_keys(cache.current(blobs, now_us).await, failures)
    }

    /// The guard over keys read (or why they could not be).
    pub fn from_keys(keys: Result<Arc<Keys>, InferenceError>, failures: Arc<Failures>) -> Guard {
        let policy = match keys {
            Ok(keys) => Policy::Keys(keys),
            Err(e) => Policy::Unavailable(e.to_string()),
        };
        Guard {
            policy,
            failures,
            limits: None,
            usage: None,
        }
    }

    /// Checks a request for `model` (`None`: no model, e.g. `/v2`). `client`: the caller's
    /// address as the runtime knows it.
    pub fn admit(
        &self,
        authorization: Option<&str>,
        client: Option<&str>,
        model: Option<&str>,
        now_us: i64,
    ) -> Result<Option<&ApiKey>, InferenceError> {
        let keys = match &self.policy {
            Policy::Open => return Ok(None),
            Policy::Unavailable(why) => return Err(InferenceError::Unavailable(why.clone())),
            Policy::Keys(keys) => keys,
        };
        // Without an address there is nothing to count against: one shared bucket would let
        // one client's guesses lock every other client out.
        if let Some(client) = client
            && let Err(wait) = self.failures.allowed(client, now_us)
        {
            return Err(InferenceError::TooManyRequests {
                message: "too many requests with a missing or invalid API key from this address"
                    .into(),
                retry_after_s: wait,
            });
        }
        match keys.check(authorization, model, now_us) {
            Ok(key) => {
                if let Some(usage) = &self.usage {
                    usage.touch(&key.id, now_us);
                }
                if let Some(limits) = &self.limits
                    && let Err(wait) = limits.take(key, now_us)
                {
                    return Err(InferenceError::TooManyRequests {
                        message: format!("the API key {} is over its rate limit", key.prefix()),
                        retry_after_s: wait,
                    });
                }
                Ok(Some(key))
            }
            Err(denied) => {
                if let Some(client) = client
                    && denied.counts()
                {
                    self.failures.record(client, now_us);
                }
                Err(denied.error())
            }
        }
    }
}

/// The published key set, re-read from a runtime's [`Blobs`] at most every `refresh_us`
/// (the edge's copy of `keys/`, at [`records::keys::EDGE_KEYS`]). A missing object is an
/// empty set (every request refused); a failed read keeps the last set it had.
pub struct KeyCache {
    refresh_us: i64,
    state: Mutex<Option<(i64, Arc<Keys>)>>,
}

impl KeyCache {
    pub fn new(refresh_us: i64) -> KeyCache {
        KeyCache {
            refresh_us,
            state: Mutex::new(None),
        }
    }

    pub async fn current<B: Blobs>(
        &self,
        blobs: &B,
        now_us: i64,
    ) -> Result<Arc<Keys>, InferenceError> {
        let cached = self.state.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some((at, keys)) = &cached
            && now_us - at < self.refresh_us
        {
            return Ok(keys.clone());
        }
        let keys = match blobs.get(records::keys::EDGE_KEYS).await {
            Ok(Some(bytes)) => match serde_json::from_slice::<KeySet>(&bytes) {
                Ok(set) => Arc::new(Keys::from_set(set)),
                Err(e) => return stale(cached, format!("{}: {e}", records::keys::EDGE_KEYS)),
            },
            Ok(None) => Arc::new(Keys::default()),
            Err(e) => return stale(cached, e),
        };
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = Some((now_us, keys.clone()));
        Ok(keys)
    }
}

/// The last key set when a refresh failed, or 503 when there never was one.
fn stale(cached: Option<(i64, Arc<Keys>)>, why: String) -> Result<Arc<Keys>, InferenceError> {
    match cached {
        Some((_, keys)) => Ok(keys),
        None => Err(InferenceError::Unavailable(format!(
            "the API keys could not be read: {why}"
        ))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn new_key(id: &str, secret: &str, name: &str, models: Vec<String>) -> (String, ApiKey) {
        let key = records::access::key_string(id, secret);
        let record = ApiKey {
            id: id.to_string(),
            name: name.to_string(),
            sha256: hex::encode(Sha256::digest(key.as_bytes())),
            models,
            any_version: false,
            rate_per_s: None,
            created_at_us: 0,
            expires_at_us: None,
            revoked_at_us: None,
        };
        (key, record)
    }

    fn keyset() -> (Keys, String, String) {
        let (a, mut ra) = new_key("00000000000a", &"1".repeat(48), "a", vec![]);
        ra.expires_at_us = Some(1_000);
        let (b, rb) = new_key("00000000000b", &"2".repeat(48), "b", vec!["fraud".into()]);
        (Keys::new([ra, rb]), a, b)
    }

    #[test]
    fn keys_are_checked_by_hash_scope_and_time() {
        let (keys, a, b) = keyset();
        let bearer = |k: &str| format!("Bearer {k}");
        assert_eq!(
            keys.check(Some(&bearer(&a)), Some("x"), 10).unwrap().name,
            "a"
        );
        assert_eq!(
            keys.check(Some(&bearer(&b)), Some("fraud"), 10)
                .unwrap()
                .name,
            "b"
        );
        assert_eq!(
            keys.check(Some(&format!("bearer  {b} ")), None, 10)
                .unwrap()
                .name,
            "b"
        );
        assert_eq!(keys.check(None, None, 10), Err(Denied::Missing));
        assert_eq!(keys.check(Some(&b), None, 10), Err(Denied::Missing));
        assert_eq!(
            keys.check(Some(&format!("Basic {b}")), None, 10),
            Err(Denied::Missing)
        );
        assert_eq!(
            keys.check(Some(&bearer(&b)), Some("other"), 10),
            Err(Denied::Scope("other".into()))
        );
        assert_eq!(
            keys.check(Some(&bearer(&a)), None, 1_000),
            Err(Denied::Expired)
        );
        let (d, mut rd) = new_key("00000000000d", &"4".repeat(48), "d", vec![]);
        rd.revoked_at_us = Some(5);
        let keys = Keys::new(keys.by_id.values().cloned().chain([rd]));
        assert_eq!(keys.check(Some(&bearer(&d)), None, 4).unwrap().name, "d");
        assert_eq!(keys.check(Some(&bearer(&d)), None, 5), Err(Denied::Revoked));
        // Right id, wrong secret; unknown id; not a key at all.
        let forged = format!("mlp_00000000000b_{}", "3".repeat(48));
        assert_eq!(
            keys.check(Some(&bearer(&forged)), None, 10),
            Err(Denied::Unknown)
        );
        let stranger = format!("mlp_00000000000c_{}", "2".repeat(48));
        assert_eq!(
            keys.check(Some(&bearer(&stranger)), None, 10),
            Err(Denied::Unknown)
        );
        assert_eq!(
            keys.check(Some("Bearer hello"), None, 10),
            Err(Denied::Unknown)
        );
    }

    #[test]
    fn denials_never_repeat_the_key() {
        let (keys, _, b) = keyset();
        let forged = format!("mlp_00000000000b_{}", "3".repeat(48));
        for denied in [
            keys.check(Some(&format!("Bearer {forged}")), None, 10)
                .unwrap_err(),
            keys.check(Some(&format!("Bearer {b}")), Some("x"), 10)
                .unwrap_err(),
        ] {
            let e = denied.error().to_string();
            assert!(!e.contains(&forged) && !e.contains(&b), "{e}");
        }
        assert_eq!(Denied::Missing.error().status(), 401);
        assert_eq!(Denied::Unknown.error().status(), 401);
        assert_eq!(Denied::Revoked.error().status(), 403);
        assert_eq!(Denied::Scope("m".into()).error().status(), 403);
    }

    #[test]
    fn a_client_guessing_keys_is_slowed_down_and_others_are_not() {
        let (keys, _, b) = keyset();
        let guard = Guard::keys(Arc::new(keys), Arc::default());
        let guess = format!("Bearer mlp_00000000000c_{}", "9".repeat(48));
        for _ in 0..FAILURES_PER_WINDOW {
            let e = guard
                .admit(Some(&guess), Some("10.0.0.1"), None, 10)
                .unwrap_err();
            assert_eq!(e.status(), 401);
        }
        let e = guard
            .admit(Some(&guess), Some("10.0.0.1"), None, 20)
            .unwrap_err();
        assert_eq!(e.status(), 429);
        // Even its valid key waits out the window; another address is not affected.
        let good = format!("Bearer {b}");
        assert_eq!(
            guard
                .admit(Some(&good), Some("10.0.0.1"), None, 30)
                .unwrap_err()
                .status(),
            429
        );
        assert!(guard.admit(Some(&good), Some("10.0.0.2"), None, 30).is_ok());
        // After the window the address may try again.
        assert!(
            guard
                .admit(Some(&good), Some("10.0.0.1"), None, 10 + FAILURE_WINDOW_US)
                .is_ok()
        );
        // A scoped key out of scope is a 403 and is not counted as a guess.
        for _ in 0..(2 * FAILURES_PER_WINDOW) {
            let e = guard
                .admit(Some(&good), Some("10.0.0.3"), Some("other"), 40)
                .unwrap_err();
            assert_eq!(e.status(), 403);
        }
    }

    #[test]
    fn an_edge_reads_the_published_keys_and_keeps_them_between_refreshes() {
        struct Published(Mutex<Option<Vec<u8>>>, Mutex<u32>);
        impl Blobs for Published {
            async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
                assert_eq!(key, records::keys::EDGE_KEYS);
                *self.1.lock().unwrap() += 1;
                match &*self.0.lock().unwrap() {
                    Some(b) if b.is_empty() => Err("R2 is down".into()),
                    other => Ok(other.clone()),
                }
            }
        }
        let (keys, a, _) = keyset();
        let set = KeySet {
            format: 1,
            keys: keys.by_id.values().cloned().collect(),
        };
        let blobs = Published(Mutex::new(None), Mutex::new(0));
        let cache = KeyCache::new(100);
        let failures = Arc::new(Failures::default());
        let admit = |now: i64| {
            let guard = futures::executor::block_on(Guard::from_cache(
                &cache,
                &blobs,
                failures.clone(),
                now,
            ));
            guard
                .admit(Some(&format!("Bearer {a}")), Some("c"), None, now)
                .map(|k| k.map(|k| k.name.clone()))
                .map_err(|e| e.status())
        };
        // Nothing published: every key is unknown.
        assert_eq!(admit(0), Err(401));
        *blobs.0.lock().unwrap() = Some(serde_json::to_vec(&set).unwrap());
        // Within the refresh interval the empty set is kept, without a read.
        assert_eq!(admit(50), Err(401));
        assert_eq!(*blobs.1.lock().unwrap(), 1);
        assert_eq!(admit(100), Ok(Some("a".into())));
        // A failed read keeps the last set.
        *blobs.0.lock().unwrap() = Some(Vec::new());
        assert_eq!(admit(250), Ok(Some("a".into())));
        // Never read: 503.
        let fresh = KeyCache::new(100);
        let guard =
            futures::executor::block_on(Guard::from_cache(&fresh, &blobs, failures.clone(), 0));
        assert_eq!(guard.admit(None, None, None, 0).unwrap_err().status(), 503);
    }

    #[test]
    fn each_key_gets_its_rate_and_burst() {
        let (keys, a, b) = keyset();
        let mut keys = keys;
        keys.by_id.get_mut("00000000000b").unwrap().rate_per_s = Some(2.0);
        keys.by_id.get_mut("00000000000a").unwrap().expires_at_us = None;
        let guard = Guard::keys(Arc::new(keys), Arc::default())
            .with_limits(Arc::new(RateLimits::new(10.0, 5.0)));
        let call = |k: &str, now: i64| {
            guard
                .admit(Some(&format!("Bearer {k}")), Some("c"), None, now)
                .map(|_| ())
                .map_err(|e| (e.status(), e.headers()))
        };
        // The default: a burst of 5, then 10 a second.
        for _ in 0..5 {
            assert!(call(&a, 0).is_ok());
        }
        let (status, headers) = call(&a, 0).unwrap_err();
        assert_eq!(status, 429);
        assert_eq!(headers, vec![("retry-after".to_string(), "1".to_string())]);
        assert!(call(&a, 100_000).is_ok());
        assert!(call(&a, 100_000).is_err());
        // Key b's own rate: 2 a second, burst 2; a's use does not count against it.
        assert!(call(&b, 0).is_ok() && call(&b, 0).is_ok());
        assert_eq!(call(&b, 0).unwrap_err().0, 429);
        assert!(call(&b, 500_000).is_ok());
        // A limited key is not a failed attempt: the address is not slowed down.
        for _ in 0..(2 * FAILURES_PER_WINDOW) {
            let _ = call(&b, 500_000);
        }
        assert!(guard.failures.allowed("c", 500_000).is_ok());
    }

    #[test]
    fn worker_tiers_round_a_keys_rate_down() {
        let (_, mut k) = new_key("00000000000e", &"5".repeat(48), "e", vec![]);
        assert_eq!(worker_rate_tier(&k).0, "RATE_LIMIT_100");
        for (rate, tier) in [
            (0.01, "RATE_LIMIT_0_1"),
            (0.5, "RATE_LIMIT_0_1"),
            (1.0, "RATE_LIMIT_1"),
            (99.0, "RATE_LIMIT_10"),
            (5000.0, "RATE_LIMIT_1000"),
        ] {
            k.rate_per_s = Some(rate);
            assert_eq!(worker_rate_tier(&k).0, tier, "{rate}");
        }
    }

    #[test]
    fn an_open_guard_admits_everyone() {
        assert!(
            Guard::open()
                .admit(None, None, Some("m"), 0)
                .unwrap()
                .is_none()
        );
    }
}
