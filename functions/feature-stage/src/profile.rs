//! The reference profile drift checks compare against: computed from the training split, one
//! long-format Parquet object (`feature`, `kind`, `key`, `value`) addressed by its sha256.
//!
//! Per model input column: `count`, `null_rate`, the exact reference values or a seeded sample
//! of at most [`MAX_VALUES`] (`value` rows, so drift statistics can be exact), deciles
//! (`quantile`, key = probability) and a histogram over those edges (`hist`, key = bin).
//! Per encoded source column: category frequencies (`category`, key = category, `__null__`
//! for nulls).

use std::collections::BTreeMap;

use polars::prelude::*;
use rand::SeedableRng;
use rand::seq::SliceRandom;

use crate::FeatureStageError;
use crate::offline::{SPLIT, TRAIN};

pub const MAX_VALUES: usize = 100_000;
const QUANTILES: usize = 10;

#[derive(Default)]
struct Rows {
    feature: Vec<String>,
    kind: Vec<&'static str>,
    key: Vec<Option<String>>,
    value: Vec<f64>,
}

impl Rows {
    fn push(&mut self, feature: &str, kind: &'static str, key: Option<String>, value: f64) {
        self.feature.push(feature.to_string());
        self.kind.push(kind);
        self.key.push(key);
        self.value.push(value);
    }
}

/// Builds the profile of `columns` (and the encoded sources of `view`) over the training rows
/// of `table`, which must hold those columns and `__split`; `categories` are the training
/// rows' category counts of each encoded feature's source column.
pub fn build_profile(
    table: &DataFrame,
    columns: &[String],
    categories: &BTreeMap<String, BTreeMap<String, u64>>,
    seed: u64,
) -> Result<DataFrame, FeatureStageError> {
    let train = table.column(SPLIT)?.str()?.equal(TRAIN);
    let train_df = table.filter(&train)?;
    let mut rows = Rows::default();
    for name in columns {
        let c = train_df.column(name)?.cast(&DataType::Float64)?;
        let values = c.f64()?;
        let total = values.len();
        let mut present: Vec<f64> = values.iter().flatten().filter(|x| x.is_finite()).collect();
        rows.push(name, "count", None, total as f64);
        rows.push(
            name,
            "null_rate",
            None,
            if total == 0 {
                0.0
            } else {
                (total - present.len()) as f64 / total as f64
            },
        );
        present.sort_by(f64::total_cmp);
        if !present.is_empty() {
            let edges: Vec<f64> = (0..=QUANTILES)
                .map(|i| {
                    let p = i as f64 / QUANTILES as f64;
                    let pos = p * (present.len() - 1) as f64;
                    let lo = pos.floor() as usize;
                    let hi = pos.ceil() as usize;
                    present[lo] + (present[hi] - present[lo]) * (pos - lo as f64)
                })
                .collect();
            for (i, e) in edges.iter().enumerate() {
                rows.push(
                    name,
                    "quantile",
                    Some(format!("{:.1}", i as f64 / QUANTILES as f64)),
                    *e,
                );
            }
            let mut hist = [0u64; QUANTILES];
            for x in &present {
                // Bin i holds edges[i] <= x < edges[i+1]; the last bin is closed.
                let bin = edges[1..QUANTILES].partition_point(|e| e <= x);
                hist[bin] += 1;
            }
            for (i, n) in hist.iter().enumerate() {
                rows.push(name, "hist", Some(i.to_string()), *n as f64);
            }
        }
        let sample = if present.len() > MAX_VALUES {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            present.shuffle(&mut rng);
            present.truncate(MAX_VALUES);
            present.sort_by(f64::total_cmp);
            present
        } else {
            present
        };
        for x in sample {
            rows.push(name, "value", None, x);
        }
    }
    for (feature, counts) in categories {
        for (k, n) in counts {
            rows.push(feature, "category", Some(k.clone()), *n as f64);
        }
    }
    let height = rows.feature.len();
    Ok(DataFrame::new(
        height,
        vec![
            Column::new("feature".into(), rows.feature),
            Column::new("kind".into(), rows.kind),
            Column::new("key".into(), rows.key),
            Column::new("value".into(), rows.value),
        ],
    )?)
}
