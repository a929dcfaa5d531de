//! The 2 × 2, stride-2 max pool on float32 and its backward, on 16 AVX-512 lanes (8 on AVX2). LLVM's
//! vectorisation of the portable row loop (`pool::pairs_2x2`) deinterleaves the even and odd
//! taps element by element; here two permutes do it, and the backward writes every input
//! position once instead of zero-filling the plane and scattering into it.
//! (LeNet's pool1 at batch 256: the forward ran at 6 GB/s, a tenth of the step's time with
//! its backward.)

/// The pooled rows of one plane: output row `y` takes the maxima of the 2 × 2 windows whose
/// top-left taps are `img[bases[y] + 2x]`, `x < ow` (the next image row, `+ w`, is the
/// window's bottom). Ties and NaNs as PyTorch's loop: taps in the order top-left, top-right,
/// bottom-left, bottom-right, a later one taking over when it is greater or NaN. `at` gets
/// each winner's flat index in the plane. `false`, writing nothing, without AVX2 or when a
/// window or an output lies out of bounds.
pub fn max_2x2(img: &[f32], w: usize, bases: &[usize], ow: usize, out: &mut [f32], at: &mut [i64]) -> bool {
    let n = bases.len() * ow;
    if out.len() < n || at.len() < n || !bases.iter().all(|&b| b + w + 2 * ow <= img.len()) {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    if super::simd::has_avx512() {
        // SAFETY: AVX-512 is present; the check above bounds every read and write.
        unsafe { x86::max_2x2(img.as_ptr(), w, bases, ow, out.as_mut_ptr(), at.as_mut_ptr()) };
        return true;
    }
    #[cfg(target_arch = "x86_64")]
    if super::simd::has_avx2() {
        // SAFETY: AVX2 is present; the check above bounds every read and write.
        unsafe { avx2::max_2x2(img.as_ptr(), w, bases, ow, out.as_mut_ptr(), at.as_mut_ptr()) };
        return true;
    }
    false
}

/// The backward of `max_2x2` for one `h × w` plane when its indices came from non-overlapping
/// 2 × 2 windows at `(2y, 2x)`: `img` gets `0 + g` at each window's index and zero everywhere
/// else, exactly what zero-filling and scatter-adding gives (the `+ 0` turns a -0.0 into 0.0
/// as the scatter's add does). `false` when an index lies outside its own window (the caller
/// then scatters; `img` may be partly written), without AVX2, or on AVX2 for `ow < 8`.
pub fn scatter_2x2(g: &[f32], at: &[i64], h: usize, w: usize, ow: usize, img: &mut [f32]) -> bool {
    let oh = if ow == 0 { 0 } else { g.len() / ow };
    if g.len() != oh * ow || at.len() != g.len() || 2 * oh > h || 2 * ow > w || img.len() != h * w {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    if super::simd::has_avx512() {
        // SAFETY: AVX-512 is present; the sizes were checked above.
        if !unsafe { x86::scatter_2x2(g.as_ptr(), at.as_ptr(), oh, w, ow, img.as_mut_ptr()) } {
            return false;
        }
        fill_uncovered(img, oh, w, ow);
        return true;
    }
    // Rows of fewer than 8 windows (LeNet's pool2: 5) scatter faster into a zeroed plane.
    #[cfg(target_arch = "x86_64")]
    if super::simd::has_avx2() && ow >= 8 {
        // SAFETY: AVX2 is present; the sizes were checked above.
        if !unsafe { avx2::scatter_2x2(g.as_ptr(), at.as_ptr(), oh, w, ow, img.as_mut_ptr()) } {
            return false;
        }
        fill_uncovered(img, oh, w, ow);
        return true;
    }
    false
}

/// Zeroes the rows and the column of an `h × w` plane that no 2 × 2 window covers.
fn fill_uncovered(img: &mut [f32], oh: usize, w: usize, ow: usize) {
    for y in 0..2 * oh {
        img[y * w + 2 * ow..(y + 1) * w].fill(0.0);
    }
    img[2 * oh * w..].fill(0.0);
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// Lane indices that take the even and the odd elements of two concatenated vectors.
    #[inline(always)]
    unsafe fn evens_odds() -> (__m512i, __m512i) {
        let e = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        (e, _mm512_add_epi32(e, _mm512_set1_epi32(1)))
    }

    /// The first `n ≤ 32` values at `p` as (evens, odds), missing lanes zero.
    #[inline(always)]
    unsafe fn pairs(p: *const f32, n: usize, e: __m512i, o: __m512i) -> (__m512, __m512) {
        let m = if n >= 32 { u32::MAX } else { (1u32 << n) - 1 };
        let a = _mm512_maskz_loadu_ps(m as __mmask16, p);
        let b = _mm512_maskz_loadu_ps((m >> 16) as __mmask16, p.add(16));
        (_mm512_permutex2var_ps(a, e, b), _mm512_permutex2var_ps(a, o, b))
    }

    /// # Safety
    /// AVX-512; `img` holds `bases[y] + w + 2·ow` values for every row, `out` and `at` hold
    /// `bases.len() · ow`.
    #[target_feature(enable = "avx512f,avx512dq")]
    pub unsafe fn max_2x2(img: *const f32, w: usize, bases: &[usize], ow: usize, out: *mut f32, at: *mut i64) {
        let (e, o) = evens_odds();
        let two_i = _mm512_slli_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), 1);
        let shifts = [_mm512_set1_epi32(1), _mm512_set1_epi32(w as i32), _mm512_set1_epi32(w as i32 + 1)];
        for (y, &base) in bases.iter().enumerate() {
            let (top, bottom) = (img.add(base), img.add(base + w));
            let mut x0 = 0;
            while x0 < ow {
                let n = (ow - x0).min(16);
                let (tl, tr) = pairs(top.add(2 * x0), 2 * n, e, o);
                let (bl, br) = pairs(bottom.add(2 * x0), 2 * n, e, o);
                let (mut best, mut off) = (tl, _mm512_setzero_si512());
                for (v, s) in [(tr, shifts[0]), (bl, shifts[1]), (br, shifts[2])] {
                    let take = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(v, best) | _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v);
                    best = _mm512_mask_mov_ps(best, take, v);
                    off = _mm512_mask_mov_epi32(off, take, s);
                }
                let keep = ((1u32 << n) - 1) as __mmask16;
                let dst = y * ow + x0;
                _mm512_mask_storeu_ps(out.add(dst), keep, best);
                // Flat index: the window's top-left (base + 2x) plus the winner's offset.
                let pos = _mm512_add_epi32(off, two_i);
                let first = _mm512_set1_epi64((base + 2 * x0) as i64);
                let lo = _mm512_add_epi64(first, _mm512_cvtepi32_epi64(_mm512_castsi512_si256(pos)));
                let hi = _mm512_add_epi64(first, _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64::<1>(pos)));
                _mm512_mask_storeu_epi64(at.add(dst), keep as __mmask8, lo);
                _mm512_mask_storeu_epi64(at.add(dst + 8), (keep >> 8) as __mmask8, hi);
                x0 += n;
            }
        }
    }

    /// # Safety
    /// AVX-512; `g` and `at` hold `oh · ow` values, `img` at least `2·oh` rows of `w ≥ 2·ow`.
    #[target_feature(enable = "avx512f,avx512dq")]
    pub unsafe fn scatter_2x2(g: *const f32, at: *const i64, oh: usize, w: usize, ow: usize, img: *mut f32) -> bool {
        // Output lane i of a row's tile interleaves with its neighbour: (left, right) pairs.
        let lo_idx = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        let hi_idx = _mm512_add_epi32(lo_idx, _mm512_set1_epi32(8));
        let two_i = _mm512_slli_epi64(_mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7), 1);
        let zero = _mm512_setzero_ps();
        // No closures here: they would not inherit the target features.
        let offs = [_mm512_set1_epi64(0), _mm512_set1_epi64(1), _mm512_set1_epi64(w as i64), _mm512_set1_epi64(w as i64 + 1)];
        for y in 0..oh {
            let (top, bottom) = (img.add(2 * y * w), img.add((2 * y + 1) * w));
            let mut x0 = 0;
            while x0 < ow {
                let n = (ow - x0).min(16);
                let keep = ((1u32 << n) - 1) as __mmask16;
                let src = y * ow + x0;
                let v = _mm512_add_ps(_mm512_maskz_loadu_ps(keep, g.add(src)), zero);
                // Each index relative to its window's top-left; its tap is the offset it matches.
                let first = _mm512_add_epi64(_mm512_set1_epi64((2 * y * w + 2 * x0) as i64), two_i);
                let d_lo = _mm512_sub_epi64(_mm512_maskz_loadu_epi64(keep as __mmask8, at.add(src)), first);
                let d_hi = _mm512_sub_epi64(_mm512_maskz_loadu_epi64((keep >> 8) as __mmask8, at.add(src + 8)), _mm512_add_epi64(first, _mm512_set1_epi64(16)));
                let mut taps = [zero; 4];
                let mut all = 0u16;
                for (t, d) in taps.iter_mut().zip(offs) {
                    let hit = _mm512_cmpeq_epi64_mask(d_lo, d) as u16 | (_mm512_cmpeq_epi64_mask(d_hi, d) as u16) << 8;
                    *t = _mm512_maskz_mov_ps(hit, v);
                    all |= hit;
                }
                if all & keep != keep {
                    return false;
                }
                let [tl, tr, bl, br] = taps;
                let m2 = if 2 * n >= 32 { u32::MAX } else { (1u32 << (2 * n)) - 1 };
                let (m_lo, m_hi) = (m2 as __mmask16, (m2 >> 16) as __mmask16);
                _mm512_mask_storeu_ps(top.add(2 * x0), m_lo, _mm512_permutex2var_ps(tl, lo_idx, tr));
                _mm512_mask_storeu_ps(top.add(2 * x0 + 16), m_hi, _mm512_permutex2var_ps(tl, hi_idx, tr));
                _mm512_mask_storeu_ps(bottom.add(2 * x0), m_lo, _mm512_permutex2var_ps(bl, lo_idx, br));
                _mm512_mask_storeu_ps(bottom.add(2 * x0 + 16), m_hi, _mm512_permutex2var_ps(bl, hi_idx, br));
                x0 += n;
            }
        }
        true
    }
}

