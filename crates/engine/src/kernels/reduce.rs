//! One reduction kernel for every reduce op: fold the reduced dims of each kept element into an
//! accumulator. Many outputs → outputs split across threads; few outputs → each reduction is
//! split into ordered chunks whose partial accumulators are combined left to right.

use super::num::Float;
use super::strided::{coalesce, memory_order, SendPtr, Walker};
use crate::layout::{Dims, Strides};
use crate::parallel::{self, GRAIN};
use crate::tensor::View;

/// Folds `v` (elements of type `T`) over the dims where `reduced[d]`; returns one accumulator
/// per kept element in row-major order of the kept dims.
pub fn fold<T: Copy + Send + Sync, A: Copy + Send + Sync>(
    v: &View,
    reduced: &[bool],
    init: A,
    f: impl Fn(A, T) -> A + Sync + Send,
    combine: impl Fn(A, A) -> A + Sync + Send,
) -> Vec<A> {
    let run = |mut acc: A, p: *const T, len: usize, stride: isize| {
        // SAFETY: fold_runs hands out runs inside the view's extent.
        unsafe {
            if stride == 1 {
                let s = std::slice::from_raw_parts(p, len);
                acc = super::simd::wide(#[inline(always)] || s.iter().fold(acc, |a, &x| f(a, x)));
            } else {
                for i in 0..len as isize {
                    acc = f(acc, *p.offset(i * stride));
                }
            }
        }
        acc
    };
    fold_runs(v, reduced, init, run, combine)
}

/// `acc + Σ g(x)` over a run, in f64. Contiguous runs are summed in blocks of 1024 in 32 lanes
/// of `T` (independent vector chains, no conversion in the loop), each block's total added in
/// f64, so float32 rounding stays within a block. `g` (identity, square, abs) lets the 1- and
/// 2-norms sum in the same pass instead of building a temporary.
pub fn sum_run<T: Float>(acc: f64, p: *const T, len: usize, stride: isize, g: impl Fn(T) -> T) -> f64 {
    // SAFETY: callers pass a run inside a live view.
    unsafe {
        // A broadcast run (the gradient of `sum()` or `mean()` expanded over a tensor, whose
        // bias gradient a convolution's backward sums): one value, `len` times. Float32
        // values times a count below 2²⁹ are exact in f64, as the one-by-one sums are (that
        // loop was 6 % of LeNet conv2's forward + backward).
        if stride == 0 && len > 0 {
            return acc + len as f64 * g(*p).into();
        }
        // Runs shorter than the lanes are added one by one (rows of 8: 4 against 6.5 ns).
        if stride != 1 || len < 32 {
            return (0..len as isize).fold(acc, |a, i| a + g(*p.offset(i * stride)).into());
        }
        let s = std::slice::from_raw_parts(p, len);
        super::simd::wide(#[inline(always)] || {
            let mut total = acc;
            for block in s.chunks(1024) {
                let mut lanes = [T::zero(); 32];
                let mut chunks = block.chunks_exact(32);
                for c in &mut chunks {
                    for i in 0..32 {
                        lanes[i] = lanes[i].add(g(c[i]));
                    }
                }
                // The tail goes into a copy of the lanes, and the lanes are added pairwise in `T`
                // (summed one after another in f64, lanes and tail took longer than a whole row
                // of 32: 43 ns a row, PyTorch 11). `black_box` hands that copy over through
                // memory: without it LLVM planned the loop above around the tree and the tail,
                // and kept the lanes in 16 two-float registers (17 GB/s on 256 KiB, 62 with it).
                let mut lanes = std::hint::black_box(lanes);
                for (l, &x) in lanes.iter_mut().zip(chunks.remainder()) {
                    *l = l.add(g(x));
                }
                total += pairwise(lanes, |a, b| a.add(b)).into();
            }
            total
        })
    }
}

