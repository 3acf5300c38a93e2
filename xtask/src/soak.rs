//! `cargo xtask soak`: the servers under sustained load, and bursts of duplicated events.
//!
//! - **native**: the release `mlpipe serve` with API keys on (a key, rate limits set high
//!   enough not to refuse) under wrk over HTTP and `mlpipe-bench grpc-load` over gRPC at the
//!   same time, after a warm-up, in windows (a minute by default) for `--secs` (10 minutes
//!   for the report), bounded by `--max-requests` too. Each window's requests, p99 and
//!   errors, and the server's resident memory after it. Fails on any 5xx or transport
//!   error, a last-window p99 above 1.5x the first's, or memory that keeps growing.
//! - **worker**: the Worker under `wrangler dev` the same way (HTTP only, prediction logs
//!   at the same `--log-sample`), for `--worker-secs` after `--worker-warmup` (3 minutes by
//!   default: workerd's V8 heap grows by ~200-300 MB over its first ~50,000 requests, with or
//!   without prediction logs, then stays level).
//! - **uploads**: `--uploads` files to moto's S3 with its notifications on SQS, each
//!   delivered twice, consumed by four worker loops at once (`mlpipe-bench upload-soak`):
//!   every version committed exactly once, nothing dead-lettered.
//!
//! Loopback targets only; `--parts native,worker,uploads` picks what runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{
    KilledGroup, bench_key, cargo, edge, flag, free_port, install_python_tools, moto_server, run,
    serde_like, start_server, target_dir, wrangler_dev,
};

/// A window's p99 may be this many times the first window's.
const P99_GROWTH: f64 = 1.5;
/// Resident memory may grow this many MB a minute after the warm-up (the least-squares
/// slope over samples every `RSS_SAMPLE_SECS`): flat, allowing allocator noise.
const RSS_MB_PER_MIN: f64 = 1.0;
/// Seconds between resident-memory samples during the measured windows.
const RSS_SAMPLE_SECS: u64 = 2;

pub fn soak(root: &Path, args: &[String]) -> Result<()> {
    let secs = flag(args, "--secs", 600)? as u64;
    let warmup = flag(args, "--warmup", 30)? as u64;
    let window = (flag(args, "--window", 60)? as u64).clamp(1, secs.max(1));
    let worker_secs = flag(args, "--worker-secs", 120)? as u64;
    let worker_warmup = flag(args, "--worker-warmup", 180)? as u64;
    let uploads = flag(args, "--uploads", 200)?;
    let max_requests = flag(args, "--max-requests", 200_000_000)? as u64;
    let log_sample = text_flag(args, "--log-sample").unwrap_or("0.1").to_string();
    let parts = text_flag(args, "--parts").unwrap_or("native,worker,uploads");
    let parts: Vec<&str> = parts.split(',').map(str::trim).collect();
    if let Some(p) = parts
        .iter()
        .find(|p| !["native", "worker", "uploads"].contains(p))
    {
        bail!("unknown soak part {p:?}: native, worker, uploads");
    }
    run(cargo().args(["build", "--locked", "--release", "-p", "mlpipe"]))?;
    let target = target_dir(root);
    let mlpipe = target.join("release/mlpipe");
    let work = target.join("soak");
    let store = work.join("store");
    if !store.join("models/fraud/aliases/champion.json").is_file() {
        let _ = std::fs::remove_dir_all(&store);
        std::fs::create_dir_all(&work)?;
        run(Command::new(&mlpipe)
            .args(["run", "--store"])
            .arg(&store)
            .current_dir(root))?;
    }
    let inputs = champion_inputs(&store)?;
    let mut failures = Vec::new();
    if parts.contains(&"native")
        && let Err(e) = native(
            root,
            &store,
            inputs,
            Plan {
                secs,
                warmup,
                window,
                max_requests,
            },
            &log_sample,
        )
    {
        eprintln!("soak native: {e:#}");
        failures.push(format!("native: {e:#}"));
    }
    if parts.contains(&"worker") {
        // Four windows at least: workerd's memory needs points to show a trend.
        let plan = Plan {
            secs: worker_secs,
            warmup: worker_warmup,
            window: window.min((worker_secs / 4).max(1)),
            max_requests,
        };
        if let Err(e) = worker(root, &store, inputs, plan, &log_sample) {
            eprintln!("soak worker: {e:#}");
            failures.push(format!("worker: {e:#}"));
        }
    }
    if parts.contains(&"uploads")
        && let Err(e) = upload_soak(root, uploads)
    {
        eprintln!("soak uploads: {e:#}");
        failures.push(format!("uploads: {e:#}"));
    }
    if !failures.is_empty() {
        bail!("soak failed:\n  {}", failures.join("\n  "));
    }
    Ok(())
}

