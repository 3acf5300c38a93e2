//! The publish stage: puts what the edge serves where the edge reads it.
//!
//! - [`publish_champion`] copies a model's champion (its bundle.json, ONNX file and feature
//!   spec, under the registry's own keys) and then the `champion` alias itself, last, so an
//!   edge instance that sees the new alias always finds the objects it names.
//! - [`publish_online`] copies a feature-view version's online records to the edge's
//!   key-value store, one entry per entity under [`features::online::edge_key`].
//! - [`publish_traffic`] copies a model's traffic policy (canary, shadow) and the challenger
//!   version it names, the policy last.
//! - [`publish_keys`] copies the API keys' hashes (`edge/keys.json`) beside the models.
//!
//! Where "the edge" is, is an [`Edge`]: Cloudflare's R2 through its S3-compatible API (the
//! storage crate's S3 backend) with KV through Cloudflare's HTTP API ([`Cloudflare`]), or
//! the local R2/KV of `wrangler dev` through wrangler's CLI ([`WranglerLocal`]), which the
//! tests and a laptop use. Each publication is recorded in the pipeline's store under
//! `published/` (what, which version, which keys with their sha256, where, when); a
//! publication already recorded is not repeated, so a redelivered event does the work once.

use std::ffi::OsString;
use std::future::Future;
use std::path::PathBuf;

use base64::Engine as _;
use contracts::sha256_hex;
use storage::Store;

