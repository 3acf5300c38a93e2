//! `mlpipe serve`: the champion trained by `mlpipe run`, served over HTTP with the edge's
//! API, called the way clients call it (plain HTTP here; Triton's own Python client too).

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

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
            "--grpc-addr",
            "none",
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

#[tokio::test(flavor = "multi_thread")]
async fn the_champion_is_served_with_the_open_inference_protocol_and_v1_predict() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::run_pipeline(dir.path());
    let server = serve(&store);
    // The suite every runtime runs (the native server is its own /v1 reference); on
    // loopback with no key created, no key is needed.
    let api = common::Api::new(&server.url, None);
    common::check_endpoint(&api, &store, &api).await;
    let logs = store.join("inference-logs/fraud");
    common::check_logs(&api, |id| common::logs_in(&logs, id)).await;
    check_spec_matches_router(&server.url, &store).await;
    check_docs_render(&server.url);

    // Native only: Prometheus text at /metrics on its own listener (not on the API's): the
    // requests above by model and status, their records and the latency histogram, which
    // counts every request to the model whatever its status.
    let r = reqwest::get(format!("{}/metrics", server.url))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
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
    assert!(metrics.contains("# TYPE mlpipe_inference_requests_total counter"));
    let samples = |prefix: &str| -> Vec<f64> {
        metrics
            .lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
            .collect()
    };
    let one = |prefix: &str| -> f64 {
        let s = samples(prefix);
        assert_eq!(s.len(), 1, "`{prefix}` in\n{metrics}");
        s[0]
    };
    assert!(one("mlpipe_inference_requests_total{model=\"fraud\",status=\"200\"}") >= 3.0);
    assert!(one("mlpipe_inference_requests_total{model=\"fraud\",status=\"422\"}") >= 2.0);
    let fraud: f64 = samples("mlpipe_inference_requests_total{model=\"fraud\",")
        .iter()
        .sum();
    assert_eq!(
        one("mlpipe_inference_latency_seconds_count{model=\"fraud\"}"),
        fraud,
        "{metrics}"
    );
    assert!(one("mlpipe_inference_rows_total{model=\"fraud\"}") >= common::V1_RECORDS as f64);
}

/// API keys on the native server: open on loopback until a key exists; then the access
/// cases every runtime answers alike; a revocation reaches the running server within its
/// key refresh (one second here); guessing keys from one address is limited; and a server
/// on a non-loopback address refuses to start without keys, and a canary and shadow on it.
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
    let server = common::native_server_listening(
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
            "--grpc-addr",
            "127.0.0.1:0",
        ],
    );
    let url = server.url.clone();
    // The suite every runtime runs (the native server is its own reference for /v1).
    let api = common::Api::new(&url, Some(&keys.good));
    common::check_endpoint(&api, &store, &api).await;
    check_grpc(&url, server.grpc.as_deref().unwrap(), &keys.good, &store);
    check_docs_try_it_out(&url, &keys.good);
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
    common::check_traffic(
        &api,
        &store,
        || {},
        |id| common::logs_in(&logs, id).pop().map(|(_, text)| text),
    )
    .await;
    // The server reports each admitted key's last use at its key refresh; refused keys
    // were never admitted.
    let started = std::time::Instant::now();
    loop {
        let rows = common::keys_cli(&store, &["list"]);
        let last_used = |name: &str| {
            rows.as_array()
                .unwrap()
                .iter()
                .find(|r| r["name"] == name)
                .unwrap()["last_used"]
                .clone()
        };
        assert!(last_used("revoked").is_null() && last_used("expired").is_null());
        if last_used("conformance").is_string() {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "no last use reported: {rows}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    common::keys_cli(&store, &["revoke", "conformance"]);
    common::wait_refused(&url, &keys.good).await;
    common::check_guessing_is_limited(&url, None).await;

    // Beyond loopback, no keys: refused at start, with what to do; the same when only the
    // gRPC listener is beyond loopback.
    let empty = dir.path().join("empty");
    for (addr, grpc) in [("0.0.0.0:0", "none"), ("127.0.0.1:0", "0.0.0.0:0")] {
        let out = Command::new(env!("CARGO_BIN_EXE_mlpipe"))
            .args(["serve", "--addr", addr, "--grpc-addr", grpc, "--store"])
            .arg(&empty)
            .current_dir(ROOT)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("refusing to serve on 0.0.0.0:0 without API keys")
                && err.contains("mlpipe keys create"),
            "{err}"
        );
    }
}

