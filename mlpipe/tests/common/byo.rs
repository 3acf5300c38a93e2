//! Bring-your-own ONNX checks every runtime passes: models exported by skl2onnx and
//! onnxmltools and PyTorch- and TensorFlow-style graphs (`tests/clients/skl2onnx_models.py`), imported with
//! `mlpipe models import`, must answer `/v2` infer with what onnxruntime computes on the
//! original files, within 1e-5.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use super::{Api, ROOT};

/// Every model the export script writes (an edge runtime lists the models it serves).
pub const MODELS: &[&str] = &[
    "forest",
    "gbc",
    "gbr",
    "keras_style",
    "lightgbm",
    "logreg",
    "mlp",
    "onehot",
    "svc",
    "svc_proba",
    "svr",
    "torch_style",
    "xgboost",
];

/// One exported model: its name and the script's document (task, classes, OIP inputs and
/// onnxruntime's outputs).
pub struct Exported {
    pub name: String,
    pub doc: Value,
}

/// Runs the export script into `dir`; `None` without a Python (outside CI).
pub fn export(dir: &Path) -> Option<Vec<Exported>> {
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
    let names: Vec<String> = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(
        names, MODELS,
        "the export script and byo::MODELS list the same models"
    );
    Some(
        names
            .into_iter()
            .map(|name| {
                let doc = serde_json::from_slice(
                    &std::fs::read(dir.join(format!("{name}.json"))).unwrap(),
                )
                .unwrap();
                Exported { name, doc }
            })
            .collect(),
    )
}

/// `mlpipe models ARGS --store STORE`.
pub fn mlpipe(store: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mlpipe"))
        .args(args)
        .arg("--store")
        .arg(store)
        .output()
        .unwrap()
}

/// Imports one exported model as its champion; the import's JSON report.
pub fn import(store: &Path, dir: &Path, model: &Exported) -> Value {
    let onnx = dir.join(format!("{}.onnx", model.name));
    let mut args: Vec<String> = [
        "models",
        "import",
        &model.name,
        "--onnx",
        onnx.to_str().unwrap(),
        "--promote",
        "--json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if model.name == "torch_style" || model.name == "keras_style" {
        // A bare float graph names no classes: they come from the flag.
        let classes: Vec<&str> = model.doc["classes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        args.extend(["--classes".to_string(), classes.join(",")]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = mlpipe(store, &args);
    assert!(
        out.status.success(),
        "import {}: {}",
        model.name,
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

/// Every imported model's metadata lists the graph's inputs with their datatypes, and its
/// `/v2` answers equal onnxruntime's on the original file.
pub async fn check(api: &Api, models: &[Exported]) {
    let http = api.http();
    let url = &api.url;
    for Exported { name, doc } in models {
        let meta: Value = http
            .get(format!("{url}/v2/models/{name}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let pairs = |v: &Value| -> Vec<(String, String)> {
            v.as_array()
                .unwrap_or_else(|| panic!("{name}: {meta}"))
                .iter()
                .map(|i| {
                    (
                        i["name"].as_str().unwrap().to_string(),
                        i["datatype"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        };
        assert_eq!(
            pairs(&meta["inputs"]),
            pairs(&doc["inputs"]),
            "{name}: {meta}"
        );
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
}