/// Folds 32 lanes as a tree (halves, quarters, ...), which vectorises, where a fold from
/// the left is a chain of 32 dependent steps. Each level is a new array: folding the lanes in
/// place at a loop-variable index kept the caller's lanes on the stack through its own loop
/// (amax of 64K floats 1.5× slower).
#[inline(always)]
pub fn pairwise<A: Copy>(lanes: [A; 32], f: impl Fn(A, A) -> A) -> A {
    let l16: [A; 16] = std::array::from_fn(|i| f(lanes[i], lanes[i + 16]));
    let l8: [A; 8] = std::array::from_fn(|i| f(l16[i], l16[i + 8]));
    let l4: [A; 4] = std::array::from_fn(|i| f(l8[i], l8[i + 4]));
    f(f(l4[0], l4[2]), f(l4[1], l4[3]))
}

/// `acc · Π x` over a run, in f64. Contiguous runs multiply into 32 f64 lanes (one running
/// product is a chain of 4-cycle multiplies: prod over rows of 1024² took 2.8 ms against
/// PyTorch's 1.3, which multiplies in lanes too).
pub fn prod_run<T: Float>(acc: f64, p: *const T, len: usize, stride: isize) -> f64 {
    // SAFETY: callers pass a run inside a live view.
    unsafe {
        if stride != 1 {
            return (0..len as isize).fold(acc, |a, i| a * (*p.offset(i * stride)).into());
        }
        let s = std::slice::from_raw_parts(p, len);
        super::simd::wide(#[inline(always)] || {
            let mut lanes = [1f64; 32];
            let chunks = s.chunks_exact(32);
            let tail = chunks.remainder();
            for c in chunks {
                for i in 0..32 {
                    lanes[i] *= c[i].into();
                }
            }
            let mut total = acc;
            for l in lanes {
                total *= l;
            }
            for &x in tail {
                total *= x.into();
            }
            total
        })
    }
}

/// `fold` with the per-run loop supplied by the caller: `run(acc, ptr, len, stride)` folds one
/// run of `len` elements `stride` apart.
pub fn fold_runs<T: Copy + Send + Sync, A: Copy + Send + Sync>(
    v: &View,
    reduced: &[bool],
    init: A,
    run: impl Fn(A, *const T, usize, isize) -> A + Sync + Send,
    combine: impl Fn(A, A) -> A + Sync + Send,
) -> Vec<A> {
    let l = &v.layout;
    let (mut kept_shape, mut kept_strides, mut red_shape, mut red_strides) = (Dims::new(), Strides::new(), Dims::new(), Strides::new());
    for d in 0..l.ndim() {
        if reduced[d] {
            red_shape.push(l.shape[d]);
            red_strides.push(l.strides[d]);
        } else {
            kept_shape.push(l.shape[d]);
            kept_strides.push(l.strides[d]);
        }
    }
    let out_n: usize = kept_shape.iter().product();
    let red_n: usize = red_shape.iter().product();
    // The reduced dims are walked in memory order (every fold here is order-free up to
    // rounding), so a transposed or permuted view is read in runs along its contiguous dim.
    let (red_shape, red_strides) = match memory_order(&red_shape, [&red_strides]) {
        Some((s, [st])) => coalesce(&s, [&st]),
        None => coalesce(&red_shape, [&red_strides]),
    };
    let base = SendPtr(v.ptr::<T>());
    // Elements lo..hi of one output's reduction, whose first element is at `start`. One run goes
    // to `run` directly; more are walked by a loop that calls `run` inline.
    let fold_range = |start: isize, lo: usize, hi: usize| -> A {
        if red_shape.len() == 1 {
            let st = red_strides[0][0];
            return run(init, base.at(start + lo as isize * st) as *const T, hi - lo, st);
        }
        let (mut acc, mut w) = (init, Walker::new(&red_shape, &red_strides, lo, hi));
        while let Some(([off], len)) = w.next_run() {
            acc = run(acc, base.at(start + off) as *const T, len, w.inner_strides[0]);
        }
        acc
    };
    let kept_offset = |mut idx: usize| -> isize {
        let mut off = 0isize;
        for d in (0..kept_shape.len()).rev() {
            off += (idx % kept_shape[d]) as isize * kept_strides[d];
            idx /= kept_shape[d];
        }
        off
    };
    let mut out = vec![init; out_n];
    if out_n == 0 {
        return out;
    }
    let threads = parallel::num_threads();
    if out_n >= threads * 4 || red_n < 2 * GRAIN {
        let chunks = parallel::chunks_for(out_n * red_n.max(1), GRAIN).min(out_n);
        let per = out_n.div_ceil(chunks);
        let po = SendPtr(out.as_mut_ptr());
        // Kept offsets are stepped by a walk over the kept dims, and a reduction that is one
        // run goes straight to `run` (per output, index arithmetic and a walk over the reduced
        // dims cost more than summing a row of 32: 43 ns a row, PyTorch 11).
        let (ks, kst) = coalesce(&kept_shape, [&kept_strides]);
        parallel::for_chunks(chunks, |c| {
            let (lo, hi) = (c * per, ((c + 1) * per).min(out_n));
            let mut kept = Walker::new(&ks, &kst, lo, hi);
            let mut i = lo;
            while let Some(([off], len)) = kept.next_run() {
                for q in 0..len as isize {
                    let start = off + q * kept.inner_strides[0];
                    let acc = fold_range(start, 0, red_n);
                    // SAFETY: each output index is written by exactly one chunk.
                    unsafe { *po.at(i as isize) = acc };
                    i += 1;
                }
            }
        });
    } else {
        let chunks = parallel::chunks_for(red_n, GRAIN);
        let per = red_n.div_ceil(chunks);
        for (i, slot) in out.iter_mut().enumerate() {
            let start = kept_offset(i);
            let mut parts = vec![init; chunks];
            let pp = SendPtr(parts.as_mut_ptr());
            parallel::for_chunks(chunks, |c| {
                let lo = c * per;
                // SAFETY: each chunk writes its own slot.
                unsafe { *pp.at(c as isize) = fold_range(start, lo, (lo + per).min(red_n)) };
            });
            let mut it = parts.into_iter();
            let first = it.next().unwrap_or(init);
            *slot = it.fold(first, &combine);
        }
    }
    out
}

