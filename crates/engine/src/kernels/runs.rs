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

