//! Evaluation metrics, defined as scikit-learn defines them so users get familiar numbers:
//! ROC-AUC (`roc_auc_score`, ties averaged), PR-AUC as average precision
//! (`average_precision_score`), log-loss (`log_loss`, probabilities clipped to machine
//! epsilon), Brier score, precision/recall/F1 at a threshold (positive when `p >= t`), the
//! confusion matrix; for multi-class, accuracy, macro F1 and one-vs-rest macro ROC-AUC; for
//! regression, RMSE, MAE and R². Plus seeded bootstrap confidence intervals.

use std::collections::BTreeMap;

use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

/// ROC-AUC of scores against 0/1 labels (Mann-Whitney with average ranks for ties).
/// `None` when only one class is present.
pub fn roc_auc(y: &[bool], score: &[f64]) -> Option<f64> {
    let n_pos = y.iter().filter(|v| **v).count();
    let n_neg = y.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..y.len()).collect();
    order.sort_by(|&a, &b| score[a].total_cmp(&score[b]));
    let mut rank_sum_pos = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && score[order[j + 1]] == score[order[i]] {
            j += 1;
        }
        // Ranks i+1 ..= j+1 share their average.
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            if y[k] {
                rank_sum_pos += avg;
            }
        }
        i = j + 1;
    }
    let u = rank_sum_pos - (n_pos * (n_pos + 1)) as f64 / 2.0;
    Some(u / (n_pos as f64 * n_neg as f64))
}

/// Average precision: `sum_n (R_n - R_{n-1}) P_n` over the distinct thresholds, highest
/// first. `None` without positives.
pub fn average_precision(y: &[bool], score: &[f64]) -> Option<f64> {
    let n_pos = y.iter().filter(|v| **v).count();
    if n_pos == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..y.len()).collect();
    order.sort_by(|&a, &b| score[b].total_cmp(&score[a]));
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut ap = 0.0;
    let mut prev_recall = 0.0;
    let mut i = 0;
    while i < order.len() {
        let s = score[order[i]];
        while i < order.len() && score[order[i]] == s {
            if y[order[i]] {
                tp += 1;
            } else {
                fp += 1;
            }
            i += 1;
        }
        let recall = tp as f64 / n_pos as f64;
        let precision = tp as f64 / (tp + fp) as f64;
        ap += (recall - prev_recall) * precision;
        prev_recall = recall;
    }
    Some(ap)
}

/// Mean negative log-likelihood of 0/1 labels under probabilities `p`.
pub fn log_loss(y: &[bool], p: &[f64]) -> f64 {
    let eps = f64::EPSILON;
    let sum: f64 = y
        .iter()
        .zip(p)
        .map(|(&t, &q)| {
            let q = q.clamp(eps, 1.0 - eps);
            if t { -q.ln() } else { -(1.0 - q).ln() }
        })
        .sum();
    sum / y.len().max(1) as f64
}

/// Mean squared difference between probability and outcome.
pub fn brier(y: &[bool], p: &[f64]) -> f64 {
    let sum: f64 = y
        .iter()
        .zip(p)
        .map(|(&t, &q)| (q - f64::from(u8::from(t))).powi(2))
        .sum();
    sum / y.len().max(1) as f64
}

/// Counts at one threshold (positive when `p >= threshold`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Confusion {
    pub tp: u64,
    pub fp: u64,
    pub tn: u64,
    pub fn_: u64,
}

impl Confusion {
    pub fn at(y: &[bool], p: &[f64], threshold: f64) -> Confusion {
        let mut c = Confusion::default();
        for (&t, &q) in y.iter().zip(p) {
            match (t, q >= threshold) {
                (true, true) => c.tp += 1,
                (false, true) => c.fp += 1,
                (false, false) => c.tn += 1,
                (true, false) => c.fn_ += 1,
            }
        }
        c
    }

    /// 0 when nothing is predicted positive (scikit-learn's `zero_division=0`).
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }

    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }

    pub fn f1(&self) -> f64 {
        ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn_)
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// How the decision threshold is chosen on the validation split.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "strategy", rename_all = "kebab-case")]
pub enum ThresholdRule {
    /// The threshold with the best F1 (ties: the higher threshold).
    MaxF1,
    /// A fixed probability.
    Fixed { value: f64 },
    /// The highest recall whose precision reaches `target` (falls back to max F1).
    Precision { target: f64 },
    /// The highest precision whose recall reaches `target`.
    Recall { target: f64 },
}

