//! `cargo xtask package`: every deployable artifact in `target/package/`, with a manifest of
//! sha256 sums and each artifact's size against its budget.
//!
//! - `lambda/mlpipe-lambda-<arch>.zip`: the one Lambda binary of every function stage
//!   (`functions/lambda`, stage chosen by `MLPIPE_STAGE`), built by cargo-lambda with zig as
//!   the linker (so it needs only glibc 2.17+, older than `provided.al2023`'s) in the
//!   size-tuned `lambda` profile. cargo-lambda and zig install from PyPI into `.tools/lambda` (beside the build cache when `CARGO_TARGET_DIR` is set).
//! - `worker/`: the Cloudflare Worker as worker-build wrote it (`index.js` + `index_bg.wasm`)
//!   and its `wrangler.toml`.
//! - `spin/`: the Spin component and a `spin.toml` that points at it.
//! - `train/`: the training image's Dockerfile (and the batch inference image's,
//!   `batch-predict.Dockerfile`) and their build context (the tracked sources as a
//!   reproducible tarball: `docker build -f infra/train.Dockerfile - < context.tar.gz`).
//! - `definitions/`: the project's definitions as `mlpipe push` publishes them (the object
//!   tree under `definitions/` of a fresh store), which Terraform seeds a new bucket with.
//!
//! Budgets: a Lambda zip at most 20 MB (goal 10 MB), the Worker at most 3 MiB gzipped (goal
//! 2 MiB), the Spin component at most 24 MiB (goal 12 MiB). Over budget fails the command, and the packaging test re-checks the manifest.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use contracts::sha256_hex;
use serde_json::{Value, json};

use crate::{cargo, edge, run};

/// cargo-lambda and zig (`ziglang`) from PyPI: the versions the packaging was measured with.
const CARGO_LAMBDA_VERSION: &str = "1.9.2";
const ZIGLANG_VERSION: &str = "0.17.1";

const MB: u64 = 1_000_000;
const MIB: u64 = 1_048_576;
/// A Lambda zip: at most 20 MB, goal 10 MB.
pub const LAMBDA_ZIP_BUDGET: u64 = 20 * MB;
pub const LAMBDA_ZIP_GOAL: u64 = 10 * MB;
/// The Worker upload (script + wasm), gzipped: at most 3 MiB, goal 2 MiB.
pub const WORKER_GZIP_BUDGET: u64 = 3 * MIB;
pub const WORKER_GZIP_GOAL: u64 = 2 * MIB;
/// The Spin component (the wasm `spin deploy` uploads): at most 24 MiB, goal 12 MiB. It was
/// 16.0 MiB when the budget was set (2026-12-05); the goal is what dropping tract's ONNX
/// front end for a converted model format would need (issue 20's measurement).
pub const SPIN_BUDGET: u64 = 24 * MIB;
pub const SPIN_GOAL: u64 = 12 * MIB;

/// A Lambda architecture, by its AWS name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Arm64,
}

impl Arch {
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "arm64",
        }
    }

    pub fn triple(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-linux-gnu",
            Arch::Arm64 => "aarch64-unknown-linux-gnu",
        }
    }
}

/// `--arch x86_64|arm64|all` (default x86_64).
pub fn arch_arg(args: &[String]) -> Result<Vec<Arch>> {
    let Some(i) = args.iter().position(|a| a == "--arch") else {
        return Ok(vec![Arch::X86_64]);
    };
    match args.get(i + 1).map(String::as_str) {
        Some("x86_64" | "x86-64" | "amd64") => Ok(vec![Arch::X86_64]),
        Some("arm64" | "aarch64") => Ok(vec![Arch::Arm64]),
        Some("all") => Ok(vec![Arch::X86_64, Arch::Arm64]),
        other => bail!("--arch takes x86_64, arm64 or all, not {other:?}"),
    }
}

/// `--project DIR` (default `examples/fraud`).
pub fn project_arg(root: &Path, args: &[String]) -> PathBuf {
    args.iter()
        .position(|a| a == "--project")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("examples/fraud"))
}

/// Builds to package when the caller already made them (the test command builds them once
/// for its tests); otherwise `package` builds them.
#[derive(Debug, Clone)]
pub struct Prebuilt {
    /// worker-build's output folder (`index.js`, `index_bg.wasm`).
    pub worker: PathBuf,
    /// The Spin component as deployed (nothing embedded).
    pub spin: PathBuf,
    /// The `mlpipe` CLI, which publishes the definitions.
    pub mlpipe: PathBuf,
}

