//! The feature store across stages: ingest -> feature stage through the local stack, then
//! - offline/online consistency: for requests after the last materialized event, the vector
//!   the online side serves (shared evaluator + online record read back from the store) equals
//!   the offline table's row computed by polars for the same request at the same time;
//! - the online store on DynamoDB, against moto's DynamoDB API;
//! - idempotent redelivery of a snapshot event.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::path::Path;
use std::sync::Arc;

use contracts::LoadedProject;
use feature_stage::polars::prelude::*;
use feature_stage::{Config, ViewOutcome};
use features::online::supersedes;
use features::{LabelSource, OnlineStore, SnapshotStore, ViewSpec};
use mlpipe::pipeline;
use mlpipe::sample::{SampleOptions, generate};
use mlpipe::stack::LocalStack;
use online::aws::Credentials;
use online::{Backend, DynamoStore};
use records::pipeline::{FeatureManifest, Snapshot};
use serde_json::{Map, Value, json};
use storage::Store;
use tests::Moto;

const VIEW: &str = "card_activity";

/// The sample project without its training file: these tests are about features, on data
/// too small to train on.
fn sample_project() -> LoadedProject {
    let mut p = LoadedProject::load(&tests::repo_root().join("examples/fraud"))
        .expect("sample project loads");
    p.project.training.clear();
    p.training_files.clear();
    p
}

/// Runs ingest and the feature stage on `rows` generated transactions.
async fn run_pipeline(store: &Store, config: Config, dir: &Path, rows: usize) -> FeatureManifest {
    let stack = LocalStack::with_config(store, config);
    pipeline::push_project(stack.store(), &sample_project())
        .await
        .unwrap();
    let path = dir.join("tx.csv");
    let mut file = std::fs::File::create(&path).unwrap();
    generate(
        &SampleOptions {
            rows,
            bad_rows: 0,
            ..Default::default()
        },
        &mut file,
    )
    .unwrap();
    pipeline::upload(&stack, "transactions", &path)
        .await
        .unwrap();
    let deliveries = stack.run_until_quiet(|_| {}).await;
    assert!(deliveries.iter().all(|d| d.ok), "{deliveries:#?}");
    assert!(
        deliveries
            .iter()
            .any(|d| d.stage == events::Stage::Features),
        "the snapshot reached the feature stage"
    );
    pipeline::latest_view_version(store, VIEW)
        .await
        .unwrap()
        .expect("a feature-view version")
}

fn snapshot_of(m: &FeatureManifest) -> Snapshot {
    Snapshot {
        format: 1,
        dataset: m.snapshot.dataset.clone(),
        hash: m.snapshot.hash.clone(),
        versions: m.snapshot.versions.clone(),
        contract_lineage: 1,
        created_at: String::new(),
    }
}

fn rfc3339(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(b.abs()) + 1e-12,
        _ => false,
    }
}

struct Request {
    card: String,
    at_us: i64,
    amount: Option<f64>,
    channel: Option<&'static str>,
    category: Option<&'static str>,
    country: &'static str,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_vectors_equal_offline_rows_after_the_last_event() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::local(&dir.path().join("store")).unwrap();
    let online = Arc::new(
        Backend::open(&format!(
            "embedded:{}",
            dir.path().join("online.redb").display()
        ))
        .await
        .unwrap(),
    );
    let manifest = run_pipeline(
        &store,
        Config {
            online: Some(online.clone()),
        },
        dir.path(),
        4000,
    )
    .await;
    let spec: ViewSpec = feature_stage::load_spec(&store, &manifest).await.unwrap();
    let events = feature_stage::load_snapshot(
        &store,
        &snapshot_of(&manifest),
        &feature_stage::event_columns(&spec.view),
    )
    .await
    .unwrap();
    let times = feature_stage::offline::micros(&events, "timestamp").unwrap();
    let last = times.iter().flatten().copied().max().unwrap();
    let cards = events.column("card_id").unwrap().str().unwrap().clone();
    let mut cards: Vec<String> = cards.iter().flatten().map(str::to_string).collect();
    cards.sort();
    cards.dedup();
    cards.truncate(120);
    cards.push("card_999999".into()); // never seen: empty state

