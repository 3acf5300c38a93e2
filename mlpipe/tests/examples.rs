//! The shipped example projects besides the fraud sample, end to end as a user runs them:
//! `examples/wine` (multi-class, plain tabular, small enough for cross-validated selection)
//! and `examples/energy` (regression with an entity and an event time: window and
//! latest-value features, the online store, `/v1` lookups by building). Each goes through
//! ingest, features, training, the holdout drift check (`mlpipe run`), then serving over
//! `/v1` and the Open Inference Protocol, held to tract on the registered `model.onnx`.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

mod common;

use common::ROOT;

/// `mlpipe run --project examples/<name> --json` into a fresh store: the store and summary.
fn run_example(dir: &Path, name: &str) -> (PathBuf, Value) {
    let store = dir.join(format!("store-{name}"));
    let out = Command::new(env!("CARGO_BIN_EXE_mlpipe"))
        .args(["run", "--json", "--project"])
        .arg(Path::new(ROOT).join("examples").join(name))
        .arg("--store")
        .arg(&store)
        .current_dir(ROOT)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["ok"], true, "{name}: {summary}");
    (store, summary)
}

/// The summary's one training outcome: trained and promoted; its run record.
fn trained(store: &Path, summary: &Value, model: &str) -> (Value, Value) {
    let training = summary["training"].as_array().unwrap();
    let t = training
        .iter()
        .find(|t| t["model"] == model)
        .unwrap_or_else(|| panic!("no training of {model}: {summary}"));
    assert_eq!(t["outcome"], "trained", "{t}");
    assert_eq!(t["promoted"], true, "{t}");
    let run = t["run"].as_str().unwrap();
    let record: Value =
        serde_json::from_slice(&std::fs::read(store.join(format!("runs/{run}/run.json"))).unwrap())
            .unwrap();
    assert_eq!(record["status"], "finished", "{record}");
    (t.clone(), record)
}

/// The champion's bundle and its `model.onnx`.
fn champion(store: &Path, model: &str) -> (Value, Vec<u8>) {
    let alias: Value = serde_json::from_slice(
        &std::fs::read(store.join(format!("models/{model}/aliases/champion.json"))).unwrap(),
    )
    .unwrap();
    let version = alias["version"].as_u64().unwrap();
    let bundle: Value = serde_json::from_slice(
        &std::fs::read(store.join(format!("models/{model}/{version}/bundle.json"))).unwrap(),
    )
    .unwrap();
    let onnx = std::fs::read(store.join(bundle["model_key"].as_str().unwrap())).unwrap();
    (bundle, onnx)
}

fn output<'a>(v: &'a Value, name: &str) -> &'a Vec<Value> {
    v["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == name)
        .unwrap_or_else(|| panic!("no output {name}: {v}"))["data"]
        .as_array()
        .unwrap()
}

fn floats(v: &[Value]) -> Vec<f64> {
    v.iter().map(|x| x.as_f64().unwrap()).collect()
}