/// `--name VALUE`.
fn text_flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1).map(String::as_str)
}

/// How long and how much.
#[derive(Debug, Clone, Copy)]
struct Plan {
    secs: u64,
    warmup: u64,
    window: u64,
    max_requests: u64,
}

/// One window of one load.
#[derive(Debug, Clone, Default)]
struct Window {
    requests: u64,
    p99_ms: f64,
    /// Answers by status (HTTP); gRPC failures are counted under 0.
    statuses: BTreeMap<u16, u64>,
    /// Connect, read, write errors and timeouts (wrk), or failed calls (gRPC).
    transport_errors: u64,
    first_error: Option<String>,
}

impl Window {
    fn server_errors(&self) -> u64 {
        self.statuses
            .iter()
            .filter(|(s, _)| **s >= 500)
            .map(|(_, n)| n)
            .sum::<u64>()
            + self.transport_errors
    }

    fn other_refusals(&self) -> u64 {
        self.statuses
            .iter()
            .filter(|(s, _)| (300..500).contains(*s))
            .map(|(_, n)| n)
            .sum()
    }
}

/// The model's input width, from its bundle.
fn champion_inputs(store: &Path) -> Result<usize> {
    let alias = std::fs::read_to_string(store.join("models/fraud/aliases/champion.json"))?;
    let version = field_number(&alias, "version").context("the champion alias has no version")?;
    let bundle =
        std::fs::read_to_string(store.join(format!("models/fraud/{version}/bundle.json")))?;
    // Count the objects of "inputs": [...] by their "name" keys up to the closing bracket.
    let start = bundle
        .find("\"inputs\"")
        .context("the bundle lists no inputs")?;
    let rest = &bundle[start..];
    let end = matching_bracket(rest).context("the bundle's inputs are not a list")?;
    Ok(rest[..end].matches("\"name\"").count())
}

