//! float32 elementary functions without libm calls, written so that loops over them vectorise:
//! every branch is computed and one selected, and polynomials use fused multiply-adds (one
//! instruction inside `simd::wide`'s FMA context). Accuracy is checked in ulps against float64.

/// `exp` for float32 without a libm call, so loops over it vectorise: Cephes' range reduction
/// `x = n·ln2 + r` and degree-6 polynomial (about 1 ulp), with `2ⁿ` applied as two exponent
/// factors so that results in the subnormal and overflow ranges come out right. Branch-free:
/// NaN propagates through the polynomial, ±inf clamp to inf / 0.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    let (r, n) = reduce_ln2(x.clamp(-104.0, 89.0));
    let r2 = r * r;
    let y = exp_poly(r, r2).mul_add(r2, r + 1.0);
    let half = n >> 1;
    y * pow2(half) * pow2(n - half)
}

/// `x = n·ln2 + r` with |r| ≤ ln2/2 (Cody–Waite: ln2 in two parts, so `r` is nearly exact).
#[inline(always)]
fn reduce_ln2(x: f32) -> (f32, i32) {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const ROUND: f32 = 12_582_912.0; // 1.5·2²³: adding it rounds to an integer in the low bits
    let t = x * LOG2E + ROUND;
    let n = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let fx = t - ROUND;
    (fx.mul_add(2.121_944_4e-4, fx.mul_add(-0.693_359_4, x)), n)
}

/// `(exp(r) - 1 - r) / r²` on the reduced range (Cephes' expf polynomial), given `r2 = r²`.
/// Estrin's scheme: three fused multiply-adds deep instead of Horner's five. In a softmax row
/// `exp` is latency-bound (the FP scheduler holds about two iterations of its chain), so
/// the shorter chain is what sets its speed.
#[inline(always)]
fn exp_poly(r: f32, r2: f32) -> f32 {
    let hi = 1.987_569_1e-4f32.mul_add(r, 1.398_199_9e-3);
    let mid = 8.333_452e-3f32.mul_add(r, 4.166_579_6e-2);
    let lo = 0.166_666_65f32.mul_add(r, 0.5);
    hi.mul_add(r2, mid).mul_add(r2, lo)
}

/// `2ᵉ` for e in the normal exponent range.
#[inline(always)]
fn pow2(e: i32) -> f32 {
    f32::from_bits(((e + 127) as u32) << 23)
}

/// Horner's rule with fused multiply-adds: `c[0]·xⁿ⁻¹ + … + c[n-1]`. The engine's hot loops
/// run inside `simd::wide`, compiled with FMA, where `mul_add` is one instruction (a separate
/// multiply and add would double the work of every polynomial).
#[inline(always)]
pub(crate) fn poly(x: f32, c: &[f32]) -> f32 {
    let mut acc = c[0];
    for &k in &c[1..] {
        acc = acc.mul_add(x, k);
    }
    acc
}

/// `tanh` for float32 without a libm call: `expm1(2|x|) / (expm1(2|x|) + 2)` with the sign
/// restored, one branch-free formula that keeps its precision near zero (expm1 has no
/// cancellation there). |x| is capped at 10, where tanh is 1.0f, so expm1 stays finite; NaN
/// passes through the cap and stays NaN.
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    let e = expm1_f32(2.0 * x.abs().clamp(0.0, 10.0));
    (e / (e + 2.0)).copysign(x)
}

/// Arguments up to this magnitude take `sin_f32`/`cos_f32`; callers send a run holding larger
/// finite ones to libm (the reduction by π/2 keeps its few-ulp accuracy while the quotient is
/// small).
pub const TRIG_LIMIT: f32 = 8192.0;

/// `x = j·π/2 + r` with |r| ≤ π/4 (π/2 in three float parts, reduced with fused multiply-adds),
/// then Cephes' sinf and cosf polynomials on `r`: `(sin r, cos r, j)`. For |x| ≤ TRIG_LIMIT.
#[inline(always)]
fn sin_cos_reduced(x: f32) -> (f32, f32, i32) {
    const ROUND: f32 = 12_582_912.0; // 1.5·2²³: adding it rounds to an integer in the low bits
    const P1: f32 = f32::from_bits(0x3fc9_0fdb);
    const P2: f32 = f32::from_bits(0xb33b_bd2e);
    const P3: f32 = f32::from_bits(0xa6f7_2ced);
    let t = x.mul_add(std::f32::consts::FRAC_2_PI, ROUND);
    let j = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let fj = t - ROUND;
    let r = fj.mul_add(-P3, fj.mul_add(-P2, fj.mul_add(-P1, x)));
    let z = r * r;
    let sin = (poly(z, &[-1.951_529_6e-4, 8.332_160_9e-3, -1.666_665_5e-1]) * z).mul_add(r, r);
    let cos = (poly(z, &[2.443_315_7e-5, -1.388_731_6e-3, 4.166_664_6e-2]) * z).mul_add(z, (-0.5f32).mul_add(z, 1.0));
    (sin, cos, j)
}

