use super::*;

// The expected values come from SciPy 1.17.1 (NumPy 2.4.6, CPython 3.11, x86-64),
// printed with `repr`. Shared Python preamble of the snippets quoted in each test:
//
//     import math
//     from scipy import stats
//     from scipy.spatial import distance
//
//     def lcg(seed, n):  # the same generator as `lcg` below
//         s = seed; out = []
//         for _ in range(n):
//             s = (s * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
//             out.append((s >> 11) / 9007199254740992.0)
//         return out

/// Knuth's MMIX linear congruential generator: `n` uniforms in `[0, 1)` with 53 bits.
fn lcg(seed: u64, n: usize) -> Vec<f64> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / 9007199254740992.0
        })
        .collect()
}

/// Within 1e-9: absolute, or relative when SciPy's value is below 1e-6 (and not 0).
fn assert_close(actual: f64, expected: f64, what: &str) {
    let ok = if expected != 0.0 && expected.abs() < 1e-6 {
        ((actual - expected) / expected).abs() <= 1e-9
    } else {
        (actual - expected).abs() <= 1e-9
    };
    assert!(ok, "{what}: got {actual:e}, scipy {expected:e}");
}

fn ints(values: &[i32]) -> Vec<f64> {
    values.iter().map(|&v| f64::from(v)).collect()
}

#[test]
fn ks_exact_equal_sizes() {
    // stats.ks_2samp([0.61, 0.29, 0.06, 0.59, -1.73, -0.74, 0.51, -0.56, 0.39, 1.64,
    //                 0.05, -0.06, 0.64, -0.82, 0.37, 1.77],
    //                [1.86, 0.21, 1.26, 0.52, 1.79, 0.13, 1.15, 2.11, 0.69, 1.47, 0.40,
    //                 0.92, 1.38, 0.26, 1.99, 0.83])
    // -> statistic 0.5625, pvalue 0.011199353883429802
    let a = [
        0.61, 0.29, 0.06, 0.59, -1.73, -0.74, 0.51, -0.56, 0.39, 1.64, 0.05, -0.06, 0.64, -0.82,
        0.37, 1.77,
    ];
    let b = [
        1.86, 0.21, 1.26, 0.52, 1.79, 0.13, 1.15, 2.11, 0.69, 1.47, 0.40, 0.92, 1.38, 0.26, 1.99,
        0.83,
    ];
    let r = ks_2samp(&a, &b).unwrap();
    assert_eq!(r.method, KsMethod::Exact);
    assert_close(r.statistic, 0.5625, "statistic");
    assert_close(r.pvalue, 0.011199353883429802, "pvalue");
    // Order does not matter, and swapping the samples only flips the sign of the CDF
    // difference.
    let mut a_rev = a;
    a_rev.reverse();
    assert_eq!(ks_2samp(&a_rev, &b).unwrap(), r);
    let swapped = ks_2samp(&b, &a).unwrap();
    assert_close(swapped.statistic, 0.5625, "swapped statistic");
    assert_close(swapped.pvalue, 0.011199353883429802, "swapped pvalue");
}

#[test]
fn ks_exact_unequal_sizes() {
    // stats.ks_2samp([0.8, -0.3, 1.2, 0.1, -1.1, 0.45, 2.0, -0.6, 0.33],
    //                [1.5, 0.9, 2.2, 1.1, 0.2, 1.8, 2.6, 0.7, 1.3, 3.1, 0.05, 1.95, 2.4,
    //                 1.05])
    // -> statistic 0.5634920634920635, pvalue 0.041804231574052546
    let a = [0.8, -0.3, 1.2, 0.1, -1.1, 0.45, 2.0, -0.6, 0.33];
    let b = [
        1.5, 0.9, 2.2, 1.1, 0.2, 1.8, 2.6, 0.7, 1.3, 3.1, 0.05, 1.95, 2.4, 1.05,
    ];
    let r = ks_2samp(&a, &b).unwrap();
    assert_eq!(r.method, KsMethod::Exact);
    assert_close(r.statistic, 0.5634920634920635, "statistic");
    assert_close(r.pvalue, 0.041804231574052546, "pvalue");
}