pub use records::keys::PUBLISHED;
pub use records::publish::{Publication, PublishedObject};
/// Cloudflare's limit on entries per KV bulk write.
pub const KV_BULK_LIMIT: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Store(#[from] storage::StorageError),
    #[error(transparent)]
    Registry(#[from] registry::RegistryError),
    #[error("{0}")]
    Missing(String),
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
    #[error("Cloudflare KV API: {0}")]
    Kv(String),
    #[error("wrangler {args}: {message}")]
    Wrangler { args: String, message: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("edge target configuration: {0}")]
    Config(String),
}

impl stage::StageError for PublishError {
    /// True when the same call may succeed later: the store, the network or the KV API
    /// failed, not the data. A Lambda invocation fails on these so the platform redelivers.
    fn is_retryable(&self) -> bool {
        match self {
            PublishError::Store(e) => e.is_retryable(),
            PublishError::Registry(e) => e.is_retryable(),
            PublishError::Kv(_) | PublishError::Io(_) => true,
            PublishError::Missing(_)
            | PublishError::Invalid { .. }
            | PublishError::Wrangler { .. }
            | PublishError::Config(_) => false,
        }
    }

    fn is_fault(&self) -> bool {
        match self {
            PublishError::Store(e) => e.is_fault(),
            PublishError::Registry(e) => e.is_fault(),
            other => other.is_retryable(),
        }
    }
}

/// Where the edge reads models and online records.
pub trait Edge: Sync {
    /// A short description for logs and publication records.
    fn describe(&self) -> String;

    /// Puts one object (a registry key) where the edge reads models.
    fn put_object(
        &self,
        key: &str,
        bytes: Vec<u8>,
    ) -> impl Future<Output = Result<(), PublishError>> + Send;

    /// Puts key-value entries where the edge reads online features.
    fn put_entries(
        &self,
        entries: Vec<(String, Vec<u8>)>,
    ) -> impl Future<Output = Result<(), PublishError>> + Send;

    /// Puts a pointer (an alias, a traffic policy: JSON with a `seq` that grows with every
    /// move) unless the edge already holds a later one: a delayed or redelivered older
    /// publication must never replace a newer one. `Ok(Some(seq))` names the later pointer
    /// found (nothing written). Targets that can compare-and-swap do it atomically; the
    /// default (a target without conditional writes) puts unconditionally.
    fn put_pointer(
        &self,
        key: &str,
        bytes: Vec<u8>,
        seq: u64,
    ) -> impl Future<Output = Result<Option<u64>, PublishError>> + Send {
        let _ = seq;
        async move { self.put_object(key, bytes).await.map(|()| None) }
    }
}

/// [`Edge::put_pointer`] on an object store: read the edge's pointer, stop if its `seq` is
/// later, else compare-and-swap from what was read (create-if-absent when there is none),
/// and on a lost race read again.
pub async fn put_pointer_in(
    store: &Store,
    key: &str,
    bytes: Vec<u8>,
    seq: u64,
) -> Result<Option<u64>, PublishError> {
    loop {
        let current = store.get_opt(key).await?;
        if let Some(current) = &current {
            let held = serde_json::from_slice::<serde_json::Value>(&current.bytes)
                .ok()
                .and_then(|v| v["seq"].as_u64());
            match held {
                Some(held) if held > seq => return Ok(Some(held)),
                // The same move, published before (a redelivery): nothing to change.
                Some(held) if held == seq && current.bytes.as_ref() == bytes.as_slice() => {
                    return Ok(None);
                }
                _ => {}
            }
        }
        let expected = current.as_ref().map(|c| &c.info);
        if let storage::Swapped::Swapped(_) =
            store.compare_and_swap(key, expected, bytes.clone()).await?
        {
            return Ok(None);
        }
    }
}

/// A borrowed target publishes where the target does (the stage runner's handlers own
/// their target; a caller with a borrowed one wraps the reference).
impl<E: Edge + Send + Sync> Edge for &E {
    fn describe(&self) -> String {
        (**self).describe()
    }

    fn put_object(
        &self,
        key: &str,
        bytes: Vec<u8>,
    ) -> impl Future<Output = Result<(), PublishError>> + Send {
        (**self).put_object(key, bytes)
    }

    fn put_entries(
        &self,
        entries: Vec<(String, Vec<u8>)>,
    ) -> impl Future<Output = Result<(), PublishError>> + Send {
        (**self).put_entries(entries)
    }

    fn put_pointer(
        &self,
        key: &str,
        bytes: Vec<u8>,
        seq: u64,
    ) -> impl Future<Output = Result<Option<u64>, PublishError>> + Send {
        (**self).put_pointer(key, bytes, seq)
    }
}

/// A store URL without its query (which may carry credentials), for logs and records.
fn redacted(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// The JSON array both Cloudflare's KV bulk API and `wrangler kv bulk put` take: values
/// base64-encoded, since online records are binary.
fn kv_bulk_body(entries: &[(String, Vec<u8>)]) -> Vec<serde_json::Value> {
    entries
        .iter()
        .map(|(k, v)| {
            serde_json::json!({
                "key": k,
                "value": base64::engine::general_purpose::STANDARD.encode(v),
                "base64": true,
            })
        })
        .collect()
}

/// Cloudflare: objects to R2 through its S3 API, entries to KV through the HTTP API.
#[derive(Clone)]
pub struct Cloudflare {
    /// An S3 store pointed at the R2 bucket (`s3://BUCKET?endpoint=https://ACCOUNT.r2.cloudflarestorage.com`).
    pub objects: Store,
    pub kv: KvApi,
}

/// Cloudflare's KV HTTP API (`PUT .../storage/kv/namespaces/{id}/bulk`).
#[derive(Clone)]
pub struct KvApi {
    client: reqwest::Client,
    base_url: String,
    account_id: String,
    namespace_id: String,
    token: String,
}

impl std::fmt::Debug for KvApi {
    // Never the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvApi")
            .field("base_url", &self.base_url)
            .field("account_id", &self.account_id)
            .field("namespace_id", &self.namespace_id)
            .finish_non_exhaustive()
    }
}

impl KvApi {
    pub fn new(account_id: &str, namespace_id: &str, token: &str) -> KvApi {
        KvApi {
            client: reqwest::Client::new(),
            base_url: "https://api.cloudflare.com/client/v4".into(),
            account_id: account_id.into(),
            namespace_id: namespace_id.into(),
            token: token.into(),
        }
    }

    /// The same API at another address (a proxy, or a test server).
    pub fn with_base_url(mut self, base_url: &str) -> KvApi {
        self.base_url = base_url.trim_end_matches('/').to_string();
        self
    }

    fn bulk_url(&self) -> String {
        format!(
            "{}/accounts/{}/storage/kv/namespaces/{}/bulk",
            self.base_url, self.account_id, self.namespace_id
        )
    }

    /// Writes entries in bulk requests of at most [`KV_BULK_LIMIT`].
    pub async fn bulk_put(&self, entries: &[(String, Vec<u8>)]) -> Result<(), PublishError> {
        for chunk in entries.chunks(KV_BULK_LIMIT) {
            let body = kv_bulk_body(chunk);
            let response = self
                .client
                .put(self.bulk_url())
                .bearer_auth(&self.token)
                .json(&body)
                .send()
                .await
                .map_err(|e| PublishError::Kv(format!("{}: {e}", self.bulk_url())))?;
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            let ok = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.get("success").and_then(serde_json::Value::as_bool))
                .unwrap_or(false);
            if !status.is_success() || !ok {
                return Err(PublishError::Kv(format!(
                    "bulk write of {} entries answered {status}: {}",
                    chunk.len(),
                    text.chars().take(500).collect::<String>()
                )));
            }
        }
        Ok(())
    }
}

