//! Shared by the edge runtime tests (the Worker, the Spin component): the pipeline's output
//! and the checks every runtime must pass, with the native server as the reference.

#![allow(dead_code, clippy::unwrap_used)] // test helpers fail loudly by design

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// A child process, killed on drop with its process group (hosts such as jco and wrangler
/// run the server in a grandchild; start those with `process_group(0)`).
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.0.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Node tools from `cargo xtask test` (`MLPIPE_NODE_BIN`), or `None` outside CI.
pub fn node_bin(what: &str) -> Option<PathBuf> {
    match std::env::var_os("MLPIPE_NODE_BIN").map(PathBuf::from) {
        Some(bin) if bin.join("node").is_file() => Some(bin),
        _ if std::env::var("CI").is_ok() => {
            panic!(
                "{what} needs MLPIPE_NODE_BIN (Node 22 and the npm tools); run it through `cargo xtask test`"
            )
        }
        _ => None,
    }
}

/// PATH with `bin` first.
pub fn path_with(bin: &Path) -> std::ffi::OsString {
    std::env::join_paths(
        std::iter::once(bin.to_path_buf())
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap()
}

/// `mlpipe run` on the sample into `dir/store`.
pub fn run_pipeline(dir: &Path) -> PathBuf {
    run_pipeline_with(dir, &[]).0
}

/// `mlpipe run --json` with extra environment (e.g. an edge target): the store and the
/// run's summary.
pub fn run_pipeline_with(dir: &Path, env: &[(&str, &Path)]) -> (PathBuf, Value) {
    let store = dir.join("store");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mlpipe"));
    cmd.args(["run", "--json", "--store"])
        .arg(&store)
        .current_dir(ROOT);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let run = cmd.output().unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let summary = serde_json::from_slice(&run.stdout).unwrap_or(Value::Null);
    (store, summary)
}

/// The champion's version and bundle.
pub fn champion(store: &Path) -> (u64, Value) {
    let alias: Value = serde_json::from_slice(
        &std::fs::read(store.join("models/fraud/aliases/champion.json")).unwrap(),
    )
    .unwrap();
    let version = alias["version"].as_u64().unwrap();
    let bundle: Value = serde_json::from_slice(
        &std::fs::read(store.join(format!("models/fraud/{version}/bundle.json"))).unwrap(),
    )
    .unwrap();
    (version, bundle)
}

pub fn native_server(store: &Path) -> (Proc, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mlpipe"))
        .args(["serve", "--addr", "127.0.0.1:0", "--store"])
        .arg(store)
        .current_dir(ROOT)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().rsplit_once(" on ").unwrap().1.to_string();
    (Proc(child), url)
}

/// Waits until `url` answers `/v2/health/live`.
pub async fn wait_live(url: &str, what: &str, proc: &mut Proc) {
    let http = reqwest::Client::new();
    let started = Instant::now();
    loop {
        if let Ok(r) = http.get(format!("{url}/v2/health/live")).send().await
            && r.status() == 200
        {
            return;
        }
        if let Ok(Some(status)) = proc.0.try_wait() {
            panic!("{what} exited with {status} before answering on {url}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{what} did not answer on {url}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn records(n: usize) -> Vec<Value> {
    let csv =
        std::fs::read_to_string(format!("{ROOT}/examples/fraud/data/transactions.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .skip(100)
        .take(n)
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
        .collect()
}

fn probabilities(v: &Value) -> Vec<f64> {
    v["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["probability"].as_f64().unwrap())
        .collect()
}

/// Records sent to `/v1` by [`check_endpoint`], under this request id.
pub const V1_ID: &str = "edge-v1";
pub const V1_RECORDS: usize = 8;

/// The Open Inference Protocol checks every runtime passes for the champion in `store`
/// (a pipeline store or a folder with the registry's layout): health, metadata, a 404 for
/// an unknown model, a batch whose probabilities equal tract's run natively here, a 400 for
/// a body that is not JSON, and Triton's Python client with default settings.
pub async fn check_v2(url: &str, store: &Path) {
    let http = reqwest::Client::new();
    let (version, bundle) = champion(store);
    let ready = http
        .get(format!("{url}/v2/health/ready"))
        .send()
        .await
        .unwrap();
    if ready.status() != 200 {
        // Say why: the model's own endpoint carries the loading error.
        let why = http
            .get(format!("{url}/v2/models/fraud"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        panic!("{url} is not ready ({}): {why}", ready.status());
    }
    let meta: Value = http
        .get(format!("{url}/v2/models/fraud"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["versions"], json!([version.to_string()]), "{meta}");
    let names: Vec<String> = bundle["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(meta["parameters"]["feature_names"], json!(names));
    let missing = http
        .get(format!("{url}/v2/models/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let v: Value = missing.json().await.unwrap();
    assert!(v["error"].as_str().unwrap().contains("nope"), "{v}");

    // /v2 infer: the probabilities are tract's on model.onnx, run natively here.
    let onnx = std::fs::read(store.join(bundle["model_key"].as_str().unwrap())).unwrap();
    let rows: Vec<Vec<f32>> = (0..12)
        .map(|i| {
            (0..names.len())
                .map(|j| ((i * 7 + j * 3) % 11) as f32 * 0.5)
                .collect()
        })
        .collect();
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    let direct = train::export::run_onnx(&onnx, &flat, rows.len(), names.len()).unwrap();
    let body = json!({
        "id": "edge-batch-1",
        "inputs": [{"name": "features", "shape": [rows.len(), names.len()],
                    "datatype": "FP32", "data": rows}]
    });
    let r = http
        .post(format!("{url}/v2/models/fraud/infer"))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-request-id"], "edge-batch-1");
    let v: Value = r.json().await.unwrap();
    let probs = v["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "probability")
        .unwrap()["data"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(probs.len(), rows.len());
    assert_eq!(direct.len(), rows.len());
    for (p, d) in probs.iter().zip(&direct) {
        assert!(
            (p.as_f64().unwrap() as f32 - d[1]).abs() <= 1e-6,
            "{p} vs {d:?}"
        );
    }

    // Bad input gets the API's JSON errors on this runtime too.
    let r = http
        .post(format!("{url}/v2/models/fraud/infer"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Triton's Python client with default settings (binary tensors) against this endpoint.
    match std::env::var("MLPIPE_PYTHON") {
        Ok(python) => {
            let out = Command::new(python)
                .arg(format!("{ROOT}/tests/clients/triton_infer.py"))
                .arg(url.trim_start_matches("http://"))
                .arg(serde_json::to_string(&rows).unwrap())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            let p = v["probability"].as_array().unwrap();
            assert_eq!(p.len(), direct.len());
            for (p, d) in p.iter().zip(&direct) {
                assert!((p.as_f64().unwrap() as f32 - d[1]).abs() <= 1e-6);
            }
        }
        Err(_) if std::env::var("CI").is_ok() => {
            panic!("MLPIPE_PYTHON (a Python with tritonclient) is required under CI")
        }
        Err(_) => eprintln!("MLPIPE_PYTHON not set: the Triton client check did not run"),
    }
}

/// The API checks every runtime passes: readiness and metadata, `/v2` infer equal to tract
/// on the model file, JSON errors for bad input, `/v1` predictions equal to the native
/// server's (`native_url`, features from the pipeline's store).
pub async fn check_endpoint(url: &str, store: &Path, native_url: &str) {
    check_v2(url, store).await;
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{url}/v1/models/fraud/predict"))
        .json(&json!({ "records": [{"amount": 3.0}] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);

    // /v1 predict: features from this runtime's online source equal the store's natively.
    let recs = records(V1_RECORDS);
    let body = json!({ "id": V1_ID, "records": recs });
    let worker: Value = http
        .post(format!("{url}/v1/models/fraud/predict"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let native: Value = http
        .post(format!("{native_url}/v1/models/fraud/predict"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (w, n) = (probabilities(&worker), probabilities(&native));
    assert_eq!(w.len(), recs.len(), "{worker}");
    for (i, p) in worker["predictions"].as_array().unwrap().iter().enumerate() {
        assert_eq!(p["unknown_entity"], false, "{p}");
        assert!(
            (w[i] - n[i]).abs() <= 1e-6,
            "record {i}: worker {} native {}",
            w[i],
            n[i]
        );
    }
}
