//! One drift check: every model input of the current window against the reference, each
//! with its test and threshold, and the dataset verdict.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::{DriftSettings, Test};
use crate::current::{Layout, Window};
use crate::reference::Reference;
use crate::stats;

/// Floor of a bin share in PSI (an empty bin would make the log infinite).
pub const PSI_EPS: f64 = 1e-4;

/// Per-bin counts for the report's plots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Bin labels: numeric bin edges as "lo..hi", or categories.
    pub bins: Vec<String>,
    pub reference: Vec<f64>,
    pub current: Vec<f64>,
}

/// The verdict on one feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureDrift {
    pub feature: String,
    /// `numeric` or `categorical`.
    pub kind: String,
    pub test: Test,
    pub threshold: f64,
    /// The test's statistic (KS D, chi-square), or the distance itself.
    pub statistic: Option<f64>,
    /// p-value of a hypothesis test.
    pub p_value: Option<f64>,
    /// What the threshold is compared with: the p-value or the distance.
    pub score: Option<f64>,
    pub drifted: bool,
    /// Left out of the dataset verdict by configuration, or not testable (no values).
    pub ignored: bool,
    pub reference_rows: f64,
    pub current_rows: usize,
    pub reference_null_rate: f64,
    pub current_null_rate: f64,
    /// Categories seen now that the training vocabulary did not have (their rows count as
    /// unknown).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub new_categories: Vec<String>,
    pub histogram: Histogram,
    /// Why there is no verdict, when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The dataset's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Rows in the window; fewer than `min_rows` are reported but not judged.
    pub rows: usize,
    pub judged: bool,
    pub features_tested: usize,
    pub features_drifted: usize,
    /// Share of tested features that drifted.
    pub drift_share: f64,
    pub threshold_share: f64,
    pub dataset_drift: bool,
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// Counts of sorted `values` in the bins between consecutive `edges` (the last closed).
fn bin_counts(values: &[f64], edges: &[f64]) -> Vec<f64> {
    let bins = edges.len().saturating_sub(1).max(1);
    let mut out = vec![0.0; bins];
    if edges.len() < 2 {
        out[0] = values.len() as f64;
        return out;
    }
    for x in values {
        let i = edges[1..edges.len() - 1].partition_point(|e| e <= x);
        out[i] += 1.0;
    }
    out
}

/// Deduplicated edges (a constant feature has equal deciles).
fn edges_of(deciles: &[f64], values: &[f64]) -> Vec<f64> {
    let mut e: Vec<f64> = if deciles.len() >= 2 {
        deciles.to_vec()
    } else if let (Some(a), Some(b)) = (values.first(), values.last()) {
        vec![*a, *b]
    } else {
        Vec::new()
    };
    e.dedup_by(|a, b| a == b);
    e
}

/// Records a test's (statistic, p-value, score) and the verdict of its threshold; a test
/// that could not be computed leaves the feature untested, with the reason.
fn judge(
    out: &mut FeatureDrift,
    result: Result<(Option<f64>, Option<f64>, f64), stats::StatsError>,
) {
    match result {
        Ok((statistic, p, score)) => {
            out.statistic = statistic.and_then(finite);
            out.p_value = p.and_then(finite);
            out.score = finite(score);
            out.drifted = if out.test.is_p_value() {
                score < out.threshold
            } else {
                score >= out.threshold
            };
        }
        Err(e) => {
            out.ignored = true;
            out.note = Some(e.to_string());
        }
    }
}

/// Prediction drift: the window's logged scores against the model's test-split scores, with
/// the numeric rules (reported apart; not one of the features the dataset share counts).
pub fn prediction(
    settings: &DriftSettings,
    reference: &crate::reference::NumericRef,
    window: &Window,
) -> FeatureDrift {
    let name = crate::reference::PREDICTION;
    let mut scores = Window::new(window.start_us, window.end_us);
    scores.rows = window.rows;
    let values: Vec<f32> = window.scores.iter().map(|s| *s as f32).collect();
    scores
        .nulls
        .insert(name.to_string(), window.rows.saturating_sub(values.len()));
    scores.numeric.insert(name.to_string(), values);
    numeric(name, settings, reference, &scores)
}