impl Edge for Cloudflare {
    fn describe(&self) -> String {
        format!(
            "R2 {} + KV namespace {}",
            redacted(self.objects.url()),
            self.kv.namespace_id
        )
    }

    async fn put_object(&self, key: &str, bytes: Vec<u8>) -> Result<(), PublishError> {
        self.objects.put(key, bytes).await?;
        Ok(())
    }

    async fn put_entries(&self, entries: Vec<(String, Vec<u8>)>) -> Result<(), PublishError> {
        self.kv.bulk_put(&entries).await
    }

    /// R2 takes conditional puts (`If-Match` / `If-None-Match`) through its S3 API.
    async fn put_pointer(
        &self,
        key: &str,
        bytes: Vec<u8>,
        seq: u64,
    ) -> Result<Option<u64>, PublishError> {
        put_pointer_in(&self.objects, key, bytes, seq).await
    }
}

/// An object store as the edge's source (an S3 bucket, R2 through its S3 API, a folder),
/// read over plain HTTP by the Spin component: objects under their registry keys, entries
/// as objects under `entries_prefix` (`online/` by default: `online/<view>/<entity>`).
#[derive(Clone)]
pub struct ObjectEdge {
    pub store: Store,
    pub entries_prefix: String,
}

impl ObjectEdge {
    pub fn new(store: Store) -> ObjectEdge {
        ObjectEdge {
            store,
            entries_prefix: records::keys::EDGE_ONLINE.into(),
        }
    }
}

/// Entries written at once to an object store.
const OBJECT_WRITES_IN_FLIGHT: usize = 32;

impl Edge for ObjectEdge {
    fn describe(&self) -> String {
        format!(
            "objects {} (entries under {})",
            self.store.url(),
            self.entries_prefix
        )
    }

    async fn put_object(&self, key: &str, bytes: Vec<u8>) -> Result<(), PublishError> {
        self.store.put(key, bytes).await?;
        Ok(())
    }

    async fn put_pointer(
        &self,
        key: &str,
        bytes: Vec<u8>,
        seq: u64,
    ) -> Result<Option<u64>, PublishError> {
        put_pointer_in(&self.store, key, bytes, seq).await
    }

    async fn put_entries(&self, entries: Vec<(String, Vec<u8>)>) -> Result<(), PublishError> {
        use futures::{StreamExt as _, TryStreamExt as _};
        futures::stream::iter(entries)
            .map(|(k, v)| {
                let key = format!("{}{k}", self.entries_prefix);
                async move { self.store.put(&key, v).await.map(|_| ()) }
            })
            .buffer_unordered(OBJECT_WRITES_IN_FLIGHT)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }
}