#[test]
fn ks_exact_with_ties() {
    // stats.ks_2samp([1, 2, 2, 3, 3, 3, 4, 4, 5, 1, 2, 3],
    //                [2, 3, 3, 4, 4, 4, 5, 5, 6, 6, 3, 4, 2, 5, 4])
    // -> statistic 0.4166666666666667, pvalue 0.15079102109658038
    let a = ints(&[1, 2, 2, 3, 3, 3, 4, 4, 5, 1, 2, 3]);
    let b = ints(&[2, 3, 3, 4, 4, 4, 5, 5, 6, 6, 3, 4, 2, 5, 4]);
    let r = ks_2samp(&a, &b).unwrap();
    assert_eq!(r.method, KsMethod::Exact);
    assert_close(r.statistic, 0.4166666666666667, "statistic");
    assert_close(r.pvalue, 0.15079102109658038, "pvalue");
}

#[test]
fn ks_exact_tiny_pvalues() {
    // stats.ks_2samp(list(range(50)), list(range(100, 150)))
    // -> statistic 1.0, pvalue 1.9823306042836678e-29
    let a: Vec<f64> = (0..50).map(f64::from).collect();
    let b: Vec<f64> = (100..150).map(f64::from).collect();
    let r = ks_2samp(&a, &b).unwrap();
    assert_eq!(r.method, KsMethod::Exact);
    assert_close(r.statistic, 1.0, "statistic");
    assert_close(r.pvalue, 1.9823306042836678e-29, "pvalue");
    // stats.ks_2samp(list(range(30)), list(range(100, 145)))
    // -> statistic 1.0, pvalue 2.5579391420987706e-21
    let a: Vec<f64> = (0..30).map(f64::from).collect();
    let b: Vec<f64> = (100..145).map(f64::from).collect();
    let r = ks_2samp(&a, &b).unwrap();
    assert_eq!(r.method, KsMethod::Exact);
    assert_close(r.statistic, 1.0, "statistic");
    assert_close(r.pvalue, 2.5579391420987706e-21, "pvalue");
}

#[test]
fn ks_exact_falls_back_to_asymp() {
    // The exact probability rounds to 1.0000000000000002, so SciPy warns
    // "Exact calculation unsuccessful. Switching to method=asymp."
    // stats.ks_2samp(list(range(60)), [x + 2 for x in range(60)])
    // -> statistic 0.03333333333333333, pvalue 0.9999999999987117
    let a: Vec<f64> = (0..60).map(f64::from).collect();
    let b: Vec<f64> = (0..60).map(|x| f64::from(x) + 2.0).collect();
    let r = ks_2samp(&a, &b).unwrap();
    assert_eq!(r.method, KsMethod::Asymp);
    assert_close(r.statistic, 0.03333333333333333, "statistic");
    assert_close(r.pvalue, 0.9999999999987117, "pvalue");
}

#[test]
fn ks_exact_at_the_auto_limit() {
    // a = lcg(5, 10000); b = [u * 0.97 + 0.02 for u in lcg(6, 10000)]
    // stats.ks_2samp(a, b) -> statistic 0.0279, pvalue 0.000832086912285238
    let a = lcg(5, 10_000);
    let b: Vec<f64> = lcg(6, 10_000).iter().map(|u| u * 0.97 + 0.02).collect();
    let r = ks_2samp(&a, &b).unwrap();
    assert_eq!(r.method, KsMethod::Exact);
    assert_close(r.statistic, 0.0279, "statistic");
    assert_close(r.pvalue, 0.000832086912285238, "pvalue");
}

#[test]
fn ks_asymp_large_sample() {
    // a = lcg(1, 12000); b = [u * (0.9 + 0.2 * u) for u in lcg(2, 700)]
    // stats.ks_2samp(a, b) -> statistic 0.0814285714285714, pvalue 0.0002925378322584446
    let a = lcg(1, 12_000);
    let b: Vec<f64> = lcg(2, 700).iter().map(|u| u * (0.9 + 0.2 * u)).collect();
    let r = ks_2samp(&a, &b).unwrap();
    assert_eq!(r.method, KsMethod::Asymp);
    assert_close(r.statistic, 0.0814285714285714, "statistic");
    assert_close(r.pvalue, 0.0002925378322584446, "pvalue");
}

