//! Object store access for every zone of the pipeline.
//!
//! One [`Store`] wraps an `object_store` backend chosen by URL:
//! - a local folder (`file:///abs/path`, or a plain path; the embedded default is `./.mlpipe`),
//! - memory (`memory://`, for tests),
//! - S3 or any S3-compatible endpoint such as R2 or moto (`s3://bucket[/prefix]`, configured by
//!   the usual `AWS_*` environment variables, or options in the URL's query:
//!   `?endpoint=http://127.0.0.1:5000&region=us-east-1`, and any other `object_store` S3 key
//!   such as `access_key_id`; environment variables are the better place for secrets).
//!   Requests that fail for a reason that may pass (5xx, 429 `SlowDown`, a reset or timed-out
//!   connection) are retried with exponential backoff and jitter, at most `max_retries`
//!   times (10) within `retry_timeout_s` (180), from a base of `retry_backoff_ms` (100).
//!
//! On every backend it offers the two atomic operations the pipeline's correctness rests on:
//! create-if-absent (commit markers, snapshots, version files) and compare-and-swap (aliases
//! and pointers). S3 and memory use conditional puts (`If-None-Match` / `If-Match`); the local
//! file system, where `object_store` has no update-if-match, uses an exclusive file lock per
//! key around read-compare-write.
//!
//! Invariant: this crate knows no stage, runtime or wire format beyond object keys.

use records::keys as zones;

pub mod faults;
mod redact;

pub use faults::{Faults, Op};
pub use redact::{redact_text, redact_url};

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};

/// Default location of the embedded, file-backed store.
pub const DEFAULT_LOCAL_STORE: &str = ".mlpipe";

/// Storage failures. [`StorageError::is_retryable`] says which may succeed on a retry, which
/// is how handlers decide between failing the delivery (retried) and a dead-letter record.
/// Messages never carry a store URL's secrets: URLs are redacted ([`redact_url`]) and a
/// backend's message passes through [`redact_text`].
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("object '{key}' not found")]
    NotFound { key: String },
    #[error("invalid object key '{key}': {message}")]
    InvalidKey { key: String, message: String },
    #[error("store URL '{url}': {message}")]
    Config { url: String, message: String },
    #[error("{op} '{key}': {}", redact_text(&source_chain(source)))]
    Backend {
        op: &'static str,
        key: String,
        #[source]
        source: object_store::Error,
    },
    #[error("{op} '{key}': {source}")]
    Io {
        op: &'static str,
        key: String,
        #[source]
        source: std::io::Error,
    },
    /// A fault planted by [`Faults`] (tests only ever plant them).
    #[error("{op} '{key}': injected fault ({fault})")]
    Injected {
        op: &'static str,
        key: String,
        fault: &'static str,
    },
}

impl StorageError {
    /// True when the same call may succeed later (network, throttling, a server error, a
    /// busy lock). A request the store refuses as such (access denied, a malformed or
    /// too-long key, any other 4xx but 408 and 429) fails the same way every time: retrying
    /// it only delays the dead-letter record.
    pub fn is_retryable(&self) -> bool {
        match self {
            StorageError::Backend { source, .. } => backend_retryable(source),
            StorageError::Io { .. } => true,
            StorageError::Injected { fault, .. } => *fault != faults::DENIED,
            StorageError::NotFound { .. }
            | StorageError::InvalidKey { .. }
            | StorageError::Config { .. } => false,
        }
    }
}

impl StorageError {
    /// True when the store failed rather than the request's subject: everything but a
    /// missing object (a vanished upload is the data's state, reported as such). Retryable
    /// or not, a stage that ends on such a failure dead-letters its delivery.
    pub fn is_fault(&self) -> bool {
        !matches!(self, StorageError::NotFound { .. })
    }
}

/// Whether a backend error may pass on a retry (see [`StorageError::is_retryable`]).
fn backend_retryable(e: &object_store::Error) -> bool {
    use object_store::Error as E;
    match e {
        E::PermissionDenied { .. }
        | E::Unauthenticated { .. }
        | E::InvalidPath { .. }
        | E::NotSupported { .. }
        | E::NotImplemented { .. }
        | E::UnknownConfigurationKey { .. } => false,
        other => {
            !matches!(http_status(other), Some(s) if (400..500).contains(&s) && s != 408 && s != 429)
        }
    }
}

/// The HTTP status an `object_store` error carries, read from its message chain (the
/// crate's retry error, which holds it, is private): "... non-2xx status code: 400 ...".
fn http_status(e: &(dyn std::error::Error + 'static)) -> Option<u16> {
    let mut next = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        if let Some(at) = text.find("status code: ") {
            let digits: String = text[at + 13..].chars().take(3).collect();
            if let Ok(status) = digits.parse() {
                return Some(status);
            }
        }
        next = err.source();
    }
    None
}

