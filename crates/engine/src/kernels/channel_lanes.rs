//! Implicit-GEMM convolution kernels with output channels in the 16 float32 lanes of an
//! AVX-512 vector.
//!
//! - **Weight gradient** for 9 to 16 output channels (LeNet's conv2 has 16). The dot-product
//!   kernel (`sgemm_nt`) puts output channels in rows of 6, so 16 channels cost three row tiles,
//!   and its dot products end in horizontal sums as long as short rows themselves. Here every
//!   step is one vector load and one broadcast multiply-add per row of the tile.
//! - **Forward**: a tile is up to 16 positions of one output row times 16 or 32 channels. Each
//!   step loads the weights of one (input channel, tap) and broadcasts the input value of each
//!   position, so only real output positions are computed (the 6×32 row kernel also computes
//!   the padded row's extra columns, 40 % more on LeNet's conv2) and no load straddles cache
//!   lines. The tile is transposed in registers to store channel planes.
//!
//! Shapes: `src` holds zero-padded planes; row `p` of the implicit column matrix (one input
//! channel and kernel tap) is the `len` values at `src + offs[p]`; `gt` and `acc` hold 16
//! values per row, zero in lanes past the channel count.

use super::gemm::Mat;
use super::sgemm::Runs;

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

/// Weight rows per cache block of the forward (32 KiB of 32-channel weights).
const FORWARD_KC: usize = 256;

/// Convolution weights `(m × k)` packed for `forward`: channel groups of 32 (the last one 16
/// when at most 16 remain), each `k` rows of its 16 or 32 channels, zero past `m`.
pub struct LaneWeights {
    data: Vec<f32>,
    /// (first channel, 16-lane blocks, start in `data`) per group.
    groups: Vec<(usize, usize, usize)>,
    m: usize,
    k: usize,
}

impl LaneWeights {
    pub fn new(m: usize, k: usize, w: Mat<f32>) -> LaneWeights {
        let mut groups = Vec::new();
        let mut data = Vec::new();
        for c0 in (0..m).step_by(32) {
            let blocks = if m - c0 > 16 { 2 } else { 1 };
            groups.push((c0, blocks, data.len()));
            let width = 16 * blocks;
            for p in 0..k {
                for o in c0..c0 + width {
                    // SAFETY: (o, p) lies inside the (m × k) weights.
                    data.push(if o < m { unsafe { *w.ptr.offset(o as isize * w.rs + p as isize * w.cs) } } else { 0.0 });
                }
            }
        }
        LaneWeights { data, groups, m, k }
    }
}

