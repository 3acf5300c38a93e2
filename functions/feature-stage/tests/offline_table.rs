//! The offline table's layout, splits and encodings, for plain tabular data and for labels
//! from a separate dataset.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::collections::BTreeMap;

use contracts::Contract;
use feature_stage::build_table;
use feature_stage::offline::{SPLIT, TEST, TRAIN, VALIDATION};
use feature_stage::polars::prelude::*;
use features::FeatureView;

fn view(contract: &str, body: &str) -> FeatureView {
    let c = Contract::from_toml(contract, "c.toml").unwrap();
    let contracts = BTreeMap::from([(c.dataset.clone(), c)]);
    FeatureView::from_toml(body, "v.toml", &contracts).unwrap()
}

const WINE: &str = r#"
dataset = "wine"
[[columns]]
name = "alcohol"
type = "float"
[[columns]]
name = "colour"
type = "string"
[[columns]]
name = "quality"
type = "integer"
"#;

#[test]
fn plain_tabular_data_gets_a_stratified_seeded_split_and_train_only_vocabularies() {
    let v = view(
        WINE,
        r#"
view = "wine"
dataset = "wine"
label = "quality"
[split]
validation = 0.2
test = 0.2
seed = 3
[[features]]
name = "alcohol"
column = "alcohol"
log1p = true
[[features]]
name = "colour"
column = "colour"
encoding = "one-hot"
min_count = 2
"#,
    );
    assert!(v.entity.is_empty() && v.event_time.is_none());
    let n = 1000;
    let quality: Vec<i64> = (0..n).map(|i| if i % 10 == 0 { 1 } else { 0 }).collect();
    let colour: Vec<Option<&str>> = (0..n)
        .map(|i| match i % 50 {
            0 => None,
            1 => Some("rare"), // 20 rows
            _ if i % 2 == 0 => Some("red"),
            _ => Some("white"),
        })
        .collect();
    let df = DataFrame::new(
        n,
        vec![
            Column::new(
                "alcohol".into(),
                (0..n).map(|i| i as f64 / 100.0).collect::<Vec<_>>(),
            ),
            Column::new("colour".into(), colour),
            Column::new("quality".into(), quality),
        ],
    )
    .unwrap();
    let out = build_table(&v, &df, None, None).unwrap();
    assert_eq!(out.table.height(), n);
    assert!(out.states.is_empty());
    let split = out.table.column(SPLIT).unwrap().str().unwrap().clone();
    let label = out.table.column("quality").unwrap().i64().unwrap().clone();
    let count = |s: &str, q: i64| {
        split
            .iter()
            .zip(label.iter())
            .filter(|(a, b)| *a == Some(s) && *b == Some(q))
            .count()
    };
    // Stratified: each label keeps its share in each split.
    assert_eq!(count(TEST, 1), 20);
    assert_eq!(count(VALIDATION, 1), 20);
    assert_eq!(count(TRAIN, 1), 60);
    assert_eq!(count(TEST, 0) + count(VALIDATION, 0) + count(TRAIN, 0), 900);
    assert_eq!(count(TEST, 0), 180);
    // Same seed, same split.
    let again = build_table(&v, &df, None, None).unwrap();
    assert!(
        again
            .table
            .column(SPLIT)
            .unwrap()
            .equals(out.table.column(SPLIT).unwrap())
    );

    // "rare" is seen often enough in training; nulls never enter the vocabulary.
    assert_eq!(out.vocabularies["colour"], vec!["red", "white", "rare"]);
    assert_eq!(
        out.columns,
        vec![
            "alcohol",
            "colour__red",
            "colour__white",
            "colour__rare",
            "colour__unknown"
        ]
    );
    // Nulls are unknown; every row has exactly one hot column.
    let hot: Vec<Float64Chunked> = out
        .columns
        .iter()
        .filter(|c| c.starts_with("colour__"))
        .map(|c| out.table.column(c).unwrap().f64().unwrap().clone())
        .collect();
    for i in 0..n {
        let sum: f64 = hot.iter().map(|c| c.get(i).unwrap()).sum();
        assert_eq!(sum, 1.0, "row {i}");
    }
    let alcohol = out.table.column("alcohol").unwrap().f64().unwrap().clone();
    assert_eq!(alcohol.get(500), Some(5.0f64.ln_1p()));
}

