//! Models served from a copy of the model registry's objects, whatever holds them: the
//! pipeline's store (native server), an R2 bucket (the Worker), an HTTP endpoint (the Spin
//! component). The runtime supplies the bytes through [`Blobs`] and a clock; this module
//! reads the `champion` alias, loads and checks bundles, and keeps them.
//!
//! The alias is re-read at most every `refresh_us`, so a promotion or rollback reaches a
//! running instance without a restart while a busy instance does not read the alias on
//! every request. Loaded versions are kept per instance in a [`ModelCache`] (a tract plan is
//! built once), up to a budget in bytes (the size of each version's files, a proxy for the
//! memory its plan holds; [`DEFAULT_CACHE_BYTES`]), least recently used first out, so an
//! edge isolate does not grow with every promotion and one large model cannot crowd out
//! memory the way a fixed count of versions would let it. The cache outlives the per-request [`Blobs`] handle where a runtime hands out
//! bindings per request (Workers).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use crate::error::InferenceError;
use crate::model::{Model, parse_bundle};
use crate::service::Models;
use records::models::Traffic;

/// Bytes of model files one instance keeps loaded by default (the version in use is kept
/// even when it alone is larger).
pub const DEFAULT_CACHE_BYTES: usize = 256 << 20;

/// Read access to the registry's objects by key (`models/<name>/...`, feature specs).
pub trait Blobs {
    /// The object's bytes, `Ok(None)` when there is no such object, `Err` (a message) when
    /// the backend failed.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, String>>;
}

/// Registry objects compiled into the binary at build time (see the `edge-embed` crate), in
/// front of the runtime's own source: an embedded key is served from memory, any other key
/// from `rest` (`None`: there is no other source). An embedded champion alias therefore
/// pins the model the build carries.
pub struct Layered<B> {
    pub embedded: &'static [(&'static str, &'static [u8])],
    pub rest: Option<B>,
}

impl<B: Blobs> Blobs for Layered<B> {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        if let Some((_, bytes)) = self.embedded.iter().find(|(k, _)| *k == key) {
            return Ok(Some(bytes.to_vec()));
        }
        match &self.rest {
            Some(rest) => rest.get(key).await,
            None => Ok(None),
        }
    }
}

/// The models whose champion alias is among `embedded` (served by default when a runtime
/// is not told which models to serve).
pub fn embedded_models(embedded: &[(&str, &[u8])]) -> Vec<String> {
    embedded
        .iter()
        .filter_map(|(k, _)| {
            k.strip_prefix(registry::MODELS)?
                .strip_suffix("/aliases/champion.json")
                .map(str::to_string)
        })
        .collect()
}

/// A loaded model, the (name, version) it was loaded as, and the bytes of its files.
type Loaded = ((String, u64), Arc<Model>, usize);

/// What an instance knows about its models: the names it serves, the champion versions it
/// read (and when), and the models it loaded.
pub struct ModelCache {
    names: Vec<String>,
    refresh_us: i64,
    clock: fn() -> i64,
    champions: Mutex<HashMap<String, (i64, u64)>>,
    /// Traffic policies as read (and when); `None`: the model has none.
    traffic: Mutex<HashMap<String, (i64, Option<Traffic>)>>,
    /// Least recently used first.
    loaded: Mutex<Vec<Loaded>>,
    max_bytes: usize,
}

impl ModelCache {
    /// `names`: the models served; `refresh_us`: how long a read champion alias is trusted;
    /// `clock`: microseconds since the epoch (the runtime's clock).
    pub fn new(names: Vec<String>, refresh_us: i64, clock: fn() -> i64) -> ModelCache {
        ModelCache {
            names,
            refresh_us,
            clock,
            champions: Mutex::new(HashMap::new()),
            traffic: Mutex::new(HashMap::new()),
            loaded: Mutex::new(Vec::new()),
            max_bytes: DEFAULT_CACHE_BYTES,
        }
    }

    /// The same cache with a budget of `max_bytes` of model files.
    pub fn with_max_bytes(mut self, max_bytes: usize) -> ModelCache {
        self.max_bytes = max_bytes;
        self
    }

    /// The (name, version) pairs loaded, least recently used first.
    pub fn loaded(&self) -> Vec<(String, u64)> {
        self.loaded
            .lock()
            .map(|l| l.iter().map(|(k, _, _)| k.clone()).collect())
            .unwrap_or_default()
    }

    fn cached(&self, name: &str, version: u64) -> Option<Arc<Model>> {
        let mut loaded = self.loaded.lock().ok()?;
        let i = loaded
            .iter()
            .position(|((n, v), _, _)| n == name && *v == version)?;
        let entry = loaded.remove(i);
        let model = entry.1.clone();
        loaded.push(entry);
        Some(model)
    }

    fn keep(&self, name: &str, version: u64, model: &Arc<Model>, bytes: usize) {
        if let Ok(mut loaded) = self.loaded.lock()
            && !loaded
                .iter()
                .any(|((n, v), _, _)| n == name && *v == version)
        {
            loaded.push(((name.to_string(), version), model.clone(), bytes));
            // Oldest out until the rest fits; the one just loaded always stays.
            while loaded.len() > 1
                && loaded.iter().map(|(_, _, b)| b).sum::<usize>() > self.max_bytes
            {
                loaded.remove(0);
            }
        }
    }
}

/// The registry's models as the service sees them: champions by alias, pinned versions by
/// number, each loaded once per cache.
pub struct RegistryModels<B> {
    blobs: B,
    cache: Arc<ModelCache>,
}

fn unavailable(what: impl std::fmt::Display) -> InferenceError {
    InferenceError::Unavailable(what.to_string())
}

