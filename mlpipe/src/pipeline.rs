//! What the CLI does with a project: publish its definitions, upload files, run the local
//! stack, and summarise the store's state.

use std::path::Path;

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use contracts::LoadedProject;
use features::FeatureView;
use ingest::definitions::{Published, publish_contract};
use records::keys as zones;
use records::pipeline::{FeatureManifest, Manifest, RunRecord, Snapshot};
use serde::Serialize;
use storage::{Created, ObjectInfo, Store};

use crate::stack::{Delivery, LocalStack};

/// The project's feature views, parsed and checked against its contracts.
pub fn parse_views(project: &LoadedProject) -> Result<Vec<(FeatureView, String)>> {
    let contracts: BTreeMap<String, contracts::Contract> = project
        .contracts
        .iter()
        .map(|(n, (c, _))| (n.clone(), c.clone()))
        .collect();
    let mut out: Vec<(FeatureView, String)> = Vec::new();
    for (path, text) in &project.feature_files {
        let view = FeatureView::from_toml(text, &path.display().to_string(), &contracts)?;
        if out.iter().any(|(v, _)| v.name == view.name) {
            bail!(
                "{}: view '{}' is defined in two feature files",
                path.display(),
                view.name
            );
        }
        out.push((view, text.clone()));
    }
    Ok(out)
}

/// Publishes the project file, every contract and every feature view into the store's
/// `definitions/` zone. Everything is checked before anything is written.
pub async fn push_project(
    store: &Store,
    project: &LoadedProject,
) -> Result<Vec<(String, Published)>> {
    let views = parse_views(project)?;
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
    for (view, text) in &views {
        feature_stage::definitions::publish_view(store, view, text)
            .await
            .with_context(|| format!("publishing feature view '{}'", view.name))?;
    }
    for (path, text) in &project.training_files {
        let shown = path
            .strip_prefix(&project.root)
            .unwrap_or(path)
            .display()
            .to_string();
        let cfg = train::TrainingConfig::from_toml(text, &shown)?;
        for name in cfg.views() {
            if !views.iter().any(|(v, _)| v.name == name) {
                anyhow::bail!("{shown}: view '{name}' is not one of the project's feature views");
            }
        }
        // The [drift] table is the drift stage's: checked here, before anything runs on it.
        drift::DriftSettings::from_training_toml(text, &shown)?;
        train::job::publish_config(store, text, &shown).await?;
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
    upload_under(stack, &zones::raw(dataset, ""), path).await
}

/// [`upload`] into any append-only folder (`folder` ends with `/`): `raw/<dataset>/`, or
/// `batch-input/<model>/` for the batch stage.
pub async fn upload_under(stack: &LocalStack, folder: &str, path: &Path) -> Result<Uploaded> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .context("file name is not valid UTF-8")?;
    let sha = contracts::sha256_hex(&bytes);
    let size = bytes.len() as u64;
    let store = stack.store();
    let mut key = format!("{folder}{name}");
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
        key = format!("{folder}{stem}-{}.{ext}", &sha[..12]);
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
                records::pipeline::Lineage::Upload => "upload".into(),
                records::pipeline::Lineage::Replay { replay_of, .. } => {
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

/// A feature view's newest committed version, as `mlpipe run` and `mlpipe features list`
/// report it.
#[derive(Debug, Clone, Serialize)]
pub struct ViewRun {
    pub view: String,
    pub dataset: String,
    pub version: Option<String>,
    pub created_at: Option<String>,
    pub rows: u64,
    pub train: u64,
    pub validation: u64,
    pub test: u64,
    pub entities: u64,
    pub features: Vec<String>,
    pub label: Option<String>,
    pub online: Option<String>,
}

/// The newest committed version of a view.
pub async fn latest_view_version(store: &Store, view: &str) -> Result<Option<FeatureManifest>> {
    Ok(feature_stage::view_versions(store, view).await?.pop())
}

/// Every published view with its newest version.
pub async fn view_runs(store: &Store) -> Result<Vec<ViewRun>> {
    let mut out = Vec::new();
    for view in feature_stage::definitions::current_views(store).await? {
        let latest = latest_view_version(store, &view.name).await?;
        out.push(match latest {
            Some(m) => ViewRun {
                view: view.name.clone(),
                dataset: view.dataset.clone(),
                version: Some(m.version),
                created_at: Some(m.created_at),
                rows: m.rows.rows,
                train: m.rows.train,
                validation: m.rows.validation,
                test: m.rows.test,
                entities: m.rows.entities,
                features: m.features,
                label: m.label,
                online: m.online.backend,
            },
            None => ViewRun {
                view: view.name.clone(),
                dataset: view.dataset.clone(),
                version: None,
                created_at: None,
                rows: 0,
                train: 0,
                validation: 0,
                test: 0,
                entities: 0,
                features: Vec::new(),
                label: None,
                online: None,
            },
        });
    }
    Ok(out)
}

/// The summary `mlpipe run` prints.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub project: String,
    pub store: String,
    pub datasets: Vec<DatasetRun>,
    pub feature_views: Vec<ViewRun>,
    /// What each training run did (`train::job::TrainOutcome` as JSON).
    pub training: Vec<serde_json::Value>,
    /// The drift check each champion's held-out test split got at the end.
    pub drift: Vec<crate::drift_ops::HoldoutCheck>,
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
