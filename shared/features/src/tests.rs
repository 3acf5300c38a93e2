//! Unit tests of definitions, the window kernel and the evaluator.

use std::collections::BTreeMap;

use contracts::Contract;
use serde_json::{Map, Value, json};

use crate::definition::{Encoding, FeatureKind};
use crate::window::{SlotValue, hash_number, hash_text, stable_hash};
use crate::{EntityState, FeatureView, OnlineRecord, SnapshotStore, ViewSpec};

const CONTRACT: &str = r#"
dataset = "tx"
entity_key = "card"
event_time = "ts"
[[columns]]
name = "card"
type = "string"
[[columns]]
name = "ts"
type = "timestamp"
[[columns]]
name = "amount"
type = "float"
[[columns]]
name = "channel"
type = "categorical"
values = ["pos", "web"]
[[columns]]
name = "fraud"
type = "boolean"
"#;

fn contracts() -> BTreeMap<String, Contract> {
    BTreeMap::from([(
        "tx".to_string(),
        Contract::from_toml(CONTRACT, "tx.toml").unwrap(),
    )])
}

fn parse(body: &str) -> Result<FeatureView, String> {
    let text = format!("view = \"v\"\ndataset = \"tx\"\n{body}");
    FeatureView::from_toml(&text, "v.toml", &contracts()).map_err(|e| e.to_string())
}

const VIEW: &str = r#"
ttl = "1d"
label = "fraud"
[[features]]
name = "amount"
column = "amount"
clip = [0.0, 100.0]
log1p = true
[[features]]
name = "raw"
column = "amount"
output = false
[[features]]
name = "channel"
column = "channel"
encoding = "one-hot"
[[features]]
name = "channel_ix"
column = "channel"
encoding = "index"
[[features]]
name = "n_1h"
aggregate = "count"
window = "1h"
[[features]]
name = "mean_1d"
aggregate = "mean"
column = "amount"
window = "1d"
[[features]]
name = "since"
aggregate = "time_since_previous"
[[features]]
name = "ratio"
ratio = ["raw", "mean_1d"]
[[features]]
name = "hour"
time_part = "hour"
"#;

