//! Object store access for every zone of the pipeline.
//!
//! One [`Store`] wraps an `object_store` backend chosen by URL:
//! - a local folder (`file:///abs/path`, or a plain path; the embedded default is `./.mlpipe`),
//! - memory (`memory://`, for tests),
//! - S3 or any S3-compatible endpoint such as R2 or moto (`s3://bucket[/prefix]`, configured by
//!   the usual `AWS_*` environment variables, or options in the URL's query:
//!   `?endpoint=http://127.0.0.1:5000&region=us-east-1`, and any other `object_store` S3 key
//!   such as `access_key_id`; environment variables are the better place for secrets).
//!
//! On every backend it offers the two atomic operations the pipeline's correctness rests on:
//! create-if-absent (commit markers, snapshots, version files) and compare-and-swap (aliases
//! and pointers). S3 and memory use conditional puts (`If-None-Match` / `If-Match`); the local
//! file system, where `object_store` has no update-if-match, uses an exclusive file lock per
//! key around read-compare-write.
//!
//! Invariant: this crate knows no stage, runtime or wire format beyond object keys.

use records::keys as zones;

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

/// Storage failures. Everything except `NotFound`, `InvalidKey` and `Config` may succeed on a
/// retry, which is how Lambda handlers decide whether to fail the invocation.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("object '{key}' not found")]
    NotFound { key: String },
    #[error("invalid object key '{key}': {message}")]
    InvalidKey { key: String, message: String },
    #[error("store URL '{url}': {message}")]
    Config { url: String, message: String },
    #[error("{op} '{key}': {source}")]
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
}

impl StorageError {
    /// True when the same call may succeed later (network, throttling, a busy lock).
    pub fn is_retryable(&self) -> bool {
        matches!(self, StorageError::Backend { .. } | StorageError::Io { .. })
    }
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
    url: String,
    observer: Option<WriteObserver>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("url", &self.url).finish()
    }
}

impl Store {
    /// Opens a store from a URL or a local path (see the crate docs for the forms).
    pub fn open(url: &str) -> Result<Store> {
        let config = |message: String| StorageError::Config {
            url: url.to_string(),
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
        })
    }

    /// An empty in-memory store.
    pub fn memory() -> Store {
        Store {
            inner: Arc::new(InMemory::new()),
            backend: Backend::Memory,
            url: "memory://".into(),
            observer: None,
        }
    }

    /// The same store, reporting every write to `observer`.
    pub fn with_observer(&self, observer: WriteObserver) -> Store {
        Store {
            observer: Some(observer),
            ..self.clone()
        }
    }

    pub fn url(&self) -> &str {
        &self.url
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
        let result = self
            .inner
            .get(&path)
            .await
            .map_err(|e| map_err("get", key, e))?;
        let info = info_from_meta(key, &result.meta);
        let bytes = result.bytes().await.map_err(|e| map_err("get", key, e))?;
        telemetry::record_bytes(telemetry::Direction::Read, bytes.len() as u64);
        Ok(Object { info, bytes })
    }

    /// Streams an object into a file, so an input larger than memory (a batch job's) never
    /// sits in it whole. Returns the object's info and the bytes written.
    pub async fn download(&self, key: &str, to: &FsPath) -> Result<ObjectInfo> {
        use tokio::io::AsyncWriteExt as _;
        let path = parse_key(key)?;
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
        Ok(self.written(key, size, result))
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
        match self.inner.head(&path).await {
            Ok(meta) => Ok(Some(info_from_meta(key, &meta))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(map_err("head", key, e)),
        }
    }

    /// Deletes an object; a missing one is no error (a repeated delete does nothing).
    pub async fn delete(&self, key: &str) -> Result<()> {
        let path = parse_key(key)?;
        match self.inner.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(map_err("delete", key, e)),
        }
    }

    /// Writes (or overwrites) an object atomically.
    pub async fn put(&self, key: &str, bytes: impl Into<Bytes>) -> Result<ObjectInfo> {
        let bytes = bytes.into();
        let path = parse_key(key)?;
        let size = bytes.len() as u64;
        let result = self
            .inner
            .put(&path, PutPayload::from(bytes))
            .await
            .map_err(|e| map_err("put", key, e))?;
        Ok(self.written(key, size, result))
    }

    /// Writes the object only if no object exists at `key`.
    pub async fn put_if_absent(&self, key: &str, bytes: impl Into<Bytes>) -> Result<Created> {
        let bytes = bytes.into();
        let path = parse_key(key)?;
        let size = bytes.len() as u64;
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .inner
            .put_opts(&path, PutPayload::from(bytes), opts)
            .await
        {
            Ok(result) => Ok(Created::Created(self.written(key, size, result))),
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => Ok(Created::AlreadyExists),
            Err(e) => Err(map_err("put-if-absent", key, e)),
        }
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
            return self.local_swap(root, key, expected, bytes.into()).await;
        }
        let bytes = bytes.into();
        let path = parse_key(key)?;
        let size = bytes.len() as u64;
        let opts = PutOptions {
            mode: PutMode::Update(UpdateVersion {
                e_tag: expected.etag.clone(),
                version: expected.version.clone(),
            }),
            ..Default::default()
        };
        match self
            .inner
            .put_opts(&path, PutPayload::from(bytes), opts)
            .await
        {
            Ok(result) => Ok(Swapped::Swapped(self.written(key, size, result))),
            Err(object_store::Error::Precondition { .. })
            | Err(object_store::Error::NotFound { .. }) => Ok(Swapped::Conflict),
            Err(e) => Err(map_err("compare-and-swap", key, e)),
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
        url: url.to_string(),
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
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == "endpoint" {
            endpoint = Some(v.to_string());
            continue;
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
    let s3 = builder.build().map_err(|e| config(e.to_string()))?;
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
        url: url.to_string(),
        observer: None,
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