/// An error and its sources in one line (object_store puts the server's reply in a source).
fn source_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(err) = next {
        let more = err.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        next = err.source();
    }
    text
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// What is known about one stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    pub etag: Option<String>,
    pub version: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub last_modified_ms: i64,
}

/// An object's bytes with its metadata.
#[derive(Debug, Clone)]
pub struct Object {
    pub info: ObjectInfo,
    pub bytes: Bytes,
}

/// Result of [`Store::get_bounded`].
#[derive(Debug, Clone)]
pub enum Bounded {
    /// The whole object and the SHA-256 (hex) of its bytes.
    Read { object: Object, sha256: String },
    /// Over the limit; nothing (or only what came before the limit) was read. `info.size`
    /// is the size found.
    TooLarge { info: ObjectInfo },
}

/// Result of [`Store::put_if_absent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    Created(ObjectInfo),
    /// Another writer got there first; nothing was written.
    AlreadyExists,
}

/// Result of [`Store::compare_and_swap`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Swapped {
    Swapped(ObjectInfo),
    /// The object was not in the expected state; nothing was written.
    Conflict,
}

/// Which kind of backend a store is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Local { root: PathBuf },
    Memory,
    S3 { bucket: String, prefix: String },
}

/// Called with every object this store writes. The local stack uses it to raise the
/// object-created events a real bucket would raise.
pub type WriteObserver = Arc<dyn Fn(&ObjectInfo) + Send + Sync>;

/// A handle on one store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    backend: Backend,
    /// The URL it was opened with, secrets redacted: it is shown and recorded, never used to
    /// reopen the store.
    url: String,
    observer: Option<WriteObserver>,
    faults: Option<Arc<Faults>>,
}

/// S3's limit on a key's length (UTF-8 bytes); a longer key is refused before any request.
pub const MAX_KEY_BYTES: usize = 1024;

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("url", &self.url).finish()
    }
}

impl Store {
    /// Opens a store from a URL or a local path (see the crate docs for the forms).
    pub fn open(url: &str) -> Result<Store> {
        let config = |message: String| StorageError::Config {
            url: redact_url(url),
            message,
        };
        if url == "memory://" || url == "memory:" {
            return Ok(Store::memory());
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            return open_s3(url, rest);
        }
        let path = match url.strip_prefix("file://") {
            Some(p) => PathBuf::from(p),
            None if url.contains("://") => {
                return Err(config(
                    "unsupported scheme (use a path, file://, memory:// or s3://)".into(),
                ));
            }
            None => PathBuf::from(url),
        };
        Store::local(&path)
    }

    /// A file-backed store rooted at `root` (created if missing).
    pub fn local(root: &FsPath) -> Result<Store> {
        std::fs::create_dir_all(root).map_err(|source| StorageError::Io {
            op: "create store folder",
            key: root.display().to_string(),
            source,
        })?;
        let root = root.canonicalize().map_err(|source| StorageError::Io {
            op: "resolve store folder",
            key: root.display().to_string(),
            source,
        })?;
        let fs = LocalFileSystem::new_with_prefix(&root).map_err(|e| StorageError::Config {
            url: root.display().to_string(),
            message: e.to_string(),
        })?;
        Ok(Store {
            inner: Arc::new(fs),
            url: format!("file://{}", root.display()),
            backend: Backend::Local { root },
            observer: None,
            faults: None,
        })
    }

    /// An empty in-memory store.
    pub fn memory() -> Store {
        Store {
            inner: Arc::new(InMemory::new()),
            backend: Backend::Memory,
            url: "memory://".into(),
            observer: None,
            faults: None,
        }
    }

    /// The same store, reporting every write to `observer`.
    pub fn with_observer(&self, observer: WriteObserver) -> Store {
        Store {
            observer: Some(observer),
            ..self.clone()
        }
    }

    /// The same store (same objects), with `faults` deciding which operations fail, hang or
    /// find the process "crashed". For tests of what a stage leaves behind when the store
    /// or the process fails halfway; the normal build carries it, no feature flag.
    pub fn with_faults(&self, faults: Arc<Faults>) -> Store {
        Store {
            faults: Some(faults),
            ..self.clone()
        }
    }

    /// The store's URL with any secret in it redacted (see [`redact_url`]).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Consults the fault plan before an operation.
    async fn check(&self, op: Op, key: &str) -> Result<()> {
        match &self.faults {
            Some(faults) => faults.before(op, key).await,
            None => Ok(()),
        }
    }