/// The same two kernels on 8 AVX2 lanes, where the portable row loop had compiled to one
/// element at a time (LeNet's pool1 forward at batch 64: 114 µs, now 58). The evens and odds
/// take one in-lane shuffle and one 64-bit permute each, blends stand in for the masks, and
/// stores are whole vectors: a row's short last block is redone as its last 8 windows where
/// the row has 8, else goes through a local buffer (AVX2's masked stores are slow on AMD, and
/// a `memcpy` call per row's tail took as long as the kernel).
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use crate::kernels::runs::copy_run;

    /// Lanes below `n` set (as a load mask).
    #[inline(always)]
    unsafe fn first(n: usize) -> __m256i {
        _mm256_cmpgt_epi32(_mm256_set1_epi32(n.min(8) as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
    }

    /// The first `n ≤ 16` values at `p` as (evens, odds), missing lanes zero.
    #[inline(always)]
    unsafe fn pairs(p: *const f32, n: usize) -> (__m256, __m256) {
        let (a, b) = if n >= 16 {
            (_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8)))
        } else {
            (_mm256_maskload_ps(p, first(n)), _mm256_maskload_ps(p.add(8), first(n.saturating_sub(8))))
        };
        (unshuffle(_mm256_shuffle_ps::<0b10_00_10_00>(a, b)), unshuffle(_mm256_shuffle_ps::<0b11_01_11_01>(a, b)))
    }

    /// `[a0 a1 b0 b1 | a2 a3 b2 b3]` (64-bit pairs) into `[a0 a1 a2 a3 b0 b1 b2 b3]`.
    #[inline(always)]
    unsafe fn unshuffle(v: __m256) -> __m256 {
        _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(v)))
    }

    /// # Safety
    /// AVX2; `img` holds `bases[y] + w + 2·ow` values for every row, `out` and `at` hold
    /// `bases.len() · ow`.
    #[target_feature(enable = "avx2")]
    pub unsafe fn max_2x2(img: *const f32, w: usize, bases: &[usize], ow: usize, out: *mut f32, at: *mut i64) {
        let two_i = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
        let shifts = [_mm256_set1_epi32(1), _mm256_set1_epi32(w as i32), _mm256_set1_epi32(w as i32 + 1)];
        for (y, &base) in bases.iter().enumerate() {
            let (top, bottom) = (img.add(base), img.add(base + w));
            let mut x0 = 0;
            while x0 < ow {
                // A short last block of a row of 8 or more is the row's last 8 windows again
                // (the overlap recomputes the same values): whole-vector stores.
                if ow - x0 < 8 && ow >= 8 {
                    x0 = ow - 8;
                }
                let n = (ow - x0).min(8);
                let (tl, tr) = pairs(top.add(2 * x0), 2 * n);
                let (bl, br) = pairs(bottom.add(2 * x0), 2 * n);
                let (mut best, mut off) = (tl, _mm256_setzero_ps());
                for (v, s) in [(tr, shifts[0]), (bl, shifts[1]), (br, shifts[2])] {
                    let take = _mm256_or_ps(_mm256_cmp_ps::<_CMP_GT_OQ>(v, best), _mm256_cmp_ps::<_CMP_UNORD_Q>(v, v));
                    best = _mm256_blendv_ps(best, v, take);
                    off = _mm256_blendv_ps(off, _mm256_castsi256_ps(s), take);
                }
                // Flat index: the window's top-left (base + 2x) plus the winner's offset.
                let pos = _mm256_add_epi32(_mm256_castps_si256(off), two_i);
                let first_at = _mm256_set1_epi64x((base + 2 * x0) as i64);
                let lo = _mm256_add_epi64(first_at, _mm256_cvtepi32_epi64(_mm256_castsi256_si128(pos)));
                let hi = _mm256_add_epi64(first_at, _mm256_cvtepi32_epi64(_mm256_extracti128_si256::<1>(pos)));
                let dst = y * ow + x0;
                if n == 8 {
                    _mm256_storeu_ps(out.add(dst), best);
                    _mm256_storeu_si256(at.add(dst) as *mut __m256i, lo);
                    _mm256_storeu_si256(at.add(dst + 4) as *mut __m256i, hi);
                } else {
                    let (mut vals, mut idx) = ([0f32; 8], [0i64; 8]);
                    _mm256_storeu_ps(vals.as_mut_ptr(), best);
                    _mm256_storeu_si256(idx.as_mut_ptr() as *mut __m256i, lo);
                    _mm256_storeu_si256(idx.as_mut_ptr().add(4) as *mut __m256i, hi);
                    copy_run(std::slice::from_raw_parts_mut(out.add(dst), n), &vals[..n]);
                    copy_run(std::slice::from_raw_parts_mut(at.add(dst), n), &idx[..n]);
                }
                x0 += n;
            }
        }
    }

    /// # Safety
    /// AVX2; `g` and `at` hold `oh · ow` values, `img` at least `2·oh` rows of `w ≥ 2·ow`.
    #[target_feature(enable = "avx2")]
    pub unsafe fn scatter_2x2(g: *const f32, at: *const i64, oh: usize, w: usize, ow: usize, img: *mut f32) -> bool {
        let two_i = _mm256_setr_epi64x(0, 2, 4, 6);
        let offs = [_mm256_set1_epi64x(0), _mm256_set1_epi64x(1), _mm256_set1_epi64x(w as i64), _mm256_set1_epi64x(w as i64 + 1)];
        let zero = _mm256_setzero_ps();
        for y in 0..oh {
            let (top, bottom) = (img.add(2 * y * w), img.add((2 * y + 1) * w));
            let mut x0 = 0;
            while x0 < ow {
                // As in `max_2x2`: each window's four inputs depend on it alone.
                if ow - x0 < 8 && ow >= 8 {
                    x0 = ow - 8;
                }
                let n = (ow - x0).min(8);
                let src = y * ow + x0;
                let (v, a_lo, a_hi) = if n == 8 {
                    (_mm256_loadu_ps(g.add(src)), _mm256_loadu_si256(at.add(src) as *const __m256i), _mm256_loadu_si256(at.add(src + 4) as *const __m256i))
                } else {
                    // Index lanes below n: 0..4 in the first load, 4..8 in the second.
                    let (nv, lanes) = (_mm256_set1_epi64x(n as i64), _mm256_setr_epi64x(0, 1, 2, 3));
                    let (m_lo, m_hi) = (_mm256_cmpgt_epi64(nv, lanes), _mm256_cmpgt_epi64(nv, _mm256_add_epi64(lanes, _mm256_set1_epi64x(4))));
                    (_mm256_maskload_ps(g.add(src), first(n)), _mm256_maskload_epi64(at.add(src), m_lo), _mm256_maskload_epi64(at.add(src + 4), m_hi))
                };
                // `+ 0` turns a -0.0 into 0.0, as the scatter's add into zeros does.
                let v = _mm256_add_ps(v, zero);
                // Each index relative to its window's top-left; its tap is the offset it matches.
                let first_at = _mm256_add_epi64(_mm256_set1_epi64x((2 * y * w + 2 * x0) as i64), two_i);
                let d_lo = _mm256_sub_epi64(a_lo, first_at);
                let d_hi = _mm256_sub_epi64(a_hi, _mm256_add_epi64(first_at, _mm256_set1_epi64x(8)));
                let mut taps = [zero; 4];
                let mut all = 0;
                for (t, d) in taps.iter_mut().zip(offs) {
                    let (h_lo, h_hi) = (_mm256_castsi256_ps(_mm256_cmpeq_epi64(d_lo, d)), _mm256_castsi256_ps(_mm256_cmpeq_epi64(d_hi, d)));
                    let hit = unshuffle(_mm256_shuffle_ps::<0b10_00_10_00>(h_lo, h_hi));
                    *t = _mm256_and_ps(hit, v);
                    all |= _mm256_movemask_ps(hit);
                }
                let keep = (1 << n) - 1;
                if all & keep != keep {
                    return false;
                }
                let [tl, tr, bl, br] = taps;
                for (row, l, r) in [(top, tl, tr), (bottom, bl, br)] {
                    let (lo, hi) = (_mm256_unpacklo_ps(l, r), _mm256_unpackhi_ps(l, r));
                    let (a, b) = (_mm256_permute2f128_ps::<0x20>(lo, hi), _mm256_permute2f128_ps::<0x31>(lo, hi));
                    if n == 8 {
                        _mm256_storeu_ps(row.add(2 * x0), a);
                        _mm256_storeu_ps(row.add(2 * x0 + 8), b);
                    } else {
                        let mut buf = [0f32; 16];
                        _mm256_storeu_ps(buf.as_mut_ptr(), a);
                        _mm256_storeu_ps(buf.as_mut_ptr().add(8), b);
                        copy_run(std::slice::from_raw_parts_mut(row.add(2 * x0), 2 * n), &buf[..2 * n]);
                    }
                }
                x0 += n;
            }
        }
        true
    }
}
