//! Two-sample Kolmogorov-Smirnov: `scipy.stats.ks_2samp` (`scipy/stats/_stats_py.py`).

#![allow(
    // Constants are copied digit for digit from the reference sources.
    clippy::excessive_precision,
    clippy::approx_constant,
    // Index loops mirror the reference algorithms line by line.
    clippy::needless_range_loop,
    clippy::comparison_chain
)]

use super::*;

/// How [`ks_2samp`] computed the p-value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KsMethod {
    /// The exact null distribution (Hodges 1958; Viehmann 2021).
    Exact,
    /// The Kolmogorov distribution of `n = round(n1 n2 / (n1 + n2))` (`kstwo.sf`).
    Asymp,
}

/// Result of [`ks_2samp`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ks {
    /// The largest distance between the two empirical distribution functions.
    pub statistic: f64,
    /// Two-sided p-value.
    pub pvalue: f64,
    pub method: KsMethod,
}

/// `MAX_AUTO_N` of `scipy.stats.ks_2samp`: method `auto` is exact up to this sample size.
pub(super) const MAX_AUTO_N: usize = 10_000;

/// Two-sided two-sample Kolmogorov-Smirnov test, `scipy.stats.ks_2samp(a, b)` with
/// `alternative='two-sided', method='auto'` (SciPy 1.17.1, `scipy/stats/_stats_py.py`).
///
/// The samples need not be sorted. Ties are handled as SciPy does: both empirical CDFs are
/// evaluated at every observation with `searchsorted(side='right')`. Method `auto` is exact
/// when `max(n1, n2) <= 10000`; when the exact computation fails numerically (its result
/// leaves `[0, 1]`) it falls back to the asymptotic one, as SciPy does (with its warning),
/// and [`Ks::method`] says which one produced the p-value. In exact mode the statistic is
/// SciPy's, rounded to a multiple of `1 / lcm(n1, n2)`.
///
/// Errors: an empty sample ([`StatsError::Empty`]) or a NaN ([`StatsError::Nan`]).
/// Infinities are ordinary (extreme) observations.
pub fn ks_2samp(a: &[f64], b: &[f64]) -> Result<Ks, StatsError> {
    check_not_empty("a", a)?;
    check_not_empty("b", b)?;
    check_no_nan("a", a)?;
    check_no_nan("b", b)?;
    let data1 = sorted_copy(a);
    let data2 = sorted_copy(b);
    let n1 = data1.len();
    let n2 = data2.len();
    let (n1f, n2f) = (n1 as f64, n2 as f64);

    // cddiffs = searchsorted(data1, data_all, 'right') / n1 - searchsorted(data2, ...) / n2,
    // evaluated by one merge walk over both sorted samples: the queries come in
    // non-decreasing order, so each `searchsorted` is a pointer that only moves forward
    // (the same counts as a binary search per observation, in linear time).
    let mut max_s = f64::NEG_INFINITY;
    let mut min_diff = f64::INFINITY;
    let (mut i1, mut i2) = (0usize, 0usize);
    loop {
        let x = match (data1.get(i1), data2.get(i2)) {
            (Some(a), Some(b)) => {
                if a <= b {
                    *a
                } else {
                    *b
                }
            }
            (Some(a), None) => *a,
            (None, Some(b)) => *b,
            (None, None) => break,
        };
        while i1 < n1 && data1[i1] <= x {
            i1 += 1;
        }
        while i2 < n2 && data2[i2] <= x {
            i2 += 1;
        }
        let diff = i1 as f64 / n1f - i2 as f64 / n2f;
        max_s = max_s.max(diff);
        min_diff = min_diff.min(diff);
    }
    let min_s = (-min_diff).clamp(0.0, 1.0);
    let mut d = if min_s > max_s { min_s } else { max_s };

    let g = gcd(n1, n2);
    let mut method = if n1.max(n2) <= MAX_AUTO_N {
        KsMethod::Exact
    } else {
        KsMethod::Asymp
    };
    let mut prob = f64::NEG_INFINITY;
    if method == KsMethod::Exact {
        let (success, d_rounded, p) = attempt_exact_2kssamp(n1 as i64, n2 as i64, g as i64, d);
        d = d_rounded;
        if success {
            prob = p;
        } else {
            method = KsMethod::Asymp;
        }
    }
    if method == KsMethod::Asymp {
        let (m, n) = if n1f >= n2f { (n1f, n2f) } else { (n2f, n1f) };
        let en = m * n / (m + n);
        prob = kstwo_sf(d, en.round_ties_even());
    }
    let pvalue = prob.clamp(0.0, 1.0);
    if pvalue.is_nan() || d.is_nan() {
        return Err(StatsError::Undefined("Kolmogorov-Smirnov p-value"));
    }
    Ok(Ks {
        statistic: d,
        pvalue,
        method,
    })
}