#[test]
fn ks_asymp_tiny_pvalue() {
    // a = lcg(3, 10500); b = [u + 0.1 for u in lcg(4, 2000)]
    // stats.ks_2samp(a, b) -> statistic 0.11285714285714277, pvalue 4.2846651914422287e-19
    let a = lcg(3, 10_500);
    let b: Vec<f64> = lcg(4, 2000).iter().map(|u| u + 0.1).collect();
    let r = ks_2samp(&a, &b).unwrap();
    assert_eq!(r.method, KsMethod::Asymp);
    assert_close(r.statistic, 0.11285714285714277, "statistic");
    assert_close(r.pvalue, 4.2846651914422287e-19, "pvalue");
}

#[test]
fn ks_asymp_rounds_n_half_to_even() {
    // n1 = n2 = 10001: en = 5000.5, which np.round takes to 5000.
    // a = lcg(5, 10001); b = [u * 0.97 + 0.02 for u in lcg(6, 10001)]
    // stats.ks_2samp(a, b) -> statistic 0.0278972102789721, pvalue 0.0008177130787807112
    let a = lcg(5, 10_001);
    let b: Vec<f64> = lcg(6, 10_001).iter().map(|u| u * 0.97 + 0.02).collect();
    let r = ks_2samp(&a, &b).unwrap();
    assert_eq!(r.method, KsMethod::Asymp);
    assert_close(r.statistic, 0.0278972102789721, "statistic");
    assert_close(r.pvalue, 0.0008177130787807112, "pvalue");
}

#[test]
fn ks_degenerate_inputs() {
    // stats.ks_2samp([1], [2]) -> 1.0, 1.0
    let r = ks_2samp(&[1.0], &[2.0]).unwrap();
    assert_close(r.statistic, 1.0, "statistic");
    assert_close(r.pvalue, 1.0, "pvalue");
    // stats.ks_2samp([1, 1, 1], [1, 1]) -> 0.0, 1.0
    let r = ks_2samp(&[1.0, 1.0, 1.0], &[1.0, 1.0]).unwrap();
    assert_close(r.statistic, 0.0, "statistic");
    assert_close(r.pvalue, 1.0, "pvalue");
    // stats.ks_2samp([3, 1, 2], [2, 2]) -> 0.3333333333333333, 1.0
    let r = ks_2samp(&[3.0, 1.0, 2.0], &[2.0, 2.0]).unwrap();
    assert_close(r.statistic, 0.3333333333333333, "statistic");
    assert_close(r.pvalue, 1.0, "pvalue");
    // stats.ks_2samp([inf, 1], [2, 3]) -> 0.5, 1.0
    let r = ks_2samp(&[f64::INFINITY, 1.0], &[2.0, 3.0]).unwrap();
    assert_close(r.statistic, 0.5, "statistic");
    assert_close(r.pvalue, 1.0, "pvalue");
}

#[test]
fn ks_rejects_empty_and_nan() {
    assert_eq!(ks_2samp(&[], &[1.0]), Err(StatsError::Empty("a")));
    assert_eq!(ks_2samp(&[1.0], &[]), Err(StatsError::Empty("b")));
    assert_eq!(
        ks_2samp(&[1.0, 2.0], &[0.5, f64::NAN]),
        Err(StatsError::Nan {
            name: "b",
            index: 1
        })
    );
}

