//! The same ingest, the batch stage, and the storage layer's atomic operations, against a
//! real S3 protocol server (moto) through the S3 backend.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use contracts::LoadedProject;
use mlpipe::pipeline;
use mlpipe::sample::{SampleOptions, generate};
use mlpipe::stack::LocalStack;
use records::keys as zones;
use storage::{Created, Store, Swapped};
use tests::Moto;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_runs_against_an_s3_server() {
    let moto = Moto::start();
    moto.create_bucket("mlpipe-e2e").await;
    let store = Store::open(&moto.store_url("mlpipe-e2e")).unwrap();

    // Atomic operations through real conditional requests.
    let Created::Created(first) = store.put_if_absent("probe/a", "1").await.unwrap() else {
        panic!("create")
    };
    assert_eq!(
        store.put_if_absent("probe/a", "2").await.unwrap(),
        Created::AlreadyExists
    );
    let current = store.head("probe/a").await.unwrap().unwrap();
    assert!(matches!(
        store
            .compare_and_swap("probe/a", Some(&current), "3")
            .await
            .unwrap(),
        Swapped::Swapped(_)
    ));
    assert_eq!(
        store
            .compare_and_swap("probe/a", Some(&first), "4")
            .await
            .unwrap(),
        Swapped::Conflict
    );
    assert_eq!(store.get("probe/a").await.unwrap().bytes.as_ref(), b"3");

    // The pipeline, with duplicate delivery.
    let mut project = LoadedProject::load(&tests::repo_root().join("examples/fraud")).unwrap();
    // Too few rows to train on: this test is about the store and its events.
    project.project.training.clear();
    project.training_files.clear();
    let stack = LocalStack::new(&store);
    pipeline::push_project(stack.store(), &project)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tx.csv");
    generate(
        &SampleOptions {
            rows: 2000,
            ..Default::default()
        },
        &mut std::fs::File::create(&file).unwrap(),
    )
    .unwrap();
    pipeline::upload(&stack, "transactions", &file)
        .await
        .unwrap();
    let first_run = stack.run_until_quiet(|_| {}).await;
    assert!(first_run.iter().all(|d| d.ok), "{first_run:?}");
    pipeline::upload(&stack, "transactions", &file)
        .await
        .unwrap();
    let second = stack.run_until_quiet(|_| {}).await;
    assert_eq!(second[0].result["outcome"], "already-done", "{second:?}");

    let state = pipeline::dataset_state(&store, "transactions")
        .await
        .unwrap();
    assert_eq!(state.versions.len(), 1);
    assert_eq!(state.rows_quarantined, 12);
    assert!(state.latest_snapshot.is_some());
    let raw = store.list(&zones::raw("transactions", "")).await.unwrap();
    assert_eq!(raw.len(), 1, "the raw zone holds the one upload");
}