/// The local R2 and KV of `wrangler dev`, written with wrangler's CLI (`--local
/// --persist-to STATE`), so a Worker run with the same state folder serves them.
#[derive(Debug, Clone)]
pub struct WranglerLocal {
    /// The wrangler executable.
    pub wrangler: PathBuf,
    /// PATH for wrangler (it needs Node >= 22.12 first on it); `None`: inherited.
    pub path: Option<OsString>,
    /// The Worker's wrangler.toml (bindings).
    pub config: PathBuf,
    /// The state folder `wrangler dev --persist-to` uses.
    pub state: PathBuf,
    /// R2 bucket name of the models binding (wrangler.toml's `bucket_name`).
    pub models_bucket: String,
    /// KV binding of the online features.
    pub kv_binding: String,
}

impl WranglerLocal {
    async fn run(&self, args: &[String]) -> Result<(), PublishError> {
        let mut cmd = tokio::process::Command::new(&self.wrangler);
        cmd.args(args)
            .args(["--local", "--persist-to"])
            .arg(&self.state)
            .arg("-c")
            .arg(&self.config)
            .env("WRANGLER_SEND_METRICS", "false")
            .env("NO_COLOR", "1");
        if let Some(dir) = self.config.parent() {
            cmd.current_dir(dir);
        }
        if let Some(path) = &self.path {
            cmd.env("PATH", path);
        }
        let out = cmd.output().await.map_err(|e| PublishError::Wrangler {
            args: args.join(" "),
            message: format!("cannot start {}: {e}", self.wrangler.display()),
        })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(PublishError::Wrangler {
                args: args.join(" "),
                message: format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            })
        }
    }

    fn scratch(&self, name: &str) -> PathBuf {
        self.state.join(".publish").join(name)
    }
}

impl Edge for WranglerLocal {
    fn describe(&self) -> String {
        format!("wrangler local state {}", self.state.display())
    }

    async fn put_object(&self, key: &str, bytes: Vec<u8>) -> Result<(), PublishError> {
        let file = self.scratch("object");
        tokio::fs::create_dir_all(self.state.join(".publish")).await?;
        tokio::fs::write(&file, bytes).await?;
        self.run(&[
            "r2".into(),
            "object".into(),
            "put".into(),
            format!("{}/{key}", self.models_bucket),
            "--file".into(),
            file.to_string_lossy().into_owned(),
        ])
        .await
    }

    async fn put_entries(&self, entries: Vec<(String, Vec<u8>)>) -> Result<(), PublishError> {
        tokio::fs::create_dir_all(self.state.join(".publish")).await?;
        for chunk in entries.chunks(KV_BULK_LIMIT) {
            let body = kv_bulk_body(chunk);
            let file = self.scratch("entries.json");
            let json = serde_json::to_vec(&body).map_err(|e| PublishError::Invalid {
                key: "entries".into(),
                message: e.to_string(),
            })?;
            tokio::fs::write(&file, json).await?;
            self.run(&[
                "kv".into(),
                "bulk".into(),
                "put".into(),
                file.to_string_lossy().into_owned(),
                "--binding".into(),
                self.kv_binding.clone(),
            ])
            .await?;
        }
        Ok(())
    }
}

/// What a call did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Published(Publication),
    /// Already recorded as published: nothing was written.
    AlreadyDone(String),
    /// The edge already holds a later pointer (`edge_seq`) than this publication's: its
    /// files were copied, the pointer left as it was, nothing recorded.
    Superseded {
        pointer: String,
        seq: u64,
        edge_seq: u64,
    },
}

