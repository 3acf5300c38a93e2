//! The Kolmogorov distribution: `scipy.stats.kstwo.sf` (`scipy/stats/_ksstats.py`).

#![allow(
    // Constants are copied digit for digit from the reference sources.
    clippy::excessive_precision,
    clippy::approx_constant,
    // Index loops mirror the reference algorithms line by line.
    clippy::needless_range_loop,
    clippy::comparison_chain
)]

use super::*;

/// 2^128 and 2^-128 (`_EP128`, `_EM128`).
pub(super) const EP128: f64 = 3.402823669209385e38;
pub(super) const EM128: f64 = 2.938735877055719e-39;
pub(super) const E128: i32 = 128;
/// `np.log(2 * np.pi)`, `np.sqrt(2 * np.pi)`, `np.pi ** 2`, `np.pi ** 4`, `np.pi ** 6`.
pub(super) const LOG_2PI: f64 = 1.8378770664093453;
pub(super) const SQRT_2PI: f64 = 2.5066282746310002;
pub(super) const PI_SQUARED: f64 = 9.869604401089358;
pub(super) const PI_FOUR: f64 = 97.40909103400242;
pub(super) const PI_SIX: f64 = 961.3891935753043;
pub(super) const MIN_LOG: f64 = -708.0;
/// Stirling coefficients B_2j / (2j (2j - 1)), j = 8..1 (`_STIRLING_COEFFS`).
pub(super) const STIRLING_COEFFS: [f64; 8] = [
    -2.955065359477124183e-2,
    6.4102564102564102564e-3,
    -1.9175269175269175269e-3,
    8.4175084175084175084e-4,
    -5.952380952380952381e-4,
    7.9365079365079365079e-4,
    -2.7777777777777777778e-3,
    8.3333333333333333333e-2,
];

/// `kstwo.sf(x, n)`: the frozen-distribution wrapper (support `(0.5 / n, 1)`) around
/// `kolmogn(n, x, cdf=False)`. `n` is a positive integer held in an `f64`.
pub(super) fn kstwo_sf(x: f64, n: f64) -> f64 {
    if x.is_nan() || n.is_nan() || n < 1.0 {
        return f64::NAN;
    }
    if x <= 0.5 / n {
        return 1.0;
    }
    if x >= 1.0 {
        return 0.0;
    }
    kolmogn_sf(n as i64, x)
}

/// `_kolmogn(n, x, cdf=False)` (Simard & L'Ecuyer 2011).
pub(super) fn kolmogn_sf(n: i64, x: f64) -> f64 {
    if x >= 1.0 {
        return 0.0;
    }
    if x <= 0.0 {
        return 1.0;
    }
    let nf = n as f64;
    let t = nf * x;
    if t <= 1.0 {
        // Ruben-Gambino: 1/2n <= x <= 1/n
        if t <= 0.5 {
            return 1.0;
        }
        let prob = if n <= 140 {
            let mut prob = 1.0;
            for i in 1..=n {
                prob *= (i as f64 * (1.0 / nf)) * (2.0 * t - 1.0);
            }
            prob
        } else {
            (log_nfactorial_div_n_pow_n(nf) + nf * (2.0 * t - 1.0).ln()).exp()
        };
        return clip_prob(1.0 - prob);
    }
    if t >= (n - 1) as f64 {
        // Ruben-Gambino
        let prob = 2.0 * (1.0 - x).powf(nf);
        return clip_prob(prob);
    }
    if x >= 0.5 {
        // Exact: 2 * smirnov
        return clip_prob(2.0 * smirnov_sf(n, x));
    }
    let nxsquared = t * x;
    if n <= 140 {
        if nxsquared <= 0.754693 {
            let cdf = clip_prob(kolmogn_dmtw_cdf(n, x));
            return clip_prob(1.0 - cdf);
        }
        if nxsquared <= 4.0 {
            let cdf = clip_prob(kolmogn_pomeranz_cdf(n, x));
            return clip_prob(1.0 - cdf);
        }
        // Miller approximation of 2 * smirnov
        return clip_prob(2.0 * smirnov_sf(n, x));
    }
    // The SF has its own cutoffs.
    if nxsquared >= 370.0 {
        return 0.0;
    }
    if nxsquared >= 2.2 {
        return clip_prob(2.0 * smirnov_sf(n, x));
    }
    let cdf = if nxsquared >= 18.0 {
        1.0
    } else if n <= 100_000 && nf * x.powf(1.5) <= 1.4 {
        clip_prob(kolmogn_dmtw_cdf(n, x))
    } else {
        kolmogn_pelzgood_cdf(n, x)
    };
    clip_prob(1.0 - cdf)
}