#[test]
fn a_full_view_parses_with_defaults_from_the_contract() {
    let v = parse(VIEW).unwrap();
    assert_eq!(v.entity, vec!["card"]);
    assert_eq!(v.event_time.as_deref(), Some("ts"));
    assert_eq!(v.ttl_us, Some(86_400_000_000));
    assert!(matches!(
        v.features[2].kind,
        FeatureKind::Encoded {
            encoding: Encoding::OneHot,
            ..
        }
    ));
    match &v.features[5].kind {
        FeatureKind::Aggregate {
            window_us,
            bucket_us,
            ..
        } => {
            assert_eq!(*window_us, 86_400_000_000);
            assert_eq!(*bucket_us, 3_600_000_000, "default bucket for 1d is 1h");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(v.inputs.len(), 2, "amount and channel");
}

#[test]
fn the_hash_ignores_formatting_and_comments() {
    let a = parse(VIEW).unwrap();
    let b = parse(&format!("# a comment\n{}", VIEW.replace(" = ", "="))).unwrap();
    assert_eq!(a.hash(), b.hash());
    let c = parse(&VIEW.replace("window = \"1h\"", "window = \"2h\"")).unwrap();
    assert_ne!(a.hash(), c.hash());
}

#[test]
fn mistakes_name_the_file_and_the_feature() {
    for (body, needle) in [
        (
            "[[features]]\nname = \"x\"\ncolumn = \"nope\"",
            "no column 'nope'",
        ),
        (
            "[[features]]\nname = \"x\"\ncolumn = \"channel\"",
            "give `encoding",
        ),
        (
            "[[features]]\nname = \"x\"\naggregate = \"mean\"\nwindow = \"1h\"",
            "needs a `column`",
        ),
        (
            "[[features]]\nname = \"x\"\naggregate = \"sum\"\ncolumn = \"channel\"\nwindow = \"1h\"",
            "needs a numeric column",
        ),
        (
            "[[features]]\nname = \"x\"\naggregate = \"count\"\nwindow = \"90m\"\nbucket = \"1h\"",
            "multiple of its bucket",
        ),
        (
            "[[features]]\nname = \"x\"\naggregate = \"count\"\nwindow = \"30d\"\nbucket = \"1m\"",
            "at most 1000",
        ),
        (
            "[[features]]\nname = \"x\"\nratio = [\"a\", \"b\"]",
            "not a numeric feature defined earlier",
        ),
        (
            "[[features]]\nname = \"x\"\naggregate = \"median\"\nwindow = \"1h\"",
            "is not one of",
        ),
        (
            "[[features]]\nname = \"x\"\ncolumn = \"ts\"",
            "is a timestamp",
        ),
        (
            "entity = \"\"\n[[features]]\nname = \"x\"\naggregate = \"count\"\nwindow = \"1h\"",
            "needs an entity and an event time",
        ),
        (
            "label = \"fraud\"\n[labels]\ndataset = \"tx\"\ncolumn = \"fraud\"\n[[features]]\nname = \"a\"\ncolumn = \"amount\"",
            "not both",
        ),
        (
            "[[features]]\nname = \"a\"\ncolumn = \"amount\"\nsurprise = 1",
            "unknown field",
        ),
        (
            "[[features]]\nname = \"a\"\ncolumn = \"amount\"\nclip = [5.0, 1.0]",
            "not a range",
        ),
        (
            "[[features]]\nname = \"a\"\ncolumn = \"amount\"\noutput = false",
            "no output feature",
        ),
    ] {
        let err = parse(body).expect_err(body);
        assert!(err.starts_with("v.toml: "), "{err}");
        assert!(err.contains(needle), "{body}\n=> {err}");
    }
}

#[test]
fn request_fields_of_a_labels_dataset_are_checked_against_its_contract() {
    // Hourly weather per airport; departures are the label events and carry their own
    // fields (carrier, distance), which the weather dataset does not have.
    let weather = r#"
dataset = "weather"
entity_key = "origin"
event_time = "time_hour"
[[columns]]
name = "origin"
type = "string"
[[columns]]
name = "time_hour"
type = "timestamp"
[[columns]]
name = "wind_speed"
type = "float"
"#;
    let departures = r#"
dataset = "departures"
event_time = "sched_dep"
[[columns]]
name = "origin"
type = "string"
[[columns]]
name = "sched_dep"
type = "timestamp"
[[columns]]
name = "distance"
type = "float"
[[columns]]
name = "carrier"
type = "string"
[[columns]]
name = "delayed"
type = "boolean"
"#;
    let contracts = BTreeMap::from([
        (
            "weather".to_string(),
            Contract::from_toml(weather, "weather.toml").unwrap(),
        ),
        (
            "departures".to_string(),
            Contract::from_toml(departures, "departures.toml").unwrap(),
        ),
    ]);
    let view = |features: &str| {
        FeatureView::from_toml(
            &format!(
                "view = \"w\"\ndataset = \"weather\"\n[labels]\ndataset = \"departures\"\ncolumn = \"delayed\"\n{features}"
            ),
            "w.toml",
            &contracts,
        )
        .map_err(|e| e.to_string())
    };
    let v = view(
        "[[features]]\nname = \"wind_3h\"\naggregate = \"mean\"\ncolumn = \"wind_speed\"\nwindow = \"3h\"\n\
         [[features]]\nname = \"distance\"\ncolumn = \"distance\"\n\
         [[features]]\nname = \"carrier\"\ncolumn = \"carrier\"\nencoding = \"one-hot\"",
    )
    .unwrap();
    let inputs: Vec<&str> = v.inputs.keys().map(String::as_str).collect();
    assert_eq!(inputs, ["carrier", "distance"]);
    assert_eq!(v.datasets(), ["weather", "departures"]);
    // A weather column is not a field of the departures a request stands for.
    let err = view("[[features]]\nname = \"wind\"\ncolumn = \"wind_speed\"").unwrap_err();
    assert!(
        err.contains("dataset 'departures' has no column 'wind_speed'") && err.contains("labels"),
        "{err}"
    );
    // Aggregates still read the view's own dataset.
    let err = view(
        "[[features]]\nname = \"d\"\naggregate = \"sum\"\ncolumn = \"distance\"\nwindow = \"1h\"",
    )
    .unwrap_err();
    assert!(
        err.contains("dataset 'weather' has no column 'distance'"),
        "{err}"
    );
}

fn spec() -> ViewSpec {
    let view = parse(VIEW).unwrap();
    ViewSpec::new(
        view,
        "v1".into(),
        BTreeMap::from([
            (
                "channel".to_string(),
                vec!["pos".to_string(), "web".to_string()],
            ),
            (
                "channel_ix".to_string(),
                vec!["pos".to_string(), "web".to_string()],
            ),
        ]),
    )
}

fn request(v: Value) -> Map<String, Value> {
    serde_json::from_value(v).unwrap()
}

const H: i64 = 3_600_000_000;

#[test]
fn the_evaluator_assembles_encodings_windows_and_ratios() {
    let spec = spec();
    assert_eq!(
        spec.output_columns(),
        vec![
            "amount",
            "channel__pos",
            "channel__web",
            "channel__unknown",
            "channel_ix",
            "n_1h",
            "mean_1d",
            "since",
            "ratio",
            "hour"
        ]
    );
    let mut state = EntityState::new(&spec.plan);
    let t0 = 100 * 24 * H; // a midnight
    // Slots: events per minute (n_1h), amount per hour (mean_1d).
    for (t, amount) in [(t0 + H / 2, 10.0), (t0 + H, 30.0)] {
        state.add(
            &spec.plan,
            t,
            &[SlotValue::Missing, SlotValue::Number(amount)],
        );
    }
    let at = t0 + H + 60_000_000; // one minute after the last event
    let r = request(json!({"card": "c1", "amount": 250.0, "channel": "web"}));
    let out = spec.evaluate(&r, Some(&state), at).unwrap();
    let v = &out.values;
    assert_eq!(v[0], Some(100f64.ln_1p()), "clipped to 100 then log1p");
    assert_eq!(&v[1..4], &[Some(0.0), Some(1.0), Some(0.0)]);
    assert_eq!(v[4], Some(1.0));
    assert_eq!(
        v[5],
        Some(2.0),
        "00:30 and 01:00 are both inside the hour before 01:01"
    );
    assert_eq!(v[6], Some(20.0));
    assert_eq!(v[7], Some(60.0));
    assert_eq!(v[8], Some(250.0 / 20.0), "the ratio reads the raw amount");
    assert_eq!(v[9], Some(1.0));
    assert!(out.missing.is_empty() && !out.expired && !out.unknown_entity);

    // Unknown categories and missing fields.
    let r = request(json!({"card": "c1", "channel": "atm"}));
    let out = spec.evaluate(&r, Some(&state), at).unwrap();
    assert_eq!(
        &out.values[1..5],
        &[Some(0.0), Some(0.0), Some(1.0), Some(2.0)]
    );
    assert_eq!(out.missing, vec!["amount", "ratio"]);

    // Past the TTL the state reads as empty.
    let out = spec.evaluate(&r, Some(&state), at + 2 * 24 * H).unwrap();
    assert!(out.expired);
    assert_eq!(out.values[5], Some(0.0));
    assert_eq!(out.values[6], None);
    assert_eq!(out.values[7], None);

    // No record at all.
    let out = spec.evaluate(&r, None, at).unwrap();
    assert!(out.unknown_entity && !out.expired);

    // Wrong types are errors naming the field, never panics.
    let bad = request(json!({"card": "c1", "amount": "lots"}));
    let err = spec
        .evaluate(&bad, Some(&state), at)
        .unwrap_err()
        .to_string();
    assert!(err.contains("'amount'"), "{err}");
    let err = spec
        .entity_key(&request(json!({"card": [1]})))
        .unwrap_err()
        .to_string();
    assert!(err.contains("'card'"), "{err}");
    let err = spec
        .event_time_us(&request(json!({"ts": "yesterday"})))
        .unwrap_err()
        .to_string();
    assert!(err.contains("RFC 3339"), "{err}");
}

#[test]
fn records_and_snapshots_round_trip() {
    let spec = spec();
    let mut state = EntityState::new(&spec.plan);
    state.add(
        &spec.plan,
        5 * H,
        &[SlotValue::Missing, SlotValue::Number(1.5)],
    );
    let record = OnlineRecord {
        view: "v".into(),
        version: "v1".into(),
        entity: "c1".into(),
        materialized_at_us: 6 * H,
        state,
    };
    let bytes = record.encode().unwrap();
    assert_eq!(OnlineRecord::decode(&bytes).unwrap(), record);
    assert!(OnlineRecord::decode(&[]).is_err());
    assert!(OnlineRecord::decode(&[9, 1, 2]).is_err());
    let snap = SnapshotStore::from_records([record.clone()]);
    let back = SnapshotStore::decode(&snap.encode().unwrap()).unwrap();
    assert_eq!(back.get("v", "c1"), Some(&record));
    assert!(SnapshotStore::decode(b"garbage").is_err());
}

#[test]
fn hashes_are_stable_across_platforms_and_types() {
    // FNV-1a of the tag byte 2 then "a": fixed forever (online records store these hashes).
    assert_eq!(hash_text("a"), stable_hash(2, b"a"));
    assert_eq!(hash_text("a"), 0x0839_3307_b4f0_fe2c);
    assert_eq!(hash_number(3.0), hash_number(3.0_f64));
    assert_eq!(hash_number(0.0), hash_number(-0.0));
    assert_ne!(hash_text("1"), hash_number(1.0));
}

#[test]
fn buckets_outside_every_window_are_pruned() {
    let spec = spec();
    let mut state = EntityState::new(&spec.plan);
    for i in 0..500 {
        state.add(
            &spec.plan,
            i * 60_000_000,
            &[SlotValue::Missing, SlotValue::Number(1.0)],
        );
    }
    // 1h of 1-minute buckets and 1d of 1-hour buckets.
    assert_eq!(state.slots[0].len(), 60);
    assert!(state.slots[1].len() <= 24);
}

#[test]
fn latest_value_reads_the_newest_earlier_event_within_the_ttl_or_window() {
    let view = parse(
        "ttl = \"1d\"\nlabel = \"fraud\"\n\
         [[features]]\nname = \"last\"\naggregate = \"last\"\ncolumn = \"amount\"\n\
         [[features]]\nname = \"last_1h\"\naggregate = \"latest\"\ncolumn = \"amount\"\nwindow = \"1h\"\n\
         [[features]]\nname = \"sum_1h\"\naggregate = \"sum\"\ncolumn = \"amount\"\nwindow = \"1h\"",
    )
    .unwrap();
    let spec = ViewSpec::new(view, "v1".into(), BTreeMap::new());
    let plan = &spec.plan;
    // One latest-value slot without a window, one with 1-minute buckets, one stats slot.
    assert_eq!(plan.slots.len(), 3);
    assert!(plan.slots[0].last && plan.slots[1].last && !plan.slots[2].last);
    let min = 60_000_000i64;
    let t0 = 1_700_000_000_000_000i64;
    let mut state = EntityState::new(plan);
    let amount = |x: Option<f64>| x.map_or(SlotValue::Missing, SlotValue::Number);
    // Evaluation is always later than every event added (strictly before, as offline).
    for (t, x) in [(0, Some(5.0)), (10, Some(7.0)), (10, Some(9.0))] {
        let v = amount(x);
        state.add(plan, t0 + t * min, &[v, v, v]);
    }
    let mut out = Vec::new();
    // At 20 min: the newest event is the later of the two at 10 min.
    state.evaluate(plan, t0 + 20 * min, &mut out);
    assert_eq!(out, vec![Some(9.0), Some(9.0), Some(21.0)]);
    // An event at 30 min without an amount: at 40 min the latest value is null, not older.
    state.add(plan, t0 + 30 * min, &[SlotValue::Missing; 3]);
    state.evaluate(plan, t0 + 40 * min, &mut out);
    assert_eq!(out, vec![None, None, Some(21.0)]);
    // Two hours later the 1h window is empty; the unbounded one still reads the newest.
    let mut later = state.clone();
    later.add(plan, t0 + 90 * min, &[amount(Some(4.0)); 3]);
    later.evaluate(plan, t0 + 200 * min, &mut out);
    assert_eq!(out, vec![Some(4.0), None, Some(0.0)]);
    // Past the TTL everything reads as empty.
    later.evaluate(plan, t0 + 90 * min + 86_400_000_001, &mut out);
    assert_eq!(out[..2], [None, None]);
    // The online record keeps its format: it round-trips through the same encoding.
    let record = OnlineRecord {
        view: "v".into(),
        version: "v1".into(),
        entity: "c1".into(),
        materialized_at_us: 0,
        state: later.clone(),
    };
    let back = OnlineRecord::decode(&record.encode().unwrap()).unwrap();
    assert_eq!(back.state, later);
    // A string column has no latest numeric value.
    let err = parse("[[features]]\nname = \"c\"\naggregate = \"last\"\ncolumn = \"channel\"")
        .unwrap_err();
    assert!(
        err.contains("last needs a numeric or boolean column"),
        "{err}"
    );
}

#[test]
fn a_feature_set_joins_views_by_their_own_entities_in_order() {
    use crate::FeatureSet;
    let card = spec();
    let mut view = parse(
        "entity = \"channel\"\n[[features]]\nname = \"per_channel_1h\"\naggregate = \"count\"\nwindow = \"1h\"\n",
    )
    .unwrap();
    view.name = "w".into();
    let channel = ViewSpec::new(view, "w1".into(), BTreeMap::new());
    let set = FeatureSet {
        views: vec![card.clone(), channel.clone()],
    };
    set.check().unwrap();
    assert_eq!(
        FeatureSet::from_json(&serde_json::to_vec(&set).unwrap()).unwrap(),
        set
    );
    // One view's spec.json reads as a set of one.
    assert_eq!(
        FeatureSet::from_json(&serde_json::to_vec(&card).unwrap())
            .unwrap()
            .views,
        vec![card.clone()]
    );
    let mut columns = card.output_columns();
    columns.push("per_channel_1h".into());
    assert_eq!(set.output_columns(), columns);
    // The same view twice produces every column twice: refused.
    let mut twice = card.clone();
    twice.view.name = "v2".into();
    let err = FeatureSet {
        views: vec![card.clone(), twice],
    }
    .check()
    .unwrap_err();
    assert!(err.contains("both produce the column"), "{err}");
    assert!(FeatureSet::from_json(br#"{"views": []}"#).is_err());

    // Each view reads its own entity's record.
    let mut web = EntityState::new(&channel.plan);
    web.add(&channel.plan, 5 * H, &[SlotValue::Missing]);
    web.add(&channel.plan, 5 * H + H / 2, &[SlotValue::Missing]);
    let record = |view: &str, entity: &str, state: EntityState| OnlineRecord {
        view: view.into(),
        version: "x".into(),
        entity: entity.into(),
        materialized_at_us: 5 * H,
        state,
    };
    let req = request(json!({"card": "c1", "channel": "web", "amount": 10.0}));
    let store = SnapshotStore::from_records([record("w", "web", web.clone())]);
    let fv = ready_now(set.online_features(&store, &req, 6 * H)).unwrap();
    assert_eq!(fv.entity, "c1", "the first entity key names the request");
    assert_eq!(fv.assembled.values.last(), Some(&Some(1.0)));
    assert!(fv.assembled.unknown_entity, "no record of card c1");
    assert_eq!(set.routing_key(&req).as_deref(), Some("c1"));
    let mut c1 = EntityState::new(&card.plan);
    c1.add(
        &card.plan,
        5 * H,
        &[SlotValue::Missing, SlotValue::Number(1.5)],
    );
    let store = SnapshotStore::from_records([record("w", "web", web), record("v", "c1", c1)]);
    let fv = ready_now(set.online_features(&store, &req, 6 * H)).unwrap();
    assert!(!fv.assembled.unknown_entity);
    assert_eq!(fv.record_version.as_deref(), Some("x+x"));
    // A request without the second view's entity key names the field.
    let req = request(json!({"card": "c1", "amount": 10.0}));
    let err = ready_now(set.online_features(&store, &req, 6 * H)).unwrap_err();
    assert!(err.to_string().contains("channel"), "{err}");
}

/// Polls a future that never waits (the snapshot store answers at once).
fn ready_now<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("the snapshot store never waits"),
    }
}
