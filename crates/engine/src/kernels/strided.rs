//! Walking N-d strided operands together. Dims are coalesced first, then the index space is
//! cut into contiguous element ranges (in parallel for big tensors); each range is handed to
//! the kernel as runs along the innermost dim, with per-operand start offsets and strides.

use smallvec::SmallVec;

use crate::layout::{Dims, Strides};
use crate::kernels::runs::copy_run;
use crate::parallel;

/// Merges adjacent dims that every operand walks contiguously, and drops size-1 dims.
pub fn coalesce<const K: usize>(shape: &[usize], strides: [&[isize]; K]) -> (Dims, [Strides; K]) {
    let mut out_shape = Dims::new();
    let mut out_strides: [Strides; K] = std::array::from_fn(|_| Strides::new());
    for d in 0..shape.len() {
        if shape[d] == 1 {
            continue;
        }
        let mergeable = !out_shape.is_empty()
            && (0..K).all(|k| out_strides[k][out_strides[k].len() - 1] == strides[k][d] * shape[d] as isize);
        if mergeable {
            let last = out_shape.len() - 1;
            out_shape[last] *= shape[d];
            for k in 0..K {
                out_strides[k][last] = strides[k][d];
            }
        } else {
            out_shape.push(shape[d]);
            for k in 0..K {
                out_strides[k].push(strides[k][d]);
            }
        }
    }
    (out_shape, out_strides)
}

/// Calls `run(offsets, len, inner_strides)` over every element of `shape`, where offsets are in
/// elements from each operand's base pointer. Runs may execute concurrently on the pool.
pub fn for_each_run<const K: usize>(
    shape: &[usize],
    strides: [&[isize]; K],
    grain: usize,
    run: impl Fn([isize; K], usize, [isize; K]) + Sync + Send,
) {
    let numel: usize = shape.iter().product();
    if numel == 0 {
        return;
    }
    // One dim in one chunk: nothing to reorder, coalesce or split (a tiny op paid for each).
    if shape.len() == 1 && numel / 2 < grain {
        return run([0; K], numel, std::array::from_fn(|k| strides[k][0]));
    }
    let reordered = memory_order(shape, strides);
    let (shape, strides) = match &reordered {
        Some((s, st)) => coalesce(s, std::array::from_fn(|k| &st[k][..])),
        None => coalesce(shape, strides),
    };
    if let Some(p) = transposed_dim(&shape, &strides) {
        return tiled(&shape, &strides, p, grain, run);
    }
    let chunks = parallel::chunks_for(numel, grain);
    let per = numel.div_ceil(chunks);
    parallel::for_chunks(chunks, |c| {
        let lo = c * per;
        let mut w = Walker::new(&shape, &strides, lo, (lo + per).min(numel));
        while let Some((offs, len)) = w.next_run() {
            run(offs, len, w.inner_strides);
        }
    });
}

/// The dims (size-1 ones left out) in the order in which the first operand, the output, lies in
/// memory, outermost first, when that is not their logical order: a transposed or permuted
/// output (an in-place op on `x.t()`, a copy into a transposed view). Elements are independent,
/// so any order is a valid walk, and this one gives the output contiguous runs (element by
/// element, each a cache line apart, `x.t().mul_(1.0)` of 1024² took 8.2 ms, PyTorch 0.29).
/// `None` in the common case (already in order, or an output with a zero stride).
pub fn memory_order<const K: usize>(shape: &[usize], strides: [&[isize]; K]) -> Option<(Dims, [Strides; K])> {
    let key = |d: usize| strides[0][d].unsigned_abs();
    let dims = (0..shape.len()).filter(|&d| shape[d] > 1);
    let mut prev = usize::MAX;
    let mut ordered = true;
    for d in dims.clone() {
        if key(d) == 0 {
            return None;
        }
        ordered &= key(d) <= prev;
        prev = key(d);
    }
    if ordered {
        return None;
    }
    let mut perm: SmallVec<[usize; 8]> = dims.collect();
    perm.sort_by_key(|&d| std::cmp::Reverse(key(d)));
    Some((perm.iter().map(|&d| shape[d]).collect(), std::array::from_fn(|k| perm.iter().map(|&d| strides[k][d]).collect())))
}

