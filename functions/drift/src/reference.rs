//! The reference side of a drift check: the serving model's reference profile (written by
//! the feature stage from the training split, named and hashed in the bundle), read once.

use std::collections::BTreeMap;
use std::io::Cursor;

use polars::prelude::*;

use crate::DriftError;

/// A numeric model input in the reference.
#[derive(Debug, Clone, PartialEq)]
pub struct NumericRef {
    /// The exact training values, or a seeded sample of them (sorted, finite).
    pub values: Vec<f64>,
    /// Training rows, nulls included.
    pub count: f64,
    pub null_rate: f64,
    /// Decile edges (11 values) of the training values: PSI's bins.
    pub deciles: Vec<f64>,
}

impl NumericRef {
    /// Population standard deviation of the values (0 when fewer than two).
    pub fn std(&self) -> f64 {
        let n = self.values.len() as f64;
        if n < 2.0 {
            return 0.0;
        }
        let mean = self.values.iter().sum::<f64>() / n;
        (self.values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt()
    }
}

/// Everything the reference profile holds, by feature.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reference {
    pub numeric: BTreeMap<String, NumericRef>,
    /// Encoded feature -> raw category -> training rows (`__null__` for nulls).
    pub categorical: BTreeMap<String, BTreeMap<String, f64>>,
}

fn col<'a>(df: &'a DataFrame, name: &str, key: &str) -> Result<&'a Column, DriftError> {
    df.column(name).map_err(|_| DriftError::Invalid {
        key: key.into(),
        message: format!("the reference profile has no `{name}` column"),
    })
}

/// Reads a long-format profile (`feature`, `kind`, `key`, `value`) from Parquet bytes.
pub fn read_profile(bytes: &[u8], key: &str) -> Result<Reference, DriftError> {
    let invalid = |message: String| DriftError::Invalid {
        key: key.into(),
        message,
    };
    let df = ParquetReader::new(Cursor::new(bytes))
        .finish()
        .map_err(|e| invalid(format!("not a Parquet profile: {e}")))?;
    let feature = col(&df, "feature", key)?
        .str()
        .map_err(|e| invalid(e.to_string()))?
        .clone();
    let kind = col(&df, "kind", key)?
        .str()
        .map_err(|e| invalid(e.to_string()))?
        .clone();
    let k = col(&df, "key", key)?
        .str()
        .map_err(|e| invalid(e.to_string()))?
        .clone();
    let value = col(&df, "value", key)?
        .cast(&DataType::Float64)
        .map_err(|e| invalid(e.to_string()))?;
    let value = value.f64().map_err(|e| invalid(e.to_string()))?.clone();
    let mut out = Reference::default();
    let mut quantiles: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
    for i in 0..df.height() {
        let (Some(f), Some(kind)) = (feature.get(i), kind.get(i)) else {
            continue;
        };
        let v = value.get(i).unwrap_or(f64::NAN);
        match kind {
            "count" => numeric_entry(&mut out.numeric, f).count = v,
            "null_rate" => numeric_entry(&mut out.numeric, f).null_rate = v,
            "value" if v.is_finite() => numeric_entry(&mut out.numeric, f).values.push(v),
            "quantile" => quantiles
                .entry(f.to_string())
                .or_default()
                .push((k.get(i).unwrap_or_default().to_string(), v)),
            "category" => {
                *out.categorical
                    .entry(f.to_string())
                    .or_default()
                    .entry(k.get(i).unwrap_or("__null__").to_string())
                    .or_default() += v;
            }
            _ => {}
        }
    }
    for (f, mut q) in quantiles {
        q.sort_by(|a, b| {
            let pa: f64 = a.0.parse().unwrap_or(0.0);
            let pb: f64 = b.0.parse().unwrap_or(0.0);
            pa.total_cmp(&pb)
        });
        numeric_entry(&mut out.numeric, &f).deciles = q.into_iter().map(|(_, v)| v).collect();
    }
    for r in out.numeric.values_mut() {
        r.values.sort_by(f64::total_cmp);
    }
    Ok(out)
}

fn numeric_entry<'a>(m: &'a mut BTreeMap<String, NumericRef>, f: &str) -> &'a mut NumericRef {
    m.entry(f.to_string()).or_insert_with(|| NumericRef {
        values: Vec::new(),
        count: 0.0,
        null_rate: 0.0,
        deciles: Vec::new(),
    })
}

/// The name prediction drift is reported (and configured, `[drift.features.__prediction__]`)
/// under.
pub const PREDICTION: &str = "__prediction__";

/// The serving model's test-split scores (`models/<m>/<v>/reference_scores.json`, written by
/// training) as a numeric reference, with decile edges (linear interpolation, as numpy's
/// default quantile).
pub fn read_scores(bytes: &[u8], key: &str) -> Result<NumericRef, DriftError> {
    #[derive(serde::Deserialize)]
    struct Scores {
        scores: Vec<Option<f64>>,
    }
    let parsed: Scores = serde_json::from_slice(bytes).map_err(|e| DriftError::Invalid {
        key: key.into(),
        message: format!("not a reference-scores object: {e}"),
    })?;
    let count = parsed.scores.len() as f64;
    let mut values: Vec<f64> = parsed
        .scores
        .into_iter()
        .flatten()
        .filter(|x| x.is_finite())
        .collect();
    values.sort_by(f64::total_cmp);
    let null_rate = if count > 0.0 {
        1.0 - values.len() as f64 / count
    } else {
        0.0
    };
    let deciles = if values.is_empty() {
        Vec::new()
    } else {
        (0..=10)
            .map(|q| {
                let pos = q as f64 / 10.0 * (values.len() - 1) as f64;
                let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
                values[lo] + (values[hi] - values[lo]) * (pos - lo as f64)
            })
            .collect()
    };
    Ok(NumericRef {
        values,
        count,
        null_rate,
        deciles,
    })
}
