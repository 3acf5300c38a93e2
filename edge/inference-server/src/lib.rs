//! The native inference server: the same API as the Worker and the Spin component (the
//! `inference` crate's router), served by axum from the pipeline's own store. Models are
//! loaded from the registry by their `champion` alias (re-read every `refresh`, so a
//! promotion or rollback is served without a restart) or pinned by version; online
//! features come from the online store the feature stage materializes; prediction logs go
//! to `inference-logs/<model>/...` in the store for the drift checker.
//!
//! API keys come from the store's `keys/` (see the `access` crate), re-read every key
//! refresh interval, so a created or revoked key takes effect without a restart. Which
//! requests need one is the [`Auth`] mode `mlpipe serve` picks from its bind address.

pub mod docs;
pub mod logs;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use features::{OnlineError, OnlineRecord, OnlineStore};
use inference::auth::{Failures, Guard, Keys, RateLimits, Usage};
use inference::registry_models::{Blobs, RegistryModels};
use inference::service::sampled;
use inference::{InferenceError, Settings};
use inference_grpc::{Call, Core};
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
    #[error("reading the API keys: {0}")]
    Keys(#[from] access::AccessError),
}

/// Which requests need an API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Every protected endpoint, always (a server reachable beyond this machine). With no
    /// key in the store every such request is refused.
    Required,
    /// Only once the store has a key (a server on loopback): a developer's server is open
    /// until the first key is created, then behaves as `Required`.
    WhenConfigured,
    /// Never (`--insecure-no-auth`).
    Off,
}

/// The keys a server checks against and the failed attempts it has seen, swapped whole on
/// every refresh.
pub struct Access {
    pub auth: Auth,
    guard: RwLock<Arc<Guard>>,
    failures: Arc<Failures>,
    limits: Arc<RateLimits>,
    /// Keys admitted since the last report, written to the store at each refresh.
    usage: Arc<Usage>,
}

impl Access {
    /// Access in `auth` mode with no keys loaded yet (call [`Access::refresh`]); each key's
    /// requests counted against `limits`.
    pub fn new(auth: Auth, limits: RateLimits) -> Access {
        let failures = Arc::new(Failures::default());
        let limits = Arc::new(limits);
        let usage = Arc::new(Usage::default());
        let guard = match auth {
            Auth::Required => Guard::keys(Arc::new(Keys::default()), failures.clone())
                .with_limits(limits.clone())
                .with_usage(usage.clone()),
            Auth::WhenConfigured | Auth::Off => Guard::open(),
        };
        Access {
            auth,
            guard: RwLock::new(Arc::new(guard)),
            failures,
            limits,
            usage,
        }
    }

    /// Open to everyone (tests and `--insecure-no-auth`).
    pub fn off() -> Access {
        Access::new(Auth::Off, RateLimits::default())
    }

    pub fn guard(&self) -> Arc<Guard> {
        self.guard.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Reports the keys used since the last refresh (`keys/<id>.last-used`, for `mlpipe keys
    /// list`), then re-reads `keys/` from `store`; returns how many keys are loaded.
    pub async fn refresh(&self, store: &Store) -> Result<usize, ServerError> {
        if self.auth == Auth::Off {
            return Ok(0);
        }
        for (id, at_us) in self.usage.take_changed() {
            access::record_use(store, &id, at_us).await?;
        }
        let keys = access::list(store).await?;
        let n = keys.len();
        let guard = if n == 0 && self.auth == Auth::WhenConfigured {
            Guard::open()
        } else {
            Guard::keys(Arc::new(Keys::new(keys)), self.failures.clone())
                .with_limits(self.limits.clone())
                .with_usage(self.usage.clone())
        };
        *self.guard.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(guard);
        Ok(n)
    }
}

/// Re-reads the keys every `every` until the process ends; a failed read keeps the keys
/// loaded before and is logged (without any key material).
pub fn spawn_key_refresh(app: Arc<App>, every: Duration) {
    if app.access.auth == Auth::Off {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = app.access.refresh(&app.store).await {
                tracing::warn!("API keys not refreshed: {e}");
            }
        }
    });
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