    /// Tells the fault plan an operation completed.
    fn done(&self, op: Op, key: &str) -> Result<()> {
        match &self.faults {
            Some(faults) => faults.after(op, key),
            None => Ok(()),
        }
    }

    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// The bucket name events carry for this store (the folder name for local stores).
    pub fn bucket_name(&self) -> String {
        match &self.backend {
            Backend::Local { root } => root
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "local".into()),
            Backend::Memory => "memory".into(),
            Backend::S3 { bucket, .. } => bucket.clone(),
        }
    }

    pub async fn get(&self, key: &str) -> Result<Object> {
        let path = parse_key(key)?;
        self.check(Op::Get, key).await?;
        let result = self
            .inner
            .get(&path)
            .await
            .map_err(|e| map_err("get", key, e))?;
        let info = info_from_meta(key, &result.meta);
        let bytes = result.bytes().await.map_err(|e| map_err("get", key, e))?;
        telemetry::record_bytes(telemetry::Direction::Read, bytes.len() as u64);
        self.done(Op::Get, key)?;
        Ok(Object { info, bytes })
    }

    /// Reads an object no larger than `max_bytes`, computing its SHA-256 as the bytes arrive.
    /// The size is checked from the object's metadata before any byte is read, and again
    /// while reading (the object may be replaced in between): a larger object is
    /// [`Bounded::TooLarge`], and at most `max_bytes` plus one chunk are ever held.
    pub async fn get_bounded(&self, key: &str, max_bytes: u64) -> Result<Bounded> {
        use sha2::Digest;
        let path = parse_key(key)?;
        if let Some(info) = self.head(key).await?
            && info.size > max_bytes
        {
            return Ok(Bounded::TooLarge { info });
        }
        self.check(Op::Get, key).await?;
        let result = self
            .inner
            .get(&path)
            .await
            .map_err(|e| map_err("get", key, e))?;
        let info = info_from_meta(key, &result.meta);
        if info.size > max_bytes {
            return Ok(Bounded::TooLarge { info });
        }
        let mut hasher = sha2::Sha256::new();
        let mut buf = Vec::with_capacity(info.size as usize);
        let mut stream = result.into_stream();
        while let Some(chunk) = stream
            .try_next()
            .await
            .map_err(|e| map_err("get", key, e))?
        {
            if (buf.len() + chunk.len()) as u64 > max_bytes {
                let size = (buf.len() + chunk.len()) as u64;
                return Ok(Bounded::TooLarge {
                    info: ObjectInfo { size, ..info },
                });
            }
            hasher.update(&chunk);
            buf.extend_from_slice(&chunk);
        }
        telemetry::record_bytes(telemetry::Direction::Read, buf.len() as u64);
        self.done(Op::Get, key)?;
        Ok(Bounded::Read {
            object: Object {
                info,
                bytes: Bytes::from(buf),
            },
            sha256: hex::encode(hasher.finalize()),
        })
    }

    /// Streams an object into a file, so an input larger than memory (a batch job's) never
    /// sits in it whole. Returns the object's info and the bytes written.
    pub async fn download(&self, key: &str, to: &FsPath) -> Result<ObjectInfo> {
        use tokio::io::AsyncWriteExt as _;
        let path = parse_key(key)?;
        self.check(Op::Get, key).await?;
        let result = self
            .inner
            .get(&path)
            .await
            .map_err(|e| map_err("get", key, e))?;
        let info = info_from_meta(key, &result.meta);
        let io = |source| StorageError::Io {
            op: "write downloaded object",
            key: to.display().to_string(),
            source,
        };
        let mut file = tokio::fs::File::create(to).await.map_err(io)?;
        let mut stream = result.into_stream();
        let mut n = 0u64;
        while let Some(chunk) = stream
            .try_next()
            .await
            .map_err(|e| map_err("get", key, e))?
        {
            n += chunk.len() as u64;
            file.write_all(&chunk).await.map_err(io)?;
        }
        file.flush().await.map_err(io)?;
        telemetry::record_bytes(telemetry::Direction::Read, n);
        self.done(Op::Get, key)?;
        Ok(info)
    }

    /// Writes a file as an object in parts (a multipart upload on S3), so an output larger
    /// than memory is never held whole; the object appears at once when complete.
    pub async fn upload(&self, key: &str, from: &FsPath) -> Result<ObjectInfo> {
        use tokio::io::AsyncReadExt as _;
        let path = parse_key(key)?;
        let io = |source| StorageError::Io {
            op: "read file to upload",
            key: from.display().to_string(),
            source,
        };
        self.check(Op::Put, key).await?;
        let mut file = tokio::fs::File::open(from).await.map_err(io)?;
        let upload = self
            .inner
            .put_multipart(&path)
            .await
            .map_err(|e| map_err("put", key, e))?;
        let mut writer = object_store::WriteMultipart::new(upload);
        let mut buf = vec![0u8; 1 << 20];
        let mut size = 0u64;
        loop {
            let n = file.read(&mut buf).await.map_err(io)?;
            if n == 0 {
                break;
            }
            size += n as u64;
            writer
                .wait_for_capacity(4)
                .await
                .map_err(|e| map_err("put", key, e))?;
            writer.write(&buf[..n]);
        }
        let result = writer.finish().await.map_err(|e| map_err("put", key, e))?;
        let info = self.written(key, size, result);
        self.done(Op::Put, key)?;
        Ok(info)
    }

    /// Like [`Store::get`], but a missing object is `None` rather than an error.
    pub async fn get_opt(&self, key: &str) -> Result<Option<Object>> {
        match self.get(key).await {
            Ok(o) => Ok(Some(o)),
            Err(StorageError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
        let path = parse_key(key)?;
        self.check(Op::Head, key).await?;
        let found = match self.inner.head(&path).await {
            Ok(meta) => Some(info_from_meta(key, &meta)),
            Err(object_store::Error::NotFound { .. }) => None,
            Err(e) => return Err(map_err("head", key, e)),
        };
        self.done(Op::Head, key)?;
        Ok(found)
    }

    /// Deletes an object; a missing one is no error (a repeated delete does nothing).
    pub async fn delete(&self, key: &str) -> Result<()> {
        let path = parse_key(key)?;
        self.check(Op::Delete, key).await?;
        match self.inner.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(map_err("delete", key, e)),
        }
        self.done(Op::Delete, key)
    }

    /// Writes (or overwrites) an object atomically.
    pub async fn put(&self, key: &str, bytes: impl Into<Bytes>) -> Result<ObjectInfo> {
        let bytes = bytes.into();
        let path = parse_key(key)?;
        self.check(Op::Put, key).await?;
        let size = bytes.len() as u64;
        let result = self
            .inner
            .put(&path, PutPayload::from(bytes))
            .await
            .map_err(|e| map_err("put", key, e))?;
        let info = self.written(key, size, result);
        self.done(Op::Put, key)?;
        Ok(info)
    }

    /// Writes the object only if no object exists at `key`.
    pub async fn put_if_absent(&self, key: &str, bytes: impl Into<Bytes>) -> Result<Created> {
        let bytes = bytes.into();
        let path = parse_key(key)?;
        self.check(Op::Put, key).await?;
        let size = bytes.len() as u64;
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        let started_ms = now_ms();
        let created = match self
            .inner
            .put_opts(&path, PutPayload::from(bytes.clone()), opts)
            .await
        {
            Ok(result) => Created::Created(self.written(key, size, result)),
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => {
                match self.own_earlier_write(key, &bytes, started_ms).await? {
                    Some(info) => Created::Created(info),
                    None => Created::AlreadyExists,
                }
            }
            Err(e) => return Err(map_err("put-if-absent", key, e)),
        };
        self.done(Op::Put, key)?;
        Ok(created)
    }

    /// Replaces the object only if it is still the version `expected` describes; `None` means
    /// "only if absent". Readers use the `ObjectInfo` from [`Store::get`] or [`Store::head`].
    pub async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&ObjectInfo>,
        bytes: impl Into<Bytes>,
    ) -> Result<Swapped> {
        let Some(expected) = expected else {
            return Ok(match self.put_if_absent(key, bytes).await? {
                Created::Created(info) => Swapped::Swapped(info),
                Created::AlreadyExists => Swapped::Conflict,
            });
        };
        if let Backend::Local { root } = &self.backend {
            // Faults apply to the head and put it is made of.
            return self.local_swap(root, key, expected, bytes.into()).await;
        }
        let bytes = bytes.into();
        let path = parse_key(key)?;
        self.check(Op::Put, key).await?;
        let size = bytes.len() as u64;
        let started_ms = now_ms();
        let opts = PutOptions {
            mode: PutMode::Update(UpdateVersion {
                e_tag: expected.etag.clone(),
                version: expected.version.clone(),
            }),
            ..Default::default()
        };
        match self
            .inner
            .put_opts(&path, PutPayload::from(bytes.clone()), opts)
            .await
        {
            Ok(result) => {
                let info = self.written(key, size, result);
                self.done(Op::Put, key)?;
                Ok(Swapped::Swapped(info))
            }
            Err(object_store::Error::Precondition { .. })
            | Err(object_store::Error::NotFound { .. }) => Ok(
                match self.own_earlier_write(key, &bytes, started_ms).await? {
                    Some(info) => Swapped::Swapped(info),
                    None => Swapped::Conflict,
                },
            ),
            Err(e) => Err(map_err("compare-and-swap", key, e)),
        }
    }

    /// After a conditional write to S3 was refused: whether the object holds exactly the
    /// bytes we tried to write, written since this call began. When a reply is lost after S3
    /// applied a conditional write, the client's retry meets its own write as a failed
    /// precondition; the write did happen, so it is reported as done rather than as another
    /// writer's (a caller would otherwise move an alias twice or give up a claim it holds).
    /// An identical object that was there before the call (S3 times have whole seconds:
    /// older than a second before it) stays "already there": content-addressed writers rely
    /// on that to tell new content from old. Local and memory stores answer every request,
    /// so there is no lost reply to recognise.
    async fn own_earlier_write(
        &self,
        key: &str,
        bytes: &Bytes,
        started_ms: i64,
    ) -> Result<Option<ObjectInfo>> {
        if !matches!(self.backend, Backend::S3 { .. }) {
            return Ok(None);
        }
        match self.get_opt(key).await? {
            Some(current)
                if current.bytes == *bytes
                    && current.info.last_modified_ms >= started_ms - 1000 =>
            {
                // Raise the write as the first attempt would have (handlers are idempotent).
                if let Some(observer) = &self.observer {
                    observer(&current.info);
                }
                Ok(Some(current.info))
            }
            _ => Ok(None),
        }
    }

    /// Writes a handler's run record (`pipeline-runs/<stage>/<dataset>/<run>.json`, read by
    /// `mlpipe status`). Bookkeeping: a failure is logged, never returned, so it cannot turn
    /// committed work into a failed delivery.
    pub async fn record_run(&self, record: &records::pipeline::RunRecord) {
        use sha2::Digest;
        let mut record = record.clone();
        record.peak_memory_bytes = record
            .peak_memory_bytes
            .or_else(telemetry::peak_memory_bytes);
        telemetry::record_stage(&telemetry::StageRun {
            stage: record.stage.name(),
            outcome: record.outcome.as_str(),
            duration: std::time::Duration::from_millis(record.duration_ms),
            rows_in: record.rows_in,
            rows_out: record.rows_out,
            rows_rejected: record.rows_rejected,
            peak_memory_bytes: record.peak_memory_bytes,
        });
        let digest = sha2::Sha256::digest(
            format!("{}\n{}", record.trigger_key, record.started_at).as_bytes(),
        );
        let run_id = format!(
            "{}-{}",
            record.started_at.replace([':', '.'], ""),
            &hex::encode(digest)[..16]
        );
        let key = zones::pipeline_run(record.stage.name(), &record.dataset, &run_id);
        let body = serde_json::to_vec_pretty(&record).unwrap_or_default();
        if let Err(e) = self.put(&key, body).await {
            tracing::warn!(error = %e, key, "could not write run record");
        }
    }

    /// Every object under `prefix` (a folder-like prefix such as `curated/tx/`), sorted by key.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let trimmed = prefix.trim_end_matches('/');
        let path = if trimmed.is_empty() {
            None
        } else {
            Some(parse_key(trimmed)?)
        };
        self.check(Op::List, prefix).await?;
        let metas: Vec<_> = self
            .inner
            .list(path.as_ref())
            .try_collect()
            .await
            .or_else(|e| match e {
                // A local prefix folder that does not exist yet is simply empty.
                object_store::Error::NotFound { .. } => Ok(Vec::new()),
                e => Err(e),
            })
            .map_err(|e| map_err("list", prefix, e))?;
        let mut out: Vec<ObjectInfo> = metas
            .iter()
            .map(|m| info_from_meta(m.location.as_ref(), m))
            .filter(|i| i.key.starts_with(prefix) && !i.key.starts_with(LOCK_DIR))
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        self.done(Op::List, prefix)?;
        Ok(out)
    }

    fn written(&self, key: &str, size: u64, result: object_store::PutResult) -> ObjectInfo {
        telemetry::record_bytes(telemetry::Direction::Written, size);
        let info = ObjectInfo {
            key: key.to_string(),
            size,
            etag: result.e_tag,
            version: result.version,
            last_modified_ms: now_ms(),
        };
        if let Some(observer) = &self.observer {
            observer(&info);
        }
        info
    }

    /// Compare-and-swap for the local file system: an exclusive lock on a per-key lock file
    /// serialises writers (threads and processes alike), and the comparison happens under it.
    async fn local_swap(
        &self,
        root: &FsPath,
        key: &str,
        expected: &ObjectInfo,
        bytes: Bytes,
    ) -> Result<Swapped> {
        let lock_path = root.join(LOCK_DIR).join(format!("{}.lock", lock_name(key)));
        let io = |source| StorageError::Io {
            op: "lock",
            key: key.to_string(),
            source,
        };
        let lock = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
            if let Some(dir) = lock_path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)?;
            file.lock()?;
            Ok(file)
        })
        .await
        .map_err(|e| io(std::io::Error::other(e)))?
        .map_err(io)?;
        let outcome = match self.head(key).await? {
            Some(current) if current.etag == expected.etag => {
                Swapped::Swapped(self.put(key, bytes).await?)
            }
            _ => Swapped::Conflict,
        };
        drop(lock);
        Ok(outcome)
    }
}