#[test]
fn kolmogorov_distribution_branches() {
    // stats.kstwo.sf(x, n), one case per branch of _kolmogn's survival function:
    //   (5, 0.15)     Ruben-Gambino, n x <= 1 (product, n <= 140)
    //   (20, 0.97)    Ruben-Gambino, n x >= n - 1
    //   (20, 0.6)     2 * smirnov, x >= 0.5
    //   (100, 0.05)   Durbin matrix (DMTW)
    //   (100, 0.15)   Pomeranz
    //   (100, 0.3)    2 * smirnov, n <= 140
    //   (5000, 0.004) DMTW, n > 140
    //   (5000, 0.015) Pelz-Good
    //   (5000, 0.03)  2 * smirnov, n > 140
    //   (300, 0.003)  Ruben-Gambino, n x <= 1 (Stirling, n > 140)
    // [repr(float(stats.kstwo.sf(x, n))) for n, x in cases]
    let cases: [(f64, f64, f64); 10] = [
        (5.0, 0.15, 0.9988),
        (20.0, 0.97, 6.973568802000124e-31),
        (20.0, 0.6, 2.0483011649719853e-07),
        (100.0, 0.05, 0.9532159710635725),
        (100.0, 0.15, 0.019839242125643017),
        (100.0, 0.3, 1.7719869892662917e-08),
        (5000.0, 0.004, 0.9999977369528622),
        (5000.0, 0.015, 0.20846142096186204),
        (5000.0, 0.03, 0.00024159234422666817),
        (300.0, 0.003, 1.0),
    ];
    for (n, x, expected) in cases {
        assert_close(kstwo_sf(x, n), expected, &format!("kstwo.sf({x}, {n})"));
    }
}

#[test]
fn chisquare_matches_scipy() {
    // stats.chisquare([16, 18, 16, 14, 12, 12], [16, 16, 16, 16, 16, 8])
    // -> statistic 3.5, pvalue 0.6233876277495822
    let r = chisquare(
        &[16.0, 18.0, 16.0, 14.0, 12.0, 12.0],
        &[16.0, 16.0, 16.0, 16.0, 16.0, 8.0],
    )
    .unwrap();
    assert_eq!(r.dof, 5);
    assert_close(r.statistic, 3.5, "statistic");
    assert_close(r.pvalue, 0.6233876277495822, "pvalue");
    // stats.chisquare([43, 52, 54, 40], [47.25, 47.25, 47.25, 47.25])
    // -> statistic 2.9365079365079363, pvalue 0.4015183527259283
    let r = chisquare(&[43.0, 52.0, 54.0, 40.0], &[47.25; 4]).unwrap();
    assert_eq!(r.dof, 3);
    assert_close(r.statistic, 2.9365079365079363, "statistic");
    assert_close(r.pvalue, 0.4015183527259283, "pvalue");
    // stats.chisquare([100, 10, 10], [40, 40, 40])
    // -> statistic 135.0, pvalue 4.843089239878736e-30
    let r = chisquare(&[100.0, 10.0, 10.0], &[40.0, 40.0, 40.0]).unwrap();
    assert_close(r.statistic, 135.0, "statistic");
    assert_close(r.pvalue, 4.843089239878736e-30, "pvalue");
    // stats.chisquare([1, 2], [3, 0]) -> statistic inf, pvalue 0.0
    let r = chisquare(&[1.0, 2.0], &[3.0, 0.0]).unwrap();
    assert_eq!(r.statistic, f64::INFINITY);
    assert_eq!(r.pvalue, 0.0);
}

#[test]
fn chisquare_many_categories() {
    // Exercises igamc's asymptotic series (a = df / 2 in (20, 200) and above 200).
    // for seed, k in [(7, 60), (8, 500)]:
    //     o = [5.0 + math.floor(u * 11.0) for u in lcg(seed, k)]
    //     stats.chisquare(o, [sum(o) / k] * k)
    // -> k=60:  statistic 66.28497409326422, pvalue 0.24019335249029902
    // -> k=500: statistic 525.4101610904585, pvalue 0.1996972860568041
    let cases = [
        (7, 60, 66.28497409326422, 0.24019335249029902),
        (8, 500, 525.4101610904585, 0.1996972860568041),
    ];
    for (seed, k, statistic, pvalue) in cases {
        let observed: Vec<f64> = lcg(seed, k)
            .iter()
            .map(|u| 5.0 + (u * 11.0).floor())
            .collect();
        let total: f64 = observed.iter().sum();
        let expected = vec![total / k as f64; k];
        let r = chisquare(&observed, &expected).unwrap();
        assert_eq!(r.dof, k - 1);
        assert_close(r.statistic, statistic, "statistic");
        assert_close(r.pvalue, pvalue, "pvalue");
    }
}

