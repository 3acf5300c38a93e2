//! Which edge the publish stage writes to, chosen by configuration: the same settings come
//! from environment variables (the Lambda, the local stack) or from `mlpipe publish` flags.

use std::path::PathBuf;

use storage::Store;

use crate::{Cloudflare, Edge, KvApi, ObjectEdge, PublishError, WranglerLocal};

/// R2 bucket of the Worker's `REGISTRY` binding (edge/edge-worker/wrangler.toml).
pub const WORKER_MODELS_BUCKET: &str = "mlpipe-models";
/// KV binding of the Worker's online features (edge/edge-worker/wrangler.toml).
pub const WORKER_KV_BINDING: &str = "FEATURES";

/// The settings that choose an edge target. Each field has one environment variable
/// (in brackets); exactly one of `objects`, `r2` and `wrangler_state` may be set.
#[derive(Debug, Clone, Default)]
pub struct TargetSettings {
    /// An object store the Spin component reads over HTTP (`MLPIPE_EDGE_OBJECTS`).
    pub objects: Option<String>,
    /// Cloudflare R2 as an S3 URL (`MLPIPE_EDGE_R2`), with the KV fields below.
    pub r2: Option<String>,
    /// Cloudflare account id (`MLPIPE_EDGE_KV_ACCOUNT`).
    pub kv_account: Option<String>,
    /// KV namespace id of the Worker's `FEATURES` binding (`MLPIPE_EDGE_KV_NAMESPACE`).
    pub kv_namespace: Option<String>,
    /// Another address for the KV API, e.g. a proxy (`MLPIPE_EDGE_KV_API`).
    pub kv_api: Option<String>,
    /// API token with KV write access (`CLOUDFLARE_API_TOKEN`).
    pub token: Option<String>,
    /// `wrangler dev --persist-to` state folder (`MLPIPE_EDGE_WRANGLER_STATE`).
    pub wrangler_state: Option<PathBuf>,
    /// The Worker's wrangler.toml (`MLPIPE_EDGE_WRANGLER_CONFIG`).
    pub wrangler_config: Option<PathBuf>,
    /// The wrangler executable (`MLPIPE_EDGE_WRANGLER`).
    pub wrangler: Option<PathBuf>,
}

use stage::env::var as env;

impl TargetSettings {
    /// The settings from the environment variables named on each field.
    pub fn from_env() -> TargetSettings {
        TargetSettings {
            objects: env("MLPIPE_EDGE_OBJECTS"),
            r2: env("MLPIPE_EDGE_R2"),
            kv_account: env("MLPIPE_EDGE_KV_ACCOUNT"),
            kv_namespace: env("MLPIPE_EDGE_KV_NAMESPACE"),
            kv_api: env("MLPIPE_EDGE_KV_API"),
            token: env("CLOUDFLARE_API_TOKEN"),
            wrangler_state: env("MLPIPE_EDGE_WRANGLER_STATE").map(PathBuf::from),
            wrangler_config: env("MLPIPE_EDGE_WRANGLER_CONFIG").map(PathBuf::from),
            wrangler: env("MLPIPE_EDGE_WRANGLER").map(PathBuf::from),
        }
    }

    /// True when no target is named.
    pub fn is_empty(&self) -> bool {
        self.objects.is_none() && self.r2.is_none() && self.wrangler_state.is_none()
    }

