//! Drift statistics held to SciPy.
//!
//! Every function here is a port of the SciPy 1.17.1 routine named in its documentation
//! (BSD-3-Clause, Copyright the SciPy Developers; the special functions come from the
//! `xsf` library bundled with SciPy 1.17.1, which carries the Cephes and qd code by
//! Stephen L. Moshier and Yozo Hida et al.). The ports keep the reference algorithms,
//! branch thresholds and order of floating-point operations, so results agree with SciPy
//! to a few units in the last place; the tests in this file hold them to 1e-9 (absolute,
//! or relative for p-values below 1e-6).
//!
//! Where agreement is not bit-for-bit:
//! - NumPy sums large arrays pairwise; `pairwise_sum` reproduces that, but `np.vecdot`
//!   (Wasserstein), `np.convolve` and `np.matmul` (BLAS, in the Kolmogorov-Smirnov
//!   distribution) accumulate in an order that depends on the build, so those differ by
//!   rounding only (relative 1e-15 or so).
//! - SciPy's `_kolmogn` rescales some intermediate values with a NumPy `longdouble`
//!   (80-bit on x86-64); here they stay `f64`. This only touches p-values near 1.
//!
//! Inputs SciPy would turn into NaN (NaN data, empty samples, zero sums, `0/0` cells)
//! are a [`StatsError`] here instead; each function documents its cases.

#![allow(
    // Constants are copied digit for digit from the reference sources.
    clippy::excessive_precision,
    clippy::approx_constant,
    // Index loops mirror the reference algorithms line by line.
    clippy::needless_range_loop,
    clippy::comparison_chain
)]

/// Why a statistic could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatsError {
    #[error("`{0}` is empty")]
    Empty(&'static str),
    #[error("`{name}` has {len} values but `{other}` has {other_len}")]
    LengthMismatch {
        name: &'static str,
        len: usize,
        other: &'static str,
        other_len: usize,
    },
    #[error("`{name}` has NaN at index {index}")]
    Nan { name: &'static str, index: usize },
    #[error("`{name}` has a non-finite value at index {index}")]
    NonFinite { name: &'static str, index: usize },
    #[error("`{name}` has a negative value at index {index}")]
    Negative { name: &'static str, index: usize },
    #[error("`{0}` does not sum to a positive finite number")]
    ZeroSum(&'static str),
    #[error(
        "observed frequencies sum to {observed} and expected to {expected}: relative \
         difference {relative_diff:e} exceeds {rtol:e}"
    )]
    SumMismatch {
        observed: f64,
        expected: f64,
        relative_diff: f64,
        rtol: f64,
    },
    #[error("chi-square needs at least two categories, got {0}")]
    TooFewCategories(usize),
    #[error("invalid `{name}`: {reason}")]
    InvalidParameter {
        name: &'static str,
        reason: &'static str,
    },
    #[error("undefined result: {0}")]
    Undefined(&'static str),
}

mod chi2;
mod divergence;
mod double_double;
mod helpers;
mod kolmogorov;
mod ks;
mod smirnov;

// One module per distribution family; every name is reachable from every module (and the
// tests) through this one, as when they shared a file.
#[allow(unused_imports)]
use chi2::*;
pub use divergence::*;
#[allow(unused_imports)]
use double_double::*;
#[allow(unused_imports)]
use helpers::*;
#[allow(unused_imports)]
use kolmogorov::*;
pub use ks::*;
#[allow(unused_imports)]
use smirnov::*;

#[cfg(test)]
mod tests;