/// The value in quadrant `j` (mod 4) from `sin r` and `cos r`: sin, cos, -sin, -cos.
#[inline(always)]
fn quadrant(sin: f32, cos: f32, j: i32) -> f32 {
    let v = if j & 1 == 0 { sin } else { cos };
    if j & 2 == 0 { v } else { -v }
}

/// `sin` for float32 with |x| ≤ TRIG_LIMIT (and ±inf, NaN → NaN) without a libm call.
#[inline(always)]
pub fn sin_f32(x: f32) -> f32 {
    let (s, c, j) = sin_cos_reduced(x);
    // The polynomial's sum turns -0.0 into +0.0; sin keeps the sign of zero.
    if x == 0.0 { x } else { quadrant(s, c, j) }
}

/// `cos` for float32 with |x| ≤ TRIG_LIMIT (and ±inf, NaN → NaN) without a libm call.
#[inline(always)]
pub fn cos_f32(x: f32) -> f32 {
    let (s, c, j) = sin_cos_reduced(x);
    quadrant(s, c, j.wrapping_add(1))
}

/// `tan` for float32 with |x| ≤ TRIG_LIMIT (and ±inf, NaN → NaN) without a libm call:
/// `sin r / cos r` in even quadrants, `-cos r / sin r` in odd ones.
#[inline(always)]
pub fn tan_f32(x: f32) -> f32 {
    let (s, c, j) = sin_cos_reduced(x);
    let t = if j & 1 == 0 { s / c } else { -c / s };
    if x == 0.0 { x } else { t }
}

/// `exp(x) - 1` for float32 without a libm call: the `exp` reduction `x = n·ln2 + r`, with
/// `expm1(r)` from the same polynomial minus its leading 1, so `expm1(x) = 2ⁿ·expm1(r) + (2ⁿ - 1)`
/// is exact in its last step for |x| < ln2/2 (no cancellation near zero) and one `exp`'s work.
#[inline(always)]
pub fn expm1_f32(x: f32) -> f32 {
    let (r, n) = reduce_ln2(x.clamp(-104.0, 89.0));
    let q = exp_poly(r, r * r).mul_add(r * r, r);
    let half = n >> 1;
    let (s1, s2) = (pow2(half), pow2(n - half));
    let y = (q * s1 * s2) + (s1 * s2 - 1.0);
    // The sum turns -0.0 into +0.0; expm1 keeps the sign of zero.
    if x == 0.0 { x } else { y }
}

/// Cephes' logf reduction: `x = 2ᵉ·(1 + f)` with `1 + f` in [√½, √2) (subnormals scaled into
/// the normal range first), and `(e, f, f², P(f)·f³)` where `log(1 + f) ≈ f - f²/2 + P(f)·f³`
/// (degree-8 `P`). The log functions add `e` in their base and handle the special values.
#[inline(always)]
fn log_reduce(x: f32) -> (f32, f32, f32, f32) {
    const SQRT_HALF: f32 = std::f32::consts::FRAC_1_SQRT_2;
    let sub = x < f32::MIN_POSITIVE;
    let bits = (if sub { x * 8_388_608.0 } else { x }).to_bits() as i32;
    let e = ((bits >> 23) & 0xff) - if sub { 149 } else { 126 };
    let m = f32::from_bits(((bits & 0x007f_ffff) | 0x3f00_0000) as u32); // in [0.5, 1)
    let low = m < SQRT_HALF;
    let e = (e - low as i32) as f32;
    let f = if low { m + m - 1.0 } else { m - 1.0 };
    let z = f * f;
    let p = poly(f, &[7.037_683_6e-2, -1.151_461e-1, 1.167_699_9e-1, -1.242_014_1e-1, 1.424_932_3e-1, -1.666_805_8e-1, 2.000_071_4e-1, -2.499_999_4e-1, 3.333_333_1e-1]);
    (e, f, z, p * f * z)
}

