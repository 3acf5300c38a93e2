//! `mlpipe serve`: the edge's HTTP API on this machine, serving each model's champion from
//! the store's registry, with online features and prediction logs.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use telemetry::sdk::Telemetry;

use super::{Context, online_url};

#[derive(Args)]
pub struct ServeArgs {
    /// Models to serve (default: every model in the registry).
    #[arg(long = "model")]
    models: Vec<String>,
    /// Where the HTTP API listens (the Open Inference Protocol's REST dialect, /v1 predict,
    /// /docs and /openapi.json). A non-loopback address requires API keys.
    #[arg(long, default_value = "127.0.0.1:8000")]
    addr: SocketAddr,
    /// Where the Open Inference Protocol's gRPC service listens (with gRPC health and
    /// reflection), or `none`. A non-loopback address requires API keys, as for `--addr`.
    #[arg(long, default_value = "127.0.0.1:8001")]
    grpc_addr: String,
    /// Seconds between re-reads of the champion alias and the traffic policy (canary,
    /// shadow).
    #[arg(long, default_value_t = 5)]
    refresh: u64,
    /// Share of requests whose predictions are logged (0 to 1).
    #[arg(long, default_value_t = 1.0)]
    log_sample: f64,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 4 << 20)]
    max_body: usize,
    /// Most rows (tensor rows or records) in one request.
    #[arg(long, default_value_t = 1024)]
    max_batch: usize,
    /// MiB of model files kept loaded (least recently used out; the version in use always
    /// stays).
    #[arg(long, default_value_t = inference::registry_models::DEFAULT_CACHE_BYTES >> 20)]
    model_cache_mib: usize,
    /// Requests handled at once; more are answered 503 with Retry-After.
    #[arg(long, default_value_t = inference_server::DEFAULT_MAX_IN_FLIGHT)]
    max_in_flight: usize,
    /// Seconds a request's body may take to arrive (408 beyond).
    #[arg(long, default_value_t = inference_server::DEFAULT_BODY_TIMEOUT.as_secs())]
    body_timeout: u64,
    /// Seconds a connection may take to send a request's headers (closed beyond).
    #[arg(long, default_value_t = inference_server::DEFAULT_HEADER_TIMEOUT.as_secs())]
    header_timeout: u64,
    /// Seconds a request may take once its body is in (503 beyond).
    #[arg(long, default_value_t = inference_server::DEFAULT_REQUEST_TIMEOUT.as_secs())]
    request_timeout: u64,
    /// Seconds a /v1 record's event time may be ahead of this server's clock (422 beyond).
    #[arg(long, default_value_t = 300)]
    max_future_skew: u64,
    /// Seconds between re-reads of the API keys (keys/ in the store): how long a revoked
    /// key may still be accepted.
    #[arg(long, default_value_t = 10)]
    key_refresh: u64,
    /// Requests per second each API key may make, unless its record names its own rate
    /// (answered 429 with Retry-After beyond it).
    #[arg(long, default_value_t = inference::auth::DEFAULT_RATE_PER_S)]
    rate: f64,
    /// Requests each key may send at once before the rate applies.
    #[arg(long, default_value_t = inference::auth::DEFAULT_BURST)]
    burst: f64,
    /// Where Prometheus scrapes `/metrics` (its own listener, open: keep it on loopback or
    /// behind a network policy), or `none`.
    #[arg(long, default_value = "127.0.0.1:8002")]
    metrics_addr: String,
    /// Serve without API keys on a non-loopback address. Without it, such a server refuses
    /// to start until a key exists (`mlpipe keys create`), and then requires one on every
    /// endpoint but health. On loopback keys are required once any exists.
    #[arg(long)]
    insecure_no_auth: bool,
}

