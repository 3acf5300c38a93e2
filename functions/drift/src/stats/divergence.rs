//! Chi-square test, Wasserstein distance, Jensen-Shannon distance and PSI.

#![allow(
    // Constants are copied digit for digit from the reference sources.
    clippy::excessive_precision,
    clippy::approx_constant,
    // Index loops mirror the reference algorithms line by line.
    clippy::needless_range_loop,
    clippy::comparison_chain
)]

use super::*;

/// Result of [`chisquare`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChiSquare {
    /// Pearson's statistic, `sum((o - e)^2 / e)`.
    pub statistic: f64,
    /// `chdtrc(dof, statistic)`.
    pub pvalue: f64,
    /// Degrees of freedom, `k - 1`.
    pub dof: usize,
}

/// Pearson's chi-square test, `scipy.stats.chisquare(observed, expected)` with `ddof=0`
/// (SciPy 1.17.1, `_power_divergence` with `lambda_=1`). The p-value is the chi-square
/// survival function `scipy.special.chdtrc`, ported from xsf (Cephes `igamc`).
///
/// As in SciPy, the two sums must agree to a relative tolerance of `sqrt(f64::EPSILON)`
/// (about 1.49e-8): `|sum(o) - sum(e)| / min(sum(o), sum(e)) > rtol` is
/// [`StatsError::SumMismatch`]. A category with zero expected and non-zero observed count
/// gives an infinite statistic and p-value 0, as in SciPy.
///
/// Errors where SciPy returns NaN or raises: an empty input, different lengths, a
/// non-finite value, fewer than two categories ([`StatsError::TooFewCategories`]; SciPy's
/// p-value has zero degrees of freedom), and a statistic or p-value that is NaN, e.g. a
/// category with zero expected and zero observed count ([`StatsError::Undefined`]).
pub fn chisquare(observed: &[f64], expected: &[f64]) -> Result<ChiSquare, StatsError> {
    check_not_empty("observed", observed)?;
    check_not_empty("expected", expected)?;
    check_same_len("observed", observed, "expected", expected)?;
    check_finite("observed", observed)?;
    check_finite("expected", expected)?;
    let k = observed.len();
    if k < 2 {
        return Err(StatsError::TooFewCategories(k));
    }
    let rtol = f64::EPSILON.sqrt();
    let observed_sum = pairwise_sum(observed);
    let expected_sum = pairwise_sum(expected);
    let relative_diff = (observed_sum - expected_sum).abs() / observed_sum.min(expected_sum);
    if relative_diff > rtol {
        return Err(StatsError::SumMismatch {
            observed: observed_sum,
            expected: expected_sum,
            relative_diff,
            rtol,
        });
    }
    let terms: Vec<f64> = observed
        .iter()
        .zip(expected)
        .map(|(&o, &e)| {
            let d = o - e;
            d * d / e
        })
        .collect();
    let statistic = pairwise_sum(&terms);
    let dof = k - 1;
    let pvalue = chdtrc(dof as f64, statistic);
    if statistic.is_nan() || pvalue.is_nan() {
        return Err(StatsError::Undefined(
            "chi-square statistic (a category with zero expected frequency, or negative \
             frequencies)",
        ));
    }
    Ok(ChiSquare {
        statistic,
        pvalue,
        dof,
    })
}

/// The first Wasserstein distance between two empirical distributions,
/// `scipy.stats.wasserstein_distance(u, v)` without weights (SciPy 1.17.1, `_cdf_distance`
/// with `p=1`): the integral of `|U(x) - V(x)|` over the merged sorted values, with both
/// CDFs taken by `searchsorted(side='right')`. Inputs need not be sorted; ties and
/// different lengths are fine.
///
/// Errors: an empty input or a non-finite value (SciPy would return NaN or infinity).
pub fn wasserstein_distance(u: &[f64], v: &[f64]) -> Result<f64, StatsError> {
    check_not_empty("u", u)?;
    check_not_empty("v", v)?;
    check_finite("u", u)?;
    check_finite("v", v)?;
    let u_sorted = sorted_copy(u);
    let v_sorted = sorted_copy(v);
    // Sorting the concatenation, done as a merge of the two sorted copies (same sequence).
    let all_values = merge_sorted(&u_sorted, &v_sorted);
    let (nu, nv) = (u_sorted.len() as f64, v_sorted.len() as f64);
    let mut iu = 0;
    let mut iv = 0;
    let mut terms = Vec::with_capacity(all_values.len().saturating_sub(1));
    for pair in all_values.windows(2) {
        let x = pair[0];
        // searchsorted(side='right') of a non-decreasing sequence of queries
        while iu < u_sorted.len() && u_sorted[iu] <= x {
            iu += 1;
        }
        while iv < v_sorted.len() && v_sorted[iv] <= x {
            iv += 1;
        }
        let u_cdf = iu as f64 / nu;
        let v_cdf = iv as f64 / nv;
        let delta = pair[1] - pair[0];
        terms.push((u_cdf - v_cdf).abs() * delta);
    }
    let distance = pairwise_sum(&terms);
    if !distance.is_finite() {
        return Err(StatsError::Undefined("Wasserstein distance overflows"));
    }
    Ok(distance)
}

