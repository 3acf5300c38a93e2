//! Online feature-store backends that need a file system or the network: the embedded file
//! store (default) and DynamoDB. Both implement [`features::OnlineStore`]; [`Backend`] picks
//! one from a URL so functions are configured by one environment variable.

pub mod aws;
pub mod dynamodb;
pub mod embedded;

use std::path::Path;

pub use dynamodb::DynamoStore;
pub use embedded::EmbeddedStore;
use features::{OnlineError, OnlineRecord, OnlineStore};

/// An online store chosen by URL:
/// - `embedded:<path>` or a plain path: the embedded file store;
/// - `dynamodb://<table>[?endpoint=URL&region=R]`: DynamoDB (credentials from `AWS_*`).
#[derive(Debug)]
pub enum Backend {
    Embedded(EmbeddedStore),
    Dynamo(DynamoStore),
}

impl Backend {
    pub async fn open(url: &str) -> Result<Backend, OnlineError> {
        if let Some(rest) = url.strip_prefix("dynamodb://") {
            let parsed = url::Url::parse(&format!("http://{rest}"))
                .map_err(|e| OnlineError::Backend(format!("online store URL '{url}': {e}")))?;
            let table = parsed.host_str().unwrap_or_default().to_string();
            if table.is_empty() {
                return Err(OnlineError::Backend(format!(
                    "online store URL '{url}' names no table"
                )));
            }
            let mut endpoint = None;
            let mut region = None;
            for (k, v) in parsed.query_pairs() {
                match k.as_ref() {
                    "endpoint" => endpoint = Some(v.into_owned()),
                    "region" => region = Some(v.into_owned()),
                    other => {
                        return Err(OnlineError::Backend(format!(
                            "online store URL '{url}': unknown parameter '{other}'"
                        )));
                    }
                }
            }
            let store = DynamoStore::new(&table, endpoint.as_deref(), region.as_deref(), None)?;
            store.ensure_table().await?;
            return Ok(Backend::Dynamo(store));
        }
        let path = url.strip_prefix("embedded:").unwrap_or(url);
        Ok(Backend::Embedded(EmbeddedStore::open(Path::new(path))?))
    }

    pub fn describe(&self) -> String {
        match self {
            Backend::Embedded(e) => format!("embedded:{}", e.path().display()),
            Backend::Dynamo(d) => format!("dynamodb://{}", d.table()),
        }
    }
}

impl OnlineStore for Backend {
    async fn read(&self, view: &str, entity: &str) -> Result<Option<OnlineRecord>, OnlineError> {
        match self {
            Backend::Embedded(s) => s.read(view, entity).await,
            Backend::Dynamo(s) => s.read(view, entity).await,
        }
    }

    async fn write(&self, records: &[OnlineRecord]) -> Result<usize, OnlineError> {
        match self {
            Backend::Embedded(s) => s.write(records).await,
            Backend::Dynamo(s) => s.write(records).await,
        }
    }
}