/// Where the package goes: `target/package/` of the project, whatever `CARGO_TARGET_DIR` is,
/// so that Terraform's default `package_dir` finds it.
pub fn package_dir(root: &Path) -> PathBuf {
    root.join("target/package")
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

/// The venv of cargo-lambda and zig: beside the build cache when `CARGO_TARGET_DIR` points
/// outside the clone (as the cargo-installed tools are, see `edge::cargo_root`), else
/// `.tools/lambda`. cargo-lambda points the linker and the C compiler at zig inside this
/// venv, and the build scripts that read those paths rerun when they move: a venv inside
/// each fresh clone made every clone rebuild the Lambda's dependencies from scratch.
fn lambda_venv(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir).join("mlpipe-tools/lambda-venv"),
        None => root.join(".tools/lambda"),
    }
}

fn cargo_lambda(root: &Path) -> PathBuf {
    lambda_venv(root).join("bin/cargo-lambda")
}

/// True when the venv (`lambda_venv`) has the pinned cargo-lambda and zig.
fn has_cargo_lambda(root: &Path) -> bool {
    let version = Command::new(cargo_lambda(root))
        .args(["lambda", "--version"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    version.is_some_and(|v| v.contains(CARGO_LAMBDA_VERSION))
        && lambda_venv(root).join("bin/python-zig").is_file()
}

/// cargo-lambda and zig from PyPI into their venv (`lambda_venv`; seconds).
pub fn install_cargo_lambda(root: &Path) -> Result<()> {
    if has_cargo_lambda(root) {
        return Ok(());
    }
    let venv = lambda_venv(root);
    if !venv.join("bin/pip").is_file() {
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    }
    run(Command::new(venv.join("bin/pip")).args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        &format!("cargo-lambda=={CARGO_LAMBDA_VERSION}"),
        &format!("ziglang=={ZIGLANG_VERSION}"),
    ]))?;
    if !has_cargo_lambda(root) {
        bail!(
            "cargo-lambda {CARGO_LAMBDA_VERSION} and ziglang installed into {} but do not run",
            venv.display()
        );
    }
    Ok(())
}

/// Builds the Lambda binary for `arch` and returns cargo-lambda's zip of it.
fn build_lambda(root: &Path, arch: Arch) -> Result<PathBuf> {
    install_cargo_lambda(root)?;
    run(Command::new("rustup").args(["target", "add", arch.triple()]))?;
    let out = target_dir(root).join("lambda-zip").join(arch.name());
    // cargo-lambda finds zig through PATH (the venv's `python-zig`).
    let mut path = vec![lambda_venv(root).join("bin")];
    if let Some(p) = std::env::var_os("PATH") {
        path.extend(std::env::split_paths(&p));
    }
    let mut cmd = cargo();
    cmd.env("PATH", std::env::join_paths(path)?)
        .arg("lambda")
        .args(["build", "--locked", "--profile", "lambda"])
        // The `lambda` profile in Cargo.toml says how to optimise; cargo-lambda's own release
        // defaults would override it.
        .arg("--disable-optimizations")
        .args(["--target", arch.triple()])
        .args(["--package", "lambda", "--bin", "mlpipe-lambda"])
        .args(["--output-format", "zip", "--lambda-dir"])
        .arg(&out);
    // `cargo lambda` is found as a cargo subcommand on PATH.
    run(&mut cmd).context("building the Lambda binary with cargo-lambda")?;
    let zip = out.join("mlpipe-lambda/bootstrap.zip");
    if !zip.is_file() {
        bail!("cargo-lambda finished but {} is missing", zip.display());
    }
    Ok(zip)
}

/// The bytes of `data` gzipped at level 9 (what Cloudflare counts against a Worker's limit).
fn gzipped_len(data: &[u8]) -> Result<u64> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(data)?;
    Ok(gz.finish()?.len() as u64)
}

/// One packaged file.
struct Artifact {
    /// Path under `target/package/`.
    path: String,
    kind: &'static str,
    /// What deploys it.
    deployed_by: &'static str,
}

/// The Worker's upload: its module script and the wasm it imports.
const WORKER_FILES: [&str; 2] = ["index.js", "index_bg.wasm"];