/// `r` for positive finite `x`; inf at inf, -inf at ±0, NaN for negatives and NaN.
#[inline(always)]
fn log_specials(x: f32, r: f32) -> f32 {
    if x == f32::INFINITY {
        x
    } else if x == 0.0 {
        f32::NEG_INFINITY
    } else if x >= 0.0 {
        r
    } else {
        f32::NAN
    }
}

/// Natural logarithm for float32 without a libm call (Cephes' logf, about 1 ulp): `log(1 + f)`
/// from `log_reduce`, `e·ln2` added in two parts.
#[inline(always)]
pub fn log_f32(x: f32) -> f32 {
    let (e, f, z, pfz) = log_reduce(x);
    let y = z.mul_add(-0.5, e.mul_add(-2.121_944_4e-4, pfz));
    log_specials(x, e.mul_add(0.693_359_4, f + y))
}

/// Base-2 logarithm for float32 without a libm call (Cephes' log2f): `e + log(1 + f)·log₂e`,
/// with `log₂e = 1 + 0.4427…` so that the exponent and `f` enter exactly; powers of two give
/// their exponent exactly.
#[inline(always)]
pub fn log2_f32(x: f32) -> f32 {
    const LOG2EA: f32 = 0.442_695_04; // log₂e - 1
    let (e, f, z, pfz) = log_reduce(x);
    let y = z.mul_add(-0.5, pfz);
    log_specials(x, f.mul_add(LOG2EA, y * LOG2EA) + y + f + e)
}

/// Base-10 logarithm for float32 without a libm call (Cephes' log10f): `log(1 + f)·log₁₀e +
/// e·log₁₀2`, both constants in a short high part and a low part.
#[inline(always)]
pub fn log10_f32(x: f32) -> f32 {
    const L10EA: f32 = 4.335_937_5e-1;
    const L10EB: f32 = 7.007_319e-4;
    const L102A: f32 = 3.007_812_5e-1;
    const L102B: f32 = 2.487_456_6e-4;
    let (e, f, z, pfz) = log_reduce(x);
    let y = z.mul_add(-0.5, pfz);
    let r = f.mul_add(L10EB, y * L10EB);
    let r = e.mul_add(L102B, r);
    let r = y.mul_add(L10EA, r);
    let r = f.mul_add(L10EA, r);
    log_specials(x, e.mul_add(L102A, r))
}

/// `log(1 + x)` for float32 without a libm call: `log(u)·x/(u - 1)` with `u = 1 + x` (Goldberg's
/// correction, which cancels the rounding of `1 + x`), and `x` itself where `u` rounds to 1.
#[inline(always)]
pub fn log1p_f32(x: f32) -> f32 {
    let u = 1.0 + x;
    let d = u - 1.0;
    let r = log_f32(u) * (x / d);
    if d == 0.0 {
        x
    } else if u == f32::INFINITY {
        u
    } else {
        r
    }
}

/// `erf` for |x| < 0.5: its Taylor series to x¹³ (the next term is below 1e-9 relative there).
#[inline(always)]
fn erf_small(x: f32) -> f32 {
    const K: f32 = std::f32::consts::FRAC_2_SQRT_PI;
    let c = [K / 9360.0, -K / 1320.0, K / 216.0, -K / 42.0, K / 10.0, -K / 3.0, K];
    x * poly(x * x, &c)
}

/// `erfc(z)` for z ≥ 0: `t·exp(-z² + P(t))` with `t = 1/(1 + z/2)` and Numerical Recipes'
/// degree-9 Chebyshev fit `P` (relative error below 1.1e-7 over all z ≥ 0, checked in float64).
/// `z²` enters `exp` as the exact pair `hi + lo` (a float32 `z²` near 81 is off by up to 4e-6,
/// which `exp` would turn into that relative error); beyond z = 10.5 erfc is below float32's range.
#[inline(always)]
fn erfc_positive(z: f32, hi: f32, lo: f32) -> f32 {
    let t = 1.0 / z.mul_add(0.5, 1.0);
    let p = poly(t, &[0.170_872_77, -0.822_152_23, 1.488_515_9, -1.135_204, 0.278_868_07, -0.186_288_06, 0.096_784_18, 0.374_091_96, 1.000_023_7, -1.265_512_2]);
    let y = t * exp_of_sum(-hi, p - lo);
    if z >= 10.5 { 0.0 } else { y }
}

