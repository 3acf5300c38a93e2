//! Where each kind of object lives. Every key the pipeline reads or writes is built here, so
//! the layout documented in `docs/storage.md` has one source.
//!
//! Zones are prefixes of one store locally and may be separate buckets on AWS; keys never
//! start with `/` and dataset names are validated identifiers, so keys need no escaping.

/// Raw uploads: `raw/<dataset>/<file>`. Never modified or deleted by the pipeline.
pub const RAW: &str = "raw/";
pub const CURATED: &str = "curated/";
pub const QUARANTINE: &str = "quarantine/";
pub const SNAPSHOTS: &str = "snapshots/";
pub const DEFINITIONS: &str = "definitions/";
pub const PIPELINE_RUNS: &str = "pipeline-runs/";
pub const FEATURES: &str = "features/";

/// Name of the commit marker written last in a version folder.
pub const MANIFEST: &str = "_manifest.json";

pub fn raw(dataset: &str, file: &str) -> String {
    format!("{RAW}{dataset}/{file}")
}

/// The dataset a `raw/<dataset>/...` key belongs to.
pub fn dataset_of_raw(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(RAW)?;
    let (dataset, file) = rest.split_once('/')?;
    (!dataset.is_empty() && !file.is_empty()).then_some(dataset)
}

pub fn curated_prefix(dataset: &str) -> String {
    format!("{CURATED}{dataset}/")
}

pub fn curated_version(dataset: &str, version: &str) -> String {
    format!("{CURATED}{dataset}/v={version}/")
}

pub fn curated_part(dataset: &str, version: &str, part: usize) -> String {
    format!("{CURATED}{dataset}/v={version}/part-{part:05}.parquet")
}

pub fn curated_manifest(dataset: &str, version: &str) -> String {
    format!("{CURATED}{dataset}/v={version}/{MANIFEST}")
}

/// The version id in a `curated/<dataset>/v=<version>/_manifest.json` key.
pub fn version_of_manifest(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(CURATED)?;
    let (_, rest) = rest.split_once("/v=")?;
    let (version, file) = rest.split_once('/')?;
    (file == MANIFEST).then_some(version)
}

pub fn quarantine_prefix(dataset: &str) -> String {
    format!("{QUARANTINE}{dataset}/")
}

/// Rejected rows of one version (raw values as text, row number, reasons).
pub fn quarantine_rows(dataset: &str, version: &str) -> String {
    format!("{QUARANTINE}{dataset}/v={version}/rows.parquet")
}

/// One line per broken rule: row, column, rule, value, message.
pub fn quarantine_reasons(dataset: &str, version: &str) -> String {
    format!("{QUARANTINE}{dataset}/v={version}/reasons.jsonl")
}

/// The report for a file that could not be read at all, keyed by the source's content id.
pub fn quarantine_file_error(dataset: &str, source_id: &str) -> String {
    format!("{QUARANTINE}{dataset}/_errors/{source_id}.json")
}

pub fn snapshots_prefix(dataset: &str) -> String {
    format!("{SNAPSHOTS}{dataset}/")
}

pub fn snapshot(dataset: &str, hash: &str) -> String {
    format!("{SNAPSHOTS}{dataset}/{hash}.json")
}

pub fn contract(dataset: &str, hash: &str) -> String {
    format!("{DEFINITIONS}contracts/{dataset}/{hash}.toml")
}

/// Pointer to the dataset's current contract, moved by compare-and-swap.
pub fn contract_current(dataset: &str) -> String {
    format!("{DEFINITIONS}contracts/{dataset}/_current.json")
}

/// Append-only history of contract changes: one object per accepted change.
pub fn contract_history(dataset: &str, seq: u64, hash: &str) -> String {
    format!("{DEFINITIONS}contracts/{dataset}/_history/{seq:06}-{hash}.json")
}

pub fn project(name: &str, hash: &str) -> String {
    format!("{DEFINITIONS}projects/{name}/{hash}.toml")
}

/// A feature view's published definition (the TOML as written, and its parsed JSON form).
pub fn feature_definition(view: &str, hash: &str, ext: &str) -> String {
    format!("{DEFINITIONS}features/{view}/{hash}.{ext}")
}

/// Pointer to a view's current definition, moved by compare-and-swap.
pub fn feature_current(view: &str) -> String {
    format!("{DEFINITIONS}features/{view}/_current.json")
}

pub fn feature_definitions_prefix() -> String {
    format!("{DEFINITIONS}features/")
}

pub fn features_prefix(view: &str) -> String {
    format!("{FEATURES}{view}/")
}

/// A file of one feature-view version: `features/<view>/v=<version>/<file>`.
pub fn feature_file(view: &str, version: &str, file: &str) -> String {
    format!("{FEATURES}{view}/v={version}/{file}")
}

pub fn feature_manifest(view: &str, version: &str) -> String {
    feature_file(view, version, MANIFEST)
}

/// A reference profile, addressed by the sha256 of its bytes.
pub fn feature_profile(view: &str, sha256: &str) -> String {
    format!("{FEATURES}{view}/profiles/{sha256}.parquet")
}

/// The dataset a `snapshots/<dataset>/<hash>.json` key belongs to.
pub fn dataset_of_snapshot(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(SNAPSHOTS)?;
    let (dataset, file) = rest.split_once('/')?;
    (!dataset.is_empty() && file.ends_with(".json") && !file.contains('/')).then_some(dataset)
}

/// One record per handler invocation, for `mlpipe status`.
pub fn pipeline_run(stage: &str, dataset: &str, run_id: &str) -> String {
    format!("{PIPELINE_RUNS}{stage}/{dataset}/{run_id}.json")
}

pub fn pipeline_runs_prefix(stage: &str, dataset: &str) -> String {
    format!("{PIPELINE_RUNS}{stage}/{dataset}/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_keys_back() {
        assert_eq!(dataset_of_raw("raw/tx/a.csv"), Some("tx"));
        assert_eq!(dataset_of_raw("raw/tx/"), None);
        assert_eq!(dataset_of_raw("curated/tx/a"), None);
        let m = curated_manifest("tx", "abc");
        assert_eq!(version_of_manifest(&m), Some("abc"));
        assert_eq!(
            version_of_manifest("curated/tx/v=abc/part-00000.parquet"),
            None
        );
    }
}
