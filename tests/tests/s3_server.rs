//! The same ingest, and the storage layer's atomic operations, against a real S3 protocol
//! server (moto) through the S3 backend.

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