/// `z²` as an exact pair `hi + lo`.
#[inline(always)]
fn square_pair(z: f32) -> (f32, f32) {
    let hi = z * z;
    (hi, z.mul_add(z, -hi))
}

/// `exp(a + b)` for `a ≤ 0` and small `b`, reducing `a` and `b` separately so the rounding of
/// `a + b` never enters (`n·ln2` is exact in float32 and close to `a`, so `a - n·ln2` is too).
#[inline(always)]
fn exp_of_sum(a: f32, b: f32) -> f32 {
    let (_, n) = reduce_ln2((a + b).max(-104.0));
    let fx = n as f32;
    let r = fx.mul_add(2.121_944_4e-4, fx.mul_add(-0.693_359_4, a) + b);
    let r2 = r * r;
    let y = exp_poly(r, r2).mul_add(r2, r + 1.0);
    let half = n >> 1;
    let e = y * pow2(half) * pow2(n - half);
    if a + b < -104.0 { 0.0 } else { e }
}

/// `erf` for float32 without a libm call: the Taylor series below 0.5, `1 - erfc(|x|)` beyond.
#[inline(always)]
pub fn erf_f32(x: f32) -> f32 {
    let (hi, lo) = square_pair(x);
    let big = (1.0 - erfc_positive(x.abs(), hi, lo)).copysign(x);
    if x.abs() < 0.5 { erf_small(x) } else { big }
}

/// `erfc` for float32 without a libm call, accurate relative to its own (tiny) value in both
/// tails: `erfc(|x|)` for x ≥ 0.5, `2 - erfc(|x|)` for x ≤ -0.5, `1 - erf(x)` between.
#[inline(always)]
pub fn erfc_f32(x: f32) -> f32 {
    let (hi, lo) = square_pair(x);
    erfc_with_square(x, hi, lo)
}

/// `erfc(x)` given `x²` as an exact pair.
#[inline(always)]
fn erfc_with_square(x: f32, hi: f32, lo: f32) -> f32 {
    let c = erfc_positive(x.abs(), hi, lo);
    let big = if x < 0.0 { 2.0 - c } else { c };
    if x.abs() < 0.5 { 1.0 - erf_small(x) } else { big }
}

