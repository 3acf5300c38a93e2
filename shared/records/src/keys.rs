//! Where each kind of object lives. Every key the pipeline, the edge and the CLI read or
//! write is built here, so the layout documented in `docs/storage.md` has one source and the
//! routing table's read/write prefixes are these constants.
//!
//! Zones are prefixes of one store locally and may be separate buckets on AWS; keys never
//! start with `/` and dataset names are validated identifiers, so keys need no escaping
//! (request ids, which come from outside, are made safe by [`prediction_log`]).

/// Raw uploads: `raw/<dataset>/<file>`. Never modified or deleted by the pipeline.
pub const RAW: &str = "raw/";
pub const CURATED: &str = "curated/";
pub const QUARANTINE: &str = "quarantine/";
pub const SNAPSHOTS: &str = "snapshots/";
pub const DEFINITIONS: &str = "definitions/";
pub const PIPELINE_RUNS: &str = "pipeline-runs/";
pub const FEATURES: &str = "features/";
/// Model registry: versions, bundles, aliases and their history.
pub const MODELS: &str = "models/";
/// Training runs and their trials.
pub const RUNS: &str = "runs/";
/// Publication records of the publish stage.
pub const PUBLISHED: &str = "published/";
/// Drift reports, HTML pages and live performance per window.
pub const DRIFT: &str = "drift/";
/// Prediction logs the edge writes, per model.
pub const INFERENCE_LOGS: &str = "inference-logs/";
/// Delayed labels users upload, per model.
pub const LABELS: &str = "labels/";
/// Requests to the pipeline (retrain, erase).
pub const REQUESTS: &str = "requests/";
/// Retrain requests; the training stage listens here.
pub const RETRAIN_REQUESTS: &str = "requests/retrain/";
/// Erasure requests (a subject's rows to remove from every zone).
pub const ERASE_REQUESTS: &str = "requests/erase/";
/// API keys of the edge: one record per key, holding its SHA-256 only.
pub const API_KEYS: &str = "keys/";
/// The API keys as published to the edge (`records::access::KeySet`: hashes only), in the
/// edge's bucket beside the models, where the Worker and the Spin component read them.
pub const EDGE_KEYS: &str = "edge/keys.json";
/// Batch inference: inputs uploaded for scoring, and the scored outputs.
pub const BATCH_INPUT: &str = "batch-input/";
pub const BATCH_OUTPUT: &str = "batch-output/";
/// Deliveries that failed for good after their retries, kept for inspection and replay.
pub const DEAD_LETTERS: &str = "dead-letters/";
/// Online records as the edge reads them from an object store (the Spin component's
/// source): `online/<view>/<entity>`, in the edge's bucket rather than the pipeline's.
pub const EDGE_ONLINE: &str = "online/";
/// Published definitions of training (one TOML per model and hash, plus a pointer).
pub const TRAINING_DEFINITIONS: &str = "definitions/training/";

/// Every top-level prefix of the layout, for checks that a route or a grant names a real zone.
pub const PREFIXES: [&str; 19] = [
    RAW,
    CURATED,
    QUARANTINE,
    SNAPSHOTS,
    DEFINITIONS,
    PIPELINE_RUNS,
    FEATURES,
    MODELS,
    RUNS,
    PUBLISHED,
    DRIFT,
    INFERENCE_LOGS,
    LABELS,
    REQUESTS,
    API_KEYS,
    "edge/",
    BATCH_INPUT,
    BATCH_OUTPUT,
    DEAD_LETTERS,
];

/// A model version's bundle (the commit marker of a registered version).
pub const BUNDLE: &str = "bundle.json";
/// Beside a version: its test-split scores (JSON `{"format": 1, "scores": [..]}`), the
/// reference the drift stage tests the served scores against. Written after the bundle.
pub const REFERENCE_SCORES: &str = "reference_scores.json";

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

