//! The drift statistics against scipy itself on seeded random data: the same cases go to
//! `scipy_reference.py` in the test venv (`MLPIPE_PYTHON`, set by `cargo xtask test`), and
//! every statistic and p-value must agree to 1e-9 (relative for p-values below 1e-6).

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::process::Command;

use drift::stats;
use serde_json::{Value, json};

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Roughly normal (sum of uniforms), scaled and shifted.
    fn normal(&mut self, mean: f64, sd: f64) -> f64 {
        let s: f64 = (0..12).map(|_| self.next()).sum::<f64>() - 6.0;
        mean + sd * s
    }

    fn sample(&mut self, n: usize, mean: f64, sd: f64, round: Option<f64>) -> Vec<f64> {
        (0..n)
            .map(|_| {
                let x = self.normal(mean, sd);
                round.map_or(x, |r| (x / r).round() * r)
            })
            .collect()
    }
}

fn close(ours: f64, theirs: f64, p_value: bool, what: &str) {
    let ok = if p_value && theirs.abs() < 1e-6 {
        (ours - theirs).abs() <= 1e-9 * theirs.abs().max(1e-300)
    } else {
        (ours - theirs).abs() <= 1e-9
    };
    assert!(ok, "{what}: ours {ours:e} vs scipy {theirs:e}");
}

#[test]
fn statistics_agree_with_scipy() {
    let python = match std::env::var("MLPIPE_PYTHON") {
        Ok(p) => p,
        Err(_) if std::env::var("CI").is_ok() => {
            panic!("MLPIPE_PYTHON (the test venv's Python, with scipy) is required under CI")
        }
        Err(_) => {
            eprintln!("MLPIPE_PYTHON is not set: run through `cargo xtask test`");
            return;
        }
    };
    let mut g = Lcg(20261127);
    // KS: exact (equal and unequal sizes, ties), the auto limit, large samples (asymp).
    let mut ks: Vec<(Vec<f64>, Vec<f64>)> = Vec::new();
    for (n1, n2, shift, round) in [
        (50, 50, 0.0, None),
        (80, 120, 0.3, None),
        (200, 150, 0.0, Some(0.5)),
        (1000, 700, 0.1, Some(0.1)),
        (3000, 3000, 0.05, None),
        (10_000, 9_000, 0.02, None),
        (20_000, 15_000, 0.01, None),
        (30_000, 30_000, 0.0, Some(0.25)),
        (400, 12_000, 0.2, None),
    ] {
        ks.push((
            g.sample(n1, 0.0, 1.0, round),
            g.sample(n2, shift, 1.0, round),
        ));
    }
    // Chi-square: expected counts from reference shares scaled to the observed total.
    let mut chi: Vec<(Vec<f64>, Vec<f64>)> = Vec::new();
    for k in [2usize, 5, 12, 40] {
        let shares: Vec<f64> = (0..k).map(|_| 0.1 + g.next()).collect();
        let total: f64 = shares.iter().sum();
        let observed: Vec<f64> = (0..k).map(|_| (g.next() * 500.0).floor() + 1.0).collect();
        let n: f64 = observed.iter().sum();
        chi.push((observed, shares.iter().map(|s| s / total * n).collect()));
    }
    let mut wd: Vec<(Vec<f64>, Vec<f64>)> = Vec::new();
    for (n1, n2, round) in [(10, 13, None), (500, 800, Some(0.2)), (20_000, 5_000, None)] {
        wd.push((g.sample(n1, 1.0, 2.0, round), g.sample(n2, 1.5, 2.0, round)));
    }
    let mut js: Vec<(Vec<f64>, Vec<f64>)> = Vec::new();
    for k in [2usize, 7, 30] {
        let p: Vec<f64> = (0..k)
            .map(|i| if i == 1 { 0.0 } else { g.next() * 100.0 })
            .collect();
        let q: Vec<f64> = (0..k).map(|_| g.next() * 100.0).collect();
        js.push((p, q));
    }
    let pairs = |v: &[(Vec<f64>, Vec<f64>)]| -> Value {
        Value::Array(v.iter().map(|(a, b)| json!([a, b])).collect())
    };
    let cases = json!({
        "ks": pairs(&ks),
        "chisquare": pairs(&chi),
        "wasserstein": pairs(&wd),
        "jensenshannon": pairs(&js),
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cases.json");
    std::fs::write(&file, cases.to_string()).unwrap();
    let out = Command::new(&python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/scipy_reference.py"
        ))
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scipy_reference.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let scipy: Value = serde_json::from_slice(&out.stdout).unwrap();

    for (i, (a, b)) in ks.iter().enumerate() {
        let ours = stats::ks_2samp(a, b).unwrap();
        let theirs = &scipy["ks"][i];
        let what = format!("ks_2samp case {i} ({} vs {})", a.len(), b.len());
        close(
            ours.statistic,
            theirs["statistic"].as_f64().unwrap(),
            false,
            &what,
        );
        close(ours.pvalue, theirs["pvalue"].as_f64().unwrap(), true, &what);
        assert_eq!(
            format!("{:?}", ours.method).to_lowercase(),
            theirs["method"].as_str().unwrap(),
            "{what}: method"
        );
    }
    for (i, (o, e)) in chi.iter().enumerate() {
        let ours = stats::chisquare(o, e).unwrap();
        let theirs = &scipy["chisquare"][i];
        let what = format!("chisquare case {i} ({} categories)", o.len());
        close(
            ours.statistic,
            theirs["statistic"].as_f64().unwrap(),
            false,
            &what,
        );
        close(ours.pvalue, theirs["pvalue"].as_f64().unwrap(), true, &what);
    }
    for (i, (u, v)) in wd.iter().enumerate() {
        let ours = stats::wasserstein_distance(u, v).unwrap();
        close(
            ours,
            scipy["wasserstein"][i].as_f64().unwrap(),
            false,
            &format!("wasserstein case {i}"),
        );
    }
    for (i, (p, q)) in js.iter().enumerate() {
        let ours = stats::jensenshannon(p, q).unwrap();
        close(
            ours,
            scipy["jensenshannon"][i].as_f64().unwrap(),
            false,
            &format!("jensenshannon case {i}"),
        );
    }
}
