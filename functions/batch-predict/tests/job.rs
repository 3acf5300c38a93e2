//! `batch-predict-job`, the batch stage's container binary, run as AWS Batch runs it: the
//! store and trigger key from the environment, the outcome on stdout, the exit status
//! telling Batch whether to retry (0 done, 1 rejected, 75 retryable).

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../edge/edge-embed/fixture")
}

/// Copies the fixture's registry objects (the sample champion) into a local store folder.
fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&path, &target);
        } else if path.extension().is_some_and(|e| e != "md") {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

fn job(store: &Path, key: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_batch-predict-job"))
        .env("MLPIPE_STORE", store)
        .env("MLPIPE_TRIGGER_KEY", key)
        .env_remove("MLPIPE_ONLINE_STORE")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .output()
        .unwrap()
}

fn outcome(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // JSON log lines first (as Batch's awslogs driver collects them), the outcome last.
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

#[test]
fn the_job_scores_an_input_once_and_exits_as_batch_expects() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    copy_tree(&fixture(), &store);
    let bundle: Value =
        serde_json::from_slice(&std::fs::read(store.join("models/fraud/1/bundle.json")).unwrap())
            .unwrap();
    let inputs: Vec<&str> = bundle["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    // The job reads the format the key's extension names (JSON Lines here).
    let mut text = String::new();
    for r in 0..300 {
        let mut row = serde_json::Map::new();
        row.insert("id".into(), Value::from(format!("r{r}")));
        for (i, name) in inputs.iter().enumerate() {
            row.insert(
                (*name).into(),
                Value::from(((r * 31 + i * 7) % 97) as f64 / 3.0),
            );
        }
        text.push_str(&Value::Object(row).to_string());
        text.push('\n');
    }
    let key = "batch-input/fraud/large.jsonl";
    std::fs::create_dir_all(store.join("batch-input/fraud")).unwrap();
    std::fs::write(store.join(key), text).unwrap();

    let first = outcome(&job(&store, key));
    assert_eq!(first["outcome"], "committed", "{first}");
    assert_eq!(first["scored"], 300, "{first}");
    assert_eq!(first["mode"], "feature-vectors", "{first}");
    let out = store.join("batch-output/fraud/large.jsonl");
    assert!(out.join("predictions.parquet").is_file());
    assert!(!out.join("errors.jsonl").exists());
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.join("_manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["input"], key);
    assert_eq!(manifest["version"], 1);
    // A run record, as every stage writes.
    assert!(store.join("pipeline-runs/batch-predict/fraud").is_dir());

    // Batch may run a job twice (a retried attempt): the second finds the manifest.
    let again = outcome(&job(&store, key));
    assert_eq!(again["outcome"], "already-done", "{again}");

    // Rejections exit 1 (Batch does not retry them): a missing input, an unknown model.
    let missing = job(&store, "batch-input/fraud/none.jsonl");
    assert_eq!(missing.status.code(), Some(1));
    let logs = String::from_utf8_lossy(&missing.stdout).into_owned()
        + &String::from_utf8_lossy(&missing.stderr);
    assert!(logs.contains("does not exist"), "{logs}");
    std::fs::create_dir_all(store.join("batch-input/other")).unwrap();
    std::fs::write(store.join("batch-input/other/a.jsonl"), "{\"id\": 1}\n").unwrap();
    let unknown = job(&store, "batch-input/other/a.jsonl");
    assert_eq!(unknown.status.code(), Some(1));
}