/// The (view, version) of a `features/<view>/v=<version>/_manifest.json` key.
pub fn feature_manifest_parts(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix(FEATURES)?;
    let (view, rest) = rest.split_once("/v=")?;
    let version = rest.strip_suffix("/_manifest.json")?;
    (!view.is_empty() && !view.contains('/') && !version.is_empty() && !version.contains('/'))
        .then_some((view, version))
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

/// The training queue's watcher (functions/batch-watch): each Batch job's latest state.
pub const BATCH_WATCH: &str = "pipeline-runs/batch-watch/";

/// The watcher's record of one Batch job (job ids are UUIDs: safe as one key segment).
pub fn batch_watch(job_id: &str) -> String {
    format!("{BATCH_WATCH}{job_id}.json")
}

pub fn model_prefix(model: &str) -> String {
    format!("{MODELS}{model}/")
}

pub fn version_key(model: &str, version: u64, file: &str) -> String {
    format!("{MODELS}{model}/{version}/{file}")
}

/// `models/<model>/features/<sha256>.<ext>`: what a model over several feature views reads
/// (its feature set, training table and reference profile), addressed by content so a
/// retried training run writes the same objects.
pub fn model_features_object(model: &str, sha256: &str, ext: &str) -> String {
    format!("{MODELS}{model}/features/{sha256}.{ext}")
}

pub fn alias_key(model: &str, alias: &str) -> String {
    format!("{MODELS}{model}/aliases/{alias}.json")
}

pub fn history_prefix(model: &str, alias: &str) -> String {
    format!("{MODELS}{model}/aliases/_history/{alias}/")
}

/// One move of an alias, by its sequence number.
pub fn alias_history_entry(model: &str, alias: &str, seq: u64) -> String {
    format!("{}{seq:08}.json", history_prefix(model, alias))
}

/// A model's traffic policy (canary share and shadow scoring of its challenger), beside its
/// aliases and copied to the edge under the same key.
pub fn traffic(model: &str) -> String {
    format!("{MODELS}{model}/traffic.json")
}

/// The model a `models/<model>/traffic.json` key belongs to.
pub fn traffic_model(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(MODELS)?;
    let model = rest.strip_suffix("/traffic.json")?;
    (!model.is_empty() && !model.contains('/')).then_some(model)
}

/// Publication record of a model's traffic policy, by its sequence number.
pub fn published_traffic(model: &str, seq: u64) -> String {
    format!("{PUBLISHED}models/{model}/traffic-{seq:08}.json")
}

/// Makes registration idempotent: the version that holds a model's content hash.
pub fn model_by_hash(model: &str, hash: &str) -> String {
    format!("{MODELS}{model}/_by_hash/{hash}.json")
}

/// The model a `models/<model>/aliases/champion.json` key belongs to.
pub fn champion_alias_model(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(MODELS)?;
    let model = rest.strip_suffix("/aliases/champion.json")?;
    (!model.is_empty() && !model.contains('/')).then_some(model)
}

/// A training run's record.
pub fn run_key(run: &str) -> String {
    format!("{RUNS}{run}/run.json")
}

pub fn trial_key(run: &str, trial: usize) -> String {
    format!("{RUNS}{run}/trials/{trial:04}.json")
}

pub fn trials_prefix(run: &str) -> String {
    format!("{RUNS}{run}/trials/")
}

/// Pointer to a model's current training definition, moved by compare-and-swap.
pub fn training_current(model: &str) -> String {
    format!("{TRAINING_DEFINITIONS}{model}/_current.json")
}

pub fn training_definition(model: &str, hash: &str) -> String {
    format!("{TRAINING_DEFINITIONS}{model}/{hash}.toml")
}

/// The record of publishing a model's champion (one per alias move, by its sequence number).
pub fn published_champion(model: &str, seq: u64) -> String {
    format!("{PUBLISHED}models/{model}/champion-{seq:08}.json")
}

/// The record of publishing a feature-view version's online records.
pub fn published_online(view: &str, version: &str) -> String {
    format!("{PUBLISHED}features/{view}/{version}.json")
}

/// Suffix of a key's last-use record beside its `keys/<id>.json`.
pub const LAST_USED_SUFFIX: &str = ".last-used";

/// `keys/<id>.last-used`: when a server last admitted the key ([`crate::access::KeyUse`]).
/// Not `.json`: key records are what the publish stage listens for, and a use is nothing to
/// publish.
pub fn api_key_last_used(id: &str) -> String {
    format!("{API_KEYS}{id}{LAST_USED_SUFFIX}")
}

/// The record of publishing a key set to the edge, by the set's content hash (keys are only
/// ever added or revoked, so a set's content never comes back after it changed).
pub fn published_keys(sha256: &str) -> String {
    format!("{PUBLISHED}keys/{sha256}.json")
}

/// A feature-view version's online records in one blob.
pub fn online_blob(view: &str, version: &str) -> String {
    feature_file(view, version, "online.bin")
}

pub fn drift_prefix(model: &str) -> String {
    format!("{DRIFT}{model}/")
}

/// One window's drift report: `drift/<model>/<run>/report.json`.
pub fn drift_report(model: &str, run: &str) -> String {
    format!("{DRIFT}{model}/{run}/report.json")
}

/// The HTML page beside a report.
pub fn drift_html(model: &str, run: &str) -> String {
    format!("{DRIFT}{model}/{run}/report.html")
}

/// A window's live performance from delayed labels.
pub fn drift_performance(model: &str, run: &str) -> String {
    format!("{DRIFT}{model}/{run}/performance.json")
}

/// The retrain request for a drift streak completed by window `run` (`w=<start>`): one
/// streak, one request, however often the check runs.
pub fn retrain_request(model: &str, run: &str) -> String {
    format!(
        "{RETRAIN_REQUESTS}drift-{model}-{}.json",
        run.trim_start_matches("w=")
    )
}

pub fn labels_prefix(model: &str) -> String {
    format!("{LABELS}{model}/")
}

pub fn inference_logs_prefix(model: &str) -> String {
    format!("{INFERENCE_LOGS}{model}/")
}

/// Where a request's prediction log goes, as the edge runtimes write it:
/// `inference-logs/<model>/date=YYYY-MM-DD/hour=HH/<at_us>-<nonce>.jsonl`. The name is the
/// server's (the time and a random number the runtime draws), never the client's request
/// id, which is inside every line: a client cannot choose the object its log is written
/// to, so it cannot overwrite another's (drift checks and label joins read them).
pub fn prediction_log_object(model: &str, at_us: i64, nonce: u64) -> String {
    prediction_log(model, at_us, &format!("{at_us}-{nonce:016x}"))
}

/// `inference-logs/<model>/date=YYYY-MM-DD/hour=HH/<name>.jsonl`, `name` reduced to
/// `[A-Za-z0-9_-]` and 128 characters. Runtimes use [`prediction_log_object`].
pub fn prediction_log(model: &str, at_us: i64, id: &str) -> String {
    let secs = at_us.div_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let hour = secs.rem_euclid(86_400) / 3600;
    let (y, m, d) = civil_from_days(days);
    let safe: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(128)
        .collect();
    format!("{INFERENCE_LOGS}{model}/date={y:04}-{m:02}-{d:02}/hour={hour:02}/{safe}.jsonl")
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's
/// algorithm): the edge has no date library.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A delivery that failed for good: `dead-letters/<stage>/<id>.json`.
pub fn dead_letter(stage: &str, id: &str) -> String {
    format!("{DEAD_LETTERS}{stage}/{id}.json")
}

/// Where redriven dead-letter records are archived, with the redelivery's outcome.
pub const REDRIVEN: &str = "dead-letters/_redriven/";

/// The archive key of dead-letter record `key` (`dead-letters/<stage>/<id>.json` ->
/// `dead-letters/_redriven/<stage>/<id>.json`).
pub fn redriven(key: &str) -> String {
    format!(
        "{REDRIVEN}{}",
        key.strip_prefix(DEAD_LETTERS).unwrap_or(key)
    )
}

/// An API key's record, by its public id.
pub fn api_key(id: &str) -> String {
    format!("{API_KEYS}{id}.json")
}

/// A batch-inference input's model and name: `batch-input/<model>/<input>` ->
/// (`<model>`, `<input>`); `<input>` may hold folders (`point-in-time/2026/a.csv`).
pub fn batch_input_parts(key: &str) -> Option<(&str, &str)> {
    let (model, input) = key.strip_prefix(BATCH_INPUT)?.split_once('/')?;
    (!model.is_empty() && !input.is_empty() && !input.ends_with('/')).then_some((model, input))
}

/// The folder of a batch-inference input's output: `batch-input/<model>/<input>` ->
/// `batch-output/<model>/<input>/`, which holds `predictions.parquet`, `errors.jsonl` (when a
/// row was refused) and `_manifest.json`, written last: the commit marker.
pub fn batch_output(input_key: &str) -> Option<String> {
    let (model, input) = batch_input_parts(input_key)?;
    Some(format!("{BATCH_OUTPUT}{model}/{input}/"))
}

/// The predictions of a batch-inference output folder.
pub const BATCH_PREDICTIONS: &str = "predictions.parquet";
/// The refused rows of a batch-inference output folder (JSON Lines).
pub const BATCH_ERRORS: &str = "errors.jsonl";
/// The commit marker of a batch-inference output folder.
pub const BATCH_MANIFEST: &str = "_manifest.json";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_inputs_name_their_model_and_output_folder() {
        assert_eq!(
            batch_input_parts("batch-input/fraud/2026/a.csv"),
            Some(("fraud", "2026/a.csv"))
        );
        assert_eq!(
            batch_output("batch-input/fraud/a.csv").as_deref(),
            Some("batch-output/fraud/a.csv/")
        );
        for bad in [
            "batch-input/fraud",
            "batch-input/fraud/",
            "batch-input//a.csv",
            "raw/x/a",
        ] {
            assert_eq!(batch_input_parts(bad), None, "{bad}");
        }
    }

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
        assert_eq!(
            feature_manifest_parts("features/card/v=abc/_manifest.json"),
            Some(("card", "abc"))
        );
        assert_eq!(
            feature_manifest_parts("features/card/profiles/_manifest.json"),
            None
        );
        assert_eq!(
            feature_manifest_parts("features/card/v=abc/x/_manifest.json"),
            None
        );
        assert_eq!(
            champion_alias_model("models/fraud/aliases/champion.json"),
            Some("fraud")
        );
        assert_eq!(
            champion_alias_model("models/fraud/aliases/challenger.json"),
            None
        );
        assert_eq!(
            batch_output("batch-input/m/a.parquet").as_deref(),
            Some("batch-output/m/a.parquet/")
        );
    }

    #[test]
    fn a_prediction_log_is_named_by_the_server() {
        assert_eq!(
            prediction_log_object("fraud", 1_795_757_400_000_000, 0xab),
            "inference-logs/fraud/date=2026-11-27/hour=05/1795757400000000-00000000000000ab.jsonl"
        );
    }

    #[test]
    fn prediction_logs_are_partitioned_by_utc_date_and_hour_with_safe_ids() {
        assert_eq!(
            // 2026-11-27T05:30:00Z
            prediction_log("fraud", 1_795_757_400_000_000, "a/b c"),
            "inference-logs/fraud/date=2026-11-27/hour=05/a_b_c.jsonl"
        );
        assert_eq!(
            prediction_log("m", 0, "x"),
            "inference-logs/m/date=1970-01-01/hour=00/x.jsonl"
        );
        assert_eq!(
            prediction_log("m", 951_782_400_000_000, "x"),
            "inference-logs/m/date=2000-02-29/hour=00/x.jsonl"
        );
        assert_eq!(
            retrain_request("fraud", "w=20261127T0500Z"),
            "requests/retrain/drift-fraud-20261127T0500Z.json"
        );
    }

    #[test]
    fn every_prefix_is_a_folder_and_listed_once() {
        let mut seen = std::collections::BTreeSet::new();
        for p in PREFIXES {
            assert!(p.ends_with('/') && !p.starts_with('/'), "{p}");
            assert!(seen.insert(p), "{p} listed twice");
        }
        for p in [
            RETRAIN_REQUESTS,
            ERASE_REQUESTS,
            TRAINING_DEFINITIONS,
            EDGE_KEYS,
        ] {
            assert!(
                PREFIXES.iter().any(|z| p.starts_with(z)),
                "{p} is in no zone"
            );
        }
    }
}
