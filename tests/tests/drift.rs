//! The drift stage on the sample pipeline: prediction logs of the served champion in hourly
//! windows, first as the training data looked, then shifted; reports and their pages per
//! window, a retrain request once drift held for two windows, written once, and delivered
//! to training by the local stack; and the closed loop, from shifted traffic served at the edge
//! to a new champion served there.

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
                &records::keys::prediction_log("fraud", at_us, &id),
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
    // Prediction drift: the logged scores (all 0.1 here) against the test-split scores
    // training stored beside the version.
    let prediction = report
        .prediction
        .as_ref()
        .expect("prediction drift is reported");
    assert_eq!(prediction.feature, "__prediction__");
    assert!(!prediction.ignored && prediction.drifted, "{prediction:#?}");
    assert!(
        report
            .features
            .iter()
            .all(|f| f.feature != "__prediction__"),
        "the prediction is not one of the features"
    );
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

/// Model inputs of one split of a feature version, by the bundle's input names.
async fn split_rows(
    store: &Store,
    names: &[String],
    view_version: &str,
    split: &str,
) -> Vec<Vec<Option<f64>>> {
    let key = format!("features/card_activity/v={view_version}/table.parquet");
    let bytes = store.get(&key).await.unwrap().bytes;
    let df = ParquetReader::new(std::io::Cursor::new(bytes.to_vec()))
        .finish()
        .unwrap();
    let mask = df.column("__split").unwrap().str().unwrap().equal(split);
    let df = df.filter(&mask).unwrap();
    let cols: Vec<Vec<Option<f64>>> = names
        .iter()
        .map(|n| {
            let c = df.column(n).unwrap().cast(&DataType::Float64).unwrap();
            c.f64().unwrap().iter().collect()
        })
        .collect();
    (0..df.height())
        .map(|i| cols.iter().map(|c| c[i]).collect())
        .collect()
}

/// A later month of card traffic that changed: every amount eight times larger, every
/// payment at an ATM.
fn shifted_upload(path: &std::path::Path) {
    let mut raw = Vec::new();
    generate(
        &SampleOptions {
            rows: 8_000,
            seed: 7,
            bad_rows: 0,
            start: chrono::DateTime::parse_from_rfc3339("2026-03-05T00:00:00Z")
                .unwrap()
                .with_timezone(&chrono::Utc),
            days: 14,
        },
        &mut raw,
    )
    .unwrap();
    let text = String::from_utf8(raw).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let cols: Vec<&str> = header.split(',').collect();
    let amount = cols.iter().position(|c| *c == "amount").unwrap();
    let channel = cols.iter().position(|c| *c == "channel").unwrap();
    let mut out = format!("{header}\n");
    for line in lines {
        let mut f: Vec<String> = line.split(',').map(str::to_string).collect();
        let a: f64 = f[amount].parse().unwrap();
        f[amount] = format!("{:.2}", a * 8.0);
        f[channel] = "atm".into();
        out.push_str(&f.join(","));
        out.push('\n');
    }
    std::fs::write(path, out).unwrap();
}

