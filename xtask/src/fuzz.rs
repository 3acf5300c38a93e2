//! `cargo xtask fuzz TARGET|all [--secs N]`: coverage-guided fuzzing of the targets in
//! `tests/fuzz-targets` with cargo-fuzz (libFuzzer; needs a nightly toolchain, which rustup
//! installs, and cargo-fuzz, installed here from crates.io when missing). Each run starts
//! from the committed seeds (`tests/fuzz-targets/corpus/<target>/`), grows a working corpus
//! under `target/fuzz-corpus/TARGET/` (never the committed one), and prints the executions
//! run and the crashes found; a crash's input is left in `tests/fuzz-targets/fuzz/artifacts/`
//! to minimise (`cargo +nightly fuzz tmin`) and commit under `regressions/TARGET/`, where the
//! normal test build replays it.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// One target's run.
pub struct FuzzRun {
    pub target: String,
    pub secs: u64,
    pub executions: u64,
    pub crashes: usize,
}

pub fn fuzz(root: &Path, args: &[String]) -> Result<()> {
    let crate_dir = root.join("tests/fuzz-targets");
    let all = targets(&crate_dir)?;
    let Some(which) = args.first() else {
        bail!(
            "usage: cargo xtask fuzz TARGET|all [--secs N]; targets: {}",
            all.join(", ")
        );
    };
    let secs: u64 = match args.iter().position(|a| a == "--secs") {
        Some(i) => args
            .get(i + 1)
            .context("--secs takes a number of seconds")?
            .parse()
            .context("--secs takes a number of seconds")?,
        None => 60,
    };
    let chosen: Vec<String> = if which == "all" {
        all.clone()
    } else if all.contains(which) {
        vec![which.clone()]
    } else {
        bail!("no fuzz target '{which}'; targets: {}", all.join(", "));
    };
    ensure_cargo_fuzz()?;
    // The same dependency versions as the workspace's (the fuzz project is a workspace of its
    // own, whose lock would otherwise resolve afresh).
    let lock = crate_dir.join("fuzz/Cargo.lock");
    if !lock.exists() {
        std::fs::copy(root.join("Cargo.lock"), &lock).context("copying Cargo.lock")?;
    }
    let mut runs = Vec::new();
    for target in &chosen {
        runs.push(run_target(root, &crate_dir, target, secs)?);
    }
    println!("\n| target | seconds | executions | crashes |\n|---|---:|---:|---:|");
    for r in &runs {
        println!(
            "| {} | {} | {} | {} |",
            r.target, r.secs, r.executions, r.crashes
        );
    }
    if runs.iter().any(|r| r.crashes > 0) {
        bail!("crashes found: see tests/fuzz-targets/fuzz/artifacts/");
    }
    Ok(())
}

/// The targets, from the cargo-fuzz project's entry files.
fn targets(crate_dir: &Path) -> Result<Vec<String>> {
    let mut out: Vec<String> = std::fs::read_dir(crate_dir.join("fuzz/fuzz_targets"))
        .context("reading tests/fuzz-targets/fuzz/fuzz_targets")?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".rs")
                .map(str::to_string)
        })
        .collect();
    out.sort();
    Ok(out)
}

fn ensure_cargo_fuzz() -> Result<()> {
    let has = |args: &[&str]| {
        Command::new("cargo")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !has(&["+nightly", "--version"]) {
        let ok = Command::new("rustup")
            .args(["toolchain", "install", "nightly", "--profile", "minimal"])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            bail!("fuzzing needs a nightly toolchain (rustup toolchain install nightly)");
        }
    }
    if !has(&["+nightly", "fuzz", "--version"]) {
        eprintln!("installing cargo-fuzz from crates.io");
        let ok = Command::new("cargo")
            .args(["install", "cargo-fuzz", "--locked"])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            bail!("could not install cargo-fuzz (cargo install cargo-fuzz)");
        }
    }
    Ok(())
}

fn run_target(root: &Path, crate_dir: &Path, target: &str, secs: u64) -> Result<FuzzRun> {
    let work = root.join("target/fuzz-corpus").join(target);
    std::fs::create_dir_all(&work)?;
    let seeds = crate_dir.join("corpus").join(target);
    let artifacts = crate_dir.join("fuzz/artifacts").join(target);
    std::fs::create_dir_all(&artifacts)?;
    let before = count_files(&artifacts);
    eprintln!("fuzzing {target} for {secs} s");
    // The environment `cargo xtask` was started with (its package variables, the library
    // path, the pinned toolchain) stays out, or the instrumented build is redone from scratch
    // rather than reused from `cargo +nightly fuzz build` in a shell.
    let out = crate::cargo()
        .current_dir(crate_dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO")
        .args([
            "+nightly",
            "fuzz",
            "run",
            "--release",
            "--debug-assertions",
            target,
        ])
        .arg(&work)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={secs}"))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .args([
            "-print_final_stats=1",
            "-timeout=20",
            "-rss_limit_mb=4096",
            "-max_len=65536",
        ])
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("running cargo fuzz on {target}"))?;
    let log = String::from_utf8_lossy(&out.stderr);
    let executions = log
        .lines()
        .find_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    let crashes = count_files(&artifacts) - before;
    if !out.status.success() && crashes == 0 {
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        bail!(
            "cargo fuzz {target} failed without an artifact:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    eprintln!("{target}: {executions} executions, {crashes} crashes");
    Ok(FuzzRun {
        target: target.to_string(),
        secs,
        executions,
        crashes,
    })
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| {
        d.filter_map(|e| e.ok())
            .filter(|e| e.path().is_file())
            .count()
    })
}
