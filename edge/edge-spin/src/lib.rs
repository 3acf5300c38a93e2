//! The Spin component: the edge API of the `inference` crate (Open Inference Protocol v2
//! REST plus `/v1/models/{name}/predict`) as a wasi:http component (spin-sdk 5, built for
//! wasm32-wasip2).
//!
//! Everything comes over outbound HTTP (wasi:http's outgoing handler, which every wasi:http
//! host provides) and configuration from environment variables (wasi:cli), so the same
//! component runs under Spin, `wasmtime serve -Scli` and `jco serve`; Spin's own key-value
//! and variables interfaces would tie it to Spin.
//!
//! - `REGISTRY_URL`: base URL of a copy of the registry's objects (the publish stage's
//!   object target); models are served by their `champion` alias, re-read at most every
//!   `ALIAS_REFRESH_SECONDS`.
//! - `FEATURES_URL`: base URL of the online records, `GET {FEATURES_URL}/<view>/<entity>`
//!   (404: unknown entity).
//! - `LOGS_URL` (optional): prediction logs are `PUT` to `{LOGS_URL}/<log key>` for a
//!   `LOG_SAMPLE` share of requests, before the response (a component has no work after it).
//! - `OTEL_EXPORTER_OTLP_ENDPOINT` (optional): request metrics (by status, latency, records,
//!   model errors) posted as OTLP/HTTP every `OTLP_EXPORT_SECONDS`, with the headers in
//!   `OTEL_EXPORTER_OTLP_HEADERS`; see `inference::edge_metrics`.
//! - `MODELS`, `MAX_BODY_BYTES` (enforced as the body streams in), `MAX_BATCH`,
//!   `MAX_FUTURE_SKEW_SECONDS`.
//! - API keys: every endpoint but health needs `Authorization: Bearer <key>`, checked
//!   against `{KEYS_URL}/edge/keys.json` (default `KEYS_URL`: `REGISTRY_URL`; the publish
//!   stage puts it there), re-read every `KEY_REFRESH_SECONDS`. Keys are never embedded, so
//!   a revocation reaches a built component. Failed attempts are counted per client address
//!   where the host says it (Spin's `spin-client-addr` header). Each key may make
//!   `RATE_PER_S` requests a second after a burst of `BURST` (a token bucket per instance;
//!   a key's record may name its own rate), answered 429 with `Retry-After` beyond that.
//! - A small model may be compiled in instead (`cargo xtask spin --embed DIR`, see the
//!   `edge-embed` crate): embedded objects are served first, `REGISTRY_URL` becomes
//!   optional, and `MODELS` defaults to the embedded models.
//!
//! Hosts that keep one instance (jco, Spin's default) keep loaded models across requests;
//! `wasmtime serve` makes an instance per request, so there every request loads the model.

use std::cell::RefCell;
use std::sync::Arc;

use features::{OnlineError, OnlineRecord, OnlineStore};
use inference::auth::{DEFAULT_BURST, DEFAULT_RATE_PER_S, Failures, Guard, KeyCache, RateLimits};
use inference::edge_metrics::{EdgeMetrics, metrics_url, model_label, otlp_headers};
use inference::registry_models::{
    Blobs, DEFAULT_CACHE_BYTES, Layered, ModelCache, RegistryModels, embedded_models,
};
use inference::service::sampled;
use inference::{InferenceError, Settings};
use records::keys::prediction_log_object as log_key;
use spin_sdk::http::{IncomingRequest, Request, Response, send};
use spin_sdk::http_component;

fn env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    env(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// `GET url`: `Ok(None)` on 404 (and 403, which S3-style stores answer for a missing key
/// when listing is not allowed).
async fn fetch(url: &str) -> Result<Option<Vec<u8>>, String> {
    let response: Response = send(Request::get(url))
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    match *response.status() {
        200..=299 => Ok(Some(response.into_body())),
        403 | 404 => Ok(None),
        status => Err(format!("GET {url} answered {status}")),
    }
}

fn join(base: &str, key: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        key.trim_start_matches('/')
    )
}

/// Registry objects compiled in at build time (`MLPIPE_EMBED_DIR`; empty without it).
mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

/// The registry's objects under a base URL.
pub struct HttpBlobs(pub String);

impl Blobs for HttpBlobs {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        fetch(&join(&self.0, key)).await
    }
}

/// Online records under a base URL (`None`: every entity is unknown).
pub struct HttpOnline(pub Option<String>);

