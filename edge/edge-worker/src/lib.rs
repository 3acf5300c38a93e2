//! The Cloudflare Worker: the edge API of the `inference` crate (Open Inference Protocol v2
//! REST plus `/v1/models/{name}/predict`) on workers-rs.
//!
//! - Models come from the `REGISTRY` R2 bucket, laid out as the registry lays them out
//!   (`models/<name>/aliases/champion.json`, `models/<name>/<version>/bundle.json`, the ONNX
//!   file and the feature spec the bundle names), copied there by the publish stage. Each
//!   isolate keeps loaded models (the tract plan is built once) and re-reads the champion
//!   alias at most every `ALIAS_REFRESH_SECONDS`, so a promotion is served without a deploy.
//! - Or a small model is compiled in (`cargo xtask worker --embed DIR`, see the `edge-embed`
//!   crate): embedded objects are served first, so the build serves its own champion with
//!   no `REGISTRY` binding; `MODELS` then defaults to the embedded models.
//! - Online features come from the `FEATURES` KV namespace (key `<view>/<entity>`, value the
//!   encoded record), written by the same publish stage.
//! - A sampled share (`LOG_SAMPLE`) of prediction logs goes to the `LOGS` R2 bucket after the
//!   response (`waitUntil`), under the key the drift stage reads.
//!
//! The adapter is thin on purpose: routing, validation, features and the model run are the
//! `inference` crate's, shared with the native server and the Spin component.

use std::cell::RefCell;
use std::sync::Arc;

use features::{OnlineError, OnlineRecord, OnlineStore};
use inference::registry_models::{Blobs, Layered, ModelCache, RegistryModels, embedded_models};
use inference::service::sampled;
use inference::{InferenceError, Settings};
use records::keys::prediction_log as log_key;
use worker::kv::KvStore;
use worker::{Bucket, Context, Date, Env, Headers, Request, Response, console_error, event};

/// Registry objects compiled in at build time (`MLPIPE_EMBED_DIR`; empty without it).
mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

/// The registry's objects in an R2 bucket.
pub struct R2Blobs(pub Bucket);

impl Blobs for R2Blobs {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        let Some(object) = self.0.get(key).execute().await.map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let body = object
            .body()
            .ok_or_else(|| format!("{key}: the object has no body"))?;
        body.bytes().await.map(Some).map_err(|e| e.to_string())
    }
}

/// Online feature records in a KV namespace (`None`: no binding, every entity unknown).
pub struct KvOnline(pub Option<KvStore>);

impl OnlineStore for KvOnline {
    async fn read(&self, view: &str, entity: &str) -> Result<Option<OnlineRecord>, OnlineError> {
        let Some(kv) = &self.0 else {
            return Ok(None);
        };
        let key = features::online::edge_key(view, entity);
        match kv.get(&key).bytes().await {
            Ok(None) => Ok(None),
            Ok(Some(bytes)) => OnlineRecord::decode(&bytes).map(Some),
            Err(e) => Err(OnlineError::Backend(format!("KV {key}: {e}"))),
        }
    }

    async fn write(&self, _records: &[OnlineRecord]) -> Result<usize, OnlineError> {
        // The publish stage writes KV through Cloudflare's API; the Worker only reads.
        Err(OnlineError::ReadOnly)
    }
}

/// Microseconds since the epoch, from the Workers clock.
fn now_us() -> i64 {
    i64::try_from(Date::now().as_millis())
        .unwrap_or(i64::MAX)
        .saturating_mul(1000)
}

/// A `[vars]` entry, or `default` when absent or unparsable.
fn var<T: std::str::FromStr>(env: &Env, name: &str, default: T) -> T {
    env.var(name)
        .ok()
        .and_then(|v| v.to_string().trim().parse().ok())
        .unwrap_or(default)
}

thread_local! {
    /// Loaded models of this isolate (an isolate runs one request at a time per thread,
    /// interleaving only at await points, which the cache tolerates).
    static CACHE: RefCell<Option<Arc<ModelCache>>> = const { RefCell::new(None) };
}

fn model_cache(env: &Env) -> Arc<ModelCache> {
    CACHE.with(|c| {
        c.borrow_mut()
            .get_or_insert_with(|| {
                let names: String = var(env, "MODELS", String::new());
                let mut names: Vec<String> = names
                    .split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(str::to_string)
                    .collect();
                if names.is_empty() {
                    names = embedded_models(embedded::OBJECTS);
                }
                let refresh_s: i64 = var(env, "ALIAS_REFRESH_SECONDS", 10);
                Arc::new(ModelCache::new(
                    names,
                    refresh_s.saturating_mul(1_000_000),
                    now_us,
                ))
            })
            .clone()
    })
}

fn settings(env: &Env) -> Settings {
    let defaults = Settings::default();
    Settings {
        server_name: "mlpipe-worker".into(),
        max_body_bytes: var(env, "MAX_BODY_BYTES", defaults.max_body_bytes),
        max_batch: var(env, "MAX_BATCH", defaults.max_batch),
        ..defaults
    }
}

fn to_worker(r: inference::Response) -> worker::Result<Response> {
    let headers = Headers::new();
    for (k, v) in &r.headers {
        headers.set(k, v)?;
    }
    Ok(Response::from_bytes(r.body)?
        .with_status(r.status)
        .with_headers(headers))
}

fn failure(e: &InferenceError) -> worker::Result<Response> {
    to_worker(inference::Response::error(e, None))
}

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    let settings = settings(&env);
    // Refuse a declared oversized body before reading it.
    let declared: Option<usize> = req
        .headers()
        .get("content-length")?
        .and_then(|v| v.trim().parse().ok());
    if declared.is_some_and(|n| n > settings.max_body_bytes) {
        return failure(&InferenceError::TooLarge(format!(
            "the body is over the limit of {} bytes",
            settings.max_body_bytes
        )));
    }
    let body = req.bytes().await.unwrap_or_default();
    let method = req.inner().method();
    let path = req.path();
    let headers: Vec<(String, String)> = req.headers().entries().collect();
    let bucket = env.bucket("REGISTRY").ok();
    if bucket.is_none() && embedded::OBJECTS.is_empty() {
        return failure(&InferenceError::Unavailable(
            "the Worker has no REGISTRY binding and no embedded model".into(),
        ));
    }
    let models = RegistryModels::with_cache(
        Layered {
            embedded: embedded::OBJECTS,
            rest: bucket.map(R2Blobs),
        },
        model_cache(&env),
    );
    let online = KvOnline(env.kv("FEATURES").ok());
    let request = inference::Request {
        method: &method,
        path: &path,
        headers,
        body: &body,
    };
    let mut response = inference::handle(&models, &online, &settings, &request, now_us()).await;
    if let Some(log) = response.log.take()
        && sampled(&log.id, var(&env, "LOG_SAMPLE", 1.0))
    {
        match env.bucket("LOGS") {
            Ok(logs) => {
                let key = log_key(&log.model, log.at_us, &log.id);
                let lines = log.to_json_lines();
                ctx.wait_until(async move {
                    if let Err(e) = logs.put(key.clone(), lines).execute().await {
                        console_error!("prediction log {key}: {e}");
                    }
                });
            }
            Err(e) => console_error!("no LOGS bucket, prediction log dropped: {e}"),
        }
    }
    to_worker(response)
}
