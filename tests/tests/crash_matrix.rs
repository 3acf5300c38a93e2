//! The crash matrix: each stage is run once cleanly to count its writes, then once per
//! write with the process "ending" right after that write (`storage::Faults`). After each
//! crash, before the event is delivered again, what readers see (the CLI's dataset state,
//! the next stage's inputs, the online store, the server's model loading, the edge) is the
//! previous version or none, never a partial one. Then the event is delivered again without faults, and the store
//! must equal the clean run's: the same objects with the same data, nothing committed twice.
//!
//! Run records (`pipeline-runs/`) are bookkeeping and differ by their times; they are left
//! out of the comparison. Times inside records are compared as present, not by value.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::collections::BTreeMap;
use std::sync::Arc;

use contracts::LoadedProject;
use feature_stage::Config;
use features::{OnlineStore as _, SnapshotStore};
use mlpipe::pipeline;
use mlpipe::sample::{SampleOptions, generate};
use records::keys as zones;
use records::pipeline::{Manifest, PartRef, Snapshot};
use storage::{Faults, Store};

const DATASET: &str = "transactions";
const VIEW: &str = "card_activity";
const RAW: &str = "raw/transactions/upload.csv";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Stage {
    Ingest,
    Features,
    Train,
    Publish,
    BatchPredict,
    Drift,
}

/// The stores a stage reads and writes, in their state before the delivery.
struct World {
    store: Store,
    edge: Store,
    config: Config,
    online: Option<Arc<online::Backend>>,
    _dir: tempfile::TempDir,
}

impl World {
    /// The same stores, every operation consulting `faults` (one plan over both, so "the
    /// Nth write" counts across them).
    fn faulty(&self, faults: &Arc<Faults>) -> (Store, Store) {
        (
            self.store.with_faults(faults.clone()),
            self.edge.with_faults(faults.clone()),
        )
    }
}

fn project() -> LoadedProject {
    let mut p = LoadedProject::load(&tests::repo_root().join("examples/fraud")).unwrap();
    p.project.training.clear();
    p.training_files.clear();
    p
}

fn sample_csv() -> Vec<u8> {
    let mut out = Vec::new();
    generate(
        &SampleOptions {
            rows: 600,
            ..Default::default()
        },
        &mut out,
    )
    .unwrap();
    out
}

/// The state before the stage's delivery, built once: every run starts from a copy of it
/// (so the times recorded in it are the same for the clean run and every crash).
async fn initial_state(stage: Stage) -> Store {
    let store = Store::memory();
    match stage {
        Stage::Ingest | Stage::Features => {
            pipeline::push_project(&store, &project()).await.unwrap();
            store.put(RAW, sample_csv()).await.unwrap();
            if stage == Stage::Features {
                ingest::ingest_object(&store, RAW).await.unwrap();
            }
        }
        Stage::Train | Stage::Drift => {
            // The wine example: small enough to train in a moment, seeded. Drift checks it
            // in hourly windows, a retrain request after two drifted ones.
            let wine = tests::repo_root().join("examples/wine");
            let mut project = LoadedProject::load(&wine).unwrap();
            for (_, text) in &mut project.training_files {
                *text = text
                    .replace("window = \"1d\"", "window = \"1h\"")
                    .replace("consecutive = 3", "consecutive = 2");
            }
            pipeline::push_project(&store, &project).await.unwrap();
            let raw = "raw/wines/wine.csv";
            store
                .put(raw, std::fs::read(wine.join("data/wine.csv")).unwrap())
                .await
                .unwrap();
            let ingested = ingest::ingest_object(&store, raw).await.unwrap();
            let ingest::IngestOutcome::Committed { snapshot, .. } = ingested else {
                panic!("{ingested:?}")
            };
            let event = events::ObjectCreated {
                bucket: store.bucket_name(),
                key: zones::snapshot("wines", &snapshot),
                size: 0,
                etag: None,
                version_id: None,
                sequencer: None,
                event_time: chrono::Utc::now(),
            };
            feature_stage::handle(&store, &event, &Config::default())
                .await
                .unwrap();
            if stage == Stage::Drift {
                let manifest = wine_manifest(&store).await;
                train::job::handle(&store, &manifest, &train::job::JobConfig::default())
                    .await
                    .unwrap();
                wine_logs(&store, &wine).await;
            }
        }
        Stage::Publish => register_champion(&store).await,
        Stage::BatchPredict => batch_input(&store).await,
    }
    store
}

