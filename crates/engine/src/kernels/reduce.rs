//! One reduction kernel for every reduce op: fold the reduced dims of each kept element into an
//! accumulator. Many outputs → outputs split across threads; few outputs → each reduction is
//! split into ordered chunks whose partial accumulators are combined left to right.

use super::strided::{coalesce, walk, SendPtr};
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

/// Sums a run in f64 with sixteen independent accumulators on contiguous data (so the adds
/// pipeline and vectorise instead of waiting on one chain).
pub fn sum_run<T: Copy + Into<f64> + 'static>(acc: f64, p: *const T, len: usize, stride: isize) -> f64 {
    // SAFETY: callers pass a run inside a live view.
    unsafe {
        if stride != 1 {
            return (0..len as isize).fold(acc, |a, i| a + (*p.offset(i * stride)).into());
        }
        let s = std::slice::from_raw_parts(p, len);
        if std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>() {
            return sum_f32(acc, std::slice::from_raw_parts(p as *const f32, len));
        }
        super::simd::wide(#[inline(always)] || {
            // Two banks of eight lanes: one vector add chain each, so they overlap.
            let (mut l0, mut l1) = ([0f64; 8], [0f64; 8]);
            let chunks = s.chunks_exact(16);
            let tail = chunks.remainder();
            for c in chunks {
                for i in 0..8 {
                    l0[i] += c[i].into();
                    l1[i] += c[8 + i].into();
                }
            }
            let lanes: [f64; 8] = std::array::from_fn(|i| l0[i] + l1[i]);
            let body = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
            tail.iter().fold(acc + body, |a, &x| a + x.into())
        })
    }
}

/// float32 runs: blocks of 1024 summed in 32 float32 lanes (two vector chains, no conversion in
/// the loop), each block's total added in float64, so rounding stays within a block.
fn sum_f32(acc: f64, s: &[f32]) -> f64 {
    super::simd::wide(#[inline(always)] || {
        let mut total = acc;
        for block in s.chunks(1024) {
            let mut lanes = [0f32; 32];
            let chunks = block.chunks_exact(32);
            let tail = chunks.remainder();
            for c in chunks {
                for i in 0..32 {
                    lanes[i] += c[i];
                }
            }
            total += lanes.iter().map(|&x| x as f64).sum::<f64>() + tail.iter().map(|&x| x as f64).sum::<f64>();
        }
        total
    })
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
    let (red_shape, red_strides) = coalesce(&red_shape, [&red_strides]);
    let base = SendPtr(v.ptr::<T>());
    let fold_range = |start: isize, lo: usize, hi: usize| -> A {
        let mut acc = init;
        walk(&red_shape, &red_strides, lo, hi, &mut |offs, len, st| {
            acc = run(acc, base.at(start + offs[0]) as *const T, len, st[0]);
        });
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
        parallel::for_chunks(chunks, |c| {
            for i in c * per..((c + 1) * per).min(out_n) {
                // SAFETY: each output index is written by exactly one chunk.
                unsafe { *po.at(i as isize) = fold_range(kept_offset(i), 0, red_n) };
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

/// True if any element satisfies `pred` (serial: used for cheap argument checks).
pub fn any_of<T: Copy + Send + Sync>(v: &View, pred: impl Fn(T) -> bool + Sync + Send) -> bool {
    let all = vec![true; v.layout.ndim()];
    fold(v, &all, false, |acc, x| acc || pred(x), |a, b| a || b).first().copied().unwrap_or(false)
}