/// Writes the whole package; returns the manifest path. Fails when an artifact is over
/// its budget (after writing the manifest, so the report can be read).
pub fn package(
    root: &Path,
    arches: &[Arch],
    project: &Path,
    prebuilt: Option<Prebuilt>,
) -> Result<PathBuf> {
    let started = std::time::Instant::now();
    let dir = package_dir(root);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir)?;
    let mut artifacts: Vec<Artifact> = Vec::new();

    // Lambda zips.
    std::fs::create_dir_all(dir.join("lambda"))?;
    for &arch in arches {
        let zip = build_lambda(root, arch)?;
        let path = format!("lambda/mlpipe-lambda-{}.zip", arch.name());
        std::fs::copy(&zip, dir.join(&path))?;
        artifacts.push(Artifact {
            path,
            kind: "lambda-zip",
            deployed_by: "terraform",
        });
    }

    // Edge builds and the CLI.
    let edge_builds = match prebuilt {
        Some(b) => b,
        None => Prebuilt {
            worker: edge::build_worker(root, None, false)?,
            spin: edge::build_spin(root, None, false)?,
            mlpipe: build_mlpipe(root)?,
        },
    };
    std::fs::create_dir_all(dir.join("worker"))?;
    for file in WORKER_FILES {
        std::fs::copy(edge_builds.worker.join(file), dir.join("worker").join(file))
            .with_context(|| format!("copying the Worker's {file}"))?;
        artifacts.push(Artifact {
            path: format!("worker/{file}"),
            kind: "worker",
            deployed_by: "terraform",
        });
    }
    std::fs::copy(
        root.join("edge/edge-worker/wrangler.toml"),
        dir.join("worker/wrangler.toml"),
    )?;
    artifacts.push(Artifact {
        path: "worker/wrangler.toml".into(),
        kind: "worker-config",
        deployed_by: "wrangler deploy (alternative to terraform)",
    });
    std::fs::create_dir_all(dir.join("spin"))?;
    std::fs::copy(&edge_builds.spin, dir.join("spin/edge_spin.wasm"))?;
    std::fs::write(dir.join("spin/spin.toml"), packaged_spin_toml(root)?)?;
    for (path, kind) in [
        ("spin/edge_spin.wasm", "spin-component"),
        ("spin/spin.toml", "spin-manifest"),
    ] {
        artifacts.push(Artifact {
            path: path.into(),
            kind,
            deployed_by: "spin deploy",
        });
    }

    // The training image's Dockerfile and build context.
    std::fs::create_dir_all(dir.join("train"))?;
    std::fs::copy(
        root.join("infra/train.Dockerfile"),
        dir.join("train/Dockerfile"),
    )?;
    // The batch inference image builds from the same context.
    std::fs::copy(
        root.join("infra/batch-predict.Dockerfile"),
        dir.join("train/batch-predict.Dockerfile"),
    )?;
    source_tarball(root, &dir.join("train/context.tar.gz"))?;
    for (path, kind) in [
        ("train/Dockerfile", "train-dockerfile"),
        ("train/batch-predict.Dockerfile", "batch-predict-dockerfile"),
        ("train/context.tar.gz", "train-context"),
    ] {
        artifacts.push(Artifact {
            path: path.into(),
            kind,
            deployed_by: "docker build + push to the ECR repository",
        });
    }

    // Definitions, as `mlpipe push` publishes them.
    for path in published_definitions(root, &edge_builds.mlpipe, project, &dir)? {
        artifacts.push(Artifact {
            path,
            kind: "definition",
            deployed_by: "terraform",
        });
    }

    let manifest = write_manifest(&dir, &artifacts)?;
    let over = report(&manifest);
    eprintln!(
        "xtask: package written to {} in {:.0}s",
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    if !over.is_empty() {
        bail!("over budget: {}", over.join("; "));
    }
    Ok(dir.join("manifest.json"))
}

/// `edge/edge-spin/spin.toml` with the component's source pointing at the packaged wasm and
/// without the build section (the package has no sources).
fn packaged_spin_toml(root: &Path) -> Result<String> {
    let text = std::fs::read_to_string(root.join("edge/edge-spin/spin.toml"))?;
    let mut out = String::new();
    let mut in_build = false;
    let mut replaced = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            in_build = trimmed == "[component.edge.build]";
        }
        if in_build {
            continue;
        }
        if trimmed.starts_with("source = ") && !replaced {
            out.push_str("source = \"edge_spin.wasm\"\n");
            replaced = true;
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    if !replaced {
        bail!("edge/edge-spin/spin.toml has no component source line to point at the package");
    }
    Ok(out)
}