/// Serves until the server stops; `/metrics` renders `telemetry`'s Prometheus text.
pub async fn run(ctx: &Context, args: ServeArgs, telemetry: Telemetry) -> Result<ExitCode> {
    let ServeArgs {
        models,
        addr,
        grpc_addr,
        refresh,
        log_sample,
        max_body,
        max_batch,
        max_future_skew,
        model_cache_mib,
        max_in_flight,
        body_timeout,
        request_timeout,
        header_timeout,
        key_refresh,
        rate,
        burst,
        metrics_addr,
        insecure_no_auth,
    } = args;
    let metrics_addr = optional_addr("--metrics-addr", &metrics_addr)?;
    let grpc_addr = optional_addr("--grpc-addr", &grpc_addr)?;
    // Keys are required when either API is reachable beyond this machine.
    let exposed = [Some(addr), grpc_addr]
        .into_iter()
        .flatten()
        .find(|a| !a.ip().is_loopback());
    let store = ctx.open()?;
    let auth = if insecure_no_auth {
        inference_server::Auth::Off
    } else if exposed.is_none() {
        inference_server::Auth::WhenConfigured
    } else {
        inference_server::Auth::Required
    };
    if !(rate > 0.0 && rate.is_finite() && burst >= 1.0 && burst.is_finite()) {
        bail!("--rate must be above 0 and --burst at least 1");
    }
    let access = inference_server::Access::new(auth, inference::auth::RateLimits::new(rate, burst));
    let keys = access
        .refresh(&store)
        .await
        .with_context(|| format!("reading the API keys in {}", ctx.store))?;
    if auth == inference_server::Auth::Required && keys == 0 {
        bail!(
            "refusing to serve on {} without API keys: create one with `mlpipe keys create --name NAME`, or pass --insecure-no-auth to serve every caller",
            exposed.unwrap_or(addr)
        );
    }
    let online = match online_url(&store, ctx.online.as_deref()) {
        Some(url) => inference_server::Online::Backend(
            online::Backend::open(&url).await.with_context(|| {
                format!(
                    "opening the online store {}",
                    storage::redact_url(url.as_ref())
                )
            })?,
        ),
        None => inference_server::Online::None,
    };
    let models = if models.is_empty() {
        registry::models(&store).await?
    } else {
        models
    };
    if models.is_empty() {
        bail!("the registry in {} has no models to serve", ctx.store);
    }
    if !(0.0..=1.0).contains(&log_sample) {
        bail!("--log-sample must be between 0 and 1");
    }
    let metrics: inference_server::MetricsText = Arc::new(move || telemetry.prometheus_text());
    let app = Arc::new(inference_server::App {
        models: inference_server::store_models_within(
            store.clone(),
            models.clone(),
            Duration::from_secs(refresh),
            model_cache_mib.saturating_mul(1 << 20),
        ),
        logs: inference_server::logs::LogWriter::start(store.clone()),
        store,
        online,
        settings: inference::Settings {
            max_body_bytes: max_body,
            max_batch,
            max_future_skew_us: i64::try_from(max_future_skew)
                .unwrap_or(i64::MAX / 1_000_000)
                .saturating_mul(1_000_000),
            ..inference::Settings::default()
        },
        log_sample,
        metrics: Some(metrics),
        access,
        limits: inference_server::ServerLimits::new(
            max_in_flight,
            Duration::from_secs(body_timeout.max(1)),
            Duration::from_secs(request_timeout.max(1)),
        )
        .with_header_timeout(Duration::from_secs(header_timeout.max(1))),
    });
    inference_server::spawn_key_refresh(app.clone(), Duration::from_secs(key_refresh));
    if let (inference_server::Auth::Off, Some(a)) = (auth, exposed) {
        eprintln!("warning: serving on {a} with no API keys (--insecure-no-auth)");
    }
    let at = inference_server::Addresses {
        api: addr,
        grpc: grpc_addr,
        metrics: metrics_addr,
    };
    inference_server::serve(app, at, |bound| {
        // Scripts and tests wait for the first line (its last word is the API's URL), then
        // read the metrics and gRPC listeners' lines up to the docs line, which is last.
        // One write: a reader that stops after the first line cannot break the others.
        let mut out = format!("serving {} on http://{}\n", models.join(", "), bound.api);
        if let Some(m) = bound.metrics {
            out.push_str(&format!("metrics on http://{m}/metrics\n"));
        }
        if let Some(g) = bound.grpc {
            out.push_str(&format!("grpc on {g}\n"));
        }
        out.push_str(&format!("docs on http://{}/docs\n", bound.api));
        let mut stdout = std::io::stdout().lock();
        let _ = std::io::Write::write_all(&mut stdout, out.as_bytes());
        let _ = std::io::Write::flush(&mut stdout);
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// A `HOST:PORT` option that may be `none`.
fn optional_addr(option: &str, value: &str) -> Result<Option<SocketAddr>> {
    match value.trim() {
        "none" | "" => Ok(None),
        a => Ok(Some(a.parse().with_context(|| {
            format!("{option} {a}: not HOST:PORT or none")
        })?)),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    /// The defaults, read from the parser without binding anything: HTTP on 8000 and gRPC
    /// on 8001, both on loopback, metrics on 8002.
    #[test]
    fn serve_defaults_to_loopback_8000_and_8001() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            serve: super::ServeArgs,
        }
        let cli = Cli::try_parse_from(["serve"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            cli.serve.addr,
            "127.0.0.1:8000".parse().unwrap_or_else(|e| panic!("{e}"))
        );
        assert_eq!(cli.serve.grpc_addr, "127.0.0.1:8001");
        assert_eq!(cli.serve.metrics_addr, "127.0.0.1:8002");
        let none = super::optional_addr("--grpc-addr", "none").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(none, None);
        assert!(super::optional_addr("--grpc-addr", "8001").is_err());
    }
}