    /// The target these settings name; `None` when they name none.
    pub fn build(self) -> Result<Option<EdgeTarget>, PublishError> {
        let named = [
            self.objects.is_some(),
            self.r2.is_some(),
            self.wrangler_state.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if named > 1 {
            return Err(PublishError::Config(
                "name one edge target: MLPIPE_EDGE_OBJECTS, MLPIPE_EDGE_R2 or MLPIPE_EDGE_WRANGLER_STATE (several are set)".into(),
            ));
        }
        if let Some(url) = self.objects {
            let store = Store::open(&url)
                .map_err(|e| PublishError::Config(format!("MLPIPE_EDGE_OBJECTS {url}: {e}")))?;
            return Ok(Some(EdgeTarget::Objects(ObjectEdge::new(store))));
        }
        if let Some(url) = self.r2 {
            let (Some(account), Some(namespace)) = (self.kv_account, self.kv_namespace) else {
                return Err(PublishError::Config(
                    "an R2 target needs the KV account and namespace too (MLPIPE_EDGE_KV_ACCOUNT, MLPIPE_EDGE_KV_NAMESPACE)".into(),
                ));
            };
            let token = self.token.ok_or_else(|| {
                PublishError::Config(
                    "CLOUDFLARE_API_TOKEN must hold a token with KV write access".into(),
                )
            })?;
            let objects = Store::open(&url)
                .map_err(|e| PublishError::Config(format!("R2 {}: {e}", crate::redacted(&url))))?;
            let mut kv = KvApi::new(&account, &namespace, &token);
            if let Some(base) = self.kv_api {
                kv = kv.with_base_url(&base);
            }
            return Ok(Some(EdgeTarget::Cloudflare(Cloudflare { objects, kv })));
        }
        if let Some(state) = self.wrangler_state {
            return Ok(Some(EdgeTarget::Wrangler(WranglerLocal {
                wrangler: self.wrangler.unwrap_or_else(|| "wrangler".into()),
                path: None,
                config: self
                    .wrangler_config
                    .unwrap_or_else(|| "edge/edge-worker/wrangler.toml".into()),
                state,
                models_bucket: WORKER_MODELS_BUCKET.into(),
                kv_binding: WORKER_KV_BINDING.into(),
            })));
        }
        Ok(None)
    }
}

/// One of the edges, chosen at run time (the [`Edge`] trait is static, so a configured
/// target is an enum rather than a trait object).
#[derive(Clone)]
pub enum EdgeTarget {
    Objects(ObjectEdge),
    Cloudflare(Cloudflare),
    Wrangler(WranglerLocal),
}

impl std::fmt::Debug for EdgeTarget {
    // The description, which carries no credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EdgeTarget({})", self.describe())
    }
}

impl EdgeTarget {
    /// The target named by the environment (see [`TargetSettings`]), if any.
    pub fn from_env() -> Result<Option<EdgeTarget>, PublishError> {
        TargetSettings::from_env().build()
    }
}

impl Edge for EdgeTarget {
    fn describe(&self) -> String {
        match self {
            EdgeTarget::Objects(e) => e.describe(),
            EdgeTarget::Cloudflare(e) => e.describe(),
            EdgeTarget::Wrangler(e) => e.describe(),
        }
    }

    async fn put_object(&self, key: &str, bytes: Vec<u8>) -> Result<(), PublishError> {
        match self {
            EdgeTarget::Objects(e) => e.put_object(key, bytes).await,
            EdgeTarget::Cloudflare(e) => e.put_object(key, bytes).await,
            EdgeTarget::Wrangler(e) => e.put_object(key, bytes).await,
        }
    }

    async fn put_entries(&self, entries: Vec<(String, Vec<u8>)>) -> Result<(), PublishError> {
        match self {
            EdgeTarget::Objects(e) => e.put_entries(entries).await,
            EdgeTarget::Cloudflare(e) => e.put_entries(entries).await,
            EdgeTarget::Wrangler(e) => e.put_entries(entries).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_name_at_most_one_complete_target() {
        assert!(TargetSettings::default().build().unwrap().is_none());
        let two = TargetSettings {
            objects: Some("memory://".into()),
            wrangler_state: Some("/tmp/x".into()),
            ..Default::default()
        };
        assert!(two.build().unwrap_err().to_string().contains("several"));
        let no_kv = TargetSettings {
            r2: Some("memory://".into()),
            ..Default::default()
        };
        assert!(no_kv.build().unwrap_err().to_string().contains("namespace"));
        let no_token = TargetSettings {
            r2: Some("memory://".into()),
            kv_account: Some("a".into()),
            kv_namespace: Some("n".into()),
            ..Default::default()
        };
        assert!(
            no_token
                .build()
                .unwrap_err()
                .to_string()
                .contains("CLOUDFLARE_API_TOKEN")
        );
        let objects = TargetSettings {
            objects: Some("memory://".into()),
            ..Default::default()
        };
        assert!(matches!(
            objects.build().unwrap(),
            Some(EdgeTarget::Objects(_))
        ));
    }
}
