//! The edge's build tools and artifacts: the Cloudflare Worker built with worker-build, run
//! by the tests under wrangler (workerd).
//!
//! Only package registries are reachable from CI, and worker-build would download
//! wasm-bindgen and wasm-opt from GitHub. So: wasm-bindgen-cli (the exact version in
//! Cargo.lock) and worker-build come from crates.io into `.tools/cargo`; Node 22 (wrangler 4
//! needs >= 22.12), wrangler (which brings workerd and esbuild) and binaryen's wasm-opt come
//! from npm into `.tools/node`; worker-build is pointed at them with `*_BIN` variables.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{cargo, run};

pub const WRANGLER_VERSION: &str = "4.164.0";
pub const WORKER_BUILD_VERSION: &str = "0.8.7";
const BINARYEN_VERSION: &str = "132";
/// jco serves wasi:http components on Node (the Spin component's test host).
const JCO_VERSION: &str = "1.35.0";
/// playwright-core (npm) for the /docs test in Debian's Chromium.
const PLAYWRIGHT_VERSION: &str = "1.64.1";

pub fn node_dir(root: &Path) -> PathBuf {
    root.join(".tools/node")
}

/// `node_modules/.bin` of the npm tools.
pub fn node_bin(root: &Path) -> PathBuf {
    node_dir(root).join("node_modules/.bin")
}

/// Where cargo-installed tools live: beside the build cache when `CARGO_TARGET_DIR` points
/// outside the clone (CI keeps that cache between runs, so the tools build once), else
/// `.tools/cargo`.
fn cargo_root(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir).join("mlpipe-tools"),
        None => root.join(".tools/cargo"),
    }
}

fn cargo_bin(root: &Path) -> PathBuf {
    cargo_root(root).join("bin")
}

/// PATH with the npm tools (node 22 first) and the cargo-installed tools in front.
pub fn tool_path(root: &Path) -> Result<std::ffi::OsString> {
    let mut paths = vec![node_bin(root), cargo_bin(root)];
    if let Some(p) = std::env::var_os("PATH") {
        paths.extend(std::env::split_paths(&p));
    }
    Ok(std::env::join_paths(paths)?)
}

/// `bin --version`, run with the tools' PATH (wrangler needs the npm Node 22 on it).
fn version_of(root: &Path, bin: &Path) -> Option<String> {
    let out = Command::new(bin)
        .arg("--version")
        .env("PATH", tool_path(root).ok()?)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Node 22, wrangler and wasm-opt from npm (seconds; no Rust build).
pub fn install_node_tools(root: &Path) -> Result<()> {
    let bin = node_bin(root);
    let wanted = version_of(root, &bin.join("wrangler"))
        .is_some_and(|v| v.contains(WRANGLER_VERSION))
        && bin.join("wasm-opt").is_file()
        && bin.join("esbuild").is_file()
        && bin.join("jco").is_file()
        && node_dir(root)
            .join(format!(
                "node_modules/playwright-core-{PLAYWRIGHT_VERSION}.ok"
            ))
            .is_file();
    if wanted {
        return Ok(());
    }
    let dir = node_dir(root);
    std::fs::create_dir_all(&dir)?;
    // A package.json of its own, so npm installs here rather than in a parent project.
    let manifest = dir.join("package.json");
    if !manifest.is_file() {
        std::fs::write(&manifest, "{\"name\":\"mlpipe-tools\",\"private\":true}\n")?;
    }
    run(Command::new("npm").current_dir(&dir).args([
        "install",
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
        "node@22",
        &format!("wrangler@{WRANGLER_VERSION}"),
        &format!("binaryen@{BINARYEN_VERSION}"),
        &format!("@bytecodealliance/jco@{JCO_VERSION}"),
        // Drives Debian's Chromium in the /docs test; the package downloads no browser.
        &format!("playwright-core@{PLAYWRIGHT_VERSION}"),
    ]))?;
    std::fs::write(
        dir.join(format!(
            "node_modules/playwright-core-{PLAYWRIGHT_VERSION}.ok"
        )),
        "",
    )?;
    for tool in ["node", "wrangler", "wasm-opt", "esbuild", "jco"] {
        if !bin.join(tool).is_file() {
            bail!(
                "npm install finished but {} is missing",
                bin.join(tool).display()
            );
        }
    }
    Ok(())
}

/// The `wasm-bindgen` version in Cargo.lock: the CLI must match it exactly.
fn locked_wasm_bindgen(root: &Path) -> Result<String> {
    let lock = std::fs::read_to_string(root.join("Cargo.lock"))?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "name = \"wasm-bindgen\""
            && let Some(v) = lines
                .next()
                .and_then(|l| l.trim().strip_prefix("version = "))
        {
            return Ok(v.trim_matches('"').to_string());
        }
    }
    bail!("no wasm-bindgen in Cargo.lock")
}

