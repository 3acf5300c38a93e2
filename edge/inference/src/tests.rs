use std::collections::BTreeMap;
use std::sync::Arc;

use features::SnapshotStore;
use registry::{Bundle, Input, ObjectRef};
use serde_json::{Value, json};

use crate::model::sha256_hex;
use crate::service::MAX_REQUEST_ID;
use crate::*;

const F: usize = 3;

/// A logistic model with known weights: p = sigmoid(x0 - 2 x1 + 0.5 x2 + 0.1), missing
/// values filled with 1. The training crate's export of that network, checked in
/// (`functions/train/tests/inference_fixture.rs` keeps it equal to the export).
fn onnx() -> Vec<u8> {
    include_bytes!("../tests/fixtures/logistic.onnx").to_vec()
}

fn expected(x: [f32; F]) -> f32 {
    let x: Vec<f32> = x
        .iter()
        .map(|v| if v.is_nan() { 1.0 } else { *v })
        .collect();
    let z = x[0] - 2.0 * x[1] + 0.5 * x[2] + 0.1;
    1.0 / (1.0 + (-z).exp())
}

fn bundle(onnx: &[u8]) -> Bundle {
    Bundle {
        format: registry::BUNDLE_FORMAT,
        model: "fraud".into(),
        version: 3,
        created_at: "2026-11-27T00:00:00Z".into(),
        content_hash: sha256_hex(onnx),
        model_key: "models/fraud/3/model.onnx".into(),
        task: "binary-classification".into(),
        family: "linear".into(),
        inputs: ["a", "b", "c"]
            .iter()
            .map(|n| Input {
                name: n.to_string(),
                ty: "f32".into(),
                width: None,
            })
            .collect(),
        classes: vec!["false".into(), "true".into()],
        threshold: Some(0.6),
        feature_view: "v".into(),
        feature_view_version: "x".into(),
        feature_spec: ObjectRef {
            key: "features/v/v=x/spec.json".into(),
            sha256: "00".into(),
        },
        dataset_snapshot: "s".into(),
        reference_profile: ObjectRef {
            key: "k".into(),
            sha256: "00".into(),
        },
        training_run: "r".into(),
        metrics: BTreeMap::new(),
        tags: BTreeMap::new(),
        views: Vec::new(),
        training_table: None,
    }
}

fn model() -> Model {
    let onnx = onnx();
    let b = serde_json::to_vec(&bundle(&onnx)).unwrap();
    Model::load(&b, &onnx, None).unwrap()
}

struct One(Arc<Model>);

impl Models for One {
    async fn model(&self, name: &str, version: Option<u64>) -> Result<Arc<Model>, InferenceError> {
        if name != self.0.name() || version.is_some_and(|v| v != self.0.version()) {
            return Err(InferenceError::NotFound(format!(
                "no model {name} {version:?}"
            )));
        }
        Ok(self.0.clone())
    }
    fn names(&self) -> Vec<String> {
        vec![self.0.name().to_string()]
    }
}

fn call(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    call_with(&Settings::default(), method, path, headers, body)
}

fn call_with(
    settings: &Settings,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    call_guarded(&Guard::open(), settings, method, path, headers, body)
}

fn call_guarded(
    guard: &Guard,
    settings: &Settings,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let models = One(Arc::new(model()));
    let req = Request {
        method,
        path,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body,
        client: Some("192.0.2.1"),
    };
    futures::executor::block_on(handle(
        &models,
        &SnapshotStore::default(),
        settings,
        guard,
        &req,
        1_700_000_000_000_000,
    ))
}

