//! One-sided Smirnov: `scipy.special.smirnov` (xsf `cephes/kolmogorov.h`, `_smirnov`).

#![allow(
    // Constants are copied digit for digit from the reference sources.
    clippy::excessive_precision,
    clippy::approx_constant,
    // Index loops mirror the reference algorithms line by line.
    clippy::needless_range_loop,
    clippy::comparison_chain
)]

use super::*;

/// `MINLOG` of xsf `cephes/const.h` (about log 2^-1075).
pub(super) const CEPHES_MINLOG: f64 = -7.451332191019412076235E2;
/// `SMIRNOV_MAX_COMPUTE_N`: above it, an approximation is used.
pub(super) const SMIRNOV_MAX_COMPUTE_N: i64 = 1_000_000;
/// `SM_UPPER_MAX_TERMS`, `SM_UPPERSUM_MIN_N`.
pub(super) const SM_UPPER_MAX_TERMS: i64 = 3;
pub(super) const SM_UPPERSUM_MIN_N: i64 = 10;
/// `SM_MAX_EXPONENT`.
pub(super) const SM_MAX_EXPONENT: i32 = 960;

/// `smirnov(n, x)`: Pr(D+_n >= x), the survival function only (the reference computes
/// the CDF and density alongside; they do not feed back into it).
pub(super) fn smirnov_sf(n: i64, x: f64) -> f64 {
    if x.is_nan() || n <= 0 || !(0.0..=1.0).contains(&x) {
        return f64::NAN;
    }
    if n == 1 {
        return 1.0 - x;
    }
    if x == 0.0 {
        return 1.0;
    }
    if x == 1.0 {
        return 0.0;
    }
    let nf = n as f64;
    let (alpha, nxfl) = mod_nx(n, x);
    let mut n1mxfl = n - nxfl - i64::from(alpha != 0.0);
    let mut n1mxceil = n - nxfl;
    // If alpha is 0, don't include the last term in either summation.
    if alpha == 0.0 {
        n1mxfl -= 1;
        n1mxceil += 1;
    }

    // Special case: x <= 1/n
    if nxfl == 0 || (nxfl == 1 && alpha == 0.0) {
        let t = pow2(1.0, x, n - 1);
        let cdf = x * t;
        return 1.0 - cdf;
    }
    // Special case: x is so big, the sf underflows double64
    if (-2 * n) as f64 * x * x < CEPHES_MINLOG {
        return 0.0;
    }
    // Special case: x >= 1 - 1/n
    if nxfl >= n - 1 {
        return pow2(1.0, -x, n);
    }
    // Special case: n is so big, take too long to compute
    if n > SMIRNOV_MAX_COMPUTE_N {
        // p ~ e^(-(6nx+1)^2 / 18n)
        let logp = -(6.0 * nf * x + 1.0).powf(2.0) / 18.0 / nf;
        // Maximise precision for small p-value.
        if logp < -std::f64::consts::LN_2 {
            return logp.exp();
        }
        let cdf = -cephes_expm1(logp);
        return 1.0 - cdf;
    }

    // Use the upper sum if n is large enough, and x is small enough and the number of
    // terms is going to be small enough.
    let n_upper_terms = n - n1mxceil + 1;
    let use_upper_sum = (n_upper_terms <= 1 && x < 0.5)
        || (n >= SM_UPPERSUM_MIN_N && n_upper_terms <= SM_UPPER_MAX_TERMS && x <= 0.5 / nf.sqrt());

    let vmid = n / 2;
    let mut cman = Dd::new(1.0);
    let mut cexpt: i32 = 0;
    let (start, step, n_terms, first_aj) = if use_upper_sum {
        (n, -1, n - n1mxceil + 1, pow4_dd(1.0, x, 1.0, 0.0, n - 1))
    } else {
        let t2 = pow4_dd(1.0, -x, 1.0, 0.0, n);
        (0, 1, n1mxfl + 1, t2 / x)
    };
    let mut aj_sum = Dd::new(0.0) + first_aj;
    update_binomial(&mut cman, &mut cexpt, n, 0);
    for j in 1..n_terms {
        let v = start + j * step;
        let aj = compute_av(n, x, v, cman, cexpt);
        if aj.is_finite() && !aj.is_zero() {
            aj_sum += aj;
        }
        // Safe to terminate early?
        if !aj.is_zero() {
            if ((4 * (n_terms - j)) as f64 * aj.hi.abs()) < (f64::EPSILON * aj_sum.hi)
                && j != n_terms - 1
            {
                break;
            }
        } else if j > vmid {
            break;
        }
        update_binomial(&mut cman, &mut cexpt, n, j);
    }
    let prob = (aj_sum * x).hi;
    let sf = if step < 0 { 1.0 - prob } else { prob };
    sf.clamp(0.0, 1.0)
}

/// `modNX`: `(alpha, floor(n x))` with `n x = floor(n x) + alpha` computed exactly.
pub(super) fn mod_nx(n: i64, x: f64) -> (f64, i64) {
    let nx = Dd::new(x) * n as f64;
    let nxfloor_d = nx.floor();
    let alpha_d = nx - nxfloor_d;
    let mut alpha = alpha_d.hi;
    let mut nxfloor = nxfloor_d.hi as i64;
    if alpha == 1.0 {
        nxfloor += 1;
        alpha = 0.0;
    }
    (alpha, nxfloor)
}