/// Deterministic feature values (a small LCG): no two rows alike.
fn vectors_csv(inputs: &[String], rows: usize, bad_row: usize) -> String {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        (state >> 33) as f64 / (1u64 << 31) as f64
    };
    let mut out = format!("id,{}\n", inputs.join(","));
    for r in 1..=rows {
        out.push_str(&format!("tx-{r}"));
        for (i, name) in inputs.iter().enumerate() {
            if r == bad_row && i == 0 {
                out.push_str(",abc");
            } else if name.contains("__") {
                out.push_str(if next() < 0.3 { ",1" } else { ",0" });
            } else {
                out.push_str(&format!(",{:.4}", next() * 400.0));
            }
        }
        out.push('\n');
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_inference_runs_against_an_s3_server_once_per_input() {
    let moto = Moto::start();
    moto.create_bucket("mlpipe-batch").await;
    let store = Store::open(&moto.store_url("mlpipe-batch")).unwrap();
    let fixture = tests::put_edge_fixture(&store).await;
    let model_dir = fixture.join("models/fraud/1");
    let bundle = std::fs::read(model_dir.join("bundle.json")).unwrap();
    let onnx = std::fs::read(model_dir.join("model.onnx")).unwrap();
    let model = inference::Model::load(&bundle, &onnx, None).unwrap();
    let inputs: Vec<String> = model.input_names().map(str::to_string).collect();

    // Feature vectors, one planted bad value; uploaded through the stack's store, so the
    // upload raises the event a bucket would.
    let (rows, bad) = (5000, 17);
    let csv = vectors_csv(&inputs, rows, bad);
    let stack = LocalStack::new(&store);
    let key = "batch-input/fraud/day 1/vectors.csv";
    stack.store().put(key, csv.clone()).await.unwrap();
    let first = stack.run_until_quiet(|_| {}).await;
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].stage, events::Stage::BatchPredict);
    assert!(first[0].ok, "{first:?}");
    assert_eq!(first[0].result["outcome"], "committed", "{first:?}");

    let folder = "batch-output/fraud/day 1/vectors.csv/";
    let manifest: serde_json::Value = serde_json::from_slice(
        &store
            .get(&format!("{folder}_manifest.json"))
            .await
            .unwrap()
            .bytes,
    )
    .unwrap();
    assert_eq!(manifest["input"], key);
    assert_eq!(manifest["mode"], "feature-vectors");
    assert_eq!(manifest["rows"], rows);
    assert_eq!(manifest["scored"], rows - 1);
    assert_eq!(manifest["errors"], 1);
    let errors = store
        .get(&format!("{folder}errors.jsonl"))
        .await
        .unwrap()
        .bytes;
    let error: serde_json::Value =
        serde_json::from_slice(errors.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(error["file"], key);
    assert_eq!(error["row"], bad);
    assert_eq!(error["column"], inputs[0].as_str());

    // Every scored row is tract's on the same vector.
    let predictions = tests::read_parquet(
        &store
            .get(&format!("{folder}predictions.parquet"))
            .await
            .unwrap()
            .bytes,
    );
    assert_eq!(predictions.height(), rows - 1);
    let mut x = Vec::new();
    for line in csv.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        if fields[1] == "abc" {
            continue;
        }
        x.extend(fields[1..].iter().map(|v| v.parse::<f32>().unwrap()));
    }
    let want = model.predict(x, rows - 1).unwrap();
    let got = predictions
        .column("probability_true")
        .unwrap()
        .cast(&ingest::polars::prelude::DataType::Float64)
        .unwrap()
        .f64()
        .unwrap()
        .into_no_null_iter()
        .collect::<Vec<_>>();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert!((g - f64::from(w.score)).abs() <= 1e-6, "{g} vs {}", w.score);
    }
    let ids = predictions
        .column("id")
        .unwrap()
        .str()
        .unwrap()
        .get(16)
        .map(str::to_string);
    assert_eq!(ids.as_deref(), Some("tx-18"), "the bad row 17 is skipped");

    // The same event again: the manifest is there, nothing is scored or written twice.
    let before = store.list("batch-output/").await.unwrap();
    stack.enqueue(store.head(key).await.unwrap().unwrap());
    let second = stack.run_until_quiet(|_| {}).await;
    assert_eq!(second.len(), 1, "{second:?}");
    assert_eq!(second[0].result["outcome"], "already-done", "{second:?}");
    let after = store.list("batch-output/").await.unwrap();
    let etags = |v: &[storage::ObjectInfo]| -> Vec<(String, Option<String>)> {
        v.iter().map(|i| (i.key.clone(), i.etag.clone())).collect()
    };
    assert_eq!(etags(&before), etags(&after));
    assert_eq!(after.len(), 3, "{after:?}");

    // An input for a model with no champion is refused (not retried), with the reason.
    stack
        .store()
        .put("batch-input/unknown/a.csv", "id\n1\n")
        .await
        .unwrap();
    let refused = stack.run_until_quiet(|_| {}).await;
    assert!(!refused[0].ok && !refused[0].retryable, "{refused:?}");
    assert!(
        refused[0]
            .result
            .as_str()
            .unwrap()
            .contains("no alias 'champion'"),
        "{refused:?}"
    );
}

/// Runs the sample's ingest and feature stage (generated transactions) and the wine
/// example's whole pipeline (ingest, features, training, promotion) into `store`.
async fn run_both_projects(store: &Store, dir: &std::path::Path) {
    let stack = LocalStack::new(store);
    let mut fraud = LoadedProject::load(&tests::repo_root().join("examples/fraud")).unwrap();
    fraud.project.training.clear();
    fraud.training_files.clear();
    pipeline::push_project(stack.store(), &fraud).await.unwrap();
    let wine = LoadedProject::load(&tests::repo_root().join("examples/wine")).unwrap();
    pipeline::push_project(stack.store(), &wine).await.unwrap();
    let file = dir.join("tx.csv");
    generate(
        &SampleOptions {
            rows: 1500,
            ..Default::default()
        },
        &mut std::fs::File::create(&file).unwrap(),
    )
    .unwrap();
    pipeline::upload(&stack, "transactions", &file)
        .await
        .unwrap();
    pipeline::upload(
        &stack,
        "wines",
        &tests::repo_root().join("examples/wine/data/wine.csv"),
    )
    .await
    .unwrap();
    let deliveries = stack.run_until_quiet(|_| {}).await;
    let failed: Vec<_> = deliveries.iter().filter(|d| !d.ok).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    assert!(
        deliveries.iter().any(|d| d.stage == events::Stage::Train),
        "{deliveries:#?}"
    );
}

