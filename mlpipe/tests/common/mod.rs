//! The conformance suite: the pipeline's output and the checks the three runtimes (the
//! native server in `serve.rs`, the Worker under `wrangler dev` in `worker.rs`, the Spin
//! component under `jco serve` in `spin.rs`) must pass alike, with the native server as the
//! reference for `/v1`. Each case and where it applies (`edge/README.md` has the same table):
//!
//! | case | native | Worker | Spin |
//! |---|---|---|---|
//! | [`check_endpoint`] (health, metadata, `/v2` = tract, Triton's client, 400/404/422, far-future time, `/v1` = native) | yes | yes | yes |
//! | [`check_oversized_stream`] (chunked body over the limit: 413) | yes | yes | yes |
//! | [`check_access`] (no, wrong, other-model, expired, revoked key) | yes | yes | yes |
//! | [`check_rate_limited`] (429 + `Retry-After`) | yes | yes | yes |
//! | [`wait_refused`] (revocation reaches a running instance) | yes | yes | yes |
//! | [`check_logs`] (server-named logs, repeated ids kept) | yes | yes | yes |
//! | [`check_traffic`] (canary assignment, shadow logging, promotion ends it) | yes | yes | yes |
//! | [`check_guessing_is_limited`] (per client address) | yes | yes | no: jco passes no address |
//! | [`check_slow_body`], [`check_slow_headers`] (408, connection closed) | yes | no: workerd owns the connection | no: jco owns it |
//! | [`check_edge_metrics`] (OTLP export, names as `records::metrics`) | no: `/metrics` text, `serve.rs` | yes | yes |
//! | [`byo::check`] (imported skl2onnx and PyTorch-style models = onnxruntime, mixed-type inputs) | yes, `import.rs` | yes | yes |

#![allow(dead_code, clippy::unwrap_used)] // test helpers fail loudly by design

pub mod byo;

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

/// A bundle's model inputs, in order.
pub fn input_names(bundle: &Value) -> Vec<String> {
    bundle["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect()
}

pub fn native_server(store: &Path) -> (Proc, String) {
    native_server_with(store, &[])
}

/// `mlpipe serve` on loopback with extra arguments (e.g. `--key-refresh 1`).
pub fn native_server_with(store: &Path, args: &[&str]) -> (Proc, String) {
    let s = native_server_listening(store, args);
    (s.proc, s.url)
}

/// A native server and where it listens.
pub struct Native {
    pub proc: Proc,
    /// The HTTP API's base URL.
    pub url: String,
    /// The gRPC listener's `HOST:PORT`, when `args` asked for one (`--grpc-addr`).
    pub grpc: Option<String>,
}

/// `mlpipe serve` on loopback with extra arguments; without `--grpc-addr` among them no
/// gRPC listener is started.
pub fn native_server_listening(store: &Path, args: &[&str]) -> Native {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mlpipe"));
    command.args(["serve", "--addr", "127.0.0.1:0", "--metrics-addr", "none"]);
    if !args.contains(&"--grpc-addr") {
        command.args(["--grpc-addr", "none"]);
    }
    let mut child = command
        .arg("--store")
        .arg(store)
        .args(args)
        .current_dir(ROOT)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let (mut url, mut grpc) = (None, None);
    // The server prints its listeners, the docs line last.
    loop {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 {
            panic!("mlpipe serve ended before it listened");
        }
        let line = line.trim();
        if line.starts_with("serving ") {
            url = Some(line.rsplit_once(" on ").unwrap().1.to_string());
        } else if let Some(g) = line.strip_prefix("grpc on ") {
            grpc = Some(g.to_string());
        } else if line.starts_with("docs on ") {
            break;
        }
    }
    Native {
        proc: Proc(child),
        url: url.expect("no 'serving' line from mlpipe serve"),
        grpc,
    }
}

/// An endpoint and the API key the suite calls it with.
#[derive(Clone)]
pub struct Api {
    pub url: String,
    pub key: Option<String>,
}

impl Api {
    pub fn new(url: &str, key: Option<&str>) -> Api {
        Api {
            url: url.to_string(),
            key: key.map(str::to_string),
        }
    }

    /// A client that sends the key on every request.
    pub fn http(&self) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(key) = &self.key {
            headers.insert(
                reqwest::header::AUTHORIZATION,
                format!("Bearer {key}").parse().unwrap(),
            );
        }
        reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap()
    }
}