#[test]
fn with_keys_every_endpoint_but_health_needs_one() {
    use sha2::{Digest, Sha256};
    let key = records::access::key_string("0123456789ab", &"5".repeat(48));
    let record = records::access::ApiKey {
        id: "0123456789ab".into(),
        name: "k".into(),
        sha256: hex::encode(Sha256::digest(key.as_bytes())),
        models: vec![],
        any_version: false,
        rate_per_s: None,
        created_at_us: 0,
        expires_at_us: None,
        revoked_at_us: None,
    };
    let guard = Guard::keys(Arc::new(Keys::new([record])), Arc::default());
    let s = Settings::default();
    let model = model();
    let name = model.name();
    for path in ["/v2/health/live", "/v2/health/ready"] {
        assert_eq!(
            call_guarded(&guard, &s, "GET", path, &[], b"").status,
            200,
            "{path}"
        );
    }
    let bearer = format!("Bearer {key}");
    for path in [
        "/v2".to_string(),
        format!("/v2/models/{name}"),
        format!("/v2/models/{name}/ready"),
    ] {
        let r = call_guarded(&guard, &s, "GET", &path, &[], b"");
        assert_eq!(r.status, 401, "{path}");
        assert!(
            r.headers
                .iter()
                .any(|(k, v)| k == "www-authenticate" && v.starts_with("Bearer")),
            "{:?}",
            r.headers
        );
        let r = call_guarded(&guard, &s, "GET", &path, &[("Authorization", &bearer)], b"");
        assert_eq!(r.status, 200, "{path}");
    }
    let wrong = format!("Bearer {}", key.replace('5', "6"));
    let r = call_guarded(
        &guard,
        &s,
        "POST",
        &format!("/v2/models/{name}/infer"),
        &[("authorization", &wrong)],
        b"{}",
    );
    assert_eq!(r.status, 401);
    assert!(!String::from_utf8_lossy(&r.body).contains(&key.replace('5', "6")));
}

fn body_json(r: &Response) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

#[test]
fn a_model_that_does_not_match_its_bundle_is_refused() {
    let onnx = onnx();
    let mut b = bundle(&onnx);
    b.content_hash = "ab".repeat(32);
    let err = Model::load(&serde_json::to_vec(&b).unwrap(), &onnx, None).unwrap_err();
    assert!(matches!(err, BundleError::ModelHash { .. }), "{err}");
    let err = Model::load(b"{not json", &onnx, None).unwrap_err();
    assert!(matches!(err, BundleError::Bundle(_)), "{err}");
    let b = bundle(&onnx);
    let err = Model::load(&serde_json::to_vec(&b).unwrap(), &onnx, Some(b"{}")).unwrap_err();
    assert!(matches!(err, BundleError::SpecHash { .. }), "{err}");
}

#[test]
fn predictions_follow_the_model_and_the_threshold() {
    let m = model();
    let rows = [[0.0, 0.0, 0.0], [2.0, 0.0, 1.0], [f32::NAN, 1.0, 0.0]];
    let x: Vec<f32> = rows.iter().flatten().copied().collect();
    let p = m.predict(x, 3).unwrap();
    assert_eq!(p.len(), rows.len());
    for (row, pred) in rows.iter().zip(&p) {
        let e = expected(*row);
        assert!((pred.score - e).abs() < 1e-6, "{} vs {e}", pred.score);
        let label = if e >= 0.6 { "true" } else { "false" };
        assert_eq!(pred.label.as_deref(), Some(label));
        assert!((pred.probabilities[0] + pred.probabilities[1] - 1.0).abs() < 1e-6);
    }
}

