//! The ingest stage: a raw upload becomes a validated, versioned Parquet dataset version.
//!
//! On `raw/<dataset>/<file>` the handler reads CSV, JSON Lines or Parquet, casts every value
//! to the dataset's contract, checks every rule on every row, and writes
//! - valid rows as zstd Parquet to `curated/<dataset>/v=<version>/part-*.parquet`,
//! - rejected rows (as text, with every broken rule) to `quarantine/<dataset>/v=<version>/`,
//! - `_manifest.json` last, created only if absent: the commit marker,
//! - then a dataset snapshot `snapshots/<dataset>/<hash>.json` naming every committed version.
//!
//! The version id hashes the source bytes and the contract, so the same object delivered
//! twice (or by two events) yields one version, and the second delivery writes nothing new.
//! The raw object is never modified.
//!
//! Invariant: the library knows nothing of Lambda or of where events come from: [`Ingest`]
//! implements the stage interface (`stage::Handler`), and the one Lambda adapter, the local
//! stack and the queue worker run it through the one runner.

pub mod definitions;
pub mod pull;
pub mod read;
pub mod replay;
pub mod validate;

/// The polars build this stage uses, for callers that read curated Parquet with the same types.
pub use polars;

use std::collections::{BTreeMap, HashSet};
use std::io::Cursor;
use std::time::Instant;

use contracts::{ColumnType, Contract, NullFractionRule, OnFail, short_hash};
use events::{Event, ObjectCreated};
use polars::prelude::*;
use records::keys as zones;
use records::pipeline::{
    ContractRef, Lineage, MANIFEST_FORMAT, Manifest, PartRef, QuarantineRef, RowCounts,
    SNAPSHOT_FORMAT, SchemaField, Snapshot, SourceRef,
};
use storage::{StorageError, Store};

use crate::read::FileError;
use crate::validate::{Validator, Violation};

/// Ingest failures. [`IngestError::is_retryable`] tells a Lambda adapter whether to fail the
/// invocation (so the platform retries) or to report and move on.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("'{key}' is not under raw/<dataset>/")]
    NotRaw { key: String },
    #[error(
        "no contract published for dataset '{dataset}' (run `mlpipe push` or `mlpipe run` with the project)"
    )]
    NoContract { dataset: String },
    #[error(transparent)]
    Contract(#[from] contracts::ContractError),
    #[error("{key}: file rejected ({rule}): {error}")]
    FileRejected {
        key: String,
        rule: &'static str,
        error: FileError,
    },
    #[error("{key}: batch rejected: {reasons}")]
    BatchRejected { key: String, reasons: String },
    #[error("stored object '{key}' is corrupt: {message}")]
    Corrupt { key: String, message: String },
    #[error("'{key}' kept changing under concurrent writers; retry")]
    Contention { key: String },
    #[error("data error: {0}")]
    Data(#[from] PolarsError),
    #[error("pull {url}: {message}")]
    Pull { url: String, message: String },
}

impl stage::StageError for IngestError {
    /// Store and contention failures may pass on a retry; bad files and contracts will not.
    fn is_retryable(&self) -> bool {
        match self {
            IngestError::Storage(e) => e.is_retryable(),
            IngestError::Contention { .. } | IngestError::Pull { .. } => true,
            _ => false,
        }
    }

    fn is_fault(&self) -> bool {
        match self {
            IngestError::Storage(e) => e.is_fault(),
            other => stage::StageError::is_retryable(other),
        }
    }
}

/// What one delivery of an object-created event did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum IngestOutcome {
    /// A new version was committed.
    Committed {
        dataset: String,
        version: String,
        rows: RowCounts,
        snapshot: String,
    },
    /// This object (with this contract) was ingested before; nothing new was written.
    AlreadyDone {
        dataset: String,
        version: String,
        snapshot: String,
    },
}

pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn micros_rfc3339(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_default()
}

/// The ingest stage: `raw/<dataset>/<file>` -> a validated, versioned dataset version.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ingest;

impl stage::Handler for Ingest {
    const STAGE: stage::Stage = stage::Stage::Ingest;
    type Output = IngestOutcome;
    type Error = IngestError;

