//! `C (+)= A·Bᵀ` in float32 for row-major `A (m×k)` and `B (n×k)`, both contiguous along k:
//! every C entry is a dot product of two contiguous rows, so nothing is packed. This is the
//! shape of a convolution's weight gradient (few output channels, long spatial k), where
//! packing the transposed operand for the general GEMM costs more than the product itself.
//! AVX-512 only; `None` tells the caller to use the general GEMM.

/// Whether these kernels run on this CPU; without them every entry point returns `None`.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512vl")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Computes `c[i·ldc + j] (+)= Σ_p a[i·lda + p]·b[j·ldb + p]`; returns `None` (doing nothing)
/// when this CPU has no AVX-512.
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
/// nothing) without AVX-512. The segment sum stays in registers, so short rows (small images)
/// pay the horizontal reduction once per tile, not once per segment.
pub fn sgemm_nt_rows(m: usize, k: usize, rows: &Rows, c: *mut f32, ldc: usize, accumulate: bool) -> Option<()> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512vl") {
            let n = rows.offs.len();
            let tiles = m.div_ceil(x86::MR) * n.div_ceil(x86::NR);
            if rows.segments > 1 && tiles * x86::MR * x86::NR * 64 <= LANE_SUMS_MAX_BYTES {
                lane_sums(m, k, rows, c, ldc, accumulate);
                return Some(());
            }
            for i in (0..m).step_by(x86::MR) {
                for j in (0..n).step_by(x86::NR) {
                    // SAFETY: rows i.., j.. lie inside A and B in every segment (edge tiles
                    // repeat their last valid row and store only valid entries); the C tile lies
                    // inside C.
                    unsafe { x86::tile(k, rows, c, ldc, i, j, (m - i).min(x86::MR), (n - j).min(x86::NR), accumulate) };
                }
            }
            return Some(());
        }
    }
    let _ = (m, k, rows, c, ldc, accumulate);
    None
}

/// Bytes of 16-lane partial sums `lane_sums` keeps in L1 across segments.
const LANE_SUMS_MAX_BYTES: usize = 32 << 10;
/// Positions per block in `lane_sums`: a segment's rows of A for one block stay in L1 while
/// every tile reads them.
const LANE_SUMS_BLOCK: usize = 256;