    // Requests strictly after the last materialized event, from one second to past the TTL.
    let deltas_s = [
        1,
        59,
        61,
        1800,
        3 * 3600,
        86_399,
        86_401,
        6 * 86_400,
        29 * 86_400,
        31 * 86_400,
    ];
    let channels = [
        Some("pos"),
        Some("online"),
        Some("atm"),
        Some("kiosk"),
        None,
    ];
    let categories = [Some("travel"), Some("grocery"), None, Some("jewellery")];
    let countries = ["DE", "FR", "US", "ZZ"];
    let mut requests = Vec::new();
    for (i, card) in cards.iter().enumerate() {
        for (j, d) in deltas_s.iter().enumerate() {
            let k = i * deltas_s.len() + j;
            requests.push(Request {
                card: card.clone(),
                // Distinct microseconds make each request's offline row identifiable.
                at_us: last + d * 1_000_000 + k as i64,
                amount: (k % 11 != 0).then_some((k % 997) as f64 * 1.37 + 0.5),
                channel: channels[k % channels.len()],
                category: categories[k % categories.len()],
                country: countries[k % countries.len()],
            });
        }
    }

    // Offline: the same requests as label events of the view, through polars.
    let n = requests.len();
    let ts = Column::new(
        "timestamp".into(),
        requests.iter().map(|r| r.at_us).collect::<Vec<_>>(),
    )
    .cast(&DataType::Datetime(
        TimeUnit::Microseconds,
        Some(TimeZone::UTC),
    ))
    .unwrap();
    let labels = DataFrame::new(
        n,
        vec![
            Column::new(
                "card_id".into(),
                requests.iter().map(|r| r.card.clone()).collect::<Vec<_>>(),
            ),
            ts,
            Column::new(
                "amount".into(),
                requests.iter().map(|r| r.amount).collect::<Vec<_>>(),
            ),
            Column::new(
                "channel".into(),
                requests.iter().map(|r| r.channel).collect::<Vec<_>>(),
            ),
            Column::new(
                "merchant_category".into(),
                requests.iter().map(|r| r.category).collect::<Vec<_>>(),
            ),
            Column::new(
                "country".into(),
                requests.iter().map(|r| r.country).collect::<Vec<_>>(),
            ),
            Column::new("is_fraud".into(), vec![false; n]),
        ],
    )
    .unwrap();
    let mut view = spec.view.clone();
    view.label = Some(LabelSource::Dataset {
        dataset: "requests".into(),
        entity: vec!["card_id".into()],
        time: "timestamp".into(),
        column: "is_fraud".into(),
    });
    let offline =
        feature_stage::build_table(&view, &events, Some(&labels), Some(&spec.vocabularies))
            .unwrap();
    assert_eq!(offline.columns, spec.output_columns());
    let table = &offline.table;
    let row_time = feature_stage::offline::micros(table, "timestamp").unwrap();
    let columns: Vec<Float64Chunked> = offline
        .columns
        .iter()
        .map(|c| table.column(c).unwrap().f64().unwrap().clone())
        .collect();