/// The server's models: `names` from `store`, the champion alias trusted for `refresh`,
/// loaded versions kept up to the default byte budget.
pub fn store_models(store: Store, names: Vec<String>, refresh: Duration) -> StoreModels {
    store_models_within(
        store,
        names,
        refresh,
        inference::registry_models::DEFAULT_CACHE_BYTES,
    )
}

/// [`store_models`] with a budget of `cache_bytes` of model files.
pub fn store_models_within(
    store: Store,
    names: Vec<String>,
    refresh: Duration,
    cache_bytes: usize,
) -> StoreModels {
    RegistryModels::with_cache(
        StoreBlobs(store),
        Arc::new(
            inference::registry_models::ModelCache::new(
                names,
                i64::try_from(refresh.as_micros()).unwrap_or(i64::MAX),
                now_us,
            )
            .with_max_bytes(cache_bytes),
        ),
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
    /// Where sampled prediction logs go: batched into the store (see [`logs`]).
    pub logs: logs::LogWriter,
    /// What `GET /metrics` serves (none: 404).
    pub metrics: Option<MetricsText>,
    /// API keys: who may call what.
    pub access: Access,
    /// Requests in flight and how long a request may take.
    pub limits: ServerLimits,
}

/// How much a server takes on at once, and for how long.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    pub max_in_flight: usize,
    /// How long a request's body may take to arrive (408 beyond).
    pub body_timeout: Duration,
    /// How long a request may take once its body is in (503 beyond).
    pub request_timeout: Duration,
    /// How long a connection may take to send a request's headers (the connection is
    /// closed beyond): a client that opens connections and trickles headers (slowloris)
    /// holds nothing for longer.
    pub header_timeout: Duration,
    slots: Arc<tokio::sync::Semaphore>,
}

/// Requests one server handles at once by default (more are answered 503 with Retry-After).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 64;
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

impl ServerLimits {
    pub fn new(max_in_flight: usize, body_timeout: Duration, request_timeout: Duration) -> Self {
        let max_in_flight = max_in_flight.max(1);
        ServerLimits {
            max_in_flight,
            body_timeout,
            request_timeout,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            slots: Arc::new(tokio::sync::Semaphore::new(max_in_flight)),
        }
    }

    /// The same limits with another header-read timeout.
    pub fn with_header_timeout(mut self, header_timeout: Duration) -> Self {
        self.header_timeout = header_timeout;
        self
    }
}