fn field_number(text: &str, name: &str) -> Option<u64> {
    let at = text.find(&format!("\"{name}\""))?;
    let rest = text[at..].split_once(':')?.1.trim_start();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The end of the first `[...]` in `text` (nested brackets counted; strings ignored, which
/// is enough for the bundle's input list).
fn matching_bracket(text: &str) -> Option<usize> {
    let open = text.find('[')?;
    let mut depth = 0;
    for (i, c) in text[open..].char_indices() {
        match c {
            '[' => depth += 1,
            ']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(open + i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// A wrk script POSTing one row with the key, counting answers by status and printing them
/// when done (`status CODE COUNT` lines).
fn script(path: &Path, inputs: usize, key: &str) -> Result<PathBuf> {
    let row: Vec<String> = (0..inputs)
        .map(|j| format!("{}", (j * 7 % 11) as f32 * 0.5))
        .collect();
    let body = format!(
        "{{\"inputs\":[{{\"name\":\"features\",\"shape\":[1,{inputs}],\"datatype\":\"FP32\",\"data\":[[{}]]}}]}}",
        row.join(",")
    );
    let lua = format!(
        r#"wrk.method = "POST"
wrk.body = '{body}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {{}} end
function response(status, headers, body) statuses[status] = (statuses[status] or 0) + 1 end
function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    for code, n in pairs(t:get("statuses")) do io.write(string.format("status %d %d\n", code, n)) end
  end
end
"#
    );
    std::fs::write(path, lua)?;
    Ok(path.to_path_buf())
}

/// wrk for `secs` against a loopback URL: 16 connections on one thread.
fn wrk_window(script: &Path, url: &str, secs: u64) -> Result<Window> {
    if !url.starts_with("http://127.0.0.1:") {
        bail!("the soak only targets loopback, not {url}");
    }
    let out = Command::new("wrk")
        .args(["-t1", "-c16", &format!("-d{secs}s"), "--latency", "-s"])
        .arg(script)
        .arg(url)
        .output()
        .context("running wrk (apt-get install wrk)")?;
    if !out.status.success() {
        bail!("wrk failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut w = Window::default();
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("status ") {
            let mut it = rest.split_whitespace();
            if let (Some(Ok(code)), Some(Ok(n))) = (
                it.next().map(str::parse::<u16>),
                it.next().map(str::parse::<u64>),
            ) {
                *w.statuses.entry(code).or_default() += n;
            }
        } else if let Some(rest) = line.strip_prefix("99%") {
            w.p99_ms = latency_ms(rest.trim())?;
        } else if let Some(rest) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            w.transport_errors += rest
                .split(',')
                .filter_map(|p| p.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>();
            w.first_error.get_or_insert_with(|| line.to_string());
        } else if line.contains(" requests in ") {
            w.requests = line
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
        }
    }
    Ok(w)
}

fn latency_ms(text: &str) -> Result<f64> {
    let (number, unit) = text.split_at(
        text.find(|c: char| c.is_ascii_alphabetic())
            .unwrap_or(text.len()),
    );
    let number: f64 = number.trim().parse()?;
    Ok(match unit {
        "us" => number / 1000.0,
        "ms" => number,
        "s" => number * 1000.0,
        "m" => number * 60_000.0,
        other => bail!("wrk latency unit {other:?}"),
    })
}

/// `mlpipe-bench grpc-load` for `secs`.
fn grpc_window(
    bench: &Path,
    addr: &str,
    inputs: usize,
    key: &str,
    secs: u64,
    max_requests: u64,
) -> Result<Window> {
    let out = Command::new(bench)
        .args(["grpc-load", "--addr", addr, "--inputs", &inputs.to_string()])
        .args(["--secs", &secs.to_string(), "--streams", "16"])
        .args(["--max-requests", &max_requests.to_string(), "--key", key])
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        bail!("mlpipe-bench grpc-load failed");
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let v = serde_like::parse(&text)?;
    let requests = v.num("requests")? as u64;
    let failed = v.num("failed")? as u64;
    let mut statuses = BTreeMap::new();
    statuses.insert(200, requests);
    Ok(Window {
        requests,
        p99_ms: v.num("p99_ms")?,
        statuses,
        transport_errors: failed,
        first_error: (failed > 0).then(|| text.trim().to_string()),
    })
}

/// Resident memory of a process, in MB.
fn rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// The least-squares slope of `(minute, MB)` points, in MB per minute.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let (mx, my) = (
        points.iter().map(|p| p.0).sum::<f64>() / n,
        points.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = points.iter().map(|p| (p.0 - mx) * (p.0 - mx)).sum();
    if sxx == 0.0 { 0.0 } else { sxy / sxx }
}

/// Each load's window, by the load's name.
type Loads = Vec<(&'static str, Window)>;

/// One load (or two at once) per window after a warm-up, memory sampled after each.
struct Soak<'a> {
    name: &'a str,
    plan: Plan,
    /// The process whose memory is followed.
    pid: Box<dyn Fn() -> Option<u32> + 'a>,
    /// Runs every load for the given seconds with a request budget; (name, window) each.
    load: Box<dyn Fn(u64, u64) -> Result<Loads> + 'a>,
}

impl Soak<'_> {
    fn run(&self) -> Result<()> {
        let plan = self.plan;
        eprintln!(
            "soak {}: warm-up {} s, then {} s in {} s windows",
            self.name, plan.warmup, plan.secs, plan.window
        );
        let warm = (self.load)(plan.warmup.max(1), plan.max_requests)?;
        let warm_errors: u64 = warm.iter().map(|(_, w)| w.server_errors()).sum();
        let started = Instant::now();
        let pid = (self.pid)().context("the server's process is gone after the warm-up")?;
        let after_warmup = rss_mb(pid).context("the server's memory cannot be read")?;
        // Resident memory every RSS_SAMPLE_SECS while the windows run, besides the point after
        // each window: a garbage-collected server (workerd) swings by tens of MB between
        // collections, which ten points cannot tell from growth; a few hundred can.
        let stop = AtomicBool::new(false);
        let sample = || {
            let mut points = vec![(0.0, after_warmup)];
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_secs(RSS_SAMPLE_SECS));
                if let Some(mb) = rss_mb(pid) {
                    points.push((started.elapsed().as_secs_f64() / 60.0, mb));
                }
            }
            points
        };
        let (memory, rows) = std::thread::scope(|scope| {
            let sampler = scope.spawn(sample);
            let rows = self.windows();
            stop.store(true, Ordering::Relaxed);
            (sampler.join().unwrap_or_default(), rows)
        });
        let rows = rows?;
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
            bail!("no window ran");
        };
        let done = last.0;
        let errors = warm_errors
            + rows
                .iter()
                .flat_map(|r| &r.1)
                .map(|(_, w)| w.server_errors())
                .sum::<u64>();
        let minutes = started.elapsed().as_secs_f64() / 60.0;
        let growth = slope(&memory);
        println!(
            "soak {}: {} s after a {} s warm-up, {} windows of {} s",
            self.name,
            done,
            plan.warmup,
            rows.len(),
            plan.window
        );
        println!(
            "{:<8} {:>12} {:>10} {:>14} {:>14} {:>12} {:>10}",
            "load", "requests", "per s", "p99 first (ms)", "p99 last (ms)", "5xx+errors", "refused"
        );
        let mut problems = Vec::new();
        for (i, (name, _)) in first.1.iter().enumerate() {
            let total: u64 = rows.iter().map(|r| r.1[i].1.requests).sum();
            let errs: u64 = rows.iter().map(|r| r.1[i].1.server_errors()).sum();
            let refused: u64 = rows.iter().map(|r| r.1[i].1.other_refusals()).sum();
            let (p_first, p_last) = (first.1[i].1.p99_ms, last.1[i].1.p99_ms);
            println!(
                "{:<8} {:>12} {:>10.0} {:>14.2} {:>14.2} {:>12} {:>10}",
                name,
                total,
                total as f64 / (done as f64).max(1.0),
                p_first,
                p_last,
                errs,
                refused
            );
            if p_last > p_first * P99_GROWTH {
                problems.push(format!(
                    "{name} p99 grew from {p_first:.2} ms to {p_last:.2} ms (limit {P99_GROWTH}x)"
                ));
            }
        }
        println!(
            "memory: {:.1} MB after the warm-up, {:.1} MB at the end; growth {:+.2} MB/min over {:.1} min (least squares over {} samples, one every {RSS_SAMPLE_SECS} s; limit {RSS_MB_PER_MIN})",
            after_warmup,
            last.2,
            growth,
            minutes,
            memory.len()
        );
        if errors > 0 {
            problems.push(format!("{errors} 5xx answers or transport errors"));
        }
        if growth > RSS_MB_PER_MIN && rows.len() >= 3 {
            problems.push(format!("memory grew {growth:.2} MB/min"));
        }
        if !problems.is_empty() {
            bail!("{}", problems.join("; "));
        }
        Ok(())
    }

    /// The measured windows, one after another, until the time or the request budget is
    /// spent: (seconds done, each load's window, resident MB after the window).
    fn windows(&self) -> Result<Vec<(u64, Loads, f64)>> {
        let plan = self.plan;
        let mut rows = Vec::new();
        let (mut done, mut budget) = (0, plan.max_requests);
        while done < plan.secs && budget > 0 {
            let secs = plan.window.min(plan.secs - done);
            let loads = (self.load)(secs, budget)?;
            done += secs;
            let used: u64 = loads.iter().map(|(_, w)| w.requests).sum();
            budget = budget.saturating_sub(used);
            let mb = (self.pid)()
                .and_then(rss_mb)
                .context("the server stopped during the soak")?;
            for (name, w) in &loads {
                eprintln!(
                    "  {:>5} s {:<5} {:>9} requests  p99 {:>7.2} ms  5xx/transport {}  refused {}  rss {:.1} MB",
                    done,
                    name,
                    w.requests,
                    w.p99_ms,
                    w.server_errors(),
                    w.other_refusals(),
                    mb
                );
                if let Some(e) = &w.first_error {
                    eprintln!("        first error: {e}");
                }
            }
            rows.push((done, loads, mb));
        }
        Ok(rows)
    }
}

fn native(root: &Path, store: &Path, inputs: usize, plan: Plan, log_sample: &str) -> Result<()> {
    let target = target_dir(root);
    let mlpipe = target.join("release/mlpipe");
    let bench = target.join("release/mlpipe-bench");
    let work = target.join("soak");
    // The logs of earlier soaks would only fill the disk.
    let _ = std::fs::remove_dir_all(store.join("inference-logs"));
    let _ = std::fs::remove_dir_all(store.join("keys"));
    let key = bench_key(&mlpipe, store, "soak", &[])?;
    let script = script(&work.join("soak.lua"), inputs, &key)?;
    let grpc_addr = format!("127.0.0.1:{}", free_port()?);
    let mut cmd = Command::new(&mlpipe);
    cmd.args(["serve", "--store"])
        .arg(store)
        .args(["--addr", "127.0.0.1:0", "--metrics-addr", "none"])
        .args(["--grpc-addr", &grpc_addr, "--log-sample", log_sample])
        .args(["--rate", "1000000000", "--burst", "1000000000"])
        .current_dir(root);
    let (server, url) = start_server(cmd)?;
    let pid = server.0.id();
    let infer = format!("{url}/v2/models/fraud/infer");
    let soak = Soak {
        name: "native (mlpipe serve, keys on, HTTP and gRPC at once)",
        plan,
        pid: Box::new(move || Some(pid)),
        load: Box::new(|secs, budget| {
            std::thread::scope(|s| {
                let grpc =
                    s.spawn(|| grpc_window(&bench, &grpc_addr, inputs, &key, secs, budget / 2));
                let http = wrk_window(&script, &infer, secs);
                let grpc = grpc
                    .join()
                    .map_err(|_| anyhow::anyhow!("the gRPC load panicked"))?;
                Ok(vec![("http", http?), ("grpc", grpc?)])
            })
        }),
    };
    let result = soak.run();
    // A clean stop writes the last prediction logs; then count what was logged.
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let stopped = Instant::now();
    let mut server = server;
    while stopped.elapsed() < Duration::from_secs(40) {
        if server.0.try_wait()?.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (objects, bytes) = tree_size(&store.join("inference-logs"));
    println!(
        "prediction logs (--log-sample {log_sample}): {objects} objects, {:.1} MB",
        bytes as f64 / 1e6
    );
    let _ = std::fs::remove_dir_all(store.join("keys"));
    result
}

/// Files under a folder and their total size.
fn tree_size(dir: &Path) -> (u64, u64) {
    let mut stack = vec![dir.to_path_buf()];
    let (mut files, mut bytes) = (0, 0);
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => {
                    files += 1;
                    bytes += m.len();
                }
                Err(_) => {}
            }
        }
    }
    (files, bytes)
}