/// wasm-bindgen-cli and worker-build from crates.io (Rust builds: a few minutes, once).
pub fn install_cargo_tools(root: &Path) -> Result<()> {
    let bindgen = locked_wasm_bindgen(root)?;
    let tools = [
        ("wasm-bindgen-cli", bindgen.as_str(), "wasm-bindgen", false),
        ("worker-build", WORKER_BUILD_VERSION, "worker-build", true),
    ];
    for (krate, version, bin, locked) in tools {
        let path = cargo_bin(root).join(bin);
        if version_of(root, &path).is_some_and(|v| v.contains(version)) {
            continue;
        }
        let mut cmd = cargo();
        cmd.args(["install", "--quiet", "--root"])
            .arg(cargo_root(root))
            .args([krate, "--version", version]);
        if locked {
            cmd.arg("--locked");
        }
        // Tools get their own target dir: the project's build cache stays the project's.
        cmd.env("CARGO_TARGET_DIR", cargo_root(root).join("build"));
        run(&mut cmd)?;
    }
    Ok(())
}

/// Sets `MLPIPE_EMBED_DIR` for an edge build (a registry folder whose champion the build
/// carries, see the `edge-embed` crate), or clears it so an inherited one never leaks in.
fn embed_env(cmd: &mut Command, embed: Option<&Path>) -> Result<()> {
    match embed {
        Some(dir) => {
            let dir = dir
                .canonicalize()
                .with_context(|| format!("--embed {}", dir.display()))?;
            cmd.env("MLPIPE_EMBED_DIR", dir);
        }
        None => {
            cmd.env_remove("MLPIPE_EMBED_DIR");
        }
    }
    Ok(())
}

/// `--embed DIR` among a task's arguments.
pub fn embed_arg(args: &[String]) -> Option<PathBuf> {
    let i = args.iter().position(|a| a == "--embed")?;
    args.get(i + 1).map(PathBuf::from)
}