const TX: &str = r#"
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
"#;

const CHARGEBACKS: &str = r#"
dataset = "chargebacks"
event_time = "reported"
[[columns]]
name = "card_number"
type = "string"
[[columns]]
name = "reported"
type = "timestamp"
[[columns]]
name = "amount"
type = "float"
[[columns]]
name = "fraud"
type = "boolean"
"#;

fn datetime(name: &str, us: Vec<i64>) -> Column {
    Column::new(name.into(), us)
        .cast(&DataType::Datetime(
            TimeUnit::Microseconds,
            Some(TimeZone::UTC),
        ))
        .unwrap()
}

#[test]
fn a_separate_labels_dataset_is_joined_as_of_each_label_time() {
    let tx = Contract::from_toml(TX, "tx.toml").unwrap();
    let cb = Contract::from_toml(CHARGEBACKS, "cb.toml").unwrap();
    let contracts = BTreeMap::from([("tx".to_string(), tx), ("chargebacks".to_string(), cb)]);
    let v = FeatureView::from_toml(
        r#"
view = "v"
dataset = "tx"
[labels]
dataset = "chargebacks"
entity = "card_number"
column = "fraud"
[[features]]
name = "amount"
column = "amount"
[[features]]
name = "total_1d"
aggregate = "sum"
column = "amount"
window = "1d"
[[features]]
name = "n_1d"
aggregate = "count"
window = "1d"
"#,
        "v.toml",
        &contracts,
    )
    .unwrap();
    assert_eq!(v.datasets(), vec!["tx", "chargebacks"]);
    let h = 3_600_000_000i64;
    let events = DataFrame::new(
        4,
        vec![
            Column::new("card".into(), vec!["a", "a", "a", "b"]),
            datetime("ts", vec![h, 2 * h, 3 * h, h]),
            Column::new("amount".into(), vec![1.0, 2.0, 4.0, 8.0]),
        ],
    )
    .unwrap();
    // Label times: between a's events, exactly at one, after all, and an unseen card.
    let labels = DataFrame::new(
        4,
        vec![
            Column::new("card_number".into(), vec!["a", "a", "a", "zz"]),
            datetime("reported", vec![2 * h + 1, 3 * h, 10 * h, 5 * h]),
            Column::new("amount".into(), vec![100.0, 200.0, 300.0, 400.0]),
            Column::new("fraud".into(), vec![true, false, true, false]),
        ],
    )
    .unwrap();
    let out = build_table(&v, &events, Some(&labels), None).unwrap();
    let t = &out.table;
    assert_eq!(t.height(), 4);
    // Output uses the view's entity name and the labels' time column, sorted by time.
    let cards: Vec<Option<&str>> = t.column("card").unwrap().str().unwrap().iter().collect();
    assert_eq!(cards, vec![Some("a"), Some("a"), Some("zz"), Some("a")]);
    let total: Vec<Option<f64>> = t
        .column("total_1d")
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .collect();
    let n: Vec<Option<f64>> = t.column("n_1d").unwrap().f64().unwrap().iter().collect();
    // 02:00:00.000001 sees 01:00 and 02:00; 03:00 sees the same (not itself); 10:00 sees all
    // three; the unseen card sees nothing.
    assert_eq!(total, vec![Some(3.0), Some(3.0), Some(0.0), Some(7.0)]);
    assert_eq!(n, vec![Some(2.0), Some(2.0), Some(0.0), Some(3.0)]);
    // Request-time fields come from the label rows.
    let amount: Vec<Option<f64>> = t.column("amount").unwrap().f64().unwrap().iter().collect();
    assert_eq!(
        amount,
        vec![Some(100.0), Some(200.0), Some(400.0), Some(300.0)]
    );
    assert!(t.column("fraud").is_ok());
    // Online records come from the events, one per card.
    assert_eq!(out.states.len(), 2);
}

#[test]
fn missing_columns_are_clear_errors() {
    let v = view(
        TX,
        r#"
view = "v"
dataset = "tx"
[[features]]
name = "n"
aggregate = "count"
window = "1h"
"#,
    );
    let df = DataFrame::new(1, vec![Column::new("card".into(), vec!["a"])]).unwrap();
    let err = build_table(&v, &df, None, None).unwrap_err().to_string();
    assert!(err.contains("'ts'"), "{err}");
}
