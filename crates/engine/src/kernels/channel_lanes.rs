//! Implicit-GEMM convolution kernels with output channels in vector lanes: blocks of 16, one
//! AVX-512 vector or two AVX2 ones.
//!
//! - **Weight gradient** for 9 to 64 output channels, in 1 to 4 blocks of 16 lanes (AVX2: two
//!   8-lane vectors per block, and one block of 8 for up to 8 channels). The
//!   dot-product kernel (`sgemm_nt`) ends every tile in horizontal sums (as long as short rows
//!   themselves on LeNet's conv2) and streams its ten rows from L2 for every tile. Here a tile is
//!   24/B column rows × B lane blocks: each step loads B gradient vectors and broadcasts one
//!   input value per row, over blocks of positions whose gradient stays in L1.
//! - **Forward**: a tile is up to 16 positions of one output row times 16 or 32 channels (AVX2:
//!   up to 6 positions times 16 channels, two ymm per position). Each
//!   step loads the weights of one (input channel, tap) and broadcasts the input value of each
//!   position, so only real output positions are computed (the 6×32 row kernel also computes
//!   the padded row's extra columns, 40 % more on LeNet's conv2) and no load straddles cache
//!   lines. The tile is transposed in registers (16 × 16, or 8 × 8 on AVX2) to store channel
//!   planes. Both levels share one generic product (`forward_sums`).
//!
//! Shapes: `src` holds zero-padded planes; row `p` of the implicit column matrix (one input
//! channel and kernel tap) is the `len` values at `src + offs[p]`; `gt` and `acc` hold 16
//! values per row, zero in lanes past the channel count.

use super::gemm::Mat;
use super::sgemm::Runs;

/// Bytes of gradient vectors one block of positions keeps in L1 for the weight gradient.
const WEIGHT_GRAD_BLOCK_BYTES: usize = 24 << 10;

/// Whether these kernels run on this CPU (AVX-512); without it every entry point returns `None`.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// The lane width `w` that `weight_grad` and `to_lanes` use for `channels` output channels,
/// `None` where they do not run: 16 lanes per block of up to 4 (9 to 64 channels, with AVX-512
/// or AVX2 and FMA), or on AVX2 one block of 8 for up to 8 channels (LeNet conv1's 6: 75 % of
/// the lanes busy, against 38 % in a block of 16).
pub fn weight_grad_width(channels: usize) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        let avx2 = std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma");
        match channels {
            9..=64 if available() || avx2 => Some(16 * channels.div_ceil(16)),
            1..=8 if !available() && avx2 => Some(8),
            _ => None,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = channels;
        None
    }
}

