//! The Cloudflare Worker (`edge/edge-worker`, built by `cargo xtask test` with worker-build) under
//! the real Workers runtime: `wrangler dev` (workerd) with local R2 and KV, filled by the
//! publish stage from what `mlpipe run` produced. The Worker's answers must equal tract's on
//! the same rows, and its `/v1` predictions (features from KV) the native server's.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

mod common;

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{Proc, ROOT};

struct Wrangler {
    bin: PathBuf,
    state: PathBuf,
    config: PathBuf,
}

impl Wrangler {
    fn command(&self) -> Command {
        let mut c = Command::new(self.bin.join("wrangler"));
        c.env("PATH", common::path_with(&self.bin))
            .env("WRANGLER_SEND_METRICS", "false")
            .env("NO_COLOR", "1")
            .current_dir(self.config.parent().unwrap());
        c
    }

    fn get_object(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let out = self
            .command()
            .args(["r2", "object", "get", &format!("{bucket}/{key}"), "--pipe"])
            .args(["--local", "--persist-to"])
            .arg(&self.state)
            .arg("-c")
            .arg(&self.config)
            .output()
            .unwrap();
        (out.status.success() && !out.stdout.is_empty()).then_some(out.stdout)
    }

    /// Keys under `prefix` in the local R2 buckets of the state folder. wrangler's CLI has no
    /// object listing; miniflare keeps each bucket's index in SQLite (`_mf_objects`).
    fn r2_keys(&self, prefix: &str) -> Vec<String> {
        let python = std::env::var("MLPIPE_PYTHON").unwrap_or_else(|_| "python3".into());
        let script = r#"
import glob, sqlite3, sys
keys = set()
for db in glob.glob(sys.argv[1] + "/**/*.sqlite", recursive=True):
    try:
        con = sqlite3.connect("file:" + db + "?mode=ro", uri=True)
        rows = con.execute("SELECT key FROM _mf_objects WHERE key LIKE ?", (sys.argv[2] + "%",))
        keys.update(k for (k,) in rows)
    except sqlite3.Error:
        pass
print("\n".join(sorted(keys)))
"#;
        let out = Command::new(python)
            .args(["-c", script])
            .arg(&self.state)
            .arg(prefix)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// (key, text) of every prediction log in the LOGS bucket holding request id `id`.
    fn logs_with(&self, id: &str) -> Vec<(String, String)> {
        self.r2_keys("inference-logs/fraud/")
            .into_iter()
            .filter_map(|k| {
                let text = self.get_object("mlpipe-inference-logs", &k)?;
                Some((k, String::from_utf8_lossy(&text).into_owned()))
            })
            .filter(|(_, text)| text.contains(&format!("\"request_id\":\"{id}\"")))
            .collect()
    }

    fn publish(&self, store: &Path) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_mlpipe"))
            .args(["publish", "--store"])
            .arg(store)
            .arg("--wrangler-state")
            .arg(&self.state)
            .arg("--wrangler-config")
            .arg(&self.config)
            .arg("--wrangler")
            .arg(self.bin.join("wrangler"))
            .env("PATH", common::path_with(&self.bin))
            .current_dir(ROOT)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_worker_serves_the_champion_under_workerd_with_r2_and_kv() {
    let Some(bin) = common::node_bin("the Worker test") else {
        eprintln!("MLPIPE_NODE_BIN is not set: run through `cargo xtask test`");
        return;
    };
    let build = PathBuf::from(format!("{ROOT}/edge/edge-worker/build"));
    assert!(
        build.join("index.js").is_file() && bin.join("wrangler").is_file(),
        "edge/edge-worker/build (worker-build output) or wrangler is missing: run `cargo xtask worker`"
    );
    let dir = tempfile::tempdir().unwrap();
    let store = common::run_pipeline(dir.path());
    let wrangler = Wrangler {
        bin,
        state: dir.path().join("wrangler-state"),
        config: PathBuf::from(format!("{ROOT}/edge/edge-worker/wrangler.toml")),
    };

    // API keys, created with the CLI; the publish stage gives their hashes to the Worker.
    let keys = common::create_test_keys(&store);
    // Models exported by other tools, imported beside the champion (checked further down).
    let byo_dir = dir.path().join("byo");
    let exported = common::byo::export(&byo_dir);
    for model in exported.iter().flatten() {
        common::byo::import(&store, &byo_dir, model);
    }
    let served = match &exported {
        Some(_) => format!("MODELS:fraud,{}", common::byo::MODELS.join(",")),
        None => "MODELS:fraud".to_string(),
    };
    // The publish stage fills local R2 (champion, key hashes) and KV (online records)
    // through wrangler.
    let said = wrangler.publish(&store);
    assert!(said.contains("published champion fraud version"), "{said}");
    if exported.is_some() {
        assert!(
            said.contains("published champion onehot version 1"),
            "{said}"
        );
    }
    assert!(said.contains("published online card_activity"), "{said}");
    assert!(said.contains("published keys api-keys"), "{said}");
    // Published once: a second run finds the records and writes nothing.
    let said = wrangler.publish(&store);
    assert!(!said.contains("published champion"), "{said}");
    assert!(said.contains("already published"), "{said}");

    // wrangler dev: the Worker under workerd, local bindings from the same state folder,
    // its metrics exported after every request to a test OTLP receiver.
    let otlp = common::otlp_receiver(dir.path());
    let port = common::free_port();
    let mut dev = Proc(
        wrangler
            .command()
            .args(["dev", "--local", "--ip", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .arg("--persist-to")
            .arg(&wrangler.state)
            .arg("-c")
            .arg(&wrangler.config)
            .args([
                "--show-interactive-dev-session=false",
                "--log-level",
                "warn",
                // Revocations reach the isolate within a second.
                "--var",
                "KEY_REFRESH_SECONDS:1",
                // Promotions and traffic policies too.
                "--var",
                "ALIAS_REFRESH_SECONDS:1",
                "--var",
                format!("OTEL_EXPORTER_OTLP_ENDPOINT:{}", otlp.endpoint).as_str(),
                "--var",
                "OTLP_EXPORT_SECONDS:0",
                // The champion and the imported models.
                "--var",
                served.as_str(),
                "--var",
                format!("OTEL_EXPORTER_OTLP_HEADERS:{}", common::OTLP_HEADERS).as_str(),
            ])
            .stdout(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}");
    common::wait_live(&url, "wrangler dev", &mut dev).await;
    let (_native, native_url) = common::native_server(&store);
    common::check_endpoint(
        &common::Api::new(&url, Some(&keys.good)),
        &store,
        &common::Api::new(&native_url, Some(&keys.good)),
    )
    .await;
    common::check_access(&url, &keys).await;
    common::check_rate_limited(&url, &keys.slow, &keys.good).await;

    // Prediction logs reach the LOGS bucket (written in waitUntil) under names the Worker
    // draws: found by listing the bucket and reading the request id inside.
    let logs_with = |id: &str| wrangler.logs_with(id);
    common::check_logs(&common::Api::new(&url, Some(&keys.good)), logs_with).await;

    // Canary and shadow, the policy published to local R2 like the champion.
    common::check_traffic(
        &common::Api::new(&url, Some(&keys.good)),
        &store,
        || {
            wrangler.publish(&store);
        },
        |id| wrangler.logs_with(id).pop().map(|(_, text)| text),
    )
    .await;

    // The request counts reached the OTLP receiver under the shared metric names.
    common::check_edge_metrics(&otlp, "mlpipe-worker").await;

    // Models imported from other tools (mixed float, int64 and string inputs among them),
    // published with the champion, answer as onnxruntime does.
    if let Some(exported) = &exported {
        common::byo::check(&common::Api::new(&url, Some(&keys.good)), exported).await;
    }

    // A revoked key, republished, is refused within the isolate's key refresh.
    common::keys_cli(&store, &["revoke", "conformance"]);
    let said = wrangler.publish(&store);
    assert!(said.contains("published keys api-keys"), "{said}");
    common::wait_refused(&url, &keys.good).await;
    // Last: one address guessing keys is limited (by CF-Connecting-IP).
    common::check_guessing_is_limited(&url, Some(("cf-connecting-ip", "198.51.100.7"))).await;
    drop(dev);
}
