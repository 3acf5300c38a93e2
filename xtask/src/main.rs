//! Project automation, run as `cargo xtask <task>`.
//!
//! - `test`: installs what the tests need when missing (the Python venv with moto's S3/SQS
//!   server, in `.venv/`), then runs `cargo fmt --check`, `cargo clippy -D warnings` and every
//!   test. The install runs while Rust builds.
//! - `bench ingest [--rows N]`: the ingest stage against plain polars CSV -> Parquet on the
//!   same generated file, in the same run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = project_root();
    std::env::set_current_dir(&root)?;
    match args.first().map(String::as_str) {
        Some("test") => test(&root),
        Some("bench") => match args.get(1).map(String::as_str) {
            Some("ingest") => bench_ingest(&root, &args[2..]),
            other => bail!("unknown benchmark {other:?}; available: ingest"),
        },
        _ => {
            eprintln!("usage: cargo xtask test | cargo xtask bench ingest [--rows N]");
            std::process::exit(2);
        }
    }
}

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: {cmd:?}");
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

/// `cargo` from the PATH (the rustup proxy, which honours rust-toolchain.toml), rather than
/// `$CARGO`: builds then share their cache with the user's own `cargo` commands.
fn cargo() -> Command {
    Command::new("cargo")
}

/// The venv that holds moto (S3 + SQS protocol server) for the end-to-end tests.
fn venv(root: &Path) -> PathBuf {
    root.join(".venv")
}

fn moto_server(root: &Path) -> PathBuf {
    venv(root).join("bin").join("moto_server")
}

/// Creates `.venv` and installs moto's server into it unless already there.
fn install_python_tools(root: &Path) -> Result<()> {
    if moto_server(root).is_file() {
        return Ok(());
    }
    let venv = venv(root);
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    let pip = venv.join("bin").join("pip");
    run(Command::new(&pip).args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "moto[server]>=5.1,<6",
    ]))?;
    if !moto_server(root).is_file() {
        bail!(
            "moto installed but {} is missing",
            moto_server(root).display()
        );
    }
    Ok(())
}

fn test(root: &Path) -> Result<()> {
    let started = Instant::now();
    // Python tools install on another thread while cargo compiles.
    let installer = {
        let root = root.to_path_buf();
        std::thread::spawn(move || install_python_tools(&root))
    };
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    run(cargo().args(["test", "--workspace", "--no-run"]))?;
    installer
        .join()
        .map_err(|_| anyhow::anyhow!("installer thread panicked"))??;
    run(cargo()
        .args(["test", "--workspace"])
        .env("MLPIPE_MOTO_SERVER", moto_server(root)))?;
    eprintln!(
        "xtask: all checks passed in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[derive(Debug, Clone, Copy)]
struct Measure {
    rows: f64,
    bytes: f64,
    secs: f64,
    peak: f64,
}

fn bench_ingest(root: &Path, args: &[String]) -> Result<()> {
    let rows: usize = match args.iter().position(|a| a == "--rows") {
        Some(i) => args.get(i + 1).context("--rows needs a number")?.parse()?,
        None => 1_000_000,
    };
    let repeats = 3;
    run(cargo().args(["build", "--release", "-p", "mlpipe"]))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let bin = target.join("release/mlpipe");
    let work = target.join("bench");
    std::fs::create_dir_all(&work)?;
    let file = work.join(format!("transactions-{rows}.csv"));
    if !file.is_file() {
        run(Command::new(&bin)
            .args([
                "sample",
                "--rows",
                &rows.to_string(),
                "--bad-rows",
                "0",
                "--out",
            ])
            .arg(&file))?;
    }
    let mut best: [Option<Measure>; 2] = [None, None];
    for round in 0..repeats {
        for (i, mode) in ["plain", "ingest"].iter().enumerate() {
            let dir = work.join(format!("run-{mode}-{round}"));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir)?;
            let out = Command::new(&bin)
                .args(["bench-ingest", "--mode", mode, "--file"])
                .arg(&file)
                .arg("--workdir")
                .arg(&dir)
                .arg("--project")
                .arg(root.join("examples/fraud"))
                .stderr(Stdio::inherit())
                .output()?;
            if !out.status.success() {
                bail!("bench-ingest {mode} failed");
            }
            let v: serde_like::Value = serde_like::parse(&String::from_utf8_lossy(&out.stdout))?;
            let m = Measure {
                rows: v.num("rows")?,
                bytes: v.num("bytes")?,
                secs: v.num("secs")?,
                peak: v.num("peak_rss_bytes")?,
            };
            let _ = std::fs::remove_dir_all(&dir);
            if best[i].is_none_or(|b| m.secs < b.secs) {
                best[i] = Some(Measure {
                    peak: best[i].map_or(m.peak, |b| b.peak.min(m.peak)),
                    ..m
                });
            } else if let Some(b) = best[i].as_mut() {
                b.peak = b.peak.min(m.peak);
            }
        }
    }
    let (Some(plain), Some(ingest)) = (best[0], best[1]) else {
        bail!("no measurements")
    };
    let mb = |b: f64| b / 1_048_576.0;
    println!(
        "ingest benchmark: {} rows, {:.1} MB CSV, best of {repeats} runs, {} cores",
        ingest.rows,
        mb(ingest.bytes),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!(
        "{:<34} {:>12} {:>10} {:>14} {:>8}",
        "", "rows/s", "MB/s", "peak RSS (MB)", "secs"
    );
    for (name, m) in [
        ("plain polars CSV -> Parquet (zstd)", plain),
        ("mlpipe ingest (validate + commit)", ingest),
    ] {
        println!(
            "{:<34} {:>12.0} {:>10.1} {:>14.0} {:>8.2}",
            name,
            m.rows / m.secs,
            mb(m.bytes) / m.secs,
            mb(m.peak),
            m.secs
        );
    }
    println!(
        "throughput ratio ingest/plain: {:.2} (goal >= 0.50)",
        plain.secs / ingest.secs
    );
    println!(
        "peak memory ratio ingest/plain: {:.2} (goal <= 1.50)",
        ingest.peak / plain.peak
    );
    Ok(())
}

/// Just enough JSON reading for the one flat object `bench-ingest` prints, so xtask stays
/// dependency-light (it must build before anything else).
mod serde_like {
    use anyhow::{Context, Result};

    pub struct Value(String);

    pub fn parse(s: &str) -> Result<Value> {
        let line = s
            .lines()
            .find(|l| l.trim_start().starts_with('{'))
            .context("no JSON object in output")?;
        Ok(Value(line.to_string()))
    }

    impl Value {
        pub fn num(&self, key: &str) -> Result<f64> {
            let pat = format!("\"{key}\":");
            let start = self.0.find(&pat).with_context(|| format!("no {key}"))? + pat.len();
            let rest = &self.0[start..];
            let end = rest.find([',', '}']).unwrap_or(rest.len());
            Ok(rest[..end].trim().parse()?)
        }
    }
}