/// When the first operand (the output) runs along the inner dim and another operand reads
/// across it, 16+ elements apart (a transposed input), the dim along which that operand is
/// contiguous: the walk then goes tile by tile over the two dims.
fn transposed_dim<const K: usize>(shape: &[usize], strides: &[Strides; K]) -> Option<usize> {
    let nd = shape.len();
    if nd < 2 || strides[0][nd - 1] != 1 || shape[nd - 1] < 8 {
        return None;
    }
    (1..K).filter(|&k| strides[k][nd - 1].unsigned_abs() >= 16).find_map(|k| (0..nd - 1).find(|&d| strides[k][d].unsigned_abs() == 1 && shape[d] >= 8))
}

/// Runs of at most `TILE_J` along the inner dim for `TILE_P` consecutive indices of dim `p`, tile
/// after tile: both the output's rows and the transposed operand's columns of a tile stay in
/// L1 (row by row, each element of a transposed read was a cache line of its own: `exp` of a
/// transposed 1024² matrix took 12 ms, PyTorch 0.3 ms). Tiles are split across threads.
fn tiled<const K: usize>(shape: &[usize], strides: &[Strides; K], p: usize, grain: usize, run: impl Fn([isize; K], usize, [isize; K]) + Sync + Send) {
    const TILE_P: usize = 32;
    const TILE_J: usize = 64;
    let nd = shape.len();
    let (np, nj) = (shape[p], shape[nd - 1]);
    let (bp, bj) = (np.div_ceil(TILE_P), nj.div_ceil(TILE_J));
    // The other dims, outermost first.
    let others: SmallVec<[usize; 6]> = (0..nd - 1).filter(|&d| d != p).collect();
    let outer: usize = others.iter().map(|&d| shape[d]).product();
    let tiles = outer * bp * bj;
    let inner_strides: [isize; K] = std::array::from_fn(|k| strides[k][nd - 1]);
    let chunks = parallel::chunks_for(shape.iter().product(), grain).min(tiles);
    parallel::for_chunks(chunks, |c| {
        for t in c * tiles / chunks..(c + 1) * tiles / chunks {
            let (mut rest, tj) = (t / bj, t % bj);
            let tp = rest % bp;
            rest /= bp;
            let mut base = [0isize; K];
            for &d in others.iter().rev() {
                let i = (rest % shape[d]) as isize;
                rest /= shape[d];
                for k in 0..K {
                    base[k] += i * strides[k][d];
                }
            }
            let (j0, len) = (tj * TILE_J, TILE_J.min(nj - tj * TILE_J));
            for i in tp * TILE_P..((tp + 1) * TILE_P).min(np) {
                let offs: [isize; K] = std::array::from_fn(|k| base[k] + i as isize * strides[k][p] + j0 as isize * strides[k][nd - 1]);
                run(offs, len, inner_strides);
            }
        }
    });
}

/// Serially visits elements `lo..hi` (row-major order) of an already coalesced iteration space.
pub fn walk<const K: usize>(
    shape: &[usize],
    strides: &[Strides; K],
    lo: usize,
    hi: usize,
    run: &mut impl FnMut([isize; K], usize, [isize; K]),
) {
    let mut w = Walker::new(shape, strides, lo, hi);
    while let Some((offs, len)) = w.next_run() {
        run(offs, len, w.inner_strides);
    }
}

/// The runs along the inner dim of elements `lo..hi` (row-major order) of an already coalesced
/// iteration space, as (per-operand offsets, length). A loop over `next_run` calls its kernel
/// in place, where LLVM inlines it: a kernel passed to a walking function stayed a call, and
/// reading its offsets right after they were stored cost ~15 ns per run (`x[:, 1:-1] * 2`
/// with 32-wide rows: 23 ns a row, PyTorch 9).
pub struct Walker<'a, const K: usize> {
    shape: &'a [usize],
    strides: &'a [Strides; K],
    pub inner_strides: [isize; K],
    /// The current run's index over the outer dims, and each operand's offset of its start.
    idx: SmallVec<[usize; 6]>,
    row: [isize; K],
    j: usize,
    pos: usize,
    hi: usize,
}

