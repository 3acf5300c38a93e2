//! Golden tests of every `--json` output: the shape (every key, and the type of every
//! value) of what each command prints on the shipped sample, held to files in
//! `mlpipe/tests/golden/`. Scripts that read `--json` break when a field is renamed, dropped or
//! changes type; this fails first. Values that identify things (outcomes, names, stages) are
//! kept; measured or generated ones (times, hashes, counts) are reduced to their type. The
//! files are in `mlpipe/tests/golden/`.
//!
//! After a deliberate change: `MLPIPE_UPDATE_GOLDEN=1 cargo test -p mlpipe --test golden`,
//! and review the diff.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::path::Path;
use std::process::Command;

use serde_json::{Map, Value};

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden");

/// Keys whose values are names or outcomes, kept as they are.
const KEPT: &[&str] = &[
    "outcome", "stage", "dataset", "model", "view", "project", "status", "kind", "ok", "task",
    "family", "metric", "alias", "target", "test", "type", "datatype",
];

fn mlpipe(store: &Path, args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_mlpipe"))
        .args(args)
        .arg("--store")
        .arg(store)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("mlpipe runs");
    assert!(
        out.status.success(),
        "mlpipe {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("mlpipe {args:?} printed no JSON ({e})"))
}

/// The shape of `v`: objects keep their keys, arrays their first element's shape (and
/// whether they were empty), scalars become their type name unless kept.
fn shape(v: &Value, key: Option<&str>) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), shape(v, Some(k))))
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(a) => match a.first() {
            Some(first) => Value::Array(vec![shape(first, key)]),
            None => Value::Array(vec![]),
        },
        Value::String(s) if key.is_some_and(|k| KEPT.contains(&k)) => Value::String(s.clone()),
        Value::Bool(b) if key.is_some_and(|k| KEPT.contains(&k)) => Value::Bool(*b),
        Value::String(_) => Value::String("<string>".into()),
        Value::Number(_) => Value::String("<number>".into()),
        Value::Bool(_) => Value::String("<bool>".into()),
        Value::Null => Value::Null,
    }
}

fn check(name: &str, v: &Value) -> Option<String> {
    let got = serde_json::to_string_pretty(&shape(v, None)).unwrap() + "\n";
    let path = Path::new(GOLDEN).join(format!("{name}.json"));
    if std::env::var_os("MLPIPE_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(GOLDEN).unwrap();
        std::fs::write(&path, &got).unwrap();
        return None;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    (want != got).then(|| format!("--- {}\n+++ now\n{got}", path.display()))
}

#[test]
fn every_json_output_keeps_its_shape() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let mut outputs: Vec<(&str, Value)> = vec![
        ("run", mlpipe(&store, &["run", "--json"])),
        ("run-again", mlpipe(&store, &["run", "--json"])),
    ];
    let runs = mlpipe(&store, &["runs", "list", "--json"]);
    let run_id = runs[0]["run_id"].as_str().unwrap().to_string();
    let versions = mlpipe(&store, &["data", "versions", "transactions", "--json"]);
    let version = versions["versions"][0]["version"]
        .as_str()
        .or_else(|| versions[0]["version"].as_str())
        .unwrap_or_default()
        .to_string();
    outputs.extend([
        ("runs-list", runs),
        (
            "runs-show",
            mlpipe(&store, &["runs", "show", &run_id, "--json"]),
        ),
        (
            "runs-compare",
            mlpipe(&store, &["runs", "compare", &run_id, &run_id, "--json"]),
        ),
        ("data-versions", versions),
        ("status", mlpipe(&store, &["status", "--json"])),
        ("routes", mlpipe(&store, &["routes", "--json"])),
        ("models-list", mlpipe(&store, &["models", "list", "--json"])),
        (
            "models-show",
            mlpipe(&store, &["models", "show", "fraud", "--json"]),
        ),
        (
            "features-list",
            mlpipe(&store, &["features", "list", "--json"]),
        ),
        (
            "features-show",
            mlpipe(&store, &["features", "show", "card_activity", "--json"]),
        ),
        (
            "quarantine-list",
            mlpipe(&store, &["quarantine", "list", "transactions", "--json"]),
        ),
        ("drift-check", mlpipe(&store, &["drift", "check", "--json"])),
    ]);
    if !version.is_empty() {
        let spec = format!("transactions@{version}");
        outputs.push((
            "data-show",
            mlpipe(&store, &["data", "show", &spec, "--json"]),
        ));
    }
    let html = dir.path().join("report.html");
    let html = html.to_str().unwrap();
    outputs.extend([
        (
            "features-get",
            mlpipe(
                &store,
                &[
                    "features",
                    "get",
                    "card_activity",
                    "--entity",
                    "card_id=card_000042",
                    "--field",
                    "amount=120.5",
                    "--at",
                    "2026-01-01T00:00:00Z",
                    "--json",
                ],
            ),
        ),
        (
            "drift-report",
            mlpipe(&store, &["drift", "report", "--out", html, "--json"]),
        ),
        (
            "quarantine-replay",
            mlpipe(&store, &["quarantine", "replay", "transactions", "--json"]),
        ),
        ("train", mlpipe(&store, &["train", "--json"])),
        (
            "upload",
            mlpipe(
                &store,
                &[
                    "upload",
                    "examples/fraud/data/transactions.csv",
                    "--dataset",
                    "transactions",
                    "--json",
                ],
            ),
        ),
    ]);
    let diffs: Vec<String> = outputs
        .iter()
        .filter_map(|(name, v)| check(name, v))
        .collect();
    assert!(
        diffs.is_empty(),
        "--json output changed shape (MLPIPE_UPDATE_GOLDEN=1 to accept):\n{}",
        diffs.join("\n")
    );
}