    fn subject(&self, event: &Event) -> String {
        event
            .key()
            .and_then(zones::dataset_of_raw)
            .unwrap_or("_unknown")
            .to_string()
    }

    async fn handle(&self, store: &Store, event: &Event) -> Result<IngestOutcome, IngestError> {
        match event {
            Event::Object(object) => ingest_object(store, &object.key).await,
            Event::Schedule { .. } => Err(IngestError::NotRaw {
                key: event.trigger(),
            }),
        }
    }
}

impl stage::Output for IngestOutcome {
    fn summary(&self) -> stage::Summary {
        match self {
            IngestOutcome::Committed { version, rows, .. } => stage::Summary {
                rows_in: Some(rows.read),
                rows_out: Some(rows.valid),
                rows_rejected: Some(rows.quarantined),
                ..stage::summary_of(true, Some(version.clone()))
            },
            IngestOutcome::AlreadyDone { version, .. } => {
                stage::summary_of(false, Some(version.clone()))
            }
        }
    }
}

/// Handles one object-created event for the ingest stage through the stage runner (run
/// record, telemetry), as every adapter does.
pub async fn handle(store: &Store, event: &ObjectCreated) -> Result<IngestOutcome, IngestError> {
    stage::run(&Ingest, store, &Event::Object(event.clone())).await
}

