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
//!   response (`waitUntil`), under a name the Worker draws (never the client's request id).
//!
//! - API keys: every endpoint but health needs `Authorization: Bearer <key>`. The key
//!   hashes are read from `edge/keys.json` in the `REGISTRY` bucket (published there by
//!   the publish stage) and kept per isolate for `KEY_REFRESH_SECONDS`; failed attempts
//!   are counted per `CF-Connecting-IP`. A key's requests are counted by the rate-limiting
//!   binding of its tier (`[[ratelimits]]` in `wrangler.toml`).
//! - Metrics: requests by status, latency, records and model errors, counted per isolate
//!   and posted as OTLP/HTTP to `OTEL_EXPORTER_OTLP_ENDPOINT` every `OTLP_EXPORT_SECONDS`
//!   after the response (`waitUntil`); see `inference::edge_metrics`.
//!
//! The adapter is thin on purpose: routing, validation, features and the model run are the
//! `inference` crate's, shared with the native server and the Spin component.

use std::cell::RefCell;
use std::sync::Arc;

use features::{OnlineError, OnlineRecord, OnlineStore};
use inference::auth::{Failures, Guard, KeyCache};
use inference::edge_metrics::{EdgeMetrics, metrics_url, model_label, otlp_headers};
use inference::registry_models::{
    Blobs, DEFAULT_CACHE_BYTES, Layered, ModelCache, RegistryModels, embedded_models,
};
use inference::service::sampled;
use inference::{InferenceError, Settings};
use records::keys::prediction_log_object as log_key;
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

/// A random number for a prediction log's object name (std has no random source on
/// wasm32-unknown-unknown; the isolate's `Math.random` is enough for uniqueness, and the
/// client has no say in it).
fn nonce() -> u64 {
    let draw = || (worker::js_sys::Math::random() * 4_294_967_296.0) as u64;
    (draw() << 32) | draw()
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
                Arc::new(
                    ModelCache::new(names, refresh_s.saturating_mul(1_000_000), now_us)
                        .with_max_bytes(var(env, "MODEL_CACHE_BYTES", DEFAULT_CACHE_BYTES)),
                )
            })
            .clone()
    })
}

thread_local! {
    /// This isolate's API keys and failed attempts per client.
    static KEYS: RefCell<Option<(Arc<KeyCache>, Arc<Failures>)>> = const { RefCell::new(None) };
}

fn key_cache(env: &Env) -> (Arc<KeyCache>, Arc<Failures>) {
    KEYS.with(|k| {
        k.borrow_mut()
            .get_or_insert_with(|| {
                let refresh_s: i64 = var(env, "KEY_REFRESH_SECONDS", 10);
                (
                    Arc::new(KeyCache::new(refresh_s.saturating_mul(1_000_000))),
                    Arc::default(),
                )
            })
            .clone()
    })
}

/// `Some(seconds to wait)` when `key` is over the limit of its tier's rate-limiting
/// binding. A missing binding limits nothing (and says so in the log).
async fn over_rate(env: &Env, key: &records::access::ApiKey) -> Option<u64> {
    let (binding, period) = inference::auth::worker_rate_tier(key);
    match env.rate_limiter(binding) {
        Ok(limiter) => match limiter.limit(key.id.clone()).await {
            Ok(outcome) if !outcome.success => Some(period),
            Ok(_) => None,
            Err(e) => {
                console_error!("rate limiter {binding}: {e}");
                None
            }
        },
        Err(e) => {
            console_error!("no rate-limiting binding {binding}: {e}");
            None
        }
    }
}

fn settings(env: &Env) -> Settings {
    let defaults = Settings::default();
    Settings {
        server_name: "mlpipe-worker".into(),
        max_body_bytes: var(env, "MAX_BODY_BYTES", defaults.max_body_bytes),
        max_batch: var(env, "MAX_BATCH", defaults.max_batch),
        max_future_skew_us: var(env, "MAX_FUTURE_SKEW_SECONDS", 300i64).saturating_mul(1_000_000),
        ..defaults
    }
}

fn to_worker(r: inference::Response) -> worker::Result<Response> {
    let headers = Headers::new();
    for (k, v) in &r.headers {
        // The core only makes valid header values; should one ever not be, the response
        // goes out without it rather than as the platform's 500.
        if let Err(e) = headers.set(k, v) {
            console_error!("response header {k} dropped: {e}");
        }
    }
    Ok(Response::from_bytes(r.body)?
        .with_status(r.status)
        .with_headers(headers))
}