impl OnlineStore for HttpOnline {
    async fn read(&self, view: &str, entity: &str) -> Result<Option<OnlineRecord>, OnlineError> {
        let Some(base) = &self.0 else {
            return Ok(None);
        };
        match fetch(&join(base, &features::online::edge_key(view, entity))).await {
            Ok(None) => Ok(None),
            Ok(Some(bytes)) => OnlineRecord::decode(&bytes).map(Some),
            Err(e) => Err(OnlineError::Backend(e)),
        }
    }

    async fn write(&self, _records: &[OnlineRecord]) -> Result<usize, OnlineError> {
        Err(OnlineError::ReadOnly)
    }
}

/// A random number for a prediction log's object name (on wasip2 std's hasher keys come
/// from wasi:random).
fn nonce() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::hash::RandomState::new().build_hasher();
    h.write_i64(now_us());
    h.finish()
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

thread_local! {
    static CACHE: RefCell<Option<Arc<ModelCache>>> = const { RefCell::new(None) };
}

fn model_cache() -> Arc<ModelCache> {
    CACHE.with(|c| {
        c.borrow_mut()
            .get_or_insert_with(|| {
                let mut names: Vec<String> = env("MODELS")
                    .unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(str::to_string)
                    .collect();
                if names.is_empty() {
                    names = embedded_models(embedded::OBJECTS);
                }
                let refresh_s: i64 = env_or("ALIAS_REFRESH_SECONDS", 10);
                Arc::new(
                    ModelCache::new(names, refresh_s.saturating_mul(1_000_000), now_us)
                        .with_max_bytes(env_or("MODEL_CACHE_BYTES", DEFAULT_CACHE_BYTES)),
                )
            })
            .clone()
    })
}

/// This instance's keys, failed attempts and per-key token buckets. A host that makes an
/// instance per request (`wasmtime serve`) starts each with full buckets: there the
/// platform or a gateway in front has to limit rates.
type Access = (Arc<KeyCache>, Arc<Failures>, Arc<RateLimits>);

thread_local! {
    static KEYS: RefCell<Option<Access>> = const { RefCell::new(None) };
}

fn access() -> Access {
    KEYS.with(|k| {
        k.borrow_mut()
            .get_or_insert_with(|| {
                let refresh_s: i64 = env_or("KEY_REFRESH_SECONDS", 10);
                (
                    Arc::new(KeyCache::new(refresh_s.saturating_mul(1_000_000))),
                    Arc::default(),
                    Arc::new(RateLimits::new(
                        env_or("RATE_PER_S", DEFAULT_RATE_PER_S),
                        env_or("BURST", DEFAULT_BURST),
                    )),
                )
            })
            .clone()
    })
}