/// Ingests the raw object at `key`. Idempotent: see the crate docs.
pub async fn ingest_object(store: &Store, key: &str) -> Result<IngestOutcome, IngestError> {
    let dataset = zones::dataset_of_raw(key)
        .ok_or_else(|| IngestError::NotRaw {
            key: key.to_string(),
        })?
        .to_string();
    let (contract, pointer) = definitions::current_contract(store, &dataset).await?;
    let t0 = Instant::now();
    let contract_ref = ContractRef {
        hash: pointer.hash.clone(),
        version: pointer.version,
        lineage: pointer.lineage,
    };
    // The size limit is checked from the object's metadata before a byte is downloaded, and
    // the content hash is computed as the bytes arrive.
    let (object, sha) = match store
        .get_bounded(key, contract.limits.max_file_bytes)
        .await?
    {
        storage::Bounded::Read { object, sha256 } => (object, sha256),
        storage::Bounded::TooLarge { info } => {
            // Never read, so named by what identifies this upload instead of its content.
            let version = short_hash(&[
                b"ingest/too-large",
                key.as_bytes(),
                info.etag.as_deref().unwrap_or_default().as_bytes(),
                info.size.to_string().as_bytes(),
                contract.hash().as_bytes(),
            ]);
            let error = FileError::TooLarge {
                size: info.size,
                limit: contract.limits.max_file_bytes,
            };
            return Err(refuse_file(store, &dataset, &version, key, &contract_ref, error).await);
        }
    };
    let version = short_hash(&[b"ingest/v1", sha.as_bytes(), contract.hash().as_bytes()]);
    let manifest_key = zones::curated_manifest(&dataset, &version);
    if store.head(&manifest_key).await?.is_some() {
        let snapshot = write_snapshot(store, &dataset, pointer.lineage).await?;
        return Ok(IngestOutcome::AlreadyDone {
            dataset,
            version,
            snapshot,
        });
    }
    let read_ms = t0.elapsed().as_millis() as u64;
    let source = SourceRef {
        key: key.to_string(),
        etag: object.info.etag.clone(),
        size: object.info.size,
        sha256: sha,
        format: String::new(),
    };

    let t1 = Instant::now();
    let decoded = match read::decode(&object.bytes, key, &contract) {
        Ok(d) => d,
        Err(error) => {
            return Err(refuse_file(store, &dataset, &version, key, &contract_ref, error).await);
        }
    };
    let prior_keys =
        prior_primary_keys(store, &contract, &dataset, pointer.lineage, &version).await?;
    let read::Decoded {
        format,
        chunks,
        sources,
        dropped,
        missing_nullable,
    } = decoded;
    let mut validator =
        Validator::new(&contract, &sources, prior_keys).map_err(|m| IngestError::Corrupt {
            key: zones::contract(&dataset, &pointer.hash),
            message: m,
        })?;
    let format_name = format!("{format:?}").to_lowercase();

    let batch = match validate_and_encode(&mut validator, chunks, &contract)? {
        Ok(batch) => batch,
        Err(error) => {
            return Err(refuse_file(store, &dataset, &version, key, &contract_ref, error).await);
        }
    };
    drop(object);
    let validate_ms = t1.elapsed().as_millis() as u64;

    let failures = dataset_rule_failures(&contract, &validator);
    let t2 = Instant::now();
    let quarantine =
        write_quarantine(store, &dataset, &version, batch.rejected, &batch.violations).await?;
    if !failures.is_empty() && contract.rules.on_fail == OnFail::Reject {
        let reasons = failures.join("; ");
        write_error_report(
            store,
            &dataset,
            &version,
            key,
            &contract_ref,
            "dataset_rules",
            &reasons,
            quarantine.as_ref(),
        )
        .await?;
        return Err(IngestError::BatchRejected {
            key: key.to_string(),
            reasons,
        });
    }

    let (parse_ms, check_ms, encode_ms) = (batch.parse_ms, batch.check_ms, batch.encode_ms);
    let part_key = zones::curated_part(&dataset, &version, 0);
    let part_sha = contracts::sha256_hex(&batch.parquet);
    let part_bytes = batch.parquet.len() as u64;
    store.put(&part_key, batch.parquet).await?;
    let parts = vec![PartRef {
        key: part_key,
        rows: validator.valid_rows,
        bytes: part_bytes,
        sha256: part_sha.clone(),
    }];
    let write_ms = t2.elapsed().as_millis() as u64;

    let mut rule_counts = BTreeMap::new();
    for v in &batch.violations {
        *rule_counts.entry(v.rule.to_string()).or_insert(0u64) += 1;
    }
    let rows = RowCounts {
        read: batch.rows_read,
        valid: validator.valid_rows,
        quarantined: quarantine.as_ref().map_or(0, |q| q.rows),
    };
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        dataset: dataset.clone(),
        version: version.clone(),
        created_at: now_rfc3339(),
        source: SourceRef {
            format: format_name,
            ..source
        },
        contract: contract_ref,
        lineage: Lineage::Upload,
        content_hash: contracts::sha256_hex(part_sha.as_bytes()),
        parts,
        rows,
        schema: schema_of(&contract),
        dropped_columns: dropped,
        missing_columns: missing_nullable,
        rule_counts,
        findings: failures,
        quarantine,
        event_time_range: validator
            .event_time_min
            .zip(validator.event_time_max)
            .map(|(a, b)| (micros_rfc3339(a), micros_rfc3339(b))),
        timings_ms: BTreeMap::from([
            ("read".to_string(), read_ms),
            ("validate".to_string(), validate_ms),
            ("parse".to_string(), parse_ms),
            ("check".to_string(), check_ms),
            ("encode".to_string(), encode_ms),
            ("write".to_string(), write_ms),
            ("total".to_string(), t0.elapsed().as_millis() as u64),
        ]),
    };
    let created = commit(store, &manifest).await?;
    let snapshot = write_snapshot(store, &dataset, pointer.lineage).await?;
    if !created {
        // Another delivery of the same file (with the same contract) committed this version
        // while this one worked: the same bytes, so the same version; it is that one's.
        return Ok(IngestOutcome::AlreadyDone {
            dataset,
            version,
            snapshot,
        });
    }
    tracing::info!(
        dataset,
        version,
        valid = rows.valid,
        quarantined = rows.quarantined,
        "committed version"
    );
    Ok(IngestOutcome::Committed {
        dataset,
        version,
        rows,
        snapshot,
    })
}