/// The wine view's committed feature manifest (what the training job is triggered by).
async fn wine_manifest(store: &Store) -> String {
    store
        .list(&zones::features_prefix("wine_chemistry"))
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.key.ends_with(zones::MANIFEST))
        .unwrap()
        .key
}

const HOUR: i64 = 3_600_000_000;
/// The drift check's fixed "now", on an hour.
const DRIFT_NOW: i64 = 1_790_000_000 * 1_000_000 / HOUR * HOUR;

/// Prediction logs of the wine champion in the two hourly windows before [`DRIFT_NOW`], both
/// shifted (every measurement tripled and moved), so the check writes a report and its page
/// per window and one retrain request.
async fn wine_logs(store: &Store, wine: &std::path::Path) {
    let text = std::fs::read_to_string(wine.join("data/wine.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let bundle = registry::bundle(store, "wine", 1).await.unwrap().unwrap();
    let rows: Vec<Vec<(String, f64)>> = lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            bundle
                .inputs
                .iter()
                .map(|i| {
                    let at = header.iter().position(|h| *h == i.name).unwrap();
                    (i.name.clone(), cells[at].parse::<f64>().unwrap())
                })
                .collect()
        })
        .collect();
    for w in [2, 1] {
        let at_us = DRIFT_NOW - w * HOUR + 60_000_000;
        for (r, chunk) in rows.chunks(30).enumerate() {
            let id = format!("w{w}-{r}");
            let mut body = String::new();
            for (i, row) in chunk.iter().enumerate() {
                let features: serde_json::Map<String, serde_json::Value> = row
                    .iter()
                    .map(|(n, v)| (n.clone(), serde_json::json!(v * 3.0 + 5.0)))
                    .collect();
                let line = serde_json::json!({"request_id": id, "index": i, "model": "wine",
                    "version": 1, "at_us": at_us + r as i64, "features": features,
                    "label": "cultivar_1", "score": 0.9});
                body.push_str(&line.to_string());
                body.push('\n');
            }
            store
                .put(
                    &zones::prediction_log("wine", at_us, &id),
                    body.into_bytes(),
                )
                .await
                .unwrap();
        }
    }
}

const BATCH_INPUT: &str = "batch-input/fraud/day 1/vectors.csv";

/// The edge fixture's fraud champion and a small input of feature vectors, one row bad.
async fn batch_input(store: &Store) {
    let root = tests::put_edge_fixture(store).await;
    let dir = root.join("models/fraud/1");
    let model = inference::Model::load(
        &std::fs::read(dir.join("bundle.json")).unwrap(),
        &std::fs::read(dir.join("model.onnx")).unwrap(),
        None,
    )
    .unwrap();
    let inputs: Vec<&str> = model.input_names().collect();
    let mut csv = format!("id,{}\n", inputs.join(","));
    for r in 0..200 {
        csv.push_str(&format!("tx-{r}"));
        for i in 0..inputs.len() {
            if r == 17 && i == 0 {
                csv.push_str(",abc");
            } else {
                csv.push_str(&format!(",{}", (r * 7 + i * 3) % 11));
            }
        }
        csv.push('\n');
    }
    store.put(BATCH_INPUT, csv).await.unwrap();
}

/// A world holding a copy of `initial`, an empty edge and (for the feature stage) an empty
/// online store.
async fn setup(stage: Stage, initial: &Store) -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::memory();
    for info in initial.list("").await.unwrap() {
        let bytes = initial.get(&info.key).await.unwrap().bytes;
        store.put(&info.key, bytes).await.unwrap();
    }
    let mut config = Config::default();
    let mut online = None;
    if stage == Stage::Features {
        let path = dir.path().join("online");
        let backend = Arc::new(online::Backend::open(path.to_str().unwrap()).await.unwrap());
        config.online = Some(backend.clone());
        online = Some(backend);
    }
    World {
        store,
        edge: Store::memory(),
        config,
        online,
        _dir: dir,
    }
}

