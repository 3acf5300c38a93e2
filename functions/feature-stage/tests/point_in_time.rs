//! Point-in-time correctness of the offline table, on random event streams:
//! - every state feature equals a brute-force reading of the definition (scan all earlier
//!   events of the entity, keep those strictly before the row's time and inside the window's
//!   buckets, honour the TTL);
//! - no row depends on an event at or after its own timestamp: rewriting every such event
//!   (and adding new ones at exactly that time) leaves the row's state features unchanged.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::collections::{BTreeMap, BTreeSet, HashMap};

use contracts::Contract;
use feature_stage::build_table;
use feature_stage::polars::prelude::*;
use features::FeatureView;
use proptest::prelude::*;

const CONTRACT: &str = r#"
dataset = "ev"
entity_key = "entity"
event_time = "ts"
[[columns]]
name = "entity"
type = "string"
[[columns]]
name = "ts"
type = "timestamp"
[[columns]]
name = "amount"
type = "float"
[[columns]]
name = "cat"
type = "string"
[[columns]]
name = "label"
type = "boolean"
"#;

const VIEW: &str = r#"
view = "v"
dataset = "ev"
ttl = "6h"
label = "label"
[[features]]
name = "amount"
column = "amount"
[[features]]
name = "n_1h"
aggregate = "count"
window = "1h"
[[features]]
name = "n_amount_2h"
aggregate = "count"
column = "amount"
window = "2h"
bucket = "10m"
[[features]]
name = "sum_2h"
aggregate = "sum"
column = "amount"
window = "2h"
bucket = "10m"
[[features]]
name = "mean_1d"
aggregate = "mean"
column = "amount"
window = "1d"
[[features]]
name = "std_1d"
aggregate = "std"
column = "amount"
window = "1d"
[[features]]
name = "min_3h"
aggregate = "min"
column = "amount"
window = "3h"
bucket = "30m"
[[features]]
name = "max_3h"
aggregate = "max"
column = "amount"
window = "3h"
bucket = "30m"
[[features]]
name = "cats_1d"
aggregate = "distinct_count"
column = "cat"
window = "1d"
bucket = "2h"
[[features]]
name = "since"
aggregate = "time_since_previous"
[[features]]
name = "vs_mean"
ratio = ["amount", "mean_1d"]
[[features]]
name = "last_amount"
aggregate = "last"
column = "amount"
[[features]]
name = "last_amount_2h"
aggregate = "last"
column = "amount"
window = "2h"
bucket = "10m"
"#;

const STATE: [&str; 12] = [
    "n_1h",
    "n_amount_2h",
    "sum_2h",
    "mean_1d",
    "std_1d",
    "min_3h",
    "max_3h",
    "cats_1d",
    "since",
    "vs_mean",
    "last_amount",
    "last_amount_2h",
];

fn view() -> FeatureView {
    let contract = Contract::from_toml(CONTRACT, "ev.toml").unwrap();
    let contracts = BTreeMap::from([("ev".to_string(), contract)]);
    FeatureView::from_toml(VIEW, "v.toml", &contracts).unwrap()
}

#[derive(Debug, Clone)]
struct Event {
    entity: String,
    ts_us: i64,
    amount: Option<f64>,
    cat: Option<String>,
}

fn frame(events: &[Event]) -> DataFrame {
    let n = events.len();
    let ts: Vec<i64> = events.iter().map(|e| e.ts_us).collect();
    let ts = Column::new("ts".into(), ts)
        .cast(&DataType::Datetime(
            TimeUnit::Microseconds,
            Some(TimeZone::UTC),
        ))
        .unwrap();
    DataFrame::new(
        n,
        vec![
            Column::new(
                "entity".into(),
                events.iter().map(|e| e.entity.clone()).collect::<Vec<_>>(),
            ),
            ts,
            Column::new(
                "amount".into(),
                events.iter().map(|e| e.amount).collect::<Vec<_>>(),
            ),
            Column::new(
                "cat".into(),
                events.iter().map(|e| e.cat.clone()).collect::<Vec<_>>(),
            ),
            Column::new("label".into(), vec![false; n]),
        ],
    )
    .unwrap()
}

