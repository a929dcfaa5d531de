//! float32 `exp`, `tanh`, `sigmoid`, SiLU, GELU (erf) and the logarithms on 16 AVX-512 lanes, for contiguous
//! runs. They take `vmath`'s steps one for one (and give its results bit for bit), with
//! AVX-512 instructions in place of the bit tricks that LLVM vectorises from the portable
//! forms: `vrndscaleps` rounds `x·log2 e` to an integer, `vscalefps` multiplies by `2ⁿ` with
//! one rounding, so subnormal and overflowing results come out right without the two-factor
//! `2ⁿ` (exp went from ~26 vector instructions per 16 results to ~16), and `vgetexpps` /
//! `vgetmantps` split `x` into exponent and mantissa, subnormals included, for the logs.

/// The functions with a 16-lane form.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Fn16 {
    Exp,
    Tanh,
    Sigmoid,
    Silu,
    Gelu,
    Log,
    Log2,
    Log10,
}

/// `dst[i] = f(src[i])` for `len` contiguous values; `src` may be `dst` (in place).
pub type Run = unsafe fn(src: *const f32, dst: *mut f32, len: usize);

/// The run kernel for `f`, when this CPU has AVX-512 (and `RUSTGRAD_SIMD` does not cap it).
pub fn run(f: Fn16) -> Option<Run> {
    #[cfg(target_arch = "x86_64")]
    if super::simd::level_name() == "avx512" {
        return Some(match f {
            Fn16::Exp => x86::exp_run,
            Fn16::Tanh => x86::tanh_run,
            Fn16::Sigmoid => x86::sigmoid_run,
            Fn16::Silu => x86::silu_run,
            Fn16::Gelu => x86::gelu_run,
            Fn16::Log => x86::log_run,
            Fn16::Log2 => x86::log2_run,
            Fn16::Log10 => x86::log10_run,
        });
    }
    let _ = f;
    None
}