#[test]
fn a_request_id_that_cannot_be_a_header_is_refused_and_never_echoed() {
    let inputs = json!([{"name": "a", "shape": [1], "datatype": "FP32", "data": [0.0]},
                        {"name": "b", "shape": [1], "datatype": "FP32", "data": [0.0]},
                        {"name": "c", "shape": [1], "datatype": "FP32", "data": [0.0]}]);
    let long = "x".repeat(MAX_REQUEST_ID + 1);
    for bad in ["a\nb", "a b", "é", long.as_str()] {
        let body = json!({"id": bad, "inputs": inputs});
        let r = call(
            "POST",
            "/v2/models/fraud/infer",
            &[],
            body.to_string().as_bytes(),
        );
        assert_eq!(r.status, 400, "{bad:?}");
        assert!(
            r.headers.iter().all(|(k, _)| k != "x-request-id"),
            "{bad:?}"
        );
        let body = json!({"id": bad, "records": [{}]});
        let r = call(
            "POST",
            "/v1/models/fraud/predict",
            &[],
            body.to_string().as_bytes(),
        );
        assert_eq!(r.status, 400, "{bad:?}");
        let r = call("GET", "/v2/models/nope", &[("x-request-id", bad)], b"");
        assert!(
            r.headers.iter().all(|(k, _)| k != "x-request-id"),
            "{bad:?}"
        );
    }
    let ok = json!({"id": "Req-1_a:b/c", "inputs": inputs});
    let r = call(
        "POST",
        "/v2/models/fraud/infer",
        &[],
        ok.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

#[test]
fn json_infer_by_feature_name_and_as_one_matrix() {
    let by_name = json!({
        "id": "req-1",
        "inputs": [
            {"name": "a", "shape": [2], "datatype": "FP32", "data": [0.0, 2.0]},
            {"name": "c", "shape": [2, 1], "datatype": "FP64", "data": [[0.0], [1.0]]},
            {"name": "b", "shape": [2], "datatype": "INT64", "data": [0, 0]}
        ]
    });
    let r = call(
        "POST",
        "/v2/models/fraud/infer",
        &[],
        by_name.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = body_json(&r);
    assert_eq!(v["id"], "req-1");
    assert_eq!(v["model_name"], "fraud");
    assert_eq!(v["model_version"], "3");
    let prob = v["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "probability")
        .unwrap();
    assert_eq!(prob["shape"], json!([2]));
    let got: Vec<f64> = serde_json::from_value(prob["data"].clone()).unwrap();
    assert!((got[1] as f32 - expected([2.0, 0.0, 1.0])).abs() < 1e-6);
    let log = r.log.unwrap();
    assert_eq!(log.id, "req-1");
    assert_eq!(log.rows.len(), 2);

    let matrix = json!({
        "inputs": [{"name": "features", "shape": [2, 3], "datatype": "FP32",
                    "data": [[0.0, 0.0, 0.0], [2.0, 0.0, null]]}],
        "outputs": [{"name": "label"}]
    });
    let r = call(
        "POST",
        "/v2/models/fraud/versions/3/infer",
        &[],
        matrix.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = body_json(&r);
    // A generated id, echoed in the body and the header.
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 36);
    assert!(r.headers.contains(&("x-request-id".into(), id)));
    assert_eq!(v["outputs"].as_array().unwrap().len(), 1);
    assert_eq!(v["outputs"][0]["datatype"], "BYTES");
    assert_eq!(v["outputs"][0]["data"], json!(["false", "true"]));
}

/// The request a Triton client sends with default settings: the JSON header, then raw
/// little-endian tensors; outputs asked for in binary.
#[test]
fn binary_tensor_extension_in_and_out() {
    let rows: [[f32; 3]; 2] = [[0.5, -1.0, 2.0], [3.0, 1.0, 0.0]];
    let head = json!({
        "inputs": [{"name": "features", "shape": [2, 3], "datatype": "FP32",
                    "parameters": {"binary_data_size": 24}}],
        "parameters": {"binary_data_output": true}
    })
    .to_string();
    let mut body = head.clone().into_bytes();
    for v in rows.iter().flatten() {
        body.extend(v.to_le_bytes());
    }
    let len = head.len().to_string();
    let r = call(
        "POST",
        "/v2/models/fraud/infer",
        &[("Inference-Header-Content-Length", &len)],
        &body,
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let hl: usize = r
        .headers
        .iter()
        .find(|(k, _)| k == "inference-header-content-length")
        .unwrap()
        .1
        .parse()
        .unwrap();
    let v: Value = serde_json::from_slice(&r.body[..hl]).unwrap();
    let mut rest = &r.body[hl..];
    for o in v["outputs"].as_array().unwrap() {
        let size = o["parameters"]["binary_data_size"].as_u64().unwrap() as usize;
        let (bytes, tail) = rest.split_at(size);
        rest = tail;
        if o["name"] == "probability" {
            let p: Vec<f32> = bytes
                .chunks(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            assert_eq!(p.len(), rows.len());
            for (row, p) in rows.iter().zip(p) {
                assert!((p - expected(*row)).abs() < 1e-6);
            }
        }
        if o["name"] == "label" {
            // BYTES: 4-byte little-endian length, then the bytes, per element.
            // Row 0 scores 0.97 (>= 0.6): "true".
            assert_eq!(&bytes[..4], &4u32.to_le_bytes());
            assert_eq!(&bytes[4..8], b"true");
        }
    }
    assert!(rest.is_empty());
}

#[test]
fn every_bad_request_gets_a_json_error_with_the_right_status() {
    let infer = "/v2/models/fraud/infer";
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        ("POST", infer, b"{nope".to_vec(), 400, "not valid JSON"),
        ("POST", infer, br#"{"inputs": []}"#.to_vec(), 400, "no inputs"),
        (
            "POST",
            infer,
            json!({"inputs": [{"name": "zz", "shape": [1], "datatype": "FP32", "data": [1]}]})
                .to_string()
                .into_bytes(),
            400,
            "shape",
        ),
        (
            "POST",
            infer,
            json!({"inputs": [{"name": "a", "shape": [1], "datatype": "FP32", "data": [1]}]})
                .to_string()
                .into_bytes(),
            400,
            "missing inputs: b, c",
        ),
        (
            "POST",
            infer,
            json!({"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, 2]}]})
                .to_string()
                .into_bytes(),
            400,
            "do not fit shape",
        ),
        (
            "POST",
            infer,
            json!({"inputs": [{"name": "x", "shape": [1, 3], "datatype": "BYTES", "data": ["a", "b", "c"]}]})
                .to_string()
                .into_bytes(),
            400,
            "this model takes numbers",
        ),
        (
            "POST",
            infer,
            json!({"inputs": [{"name": "x", "shape": [1, 3], "datatype": "COMPLEX64", "data": [1, 2, 3]}]})
                .to_string()
                .into_bytes(),
            400,
            "not supported",
        ),
        (
            "POST",
            infer,
            json!({"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 1e300]}]})
                .to_string()
                .into_bytes(),
            422,
            "not a finite number",
        ),
        (
            "POST",
            infer,
            json!({"inputs": [{"name": "x", "shape": [-1, 3], "datatype": "FP32", "data": []}]})
                .to_string()
                .into_bytes(),
            400,
            "negative",
        ),
        (
            "POST",
            infer,
            json!({"inputs": [{"name": "x", "shape": [2000, 3], "datatype": "FP32", "data": vec![0.0; 6000]}]})
                .to_string()
                .into_bytes(),
            413,
            "batch limit",
        ),
        (
            "POST",
            infer,
            json!({"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}],
                   "outputs": [{"name": "bogus"}]})
            .to_string()
            .into_bytes(),
            400,
            "unknown output",
        ),
        ("POST", "/v2/models/other/infer", b"{}".to_vec(), 400, ""),
        ("GET", "/v2/models/other", Vec::new(), 404, "no model"),
        ("GET", "/v2/models/fraud/versions/9", Vec::new(), 404, "no model"),
        ("GET", "/v2/models/fraud/versions/x", Vec::new(), 404, "not a version"),
        ("GET", infer, Vec::new(), 405, "takes POST"),
        ("GET", "/nowhere", Vec::new(), 404, "no route"),
        ("POST", "/v1/models/fraud/predict", b"[1]".to_vec(), 503, "feature-view spec"),
        ("POST", "/v1/models/fraud/predict", b"{\"x\": 1}".to_vec(), 400, "records"),
    ];
    for (method, path, body, status, message) in cases {
        let r = call(method, path, &[], &body);
        let v = body_json(&r);
        assert_eq!(r.status, status, "{method} {path}: {v}");
        let msg = v["error"].as_str().unwrap();
        assert!(msg.contains(message), "{method} {path}: {msg}");
        assert!(
            r.headers
                .contains(&("content-type".into(), "application/json".into()))
        );
    }
    // Binary framing that does not add up.
    let r = call(
        "POST",
        infer,
        &[("Inference-Header-Content-Length", "99999")],
        b"{}",
    );
    assert_eq!(r.status, 400);
    let head = json!({"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32",
                                  "parameters": {"binary_data_size": 12}}]})
    .to_string();
    let mut body = head.clone().into_bytes();
    body.extend([0u8; 8]);
    let r = call(
        "POST",
        infer,
        &[("inference-header-content-length", &head.len().to_string())],
        &body,
    );
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    // Over the body limit.
    let small = Settings {
        max_body_bytes: 10,
        ..Settings::default()
    };
    let r = call_with(&small, "POST", infer, &[], &[b' '; 11]);
    assert_eq!(r.status, 413);
}

#[test]
fn health_and_metadata() {
    assert_eq!(call("GET", "/v2/health/live", &[], b"").status, 200);
    assert_eq!(call("GET", "/v2/health/ready", &[], b"").status, 200);
    let v = body_json(&call("GET", "/v2", &[], b""));
    assert_eq!(v["extensions"], json!(["binary_tensor_data"]));
    let v = body_json(&call("GET", "/v2/models/fraud", &[], b""));
    assert_eq!(v["name"], "fraud");
    assert_eq!(v["versions"], json!(["3"]));
    assert_eq!(v["inputs"][0]["shape"], json!([-1, 3]));
    assert_eq!(v["parameters"]["feature_names"], json!(["a", "b", "c"]));
    let r = call("GET", "/v2/models/fraud/versions/3/ready", &[], b"");
    assert_eq!(r.status, 200);
}

/// No input, however malformed, makes the handler panic.
#[test]
fn arbitrary_bodies_never_panic() {
    let mut seed = 7u64;
    let pieces: [&[u8]; 8] = [
        b"{\"inputs\":[{\"name\":\"features\",\"shape\":[",
        b"1,3],\"datatype\":\"FP32\",\"data\":[",
        b"1e39,",
        b"null,",
        b"\"x\"]}]}",
        b"\xff\xfe",
        b"{\"parameters\":{\"binary_data_size\":",
        b"18446744073709551615}}",
    ];
    for _ in 0..300 {
        let mut body = Vec::new();
        for _ in 0..4 {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            body.extend(pieces[(seed >> 33) as usize % pieces.len()]);
        }
        let hl = ((seed >> 20) as usize % (body.len() + 1)).to_string();
        let r = call(
            "POST",
            "/v2/models/fraud/infer",
            &[("Inference-Header-Content-Length", &hl)],
            &body,
        );
        assert!(r.status == 200 || (400..600).contains(&r.status));
        let r = call("POST", "/v1/models/fraud/predict", &[], &body);
        assert!((400..600).contains(&r.status));
    }
}

/// A source that answers every key with "missing", counting the reads.
struct Counting(std::sync::atomic::AtomicUsize);

impl registry_models::Blobs for Counting {
    async fn get(&self, _key: &str) -> Result<Option<Vec<u8>>, String> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(None)
    }
}

#[test]
fn an_embedded_champion_is_served_without_its_storage() {
    use registry_models::{Layered, ModelCache, RegistryModels, embedded_models};
    let onnx = onnx();
    let bundle = serde_json::to_vec(&bundle(&onnx)).unwrap();
    let alias = serde_json::to_vec(&registry::Alias {
        model: "fraud".into(),
        alias: "champion".into(),
        version: 3,
        previous: None,
        seq: 1,
        moved_at: "2026-11-27T00:00:00Z".into(),
        by: "test".into(),
        reason: "embedded".into(),
        rollback_of: None,
    })
    .unwrap();
    let leak = |v: Vec<u8>| -> &'static [u8] { Box::leak(v.into_boxed_slice()) };
    let objects: &'static [(&'static str, &'static [u8])] = Box::leak(Box::new([
        ("models/fraud/aliases/champion.json", leak(alias)),
        ("models/fraud/3/bundle.json", leak(bundle)),
        ("models/fraud/3/model.onnx", leak(onnx)),
    ]));
    assert_eq!(embedded_models(objects), vec!["fraud".to_string()]);
    let rest = Counting(Default::default());
    let models = RegistryModels::with_cache(
        Layered {
            embedded: objects,
            rest: Some(rest),
        },
        Arc::new(ModelCache::new(embedded_models(objects), 0, || 0)),
    );
    let m = futures::executor::block_on(models.model("fraud", None)).unwrap();
    assert_eq!((m.name(), m.version()), ("fraud", 3));
    // Only the feature spec, which this build did not embed, was asked of the storage.
    assert_eq!(
        models
            .blobs()
            .rest
            .as_ref()
            .unwrap()
            .0
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    // No other source: keys outside the build are simply missing.
    let alone: Layered<Counting> = Layered {
        embedded: objects,
        rest: None,
    };
    use registry_models::Blobs as _;
    assert!(
        futures::executor::block_on(alone.get("models/other/1/bundle.json"))
            .unwrap()
            .is_none()
    );
}

#[test]
fn the_model_cache_keeps_versions_up_to_its_byte_budget_least_recently_used_out() {
    use registry_models::{Blobs, ModelCache, RegistryModels};
    struct Versions(BTreeMap<String, Vec<u8>>);
    impl Blobs for Versions {
        async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
            Ok(self.0.get(key).cloned())
        }
    }
    let onnx = onnx();
    let mut objects = BTreeMap::new();
    let mut one_version = 0;
    for v in 1..=3u64 {
        let mut b = bundle(&onnx);
        b.version = v;
        b.model_key = format!("models/fraud/{v}/model.onnx");
        let bytes = serde_json::to_vec(&b).unwrap();
        one_version = one_version.max(bytes.len() + onnx.len());
        objects.insert(format!("models/fraud/{v}/bundle.json"), bytes);
        objects.insert(b.model_key.clone(), onnx.clone());
    }
    let load = |models: &RegistryModels<Versions>, v: u64| {
        futures::executor::block_on(models.model("fraud", Some(v))).unwrap();
    };
    let names = vec!["fraud".to_string()];
    // Room for two versions: the third pushes out the least recently used.
    let cache = Arc::new(ModelCache::new(names.clone(), 0, || 0).with_max_bytes(2 * one_version));
    let models = RegistryModels::with_cache(Versions(objects.clone()), cache.clone());
    load(&models, 1);
    load(&models, 2);
    load(&models, 1);
    load(&models, 3);
    let kept: Vec<u64> = cache.loaded().into_iter().map(|(_, v)| v).collect();
    assert_eq!(kept, vec![1, 3]);
    // A budget below one version still keeps the one in use.
    let tiny = Arc::new(ModelCache::new(names, 0, || 0).with_max_bytes(1));
    let models = RegistryModels::with_cache(Versions(objects), tiny.clone());
    load(&models, 1);
    load(&models, 2);
    let kept: Vec<u64> = tiny.loaded().into_iter().map(|(_, v)| v).collect();
    assert_eq!(kept, vec![2]);
}

/// A champion (v3) and a challenger (v4, the same network) under a traffic policy.
struct Pair {
    champion: Arc<Model>,
    challenger: Arc<Model>,
    traffic: records::models::Traffic,
}

impl Models for Pair {
    async fn model(&self, name: &str, version: Option<u64>) -> Result<Arc<Model>, InferenceError> {
        match (name, version) {
            ("fraud", None | Some(3)) => Ok(self.champion.clone()),
            ("fraud", Some(4)) => Ok(self.challenger.clone()),
            _ => Err(InferenceError::NotFound(format!("no {name} {version:?}"))),
        }
    }
    fn names(&self) -> Vec<String> {
        vec!["fraud".into()]
    }
    async fn traffic(&self, _: &str) -> Option<records::models::Traffic> {
        Some(self.traffic.clone())
    }
}

fn pair(share: f64, shadow: bool) -> Pair {
    let onnx = onnx();
    let mut b = bundle(&onnx);
    let champion = Model::load(&serde_json::to_vec(&b).unwrap(), &onnx, None).unwrap();
    b.version = 4;
    let challenger = Model::load(&serde_json::to_vec(&b).unwrap(), &onnx, None).unwrap();
    let mut traffic = records::models::Traffic::none("fraud");
    traffic.challenger = Some(4);
    traffic.canary_share = share;
    traffic.shadow = shadow;
    Pair {
        champion: Arc::new(champion),
        challenger: Arc::new(challenger),
        traffic,
    }
}

fn infer_on(models: &Pair, path: &str, id: &str) -> Response {
    let body = json!({"id": id, "inputs": [{"name": "features", "shape": [1, 3],
        "datatype": "FP32", "data": [1.0, 0.0, 2.0]}]});
    let body = body.to_string();
    let req = Request {
        method: "POST",
        path,
        headers: vec![],
        body: body.as_bytes(),
        client: None,
    };
    futures::executor::block_on(handle(
        models,
        &SnapshotStore::default(),
        &Settings::default(),
        &Guard::open(),
        &req,
        1_700_000_000_000_000,
    ))
}

fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn a_canary_sends_exactly_the_hashed_share_to_the_challenger_and_says_so() {
    let models = pair(0.5, false);
    let mut arms = BTreeMap::new();
    for i in 0..40 {
        let id = format!("req-{i}");
        let r = infer_on(&models, "/v2/models/fraud/infer", &id);
        assert_eq!(r.status, 200);
        let to_challenger = models.traffic.to_challenger(3, &id);
        let (version, arm) = if to_challenger {
            ("4", "challenger")
        } else {
            ("3", "champion")
        };
        assert_eq!(body_json(&r)["model_version"], version, "{id}");
        assert_eq!(header(&r, "x-model-version"), Some(version));
        assert_eq!(header(&r, "x-model-arm"), Some(arm));
        let log = r.log.unwrap();
        assert_eq!(log.version.to_string(), version);
        let line: Value =
            serde_json::from_slice(log.to_json_lines().split(|b| *b == b'\n').next().unwrap())
                .unwrap();
        assert_eq!(line["arm"], arm);
        assert!(log.shadow.is_none());
        *arms.entry(arm).or_insert(0) += 1;
    }
    assert!(arms["champion"] > 5 && arms["challenger"] > 5, "{arms:?}");
    // A version named by number is outside the experiment.
    let r = infer_on(&models, "/v2/models/fraud/versions/3/infer", "req-1");
    assert_eq!(header(&r, "x-model-arm"), None);
    assert_eq!(r.log.unwrap().arm, None);
}

#[test]
fn shadow_scoring_logs_the_challenger_beside_the_champion_and_returns_the_champion() {
    let models = pair(0.0, true);
    let r = infer_on(&models, "/v2/models/fraud/infer", "shadowed");
    assert_eq!(body_json(&r)["model_version"], "3");
    assert_eq!(header(&r, "x-model-arm"), Some("champion"));
    let text = String::from_utf8(r.log.unwrap().to_json_lines()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(
        (lines[0]["version"].as_u64(), lines[0]["arm"].as_str()),
        (Some(3), Some("champion"))
    );
    assert_eq!(
        (lines[1]["version"].as_u64(), lines[1]["arm"].as_str()),
        (Some(4), Some("shadow"))
    );
    // Both join a label by the same request id and index.
    assert_eq!(lines[0]["request_id"], lines[1]["request_id"]);
    assert_eq!(lines[0]["index"], lines[1]["index"]);
    assert_eq!(lines[0]["score"], lines[1]["score"]);
}

/// The route table is the router: every template answers its method (GET also HEAD), the
/// other method is 405, and a path outside the table is 404.
#[test]
fn every_route_of_the_table_routes_and_nothing_else_does() {
    use crate::service::{ROUTES, route};
    for (method, template) in ROUTES {
        let path = template
            .replace("{name}", "fraud")
            .replace("{version}", "3");
        let r = route(method, &path).unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        if template.contains("{version}") {
            assert_eq!(r.numbered(), Some(("fraud", 3)), "{path}");
        }
        let other = if *method == "GET" { "POST" } else { "GET" };
        assert_eq!(
            route(other, &path).unwrap_err().status(),
            405,
            "{other} {path}"
        );
        if *method == "GET" {
            assert!(route("HEAD", &path).is_ok());
        }
    }
    for path in [
        "/",
        "/v3",
        "/v2/models",
        "/v2/models//ready",
        "/v2/models/fraud/versions",
        "/v2/models/fraud/explain",
        "/v1/models/fraud:predict",
        "/docs",
        "/openapi.json",
    ] {
        assert_eq!(route("GET", path).unwrap_err().status(), 404, "{path}");
    }
    assert_eq!(
        route("GET", "/v2/models/fraud/versions/latest")
            .unwrap_err()
            .status(),
        404
    );
}

#[test]
fn a_format_one_bundle_still_loads_and_a_newer_format_is_refused() {
    let onnx = onnx();
    let mut v = serde_json::to_value(bundle(&onnx)).unwrap();
    v["format"] = 1.into();
    assert!(v.get("views").is_none(), "format 1 has no views list");
    let m = Model::load(&serde_json::to_vec(&v).unwrap(), &onnx, None).unwrap();
    assert_eq!(
        m.bundle.views(),
        vec![registry::ViewVersion {
            view: "v".into(),
            version: "x".into()
        }]
    );
    v["format"] = (registry::BUNDLE_FORMAT + 1).into();
    let err = Model::load(&serde_json::to_vec(&v).unwrap(), &onnx, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not supported"), "{err}");
}
