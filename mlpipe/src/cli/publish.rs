//! `mlpipe publish`: push each model's champion and its online records, and the API keys'
//! hashes, to an edge target (Cloudflare R2 + KV, an object store, or wrangler's local state).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Args;

use super::Context;

#[derive(Args)]
pub struct PublishArgs {
    /// Models to publish (default: every model in the registry).
    #[arg(long = "model")]
    models: Vec<String>,
    /// Local target: the `wrangler dev --persist-to` state folder.
    #[arg(long, env = "MLPIPE_EDGE_WRANGLER_STATE", conflicts_with_all = ["r2", "objects"])]
    wrangler_state: Option<PathBuf>,
    /// Object-store target (what the Spin component reads over HTTP): a store URL
    /// (s3://BUCKET?endpoint=..., or a folder); online records go under online/.
    #[arg(
        long,
        env = "MLPIPE_EDGE_OBJECTS",
        hide_env_values = true,
        conflicts_with = "r2"
    )]
    objects: Option<String>,
    /// The Worker's wrangler.toml (local target).
    #[arg(
        long,
        env = "MLPIPE_EDGE_WRANGLER_CONFIG",
        default_value = "edge/edge-worker/wrangler.toml"
    )]
    wrangler_config: PathBuf,
    /// The wrangler executable (local target).
    #[arg(long, env = "MLPIPE_EDGE_WRANGLER", default_value = "wrangler")]
    wrangler: PathBuf,
    /// Deployed target: the R2 bucket as an S3 URL
    /// (s3://BUCKET?endpoint=https://ACCOUNT.r2.cloudflarestorage.com; credentials from
    /// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, an R2 API token's S3 pair).
    #[arg(long, env = "MLPIPE_EDGE_R2", hide_env_values = true, requires_all = ["kv_account", "kv_namespace"])]
    r2: Option<String>,
    /// Cloudflare account id (KV API; token from CLOUDFLARE_API_TOKEN).
    #[arg(long, env = "MLPIPE_EDGE_KV_ACCOUNT")]
    kv_account: Option<String>,
    /// KV namespace id of the Worker's FEATURES binding.
    #[arg(long, env = "MLPIPE_EDGE_KV_NAMESPACE")]
    kv_namespace: Option<String>,
}

pub async fn run(ctx: &Context, args: PublishArgs) -> Result<ExitCode> {
    let PublishArgs {
        models,
        wrangler_state,
        objects,
        wrangler_config,
        wrangler,
        r2,
        kv_account,
        kv_namespace,
    } = args;
    let store = ctx.open()?;
    let models = if models.is_empty() {
        registry::models(&store).await?
    } else {
        models
    };
    if models.is_empty() {
        bail!("the registry in {} has no models to publish", ctx.store);
    }
    let settings = publish_stage::TargetSettings {
        objects,
        r2,
        kv_account,
        kv_namespace,
        kv_api: stage::env::var("MLPIPE_EDGE_KV_API"),
        token: stage::env::var("CLOUDFLARE_API_TOKEN"),
        wrangler_state,
        wrangler_config: Some(wrangler_config),
        wrangler: Some(wrangler),
    };
    let Some(edge) = settings.build()? else {
        bail!(
            "say where to publish: --wrangler-state DIR, --objects URL, or --r2 URL with --kv-account and --kv-namespace"
        );
    };
    let mut outcomes = publish_stage::publish_models(&store, &models, &edge).await?;
    // The API keys' hashes, which the deployed Worker and Spin component require.
    outcomes.push(publish_stage::publish_keys(&store, &edge).await?);
    for o in outcomes {
        match o {
            publish_stage::Outcome::Published(p) => println!(
                "published {} {} version {} ({} objects, {} entries) to {}",
                p.kind,
                p.name,
                p.version,
                p.objects.len(),
                p.entries,
                p.target
            ),
            publish_stage::Outcome::AlreadyDone(k) => {
                println!("already published (record {k})")
            }
            publish_stage::Outcome::Superseded {
                pointer,
                seq,
                edge_seq,
            } => println!(
                "not published: the edge's {pointer} is already at move {edge_seq}, later than {seq}"
            ),
        }
    }
    Ok(ExitCode::SUCCESS)
}
