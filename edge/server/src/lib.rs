//! The native inference server: the same API as the Worker and the Spin component (the
//! `inference` crate's router), served by axum from the pipeline's own store. Models are
//! loaded from the registry by their `champion` alias (re-read every `refresh`, so a
//! promotion or rollback is served without a restart) or pinned by version; online
//! features come from the online store the feature stage materializes; prediction logs go
//! to `inference-logs/<model>/...` in the store for the drift checker.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use features::{OnlineError, OnlineRecord, OnlineStore};
use inference::{InferenceError, Model, Models, Settings};
use storage::Store;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server: {0}")]
    Serve(std::io::Error),
}

/// Models from the registry in a store, cached per version; the champion alias is re-read
/// at most every `refresh`.
pub struct StoreModels {
    store: Store,
    names: Vec<String>,
    refresh: Duration,
    champions: Mutex<HashMap<String, (Instant, u64)>>,
    loaded: Mutex<HashMap<(String, u64), Arc<Model>>>,
}

fn unavailable(what: impl std::fmt::Display) -> InferenceError {
    InferenceError::Unavailable(what.to_string())
}

impl StoreModels {
    pub fn new(store: Store, names: Vec<String>, refresh: Duration) -> StoreModels {
        StoreModels {
            store,
            names,
            refresh,
            champions: Mutex::new(HashMap::new()),
            loaded: Mutex::new(HashMap::new()),
        }
    }

    async fn champion(&self, name: &str) -> Result<u64, InferenceError> {
        if let Ok(map) = self.champions.lock()
            && let Some((at, v)) = map.get(name)
            && at.elapsed() < self.refresh
        {
            return Ok(*v);
        }
        let alias = registry::alias(&self.store, name, "champion")
            .await
            .map_err(|e| unavailable(format!("reading the champion of '{name}': {e}")))?
            .ok_or_else(|| unavailable(format!("model '{name}' has no champion yet")))?;
        if let Ok(mut map) = self.champions.lock() {
            map.insert(name.to_string(), (Instant::now(), alias.version));
        }
        Ok(alias.version)
    }

    async fn load(&self, name: &str, version: u64) -> Result<Arc<Model>, InferenceError> {
        let key = (name.to_string(), version);
        if let Some(m) = self.loaded.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(m);
        }
        let bundle_key = registry::version_key(name, version, registry::BUNDLE);
        let bundle_bytes = self
            .store
            .get_opt(&bundle_key)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| {
                InferenceError::NotFound(format!("model '{name}' has no version {version}"))
            })?
            .bytes;
        let bundle: registry::Bundle = serde_json_bundle(&bundle_bytes)?;
        let onnx = self
            .store
            .get(&bundle.model_key)
            .await
            .map_err(unavailable)?
            .bytes;
        let spec = self
            .store
            .get_opt(&bundle.feature_spec.key)
            .await
            .map_err(unavailable)?
            .map(|o| o.bytes);
        let model = Arc::new(
            Model::load(&bundle_bytes, &onnx, spec.as_deref()).map_err(InferenceError::from)?,
        );
        if let Ok(mut m) = self.loaded.lock() {
            m.insert(key, model.clone());
        }
        Ok(model)
    }
}

fn serde_json_bundle(bytes: &[u8]) -> Result<registry::Bundle, InferenceError> {
    inference::model::parse_bundle(bytes).map_err(InferenceError::from)
}

impl Models for StoreModels {
    async fn model(&self, name: &str, version: Option<u64>) -> Result<Arc<Model>, InferenceError> {
        if !self.names.iter().any(|n| n == name) {
            return Err(InferenceError::NotFound(format!(
                "model '{name}' is not served here (served: {})",
                self.names.join(", ")
            )));
        }
        let version = match version {
            Some(v) => v,
            None => self.champion(name).await?,
        };
        self.load(name, version).await
    }

    fn names(&self) -> Vec<String> {
        self.names.clone()
    }
}

/// The online store, or none (every entity reads as unknown).
pub enum Online {
    Backend(online::Backend),
    None,
}

impl OnlineStore for Online {
    async fn read(&self, view: &str, entity: &str) -> Result<Option<OnlineRecord>, OnlineError> {
        match self {
            Online::Backend(b) => b.read(view, entity).await,
            Online::None => Ok(None),
        }
    }

    async fn write(&self, records: &[OnlineRecord]) -> Result<usize, OnlineError> {
        match self {
            Online::Backend(b) => b.write(records).await,
            Online::None => Err(OnlineError::ReadOnly),
        }
    }
}

/// Everything a running server holds.
pub struct App {
    pub store: Store,
    pub models: StoreModels,
    pub online: Online,
    pub settings: Settings,
    /// Share of requests whose predictions are logged (0..=1).
    pub log_sample: f64,
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

async fn any(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> axum::response::Response {
    // Read at most one byte over the limit, so an oversized body gets the API's own 413.
    let body = match to_bytes(body, app.settings.max_body_bytes + 1).await {
        Ok(b) => b,
        Err(_) => {
            let e = InferenceError::TooLarge(format!(
                "the body is over the limit of {} bytes",
                app.settings.max_body_bytes
            ));
            return to_axum(inference::Response::error(&e, None));
        }
    };
    let req = inference::Request {
        method: method.as_str(),
        path: uri.path(),
        headers: headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect(),
        body: &body,
    };
    let now = now_us();
    let mut response = inference::handle(&app.models, &app.online, &app.settings, &req, now).await;
    if let Some(log) = response.log.take()
        && app.log_sample > 0.0
        && sampled(&log.id, app.log_sample)
    {
        let store = app.store.clone();
        tokio::spawn(async move {
            let key = inference::service::log_key(&log.model, log.at_us, &log.id);
            // A lost log line is not worth failing the prediction for; it is reported.
            if let Err(e) = store.put(&key, log.to_json_lines()).await {
                eprintln!("inference log {key}: {e}");
            }
        });
    }
    to_axum(response)
}

/// Deterministic sampling by request id, so a retried request is logged or not alike.
fn sampled(id: &str, share: f64) -> bool {
    if share >= 1.0 {
        return true;
    }
    let h = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    (h >> 11) as f64 / (1u64 << 53) as f64 <= share
}

fn to_axum(r: inference::Response) -> axum::response::Response {
    let mut out = axum::response::Response::new(Body::from(r.body));
    *out.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (k, v) in r.headers {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
            out.headers_mut().insert(k, v);
        }
    }
    out
}

pub fn router(app: Arc<App>) -> axum::Router {
    axum::Router::new().fallback(any).with_state(app)
}

/// Binds `addr` and serves until the process ends. `ready` gets the bound address (port 0
/// picks a free port).
pub async fn serve(
    app: Arc<App>,
    addr: SocketAddr,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), ServerError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })?;
    let bound = listener.local_addr().map_err(ServerError::Serve)?;
    ready(bound);
    axum::serve(listener, router(app))
        .await
        .map_err(ServerError::Serve)
}