/// Writes the manifest, the commit marker, if no other delivery committed it first. Either
/// way the version is committed exactly once; `true` when this call committed it (two
/// deliveries of one file racing must not both report a commit).
pub(crate) async fn commit(store: &Store, manifest: &Manifest) -> Result<bool, IngestError> {
    let key = zones::curated_manifest(&manifest.dataset, &manifest.version);
    let body = serde_json::to_vec_pretty(manifest).unwrap_or_default();
    Ok(matches!(
        store.put_if_absent(&key, body).await?,
        storage::Created::Created(_)
    ))
}

/// Validated output of one batch.
pub(crate) struct Batch {
    pub parquet: Vec<u8>,
    pub rejected: Option<DataFrame>,
    pub violations: Vec<Violation>,
    pub rows_read: u64,
    /// Milliseconds spent parsing, checking and encoding, for the manifest's timings.
    pub parse_ms: u64,
    pub check_ms: u64,
    pub encode_ms: u64,
}

/// Validates every chunk and streams the valid rows into one zstd Parquet file (a row group
/// per chunk), so only one chunk is held in text and typed form at a time. A chunk that
/// cannot be parsed refuses the file (the inner error).
pub(crate) fn validate_and_encode(
    validator: &mut Validator,
    chunks: impl Iterator<Item = Result<DataFrame, FileError>>,
    contract: &Contract,
) -> Result<Result<Batch, FileError>, IngestError> {
    let mut parquet = Vec::new();
    let mut rejected: Option<DataFrame> = None;
    let mut violations = Vec::new();
    let mut rows_read = 0;
    let mut first_row = 1;
    let (mut parse_ms, mut check_ms, mut encode_ms) = (0, 0, 0);
    {
        let schema = typed_schema(contract);
        let mut writer = ParquetWriter::new(&mut parquet)
            .with_compression(ParquetCompression::Zstd(None))
            .batched(&schema)?;
        let mut chunks = chunks;
        loop {
            let t = Instant::now();
            let Some(chunk) = chunks.next() else { break };
            parse_ms += t.elapsed().as_millis() as u64;
            let t = Instant::now();
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => return Ok(Err(e)),
            };
            // Values that cannot even be read as text (nested JSON, binary Parquet columns)
            // make the file unreadable for this contract.
            let outcome = match validator.check_chunk(&chunk, validate::RowNumbers::From(first_row))
            {
                Ok(o) => o,
                Err(e) => {
                    return Ok(Err(FileError::Malformed {
                        format: "input",
                        message: e.to_string(),
                    }));
                }
            };
            drop(chunk);
            check_ms += t.elapsed().as_millis() as u64;
            first_row += outcome.rows_read;
            rows_read += outcome.rows_read;
            if rows_read > contract.limits.max_rows {
                return Ok(Err(FileError::TooManyRows {
                    rows: rows_read,
                    limit: contract.limits.max_rows,
                    counted_all: false,
                }));
            }
            let t = Instant::now();
            if outcome.valid.height() > 0 {
                writer.write_batch(&outcome.valid)?;
            }
            encode_ms += t.elapsed().as_millis() as u64;
            if outcome.rejected.height() > 0 {
                match rejected.as_mut() {
                    None => rejected = Some(outcome.rejected),
                    Some(df) => {
                        df.vstack_mut_owned(outcome.rejected)?;
                    }
                }
            }
            violations.extend(outcome.violations);
        }
        let t = Instant::now();
        writer.finish()?;
        encode_ms += t.elapsed().as_millis() as u64;
    }
    Ok(Ok(Batch {
        parquet,
        rejected,
        violations,
        rows_read,
        parse_ms,
        check_ms,
        encode_ms,
    }))
}

/// The polars schema of a curated version.
pub fn typed_schema(contract: &Contract) -> Schema {
    contract
        .columns
        .iter()
        .map(|c| {
            let dtype = match c.ty {
                ColumnType::Integer => DataType::Int64,
                ColumnType::Float => DataType::Float64,
                ColumnType::Boolean => DataType::Boolean,
                ColumnType::String | ColumnType::Categorical => DataType::String,
                ColumnType::Timestamp => {
                    DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
                }
            };
            Field::new(c.name.as_str().into(), dtype)
        })
        .collect()
}

