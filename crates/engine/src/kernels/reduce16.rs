//! float32 sums and extremes of one contiguous run on 16 AVX-512 lanes, with a masked load for
//! the tail. The portable lane loops in `reduce` depend on LLVM's SLP vectoriser, which kept
//! their 32 lanes in two-float registers whenever something else in the function (the tree
//! that combines the lanes, the tail) looked better that way: a contiguous sum ran at 17 GB/s
//! from L2, and forcing the lanes through memory to avoid that stalled each row on the reload
//! (rows of 100: 27 ns, PyTorch 12). Here the lanes are vectors by construction.

/// What a sum adds up: the values, their magnitudes (1-norm), their squares (2-norm) or their
/// squared distances from a centre (a variance's second pass).
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Term {
    Value,
    Abs,
    Square,
    Deviation(f32),
}

/// `acc + Σ term(x)` over `len` contiguous float32s (blocks of 1024 summed in float32, each
/// block's total added in f64, as the portable `reduce::sum_run`); `None` without AVX-512.
pub fn sum(acc: f64, p: *const f32, len: usize, term: Term) -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    if super::simd::has_avx512() {
        // SAFETY: AVX-512 is present; callers pass a run of len values inside a live view.
        return Some(unsafe { x86::sum(acc, p, len, term) });
    }
    let _ = (acc, p, len, term);
    None
}

/// The largest (`MAX`) or smallest value of `len ≥ 1` contiguous float32s, NaN if any is NaN;
/// `None` without AVX-512.
pub fn extreme<const MAX: bool>(p: *const f32, len: usize) -> Option<f32> {
    #[cfg(target_arch = "x86_64")]
    if super::simd::has_avx512() {
        // SAFETY: as in `sum`.
        return Some(unsafe { x86::extreme::<MAX>(p, len) });
    }
    let _ = (p, len);
    None
}

/// The index of the first of `len` contiguous float32s equal to `target` (the first NaN when
/// `target` is NaN), `len` when there is none; `None` without AVX-512. With `extreme` this gives
/// `max(dim)`'s index in a vector scan, where a scalar search took 3/4 of its time.
pub fn first_index(p: *const f32, len: usize, target: f32) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    if super::simd::has_avx512() {
        // SAFETY: as in `sum`.
        return Some(unsafe { x86::first_index(p, len, target) });
    }
    let _ = (p, len, target);
    None
}

/// `out[r] = sum(0, p + r·row_stride, len, term)` for every output row, in one call (through
/// `fold_runs` each row paid a call of its own, as much again as the sum of a short row);
/// `false`, writing nothing, unless `sum_rows_supported(len)`. On AVX2 each row's sum is
/// `reduce::sum_run`'s, bit for bit.
pub fn sum_rows(out: &mut [f64], p: *const f32, row_stride: isize, len: usize, term: Term) -> bool {
    #[cfg(target_arch = "x86_64")]
    if super::simd::has_avx512() {
        // SAFETY: AVX-512 is present; callers pass out.len() rows of len values inside a view.
        unsafe { x86::sum_rows(out, p, row_stride, len, term) };
        return true;
    }
    #[cfg(target_arch = "x86_64")]
    if sum_rows_supported(len) {
        // SAFETY: AVX2 and FMA are present, 32 ≤ len ≤ 1024; rows as above.
        unsafe { avx2::sum_rows(out, p, row_stride, len, term) };
        return true;
    }
    let _ = (out, p, row_stride, len, term);
    false
}

/// Whether `sum_rows` takes rows of `len` values on this CPU: any length with AVX-512; on AVX2,
/// rows of 32 to 1024 (`reduce::sum_run`'s one block, whose order the AVX2 form keeps).
pub fn sum_rows_supported(len: usize) -> bool {
    super::simd::has_avx512() || (super::simd::has_avx2_only() && (32..=1024).contains(&len))
}