/// `np.clip(p, 0, 1)` (NaN stays NaN).
pub(super) fn clip_prob(p: f64) -> f64 {
    p.clamp(0.0, 1.0)
}

/// `_log_nfactorial_div_n_pow_n`: log(n! / n^n) by Stirling's series.
pub(super) fn log_nfactorial_div_n_pow_n(n: f64) -> f64 {
    let rn = 1.0 / n;
    // np.polyval(_STIRLING_COEFFS, rn / n)
    let y = rn / n;
    let mut pv = 0.0;
    for c in STIRLING_COEFFS {
        pv = pv * y + c;
    }
    n.ln() / 2.0 - n + LOG_2PI / 2.0 + rn * pv
}

/// Square matrix product `a @ b` (row-major, `m x m`).
pub(super) fn matmul(a: &[f64], b: &[f64], m: usize) -> Vec<f64> {
    let mut c = vec![0.0; m * m];
    for i in 0..m {
        for k in 0..m {
            let aik = a[i * m + k];
            for j in 0..m {
                c[i * m + j] += aik * b[k * m + j];
            }
        }
    }
    c
}

/// `_kolmogn_DMTW`: Pr(D_n <= d) by the Durbin matrix algorithm as organised by
/// Marsaglia, Tsang & Wang (2003).
pub(super) fn kolmogn_dmtw_cdf(n: i64, d: f64) -> f64 {
    if d >= 1.0 {
        return 1.0;
    }
    let nd = n as f64 * d;
    if nd <= 0.5 {
        return 0.0;
    }
    let k = nd.ceil() as usize;
    let h = k as f64 - nd;
    let m = 2 * k - 1;
    let mf = m as f64;

    let mut v: Vec<f64> = (1..=m).map(|j| 1.0 - h.powf(j as f64)).collect();
    let mut w = vec![0.0; m];
    let mut fac = 1.0;
    for j in 1..=m {
        w[j - 1] = fac;
        fac /= j as f64;
        v[j - 1] *= fac;
    }
    let tt = (2.0 * h - 1.0).max(0.0).powf(mf) - 2.0 * h.powf(mf);
    v[m - 1] = (1.0 + tt) * fac;

    let mut hm = vec![0.0; m * m];
    for i in 1..m {
        // H[i - 1:, i] = w[:m - i + 1]
        for r in (i - 1)..m {
            hm[r * m + i] = w[r - (i - 1)];
        }
    }
    for r in 0..m {
        hm[r * m] = v[r];
    }
    for c in 0..m {
        hm[(m - 1) * m + c] = v[m - 1 - c];
    }

    let mut hpwr = vec![0.0; m * m];
    for i in 0..m {
        hpwr[i * m + i] = 1.0;
    }
    let mut nn = n;
    let mut expnt: i32 = 0;
    let mut hexpnt: i32 = 0;
    let kk = (k - 1) * m + (k - 1);
    while nn > 0 {
        if nn % 2 != 0 {
            hpwr = matmul(&hpwr, &hm, m);
            expnt += hexpnt;
        }
        hm = matmul(&hm, &hm, m);
        hexpnt *= 2;
        if hm[kk].abs() > EP128 {
            for e in hm.iter_mut() {
                *e /= EP128;
            }
            hexpnt += E128;
        }
        nn /= 2;
    }

    let mut p = hpwr[kk];
    let nf = n as f64;
    for i in 1..=n {
        p = i as f64 * p / nf;
        if p.abs() < EM128 {
            p *= EP128;
            expnt -= E128;
        }
    }
    if expnt != 0 {
        p = ldexp(p, expnt);
    }
    p
}