/// The first process of a group whose name is `name`.
fn group_member(group: u32, name: &str) -> Option<u32> {
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid pgrp ..."
        let Some((comm, rest)) = stat.split_once(") ") else {
            continue;
        };
        let comm = comm.rsplit_once('(').map_or("", |c| c.1);
        let pgrp = rest.split_whitespace().nth(2).and_then(|g| g.parse().ok());
        if comm == name && pgrp == Some(group) {
            return Some(pid);
        }
    }
    None
}

fn worker(root: &Path, store: &Path, inputs: usize, plan: Plan, log_sample: &str) -> Result<()> {
    let build = root.join("edge/edge-worker/build");
    if !build.join("index.js").is_file() {
        edge::build_worker(root, None, false)?;
    }
    let target = target_dir(root);
    let mlpipe = target.join("release/mlpipe");
    let work = target.join("soak/worker");
    let state = work.join("wrangler-state");
    let _ = std::fs::remove_dir_all(&state);
    let _ = std::fs::remove_dir_all(store.join("published"));
    let _ = std::fs::remove_dir_all(store.join("keys"));
    std::fs::create_dir_all(&work)?;
    let config = root.join("edge/edge-worker/wrangler.toml");
    let bin = edge::node_bin(root);
    // The top rate tier (1,000 a second), above what workerd answers on this machine.
    let key = bench_key(&mlpipe, store, "soak-worker", &["--rate", "1000"])?;
    let script = script(&work.join("soak.lua"), inputs, &key)?;
    run(Command::new(&mlpipe)
        .args(["publish", "--store"])
        .arg(store)
        .arg("--wrangler-state")
        .arg(&state)
        .arg("--wrangler-config")
        .arg(&config)
        .arg("--wrangler")
        .arg(bin.join("wrangler"))
        .env("PATH", edge::tool_path(root)?)
        .current_dir(root))?;
    let _ = std::fs::remove_dir_all(store.join("keys"));
    let (dev, url) = wrangler_dev(root, &config, &state, &[("LOG_SAMPLE", log_sample)])?;
    let group = dev.0;
    let infer = format!("{url}/v2/models/fraud/infer");
    Soak {
        name: "Worker (wrangler dev: workerd, local R2 and KV; key at the top rate tier)",
        plan,
        pid: Box::new(move || group_member(group, "workerd")),
        load: Box::new(|secs, _| Ok(vec![("http", wrk_window(&script, &infer, secs)?)])),
    }
    .run()
}