impl Default for ServerLimits {
    fn default() -> ServerLimits {
        ServerLimits::new(
            DEFAULT_MAX_IN_FLIGHT,
            DEFAULT_BODY_TIMEOUT,
            DEFAULT_REQUEST_TIMEOUT,
        )
    }
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

/// A random number for a prediction log's object name (std's hasher keys come from the
/// operating system's random source; each `RandomState` is new).
fn nonce() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::hash::RandomState::new().build_hasher();
    h.write_i64(now_us());
    h.finish()
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// A slot among the `max_in_flight`, or the 503 that tells the caller to come back.
fn slot(app: &App) -> Result<tokio::sync::OwnedSemaphorePermit, Box<inference::Response>> {
    let limits = &app.limits;
    limits.slots.clone().try_acquire_owned().map_err(|_| {
        Box::new(inference::Response::error(
            &InferenceError::Overloaded {
                message: format!(
                    "the server is at its limit of {} requests in flight",
                    limits.max_in_flight
                ),
                retry_after_s: 1,
            },
            None,
        ))
    })
}

async fn any(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Body,
) -> axum::response::Response {
    let peer = extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let limits = &app.limits;
    let fail = |e: InferenceError| to_axum(inference::Response::error(&e, None));
    // At most `max_in_flight` requests at once (a body still arriving holds its slot); the
    // next is told to come back.
    let _slot = match slot(&app) {
        Ok(s) => s,
        Err(r) => return to_axum(*r),
    };
    // Read at most one byte over the limit, so an oversized body gets the API's own 413; a
    // body that trickles in slower than the timeout gets 408 and frees its slot.
    let body = match tokio::time::timeout(
        limits.body_timeout,
        to_bytes(body, app.settings.max_body_bytes + 1),
    )
    .await
    {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => {
            return fail(InferenceError::TooLarge(format!(
                "the body is over the limit of {} bytes",
                app.settings.max_body_bytes
            )));
        }
        Err(_) => {
            return fail(InferenceError::Timeout(format!(
                "the request body did not arrive within {} s",
                limits.body_timeout.as_secs_f64()
            )));
        }
    };
    let headers: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    to_axum(
        run(
            &app,
            Call {
                method: method.as_str().to_string(),
                path: uri.path().to_string(),
                headers,
                body,
                peer,
            },
        )
        .await,
    )
}

/// Bodies up to this size are handled on the async threads; larger ones on the blocking pool.
///
/// A request this small is a few rows: its prediction takes microseconds (2.7 us for the
/// sample champion's row), less than the hand-off to the blocking pool and back
/// (`spawn_blocking`, then `block_on` there), which the serving benchmark measured as most
/// of a small request's cost. A large batch still computes off the async threads, so it
/// cannot stall other requests (health checks included) while it runs.
pub const INLINE_BODY_BYTES: usize = 16 * 1024;

/// The one request path of both listeners: the API's handler (inline for a small body, on
/// the blocking pool for a large one) within the request timeout, then the request's metrics
/// and its prediction log.
async fn run(app: &Arc<App>, call: Call) -> inference::Response {
    let started = std::time::Instant::now();
    let limits = &app.limits;
    let fail = |e: InferenceError| inference::Response::error(&e, None);
    let path = call.path.clone();
    let work = if call.body.len() <= INLINE_BODY_BYTES {
        let app = app.clone();
        tokio::spawn(async move { handle(&app, call).await })
    } else {
        let app = app.clone();
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || runtime.block_on(handle(&app, call)))
    };
    let mut response = match tokio::time::timeout(limits.request_timeout, work).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            return fail(InferenceError::Internal(format!("the request failed: {e}")));
        }
        Err(_) => {
            return fail(InferenceError::Unavailable(format!(
                "the request took longer than {} s",
                limits.request_timeout.as_secs_f64()
            )));
        }
    };
    if let Some(model) = response
        .log
        .as_ref()
        .map(|l| l.model.as_str())
        .or_else(|| model_of_path(&path))
    {
        let rows = response.log.as_ref().map_or(0, |l| l.rows.len());
        telemetry::record_inference(model, response.status, rows, started.elapsed());
    }
    if let Some(log) = response.log.take()
        && app.log_sample > 0.0
        && sampled(&log.id, app.log_sample)
    {
        app.logs.submit(log);
    }
    response
}

/// The API's handler for one call.
async fn handle(app: &App, call: Call) -> inference::Response {
    let guard = app.access.guard();
    let client = call.peer.map(|p| p.ip().to_string());
    let req = inference::Request {
        method: &call.method,
        path: &call.path,
        headers: call.headers,
        body: &call.body,
        client: client.as_deref(),
    };
    inference::handle(
        &app.models,
        &app.online,
        &app.settings,
        &guard,
        &req,
        now_us(),
    )
    .await
}

/// The gRPC service's way into the same path as REST: the same slots, keys, limits, logs.
pub struct GrpcCore(pub Arc<App>);