/// Picks a threshold on validation labels and probabilities.
pub fn choose_threshold(rule: ThresholdRule, y: &[bool], p: &[f64]) -> f64 {
    if let ThresholdRule::Fixed { value } = rule {
        return value;
    }
    let mut candidates: Vec<f64> = p.to_vec();
    candidates.sort_by(|a, b| b.total_cmp(a));
    candidates.dedup();
    // One pass from the highest candidate down, counting as the threshold falls.
    let mut order: Vec<usize> = (0..y.len()).collect();
    order.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
    let n_pos = y.iter().filter(|v| **v).count() as u64;
    let (mut tp, mut fp) = (0u64, 0u64);
    let mut i = 0;
    let mut best: Option<(f64, f64, f64)> = None; // (key, tie-break, threshold)
    for &t in &candidates {
        while i < order.len() && p[order[i]] >= t {
            if y[order[i]] {
                tp += 1;
            } else {
                fp += 1;
            }
            i += 1;
        }
        let c = Confusion {
            tp,
            fp,
            tn: 0,
            fn_: n_pos - tp,
        };
        let key = match rule {
            ThresholdRule::MaxF1 => Some((c.f1(), t)),
            ThresholdRule::Precision { target } => {
                (c.precision() >= target).then_some((c.recall(), t))
            }
            ThresholdRule::Recall { target } => {
                (c.recall() >= target).then_some((c.precision(), t))
            }
            ThresholdRule::Fixed { .. } => None,
        };
        if let Some((k, tie)) = key
            && best.is_none_or(|(bk, bt, _)| k > bk || (k == bk && tie > bt))
        {
            best = Some((k, tie, t));
        }
    }
    match best {
        Some((_, _, t)) => t,
        None if !matches!(rule, ThresholdRule::MaxF1) => {
            choose_threshold(ThresholdRule::MaxF1, y, p)
        }
        None => 0.5,
    }
}

/// Regression errors.
pub fn rmse(y: &[f64], pred: &[f64]) -> f64 {
    let n = y.len().max(1) as f64;
    (y.iter()
        .zip(pred)
        .map(|(a, b)| (a - b).powi(2))
        .sum::<f64>()
        / n)
        .sqrt()
}

pub fn mae(y: &[f64], pred: &[f64]) -> f64 {
    let n = y.len().max(1) as f64;
    y.iter().zip(pred).map(|(a, b)| (a - b).abs()).sum::<f64>() / n
}

/// Coefficient of determination (1 - SS_res / SS_tot); 0 for a constant target predicted
/// imperfectly and 1 when perfect, as scikit-learn does.
pub fn r2(y: &[f64], pred: &[f64]) -> f64 {
    let n = y.len().max(1) as f64;
    let mean = y.iter().sum::<f64>() / n;
    let ss_tot: f64 = y.iter().map(|a| (a - mean).powi(2)).sum();
    let ss_res: f64 = y.iter().zip(pred).map(|(a, b)| (a - b).powi(2)).sum();
    if ss_tot == 0.0 {
        return if ss_res == 0.0 { 1.0 } else { 0.0 };
    }
    1.0 - ss_res / ss_tot
}

/// Multi-class: `probs` is row-major `n x k`; labels are class indices.
pub fn multiclass(labels: &[usize], probs: &[f64], k: usize) -> BTreeMap<String, f64> {
    let n = labels.len();
    let argmax = |i: usize| {
        (0..k)
            .max_by(|&a, &b| probs[i * k + a].total_cmp(&probs[i * k + b]))
            .unwrap_or(0)
    };
    let pred: Vec<usize> = (0..n).map(argmax).collect();
    let accuracy = ratio(
        pred.iter().zip(labels).filter(|(a, b)| a == b).count() as u64,
        n as u64,
    );
    let mut f1s = Vec::new();
    let mut aucs = Vec::new();
    let mut ll = 0.0;
    for c in 0..k {
        let y: Vec<bool> = labels.iter().map(|&l| l == c).collect();
        let hit: Vec<f64> = (0..n).map(|i| f64::from(u8::from(pred[i] == c))).collect();
        f1s.push(Confusion::at(&y, &hit, 0.5).f1());
        let s: Vec<f64> = (0..n).map(|i| probs[i * k + c]).collect();
        if let Some(a) = roc_auc(&y, &s) {
            aucs.push(a);
        }
    }
    for (i, &l) in labels.iter().enumerate() {
        ll -= probs[i * k + l].clamp(f64::EPSILON, 1.0).ln();
    }
    let mut out = BTreeMap::new();
    out.insert("accuracy".to_string(), accuracy);
    out.insert(
        "f1_macro".to_string(),
        f1s.iter().sum::<f64>() / k.max(1) as f64,
    );
    if !aucs.is_empty() {
        out.insert(
            "roc_auc_ovr".to_string(),
            aucs.iter().sum::<f64>() / aucs.len() as f64,
        );
    }
    out.insert("log_loss".to_string(), ll / n.max(1) as f64);
    out
}

/// A confidence interval from a seeded percentile bootstrap of `metric` over rows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
    pub level: f64,
    pub resamples: usize,
}