type Key = (String, i64, Option<u64>);

fn key(e: &Event) -> Key {
    (e.entity.clone(), e.ts_us, e.amount.map(f64::to_bits))
}

/// State features per (entity, time, own amount) from the offline table (rows that tie on
/// all three must agree).
fn offline(events: &[Event]) -> HashMap<Key, Vec<Option<f64>>> {
    let out = build_table(&view(), &frame(events), None, None).unwrap();
    let t = &out.table;
    let entities = t.column("entity").unwrap().str().unwrap().clone();
    let ts = t
        .column("ts")
        .unwrap()
        .cast(&DataType::Int64)
        .unwrap()
        .i64()
        .unwrap()
        .clone();
    let amounts = t.column("amount").unwrap().f64().unwrap().clone();
    let cols: Vec<Float64Chunked> = STATE
        .iter()
        .map(|c| t.column(c).unwrap().f64().unwrap().clone())
        .collect();
    let mut map = HashMap::new();
    for i in 0..t.height() {
        let key = (
            entities.get(i).unwrap().to_string(),
            ts.get(i).unwrap(),
            amounts.get(i).map(f64::to_bits),
        );
        let row: Vec<Option<f64>> = cols.iter().map(|c| c.get(i)).collect();
        if let Some(prev) = map.insert(key.clone(), row.clone()) {
            assert_eq!(prev, row, "tied rows of {key:?} disagree");
        }
    }
    map
}

const MIN: i64 = 60_000_000;

/// The definition read literally, one row at a time.
#[allow(clippy::int_plus_one)] // `>= b - n + 1` is how the definition reads
fn brute_force(events: &[Event], entity: &str, t: i64, amount: Option<f64>) -> Vec<Option<f64>> {
    let prior: Vec<&Event> = events
        .iter()
        .filter(|e| e.entity == entity && e.ts_us < t)
        .collect();
    let last = prior.iter().map(|e| e.ts_us).max();
    let expired = match last {
        None => true,
        Some(l) => t - l > 6 * 60 * MIN,
    };
    let window = |bucket_min: i64, n: i64| -> Vec<&Event> {
        if expired {
            return Vec::new();
        }
        let w = bucket_min * MIN;
        let b = t.div_euclid(w);
        prior
            .iter()
            .filter(|e| e.ts_us.div_euclid(w) >= b - n + 1)
            .copied()
            .collect()
    };
    let amounts = |es: &[&Event]| -> Vec<f64> { es.iter().filter_map(|e| e.amount).collect() };
    let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    let std = |v: &[f64]| {
        (v.len() > 1).then(|| {
            let m = v.iter().sum::<f64>() / v.len() as f64;
            (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
        })
    };
    let w1h = window(1, 60);
    let w2h = amounts(&window(10, 12));
    let w1d = amounts(&window(60, 24));
    let w3h = amounts(&window(30, 6));
    let cats: BTreeSet<&str> = window(120, 12)
        .iter()
        .filter_map(|e| e.cat.as_deref())
        .collect();
    let mean_1d = mean(&w1d);
    // The newest event (ties: the later one in input order, as events are read) and its
    // value, null when that event's amount is null.
    let latest =
        |es: &[&Event]| -> Option<f64> { es.iter().max_by_key(|e| e.ts_us).and_then(|e| e.amount) };
    vec![
        Some(w1h.len() as f64),
        Some(w2h.len() as f64),
        Some(w2h.iter().sum::<f64>()),
        mean_1d,
        std(&w1d),
        w3h.iter().copied().reduce(f64::min),
        w3h.iter().copied().reduce(f64::max),
        Some(cats.len() as f64),
        if expired {
            None
        } else {
            last.map(|l| (t - l) as f64 / 1e6)
        },
        match (amount, mean_1d) {
            (Some(a), Some(m)) if m != 0.0 => Some(a / m),
            _ => None,
        },
        if expired { None } else { latest(&prior) },
        latest(&window(10, 12)),
    ]
}

fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(b.abs()) + 1e-12,
        _ => false,
    }
}