/// The request body, read as it streams in and abandoned (413) as soon as it passes
/// `limit` bytes, so an oversized upload is never held whole.
async fn read_body(req: IncomingRequest, limit: usize) -> Result<Vec<u8>, InferenceError> {
    use futures::StreamExt as _;
    let declared: Option<usize> = req
        .headers()
        .get("content-length")
        .first()
        .and_then(|v| std::str::from_utf8(v).ok()?.trim().parse().ok());
    let too_large =
        || InferenceError::TooLarge(format!("the body is over the limit of {limit} bytes"));
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut stream = req.into_body_stream();
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| InferenceError::BadRequest(format!("reading the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn to_spin(r: inference::Response) -> Response {
    let mut b = Response::builder();
    b.status(r.status);
    for (k, v) in &r.headers {
        b.header(k.as_str(), v.as_str());
    }
    b.body(r.body).build()
}

/// The answer to one request (the prediction log still in it). `method` and `path` are the
/// request's, read before its body is consumed.
async fn answer(req: IncomingRequest, method: &str, path: &str) -> inference::Response {
    let defaults = Settings::default();
    let settings = Settings {
        server_name: "mlpipe-spin".into(),
        max_body_bytes: env_or("MAX_BODY_BYTES", defaults.max_body_bytes),
        max_batch: env_or("MAX_BATCH", defaults.max_batch),
        max_future_skew_us: env_or("MAX_FUTURE_SKEW_SECONDS", 300i64).saturating_mul(1_000_000),
        ..defaults
    };
    let registry_url = env("REGISTRY_URL");
    let now = now_us();
    let (keys, failures, limits) = access();
    let guard = Guard::from_cache(
        &keys,
        &Layered {
            embedded: &[],
            rest: env("KEYS_URL")
                .or_else(|| registry_url.clone())
                .map(HttpBlobs),
        },
        failures,
        now,
    )
    .await
    .with_limits(limits);
    if registry_url.is_none() && embedded::OBJECTS.is_empty() {
        return inference::Response::error(
            &InferenceError::Unavailable("REGISTRY_URL is not set and no model is embedded".into()),
            None,
        );
    }
    let models = RegistryModels::with_cache(
        Layered {
            embedded: embedded::OBJECTS,
            rest: registry_url.map(HttpBlobs),
        },
        model_cache(),
    );
    let online = HttpOnline(env("FEATURES_URL"));
    let headers: Vec<(String, String)> = req
        .headers()
        .entries()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let client = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("spin-client-addr"))
        .map(|(_, a)| {
            a.rsplit_once(':')
                .map_or(a.as_str(), |(ip, _)| ip)
                .to_string()
        });
    let body = match read_body(req, settings.max_body_bytes).await {
        Ok(body) => body,
        Err(e) => return inference::Response::error(&e, None),
    };
    let request = inference::Request {
        method,
        path,
        headers,
        body: &body,
        client: client.as_deref(),
    };
    inference::handle(&models, &online, &settings, &guard, &request, now).await
}

thread_local! {
    /// This instance's request metrics and its instance id.
    static METRICS: RefCell<Option<(EdgeMetrics, u64)>> = const { RefCell::new(None) };
}

/// Counts the answered request and, once per `OTLP_EXPORT_SECONDS`, posts the metrics as
/// OTLP/HTTP to `OTEL_EXPORTER_OTLP_ENDPOINT` (before answering: a component has no work
/// after its response).
async fn count(model: &str, status: u16, rows: usize, started: i64) {
    let now = now_us();
    let export = METRICS.with(|m| {
        let mut m = m.borrow_mut();
        let m = m.get_or_insert_with(|| (EdgeMetrics::new(started), nonce()));
        m.0.record(model, status, rows, (now - started) as f64 / 1e6);
        let instance = format!("{:016x}", m.1);
        m.0.due(
            now,
            env_or("OTLP_EXPORT_SECONDS", 10i64).saturating_mul(1_000_000),
            &[
                ("service.name", "mlpipe-spin"),
                ("service.instance.id", &instance),
            ],
        )
    });
    let (Some(body), Some(endpoint)) = (export, env("OTEL_EXPORTER_OTLP_ENDPOINT")) else {
        return;
    };
    let url = metrics_url(&endpoint);
    let mut post = Request::post(&url, body);
    post.header("content-type", "application/x-protobuf");
    for (k, v) in otlp_headers(&env("OTEL_EXPORTER_OTLP_HEADERS").unwrap_or_default()) {
        post.header(k, v);
    }
    let sent: Result<Response, _> = send(post.build()).await;
    match sent {
        Ok(r) if (200..300).contains(r.status()) => {}
        Ok(r) => eprintln!("OTLP export to {url} answered {}", r.status()),
        Err(e) => eprintln!("OTLP export to {url}: {e}"),
    }
}

/// The exported wasi:http handler. In its own module so that the allowance for the
/// macro's generated ABI glue (`export_name`, `unsafe`) covers that glue and nothing else.
#[allow(unsafe_code)]
mod component {
    use super::*;

    #[http_component]
    async fn handle(req: IncomingRequest) -> Response {
        let started = now_us();
        let method = req.method().to_string();
        let path_and_query = req.path_with_query().unwrap_or_default();
        let path = path_and_query
            .split_once('?')
            .map_or(path_and_query.as_str(), |(p, _)| p)
            .to_string();
        let model = model_label(&method, &path);
        let mut response = answer(req, &method, &path).await;
        let rows = response.log.as_ref().map_or(0, |l| l.rows.len());
        if let (Some(log), Some(base)) = (response.log.take(), env("LOGS_URL"))
            && sampled(&log.id, env_or("LOG_SAMPLE", 1.0))
        {
            let url = join(&base, &log_key(&log.model, log.at_us, nonce()));
            let put: Result<Response, _> = send(Request::put(&url, log.to_json_lines())).await;
            match put {
                Ok(r) if (200..300).contains(r.status()) => {}
                Ok(r) => eprintln!("prediction log PUT {url} answered {}", r.status()),
                Err(e) => eprintln!("prediction log PUT {url}: {e}"),
            }
        }
        count(&model, response.status, rows, started).await;
        to_spin(response)
    }
}