/// `_pomeranz_compute_j1j2`: the interval of row `i` that can be non-zero.
pub(super) fn pomeranz_compute_j1j2(
    i: i64,
    n: i64,
    ll: i64,
    ceilf: i64,
    roundf: i64,
) -> (i64, i64) {
    let (j1, j2) = if i == 0 {
        (-ll - ceilf - 1, ll + ceilf - 1)
    } else {
        let ip1div2 = (i + 1) / 2;
        let ip1mod2 = (i + 1) % 2;
        if ip1mod2 == 0 {
            if ip1div2 == n + 1 {
                (n - ll - ceilf - 1, n + ll + ceilf - 1)
            } else {
                (ip1div2 - 1 - ll - roundf - 1, ip1div2 + ll - 1 + ceilf - 1)
            }
        } else {
            (ip1div2 - 1 - ll - 1, ip1div2 + ll + roundf - 1)
        }
    };
    ((j1 + 2).max(0), j2.min(n))
}

/// `_kolmogn_Pomeranz`: Pr(D_n <= x) by the Pomeranz (1974) recursion. Returns NaN where
/// the reference would slice outside its arrays (not reached by its tests).
pub(super) fn kolmogn_pomeranz_cdf(n: i64, x: f64) -> f64 {
    let nf = n as f64;
    let t = nf * x;
    let ll = t.floor() as i64;
    let f = t - ll as f64;
    let g = f.min(1.0 - f);
    let ceilf = i64::from(f > 0.0);
    let roundf = i64::from(f > 0.5);
    let npwrs = (2 * (ll + 1)) as usize;
    let mut gpower = vec![0.0; npwrs];
    let mut twogpower = vec![0.0; npwrs];
    let mut onem2gpower = vec![0.0; npwrs];
    gpower[0] = 1.0;
    twogpower[0] = 1.0;
    onem2gpower[0] = 1.0;
    let mut expnt: i32 = 0;
    let g_over_n = g / nf;
    let two_g_over_n = 2.0 * g / nf;
    let one_minus_two_g_over_n = (1.0 - 2.0 * g) / nf;
    for m in 1..npwrs {
        let mf = m as f64;
        gpower[m] = gpower[m - 1] * g_over_n / mf;
        twogpower[m] = twogpower[m - 1] * two_g_over_n / mf;
        onem2gpower[m] = onem2gpower[m - 1] * one_minus_two_g_over_n / mf;
    }

    let mut v0 = vec![0.0; npwrs];
    let mut v1 = vec![0.0; npwrs];
    v1[0] = 1.0;
    let mut v0s: i64 = 0;
    let mut v1s: i64 = 0;
    let (mut j1, _) = pomeranz_compute_j1j2(0, n, ll, ceilf, roundf);
    for i in 1..(2 * n + 2) {
        let k1 = j1;
        std::mem::swap(&mut v0, &mut v1);
        std::mem::swap(&mut v0s, &mut v1s);
        v1.fill(0.0);
        let (next_j1, j2) = pomeranz_compute_j1j2(i, n, ll, ceilf, roundf);
        j1 = next_j1;
        let pwrs = if i == 1 || i == 2 * n + 1 {
            &gpower
        } else if i % 2 != 0 {
            &twogpower
        } else {
            &onem2gpower
        };
        let ln2 = j2 - k1 + 1;
        if ln2 > 0 {
            // conv = np.convolve(V0[k1 - V0s:k1 - V0s + ln2], pwrs[:ln2])
            let start = k1 - v0s;
            let conv_start = j1 - k1;
            let conv_len = j2 - j1 + 1;
            if start < 0
                || start + ln2 > npwrs as i64
                || ln2 > npwrs as i64
                || conv_start < 0
                || conv_len < 0
                || conv_start + conv_len > 2 * ln2 - 1
                || conv_len > npwrs as i64
            {
                return f64::NAN;
            }
            let (start, ln2) = (start as usize, ln2 as usize);
            let (conv_start, conv_len) = (conv_start as usize, conv_len as usize);
            let seg = &v0[start..start + ln2];
            for idx in 0..conv_len {
                let kk = conv_start + idx;
                let lo = (kk + 1).saturating_sub(ln2);
                let hi = kk.min(ln2 - 1);
                let mut s = 0.0;
                for ii in lo..=hi {
                    s += seg[ii] * pwrs[kk - ii];
                }
                v1[idx] = s;
            }
            // Scale to avoid underflow.
            let vmax = v1.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if 0.0 < vmax && vmax < EM128 {
                for e in v1.iter_mut() {
                    *e *= EP128;
                }
                expnt -= E128;
            }
            v1s = v0s + j1 - k1;
        }
    }

    let Some(&start) = usize::try_from(n - v1s).ok().and_then(|i| v1.get(i)) else {
        return f64::NAN;
    };
    let mut ans = start;
    for m in 1..=n {
        if ans.abs() > EP128 {
            ans *= EM128;
            expnt += E128;
        }
        ans *= m as f64;
    }
    if expnt != 0 {
        ans = ldexp(ans, expnt);
    }
    clip_prob(ans)
}

