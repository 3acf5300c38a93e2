//! Shared helpers: NumPy pairwise summation, sorted merges, input checks.

#![allow(
    // Constants are copied digit for digit from the reference sources.
    clippy::excessive_precision,
    clippy::approx_constant,
    // Index loops mirror the reference algorithms line by line.
    clippy::needless_range_loop,
    clippy::comparison_chain
)]

use super::*;

/// NumPy's pairwise summation (`np.sum` of a contiguous float64 array): blocks of up to
/// 128 values summed with eight accumulators, larger arrays split in halves.
pub(super) fn pairwise_sum(a: &[f64]) -> f64 {
    const BLOCKSIZE: usize = 128;
    let n = a.len();
    if n < 8 {
        let mut res = 0.0;
        for &x in a {
            res += x;
        }
        res
    } else if n <= BLOCKSIZE {
        let mut r = [0.0_f64; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - (n % 8) {
            for j in 0..8 {
                r[j] += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &x in &a[i..] {
            res += x;
        }
        res
    } else {
        // Halve, keeping the first part a multiple of the unroll factor.
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&a[..n2]) + pairwise_sum(&a[n2..])
    }
}

/// The number of values `<= x` in `sorted` (`np.searchsorted(sorted, x, side='right')`).
/// The sorted sequence of both sorted slices together (what sorting their concatenation
/// gives), in linear time.
pub(super) fn merge_sorted(a: &[f64], b: &[f64]) -> Vec<f64> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].total_cmp(&b[j]).is_le() {
            out.push(a[i]);
            i += 1;
        } else {
            out.push(b[j]);
            j += 1;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

pub(super) fn sorted_copy(values: &[f64]) -> Vec<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    sorted
}

pub(super) fn check_not_empty(name: &'static str, values: &[f64]) -> Result<(), StatsError> {
    if values.is_empty() {
        return Err(StatsError::Empty(name));
    }
    Ok(())
}

pub(super) fn check_same_len(
    name: &'static str,
    values: &[f64],
    other: &'static str,
    other_values: &[f64],
) -> Result<(), StatsError> {
    if values.len() != other_values.len() {
        return Err(StatsError::LengthMismatch {
            name,
            len: values.len(),
            other,
            other_len: other_values.len(),
        });
    }
    Ok(())
}

pub(super) fn check_no_nan(name: &'static str, values: &[f64]) -> Result<(), StatsError> {
    match values.iter().position(|v| v.is_nan()) {
        Some(index) => Err(StatsError::Nan { name, index }),
        None => Ok(()),
    }
}

pub(super) fn check_finite(name: &'static str, values: &[f64]) -> Result<(), StatsError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(StatsError::NonFinite { name, index }),
        None => Ok(()),
    }
}

pub(super) fn check_non_negative(name: &'static str, values: &[f64]) -> Result<(), StatsError> {
    match values.iter().position(|&v| v < 0.0) {
        Some(index) => Err(StatsError::Negative { name, index }),
        None => Ok(()),
    }
}

/// `np.sum(values)`, which must be positive and finite.
pub(super) fn positive_sum(name: &'static str, values: &[f64]) -> Result<f64, StatsError> {
    let sum = pairwise_sum(values);
    if sum.is_finite() && sum > 0.0 {
        Ok(sum)
    } else {
        Err(StatsError::ZeroSum(name))
    }
}
