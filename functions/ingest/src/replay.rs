//! Quarantine replay: after a contract is fixed, rows it rejected earlier are checked again
//! and the ones that now pass become a new version.
//!
//! A replay version's id hashes the quarantined version and the current contract, and its
//! manifest lists the source rows it admitted; rows admitted by any earlier replay of the same
//! quarantine are skipped, so a row is never admitted twice.

use std::collections::HashSet;
use std::io::Cursor;
use std::time::Instant;

use contracts::short_hash;
use polars::prelude::*;
use records::keys as zones;
use records::pipeline::{ContractRef, Lineage, Manifest, PartRef, RowCounts};
use storage::Store;

use crate::validate::{RowNumbers, Validator};
use crate::{IngestError, commit, committed_manifests, definitions, now_rfc3339, write_snapshot};

/// What replaying one quarantined version did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReplayOutcome {
    pub replay_of: String,
    /// The new version, when rows were admitted.
    pub version: Option<String>,
    pub admitted: u64,
    pub still_rejected: u64,
    pub skipped_already_admitted: u64,
}

/// Replays every quarantined version of `dataset` under its current contract.
pub async fn replay(store: &Store, dataset: &str) -> Result<Vec<ReplayOutcome>, IngestError> {
    let (contract, pointer) = definitions::current_contract(store, dataset).await?;
    let manifests = committed_manifests(store, dataset).await?;
    let mut outcomes = Vec::new();
    let quarantined: Vec<String> = store
        .list(&zones::quarantine_prefix(dataset))
        .await?
        .into_iter()
        .filter(|i| i.key.ends_with("/rows.parquet"))
        .map(|i| i.key)
        .collect();
    for rows_key in quarantined {
        let Some(original) = rows_key
            .strip_prefix(&zones::quarantine_prefix(dataset))
            .and_then(|r| r.strip_prefix("v="))
            .and_then(|r| r.split('/').next())
            .map(str::to_string)
        else {
            continue;
        };
        let (original_source, original_contract) =
            original_origin(store, dataset, &original, &manifests).await?;
        if original_contract == pointer.hash {
            // Same contract: the rows would fail the same way.
            continue;
        }
        let version = short_hash(&[b"replay/v1", original.as_bytes(), pointer.hash.as_bytes()]);
        let already: HashSet<u64> = manifests
            .iter()
            .filter_map(|m| match &m.lineage {
                Lineage::Replay {
                    replay_of,
                    admitted_rows,
                    ..
                } if *replay_of == original => Some(admitted_rows.iter().copied()),
                _ => None,
            })
            .flatten()
            .collect();
        if manifests.iter().any(|m| m.version == version) {
            continue;
        }
        let started = Instant::now();
        let bytes = store.get(&rows_key).await?.bytes;
        let df = ParquetReader::new(Cursor::new(bytes.as_ref())).finish()?;
        let rows: Vec<u64> = df.column("__row")?.u64()?.into_no_null_iter().collect();
        let keep = BooleanChunked::from_iter_values(
            PlSmallStr::EMPTY,
            rows.iter().map(|r| !already.contains(r)),
        );
        let skipped = rows.iter().filter(|r| already.contains(r)).count() as u64;
        let mut df = df.filter(&keep)?;
        let rows: Vec<u64> = df.column("__row")?.u64()?.into_no_null_iter().collect();
        df.drop_in_place("__row")?;
        df.drop_in_place("__reasons")?;
        let header: Vec<String> = df
            .get_column_names()
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (sources, _, _) = crate::read::map_header(&header, &contract, &[]).map_err(|e| {
            IngestError::FileRejected {
                key: rows_key.clone(),
                rule: e.rule(),
                error: e,
            }
        })?;
        let prior =
            crate::prior_primary_keys(store, &contract, dataset, pointer.lineage, &version).await?;
        let mut validator =
            Validator::new(&contract, &sources, prior).map_err(|m| IngestError::Corrupt {
                key: rows_key.clone(),
                message: m,
            })?;
        let outcome = validator.check_chunk(&df, RowNumbers::Given(&rows))?;
        let rejected_rows: HashSet<u64> = outcome
            .rejected
            .column("__row")?
            .u64()?
            .into_no_null_iter()
            .collect();
        let admitted_rows: Vec<u64> = rows
            .iter()
            .copied()
            .filter(|r| !rejected_rows.contains(r))
            .collect();
        let mut result = ReplayOutcome {
            replay_of: original.clone(),
            version: None,
            admitted: admitted_rows.len() as u64,
            still_rejected: rejected_rows.len() as u64,
            skipped_already_admitted: skipped,
        };
        if admitted_rows.is_empty() {
            outcomes.push(result);
            continue;
        }
        let mut valid = outcome.valid;
        let mut parquet = Vec::new();
        ParquetWriter::new(&mut parquet)
            .with_compression(ParquetCompression::Zstd(None))
            .finish(&mut valid)?;
        let part_key = zones::curated_part(dataset, &version, 0);
        let sha = contracts::sha256_hex(&parquet);
        let part = PartRef {
            key: part_key.clone(),
            rows: valid.height() as u64,
            bytes: parquet.len() as u64,
            sha256: sha.clone(),
        };
        store.put(&part_key, parquet).await?;
        let manifest = Manifest {
            format: records::pipeline::MANIFEST_FORMAT,
            dataset: dataset.to_string(),
            version: version.clone(),
            created_at: now_rfc3339(),
            source: records::pipeline::SourceRef {
                key: rows_key.clone(),
                etag: None,
                size: bytes.len() as u64,
                sha256: contracts::sha256_hex(&bytes),
                format: "parquet".into(),
            },
            contract: ContractRef {
                hash: pointer.hash.clone(),
                version: pointer.version,
                lineage: pointer.lineage,
            },
            lineage: Lineage::Replay {
                replay_of: original.clone(),
                original_source,
                original_contract,
                admitted_rows,
            },
            content_hash: contracts::sha256_hex(sha.as_bytes()),
            parts: vec![part],
            rows: RowCounts {
                read: rows.len() as u64,
                valid: valid.height() as u64,
                quarantined: 0,
            },
            schema: crate::schema_of(&contract),
            dropped_columns: Vec::new(),
            missing_columns: Vec::new(),
            rule_counts: Default::default(),
            findings: Vec::new(),
            quarantine: None,
            event_time_range: None,
            timings_ms: [("total".to_string(), started.elapsed().as_millis() as u64)].into(),
        };
        commit(store, &manifest).await?;
        result.version = Some(version);
        outcomes.push(result);
    }
    if outcomes.iter().any(|o| o.version.is_some()) {
        write_snapshot(store, dataset, pointer.lineage).await?;
    }
    Ok(outcomes)
}

/// The raw object and contract a quarantined version came from: its manifest when the version
/// was committed, else the file error report of a batch refused whole.
async fn original_origin(
    store: &Store,
    dataset: &str,
    version: &str,
    manifests: &[Manifest],
) -> Result<(String, String), IngestError> {
    if let Some(m) = manifests.iter().find(|m| m.version == version) {
        return Ok((m.source.key.clone(), m.contract.hash.clone()));
    }
    let key = zones::quarantine_file_error(dataset, version);
    let obj = store.get(&key).await?;
    let report: serde_json::Value =
        serde_json::from_slice(&obj.bytes).map_err(|e| IngestError::Corrupt {
            key: key.clone(),
            message: e.to_string(),
        })?;
    let source = report["source"].as_str().unwrap_or_default().to_string();
    let contract = report["contract"]["hash"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    Ok((source, contract))
}
