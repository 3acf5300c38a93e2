//! Judging predictions: the main metric a search optimises and the full report on the test
//! split.

use std::collections::BTreeMap;

use crate::config::{Metric, Task};
use crate::metrics::{self, Confusion};

/// Model outputs per row (`width` values per row: 1, or k for multi-class).
#[derive(Debug, Clone, Copy)]
pub struct Outputs<'a> {
    pub task: Task,
    pub k: usize,
    pub y: &'a [f64],
    pub p: &'a [f64],
}

impl Outputs<'_> {
    fn positives(&self) -> Vec<bool> {
        self.y.iter().map(|v| *v == 1.0).collect()
    }

    fn labels(&self) -> Vec<usize> {
        self.y.iter().map(|v| *v as usize).collect()
    }

    /// The outputs restricted to `idx` (bootstrap resamples).
    pub fn select(&self, idx: &[usize]) -> (Vec<f64>, Vec<f64>) {
        let w = if self.task == Task::MulticlassClassification {
            self.k
        } else {
            1
        };
        let y = idx.iter().map(|&i| self.y[i]).collect();
        let mut p = Vec::with_capacity(idx.len() * w);
        for &i in idx {
            p.extend_from_slice(&self.p[i * w..(i + 1) * w]);
        }
        (y, p)
    }
}

/// The value of one metric; `None` where it is undefined (e.g. AUC with one class).
pub fn score(metric: Metric, o: Outputs, threshold: f64) -> Option<f64> {
    match o.task {
        Task::BinaryClassification => {
            let y = o.positives();
            match metric {
                Metric::RocAuc => metrics::roc_auc(&y, o.p),
                Metric::PrAuc => metrics::average_precision(&y, o.p),
                Metric::LogLoss => Some(metrics::log_loss(&y, o.p)),
                Metric::Brier => Some(metrics::brier(&y, o.p)),
                Metric::F1 => Some(Confusion::at(&y, o.p, threshold).f1()),
                _ => None,
            }
        }
        Task::MulticlassClassification => {
            let m = metrics::multiclass(&o.labels(), o.p, o.k);
            m.get(metric.name()).copied()
        }
        Task::Regression => Some(match metric {
            Metric::Rmse => metrics::rmse(o.y, o.p),
            Metric::Mae => metrics::mae(o.y, o.p),
            Metric::R2 => metrics::r2(o.y, o.p),
            _ => return None,
        }),
    }
}

/// Whether `a` is better than `b` under `metric` (NaN/None never wins).
pub fn better(metric: Metric, a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) if a.is_finite() && b.is_finite() => {
            if metric.higher_is_better() {
                a > b
            } else {
                a < b
            }
        }
        (Some(a), _) => a.is_finite(),
        _ => false,
    }
}

/// Every metric of the task, named as in bundles, MLflow and the CLI. Binary metrics at
/// `threshold` are included, with the confusion counts (`tp`, `fp`, `tn`, `fn`).
pub fn report(o: Outputs, threshold: f64) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    match o.task {
        Task::BinaryClassification => {
            let y = o.positives();
            if let Some(v) = metrics::roc_auc(&y, o.p) {
                out.insert("roc_auc".into(), v);
            }
            if let Some(v) = metrics::average_precision(&y, o.p) {
                out.insert("pr_auc".into(), v);
            }
            out.insert("log_loss".into(), metrics::log_loss(&y, o.p));
            out.insert("brier".into(), metrics::brier(&y, o.p));
            let c = Confusion::at(&y, o.p, threshold);
            out.insert("f1".into(), c.f1());
            out.insert("precision".into(), c.precision());
            out.insert("recall".into(), c.recall());
            for (name, v) in [("tp", c.tp), ("fp", c.fp), ("tn", c.tn), ("fn", c.fn_)] {
                out.insert(name.into(), v as f64);
            }
            out.insert("threshold".into(), threshold);
            out.insert(
                "positive_rate".into(),
                y.iter().filter(|v| **v).count() as f64 / y.len().max(1) as f64,
            );
        }
        Task::MulticlassClassification => {
            let labels = o.labels();
            out.extend(metrics::multiclass(&labels, o.p, o.k));
            // Per-class confusion counts (one vs rest, predicted = argmax).
            let n = labels.len();
            for c in 0..o.k {
                let (mut tp, mut fp, mut fn_) = (0u64, 0u64, 0u64);
                for (i, &l) in labels.iter().enumerate().take(n) {
                    let pred = (0..o.k)
                        .max_by(|&a, &b| o.p[i * o.k + a].total_cmp(&o.p[i * o.k + b]))
                        .unwrap_or(0);
                    match (l == c, pred == c) {
                        (true, true) => tp += 1,
                        (false, true) => fp += 1,
                        (true, false) => fn_ += 1,
                        _ => {}
                    }
                }
                out.insert(format!("class_{c}_tp"), tp as f64);
                out.insert(format!("class_{c}_fp"), fp as f64);
                out.insert(format!("class_{c}_fn"), fn_ as f64);
            }
        }
        Task::Regression => {
            out.insert("rmse".into(), metrics::rmse(o.y, o.p));
            out.insert("mae".into(), metrics::mae(o.y, o.p));
            out.insert("r2".into(), metrics::r2(o.y, o.p));
        }
    }
    out.insert("rows".into(), o.y.len() as f64);
    out
}