/// A contiguous view reduced over one block of adjacent dims with kept dims after it (`sum(0)`
/// of a matrix, a bias gradient): `(a, r, b)`, kept element `i·b + j` folding
/// `x[(i·r + p)·b + j]` over `p < r`. `None` when nothing is kept after the block (the runs
/// are then contiguous and `fold_runs` reads them in place) or the view is not contiguous.
pub fn column_block(v: &View, reduced: &[bool]) -> Option<(usize, usize, usize)> {
    let l = &v.layout;
    let last = reduced.iter().rposition(|&r| r)?;
    let first = reduced[..=last].iter().rposition(|&r| !r).map_or(0, |d| d + 1);
    if !l.is_contiguous() || reduced[..first].iter().any(|&r| r) {
        return None;
    }
    let b: usize = l.shape[last + 1..].iter().product();
    (b > 1).then(|| (l.shape[..first].iter().product(), l.shape[first..=last].iter().product(), b))
}

/// A view reduced over trailing dims that are one contiguous run per output, whose outputs
/// (the kept dims) are one evenly strided sequence: `(rows, row_stride, len)`, output `r`
/// folding the `len` elements from `r·row_stride`. `x.sum(-1)` of a matrix or of a slice of
/// rows; the row kernels take these without a call per output. `None` for a few long rows.
pub fn row_block(v: &View, reduced: &[bool]) -> Option<(usize, isize, usize)> {
    let l = &v.layout;
    let first = reduced.iter().position(|&r| r)?;
    if reduced[first..].iter().any(|&r| !r) {
        return None;
    }
    let (red, [rst]) = coalesce(&l.shape[first..], [&l.strides[first..]]);
    let (kept, [kst]) = coalesce(&l.shape[..first], [&l.strides[..first]]);
    let len = match (red.len(), red.first()) {
        (0, _) => 1,
        (1, Some(&n)) if rst[0] == 1 => n,
        _ => return None,
    };
    let (rows, row_stride) = match kept.len() {
        0 => (1, 0),
        1 => (kept[0], kst[0]),
        _ => return None,
    };
    // Few long rows are left to `fold_runs`, which splits each row across the threads.
    (rows >= parallel::num_threads() * 4 || len < 2 * GRAIN).then_some((rows, row_stride, len))
}

