//! Double-double arithmetic (xsf `cephes/dd_real.h`, from the qd package).

#![allow(
    // Constants are copied digit for digit from the reference sources.
    clippy::excessive_precision,
    clippy::approx_constant,
    // Index loops mirror the reference algorithms line by line.
    clippy::needless_range_loop,
    clippy::comparison_chain
)]

/// An unevaluated sum `hi + lo` with `|lo| <= ulp(hi) / 2`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Dd {
    pub(super) hi: f64,
    pub(super) lo: f64,
}

/// `fl(a + b)` and its error, assuming `|a| >= |b|`.
pub(super) fn quick_two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let c = s - a;
    (s, b - c)
}

/// `fl(a + b)` and its error.
pub(super) fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let c = s - a;
    let d = b - c;
    let e = s - c;
    (s, (a - e) + d)
}

/// `fl(a * b)` and its error.
pub(super) fn two_prod(a: f64, b: f64) -> (f64, f64) {
    let p = a * b;
    (p, a.mul_add(b, -p))
}

pub(super) fn dd_add(lhs: Dd, rhs: Dd) -> Dd {
    let (s1, s2) = two_sum(lhs.hi, rhs.hi);
    let (t1, t2) = two_sum(lhs.lo, rhs.lo);
    let (s1, s2) = quick_two_sum(s1, s2 + t1);
    let (hi, lo) = quick_two_sum(s1, s2 + t2);
    Dd { hi, lo }
}

pub(super) fn dd_add_f64(lhs: Dd, rhs: f64) -> Dd {
    let (s1, s2) = two_sum(lhs.hi, rhs);
    let (hi, lo) = quick_two_sum(s1, s2 + lhs.lo);
    Dd { hi, lo }
}

pub(super) fn dd_mul(lhs: Dd, rhs: Dd) -> Dd {
    let (p1, p2) = two_prod(lhs.hi, rhs.hi);
    let (hi, lo) = quick_two_sum(p1, p2 + (lhs.hi * rhs.lo + lhs.lo * rhs.hi));
    Dd { hi, lo }
}

pub(super) fn dd_mul_f64(lhs: Dd, rhs: f64) -> Dd {
    let (p1, e1) = two_prod(lhs.hi, rhs);
    let (p2, e2) = two_prod(lhs.lo, rhs);
    let (hi, lo) = quick_two_sum(p1, e2 + p2 + e1);
    Dd { hi, lo }
}

pub(super) fn dd_div(lhs: Dd, rhs: Dd) -> Dd {
    let q1 = lhs.hi / rhs.hi; // approximate quotient
    let r = lhs - rhs * q1;
    let q2 = r.hi / rhs.hi;
    let r = r - rhs * q2;
    let q3 = r.hi / rhs.hi;
    let (q1, q2) = quick_two_sum(q1, q2);
    Dd { hi: q1, lo: q2 } + q3
}

pub(super) fn dd_neg(a: Dd) -> Dd {
    Dd {
        hi: -a.hi,
        lo: -a.lo,
    }
}

impl Dd {
    pub(super) const fn new(hi: f64) -> Self {
        Dd { hi, lo: 0.0 }
    }

    /// `a == 0.0`
    pub(super) fn is_zero(self) -> bool {
        self.hi == 0.0 && self.lo == 0.0
    }

    /// `a < 0.0`
    pub(super) fn is_negative(self) -> bool {
        self.hi < 0.0 || (self.hi == 0.0 && self.lo < 0.0)
    }

    pub(super) fn is_finite(self) -> bool {
        self.hi.is_finite()
    }

    pub(super) fn floor(self) -> Dd {
        let hi = self.hi.floor();
        if hi == self.hi {
            // High word is an integer already; round the low word.
            let (hi, lo) = quick_two_sum(hi, self.lo.floor());
            Dd { hi, lo }
        } else {
            Dd { hi, lo: 0.0 }
        }
    }