fn numeric(
    name: &str,
    settings: &DriftSettings,
    reference: &crate::reference::NumericRef,
    window: &Window,
) -> FeatureDrift {
    let empty = Vec::new();
    let current = window.numeric.get(name).unwrap_or(&empty);
    // Widened per feature, while it is tested (features run a core each).
    let mut current_sorted: Vec<f64> = current.iter().map(|x| f64::from(*x)).collect();
    current_sorted.sort_unstable_by(f64::total_cmp);
    let (test, threshold) = settings.rule_for(name, false, reference.values.len());
    let nulls = window.nulls.get(name).copied().unwrap_or(0);
    let edges = edges_of(&reference.deciles, &reference.values);
    let histogram = Histogram {
        bins: edges
            .windows(2)
            .map(|w| format!("{}..{}", w[0], w[1]))
            .collect(),
        reference: bin_counts(&reference.values, &edges),
        current: bin_counts(&current_sorted, &edges),
    };
    let mut out = FeatureDrift {
        feature: name.into(),
        kind: "numeric".into(),
        test,
        threshold,
        statistic: None,
        p_value: None,
        score: None,
        drifted: false,
        ignored: settings.ignored(name),
        reference_rows: reference.count,
        current_rows: current.len() + nulls,
        reference_null_rate: reference.null_rate,
        current_null_rate: if window.rows == 0 {
            0.0
        } else {
            nulls as f64 / window.rows as f64
        },
        new_categories: Vec::new(),
        histogram,
        note: None,
    };
    if reference.values.is_empty() || current_sorted.is_empty() {
        out.ignored = true;
        out.note = Some("no values on one side".into());
        return out;
    }
    let result = match test {
        Test::Ks => stats::ks_2samp(&reference.values, &current_sorted)
            .map(|k| (Some(k.statistic), Some(k.pvalue), k.pvalue)),
        Test::Wasserstein => {
            stats::wasserstein_distance(&reference.values, &current_sorted).map(|w| {
                let std = reference.std();
                // A constant reference: any movement is infinite relative drift; none is none.
                let norm = if std > 0.0 {
                    w / std
                } else if w > 0.0 {
                    f64::INFINITY
                } else {
                    0.0
                };
                (Some(w), None, norm)
            })
        }
        _ => stats::psi(&out.histogram.reference, &out.histogram.current, PSI_EPS)
            .map(|p| (Some(p), None, p)),
    };
    judge(&mut out, result);
    out
}

fn categorical(
    name: &str,
    settings: &DriftSettings,
    layout: &Layout,
    raw_reference: &BTreeMap<String, f64>,
    window: &Window,
) -> FeatureDrift {
    let reference = layout.bucket_reference(name, raw_reference);
    let reference_n: f64 = reference.values().sum();
    let empty = BTreeMap::new();
    let current = window.categories.get(name).unwrap_or(&empty);
    let current_n: f64 = current.values().sum();
    let mut bins: Vec<String> = reference.keys().cloned().collect();
    bins.extend(
        current
            .keys()
            .filter(|c| !reference.contains_key(*c))
            .cloned(),
    );
    // Buckets the training rows never filled (e.g. categories outside the vocabulary when
    // training had none) that the current window does.
    let new_categories: Vec<String> = current
        .iter()
        .filter(|(c, n)| **n > 0.0 && reference.get(*c).copied().unwrap_or(0.0) == 0.0)
        .map(|(c, _)| c.clone())
        .collect();
    let r: Vec<f64> = bins
        .iter()
        .map(|b| reference.get(b).copied().unwrap_or(0.0))
        .collect();
    let c: Vec<f64> = bins
        .iter()
        .map(|b| current.get(b).copied().unwrap_or(0.0))
        .collect();
    let (test, threshold) = settings.rule_for(name, true, reference_n as usize);
    let mut out = FeatureDrift {
        feature: name.into(),
        kind: "categorical".into(),
        test,
        threshold,
        statistic: None,
        p_value: None,
        score: None,
        drifted: false,
        ignored: settings.ignored(name),
        reference_rows: reference_n,
        current_rows: current_n as usize,
        reference_null_rate: raw_reference.get("__null__").copied().unwrap_or(0.0)
            / reference_n.max(1.0),
        current_null_rate: 0.0,
        new_categories,
        histogram: Histogram {
            bins,
            reference: r.clone(),
            current: c.clone(),
        },
        note: None,
    };
    if reference_n == 0.0 || current_n == 0.0 {
        out.ignored = true;
        out.note = Some("no values on one side".into());
        return out;
    }
    let result = match test {
        Test::Chisquare => {
            // Expected counts: the reference shares scaled to the current total.
            let expected: Vec<f64> = r.iter().map(|x| x / reference_n * current_n).collect();
            if expected.iter().zip(&c).any(|(e, o)| *e == 0.0 && *o > 0.0) {
                // A category the reference never saw: the statistic is infinite (scipy
                // returns inf and p = 0).
                Ok((None, Some(0.0), 0.0))
            } else {
                let keep: Vec<usize> = (0..expected.len()).filter(|i| expected[*i] > 0.0).collect();
                let e: Vec<f64> = keep.iter().map(|i| expected[*i]).collect();
                let o: Vec<f64> = keep.iter().map(|i| c[*i]).collect();
                stats::chisquare(&o, &e).map(|x| (Some(x.statistic), Some(x.pvalue), x.pvalue))
            }
        }
        Test::Psi => stats::psi(&r, &c, PSI_EPS).map(|p| (Some(p), None, p)),
        _ => stats::jensenshannon(&r, &c).map(|d| (Some(d), None, d)),
    };
    judge(&mut out, result);
    out
}

