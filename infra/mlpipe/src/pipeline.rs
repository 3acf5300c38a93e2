//! What the CLI does with a project: publish its definitions, upload files, run the local
//! stack, and summarise the store's state.

use std::path::Path;

use anyhow::{Context, Result};
use contracts::LoadedProject;
use ingest::definitions::{Published, publish_contract};
use serde::Serialize;
use storage::records::{Manifest, RunRecord, Snapshot};
use storage::{Created, ObjectInfo, Store, zones};

use crate::stack::{Delivery, LocalStack};

/// Publishes the project file and every contract into the store's `definitions/` zone.
pub async fn push_project(
    store: &Store,
    project: &LoadedProject,
) -> Result<Vec<(String, Published)>> {
    store
        .put_if_absent(
            &zones::project(&project.project.name, &project.hash()),
            project.project_text.clone(),
        )
        .await?;
    let mut out = Vec::new();
    for (name, (contract, text)) in &project.contracts {
        let published = publish_contract(store, contract, text)
            .await
            .with_context(|| format!("publishing the contract of '{name}'"))?;
        out.push((name.clone(), published));
    }
    Ok(out)
}

/// Result of putting a local file into `raw/`.
#[derive(Debug, Clone, Serialize)]
pub struct Uploaded {
    pub key: String,
    pub bytes: u64,
    /// False when the same content was already at that key (its event is delivered again).
    pub new: bool,
}

/// Uploads `path` to `raw/<dataset>/<file name>` through the stack's store (raising the
/// event). The raw zone is append-only: if that key already holds different content, the file
/// goes to `<stem>-<hash>.<ext>` instead; if it holds the same content, nothing is written and
/// the event is delivered again (ingest is idempotent, so this is safe).
pub async fn upload(stack: &LocalStack, dataset: &str, path: &Path) -> Result<Uploaded> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .context("file name is not valid UTF-8")?;
    let sha = contracts::sha256_hex(&bytes);
    let size = bytes.len() as u64;
    let store = stack.store();
    let mut key = zones::raw(dataset, name);
    if let Some(existing) = store.get_opt(&key).await? {
        if contracts::sha256_hex(&existing.bytes) == sha {
            stack.enqueue(existing.info);
            return Ok(Uploaded {
                key,
                bytes: size,
                new: false,
            });
        }
        let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
        key = zones::raw(dataset, &format!("{stem}-{}.{ext}", &sha[..12]));
    }
    match store.put_if_absent(&key, bytes).await? {
        Created::Created(_) => Ok(Uploaded {
            key,
            bytes: size,
            new: true,
        }),
        Created::AlreadyExists => {
            if let Some(info) = store.head(&key).await? {
                stack.enqueue(info);
            }
            Ok(Uploaded {
                key,
                bytes: size,
                new: false,
            })
        }
    }
}

/// One dataset's state in the store.
#[derive(Debug, Clone, Serialize)]
pub struct DatasetState {
    pub dataset: String,
    pub versions: Vec<VersionRow>,
    pub latest_snapshot: Option<Snapshot>,
    pub rows_valid: u64,
    pub rows_quarantined: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct VersionRow {
    pub version: String,
    pub created_at: String,
    pub source: String,
    pub lineage: String,
    pub contract: String,
    pub rows_read: u64,
    pub rows_valid: u64,
    pub rows_quarantined: u64,
}

impl From<&Manifest> for VersionRow {
    fn from(m: &Manifest) -> Self {
        VersionRow {
            version: m.version.clone(),
            created_at: m.created_at.clone(),
            source: m.source.key.clone(),
            lineage: match &m.lineage {
                storage::records::Lineage::Upload => "upload".into(),
                storage::records::Lineage::Replay { replay_of, .. } => {
                    format!("replay of {replay_of}")
                }
            },
            contract: format!("{} (lineage {})", m.contract.hash, m.contract.lineage),
            rows_read: m.rows.read,
            rows_valid: m.rows.valid,
            rows_quarantined: m.rows.quarantined,
        }
    }
}

/// Versions (by creation time) and the newest snapshot of a dataset.
pub async fn dataset_state(store: &Store, dataset: &str) -> Result<DatasetState> {
    let mut manifests = ingest::committed_manifests(store, dataset).await?;
    manifests.sort_by(|a, b| {
        a.created_at
            .cmp(&b.created_at)
            .then(a.version.cmp(&b.version))
    });
    let versions: Vec<VersionRow> = manifests.iter().map(VersionRow::from).collect();
    let mut latest: Option<(i64, Snapshot)> = None;
    for info in store.list(&zones::snapshots_prefix(dataset)).await? {
        let obj = store.get(&info.key).await?;
        let snap: Snapshot =
            serde_json::from_slice(&obj.bytes).with_context(|| format!("reading {}", info.key))?;
        // Newest = most versions, then latest write (snapshots only grow within a lineage).
        let rank = (snap.contract_lineage as i64) << 40 | (snap.versions.len() as i64) << 20;
        if latest
            .as_ref()
            .is_none_or(|(r, s)| rank > *r || (rank == *r && snap.created_at > s.created_at))
        {
            latest = Some((rank, snap));
        }
    }
    Ok(DatasetState {
        dataset: dataset.to_string(),
        rows_valid: versions.iter().map(|v| v.rows_valid).sum(),
        rows_quarantined: versions.iter().map(|v| v.rows_quarantined).sum(),
        versions,
        latest_snapshot: latest.map(|(_, s)| s),
    })
}

/// Every dataset with a published contract.
pub async fn datasets(store: &Store) -> Result<Vec<String>> {
    let mut names: Vec<String> = store
        .list("definitions/contracts/")
        .await?
        .into_iter()
        .filter(|i| i.key.ends_with("/_current.json"))
        .filter_map(|i| i.key.split('/').nth(2).map(str::to_string))
        .collect();
    names.dedup();
    Ok(names)
}

/// The newest run records of a stage for a dataset (newest first).
pub async fn recent_runs(
    store: &Store,
    stage: &str,
    dataset: &str,
    limit: usize,
) -> Result<Vec<RunRecord>> {
    let mut infos: Vec<ObjectInfo> = store
        .list(&zones::pipeline_runs_prefix(stage, dataset))
        .await?;
    infos.sort_by(|a, b| b.key.cmp(&a.key));
    let mut out = Vec::new();
    for info in infos.into_iter().take(limit) {
        let obj = store.get(&info.key).await?;
        if let Ok(r) = serde_json::from_slice::<RunRecord>(&obj.bytes) {
            out.push(r);
        }
    }
    Ok(out)
}

/// The summary `mlpipe run` prints.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub project: String,
    pub store: String,
    pub datasets: Vec<DatasetRun>,
    pub deliveries: Vec<Delivery>,
    pub ok: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct DatasetRun {
    pub dataset: String,
    pub contract: String,
    pub contract_change: String,
    pub uploads: Vec<Uploaded>,
    pub versions: usize,
    pub snapshot: Option<String>,
    pub rows_valid: u64,
    pub rows_quarantined: u64,
}
