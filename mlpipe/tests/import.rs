//! Bring-your-own ONNX: models exported by skl2onnx (a scaled logistic-regression pipeline
//! with imputation, a random forest, gradient-boosted classifier and regressor, an MLP,
//! support vector machines (one-vs-one votes, Platt probabilities, a regressor), a one-hot pipeline over mixed float, int64 and string inputs), LightGBM and XGBoost through
//! onnxmltools, and PyTorch- and TensorFlow-style float graphs (the latter a sigmoid `[N, 1]`
//! head, served as `[1 - p, p]`), imported with `mlpipe models import`, served by `mlpipe serve` and held to
//! onnxruntime's outputs on the original files (`tests/clients/skl2onnx_models.py`).

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use serde_json::json;

mod common;

use common::byo;

#[tokio::test(flavor = "multi_thread")]
async fn imported_models_serve_what_onnxruntime_computes() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    let Some(exported) = byo::export(&models) else {
        return;
    };
    assert!(exported.len() >= 13);
    let store = dir.path().join("store");
    for model in &exported {
        let (name, doc) = (&model.name, &model.doc);
        let imported = byo::import(&store, &models, model);
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
        // skl2onnx's and onnxmltools' classifiers end in a ZipMap by default (onnxmltools'
        // XGBoost converter does not).
        if [
            "forest",
            "gbc",
            "logreg",
            "mlp",
            "onehot",
            "lightgbm",
            "svc",
            "svc_proba",
        ]
        .contains(&name.as_str())
        {
            let rewrites = imported["rewrites"].to_string();
            assert!(rewrites.contains("ZipMap"), "{name}: {imported}");
        }
    }
    // The same file again is the same version, not a new one.
    let forest = exported.iter().find(|m| m.name == "forest").unwrap();
    let again = byo::import(&store, &models, forest);
    assert_eq!(
        (again["version"].as_u64(), again["new"].as_bool()),
        (Some(1), Some(false))
    );

    // An operator tract cannot run is refused at import, by name.
    let out = byo::mlpipe(
        &store,
        &[
            "models",
            "import",
            "label_encoder",
            "--onnx",
            models.join("label_encoder.onnx").to_str().unwrap(),
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("LabelEncoder"),
        "{err}"
    );

    let (_server, url) = common::native_server(&store);
    byo::check(&common::Api::new(&url, None), &exported).await;
    let http = reqwest::Client::new();

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
