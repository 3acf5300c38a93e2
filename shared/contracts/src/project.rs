//! The pipeline project: `mlpipe.toml` and the files it names.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::contract::is_identifier;
use crate::{Contract, ContractError, Result, short_hash};

/// `mlpipe.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Project {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub datasets: BTreeMap<String, DatasetEntry>,
    /// Feature files (one feature view each), relative to the project folder. Parsed by the
    /// `features` crate; see docs/features.md.
    #[serde(default)]
    pub features: Vec<PathBuf>,
    /// Training files (one model each), relative to the project folder. Parsed by the
    /// `train` crate; see docs/training.md.
    #[serde(default)]
    pub training: Vec<PathBuf>,
}

/// One dataset of a project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetEntry {
    /// Path of the contract file, relative to the project folder.
    pub contract: PathBuf,
    /// Files `mlpipe run` uploads to `raw/<dataset>/` (relative to the project folder).
    #[serde(default)]
    pub samples: Vec<PathBuf>,
    /// HTTP sources pulled into `raw/<dataset>/` by `mlpipe pull` or on a schedule.
    #[serde(default)]
    pub pull: Vec<PullSource>,
}

/// An HTTP(S) URL whose body (CSV or JSON Lines) lands in `raw/` like an upload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullSource {
    pub url: String,
    /// File extension given to the pulled object (`csv`, `jsonl`, `parquet`); default from
    /// the URL's path, else `csv`.
    #[serde(default)]
    pub extension: Option<String>,
    /// Schedule for deployments, as an EventBridge expression (`rate(1 hour)`, `cron(...)`).
    #[serde(default)]
    pub schedule: Option<String>,
}

/// A project read from disk: the parsed files plus their exact text (stored beside the data so
/// deployed functions read the same definitions).
#[derive(Debug, Clone)]
pub struct LoadedProject {
    pub root: PathBuf,
    pub project: Project,
    pub project_text: String,
    /// Dataset name -> (contract, file text).
    pub contracts: BTreeMap<String, (Contract, String)>,
    /// Feature files as (path, text), in the order the project lists them.
    pub feature_files: Vec<(PathBuf, String)>,
    /// Training files as (path, text), in the order the project lists them.
    pub training_files: Vec<(PathBuf, String)>,
}

impl LoadedProject {
    /// Reads `<dir>/mlpipe.toml` and every contract it names, checking all of them.
    pub fn load(dir: &Path) -> Result<LoadedProject> {
        let file = dir.join("mlpipe.toml");
        let project_text = read(&file)?;
        let file_name = file.display().to_string();
        let project: Project = toml::from_str(&project_text).map_err(|e| ContractError::Parse {
            file: file_name.clone(),
            message: e.to_string(),
        })?;
        if !is_identifier(&project.name) {
            return Err(ContractError::Invalid {
                file: file_name,
                field: "name".into(),
                message: format!(
                    "'{}' must be 1-64 characters of a-z, 0-9, '_' or '-'",
                    project.name
                ),
            });
        }
        let mut contracts = BTreeMap::new();
        for (name, entry) in &project.datasets {
            let path = dir.join(&entry.contract);
            let text = read(&path)?;
            let contract = Contract::from_toml(&text, &path.display().to_string())?;
            if &contract.dataset != name {
                return Err(ContractError::Invalid {
                    file: path.display().to_string(),
                    field: "dataset".into(),
                    message: format!(
                        "contract is for '{}' but mlpipe.toml lists it under '{name}'",
                        contract.dataset
                    ),
                });
            }
            for sample in &entry.samples {
                if !dir.join(sample).is_file() {
                    return Err(ContractError::Invalid {
                        file: file.display().to_string(),
                        field: format!("datasets.{name}.samples"),
                        message: format!("{} does not exist", dir.join(sample).display()),
                    });
                }
            }
            for (i, p) in entry.pull.iter().enumerate() {
                if !(p.url.starts_with("http://") || p.url.starts_with("https://")) {
                    return Err(ContractError::Invalid {
                        file: file.display().to_string(),
                        field: format!("datasets.{name}.pull[{i}].url"),
                        message: format!("'{}' is not an http(s) URL", p.url),
                    });
                }
            }
            contracts.insert(name.clone(), (contract, text));
        }
        let mut feature_files = Vec::new();
        for path in &project.features {
            let full = dir.join(path);
            feature_files.push((full.clone(), read(&full)?));
        }
        let mut training_files = Vec::new();
        for path in &project.training {
            let full = dir.join(path);
            training_files.push((full.clone(), read(&full)?));
        }
        Ok(LoadedProject {
            root: dir.to_path_buf(),
            project,
            project_text,
            contracts,
            feature_files,
            training_files,
        })
    }

    /// Content hash of the whole project definition (project file and every contract).
    pub fn hash(&self) -> String {
        let mut parts: Vec<Vec<u8>> = vec![serde_json::to_vec(&self.project).unwrap_or_default()];
        for (contract, _) in self.contracts.values() {
            parts.push(contract.hash().into_bytes());
        }
        for (_, text) in &self.feature_files {
            parts.push(text.clone().into_bytes());
        }
        let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
        short_hash(&refs)
    }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| ContractError::Io {
        file: path.display().to_string(),
        source,
    })
}