/// Runs `mlpipe ARGS --store STORE`, which must succeed, and returns what it printed.
pub fn cli(store: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_mlpipe"))
        .args(args)
        .arg("--store")
        .arg(store)
        .current_dir(ROOT)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mlpipe {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `mlpipe keys ARGS --json --store STORE` and returns its JSON.
pub fn keys_cli(store: &Path, args: &[&str]) -> Value {
    let args: Vec<&str> = ["keys"]
        .into_iter()
        .chain(args.iter().copied())
        .chain(["--json"])
        .collect();
    serde_json::from_str(&cli(store, &args)).unwrap()
}

/// The keys the access cases use, created in `store` with the CLI: one for every model,
/// one with a low rate, one scoped to another model, one that expires at once, one revoked.
pub struct TestKeys {
    pub good: String,
    /// `--rate 0.5`: its second request at once is over the limit.
    pub slow: String,
    pub other_model: String,
    pub expired: String,
    pub revoked: String,
}

pub fn create_test_keys(store: &Path) -> TestKeys {
    let key = |args: &[&str]| {
        let mut all = vec!["create"];
        all.extend_from_slice(args);
        keys_cli(store, &all)["key"].as_str().unwrap().to_string()
    };
    let keys = TestKeys {
        good: key(&["--name", "conformance"]),
        slow: key(&["--name", "slow", "--rate", "0.5"]),
        other_model: key(&["--name", "other-model", "--models", "not-fraud"]),
        expired: key(&["--name", "expired", "--expires", "1s"]),
        revoked: key(&["--name", "revoked"]),
    };
    let revoked = keys_cli(store, &["revoke", "revoked"]);
    assert_eq!(revoked["state"], "revoked", "{revoked}");
    // Past the expired key's one second.
    std::thread::sleep(Duration::from_millis(1100));
    keys
}

/// The access cases every runtime answers alike: health open to all; no key and an
/// unknown key 401 with `WWW-Authenticate`; a key for another model, an expired and a
/// revoked key 403; errors that never repeat the key; the good key admitted.
pub async fn check_access(url: &str, keys: &TestKeys) {
    let http = reqwest::Client::new();
    for path in ["/v2/health/live", "/v2/health/ready"] {
        let r = http.get(format!("{url}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path} without a key");
    }
    let unknown = format!("mlp_0123456789ab_{}", "0".repeat(48));
    let cases: [(&str, Option<&str>, u16); 6] = [
        ("no key", None, 401),
        ("not a key", Some("hello"), 401),
        ("an unknown key", Some(&unknown), 401),
        ("a key for another model", Some(&keys.other_model), 403),
        ("an expired key", Some(&keys.expired), 403),
        ("a revoked key", Some(&keys.revoked), 403),
    ];
    for (what, key, status) in cases {
        for (method, path, body) in [
            ("GET", "/v2/models/fraud", None),
            (
                "POST",
                "/v1/models/fraud/predict",
                Some(r#"{"records":[{}]}"#),
            ),
        ] {
            let mut req = http.request(method.parse().unwrap(), format!("{url}{path}"));
            if let Some(key) = key {
                req = req.header("authorization", format!("Bearer {key}"));
            }
            if let Some(body) = body {
                req = req.body(body);
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.status().as_u16(), status, "{what}: {method} {path}");
            if status == 401 {
                let challenge = r.headers()["www-authenticate"].to_str().unwrap();
                assert!(challenge.starts_with("Bearer"), "{what}: {challenge}");
            }
            let text = r.text().await.unwrap();
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            assert!(v["error"].is_string(), "{what}: {text}");
            if let Some(key) = key {
                assert!(!text.contains(key), "{what}: the error repeats the key");
            }
        }
    }
    // Server metadata needs a key too; the good key is admitted.
    let r = http.get(format!("{url}/v2")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .get(format!("{url}/v2/models/fraud"))
        .header("authorization", format!("Bearer {}", keys.good))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Polls `url` with `key` until it is refused (403) after a revocation; the ceiling is
/// generous and no duration is asserted.
pub async fn wait_refused(url: &str, key: &str) {
    let http = reqwest::Client::new();
    let started = Instant::now();
    loop {
        let r = http
            .get(format!("{url}/v2/models/fraud"))
            .header("authorization", format!("Bearer {key}"))
            .send()
            .await
            .unwrap();
        if r.status() == 403 {
            return;
        }
        assert_eq!(r.status(), 200, "before the revocation reached {url}");
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{url} still accepts a revoked key after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A key created with a rate of its own (`--rate 0.5`: one request, then one every two
/// seconds; on the Worker its tier, one per 10 seconds) is answered 429 with `Retry-After`
/// on its second request at once; another key is not affected.
pub async fn check_rate_limited(url: &str, slow_key: &str, other_key: &str) {
    let http = reqwest::Client::new();
    let get = |key: &str| {
        http.get(format!("{url}/v2/models/fraud"))
            .header("authorization", format!("Bearer {key}"))
            .send()
    };
    assert_eq!(get(slow_key).await.unwrap().status(), 200);
    let r = get(slow_key).await.unwrap();
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=10).contains(&wait), "Retry-After {wait}");
    assert_eq!(get(other_key).await.unwrap().status(), 200);
}

/// A body over the limit sent chunked (no Content-Length, so only reading it shows its
/// size) is answered 413: each runtime counts the bytes as they stream in. Sent over a raw
/// connection in HTTP/1.1 chunked encoding; the server may answer and close before the
/// whole body is written, so write errors are expected and ignored.
pub async fn check_oversized_stream(api: &Api) {
    let addr = api.url.trim_start_matches("http://").to_string();
    let auth = api
        .key
        .as_ref()
        .map_or(String::new(), |k| format!("Authorization: Bearer {k}\r\n"));
    let head = format!(
        "POST /v1/models/fraud/predict HTTP/1.1\r\nHost: {addr}\r\n{auth}content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    let answer = tokio::task::spawn_blocking(move || {
        raw_exchange(&addr, move |s| {
            use std::io::Write;
            let _ = s.write_all(head.as_bytes());
            let chunk = vec![b' '; 64 * 1024];
            // 5 MiB of JSON whitespace: over the default 4 MiB limit.
            for _ in 0..80 {
                let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
                framed.extend_from_slice(&chunk);
                framed.extend_from_slice(b"\r\n");
                if s.write_all(&framed).is_err() {
                    return;
                }
            }
            let _ = s.write_all(b"0\r\n\r\n");
        })
    })
    .await
    .unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 413"),
        "a chunked body over the limit: {answer:?}"
    );
}

/// One exchange over a raw connection to `addr`: `write` sends the request while another
/// thread reads the answer's status line and headers (read while writing, so an answer
/// sent before the body ends is not lost to the reset that follows when the server closes
/// with the rest unread). Write errors are the caller's to ignore.
fn raw_exchange(addr: &str, write: impl FnOnce(&mut std::net::TcpStream)) -> String {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    // A server that answered and stopped reading must not hang the writer.
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reader = s.try_clone().unwrap();
    let read = std::thread::spawn(move || {
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
            if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        String::from_utf8_lossy(&answer).into_owned()
    });
    write(&mut s);
    read.join().unwrap()
}

/// A client that sends its headers and then trickles nothing of its body is answered 408
/// once the server's body timeout passes, and the connection does not hold the server
/// (health answers meanwhile). Native only: on the Worker and the Spin component the host
/// (workerd, jco, wasmtime) owns the connection and its timeouts.
pub async fn check_slow_body(url: &str, key: &str) {
    let addr = url.trim_start_matches("http://").to_string();
    let request = format!(
        "POST /v1/models/fraud/predict HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"records\""
    );
    let slow = std::thread::spawn(move || {
        raw_exchange(&addr, move |s| {
            use std::io::Write;
            s.write_all(request.as_bytes()).unwrap();
        })
    });
    let r = reqwest::get(format!("{url}/v2/health/live")).await.unwrap();
    assert_eq!(r.status(), 200, "health while a slow body is pending");
    let answer = tokio::task::spawn_blocking(move || slow.join().unwrap())
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

/// A client that opens a connection and never finishes its headers (slowloris) has the
/// connection closed once the server's header timeout passes (the read ends with the
/// connection, not with this side's 60-second read timeout), while other requests are
/// answered meanwhile. Native only, as for [`check_slow_body`].
pub async fn check_slow_headers(url: &str) {
    let addr = url.trim_start_matches("http://").to_string();
    let slow = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        s.write_all(format!("GET /v2/health/live HTTP/1.1\r\nHost: {addr}\r\n").as_bytes())
            .unwrap();
        let mut answer = Vec::new();
        let ended = s.read_to_end(&mut answer);
        (
            ended.map_err(|e| e.kind()),
            String::from_utf8_lossy(&answer).into_owned(),
        )
    });
    let r = reqwest::get(format!("{url}/v2/health/live")).await.unwrap();
    assert_eq!(r.status(), 200, "health while headers are pending");
    let (ended, answer) = tokio::task::spawn_blocking(move || slow.join().unwrap())
        .await
        .unwrap();
    assert!(
        matches!(ended, Ok(_) | Err(std::io::ErrorKind::ConnectionReset)),
        "the server kept the connection: {ended:?}"
    );
    assert!(!answer.contains(" 200 "), "{answer}");
}

/// Guessing keys from one address is answered 429 with `Retry-After` once the address has
/// used its failed attempts. Run it last against a runtime: the address stays limited for
/// the window. `client`: the header that carries the client's address where the platform
/// sets one (the Worker's `CF-Connecting-IP`, which Cloudflare overwrites in production);
/// natively the peer address counts.
pub async fn check_guessing_is_limited(url: &str, client: Option<(&str, &str)>) {
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for i in 0..40 {
        let mut req = http.get(format!("{url}/v2/models/fraud")).header(
            "authorization",
            format!("Bearer mlp_{i:012x}_{}", "7".repeat(48)),
        );
        if let Some((name, value)) = client {
            req = req.header(name, value);
        }
        let r = req.send().await.unwrap();
        if r.status() == 429 {
            let wait: u64 = r.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=60).contains(&wait), "Retry-After {wait}");
        }
        statuses.push(r.status().as_u16());
    }
    let first = statuses.iter().position(|s| *s == 429);
    assert!(
        first.is_some_and(|i| i >= 1
            && statuses[..i].iter().all(|s| *s == 401)
            && statuses[i..].iter().all(|s| *s == 429)),
        "{statuses:?}"
    );
}

/// Every file under `dir` (none when it does not exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
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
pub async fn check_v2(api: &Api, store: &Path) {
    let url = api.url.as_str();
    let http = api.http();
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
    let names = input_names(&bundle);
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
                .args(api.key.as_deref())
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
pub async fn check_endpoint(api: &Api, store: &Path, native: &Api) {
    check_v2(api, store).await;
    check_oversized_stream(api).await;
    let url = api.url.as_str();
    let native_url = native.url.as_str();
    let http = api.http();
    let native_http = native.http();
    let r = http
        .post(format!("{url}/v1/models/fraud/predict"))
        .json(&json!({ "records": [{"amount": 3.0}] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);

    // An event time far ahead of the clock is refused, not evaluated into missing windows.
    let mut future = records(1);
    future[0]["timestamp"] = json!("2099-01-01T00:00:00Z");
    let r = http
        .post(format!("{url}/v1/models/fraud/predict"))
        .json(&json!({ "records": future }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("ahead of the server's clock"),
        "{v}"
    );

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
    let native: Value = native_http
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

/// Runs `mlpipe models ARGS --store STORE`, returning what it printed.
pub fn models_cli(store: &Path, args: &[&str]) -> String {
    let args: Vec<&str> = ["models"].into_iter().chain(args.iter().copied()).collect();
    cli(store, &args)
}

/// Registers a challenger beside the champion in `store` and points the `challenger` alias
/// at it: the champion's network with the ONNX `model_version` field set (field 5, a valid
/// ONNX attribute every reader accepts), so a new content hash and a new version number
/// with the same answers. Returns (champion, challenger).
pub async fn add_challenger(store: &Path) -> (u64, u64) {
    let s = storage::Store::open(store.to_str().unwrap()).unwrap();
    let (champion, _) = champion(store);
    let bundle = registry::bundle(&s, "fraud", champion)
        .await
        .unwrap()
        .unwrap();
    let mut onnx = s.get(&bundle.model_key).await.unwrap().bytes.to_vec();
    onnx.extend([0x28, 0x02]); // model_version = 2
    let new = registry::NewVersion {
        task: bundle.task,
        family: bundle.family,
        inputs: bundle.inputs,
        classes: bundle.classes,
        threshold: bundle.threshold,
        feature_view: bundle.feature_view,
        feature_view_version: bundle.feature_view_version,
        feature_spec: bundle.feature_spec,
        dataset_snapshot: bundle.dataset_snapshot,
        reference_profile: bundle.reference_profile,
        training_run: bundle.training_run,
        metrics: bundle.metrics,
        tags: bundle.tags,
        joined_views: Vec::new(),
        training_table: None,
    };
    let challenger = registry::register(&s, "fraud", &onnx, new)
        .await
        .unwrap()
        .bundle()
        .version;
    registry::move_alias(
        &s,
        "fraud",
        "challenger",
        challenger,
        None,
        "test",
        "challenger",
    )
    .await
    .unwrap();
    (champion, challenger)
}

/// One `/v2` inference (a row of zeros) under request id `id`: (answering version, arm
/// header).
async fn infer_as(api: &Api, id: &str, width: usize) -> (u64, Option<String>) {
    let body = json!({"id": id, "inputs": [{"name": "features", "shape": [1, width],
        "datatype": "FP32", "data": vec![0.0; width]}]});
    let r = api
        .http()
        .post(format!("{}/v2/models/fraud/infer", api.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{id}");
    let header = |n: &str| r.headers().get(n).map(|v| v.to_str().unwrap().to_string());
    let (version, arm) = (header("x-model-version"), header("x-model-arm"));
    let v: Value = r.json().await.unwrap();
    let said: u64 = v["model_version"].as_str().unwrap().parse().unwrap();
    assert_eq!(version, Some(said.to_string()), "header and body agree");
    (said, arm)
}

/// A request id the policy `share` of `challenger` sends to the challenger (`to`) or not.
fn id_on_arm(champion: u64, challenger: u64, share: f64, to: bool) -> String {
    let mut t = records::models::Traffic::none("fraud");
    t.challenger = Some(challenger);
    t.canary_share = share;
    (0..)
        .map(|i| format!("probe-{i}"))
        .find(|id| t.to_challenger(champion, id) == to)
        .unwrap()
}

/// Waits (generous ceiling, no duration asserted) until request `id` is answered by
/// `version` with arm header `arm`: the runtime has read the published policy.
async fn wait_answered(api: &Api, id: &str, width: usize, version: u64, arm: Option<&str>) {
    let started = Instant::now();
    loop {
        let got = infer_as(api, id, width).await;
        if got == (version, arm.map(str::to_string)) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "{id} still answered by {got:?}, expected v{version} {arm:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Canary and shadow on a runtime serving `store`'s champion, the policy set with the CLI
/// and given to the runtime by `publish` (a no-op for the native server, which reads the
/// store). Every request lands on the arm the shared hash assigns (the request id on
/// `/v2`, the first entity key on `/v1`) and says so; in shadow, the champion answers and
/// the log (found by `find_log(request id)`) holds both arms' lines; a promotion ends the
/// policy. Runtimes: native, Worker, Spin. Leaves the challenger as champion.
pub async fn check_traffic(
    api: &Api,
    store: &Path,
    publish: impl Fn(),
    find_log: impl Fn(&str) -> Option<String>,
) {
    let (champion, challenger) = add_challenger(store).await;
    let width = self::champion(store).1["inputs"].as_array().unwrap().len();
    let share = 0.5;
    let said = models_cli(store, &["canary", "fraud", "--share", "0.5"]);
    assert!(
        said.contains(&format!("challenger v{challenger} answers 50.0%")),
        "{said}"
    );
    publish();
    let to_challenger = id_on_arm(champion, challenger, share, true);
    wait_answered(api, &to_challenger, width, challenger, Some("challenger")).await;

    // /v2: the request id decides.
    let mut t = records::models::Traffic::none("fraud");
    t.challenger = Some(challenger);
    t.canary_share = share;
    let mut arms = [0, 0];
    for i in 0..24 {
        let id = format!("canary-{i}");
        let expected = t.to_challenger(champion, &id);
        let got = infer_as(api, &id, width).await;
        let want = if expected {
            (challenger, Some("challenger".to_string()))
        } else {
            (champion, Some("champion".to_string()))
        };
        assert_eq!(got, want, "{id}");
        arms[usize::from(expected)] += 1;
    }
    assert!(arms[0] > 0 && arms[1] > 0, "{arms:?}");
    // /v1: the first record's entity key decides, whatever the request id.
    for (i, record) in records(12).into_iter().enumerate() {
        let r = api
            .http()
            .post(format!("{}/v1/models/fraud/predict", api.url))
            .json(&json!({"id": format!("entity-{i}"), "records": [record]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        let entity = v["predictions"][0]["entity"].as_str().unwrap();
        let expected = if t.to_challenger(champion, entity) {
            (challenger, "challenger")
        } else {
            (champion, "champion")
        };
        assert_eq!(
            (
                v["model_version"].as_str().unwrap().parse::<u64>().unwrap(),
                v["arm"].as_str().unwrap()
            ),
            expected,
            "{entity}"
        );
    }

    // Shadow: the canary ended, the challenger scores every request beside the champion.
    models_cli(store, &["canary", "fraud", "--share", "0"]);
    let said = models_cli(store, &["shadow", "fraud"]);
    assert!(said.contains("scores every request in shadow"), "{said}");
    publish();
    wait_answered(api, &to_challenger, width, champion, Some("champion")).await;
    let id = "shadow-v1";
    let r = api
        .http()
        .post(format!("{}/v1/models/fraud/predict", api.url))
        .json(&json!({"id": id, "records": records(3)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["model_version"], champion.to_string(), "{v}");
    let started = Instant::now();
    let log = loop {
        if let Some(log) = find_log(id) {
            break log;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no log for {id}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let arms: Vec<(u64, &str, u64)> = lines
        .iter()
        .map(|l| {
            (
                l["version"].as_u64().unwrap(),
                l["arm"].as_str().unwrap(),
                l["index"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        arms,
        [
            (champion, "champion", 0),
            (champion, "champion", 1),
            (champion, "champion", 2),
            (challenger, "shadow", 0),
            (challenger, "shadow", 1),
            (challenger, "shadow", 2),
        ],
        "{log}"
    );
    assert!(lines.iter().all(|l| l["request_id"] == id));

    // A promotion ends the policy: the new champion answers alone.
    models_cli(store, &["promote", "fraud", &challenger.to_string()]);
    let shown = models_cli(store, &["show", "fraud"]);
    assert!(shown.contains("traffic: no canary, no shadow"), "{shown}");
    publish();
    wait_answered(api, &to_challenger, width, challenger, None).await;
}

/// The test OTLP receiver (`otlp_receiver.py`, in the test venv's Python, which has
/// opentelemetry-proto) and the file of data points it decoded.
pub struct OtlpReceiver {
    _proc: Proc,
    pub endpoint: String,
    file: PathBuf,
}

/// The `authorization` header the edge runtimes are configured to send with their exports
/// (through `OTEL_EXPORTER_OTLP_HEADERS`, percent-encoded as the SDK reads it).
pub const OTLP_AUTH: &str = "Bearer edge-test";
pub const OTLP_HEADERS: &str = "authorization=Bearer%20edge-test";

pub fn otlp_receiver(dir: &Path) -> OtlpReceiver {
    use std::os::unix::process::CommandExt as _;
    let python = std::env::var("MLPIPE_PYTHON").unwrap_or_else(|_| "python3".into());
    let file = dir.join("otlp-points.jsonl");
    let mut child = Command::new(python)
        .arg(format!("{ROOT}/mlpipe/tests/otlp_receiver.py"))
        .arg(&file)
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("the OTLP receiver did not start: {line:?}"));
    OtlpReceiver {
        _proc: Proc(child),
        endpoint: format!("http://127.0.0.1:{port}"),
        file,
    }
}

impl OtlpReceiver {
    pub fn points(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.file)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// The edge runtime `service` (its `service.name`) exported its request metrics to `rx`
/// as OTLP, decoded by the reference protobuf definitions: every metric and label is one
/// `records::metrics` lists (with its kind), sums are cumulative and monotonic, the
/// configured headers came along, and in the latest export of each instance the fraud
/// latency histogram counts exactly the fraud requests over every status, among them
/// answered ones (200) and refused ones (401). Runtimes: Worker, Spin.
pub async fn check_edge_metrics(rx: &OtlpReceiver, service: &str) {
    use records::metrics::{INFERENCE_LATENCY, INFERENCE_REQUESTS, Kind};
    let started = Instant::now();
    let points = loop {
        let points: Vec<Value> = rx
            .points()
            .into_iter()
            .filter(|p| p["resource"]["service.name"] == service)
            .collect();
        let has = |status: &str| {
            points.iter().any(|p| {
                p["name"] == INFERENCE_REQUESTS
                    && p["attributes"]["model"] == "fraud"
                    && p["attributes"]["status"] == status
            })
        };
        if has("200") && has("401") {
            break points;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no OTLP export from {service} with 200 and 401 answers: {points:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    for p in &points {
        let name = p["name"].as_str().unwrap();
        let metric = records::metrics::find(name)
            .unwrap_or_else(|| panic!("{name} is not in records::metrics::ALL"));
        let kind = match metric.kind {
            Kind::Counter => "sum",
            Kind::Histogram => "histogram",
            Kind::Gauge => "gauge",
        };
        assert_eq!(p["kind"], kind, "{p}");
        let labels: Vec<&str> = p["attributes"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut declared = metric.labels.to_vec();
        declared.sort_unstable();
        assert_eq!(labels, declared, "{p}");
        assert_eq!(p["temporality"], 2, "cumulative: {p}");
        if kind == "sum" {
            assert_eq!(p["monotonic"], true, "{p}");
        }
        assert_eq!(p["authorization"], OTLP_AUTH, "{p}");
        assert!(p["resource"]["service.instance.id"].is_string(), "{p}");
    }
    // The latest export of one instance: its histogram counts every fraud request.
    let last = points
        .iter()
        .max_by_key(|p| p["time"].as_u64().unwrap())
        .unwrap();
    let (instance, time) = (&last["resource"]["service.instance.id"], &last["time"]);
    let export: Vec<&Value> = points
        .iter()
        .filter(|p| &p["resource"]["service.instance.id"] == instance && &p["time"] == time)
        .collect();
    let requests: u64 = export
        .iter()
        .filter(|p| p["name"] == INFERENCE_REQUESTS && p["attributes"]["model"] == "fraud")
        .map(|p| p["value"].as_u64().unwrap())
        .sum();
    let histogram = export
        .iter()
        .find(|p| p["name"] == INFERENCE_LATENCY && p["attributes"]["model"] == "fraud")
        .expect("a latency histogram for fraud");
    assert_eq!(
        histogram["count"].as_u64().unwrap(),
        requests,
        "{export:#?}"
    );
    let buckets: u64 = histogram["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_u64().unwrap())
        .sum();
    assert_eq!(buckets, requests);
    assert_eq!(
        histogram["bounds"].as_array().unwrap().len(),
        records::metrics::LATENCY_BUCKETS.len()
    );
}

/// Prediction logs, wherever the runtime writes them: the `/v1` request of
/// [`check_endpoint`] was logged ([`V1_RECORDS`] lines, each with the request id and its
/// record index), the object is named by the server (never after the client's id), and two
/// requests under one client-chosen id are two logs, neither replacing the other.
/// `logs_with(id)` returns (object name, text) of every log holding request id `id`.
/// Runtimes: native, Worker, Spin.
pub async fn check_logs(api: &Api, logs_with: impl Fn(&str) -> Vec<(String, String)>) {
    let wait_for = |id: &str, n: usize| {
        let started = Instant::now();
        loop {
            let found = logs_with(id);
            if found.len() >= n || started.elapsed() > Duration::from_secs(60) {
                return found;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    };
    // Natively the suite's reference is the server itself, so the request came twice.
    let found = tokio::task::block_in_place(|| wait_for(V1_ID, 1));
    assert!(!found.is_empty(), "no prediction log for {V1_ID}");
    for (name, text) in &found {
        assert!(
            !name.contains(V1_ID),
            "a log named after the client's id: {name}"
        );
        assert_eq!(text.lines().count(), V1_RECORDS, "{text}");
        for (i, line) in text.lines().enumerate() {
            let v: Value = serde_json::from_str(line).unwrap();
            assert_eq!(
                (v["request_id"].as_str(), v["index"].as_u64()),
                (Some(V1_ID), Some(i as u64))
            );
        }
    }
    let record = records(1);
    for _ in 0..2 {
        let r = api
            .http()
            .post(format!("{}/v1/models/fraud/predict", api.url))
            .json(&json!({ "id": "same-client-id", "records": record }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-request-id"], "same-client-id");
    }
    let both = tokio::task::block_in_place(|| wait_for("same-client-id", 2));
    assert_eq!(
        both.len(),
        2,
        "a request with a repeated id overwrote the first one's log"
    );
}

/// One (path, text) per logged request with id `id` in the files under `dir`: the lines of
/// that request (the shadow's after the champion's), as the Worker and Spin write one
/// object per request and the native server writes many requests to one object (its
/// writer batches them). A request's lines are contiguous, and each request starts at
/// index 0 on an arm other than `shadow`. A local store writes each object to a staging
/// file (`<name>#<n>`) and renames it: those are skipped, or a half-written log would be
/// read.
pub fn logs_in(dir: &Path, id: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for f in files_under(dir) {
        let name = f.to_string_lossy().into_owned();
        if name.contains('#') {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        let mut current: Option<String> = None;
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if v["request_id"].as_str() != Some(id) {
                if let Some(done) = current.take() {
                    found.push((name.clone(), done));
                }
                continue;
            }
            let starts = v["index"].as_u64() == Some(0) && v["arm"].as_str() != Some("shadow");
            if starts && let Some(done) = current.take() {
                found.push((name.clone(), done));
            }
            let run = current.get_or_insert_with(String::new);
            run.push_str(line);
            run.push('\n');
        }
        if let Some(done) = current.take() {
            found.push((name.clone(), done));
        }
    }
    found
}

/// An S3 protocol server (moto) for the tests that need a real S3 endpoint, from
/// `MLPIPE_MOTO_SERVER` or `.venv/bin/moto_server`; dropped with the test.
pub struct Moto {
    _proc: Proc,
    pub endpoint: String,
}

impl Moto {
    /// # Panics
    /// When no moto server starts: the test must not pass without it.
    pub fn start() -> Moto {
        use std::os::unix::process::CommandExt as _;
        let bin = std::env::var_os("MLPIPE_MOTO_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(ROOT).join(".venv/bin/moto_server"));
        let port = free_port();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "no moto_server at {} ({e}): run `cargo xtask test`, which installs it, or set MLPIPE_MOTO_SERVER",
                    bin.display()
                )
            });
        let proc = Proc(child);
        let endpoint = format!("http://127.0.0.1:{port}");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "moto_server did not listen"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto {
            _proc: proc,
            endpoint,
        }
    }

    /// Creates a bucket (moto takes unsigned requests).
    pub async fn create_bucket(&self, bucket: &str) {
        let r = reqwest::Client::new()
            .put(format!("{}/{bucket}", self.endpoint))
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_success(),
            "create bucket {bucket}: {}",
            r.status()
        );
    }
}

/// An OTLP/HTTP endpoint that keeps what it is sent: every request's path and raw body
/// (protobuf), answered 200. For searching exported traces and metrics for text that must
/// not be there; the strings of a span (names, attributes, events) are plain bytes in
/// protobuf. Stops with the test process.
pub struct OtlpSink {
    pub endpoint: String,
    received: Received,
}

/// Each request's path and body, in order.
type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, Vec<u8>)>>>;

impl OtlpSink {
    pub fn start() -> OtlpSink {
        use std::io::{Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let received: Received = std::sync::Arc::default();
        let sink = received.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let sink = sink.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(conn.try_clone().unwrap());
                    let mut conn = conn;
                    // One request after another on a kept-alive connection.
                    loop {
                        let mut request_line = String::new();
                        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                            return;
                        }
                        let path = request_line
                            .split_whitespace()
                            .nth(1)
                            .unwrap_or_default()
                            .to_string();
                        let (mut length, mut chunked) = (0usize, false);
                        loop {
                            let mut header = String::new();
                            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                                return;
                            }
                            let header = header.trim_end();
                            if header.is_empty() {
                                break;
                            }
                            let (name, value) = header.split_once(':').unwrap_or((header, ""));
                            if name.eq_ignore_ascii_case("content-length") {
                                length = value.trim().parse().unwrap_or(0);
                            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                                chunked = value.to_ascii_lowercase().contains("chunked");
                            }
                        }
                        let mut body = Vec::new();
                        if chunked {
                            loop {
                                let mut size = String::new();
                                let _ = reader.read_line(&mut size);
                                let n = usize::from_str_radix(
                                    size.trim().split(';').next().unwrap_or("0"),
                                    16,
                                )
                                .unwrap_or(0);
                                let mut chunk = vec![0; n + 2];
                                if reader.read_exact(&mut chunk).is_err() {
                                    return;
                                }
                                if n == 0 {
                                    break;
                                }
                                body.extend_from_slice(&chunk[..n]);
                            }
                        } else {
                            body.resize(length, 0);
                            if reader.read_exact(&mut body).is_err() {
                                return;
                            }
                        }
                        sink.lock().unwrap().push((path, body));
                        let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
                        if conn.write_all(answer.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        OtlpSink { endpoint, received }
    }

    /// (path, body) of every request so far.
    pub fn received(&self) -> Vec<(String, Vec<u8>)> {
        self.received.lock().unwrap().clone()
    }
}