    /// `(b, e)` with `self = b * 2^e`, `0.5 <= |b.hi| < 1` (or `|b.hi| == 1` with `b.lo`
    /// of the opposite sign).
    pub(super) fn frexp(self) -> (Dd, i32) {
        let (mut man, mut exponent) = frexp(self.hi);
        let mut b1 = ldexp(self.lo, -exponent);
        if man.abs() == 0.5 && man * b1 < 0.0 {
            man *= 2.0;
            b1 *= 2.0;
            exponent -= 1;
        }
        (Dd { hi: man, lo: b1 }, exponent)
    }

    pub(super) fn ldexp(self, e: i32) -> Dd {
        Dd {
            hi: ldexp(self.hi, e),
            lo: ldexp(self.lo, e),
        }
    }
}

impl std::ops::Add for Dd {
    type Output = Dd;
    fn add(self, rhs: Dd) -> Dd {
        dd_add(self, rhs)
    }
}

impl std::ops::AddAssign for Dd {
    fn add_assign(&mut self, rhs: Dd) {
        *self = dd_add(*self, rhs);
    }
}

impl std::ops::Add<f64> for Dd {
    type Output = Dd;
    fn add(self, rhs: f64) -> Dd {
        dd_add_f64(self, rhs)
    }
}

impl std::ops::Sub for Dd {
    type Output = Dd;
    fn sub(self, rhs: Dd) -> Dd {
        dd_add(self, dd_neg(rhs))
    }
}

impl std::ops::Sub<f64> for Dd {
    type Output = Dd;
    fn sub(self, rhs: f64) -> Dd {
        dd_add_f64(self, -rhs)
    }
}

impl std::ops::Mul for Dd {
    type Output = Dd;
    fn mul(self, rhs: Dd) -> Dd {
        dd_mul(self, rhs)
    }
}

impl std::ops::Mul<f64> for Dd {
    type Output = Dd;
    fn mul(self, rhs: f64) -> Dd {
        dd_mul_f64(self, rhs)
    }
}

impl std::ops::Div for Dd {
    type Output = Dd;
    fn div(self, rhs: Dd) -> Dd {
        dd_div(self, rhs)
    }
}

impl std::ops::Div<f64> for Dd {
    type Output = Dd;
    fn div(self, rhs: f64) -> Dd {
        dd_div(self, Dd::new(rhs))
    }
}

/// C `frexp`: `(m, e)` with `x = m * 2^e` and `0.5 <= |m| < 1` (musl's algorithm).
pub(super) fn frexp(x: f64) -> (f64, i32) {
    let bits = x.to_bits();
    let ee = ((bits >> 52) & 0x7ff) as i32;
    if ee == 0 {
        if x == 0.0 {
            return (x, 0);
        }
        // Subnormal: scale into the normal range first.
        let (m, e) = frexp(x * 18446744073709551616.0); // 2^64
        return (m, e - 64);
    }
    if ee == 0x7ff {
        return (x, 0);
    }
    let m = f64::from_bits((bits & 0x800f_ffff_ffff_ffff) | 0x3fe0_0000_0000_0000);
    (m, ee - 0x3fe)
}

/// C `ldexp`/`scalbn`: `x * 2^n`, correctly rounded (musl's algorithm).
pub(super) fn ldexp(x: f64, n: i32) -> f64 {
    let p1023 = f64::from_bits(0x7fe0_0000_0000_0000); // 2^1023
    let pm969 = f64::from_bits(0x0360_0000_0000_0000); // 2^-1022 * 2^53 = 2^-969
    let mut y = x;
    let mut n = n;
    if n > 1023 {
        y *= p1023;
        n -= 1023;
        if n > 1023 {
            y *= p1023;
            n -= 1023;
            if n > 1023 {
                n = 1023;
            }
        }
    } else if n < -1022 {
        // Keep the final n below -53 to avoid double rounding in the subnormal range.
        y *= pm969;
        n += 1022 - 53;
        if n < -1022 {
            y *= pm969;
            n += 1022 - 53;
            if n < -1022 {
                n = -1022;
            }
        }
    }
    y * f64::from_bits(((0x3ff + n) as u64) << 52)
}
