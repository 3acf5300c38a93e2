//! Helpers for the end-to-end tests in `tests/tests/`: starting real external parts.
//!
//! A test that needs a part starts it itself and fails loudly when it cannot; it never passes
//! by skipping. `cargo xtask test` installs the parts (moto into `.venv/`).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Reads a Parquet object (curated part or quarantine rows) into a data frame.
pub fn read_parquet(bytes: &[u8]) -> ingest::polars::prelude::DataFrame {
    use ingest::polars::prelude::{ParquetReader, SerReader};
    ParquetReader::new(std::io::Cursor::new(bytes))
        .finish()
        .expect("valid Parquet")
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A moto server (S3, SQS and more on one port) on 127.0.0.1, stopped on drop.
pub struct Moto {
    child: Child,
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
        let port = free_port();
        for bin in candidates.into_iter().flatten() {
            let child = Command::new(&bin)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
            let Ok(child) = child else { continue };
            let mut moto = Moto { child, port };
            if moto.wait_ready(Duration::from_secs(30)) {
                return moto;
            }
            let _ = moto.child.kill();
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
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
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

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}
