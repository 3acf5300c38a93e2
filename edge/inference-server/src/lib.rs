//! The native inference server: the same API as the Worker and the Spin component (the
//! `inference` crate's router), served by axum from the pipeline's own store. Models are
//! loaded from the registry by their `champion` alias (re-read every `refresh`, so a
//! promotion or rollback is served without a restart) or pinned by version; online
//! features come from the online store the feature stage materializes; prediction logs go
//! to `inference-logs/<model>/...` in the store for the drift checker.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use features::{OnlineError, OnlineRecord, OnlineStore};
use inference::registry_models::{Blobs, RegistryModels};
use inference::service::sampled;
use inference::{InferenceError, Settings};
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

/// The registry's objects in the pipeline's store.
pub struct StoreBlobs(pub Store);

impl Blobs for StoreBlobs {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.0
            .get_opt(key)
            .await
            .map(|o| o.map(|o| o.bytes.to_vec()))
            .map_err(|e| e.to_string())
    }
}

/// Models from the registry in a store, cached per version; the champion alias is re-read
/// at most every `refresh`.
pub type StoreModels = RegistryModels<StoreBlobs>;

/// The server's models: `names` from `store`, the champion alias trusted for `refresh`.
pub fn store_models(store: Store, names: Vec<String>, refresh: Duration) -> StoreModels {
    RegistryModels::new(
        StoreBlobs(store),
        names,
        i64::try_from(refresh.as_micros()).unwrap_or(i64::MAX),
        now_us,
    )
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

/// Renders the current metrics as Prometheus text (blocking: it collects first).
pub type MetricsText = Arc<dyn Fn() -> Option<String> + Send + Sync>;

/// Everything a running server holds.
pub struct App {
    pub store: Store,
    pub models: StoreModels,
    pub online: Online,
    pub settings: Settings,
    /// Share of requests whose predictions are logged (0..=1).
    pub log_sample: f64,
    /// What `GET /metrics` serves (none: 404).
    pub metrics: Option<MetricsText>,
}

/// The model a request path names (`/v2/models/{name}/...`, `/v1/models/{name}:...`).
fn model_of_path(path: &str) -> Option<&str> {
    let rest = path
        .strip_prefix("/v2/models/")
        .or_else(|| path.strip_prefix("/v1/models/"))?;
    let name = rest.split(['/', ':']).next()?;
    (!name.is_empty()).then_some(name)
}

async fn metrics(app: &App) -> axum::response::Response {
    let Some(render) = app.metrics.clone() else {
        return to_axum(inference::Response::error(
            &InferenceError::NotFound("metrics are not enabled on this server".into()),
            None,
        ));
    };
    let text = tokio::task::spawn_blocking(move || render())
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    let mut out = axum::response::Response::new(Body::from(text));
    out.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    out
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
    if uri.path() == "/metrics" && method == Method::GET {
        return metrics(&app).await;
    }
    let started = std::time::Instant::now();
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
    if let Some(model) = response
        .log
        .as_ref()
        .map(|l| l.model.as_str())
        .or_else(|| model_of_path(uri.path()))
    {
        let rows = response.log.as_ref().map_or(0, |l| l.rows.len());
        telemetry::record_inference(model, response.status, rows, started.elapsed());
    }
    if let Some(log) = response.log.take()
        && app.log_sample > 0.0
        && sampled(&log.id, app.log_sample)
    {
        let store = app.store.clone();
        tokio::spawn(async move {
            let key = records::keys::prediction_log(&log.model, log.at_us, &log.id);
            // A lost log line is not worth failing the prediction for; it is reported.
            if let Err(e) = store.put(&key, log.to_json_lines()).await {
                eprintln!("inference log {key}: {e}");
            }
        });
    }
    to_axum(response)
}

/// Deterministic sampling by request id, so a retried request is logged or not alike.
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
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(ServerError::Serve)
}

/// SIGTERM (what Kubernetes and container runtimes send to stop a pod) or Ctrl-C: the
/// server stops accepting, finishes the requests in flight, then returns. Without a handler
/// a process running as PID 1 ignores SIGTERM and is killed only after the grace period.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}
