//! The training set as the model families see it: f32-rounded feature columns (NaN =
//! missing), the target encoded for the task, and each row's split.
//!
//! Rounding to f32 here, before anything is fitted, is what makes the exported f32 model
//! agree with training: every threshold and weight is learned on values the edge can
//! represent exactly.

use std::collections::BTreeSet;

use polars::prelude::*;

use crate::TrainError;
use crate::config::Task;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Validation,
    Test,
}

/// Column-major training data plus target and split.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub features: Vec<String>,
    /// One vector per feature; values are f32-representable, NaN marks a missing value.
    pub cols: Vec<Vec<f64>>,
    /// Binary: 0/1 (1 = positive class); multi-class: class index; regression: the value.
    pub y: Vec<f64>,
    pub split: Vec<Split>,
    pub task: Task,
    /// Class labels in output order (binary: negative, positive); empty for regression.
    pub classes: Vec<String>,
    /// Rows dropped because their label was missing.
    pub unlabelled: usize,
}

/// Labels with at most this many distinct values (and integer or text type) are classes.
const MAX_CLASSES: usize = 50;

impl Dataset {
    /// Reads `features`, `label` and `split_column` from a feature-view training table.
    /// `task` and `positive` fix the task and the positive class; otherwise both follow
    /// from the label (two values: binary, the larger or later one positive; a few integer
    /// or text values: multi-class; other numbers: regression).
    pub fn from_frame(
        df: &DataFrame,
        features: &[String],
        label: &str,
        split_column: Option<&str>,
        task: Option<Task>,
        positive: Option<&str>,
    ) -> Result<Dataset, TrainError> {
        let bad = |column: &str, message: String| TrainError::Data {
            column: column.to_string(),
            message,
        };
        let label_col = df
            .column(label)
            .map_err(|_| {
                bad(
                    label,
                    "the label column is missing from the training table".into(),
                )
            })?
            .as_materialized_series()
            .clone();
        let keep: Vec<bool> = label_col
            .is_not_null()
            .iter()
            .map(|v| v.unwrap_or(false))
            .collect();
        let unlabelled = keep.iter().filter(|k| !**k).count();
        let idx: Vec<usize> = (0..df.height()).filter(|&i| keep[i]).collect();
        if idx.is_empty() {
            return Err(bad(label, "no row has a label".into()));
        }
        let mut cols = Vec::with_capacity(features.len());
        for name in features {
            let s = df
                .column(name)
                .map_err(|_| {
                    bad(
                        name,
                        "feature column is missing from the training table".into(),
                    )
                })?
                .as_materialized_series()
                .cast(&DataType::Float64)
                .map_err(|e| bad(name, format!("is not numeric: {e}")))?;
            let ca = s.f64().map_err(|e| bad(name, e.to_string()))?;
            let all: Vec<f64> = ca
                .iter()
                .map(|v| match v {
                    // f32 overflow becomes infinite: treat it, like NaN and null, as missing.
                    Some(x) if (x as f32).is_finite() => f64::from(x as f32),
                    _ => f64::NAN,
                })
                .collect();
            cols.push(idx.iter().map(|&i| all[i]).collect::<Vec<f64>>());
        }
        let split = match split_column {
            Some(c) => {
                let s = df
                    .column(c)
                    .map_err(|_| bad(c, "split column is missing".into()))?
                    .as_materialized_series()
                    .cast(&DataType::String)
                    .map_err(|e| bad(c, e.to_string()))?;
                let ca = s.str().map_err(|e| bad(c, e.to_string()))?.clone();
                let all: Vec<Option<String>> = ca.iter().map(|v| v.map(str::to_string)).collect();
                idx.iter()
                    .map(|&i| match all[i].as_deref() {
                        Some("train") => Ok(Split::Train),
                        Some("validation") => Ok(Split::Validation),
                        Some("test") => Ok(Split::Test),
                        other => Err(bad(
                            c,
                            format!("row {i}: '{other:?}' is not train, validation or test"),
                        )),
                    })
                    .collect::<Result<Vec<_>, _>>()?
            }
            None => default_split(idx.len()),
        };
        let labels: Vec<AnyValue> = idx
            .iter()
            .map(|&i| label_col.get(i).unwrap_or(AnyValue::Null))
            .collect();
        let (task, y, classes) = encode_target(label, &label_col, &labels, task, positive)?;
        let ds = Dataset {
            features: features.to_vec(),
            cols,
            y,
            split,
            task,
            classes,
            unlabelled,
        };
        for part in [Split::Train, Split::Validation, Split::Test] {
            if ds.rows(part).is_empty() {
                return Err(bad(
                    split_column.unwrap_or("split"),
                    format!("the {part:?} split is empty; more labelled rows are needed"),
                ));
            }
        }
        if task != Task::Regression {
            let train = ds.rows(Split::Train);
            let seen: BTreeSet<u64> = train.iter().map(|&i| ds.y[i] as u64).collect();
            if seen.len() < ds.classes.len() {
                return Err(bad(
                    label,
                    format!(
                        "the training split has {} of the {} classes; every class needs training rows",
                        seen.len(),
                        ds.classes.len()
                    ),
                ));
            }
        }
        Ok(ds)
    }

