//! Bring-your-own ONNX: models exported by skl2onnx (a scaled logistic-regression pipeline
//! with imputation, a random forest, gradient-boosted classifier and regressor, an MLP, a
//! one-hot pipeline over mixed float, int64 and string inputs) and a PyTorch-style float
//! graph, imported with `mlpipe models import`, served by `mlpipe serve` and held to
//! onnxruntime's outputs on the original files (`tests/clients/skl2onnx_models.py`).

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

mod common;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// Runs the export script; `None` without a Python (outside CI).
fn export(dir: &Path) -> Option<Vec<String>> {
    let python = match std::env::var("MLPIPE_PYTHON") {
        Ok(p) => p,
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!("MLPIPE_PYTHON (a Python with skl2onnx and onnxruntime) is required under CI")
        }
        Err(_) => {
            eprintln!("MLPIPE_PYTHON not set: bring-your-own-ONNX was not checked");
            return None;
        }
    };
    let out = Command::new(python)
        .arg(format!("{ROOT}/tests/clients/skl2onnx_models.py"))
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skl2onnx_models.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    Some(serde_json::from_str(stdout.lines().last().unwrap()).unwrap())
}

fn mlpipe(store: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mlpipe"))
        .args(args)
        .arg("--store")
        .arg(store)
        .output()
        .unwrap()
}

fn import(store: &Path, name: &str, onnx: &Path, extra: &[&str]) -> Value {
    let onnx = onnx.to_str().unwrap();
    let out = mlpipe(
        store,
        &[
            &[
                "models",
                "import",
                name,
                "--onnx",
                onnx,
                "--promote",
                "--json",
            ],
            extra,
        ]
        .concat(),
    );
    assert!(
        out.status.success(),
        "import {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Within 1e-5 of onnxruntime, relative to max(1, |value|).
fn close(got: f64, want: f64) -> bool {
    (got - want).abs() <= 1e-5 * want.abs().max(1.0)
}

fn flat(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(items) => items.iter().flat_map(flat).collect(),
        Value::Number(n) => vec![n.as_f64().unwrap()],
        other => panic!("not a number: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn imported_models_serve_what_onnxruntime_computes() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    let Some(names) = export(&models) else {
        return;
    };
    assert!(names.len() >= 7, "{names:?}");
    let store = dir.path().join("store");
    let docs: Vec<(String, Value)> = names
        .iter()
        .map(|n| {
            let doc: Value =
                serde_json::from_slice(&std::fs::read(models.join(format!("{n}.json"))).unwrap())
                    .unwrap();
            (n.clone(), doc)
        })
        .collect();
    for (name, doc) in &docs {
        let mut extra: Vec<String> = Vec::new();
        if name == "torch_style" {
            // A bare float graph names no classes: they come from the flag.
            let classes: Vec<&str> = doc["classes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap())
                .collect();
            extra = vec!["--classes".into(), classes.join(",")];
        }
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let imported = import(&store, name, &models.join(format!("{name}.onnx")), &extra);
        assert_eq!(imported["version"], 1, "{imported}");
        assert_eq!(imported["task"], doc["task"], "{name}: {imported}");
        if !doc["classes"].is_null() {
            assert_eq!(imported["classes"], doc["classes"], "{name}: {imported}");
        }
        if name == "onehot" {
            let types: Vec<(&str, &str)> = imported["inputs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| (i["name"].as_str().unwrap(), i["type"].as_str().unwrap()))
                .collect();
            assert_eq!(
                types,
                vec![
                    ("amount", "f32"),
                    ("count", "i64"),
                    ("channel", "string"),
                    ("city", "string")
                ]
            );
        }
        if name != "gbr" && name != "torch_style" {
            let rewrites = imported["rewrites"].to_string();
            assert!(rewrites.contains("ZipMap"), "{name}: {imported}");
        }
    }
    // The same file again is the same version, not a new one.
    let again = import(&store, "forest", &models.join("forest.onnx"), &[]);
    assert_eq!(
        (again["version"].as_u64(), again["new"].as_bool()),
        (Some(1), Some(false))
    );

    // An operator tract cannot run is refused at import, by name.
    let out = mlpipe(
        &store,
        &[
            "models",
            "import",
            "svc",
            "--onnx",
            models.join("svc.onnx").to_str().unwrap(),
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("SVMClassifier"),
        "{err}"
    );

    let (_server, url) = common::native_server(&store);
    let http = reqwest::Client::new();
    for (name, doc) in &docs {
        let meta: Value = http
            .get(format!("{url}/v2/models/{name}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let declared: Vec<(String, String)> = meta["inputs"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: {meta}"))
            .iter()
            .map(|i| {
                (
                    i["name"].as_str().unwrap().to_string(),
                    i["datatype"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let sent: Vec<(String, String)> = doc["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["name"].as_str().unwrap().to_string(),
                    i["datatype"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(declared, sent, "{name}: metadata {meta}");

        let response = http
            .post(format!("{url}/v2/models/{name}/infer"))
            .json(&json!({ "inputs": doc["inputs"] }))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 200, "{name}: {body}");
        let output = |wanted: &str| {
            body["outputs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|o| o["name"] == wanted)
                .unwrap_or_else(|| panic!("{name}: no output {wanted}: {body}"))["data"]
                .clone()
        };
        let (got, want) = if doc["task"] == "regression" {
            (flat(&output("value")), flat(&doc["values"]))
        } else {
            (flat(&output("probabilities")), flat(&doc["probabilities"]))
        };
        assert_eq!(got.len(), want.len(), "{name}");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                close(*g, *w),
                "{name}, value {i}: served {g}, onnxruntime {w}"
            );
        }
    }

    // /v1 computes features from raw records: an imported model has no feature view.
    let response = http
        .post(format!("{url}/v1/models/onehot/predict"))
        .json(&json!({ "records": [{ "amount": 3.0 }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body = response.text().await.unwrap();
    assert!(body.contains("/v2/models/onehot/infer"), "{body}");

    // A string sent where a number belongs is a 400 naming the input.
    let response = http
        .post(format!("{url}/v2/models/onehot/infer"))
        .json(&json!({ "inputs": [
            { "name": "amount", "datatype": "BYTES", "shape": [1, 1], "data": ["x"] },
            { "name": "count", "datatype": "INT64", "shape": [1, 1], "data": [1] },
            { "name": "channel", "datatype": "BYTES", "shape": [1, 1], "data": ["web"] },
            { "name": "city", "datatype": "BYTES", "shape": [1, 1], "data": ["lyon"] },
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body = response.text().await.unwrap();
    assert!(body.contains("'amount'"), "{body}");
}