impl<'a, const K: usize> Walker<'a, K> {
    pub fn new(shape: &'a [usize], strides: &'a [Strides; K], lo: usize, hi: usize) -> Self {
        let nd = shape.len();
        // An empty range (or space) yields no runs; max(1) keeps its arithmetic defined.
        let inner = shape.last().copied().unwrap_or(1).max(1);
        let lo = if lo >= hi { hi } else { lo };
        let inner_strides = std::array::from_fn(|k| if nd == 0 { 0 } else { strides[k][nd - 1] });
        let mut idx: SmallVec<[usize; 6]> = smallvec::smallvec![0; nd.saturating_sub(1)];
        let mut row = [0isize; K];
        let mut rem = lo / inner;
        for d in (0..nd.saturating_sub(1)).rev() {
            idx[d] = rem % shape[d].max(1);
            rem /= shape[d].max(1);
            for (k, r) in row.iter_mut().enumerate() {
                *r += idx[d] as isize * strides[k][d];
            }
        }
        Walker { shape, strides, inner_strides, idx, row, j: lo % inner, pos: lo, hi }
    }

    #[inline(always)]
    pub fn next_run(&mut self) -> Option<([isize; K], usize)> {
        if self.pos >= self.hi {
            return None;
        }
        let nd = self.shape.len();
        let inner = self.shape.last().copied().unwrap_or(1);
        let offs: [isize; K] = std::array::from_fn(|k| self.row[k] + self.j as isize * self.inner_strides[k]);
        let len = (inner - self.j).min(self.hi - self.pos);
        self.pos += len;
        self.j = 0;
        // Odometer step over the outer dims, moving the row offsets with it.
        for d in (0..nd.saturating_sub(1)).rev() {
            self.idx[d] += 1;
            for k in 0..K {
                self.row[k] += self.strides[k][d];
            }
            if self.idx[d] < self.shape[d] {
                break;
            }
            for k in 0..K {
                self.row[k] -= self.strides[k][d] * self.shape[d] as isize;
            }
            self.idx[d] = 0;
        }
        Some((offs, len))
    }
}

/// Rows shorter than this are copied by `copy_rows`; longer ones amortise `for_each_run`'s
/// per-run cost.
const SHORT_ROW: usize = 512;

/// Copies `shape` elements from `src` to `dst` (element strides) row by row when, after
/// coalescing, both are contiguous along short inner rows and `dst` is walked in memory order:
/// one `copy_run` per row (a 16×64×32×32 slice of 34-wide rows through the per-element map
/// of `for_each_run`: 0.72 ms, PyTorch 0.30; this way 0.28–0.30).
/// Returns false, copying nothing, for any other layout. Rows may be split across threads.
pub fn copy_rows<T: Copy>(shape: &[usize], dst: (*mut T, &[isize]), src: (*const T, &[isize])) -> bool {
    if shape.contains(&0) {
        return true;
    }
    let (shape, [ds, ss]) = coalesce(shape, [dst.1, src.1]);
    let nd = shape.len();
    if nd < 2 || ds[nd - 1] != 1 || ss[nd - 1] != 1 || shape[nd - 1] >= SHORT_ROW || memory_order(&shape, [&ds[..], &ss[..]]).is_some() {
        return false;
    }
    if dst.0 as *const T == src.0 && ds == ss {
        return true; // callers pass distinct storages or one layout twice, a copy onto itself
    }
    let w = shape[nd - 1];
    let rows = shape[..nd - 1].iter().product::<usize>();
    let (dp, sp) = (SendPtr(dst.0), SendPtr(src.0 as *mut T));
    let (dr, sr) = (ds[nd - 2], ss[nd - 2]);
    let chunks = parallel::chunks_for(rows * w, 4 * parallel::GRAIN).min(rows);
    parallel::for_chunks(chunks, |c| super::simd::wide(#[inline(always)] || {
        let (r0, r1) = (c * rows / chunks, (c + 1) * rows / chunks);
        row_runs(&shape[..nd - 1], r0, r1, #[inline(always)] |idx, n| {
            let at = |s: &[isize]| idx.iter().zip(s).map(|(&i, &s)| i as isize * s).sum::<isize>();
            let (mut od, mut os) = (at(&ds), at(&ss));
            for _ in 0..n {
                // SAFETY: both offsets address a row of w elements inside their operands, which
                // are distinct storages (identical layouts returned above).
                unsafe { copy_run(std::slice::from_raw_parts_mut(dp.at(od), w), std::slice::from_raw_parts(sp.at(os), w)) };
                od += dr;
                os += sr;
            }
        });
    }));
    true
}