    pub fn n_rows(&self) -> usize {
        self.y.len()
    }

    pub fn n_features(&self) -> usize {
        self.cols.len()
    }

    /// Row indices of one split, in table (time) order.
    pub fn rows(&self, part: Split) -> Vec<usize> {
        (0..self.n_rows())
            .filter(|&i| self.split[i] == part)
            .collect()
    }

    /// Feature columns of `rows`.
    pub fn columns(&self, rows: &[usize]) -> Vec<Vec<f64>> {
        self.cols
            .iter()
            .map(|c| rows.iter().map(|&i| c[i]).collect())
            .collect()
    }

    /// Row-major f32 matrix of `rows` (what ONNX and the networks take).
    pub fn row_major(&self, rows: &[usize]) -> Vec<f32> {
        let mut out = Vec::with_capacity(rows.len() * self.n_features());
        for &i in rows {
            out.extend(self.cols.iter().map(|c| c[i] as f32));
        }
        out
    }

    pub fn targets(&self, rows: &[usize]) -> Vec<f64> {
        rows.iter().map(|&i| self.y[i]).collect()
    }

    /// Number of model outputs the task needs (classes for multi-class, else 1).
    pub fn n_classes(&self) -> usize {
        self.classes.len()
    }
}

/// 70/15/15 in table order, for tables without a split column.
fn default_split(n: usize) -> Vec<Split> {
    let train = n * 70 / 100;
    let valid = n * 85 / 100;
    (0..n)
        .map(|i| {
            if i < train {
                Split::Train
            } else if i < valid {
                Split::Validation
            } else {
                Split::Test
            }
        })
        .collect()
}

fn label_text(v: &AnyValue) -> String {
    match v {
        AnyValue::String(s) => s.to_string(),
        AnyValue::StringOwned(s) => s.to_string(),
        AnyValue::Boolean(b) => b.to_string(),
        other => other.to_string(),
    }
}

type Encoded = (Task, Vec<f64>, Vec<String>);