/// Builds `edge/edge-worker` with worker-build (release profile for wasm: size-tuned, LTO) into
/// `edge/edge-worker/build/` (`index.js` + `index_bg.wasm`), which wrangler serves and deploys.
/// `embed`: a registry folder whose champion is compiled in.
/// `lint`: clippy lints the Worker crate as it compiles (the test command's lint pass).
///
/// worker-build always re-runs wasm-bindgen and `wasm-opt -Oz` (minutes) even when cargo has
/// nothing to rebuild. So cargo builds the wasm first, exactly as worker-build would (same
/// arguments, same environment, `--locked`), and worker-build runs only when that wasm, or
/// the tools that turn it into the upload, differ from the ones the existing output was made
/// from (a stamp beside the output records them).
pub fn build_worker(root: &Path, embed: Option<&Path>, lint: bool) -> Result<PathBuf> {
    install_node_tools(root)?;
    install_cargo_tools(root)?;
    run(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))?;
    let dir = root.join("edge/edge-worker");
    let out = dir.join("build");
    let configure = |cmd: &mut Command| -> Result<()> {
        cmd.current_dir(&dir)
            .env("PATH", tool_path(root)?)
            // What worker-build sets for its cargo call (wasm-bindgen's macro reads it).
            .env("WASM_BINDGEN_USE_JS_SYS", "1");
        embed_env(cmd, embed)?;
        if lint {
            crate::with_clippy(cmd)?;
        }
        Ok(())
    };
    let mut compile = cargo();
    compile.args([
        "build",
        "--lib",
        "--profile",
        "wasm-release",
        "--target",
        "wasm32-unknown-unknown",
        "--locked",
    ]);
    configure(&mut compile)?;
    run(&mut compile).context("compiling the Worker for wasm32-unknown-unknown")?;
    let compiled =
        crate::target_dir(root).join("wasm32-unknown-unknown/wasm-release/edge_worker.wasm");
    let stamp_path = out.join(".mlpipe-stamp");
    let stamp = format!(
        "wasm {}\nworker-build {WORKER_BUILD_VERSION}\nwasm-bindgen {}\nbinaryen {BINARYEN_VERSION}\n",
        contracts::sha256_hex(
            &std::fs::read(&compiled).with_context(|| format!("reading {}", compiled.display()))?
        ),
        locked_wasm_bindgen(root)?,
    );
    let outputs_present = ["index.js", "index_bg.wasm"]
        .iter()
        .all(|f| out.join(f).is_file());
    if outputs_present && std::fs::read_to_string(&stamp_path).ok().as_deref() == Some(&stamp) {
        eprintln!(
            "xtask: the Worker's wasm and tools are unchanged since {} was built; worker-build skipped",
            out.display()
        );
    } else {
        let mut cmd = Command::new(cargo_bin(root).join("worker-build"));
        // `--locked` reaches worker-build's own cargo call (unknown arguments pass through).
        cmd.args(["--profile", "wasm-release", "--locked"])
            .env("WASM_BINDGEN_BIN", cargo_bin(root).join("wasm-bindgen"))
            .env("WASM_OPT_BIN", node_bin(root).join("wasm-opt"))
            .env("ESBUILD_BIN", node_bin(root).join("esbuild"));
        configure(&mut cmd)?;
        // The same environment scrubbing as every cargo call (worker-build runs cargo).
        for (key, _) in std::env::vars_os() {
            if let Some(k) = key.to_str()
                && (k.starts_with("CARGO_PKG_") || k == "CARGO_MANIFEST_DIR")
            {
                cmd.env_remove(k);
            }
        }
        let _ = std::fs::remove_file(&stamp_path);
        run(&mut cmd).context("building the Worker with worker-build")?;
        for file in ["index.js", "index_bg.wasm"] {
            if !out.join(file).is_file() {
                bail!(
                    "worker-build finished but {} is missing",
                    out.join(file).display()
                );
            }
        }
        std::fs::write(&stamp_path, &stamp)?;
    }
    let wasm = std::fs::metadata(out.join("index_bg.wasm"))?.len();
    eprintln!(
        "xtask: Worker built: {} ({:.2} MiB wasm)",
        out.display(),
        wasm as f64 / 1_048_576.0
    );
    Ok(out)
}

/// Builds the Spin component (`edge/edge-spin`) for wasm32-wasip2 (a component directly; no
/// adapter step) with the size-tuned profile, and returns the `.wasm` path. `embed`: a
/// registry folder whose champion is compiled in.
pub fn build_spin(root: &Path, embed: Option<&Path>, lint: bool) -> Result<PathBuf> {
    run(Command::new("rustup").args(["target", "add", "wasm32-wasip2"]))?;
    let mut cmd = cargo();
    if lint {
        crate::with_clippy(&mut cmd)?;
    }
    cmd.args([
        "build",
        "--locked",
        "--package",
        "edge-spin",
        "--target",
        "wasm32-wasip2",
        "--profile",
        "wasm-release",
    ]);
    embed_env(&mut cmd, embed)?;
    run(&mut cmd)?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let wasm = target.join("wasm32-wasip2/wasm-release/edge_spin.wasm");
    if !wasm.is_file() {
        bail!("the Spin build finished but {} is missing", wasm.display());
    }
    eprintln!(
        "xtask: Spin component built: {} ({:.2} MiB)",
        wasm.display(),
        std::fs::metadata(&wasm)?.len() as f64 / 1_048_576.0
    );
    Ok(wasm)
}

/// The Spin component without and with the embedding fixture (`edge/edge-embed/fixture`), copied
/// to `<target>/edge-test/` so one build does not overwrite the other: (plain, embedded).
/// Both builds are linted by clippy as they compile (the component only builds for wasm).
pub fn build_spin_pair(root: &Path) -> Result<(PathBuf, PathBuf)> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let dir = target.join("edge-test");
    std::fs::create_dir_all(&dir)?;
    let plain = dir.join("edge_spin.wasm");
    std::fs::copy(build_spin(root, None, true)?, &plain)?;
    let embedded = dir.join("edge_spin_embedded.wasm");
    std::fs::copy(
        build_spin(root, Some(&root.join("edge/edge-embed/fixture")), true)?,
        &embedded,
    )?;
    Ok((plain, embedded))
}