fn upload_soak(root: &Path, uploads: usize) -> Result<()> {
    install_python_tools(root)?;
    let port = free_port()?;
    let mut moto = Command::new(moto_server(root));
    moto.args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    std::os::unix::process::CommandExt::process_group(&mut moto, 0);
    let moto = moto.spawn().context("starting moto_server")?;
    let _moto = KilledGroup(moto.id());
    let endpoint = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(30) {
            bail!("moto_server did not listen on {endpoint} within 30 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = Command::new(target_dir(root).join("release/mlpipe-bench"))
        .args(["upload-soak", "--endpoint", &endpoint])
        .args(["--uploads", &uploads.to_string()])
        .current_dir(root)
        .stderr(Stdio::inherit())
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("mlpipe-bench upload-soak failed {text}");
    }
    let v = serde_like::parse(&text)?;
    println!(
        "soak uploads: {} files to moto's S3, each notification delivered twice to 4 worker loops: {} messages received, {} deliveries ({} retried), {} versions committed of {} distinct files, {} dataset versions, {} dead-letter records and {} dead-letter messages; uploads {:.1} s, consumed in {:.1} s",
        v.num("uploads")?,
        v.num("messages_received")?,
        v.num("deliveries")?,
        v.num("retried_deliveries")?,
        v.num("versions_committed")?,
        v.num("distinct_files_committed")?,
        v.num("dataset_versions")?,
        v.num("dead_letter_records")?,
        v.num("dead_letter_queue")?,
        v.num("upload_s")?,
        v.num("consume_s")?,
    );
    println!("  {}", text.trim());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flat_series_has_no_slope_and_a_line_its_own() {
        assert_eq!(slope(&[(0.0, 5.0), (1.0, 5.0), (2.0, 5.0)]), 0.0);
        let s = slope(&[(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]);
        assert!((s - 2.0).abs() < 1e-9, "{s}");
    }

    #[test]
    fn wrk_latencies_in_every_unit() {
        assert_eq!(latency_ms("250.00us").unwrap_or_default(), 0.25);
        assert_eq!(latency_ms("2.5ms").unwrap_or_default(), 2.5);
        assert_eq!(latency_ms("1.2s").unwrap_or_default(), 1200.0);
    }

    #[test]
    fn the_bundle_input_count() {
        let bundle = r#"{"model":"fraud","inputs":[{"name":"a","kind":"x"},{"name":"b","range":[0,1]}],"outputs":[{"name":"p"}]}"#;
        let start = bundle.find("\"inputs\"").unwrap_or(0);
        let rest = &bundle[start..];
        let end = matching_bracket(rest).unwrap_or(0);
        assert_eq!(rest[..end].matches("\"name\"").count(), 2);
        assert_eq!(
            field_number(r#"{"version": 12, "x": 1}"#, "version"),
            Some(12)
        );
    }
}