/// The tracked sources (and untracked, not ignored ones) as a reproducible gzipped tarball:
/// names sorted, times and owners fixed, so the same tree gives the same sha256.
fn source_tarball(root: &Path, out: &Path) -> Result<()> {
    let files = Command::new("git")
        .current_dir(root)
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .output()
        .context("listing the sources with git")?;
    if !files.status.success() {
        bail!(
            "git ls-files failed: {}",
            String::from_utf8_lossy(&files.stderr)
        );
    }
    // Deleted-but-tracked files are listed too; tar would fail on them.
    let list: Vec<u8> = files
        .stdout
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty() && root.join(String::from_utf8_lossy(p).as_ref()).is_file())
        .flat_map(|p| p.iter().copied().chain(std::iter::once(0)))
        .collect();
    let list_file = out.with_extension("list");
    std::fs::write(&list_file, list)?;
    let tar = out.with_extension("");
    run(Command::new("tar")
        .current_dir(root)
        .args([
            "--null",
            "--sort=name",
            "--mtime=@0",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "-cf",
        ])
        .arg(&tar)
        .arg("-T")
        .arg(&list_file))?;
    std::fs::remove_file(&list_file)?;
    run(Command::new("gzip").args(["-n", "-9", "-f"]).arg(&tar))?;
    if !out.is_file() {
        bail!("{} was not written", out.display());
    }
    Ok(())
}

/// Runs `mlpipe push` for `project` into a fresh local store and copies its `definitions/`
/// tree into the package; returns the packaged paths.
fn published_definitions(
    root: &Path,
    mlpipe: &Path,
    project: &Path,
    dir: &Path,
) -> Result<Vec<String>> {
    let store = target_dir(root).join("package-definitions-store");
    if store.exists() {
        std::fs::remove_dir_all(&store)?;
    }
    run(Command::new(mlpipe)
        .arg("--store")
        .arg(&store)
        .arg("push")
        .arg("--project")
        .arg(project))
    .with_context(|| format!("publishing the definitions of {}", project.display()))?;
    let mut paths = Vec::new();
    copy_tree(
        &store.join("definitions"),
        &dir.join("definitions"),
        "definitions",
        &mut paths,
    )?;
    if paths.is_empty() {
        bail!("mlpipe push wrote no definitions for {}", project.display());
    }
    paths.sort();
    Ok(paths)
}

fn copy_tree(from: &Path, to: &Path, rel: &str, paths: &mut Vec<String>) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = format!("{rel}/{name}");
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &to.join(&name), &rel, paths)?;
        } else {
            std::fs::copy(entry.path(), to.join(&name))?;
            paths.push(rel);
        }
    }
    Ok(())
}

/// The `mlpipe` CLI (dev profile, as the tests build it).
fn build_mlpipe(root: &Path) -> Result<PathBuf> {
    run(cargo().args([
        "build",
        "--locked",
        "--package",
        "mlpipe",
        "--bin",
        "mlpipe",
    ]))?;
    let bin = target_dir(root).join("debug/mlpipe");
    if !bin.is_file() {
        bail!("cargo built mlpipe but {} is missing", bin.display());
    }
    Ok(bin)
}