    // Online: the shared evaluator over the record read back from the embedded store.
    let mut compared = 0;
    let mut unknown = 0;
    let mut expired = 0;
    for (row, t) in row_time.iter().enumerate() {
        let r = requests.iter().find(|r| Some(r.at_us) == *t).unwrap();
        let mut request = Map::new();
        request.insert("card_id".into(), json!(r.card));
        request.insert("timestamp".into(), json!(rfc3339(r.at_us)));
        request.insert("amount".into(), r.amount.map_or(Value::Null, |a| json!(a)));
        request.insert(
            "channel".into(),
            r.channel.map_or(Value::Null, |c| json!(c)),
        );
        if let Some(c) = r.category {
            request.insert("merchant_category".into(), json!(c));
        }
        request.insert("country".into(), json!(r.country));
        let served = features::online_features(&*online, &spec, &request, r.at_us)
            .await
            .unwrap();
        unknown += usize::from(served.assembled.unknown_entity);
        expired += usize::from(served.assembled.expired);
        for (j, name) in offline.columns.iter().enumerate() {
            let a = columns[j].get(row);
            let b = served.assembled.values[j];
            assert!(
                close(a, b),
                "{name} for {} at {}: offline {a:?}, online {b:?}",
                r.card,
                rfc3339(r.at_us)
            );
            compared += 1;
        }
    }
    assert_eq!(unknown, deltas_s.len(), "only the unseen card is unknown");
    assert!(expired > 0, "requests past the TTL read expired records");
    assert!(compared > 10_000, "compared {compared} values");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_online_store_against_moto() {
    let moto = Moto::start();
    let credentials = Credentials::new("testing", "testing", None, None, "test");
    let dynamo = DynamoStore::new(
        "mlpipe-online",
        Some(&moto.endpoint()),
        Some("us-east-1"),
        Some(credentials),
    )
    .unwrap();
    dynamo.ensure_table().await.unwrap();
    dynamo.ensure_table().await.unwrap(); // idempotent

    let dir = tempfile::tempdir().unwrap();
    let store = Store::memory();
    let backend = Arc::new(Backend::Dynamo(dynamo.clone()));
    let manifest = run_pipeline(
        &store,
        Config {
            online: Some(backend.clone()),
        },
        dir.path(),
        1500,
    )
    .await;
    assert!(
        manifest
            .online
            .backend
            .as_deref()
            .unwrap()
            .starts_with("dynamodb://")
    );
    assert_eq!(manifest.online.written, manifest.rows.entities);

    // Every record in DynamoDB equals the one in the version's online.bin.
    let blob = store
        .get(&manifest.online_snapshot.as_ref().unwrap().key)
        .await
        .unwrap()
        .bytes;
    let snapshot = SnapshotStore::decode(&blob).unwrap();
    assert_eq!(snapshot.len() as u64, manifest.rows.entities);
    let spec = feature_stage::load_spec(&store, &manifest).await.unwrap();
    let mut checked = 0;
    for card in ["card_000001", "card_000002", "card_000150", "card_000499"] {
        let from_dynamo = dynamo.read(VIEW, card).await.unwrap();
        let from_blob = snapshot.read(VIEW, card).await.unwrap();
        assert_eq!(from_dynamo, from_blob, "{card}");
        if let Some(record) = from_dynamo {
            checked += 1;
            let at = record.state.last_event_us.unwrap() + 60_000_000;
            let request: Map<String, Value> = serde_json::from_value(json!({
                "card_id": card, "timestamp": rfc3339(at), "amount": 42.0, "channel": "pos"
            }))
            .unwrap();
            let a = features::online_features(&dynamo, &spec, &request, at)
                .await
                .unwrap();
            let b = features::online_features(&snapshot, &spec, &request, at)
                .await
                .unwrap();
            assert_eq!(a.assembled, b.assembled);
            assert!(!a.assembled.unknown_entity);
        }
    }
    assert!(checked >= 2, "sample cards have records");
    assert_eq!(dynamo.read(VIEW, "card_999999").await.unwrap(), None);

    // A late, older record never replaces a newer one.
    let mut current = dynamo.read(VIEW, "card_000001").await.unwrap().unwrap();
    let mut older = current.clone();
    older.state.last_event_us = older.state.last_event_us.map(|t| t - 1);
    older.version = "older".into();
    assert!(!supersedes(&older, &current));
    assert_eq!(dynamo.write(std::slice::from_ref(&older)).await.unwrap(), 0);
    assert_eq!(
        dynamo
            .read(VIEW, "card_000001")
            .await
            .unwrap()
            .unwrap()
            .version,
        current.version
    );
    current.version = "newer".into();
    assert_eq!(
        dynamo.write(std::slice::from_ref(&current)).await.unwrap(),
        1
    );
    assert_eq!(
        dynamo
            .read(VIEW, "card_000001")
            .await
            .unwrap()
            .unwrap()
            .version,
        "newer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_snapshot_is_computed_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::local(&dir.path().join("store")).unwrap();
    let manifest = run_pipeline(&store, Config::default(), dir.path(), 800).await;
    let key = records::keys::snapshot("transactions", &manifest.snapshot.hash);
    let info = store.head(&key).await.unwrap().unwrap();
    let event = events::ObjectCreated {
        bucket: store.bucket_name(),
        key: key.clone(),
        size: info.size,
        etag: info.etag.clone(),
        version_id: None,
        sequencer: None,
        event_time: chrono::Utc::now(),
    };
    let outcome = feature_stage::handle(&store, &event, &Config::default())
        .await
        .unwrap();
    assert!(matches!(
        &outcome.views[..],
        [ViewOutcome::AlreadyDone { version, .. }] if *version == manifest.version
    ));
    assert_eq!(
        feature_stage::view_versions(&store, VIEW)
            .await
            .unwrap()
            .len(),
        1
    );
    // The offline table has the label, the split and every model input.
    let table = tests::read_parquet(&store.get(&manifest.table.key).await.unwrap().bytes);
    assert_eq!(table.height() as u64, manifest.rows.rows);
    for c in manifest
        .features
        .iter()
        .chain(["is_fraud".to_string(), "__split".to_string()].iter())
    {
        assert!(table.column(c).is_ok(), "{c}");
    }
    assert_eq!(
        manifest.rows.train + manifest.rows.validation + manifest.rows.test,
        manifest.rows.rows
    );
    // The reference profile is addressed by its own hash.
    let profile = store.get(&manifest.profile.key).await.unwrap().bytes;
    assert_eq!(contracts::sha256_hex(&profile), manifest.profile.sha256);
    assert!(manifest.profile.key.contains(&manifest.profile.sha256));
}

/// Writes a small project in `dir`: hourly weather per airport (the view's dataset) and
/// departures (a separate labels dataset) whose own fields, distance and carrier, the
/// weather dataset does not have.
fn flights_project(dir: &Path) -> LoadedProject {
    let files = [
        (
            "mlpipe.toml",
            r#"name = "flights"
features = ["features/airport_weather.toml"]
[datasets.weather]
contract = "contracts/weather.toml"
[datasets.departures]
contract = "contracts/departures.toml"
"#,
        ),
        (
            "contracts/weather.toml",
            r#"dataset = "weather"
version = 1
format = "csv"
entity_key = "origin"
event_time = "time_hour"
[[columns]]
name = "origin"
type = "string"
nullable = false
[[columns]]
name = "time_hour"
type = "timestamp"
nullable = false
[[columns]]
name = "wind_speed"
type = "float"
"#,
        ),
        (
            "contracts/departures.toml",
            r#"dataset = "departures"
version = 1
format = "csv"
event_time = "sched_dep"
[[columns]]
name = "origin"
type = "string"
nullable = false
[[columns]]
name = "sched_dep"
type = "timestamp"
nullable = false
[[columns]]
name = "distance"
type = "float"
[[columns]]
name = "carrier"
type = "string"
[[columns]]
name = "delayed"
type = "boolean"
nullable = false
"#,
        ),
        (
            "features/airport_weather.toml",
            r#"view = "airport_weather"
dataset = "weather"
ttl = "1d"
[labels]
dataset = "departures"
column = "delayed"
[[features]]
name = "wind_3h"
aggregate = "mean"
column = "wind_speed"
window = "3h"
[[features]]
name = "readings_6h"
aggregate = "count"
window = "6h"
[[features]]
name = "distance"
column = "distance"
log1p = true
[[features]]
name = "carrier"
column = "carrier"
encoding = "one-hot"
"#,
        ),
    ];
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    LoadedProject::load(dir).expect("the flights project loads")
}

const HOUR_US: i64 = 3_600_000_000;
/// 2026-01-01T00:00:00Z.
const START_US: i64 = 1_767_225_600_000_000;
const ORIGINS: [&str; 3] = ["EWR", "JFK", "LGA"];
const CARRIERS: [&str; 4] = ["AA", "B6", "DL", "UA"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_labels_dataset_supplies_request_fields_offline_and_online() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::local(&dir.path().join("store")).unwrap();
    let online = Arc::new(
        Backend::open(&format!(
            "embedded:{}",
            dir.path().join("online.redb").display()
        ))
        .await
        .unwrap(),
    );
    let stack = LocalStack::with_config(
        &store,
        Config {
            online: Some(online.clone()),
        },
    );
    let project = flights_project(&dir.path().join("project"));
    pipeline::push_project(stack.store(), &project)
        .await
        .unwrap();

    // 48 hours of weather per airport (a missing reading now and then), then 400 departures
    // within those hours.
    let mut weather = String::from("origin,time_hour,wind_speed\n");
    for h in 0..48i64 {
        for (o, origin) in ORIGINS.iter().enumerate() {
            if (h + o as i64) % 7 == 3 {
                continue;
            }
            let wind = ((h * 13 + o as i64 * 5) % 23) as f64 * 0.7;
            weather.push_str(&format!(
                "{origin},{},{wind}\n",
                rfc3339(START_US + h * HOUR_US)
            ));
        }
    }
    let mut departures = String::from("origin,sched_dep,distance,carrier,delayed\n");
    for k in 0..400i64 {
        let at = START_US + 2 * HOUR_US + k * 397_000_000;
        let distance = if k % 17 == 0 {
            String::new()
        } else {
            format!("{}", 200 + (k * 37) % 2400)
        };
        departures.push_str(&format!(
            "{},{},{distance},{},{}\n",
            ORIGINS[(k % 3) as usize],
            rfc3339(at),
            CARRIERS[(k % 4) as usize],
            u8::from(k % 3 == 1 || k % 5 == 0),
        ));
    }
    for (dataset, text) in [("weather", &weather), ("departures", &departures)] {
        let path = dir.path().join(format!("{dataset}.csv"));
        std::fs::write(&path, text).unwrap();
        pipeline::upload(&stack, dataset, &path).await.unwrap();
        let deliveries = stack.run_until_quiet(|_| {}).await;
        assert!(deliveries.iter().all(|d| d.ok), "{deliveries:#?}");
    }
    let manifest = pipeline::latest_view_version(&store, "airport_weather")
        .await
        .unwrap()
        .expect("the view was computed once both datasets arrived");
    assert_eq!(manifest.snapshot.dataset, "weather");
    assert_eq!(
        manifest
            .labels_snapshot
            .as_ref()
            .map(|s| s.dataset.as_str()),
        Some("departures")
    );
    assert_eq!(manifest.rows.rows, 400, "{:?}", manifest.rows);
    let spec: ViewSpec = feature_stage::load_spec(&store, &manifest).await.unwrap();
    // The stored table's request fields are the departures' own.
    let table = tests::read_parquet(&store.get(&manifest.table.key).await.unwrap().bytes);
    let distance: Vec<Option<f64>> = table
        .column("distance")
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .collect();
    let expected = |k: i64| (k % 17 != 0).then(|| ((200 + (k * 37) % 2400) as f64).ln_1p());
    assert_eq!(distance, (0..400).map(expected).collect::<Vec<_>>());

    // Requests after the last weather reading: offline through polars with the requests as
    // label events, online through the shared evaluator and the online store.
    let events = feature_stage::load_snapshot(
        &store,
        &snapshot_of(&manifest),
        &feature_stage::event_columns(&spec.view),
    )
    .await
    .unwrap();
    let last = START_US + 47 * HOUR_US;
    let deltas_s = [1i64, 1799, 3 * 3600, 6 * 3600 + 1, 86_399, 86_401];
    let mut requests = Vec::new();
    for (i, origin) in ORIGINS.iter().chain(&["SFO"]).enumerate() {
        for (j, d) in deltas_s.iter().enumerate() {
            let k = (i * deltas_s.len() + j) as i64;
            requests.push((
                origin.to_string(),
                last + d * 1_000_000 + k,
                (k % 5 != 0).then_some(100.0 + k as f64 * 11.0),
                (k % 6 != 5).then(|| ["AA", "DL", "ZZ"][(k % 3) as usize]),
            ));
        }
    }
    let n = requests.len();
    let sched = Column::new(
        "sched_dep".into(),
        requests.iter().map(|r| r.1).collect::<Vec<_>>(),
    )
    .cast(&DataType::Datetime(
        TimeUnit::Microseconds,
        Some(TimeZone::UTC),
    ))
    .unwrap();
    let labels = DataFrame::new(
        n,
        vec![
            Column::new(
                "origin".into(),
                requests.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
            ),
            sched,
            Column::new(
                "distance".into(),
                requests.iter().map(|r| r.2).collect::<Vec<_>>(),
            ),
            Column::new(
                "carrier".into(),
                requests.iter().map(|r| r.3).collect::<Vec<_>>(),
            ),
            Column::new("delayed".into(), vec![false; n]),
        ],
    )
    .unwrap();
    let offline =
        feature_stage::build_table(&spec.view, &events, Some(&labels), Some(&spec.vocabularies))
            .unwrap();
    assert_eq!(offline.columns, spec.output_columns());
    let table = &offline.table;
    let row_time = feature_stage::offline::micros(table, "sched_dep").unwrap();
    let mut compared = 0;
    for (row, t) in row_time.iter().enumerate() {
        let r = requests.iter().find(|r| Some(r.1) == *t).unwrap();
        let mut request = Map::new();
        request.insert("origin".into(), json!(r.0));
        request.insert("sched_dep".into(), json!(rfc3339(r.1)));
        request.insert("distance".into(), r.2.map_or(Value::Null, |d| json!(d)));
        if let Some(c) = r.3 {
            request.insert("carrier".into(), json!(c));
        }
        let served = features::online_features(&*online, &spec, &request, r.1)
            .await
            .unwrap();
        for (j, name) in offline.columns.iter().enumerate() {
            let a = table.column(name).unwrap().f64().unwrap().get(row);
            let b = served.assembled.values[j];
            assert!(
                close(a, b),
                "{name} for {} at {}: offline {a:?}, online {b:?}",
                r.0,
                rfc3339(r.1)
            );
            compared += 1;
        }
    }
    assert!(compared >= n * 4, "compared {compared} values");
}