async fn record(store: &Store, key: &str, p: &Publication) -> Result<(), PublishError> {
    let bytes = serde_json::to_vec_pretty(p).map_err(|e| PublishError::Invalid {
        key: key.into(),
        message: e.to_string(),
    })?;
    // Create-if-absent: a concurrent duplicate publication leaves the first record.
    store.put_if_absent(key, bytes).await?;
    Ok(())
}

/// Publication record key of a model's champion move (`seq` numbers alias moves).
pub fn champion_record_key(model: &str, seq: u64) -> String {
    records::keys::published_champion(model, seq)
}

/// Publication record key of a feature-view version's online records.
pub fn online_record_key(view: &str, version: &str) -> String {
    records::keys::published_online(view, version)
}

/// Publishes `model`'s current champion to `edge`: bundle, ONNX file and feature spec,
/// then the alias.
pub async fn publish_champion(
    store: &Store,
    model: &str,
    edge: &impl Edge,
) -> Result<Outcome, PublishError> {
    let alias_key = registry::alias_key(model, "champion");
    let alias_bytes = store
        .get_opt(&alias_key)
        .await?
        .ok_or_else(|| {
            PublishError::Missing(format!("model '{model}' has no champion ({alias_key})"))
        })?
        .bytes;
    let alias: registry::Alias =
        serde_json::from_slice(&alias_bytes).map_err(|e| PublishError::Invalid {
            key: alias_key.clone(),
            message: e.to_string(),
        })?;
    let record_key = champion_record_key(model, alias.seq);
    if store.head(&record_key).await?.is_some() {
        return Ok(Outcome::AlreadyDone(record_key));
    }
    let objects = copy_version(store, model, alias.version, edge).await?;
    // The alias last: the edge follows it only once everything it names is there.
    let publication = Publication {
        kind: "champion".into(),
        name: model.into(),
        version: alias.version.to_string(),
        objects,
        entries: 0,
        target: edge.describe(),
        published_at_ms: 0,
    };
    finish(
        store,
        edge,
        &record_key,
        publication,
        (&alias_key, &alias_bytes, alias.seq),
    )
    .await
}

/// Puts the pointer that makes a publication visible (an alias, a policy) last, then
/// records the publication with it.
async fn finish(
    store: &Store,
    edge: &impl Edge,
    record_key: &str,
    mut publication: Publication,
    (key, bytes, seq): (&str, &[u8], u64),
) -> Result<Outcome, PublishError> {
    publication.objects.push(PublishedObject {
        key: key.into(),
        sha256: sha256_hex(bytes),
        bytes: bytes.len() as u64,
    });
    if let Some(edge_seq) = edge.put_pointer(key, bytes.to_vec(), seq).await? {
        return Ok(Outcome::Superseded {
            pointer: key.into(),
            seq,
            edge_seq,
        });
    }
    publication.published_at_ms = storage::now_ms();
    record(store, record_key, &publication).await?;
    Ok(Outcome::Published(publication))
}

/// Copies one version's files to `edge`: the ONNX model and feature spec, then the bundle
/// (the registry's commit marker, so last here too).
async fn copy_version(
    store: &Store,
    model: &str,
    version: u64,
    edge: &impl Edge,
) -> Result<Vec<PublishedObject>, PublishError> {
    let bundle_key = registry::version_key(model, version, registry::BUNDLE);
    let bundle_bytes = store
        .get_opt(&bundle_key)
        .await?
        .ok_or_else(|| PublishError::Missing(format!("{bundle_key} is missing")))?
        .bytes;
    let bundle: registry::Bundle =
        serde_json::from_slice(&bundle_bytes).map_err(|e| PublishError::Invalid {
            key: bundle_key.clone(),
            message: e.to_string(),
        })?;
    let mut objects = Vec::new();
    // An imported model has no feature spec (its key is empty).
    for key in [
        bundle.model_key.clone(),
        bundle.feature_spec.key.clone(),
        bundle_key,
    ]
    .into_iter()
    .filter(|k| !k.is_empty())
    {
        let bytes = store
            .get_opt(&key)
            .await?
            .ok_or_else(|| {
                PublishError::Missing(format!("{key} (named by the bundle) is missing"))
            })?
            .bytes
            .to_vec();
        objects.push(PublishedObject {
            key: key.clone(),
            sha256: sha256_hex(&bytes),
            bytes: bytes.len() as u64,
        });
        edge.put_object(&key, bytes).await?;
    }
    Ok(objects)
}

