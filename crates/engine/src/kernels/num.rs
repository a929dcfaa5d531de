//! Per-element arithmetic with PyTorch's semantics for every dtype: wrapping integer math,
//! Python-style floor division and remainder, NaN-propagating max/min, bool as logic.

use crate::dtype::Element;

pub trait Num: Element {
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
    /// True division (only reached for float dtypes).
    fn div(self, o: Self) -> Self;
    fn floor_div(self, o: Self) -> Self;
    fn rem(self, o: Self) -> Self;
    fn pow(self, o: Self) -> Self;
    fn maximum(self, o: Self) -> Self;
    fn minimum(self, o: Self) -> Self;
    fn neg(self) -> Self;
    fn abs(self) -> Self;
    fn sign(self) -> Self;
    /// Bitwise ops; float dtypes are rejected before dispatch.
    fn bitand(self, o: Self) -> Self;
    fn bitor(self, o: Self) -> Self;
    fn bitxor(self, o: Self) -> Self;
    fn bitnot(self) -> Self;
    fn is_nan(self) -> bool {
        false
    }
    /// Strict ordering where NaN beats everything: for max/argmax scans.
    fn gt_nan(self, o: Self) -> bool {
        self > o
    }
    fn lt_nan(self, o: Self) -> bool {
        self < o
    }
}

macro_rules! int_num {
    ($($t:ty),*) => {$(
        impl Num for $t {
            #[inline(always)] fn add(self, o: Self) -> Self { self.wrapping_add(o) }
            #[inline(always)] fn sub(self, o: Self) -> Self { self.wrapping_sub(o) }
            #[inline(always)] fn mul(self, o: Self) -> Self { self.wrapping_mul(o) }
            #[inline(always)] fn div(self, o: Self) -> Self { if o == 0 { 0 } else { self.wrapping_div(o) } }
            #[inline(always)]
            fn floor_div(self, o: Self) -> Self {
                if o == 0 { return 0; } // callers raise ZeroDivisionError first
                let q = self.wrapping_div(o);
                #[allow(unused_comparisons)]
                let adjust = self.wrapping_rem(o) != 0 && ((self < 0) != (o < 0));
                if adjust { q.wrapping_sub(1) } else { q }
            }
            #[inline(always)]
            fn rem(self, o: Self) -> Self {
                if o == 0 { return 0; }
                let r = self.wrapping_rem(o);
                #[allow(unused_comparisons)]
                let adjust = r != 0 && ((r < 0) != (o < 0));
                if adjust { r.wrapping_add(o) } else { r }
            }
            #[inline(always)]
            #[allow(unused_comparisons)]
            fn pow(self, o: Self) -> Self {
                if o < 0 {
                    // PyTorch's integer rule for negative exponents (1, ±1, else 0).
                    return if self == 1 { 1 } else if self as i64 == -1 { if (o as i64) % 2 == 0 { 1 } else { self } } else { 0 };
                }
                let (mut base, mut e, mut acc) = (self, o as u64, 1 as $t);
                while e > 0 {
                    if e & 1 == 1 { acc = acc.wrapping_mul(base); }
                    base = base.wrapping_mul(base);
                    e >>= 1;
                }
                acc
            }
            #[inline(always)] fn maximum(self, o: Self) -> Self { if self > o { self } else { o } }
            #[inline(always)] fn minimum(self, o: Self) -> Self { if self < o { self } else { o } }
            #[inline(always)] fn neg(self) -> Self { (0 as $t).wrapping_sub(self) }
            #[inline(always)]
            #[allow(unused_comparisons)]
            fn abs(self) -> Self { if self < 0 { self.neg() } else { self } }
            #[inline(always)]
            #[allow(unused_comparisons)]
            fn sign(self) -> Self { if self > 0 { 1 } else if self < 0 { (0 as $t).wrapping_sub(1) } else { 0 } }
            #[inline(always)] fn bitand(self, o: Self) -> Self { self & o }
            #[inline(always)] fn bitor(self, o: Self) -> Self { self | o }
            #[inline(always)] fn bitxor(self, o: Self) -> Self { self ^ o }
            #[inline(always)] fn bitnot(self) -> Self { !self }
        }
    )*};
}
int_num!(u8, i32, i64);

