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

    // The run continued through the feature stage.
    let view = &summary["feature_views"][0];
    assert_eq!(view["view"], "card_activity", "{summary}");
    assert!(view["version"].is_string());
    assert_eq!(view["rows"], ds["rows_valid"]);
    assert!(view["features"].as_array().unwrap().len() > 10, "{view}");
    assert!(view["entities"].as_u64().unwrap() > 100, "{view}");
    assert_eq!(summary2["feature_views"][0]["version"], view["version"]);

    let list = mlpipe(&store, &["features", "list"]);
    assert!(String::from_utf8_lossy(&list.stdout).contains("card_activity"));
    let get = mlpipe(
        &store,
        &[
            "features",
            "get",
            "card_activity",
            "--entity",
            "card_id=card_000001",
            "--field",
            "amount=25.5",
            "--field",
            "channel=pos",
            "--at",
            "2026-03-02T00:00:00Z",
            "--json",
        ],
    );
    assert!(
        get.status.success(),
        "{}",
        String::from_utf8_lossy(&get.stderr)
    );
    let served: serde_json::Value = serde_json::from_slice(&get.stdout).unwrap();
    assert_eq!(served["columns"], view["features"]);
    assert_eq!(served["unknown_entity"], false, "{served}");
    let out = dir.path().join("train.parquet");
    let export = mlpipe(
        &store,
        &[
            "features",
            "training-set",
            "card_activity",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    assert!(std::fs::metadata(&out).unwrap().len() > 1000);
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
        &["features", "show", "nope"][..],
        &["features", "get", "nope", "--entity", "card_id=x"][..],
        &["features", "get", "card_activity", "--entity", "card_id"][..],
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