/// Walks rows `r0..r1` of a row-major grid whose leading dims are `lead` in runs along the
/// last of them: `f(idx, n)` gets the index of a run's first row and the run's length, so a
/// caller steps its offsets once per row inside a run and recomputes them once per run.
#[inline(always)]
pub fn row_runs(lead: &[usize], r0: usize, r1: usize, mut f: impl FnMut(&[usize], usize)) {
    let k = lead.len();
    let mut idx: SmallVec<[usize; 6]> = smallvec::smallvec![0; k];
    let mut rest = r0;
    for d in (0..k).rev() {
        idx[d] = rest % lead[d];
        rest /= lead[d];
    }
    let mut r = r0;
    while r < r1 {
        let n = (lead[k - 1] - idx[k - 1]).min(r1 - r);
        f(&idx, n);
        r += n;
        // The next run, if any, starts the next plane.
        idx[k - 1] = 0;
        for d in (0..k - 1).rev() {
            idx[d] += 1;
            if idx[d] < lead[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

/// A raw pointer that may cross into pool threads: kernels guarantee disjoint writes.
#[derive(Clone, Copy)]
pub struct SendPtr<T>(pub *mut T);
unsafe impl<T> Send for SendPtr<T> {}
unsafe impl<T> Sync for SendPtr<T> {}

impl<T> SendPtr<T> {
    #[inline(always)]
    pub fn at(self, off: isize) -> *mut T {
        // SAFETY: callers pass offsets produced by for_each_run inside the operand's extent.
        unsafe { self.0.offset(off) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn coalesces_contiguous_dims() {
        let (s, st) = coalesce(&[2, 3, 4], [&[12, 4, 1]]);
        assert_eq!((&s[..], &st[0][..]), (&[24usize][..], &[1isize][..]));
        let (s, _) = coalesce(&[2, 3, 4], [&[12, 4, 1], &[0, 1, 0]]);
        assert_eq!(&s[..], &[2, 3, 4]);
    }

    #[test]
    fn tiled_walks_visit_every_element_once() {
        // Output row-major, input transposed (tiles), with ragged tiles and an outer dim.
        for (shape, st_out, st_in) in [([1usize, 70, 100], [7000isize, 100, 1], [7000isize, 1, 70]), ([9, 33, 65], [2145, 65, 1], [1, 9, 297])] {
            let seen = Mutex::new(Vec::new());
            for_each_run(&shape, [&st_out[..], &st_in[..]], 64, |offs, len, st| {
                for i in 0..len as isize {
                    seen.lock().unwrap().push((offs[0] + i * st[0], offs[1] + i * st[1]));
                }
            });
            let mut v = seen.into_inner().unwrap();
            v.sort();
            let n = shape.iter().product::<usize>() as isize;
            assert_eq!(v.len() as isize, n);
            // Each output offset once, paired with the input offset of the same index.
            let (s1, s2) = (shape[1] as isize, shape[2] as isize);
            for (o, (out, inp)) in v.iter().enumerate() {
                let o = o as isize;
                assert_eq!(*out, o);
                let (a, b, c) = (o / (s1 * s2), o / s2 % s1, o % s2);
                assert_eq!(*inp, a * st_in[0] + b * st_in[1] + c * st_in[2]);
            }
        }
    }

    #[test]
    fn permuted_outputs_walk_in_memory_order() {
        // Output and input both (2, 3, 4) permuted in memory as dims (2, 0, 1) outermost first:
        // one contiguous run of 24 after reordering; a contiguous input then reads across.
        let (shape, st_out) = ([2usize, 3, 4], [3isize, 1, 6]);
        for st_in in [[3isize, 1, 6], [12, 4, 1]] {
            let seen = Mutex::new(Vec::new());
            for_each_run(&shape, [&st_out[..], &st_in[..]], 64, |offs, len, st| {
                if st_in == st_out {
                    assert_eq!((offs, len, st), ([0, 0], 24, [1, 1]));
                }
                for i in 0..len as isize {
                    seen.lock().unwrap().push((offs[0] + i * st[0], offs[1] + i * st[1]));
                }
            });
            let mut v = seen.into_inner().unwrap();
            v.sort();
            let want: Vec<(isize, isize)> = (0..24)
                .map(|o: isize| {
                    let (a, b, c) = (o / 12, o / 4 % 3, o % 4);
                    (a * st_out[0] + b * st_out[1] + c * st_out[2], a * st_in[0] + b * st_in[1] + c * st_in[2])
                })
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            assert_eq!(v, want);
        }
    }

    #[test]
    fn copy_rows_copies_sliced_flipped_and_permuted_sources() {
        // Destination row-major (4, 70, 33, 30): 277,200 elements, split over threads when
        // there are two. Sources: a slice of (4, 70, 35, 40) at offset (0, 0, 1, 5); the same
        // with dim 1 walked backwards; and dims 0 and 1 of the source swapped in memory.
        let shape = [4usize, 70, 33, 30];
        let n: usize = shape.iter().product();
        let dst_st = [70 * 33 * 30, 33 * 30, 30, 1isize];
        let big: Vec<f32> = (0..4 * 70 * 35 * 40).map(|v| v as f32).collect();
        let base = (35 + 5) as isize;
        let cases: [([isize; 4], isize); 3] = [
            ([70 * 35 * 40, 35 * 40, 40, 1], base),
            ([70 * 35 * 40, -(35 * 40), 40, 1], base + 69 * 35 * 40),
            ([35 * 40, 4 * 35 * 40, 40, 1], base),
        ];
        for (src_st, off) in cases {
            let mut out = vec![-1f32; n];
            // SAFETY: every source offset below stays inside `big`.
            let src = unsafe { big.as_ptr().offset(off) };
            assert!(copy_rows(&shape, (out.as_mut_ptr(), &dst_st[..]), (src, &src_st[..])));
            for (o, v) in out.iter().enumerate() {
                let i = [o / (70 * 33 * 30), o / (33 * 30) % 70, o / 30 % 33, o % 30];
                let at = off + (0..4).map(|d| i[d] as isize * src_st[d]).sum::<isize>();
                assert_eq!(*v, big[at as usize], "strides {src_st:?} at {i:?}");
            }
        }
        // A source read across its inner dim is left to `for_each_run`.
        let mut out = vec![0f32; 6];
        assert!(!copy_rows(&[2, 3], (out.as_mut_ptr(), &[3isize, 1][..]), (big.as_ptr(), &[1isize, 2][..])));
    }

    #[test]
    fn walks_start_mid_row_and_carry_offsets_across_dims() {
        // Shape (3, 4, 5), operand 1 with padded and negative strides; every range lo..hi.
        let shape = [3usize, 4, 5];
        let strides: [Strides; 2] = [[20isize, 5, 1].into_iter().collect(), [-60isize, 7, 2].into_iter().collect()];
        let at = |e: usize, k: usize| [e / 20, e / 5 % 4, e % 5].iter().zip(&strides[k]).map(|(&i, &s)| i as isize * s).sum::<isize>();
        for lo in 0..=60 {
            for hi in lo..=60 {
                let mut seen = Vec::new();
                walk(&shape, &strides, lo, hi, &mut |o, len, st| (0..len as isize).for_each(|i| seen.push((o[0] + i * st[0], o[1] + i * st[1]))));
                let want: Vec<(isize, isize)> = (lo..hi).map(|e| (at(e, 0), at(e, 1))).collect();
                assert_eq!(seen, want, "range {lo}..{hi}");
            }
        }
    }

    #[test]
    fn visits_every_element_once() {
        // A transposed 3x5 walk, cut into tiny chunks to exercise chunk boundaries.
        let seen = Mutex::new(Vec::new());
        for_each_run(&[5, 3], [&[1, 5]], 2, |offs, len, st| {
            for i in 0..len as isize {
                seen.lock().unwrap().push(offs[0] + i * st[0]);
            }
        });
        let mut v = seen.into_inner().unwrap();
        v.sort();
        assert_eq!(v, (0..15).collect::<Vec<isize>>());
    }
}
