//! Walking N-d strided operands together. Dims are coalesced first, then the index space is
//! cut into contiguous element ranges (in parallel for big tensors); each range is handed to
//! the kernel as runs along the innermost dim, with per-operand start offsets and strides.

use smallvec::SmallVec;

use crate::layout::{Dims, Strides};
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
    let (shape, strides) = coalesce(shape, strides);
    let chunks = parallel::chunks_for(numel, grain);
    let per = numel.div_ceil(chunks);
    parallel::for_chunks(chunks, |c| {
        let lo = c * per;
        walk(&shape, &strides, lo, (lo + per).min(numel), &mut |o, l, st| run(o, l, st));
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
    if lo >= hi {
        return;
    }
    let nd = shape.len();
    if nd == 0 {
        run([0; K], 1, [0; K]);
        return;
    }
    let inner = shape[nd - 1];
    let inner_strides: [isize; K] = std::array::from_fn(|k| strides[k][nd - 1]);
    // Multi-index of `lo` over the outer dims, and the position inside the inner run.
    let mut outer_idx: SmallVec<[usize; 6]> = smallvec::smallvec![0; nd - 1];
    let mut rem = lo / inner;
    for d in (0..nd - 1).rev() {
        outer_idx[d] = rem % shape[d];
        rem /= shape[d];
    }
    let mut j = lo % inner;
    let mut pos = lo;
    while pos < hi {
        let mut offs = [0isize; K];
        for k in 0..K {
            let mut o = j as isize * strides[k][nd - 1];
            for d in 0..nd - 1 {
                o += outer_idx[d] as isize * strides[k][d];
            }
            offs[k] = o;
        }
        let len = (inner - j).min(hi - pos);
        run(offs, len, inner_strides);
        pos += len;
        j = 0;
        // Odometer step over the outer dims.
        for d in (0..nd - 1).rev() {
            outer_idx[d] += 1;
            if outer_idx[d] < shape[d] {
                break;
            }
            outer_idx[d] = 0;
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
