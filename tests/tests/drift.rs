//! The drift stage on the sample pipeline: prediction logs of the served champion in hourly
//! windows, first as the training data looked, then shifted; reports and their pages per
//! window, a retrain request once drift held for two windows, written once, and delivered
//! to training by the local stack.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::collections::BTreeSet;

use contracts::LoadedProject;
use ingest::polars::prelude::*;
use mlpipe::pipeline;
use mlpipe::sample::{SampleOptions, generate};
use mlpipe::stack::LocalStack;
use serde_json::{Map, Value, json};
use storage::Store;

const HOUR: i64 = 3_600_000_000;

fn project() -> LoadedProject {
    let mut p = LoadedProject::load(&tests::repo_root().join("examples/fraud")).unwrap();
    for (_, text) in &mut p.training_files {
        assert!(
            text.contains("window = \"1d\""),
            "the sample's [drift] table changed"
        );
        *text = text
            .replace("window = \"1d\"", "window = \"1h\"")
            .replace("min_rows = 100", "min_rows = 50")
            .replace("consecutive = 3", "consecutive = 2");
    }
    p
}

/// Test-split model inputs of the champion's feature version, by input name.
async fn test_rows(store: &Store) -> (Vec<String>, Vec<Vec<Option<f64>>>) {
    let bundle = registry::bundle(store, "fraud", 1).await.unwrap().unwrap();
    let names: Vec<String> = bundle.inputs.iter().map(|i| i.name.clone()).collect();
    let key = format!(
        "features/{}/v={}/table.parquet",
        bundle.feature_view, bundle.feature_view_version
    );
    let bytes = store.get(&key).await.unwrap().bytes;
    let df = ParquetReader::new(std::io::Cursor::new(bytes.to_vec()))
        .finish()
        .unwrap();
    let test = df.column("__split").unwrap().str().unwrap().equal("test");
    let df = df.filter(&test).unwrap();
    let cols: Vec<Vec<Option<f64>>> = names
        .iter()
        .map(|n| {
            let c = df.column(n).unwrap().cast(&DataType::Float64).unwrap();
            c.f64().unwrap().iter().collect()
        })
        .collect();
    let rows = (0..df.height())
        .map(|i| cols.iter().map(|c| c[i]).collect())
        .collect();
    (names, rows)
}

/// Writes `rows` as prediction logs (20 records per request) at `at_us`.
async fn write_logs(
    store: &Store,
    names: &[String],
    rows: &[Vec<Option<f64>>],
    at_us: i64,
    tag: &str,
) {
    for (r, chunk) in rows.chunks(20).enumerate() {
        let id = format!("{tag}-{r}");
        let mut text = String::new();
        for (i, row) in chunk.iter().enumerate() {
            let features: Map<String, Value> = names
                .iter()
                .zip(row)
                .map(|(n, v)| (n.clone(), v.map_or(Value::Null, |x| json!(x))))
                .collect();
            let line = json!({"request_id": id, "index": i, "model": "fraud", "version": 1,
                "at_us": at_us + r as i64, "features": features, "label": "false", "score": 0.1});
            text.push_str(&line.to_string());
            text.push('\n');
        }
        store
            .put(
                &inference::service::log_key("fraud", at_us, &id),
                text.into_bytes(),
            )
            .await
            .unwrap();
    }
}

