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

/// A project whose model reads two feature views about two entities: the departure
/// airport's weather and the aircraft's recent use, both joined point-in-time onto one set
/// of label events (departures, which carry both keys).
fn two_view_project(dir: &Path) {
    const HOUR: i64 = 3600;
    let start = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .timestamp();
    let at = |s: i64| {
        chrono::DateTime::from_timestamp(s, 0)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let origins = ["EWR", "JFK", "LGA"];
    let tails = ["N101", "N202", "N303", "N404", "N505"];
    let mut weather = String::from("origin,time_hour,wind_speed\n");
    for h in 0..48i64 {
        for (o, origin) in origins.iter().enumerate() {
            if (h + o as i64) % 7 != 3 {
                let wind = ((h * 13 + o as i64 * 5) % 23) as f64 * 0.7;
                weather.push_str(&format!("{origin},{},{wind}\n", at(start + h * HOUR)));
            }
        }
    }
    let mut log = String::from("tailnum,logged_at,hours\n");
    for k in 0..160i64 {
        let hours = 0.5 + ((k * 7) % 11) as f64 * 0.4;
        log.push_str(&format!(
            "{},{},{hours}\n",
            tails[(k % 5) as usize],
            at(start + k * 1070)
        ));
    }
    let mut departures = String::from("origin,tailnum,sched_dep,distance,delayed\n");
    for k in 0..600i64 {
        let hour = 2 + (k * 44) / 600;
        let wind = ((hour * 13 + (k % 3) * 5) % 23) as f64 * 0.7;
        let busy = (k % 5) < 2;
        departures.push_str(&format!(
            "{},{},{},{},{}\n",
            origins[(k % 3) as usize],
            tails[((k * 3) % 5) as usize],
            at(start + hour * HOUR + (k % 7) * 300),
            200 + (k * 37) % 2400,
            (wind > 8.0 && busy) || k % 11 == 0,
        ));
    }
    let files = [
        (
            "mlpipe.toml",
            r#"name = "flights"
features = ["features/airport_weather.toml", "features/aircraft_activity.toml"]
training = ["training/delays.toml"]
[datasets.weather]
contract = "contracts/weather.toml"
samples = ["data/weather.csv"]
[datasets.aircraft_log]
contract = "contracts/aircraft_log.toml"
samples = ["data/aircraft_log.csv"]
[datasets.departures]
contract = "contracts/departures.toml"
samples = ["data/departures.csv"]
"#
            .to_string(),
        ),
        (
            "contracts/weather.toml",
            r#"dataset = "weather"
version = 1
format = "csv"
entity_key = "origin"
event_time = "time_hour"
[[columns]]
name = "origin"
type = "string"
nullable = false
[[columns]]
name = "time_hour"
type = "timestamp"
nullable = false
[[columns]]
name = "wind_speed"
type = "float"
"#
            .to_string(),
        ),
        (
            "contracts/aircraft_log.toml",
            r#"dataset = "aircraft_log"
version = 1
format = "csv"
entity_key = "tailnum"
event_time = "logged_at"
[[columns]]
name = "tailnum"
type = "string"
nullable = false
[[columns]]
name = "logged_at"
type = "timestamp"
nullable = false
[[columns]]
name = "hours"
type = "float"
"#
            .to_string(),
        ),
        (
            "contracts/departures.toml",
            r#"dataset = "departures"
version = 1
format = "csv"
event_time = "sched_dep"
[[columns]]
name = "origin"
type = "string"
nullable = false
[[columns]]
name = "tailnum"
type = "string"
nullable = false
[[columns]]
name = "sched_dep"
type = "timestamp"
nullable = false
[[columns]]
name = "distance"
type = "float"
[[columns]]
name = "delayed"
type = "boolean"
nullable = false
"#
            .to_string(),
        ),
        (
            "features/airport_weather.toml",
            r#"view = "airport_weather"
dataset = "weather"
ttl = "1d"
[labels]
dataset = "departures"
column = "delayed"
[[features]]
name = "wind_3h"
aggregate = "mean"
column = "wind_speed"
window = "3h"
[[features]]
name = "wind_last"
aggregate = "last"
column = "wind_speed"
[[features]]
name = "distance"
column = "distance"
log1p = true
"#
            .to_string(),
        ),
        (
            "features/aircraft_activity.toml",
            r#"view = "aircraft_activity"
dataset = "aircraft_log"
ttl = "2d"
[labels]
dataset = "departures"
column = "delayed"
[[features]]
name = "hours_12h"
aggregate = "sum"
column = "hours"
window = "12h"
[[features]]
name = "logs_6h"
aggregate = "count"
window = "6h"
[[features]]
name = "hours_last"
aggregate = "last"
column = "hours"
"#
            .to_string(),
        ),
        (
            "training/delays.toml",
            r#"model = "delays"
views = ["airport_weather", "aircraft_activity"]
task = "binary-classification"
families = ["linear"]
[search]
trials = 2
seed = 3
reduction_factor = 2
min_resource = 0.5
"#
            .to_string(),
        ),
        ("data/weather.csv", weather),
        ("data/aircraft_log.csv", log),
        ("data/departures.csv", departures),
    ];
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_over_two_views_trains_once_and_serves_what_its_joined_table_holds() {
    use feature_stage::polars::prelude::*;

    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("flights");
    two_view_project(&project);
    let store = dir.path().join("store");
    let out = Command::new(env!("CARGO_BIN_EXE_mlpipe"))
        .args(["run", "--json", "--project"])
        .arg(&project)
        .arg("--store")
        .arg(&store)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["ok"], true, "{summary}");
    // Two views, one upload each of their data: one training run for the combination.
    let outcomes: Vec<&Value> = summary["training"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["model"] == "delays")
        .collect();
    assert_eq!(
        outcomes
            .iter()
            .filter(|t| t["outcome"] == "trained")
            .count(),
        1,
        "{outcomes:#?}"
    );
    assert!(
        outcomes.len() >= 2,
        "both views' manifests reached training: {outcomes:#?}"
    );
    let runs = || {
        std::fs::read_dir(store.join("runs"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("delays-"))
            .count()
    };
    assert_eq!(runs(), 1, "one run directory per combination");
    // The same uploads again (every event delivered again): nothing trains twice.
    let again = Command::new(env!("CARGO_BIN_EXE_mlpipe"))
        .args(["run", "--json", "--project"])
        .arg(&project)
        .arg("--store")
        .arg(&store)
        .output()
        .unwrap();
    assert!(again.status.success());
    assert_eq!(runs(), 1, "a redelivery trains nothing new");
    drift_checked(&summary, "delays");

    // The bundle names both views and their versions, and the joined objects.
    let (bundle, onnx) = champion(&store, "delays");
    assert_eq!(bundle["format"], 2, "{bundle}");
    let views: Vec<&str> = bundle["views"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["view"].as_str().unwrap())
        .collect();
    assert_eq!(views, ["airport_weather", "aircraft_activity"], "{bundle}");
    let spec_key = bundle["feature_spec"]["key"].as_str().unwrap();
    assert!(
        spec_key.starts_with("models/delays/features/"),
        "{spec_key}"
    );
    let set =
        features::FeatureSet::from_json(&std::fs::read(store.join(spec_key)).unwrap()).unwrap();
    let names = common::input_names(&bundle);
    assert_eq!(set.output_columns(), names);
    assert!(names.contains(&"wind_last".to_string()) && names.contains(&"hours_12h".to_string()));

    // Requests after the last events, for known and unknown entities of either view.
    let requests: Vec<Value> = [
        ("EWR", "N101", "2026-01-03T00:20:00Z", 900.0),
        ("JFK", "N303", "2026-01-03T02:00:00Z", 300.0),
        ("LGA", "N505", "2026-01-03T07:59:00Z", 1500.0),
        ("SFO", "N404", "2026-01-03T01:00:00Z", 700.0),
        ("EWR", "N999", "2026-01-03T00:30:00Z", 2100.0),
    ]
    .iter()
    .map(|(o, t, at, d)| json!({"origin": o, "tailnum": t, "sched_dep": at, "distance": d}))
    .collect();

    // Offline: each view evaluated at the requests as label events (the training join).
    let records: Vec<(String, String, i64, f64)> = requests
        .iter()
        .map(|r| {
            let at = chrono::DateTime::parse_from_rfc3339(r["sched_dep"].as_str().unwrap())
                .unwrap()
                .timestamp_micros();
            (
                r["origin"].as_str().unwrap().to_string(),
                r["tailnum"].as_str().unwrap().to_string(),
                at,
                r["distance"].as_f64().unwrap(),
            )
        })
        .collect();
    let n = records.len();
    let labels = DataFrame::new(
        n,
        vec![
            Column::new(
                "origin".into(),
                records.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "tailnum".into(),
                records.iter().map(|r| r.1.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "sched_dep".into(),
                records.iter().map(|r| r.2).collect::<Vec<_>>(),
            )
            .cast(&DataType::Datetime(
                TimeUnit::Microseconds,
                Some(TimeZone::UTC),
            ))
            .unwrap(),
            Column::new(
                "distance".into(),
                records.iter().map(|r| r.3).collect::<Vec<_>>(),
            ),
            Column::new("delayed".into(), vec![false; n]),
        ],
    )
    .unwrap();
    let local = storage::Store::local(&store).unwrap();
    let mut offline = vec![Vec::new(); n];
    for (spec, v) in set.views.iter().zip(bundle["views"].as_array().unwrap()) {
        let version = v["version"].as_str().unwrap();
        let manifest: records::pipeline::FeatureManifest = serde_json::from_slice(
            &std::fs::read(store.join(format!(
                "features/{}/v={version}/_manifest.json",
                spec.view.name
            )))
            .unwrap(),
        )
        .unwrap();
        let snapshot = records::pipeline::Snapshot {
            format: 1,
            dataset: manifest.snapshot.dataset.clone(),
            hash: manifest.snapshot.hash.clone(),
            versions: manifest.snapshot.versions.clone(),
            contract_lineage: 1,
            created_at: String::new(),
        };
        let as_of =
            feature_stage::join::as_of_label_events(&spec.view, "requests", "sched_dep", "delayed");
        let events =
            feature_stage::load_snapshot(&local, &snapshot, &feature_stage::event_columns(&as_of))
                .await
                .unwrap();
        let t =
            feature_stage::build_table(&as_of, &events, Some(&labels), Some(&spec.vocabularies))
                .unwrap();
        let times = feature_stage::offline::micros(&t.table, "sched_dep").unwrap();
        for c in &t.columns {
            let values: Vec<Option<f64>> =
                t.table.column(c).unwrap().f64().unwrap().iter().collect();
            for (row, value) in values.iter().enumerate() {
                let i = records
                    .iter()
                    .position(|r| Some(r.2) == times[row])
                    .unwrap();
                offline[i].push(*value);
            }
        }
    }

    // Online: every view's record from the online store `mlpipe run` filled.
    {
        let backend = online::Backend::open(&format!(
            "embedded:{}",
            store.join("_online/features.redb").display()
        ))
        .await
        .unwrap();
        for (i, r) in requests.iter().enumerate() {
            let fv = set
                .online_features(&backend, r.as_object().unwrap(), records[i].2)
                .await
                .unwrap();
            assert_eq!(fv.entity, records[i].0);
            for (j, name) in names.iter().enumerate() {
                let (a, b) = (offline[i][j], fv.assembled.values[j]);
                let same = match (a, b) {
                    (None, None) => true,
                    (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(1.0),
                    _ => false,
                };
                assert!(same, "request {i}, {name}: offline {a:?}, online {b:?}");
            }
        }
        // An unknown airport and an unknown aircraft read as such.
        let fv = set
            .online_features(&backend, requests[4].as_object().unwrap(), records[4].2)
            .await
            .unwrap();
        assert!(fv.assembled.unknown_entity);
    }

    // /v1 answers with what the model gives on the offline vectors.
    let width = names.len();
    let flat: Vec<f32> = offline
        .iter()
        .flatten()
        .map(|v| v.map_or(f32::NAN, |v| v as f32))
        .collect();
    let direct = train::export::run_onnx(&onnx, &flat, n, width).unwrap();
    let (server, url) = common::native_server(&store);
    let r = reqwest::Client::new()
        .post(format!("{url}/v1/models/delays/predict"))
        .json(&json!({ "records": requests }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v1: Value = r.json().await.unwrap();
    let p = v1["predictions"].as_array().unwrap();
    for (i, pred) in p.iter().enumerate() {
        let served = pred["probability"].as_f64().unwrap();
        let want = f64::from(*direct[i].last().unwrap());
        assert!(
            (served - want).abs() <= 1e-5,
            "request {i}: /v1 {served}, offline {want}: {v1}"
        );
        assert_eq!(pred["entity"], records[i].0, "{pred}");
    }
    assert_eq!(p[3]["unknown_entity"], true, "an unknown airport: {v1}");

    drop(server); // it holds the embedded online store's lock
    // Batch inference reads both views the same way: online (the records are after every
    // materialized event) and point-in-time from the curated data.
    let input = dir.path().join("requests.jsonl");
    let lines: Vec<String> = requests.iter().map(|r| r.to_string()).collect();
    std::fs::write(&input, lines.join("\n")).unwrap();
    for (mode, extra) in [("online", None), ("point-in-time", Some("--point-in-time"))] {
        let output = dir.path().join(format!("scored-{mode}.parquet"));
        let out = Command::new(env!("CARGO_BIN_EXE_mlpipe"))
            .args(["predict", "--json", "--model", "delays", "--input"])
            .arg(&input)
            .arg("--output")
            .arg(&output)
            .args(extra)
            .arg("--store")
            .arg(&store)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{mode}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let df = ParquetReader::new(std::fs::File::open(&output).unwrap())
            .finish()
            .unwrap();
        let scored: Vec<f64> = df
            .column("probability_true")
            .unwrap()
            .cast(&DataType::Float64)
            .unwrap()
            .f64()
            .unwrap()
            .iter()
            .map(Option::unwrap)
            .collect();
        assert_eq!(scored.len(), n, "{mode}: {df}");
        for (i, got) in scored.iter().enumerate() {
            let want = f64::from(*direct[i].last().unwrap());
            assert!(
                (got - want).abs() <= 1e-5,
                "{mode}, request {i}: {got} vs {want}"
            );
        }
    }
}

/// Secrets planted everywhere a user puts them (the key pair in S3 store URLs, AWS and
/// Cloudflare credentials in the environment, an API key) never appear in what mlpipe
/// prints, logs (at debug level) or stores: `--help`, a whole pipeline run against an S3
/// server, key creation (which shows its key once, by design), publishing to the edge,
/// authenticated and refused requests to `mlpipe serve`, the errors of a missing bucket and
/// a bad URL, and every object in both buckets (run records, publication records,
/// prediction logs).
#[tokio::test(flavor = "multi_thread")]
async fn planted_secrets_never_appear_in_outputs_logs_or_stored_objects() {
    const S3_KEY_ID: &str = "AKIAPLANTED5E1F0000";
    const S3_SECRET: &str = "PlantedS3Secret5e1fD0NotShow";
    const ENV_SECRET: &str = "PlantedEnvSecret5e1fD0NotShow";
    const SESSION: &str = "PlantedSessionToken5e1f";
    const CF_TOKEN: &str = "PlantedCloudflareToken5e1f";
    let moto = common::Moto::start();
    moto.create_bucket("leak-store").await;
    moto.create_bucket("leak-edge").await;
    let url = |bucket: &str| {
        format!(
            "s3://{bucket}?endpoint={}&region=us-east-1&access_key_id={S3_KEY_ID}&secret_access_key={S3_SECRET}",
            moto.endpoint
        )
    };
    let (store_url, edge_url) = (url("leak-store"), url("leak-edge"));
    // Traces and metrics go to an OTLP endpoint that keeps them, to be searched too.
    let otlp = common::OtlpSink::start();
    let env: Vec<(&str, &str)> = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &otlp.endpoint),
        ("MLPIPE_STORE", &store_url),
        ("MLPIPE_EDGE_OBJECTS", &edge_url),
        ("AWS_ACCESS_KEY_ID", "AKIAENVPLANTED5E1F"),
        ("AWS_SECRET_ACCESS_KEY", ENV_SECRET),
        ("AWS_SESSION_TOKEN", SESSION),
        ("CLOUDFLARE_API_TOKEN", CF_TOKEN),
        ("RUST_LOG", "debug"),
    ];
    let mlpipe = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_mlpipe"))
            .args(args)
            .envs(env.iter().copied())
            .current_dir(ROOT)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    let mut shown = String::new();
    for help in [
        &["--help"][..],
        &["run", "--help"],
        &["publish", "--help"],
        &["serve", "--help"],
    ] {
        let (ok, text) = mlpipe(help);
        assert!(ok, "{text}");
        shown.push_str(&text);
    }
    let wine = Path::new(ROOT).join("examples/wine");
    let (ok, text) = mlpipe(&["run", "--json", "--project", wine.to_str().unwrap()]);
    assert!(ok, "{text}");
    assert!(
        text.contains("\"ok\": true") || text.contains("\"ok\":true"),
        "{text}"
    );
    assert!(
        text.contains("\"trained\""),
        "the run trained a model: {text}"
    );
    shown.push_str(&text);
    // The one place a key is shown, by design: its creation.
    let created = Command::new(env!("CARGO_BIN_EXE_mlpipe"))
        .args(["keys", "create", "--name", "leak", "--json"])
        .envs(env.iter().copied().filter(|(k, _)| *k != "RUST_LOG"))
        .current_dir(ROOT)
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    let key: Value = serde_json::from_slice(&created.stdout).unwrap();
    let key = key["key"].as_str().unwrap().to_string();
    let key_secret = key.rsplit('_').next().unwrap().to_string();
    let (ok, text) = mlpipe(&["publish", "--model", "wine"]);
    assert!(ok, "{text}");
    assert!(text.contains("published"), "{text}");
    shown.push_str(&text);
    for broken in [
        url("no-such-bucket"),
        format!("{store_url}&no_such_option=1"),
    ] {
        let (ok, text) = mlpipe(&["status", "--store", &broken]);
        assert!(!ok, "a broken store must fail: {text}");
        shown.push_str(&text);
    }
    // The server: one authenticated request, one with the key's secret altered.
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mlpipe"))
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--metrics-addr",
            "none",
            "--grpc-addr",
            "none",
        ])
        .envs(env.iter().copied())
        .current_dir(ROOT)
        .stdout(std::process::Stdio::piped())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = common::Proc(child);
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let mut base = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        shown.push_str(&line);
        if line.starts_with("serving ") {
            base = Some(line.rsplit_once(" on ").unwrap().1.to_string());
        } else if line.starts_with("docs on ") {
            break;
        }
    }
    let base = base.expect("a serving line");
    let csv = std::fs::read_to_string(wine.join("data/wine.csv")).unwrap();
    let mut rows = csv.lines();
    let header: Vec<&str> = rows.next().unwrap().split(',').collect();
    let record: serde_json::Map<String, Value> = header
        .iter()
        .zip(rows.next().unwrap().split(','))
        .filter(|(h, _)| **h != "wine_id" && **h != "cultivar")
        .map(|(h, v)| (h.to_string(), json!(v.parse::<f64>().unwrap())))
        .collect();
    let http = reqwest::Client::new();
    let wrong = format!("{}x", &key[..key.len() - 1]);
    for (bearer, status) in [(key.as_str(), 200), (wrong.as_str(), 401)] {
        let r = http
            .post(format!("{base}/v1/models/wine/predict"))
            .bearer_auth(bearer)
            .json(&json!({ "records": [record] }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status);
        shown.push_str(&r.text().await.unwrap());
    }
    // A graceful stop flushes the prediction logs to the store.
    let mut server = server;
    Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap();
    let stopped = server.0.wait().unwrap();
    assert!(stopped.success(), "mlpipe serve stopped with {stopped}");
    shown.push_str(&std::fs::read_to_string(log.path()).unwrap());
    assert!(shown.contains("wine"), "the outputs were captured");

    let secrets = [
        S3_SECRET,
        S3_KEY_ID,
        ENV_SECRET,
        SESSION,
        CF_TOKEN,
        key.as_str(),
        key_secret.as_str(),
    ];
    for secret in secrets {
        if let Some(at) = shown.find(secret) {
            let from = at.saturating_sub(200);
            panic!(
                "{secret} was shown: ...{}...",
                &shown[from..(at + 100).min(shown.len())]
            );
        }
    }
    // Every exported span and metric (the processes flushed them as they ended).
    let exported = otlp.received();
    assert!(
        exported
            .iter()
            .any(|(path, body)| path == "/v1/traces" && !body.is_empty()),
        "no traces were exported: {:?}",
        exported
            .iter()
            .map(|(p, b)| (p, b.len()))
            .collect::<Vec<_>>()
    );
    for (path, body) in &exported {
        for secret in secrets {
            assert!(
                !body.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} was exported to OTLP {path}"
            );
        }
    }
    // Every stored object, including the prediction logs the request wrote (flushed when
    // the server stopped).
    let mut objects = 0;
    let mut prediction_logs = 0;
    for bucket in ["leak-store", "leak-edge"] {
        let store = storage::Store::open(&url(bucket)).unwrap();
        for info in store.list("").await.unwrap() {
            prediction_logs += usize::from(info.key.starts_with("inference-logs/"));
            let bytes = store.get(&info.key).await.unwrap().bytes;
            objects += 1;
            for secret in secrets {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "{secret} is stored in {bucket}/{}",
                    info.key
                );
            }
        }
    }
    assert!(objects > 20, "{objects} objects searched");
    assert!(
        prediction_logs > 0,
        "the request's prediction log was stored"
    );
}