/// Seeded percentile-bootstrap interval of `metric` on these outputs.
pub fn interval(
    metric: Metric,
    o: Outputs,
    threshold: f64,
    resamples: usize,
    seed: u64,
) -> Option<metrics::Interval> {
    metrics::bootstrap(o.y.len(), resamples, 0.95, seed, |idx| {
        let (y, p) = o.select(idx);
        score(metric, Outputs { y: &y, p: &p, ..o }, threshold)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn binary_report_and_direction() {
        let y = [0.0, 0.0, 1.0, 1.0, 0.0, 1.0];
        let p = [0.1, 0.4, 0.35, 0.8, 0.2, 0.9];
        let o = Outputs {
            task: Task::BinaryClassification,
            k: 2,
            y: &y,
            p: &p,
        };
        let r = report(o, 0.5);
        assert!((r["roc_auc"] - 8.0 / 9.0).abs() < 1e-12);
        assert_eq!((r["tp"], r["fp"], r["tn"], r["fn"]), (2.0, 0.0, 3.0, 1.0));
        assert!(better(Metric::LogLoss, Some(0.1), Some(0.2)));
        assert!(better(Metric::PrAuc, Some(0.3), Some(0.2)));
        assert!(!better(Metric::PrAuc, None, Some(0.2)));
        // The bootstrap interval brackets the point estimate, stays within [0, 1], is
        // reproducible from its seed and has some width on six rows.
        let ci = interval(Metric::RocAuc, o, 0.5, 50, 1).unwrap();
        assert!(ci.low <= 8.0 / 9.0 && 8.0 / 9.0 <= ci.high, "{ci:?}");
        assert!(
            0.0 <= ci.low && ci.high <= 1.0 && ci.low < ci.high,
            "{ci:?}"
        );
        assert_eq!(ci, interval(Metric::RocAuc, o, 0.5, 50, 1).unwrap());
        // Resamples whose metric is undefined (a single class drawn) are not counted.
        assert_eq!(ci.level, 0.95);
        assert!(40 < ci.resamples && ci.resamples <= 50, "{ci:?}");
    }

    #[test]
    fn multiclass_per_class_counts() {
        let y = [0.0, 1.0, 2.0, 2.0];
        let p = [0.8, 0.1, 0.1, 0.2, 0.7, 0.1, 0.1, 0.1, 0.8, 0.6, 0.2, 0.2];
        let o = Outputs {
            task: Task::MulticlassClassification,
            k: 3,
            y: &y,
            p: &p,
        };
        let r = report(o, 0.5);
        assert_eq!(r["accuracy"], 0.75);
        assert_eq!(
            (r["class_2_tp"], r["class_2_fn"], r["class_0_fp"]),
            (1.0, 1.0, 1.0)
        );
        assert_eq!(score(Metric::Accuracy, o, 0.5), Some(0.75));
    }
}