fn encode_target(
    label: &str,
    series: &Series,
    values: &[AnyValue],
    task: Option<Task>,
    positive: Option<&str>,
) -> Result<Encoded, TrainError> {
    let bad = |message: String| TrainError::Data {
        column: label.to_string(),
        message,
    };
    let dtype = series.dtype().clone();
    let numeric = dtype.is_primitive_numeric();
    let is_float = dtype.is_float();
    let as_f64 = |v: &AnyValue| -> Option<f64> {
        match v {
            AnyValue::Boolean(b) => Some(f64::from(u8::from(*b))),
            v => v.extract::<f64>(),
        }
    };
    // Distinct values, ordered numerically when numeric/boolean, else as text.
    let mut distinct: Vec<(f64, String)> = Vec::new();
    {
        let mut seen = BTreeSet::new();
        for v in values {
            let text = label_text(v);
            if seen.insert(text.clone()) {
                distinct.push((as_f64(v).unwrap_or(f64::NAN), text));
                if distinct.len() > MAX_CLASSES && !numeric {
                    break;
                }
            }
        }
    }
    if numeric || dtype == DataType::Boolean {
        distinct.sort_by(|a, b| a.0.total_cmp(&b.0));
    } else {
        distinct.sort_by(|a, b| a.1.cmp(&b.1));
    }
    let inferred = match task {
        Some(t) => t,
        None if distinct.len() == 2 => Task::BinaryClassification,
        None if is_float || (numeric && distinct.len() > MAX_CLASSES) => Task::Regression,
        None if distinct.len() <= MAX_CLASSES && distinct.len() > 2 => {
            Task::MulticlassClassification
        }
        None => {
            return Err(bad(format!(
                "cannot infer the task: {} distinct non-numeric labels; set `task` in the training file",
                distinct.len()
            )));
        }
    };
    match inferred {
        Task::Regression => {
            if !numeric && dtype != DataType::Boolean {
                return Err(bad(format!(
                    "regression needs a numeric label, found {dtype}"
                )));
            }
            let y = values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    as_f64(v).filter(|x| x.is_finite()).ok_or_else(|| {
                        bad(format!(
                            "row {i}: label '{}' is not a finite number",
                            label_text(v)
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((Task::Regression, y, Vec::new()))
        }
        Task::BinaryClassification => {
            if distinct.len() != 2 {
                return Err(bad(format!(
                    "binary classification needs exactly 2 label values, found {}",
                    distinct.len()
                )));
            }
            let mut classes: Vec<String> = distinct.into_iter().map(|d| d.1).collect();
            if let Some(p) = positive {
                match classes.iter().position(|c| c == p) {
                    Some(0) => classes.swap(0, 1),
                    Some(_) => {}
                    None => {
                        return Err(bad(format!(
                            "positive class '{p}' is not one of the labels {classes:?}"
                        )));
                    }
                }
            }
            let y = values
                .iter()
                .map(|v| f64::from(u8::from(label_text(v) == classes[1])))
                .collect();
            Ok((Task::BinaryClassification, y, classes))
        }
        Task::MulticlassClassification => {
            if distinct.len() > MAX_CLASSES || distinct.len() < 3 {
                return Err(bad(format!(
                    "multi-class classification needs 3 to {MAX_CLASSES} label values, found {}",
                    distinct.len()
                )));
            }
            let classes: Vec<String> = distinct.into_iter().map(|d| d.1).collect();
            let y = values
                .iter()
                .map(|v| {
                    let t = label_text(v);
                    classes.iter().position(|c| *c == t).unwrap_or(0) as f64
                })
                .collect();
            Ok((Task::MulticlassClassification, y, classes))
        }
    }
}

/// Per-row training weights: with `balanced`, each class gets total weight n / k (as
/// scikit-learn's `class_weight="balanced"`), so a rare positive class counts as much as
/// the common one; otherwise 1.
pub fn class_weights(y: &[f64], task: Task, balanced: bool) -> Vec<f64> {
    if !balanced || task == Task::Regression || y.is_empty() {
        return vec![1.0; y.len()];
    }
    let k = y.iter().map(|v| *v as usize).max().unwrap_or(0) + 1;
    let mut counts = vec![0usize; k];
    for v in y {
        counts[*v as usize] += 1;
    }
    let present = counts.iter().filter(|c| **c > 0).count().max(1);
    let n = y.len() as f64;
    y.iter()
        .map(|v| n / (present as f64 * counts[*v as usize] as f64))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn frame(label: Series) -> DataFrame {
        let n = label.len();
        let x: Vec<Option<f64>> = (0..n)
            .map(|i| {
                if i % 7 == 0 {
                    None
                } else {
                    Some(0.1 * i as f64)
                }
            })
            .collect();
        let split: Vec<&str> = (0..n)
            .map(|i| ["train", "train", "validation", "test"][i % 4])
            .collect();
        DataFrame::new(
            n,
            vec![
                Series::new("x".into(), x).into(),
                label.into(),
                Series::new("__split".into(), split).into(),
            ],
        )
        .unwrap()
    }

    fn load(
        df: &DataFrame,
        task: Option<Task>,
        positive: Option<&str>,
    ) -> Result<Dataset, TrainError> {
        Dataset::from_frame(df, &["x".into()], "y", Some("__split"), task, positive)
    }

    #[test]
    fn tasks_follow_from_the_label() {
        let b = frame(Series::new(
            "y".into(),
            (0..40).map(|i| i % 3 == 0).collect::<Vec<_>>(),
        ));
        let d = load(&b, None, None).unwrap();
        assert_eq!(d.task, Task::BinaryClassification);
        assert_eq!(d.classes, vec!["false", "true"]);
        assert_eq!(d.y[0], 1.0);
        // Values are f32-rounded; missing is NaN.
        assert!(d.cols[0][0].is_nan());
        assert_eq!(d.cols[0][1], f64::from(0.1f32));

        let m = frame(Series::new(
            "y".into(),
            (0..40).map(|i| ["a", "b", "c"][i % 3]).collect::<Vec<_>>(),
        ));
        assert_eq!(
            load(&m, None, None).unwrap().task,
            Task::MulticlassClassification
        );

        let r = frame(Series::new(
            "y".into(),
            (0..40).map(|i| i as f64 * 1.5).collect::<Vec<_>>(),
        ));
        assert_eq!(load(&r, None, None).unwrap().task, Task::Regression);

        let s = frame(Series::new(
            "y".into(),
            (0..40)
                .map(|i| if i % 2 == 0 { "fraud" } else { "ok" })
                .collect::<Vec<_>>(),
        ));
        let d = load(&s, None, Some("fraud")).unwrap();
        assert_eq!(d.classes, vec!["ok", "fraud"]);
        assert_eq!(d.y[0], 1.0);
        let e = load(&s, None, Some("nope")).unwrap_err().to_string();
        assert!(e.contains("nope") && e.contains("'y'"), "{e}");
    }

    #[test]
    fn missing_labels_are_dropped_and_bad_labels_named() {
        let y: Vec<Option<i64>> = (0..40)
            .map(|i| if i == 5 { None } else { Some(i % 2) })
            .collect();
        let d = load(&frame(Series::new("y".into(), y)), None, None).unwrap();
        assert_eq!((d.unlabelled, d.n_rows()), (1, 39));
        let text = frame(Series::new(
            "y".into(),
            (0..40).map(|i| format!("v{i}")).collect::<Vec<_>>(),
        ));
        let e = load(&text, Some(Task::Regression), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("numeric"), "{e}");
    }

    #[test]
    fn balanced_weights_equalise_class_totals() {
        let y = [0.0, 0.0, 0.0, 1.0];
        let w = class_weights(&y, Task::BinaryClassification, true);
        assert!((w[0] * 3.0 - w[3]).abs() < 1e-12);
        assert!((w.iter().sum::<f64>() - 4.0).abs() < 1e-12);
        assert_eq!(
            class_weights(&y, Task::BinaryClassification, false),
            vec![1.0; 4]
        );
    }
}