macro_rules! float_num {
    ($($t:ty),*) => {$(
        impl Num for $t {
            #[inline(always)] fn add(self, o: Self) -> Self { self + o }
            #[inline(always)] fn sub(self, o: Self) -> Self { self - o }
            #[inline(always)] fn mul(self, o: Self) -> Self { self * o }
            #[inline(always)] fn div(self, o: Self) -> Self { self / o }
            #[inline(always)]
            fn floor_div(self, o: Self) -> Self {
                if o == 0.0 { return self / o; }
                let m = self % o;
                let mut d = (self - m) / o;
                if m != 0.0 && ((o < 0.0) != (m < 0.0)) { d -= 1.0; }
                if d == 0.0 { return (0.0 as $t).copysign(self / o); }
                let f = d.floor();
                if d - f > 0.5 { f + 1.0 } else { f }
            }
            #[inline(always)]
            fn rem(self, o: Self) -> Self {
                let r = self % o;
                if r != 0.0 && ((r < 0.0) != (o < 0.0)) { r + o } else { r }
            }
            #[inline(always)] fn pow(self, o: Self) -> Self { self.powf(o) }
            #[inline(always)]
            fn maximum(self, o: Self) -> Self { if self.is_nan() || o.is_nan() { <$t>::NAN } else if self > o { self } else { o } }
            #[inline(always)]
            fn minimum(self, o: Self) -> Self { if self.is_nan() || o.is_nan() { <$t>::NAN } else if self < o { self } else { o } }
            #[inline(always)] fn neg(self) -> Self { -self }
            #[inline(always)] fn abs(self) -> Self { self.abs() }
            #[inline(always)]
            fn sign(self) -> Self { if self > 0.0 { 1.0 } else if self < 0.0 { -1.0 } else { self } }
            fn bitand(self, _: Self) -> Self { self }
            fn bitor(self, _: Self) -> Self { self }
            fn bitxor(self, _: Self) -> Self { self }
            fn bitnot(self) -> Self { self }
            #[inline(always)] fn is_nan(self) -> bool { self.is_nan() }
            #[inline(always)] fn gt_nan(self, o: Self) -> bool { (self.is_nan() && !o.is_nan()) || self > o }
            #[inline(always)] fn lt_nan(self, o: Self) -> bool { (self.is_nan() && !o.is_nan()) || self < o }
        }
    )*};
}
float_num!(f32, f64);

/// Bools add as logical or and multiply as logical and, like PyTorch.
impl Num for bool {
    #[inline(always)] fn add(self, o: Self) -> Self { self | o }
    #[inline(always)] fn sub(self, o: Self) -> Self { self ^ o }
    #[inline(always)] fn mul(self, o: Self) -> Self { self & o }
    #[inline(always)] fn div(self, o: Self) -> Self { self & o }
    #[inline(always)] fn floor_div(self, o: Self) -> Self { self & o }
    #[inline(always)] fn rem(self, _: Self) -> Self { false }
    #[inline(always)] fn pow(self, o: Self) -> Self { self | !o }
    #[inline(always)] fn maximum(self, o: Self) -> Self { self | o }
    #[inline(always)] fn minimum(self, o: Self) -> Self { self & o }
    #[inline(always)] fn neg(self) -> Self { self }
    #[inline(always)] fn abs(self) -> Self { self }
    #[inline(always)] fn sign(self) -> Self { self }
    #[inline(always)] fn bitand(self, o: Self) -> Self { self & o }
    #[inline(always)] fn bitor(self, o: Self) -> Self { self | o }
    #[inline(always)] fn bitxor(self, o: Self) -> Self { self ^ o }
    #[inline(always)] fn bitnot(self) -> Self { !self }
}