/// Publishes `model`'s traffic policy (`models/<model>/traffic.json`): the challenger it
/// routes to (bundle, ONNX file, feature spec), then the policy itself, last, so an edge
/// instance that reads the policy finds the version it names. An ended policy is
/// published too: that is how the edge stops the experiment.
pub async fn publish_traffic(
    store: &Store,
    model: &str,
    edge: &impl Edge,
) -> Result<Outcome, PublishError> {
    let key = records::keys::traffic(model);
    let bytes = store
        .get_opt(&key)
        .await?
        .ok_or_else(|| {
            PublishError::Missing(format!("model '{model}' has no traffic policy ({key})"))
        })?
        .bytes;
    let traffic: registry::Traffic =
        serde_json::from_slice(&bytes).map_err(|e| PublishError::Invalid {
            key: key.clone(),
            message: e.to_string(),
        })?;
    let record_key = records::keys::published_traffic(model, traffic.seq);
    if store.head(&record_key).await?.is_some() {
        return Ok(Outcome::AlreadyDone(record_key));
    }
    let mut objects = Vec::new();
    if let Some(v) = traffic
        .challenger
        .filter(|_| traffic.canary_share > 0.0 || traffic.shadow)
    {
        objects = copy_version(store, model, v, edge).await?;
    }
    // The policy last: the edge routes to the challenger only once its files are there.
    let publication = Publication {
        kind: "traffic".into(),
        name: model.into(),
        version: traffic.seq.to_string(),
        objects,
        entries: 0,
        target: edge.describe(),
        published_at_ms: 0,
    };
    finish(
        store,
        edge,
        &record_key,
        publication,
        (&key, &bytes, traffic.seq),
    )
    .await
}

/// The online records blob of a feature-view version.
pub fn online_blob_key(view: &str, version: &str) -> String {
    records::keys::online_blob(view, version)
}

/// Publishes the online records of `view` version `version` to `edge`'s key-value store.
pub async fn publish_online(
    store: &Store,
    view: &str,
    version: &str,
    edge: &impl Edge,
) -> Result<Outcome, PublishError> {
    let record_key = online_record_key(view, version);
    if store.head(&record_key).await?.is_some() {
        return Ok(Outcome::AlreadyDone(record_key));
    }
    let key = online_blob_key(view, version);
    let blob = store.get_opt(&key).await?.ok_or_else(|| {
        PublishError::Missing(format!(
            "{key} is missing: the feature stage writes it unless the view's records exceed {} MiB",
            64
        ))
    })?;
    let snapshot =
        features::SnapshotStore::decode(&blob.bytes).map_err(|e| PublishError::Invalid {
            key: key.clone(),
            message: e.to_string(),
        })?;
    let mut entries = Vec::with_capacity(snapshot.len());
    for r in snapshot.records() {
        let bytes = r.encode().map_err(|e| PublishError::Invalid {
            key: key.clone(),
            message: e.to_string(),
        })?;
        entries.push((features::online::edge_key(&r.view, &r.entity), bytes));
    }
    let n = entries.len();
    edge.put_entries(entries).await?;
    let publication = Publication {
        kind: "online".into(),
        name: view.into(),
        version: version.into(),
        objects: vec![PublishedObject {
            key: key.clone(),
            sha256: sha256_hex(&blob.bytes),
            bytes: blob.bytes.len() as u64,
        }],
        entries: n,
        target: edge.describe(),
        published_at_ms: storage::now_ms(),
    };
    record(store, &record_key, &publication).await?;
    Ok(Outcome::Published(publication))
}

