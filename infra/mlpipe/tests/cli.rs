//! The README's run command, as a user types it.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::process::Command;

fn mlpipe(store: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mlpipe"))
        .args(args)
        .arg("--store")
        .arg(store)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .expect("mlpipe runs")
}

#[test]
fn run_json_reports_versions_rows_and_quarantine_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let out = mlpipe(&store, &["run", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(summary["ok"], true);
    assert_eq!(summary["project"], "fraud");
    let ds = &summary["datasets"][0];
    assert_eq!(ds["dataset"], "transactions");
    assert_eq!(ds["versions"], 1);
    assert!(ds["rows_valid"].as_u64().unwrap() > 10_000, "{ds}");
    assert!(
        ds["rows_quarantined"].as_u64().unwrap() > 0,
        "the sample has bad rows: {ds}"
    );
    assert!(ds["snapshot"].is_string());
    assert_eq!(summary["deliveries"][0]["result"]["outcome"], "committed");

    let again = mlpipe(&store, &["run", "--json"]);
    assert!(again.status.success());
    let summary2: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(
        summary2["deliveries"][0]["result"]["outcome"],
        "already-done"
    );
    assert_eq!(summary2["datasets"][0]["versions"], 1);
    assert_eq!(summary2["datasets"][0]["snapshot"], ds["snapshot"]);

    let versions = mlpipe(&store, &["data", "versions", "transactions"]);
    assert!(versions.status.success());
    let text = String::from_utf8_lossy(&versions.stdout);
    assert!(text.contains("latest snapshot"), "{text}");

    let status = mlpipe(&store, &["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status[0]["last_run"]["outcome"], "already-done");

    let quarantine = mlpipe(&store, &["quarantine", "list", "transactions"]);
    assert!(String::from_utf8_lossy(&quarantine.stdout).contains("broken rules"));
}

#[test]
fn user_mistakes_are_one_line_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    for args in [
        &["data", "show", "transactions"][..],
        &["data", "show", "transactions@0000000000000000"][..],
        &["run", "--project", "/nonexistent"][..],
        &["upload", "/nonexistent.csv", "--dataset", "transactions"][..],
    ] {
        let out = mlpipe(&store, args);
        assert!(!out.status.success(), "{args:?} must fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
            "{args:?}: {err}"
        );
    }
}
