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
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Seconds between re-reads of the champion alias.
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
}

/// Serves until the server stops; `/metrics` renders `telemetry`'s Prometheus text.
pub async fn run(ctx: &Context, args: ServeArgs, telemetry: Telemetry) -> Result<ExitCode> {
    let ServeArgs {
        models,
        addr,
        refresh,
        log_sample,
        max_body,
        max_batch,
    } = args;
    let store = ctx.open()?;
    let online = match online_url(&store, ctx.online.as_deref()) {
        Some(url) => inference_server::Online::Backend(
            online::Backend::open(&url)
                .await
                .with_context(|| format!("opening the online store {url}"))?,
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
        models: inference_server::store_models(
            store.clone(),
            models.clone(),
            Duration::from_secs(refresh),
        ),
        store,
        online,
        settings: inference::Settings {
            max_body_bytes: max_body,
            max_batch,
            ..inference::Settings::default()
        },
        log_sample,
        metrics: Some(metrics),
    });
    inference_server::serve(app, addr, |bound| {
        // Scripts and tests wait for this line.
        println!("serving {} on http://{bound}", models.join(", "));
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}