impl<B: Blobs> RegistryModels<B> {
    /// A fresh cache over `blobs` (see [`ModelCache::new`]).
    pub fn new(blobs: B, names: Vec<String>, refresh_us: i64, clock: fn() -> i64) -> Self {
        Self::with_cache(blobs, Arc::new(ModelCache::new(names, refresh_us, clock)))
    }

    /// `blobs` with an existing cache (kept across requests by the runtime).
    pub fn with_cache(blobs: B, cache: Arc<ModelCache>) -> Self {
        RegistryModels { blobs, cache }
    }

    pub fn blobs(&self) -> &B {
        &self.blobs
    }

    /// The version the `champion` alias points at (cached for `refresh_us`).
    pub async fn champion(&self, name: &str) -> Result<u64, InferenceError> {
        let now = (self.cache.clock)();
        if let Ok(map) = self.cache.champions.lock()
            && let Some((at, v)) = map.get(name)
            && now.saturating_sub(*at) < self.cache.refresh_us
        {
            return Ok(*v);
        }
        let key = registry::alias_key(name, "champion");
        let bytes = self
            .blobs
            .get(&key)
            .await
            .map_err(|e| unavailable(format!("reading {key}: {e}")))?
            .ok_or_else(|| unavailable(format!("model '{name}' has no champion yet ({key})")))?;
        let alias: registry::Alias = serde_json::from_slice(&bytes)
            .map_err(|e| unavailable(format!("{key} is not an alias record: {e}")))?;
        if let Ok(mut map) = self.cache.champions.lock() {
            map.insert(name.to_string(), (now, alias.version));
        }
        Ok(alias.version)
    }

    /// The model's traffic policy (`models/<name>/traffic.json`, as published), re-read
    /// at most every `refresh_us` like the champion alias. Absent or unreadable: none.
    pub async fn traffic_policy(&self, name: &str) -> Option<Traffic> {
        let now = (self.cache.clock)();
        if let Ok(map) = self.cache.traffic.lock()
            && let Some((at, t)) = map.get(name)
            && now.saturating_sub(*at) < self.cache.refresh_us
        {
            return t.clone();
        }
        // A failed read is not cached: the next request tries again.
        let bytes = self.blobs.get(&records::keys::traffic(name)).await.ok()?;
        let policy = bytes.and_then(|b| serde_json::from_slice::<Traffic>(&b).ok());
        if let Ok(mut map) = self.cache.traffic.lock() {
            map.insert(name.to_string(), (now, policy.clone()));
        }
        policy
    }

    /// Loads (or returns the kept) `version` of `name`: bundle, model and feature spec, with
    /// the bundle's hashes checked by [`Model::load`].
    pub async fn load(&self, name: &str, version: u64) -> Result<Arc<Model>, InferenceError> {
        if let Some(m) = self.cache.cached(name, version) {
            return Ok(m);
        }
        let bundle_key = registry::version_key(name, version, registry::BUNDLE);
        let bundle_bytes = self
            .blobs
            .get(&bundle_key)
            .await
            .map_err(|e| unavailable(format!("reading {bundle_key}: {e}")))?
            .ok_or_else(|| {
                InferenceError::NotFound(format!("model '{name}' has no version {version}"))
            })?;
        let bundle = parse_bundle(&bundle_bytes).map_err(InferenceError::from)?;
        let onnx = self
            .blobs
            .get(&bundle.model_key)
            .await
            .map_err(|e| unavailable(format!("reading {}: {e}", bundle.model_key)))?
            .ok_or_else(|| unavailable(format!("{} is missing", bundle.model_key)))?;
        // An imported model has no feature view, so no spec to read.
        let spec = if bundle.feature_spec.key.is_empty() {
            None
        } else {
            self.blobs
                .get(&bundle.feature_spec.key)
                .await
                .map_err(|e| unavailable(format!("reading {}: {e}", bundle.feature_spec.key)))?
        };
        let bytes = bundle_bytes.len() + onnx.len() + spec.as_ref().map_or(0, Vec::len);
        let model = Arc::new(
            Model::load(&bundle_bytes, &onnx, spec.as_deref()).map_err(InferenceError::from)?,
        );
        self.cache.keep(name, version, &model, bytes);
        Ok(model)
    }
}

impl<B: Blobs> Models for RegistryModels<B> {
    async fn model(&self, name: &str, version: Option<u64>) -> Result<Arc<Model>, InferenceError> {
        if !self.cache.names.iter().any(|n| n == name) {
            return Err(InferenceError::NotFound(format!(
                "model '{name}' is not served here (served: {})",
                self.cache.names.join(", ")
            )));
        }
        let version = match version {
            Some(v) => v,
            None => self.champion(name).await?,
        };
        self.load(name, version).await
    }

    fn names(&self) -> Vec<String> {
        self.cache.names.clone()
    }

    /// The champion's version (as cached), the challenger a traffic policy routes to, and
    /// the `challenger` alias's version where that alias is in the objects (the edge is
    /// given the champion and the policy's challenger only).
    async fn aliased(&self, name: &str) -> Result<Vec<u64>, InferenceError> {
        let champion = self.champion(name).await?;
        let mut versions = vec![champion];
        if let Some(v) = self
            .traffic_policy(name)
            .await
            .and_then(|t| t.active_challenger(champion))
        {
            versions.push(v);
        }
        let key = registry::alias_key(name, "challenger");
        if let Ok(Some(bytes)) = self.blobs.get(&key).await
            && let Ok(alias) = serde_json::from_slice::<registry::Alias>(&bytes)
        {
            versions.push(alias.version);
        }
        Ok(versions)
    }

    async fn traffic(&self, name: &str) -> Option<Traffic> {
        self.traffic_policy(name).await
    }
}