pub(crate) fn schema_of(contract: &Contract) -> Vec<SchemaField> {
    contract
        .columns
        .iter()
        .map(|c| SchemaField {
            name: c.name.clone(),
            ty: c.ty.name().to_string(),
            nullable: c.nullable,
        })
        .collect()
}

/// Checks dataset-level rules over the admitted rows; failures then follow `on_fail`.
fn dataset_rule_failures(contract: &Contract, validator: &Validator) -> Vec<String> {
    let rules = &contract.rules;
    let mut failures = Vec::new();
    let rows = validator.valid_rows;
    if rows < rules.min_rows {
        failures.push(if rows == 0 {
            format!(
                "min_rows: no valid data rows (at least {} required)",
                rules.min_rows
            )
        } else {
            format!(
                "min_rows: {rows} valid rows; at least {} required",
                rules.min_rows
            )
        });
    }
    if let Some(rule) = &rules.max_null_fraction
        && rows > 0
    {
        for (name, nulls) in validator.null_counts() {
            let limit = match rule {
                NullFractionRule::All(v) => Some(*v),
                NullFractionRule::PerColumn(map) => map.get(&name).copied(),
            };
            let fraction = nulls as f64 / rows as f64;
            if let Some(limit) = limit
                && fraction > limit
            {
                failures.push(format!(
                    "max_null_fraction: column '{name}' is {:.1}% null; at most {:.1}% allowed",
                    fraction * 100.0,
                    limit * 100.0
                ));
            }
        }
    }
    if let (Some(freshness), Some(newest)) = (&rules.freshness, validator.event_time_max)
        && let Ok(limit) = contracts::parse_duration(freshness)
    {
        let age = chrono::Utc::now().timestamp_micros() - newest;
        if age > limit * 1_000_000 {
            failures.push(format!(
                "freshness: newest event is {} old; at most {freshness} allowed",
                human_age(age / 1_000_000)
            ));
        }
    }
    failures
}