/// Weight gradient over `w` lanes (`weight_grad_width`): `acc[p·w + o] += Σ_s src[offs[p] + s] ·
/// gt[s·w + o]` for every p. `None` (doing nothing) where the width is not one of this CPU's.
pub fn weight_grad(len: usize, w: usize, gt: &[f32], src: *const f32, offs: &[isize], acc: &mut [f32]) -> Option<()> {
    #[cfg(target_arch = "x86_64")]
    if weight_grad_width(w) == Some(w) && !offs.is_empty() {
        assert!(acc.len() >= offs.len() * w && gt.len() >= len * w, "channel_lanes::weight_grad: operands too short");
        let step = (WEIGHT_GRAD_BLOCK_BYTES / (w * 4)).max(16);
        type Tile = unsafe fn(usize, usize, *const f32, *const f32, &[isize], usize, *mut f32, usize, usize);
        // (tile, column rows per tile, lanes per tile). Rows in runs of a kernel row's taps
        // (consecutive offsets) share one pointer per run: 24 pointers of their own do not fit
        // the 16 general registers, and reloading the spilled ones made a tile load-bound at
        // 60 % of the FMA rate. AVX-512's 32 registers hold all w lanes of up to 25 rows; AVX2's
        // 16 hold 5 to 12 rows × one block of 8 or 16 lanes (one or two vectors): the
        // accumulators, the block's gradient vectors and a broadcast.
        let (tile, rows, lanes): (Tile, usize, usize) = if available() {
            match (w / 16, tap_runs(offs)) {
                (1, 5) => (x86::weight_grad_512::<25, 5, 5, 1>, 25, w),
                (1, 3) => (x86::weight_grad_512::<24, 8, 3, 1>, 24, w),
                (2, 5) => (x86::weight_grad_512::<10, 2, 5, 2>, 10, w),
                (2, 3) => (x86::weight_grad_512::<12, 4, 3, 2>, 12, w),
                (1, _) => (x86::weight_grad_512::<24, 24, 1, 1>, 24, w),
                (2, _) => (x86::weight_grad_512::<12, 12, 1, 2>, 12, w),
                (3, _) => (x86::weight_grad_512::<8, 8, 1, 3>, 8, w),
                _ => (x86::weight_grad_512::<6, 6, 1, 4>, 6, w),
            }
        } else {
            match (w, tap_runs(offs)) {
                (8, 5) => (x86::weight_grad_256::<10, 2, 5, 1>, 10, 8),
                (8, 3) => (x86::weight_grad_256::<12, 4, 3, 1>, 12, 8),
                (8, _) => (x86::weight_grad_256::<8, 8, 1, 1>, 8, 8),
                (_, 5) => (x86::weight_grad_256::<5, 1, 5, 2>, 5, 16),
                (_, 3) => (x86::weight_grad_256::<6, 2, 3, 2>, 6, 16),
                _ => (x86::weight_grad_256::<6, 6, 1, 2>, 6, 16),
            }
        };
        for s0 in (0..len).step_by(step) {
            let s1 = (s0 + step).min(len);
            for lane0 in (0..w).step_by(lanes) {
                for p0 in (0..offs.len()).step_by(rows) {
                    // SAFETY: every column row offs[p]..+len lies in the padded planes; rows past
                    // the end repeat the last one and are not stored; the width is this CPU's
                    // (`weight_grad_width`), so the tile's level is present.
                    unsafe { tile(s0, s1, gt.as_ptr(), src, offs, p0, acc.as_mut_ptr(), w, lane0) };
                }
            }
        }
        return Some(());
    }
    let _ = (len, w, gt, src, offs, acc);
    None
}

/// 5 or 3 when `offs` is runs of that many consecutive offsets (a 5- or 3-wide kernel's taps
/// along a row, at unit stride and dilation), else 0.
fn tap_runs(offs: &[isize]) -> usize {
    let runs = |kw: usize| offs.len() % kw == 0 && offs.chunks_exact(kw).all(|c| (1..kw).all(|j| c[j] == c[0] + j as isize));
    [5, 3].into_iter().find(|&kw| runs(kw)).unwrap_or(0)
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

/// Whether `forward` runs on this CPU: AVX-512, or AVX2 with FMA for weights of one 16-lane
/// block (up to 16 channels).
pub fn forward_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        available() || std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Forward: `out[o·ldo + y·dst_pitch + x] = bias[o] + Σ_p w[o, p] · src[offs[p] + y·src_pitch + x]`
/// for the `runs.count` rows of `runs.len` positions. `None` (doing nothing) where
/// `forward_available` is false, or on AVX2 for more than 16 channels.
pub fn forward(w: &LaneWeights, runs: Runs, src: *const f32, offs: &[isize], bias: Option<&[f32]>, out: *mut f32, ldo: usize) -> Option<()> {
    #[cfg(target_arch = "x86_64")]
    if forward_available() && (available() || w.m <= 16) && offs.len() >= w.k && bias.is_none_or(|b| b.len() >= w.m) && runs.len > 0 {
        let avx512 = available();
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
                // channels, so that the accumulators fit the 32 registers; 6 on AVX2, two ymm
                // each in 16 registers). With AVX-512, rows of up to 12 positions with one lane
                // block go two rows per tile: more independent sums and half the per-tile work
                // (transposes, stores) per multiply-add.
                let most = match (avx512, blocks) {
                    (false, _) => 6,
                    (true, 2) => 14,
                    _ => 16,
                };
                let pieces = runs.len.div_ceil(most);
                let pair = avx512 && blocks == 1 && runs.len <= 12;
                let mut y = 0;
                while y < runs.count {
                    let rows = if pair && y + 1 < runs.count { 2 } else { 1 };
                    let mut x0 = 0;
                    for piece in 0..pieces {
                        let len = runs.len / pieces + usize::from(piece < runs.len % pieces);
                        let tile = x86::tile_fn(avx512, len, blocks, rows)?;
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
                                [runs.src_pitch, runs.dst_pitch],
                            )
                        };
                        x0 += len;
                    }
                    y += rows;
                }
            }
        }
        return Some(());
    }
    let _ = (w, runs, src, offs, bias, out, ldo);
    None
}