pub(super) fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

/// `_attempt_exact_2kssamp` (two-sided): `(success, d rounded to the lattice, p)`.
pub(super) fn attempt_exact_2kssamp(n1: i64, n2: i64, g: i64, d: f64) -> (bool, f64, f64) {
    let lcm = (n1 / g) * n2;
    let h = (d * lcm as f64).round_ties_even() as i64;
    let d = h as f64 / lcm as f64;
    if h == 0 {
        return (true, d, 1.0);
    }
    let prob = if n1 == n2 {
        compute_prob_outside_square(n1, h)
    } else {
        compute_outer_prob_inside_method(n1, n2, g, h)
    };
    // `not (0 <= prob <= 1)`, NaN included.
    if !(0.0..=1.0).contains(&prob) {
        return (false, d, prob);
    }
    (true, d, prob)
}

/// `_compute_prob_outside_square`: the proportion of lattice paths from `(0, 0)` to
/// `(n, n)` that reach one of the lines `x - y = +-h`.
pub(super) fn compute_prob_outside_square(n: i64, h: i64) -> f64 {
    let mut p = 0.0;
    let mut k = (n as f64 / h as f64).floor() as i64;
    while k >= 0 {
        let mut p1 = 1.0;
        for j in 0..h {
            p1 = (n - k * h - j) as f64 * p1 / (n + k * h + j + 1) as f64;
        }
        p = p1 * (1.0 - p);
        k -= 1;
    }
    2.0 * p
}

/// `_compute_outer_prob_inside_method` (`scipy/stats/_stats_pythran.py`): the proportion
/// of lattice paths from `(0, 0)` to `(m, n)` that do not stay strictly inside
/// `|x/m - y/n| < h / lcm(m, n)`, by Viehmann's recursion for `1 - p`. Returns NaN (so the
/// caller falls back to the asymptotic method) where the reference would index outside its
/// work array, which its tests never reach.
pub(super) fn compute_outer_prob_inside_method(m: i64, n: i64, g: i64, h: i64) -> f64 {
    let (m, n) = if m < n { (n, m) } else { (m, n) };
    let mg = m / g;
    let ng = n / g;
    let mut minj: i64 = 0;
    let mut maxj: i64 = ((h as f64 / mg as f64).ceil() as i64).min(n + 1);
    let mut curlen = maxj - minj;
    let len_a = (2 * maxj + 2).min(n + 1).max(0) as usize;
    let mut a = vec![1.0_f64; len_a];
    let first = (maxj.max(0) as usize).min(len_a);
    a[..first].fill(0.0);
    for i in 1..=m {
        let lastminj = minj;
        let lastlen = curlen;
        minj = ((((ng * i - h) as f64) / (mg as f64)).floor() as i64 + 1).max(0);
        minj = minj.min(n);
        maxj = ((((ng * i + h) as f64) / (mg as f64)).ceil() as i64).min(n + 1);
        if maxj <= minj {
            return 1.0;
        }
        let mut val = if minj == 0 { 0.0 } else { 1.0 };
        let fi = i as f64;
        for jj in 0..(maxj - minj) {
            let j = jj + minj;
            let src = jj + minj - lastminj;
            if src < 0 || src as usize >= len_a || jj as usize >= len_a {
                return f64::NAN;
            }
            val = (a[src as usize] * fi + val * j as f64) / (i + j) as f64;
            a[jj as usize] = val;
        }
        curlen = maxj - minj;
        if lastlen > curlen {
            // A[maxj - minj : maxj - minj + (lastlen - curlen)] = 1 (NumPy clips the slice).
            let start = ((maxj - minj) as usize).min(len_a);
            let end = ((maxj - minj + (lastlen - curlen)) as usize).min(len_a);
            a[start..end].fill(1.0);
        }
    }
    match usize::try_from(maxj - minj - 1) {
        Ok(idx) if idx < len_a => a[idx],
        _ => f64::NAN,
    }
}