/// Transcendental functions, defined for float dtypes only (ints are promoted before).
pub trait Float: Num + Into<f64> {
    fn from_f64(v: f64) -> Self;
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn log2(self) -> Self;
    fn log10(self) -> Self;
    fn ln_1p(self) -> Self;
    fn exp_m1(self) -> Self;
    fn sqrt(self) -> Self;
    fn sin(self) -> Self;
    fn cos(self) -> Self;
    fn tan(self) -> Self;
    fn tanh(self) -> Self;
    fn floor(self) -> Self;
    fn ceil(self) -> Self;
    fn round_even(self) -> Self;
    fn trunc(self) -> Self;
    fn erf(self) -> Self;
}

/// `exp` for float32 without a libm call, so loops over it vectorise: Cephes' range reduction
/// `x = n·ln2 + r` and degree-6 polynomial (about 1 ulp), with `2ⁿ` applied as two exponent
/// factors so that results in the subnormal and overflow ranges come out right. Branch-free:
/// NaN propagates through the polynomial, ±inf clamp to inf / 0.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const ROUND: f32 = 12_582_912.0; // 1.5·2²³: adding it rounds to an integer in the low bits
    let x = x.clamp(-104.0, 89.0);
    let t = x * LOG2E + ROUND;
    let n = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let fx = t - ROUND;
    let r = fx.mul_add(2.121_944_4e-4, fx.mul_add(-0.693_359_4, x));
    let p = poly(r, &[1.987_569_1e-4, 1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 0.166_666_65, 0.5]);
    let y = (p * r).mul_add(r, r + 1.0);
    let half = n >> 1;
    let pow2 = |e: i32| f32::from_bits(((e + 127) as u32) << 23);
    y * pow2(half) * pow2(n - half)
}

/// Horner's rule with fused multiply-adds: `c[0]·xⁿ⁻¹ + … + c[n-1]`. The engine's hot loops
/// run inside `simd::wide`, compiled with FMA, where `mul_add` is one instruction (a separate
/// multiply and add would double the work of every polynomial).
#[inline(always)]
fn poly(x: f32, c: &[f32]) -> f32 {
    let mut acc = c[0];
    for &k in &c[1..] {
        acc = acc.mul_add(x, k);
    }
    acc
}

/// `tanh` for float32 without a libm call (Cephes' tanhf, about 2 ulp): an odd polynomial for
/// |x| < 0.625, else `1 - 2 / (exp(2|x|) + 1)` with the sign restored. Both are computed and one
/// selected, so the loop vectorises; NaN takes the second branch and stays NaN.
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    let a = x.abs();
    let z = x * x;
    let small = (poly(z, &[-5.704_988_7e-3, 2.063_908_9e-2, -5.373_971_6e-2, 1.333_144_2e-1, -3.333_328_2e-1]) * z).mul_add(x, x);
    let big = 1.0 - 2.0 / (exp_f32(2.0 * a) + 1.0);
    // tanh is odd: the sign of x (which also keeps -0.0) goes on whichever branch is taken.
    (if a < 0.625 { small } else { big }).copysign(x)
}

/// `exp(x) - 1` for float32 without a libm call: `2t / (1 - t)` with `t = tanh(x/2)` for
/// |x| < 0.5 (no cancellation near zero), `exp(x) - 1` beyond; both computed, one selected.
#[inline(always)]
pub fn expm1_f32(x: f32) -> f32 {
    let t = tanh_f32(0.5 * x);
    let small = 2.0 * t / (1.0 - t);
    if x.abs() < 0.5 {
        small
    } else {
        exp_f32(x) - 1.0
    }
}

