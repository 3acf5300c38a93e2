//! The ingest stage end to end on the local (file-backed) store, through the local stack and
//! the same events a deployment delivers.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::path::Path;

use contracts::{Contract, LoadedProject};
use events::{ObjectCreated, s3_notification};
use ingest::IngestOutcome;
use ingest::definitions::{Published, publish_contract};
use mlpipe::pipeline;
use mlpipe::sample::{SampleOptions, generate};
use mlpipe::stack::LocalStack;
use records::keys as zones;
use records::pipeline::{Lineage, Manifest, Snapshot};
use storage::Store;

/// The sample project without its training file: these tests are about ingest, on data too
/// small to train on (the training route still sees each manifest, with nothing to train).
fn sample_project() -> LoadedProject {
    let mut p = LoadedProject::load(&tests::repo_root().join("examples/fraud"))
        .expect("sample project loads");
    p.project.training.clear();
    p.training_files.clear();
    p
}

fn write_sample(dir: &Path, name: &str, opts: &SampleOptions) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut file = std::fs::File::create(&path).unwrap();
    generate(opts, &mut file).unwrap();
    path
}

async fn manifests(store: &Store) -> Vec<Manifest> {
    ingest::committed_manifests(store, "transactions")
        .await
        .unwrap()
}

async fn snapshots(store: &Store) -> Vec<Snapshot> {
    let mut out = Vec::new();
    for info in store
        .list(&zones::snapshots_prefix("transactions"))
        .await
        .unwrap()
    {
        out.push(serde_json::from_slice(&store.get(&info.key).await.unwrap().bytes).unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_project_ingests_and_quarantines_every_bad_row() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::local(&dir.path().join("store")).unwrap();
    let stack = LocalStack::new(&store);
    pipeline::push_project(stack.store(), &sample_project())
        .await
        .unwrap();
    let opts = SampleOptions {
        rows: 3000,
        bad_rows: 12,
        ..Default::default()
    };
    let file = write_sample(dir.path(), "tx.csv", &opts);
    let uploaded = pipeline::upload(&stack, "transactions", &file)
        .await
        .unwrap();
    let deliveries = stack.run_until_quiet(|_| {}).await;
    // Ingest, then the feature stage on the snapshot it wrote, then training and publishing
    // on its manifest (no training configuration and no edge target here: training has
    // nothing to do, publishing acknowledges the event as skipped).
    let stages: Vec<_> = deliveries.iter().map(|d| d.stage).collect();
    assert_eq!(
        stages,
        vec![
            events::Stage::Ingest,
            events::Stage::Features,
            events::Stage::Train,
            events::Stage::Publish,
        ],
        "{deliveries:?}"
    );
    assert!(deliveries.iter().all(|d| d.ok), "{deliveries:?}");

    let ms = manifests(&store).await;
    assert_eq!(ms.len(), 1);
    let m = &ms[0];
    let total_lines = std::fs::read_to_string(&file).unwrap().lines().count() as u64 - 1;
    assert_eq!(m.rows.read, total_lines);
    assert_eq!(m.rows.quarantined, 12, "{:?}", m.rule_counts);
    assert_eq!(m.rows.valid + m.rows.quarantined, m.rows.read);
    for rule in [
        "range",
        "allowed_values",
        "type",
        "not_null",
        "pattern",
        "unique_key",
    ] {
        assert!(
            m.rule_counts.contains_key(rule),
            "missing {rule}: {:?}",
            m.rule_counts
        );
    }
    assert_eq!(m.source.key, uploaded.key);
    assert!(m.event_time_range.is_some());

    // Curated Parquet holds exactly the valid rows, typed.
    let part = store.get(&m.parts[0].key).await.unwrap().bytes;
    let df = tests::read_parquet(part.as_ref());
    assert_eq!(df.height() as u64, m.rows.valid);
    assert_eq!(
        df.column("amount").unwrap().dtype(),
        &ingest::polars::prelude::DataType::Float64
    );

    // Every quarantined row has its reasons, with row number, column and rule.
    let reasons = store
        .get(&m.quarantine.as_ref().unwrap().reasons_key)
        .await
        .unwrap()
        .bytes;
    let lines: Vec<serde_json::Value> = reasons
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert!(lines.len() >= 12);
    assert!(lines.iter().all(|l| l["row"].as_u64().unwrap() >= 1
        && l["column"].is_string()
        && l["rule"].is_string()));
    let negative = lines
        .iter()
        .find(|l| l["value"] == "-12.50")
        .expect("negative amount reported");
    assert_eq!(negative["column"], "amount");
    assert_eq!(negative["rule"], "range");

    // The raw object is untouched, and one snapshot names the version.
    assert_eq!(
        store.get(&uploaded.key).await.unwrap().bytes.as_ref(),
        std::fs::read(&file).unwrap().as_slice()
    );
    let snaps = snapshots(&store).await;
    assert_eq!(snaps.len(), 1);
    assert_eq!(snaps[0].versions, vec![m.version.clone()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicate_and_concurrent_deliveries_commit_one_version() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::local(&dir.path().join("store")).unwrap();
    pipeline::push_project(&store, &sample_project())
        .await
        .unwrap();
    let opts = SampleOptions {
        rows: 2000,
        ..Default::default()
    };
    let file = write_sample(dir.path(), "tx.csv", &opts);
    let key = zones::raw("transactions", "tx.csv");
    let info = store
        .put(&key, std::fs::read(&file).unwrap())
        .await
        .unwrap();
    let event = ObjectCreated {
        bucket: "b".into(),
        key: key.clone(),
        size: info.size,
        etag: info.etag.clone(),
        version_id: None,
        sequencer: None,
        event_time: chrono::Utc::now(),
    };
    // Four concurrent deliveries of the same event, then the same notification JSON twice.
    let runs = futures::future::join_all((0..4).map(|_| ingest::handle(&store, &event))).await;
    let versions: Vec<String> = runs
        .into_iter()
        .map(|r| match r.unwrap() {
            IngestOutcome::Committed { version, .. }
            | IngestOutcome::AlreadyDone { version, .. } => version,
        })
        .collect();
    assert!(versions.windows(2).all(|w| w[0] == w[1]), "{versions:?}");
    let stack = LocalStack::new(&store);
    let envelope = s3_notification(&event);
    for _ in 0..2 {
        let d = stack.deliver(&envelope).await;
        assert_eq!(d[0].result["outcome"], "already-done", "{d:?}");
    }
    let ms = manifests(&store).await;
    assert_eq!(ms.len(), 1);
    let curated = store
        .list(&zones::curated_prefix("transactions"))
        .await
        .unwrap();
    assert_eq!(curated.len(), 2, "one part and one manifest: {curated:?}");
    assert_eq!(snapshots(&store).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn later_uploads_extend_the_snapshot_and_never_admit_a_key_twice() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::local(&dir.path().join("store")).unwrap();
    let stack = LocalStack::new(&store);
    pipeline::push_project(stack.store(), &sample_project())
        .await
        .unwrap();
    let a = write_sample(
        dir.path(),
        "a.csv",
        &SampleOptions {
            rows: 1500,
            bad_rows: 0,
            seed: 1,
            ..Default::default()
        },
    );
    pipeline::upload(&stack, "transactions", &a).await.unwrap();
    stack.run_until_quiet(|_| {}).await;
    // Same generator seed: every transaction id repeats; plus the same file under another name.
    let b = dir.path().join("b.csv");
    std::fs::copy(&a, &b).unwrap();
    pipeline::upload(&stack, "transactions", &b).await.unwrap();
    let d = stack.run_until_quiet(|_| {}).await;
    assert!(d.iter().all(|d| d.ok), "{d:?}");
    // Identical bytes and contract: the same version id, so nothing new.
    assert_eq!(manifests(&store).await.len(), 1);

    // Different bytes, overlapping keys: a second version where every repeated key is refused.
    let text = std::fs::read_to_string(&a).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.truncate(200);
    let c = dir.path().join("c.csv");
    std::fs::write(&c, lines.join("\n") + "\n").unwrap();
    pipeline::upload(&stack, "transactions", &c).await.unwrap();
    stack.run_until_quiet(|_| {}).await;
    let ms = manifests(&store).await;
    // 199 repeated keys, below min_rows = 100 valid rows: the batch is refused whole.
    assert_eq!(ms.len(), 1);
    let errors = store
        .list(&format!(
            "{}_errors/",
            zones::quarantine_prefix("transactions")
        ))
        .await
        .unwrap();
    assert_eq!(errors.len(), 1);
    let report: serde_json::Value =
        serde_json::from_slice(&store.get(&errors[0].key).await.unwrap().bytes).unwrap();
    assert_eq!(report["rule"], "dataset_rules");

    let fresh = write_sample(
        dir.path(),
        "d.csv",
        &SampleOptions {
            rows: 1500,
            bad_rows: 0,
            seed: 2,
            ..Default::default()
        },
    );
    pipeline::upload(&stack, "transactions", &fresh)
        .await
        .unwrap();
    stack.run_until_quiet(|_| {}).await;
    let ms = manifests(&store).await;
    assert_eq!(ms.len(), 2);
    let snaps = snapshots(&store).await;
    let newest = snaps.iter().max_by_key(|s| s.versions.len()).unwrap();
    assert_eq!(newest.versions.len(), 2);
}

const BASE: &str = r#"
dataset = "people"
primary_key = ["id"]
[rules]
min_rows = 1
[[columns]]
name = "id"
type = "integer"
nullable = false
[[columns]]
name = "colour"
type = "categorical"
values = ["red", "green"]
case_insensitive = true
"#;

async fn ingest_text(
    store: &Store,
    name: &str,
    text: &str,
) -> Result<IngestOutcome, ingest::IngestError> {
    let key = zones::raw("people", name);
    store.put(&key, text.to_string()).await.unwrap();
    ingest::ingest_object(store, &key).await
}

#[tokio::test]
async fn contract_evolution_and_quarantine_replay() {
    let store = Store::memory();
    let base = Contract::from_toml(BASE, "people.toml").unwrap();
    assert!(matches!(
        publish_contract(&store, &base, BASE).await.unwrap(),
        Published::Changed(_)
    ));
    assert!(matches!(
        publish_contract(&store, &base, BASE).await.unwrap(),
        Published::Unchanged(_)
    ));

    let out = ingest_text(
        &store,
        "1.csv",
        "id,colour\n1,red\n2,BLUE\n3,Green\n4,blue\n",
    )
    .await
    .unwrap();
    let IngestOutcome::Committed { rows, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!((rows.valid, rows.quarantined), (2, 2));

    // Widening the allowed values is compatible; replay admits the two blue rows once.
    let wider_text = BASE.replace(r#"["red", "green"]"#, r#"["red", "green", "blue"]"#);
    let wider = Contract::from_toml(&wider_text, "people.toml").unwrap();
    let Published::Changed(p) = publish_contract(&store, &wider, &wider_text).await.unwrap() else {
        panic!()
    };
    assert_eq!((p.change.as_str(), p.lineage, p.seq), ("compatible", 1, 2));
    let replays = ingest::replay::replay(&store, "people").await.unwrap();
    assert_eq!(replays.len(), 1);
    assert_eq!(replays[0].admitted, 2);
    let again = ingest::replay::replay(&store, "people").await.unwrap();
    assert!(
        again.iter().all(|r| r.version.is_none() || r.admitted == 0),
        "{again:?}"
    );
    let ms = ingest::committed_manifests(&store, "people").await.unwrap();
    assert_eq!(ms.len(), 2);
    let replay = ms
        .iter()
        .find(|m| matches!(m.lineage, Lineage::Replay { .. }))
        .unwrap();
    let Lineage::Replay {
        admitted_rows,
        original_source,
        ..
    } = &replay.lineage
    else {
        unreachable!()
    };
    assert_eq!(admitted_rows, &vec![2, 4]);
    assert_eq!(original_source, "raw/people/1.csv");

    // A type change is breaking: refused, then accepted as a new lineage.
    let breaking_text = BASE.replace("type = \"integer\"", "type = \"string\"");
    let breaking = Contract::from_toml(&breaking_text, "people.toml").unwrap();
    let err = publish_contract(&store, &breaking, &breaking_text)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("breaking") && err.contains("type integer -> string"),
        "{err}"
    );
    let new_lineage_text = format!("new_lineage = true\n{breaking_text}");
    let new_lineage = Contract::from_toml(&new_lineage_text, "people.toml").unwrap();
    let Published::Changed(p) = publish_contract(&store, &new_lineage, &new_lineage_text)
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!((p.change.as_str(), p.lineage), ("new-lineage", 2));
    // The new lineage's snapshot starts empty of the old versions.
    let IngestOutcome::Committed { snapshot, .. } =
        ingest_text(&store, "2.csv", "id,colour\nA7,red\n")
            .await
            .unwrap()
    else {
        panic!()
    };
    let snap: Snapshot = serde_json::from_slice(
        &store
            .get(&zones::snapshot("people", &snapshot))
            .await
            .unwrap()
            .bytes,
    )
    .unwrap();
    assert_eq!(snap.versions.len(), 1);
    assert_eq!(snap.contract_lineage, 2);
}

#[tokio::test]
async fn real_world_csv_spellings() {
    let store = Store::memory();
    let text = r#"
dataset = "people"
event_time = "seen"
[[columns]]
name = "name"
type = "string"
nullable = false
[[columns]]
name = "score"
type = "float"
[[columns]]
name = "active"
type = "boolean"
[[columns]]
name = "seen"
type = "timestamp"
timezone = "Europe/Paris"
"#;
    let c = Contract::from_toml(text, "p.toml").unwrap();
    publish_contract(&store, &c, text).await.unwrap();
    let csv = "\u{feff}Name , SCORE,active,seen\n\"Smith, Jane\",1.5,Yes,2024-03-01 13:30:00\n\"multi\nline\",N/A,no,2024-03-01T12:30:00Z\n  Bob  ,  NaN ,TRUE,2024-03-01\nAnn,,,\n";
    let out = ingest_text(&store, "x.csv", csv).await.unwrap();
    let IngestOutcome::Committed { rows, version, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!((rows.read, rows.valid, rows.quarantined), (4, 4, 0));
    let m: Manifest = serde_json::from_slice(
        &store
            .get(&zones::curated_manifest("people", &version))
            .await
            .unwrap()
            .bytes,
    )
    .unwrap();
    let part = store.get(&m.parts[0].key).await.unwrap().bytes;
    let df = tests::read_parquet(part.as_ref());
    let names: Vec<Option<&str>> = df.column("name").unwrap().str().unwrap().iter().collect();
    assert_eq!(
        names,
        vec![
            Some("Smith, Jane"),
            Some("multi\nline"),
            Some("Bob"),
            Some("Ann")
        ]
    );
    assert_eq!(df.column("score").unwrap().null_count(), 3);
    // Both spellings of the same instant (local Paris time and UTC) agree.
    let seen = df
        .column("seen")
        .unwrap()
        .cast(&ingest::polars::prelude::DataType::Int64)
        .unwrap();
    let seen = seen.i64().unwrap();
    assert_eq!(seen.get(0), seen.get(1));
}

/// Deliveries of one upload racing (SQS delivers at least once, and several workers take
/// messages at once): exactly one reports the commit, the others find it done, and the
/// dataset holds one version. Before, a delivery that lost the race for the manifest still
/// reported "committed" (`cargo xtask soak` saw 17 commits of 15 files).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_deliveries_of_one_upload_commit_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::local(&dir.path().join("store")).unwrap();
    pipeline::push_project(&store, &sample_project())
        .await
        .unwrap();
    let mut csv = Vec::new();
    generate(
        &SampleOptions {
            rows: 2_000,
            ..Default::default()
        },
        &mut csv,
    )
    .unwrap();
    let key = "raw/transactions/raced.csv";
    store.put(key, csv).await.unwrap();
    let mut racing = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let store = store.clone();
        racing.spawn(async move { ingest::ingest_object(&store, key).await.unwrap() });
    }
    let mut committed = 0;
    while let Some(outcome) = racing.join_next().await {
        committed += usize::from(matches!(outcome.unwrap(), IngestOutcome::Committed { .. }));
    }
    assert_eq!(committed, 1);
    assert_eq!(manifests(&store).await.len(), 1);
}
