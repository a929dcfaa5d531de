//! `C (+)= A·Bᵀ` in float32 for row-major `A (m×k)` and `B (n×k)`, both contiguous along k:
//! every C entry is a dot product of two contiguous rows, so nothing is packed. This is the
//! shape of a convolution's weight gradient (few output channels, long spatial k), where
//! packing the transposed operand for the general GEMM costs more than the product itself.
//! AVX-512 (6 × 4 tiles of 16 lanes) or AVX2 (3 × 4 tiles of 8 lanes), following the GEMM
//! kernel in use; `None` tells the caller to use the general GEMM.

/// Whether these kernels run on this CPU; without them every entry point returns `None`.
pub fn available() -> bool {
    level().is_some()
}

/// The kernels for the GEMM's vector level (`RUSTGRAD_GEMM_KERNEL` selects them too, so tests
/// reach both on an AVX-512 machine).
#[cfg(target_arch = "x86_64")]
fn level() -> Option<x86::Level> {
    match super::sgemm::kernel_name() {
        "avx512" if std::arch::is_x86_feature_detected!("avx512vl") => Some(x86::AVX512),
        "avx512" | "avx2" => Some(x86::AVX2),
        _ => None,
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn level() -> Option<()> {
    None
}

/// Vector lanes of the kernels in use: 16 (AVX-512), 8 (AVX2), 0 (none).
pub fn lanes() -> usize {
    #[cfg(target_arch = "x86_64")]
    return level().map_or(0, |l| l.w);
    #[cfg(not(target_arch = "x86_64"))]
    0
}

/// Computes `c[i·ldc + j] (+)= Σ_p a[i·lda + p]·b[j·ldb + p]`; returns `None` (doing nothing)
/// without AVX-512 or AVX2.
#[allow(clippy::too_many_arguments)]
pub fn sgemm_nt(m: usize, n: usize, k: usize, a: *const f32, lda: usize, b: *const f32, ldb: usize, c: *mut f32, ldc: usize, accumulate: bool) -> Option<()> {
    let offs: Vec<isize> = (0..n).map(|j| (j * ldb) as isize).collect();
    let rows = Rows { a, lda, src: b, offs: &offs, segments: 1, a_step: 0, src_step: 0 };
    sgemm_nt_rows(m, k, &rows, c, ldc, accumulate)
}

/// The operands of an A·Bᵀ product summed over `segments` (e.g. images): in segment s, row i of
/// A is at `a + s·a_step + i·lda` and row j of B at `src + s·src_step + offs[j]`, k values each.
pub struct Rows<'a> {
    pub a: *const f32,
    pub lda: usize,
    pub src: *const f32,
    pub offs: &'a [isize],
    pub segments: usize,
    pub a_step: usize,
    pub src_step: usize,
}

/// `c[i·ldc + j] (+)= Σ_s Σ_p A_s[i, p]·B_s[j, p]` for i < m, j < offs.len(); `None` (doing
/// nothing) without AVX-512 or AVX2. The segment sum stays in registers, so short rows (small
/// images) pay the horizontal reduction once per tile, not once per segment.
pub fn sgemm_nt_rows(m: usize, k: usize, rows: &Rows, c: *mut f32, ldc: usize, accumulate: bool) -> Option<()> {
    #[cfg(target_arch = "x86_64")]
    if let Some(lv) = level() {
        let n = rows.offs.len();
        let tiles = m.div_ceil(lv.mr) * n.div_ceil(x86::NR);
        if let (Some(sums), true) = (lv.tile_sums, rows.segments > 1 && tiles * lv.mr * x86::NR * lv.w * 4 <= LANE_SUMS_MAX_BYTES) {
            lane_sums(lv, sums, m, k, rows, c, ldc, accumulate);
            return Some(());
        }
        for i in (0..m).step_by(lv.mr) {
            for j in (0..n).step_by(x86::NR) {
                // SAFETY: rows i.., j.. lie inside A and B in every segment (edge tiles repeat
                // their last valid row and store only valid entries); the C tile lies inside C;
                // the level's instructions are present.
                unsafe { (lv.tile)(k, rows, c, ldc, i, j, (m - i).min(lv.mr), (n - j).min(x86::NR), accumulate) };
            }
        }
        return Some(());
    }
    let _ = (m, k, rows, c, ldc, accumulate);
    None
}

/// Bytes of partial sums `lane_sums` keeps in L1 across segments.
const LANE_SUMS_MAX_BYTES: usize = 32 << 10;
/// Positions per block in `lane_sums`: a segment's rows of A for one block stay in L1 while
/// every tile reads them.
const LANE_SUMS_BLOCK: usize = 256;

/// `sgemm_nt_rows` for few tiles over many segments: segment by segment and block by block of
/// positions, every tile adds into its vector-wide partial sums kept in memory (L1), and the
/// horizontal sums come once at the end. With the sums in registers, each tile streamed every
/// segment's rows from L2 (LeNet conv1's weight gradient: 19 tiles over the same 6 gradient
/// rows of each image).
#[cfg(target_arch = "x86_64")]
fn lane_sums(lv: x86::Level, tile_sums: x86::SumsFn, m: usize, k: usize, rows: &Rows, c: *mut f32, ldc: usize, accumulate: bool) {
    let (mr, nr) = (lv.mr, x86::NR);
    let (mt, nt) = (m.div_ceil(mr), rows.offs.len().div_ceil(nr));
    let n = rows.offs.len();
    let per_tile = mr * nr * lv.w;
    let mut sums = vec![0f32; mt * nt * per_tile];
    for s in 0..rows.segments {
        for p0 in (0..k).step_by(LANE_SUMS_BLOCK) {
            let p1 = (p0 + LANE_SUMS_BLOCK).min(k);
            for ti in 0..mt {
                for tj in 0..nt {
                    let (i, j) = (ti * mr, tj * nr);
                    // SAFETY: rows i.., j.. lie inside A and B in segment s (edge tiles repeat
                    // their last valid row); the tile's sums hold per_tile values.
                    unsafe { tile_sums(s, p0, p1, rows, i, j, (m - i).min(mr), (n - j).min(nr), sums[(ti * nt + tj) * per_tile..].as_mut_ptr()) };
                }
            }
        }
    }
    for ti in 0..mt {
        for tj in 0..nt {
            let (i, j) = (ti * mr, tj * nr);
            let tile = &sums[(ti * nt + tj) * per_tile..][..per_tile];
            for r in 0..(m - i).min(mr) {
                for q in 0..(n - j).min(nr) {
                    let v: f32 = tile[(r * nr + q) * lv.w..][..lv.w].iter().sum();
                    // SAFETY: (i + r, j + q) lies inside C.
                    unsafe {
                        let dst = c.add((i + r) * ldc + j + q);
                        *dst = if accumulate { *dst + v } else { v };
                    }
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::super::lanes::Lanes;
    use super::Rows;

    /// B rows per tile: a row of A meets four, and its four sums leave in one 128-bit store.
    pub const NR: usize = 4;

    type TileFn = unsafe fn(k: usize, rows: &Rows, c: *mut f32, ldc: usize, i: usize, j: usize, mr: usize, nr: usize, accumulate: bool);
    pub type SumsFn = unsafe fn(s: usize, p0: usize, p1: usize, rows: &Rows, i: usize, j: usize, mr: usize, nr: usize, sums: *mut f32);

    /// One vector level's kernels: `mr` rows of A per tile, `w` lanes per vector, and the tile
    /// of `lane_sums` where it pays.
    #[derive(Clone, Copy)]
    pub struct Level {
        pub mr: usize,
        pub w: usize,
        pub tile: TileFn,
        pub tile_sums: Option<SumsFn>,
    }

    /// 6 × 4 tiles: 24 zmm accumulators.
    pub const AVX512: Level = Level { mr: 6, w: 16, tile: tile512, tile_sums: Some(tile_sums512) };
    /// 3 × 4 tiles: 12 ymm accumulators, four B vectors and one A vector (AVX2 has 16). Sums
    /// stay in registers across segments: on the AVX2 EPYC `lane_sums` made LeNet conv1's
    /// forward+backward 15–25 % slower, and conv2's 20 % at 8× the bytes.
    pub const AVX2: Level = Level { mr: 3, w: 8, tile: tile256, tile_sums: None };

    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f,avx512vl")]
    unsafe fn tile512(k: usize, rows: &Rows, c: *mut f32, ldc: usize, i: usize, j: usize, mr: usize, nr: usize, accumulate: bool) {
        tile::<__m512, 6>(k, rows, c, ldc, i, j, mr, nr, accumulate)
    }

    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tile256(k: usize, rows: &Rows, c: *mut f32, ldc: usize, i: usize, j: usize, mr: usize, nr: usize, accumulate: bool) {
        tile::<__m256, 3>(k, rows, c, ldc, i, j, mr, nr, accumulate)
    }

    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f")]
    unsafe fn tile_sums512(s: usize, p0: usize, p1: usize, rows: &Rows, i: usize, j: usize, mr: usize, nr: usize, sums: *mut f32) {
        tile_sums::<__m512, 6>(s, p0, p1, rows, i, j, mr, nr, sums)
    }

    /// One MR × NR tile: accumulators along k (and segments), reduced horizontally at the end.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    unsafe fn tile<V: Lanes, const MR: usize>(k: usize, rows: &Rows, c: *mut f32, ldc: usize, i: usize, j: usize, mr: usize, nr: usize, accumulate: bool) {
        let mut acc = [[V::zero(); NR]; MR];
        for s in 0..rows.segments {
            let (ar, br) = row_ptrs::<MR>(rows, s, i, j, mr, nr);
            span::<V, MR>(&mut acc, &ar, &br, 0, k);
        }
        // A row's NR = 4 sums come out of one reduction tree and go to C in one store.
        let keep = _mm_cmpgt_epi32(_mm_set1_epi32(nr as i32), _mm_setr_epi32(0, 1, 2, 3));
        for (r, row) in acc.iter().enumerate().take(mr) {
            let dst = c.add((i + r) * ldc + j);
            let v = V::sum4(row);
            if nr == NR {
                _mm_storeu_ps(dst, if accumulate { _mm_add_ps(v, _mm_loadu_ps(dst)) } else { v });
            } else {
                _mm_maskstore_ps(dst, keep, if accumulate { _mm_add_ps(v, _mm_maskload_ps(dst, keep)) } else { v });
            }
        }
    }

    /// One MR × NR tile of segment `s` over positions `p0..p1`, added into the tile's
    /// vector-wide sums at `sums` (`(r·NR + q)·W`).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    unsafe fn tile_sums<V: Lanes, const MR: usize>(s: usize, p0: usize, p1: usize, rows: &Rows, i: usize, j: usize, mr: usize, nr: usize, sums: *mut f32) {
        let (ar, br) = row_ptrs::<MR>(rows, s, i, j, mr, nr);
        let mut acc = [[V::zero(); NR]; MR];
        for (r, row) in acc.iter_mut().enumerate() {
            for (q, v) in row.iter_mut().enumerate() {
                *v = V::load(sums.add((r * NR + q) * V::W));
            }
        }
        span::<V, MR>(&mut acc, &ar, &br, p0, p1);
        for (r, row) in acc.iter().enumerate() {
            for (q, v) in row.iter().enumerate() {
                V::store(sums.add((r * NR + q) * V::W), *v);
            }
        }
    }

    /// The tile's rows of A and B in segment `s` (edge tiles repeat their last valid row).
    /// Plain loops, not `array::from_fn`: a closure does not inherit the target features.
    #[inline(always)]
    unsafe fn row_ptrs<const MR: usize>(rows: &Rows, s: usize, i: usize, j: usize, mr: usize, nr: usize) -> ([*const f32; MR], [*const f32; NR]) {
        let (a, src) = (rows.a.add(s * rows.a_step), rows.src.add(s * rows.src_step));
        let mut ar = [a; MR];
        for (r, p) in ar.iter_mut().enumerate() {
            *p = a.add((i + r.min(mr - 1)) * rows.lda);
        }
        let mut br = [src; NR];
        for (q, p) in br.iter_mut().enumerate() {
            *p = src.offset(rows.offs[j + q.min(nr - 1)]);
        }
        (ar, br)
    }

    /// `acc[r][q] += ar[r][p]·br[q][p]` lane-wise over positions `p0..p1`, a masked last step
    /// for the tail.
    #[inline(always)]
    unsafe fn span<V: Lanes, const MR: usize>(acc: &mut [[V; NR]; MR], ar: &[*const f32; MR], br: &[*const f32; NR], p0: usize, p1: usize) {
        let mut p = p0;
        while p + V::W <= p1 {
            step::<V, MR>(acc, ar, br, p, None);
            p += V::W;
        }
        if p < p1 {
            step::<V, MR>(acc, ar, br, p, Some(V::first(p1 - p)));
        }
    }

    #[inline(always)]
    unsafe fn load<V: Lanes>(ptr: *const f32, mask: Option<V::Mask>) -> V {
        match mask {
            None => V::load(ptr),
            Some(m) => V::load_masked(m, ptr),
        }
    }

    #[inline(always)]
    unsafe fn step<V: Lanes, const MR: usize>(acc: &mut [[V; NR]; MR], ar: &[*const f32; MR], br: &[*const f32; NR], p: usize, mask: Option<V::Mask>) {
        let mut bv = [V::zero(); NR];
        for (q, v) in bv.iter_mut().enumerate() {
            *v = load::<V>(br[q].add(p), mask);
        }
        for r in 0..MR {
            let av = load::<V>(ar[r].add(p), mask);
            for q in 0..NR {
                acc[r][q] = V::fmadd(av, bv[q], acc[r][q]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only a CPU without AVX2 may skip the kernels' tests.
    fn no_kernel_here() {
        #[cfg(target_arch = "x86_64")]
        assert!(!(std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")), "the AVX2 A·Bᵀ kernel did not run");
    }

    #[test]
    fn segment_sums_match_naive() {
        // Three segments, 7 rows (an edge row tile), 9 rows of B (edge column tiles), 300
        // positions (two blocks and a tail): the partial sums kept in memory across segments
        // (AVX-512; AVX2 keeps them in registers).
        let (m, n, k, segs) = (7, 9, 300, 3);
        let (a_step, src_step) = (m * k + 5, k + 40);
        let a: Vec<f32> = (0..segs * a_step).map(|i| ((i * 7) % 13) as f32 - 6.0).collect();
        let src: Vec<f32> = (0..segs * src_step).map(|i| ((i * 5) % 11) as f32 * 0.5 - 2.0).collect();
        let offs: Vec<isize> = (0..n).map(|j| (j * 4) as isize).collect();
        let rows = Rows { a: a.as_ptr(), lda: k, src: src.as_ptr(), offs: &offs, segments: segs, a_step, src_step };
        let mut c = vec![1.0f32; m * n];
        if sgemm_nt_rows(m, k, &rows, c.as_mut_ptr(), n, true).is_none() {
            no_kernel_here();
            return;
        }
        for i in 0..m {
            for j in 0..n {
                let want: f64 = 1.0
                    + (0..segs)
                        .map(|s| (0..k).map(|p| a[s * a_step + i * k + p] as f64 * src[s * src_step + offs[j] as usize + p] as f64).sum::<f64>())
                        .sum::<f64>();
                assert!((c[i * n + j] as f64 - want).abs() <= 1e-3 * (1.0 + want.abs()), "({i}, {j}): {} vs {want}", c[i * n + j]);
            }
        }
    }

    #[test]
    fn matches_naive_dot_products() {
        for &(m, n, k) in &[(1, 1, 1), (6, 4, 16), (7, 75, 896), (13, 5, 33), (2, 9, 15)] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7) % 13) as f32 - 6.0).collect();
            let b: Vec<f32> = (0..n * k).map(|i| ((i * 5) % 11) as f32 * 0.5 - 2.0).collect();
            let mut c = vec![1.0f32; m * n];
            if sgemm_nt(m, n, k, a.as_ptr(), k, b.as_ptr(), k, c.as_mut_ptr(), n, true).is_none() {
                no_kernel_here();
            return;
            }
            for i in 0..m {
                for j in 0..n {
                    let want: f64 = 1.0 + (0..k).map(|p| a[i * k + p] as f64 * b[j * k + p] as f64).sum::<f64>();
                    assert!((c[i * n + j] as f64 - want).abs() <= 1e-3 * (1.0 + want.abs()), "{m}x{n}x{k}");
                }
            }
        }
    }
}