/// Checks every model input of `window` against `reference`.
pub fn check(
    settings: &DriftSettings,
    layout: &Layout,
    reference: &Reference,
    window: &Window,
) -> (Vec<FeatureDrift>, Verdict) {
    // Features are independent: one per core (a window can hold millions of values).
    let mut features: Vec<FeatureDrift> = layout
        .numeric
        .par_iter()
        .filter_map(|name| {
            reference
                .numeric
                .get(name)
                .map(|r| numeric(name, settings, r, window))
        })
        .collect();
    for name in layout.encoded.keys() {
        if let Some(r) = reference.categorical.get(name) {
            features.push(categorical(name, settings, layout, r, window));
        }
    }
    let tested: Vec<&FeatureDrift> = features.iter().filter(|f| !f.ignored).collect();
    let drifted = tested.iter().filter(|f| f.drifted).count();
    let share = if tested.is_empty() {
        0.0
    } else {
        drifted as f64 / tested.len() as f64
    };
    let judged = window.rows >= settings.min_rows && !tested.is_empty();
    let verdict = Verdict {
        rows: window.rows,
        judged,
        features_tested: tested.len(),
        features_drifted: drifted,
        drift_share: share,
        threshold_share: settings.share,
        dataset_drift: judged && share >= settings.share,
    };
    (features, verdict)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::current::{Encoded, UNKNOWN};
    use crate::reference::NumericRef;

    fn lcg(seed: &mut u64) -> f64 {
        *seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (*seed >> 11) as f64 / (1u64 << 53) as f64
    }

    fn layout() -> Layout {
        Layout {
            numeric: vec!["x".into()],
            encoded: [(
                "c".to_string(),
                Encoded::OneHot(vec![
                    ("c__a".into(), "a".into()),
                    ("c__b".into(), "b".into()),
                    ("c__unknown".into(), UNKNOWN.into()),
                ]),
            )]
            .into(),
        }
    }

    fn reference(n: usize) -> Reference {
        let mut s = 7;
        let mut values: Vec<f64> = (0..n).map(|_| lcg(&mut s)).collect();
        values.sort_by(f64::total_cmp);
        let deciles = (0..=10)
            .map(|i| values[(i * (n - 1)) / 10])
            .collect::<Vec<_>>();
        Reference {
            numeric: [(
                "x".to_string(),
                NumericRef {
                    values,
                    count: n as f64,
                    null_rate: 0.0,
                    deciles,
                },
            )]
            .into(),
            categorical: [(
                "c".to_string(),
                [
                    ("a".to_string(), n as f64 * 0.7),
                    ("b".to_string(), n as f64 * 0.3),
                ]
                .into(),
            )]
            .into(),
        }
    }

    fn window(rows: usize, shift: f64, share_a: f64) -> Window {
        let mut s = 99;
        let mut w = Window::new(0, 1);
        w.rows = rows;
        w.numeric.insert(
            "x".into(),
            (0..rows).map(|_| (lcg(&mut s) + shift) as f32).collect(),
        );
        let a = (rows as f64 * share_a).round();
        w.categories.insert(
            "c".into(),
            [("a".to_string(), a), ("b".to_string(), rows as f64 - a)].into(),
        );
        w
    }

    #[test]
    fn the_same_distribution_does_not_drift_a_shifted_one_does() {
        let settings = DriftSettings::default();
        // Small reference: KS and chi-square.
        let r = reference(800);
        let (f, v) = check(&settings, &layout(), &r, &window(500, 0.0, 0.7));
        assert!(v.judged && !v.dataset_drift, "{f:#?}");
        assert_eq!(f[0].test, Test::Ks);
        assert_eq!(f[1].test, Test::Chisquare);
        let (f, v) = check(&settings, &layout(), &r, &window(500, 0.5, 0.2));
        assert!(v.dataset_drift && v.features_drifted == 2, "{f:#?}");
        // Large reference: normalised Wasserstein and Jensen-Shannon.
        let r = reference(5_000);
        let (f, v) = check(&settings, &layout(), &r, &window(500, 0.0, 0.7));
        assert_eq!(
            (f[0].test, f[1].test),
            (Test::Wasserstein, Test::Jensenshannon)
        );
        assert!(!v.dataset_drift, "{f:#?}");
        let (_, v) = check(&settings, &layout(), &r, &window(500, 0.5, 0.2));
        assert!(v.dataset_drift);
        // Too few rows: reported, not judged.
        let (_, v) = check(&settings, &layout(), &r, &window(20, 0.5, 0.2));
        assert!(!v.judged && !v.dataset_drift);
    }

    #[test]
    fn unseen_categories_are_reported_and_drift_under_chisquare() {
        let settings = DriftSettings::default();
        let r = reference(800);
        let mut w = window(500, 0.0, 0.7);
        w.categories
            .get_mut("c")
            .unwrap()
            .insert("zzz".into(), 50.0);
        let (f, _) = check(&settings, &layout(), &r, &w);
        let c = f.iter().find(|f| f.feature == "c").unwrap();
        assert_eq!(c.new_categories, vec!["zzz".to_string()]);
        assert!(c.drifted && c.p_value == Some(0.0), "{c:#?}");
    }
}