/// Everything in a store (but run records and dead letters), comparable across runs.
async fn comparable_contents(store: &Store) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    for info in store.list("").await.unwrap() {
        if info.key.starts_with(zones::PIPELINE_RUNS) {
            continue;
        }
        let bytes = store.get(&info.key).await.unwrap().bytes;
        out.insert(info.key.clone(), tests::comparable(&info.key, &bytes));
    }
    out
}

/// The pipeline through a faulty S3 (10% of requests: `503 SlowDown`, `500`, resets, delays,
/// replies lost after the write was applied) ends exactly as through a healthy one: the same
/// objects with the same data, every version committed once, no dead letter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_through_a_faulty_s3_ends_as_through_a_healthy_one() {
    let moto = Moto::start();
    moto.create_bucket("healthy").await;
    moto.create_bucket("faulty").await;
    let proxy = tests::faulty_s3::FaultyS3::start(&moto.endpoint(), 0.10, 22).await;
    let dir = tempfile::tempdir().unwrap();
    let healthy = Store::open(&moto.store_url("healthy")).unwrap();
    run_both_projects(&healthy, dir.path()).await;
    // A short backoff base keeps the test quick; the retries are the production ones.
    let faulty = Store::open(&format!(
        "s3://faulty?endpoint={}&region=us-east-1&access_key_id=testing&secret_access_key=testing&retry_backoff_ms=10",
        proxy.endpoint
    ))
    .unwrap();
    run_both_projects(&faulty, dir.path()).await;
    let counts = &proxy.counts;
    eprintln!("faulty S3: {counts}");
    for (kind, n) in [
        ("SlowDown", &counts.slow_down),
        ("InternalError", &counts.internal_error),
        ("reset", &counts.reset),
        ("delay", &counts.delayed),
        ("lost response", &counts.lost_response),
    ] {
        assert!(
            n.load(std::sync::atomic::Ordering::Relaxed) > 0,
            "no {kind} was injected: {counts}"
        );
    }
    // Read back through the healthy endpoint: the faulty run's bucket as it really is.
    let faulty = Store::open(&moto.store_url("faulty")).unwrap();
    let expected = comparable_contents(&healthy).await;
    let got = comparable_contents(&faulty).await;
    let missing: Vec<_> = expected.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<_> = got.keys().filter(|k| !expected.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, extra {extra:?} ({counts})"
    );
    for (key, value) in &expected {
        assert_eq!(&got[key], value, "{key} differs ({counts})");
    }
}

/// A conditional write whose reply is lost after S3 applied it: the retry (object_store's
/// own, or the caller's) meets the write as a failed precondition and knows it for its own,
/// for create-if-absent and compare-and-swap alike; another writer's content, or an older
/// identical object, stays "already there".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conditional_write_whose_reply_was_lost_is_recognised_as_done() {
    let moto = Moto::start();
    moto.create_bucket("lost").await;
    let proxy = tests::faulty_s3::FaultyS3::start(&moto.endpoint(), 0.0, 1).await;
    let store = Store::open(&format!(
        "s3://lost?endpoint={}&region=us-east-1&access_key_id=testing&secret_access_key=testing&retry_backoff_ms=10",
        proxy.endpoint
    ))
    .unwrap();
    proxy.lose_reply_to_next_put();
    // Reported done, by object_store's retry or, when it does not retry, by ours.
    let first = store.put_if_absent("claims/1", "mine").await;
    let first = match first {
        Ok(c) => c,
        Err(e) => {
            assert!(e.is_retryable(), "{e}");
            store.put_if_absent("claims/1", "mine").await.unwrap()
        }
    };
    assert!(matches!(first, Created::Created(_)), "{first:?}");
    assert_eq!(
        store.put_if_absent("claims/1", "theirs").await.unwrap(),
        Created::AlreadyExists
    );
    let current = store.head("claims/1").await.unwrap().unwrap();
    proxy.lose_reply_to_next_put();
    let swapped = match store
        .compare_and_swap("claims/1", Some(&current), "next")
        .await
    {
        Ok(s) => s,
        Err(e) => {
            assert!(e.is_retryable(), "{e}");
            store
                .compare_and_swap("claims/1", Some(&current), "next")
                .await
                .unwrap()
        }
    };
    assert!(matches!(swapped, Swapped::Swapped(_)), "{swapped:?}");
    assert_eq!(store.get("claims/1").await.unwrap().bytes.as_ref(), b"next");
    assert_eq!(
        proxy
            .counts
            .lost_response
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    // An identical object written well before the call is not "ours".
    store.put("content/a", "same").await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(
        store.put_if_absent("content/a", "same").await.unwrap(),
        Created::AlreadyExists
    );
}