pub fn bootstrap(
    n: usize,
    resamples: usize,
    level: f64,
    seed: u64,
    mut metric: impl FnMut(&[usize]) -> Option<f64>,
) -> Option<Interval> {
    if n == 0 || resamples == 0 {
        return None;
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut values = Vec::with_capacity(resamples);
    let mut idx = vec![0usize; n];
    for _ in 0..resamples {
        for slot in idx.iter_mut() {
            *slot = rng.random_range(0..n);
        }
        if let Some(v) = metric(&idx) {
            values.push(v);
        }
    }
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let q = |p: f64| {
        let pos = p * (values.len() - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        values[lo] + (values[hi] - values[lo]) * (pos - lo as f64)
    };
    let alpha = (1.0 - level) / 2.0;
    Some(Interval {
        low: q(alpha),
        high: q(1.0 - alpha),
        level,
        resamples: values.len(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // Reference values: scikit-learn (roc_auc_score, average_precision_score, log_loss,
    // brier_score_loss, f1_score, r2_score) on the same arrays.
    const Y: [bool; 10] = [
        false, false, true, true, false, true, false, true, true, false,
    ];
    const P: [f64; 10] = [0.1, 0.4, 0.35, 0.8, 0.2, 0.7, 0.6, 0.9, 0.35, 0.05];

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    #[test]
    fn binary_metrics_match_scikit_learn() {
        close(roc_auc(&Y, &P).unwrap(), 0.84);
        close(average_precision(&Y, &P).unwrap(), 0.885_714_285_714_285_7);
        close(log_loss(&Y, &P), 0.459_173_697_690_785_6);
        close(brier(&Y, &P), 0.15575);
        assert_eq!(roc_auc(&[true, true], &[0.1, 0.2]), None);
    }

    #[test]
    fn ties_share_their_rank() {
        // One positive and one negative at the same score: half a pair.
        close(
            roc_auc(&[true, false, true, false], &[0.5, 0.5, 0.9, 0.1]).unwrap(),
            0.875,
        );
    }

    #[test]
    fn thresholds_and_confusion() {
        let c = Confusion::at(&Y, &P, 0.5);
        assert_eq!(
            c,
            Confusion {
                tp: 3,
                fp: 1,
                tn: 4,
                fn_: 2
            }
        );
        close(c.precision(), 0.75);
        close(c.recall(), 0.6);
        let t = choose_threshold(ThresholdRule::MaxF1, &Y, &P);
        // f1_score at 0.35: 0.8333 (best), at 0.5: 0.6667, at 0.7: 0.75.
        assert_eq!(t, 0.35);
        close(Confusion::at(&Y, &P, t).f1(), 10.0 / 12.0);
        let t = choose_threshold(ThresholdRule::Precision { target: 1.0 }, &Y, &P);
        assert_eq!(t, 0.7);
        assert_eq!(
            choose_threshold(ThresholdRule::Fixed { value: 0.3 }, &Y, &P),
            0.3
        );
    }

    #[test]
    fn regression_metrics() {
        let y = [3.0, -0.5, 2.0, 7.0];
        let p = [2.5, 0.0, 2.0, 8.0];
        // sklearn: mean_squared_error 0.375, mean_absolute_error 0.5, r2_score 0.9486081370449679
        close(rmse(&y, &p), 0.375f64.sqrt());
        close(mae(&y, &p), 0.5);
        assert!((r2(&y, &p) - 0.948_608_137_044_967_9).abs() < 1e-12);
    }

    #[test]
    fn bootstrap_is_seeded_and_brackets_the_estimate() {
        let ci = |seed| {
            bootstrap(Y.len(), 200, 0.95, seed, |idx| {
                let y: Vec<bool> = idx.iter().map(|&i| Y[i]).collect();
                let p: Vec<f64> = idx.iter().map(|&i| P[i]).collect();
                roc_auc(&y, &p)
            })
            .unwrap()
        };
        assert_eq!(ci(1), ci(1));
        let c = ci(1);
        assert!(c.low <= 0.84 && 0.84 <= c.high, "{c:?}");
    }

    #[test]
    fn multiclass_metrics() {
        let labels = [0, 1, 2, 1, 0, 2];
        let probs = [
            0.6, 0.3, 0.1, //
            0.3, 0.4, 0.3, //
            0.2, 0.5, 0.3, //
            0.5, 0.4, 0.1, //
            0.45, 0.2, 0.35, //
            0.1, 0.3, 0.6,
        ];
        let m = multiclass(&labels, &probs, 3);
        // scikit-learn's definitions: accuracy_score, f1_score(average="macro") over the
        // argmax predictions (per-class F1 0.8, 0.5, 2/3), roc_auc_score(multi_class="ovr",
        // average="macro") (per-class AUC 0.875, 0.75, 0.8125) and log_loss.
        close(m["accuracy"], 4.0 / 6.0);
        close(m["f1_macro"], (0.8 + 0.5 + 2.0 / 3.0) / 3.0);
        close(m["roc_auc_ovr"], 0.8125);
        let ll = -[0.6f64, 0.4, 0.3, 0.4, 0.45, 0.6]
            .iter()
            .map(|p| p.ln())
            .sum::<f64>()
            / 6.0;
        close(m["log_loss"], ll);
    }
}