/// A registered champion of model `m` over view `v@abc`, and that view's online records.
async fn register_champion(store: &Store) {
    use registry::{Input, NewVersion, ObjectRef};
    store
        .put("features/v/v=abc/spec.json", b"{\"spec\":1}".to_vec())
        .await
        .unwrap();
    let new = NewVersion {
        task: "binary-classification".into(),
        family: "gbm".into(),
        inputs: vec![Input {
            name: "x".into(),
            ty: "f32".into(),
            width: None,
        }],
        classes: vec!["0".into(), "1".into()],
        threshold: Some(0.5),
        feature_view: "v".into(),
        feature_view_version: "abc".into(),
        feature_spec: ObjectRef {
            key: "features/v/v=abc/spec.json".into(),
            sha256: String::new(),
        },
        dataset_snapshot: "s".into(),
        reference_profile: ObjectRef {
            key: "features/v/profiles/p.parquet".into(),
            sha256: String::new(),
        },
        training_run: "r".into(),
        metrics: BTreeMap::new(),
        tags: BTreeMap::new(),
        joined_views: Vec::new(),
        training_table: None,
    };
    let reg = registry::register(store, "m", b"model bytes", new)
        .await
        .unwrap();
    registry::move_alias(store, "m", "champion", reg.bundle().version, None, "t", "r")
        .await
        .unwrap();
}