/// Writes `manifest.json` (every artifact: path, kind, bytes, sha256, what deploys it, and
/// the budget checks) and `SHA256SUMS` (for `sha256sum -c`).
fn write_manifest(dir: &Path, artifacts: &[Artifact]) -> Result<Value> {
    let mut entries = Vec::new();
    let mut sums = String::new();
    for a in artifacts {
        let data = std::fs::read(dir.join(&a.path))
            .with_context(|| format!("reading the packaged {}", a.path))?;
        let sha = sha256_hex(&data);
        sums.push_str(&format!("{sha}  {}\n", a.path));
        entries.push(json!({
            "path": a.path,
            "kind": a.kind,
            "bytes": data.len(),
            "sha256": sha,
            "deployed_by": a.deployed_by,
        }));
    }
    let mut budgets = Vec::new();
    for a in artifacts.iter().filter(|a| a.kind == "lambda-zip") {
        let bytes = std::fs::metadata(dir.join(&a.path))?.len();
        budgets.push(json!({
            "artifact": a.path,
            "measure": "zip bytes",
            "bytes": bytes,
            "budget": LAMBDA_ZIP_BUDGET,
            "goal": LAMBDA_ZIP_GOAL,
        }));
    }
    let mut worker = Vec::new();
    for file in WORKER_FILES {
        worker.extend(std::fs::read(dir.join("worker").join(file))?);
    }
    budgets.push(json!({
        "artifact": "worker/index.js + worker/index_bg.wasm",
        "measure": "gzip -9 bytes",
        "bytes": gzipped_len(&worker)?,
        "budget": WORKER_GZIP_BUDGET,
        "goal": WORKER_GZIP_GOAL,
    }));
    if let Some(spin) = artifacts.iter().find(|a| a.kind == "spin-component") {
        budgets.push(json!({
            "artifact": spin.path,
            "measure": "wasm bytes",
            "bytes": std::fs::metadata(dir.join(&spin.path))?.len(),
            "budget": SPIN_BUDGET,
            "goal": SPIN_GOAL,
        }));
    }
    let manifest = json!({
        "version": 1,
        "git_commit": git_commit(dir),
        "artifacts": entries,
        "budgets": budgets,
    });
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_string_pretty(&manifest)? + "\n",
    )?;
    std::fs::write(dir.join("SHA256SUMS"), sums)?;
    Ok(manifest)
}

fn git_commit(dir: &Path) -> Option<String> {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Prints the size report; returns the artifacts over budget.
fn report(manifest: &Value) -> Vec<String> {
    let mut over = Vec::new();
    eprintln!("xtask: package size report");
    eprintln!(
        "  {:<44} {:>12} {:>10} {:>10}  status",
        "artifact", "measure", "budget", "goal"
    );
    for b in manifest["budgets"].as_array().into_iter().flatten() {
        let bytes = b["bytes"].as_u64().unwrap_or(u64::MAX);
        let budget = b["budget"].as_u64().unwrap_or(0);
        let goal = b["goal"].as_u64().unwrap_or(0);
        let name = b["artifact"].as_str().unwrap_or("?");
        let status = if bytes > budget {
            over.push(format!("{name}: {bytes} bytes > {budget}"));
            "OVER BUDGET"
        } else if bytes > goal {
            "within budget, over goal"
        } else {
            "within goal"
        };
        // Each budget in its own unit: the Lambda's in MB, the Worker's in MiB.
        let (unit, div) = if budget % MIB == 0 {
            ("MiB", MIB)
        } else {
            ("MB", MB)
        };
        let shown = |n: u64| format!("{:.2} {unit}", n as f64 / div as f64);
        eprintln!(
            "  {:<44} {:>12} {:>10} {:>10}  {status}",
            name,
            shown(bytes),
            shown(budget),
            shown(goal),
        );
    }
    over
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arch_flag() {
        let args = |s: &[&str]| s.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        assert_eq!(arch_arg(&args(&["package"])).ok(), Some(vec![Arch::X86_64]));
        assert_eq!(
            arch_arg(&args(&["package", "--arch", "arm64"])).ok(),
            Some(vec![Arch::Arm64])
        );
        assert_eq!(
            arch_arg(&args(&["package", "--arch", "all"])).ok(),
            Some(vec![Arch::X86_64, Arch::Arm64])
        );
        assert!(arch_arg(&args(&["package", "--arch", "mips"])).is_err());
        assert!(arch_arg(&args(&["package", "--arch"])).is_err());
    }

    #[test]
    fn over_budget_is_reported() {
        let manifest = json!({"budgets": [
            {"artifact": "a.zip", "bytes": 21 * MB, "budget": LAMBDA_ZIP_BUDGET, "goal": LAMBDA_ZIP_GOAL},
            {"artifact": "b.zip", "bytes": 12 * MB, "budget": LAMBDA_ZIP_BUDGET, "goal": LAMBDA_ZIP_GOAL},
        ]});
        let over = report(&manifest);
        assert_eq!(over.len(), 1);
        assert!(over[0].starts_with("a.zip"), "{over:?}");
    }

    #[test]
    fn gzip_measure_shrinks_repetitive_data() {
        let data = vec![7u8; 100_000];
        let n = gzipped_len(&data).ok();
        assert!(n.is_some_and(|n| n < 1_000), "{n:?}");
    }
}
