//! Experiment tracking in the store: `runs/<run>/run.json` (what was trained on what, with
//! which code, the winner's parameters, test metrics, timings, artifacts and the registry
//! outcome) and `runs/<run>/trials/<id>.json` (each trial's parameters and its validation
//! metric at every rung: the metrics per step).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use storage::Store;

use crate::TrainError;
use crate::metrics::Interval;
use crate::search::Trial;

pub use records::keys::{RUNS, run_key, trial_key};

/// How a run ended with the registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registration {
    pub version: u64,
    /// `created`, or `existing` when the same model bytes were registered before.
    pub outcome: String,
    pub promoted: bool,
    /// The alias this version now holds (`champion` or `challenger`), if any.
    pub alias: Option<String>,
    pub reason: String,
}

/// The champion measured on the candidate's test rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChampionComparison {
    pub version: u64,
    pub metric: String,
    pub champion: Option<f64>,
    pub candidate: Option<f64>,
    /// Why no comparison was possible, if none was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_comparable: Option<String>,
}

/// `runs/<run>/run.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingRun {
    pub run_id: String,
    /// `running`, `finished` or `failed`.
    pub status: String,
    pub model: String,
    pub view: String,
    pub feature_version: String,
    pub dataset_snapshot: String,
    pub trigger: String,
    pub config_hash: String,
    pub code_version: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub task: Option<String>,
    pub metric: Option<String>,
    pub rows: BTreeMap<String, u64>,
    pub best_trial: Option<usize>,
    pub params: BTreeMap<String, String>,
    pub test_metrics: BTreeMap<String, f64>,
    pub interval: Option<Interval>,
    pub threshold: Option<f64>,
    pub importance: Vec<(String, f64)>,
    pub champion: Option<ChampionComparison>,
    pub registration: Option<Registration>,
    pub timings_s: BTreeMap<String, f64>,
    /// Store keys of what the run produced.
    pub artifacts: Vec<String>,
    pub trials: usize,
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mlflow: Option<String>,
    /// How the search judged its trials: holdout, or k-fold cross-validation on small data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<crate::search::Selection>,
}

pub async fn write_run(store: &Store, run: &TrainingRun) -> Result<(), TrainError> {
    let bytes = serde_json::to_vec_pretty(run).map_err(|e| TrainError::Record {
        key: run_key(&run.run_id),
        message: e.to_string(),
    })?;
    store.put(&run_key(&run.run_id), bytes).await?;
    Ok(())
}

pub async fn write_trials(store: &Store, run: &str, trials: &[Trial]) -> Result<(), TrainError> {
    for t in trials {
        let bytes = serde_json::to_vec_pretty(t).map_err(|e| TrainError::Record {
            key: trial_key(run, t.id),
            message: e.to_string(),
        })?;
        store.put(&trial_key(run, t.id), bytes).await?;
    }
    Ok(())
}

pub async fn read_run(store: &Store, run: &str) -> Result<Option<TrainingRun>, TrainError> {
    let key = run_key(run);
    let Some(obj) = store.get_opt(&key).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&obj.bytes)
        .map(Some)
        .map_err(|e| TrainError::Record {
            key,
            message: e.to_string(),
        })
}

/// Every run, oldest first.
pub async fn list_runs(store: &Store) -> Result<Vec<TrainingRun>, TrainError> {
    let mut out = Vec::new();
    for info in store.list(RUNS).await? {
        if let Some(run) = info
            .key
            .strip_prefix(RUNS)
            .and_then(|r| r.strip_suffix("/run.json"))
            .filter(|r| !r.contains('/'))
            && let Some(r) = read_run(store, run).await?
        {
            out.push(r);
        }
    }
    out.sort_by(|a, b| {
        a.started_at
            .cmp(&b.started_at)
            .then(a.run_id.cmp(&b.run_id))
    });
    Ok(out)
}

pub async fn read_trials(store: &Store, run: &str) -> Result<Vec<Trial>, TrainError> {
    let prefix = records::keys::trials_prefix(run);
    let mut out = Vec::new();
    for info in store.list(&prefix).await? {
        let obj = store.get(&info.key).await?;
        out.push(
            serde_json::from_slice(&obj.bytes).map_err(|e| TrainError::Record {
                key: info.key.clone(),
                message: e.to_string(),
            })?,
        );
    }
    Ok(out)
}