/// Delivers the stage's event once; the error, if any, as text.
async fn deliver(stage: Stage, world: &World, store: &Store, edge: &Store) -> Result<(), String> {
    match stage {
        Stage::Ingest => ingest::ingest_object(store, RAW)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Stage::Features => {
            let snapshots = world.store.list(&zones::snapshots_prefix(DATASET)).await;
            let key = snapshots.unwrap().last().unwrap().key.clone();
            let event = events::ObjectCreated {
                bucket: store.bucket_name(),
                key,
                size: 0,
                etag: None,
                version_id: None,
                sequencer: None,
                event_time: chrono::Utc::now(),
            };
            feature_stage::handle(store, &event, &world.config)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        Stage::Drift => drift::check_models(store, store, DRIFT_NOW)
            .await
            .map(|runs| {
                let run = &runs[0];
                assert!(run.note.is_none(), "{run:?}");
            })
            .map_err(|e| e.to_string()),
        Stage::Train => {
            let key = wine_manifest(&world.store).await;
            train::job::handle(store, &key, &train::job::JobConfig::default())
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        Stage::BatchPredict => stage::run(
            &batch_predict::BatchPredict { online: None },
            store,
            &events::Event::for_key(BATCH_INPUT),
        )
        .await
        .map(|_| ())
        .map_err(|e| e.to_string()),
        Stage::Publish => {
            let target = publish_stage::ObjectEdge::new(edge.clone());
            publish_stage::handle(store, "models/m/aliases/champion.json", Some(&target))
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    }
}

/// Checks a part a manifest names: present, with the size and hash recorded.
async fn check_part(store: &Store, part: &PartRef, what: &str) {
    let obj = store
        .get_opt(&part.key)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{what} names {} which is missing", part.key));
    assert_eq!(
        contracts::sha256_hex(&obj.bytes),
        part.sha256,
        "{what}: {} is not what the manifest recorded",
        part.key
    );
}

/// What readers may see between a crash and the redelivery: only whole versions.
async fn check_visible(stage: Stage, world: &World) {
    let store = &world.store;
    // Every committed dataset version is whole, and every snapshot names committed ones.
    let mut committed = Vec::new();
    for info in store.list(&zones::curated_prefix(DATASET)).await.unwrap() {
        if info.key.ends_with(zones::MANIFEST) {
            let m: Manifest =
                serde_json::from_slice(&store.get(&info.key).await.unwrap().bytes).unwrap();
            for part in &m.parts {
                check_part(store, part, &info.key).await;
            }
            committed.push(m.version);
        }
    }
    for info in store.list(&zones::snapshots_prefix(DATASET)).await.unwrap() {
        let s: Snapshot =
            serde_json::from_slice(&store.get(&info.key).await.unwrap().bytes).unwrap();
        for v in &s.versions {
            assert!(
                committed.contains(v),
                "{} names uncommitted version {v}",
                info.key
            );
        }
    }
    // The CLI's view of the dataset reads without error.
    if stage != Stage::Publish {
        pipeline::dataset_state(store, DATASET).await.unwrap();
    }
    // Feature versions are whole; the online store holds records of committed versions only.
    let mut views = Vec::new();
    for m in feature_stage::view_versions(store, VIEW).await.unwrap() {
        for part in [&m.spec, &m.table, &m.profile]
            .into_iter()
            .chain(m.online_snapshot.as_ref())
        {
            check_part(store, part, "feature manifest").await;
        }
        views.push(m.version);
    }
    pipeline::latest_view_version(store, VIEW).await.unwrap();
    if let Some(online) = &world.online {
        for entity in ["card_000001", "card_000002", "card_000010"] {
            if let Some(r) = online.read(VIEW, entity).await.unwrap() {
                assert!(
                    views.contains(&r.version),
                    "the online store serves {entity} from uncommitted version {}",
                    r.version
                );
            }
        }
    }
    // In the registry: a champion names a whole version (its bundle and its model, with the
    // hash the bundle records).
    for info in store.list(zones::MODELS).await.unwrap() {
        if !info.key.ends_with("/aliases/champion.json") {
            continue;
        }
        let alias: registry::Alias =
            serde_json::from_slice(&store.get(&info.key).await.unwrap().bytes).unwrap();
        let bundle = registry::bundle(store, &alias.model, alias.version)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{} names a version without a bundle", info.key));
        let onnx = store.get(&bundle.model_key).await.unwrap().bytes;
        assert_eq!(
            contracts::sha256_hex(&onnx),
            bundle.content_hash,
            "{}",
            bundle.model_key
        );
        // The server finds that champion and loads it as `mlpipe serve` does (the publish
        // matrix's model is a stand-in, not ONNX).
        if stage != Stage::Publish {
            let models = inference_server::store_models(
                store.clone(),
                vec![alias.model.clone()],
                std::time::Duration::ZERO,
            );
            let version = models.champion(&alias.model).await.unwrap();
            assert_eq!(version, alias.version);
            models
                .load(&alias.model, version)
                .await
                .unwrap_or_else(|e| panic!("the server cannot load {}: {e}", info.key));
        }
    }
    // Drift: every report reads whole, and a retrain request is a whole record.
    for info in store.list("drift/").await.unwrap() {
        if info.key.ends_with("/report.json") {
            let bytes = store.get(&info.key).await.unwrap().bytes;
            serde_json::from_slice::<drift::Report>(&bytes)
                .unwrap_or_else(|e| panic!("{}: {e}", info.key));
        }
    }
    for info in store.list("requests/retrain/").await.unwrap() {
        let bytes = store.get(&info.key).await.unwrap().bytes;
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["model"], "wine", "{}", info.key);
    }
    // At the edge: an alias names a version whose files are all there.
    if let Some(alias) = world
        .edge
        .get_opt("models/m/aliases/champion.json")
        .await
        .unwrap()
    {
        let alias: registry::Alias = serde_json::from_slice(&alias.bytes).unwrap();
        for file in ["bundle.json", "model.onnx"] {
            let key = format!("models/m/{}/{file}", alias.version);
            assert!(
                world.edge.head(&key).await.unwrap().is_some(),
                "the edge alias names version {} but {key} is missing",
                alias.version
            );
        }
    }
}

/// Everything the stage's stores hold, comparable across runs.
async fn contents(world: &World) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (name, store) in [("store", &world.store), ("edge", &world.edge)] {
        for info in store.list("").await.unwrap() {
            if info.key.starts_with(zones::PIPELINE_RUNS) {
                continue;
            }
            let bytes = store.get(&info.key).await.unwrap().bytes;
            // The online store's folder differs by run.
            let value = tests::comparable(&info.key, &bytes)
                .replace(&world._dir.path().display().to_string(), "<dir>");
            out.insert(format!("{name}:{}", info.key), value);
        }
    }
    // The online store's records of every committed version.
    if let Some(online) = &world.online {
        for m in feature_stage::view_versions(&world.store, VIEW)
            .await
            .unwrap()
        {
            let Some(part) = &m.online_snapshot else {
                continue;
            };
            let blob =
                SnapshotStore::decode(&world.store.get(&part.key).await.unwrap().bytes).unwrap();
            for r in blob.records() {
                let held = online.read(VIEW, &r.entity).await.unwrap();
                let held = held.map(|mut h| {
                    h.materialized_at_us = 0;
                    serde_json::to_string(&h).unwrap()
                });
                out.insert(format!("online:{}", r.entity), held.unwrap_or_default());
            }
        }
    }
    out
}

/// The store after a crash and a redelivery equals a clean run's; a difference is shown
/// where it starts.
fn assert_same(expected: &BTreeMap<String, String>, got: &BTreeMap<String, String>, context: &str) {
    for (key, value) in expected {
        let Some(held) = got.get(key) else {
            panic!("{context}: {key} is missing");
        };
        if held != value {
            let at = value
                .bytes()
                .zip(held.bytes())
                .position(|(a, b)| a != b)
                .unwrap_or(value.len().min(held.len()));
            let from = at.saturating_sub(150);
            let cut = |s: &str| {
                s.get(from..(at + 150).min(s.len()))
                    .unwrap_or(s)
                    .to_string()
            };
            panic!(
                "{context}: {key} differs from a clean run's:\n clean: ...{}...\n   got: ...{}...",
                cut(value),
                cut(held)
            );
        }
    }
    let extra: Vec<_> = got.keys().filter(|k| !expected.contains_key(*k)).collect();
    assert!(
        extra.is_empty(),
        "{context}: objects a clean run does not write: {extra:?}"
    );
}

async fn crash_matrix(stage: Stage) {
    let initial = initial_state(stage).await;
    let clean = setup(stage, &initial).await;
    let counter = Arc::new(Faults::none());
    let (store, edge) = clean.faulty(&counter);
    deliver(stage, &clean, &store, &edge).await.unwrap();
    let writes = counter.writes();
    assert!(!writes.is_empty(), "{stage:?} wrote nothing");
    let expected = contents(&clean).await;

    for n in 1..=writes.len() as u64 {
        let world = setup(stage, &initial).await;
        let faults = Arc::new(Faults::crash_after_writes(n));
        let (store, edge) = world.faulty(&faults);
        let crashed = deliver(stage, &world, &store, &edge).await;
        assert!(
            faults.crashed(),
            "{stage:?}: the crash after write {n} ({}) did not happen",
            writes[n as usize - 1]
        );
        let at = &writes[n as usize - 1];
        check_visible(stage, &world).await;
        deliver(stage, &world, &world.store, &world.edge)
            .await
            .unwrap_or_else(|e| {
                panic!("{stage:?}: redelivery after a crash after write {n} ({at}) failed: {e} (crashed delivery: {crashed:?})")
            });
        check_visible(stage, &world).await;
        let got = contents(&world).await;
        assert_same(
            &expected,
            &got,
            &format!("{stage:?}, crash after write {n} ({at})"),
        );
    }
    eprintln!(
        "{stage:?}: crashed after each of {} writes, redelivered, equal to a clean run",
        writes.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_survives_a_crash_after_every_write() {
    crash_matrix(Stage::Ingest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feature_stage_survives_a_crash_after_every_write() {
    crash_matrix(Stage::Features).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn training_survives_a_crash_after_every_write() {
    crash_matrix(Stage::Train).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_inference_survives_a_crash_after_every_write() {
    crash_matrix(Stage::BatchPredict).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drift_check_survives_a_crash_after_every_write() {
    crash_matrix(Stage::Drift).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_survives_a_crash_after_every_write() {
    crash_matrix(Stage::Publish).await;
}

/// A store that fails now and then (one operation in each kind, in turn) only delays the
/// stage: redelivered until it succeeds, the result equals a clean run's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_store_failures_only_delay_ingest_and_features() {
    for stage in [Stage::Ingest, Stage::Features] {
        let initial = initial_state(stage).await;
        let clean = setup(stage, &initial).await;
        deliver(stage, &clean, &clean.store, &clean.edge)
            .await
            .unwrap();
        let expected = contents(&clean).await;
        for op in [
            storage::Op::Get,
            storage::Op::Head,
            storage::Op::List,
            storage::Op::Put,
        ] {
            for nth in [1, 2, 3] {
                let world = setup(stage, &initial).await;
                let faults = Arc::new(Faults::none().fail(op, nth));
                let (store, edge) = world.faulty(&faults);
                let mut tries = 0;
                while deliver(stage, &world, &store, &edge).await.is_err() {
                    tries += 1;
                    assert!(
                        tries < 3,
                        "{stage:?}: {op:?} #{nth} failing once keeps failing"
                    );
                }
                let got = contents(&world).await;
                assert_same(
                    &expected,
                    &got,
                    &format!("{stage:?} with {op:?} #{nth} failing once"),
                );
            }
        }
    }
}