macro_rules! float_impl {
    ($($t:ty => $erf:path, $exp:path, $tanh:path, $expm1:path),*) => {$(
        impl Float for $t {
            #[inline(always)] fn from_f64(v: f64) -> Self { v as $t }
            #[inline(always)] fn exp(self) -> Self { $exp(self) }
            #[inline(always)] fn ln(self) -> Self { <$t>::ln(self) }
            #[inline(always)] fn log2(self) -> Self { <$t>::log2(self) }
            #[inline(always)] fn log10(self) -> Self { <$t>::log10(self) }
            #[inline(always)] fn ln_1p(self) -> Self { <$t>::ln_1p(self) }
            #[inline(always)] fn exp_m1(self) -> Self { $expm1(self) }
            #[inline(always)] fn sqrt(self) -> Self { <$t>::sqrt(self) }
            #[inline(always)] fn sin(self) -> Self { <$t>::sin(self) }
            #[inline(always)] fn cos(self) -> Self { <$t>::cos(self) }
            #[inline(always)] fn tan(self) -> Self { <$t>::tan(self) }
            #[inline(always)] fn tanh(self) -> Self { $tanh(self) }
            #[inline(always)] fn floor(self) -> Self { <$t>::floor(self) }
            #[inline(always)] fn ceil(self) -> Self { <$t>::ceil(self) }
            #[inline(always)] fn round_even(self) -> Self { <$t>::round_ties_even(self) }
            #[inline(always)] fn trunc(self) -> Self { <$t>::trunc(self) }
            #[inline(always)] fn erf(self) -> Self { $erf(self) }
        }
    )*};
}
float_impl!(f32 => libm::erff, exp_f32, tanh_f32, expm1_f32, f64 => libm::erf, f64::exp, f64::tanh, f64::exp_m1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_f32_is_within_two_ulp_everywhere() {
        let mut x = -110.0f32;
        while x < 90.0 {
            let (got, want) = (exp_f32(x), (x as f64).exp() as f32);
            let ulp = (want.to_bits() as i64 - got.to_bits() as i64).abs();
            assert!(ulp <= 2 || (want == 0.0 && got < 1e-44), "exp({x}) = {got}, want {want}");
            x += 0.0137;
        }
        assert!(exp_f32(f32::NAN).is_nan());
        assert_eq!(exp_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(0.0), 1.0);
    }

    /// Checks `f` against the float64 `reference` within `max_ulp` on a grid over `range`
    /// (stepped by `step`), each point also scaled by 1e-3 and 1e-6 to cover values near zero.
    fn within_ulp(name: &str, f: impl Fn(f32) -> f32, reference: impl Fn(f64) -> f64, range: (f32, f32), step: f32, max_ulp: i64) {
        let mut x = range.0;
        while x < range.1 {
            for v in [x, x * 1e-3, x * 1e-6] {
                let (got, want) = (f(v), reference(v as f64) as f32);
                let ulp = (want.to_bits() as i64 - got.to_bits() as i64).abs();
                assert!(ulp <= max_ulp, "{name}({v}) = {got}, want {want} ({ulp} ulp)");
            }
            x += step;
        }
    }

    #[test]
    fn tanh_f32_is_within_three_ulp_everywhere() {
        within_ulp("tanh", tanh_f32, f64::tanh, (-12.0, 12.0), 0.00917, 3);
        assert!(tanh_f32(f32::NAN).is_nan());
        assert_eq!(tanh_f32(f32::INFINITY), 1.0);
        assert_eq!(tanh_f32(f32::NEG_INFINITY), -1.0);
        assert_eq!(tanh_f32(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(tanh_f32(100.0), 1.0);
    }

    #[test]
    fn expm1_f32_is_within_four_ulp_everywhere() {
        within_ulp("expm1", expm1_f32, f64::exp_m1, (-20.0, 20.0), 0.00731, 4);
        assert!(expm1_f32(f32::NAN).is_nan());
        assert_eq!(expm1_f32(f32::NEG_INFINITY), -1.0);
        assert_eq!(expm1_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(expm1_f32(0.0), 0.0);
    }

    #[test]
    fn python_style_division() {
        assert_eq!(Num::floor_div(-7i64, 2), -4);
        assert_eq!(Num::rem(-7i64, 2), 1);
        assert_eq!(Num::rem(7i64, -2), -1);
        assert_eq!(Num::floor_div(-7.0f64, 2.0), -4.0);
        assert_eq!(Num::rem(-7.5f32, 2.0), 0.5);
        assert_eq!(Num::pow(3i64, 4), 81);
        assert_eq!(Num::pow(2i64, -1), 0);
        assert!(Num::maximum(f32::NAN, 1.0).is_nan());
    }
}