/// `updateBinomial`: C(n, j+1) from C(n, j), kept as a mantissa and a binary exponent.
pub(super) fn update_binomial(cman: &mut Dd, cexpt: &mut i32, n: i64, j: i64) {
    let rat = Dd::new((n - j) as f64) / (j as f64 + 1.0);
    let (man2, expt) = (*cman * rat).frexp();
    *cexpt += expt;
    *cman = man2;
}

/// `pow_D`: `a^m` for a double-double `a`.
pub(super) fn pow_dd(a: Dd, m: i64) -> Dd {
    if m <= 0 {
        if m == 0 {
            return Dd::new(1.0);
        }
        return Dd::new(1.0) / pow_dd(a, -m);
    }
    if a.is_zero() {
        return Dd::new(0.0);
    }
    let mf = m as f64;
    let ans = a.hi.powf(mf);
    let r = a.lo / a.hi;
    let mut adj = mf * r;
    if adj.abs() > 1e-8 {
        if adj.abs() < 1e-4 {
            // First two terms of the Taylor series for (1 + r)^m
            adj += (mf * r) * ((m - 1) as f64 / 2.0 * r);
        } else {
            // exp of the scaled log
            adj = cephes_expm1(mf * r.ln_1p());
        }
    }
    Dd::new(ans) + ans * adj
}

/// `pow2`: `(a + b)^m` as a double.
pub(super) fn pow2(a: f64, b: f64, m: i64) -> f64 {
    pow_dd(Dd::new(a) + b, m).hi
}

/// `nextPowerOf2` (despite its name, the reference returns `x` rounded up by one ulp).
pub(super) fn next_power_of_2(x: f64) -> f64 {
    let q = ldexp(x, 1 - 53);
    let mut l = (q + x).abs();
    if l == 0.0 {
        l = x.abs();
    } else {
        let lint = l as i32;
        if f64::from(lint) == l {
            l = f64::from(lint);
        }
    }
    l
}

/// `pow2Scaled_D`: `a^m = significand * 2^exponent`, returned as `(significand, exponent)`.
pub(super) fn pow2_scaled_dd(a: Dd, m: i64) -> (Dd, i64) {
    let mut max_expt = i64::from(SM_MAX_EXPONENT);
    if m <= 0 {
        if m == 0 {
            return (Dd::new(1.0), 0);
        }
        let (ans, a_e1) = pow2_scaled_dd(a, -m);
        let (ans, a_e2) = (Dd::new(1.0) / ans).frexp();
        return (ans, -a_e1 + i64::from(a_e2));
    }
    let (y, y_e) = a.frexp();
    let y_e = i64::from(y_e);
    if m == 1 {
        return (y, y_e);
    }
    // Quick check to see if we might need to break up the exponentiation.
    let mf = m as f64;
    let max_exponent = f64::from(SM_MAX_EXPONENT);
    if mf * (y.hi - 1.0) / y.hi < -max_exponent * std::f64::consts::LN_2 {
        // Now do it carefully, calling log()
        let lg2y = y.hi.ln() / std::f64::consts::LN_2;
        let lg_ans = mf * lg2y;
        if lg_ans <= -max_exponent {
            max_expt = (next_power_of_2(-max_exponent / lg2y + 1.0) / 2.0) as i32 as i64;
        }
    }
    if max_expt <= 0 || m <= max_expt {
        let (ans, ans_e) = pow_dd(y, m).frexp();
        return (ans, i64::from(ans_e) + m * y_e);
    }
    let q = m / max_expt;
    let r = m % max_expt;
    // y^m = (y^maxExpt)^q * y^r
    let (y2r, y2r_e) = pow2_scaled_dd(y, r);
    let (y2m, y2m_e) = pow2_scaled_dd(y, max_expt);
    let (y2mq, y2mq_e) = pow2_scaled_dd(y2m, q);
    let (ans, ans_e) = (y2r * y2mq).frexp();
    let y2mq_e = y2mq_e + y2m_e * q;
    let ans_e = i64::from(ans_e) + y2mq_e + y2r_e + m * y_e;
    (ans, ans_e)
}

/// `pow4_D`: `((a + b) / (c + d))^m`.
pub(super) fn pow4_dd(a: f64, b: f64, c: f64, d: f64, m: i64) -> Dd {
    if m <= 0 {
        if m == 0 {
            return Dd::new(1.0);
        }
        return pow4_dd(c, d, a, b, -m);
    }
    let num = Dd::new(a) + b;
    let den = Dd::new(c) + d;
    if num.is_zero() {
        return if den.is_zero() {
            Dd {
                hi: f64::NAN,
                lo: f64::NAN,
            }
        } else {
            Dd::new(0.0)
        };
    }
    if den.is_zero() {
        let inf = if num.is_negative() {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
        return Dd { hi: inf, lo: inf };
    }
    pow_dd(num / den, m)
}

/// `computeAv`: one term `C(n, v) (1 - x - v/n)^(n - v) (x + v/n)^(v - 1)`.
pub(super) fn compute_av(n: i64, x: f64, v: i64, cman: Dd, cexpt: i32) -> Dd {
    let nf = n as f64;
    let t2x = Dd::new((n - v) as f64) / nf - x; // 1 - x - v/n
    let (t2, t2_e) = pow2_scaled_dd(t2x, n - v);
    let t1x = Dd::new(v as f64) / nf + x; // x + v/n
    let (t1, t1_e) = pow2_scaled_dd(t1x, v - 1);
    let ans = (t1 * t2) * cman;
    let ans_e = i64::from(cexpt) + t1_e + t2_e;
    let ans_e = ans_e.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
    ans.ldexp(ans_e)
}
