//! The Spin component (`edge/edge-spin`, built for wasm32-wasip2 by `cargo xtask test`) under a
//! real wasi:http host, `jco serve` (npm), reading the champion and the online records over
//! outbound HTTP from an object folder that the publish stage filled, served by a plain HTTP
//! server (`tests/clients/object_http.py`: unsigned GET/PUT, like a bucket's public URL),
//! and writing its prediction logs there. The same API checks as every runtime, against the
//! native server.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

mod common;

use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::{Proc, ROOT};
use serde_json::Value;

/// `tests/clients/object_http.py` serving `dir` (unsigned GET/PUT, like a bucket's public
/// URL): the process and its base URL.
fn object_server(dir: &std::path::Path) -> (Proc, String) {
    let python = std::env::var("MLPIPE_PYTHON").unwrap_or_else(|_| "python3".into());
    let http_port = common::free_port();
    let mut server = std::process::Command::new(python)
        .arg(format!("{ROOT}/tests/clients/object_http.py"))
        .arg(http_port.to_string())
        .arg(dir)
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "listening");
    (Proc(server), format!("http://127.0.0.1:{http_port}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_spin_component_serves_the_champion_under_a_wasi_http_host() {
    let Some(bin) = common::node_bin("the Spin component test") else {
        eprintln!("MLPIPE_NODE_BIN is not set: run through `cargo xtask test`");
        return;
    };
    let wasm = std::env::var_os("MLPIPE_SPIN_WASM")
        .map(PathBuf::from)
        .expect("MLPIPE_SPIN_WASM (the built component) is set by `cargo xtask test`");
    assert!(wasm.is_file(), "{} is missing", wasm.display());
    assert!(
        bin.join("jco").is_file(),
        "jco is missing from {}",
        bin.display()
    );

    let dir = tempfile::tempdir().unwrap();
    let objects = dir.path().join("edge-objects");
    // The pipeline publishes through its events: the feature manifest's online records and
    // the champion alias training moved, to the object target (registry objects +
    // online/<view>/<entity>).
    let (store, summary) =
        common::run_pipeline_with(dir.path(), &[("MLPIPE_EDGE_OBJECTS", objects.as_path())]);
    let published: Vec<&Value> = summary["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["stage"] == "publish" && d["result"]["outcome"] != "skipped")
        .collect();
    let kinds: Vec<(&str, &str)> = published
        .iter()
        .map(|d| {
            (
                d["result"]["outcome"].as_str().unwrap_or("?"),
                d["result"]["publication"]["kind"].as_str().unwrap_or("?"),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![("published", "online"), ("published", "champion")],
        "{published:#?}"
    );
    assert!(objects.join("models/fraud/aliases/champion.json").is_file());

    // API keys, created with the CLI. A manual publish to the same target finds the
    // champion and records published and writes only the key hashes.
    let keys = common::create_test_keys(&store);
    // Models exported by other tools, imported beside the champion (checked further down).
    let byo_dir = dir.path().join("byo");
    let exported = common::byo::export(&byo_dir);
    for model in exported.iter().flatten() {
        common::byo::import(&store, &byo_dir, model);
    }
    let served = match &exported {
        Some(_) => format!("fraud,{}", common::byo::MODELS.join(",")),
        None => "fraud".to_string(),
    };
    let publish = || {
        let out = Command::new(env!("CARGO_BIN_EXE_mlpipe"))
            .args(["publish", "--store"])
            .arg(&store)
            .arg("--objects")
            .arg(&objects)
            .current_dir(ROOT)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let said = publish();
    assert!(!said.contains("published champion fraud"), "{said}");
    if exported.is_some() {
        assert!(
            said.contains("published champion onehot version 1"),
            "{said}"
        );
    }
    assert!(said.contains("already published"), "{said}");
    assert!(said.contains("published keys api-keys"), "{said}");
    assert!(objects.join("edge/keys.json").is_file());

    let (_server, bucket) = object_server(&objects);
    let otlp = common::otlp_receiver(dir.path());
    let port = common::free_port();
    let mut host = Proc(
        Command::new(bin.join("jco"))
            .args(["serve", "--port", &port.to_string(), "--host", "127.0.0.1"])
            .arg(&wasm)
            .env("PATH", common::path_with(&bin))
            .env("MODELS", &served)
            .env("REGISTRY_URL", &bucket)
            .env("FEATURES_URL", format!("{bucket}/online"))
            .env("LOGS_URL", &bucket)
            .env("KEY_REFRESH_SECONDS", "1")
            .env("ALIAS_REFRESH_SECONDS", "1")
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", &otlp.endpoint)
            .env("OTLP_EXPORT_SECONDS", "0")
            .env("OTEL_EXPORTER_OTLP_HEADERS", common::OTLP_HEADERS)
            .stdout(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}");
    common::wait_live(&url, "jco serve", &mut host).await;
    let (_native, native_url) = common::native_server(&store);
    common::check_endpoint(
        &common::Api::new(&url, Some(&keys.good)),
        &store,
        &common::Api::new(&native_url, Some(&keys.good)),
    )
    .await;
    common::check_access(&url, &keys).await;
    common::check_rate_limited(&url, &keys.slow, &keys.good).await;
    // Models imported from other tools answer as onnxruntime does.
    if let Some(exported) = &exported {
        common::byo::check(&common::Api::new(&url, Some(&keys.good)), exported).await;
    }

    // Prediction logs are PUT to LOGS_URL (the objects folder) under names the component
    // draws, with the request id inside.
    let logs = objects.join("inference-logs/fraud");
    common::check_logs(&common::Api::new(&url, Some(&keys.good)), |id| {
        common::logs_in(&logs, id)
    })
    .await;

    // Canary and shadow, the policy published to the objects the component reads.
    common::check_traffic(
        &common::Api::new(&url, Some(&keys.good)),
        &store,
        || {
            publish();
        },
        |id| common::logs_in(&logs, id).pop().map(|(_, text)| text),
    )
    .await;

    // The request counts reached the OTLP receiver under the shared metric names.
    common::check_edge_metrics(&otlp, "mlpipe-spin").await;

    // A revoked key, republished, is refused within the instance's key refresh (jco keeps
    // one instance). jco tells a component no client address, so the limit on guessed keys
    // per address does not apply here.
    common::keys_cli(&store, &["revoke", "conformance"]);
    assert!(publish().contains("published keys api-keys"));
    common::wait_refused(&url, &keys.good).await;
    drop(host);
}

/// The component built with the embedding fixture (`edge/edge-embed/fixture`, compiled in by
/// `cargo xtask test`) serves that champion with no registry source and no `MODELS`.
#[tokio::test(flavor = "multi_thread")]
async fn a_component_with_an_embedded_model_needs_no_registry() {
    let Some(bin) = common::node_bin("the Spin test") else {
        eprintln!("MLPIPE_NODE_BIN is not set: run through `cargo xtask test`");
        return;
    };
    let wasm = std::env::var_os("MLPIPE_SPIN_EMBEDDED_WASM")
        .map(PathBuf::from)
        .expect("MLPIPE_SPIN_EMBEDDED_WASM (the component with the fixture compiled in) is set by `cargo xtask test`");
    assert!(wasm.is_file(), "{} is missing", wasm.display());
    // Keys are never embedded (a revocation must reach a built component): the key set is
    // read from KEYS_URL, here a folder with only `edge/keys.json`, written as the publish
    // stage writes it.
    let dir = tempfile::tempdir().unwrap();
    let store = storage::Store::local(&dir.path().join("store")).unwrap();
    let (key, _) = access::create(&store, "embedded", access::Scope::default(), 0)
        .await
        .unwrap();
    let keys_dir = dir.path().join("keys");
    std::fs::create_dir_all(keys_dir.join("edge")).unwrap();
    std::fs::write(
        keys_dir.join(records::keys::EDGE_KEYS),
        serde_json::to_vec(&access::key_set(&store).await.unwrap()).unwrap(),
    )
    .unwrap();
    let (_keys_server, keys_url) = object_server(&keys_dir);
    let port = common::free_port();
    let mut host = Proc(
        Command::new(bin.join("jco"))
            .args(["serve", "--port", &port.to_string(), "--host", "127.0.0.1"])
            .arg(&wasm)
            .env("PATH", common::path_with(&bin))
            .env_remove("MODELS")
            .env_remove("REGISTRY_URL")
            .env_remove("FEATURES_URL")
            .env("KEYS_URL", &keys_url)
            .stdout(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}");
    common::wait_live(&url, "jco serve", &mut host).await;
    let fixture = PathBuf::from(format!("{ROOT}/edge/edge-embed/fixture"));
    let api = common::Api::new(&url, Some(&key));
    common::check_v2(&api, &fixture).await;
    // The embedded bundle is the fixture's, byte for byte (its hash is what the server reports).
    let (_, bundle) = common::champion(&fixture);
    let meta: Value = api
        .http()
        .get(format!("{url}/v2/models/fraud"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["parameters"]["content_hash"], bundle["content_hash"]);
    drop(host);
}