/// Folder (inside a local store's root) that holds lock files; never listed.
const LOCK_DIR: &str = ".locks";

fn lock_name(key: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(key.as_bytes()))
}

fn parse_key(key: &str) -> Result<Path> {
    if key.len() > MAX_KEY_BYTES {
        return Err(StorageError::InvalidKey {
            key: format!("{}...", key.chars().take(120).collect::<String>()),
            message: format!(
                "{} bytes; keys are at most {MAX_KEY_BYTES} bytes (S3's limit)",
                key.len()
            ),
        });
    }
    if key.is_empty() || key.starts_with('/') || key.split('/').any(|s| s == "." || s == "..") {
        return Err(StorageError::InvalidKey {
            key: key.to_string(),
            message: "keys are relative, non-empty and contain no '.' or '..' segments".into(),
        });
    }
    Path::parse(key).map_err(|e| StorageError::InvalidKey {
        key: key.to_string(),
        message: e.to_string(),
    })
}

fn map_err(op: &'static str, key: &str, e: object_store::Error) -> StorageError {
    match e {
        object_store::Error::NotFound { .. } => StorageError::NotFound {
            key: key.to_string(),
        },
        source => StorageError::Backend {
            op,
            key: key.to_string(),
            source,
        },
    }
}

fn info_from_meta(key: &str, meta: &object_store::ObjectMeta) -> ObjectInfo {
    ObjectInfo {
        key: key.to_string(),
        size: meta.size,
        etag: meta.e_tag.clone(),
        version: meta.version.clone(),
        last_modified_ms: meta.last_modified.timestamp_millis(),
    }
}