/// `fold` over a `column_block`: each row is folded elementwise into a row of accumulators
/// (vectorised across the columns, 4096 at a time so that they stay in L1/L2), where folding each
/// column by itself would stride through memory one element per cache line (`sum(0)` of
/// 4096 × 4096: 79 ms). Row ranges are split across threads when the column blocks are too
/// few for them; their partial rows are combined in order.
pub fn fold_columns<T: Copy + Send + Sync, A: Copy + Send + Sync>(
    v: &View,
    (a, r, b): (usize, usize, usize),
    init: A,
    f: impl Fn(A, T) -> A + Sync + Send,
    combine: impl Fn(A, A) -> A + Sync + Send,
) -> Vec<A> {
    const COLS: usize = 4096;
    let blocks = b.div_ceil(COLS);
    let work = a * r * b;
    let threads = parallel::num_threads();
    let parts = if a * blocks >= 2 * threads { 1 } else { parallel::chunks_for(work, GRAIN).min(r).max(1) };
    let jobs = parts * a * blocks;
    let chunks = parallel::chunks_for(work, GRAIN).min(jobs).max(1);
    let mut acc = vec![init; parts * a * b];
    let (src, pa) = (SendPtr(v.ptr::<T>()), SendPtr(acc.as_mut_ptr()));
    parallel::for_chunks(chunks, |c| {
        for job in c * jobs / chunks..(c + 1) * jobs / chunks {
            let (part, rest) = (job / (a * blocks), job % (a * blocks));
            let (i, blk) = (rest / blocks, rest % blocks);
            let (j0, w) = (blk * COLS, COLS.min(b - blk * COLS));
            // SAFETY: job (part, i, blk) owns columns j0..j0+w of accumulator row (part, i); the
            // rows read lie inside the contiguous view of a·r·b elements.
            let out = unsafe { std::slice::from_raw_parts_mut(pa.at(((part * a + i) * b + j0) as isize), w) };
            let (mut p, end) = (part * r / parts, (part + 1) * r / parts);
            // SAFETY (row): rows p < r of block i, columns j0..j0+w.
            let row = |p: usize| unsafe { std::slice::from_raw_parts(src.at(((i * r + p) * b + j0) as isize) as *const T, w) };
            // Long rows four at a time: one pass of the accumulators per four rows, four
            // streams in flight, and no select stored back to the accumulator (which LLVM
            // turned into a masked store of the changed lanes, slow on AMD). `sum(0)` /
            // `amax(0)` of 4096 × 4096 on one thread: 13.0 / 18.7 → 5.9 / 5.1 ms. Short rows
            // pay more for the pass's setup than they gain (65536 × 256: 1.1–1.4× slower).
            while w >= 1024 && p + 4 <= end {
                let (r0, r1, r2, r3) = (row(p), row(p + 1), row(p + 2), row(p + 3));
                super::simd::wide(#[inline(always)] || {
                    for j in 0..w {
                        out[j] = f(f(f(f(out[j], r0[j]), r1[j]), r2[j]), r3[j]);
                    }
                });
                p += 4;
            }
            for p in p..end {
                let row = row(p);
                super::simd::wide(#[inline(always)] || {
                    for (y, &x) in out.iter_mut().zip(row) {
                        *y = f(*y, x);
                    }
                });
            }
        }
    });
    if parts > 1 {
        let (head, tail) = acc.split_at_mut(a * b);
        for part in tail.chunks_exact(a * b) {
            for (y, &x) in head.iter_mut().zip(part) {
                *y = combine(*y, x);
            }
        }
        acc.truncate(a * b);
    }
    acc
}

/// True if any element satisfies `pred` (serial: used for cheap argument checks).
pub fn any_of<T: Copy + Send + Sync>(v: &View, pred: impl Fn(T) -> bool + Sync + Send) -> bool {
    let all = vec![true; v.layout.ndim()];
    fold(v, &all, false, |acc, x| acc || pred(x), |a, b| a || b).first().copied().unwrap_or(false)
}