/// `out[r] = extreme(p + r·row_stride, len)` for every output row (`len ≥ 1`); `false` without
/// AVX-512.
pub fn extreme_rows<const MAX: bool>(out: &mut [f32], p: *const f32, row_stride: isize, len: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    if super::simd::has_avx512() {
        // SAFETY: as in `sum_rows`.
        unsafe { x86::extreme_rows::<MAX>(out, p, row_stride, len) };
        return true;
    }
    let _ = (out, p, row_stride, len);
    false
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Term;
    use std::arch::x86_64::*;


    /// Lanes `i..end` (fewer than 16) of `p`, the rest `fill`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn load_tail(p: *const f32, i: usize, end: usize, fill: __m512) -> __m512 {
        let m = ((1u32 << (end - i)) - 1) as __mmask16;
        _mm512_mask_loadu_ps(fill, m, p.add(i))
    }

    /// # Safety
    /// `p` holds `len` values.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn sum(acc: f64, p: *const f32, len: usize, term: Term) -> f64 {
        // One loop per term, each with its map inlined.
        match term {
            Term::Value => sum_of(acc, p, len, |v| v),
            Term::Abs => sum_of(acc, p, len, |v| _mm512_abs_ps(v)),
            Term::Square => sum_of(acc, p, len, |v| _mm512_mul_ps(v, v)),
            Term::Deviation(c) => {
                let c = _mm512_set1_ps(c);
                sum_of(acc, p, len, |v| {
                    let d = _mm512_sub_ps(v, c);
                    _mm512_mul_ps(d, d)
                })
            }
        }
    }

    /// `acc + Σ apply(x)`; the tail's missing lanes are left out of the add.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn sum_of(acc: f64, p: *const f32, len: usize, apply: impl Fn(__m512) -> __m512) -> f64 {
        let zero = _mm512_setzero_ps();
        let (mut total, mut i) = (acc, 0);
        while i < len {
            let end = (i + 1024).min(len);
            // Two independent add chains; one would wait on the add latency.
            let (mut a, mut b) = (zero, zero);
            while i + 32 <= end {
                a = _mm512_add_ps(a, apply(_mm512_loadu_ps(p.add(i))));
                b = _mm512_add_ps(b, apply(_mm512_loadu_ps(p.add(i + 16))));
                i += 32;
            }
            if i + 16 <= end {
                a = _mm512_add_ps(a, apply(_mm512_loadu_ps(p.add(i))));
                i += 16;
            }
            if i < end {
                let m = ((1u32 << (end - i)) - 1) as __mmask16;
                b = _mm512_mask_add_ps(b, m, b, apply(_mm512_maskz_loadu_ps(m, p.add(i))));
                i = end;
            }
            total += _mm512_reduce_add_ps(_mm512_add_ps(a, b)) as f64;
        }
        total
    }

    /// # Safety
    /// `p` holds `len ≥ 1` values.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn extreme<const MAX: bool>(p: *const f32, len: usize) -> f32 {
        let pick = |a: __m512, x: __m512| if MAX { _mm512_max_ps(a, x) } else { _mm512_min_ps(a, x) };
        // The tail's missing lanes read as the first value, which changes no extreme.
        let first = _mm512_set1_ps(*p);
        let (mut a, mut b, mut nan, mut i) = (first, first, 0u16, 0);
        // vmaxps/vminps drop a NaN operand; NaNs are counted on the side.
        while i + 32 <= len {
            let (x, y) = (_mm512_loadu_ps(p.add(i)), _mm512_loadu_ps(p.add(i + 16)));
            nan |= _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, y);
            a = pick(a, x);
            b = pick(b, y);
            i += 32;
        }
        if i + 16 <= len {
            let x = _mm512_loadu_ps(p.add(i));
            nan |= _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x);
            a = pick(a, x);
            i += 16;
        }
        if i < len {
            let x = load_tail(p, i, len, first);
            nan |= _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x);
            b = pick(b, x);
        }
        if nan != 0 {
            return f32::NAN;
        }
        let v = pick(a, b);
        if MAX { _mm512_reduce_max_ps(v) } else { _mm512_reduce_min_ps(v) }
    }

    /// # Safety
    /// `p` holds `len` values.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn first_index(p: *const f32, len: usize, target: f32) -> usize {
        let t = _mm512_set1_ps(target);
        #[allow(clippy::eq_op)]
        let nan = target != target;
        let hits = |x: __m512| if nan { _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x) } else { _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(x, t) };
        let mut i = 0;
        while i + 16 <= len {
            let m = hits(_mm512_loadu_ps(p.add(i)));
            if m != 0 {
                return i + m.trailing_zeros() as usize;
            }
            i += 16;
        }
        if i < len {
            // Lanes past the end load as 0.0 and are masked out of the hits.
            let valid = ((1u32 << (len - i)) - 1) as __mmask16;
            let m = hits(_mm512_maskz_loadu_ps(valid, p.add(i))) & valid;
            if m != 0 {
                return i + m.trailing_zeros() as usize;
            }
        }
        len
    }

    /// # Safety
    /// Row `r < out.len()` holds `len` values from `p + r·row_stride`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn sum_rows(out: &mut [f64], p: *const f32, row_stride: isize, len: usize, term: Term) {
        if len > 1024 {
            for (r, o) in out.iter_mut().enumerate() {
                *o = sum(0.0, p.offset(r as isize * row_stride), len, term);
            }
            return;
        }
        match term {
            Term::Value => short_rows(out, p, row_stride, len, |v| v),
            Term::Abs => short_rows(out, p, row_stride, len, |v| _mm512_abs_ps(v)),
            Term::Square => short_rows(out, p, row_stride, len, |v| _mm512_mul_ps(v, v)),
            Term::Deviation(c) => {
                let c = _mm512_set1_ps(c);
                short_rows(out, p, row_stride, len, |v| {
                    let d = _mm512_sub_ps(v, c);
                    _mm512_mul_ps(d, d)
                })
            }
        }
    }

    /// `sum_rows` for rows of at most 1024 values, four rows side by side: each row's sum is
    /// `sum_of`'s one block (the same two chains, the same order, bit for bit), and the four
    /// rows' loads and horizontal adds overlap (one row at a time, a row of 100 took 1.5× the
    /// time of its bytes in a whole-tensor sum).
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn short_rows(out: &mut [f64], p: *const f32, row_stride: isize, len: usize, apply: impl Fn(__m512) -> __m512) {
        const R: usize = 4;
        let zero = _mm512_setzero_ps();
        let tail = ((1u32 << (len % 16)) - 1) as __mmask16;
        let done = out.len() / R * R;
        let mut chunks = out.chunks_exact_mut(R);
        for (c, o) in chunks.by_ref().enumerate() {
            let q: [*const f32; R] = std::array::from_fn(|j| p.offset((c * R + j) as isize * row_stride));
            let (mut a, mut b) = ([zero; R], [zero; R]);
            let mut i = 0;
            while i + 32 <= len {
                for j in 0..R {
                    a[j] = _mm512_add_ps(a[j], apply(_mm512_loadu_ps(q[j].add(i))));
                    b[j] = _mm512_add_ps(b[j], apply(_mm512_loadu_ps(q[j].add(i + 16))));
                }
                i += 32;
            }
            if i + 16 <= len {
                for j in 0..R {
                    a[j] = _mm512_add_ps(a[j], apply(_mm512_loadu_ps(q[j].add(i))));
                }
                i += 16;
            }
            if i < len {
                for j in 0..R {
                    b[j] = _mm512_mask_add_ps(b[j], tail, b[j], apply(_mm512_maskz_loadu_ps(tail, q[j].add(i))));
                }
            }
            for j in 0..R {
                o[j] = 0.0 + _mm512_reduce_add_ps(_mm512_add_ps(a[j], b[j])) as f64;
            }
        }
        for (r, o) in chunks.into_remainder().iter_mut().enumerate() {
            *o = sum_of(0.0, p.offset((done + r) as isize * row_stride), len, &apply);
        }
    }

    /// # Safety
    /// As `sum_rows`, with `len ≥ 1`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn extreme_rows<const MAX: bool>(out: &mut [f32], p: *const f32, row_stride: isize, len: usize) {
        for (r, o) in out.iter_mut().enumerate() {
            *o = extreme::<MAX>(p.offset(r as isize * row_stride), len);
        }
    }
}

