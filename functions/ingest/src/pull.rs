//! HTTP pull sources: a URL named in the project is fetched into `raw/<dataset>/`, so a
//! scheduled pull from an API lands exactly like an upload and raises the same event.
//!
//! The object key carries the body's content hash, and the write is create-if-absent: pulling
//! an unchanged source again writes nothing and starts nothing.

use contracts::PullSource;
use records::keys as zones;
use storage::{Created, Store};

use crate::IngestError;

/// Largest body accepted from a pull source.
pub const MAX_PULL_BYTES: usize = 512 * 1024 * 1024;

/// What one pull did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Pulled {
    pub url: String,
    pub key: String,
    pub bytes: u64,
    /// False when the same content was pulled before.
    pub new: bool,
}

/// Fetches `source` and stores its body under `raw/<dataset>/`.
pub async fn pull(
    client: &reqwest::Client,
    store: &Store,
    dataset: &str,
    source: &PullSource,
) -> Result<Pulled, IngestError> {
    let err = |message: String| IngestError::Pull {
        url: source.url.clone(),
        message,
    };
    let response = client
        .get(&source.url)
        .send()
        .await
        .map_err(|e| err(e.to_string()))?;
    let status = response.status();
    if !status.is_success() {
        return Err(err(format!("HTTP {status}")));
    }
    if response
        .content_length()
        .is_some_and(|n| n as usize > MAX_PULL_BYTES)
    {
        return Err(err(format!("body larger than {MAX_PULL_BYTES} bytes")));
    }
    let body = response.bytes().await.map_err(|e| err(e.to_string()))?;
    if body.len() > MAX_PULL_BYTES {
        return Err(err(format!("body larger than {MAX_PULL_BYTES} bytes")));
    }
    let extension = source
        .extension
        .clone()
        .unwrap_or_else(|| extension_of(&source.url));
    let hash = &contracts::sha256_hex(&body)[..16];
    let key = zones::raw(dataset, &format!("pull-{hash}.{extension}"));
    let bytes = body.len() as u64;
    let new = matches!(store.put_if_absent(&key, body).await?, Created::Created(_));
    Ok(Pulled {
        url: source.url.clone(),
        key,
        bytes,
        new,
    })
}

fn extension_of(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let last = path.rsplit('/').next().unwrap_or("");
    match last.rsplit_once('.') {
        Some((_, ext))
            if ["csv", "tsv", "jsonl", "ndjson", "json", "parquet"]
                .contains(&ext.to_ascii_lowercase().as_str()) =>
        {
            ext.to_ascii_lowercase()
        }
        _ => "csv".into(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn extensions_from_urls() {
        assert_eq!(
            super::extension_of("https://x/y/data.JSONL?token=1"),
            "jsonl"
        );
        assert_eq!(super::extension_of("https://x/api/export"), "csv");
    }
}
