//! Helpers for the end-to-end tests in `tests/tests/`: starting real external parts.
//!
//! A test that needs a part starts it itself and fails loudly when it cannot; it never passes
//! by skipping. `cargo xtask test` installs the parts (moto into `.venv/`).

pub mod faulty_s3;

use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server process started in a process group of its own and stopped with the whole group:
/// servers such as MLflow (uvicorn, its job runner, huey workers) or wrangler run the real
/// work in children, which killing the parent alone would leave running, orphaned.
pub struct Group(Child);

impl Group {
    /// Spawns `cmd` as the leader of a new process group.
    pub fn spawn(cmd: &mut Command) -> std::io::Result<Group> {
        cmd.process_group(0).spawn().map(Group)
    }

    pub fn child(&mut self) -> &mut Child {
        &mut self.0
    }

    /// Stops the group: SIGTERM to every member, up to 5 s for the leader to exit, then
    /// SIGKILL to whatever is left of the group.
    pub fn stop(&mut self) {
        let group = format!("-{}", self.0.id());
        let signal = |sig: &str| {
            let _ = Command::new("kill")
                .args([sig, "--", &group])
                .stderr(Stdio::null())
                .status();
        };
        signal("-TERM");
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.0.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        signal("-KILL");
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    /// Whether any process of the group is still running (zombies, which only wait for
    /// their parent to collect them, do not count). Reads `/proc`.
    pub fn group_alive(&self) -> bool {
        let group = self.0.id().to_string();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return false;
        };
        entries.flatten().any(|e| {
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                return false;
            };
            // pid (comm) state ppid pgrp ...: fields after the command's closing parenthesis.
            let Some((_, rest)) = stat.rsplit_once(')') else {
                return false;
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            fields.len() > 2 && fields[0] != "Z" && fields[2] == group
        })
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads a Parquet object (curated part or quarantine rows) into a data frame.
pub fn read_parquet(bytes: &[u8]) -> ingest::polars::prelude::DataFrame {
    use ingest::polars::prelude::{ParquetReader, SerReader};
    ParquetReader::new(std::io::Cursor::new(bytes))
        .finish()
        .expect("valid Parquet")
}

/// For a test whose part is a tool or artifact that `cargo xtask test` provides (terraform,
/// checkov, the package): under CI its absence fails the test; elsewhere the test is
/// skipped, loudly. Servers the tests start themselves (moto, MLflow) never skip.
pub fn missing(what: &str) {
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false") {
        panic!("{what} is missing, and CI is set: `cargo xtask test` provides it");
    }
    eprintln!("SKIPPED: {what} is missing (run `cargo xtask test`, which provides it)");
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A moto server (S3, SQS and more on one port) on 127.0.0.1, stopped on drop.
pub struct Moto {
    child: Group,
    pub port: u16,
}

impl Moto {
    /// Starts `moto_server` from `MLPIPE_MOTO_SERVER`, `.venv/bin/moto_server` or the PATH.
    ///
    /// # Panics
    /// When no moto server can be found or started: the test must not pass without it.
    pub fn start() -> Moto {
        let candidates = [
            std::env::var("MLPIPE_MOTO_SERVER").ok().map(PathBuf::from),
            Some(repo_root().join(".venv/bin/moto_server")),
            Some(PathBuf::from("moto_server")),
        ];
        // Held from choosing the port until the server listens on it: two tests of one binary
        // starting servers at once could otherwise be handed the same free port, and the
        // loser's readiness probe would reach the winner's server (seen in CI: the winner's
        // test ended, its server stopped, and the other test's requests were refused).
        let _starting = start_lock();
        for bin in candidates.into_iter().flatten() {
            let port = free_port();
            let child = Group::spawn(
                Command::new(&bin)
                    .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null()),
            );
            let Ok(child) = child else { continue };
            let mut moto = Moto { child, port };
            if moto.wait_ready(Duration::from_secs(30)) {
                return moto;
            }
            moto.child.stop();
        }
        panic!(
            "no moto_server could be started: run `cargo xtask test`, which installs it into .venv/, or set MLPIPE_MOTO_SERVER"
        );
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn wait_ready(&mut self, timeout: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(_)) = self.child.child().try_wait() {
                return false;
            }
            if http_answers(self.port) {
                return owns_port(&mut self.child);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// Store URL for a bucket on this server, with test credentials in the URL.
    pub fn store_url(&self, bucket: &str) -> String {
        format!(
            "s3://{bucket}?endpoint={}&region=us-east-1&access_key_id=testing&secret_access_key=testing",
            self.endpoint()
        )
    }

    /// Creates a bucket (moto accepts unsigned requests).
    pub async fn create_bucket(&self, bucket: &str) {
        let response = reqwest::Client::new()
            .put(format!("{}/{bucket}", self.endpoint()))
            .send()
            .await
            .expect("create bucket request");
        assert!(
            response.status().is_success(),
            "create bucket: {}",
            response.status()
        );
    }
}

/// Serialises server starts within one test binary (see [`Moto::start`]); a poisoned lock
/// (a test panicked while starting) still serialises.
fn start_lock() -> std::sync::MutexGuard<'static, ()> {
    static STARTING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    STARTING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether an HTTP server answers on the port. A bare TCP connect is not enough: a connect
/// to a local port nobody listens on can be given that same port as its source and connect
/// to itself (TCP self-connect), which then reads back its own request, not a status line.
fn http_answers(port: u16) -> bool {
    use std::io::{Read as _, Write as _};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    if stream
        .write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 5];
    stream.read_exact(&mut head).is_ok() && &head == b"HTTP/"
}

/// After something answered on the port: true when it is this server, that is when its
/// process is still running a moment later (a server that lost the port exits on the bind).
fn owns_port(child: &mut Group) -> bool {
    std::thread::sleep(Duration::from_millis(200));
    matches!(child.child().try_wait(), Ok(None))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

/// A real MLflow tracking server (sqlite backend, artifacts proxied into a temp folder) on
/// 127.0.0.1, stopped on drop.
pub struct Mlflow {
    child: Group,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Mlflow {
    /// Starts `mlflow server` from `MLPIPE_MLFLOW`, `.venv/bin/mlflow` or the PATH.
    ///
    /// # Panics
    /// When no MLflow server can be found or started: the test must not pass without it.
    pub fn start() -> Mlflow {
        let dir = tempfile::tempdir().expect("temp dir");
        let candidates = [
            std::env::var("MLPIPE_MLFLOW").ok().map(PathBuf::from),
            Some(repo_root().join(".venv/bin/mlflow")),
            Some(PathBuf::from("mlflow")),
        ];
        let _starting = start_lock();
        let port = free_port();
        let backend = format!("sqlite:///{}", dir.path().join("mlflow.db").display());
        let artifacts = dir.path().join("artifacts");
        for bin in candidates.into_iter().flatten() {
            let child = Group::spawn(
                Command::new(&bin)
                    .args(["server", "--host", "127.0.0.1", "--port", &port.to_string()])
                    .args(["--backend-store-uri", &backend])
                    .arg("--artifacts-destination")
                    .arg(&artifacts)
                    .args(["--workers", "1"])
                    .env("MLFLOW_SERVER_ALLOWED_HOSTS", "*")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null()),
            );
            let Ok(child) = child else { continue };
            let mut server = Mlflow {
                child,
                port,
                _dir: dir,
            };
            if server.wait_ready(Duration::from_secs(120)) {
                return server;
            }
            server.child.stop();
            panic!("{} started but did not answer within 120 s", bin.display());
        }
        panic!(
            "no mlflow server could be started: run `cargo xtask test`, which installs it into .venv/, or set MLPIPE_MLFLOW"
        );
    }

    pub fn uri(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn wait_ready(&mut self, timeout: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(_)) = self.child.child().try_wait() {
                return false;
            }
            let ok = std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && probe::blocking_health(&self.uri());
            if ok {
                return owns_port(&mut self.child);
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        false
    }
}

impl Mlflow {
    /// Stops the server and every process it started; true when none is left running.
    pub fn stop(mut self) -> bool {
        self.child.stop();
        !self.child.group_alive()
    }
}

mod probe {
    //! A tiny blocking health probe (the tests' reqwest is async-only).
    use std::io::{Read, Write};

    pub fn blocking_health(base: &str) -> bool {
        let Some(hostport) = base.strip_prefix("http://") else {
            return false;
        };
        let Ok(mut s) = std::net::TcpStream::connect(hostport) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(2)));
        let req = format!("GET /health HTTP/1.0\r\nHost: {hostport}\r\n\r\n");
        if s.write_all(req.as_bytes()).is_err() {
            return false;
        }
        let mut buf = String::new();
        let _ = s.read_to_string(&mut buf);
        buf.starts_with("HTTP/1.0 200") || buf.starts_with("HTTP/1.1 200")
    }
}

/// Fields that hold the time something happened or how long it took: compared as present,
/// not by value, when two runs' stores are compared.
const TIMES: &[&str] = &[
    "created_at",
    "reported_at",
    "materialized_at",
    "published_at_ms",
    "moved_at",
    "updated_at",
    "registered_at",
    "at",
    "timings_ms",
    "timings_s",
    "seconds",
    "duration_ms",
    "duration_s",
    "peak_memory_bytes",
];

/// Blanks times (see [`TIMES`], and any `*_at` field) in a JSON record, and the hash of a
/// part that holds online records (which carry their materialization time).
pub fn without_times(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                if TIMES.contains(&k.as_str()) || k.ends_with("_at") || k.ends_with("_at_ms") {
                    *val = serde_json::Value::Null;
                } else {
                    without_times(val);
                }
            }
            if map
                .get("key")
                .and_then(|k| k.as_str())
                .is_some_and(|k| k.ends_with("online.bin"))
            {
                map.remove("sha256");
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(without_times),
        _ => {}
    }
}

/// One stored object in a form two runs can compare: JSON records without their times,
/// online-record blobs without their materialization time, anything else by its SHA-256.
pub fn comparable(key: &str, bytes: &[u8]) -> String {
    let json = (bytes.first() == Some(&b'{'))
        .then(|| serde_json::from_slice::<serde_json::Value>(bytes).ok())
        .flatten();
    if let Some(mut v) = json {
        without_times(&mut v);
        v.to_string()
    } else if key.ends_with("online.bin") {
        features::SnapshotStore::decode(bytes)
            .map(|blob| {
                blob.records()
                    .map(|r| {
                        let mut r = r.clone();
                        r.materialized_at_us = 0;
                        serde_json::to_string(&r).unwrap_or_default()
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_else(|e| format!("undecodable online records: {e}"))
    } else if key.ends_with(".html") {
        // Pages (drift reports) show when they were made: compared without those times.
        contracts::sha256_hex(without_rfc3339_times(&String::from_utf8_lossy(bytes)).as_bytes())
    } else {
        contracts::sha256_hex(bytes)
    }
}

/// `text` with every RFC 3339 UTC time (`2026-01-02T03:04:05[.fff]Z`) replaced by `<time>`.
pub fn without_rfc3339_times(text: &str) -> String {
    let b = text.as_bytes();
    let shape = b"dddd-dd-ddTdd:dd:dd";
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied = 0;
    while i + shape.len() <= b.len() {
        let fits = shape.iter().zip(&b[i..]).all(|(s, c)| match s {
            b'd' => c.is_ascii_digit(),
            other => other == c,
        });
        if !fits {
            i += 1;
            continue;
        }
        let mut end = i + shape.len();
        if b.get(end) == Some(&b'.') {
            end += 1;
            while b.get(end).is_some_and(u8::is_ascii_digit) {
                end += 1;
            }
        }
        if b.get(end) == Some(&b'Z') {
            end += 1;
        }
        out.push_str(&text[copied..i]);
        out.push_str("<time>");
        copied = end;
        i = end;
    }
    out.push_str(&text[copied..]);
    out
}

/// Copies the edge embedding fixture (the sample's fraud champion as the registry lays it
/// out: bundle, ONNX, alias, feature spec) into `store`, so a test has a model without
/// training one. Returns the fixture's folder.
pub async fn put_edge_fixture(store: &storage::Store) -> PathBuf {
    let root = repo_root().join("edge/edge-embed/fixture");
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("the edge fixture") {
            let path = entry.expect("a fixture entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e != "md") {
                let key = path
                    .strip_prefix(&root)
                    .ok()
                    .and_then(|k| k.to_str())
                    .expect("a fixture key");
                let bytes = std::fs::read(&path).expect("a fixture file");
                store.put(key, bytes).await.expect("put the fixture");
            }
        }
    }
    root
}