impl Core for GrpcCore {
    async fn call(&self, call: Call) -> inference::Response {
        let _slot = match slot(&self.0) {
            Ok(s) => s,
            Err(r) => return *r,
        };
        run(&self.0, call).await
    }
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

/// The API's routes: the documentation (`/docs`, `/openapi.json`, open), then everything
/// else through the shared core.
pub fn router(app: Arc<App>) -> axum::Router {
    axum::Router::new()
        .merge(docs::routes())
        .fallback(any)
        .with_state(app)
}

/// The metrics listener's routes: `GET /metrics` only, open (it is reached on its own
/// address, loopback by default, or where a network policy admits only the monitoring).
pub fn metrics_router(app: Arc<App>) -> axum::Router {
    axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(|State(app): State<Arc<App>>| async move { metrics(&app).await }),
        )
        .with_state(app)
}

/// Where a server listens: the REST API, the gRPC API and the metrics (each port 0 picks a
/// free port).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addresses {
    pub api: SocketAddr,
    /// The Open Inference Protocol over gRPC (none: not served).
    pub grpc: Option<SocketAddr>,
    /// Prometheus text at `/metrics` (none: not served).
    pub metrics: Option<SocketAddr>,
}

async fn bind(addr: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr), ServerError> {
    let l = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })?;
    let bound = l.local_addr().map_err(ServerError::Serve)?;
    Ok((l, bound))
}

/// Binds every address of `at` and serves until the process is told to stop (SIGTERM or
/// Ctrl-C), then drains both APIs. `ready` gets the bound addresses.
pub async fn serve(
    app: Arc<App>,
    at: Addresses,
    ready: impl FnOnce(Addresses),
) -> Result<(), ServerError> {
    let (listener, api) = bind(at.api).await?;
    let grpc = match at.grpc {
        Some(a) => Some(bind(a).await?),
        None => None,
    };
    let metrics = match at.metrics {
        Some(a) => Some(bind(a).await?),
        None => None,
    };
    ready(Addresses {
        api,
        grpc: grpc.as_ref().map(|g| g.1),
        metrics: metrics.as_ref().map(|m| m.1),
    });
    if let Some((l, _)) = metrics {
        let router = metrics_router(app.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(l, router).await {
                tracing::error!("metrics listener: {e}");
            }
        });
    }
    let grpc = grpc.map(|(l, _)| {
        let core = Arc::new(GrpcCore(app.clone()));
        let max_message = app.settings.max_body_bytes;
        tokio::spawn(async move {
            if let Err(e) = inference_grpc::serve(l, core, max_message, shutdown_signal()).await {
                tracing::error!("gRPC listener: {e}");
            }
        })
    });
    let header_timeout = app.limits.header_timeout;
    let logs = app.logs.clone();
    serve_api(listener, router(app), header_timeout).await?;
    if let Some(g) = grpc {
        let _ = tokio::time::timeout(DRAIN, g).await;
    }
    // The last requests' logs are still gathering: written before the process ends.
    logs.flush().await;
    Ok(())
}

/// How long a stopping server waits for the requests in flight.
const DRAIN: Duration = Duration::from_secs(30);

/// The API's accept loop: hyper's HTTP/1 connection with a header-read timeout (which
/// `axum::serve` does not expose), each request given its peer address (what failed key
/// attempts are counted against), and a graceful stop on SIGTERM or Ctrl-C: no new
/// connections, the requests in flight finished (up to [`DRAIN`]).
async fn serve_api(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    header_timeout: Duration,
) -> Result<(), ServerError> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut stop = std::pin::pin!(shutdown_signal());
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                // A failed accept (too many open files, a reset before accept) is the
                // connection's problem, not the server's: log, pause, go on.
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        // Answers go out as written, not held for the client's ACK (Nagle's algorithm).
        let _ = stream.set_nodelay(true);
        let service = hyper_util::service::TowerToHyperService::new(
            router.clone().layer(axum::Extension(ConnectInfo(peer))),
        );
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // A client that went away or timed out: nothing to do but close.
            let _ = conn.await;
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN, graceful.shutdown()).await;
    Ok(())
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