/// The whole loop in the local stack, every step through the pipeline's own events: a
/// champion served by the native server; shifted data arrives (new features, no automatic
/// retrain); shifted traffic is logged by the server; the scheduled drift check sees it and
/// writes a retrain request; its event trains on the new features; the new version is
/// promoted; the server answers with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shifted_traffic_retrains_and_the_new_champion_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::local(&dir.path().join("store")).unwrap();
    // The edge's own store (R2 in the cloud): the publish stage puts champions there, the
    // server serves from it and logs predictions into it, the drift stage reads them there.
    let edge = Store::local(&dir.path().join("edge")).unwrap();
    let stack = LocalStack::new(&store).with_edge(Some(publish_stage::EdgeTarget::Objects(
        publish_stage::ObjectEdge::new(edge.clone()),
    )));
    let mut p = project();
    for (_, text) in &mut p.training_files {
        *text = text
            .replace(
                "view = \"card_activity\"\n",
                "view = \"card_activity\"\ntrain_on_new_features = false\n",
            )
            .replace(
                "families = [\"gbm\", \"linear\", \"mlp\"]",
                "families = [\"gbm\"]",
            )
            .replace("consecutive = 2", "consecutive = 1\nshare = 0.25")
            // Trees rank the scaled amounts as before, so the old champion stays nearly as
            // good on the new month; this policy prefers the fresher model within 0.05.
            .replace("min_improvement = 0.0", "min_improvement = -0.05");
        assert!(
            text.contains("train_on_new_features = false")
                && text.contains("share = 0.25")
                && text.contains("min_improvement = -0.05")
        );
    }
    pipeline::push_project(stack.store(), &p).await.unwrap();
    let base = dir.path().join("tx.csv");
    generate(
        &SampleOptions {
            rows: 20_000,
            bad_rows: 0,
            ..Default::default()
        },
        &mut std::fs::File::create(&base).unwrap(),
    )
    .unwrap();
    pipeline::upload(&stack, "transactions", &base)
        .await
        .unwrap();
    let deliveries = stack.run_until_quiet(|_| {}).await;
    assert!(deliveries.iter().all(|d| d.ok), "{deliveries:#?}");
    assert!(
        registry::alias(&store, "fraud", "champion")
            .await
            .unwrap()
            .is_none(),
        "train_on_new_features = false, yet a model was trained"
    );

    // The first model, asked for by hand.
    stack
        .store()
        .put(
            "requests/retrain/first.json",
            json!({"model": "fraud", "reason": "first model"})
                .to_string()
                .into_bytes(),
        )
        .await
        .unwrap();
    let deliveries = stack.run_until_quiet(|_| {}).await;
    assert!(deliveries.iter().all(|d| d.ok), "{deliveries:#?}");
    let champion = |store: Store| async move {
        registry::alias(&store, "fraud", "champion")
            .await
            .unwrap()
            .map(|a| a.version)
    };
    assert_eq!(champion(store.clone()).await, Some(1));

    // Published to the edge store and served from there by the native server, which follows
    // the champion alias on every request.
    assert_eq!(champion(edge.clone()).await, Some(1));
    let app = std::sync::Arc::new(inference_server::App {
        store: edge.clone(),
        models: inference_server::store_models(
            edge.clone(),
            vec!["fraud".into()],
            std::time::Duration::ZERO,
        ),
        online: inference_server::Online::None,
        settings: inference::Settings::default(),
        log_sample: 1.0,
        logs: inference_server::logs::LogWriter::start(edge.clone()),
        metrics: None,
        access: inference_server::Access::off(),
        limits: inference_server::ServerLimits::default(),
    });
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let at = inference_server::Addresses {
            api: "127.0.0.1:0".parse().unwrap(),
            grpc: None,
            metrics: None,
        };
        inference_server::serve(app, at, |a| {
            let _ = tx.send(a.api);
        })
        .await
        .unwrap();
    });
    let url = format!("http://{}", rx.await.unwrap());
    let http = reqwest::Client::new();

    // New data: a later month, shifted. Features are rebuilt; training waits.
    let later = dir.path().join("tx-later.csv");
    shifted_upload(&later);
    pipeline::upload(&stack, "transactions", &later)
        .await
        .unwrap();
    let deliveries = stack.run_until_quiet(|_| {}).await;
    assert!(deliveries.iter().all(|d| d.ok), "{deliveries:#?}");
    assert_eq!(champion(store.clone()).await, Some(1));
    let latest = pipeline::latest_view_version(&store, "card_activity")
        .await
        .unwrap()
        .unwrap();

    // Shifted traffic: the new version's test rows (the later month), predicted by the server
    // and logged by it.
    let bundle = registry::bundle(&store, "fraud", 1).await.unwrap().unwrap();
    let names: Vec<String> = bundle.inputs.iter().map(|i| i.name.clone()).collect();
    let rows = split_rows(&store, &names, &latest.version, "test").await;
    assert!(rows.len() >= 200, "{} test rows", rows.len());
    for chunk in rows.chunks(250) {
        let data: Vec<Value> = chunk
            .iter()
            .flat_map(|r| r.iter().map(|v| v.map_or(Value::Null, |x| json!(x))))
            .collect();
        let body = json!({"inputs": [{"name": "input", "shape": [chunk.len(), names.len()],
            "datatype": "FP32", "data": data}]});
        let r = http
            .post(format!("{url}/v2/models/fraud/infer"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["model_version"], "1");
    }
    // Logs are written off the request path: wait until every record is there.
    let mut logged = Vec::new();
    for _ in 0..100 {
        logged.clear();
        for info in edge.list("inference-logs/fraud/").await.unwrap() {
            let text = edge.get(&info.key).await.unwrap().bytes;
            for line in String::from_utf8_lossy(&text).lines() {
                let v: Value = serde_json::from_str(line).unwrap();
                logged.push(v["at_us"].as_i64().unwrap());
            }
        }
        if logged.len() == rows.len() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(logged.len(), rows.len());

    // The scheduled drift check, once the traffic's hour is complete (and the next hour, in
    // case the traffic crossed an hour boundary).
    let hour = logged.iter().min().unwrap().div_euclid(HOUR) * HOUR;
    let mut request = None;
    for at in [hour + HOUR, hour + 2 * HOUR] {
        let runs = drift::check_all(stack.store(), &edge, at).await.unwrap();
        if let Some(r) = runs.iter().find_map(|r| r.retrain_request.clone()) {
            request = Some(r);
            break;
        }
    }
    let request = request.expect("drift held, so a retrain request was written");
    assert!(
        request.starts_with("requests/retrain/drift-fraud-"),
        "{request}"
    );

    // Its event trains on the newest features; the new version becomes champion.
    let deliveries = stack.run_until_quiet(|_| {}).await;
    let trained = deliveries
        .iter()
        .find(|d| d.stage == events::Stage::Train && d.key == request)
        .expect("the retrain request reached training");
    assert!(trained.ok, "{trained:#?}");
    assert_eq!(trained.result[0]["outcome"], "trained", "{trained:#?}");
    assert_eq!(trained.result[0]["version"], 2, "{trained:#?}");
    assert_eq!(
        trained.result[0]["promoted"], true,
        "the retrained model was not promoted: {trained:#?}"
    );
    let v2 = registry::bundle(&store, "fraud", 2).await.unwrap().unwrap();
    assert_eq!(v2.feature_view_version, latest.version);
    assert_eq!(champion(store.clone()).await, Some(2));
    // The alias event published it to the edge.
    assert_eq!(champion(edge.clone()).await, Some(2));

    // Served: the server follows the alias.
    let meta: Value = http
        .get(format!("{url}/v2/models/fraud"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["versions"], json!(["2"]), "{meta}");
    let data: Vec<Value> = rows[0]
        .iter()
        .map(|v| v.map_or(Value::Null, |x| json!(x)))
        .collect();
    let v: Value = http
        .post(format!("{url}/v2/models/fraud/infer"))
        .json(
            &json!({"inputs": [{"name": "input", "shape": [1, names.len()],
            "datatype": "FP32", "data": data}]}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["model_version"], "2", "{v}");
}

/// Delayed labels: predictions logged in one hour are checked before any label exists;
/// labels uploaded later (an object event routed to the drift stage) are joined to them by
/// request id and index; the window's live ROC-AUC is far below the model's test value, so
/// the window counts toward a retrain though its inputs did not drift.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_labels_are_joined_and_a_degraded_live_metric_requests_a_retrain() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::local(&dir.path().join("store")).unwrap();
    let stack = LocalStack::new(&store);
    let mut p = project();
    for (_, text) in &mut p.training_files {
        *text = text.replace("consecutive = 2", "consecutive = 1");
    }
    pipeline::push_project(stack.store(), &p).await.unwrap();
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
    let bundle = registry::bundle(&store, "fraud", 1).await.unwrap().unwrap();
    let (negative, positive) = (bundle.classes[0].clone(), bundle.classes[1].clone());
    let test_auc = bundle.metrics["roc_auc"];

    // Two hours ago: the champion's own test inputs (no input drift), scores spread over
    // [0, 1), each record logged with its request id and index.
    let (names, rows) = test_rows(&store).await;
    let h0 = (chrono::Utc::now().timestamp_micros() / HOUR - 2) * HOUR;
    let n = rows.len();
    let mut truth = String::from("request_id,index,label\n");
    for (r, chunk) in rows.chunks(20).enumerate() {
        let id = format!("req-{r}");
        let mut text = String::new();
        for (i, row) in chunk.iter().enumerate() {
            let score = (r * 20 + i) as f64 / n as f64;
            let features: Map<String, Value> = names
                .iter()
                .zip(row)
                .map(|(n, v)| (n.clone(), v.map_or(Value::Null, |x| json!(x))))
                .collect();
            let predicted = if score >= 0.5 { &positive } else { &negative };
            let line = json!({"request_id": id, "index": i, "model": "fraud", "version": 1,
                "at_us": h0 + 60_000_000 + r as i64, "features": features,
                "label": predicted, "score": score});
            text.push_str(&line.to_string());
            text.push('\n');
            // A challenger (v2) scored the same record in shadow, ranking it the other way
            // round: its lines share the request id and index, and stay out of the
            // champion's window.
            let shadow = json!({"request_id": id, "index": i, "model": "fraud", "version": 2,
                "arm": "shadow", "at_us": h0 + 60_000_000 + r as i64, "features": features,
                "label": predicted, "score": 1.0 - score});
            text.push_str(&shadow.to_string());
            text.push('\n');
            // The truth turns out to be the opposite of what the model ranked.
            let actual = if score < 0.5 { &positive } else { &negative };
            truth.push_str(&format!("{id},{i},{actual}\n"));
        }
        store
            .put(
                &records::keys::prediction_log("fraud", h0 + 60_000_000, &id),
                text.into_bytes(),
            )
            .await
            .unwrap();
    }
    truth.push_str("req-0,not-a-number,true\n");

    // Checked before any label exists: a report, no performance, no request.
    let run = drift::check_model(&store, &store, "fraud", h0 + HOUR)
        .await
        .unwrap();
    assert_eq!(run.checked.len(), 1, "{run:#?}");
    assert!(
        run.checked[0].judged && !run.checked[0].dataset_drift,
        "{run:#?}"
    );
    assert_eq!(
        run.checked[0].rows, n,
        "shadow lines are not the champion's: {run:#?}"
    );
    assert!(
        run.performance.is_empty() && run.retrain_request.is_none(),
        "{run:#?}"
    );

    // The labels arrive later, as an upload: its event runs the drift stage, which joins
    // them to the already-reported window.
    stack
        .store()
        .put("labels/fraud/2026-late.csv", truth.into_bytes())
        .await
        .unwrap();
    let deliveries = stack.run_until_quiet(|_| {}).await;
    let drift_run = deliveries
        .iter()
        .find(|d| d.stage == events::Stage::Drift && d.key == "labels/fraud/2026-late.csv")
        .expect("the labels upload reached the drift stage");
    assert!(drift_run.ok, "{drift_run:#?}");
    let key = drift::performance_key("fraud", &drift::run_name(h0));
    let perf: Value = serde_json::from_slice(&store.get(&key).await.unwrap().bytes).unwrap();
    assert_eq!(perf["labelled"], n, "{perf:#}");
    assert_eq!(perf["predictions"], n, "{perf:#}");
    assert_eq!(perf["metric"], "roc_auc");
    assert_eq!(
        perf["value"], 0.0,
        "inverted truth ranks every positive last: {perf:#}"
    );
    assert_eq!(perf["test_value"], test_auc);
    assert_eq!(perf["degraded"], true, "{perf:#}");
    assert_eq!(perf["metrics"]["accuracy"], 0.0, "{perf:#}");
    // The challenger's live metrics on the same labels, side by side.
    assert_eq!(perf["challenger"]["version"], 2, "{perf:#}");
    assert_eq!(perf["challenger"]["labelled"], n, "{perf:#}");
    assert_eq!(perf["challenger"]["value"], 1.0, "{perf:#}");
    // `mlpipe models show` prints that comparison.
    let live = mlpipe::train_ops::live(&store, "fraud", 5).await.unwrap();
    assert_eq!(live[0]["challenger"]["value"], 1.0);
    assert_eq!(perf["skipped_label_rows"], 1);
    assert_eq!(
        perf["label_problems"][0],
        format!(
            "labels/fraud/2026-late.csv row {}: index: not a non-negative integer",
            n + 2
        )
    );

    // The streak rule sees the degraded window: one request, for performance.
    let run = drift::check_model(&store, &store, "fraud", h0 + HOUR)
        .await
        .unwrap();
    assert!(
        run.checked.is_empty(),
        "the report is not recomputed: {run:#?}"
    );
    assert_eq!(run.performance.len(), 1, "{run:#?}");
    assert!(
        run.performance[0].degraded && !run.performance[0].updated,
        "unchanged labels are not re-evaluated: {run:#?}"
    );
    let request = run.retrain_request.clone().expect("a retrain request");
    let body: Value = serde_json::from_slice(&store.get(&request).await.unwrap().bytes).unwrap();
    assert!(
        body["reason"].as_str().unwrap().starts_with("performance:"),
        "{body}"
    );
}