/// The Open Inference Protocol over gRPC, called with Triton's own gRPC client
/// (`tests/clients/triton_grpc.py`) beside Triton's HTTP client on the same server, model
/// and rows: health, metadata and outputs must be the same over both, typed contents must
/// give what raw bytes give, refusals keep their meaning (unknown model NOT_FOUND, wrong key
/// UNAUTHENTICATED), the standard health service and reflection answer, and the reflected
/// `.proto` matches the descriptor Triton's client carries.
fn check_grpc(url: &str, grpc: &str, key: &str, store: &std::path::Path) {
    let (_, bundle) = common::champion(store);
    let width = common::input_names(&bundle).len();
    let rows: Vec<Vec<Option<f32>>> = (0..9)
        .map(|i| {
            (0..width)
                .map(|j| ((i + j) % 5 != 0).then_some(((i * 5 + j * 7) % 13) as f32 * 0.25))
                .collect()
        })
        .collect();
    let python = std::env::var("MLPIPE_PYTHON").unwrap_or_else(|_| {
        assert!(
            std::env::var("CI").is_err(),
            "MLPIPE_PYTHON (a Python with tritonclient[grpc]) is required under CI"
        );
        format!("{ROOT}/.venv/bin/python")
    });
    let out = Command::new(python)
        .arg(format!("{ROOT}/tests/clients/triton_grpc.py"))
        .arg(url.trim_start_matches("http://"))
        .arg(grpc)
        .arg(serde_json::to_string(&rows).unwrap())
        .arg(key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "triton_grpc.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (http, grpc) = (&v["http"], &v["grpc"]);
    for field in ["live", "ready", "model_ready", "server", "id"] {
        assert_eq!(http[field], grpc[field], "{field}: {v}");
    }
    assert_eq!(grpc["live"], true);
    assert_eq!(grpc["id"], "conformance-1");
    // REST metadata carries parameters (feature names) that gRPC's message has no field for.
    for field in ["name", "versions", "platform", "inputs", "outputs"] {
        assert_eq!(
            http["metadata"][field], grpc["metadata"][field],
            "{field}: {v}"
        );
    }
    assert_eq!(http["outputs"], grpc["outputs"], "{v}");
    let probability = grpc["outputs"]["probability"].as_array().unwrap();
    assert_eq!(probability.len(), rows.len());
    assert_eq!(
        v["grpc_typed"]["probability"],
        grpc["outputs"]["probability"]
    );
    assert_eq!(v["codes"]["unknown_model"], "StatusCode.NOT_FOUND", "{v}");
    assert_eq!(v["codes"]["wrong_key"], "StatusCode.UNAUTHENTICATED", "{v}");
    // The .proto the server reflects is Triton's for every message and method it has.
    assert_eq!(v["descriptor_mismatches"], serde_json::json!([]), "{v}");
    assert!(v["descriptor_compared"].as_u64().unwrap() >= 20, "{v}");
    // HealthCheckResponse{status: SERVING}.
    assert_eq!(v["health"], "0801", "{v}");
    for version in ["v1", "v1alpha"] {
        let listed = v[format!("reflection_{version}")].as_str().unwrap();
        assert!(
            listed.contains("inference.GRPCInferenceService")
                && listed.contains("grpc.health.v1.Health"),
            "reflection {version}: {listed:?}"
        );
    }
}

/// `GET /openapi.json` (open) lists exactly the routes the server has: the serving core's
/// route table (the router matches against it alone) plus the native documentation routes;
/// every route it lists answers (not 404 or 405), and paths beside them do not.
async fn check_spec_matches_router(url: &str, store: &std::path::Path) {
    use std::collections::BTreeSet;
    let r = reqwest::get(format!("{url}/openapi.json")).await.unwrap();
    assert_eq!(r.status(), 200);
    let spec: serde_json::Value = r.json().await.unwrap();
    assert_eq!(spec["openapi"], "3.1.0");
    let mut listed = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "delete", "patch"] {
            if item.get(method).is_some() {
                listed.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let mut served: BTreeSet<(String, String)> = inference::service::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    for p in ["/openapi.json", "/docs", "/docs/{file}"] {
        served.insert(("GET".into(), p.into()));
    }
    assert_eq!(
        listed, served,
        "the OpenAPI document and the router disagree"
    );

    let (version, _) = common::champion(store);
    let http = reqwest::Client::new();
    for (method, template) in &listed {
        let files: Vec<&str> = if template.contains("{file}") {
            inference_server::docs::FILES.to_vec()
        } else {
            vec![""]
        };
        for file in files {
            let path = template
                .replace("{name}", "fraud")
                .replace("{version}", &version.to_string())
                .replace("{file}", file);
            let r = match method.as_str() {
                "GET" => http.get(format!("{url}{path}")).send().await.unwrap(),
                _ => http
                    .post(format!("{url}{path}"))
                    .body("{}")
                    .send()
                    .await
                    .unwrap(),
            };
            assert!(
                r.status() != 404 && r.status() != 405,
                "{method} {path} is in the document but answers {}",
                r.status()
            );
        }
    }
    for path in [
        "/docs/",
        "/docs/index.html",
        "/openapi.yaml",
        "/v2/models/fraud/explain",
    ] {
        let r = http.get(format!("{url}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path} answers but is not in the document");
    }
}

/// `/docs` in headless Chromium (Debian's package): the page, its scripts and styles all
/// from this server (the Content-Security-Policy allows nothing else), renders the
/// inference operations from `/openapi.json` and offers "Authorize" for an API key.
fn check_docs_render(url: &str) {
    let chromium = std::env::var("MLPIPE_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--virtual-time-budget=15000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("{url}/docs"))
        .output()
        .unwrap_or_else(|e| {
            panic!("{chromium}: {e} (`cargo xtask test` installs Debian's chromium)")
        });
    assert!(
        out.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    for rendered in [
        "opblock-summary-path",
        "/v2/models/{name}/infer",
        "/v1/models/{name}/predict",
        "/v2/health/ready",
        "authorize",
        "mlpipe inference API",
    ] {
        assert!(
            dom.contains(rendered),
            "/docs in Chromium did not render {rendered:?}:\n{}",
            &dom[..dom.len().min(3000)]
        );
    }
}

/// "Try it out" on `/docs` in headless Chromium, as a user clicks it
/// (`tests/clients/docs_try_it_out.cjs`, playwright-core from npm): model metadata is 401
/// without a key, and 200 with the key entered under "Authorize", which the page then sends
/// as a bearer token.
fn check_docs_try_it_out(url: &str, key: &str) {
    let node_modules = format!("{ROOT}/.tools/node/node_modules");
    let node = format!("{node_modules}/.bin/node");
    assert!(
        std::path::Path::new(&format!("{node_modules}/playwright-core")).is_dir(),
        "playwright-core is not in {node_modules}: run `cargo xtask test`, which installs it"
    );
    let mut command = Command::new(&node);
    command
        .arg(format!("{ROOT}/tests/clients/docs_try_it_out.cjs"))
        .args([url, key, "fraud"])
        .env("NODE_PATH", &node_modules);
    if let Ok(chromium) = std::env::var("MLPIPE_CHROMIUM") {
        command.env("CHROMIUM", chromium);
    }
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "docs_try_it_out.cjs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["without_key"], 401, "{v}");
    assert_eq!(v["with_key"], 200, "{v}");
    assert!(v["body"].as_str().unwrap().contains("\"fraud\""), "{v}");
}