fn open_s3(url: &str, rest: &str) -> Result<Store> {
    let config = |message: String| StorageError::Config {
        url: redact_url(url),
        message,
    };
    let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (bucket, prefix) = location.split_once('/').unwrap_or((location, ""));
    if bucket.is_empty() {
        return Err(config("no bucket name".into()));
    }
    // A URL that names its own key pair (R2, MinIO) is for another service than the one the
    // environment's AWS credentials are for: starting from the environment would also pick
    // up AWS_SESSION_TOKEN (always set in Lambda), and the foreign endpoint would reject
    // the request it signs.
    let base = if names_own_credentials(query) {
        AmazonS3Builder::new()
    } else {
        AmazonS3Builder::from_env()
    };
    let mut builder = base
        .with_bucket_name(bucket)
        .with_conditional_put(S3ConditionalPut::ETagMatch);
    let mut endpoint = std::env::var("AWS_ENDPOINT_URL")
        .or_else(|_| std::env::var("AWS_ENDPOINT"))
        .ok();
    let mut retry = object_store::RetryConfig::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == "endpoint" {
            endpoint = Some(v.to_string());
            continue;
        }
        // Retries of throttled, failed or unanswered requests: bounded in count and time,
        // with exponential backoff and jitter from a base (100 ms unless set).
        let number = || {
            v.parse::<u64>()
                .map_err(|_| config(format!("option '{k}' takes a whole number, not '{v}'")))
        };
        match k {
            "max_retries" => {
                retry.max_retries = number()? as usize;
                continue;
            }
            "retry_backoff_ms" => {
                retry.backoff.init_backoff = std::time::Duration::from_millis(number()?);
                continue;
            }
            "retry_timeout_s" => {
                retry.retry_timeout = std::time::Duration::from_secs(number()?);
                continue;
            }
            _ => {}
        }
        // Any object_store S3 option (`region`, `access_key_id`, `secret_access_key`, ...).
        let key: object_store::aws::AmazonS3ConfigKey = k
            .parse()
            .map_err(|_| config(format!("unknown option '{k}'")))?;
        builder = builder.with_config(key, v);
    }
    if let Some(endpoint) = &endpoint {
        // Custom endpoints (moto, MinIO, R2) address buckets by path.
        builder = builder
            .with_endpoint(endpoint)
            .with_virtual_hosted_style_request(false)
            .with_allow_http(endpoint.starts_with("http://"));
    }
    let s3 = builder
        .with_retry(retry)
        .build()
        .map_err(|e| config(e.to_string()))?;
    let prefix = prefix.trim_matches('/').to_string();
    let inner: Arc<dyn ObjectStore> = if prefix.is_empty() {
        Arc::new(s3)
    } else {
        Arc::new(PrefixStore::new(s3, prefix.as_str()))
    };
    Ok(Store {
        inner,
        backend: Backend::S3 {
            bucket: bucket.to_string(),
            prefix,
        },
        url: redact_url(url),
        observer: None,
        faults: None,
    })
}