/// Publishes the API keys (their hashes, as `records::access::KeySet`) to `edge` as
/// `edge/keys.json`, where the Worker and the Spin component read them. The same set is
/// published once (recorded by its content hash).
pub async fn publish_keys(store: &Store, edge: &impl Edge) -> Result<Outcome, PublishError> {
    let set = access::key_set(store).await.map_err(|e| match e {
        access::AccessError::Storage(e) => PublishError::Store(e),
        other => PublishError::Invalid {
            key: records::keys::API_KEYS.into(),
            message: other.to_string(),
        },
    })?;
    let bytes = serde_json::to_vec(&set).map_err(|e| PublishError::Invalid {
        key: records::keys::EDGE_KEYS.into(),
        message: e.to_string(),
    })?;
    let sha256 = sha256_hex(&bytes);
    let record_key = records::keys::published_keys(&sha256);
    if store.head(&record_key).await?.is_some() {
        return Ok(Outcome::AlreadyDone(record_key));
    }
    let n = set.keys.len();
    let size = bytes.len() as u64;
    edge.put_object(records::keys::EDGE_KEYS, bytes).await?;
    let publication = Publication {
        kind: "keys".into(),
        name: "api-keys".into(),
        version: sha256[..12].to_string(),
        objects: vec![PublishedObject {
            key: records::keys::EDGE_KEYS.into(),
            sha256,
            bytes: size,
        }],
        entries: n,
        target: edge.describe(),
        published_at_ms: storage::now_ms(),
    };
    record(store, &record_key, &publication).await?;
    Ok(Outcome::Published(publication))
}

/// Publishes every champion in `models`, the online records of the feature-view version
/// each champion was trained on, and each model's traffic policy where it has one.
pub async fn publish_models(
    store: &Store,
    models: &[String],
    edge: &impl Edge,
) -> Result<Vec<Outcome>, PublishError> {
    let mut out = Vec::new();
    for model in models {
        let alias = registry::alias(store, model, "champion")
            .await?
            .ok_or_else(|| PublishError::Missing(format!("model '{model}' has no champion")))?;
        let bundle = registry::bundle(store, model, alias.version)
            .await?
            .ok_or_else(|| {
                PublishError::Missing(format!("model '{model}' has no version {}", alias.version))
            })?;
        // Every view the model reads (none for an imported model), except a view that
        // keeps no online state (plain rows: nothing to look up).
        for v in bundle.views() {
            let manifest_key = records::keys::feature_manifest(&v.view, &v.version);
            let keeps_state = match store.get_opt(&manifest_key).await? {
                Some(o) => {
                    serde_json::from_slice::<records::pipeline::FeatureManifest>(&o.bytes)
                        .map_err(|e| PublishError::Invalid {
                            key: manifest_key.clone(),
                            message: e.to_string(),
                        })?
                        .online
                        .records
                        > 0
                }
                None => true,
            };
            if keeps_state {
                out.push(publish_online(store, &v.view, &v.version, edge).await?);
            }
        }
        out.push(publish_champion(store, model, edge).await?);
        if store.head(&records::keys::traffic(model)).await?.is_some() {
            out.push(publish_traffic(store, model, edge).await?);
        }
    }
    Ok(out)
}

mod handler;
mod target;

pub use handler::{Publish, StageOutcome, handle};
pub use target::{EdgeTarget, TargetSettings, WORKER_KV_BINDING, WORKER_MODELS_BUCKET};

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

#[cfg(test)]
mod redaction {
    #[test]
    fn credentials_in_store_urls_stay_out_of_records() {
        assert_eq!(
            super::redacted("s3://b?endpoint=http://x&secret_access_key=s"),
            "s3://b"
        );
        assert_eq!(super::redacted("/tmp/dir"), "/tmp/dir");
    }
}
