//! Contracts stored beside the data: publishing a new version (with the evolution rules) and
//! loading the current one. Deployed functions read contracts only from here.

use contracts::{ChangeKind, Contract, compare};
use records::keys as zones;
use records::pipeline::ContractPointer;
use storage::{Created, Store, Swapped};

use crate::{IngestError, now_rfc3339};

/// What publishing a contract did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// Same content as the current contract: nothing written.
    Unchanged(ContractPointer),
    /// A new current contract.
    Changed(ContractPointer),
}

impl Published {
    pub fn pointer(&self) -> &ContractPointer {
        match self {
            Published::Unchanged(p) | Published::Changed(p) => p,
        }
    }
}

/// Loads the dataset's current contract pointer, if any.
pub async fn current_pointer(
    store: &Store,
    dataset: &str,
) -> Result<Option<(ContractPointer, storage::ObjectInfo)>, IngestError> {
    let Some(obj) = store.get_opt(&zones::contract_current(dataset)).await? else {
        return Ok(None);
    };
    let pointer: ContractPointer =
        serde_json::from_slice(&obj.bytes).map_err(|e| IngestError::Corrupt {
            key: obj.info.key.clone(),
            message: e.to_string(),
        })?;
    Ok(Some((pointer, obj.info)))
}

/// Loads the contract with the given hash.
pub async fn load_contract(
    store: &Store,
    dataset: &str,
    hash: &str,
) -> Result<Contract, IngestError> {
    let key = zones::contract(dataset, hash);
    let obj = store.get(&key).await?;
    let text = String::from_utf8_lossy(&obj.bytes);
    Contract::from_toml(&text, &key).map_err(|e| IngestError::Corrupt {
        key,
        message: e.to_string(),
    })
}

/// Loads the dataset's current contract and its pointer.
pub async fn current_contract(
    store: &Store,
    dataset: &str,
) -> Result<(Contract, ContractPointer), IngestError> {
    let (pointer, _) =
        current_pointer(store, dataset)
            .await?
            .ok_or_else(|| IngestError::NoContract {
                dataset: dataset.to_string(),
            })?;
    let contract = load_contract(store, dataset, &pointer.hash).await?;
    Ok((contract, pointer))
}

/// Publishes `contract` (whose file text is `text`) as the dataset's current contract.
///
/// Compatible and tightened changes are accepted and recorded; breaking changes are refused
/// unless the contract sets `new_lineage = true`, which starts lineage N+1. The pointer moves
/// by compare-and-swap, so two publishers cannot both win from the same starting point; the
/// history entry is written create-if-absent before the pointer moves.
pub async fn publish_contract(
    store: &Store,
    contract: &Contract,
    text: &str,
) -> Result<Published, IngestError> {
    let dataset = &contract.dataset;
    let hash = contract.hash();
    // Content-addressed: writing the same contract twice is a no-op.
    store
        .put_if_absent(&zones::contract(dataset, &hash), text.to_string())
        .await?;
    for _attempt in 0..8 {
        let current = current_pointer(store, dataset).await?;
        let (pointer, expected) = match &current {
            None => (
                ContractPointer {
                    dataset: dataset.clone(),
                    hash: hash.clone(),
                    version: contract.version,
                    lineage: 1,
                    seq: 1,
                    updated_at: now_rfc3339(),
                    change: "initial".into(),
                    changes: Vec::new(),
                },
                None,
            ),
            Some((old, _)) if old.hash == hash => return Ok(Published::Unchanged(old.clone())),
            Some((old, info)) => {
                let previous = load_contract(store, dataset, &old.hash).await?;
                let verdict = compare(&previous, contract);
                let (lineage, change) = if verdict.is_breaking() {
                    if !contract.new_lineage {
                        return Err(IngestError::Contract(contracts::ContractError::Breaking {
                            dataset: dataset.clone(),
                            changes: verdict.describe(ChangeKind::Breaking),
                        }));
                    }
                    (old.lineage + 1, "new-lineage")
                } else if verdict.worst() == Some(ChangeKind::Tightened) {
                    (old.lineage, "tightened")
                } else {
                    (old.lineage, "compatible")
                };
                (
                    ContractPointer {
                        dataset: dataset.clone(),
                        hash: hash.clone(),
                        version: contract.version,
                        lineage,
                        seq: old.seq + 1,
                        updated_at: now_rfc3339(),
                        change: change.into(),
                        changes: verdict
                            .changes
                            .iter()
                            .map(|c| format!("{:?}: {}", c.kind, c.what).to_lowercase())
                            .collect(),
                    },
                    Some(info.clone()),
                )
            }
        };
        let body = serde_json::to_vec_pretty(&pointer).unwrap_or_default();
        match store
            .put_if_absent(
                &zones::contract_history(dataset, pointer.seq, &hash),
                body.clone(),
            )
            .await?
        {
            Created::Created(_) | Created::AlreadyExists => {}
        }
        match store
            .compare_and_swap(&zones::contract_current(dataset), expected.as_ref(), body)
            .await?
        {
            Swapped::Swapped(_) => return Ok(Published::Changed(pointer)),
            Swapped::Conflict => continue,
        }
    }
    Err(IngestError::Contention {
        key: zones::contract_current(dataset),
    })
}