/// `sgemm_nt_rows` for few tiles over many segments: segment by segment and block by block of
/// positions, every tile adds into its 16-lane partial sums kept in memory (L1), and the
/// horizontal sums come once at the end. With the sums in registers, each tile streamed every
/// segment's rows from L2 (LeNet conv1's weight gradient: 19 tiles over the same 6 gradient
/// rows of each image).
#[cfg(target_arch = "x86_64")]
fn lane_sums(m: usize, k: usize, rows: &Rows, c: *mut f32, ldc: usize, accumulate: bool) {
    let (mt, nt) = (m.div_ceil(x86::MR), rows.offs.len().div_ceil(x86::NR));
    let n = rows.offs.len();
    let per_tile = x86::MR * x86::NR * 16;
    let mut sums = vec![0f32; mt * nt * per_tile];
    for s in 0..rows.segments {
        for p0 in (0..k).step_by(LANE_SUMS_BLOCK) {
            let p1 = (p0 + LANE_SUMS_BLOCK).min(k);
            for ti in 0..mt {
                for tj in 0..nt {
                    let (i, j) = (ti * x86::MR, tj * x86::NR);
                    // SAFETY: rows i.., j.. lie inside A and B in segment s (edge tiles repeat
                    // their last valid row); the tile's sums hold per_tile values.
                    unsafe { x86::tile_sums(s, p0, p1, rows, i, j, (m - i).min(x86::MR), (n - j).min(x86::NR), sums[(ti * nt + tj) * per_tile..].as_mut_ptr()) };
                }
            }
        }
    }
    for ti in 0..mt {
        for tj in 0..nt {
            let (i, j) = (ti * x86::MR, tj * x86::NR);
            let tile = &sums[(ti * nt + tj) * per_tile..][..per_tile];
            for r in 0..(m - i).min(x86::MR) {
                for q in 0..(n - j).min(x86::NR) {
                    let v: f32 = tile[(r * x86::NR + q) * 16..][..16].iter().sum();
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

    use super::Rows;

    pub const MR: usize = 6;
    pub const NR: usize = 4;
    /// One MR × NR tile: 24 zmm accumulators along k (and segments), reduced horizontally at
    /// the end.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f,avx512vl")]
    pub unsafe fn tile(k: usize, rows: &Rows, c: *mut f32, ldc: usize, i: usize, j: usize, mr: usize, nr: usize, accumulate: bool) {
        let mut acc = [[_mm512_setzero_ps(); NR]; MR];
        for s in 0..rows.segments {
            let (ar, br) = row_ptrs(rows, s, i, j, mr, nr);
            span(&mut acc, &ar, &br, 0, k);
        }
        // A row's NR = 4 sums come out of one reduction tree and go to C in one (masked) store.
        let keep = ((1u32 << nr) - 1) as __mmask8;
        for (r, row) in acc.iter().enumerate().take(mr) {
            let dst = c.add((i + r) * ldc + j);
            let v = sum4(row);
            let v = if accumulate { _mm_add_ps(v, _mm_maskz_loadu_ps(keep, dst)) } else { v };
            _mm_mask_storeu_ps(dst, keep, v);
        }
    }

    /// The horizontal sums of four vectors, in lanes 0..4: halves, then quarters of all four
    /// at once, then within each quarter (14 instructions against 32 for four separate sums).
    #[inline(always)]
    unsafe fn sum4(v: &[__m512; NR]) -> __m128 {
        let ab = _mm512_add_ps(_mm512_shuffle_f32x4::<0x44>(v[0], v[1]), _mm512_shuffle_f32x4::<0xEE>(v[0], v[1]));
        let cd = _mm512_add_ps(_mm512_shuffle_f32x4::<0x44>(v[2], v[3]), _mm512_shuffle_f32x4::<0xEE>(v[2], v[3]));
        // 128-bit lane g holds four partial sums of v[g].
        let q = _mm512_add_ps(_mm512_shuffle_f32x4::<0x88>(ab, cd), _mm512_shuffle_f32x4::<0xDD>(ab, cd));
        let q = _mm512_add_ps(q, _mm512_permute_ps::<0x4E>(q));
        let q = _mm512_add_ps(q, _mm512_permute_ps::<0xB1>(q));
        _mm512_castps512_ps128(_mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), q))
    }

    /// One MR × NR tile of segment `s` over positions `p0..p1`, added into the tile's 16-lane
    /// sums at `sums` (`(r·NR + q)·16`).
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn tile_sums(s: usize, p0: usize, p1: usize, rows: &Rows, i: usize, j: usize, mr: usize, nr: usize, sums: *mut f32) {
        let (ar, br) = row_ptrs(rows, s, i, j, mr, nr);
        let mut acc = [[_mm512_setzero_ps(); NR]; MR];
        for (r, row) in acc.iter_mut().enumerate() {
            for (q, v) in row.iter_mut().enumerate() {
                *v = _mm512_loadu_ps(sums.add((r * NR + q) * 16));
            }
        }
        span(&mut acc, &ar, &br, p0, p1);
        for (r, row) in acc.iter().enumerate() {
            for (q, v) in row.iter().enumerate() {
                _mm512_storeu_ps(sums.add((r * NR + q) * 16), *v);
            }
        }
    }

    /// The tile's rows of A and B in segment `s` (edge tiles repeat their last valid row).
    /// Plain loops, not `array::from_fn`: a closure does not inherit the target features.
    #[inline(always)]
    unsafe fn row_ptrs(rows: &Rows, s: usize, i: usize, j: usize, mr: usize, nr: usize) -> ([*const f32; MR], [*const f32; NR]) {
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
    unsafe fn span(acc: &mut [[__m512; NR]; MR], ar: &[*const f32; MR], br: &[*const f32; NR], p0: usize, p1: usize) {
        let mut p = p0;
        while p + 16 <= p1 {
            step(acc, ar, br, p, None);
            p += 16;
        }
        if p < p1 {
            step(acc, ar, br, p, Some(((1u32 << (p1 - p)) - 1) as __mmask16));
        }
    }

    #[inline(always)]
    unsafe fn load(ptr: *const f32, mask: Option<__mmask16>) -> __m512 {
        match mask {
            None => _mm512_loadu_ps(ptr),
            Some(m) => _mm512_maskz_loadu_ps(m, ptr),
        }
    }

    #[inline(always)]
    unsafe fn step(acc: &mut [[__m512; NR]; MR], ar: &[*const f32; MR], br: &[*const f32; NR], p: usize, mask: Option<__mmask16>) {
        let mut bv = [_mm512_setzero_ps(); NR];
        for (q, v) in bv.iter_mut().enumerate() {
            *v = load(br[q].add(p), mask);
        }
        for r in 0..MR {
            let av = load(ar[r].add(p), mask);
            for q in 0..NR {
                acc[r][q] = _mm512_fmadd_ps(av, bv[q], acc[r][q]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_sums_match_naive() {
        // Three segments, 7 rows (an edge row tile), 9 rows of B (edge column tiles), 300
        // positions (two blocks and a tail): the partial sums kept in memory across segments.
        let (m, n, k, segs) = (7, 9, 300, 3);
        let (a_step, src_step) = (m * k + 5, k + 40);
        let a: Vec<f32> = (0..segs * a_step).map(|i| ((i * 7) % 13) as f32 - 6.0).collect();
        let src: Vec<f32> = (0..segs * src_step).map(|i| ((i * 5) % 11) as f32 * 0.5 - 2.0).collect();
        let offs: Vec<isize> = (0..n).map(|j| (j * 4) as isize).collect();
        let rows = Rows { a: a.as_ptr(), lda: k, src: src.as_ptr(), offs: &offs, segments: segs, a_step, src_step };
        let mut c = vec![1.0f32; m * n];
        if sgemm_nt_rows(m, k, &rows, c.as_mut_ptr(), n, true).is_none() {
            return; // no AVX-512 here: the general GEMM covers this shape
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
                return; // no AVX-512 here: the general GEMM covers this shape
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