/// The holdout drift check ran on the champion's untouched test rows.
fn drift_checked(summary: &Value, model: &str) {
    let drift = summary["drift"].as_array().unwrap();
    let d = drift
        .iter()
        .find(|d| d["model"] == model)
        .unwrap_or_else(|| panic!("no holdout drift check of {model}: {summary}"));
    assert!(d["rows"].as_u64().unwrap() > 0, "{d}");
    assert!(d["features_tested"].as_u64().unwrap() > 0, "{d}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_multiclass_example_runs_end_to_end_with_cross_validated_selection() {
    let dir = tempfile::tempdir().unwrap();
    let (store, summary) = run_example(dir.path(), "wine");
    let (outcome, record) = trained(&store, &summary, "wine");
    assert_eq!(record["task"], "multiclass-classification", "{record}");
    // 178 wines: 142 train + validation rows, judged by stratified 5-fold cross-validation.
    assert_eq!(
        record["selection"]["method"], "cross-validation",
        "{record}"
    );
    assert_eq!(record["selection"]["folds"], 5);
    assert_eq!(record["selection"]["stratified"], true);
    assert!(outcome["value"].as_f64().is_some(), "{outcome}");
    drift_checked(&summary, "wine");

    let (bundle, onnx) = champion(&store, "wine");
    let csv = std::fs::read_to_string(Path::new(ROOT).join("examples/wine/data/wine.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let rows: Vec<Vec<&str>> = lines.take(8).map(|l| l.split(',').collect()).collect();
    let names = common::input_names(&bundle);
    assert_eq!(names.len(), 13, "{bundle}");
    // /v1: raw records (the wine's own measurements).
    let records: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut o = serde_json::Map::new();
            for (h, v) in header.iter().zip(r) {
                if *h != "wine_id" && *h != "cultivar" {
                    o.insert(h.to_string(), json!(v.parse::<f64>().unwrap()));
                }
            }
            Value::Object(o)
        })
        .collect();
    let (_server, url) = common::native_server(&store);
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{url}/v1/models/wine/predict"))
        .json(&json!({ "records": records }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v1: Value = r.json().await.unwrap();
    let classes: Vec<String> = bundle["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(classes, ["cultivar_1", "cultivar_2", "cultivar_3"]);
    // The Open Inference Protocol with the same rows as feature vectors (the view's features
    // are the measurements as they are), and tract on model.onnx directly.
    let vectors: Vec<Vec<f32>> = records
        .iter()
        .map(|r| {
            names
                .iter()
                .map(|n| r[n].as_f64().unwrap() as f32)
                .collect()
        })
        .collect();
    let flat: Vec<f32> = vectors.iter().flatten().copied().collect();
    let direct = train::export::run_onnx(&onnx, &flat, vectors.len(), names.len()).unwrap();
    let r = http
        .post(format!("{url}/v2/models/wine/infer"))
        .json(
            &json!({ "inputs": [{ "name": "features", "datatype": "FP32",
            "shape": [vectors.len(), names.len()], "data": vectors }] }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v2: Value = r.json().await.unwrap();
    let probs = floats(output(&v2, "probabilities"));
    let labels = output(&v2, "label");
    let mut right = 0;
    for (i, p) in v1["predictions"].as_array().unwrap().iter().enumerate() {
        let row: Vec<f64> = classes
            .iter()
            .map(|c| p["probabilities"][c].as_f64().unwrap())
            .collect();
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-4, "{p}");
        for (k, x) in row.iter().enumerate() {
            assert!(
                (x - probs[i * 3 + k]).abs() < 1e-6,
                "row {i}: /v1 {p}, /v2 {v2}"
            );
            assert!(
                (x - f64::from(direct[i][k])).abs() < 1e-6,
                "row {i}: tract {:?}",
                direct[i]
            );
        }
        assert_eq!(p["label"], labels[i], "{p} vs {v2}");
        right += usize::from(p["label"] == rows[i][header.len() - 1]);
    }
    // The first rows are all cultivar 1 and easy: a working model gets most of them.
    assert!(right >= 6, "{right} of 8 right: {v1}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_regression_example_runs_end_to_end_with_window_and_latest_value_features() {
    let dir = tempfile::tempdir().unwrap();
    let (store, summary) = run_example(dir.path(), "energy");
    let (outcome, record) = trained(&store, &summary, "energy");
    assert_eq!(record["task"], "regression", "{record}");
    // 7,451 readings: above the cross-validation limit, judged on the validation split.
    assert_eq!(record["selection"]["method"], "holdout", "{record}");
    assert_eq!(outcome["metric"], "rmse", "{outcome}");
    let r2 = record["test_metrics"]["r2"].as_f64().unwrap();
    assert!(
        r2 > 0.7,
        "the load is mostly explained by size, hour and weather: r2 {r2}"
    );
    drift_checked(&summary, "energy");
    let view = summary["feature_views"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["view"] == "building_load")
        .unwrap();
    assert_eq!(view["entities"], 8, "{view}");

    let (bundle, onnx) = champion(&store, "energy");
    let names = common::input_names(&bundle);
    assert!(names.contains(&"kwh_last".to_string()), "{names:?}");
    let (_server, url) = common::native_server(&store);
    let http = reqwest::Client::new();
    // /v1: a reading after the last materialized one, for a known and an unknown building.
    let at = "2026-02-10T01:00:00Z";
    let r = http
        .post(format!("{url}/v1/models/energy/predict"))
        .json(&json!({ "records": [
            { "building_id": "b03", "timestamp": at, "temperature_c": 4.5, "occupancy": 0.1 },
            { "building_id": "b99", "timestamp": at, "temperature_c": 4.5, "occupancy": 0.1 },
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v1: Value = r.json().await.unwrap();
    let p = v1["predictions"].as_array().unwrap();
    assert_eq!(p[0]["unknown_entity"], false, "{v1}");
    assert_eq!(p[1]["unknown_entity"], true, "{v1}");
    let known = p[0]["value"].as_f64().unwrap();
    assert!(known.is_finite() && known > 0.0, "{v1}");
    // The Open Inference Protocol: feature vectors in the bundle's order, held to tract.
    let vectors: Vec<Vec<f32>> = (0..4)
        .map(|i| {
            names
                .iter()
                .enumerate()
                .map(|(j, _)| ((i * 5 + j * 3) % 13) as f32 * 2.5)
                .collect()
        })
        .collect();
    let flat: Vec<f32> = vectors.iter().flatten().copied().collect();
    let direct = train::export::run_onnx(&onnx, &flat, vectors.len(), names.len()).unwrap();
    let r = http
        .post(format!("{url}/v2/models/energy/infer"))
        .json(
            &json!({ "inputs": [{ "name": "features", "datatype": "FP32",
            "shape": [vectors.len(), names.len()], "data": vectors }] }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v2: Value = r.json().await.unwrap();
    let values = floats(output(&v2, "value"));
    for (i, v) in values.iter().enumerate() {
        let want = f64::from(direct[i][0]);
        assert!(
            (v - want).abs() <= 1e-5 * want.abs().max(1.0),
            "row {i}: {v} vs {want}"
        );
    }
}
