//! The implicit-GEMM convolution weight gradient for 9 to 16 output channels, with the channels
//! in the 16 float32 lanes of an AVX-512 vector (LeNet's conv2 has 16). The dot-product kernel
//! (`sgemm_nt`) puts output channels in rows of 6, so 16 channels cost three row tiles, and its
//! dot products end in horizontal sums as long as short rows themselves. Here every step is one
//! vector load and one broadcast multiply-add per row of the tile, with no horizontal sums.
//! (The same layout for the forward measured no faster: transposing its result back to
//! channel planes cost what the kernel saved.)
//!
//! Shapes: `src` holds zero-padded planes; row `p` of the implicit column matrix (one input
//! channel and kernel tap) is the `len` values at `src + offs[p]`; `gt` and `acc` hold 16
//! values per row, zero in lanes past the channel count.

/// Rows of one tile: 24 accumulators leave registers for the loaded vector.
const ROWS: usize = 24;

/// Weight gradient: `acc[p·16 + o] += Σ_s src[offs[p] + s] · gt[s·16 + o]` for every p. `None`
/// (doing nothing) without AVX-512.
pub fn weight_grad(len: usize, gt: &[f32], src: *const f32, offs: &[isize], acc: &mut [f32]) -> Option<()> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            assert!(acc.len() >= offs.len() * 16 && gt.len() >= len * 16, "channel_lanes::weight_grad: operands too short");
            for p0 in (0..offs.len()).step_by(ROWS) {
                // SAFETY: every column row offs[p]..+len lies in the padded planes; rows past
                // the end repeat the last one and are not stored.
                unsafe { x86::weight_grad_tile(len, gt.as_ptr(), src, offs, p0, acc.as_mut_ptr()) };
            }
            return Some(());
        }
    }
    let _ = (len, gt, src, offs, acc);
    None
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::ROWS;

    #[target_feature(enable = "avx512f")]
    pub unsafe fn weight_grad_tile(len: usize, gt: *const f32, src: *const f32, offs: &[isize], p0: usize, acc: *mut f32) {
        let n = offs.len();
        let rows: [*const f32; ROWS] = std::array::from_fn(|r| src.offset(offs[(p0 + r).min(n - 1)]));
        let mut a: [__m512; ROWS] = std::array::from_fn(|r| if p0 + r < n { _mm512_loadu_ps(acc.add((p0 + r) * 16)) } else { _mm512_setzero_ps() });
        for s in 0..len {
            let g = _mm512_loadu_ps(gt.add(s * 16));
            for r in 0..ROWS {
                a[r] = _mm512_fmadd_ps(_mm512_set1_ps(*rows[r].add(s)), g, a[r]);
            }
        }
        for (r, v) in a.iter().enumerate().take(n - p0) {
            _mm512_storeu_ps(acc.add((p0 + r) * 16), *v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operands(len: usize, n: usize) -> (Vec<f32>, Vec<isize>, Vec<f32>) {
        let src: Vec<f32> = (0..300).map(|i| ((i * 7) % 13) as f32 - 6.0).collect();
        let offs: Vec<isize> = (0..n).map(|p| ((p * 3) % 150) as isize).collect();
        let lanes: Vec<f32> = (0..len.max(n) * 16).map(|i| ((i * 5) % 11) as f32 * 0.5 - 2.0).collect();
        (src, offs, lanes)
    }

    #[test]
    fn weight_grad_matches_naive_sums() {
        let (len, n) = (37, 53);
        let (src, offs, gt) = operands(len, n);
        let mut acc = vec![1.0f32; n * 16];
        if weight_grad(len, &gt, src.as_ptr(), &offs, &mut acc).is_none() {
            return; // no AVX-512 here: callers use the general kernels
        }
        for p in 0..n {
            for o in 0..16 {
                let want: f32 = 1.0 + (0..len).map(|s| src[offs[p] as usize + s] * gt[s * 16 + o]).sum::<f32>();
                assert!((acc[p * 16 + o] - want).abs() <= 1e-3 * (1.0 + want.abs()), "p {p} o {o}");
            }
        }
    }
}