/// `_kolmogn_PelzGood`: the Pelz-Good (1976) approximation of Pr(D_n <= x).
pub(super) fn kolmogn_pelzgood_cdf(n: i64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let nf = n as f64;
    let z = nf.sqrt() * x;
    let zsquared = z.powf(2.0);
    let zthree = z.powf(3.0);
    let zfour = z.powf(4.0);
    let zsix = z.powf(6.0);

    let qlog = -PI_SQUARED / 8.0 / zsquared;
    if qlog < MIN_LOG {
        return 0.0;
    }
    let q = qlog.exp();

    // Coefficients of terms in the sums for K1, K2 and K3
    let k1a = -zsquared;
    let k1b = PI_SQUARED / 4.0;

    let k2a = 6.0 * zsix + 2.0 * zfour;
    let k2b = (2.0 * zfour - 5.0 * zsquared) * PI_SQUARED / 4.0;
    let k2c = PI_FOUR * (1.0 - 2.0 * zsquared) / 16.0;

    let k3d = PI_SIX * (5.0 - 30.0 * zsquared) / 64.0;
    let k3c = PI_FOUR * (-60.0 * zsquared + 212.0 * zfour) / 16.0;
    let k3b = PI_SQUARED * (135.0 * zfour - 96.0 * zsix) / 4.0;
    let k3a = -30.0 * zsix - 90.0 * z.powf(8.0);

    let mut k0to3 = [0.0_f64; 4];
    // Horner scheme for sum c_i q^(i^2), reduced to a sum over odd integers.
    let maxk = (16.0 * z / std::f64::consts::PI).ceil() as i64;
    for k in (1..=maxk).rev() {
        let m = 2 * k - 1;
        let msquared = (m * m) as f64;
        let mfour = (m * m * m * m) as f64;
        let msix = (m * m * m * m * m * m) as f64;
        let qpower = q.powf((8 * k) as f64);
        let coeffs = [
            1.0,
            k1a + k1b * msquared,
            k2a + k2b * msquared + k2c * mfour,
            k3a + k3b * msquared + k3c * mfour + k3d * msix,
        ];
        for i in 0..4 {
            k0to3[i] *= qpower;
            k0to3[i] += coeffs[i];
        }
    }
    let denominators = [z, 6.0 * zfour, 72.0 * z.powf(7.0), 6480.0 * z.powf(10.0)];
    for i in 0..4 {
        k0to3[i] *= q;
        k0to3[i] *= SQRT_2PI;
        k0to3[i] /= denominators[i];
    }

    // The other sums, over all integers k:
    // K_2: (pi^2 k^2) q^(k^2), K_3: (3 pi^2 k^2 z^2 - pi^4 k^4) q^(k^2)
    let q = (-PI_SQUARED / 2.0 / zsquared).exp();
    let sqrt3z = 3.0_f64.sqrt() * z;
    let mut k2terms = Vec::with_capacity(maxk.max(0) as usize);
    let mut k3terms = Vec::with_capacity(maxk.max(0) as usize);
    for k in (1..=maxk).rev() {
        let ksquared = (k * k) as f64;
        let qpwer = q.powf(ksquared);
        let kspi = std::f64::consts::PI * k as f64;
        k2terms.push(ksquared * qpwer);
        k3terms.push((sqrt3z + kspi) * (sqrt3z - kspi) * ksquared * qpwer);
    }
    let mut k2extra = pairwise_sum(&k2terms);
    k2extra *= PI_SQUARED * SQRT_2PI / (-36.0 * zthree);
    k0to3[2] += k2extra;
    let mut k3extra = pairwise_sum(&k3terms);
    k3extra *= PI_SQUARED * SQRT_2PI / (216.0 * zsix);
    k0to3[3] += k3extra;
    for i in 0..4 {
        k0to3[i] /= nf.powf(i as f64 / 2.0);
    }
    // Python's sum(): left to right from 0.
    let mut ksum = 0.0;
    for term in k0to3 {
        ksum += term;
    }
    ksum
}
