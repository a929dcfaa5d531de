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
            let p = base.at(start + offs[0]) as *const T;
            // SAFETY: offsets are inside the view's extent.
            unsafe {
                if st[0] == 1 {
                    for &x in std::slice::from_raw_parts(p, len) {
                        acc = f(acc, x);
                    }
                } else {
                    for i in 0..len as isize {
                        acc = f(acc, *p.offset(i * st[0]));
                    }
                }
            }
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