/// True when an `s3://` URL's query carries an access key id of its own.
fn names_own_credentials(query: &str) -> bool {
    query.split('&').any(|pair| {
        let key = pair.split_once('=').map_or(pair, |(k, _)| k);
        matches!(key, "access_key_id" | "aws_access_key_id")
    })
}

/// Wall-clock milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn exercise_atomic_ops(store: Store) {
        let created = store.put_if_absent("a/b.json", "one").await.unwrap();
        let Created::Created(first) = created else {
            panic!("first create must win")
        };
        assert_eq!(
            store.put_if_absent("a/b.json", "two").await.unwrap(),
            Created::AlreadyExists
        );
        assert_eq!(&store.get("a/b.json").await.unwrap().bytes[..], b"one");

        let current = store.head("a/b.json").await.unwrap().unwrap();
        let Swapped::Swapped(_) = store
            .compare_and_swap("a/b.json", Some(&current), "three")
            .await
            .unwrap()
        else {
            panic!("swap from the current version must succeed")
        };
        // The version we read before is stale now.
        assert_eq!(
            store
                .compare_and_swap("a/b.json", Some(&first), "four")
                .await
                .unwrap(),
            Swapped::Conflict
        );
        assert_eq!(&store.get("a/b.json").await.unwrap().bytes[..], b"three");
        // None = only if absent.
        assert_eq!(
            store
                .compare_and_swap("a/b.json", None, "five")
                .await
                .unwrap(),
            Swapped::Conflict
        );

        store.put("a/c.json", "x").await.unwrap();
        store.put("b/d.json", "y").await.unwrap();
        let keys: Vec<_> = store
            .list("a/")
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.key)
            .collect();
        assert_eq!(keys, vec!["a/b.json", "a/c.json"]);
        assert!(store.list("zzz/").await.unwrap().is_empty());
        assert!(store.get_opt("nope").await.unwrap().is_none());
        assert!(matches!(
            store.get("nope").await,
            Err(StorageError::NotFound { .. })
        ));
        assert!(matches!(
            store.put("../x", "y").await,
            Err(StorageError::InvalidKey { .. })
        ));
    }

    #[tokio::test]
    async fn memory_store_atomic_ops() {
        exercise_atomic_ops(Store::memory()).await;
    }

    #[tokio::test]
    async fn local_store_atomic_ops() {
        let dir = tempfile::tempdir().unwrap();
        exercise_atomic_ops(Store::open(dir.path().to_str().unwrap()).unwrap()).await;
    }

    /// Many concurrent increments through compare-and-swap on the local store lose no update.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn local_cas_serialises_concurrent_writers() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::local(dir.path()).unwrap();
        store.put("counter", "0").await.unwrap();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..10 {
                    loop {
                        let obj = store.get("counter").await.unwrap();
                        let n: u32 = std::str::from_utf8(&obj.bytes).unwrap().parse().unwrap();
                        let next = (n + 1).to_string();
                        if let Swapped::Swapped(_) = store
                            .compare_and_swap("counter", Some(&obj.info), next)
                            .await
                            .unwrap()
                        {
                            break;
                        }
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(&store.get("counter").await.unwrap().bytes[..], b"80");
    }

    #[test]
    fn urls_with_their_own_key_pair_ignore_the_environments_credentials() {
        assert!(names_own_credentials(
            "endpoint=https://a.r2.cloudflarestorage.com&region=auto&access_key_id=K&secret_access_key=S"
        ));
        assert!(names_own_credentials("aws_access_key_id=K"));
        assert!(!names_own_credentials(
            "endpoint=http://127.0.0.1:5000&region=us-east-1"
        ));
        assert!(!names_own_credentials(""));
    }

    #[test]
    fn open_rejects_unknown_schemes() {
        assert!(matches!(
            Store::open("ftp://x"),
            Err(StorageError::Config { .. })
        ));
        assert!(matches!(
            Store::open("s3://"),
            Err(StorageError::Config { .. })
        ));
    }

    #[test]
    fn a_store_shows_and_reports_its_url_without_secrets() {
        let url = "s3://bkt/p?endpoint=http://127.0.0.1:9&region=us-east-1&access_key_id=AKIDPLANTED&secret_access_key=PLANTEDSECRET";
        let store = Store::open(url).unwrap();
        for shown in [store.url().to_string(), format!("{store:?}")] {
            assert!(
                !shown.contains("PLANTEDSECRET") && !shown.contains("AKIDPLANTED"),
                "{shown}"
            );
            assert!(shown.contains("s3://bkt/p"), "{shown}");
        }
        let err = Store::open(&format!("{url}&no_such_option=1")).unwrap_err();
        assert!(!err.to_string().contains("PLANTEDSECRET"), "{err}");
    }

    #[tokio::test]
    async fn keys_longer_than_s3_allows_are_refused_and_not_retried() {
        let store = Store::memory();
        let key = format!("raw/tx/{}.csv", "k".repeat(MAX_KEY_BYTES));
        let err = store.put(&key, "x").await.unwrap_err();
        assert!(matches!(err, StorageError::InvalidKey { .. }), "{err}");
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("1024"), "{err}");
    }

    #[test]
    fn refusals_are_permanent_and_server_trouble_is_retryable() {
        let denied = StorageError::Backend {
            op: "put",
            key: "k".into(),
            source: object_store::Error::PermissionDenied {
                path: "k".into(),
                source: "403".into(),
            },
        };
        assert!(!denied.is_retryable());
        let generic = |message: &str| StorageError::Backend {
            op: "put",
            key: "k".into(),
            source: object_store::Error::Generic {
                store: "S3",
                source: message.to_string().into(),
            },
        };
        assert!(
            !generic("Error performing PUT http://h/b/k in 1ms - Server returned non-2xx status code: 400 Bad Request: <Code>KeyTooLongError</Code>")
                .is_retryable()
        );
        assert!(
            generic("Error performing PUT http://h/b/k in 1ms, after 10 retries - Server returned non-2xx status code: 503 Service Unavailable: SlowDown")
                .is_retryable()
        );
        assert!(
            generic("Server returned non-2xx status code: 429 Too Many Requests").is_retryable()
        );
        assert!(generic("connection reset by peer").is_retryable());
    }

    #[tokio::test]
    async fn bounded_reads_hash_what_they_read_and_refuse_what_is_too_large() {
        use sha2::Digest;
        let dir = tempfile::tempdir().unwrap();
        for store in [Store::memory(), Store::local(dir.path()).unwrap()] {
            let body = vec![7u8; 300_000];
            store.put("raw/a.bin", body.clone()).await.unwrap();
            let Bounded::Read { object, sha256 } =
                store.get_bounded("raw/a.bin", 300_000).await.unwrap()
            else {
                panic!("at the limit is allowed")
            };
            assert_eq!(object.bytes.len(), body.len());
            assert_eq!(sha256, hex::encode(sha2::Sha256::digest(&body)));
            let Bounded::TooLarge { info } = store.get_bounded("raw/a.bin", 299_999).await.unwrap()
            else {
                panic!("one byte over is refused")
            };
            assert_eq!(info.size, 300_000);
            assert!(matches!(
                store.get_bounded("raw/none", 10).await,
                Err(StorageError::NotFound { .. })
            ));
        }
    }

    #[tokio::test]
    async fn observer_sees_writes() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = seen.clone();
        let store = Store::memory().with_observer(Arc::new(move |i: &ObjectInfo| {
            sink.lock().unwrap().push(i.key.clone())
        }));
        store.put("x/1", "a").await.unwrap();
        store.put_if_absent("x/1", "b").await.unwrap();
        store.put_if_absent("x/2", "b").await.unwrap();
        assert_eq!(
            *seen.lock().unwrap(),
            vec!["x/1".to_string(), "x/2".to_string()]
        );
    }

    #[tokio::test]
    async fn files_stream_in_and_out_in_parts_on_every_backend() {
        let dir = tempfile::tempdir().unwrap();
        // Larger than one part (5 MiB) so the multipart path really splits it.
        let body: Vec<u8> = (0..12_000_000u32).map(|i| (i % 251) as u8).collect();
        let src = dir.path().join("in.bin");
        std::fs::write(&src, &body).unwrap();
        for store in [
            Store::memory(),
            Store::local(&dir.path().join("store")).unwrap(),
        ] {
            let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
            let sink = seen.clone();
            let store = store.with_observer(Arc::new(move |i: &ObjectInfo| {
                sink.lock().unwrap().push((i.key.clone(), i.size))
            }));
            let info = store.upload("big/obj.bin", &src).await.unwrap();
            assert_eq!(info.size, body.len() as u64);
            assert_eq!(
                *seen.lock().unwrap(),
                vec![("big/obj.bin".to_string(), body.len() as u64)]
            );
            let back = dir.path().join("out.bin");
            let got = store.download("big/obj.bin", &back).await.unwrap();
            assert_eq!(got.size, body.len() as u64);
            assert!(std::fs::read(&back).unwrap() == body);
            assert!(matches!(
                store.download("big/none", &back).await,
                Err(StorageError::NotFound { .. })
            ));
        }
    }
}