/// `dst[i] = exp(src[i] - shift)` (softmax's exponentials, as `vmath::exp_f32(v - shift)`);
/// `false`, writing nothing, without AVX-512.
pub fn exp_shifted(src: &[f32], dst: &mut [f32], shift: f32) -> bool {
    #[cfg(target_arch = "x86_64")]
    if super::simd::level_name() == "avx512" {
        let len = src.len().min(dst.len());
        // SAFETY: AVX-512 is present; both slices hold len values.
        unsafe { x86::exp_shifted(src.as_ptr(), dst.as_mut_ptr(), len, shift) };
        return true;
    }
    let _ = (src, dst, shift);
    false
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    const NEAREST: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

    /// `N` vectors computed in lockstep: every step below is `N` independent instructions. One
    /// vector at a time, each function's long dependency chain filled the scheduler with
    /// waiting work and GELU ran at about a third of the ports' throughput; four in lockstep
    /// (the `runs` loops) keep the ports busier (GELU 1.2–1.35× faster).
    type V<const N: usize> = [__m512; N];

    /// Lifts one-vector intrinsics to `V<N>`, lane by lane.
    macro_rules! lift {
        ($($name:ident => $intr:expr, ($($arg:ident),+);)*) => {$(
            #[inline]
            #[target_feature(enable = "avx512f")]
            fn $name<const N: usize>($($arg: V<N>),+) -> V<N> {
                let mut r = [_mm512_setzero_ps(); N];
                for i in 0..N {
                    r[i] = $intr($($arg[i]),+);
                }
                r
            }
        )*};
    }
    lift! {
        mul => _mm512_mul_ps, (a, b);
        add => _mm512_add_ps, (a, b);
        sub => _mm512_sub_ps, (a, b);
        div => _mm512_div_ps, (a, b);
        min => _mm512_min_ps, (a, b);
        max => _mm512_max_ps, (a, b);
        fmadd => _mm512_fmadd_ps, (a, b, c);
        fnmadd => _mm512_fnmadd_ps, (a, b, c);
        fmsub => _mm512_fmsub_ps, (a, b, c);
        scalef => _mm512_scalef_ps, (a, b);
        round => _mm512_roundscale_ps::<NEAREST>, (a);
        getexp => _mm512_getexp_ps, (a);
        getmant => _mm512_getmant_ps::<_MM_MANT_NORM_P5_1, _MM_MANT_SIGN_ZERO>, (a);
        abs => |a| _mm512_castsi512_ps(_mm512_andnot_si512(_mm512_set1_epi32(i32::MIN), _mm512_castps_si512(a))), (a);
        // The magnitude of `m`, the sign bit of `s`.
        copysign => |m, s| _mm512_castsi512_ps(_mm512_ternarylogic_epi32::<0xCA>(_mm512_set1_epi32(i32::MIN), _mm512_castps_si512(s), _mm512_castps_si512(m))), (m, s);
    }

    /// Per lane: `then(r, c)` where the comparison `CMP` of `a` and `b` holds, else `r`.
    macro_rules! masked {
        ($($name:ident => $intr:ident;)*) => {$(
            #[inline]
            #[target_feature(enable = "avx512f")]
            fn $name<const CMP: i32, const N: usize>(r: V<N>, a: V<N>, b: V<N>, c: V<N>) -> V<N> {
                let mut o = r;
                for i in 0..N {
                    o[i] = $intr(r[i], _mm512_cmp_ps_mask::<CMP>(a[i], b[i]), c[i], r[i]);
                }
                o
            }
        )*};
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn mask_mov(_r: __m512, k: __mmask16, c: __m512, r: __m512) -> __m512 {
        _mm512_mask_mov_ps(r, k, c)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn mask_rsub(_r: __m512, k: __mmask16, c: __m512, r: __m512) -> __m512 {
        _mm512_mask_sub_ps(r, k, c, r)
    }
    masked! {
        // `c` where the comparison holds.
        set_where => mask_mov;
        // `c - r` where the comparison holds.
        rsub_where => mask_rsub;
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn splat<const N: usize>(v: f32) -> V<N> {
        [_mm512_set1_ps(v); N]
    }

    /// `vmath::reduce_ln2`: `x = n·ln2 + r`, returned as `(r, n)` with `n` a float.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn reduce_ln2<const N: usize>(x: V<N>) -> (V<N>, V<N>) {
        let n = round(mul(x, splat(std::f32::consts::LOG2_E)));
        let r = fmadd(n, splat(2.121_944_4e-4), fnmadd(n, splat(0.693_359_4), x));
        (r, n)
    }

    /// `vmath::exp_poly`: `(exp(r) - 1 - r) / r²` by Estrin's scheme, given `r2 = r²`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn exp_poly<const N: usize>(r: V<N>, r2: V<N>) -> V<N> {
        let hi = fmadd(splat(1.987_569_1e-4), r, splat(1.398_199_9e-3));
        let mid = fmadd(splat(8.333_452e-3), r, splat(4.166_579_6e-2));
        let lo = fmadd(splat(0.166_666_65), r, splat(0.5));
        fmadd(fmadd(hi, r2, mid), r2, lo)
    }

    /// `vmath::exp_f32`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn exp<const N: usize>(x: V<N>) -> V<N> {
        // max/min return their second operand when either is NaN: NaN passes the clamp.
        let x = min(splat(89.0), max(splat(-104.0), x));
        let (r, n) = reduce_ln2(x);
        let r2 = mul(r, r);
        let y = fmadd(exp_poly(r, r2), r2, add(r, splat(1.0)));
        scalef(y, n)
    }

    /// `vmath::tanh_f32`: `expm1(2|x|) / (expm1(2|x|) + 2)` with the sign of `x`, |x| capped
    /// at 10; `expm1(v) = 2ⁿ·expm1(r) + (2ⁿ - 1)`, exact scalings for these `n` (0..=29).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn tanh<const N: usize>(x: V<N>) -> V<N> {
        let v = mul(splat(2.0), min(splat(10.0), max(splat(0.0), abs(x))));
        let (r, n) = reduce_ln2(v);
        let r2 = mul(r, r);
        let q = fmadd(exp_poly(r, r2), r2, r);
        let s = scalef(splat(1.0), n);
        let e = add(scalef(q, n), sub(s, splat(1.0)));
        copysign(div(e, add(e, splat(2.0))), x)
    }

    /// `1 / (1 + exp(-x))`, as the portable sigmoid.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn sigmoid<const N: usize>(x: V<N>) -> V<N> {
        let e = exp(sub(splat(-0.0), x));
        div(splat(1.0), add(splat(1.0), e))
    }

    /// `x / (1 + exp(-x))`, as the portable SiLU.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn silu<const N: usize>(x: V<N>) -> V<N> {
        let e = exp(sub(splat(-0.0), x));
        div(x, add(splat(1.0), e))
    }

    /// `vmath::exp_of_sum`: `exp(a + b)` with `a` and `b` reduced separately, 0 below -104.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn exp_of_sum<const N: usize>(a: V<N>, b: V<N>) -> V<N> {
        let sum = add(a, b);
        // max returns its second operand when the first is NaN, as f32::max does.
        let (_, n) = reduce_ln2(max(sum, splat(-104.0)));
        let r = fmadd(n, splat(2.121_944_4e-4), add(fnmadd(n, splat(0.693_359_4), a), b));
        let r2 = mul(r, r);
        let y = fmadd(exp_poly(r, r2), r2, add(r, splat(1.0)));
        set_where::<_CMP_LT_OQ, N>(scalef(y, n), sum, splat(-104.0), splat(0.0))
    }

    /// `vmath::gelu_f32`: `x/2 · erfc(-x/√2)` with `erfc(|z|) = t·exp(-z² + P(t))`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn gelu<const N: usize>(x: V<N>) -> V<N> {
        let one = splat(1.0);
        let hi = mul(x, x);
        let lo = fmsub(x, x, hi);
        let z = mul(x, splat(-std::f32::consts::FRAC_1_SQRT_2));
        let az = abs(z);
        let t = div(one, fmadd(az, splat(0.5), one));
        let mut p = splat(0.170_872_77);
        for c in [-0.822_152_23, 1.488_515_9, -1.135_204, 0.278_868_07, -0.186_288_06, 0.096_784_18, 0.374_091_96, 1.000_023_7, -1.265_512_2] {
            p = fmadd(p, t, splat(c));
        }
        let half = splat(0.5);
        let a = sub(splat(-0.0), mul(half, hi));
        let b = sub(p, mul(half, lo));
        let y = mul(t, exp_of_sum(a, b));
        let c = set_where::<_CMP_GE_OQ, N>(y, az, splat(10.5), splat(0.0));
        let c = rsub_where::<_CMP_LT_OQ, N>(c, z, splat(0.0), splat(2.0));
        mul(mul(half, x), c)
    }

    /// `vmath::log_reduce`: `(e, f, f², P(f)·f³)` with `x = 2ᵉ·(1 + f)`, `1 + f` in [√½, √2).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn log_reduce<const N: usize>(x: V<N>) -> (V<N>, V<N>, V<N>, V<N>) {
        let one = splat(1.0);
        // m in [0.5, 1) and x = m·2^(getexp + 1), subnormals normalised by the instructions.
        let m = getmant(x);
        let e = add(getexp(x), one);
        // Below √½: e - 1 and f = 2m - 1, else f = m - 1.
        let low = splat(std::f32::consts::FRAC_1_SQRT_2);
        let e = set_where::<_CMP_LT_OQ, N>(e, m, low, sub(e, one));
        let f = set_where::<_CMP_LT_OQ, N>(sub(m, one), m, low, sub(add(m, m), one));
        let z = mul(f, f);
        let mut p = splat(7.037_683_6e-2);
        for c in [-1.151_461e-1, 1.167_699_9e-1, -1.242_014_1e-1, 1.424_932_3e-1, -1.666_805_8e-1, 2.000_071_4e-1, -2.499_999_4e-1, 3.333_333_1e-1] {
            p = fmadd(p, f, splat(c));
        }
        (e, f, z, mul(mul(p, f), z))
    }

    /// `vmath::log_specials`: inf at inf, -inf at ±0, NaN below zero and at NaN, else `r`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn log_specials<const N: usize>(x: V<N>, r: V<N>) -> V<N> {
        let r = set_where::<_CMP_EQ_OQ, N>(r, x, splat(f32::INFINITY), x);
        let r = set_where::<_CMP_EQ_OQ, N>(r, x, splat(0.0), splat(f32::NEG_INFINITY));
        set_where::<_CMP_NGE_UQ, N>(r, x, splat(0.0), splat(f32::NAN))
    }

    /// `vmath::log_f32`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn log<const N: usize>(x: V<N>) -> V<N> {
        let (e, f, z, pfz) = log_reduce(x);
        let y = fmadd(z, splat(-0.5), fmadd(e, splat(-2.121_944_4e-4), pfz));
        log_specials(x, fmadd(e, splat(0.693_359_4), add(f, y)))
    }

    /// `vmath::log2_f32`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn log2<const N: usize>(x: V<N>) -> V<N> {
        let (e, f, z, pfz) = log_reduce(x);
        let y = fmadd(z, splat(-0.5), pfz);
        let l2ea = splat(0.442_695_04);
        let r = add(fmadd(f, l2ea, mul(y, l2ea)), y);
        log_specials(x, add(add(r, f), e))
    }

    /// `vmath::log10_f32`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn log10<const N: usize>(x: V<N>) -> V<N> {
        let (e, f, z, pfz) = log_reduce(x);
        let y = fmadd(z, splat(-0.5), pfz);
        let r = fmadd(f, splat(7.007_319e-4), mul(y, splat(7.007_319e-4)));
        let r = fmadd(e, splat(2.487_456_6e-4), r);
        let r = fmadd(y, splat(4.335_937_5e-1), r);
        let r = fmadd(f, splat(4.335_937_5e-1), r);
        log_specials(x, fmadd(e, splat(3.007_812_5e-1), r))
    }

    /// `dst[i] = f(src[i] - shift)`: four vectors in lockstep, then one at a time, then a
    /// masked one for the tail.
    ///
    /// # Safety
    /// `src` and `dst` hold `len` values each; they are the same pointer or do not overlap.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn run_with(src: *const f32, dst: *mut f32, len: usize, shift: f32, f4: impl Fn(V<4>) -> V<4>, f1: impl Fn(V<1>) -> V<1>) {
        let sh = _mm512_set1_ps(shift);
        let mut i = 0;
        while i + 64 <= len {
            let mut x = [_mm512_setzero_ps(); 4];
            for (j, v) in x.iter_mut().enumerate() {
                *v = _mm512_sub_ps(_mm512_loadu_ps(src.add(i + 16 * j)), sh);
            }
            for (j, v) in f4(x).into_iter().enumerate() {
                _mm512_storeu_ps(dst.add(i + 16 * j), v);
            }
            i += 64;
        }
        while i + 16 <= len {
            _mm512_storeu_ps(dst.add(i), f1([_mm512_sub_ps(_mm512_loadu_ps(src.add(i)), sh)])[0]);
            i += 16;
        }
        if i < len {
            let m = ((1u32 << (len - i)) - 1) as __mmask16;
            _mm512_mask_storeu_ps(dst.add(i), m, f1([_mm512_sub_ps(_mm512_maskz_loadu_ps(m, src.add(i)), sh)])[0]);
        }
    }

    macro_rules! runs {
        ($($name:ident => $f:ident),*) => {$(
            /// # Safety
            /// `src` and `dst` hold `len` values each; they are the same pointer or do not overlap.
            #[target_feature(enable = "avx512f")]
            pub unsafe fn $name(src: *const f32, dst: *mut f32, len: usize) {
                run_with(src, dst, len, 0.0, #[inline(always)] |x| $f::<4>(x), #[inline(always)] |x| $f::<1>(x));
            }
        )*};
    }
    runs!(exp_run => exp, tanh_run => tanh, sigmoid_run => sigmoid, silu_run => silu, gelu_run => gelu, log_run => log, log2_run => log2, log10_run => log10);

    /// `exp(src[i] - shift)`.
    ///
    /// # Safety
    /// `src` and `dst` hold `len` values each and do not overlap.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn exp_shifted(src: *const f32, dst: *mut f32, len: usize, shift: f32) {
        run_with(src, dst, len, shift, #[inline(always)] |x| exp::<4>(x), #[inline(always)] |x| exp::<1>(x));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::vmath;

    /// Bit-identical to the portable forms over the whole range, specials and a ragged tail.
    #[test]
    fn lanes_match_the_portable_forms_bit_for_bit() {
        let mut xs: Vec<f32> = (-240_000..240_000).map(|i| i as f32 * 5e-4).collect();
        xs.extend((-2000..2000).map(|i| i as f32 * 0.06));
        xs.extend([0.0, -0.0, 1e-30, -1e-30, 1e-42, 88.7, 88.8, 89.5, -87.5, -103.9, -104.5, 200.0, -200.0]);
        xs.extend([f32::INFINITY, f32::NEG_INFINITY, f32::NAN, f32::MAX, f32::MIN, f32::MIN_POSITIVE]);
        let sigmoid = |x: f32| 1.0 / (1.0 + vmath::exp_f32(-x));
        // Positive arguments over the whole range for the logs, subnormals included.
        let mut x = 1e-45f32;
        while x < 3e38 {
            xs.push(x);
            x = (x * 1.001).max(f32::from_bits(x.to_bits() + 1));
        }
        xs.extend([1.0, 0.5, 2.0, 1e-40, f32::MIN_POSITIVE * 0.999, 0.7071067, 0.70710677, 1.4142135]);
        let silu = |x: f32| x / (1.0 + vmath::exp_f32(-x));
        let cases: [(Fn16, &dyn Fn(f32) -> f32); 8] = [
            (Fn16::Gelu, &vmath::gelu_f32),
            (Fn16::Exp, &vmath::exp_f32),
            (Fn16::Tanh, &vmath::tanh_f32),
            (Fn16::Sigmoid, &sigmoid),
            (Fn16::Silu, &silu),
            (Fn16::Log, &vmath::log_f32),
            (Fn16::Log2, &vmath::log2_f32),
            (Fn16::Log10, &vmath::log10_f32),
        ];
        xs.truncate(xs.len() / 16 * 16);
        xs.extend([0.5, -0.5, 3.0]); // a tail of fewer than 16
        for (f, portable) in cases {
            let Some(run) = run(f) else { return };
            let mut out = vec![0f32; xs.len()];
            // SAFETY: both buffers hold xs.len() values.
            unsafe { run(xs.as_ptr(), out.as_mut_ptr(), xs.len()) };
            for (&x, &y) in xs.iter().zip(&out) {
                let want = portable(x);
                assert!(y.to_bits() == want.to_bits() || y.is_nan() && want.is_nan(), "{f:?}({x:e}) = {y:e}, portable {want:e}");
            }
            // Every split of a run between the four-vector loop, the one-vector loop and the
            // masked tail gives the same values.
            for len in [0, 1, 15, 16, 17, 47, 63, 64, 65, 80, 127, 130] {
                let mut part = vec![0f32; len];
                // SAFETY: both buffers hold at least len values.
                unsafe { run(xs[1000..].as_ptr(), part.as_mut_ptr(), len) };
                assert!(part.iter().zip(&out[1000..]).all(|(a, b)| a.to_bits() == b.to_bits() || a.is_nan() && b.is_nan()), "{f:?} over {len}");
            }
            // In place gives the same.
            let mut inplace = xs.clone();
            // SAFETY: one buffer of xs.len() values, read and written in place.
            unsafe { run(inplace.as_ptr(), inplace.as_mut_ptr(), inplace.len()) };
            assert!(inplace.iter().zip(&out).all(|(a, b)| a.to_bits() == b.to_bits() || a.is_nan() && b.is_nan()));
        }
        let mut out = vec![0f32; xs.len()];
        if exp_shifted(&xs, &mut out, 1.75) {
            for (&x, &y) in xs.iter().zip(&out) {
                let want = vmath::exp_f32(x - 1.75);
                assert!(y.to_bits() == want.to_bits() || y.is_nan() && want.is_nan(), "exp({x:e} - 1.75) = {y:e}, portable {want:e}");
            }
        }
    }
}