/// The Jensen-Shannon distance (the square root of the divergence, natural logarithm),
/// `scipy.spatial.distance.jensenshannon(p, q)` (SciPy 1.17.1): `p` and `q` are first
/// divided by their sums, then `sqrt((rel_entr(p, m).sum() + rel_entr(q, m).sum()) / 2)`
/// with `m = (p + q) / 2`. Zeros in `p` or `q` are fine (`0 log 0 = 0`).
///
/// Errors where SciPy returns NaN or infinity: an empty input, different lengths, a
/// non-finite or negative value, or a sum that is zero ([`StatsError::ZeroSum`]). A
/// divergence rounded just below zero gives 0 (SciPy: NaN).
pub fn jensenshannon(p: &[f64], q: &[f64]) -> Result<f64, StatsError> {
    check_not_empty("p", p)?;
    check_not_empty("q", q)?;
    check_same_len("p", p, "q", q)?;
    check_finite("p", p)?;
    check_finite("q", q)?;
    check_non_negative("p", p)?;
    check_non_negative("q", q)?;
    let p_sum = positive_sum("p", p)?;
    let q_sum = positive_sum("q", q)?;
    let mut left = Vec::with_capacity(p.len());
    let mut right = Vec::with_capacity(p.len());
    for (&pi, &qi) in p.iter().zip(q) {
        let pn = pi / p_sum;
        let qn = qi / q_sum;
        // (p + q) / 2.0, written as a product (the same rounding)
        let m = (pn + qn) * 0.5;
        left.push(rel_entr(pn, m));
        right.push(rel_entr(qn, m));
    }
    let js = pairwise_sum(&left) + pairwise_sum(&right);
    if js.is_nan() {
        return Err(StatsError::Undefined("Jensen-Shannon divergence"));
    }
    Ok((js / 2.0).max(0.0).sqrt())
}

/// `scipy.special.rel_entr(x, y)`: `x log(x / y)`, 0 for `x == 0 <= y`, infinity else.
pub(super) fn rel_entr(x: f64, y: f64) -> f64 {
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x <= 0.0 || y <= 0.0 {
        if x == 0.0 && y >= 0.0 {
            return 0.0;
        }
        return f64::INFINITY;
    }
    let ratio = x / y;
    if 0.5 < ratio && ratio < 2.0 {
        // When x and y are close, this is more accurate.
        return x * ((x - y) / y).ln_1p();
    }
    if f64::MIN_POSITIVE < ratio && ratio < f64::INFINITY {
        return x * ratio.ln();
    }
    // x and y are so far apart that x / y under- or overflows.
    x * (x.ln() - y.ln())
}

/// Population stability index of two binned distributions (no SciPy equivalent):
///
/// `PSI = sum_i (a_i - e_i) * ln(a_i / e_i)`
///
/// where `e_i` and `a_i` are the bin proportions of `expected` (the reference) and
/// `actual` (the current window): each input is divided by its sum, then every proportion
/// is floored at `eps` (`max(share, eps)`) so that an empty bin gives a large but finite
/// term; the floored proportions are not renormalised. Bins must line up one to one.
///
/// Errors: an empty input, different lengths, a non-finite or negative count, a sum that
/// is zero, or `eps` that is not a positive finite number.
pub fn psi(expected: &[f64], actual: &[f64], eps: f64) -> Result<f64, StatsError> {
    check_not_empty("expected", expected)?;
    check_not_empty("actual", actual)?;
    check_same_len("expected", expected, "actual", actual)?;
    check_finite("expected", expected)?;
    check_finite("actual", actual)?;
    check_non_negative("expected", expected)?;
    check_non_negative("actual", actual)?;
    if !eps.is_finite() || eps <= 0.0 {
        return Err(StatsError::InvalidParameter {
            name: "eps",
            reason: "must be a positive finite number",
        });
    }
    let expected_sum = positive_sum("expected", expected)?;
    let actual_sum = positive_sum("actual", actual)?;
    let terms: Vec<f64> = expected
        .iter()
        .zip(actual)
        .map(|(&e, &a)| {
            let e = (e / expected_sum).max(eps);
            let a = (a / actual_sum).max(eps);
            (a - e) * (a / e).ln()
        })
        .collect();
    Ok(pairwise_sum(&terms))
}
