//! Copies and fills of short runs (a padded image row, a sliced row of 32) without a libc
//! `memcpy`/`memset` call per run: below 64 elements each run is a fixed chain of block moves.

/// Runs `$body` once per block of a fixed chain of power-of-two widths (32, 16, 8, 4, 2, 1)
/// that covers `$n < 64` elements, `$i` the block's start and `$w` its width as a constant:
/// no loop for LLVM to turn back into a `memcpy`/`memset` call, each block a few vector moves.
macro_rules! power_of_two_blocks {
    ($n:expr, |$i:ident, $w:ident| $body:expr) => {{
        let n = $n;
        let mut $i = 0;
        power_of_two_blocks!(@ n, $i, $w, $body; 32 16 8 4 2 1);
        debug_assert_eq!($i, n);
    }};
    (@ $n:ident, $i:ident, $w:ident, $body:expr; $($width:literal)*) => {$(
        if $n - $i >= $width {
            const $w: usize = $width;
            $body;
            $i += $w;
        }
    )*};
}

/// `dst.copy_from_slice(src)` for the short runs of small images without a `memcpy` call per
/// run (`power_of_two_blocks` below 64 elements).
#[inline(always)]
pub fn copy_run<T: Copy>(dst: &mut [T], src: &[T]) {
    let n = dst.len().min(src.len());
    if n >= 64 {
        dst[..n].copy_from_slice(&src[..n]);
        return;
    }
    power_of_two_blocks!(n, |i, W| dst[i..i + W].copy_from_slice(&src[i..i + W]));
}

/// `dst.fill(v)` for short runs, without a `memset` call per run (as `copy_run`).
#[inline(always)]
pub fn fill_run<T: Copy>(dst: &mut [T], v: T) {
    let n = dst.len();
    if n >= 64 {
        dst.fill(v);
        return;
    }
    power_of_two_blocks!(n, |i, W| dst[i..i + W].copy_from_slice(&[v; W]));
}


/// `even[i] = src[2i]`, `odd[i] = src[2i + 1]` for the `odd.len()` pairs of `src` (a stride-2
/// phase split). 4-byte values go 8 pairs at a time through AVX2 shuffles: LLVM vectorised
/// the plain loop only from 24 pairs on (and not the same loop over fixed-size blocks), so a
/// 32-wide image row ran one element at a time (10 % of a stride-2 forward).
#[inline(always)]
pub fn deinterleave_pairs<T: Copy>(src: &[T], even: &mut [T], odd: &mut [T]) {
    let pairs = odd.len().min(even.len()).min(src.len() / 2);
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if std::mem::size_of::<T>() == 4 && super::simd::has_avx2() {
        done = pairs / 8 * 8;
        // SAFETY: `done` pairs lie in `src`, `even` and `odd`; the values are moved as 4-byte
        // patterns, unchanged; AVX2 is present.
        unsafe { x86::deinterleave32(src.as_ptr() as *const f32, even.as_mut_ptr() as *mut f32, odd.as_mut_ptr() as *mut f32, done / 8) };
    }
    for i in done..pairs {
        even[i] = src[2 * i];
        odd[i] = src[2 * i + 1];
    }
}

/// The inverse of `deinterleave_pairs`: `dst[2i] = even[i]`, `dst[2i + 1] = odd[i]`.
#[inline(always)]
pub fn interleave_pairs<T: Copy>(even: &[T], odd: &[T], dst: &mut [T]) {
    let pairs = odd.len().min(even.len()).min(dst.len() / 2);
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if std::mem::size_of::<T>() == 4 && super::simd::has_avx2() {
        done = pairs / 8 * 8;
        // SAFETY: as in `deinterleave_pairs`.
        unsafe { x86::interleave32(even.as_ptr() as *const f32, odd.as_ptr() as *const f32, dst.as_mut_ptr() as *mut f32, done / 8) };
    }
    for i in done..pairs {
        dst[2 * i] = even[i];
        dst[2 * i + 1] = odd[i];
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// `blocks` blocks of 8 pairs: two loads, two in-lane shuffles and two lane permutes.
    #[target_feature(enable = "avx2")]
    pub unsafe fn deinterleave32(src: *const f32, even: *mut f32, odd: *mut f32, blocks: usize) {
        for b in 0..blocks {
            let (lo, hi) = (_mm256_loadu_ps(src.add(16 * b)), _mm256_loadu_ps(src.add(16 * b + 8)));
            // Per 128-bit lane: [lo0 lo2 hi0 hi2] and [lo1 lo3 hi1 hi3]; the permute puts the lo
            // halves first.
            let e = _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(_mm256_shuffle_ps::<0b10_00_10_00>(lo, hi))));
            let o = _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(_mm256_shuffle_ps::<0b11_01_11_01>(lo, hi))));
            _mm256_storeu_ps(even.add(8 * b), e);
            _mm256_storeu_ps(odd.add(8 * b), o);
        }
    }

    /// `blocks` blocks of 8 pairs joined: unpacks, then the 128-bit halves in order.
    #[target_feature(enable = "avx2")]
    pub unsafe fn interleave32(even: *const f32, odd: *const f32, dst: *mut f32, blocks: usize) {
        for b in 0..blocks {
            let (e, o) = (_mm256_loadu_ps(even.add(8 * b)), _mm256_loadu_ps(odd.add(8 * b)));
            let (lo, hi) = (_mm256_unpacklo_ps(e, o), _mm256_unpackhi_ps(e, o));
            _mm256_storeu_ps(dst.add(16 * b), _mm256_permute2f128_ps::<0x20>(lo, hi));
            _mm256_storeu_ps(dst.add(16 * b + 8), _mm256_permute2f128_ps::<0x31>(lo, hi));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_split_and_join() {
        for n in [0, 1, 7, 8, 9, 16, 17, 33] {
            let src: Vec<u32> = (0..2 * n as u32).collect();
            let (mut even, mut odd) = (vec![u32::MAX; n], vec![u32::MAX; n]);
            deinterleave_pairs(&src, &mut even, &mut odd);
            assert_eq!(even, (0..n as u32).map(|i| 2 * i).collect::<Vec<_>>());
            assert_eq!(odd, (0..n as u32).map(|i| 2 * i + 1).collect::<Vec<_>>());
            let mut back = vec![u32::MAX; 2 * n];
            interleave_pairs(&even, &odd, &mut back);
            assert_eq!(back, src);
        }
    }
}
