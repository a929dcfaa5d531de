//! Per-element arithmetic with PyTorch's semantics for every dtype: wrapping integer math,
//! Python-style floor division and remainder, NaN-propagating max/min, bool as logic.

use crate::dtype::Element;
use crate::kernels::vmath;

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
    fn erfc(self) -> Self;
    /// GELU, erf form: `x/2 · erfc(-x/√2)`.
    fn gelu(self) -> Self;
}

#[inline(always)]
fn gelu_f64(x: f64) -> f64 {
    0.5 * x * libm::erfc(-x * std::f64::consts::FRAC_1_SQRT_2)
}

macro_rules! float_impl {
    ($($t:ty => $erf:path, $erfc:path, $gelu:path, $exp:path, $tanh:path, $expm1:path, $ln:path, $ln_1p:path, $log2:path, $log10:path),*) => {$(
        impl Float for $t {
            #[inline(always)] fn from_f64(v: f64) -> Self { v as $t }
            #[inline(always)] fn exp(self) -> Self { $exp(self) }
            #[inline(always)] fn ln(self) -> Self { $ln(self) }
            #[inline(always)] fn log2(self) -> Self { $log2(self) }
            #[inline(always)] fn log10(self) -> Self { $log10(self) }
            #[inline(always)] fn ln_1p(self) -> Self { $ln_1p(self) }
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
            #[inline(always)] fn erfc(self) -> Self { $erfc(self) }
            #[inline(always)] fn gelu(self) -> Self { $gelu(self) }
        }
    )*};
}
float_impl!(
    f32 => vmath::erf_f32, vmath::erfc_f32, vmath::gelu_f32, vmath::exp_f32, vmath::tanh_f32, vmath::expm1_f32, vmath::log_f32, vmath::log1p_f32, vmath::log2_f32, vmath::log10_f32,
    f64 => libm::erf, libm::erfc, gelu_f64, f64::exp, f64::tanh, f64::exp_m1, f64::ln, f64::ln_1p, f64::log2, f64::log10
);

#[cfg(test)]
mod tests {
    use super::*;

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