#[test]
fn chisquare_errors() {
    assert_eq!(chisquare(&[], &[]), Err(StatsError::Empty("observed")));
    assert!(matches!(
        chisquare(&[1.0, 2.0], &[3.0]),
        Err(StatsError::LengthMismatch { .. })
    ));
    assert!(matches!(
        chisquare(&[1.0, f64::NAN], &[1.0, 1.0]),
        Err(StatsError::NonFinite {
            name: "observed",
            index: 1
        })
    ));
    assert_eq!(
        chisquare(&[5.0], &[5.0]),
        Err(StatsError::TooFewCategories(1))
    );
    // SciPy: ValueError "the sum of the observed frequencies must agree ..."
    assert!(matches!(
        chisquare(&[10.0, 20.0], &[15.0, 16.0]),
        Err(StatsError::SumMismatch { .. })
    ));
    // Within the relative tolerance sqrt(eps) ~ 1.49e-8 the sums are accepted.
    assert!(chisquare(&[10.0, 20.0], &[10.0, 20.0 + 1e-7]).is_ok());
    // SciPy: statistic nan (0 / 0 in the middle cell).
    assert!(matches!(
        chisquare(&[5.0, 0.0, 5.0], &[5.0, 0.0, 5.0]),
        Err(StatsError::Undefined(_))
    ));
}

#[test]
fn chdtrc_matches_scipy() {
    // from scipy import special
    // [repr(float(special.chdtrc(df, x))) for df, x in cases]
    // One case per igamc branch: continued fraction, 1 - igam_series, igamc_series
    // (x <= 0.5 and 0.5 < x <= 1.1, a = 0.5 and a = 1), both asymptotic regimes, a
    // tiny tail, and x = 0.
    let cases: [(f64, f64, f64); 9] = [
        (3.0, 10.0, 0.01856613546304325),
        (10.0, 3.0, 0.9814240637778593),
        (1.0, 0.96, 0.3271868777903028),
        (1.0, 1.6, 0.20590321073206466),
        (2.0, 2.0, 0.36787944117144245),
        (60.0, 55.0, 0.6585210814081093),
        (1000.0, 1050.0, 0.13247405682147703),
        (1.0, 250.0, 2.5968070393401957e-56),
        (4.0, 0.0, 1.0),
    ];
    for (df, x, expected) in cases {
        assert_close(chdtrc(df, x), expected, &format!("chdtrc({df}, {x})"));
    }
}

#[test]
fn wasserstein_matches_scipy() {
    // stats.wasserstein_distance([0, 1, 3], [5, 6, 8]) -> 5.0
    assert_close(
        wasserstein_distance(&[0.0, 1.0, 3.0], &[5.0, 6.0, 8.0]).unwrap(),
        5.0,
        "simple",
    );
    // stats.wasserstein_distance([3.4, 3.9, 7.5, 7.8, 3.4],
    //                            [4.5, 1.4, 3.4, 3.4, 9.0, 1.0, 7.8])
    // -> 1.2714285714285716
    assert_close(
        wasserstein_distance(
            &[3.4, 3.9, 7.5, 7.8, 3.4],
            &[4.5, 1.4, 3.4, 3.4, 9.0, 1.0, 7.8],
        )
        .unwrap(),
        1.2714285714285716,
        "ties",
    );
    // stats.wasserstein_distance([2.5], [2.5]) -> 0.0; ([2.5], [4.0, 1.0]) -> 1.5
    assert_close(wasserstein_distance(&[2.5], &[2.5]).unwrap(), 0.0, "single");
    assert_close(
        wasserstein_distance(&[2.5], &[4.0, 1.0]).unwrap(),
        1.5,
        "single vs two",
    );
    // stats.wasserstein_distance([x * 10.0 for x in lcg(9, 3000)],
    //                            [x * 9.0 + 0.7 for x in lcg(10, 2000)])
    // -> 0.3294052601810356
    let u: Vec<f64> = lcg(9, 3000).iter().map(|x| x * 10.0).collect();
    let v: Vec<f64> = lcg(10, 2000).iter().map(|x| x * 9.0 + 0.7).collect();
    assert_close(
        wasserstein_distance(&u, &v).unwrap(),
        0.3294052601810356,
        "lcg",
    );
}

#[test]
fn wasserstein_errors() {
    assert_eq!(
        wasserstein_distance(&[], &[1.0]),
        Err(StatsError::Empty("u"))
    );
    assert_eq!(
        wasserstein_distance(&[1.0], &[f64::INFINITY]),
        Err(StatsError::NonFinite {
            name: "v",
            index: 0
        })
    );
}