fn human_age(secs: i64) -> String {
    match secs {
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// Primary-key values already admitted in this lineage, so a re-uploaded row is not admitted
/// twice. Reads only the key columns of earlier versions.
pub(crate) async fn prior_primary_keys(
    store: &Store,
    contract: &Contract,
    dataset: &str,
    lineage: u32,
    this_version: &str,
) -> Result<HashSet<validate::KeyHash>, IngestError> {
    let mut keys = HashSet::new();
    if contract.primary_key.is_empty() || !contract.rules.unique_primary_key {
        return Ok(keys);
    }
    let types: Vec<ColumnType> = contract
        .primary_key
        .iter()
        .filter_map(|k| contract.column(k).map(|c| c.ty))
        .collect();
    for manifest in committed_manifests(store, dataset).await? {
        // A concurrent delivery of the same object may have committed this very version
        // meanwhile: its rows are not "earlier" rows.
        if manifest.contract.lineage != lineage || manifest.version == this_version {
            continue;
        }
        for part in &manifest.parts {
            let bytes = store.get(&part.key).await?.bytes;
            let df = ParquetReader::new(Cursor::new(bytes.as_ref()))
                .with_columns(Some(contract.primary_key.clone()))
                .finish()?;
            let parts: Vec<Vec<Option<validate::KeyHash>>> = df
                .columns()
                .iter()
                .zip(&types)
                .map(|(c, ty)| validate::hash_typed_column(c, *ty))
                .collect::<PolarsResult<_>>()?;
            keys.extend(
                validate::row_keys(&parts, df.height())
                    .into_iter()
                    .flatten(),
            );
        }
    }
    Ok(keys)
}

/// Every committed version's manifest, sorted by version id.
pub async fn committed_manifests(
    store: &Store,
    dataset: &str,
) -> Result<Vec<Manifest>, IngestError> {
    let mut out = Vec::new();
    for info in store.list(&zones::curated_prefix(dataset)).await? {
        if zones::version_of_manifest(&info.key).is_none() {
            continue;
        }
        let obj = store.get(&info.key).await?;
        let manifest: Manifest =
            serde_json::from_slice(&obj.bytes).map_err(|e| IngestError::Corrupt {
                key: info.key.clone(),
                message: e.to_string(),
            })?;
        out.push(manifest);
    }
    out.sort_by(|a, b| a.version.cmp(&b.version));
    Ok(out)
}

/// Writes the dataset snapshot for the current lineage (all committed versions), create-if-
/// absent. Every ingest lists after committing its own manifest, so the last one to commit
/// always produces a snapshot that includes every version.
pub(crate) async fn write_snapshot(
    store: &Store,
    dataset: &str,
    lineage: u32,
) -> Result<String, IngestError> {
    let versions: Vec<String> = committed_manifests(store, dataset)
        .await?
        .into_iter()
        .filter(|m| m.contract.lineage == lineage)
        .map(|m| m.version)
        .collect();
    let joined = versions.join("\n");
    let hash = short_hash(&[b"snapshot/v1", dataset.as_bytes(), joined.as_bytes()]);
    let snapshot = Snapshot {
        format: SNAPSHOT_FORMAT,
        dataset: dataset.to_string(),
        hash: hash.clone(),
        versions,
        contract_lineage: lineage,
        created_at: now_rfc3339(),
    };
    store
        .put_if_absent(
            &zones::snapshot(dataset, &hash),
            serde_json::to_vec_pretty(&snapshot).unwrap_or_default(),
        )
        .await?;
    Ok(hash)
}

/// Writes rejected rows (Parquet, every source column as text) and their reasons (JSON Lines).
async fn write_quarantine(
    store: &Store,
    dataset: &str,
    version: &str,
    rejected: Option<DataFrame>,
    violations: &[Violation],
) -> Result<Option<QuarantineRef>, IngestError> {
    let Some(mut df) = rejected else {
        return Ok(None);
    };
    let rows_key = zones::quarantine_rows(dataset, version);
    let reasons_key = zones::quarantine_reasons(dataset, version);
    let mut buf = Vec::new();
    ParquetWriter::new(&mut buf)
        .with_compression(ParquetCompression::Zstd(None))
        .finish(&mut df)?;
    let mut lines = Vec::with_capacity(violations.len() * 96);
    for v in violations {
        serde_json::to_writer(&mut lines, v).map_err(|e| IngestError::Corrupt {
            key: reasons_key.clone(),
            message: e.to_string(),
        })?;
        lines.push(b'\n');
    }
    store.put(&rows_key, buf).await?;
    store.put(&reasons_key, lines).await?;
    Ok(Some(QuarantineRef {
        rows_key,
        reasons_key,
        rows: df.height() as u64,
    }))
}

/// Reports a file refused whole and returns the error to give the caller (the storage error
/// instead, when even the report cannot be written, so the delivery is retried).
async fn refuse_file(
    store: &Store,
    dataset: &str,
    version: &str,
    key: &str,
    contract: &ContractRef,
    error: FileError,
) -> IngestError {
    let rule = error.rule();
    if let Err(e) = write_error_report(
        store,
        dataset,
        version,
        key,
        contract,
        rule,
        &error.to_string(),
        None,
    )
    .await
    {
        return e;
    }
    IngestError::FileRejected {
        key: key.to_string(),
        rule,
        error,
    }
}

/// Writes the report for a file or batch that was refused whole.
#[allow(clippy::too_many_arguments)]
async fn write_error_report(
    store: &Store,
    dataset: &str,
    version: &str,
    key: &str,
    contract: &ContractRef,
    rule: &str,
    message: &str,
    quarantine: Option<&QuarantineRef>,
) -> Result<(), IngestError> {
    let report = serde_json::json!({
        "dataset": dataset,
        "source": key,
        "attempted_version": version,
        "contract": contract,
        "rule": rule,
        "error": message,
        "quarantine": quarantine,
        "reported_at": now_rfc3339(),
        "note": "the raw object is kept unchanged; fix the file or the contract and upload again or run `mlpipe quarantine replay`",
    });
    store
        .put(
            &zones::quarantine_file_error(dataset, version),
            serde_json::to_vec_pretty(&report).unwrap_or_default(),
        )
        .await?;
    Ok(())
}