fn events_strategy() -> impl Strategy<Value = Vec<Event>> {
    prop::collection::vec(
        (
            0..3usize,
            // Coarse times make ties and bucket-boundary cases common.
            0..(48 * 60i64),
            prop::option::weighted(0.85, -50.0..500.0f64),
            prop::option::weighted(0.9, 0..4u8),
            0..60i64,
        ),
        1..60,
    )
    .prop_map(|raw| {
        raw.into_iter()
            .map(|(e, minute, amount, cat, second)| Event {
                entity: format!("e{e}"),
                ts_us: 1_700_000_000_000_000 + minute * MIN + (second % 2) * 30_000_000,
                amount: amount.map(|a| (a * 100.0).round() / 100.0),
                cat: cat.map(|c| format!("c{c}")),
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn offline_rows_equal_the_brute_force_reading(events in events_strategy()) {
        let table = offline(&events);
        for e in &events {
            let got = &table[&key(e)];
            let want = brute_force(&events, &e.entity, e.ts_us, e.amount);
            for (i, name) in STATE.iter().enumerate() {
                prop_assert!(
                    close(got[i], want[i]),
                    "{name} at {:?}: offline {:?}, brute force {:?}", (e.entity.clone(), e.ts_us), got[i], want[i]
                );
            }
        }
    }

    #[test]
    fn rows_never_see_events_at_or_after_their_time(
        events in events_strategy(),
        cut in 0..(48 * 60i64),
        noise in -1000.0..1000.0f64,
    ) {
        let cutoff = 1_700_000_000_000_000 + cut * MIN;
        let before = offline(&events);
        // Rewrite the present and future: other amounts and categories, plus new events at
        // exactly the cutoff for every entity.
        let mut changed: Vec<Event> = events
            .iter()
            .map(|e| {
                if e.ts_us >= cutoff {
                    Event {
                        amount: Some(noise),
                        cat: Some("future".into()),
                        ..e.clone()
                    }
                } else {
                    e.clone()
                }
            })
            .collect();
        for k in 0..3 {
            changed.push(Event {
                entity: format!("e{k}"),
                ts_us: cutoff,
                amount: Some(noise * 2.0),
                cat: Some("now".into()),
            });
        }
        let after = offline(&changed);
        for e in events.iter().filter(|e| e.ts_us <= cutoff) {
            let old = key(e);
            // A row at the cutoff was itself rewritten: find it under its new amount.
            let new = if e.ts_us == cutoff {
                (e.entity.clone(), e.ts_us, Some(noise.to_bits()))
            } else {
                old.clone()
            };
            // The ratio reads the row's own amount, which the rewrite changes at the cutoff.
            for (i, name) in STATE.iter().enumerate().take(9) {
                prop_assert!(
                    close(before[&old][i], after[&new][i]),
                    "{name} of the row at {old:?} changed when later events changed: {:?} -> {:?}",
                    before[&old][i], after[&new][i]
                );
            }
        }
    }
}

#[test]
fn bucket_boundaries_follow_the_definition() {
    // Window 1h of 1m buckets at t = 10:00:30 covers buckets 09:01 ... 10:00 (partial):
    // an event at 09:00:59 is out, 09:01:00 is in, 10:00:29 is in, 10:00:30 (same time) is out.
    let base = 1_700_000_000_000_000 - 1_700_000_000_000_000 % (3_600_000_000);
    let at = |m: i64, s: i64| base + m * MIN + s * 1_000_000;
    let events = vec![
        Event {
            entity: "a".into(),
            ts_us: at(0, 59),
            amount: Some(1.0),
            cat: None,
        },
        Event {
            entity: "a".into(),
            ts_us: at(1, 0),
            amount: Some(2.0),
            cat: None,
        },
        Event {
            entity: "a".into(),
            ts_us: at(60, 29),
            amount: Some(3.0),
            cat: None,
        },
        Event {
            entity: "a".into(),
            ts_us: at(60, 30),
            amount: Some(4.0),
            cat: None,
        },
    ];
    let table = offline(&events);
    let row = &table[&key(&events[3])];
    assert_eq!(row[0], Some(2.0), "n_1h");
    let want = brute_force(&events, "a", at(60, 30), Some(4.0));
    assert_eq!(row[0], want[0]);
    assert_eq!(row[8], Some(1.0), "one second since the previous event");
}