#[test]
fn jensenshannon_matches_scipy() {
    // distance.jensenshannon([1, 0, 0], [0, 1, 0]) -> 0.8325546111576977
    assert_close(
        jensenshannon(&[1.0, 0.0, 0.0], &[0.0, 1.0, 0.0]).unwrap(),
        0.8325546111576977,
        "disjoint",
    );
    // distance.jensenshannon([1.0, 0.0], [0.5, 0.5]) -> 0.464501404022459
    assert_close(
        jensenshannon(&[1.0, 0.0], &[0.5, 0.5]).unwrap(),
        0.464501404022459,
        "zero in p",
    );
    // distance.jensenshannon([10, 20, 70, 0], [15, 25, 55, 5]) -> 0.16046258844870176
    assert_close(
        jensenshannon(&[10.0, 20.0, 70.0, 0.0], &[15.0, 25.0, 55.0, 5.0]).unwrap(),
        0.16046258844870176,
        "unnormalised",
    );
    // distance.jensenshannon([1, 2, 3], [2, 4, 6]) -> 0.0
    assert_close(
        jensenshannon(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]).unwrap(),
        0.0,
        "same shares",
    );
}

#[test]
fn jensenshannon_errors() {
    assert_eq!(
        jensenshannon(&[0.0, 0.0], &[1.0, 1.0]),
        Err(StatsError::ZeroSum("p"))
    );
    assert_eq!(
        jensenshannon(&[1.0, -1.0], &[1.0, 1.0]),
        Err(StatsError::Negative {
            name: "p",
            index: 1
        })
    );
    assert!(matches!(
        jensenshannon(&[1.0], &[1.0, 1.0]),
        Err(StatsError::LengthMismatch { .. })
    ));
    assert_eq!(jensenshannon(&[], &[]), Err(StatsError::Empty("p")));
}

#[test]
fn psi_by_hand() {
    // Shares e = [0.2, 0.3, 0.5], a = [0.25, 0.25, 0.5]:
    // 0.05 ln(0.25 / 0.2) - 0.05 ln(0.25 / 0.3) + 0 = 0.020273255405408214
    // (Python: sum((y - x) * math.log(y / x) for x, y in zip(e, a)))
    assert_close(
        psi(&[20.0, 30.0, 50.0], &[25.0, 25.0, 50.0], 1e-4).unwrap(),
        0.020273255405408214,
        "psi",
    );
    // An empty expected bin is floored at eps = 1e-4:
    // e = [0.1, 1e-4, 0.9], a = [0.05, 0.05, 0.9]
    // -> -0.05 ln(0.5) + (0.05 - 1e-4) ln(0.05 / 1e-4) = 0.3447663031392646
    assert_close(
        psi(&[10.0, 0.0, 90.0], &[5.0, 5.0, 90.0], 1e-4).unwrap(),
        0.3447663031392646,
        "psi with an empty bin",
    );
    assert_close(
        psi(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0], 1e-4).unwrap(),
        0.0,
        "no shift",
    );
    assert!(matches!(
        psi(&[1.0, 2.0], &[1.0, 2.0], 0.0),
        Err(StatsError::InvalidParameter { name: "eps", .. })
    ));
    assert_eq!(
        psi(&[1.0, 2.0], &[0.0, 0.0], 1e-4),
        Err(StatsError::ZeroSum("actual"))
    );
}

#[test]
fn pairwise_sum_follows_numpy() {
    // Same bits as np.sum for lengths below, at and above the 8-wide unroll and the
    // 128 block: checked against the plain sum on values where order cannot matter.
    for n in [0, 1, 7, 8, 9, 127, 128, 129, 1000] {
        let values: Vec<f64> = (0..n).map(|i| f64::from(i % 17)).collect();
        let plain: f64 = values.iter().sum();
        assert_eq!(pairwise_sum(&values), plain, "n = {n}");
    }
    // np.sum([0.1] * 10) -> 1.0 (pairwise); a running sum gives 0.9999999999999999.
    assert_eq!(pairwise_sum(&[0.1; 10]), 1.0);
}