/// The same records as a shifted population: every numeric input moved by three of its
/// spreads, every card paying at an ATM.
fn shifted(names: &[String], rows: &[Vec<Option<f64>>]) -> Vec<Vec<Option<f64>>> {
    let numeric: BTreeSet<usize> = names
        .iter()
        .enumerate()
        .filter(|(_, n)| !n.contains("__") && *n != "country")
        .map(|(i, _)| i)
        .collect();
    rows.iter()
        .map(|row| {
            row.iter()
                .enumerate()
                .map(|(j, v)| {
                    let n = &names[j];
                    if n.starts_with("channel__") {
                        Some(if n == "channel__atm" { 1.0 } else { 0.0 })
                    } else if numeric.contains(&j) {
                        v.map(|x| x * 3.0 + 5.0)
                    } else {
                        *v
                    }
                })
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shifted_logs_drift_for_two_windows_and_request_one_retrain() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::local(&dir.path().join("store")).unwrap();
    let stack = LocalStack::new(&store);
    pipeline::push_project(stack.store(), &project())
        .await
        .unwrap();
    let path = dir.path().join("tx.csv");
    generate(
        &SampleOptions {
            rows: 20_000,
            bad_rows: 0,
            ..Default::default()
        },
        &mut std::fs::File::create(&path).unwrap(),
    )
    .unwrap();
    pipeline::upload(&stack, "transactions", &path)
        .await
        .unwrap();
    let deliveries = stack.run_until_quiet(|_| {}).await;
    assert!(deliveries.iter().all(|d| d.ok), "{deliveries:#?}");

    let (names, rows) = test_rows(&store).await;
    assert!(rows.len() >= 500, "{} test rows", rows.len());
    let h0 = (chrono::Utc::now().timestamp_micros() / HOUR - 10) * HOUR;
    write_logs(&store, &names, &rows, h0 + 60_000_000, "same").await;
    let moved = shifted(&names, &rows);
    write_logs(&store, &names, &moved, h0 + HOUR + 60_000_000, "shift1").await;
    write_logs(&store, &names, &moved, h0 + 2 * HOUR + 60_000_000, "shift2").await;

    // Hour 0, as trained: no drift.
    let run = drift::check_model(&store, &store, "fraud", h0 + HOUR)
        .await
        .unwrap();
    let last = run.checked.last().unwrap();
    assert_eq!(last.run, drift::run_name(h0));
    assert!(last.judged && !last.dataset_drift, "{run:#?}");
    assert_eq!(last.rows, rows.len());
    // Hour 1, shifted: drift, but one window is not a streak of two.
    let run = drift::check_model(&store, &store, "fraud", h0 + 2 * HOUR)
        .await
        .unwrap();
    assert_eq!(
        run.checked.len(),
        1,
        "hour 0 is not checked twice: {run:#?}"
    );
    assert!(run.checked[0].dataset_drift, "{run:#?}");
    assert_eq!(run.retrain_request, None);
    // Hour 2, shifted again: the streak completes, one retrain request.
    let run = drift::check_model(&store, &store, "fraud", h0 + 3 * HOUR)
        .await
        .unwrap();
    assert!(run.checked[0].dataset_drift, "{run:#?}");
    let request = run.retrain_request.clone().expect("a retrain request");
    let body: Value = serde_json::from_slice(&store.get(&request).await.unwrap().bytes).unwrap();
    assert_eq!(body["model"], "fraud");
    // The same schedule tick again: nothing recomputed, no second request.
    let again = drift::check_model(&store, &store, "fraud", h0 + 3 * HOUR)
        .await
        .unwrap();
    assert!(
        again.checked.is_empty() && again.retrain_request.is_none(),
        "{again:#?}"
    );

    // The report says which features moved, and its page renders them.
    let key = drift::report_key("fraud", &drift::run_name(h0 + HOUR));
    let report: drift::Report =
        serde_json::from_slice(&store.get(&key).await.unwrap().bytes).unwrap();
    let by_name = |n: &str| report.features.iter().find(|f| f.feature == n).unwrap();
    assert!(by_name("amount").drifted, "{:#?}", by_name("amount"));
    assert!(by_name("channel").drifted, "{:#?}", by_name("channel"));
    let page = store
        .get(&drift::html_key("fraud", &drift::run_name(h0 + HOUR)))
        .await
        .unwrap()
        .bytes;
    let page = String::from_utf8(page.to_vec()).unwrap();
    assert!(
        page.contains("<svg") && page.contains("Dataset drift"),
        "{page}"
    );
    // Self-contained: nothing fetched when opened offline.
    assert!(!page.contains("<script") && !page.contains("src=") && !page.contains("href=\"http"));

    // The request is an event like any other: the stack delivers it to training.
    let info = store.head(&request).await.unwrap().unwrap();
    stack.enqueue(info);
    let deliveries = stack.run_until_quiet(|_| {}).await;
    let trained = deliveries
        .iter()
        .find(|d| d.stage == events::Stage::Train)
        .expect("the retrain request reached training");
    assert!(trained.ok, "{trained:#?}");
}
