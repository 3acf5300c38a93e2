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
//! - `MODELS`, `MAX_BODY_BYTES`, `MAX_BATCH`.
//! - A small model may be compiled in instead (`cargo xtask spin --embed DIR`, see the
//!   `edge-embed` crate): embedded objects are served first, `REGISTRY_URL` becomes
//!   optional, and `MODELS` defaults to the embedded models.
//!
//! Hosts that keep one instance (jco, Spin's default) keep loaded models across requests;
//! `wasmtime serve` makes an instance per request, so there every request loads the model.

use std::cell::RefCell;
use std::sync::Arc;

use features::{OnlineError, OnlineRecord, OnlineStore};
use inference::registry_models::{Blobs, Layered, ModelCache, RegistryModels, embedded_models};
use inference::service::sampled;
use inference::{InferenceError, Settings};
use records::keys::prediction_log as log_key;
use spin_sdk::http::{Request, Response, send};
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
                Arc::new(ModelCache::new(
                    names,
                    refresh_s.saturating_mul(1_000_000),
                    now_us,
                ))
            })
            .clone()
    })
}

fn to_spin(r: inference::Response) -> Response {
    let mut b = Response::builder();
    b.status(r.status);
    for (k, v) in &r.headers {
        b.header(k.as_str(), v.as_str());
    }
    b.body(r.body).build()
}

/// The exported wasi:http handler. In its own module so that the allowance for the
/// macro's generated ABI glue (`export_name`, `unsafe`) covers that glue and nothing else.
#[allow(unsafe_code)]
mod component {
    use super::*;

    #[http_component]
    async fn handle(req: Request) -> Response {
        let defaults = Settings::default();
        let settings = Settings {
            server_name: "mlpipe-spin".into(),
            max_body_bytes: env_or("MAX_BODY_BYTES", defaults.max_body_bytes),
            max_batch: env_or("MAX_BATCH", defaults.max_batch),
            ..defaults
        };
        let registry_url = env("REGISTRY_URL");
        if registry_url.is_none() && embedded::OBJECTS.is_empty() {
            return to_spin(inference::Response::error(
                &InferenceError::Unavailable(
                    "REGISTRY_URL is not set and no model is embedded".into(),
                ),
                None,
            ));
        }
        let models = RegistryModels::with_cache(
            Layered {
                embedded: embedded::OBJECTS,
                rest: registry_url.map(HttpBlobs),
            },
            model_cache(),
        );
        let online = HttpOnline(env("FEATURES_URL"));
        let method = req.method().to_string();
        let headers: Vec<(String, String)> = req
            .headers()
            .map(|(k, v)| (k.to_string(), v.as_str().unwrap_or_default().to_string()))
            .collect();
        let request = inference::Request {
            method: &method,
            path: req.path(),
            headers,
            body: req.body(),
        };
        let mut response = inference::handle(&models, &online, &settings, &request, now_us()).await;
        if let (Some(log), Some(base)) = (response.log.take(), env("LOGS_URL"))
            && sampled(&log.id, env_or("LOG_SAMPLE", 1.0))
        {
            let url = join(&base, &log_key(&log.model, log.at_us, &log.id));
            let put: Result<Response, _> = send(Request::put(&url, log.to_json_lines())).await;
            match put {
                Ok(r) if (200..300).contains(r.status()) => {}
                Ok(r) => eprintln!("prediction log PUT {url} answered {}", r.status()),
                Err(e) => eprintln!("prediction log PUT {url}: {e}"),
            }
        }
        to_spin(response)
    }
}