/// GELU (erf form) for float32: `x/2 · erfc(-x/√2)`, accurate relative to the result in the
/// negative tail. The square `x²/2` is formed from `x` itself (halving is exact): squaring the
/// rounded `x/√2` would carry its rounding, times `2·z²`, into `exp`.
#[inline(always)]
pub fn gelu_f32(x: f32) -> f32 {
    let (hi, lo) = square_pair(x);
    let z = x * -std::f32::consts::FRAC_1_SQRT_2;
    let c = erfc_positive(z.abs(), 0.5 * hi, 0.5 * lo);
    0.5 * x * if z < 0.0 { 2.0 - c } else { c }
}

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
    fn sin_cos_tan_f32_are_within_a_few_ulp_up_to_the_limit() {
        within_ulp("sin", sin_f32, f64::sin, (-TRIG_LIMIT, TRIG_LIMIT), 0.0773, 2);
        within_ulp("cos", cos_f32, f64::cos, (-TRIG_LIMIT, TRIG_LIMIT), 0.0773, 2);
        within_ulp("sin", sin_f32, f64::sin, (-7.0, 7.0), 0.000_913, 2);
        within_ulp("cos", cos_f32, f64::cos, (-7.0, 7.0), 0.000_913, 2);
        for x in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            assert!(sin_f32(x).is_nan() && cos_f32(x).is_nan(), "{x}");
        }
        within_ulp("tan", tan_f32, f64::tan, (-TRIG_LIMIT, TRIG_LIMIT), 0.0773, 3);
        within_ulp("tan", tan_f32, f64::tan, (-7.0, 7.0), 0.000_913, 3);
        assert!(tan_f32(f32::INFINITY).is_nan() && tan_f32(f32::NAN).is_nan());
        assert_eq!(tan_f32(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(sin_f32(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(cos_f32(0.0), 1.0);
    }

    #[test]
    fn expm1_f32_is_within_two_ulp_everywhere() {
        within_ulp("expm1", expm1_f32, f64::exp_m1, (-20.0, 20.0), 0.00731, 2);
        assert!(expm1_f32(f32::NAN).is_nan());
        assert_eq!(expm1_f32(f32::NEG_INFINITY), -1.0);
        assert_eq!(expm1_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(expm1_f32(0.0), 0.0);
    }

    #[test]
    fn log2_log10_f32_are_within_two_ulp_everywhere() {
        for (name, f, reference) in [("log2", log2_f32 as fn(f32) -> f32, f64::log2 as fn(f64) -> f64), ("log10", log10_f32, f64::log10)] {
            // Log-spaced over the whole positive range, subnormals included, then densely near 1.
            let mut x = 1e-45f32;
            while x < 3e38 {
                let (got, want) = (f(x), reference(x as f64) as f32);
                let ulp = (want.to_bits() as i64 - got.to_bits() as i64).abs();
                assert!(ulp <= 2, "{name}({x:e}) = {got:e}, want {want:e} ({ulp} ulp)");
                x = (x * 1.000_37).max(f32::from_bits(x.to_bits() + 1)); // subnormals: at least one step
            }
            within_ulp(name, f, reference, (0.25, 4.0), 0.000917, 2);
            assert_eq!((f(0.0), f(-0.0), f(f32::INFINITY)), (f32::NEG_INFINITY, f32::NEG_INFINITY, f32::INFINITY));
            assert!(f(-1.0).is_nan() && f(f32::NAN).is_nan() && f(f32::NEG_INFINITY).is_nan());
        }
        for k in -149..128 {
            let two_k = f32::from_bits(if k >= -126 { ((k + 127) as u32) << 23 } else { 1 << (k + 149) });
            assert_eq!(log2_f32(two_k), k as f32, "log2(2^{k})");
        }
        for k in 0..11 {
            assert_eq!(log10_f32(10f32.powi(k)), k as f32, "log10(10^{k})");
        }
    }

    #[test]
    fn log_f32_is_within_one_ulp_everywhere() {
        // Every 997th float32 bit pattern from the smallest subnormal to the largest finite.
        for bits in (1..0x7f80_0000u32).step_by(997) {
            let x = f32::from_bits(bits);
            let (got, want) = (log_f32(x), (x as f64).ln() as f32);
            let ulp = (want.to_bits() as i64 - got.to_bits() as i64).abs();
            assert!(ulp <= 1, "log({x}) = {got}, want {want} ({ulp} ulp)");
        }
        within_ulp("log", log_f32, f64::ln, (0.25, 4.0), 0.000917, 1);
        assert!(log_f32(f32::NAN).is_nan() && log_f32(-1.0).is_nan());
        assert_eq!(log_f32(0.0), f32::NEG_INFINITY);
        assert_eq!(log_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(log_f32(1.0), 0.0);
    }

    #[test]
    fn log1p_f32_is_within_two_ulp_everywhere() {
        within_ulp("log1p", log1p_f32, f64::ln_1p, (-0.999, 20.0), 0.00731, 2);
        assert!(log1p_f32(f32::NAN).is_nan() && log1p_f32(-2.0).is_nan());
        assert_eq!(log1p_f32(-1.0), f32::NEG_INFINITY);
        assert_eq!(log1p_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(log1p_f32(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(log1p_f32(1e30), (1e30f64).ln() as f32);
    }

    #[test]
    fn erf_within_four_and_erfc_within_eight_ulp_everywhere() {
        within_ulp("erf", erf_f32, libm::erf, (-6.0, 6.0), 0.00317, 4);
        within_ulp("erfc", erfc_f32, libm::erfc, (-6.0, 9.0), 0.00317, 8);
        assert!(erf_f32(f32::NAN).is_nan() && erfc_f32(f32::NAN).is_nan());
        assert_eq!((erf_f32(f32::INFINITY), erf_f32(f32::NEG_INFINITY)), (1.0, -1.0));
        assert_eq!((erfc_f32(f32::INFINITY), erfc_f32(f32::NEG_INFINITY)), (0.0, 2.0));
        assert_eq!(erf_f32(-0.0).to_bits(), (-0.0f32).to_bits());
    }

    #[test]
    fn gelu_f32_is_within_eight_ulp_everywhere() {
        let gelu = |x: f64| 0.5 * x * libm::erfc(-x * std::f64::consts::FRAC_1_SQRT_2);
        within_ulp("gelu", gelu_f32, gelu, (-13.0, 13.0), 0.00317, 8);
        assert!(gelu_f32(f32::NAN).is_nan());
        assert_eq!((gelu_f32(f32::INFINITY), gelu_f32(-20.0)), (f32::INFINITY, -0.0));
    }
}