/// The request body, read as it streams in and abandoned (413) as soon as it passes
/// `limit` bytes, so a chunked upload with no Content-Length is never held whole.
async fn read_body(req: &mut Request, limit: usize) -> Result<Vec<u8>, InferenceError> {
    use futures::StreamExt as _;
    // No body at all (GET, HEAD): the platform gives no stream.
    let Ok(mut stream) = req.stream() else {
        return Ok(Vec::new());
    };
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| InferenceError::BadRequest(format!("reading the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(InferenceError::TooLarge(format!(
                "the body is over the limit of {limit} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn failure(e: &InferenceError) -> inference::Response {
    inference::Response::error(e, None)
}

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    let started = now_us();
    let model = model_label(&req.inner().method(), &req.path());
    let mut response = answer(&mut req, &env).await;
    let rows = response.log.as_ref().map_or(0, |l| l.rows.len());
    if let Some(log) = response.log.take()
        && sampled(&log.id, var(&env, "LOG_SAMPLE", 1.0))
    {
        match env.bucket("LOGS") {
            Ok(logs) => {
                let key = log_key(&log.model, log.at_us, nonce());
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
    let now = now_us();
    let latency_s = (now - started) as f64 / 1e6;
    let export = METRICS.with(|m| {
        let mut m = m.borrow_mut();
        let m = m.get_or_insert_with(|| (EdgeMetrics::new(started), nonce()));
        m.0.record(&model, response.status, rows, latency_s);
        let every: i64 = var(&env, "OTLP_EXPORT_SECONDS", 10);
        let instance = format!("{:016x}", m.1);
        m.0.due(
            now,
            every.saturating_mul(1_000_000),
            &[
                ("service.name", "mlpipe-worker"),
                ("service.instance.id", &instance),
            ],
        )
    });
    if let (Some(body), Some(endpoint)) =
        (export, otlp_setting(&env, "OTEL_EXPORTER_OTLP_ENDPOINT"))
    {
        let headers = otlp_setting(&env, "OTEL_EXPORTER_OTLP_HEADERS").unwrap_or_default();
        ctx.wait_until(async move {
            if let Err(e) = post_metrics(&endpoint, &headers, &body).await {
                console_error!("OTLP export to {endpoint}: {e}");
            }
        });
    }
    to_worker(response)
}

thread_local! {
    /// This isolate's request metrics and its instance id.
    static METRICS: RefCell<Option<(EdgeMetrics, u64)>> = const { RefCell::new(None) };
}

/// A setting that may be a secret (the OTLP headers carry credentials) or a var; empty is
/// unset.
fn otlp_setting(env: &Env, name: &str) -> Option<String> {
    // `var` reads secrets too.
    env.var(name)
        .map(|v| v.to_string())
        .ok()
        .filter(|v| !v.trim().is_empty())
}

/// POSTs one OTLP export (`application/x-protobuf`) to `{endpoint}/v1/metrics`.
async fn post_metrics(endpoint: &str, headers: &str, body: &[u8]) -> worker::Result<()> {
    let h = Headers::new();
    h.set("content-type", "application/x-protobuf")?;
    for (k, v) in otlp_headers(headers) {
        h.set(&k, &v)?;
    }
    let mut init = worker::RequestInit::new();
    init.with_method(worker::Method::Post)
        .with_headers(h)
        .with_body(Some(worker::js_sys::Uint8Array::from(body).into()));
    let url = metrics_url(endpoint);
    let response = worker::Fetch::Request(Request::new_with_init(&url, &init)?)
        .send()
        .await?;
    if (200..300).contains(&response.status_code()) {
        Ok(())
    } else {
        Err(worker::Error::RustError(format!(
            "answered {}",
            response.status_code()
        )))
    }
}

/// The answer to one request, the prediction log still in it.
async fn answer(req: &mut Request, env: &Env) -> inference::Response {
    let settings = settings(env);
    // Refuse a declared oversized body before reading it.
    let declared: Option<usize> = req
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.trim().parse().ok());
    if declared.is_some_and(|n| n > settings.max_body_bytes) {
        return failure(&InferenceError::TooLarge(format!(
            "the body is over the limit of {} bytes",
            settings.max_body_bytes
        )));
    }
    let body = match read_body(req, settings.max_body_bytes).await {
        Ok(body) => body,
        Err(e) => return failure(&e),
    };
    let method = req.inner().method();
    let path = req.path();
    let headers: Vec<(String, String)> = req.headers().entries().collect();
    let client = req.headers().get("cf-connecting-ip").ok().flatten();
    let now = now_us();
    let (keys, failures) = key_cache(env);
    // Keys live beside the models, never embedded: a revocation must reach a built Worker.
    let keys = keys
        .current(
            &Layered {
                embedded: &[],
                rest: env.bucket("REGISTRY").ok().map(R2Blobs),
            },
            now,
        )
        .await;
    // A valid key's requests are counted by Cloudflare's rate-limiting binding of its tier
    // (the core then checks the key again, and counts failures).
    if let Ok(known) = &keys
        && inference::route(&method, &path).is_ok_and(|r| r.protected().is_some())
    {
        let authorization = req.headers().get("authorization").ok().flatten();
        if let Ok(key) = known.check(authorization.as_deref(), None, now)
            && let Some(wait) = over_rate(env, key).await
        {
            return inference::Response::error(
                &InferenceError::TooManyRequests {
                    message: format!("the API key {} is over its rate limit", key.prefix()),
                    retry_after_s: wait,
                },
                None,
            );
        }
    }
    let guard = Guard::from_keys(keys, failures);
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
        model_cache(env),
    );
    let online = KvOnline(env.kv("FEATURES").ok());
    let request = inference::Request {
        method: &method,
        path: &path,
        headers,
        body: &body,
        client: client.as_deref(),
    };
    inference::handle(&models, &online, &settings, &guard, &request, now).await
}
