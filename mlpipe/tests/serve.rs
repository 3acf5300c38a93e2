//! `mlpipe serve`: the champion trained by `mlpipe run`, served over HTTP with the edge's
//! API, called the way clients call it (plain HTTP here; Triton's own Python client too).

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

mod common;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

struct Server {
    child: Child,
    url: String,
    /// The metrics listener's base URL.
    metrics: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(store: &std::path::Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mlpipe"))
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--refresh",
            "0",
            "--metrics-addr",
            "127.0.0.1:0",
            "--store",
        ])
        .arg(store)
        .current_dir(ROOT)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let url = line
        .trim()
        .rsplit_once(" on ")
        .map(|(_, u)| u.to_string())
        .unwrap_or_else(|| panic!("unexpected first line from mlpipe serve: {line:?}"));
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let metrics = line
        .trim()
        .strip_prefix("metrics on ")
        .and_then(|u| u.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("unexpected second line from mlpipe serve: {line:?}"))
        .to_string();
    Server {
        child,
        url,
        metrics,
    }
}

/// The feature rows of the test split, from the pipeline's own training set.
fn test_rows(store: &std::path::Path, dir: &std::path::Path) -> (Vec<String>, Vec<Vec<f32>>) {
    let out = dir.join("set.parquet");
    let st = Command::new(env!("CARGO_BIN_EXE_mlpipe"))
        .args(["features", "training-set", "card_activity", "--store"])
        .arg(store)
        .arg("--out")
        .arg(&out)
        .current_dir(ROOT)
        .status()
        .unwrap();
    assert!(st.success());
    let bundle: Value =
        serde_json::from_slice(&std::fs::read(store.join("models/fraud/1/bundle.json")).unwrap())
            .unwrap();
    let names: Vec<String> = bundle["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect();
    use ingest::polars::prelude::*;
    let df = ParquetReader::new(std::fs::File::open(&out).unwrap())
        .finish()
        .unwrap()
        .head(Some(40));
    let mut rows = vec![Vec::new(); df.height()];
    for n in &names {
        let col = df.column(n).unwrap().cast(&DataType::Float32).unwrap();
        let ca = col.f32().unwrap();
        for (i, row) in rows.iter_mut().enumerate() {
            row.push(ca.get(i).unwrap_or(f32::NAN));
        }
    }
    (names, rows)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_champion_is_served_with_the_open_inference_protocol_and_v1_predict() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let run = Command::new(env!("CARGO_BIN_EXE_mlpipe"))
        .args(["run", "--json", "--store"])
        .arg(&store)
        .current_dir(ROOT)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let (names, rows) = test_rows(&store, dir.path());
    let server = serve(&store);
    let http = reqwest::Client::new();
    let get = |path: &str| {
        let http = http.clone();
        let url = format!("{}{path}", server.url);
        async move { http.get(url).send().await.unwrap() }
    };
    assert_eq!(get("/v2/health/live").await.status(), 200);
    assert_eq!(get("/v2/health/ready").await.status(), 200);
    assert_eq!(get("/v2/models/fraud/ready").await.status(), 200);
    let meta: Value = get("/v2/models/fraud").await.json().await.unwrap();
    assert_eq!(meta["parameters"]["feature_names"], json!(names));
    assert_eq!(get("/v2/models/nope").await.status(), 404);

    // The served probabilities are the model's: tract on model.onnx, run here.
    let onnx = std::fs::read(store.join("models/fraud/1/model.onnx")).unwrap();
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    let direct = train::export::run_onnx(&onnx, &flat, rows.len(), names.len()).unwrap();
    let data: Vec<Vec<Value>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|v| if v.is_nan() { Value::Null } else { json!(v) })
                .collect()
        })
        .collect();
    let body = json!({
        "id": "batch-1",
        "inputs": [{"name": "features", "shape": [rows.len(), names.len()],
                    "datatype": "FP32", "data": data}]
    });
    // No Content-Type header, as Triton's synchronous client sends it.
    let r = http
        .post(format!("{}/v2/models/fraud/infer", server.url))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-request-id"], "batch-1");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["id"], "batch-1");
    let probs = v["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "probability")
        .unwrap()["data"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(probs.len(), direct.len());
    for (p, d) in probs.iter().zip(&direct) {
        assert!((p.as_f64().unwrap() as f32 - d[1]).abs() <= 1e-6);
    }

    // /v1: raw records; the endpoint computes the features from the online store.
    let csv =
        std::fs::read_to_string(format!("{ROOT}/examples/fraud/data/transactions.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let records: Vec<Value> = lines
        .take(5)
        .map(|l| {
            let obj: serde_json::Map<String, Value> = header
                .iter()
                .zip(l.split(','))
                .filter(|(k, _)| **k != "is_fraud")
                .map(|(k, v)| {
                    let v = match *k {
                        "amount" => json!(v.parse::<f64>().unwrap()),
                        _ => json!(v),
                    };
                    (k.to_string(), v)
                })
                .collect();
            Value::Object(obj)
        })
        .collect();
    let r = http
        .post(format!("{}/v1/models/fraud/predict", server.url))
        .json(&json!({ "records": records }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let preds = v["predictions"].as_array().unwrap();
    assert_eq!(preds.len(), 5);
    for (i, p) in preds.iter().enumerate() {
        assert_eq!(p["index"], i);
        let prob = p["probability"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&prob));
        assert_eq!(p["unknown_entity"], false, "{p}");
    }
    let id = v["id"].as_str().unwrap().to_string();

    // Bad input: a JSON error naming the problem, never a crash.
    let r = http
        .post(format!("{}/v1/models/fraud/predict", server.url))
        .json(&json!({ "records": [{"amount": 3.0}] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"].as_str().unwrap().contains("card_id"), "{v}");

    // Prometheus text at /metrics on its own listener: the requests above, by model and
    // status, their records and latency histogram. Not on the API's listener.
    assert_eq!(get("/metrics").await.status(), 404);
    let r = reqwest::get(format!("{}/metrics", server.metrics))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let metrics = r.text().await.unwrap();
    let sample = |line_start: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(line_start))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no `{line_start}` in\n{metrics}"))
    };
    assert!(metrics.contains("# TYPE mlpipe_inference_requests_total counter"));
    assert_eq!(
        sample("mlpipe_inference_requests_total{model=\"fraud\",status=\"200\"}"),
        4.0,
        "readiness, metadata, the /v2 batch and the /v1 call"
    );
    assert_eq!(
        sample("mlpipe_inference_requests_total{model=\"fraud\",status=\"422\"}"),
        1.0
    );
    assert_eq!(
        sample("mlpipe_inference_rows_total{model=\"fraud\"}"),
        (rows.len() + 5) as f64
    );
    assert_eq!(
        sample("mlpipe_inference_latency_seconds_count{model=\"fraud\"}"),
        5.0
    );

    // Every prediction is logged under inference-logs/, each line carrying the request id
    // and index; the object's name is the server's, not the client's id.
    let logged_for = |id: &str| -> Vec<String> {
        walk(&store.join("inference-logs/fraud"))
            .iter()
            .filter_map(|f| std::fs::read_to_string(f).ok())
            .filter(|text| {
                text.lines()
                    .next()
                    .and_then(|l| serde_json::from_str::<Value>(l).ok())
                    .is_some_and(|v| v["request_id"] == id)
            })
            .collect()
    };
    let mut found = false;
    for _ in 0..50 {
        if let Some(text) = logged_for(&id).first() {
            assert_eq!(text.lines().count(), 5);
            let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
            assert_eq!(first["request_id"], id);
            assert_eq!(first["index"], 0);
            found = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        walk(&store.join("inference-logs/fraud"))
            .iter()
            .all(|p| !p.to_string_lossy().contains(&id)),
        "a log object is named after the client's request id"
    );
    assert!(found, "no inference log for request {id}");

    // Two requests under one client-chosen id are two logs: neither replaces the other.
    for _ in 0..2 {
        let r = http
            .post(format!("{}/v1/models/fraud/predict", server.url))
            .json(&json!({ "id": "same-client-id", "records": [records[0]] }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-request-id"], "same-client-id");
    }
    let mut both = 0;
    for _ in 0..50 {
        both = logged_for("same-client-id").len();
        if both == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        both, 2,
        "a request with a repeated id overwrote the first one's log"
    );

    // Triton's own Python client with default settings (binary tensors) works unchanged.
    let python = std::env::var("MLPIPE_PYTHON").ok();
    match python {
        Some(python) => {
            let out = Command::new(python)
                .arg(format!("{ROOT}/tests/clients/triton_infer.py"))
                .arg(server.url.trim_start_matches("http://"))
                .arg(serde_json::to_string(&rows).unwrap().replace("NaN", "null"))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            let p = v["probability"].as_array().unwrap();
            assert_eq!(p.len(), rows.len());
            assert_eq!(direct.len(), rows.len());
            for (p, d) in p.iter().zip(&direct) {
                assert!((p.as_f64().unwrap() as f32 - d[1]).abs() <= 1e-6);
            }
        }
        None if std::env::var("CI").is_ok() => {
            panic!("MLPIPE_PYTHON (a Python with tritonclient) is required under CI")
        }
        None => eprintln!("MLPIPE_PYTHON not set: the Triton client check did not run"),
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// API keys on the native server: open on loopback until a key exists; then the access
/// cases every runtime answers alike; a revocation reaches the running server within its
/// key refresh (one second here); guessing keys from one address is limited; and a server
/// on a non-loopback address refuses to start without keys.
/// The prediction log under `dir` that carries request id `id`.
fn log_with(dir: &std::path::Path, id: &str) -> Option<String> {
    common::files_under(dir)
        .into_iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .find(|text| text.contains(&format!("\"request_id\":\"{id}\"")))
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_guard_the_native_server_and_revocations_reach_it_while_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::run_pipeline(dir.path());
    // One server at a time on a local store: the embedded online store is single-process.
    let (open, open_url) = common::native_server(&store);
    let r = reqwest::get(format!("{open_url}/v2/models/fraud"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "loopback with no key configured is open");
    drop(open);

    let keys = common::create_test_keys(&store);
    let any = common::keys_cli(
        &store,
        &["create", "--name", "any-version", "--any-version"],
    )["key"]
        .as_str()
        .unwrap()
        .to_string();
    let (_server, url) = common::native_server_with(
        &store,
        &[
            "--key-refresh",
            "1",
            "--body-timeout",
            "1",
            "--header-timeout",
            "1",
            "--refresh",
            "1",
        ],
    );
    // The suite every runtime runs (the native server is its own reference for /v1).
    let api = common::Api::new(&url, Some(&keys.good));
    common::check_endpoint(&api, &store, &api).await;
    common::check_access(&url, &keys).await;
    common::check_rate_limited(&url, &keys.slow, &keys.good).await;
    common::check_slow_body(&url, &keys.good).await;
    common::check_slow_headers(&url).await;
    // Versions by number: the champion's with any key; another only with --any-version.
    let (champion, _) = common::champion(&store);
    let version = |key: &str, v: u64| {
        reqwest::Client::new()
            .get(format!("{url}/v2/models/fraud/versions/{v}"))
            .header("authorization", format!("Bearer {key}"))
            .send()
    };
    assert_eq!(version(&keys.good, champion).await.unwrap().status(), 200);
    assert_eq!(
        version(&keys.good, champion + 100).await.unwrap().status(),
        403
    );
    assert_eq!(
        version(&any, champion + 100).await.unwrap().status(),
        404,
        "an --any-version key reaches the version lookup"
    );
    // Metrics are not on the API's listener (they have their own).
    let r = reqwest::get(format!("{url}/metrics")).await.unwrap();
    assert_eq!(r.status(), 404);
    // Canary and shadow: the server reads the policy from the store itself.
    let logs = store.join("inference-logs/fraud");
    common::check_traffic(&api, &store, || {}, |id| log_with(&logs, id)).await;
    common::keys_cli(&store, &["revoke", "conformance"]);
    common::wait_refused(&url, &keys.good).await;
    common::check_guessing_is_limited(&url, None).await;

    // Beyond loopback, no keys: refused at start, with what to do.
    let empty = dir.path().join("empty");
    let out = Command::new(env!("CARGO_BIN_EXE_mlpipe"))
        .args(["serve", "--addr", "0.0.0.0:0", "--store"])
        .arg(&empty)
        .current_dir(ROOT)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("without API keys") && err.contains("mlpipe keys create"),
        "{err}"
    );
}