/// Forward: `out[o·ldo + y·dst_pitch + x] = bias[o] + Σ_p w[o, p] · src[offs[p] + y·src_pitch + x]`
/// for the `runs.count` rows of `runs.len` positions. `None` (doing nothing) without AVX-512.
pub fn forward(w: &LaneWeights, runs: Runs, src: *const f32, offs: &[isize], bias: Option<&[f32]>, out: *mut f32, ldo: usize) -> Option<()> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") && offs.len() >= w.k && bias.is_none_or(|b| b.len() >= w.m) && runs.len > 0 {
        for pc in (0..w.k).step_by(FORWARD_KC) {
            let kc = FORWARD_KC.min(w.k - pc);
            for &(c0, blocks, start) in &w.groups {
                let width = 16 * blocks;
                let wb = w.data[start + pc * width..].as_ptr();
                let channels = (w.m - c0).min(width);
                let init = match bias {
                    _ if pc > 0 => x86::Init::Accumulate,
                    Some(b) => x86::Init::Bias(b[c0..].as_ptr()),
                    None => x86::Init::Zero,
                };
                // Positions per tile: the row in near-equal pieces of at most 16 (14 for 32
                // channels, so that the accumulators fit the 32 registers).
                let most = if blocks == 2 { 14 } else { 16 };
                let pieces = runs.len.div_ceil(most);
                for y in 0..runs.count {
                    let mut x0 = 0;
                    for piece in 0..pieces {
                        let len = runs.len / pieces + usize::from(piece < runs.len % pieces);
                        let tile = x86::tile_fn(len, blocks)?;
                        // SAFETY: the caller guarantees src + offs[p] + y·src_pitch + x is readable
                        // for x < runs.len, and that the channel rows of out hold the run.
                        unsafe {
                            tile(
                                kc,
                                wb,
                                src.add(y * runs.src_pitch + x0),
                                offs[pc..].as_ptr(),
                                out.add(c0 * ldo + y * runs.dst_pitch + x0),
                                ldo,
                                channels,
                                init,
                            )
                        };
                        x0 += len;
                    }
                }
            }
        }
        return Some(());
    }
    let _ = (w, runs, src, offs, bias, out, ldo);
    None
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::ROWS;

    /// How a forward tile starts its sums.
    #[derive(Clone, Copy)]
    pub enum Init {
        Zero,
        /// One value per channel.
        Bias(*const f32),
        /// Added to what `out` holds (a later block of weight rows).
        Accumulate,
    }

    type TileFn = unsafe fn(usize, *const f32, *const f32, *const isize, *mut f32, usize, usize, Init);

    /// The forward tile for `positions` (1..=16; ..=14 with 2 blocks) and 1 or 2 channel blocks.
    pub fn tile_fn(positions: usize, blocks: usize) -> Option<TileFn> {
        macro_rules! pick {
            ($b:literal; $($p:literal)*) => {
                match positions { $($p => Some(forward_tile::<$p, $b> as TileFn),)* _ => None }
            };
        }
        match blocks {
            1 => pick!(1; 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16),
            2 => pick!(2; 1 2 3 4 5 6 7 8 9 10 11 12 13 14),
            _ => None,
        }
    }

    /// `P` positions × `B`·16 channels over `kc` weight rows: row p's weights at `w + p·16B`, its
    /// input values at `src + offs[p]`; channel o of the result stored at `out + o·ldo`.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f")]
    unsafe fn forward_tile<const P: usize, const B: usize>(kc: usize, w: *const f32, src: *const f32, offs: *const isize, out: *mut f32, ldo: usize, channels: usize, init: Init) {
        let lanes = |n: usize| -> __mmask16 { if n >= 16 { 0xFFFF } else { ((1u32 << n) - 1) as __mmask16 } };
        let mut acc = [[_mm512_setzero_ps(); P]; B];
        if let Init::Bias(b) = init {
            for (blk, row) in acc.iter_mut().enumerate() {
                let v = _mm512_maskz_loadu_ps(lanes(channels.saturating_sub(16 * blk)), b.add(16 * blk));
                *row = [v; P];
            }
        }
        for p in 0..kc {
            let r = src.offset(*offs.add(p));
            let mut wv = [_mm512_setzero_ps(); B];
            for (blk, v) in wv.iter_mut().enumerate() {
                *v = _mm512_loadu_ps(w.add((p * B + blk) * 16));
            }
            for i in 0..P {
                let x = _mm512_set1_ps(*r.add(i));
                for blk in 0..B {
                    acc[blk][i] = _mm512_fmadd_ps(x, wv[blk], acc[blk][i]);
                }
            }
        }
        let keep = lanes(P);
        for (blk, row) in acc.iter().enumerate() {
            let mut rows = [_mm512_setzero_ps(); 16];
            rows[..P].copy_from_slice(row);
            let cols = transpose(rows);
            for (o, v) in cols.iter().enumerate().take(channels.saturating_sub(16 * blk).min(16)) {
                let d = out.add((16 * blk + o) * ldo);
                let v = if matches!(init, Init::Accumulate) { _mm512_add_ps(_mm512_maskz_loadu_ps(keep, d), *v) } else { *v };
                _mm512_mask_storeu_ps(d, keep, v);
            }
        }
    }

    /// The 16 × 16 transpose: lane j of result i is lane i of `r[j]`. (Plain loops: closures
    /// would not inherit the caller's target features, and the intrinsics would become calls.)
    #[inline(always)]
    unsafe fn transpose(r: [__m512; 16]) -> [__m512; 16] {
        // 32-bit, then 64-bit interleaves within 128-bit lanes: b[4g + j] lane k holds element
        // 4k + j of rows 4g..4g+4.
        let mut a = [_mm512_setzero_ps(); 16];
        for i in (0..16).step_by(2) {
            a[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
            a[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
        }
        let mut b = [_mm512_setzero_ps(); 16];
        for g in 0..4 {
            for h in 0..2 {
                let (x, y) = (_mm512_castps_pd(a[4 * g + h]), _mm512_castps_pd(a[4 * g + 2 + h]));
                b[4 * g + 2 * h] = _mm512_castpd_ps(_mm512_unpacklo_pd(x, y));
                b[4 * g + 2 * h + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(x, y));
            }
        }
        // 128-bit lanes: result 4k + j gathers lane k of b[j], b[4 + j], b[8 + j], b[12 + j].
        let mut c = [_mm512_setzero_ps(); 16];
        for j in 0..4 {
            let d0 = _mm512_shuffle_f32x4::<0x44>(b[j], b[4 + j]);
            let d1 = _mm512_shuffle_f32x4::<0xEE>(b[j], b[4 + j]);
            let e0 = _mm512_shuffle_f32x4::<0x44>(b[8 + j], b[12 + j]);
            let e1 = _mm512_shuffle_f32x4::<0xEE>(b[8 + j], b[12 + j]);
            c[j] = _mm512_shuffle_f32x4::<0x88>(d0, e0);
            c[4 + j] = _mm512_shuffle_f32x4::<0xDD>(d0, e0);
            c[8 + j] = _mm512_shuffle_f32x4::<0x88>(d1, e1);
            c[12 + j] = _mm512_shuffle_f32x4::<0xDD>(d1, e1);
        }
        c
    }

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
    fn forward_matches_naive_sums() {
        // 300 weight rows (two cache blocks), rows of 37 positions (three pieces per row),
        // 13 and 29 channels (one and two lane blocks), with and without bias.
        let (k, count, len, pitch) = (300, 3, 37, 41);
        let src: Vec<f32> = (0..k + (count - 1) * pitch + len).map(|i| ((i * 7) % 13) as f32 - 6.0).collect();
        let offs: Vec<isize> = (0..k).map(|p| ((p * 5) % k) as isize).collect();
        for m in [13, 29] {
            let w: Vec<f32> = (0..m * k).map(|i| ((i * 5) % 11) as f32 * 0.25 - 1.0).collect();
            let lw = LaneWeights::new(m, k, Mat { ptr: w.as_ptr(), rs: k as isize, cs: 1 });
            let bias: Vec<f32> = (0..m).map(|o| o as f32 - 3.0).collect();
            for with_bias in [false, true] {
                let ldo = count * len + 3;
                let mut out = vec![f32::NAN; m * ldo];
                let runs = Runs { count, len, src_pitch: pitch, dst_pitch: len };
                if forward(&lw, runs, src.as_ptr(), &offs, with_bias.then_some(&bias[..]), out.as_mut_ptr(), ldo).is_none() {
                    return; // no AVX-512 here: callers use the general kernels
                }
                for o in 0..m {
                    for y in 0..count {
                        for x in 0..len {
                            let b = if with_bias { bias[o] as f64 } else { 0.0 };
                            let want = b + (0..k).map(|p| w[o * k + p] as f64 * src[offs[p] as usize + y * pitch + x] as f64).sum::<f64>();
                            let got = out[o * ldo + y * len + x] as f64;
                            assert!((got - want).abs() <= 1e-3 * (1.0 + want.abs()), "m {m} o {o} y {y} x {x}: {got} vs {want}");
                        }
                    }
                    assert!(out[o * ldo + count * len..(o + 1) * ldo].iter().all(|v| v.is_nan()), "wrote past the runs");
                }
            }
        }
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