/// `sum_rows` on AVX2 for rows of 32 to 1024 values, four rows side by side, each in
/// `reduce::sum_run`'s order: 32 lanes (four vectors) over whole chunks of 32, the tail added to
/// the first lanes, the lanes combined by `reduce::pairwise`'s tree. (Through `fold_runs` a row
/// of 100 took a call and a setup of its own: 65536 × 100 at 0.66–0.83× PyTorch.)
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::Term;
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn sum_rows(out: &mut [f64], p: *const f32, row_stride: isize, len: usize, term: Term) {
        match term {
            Term::Value => rows(out, p, row_stride, len, |v| v),
            Term::Abs => rows(out, p, row_stride, len, |v| _mm256_andnot_ps(_mm256_set1_ps(-0.0), v)),
            Term::Square => rows(out, p, row_stride, len, |v| _mm256_mul_ps(v, v)),
            Term::Deviation(c) => {
                let c = _mm256_set1_ps(c);
                rows(out, p, row_stride, len, |v| {
                    let d = _mm256_sub_ps(v, c);
                    _mm256_mul_ps(d, d)
                })
            }
        }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn rows(out: &mut [f64], p: *const f32, row_stride: isize, len: usize, apply: impl Fn(__m256) -> __m256) {
        const R: usize = 4;
        let whole = len / 32 * 32;
        let rem = len - whole;
        // The tail's lanes (rem < 32 of them, in four vectors); the rest add +0.0, which leaves
        // a lane as it is (a lane is never −0.0: it starts at +0.0).
        let mask: [__m256i; 4] = std::array::from_fn(|k| {
            let idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            _mm256_cmpgt_epi32(_mm256_set1_epi32(rem as i32 - 8 * k as i32), idx)
        });
        let row_sum = |q: *const f32| -> f64 {
            let mut l = [_mm256_setzero_ps(); 4];
            let mut i = 0;
            while i < whole {
                for (k, l) in l.iter_mut().enumerate() {
                    *l = _mm256_add_ps(*l, apply(_mm256_loadu_ps(q.add(i + 8 * k))));
                }
                i += 32;
            }
            if rem > 0 {
                for (k, l) in l.iter_mut().enumerate() {
                    let x = apply(_mm256_maskload_ps(q.add(whole + 8 * k), mask[k]));
                    *l = _mm256_add_ps(*l, _mm256_and_ps(x, _mm256_castsi256_ps(mask[k])));
                }
            }
            // pairwise: lanes i + i+16, then + i+8, then + i+4, then (0+2) + (1+3).
            let h = _mm256_add_ps(_mm256_add_ps(l[0], l[2]), _mm256_add_ps(l[1], l[3]));
            let q4 = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
            let q2 = _mm_add_ps(q4, _mm_movehl_ps(q4, q4));
            let s = _mm_add_ss(q2, _mm_shuffle_ps(q2, q2, 1));
            0.0 + _mm_cvtss_f32(s) as f64
        };
        let done = out.len() / R * R;
        let mut chunks = out.chunks_exact_mut(R);
        for (c, o) in chunks.by_ref().enumerate() {
            // Four rows' independent chains overlap in the core's pipelines.
            let s: [f64; R] = std::array::from_fn(|j| row_sum(p.offset((c * R + j) as isize * row_stride)));
            o.copy_from_slice(&s);
        }
        for (r, o) in chunks.into_remainder().iter_mut().enumerate() {
            *o = row_sum(p.offset((done + r) as isize * row_stride));
        }
    }
}