/// `rows` planes of `count × len` values (`src`, plane after plane) into lanes: value (o, y, x)
/// goes to `dst[(y·pitch + x)·w + o]`; lanes past `rows` may be zeroed up to the next multiple
/// of 8, other entries are left as they are. `None` (doing
/// nothing) where `weight_grad` does not run.
pub fn to_lanes(src: &[f32], rows: usize, count: usize, len: usize, pitch: usize, w: usize, dst: &mut [f32]) -> Option<()> {
    #[cfg(target_arch = "x86_64")]
    if weight_grad_width(rows.max(1)) == Some(w) && len <= pitch {
        assert!(src.len() >= rows * count * len && (count == 0 || dst.len() >= ((count - 1) * pitch + len) * w), "channel_lanes::to_lanes: operands too short");
        if !available() {
            // AVX2 (`weight_grad_width` asks for it): 8 × 8 register transposes. Element by
            // element, this pass was 5 % of a LeNet step at batch 64 on one thread.
            // SAFETY: the lengths were checked above; AVX2 is present.
            unsafe { x86::to_lanes_avx2(src.as_ptr(), rows, count, len, pitch, w, dst.as_mut_ptr()) };
            return Some(());
        }
        // SAFETY: the lengths were checked above.
        unsafe { x86::to_lanes(src.as_ptr(), rows, count, len, pitch, w, dst.as_mut_ptr()) };
        return Some(());
    }
    let _ = (src, rows, count, len, pitch, w, dst);
    None
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use crate::kernels::lanes::Lanes;
    use crate::kernels::transpose::block16;

    /// How a forward tile starts its sums.
    #[derive(Clone, Copy)]
    pub enum Init {
        Zero,
        /// One value per channel.
        Bias(*const f32),
        /// Added to what `out` holds (a later block of weight rows).
        Accumulate,
    }

    type TileFn = unsafe fn(usize, *const f32, *const f32, *const isize, *mut f32, usize, usize, Init, [usize; 2]);

    /// The forward tile for `positions` and 1 or 2 channel blocks of 16: with AVX-512, 1..=16
    /// positions (..=14 with 2 blocks; ..=12 over 2 rows); with AVX2, 1..=6 positions of one
    /// block in one row (two ymm accumulators per position: 12 of the 16 registers).
    pub fn tile_fn(avx512: bool, positions: usize, blocks: usize, rows: usize) -> Option<TileFn> {
        macro_rules! pick {
            ($f:ident, $b:literal, $r:literal; $($p:literal)*) => {
                match positions { $($p => Some($f::<$p, $b, $r> as TileFn),)* _ => None }
            };
        }
        match (avx512, blocks, rows) {
            (true, 1, 1) => pick!(forward_512, 1, 1; 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16),
            (true, 2, 1) => pick!(forward_512, 2, 1; 1 2 3 4 5 6 7 8 9 10 11 12 13 14),
            (true, 1, 2) => pick!(forward_512, 1, 2; 1 2 3 4 5 6 7 8 9 10 11 12),
            (false, 1, 1) => pick!(forward_256, 2, 1; 1 2 3 4 5 6),
            _ => None,
        }
    }

    /// The sums of an `R`-row × `P`-position × `H`-vector tile over `kc` weight rows, from
    /// `start` (a value per channel vector): row p's weights at `w + p·H·W`, its input values
    /// for tile row r at `src + offs[p] + r·pitch`. Written once against `Lanes`.
    #[inline(always)]
    unsafe fn forward_sums<V: Lanes, const P: usize, const H: usize, const R: usize>(kc: usize, w: *const f32, src: *const f32, offs: *const isize, pitch: usize, start: [V; H]) -> [[[V; P]; H]; R] {
        // acc[r][h][i]: tile row r, channel vector h, position i.
        let mut acc = [[[V::zero(); P]; H]; R];
        for row in acc.iter_mut() {
            for (sums, &v) in row.iter_mut().zip(&start) {
                *sums = [v; P];
            }
        }
        for p in 0..kc {
            let base = src.offset(*offs.add(p));
            let mut wv = [V::zero(); H];
            for (h, v) in wv.iter_mut().enumerate() {
                *v = V::load(w.add((p * H + h) * V::W));
            }
            for (r, row) in acc.iter_mut().enumerate() {
                let at = base.add(r * pitch);
                for i in 0..P {
                    let x = V::splat(*at.add(i));
                    for h in 0..H {
                        row[h][i] = V::fmadd(x, wv[h], row[h][i]);
                    }
                }
            }
        }
        acc
    }

    /// The sums' starting values: the bias of each channel (zero past `channels`) or zero.
    #[inline(always)]
    unsafe fn forward_start<V: Lanes, const H: usize>(init: Init, channels: usize) -> [V; H] {
        let mut start = [V::zero(); H];
        if let Init::Bias(b) = init {
            for (h, v) in start.iter_mut().enumerate() {
                *v = V::load_masked(V::first(channels.saturating_sub(V::W * h)), b.add(V::W * h));
            }
        }
        start
    }

    /// `R` rows of `P` positions × `B`·16 channels over `kc` weight rows: row p's weights at
    /// `w + p·16B`, its input values for tile row r at `src + offs[p] + r·pitch[0]`; channel o of
    /// tile row r stored at `out + o·ldo + r·pitch[1]` (16 × 16 register transposes).
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f")]
    unsafe fn forward_512<const P: usize, const B: usize, const R: usize>(
        kc: usize,
        w: *const f32,
        src: *const f32,
        offs: *const isize,
        out: *mut f32,
        ldo: usize,
        channels: usize,
        init: Init,
        pitch: [usize; 2],
    ) {
        let acc = forward_sums::<__m512, P, B, R>(kc, w, src, offs, pitch[0], forward_start::<__m512, B>(init, channels));
        forward_store(&acc, out, ldo, channels, init, pitch[1]);
    }

    /// `forward_512` on AVX2 with FMA: `H` ymm vectors of 8 channels per position (8 × 8
    /// register transposes).
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn forward_256<const P: usize, const H: usize, const R: usize>(
        kc: usize,
        w: *const f32,
        src: *const f32,
        offs: *const isize,
        out: *mut f32,
        ldo: usize,
        channels: usize,
        init: Init,
        pitch: [usize; 2],
    ) {
        let acc = forward_sums::<__m256, P, H, R>(kc, w, src, offs, pitch[0], forward_start::<__m256, H>(init, channels));
        forward_store(&acc, out, ldo, channels, init, pitch[1]);
    }

    /// Stores a forward tile: each block of `W` channels × `P` positions of each row is
    /// transposed in registers into `W` channel rows of `P` positions; channel o of tile row r
    /// goes to `out + o·ldo + r·pitch` (added to what is there with `Init::Accumulate`).
    #[inline(always)]
    unsafe fn forward_store<V: Lanes, const P: usize, const B: usize, const R: usize>(
        acc: &[[[V; P]; B]; R],
        out: *mut f32,
        ldo: usize,
        channels: usize,
        init: Init,
        pitch: usize,
    ) {
        let keep = V::first(P);
        for (r, row) in acc.iter().enumerate() {
            for (blk, sums) in row.iter().enumerate() {
                let mut t = V::zero_square();
                t.as_mut()[..P].copy_from_slice(sums);
                let cols = V::transpose(t);
                for (o, v) in cols.as_ref().iter().enumerate().take(channels.saturating_sub(V::W * blk).min(V::W)) {
                    let d = out.add((V::W * blk + o) * ldo + r * pitch);
                    let v = if matches!(init, Init::Accumulate) { V::add(V::load_masked(keep, d), *v) } else { *v };
                    V::store_masked(d, keep, v);
                }
            }
        }
    }

    /// `to_lanes` in 16 × 16 blocks transposed in registers.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn to_lanes(src: *const f32, rows: usize, count: usize, len: usize, pitch: usize, w: usize, dst: *mut f32) {
        let plane = count * len;
        for y in 0..count {
            for x0 in (0..len).step_by(16) {
                for o0 in (0..rows).step_by(16) {
                    let os = (rows - o0).min(16);
                    let from = src.add(o0 * plane + y * len + x0);
                    block16(from, plane, os, (len - x0).min(16), dst.add((y * pitch + x0) * w + o0), w, os);
                }
            }
        }
    }

    /// `to_lanes` in 8 × 8 blocks transposed in registers. Lanes past `rows` up to the next
    /// multiple of 8 get zeros (whole-vector stores: AVX2's masked stores measured slower than
    /// the element-by-element loop for LeNet conv1's 6 channels); positions past `len` are not
    /// written.
    #[target_feature(enable = "avx2")]
    pub unsafe fn to_lanes_avx2(src: *const f32, rows: usize, count: usize, len: usize, pitch: usize, w: usize, dst: *mut f32) {
        let (plane, idx) = (count * len, _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        for y in 0..count {
            for x0 in (0..len).step_by(8) {
                let cols = (len - x0).min(8);
                let col_mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols as i32), idx);
                for o0 in (0..rows).step_by(8) {
                    let os = (rows - o0).min(8);
                    let from = src.add(o0 * plane + y * len + x0);
                    let mut r = [_mm256_setzero_ps(); 8];
                    for (i, v) in r.iter_mut().enumerate().take(os) {
                        *v = if cols == 8 { _mm256_loadu_ps(from.add(i * plane)) } else { _mm256_maskload_ps(from.add(i * plane), col_mask) };
                    }
                    for (j, v) in crate::kernels::transpose::transpose8(r).iter().enumerate().take(cols) {
                        let d = dst.add((y * pitch + x0 + j) * w + o0);
                        _mm256_storeu_ps(d, *v);
                    }
                }
            }
        }
    }

    /// `R = G·KW` column rows (G runs of KW consecutive offsets, the taps at constant
    /// displacements from one pointer per run; KW = 1 for scattered rows) × lanes `lane0..lane0
    /// + H·V::W` of the weight gradient over positions `s0..s1`; rows are `w` lanes apart in
    /// `gt` and `acc`. Written once against `Lanes`, instantiated per level below.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    unsafe fn weight_grad_runs<V: Lanes, const R: usize, const G: usize, const KW: usize, const H: usize>(
        s0: usize,
        s1: usize,
        gt: *const f32,
        src: *const f32,
        offs: &[isize],
        p0: usize,
        acc: *mut f32,
        w: usize,
        lane0: usize,
    ) {
        debug_assert!(R == G * KW && offs.len() % KW == 0);
        let n = offs.len();
        let mut runs = [src; G];
        for (g, run) in runs.iter_mut().enumerate() {
            // Runs past the end repeat the last one; their rows are not stored.
            *run = src.offset(offs[(p0 + g * KW).min(n - KW)]);
        }
        let mut a = [[V::zero(); H]; R];
        for (r, v) in a.iter_mut().enumerate().take(n - p0) {
            for (h, v) in v.iter_mut().enumerate() {
                *v = V::load(acc.add((p0 + r) * w + lane0 + V::W * h));
            }
        }
        for s in s0..s1 {
            let mut g = [V::zero(); H];
            for (h, v) in g.iter_mut().enumerate() {
                *v = V::load(gt.add(s * w + lane0 + V::W * h));
            }
            for (j, run) in runs.iter().enumerate() {
                let at = run.add(s);
                for kx in 0..KW {
                    let x = V::splat(*at.add(kx));
                    for h in 0..H {
                        a[j * KW + kx][h] = V::fmadd(x, g[h], a[j * KW + kx][h]);
                    }
                }
            }
        }
        for (r, v) in a.iter().enumerate().take(n - p0) {
            for (h, v) in v.iter().enumerate() {
                V::store(acc.add((p0 + r) * w + lane0 + V::W * h), *v);
            }
        }
    }

    /// `weight_grad_runs` on AVX-512 (16 lanes per vector).
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn weight_grad_512<const R: usize, const G: usize, const KW: usize, const H: usize>(s0: usize, s1: usize, gt: *const f32, src: *const f32, offs: &[isize], p0: usize, acc: *mut f32, w: usize, lane0: usize) {
        weight_grad_runs::<__m512, R, G, KW, H>(s0, s1, gt, src, offs, p0, acc, w, lane0)
    }

    /// `weight_grad_runs` on AVX2 with FMA (8 lanes per vector).
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn weight_grad_256<const R: usize, const G: usize, const KW: usize, const H: usize>(s0: usize, s1: usize, gt: *const f32, src: *const f32, offs: &[isize], p0: usize, acc: *mut f32, w: usize, lane0: usize) {
        weight_grad_runs::<__m256, R, G, KW, H>(s0, s1, gt, src, offs, p0, acc, w, lane0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_lanes_transposes_planes() {
        let (count, len, pitch) = (3, 21, 23);
        for (rows, w) in [(5, 8), (5, 16), (16, 16), (37, 48)] {
            let src: Vec<f32> = (0..rows * count * len).map(|i| i as f32).collect();
            let mut dst = vec![-1.0f32; ((count - 1) * pitch + len) * w];
            if to_lanes(&src, rows, count, len, pitch, w, &mut dst).is_none() {
                assert_ne!(weight_grad_width(rows), Some(w));
                continue; // not this CPU's width for these rows: callers use the dot products
            }
            for (i, &v) in dst.iter().enumerate() {
                let (pos, o) = (i / w, i % w);
                let (y, x) = (pos / pitch, pos % pitch);
                if x < len && o >= rows && o < rows.next_multiple_of(8) {
                    assert!(v == -1.0 || v == 0.0, "rows {rows} w {w} at {i}: {v}");
                    continue;
                }
                let want = if o < rows && x < len { src[(o * count + y) * len + x] } else { -1.0 };
                assert_eq!(v, want, "rows {rows} w {w} at {i}");
            }
        }
    }

    #[test]
    fn forward_matches_naive_sums() {
        // 300 weight rows (two cache blocks), rows of 37 positions (three pieces per row; seven
        // on AVX2), rows of 10 (two rows per tile, an odd row count) and of 4, 13 and 29 channels
        // (one and two lane blocks; AVX2 runs one), with and without bias.
        for (k, count, len, pitch) in [(300, 3, 37, 41), (150, 5, 10, 14), (60, 2, 4, 7)] {
            let src: Vec<f32> = (0..k + (count - 1) * pitch + len).map(|i| ((i * 7) % 13) as f32 - 6.0).collect();
            let offs: Vec<isize> = (0..k).map(|p| ((p * 5) % k) as isize).collect();
            for m in [13, 29] {
                let w: Vec<f32> = (0..m * k).map(|i| ((i * 5) % 11) as f32 * 0.25 - 1.0).collect();
                let lw = LaneWeights::new(m, k, Mat { ptr: w.as_ptr(), rs: k as isize, cs: 1 });
                let bias: Vec<f32> = (0..m).map(|o| o as f32 - 3.0).collect();
                for with_bias in [false, true] {
                    let ldo = count * len + 3;
                    let mut out = vec![f32::NAN; m * ldo];
                    let runs = Runs::new(count, len, pitch, len);
                    if forward(&lw, runs, src.as_ptr(), &offs, with_bias.then_some(&bias[..]), out.as_mut_ptr(), ldo).is_none() {
                        assert!(!forward_available() || !available() && m > 16, "m {m}: forward did not run");
                        continue; // not on this CPU: callers use the general kernels
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
    }

    #[test]
    fn weight_grad_matches_naive_sums() {
        // 500 positions: several L1 blocks for every lane width. Offsets scattered (53 rows), and
        // in runs of 5 and of 3 consecutive ones (the run kernels; row counts that leave a
        // partial tile).
        let len = 500;
        let scattered: Vec<isize> = (0..53).map(|p| ((p * 3) % 150) as isize).collect();
        let runs = |kw: usize, count: usize| -> Vec<isize> { (0..count * kw).map(|p| ((p / kw) * 17 % 120 + p % kw) as isize).collect() };
        for (w, offs) in [8, 16, 32, 48, 64].into_iter().flat_map(|w| [(w, scattered.clone()), (w, runs(5, 13)), (w, runs(3, 19)), (w, runs(3, 2))]) {
            assert_eq!(tap_runs(&offs), if offs == scattered { 0 } else if offs.len() == 65 { 5 } else { 3 });
            let n = offs.len();
            let src: Vec<f32> = (0..len + 150).map(|i| ((i * 7) % 13) as f32 - 6.0).collect();
            let gt: Vec<f32> = (0..len * w).map(|i| ((i * 5) % 11) as f32 * 0.5 - 2.0).collect();
            let mut acc = vec![1.0f32; n * w];
            if weight_grad(len, w, &gt, src.as_ptr(), &offs, &mut acc).is_none() {
                assert_ne!(weight_grad_width(w), Some(w));
                continue; // not this CPU's width: callers use the general kernels
            }
            for p in 0..n {
                for o in 0..w {
                    let want: f64 = 1.0 + (0..len).map(|s| src[offs[p] as usize + s] as f64 * gt[s * w + o] as f64).sum::<f64>();
                    assert!((acc[p * w + o] as f64 - want).abs() <= 1e-3 * (1.0 + want.abs()), "w {w} p {p} o {o}");
                }
            }
        }
    }
}
