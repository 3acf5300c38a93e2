//! The README's run command, as a user types it.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::process::Command;

fn mlpipe(store: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mlpipe"))
        .args(args)
        .arg("--store")
        .arg(store)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("mlpipe runs")
}

#[test]
fn run_reports_each_stage_versions_rows_and_quarantine_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    // The human form (in a store of its own): one readable line per stage event, never a
    // raw JSON object.
    let human = mlpipe(&dir.path().join("store-human"), &["run"]);
    assert!(
        human.status.success(),
        "{}",
        String::from_utf8_lossy(&human.stderr)
    );
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        !text.lines().any(|l| l.contains('{') || l.contains('}')),
        "raw JSON in the human output:\n{text}"
    );
    for wanted in [
        "  ingest raw/transactions/",
        "  features snapshots/transactions/",
        "view card_activity version ",
        "  train ",
        "model fraud version 1 (",
        "drift check of fraud v1",
        "pipeline quiet in ",
    ] {
        assert!(text.contains(wanted), "no '{wanted}' in:\n{text}");
    }
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

    // ... and through training: a registered version, promoted as the first champion.
    let t = &summary["training"][0];
    assert_eq!(t["outcome"], "trained", "{summary}");
    assert_eq!(t["model"], "fraud");
    assert_eq!(t["version"], 1);
    assert_eq!(t["promoted"], true, "{t}");
    assert_eq!(t["metric"], "pr_auc");
    let pr_auc = t["test_metrics"]["pr_auc"].as_f64().unwrap();
    // The sample's fraud is behavioural and learnable; a broken pipeline scores near the
    // base rate (under 0.01).
    assert!(pr_auc > 0.3, "test PR-AUC {pr_auc}");
    // Nothing new upstream, so nothing to train the second time.
    assert_eq!(summary2["training"], serde_json::json!([]), "{summary2}");

    // The run ends with a drift check of the champion's held-out test split against its
    // training reference, reported like any window (and the same on the second run).
    let d = &summary["drift"][0];
    assert_eq!(d["model"], "fraud", "{summary}");
    assert_eq!(d["version"], 1);
    assert!(d["rows"].as_u64().unwrap() > 100, "{d}");
    assert!(d["features_tested"].as_u64().unwrap() >= 5, "{d}");
    let report_key = d["report"].as_str().unwrap();
    assert!(report_key.starts_with("drift/fraud/holdout-"), "{d}");
    assert!(store.join(report_key).is_file());
    assert!(
        store
            .join(report_key.replace("report.json", "report.html"))
            .is_file()
    );
    assert_eq!(summary2["drift"][0]["dataset_drift"], d["dataset_drift"]);
    assert_eq!(
        summary2["drift"][0]["features_drifted"],
        d["features_drifted"]
    );

    let models = mlpipe(&store, &["models", "list", "--json"]);
    let models: serde_json::Value = serde_json::from_slice(&models.stdout).unwrap();
    assert_eq!(models[0]["champion"], 1, "{models}");
    let show = mlpipe(&store, &["models", "show", "fraud"]);
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(text.contains("champion #1: v1"), "{text}");
    let runs = mlpipe(&store, &["runs", "list", "--json"]);
    let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).unwrap();
    assert_eq!(runs[0]["status"], "finished", "{runs}");
    let run_id = runs[0]["run_id"].as_str().unwrap();
    let detail = mlpipe(&store, &["runs", "show", run_id, "--json"]);
    let detail: serde_json::Value = serde_json::from_slice(&detail.stdout).unwrap();
    assert_eq!(detail["trials"].as_array().unwrap().len(), 12, "{detail}");
    let rollback = mlpipe(&store, &["models", "rollback", "fraud"]);
    assert!(!rollback.status.success(), "nothing to roll back to yet");
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
        &["models", "show", "nope"][..],
        &["models", "promote", "nope", "3"][..],
        &["runs", "show", "nope"][..],
        &["train", "--project", "/nonexistent"][..],
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

/// A stage that keeps failing leaves a dead-letter record; once the cause is fixed,
/// `mlpipe redrive` re-delivers it to that stage, archives the record with the outcome, and
/// a second redrive finds nothing left.
#[test]
fn a_dead_lettered_event_is_redriven_once_its_cause_is_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let edge = dir.path().join("edge");
    // The edge target is broken for the champion: a file where its folder must go.
    std::fs::create_dir_all(&edge).unwrap();
    std::fs::write(edge.join("models"), "not a folder").unwrap();
    let with_edge = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_mlpipe"))
            .args(args)
            .arg("--store")
            .arg(&store)
            .env("MLPIPE_EDGE_OBJECTS", &edge)
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .output()
            .unwrap()
    };
    let out = with_edge(&["run", "--json"]);
    assert!(!out.status.success(), "the publish stage cannot succeed");
    let letters = |dir: &str| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(store.join(dir))
            .map(|d| {
                d.map(|e| e.unwrap().path())
                    .filter(|p| p.is_file())
                    .collect()
            })
            .unwrap_or_default()
    };
    let dead = letters("dead-letters/publish");
    assert_eq!(dead.len(), 1, "{}", String::from_utf8_lossy(&out.stdout));
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&dead[0]).unwrap()).unwrap();
    assert_eq!(record["trigger_key"], "models/fraud/aliases/champion.json");
    assert!(record["attempts"].as_u64().unwrap() >= 2, "{record}");

    // Fixed: the champion is published by the redrive, and the record archived.
    std::fs::remove_file(edge.join("models")).unwrap();
    let out = with_edge(&["redrive", "--stage", "publish", "--json"]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let said: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let redriven = said["redriven"].as_array().unwrap();
    assert_eq!(redriven.len(), 1, "{said}");
    assert_eq!(redriven[0]["delivery"]["ok"], true, "{said}");
    assert_eq!(
        redriven[0]["delivery"]["result"]["publication"]["kind"],
        "champion"
    );
    assert!(edge.join("models/fraud/aliases/champion.json").is_file());
    assert!(letters("dead-letters/publish").is_empty());
    let archived = letters("dead-letters/_redriven/publish");
    assert_eq!(archived.len(), 1);
    let archived: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&archived[0]).unwrap()).unwrap();
    assert_eq!(archived["dead_letter"], record);
    assert_eq!(archived["delivery"]["ok"], true);

    let out = with_edge(&["redrive"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "no dead letters"
    );
    // An unknown stage is a clear error.
    let out = with_edge(&["redrive", "--stage", "nope"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no stage 'nope'"));
}
