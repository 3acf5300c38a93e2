//! promtool for the monitoring-assets test (`shared/telemetry/tests/monitoring_assets.rs`
//! reads `MLPIPE_PROMTOOL`): the one on the PATH, else Debian's `prometheus` package unpacked
//! into `.tools/prometheus`. The package is fetched with `apt-get download` and extracted
//! with `dpkg-deb -x`, never installed: installing it would also install and start the
//! Prometheus service. Debian bookworm ships Prometheus 2.42, the version the rules target.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// An existing promtool (the PATH, then `.tools/prometheus/usr/bin/promtool`), or the one
/// this unpacks there (seconds; no Rust build).
pub fn ensure_promtool(root: &Path) -> Result<PathBuf> {
    if let Some(found) = on_path() {
        return Ok(found);
    }
    let dir = root.join(".tools/prometheus");
    let promtool = dir.join("usr/bin/promtool");
    if runs(&promtool) {
        return Ok(promtool);
    }
    let download = root
        .join(".tools")
        .join(format!("prometheus-download-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&download);
    std::fs::create_dir_all(&download)
        .with_context(|| format!("creating {}", download.display()))?;
    let unpacked = download_and_unpack(&download, &dir);
    let _ = std::fs::remove_dir_all(download);
    unpacked.context("installing promtool (or put it on the PATH, or set MLPIPE_PROMTOOL)")?;
    if !runs(&promtool) {
        bail!(
            "unpacked Debian's prometheus package into {}, but `{} --version` does not run",
            dir.display(),
            promtool.display()
        );
    }
    eprintln!("xtask: promtool unpacked into {}", dir.display());
    Ok(promtool)
}

/// True when `path` is a promtool that answers `--version`.
fn runs(path: &Path) -> bool {
    path.is_file()
        && Command::new(path)
            .arg("--version")
            .output()
            .is_ok_and(|out| out.status.success())
}

fn on_path() -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join("promtool"))
        .find(|p| runs(p))
}

/// Downloads the package into `download` and unpacks it as `dir`. The unpack goes to a
/// folder inside `download` first and is moved into place whole, so an interrupted run never
/// leaves a half-filled `dir` behind.
fn download_and_unpack(download: &Path, dir: &Path) -> Result<()> {
    if let Err(first) = apt_download(download) {
        // Container images often come without package lists.
        eprintln!("xtask: {first:#}; running `apt-get update` and trying again");
        checked(Command::new("apt-get").args(["update", "-qq"]))
            .with_context(|| format!("{first:#}; `apt-get update` failed too"))?;
        apt_download(download)?;
    }
    let deb = std::fs::read_dir(download)
        .with_context(|| format!("reading {}", download.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|ext| ext == "deb"))
        .with_context(|| {
            format!(
                "`apt-get download prometheus` left no .deb in {}",
                download.display()
            )
        })?;
    let staging = download.join("unpacked");
    checked(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&staging))?;
    if dir.exists() {
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("removing the previous {}", dir.display()))?;
    }
    std::fs::rename(&staging, dir)
        .with_context(|| format!("moving {} to {}", staging.display(), dir.display()))?;
    Ok(())
}

fn apt_download(download: &Path) -> Result<()> {
    checked(
        Command::new("apt-get")
            .args(["download", "prometheus"])
            .current_dir(download),
    )
}

/// Runs `cmd` with its output captured; an error names the command and carries its stderr.
fn checked(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: {cmd:?}");
    let out = cmd
        .output()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
