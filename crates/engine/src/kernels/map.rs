//! Elementwise loops over strided operands: one output, one or two inputs. Inner runs are
//! specialised for the contiguous and broadcast-scalar cases so that LLVM vectorises them.

use super::strided::{for_each_run, SendPtr};
use crate::parallel::GRAIN;

/// One operand of a loop: base pointer and strides over the iteration shape (0 = broadcast).
pub struct Arg<'a, T> {
    pub ptr: *mut T,
    pub strides: &'a [isize],
}

impl<'a, T> Arg<'a, T> {
    pub fn new(ptr: *mut T, strides: &'a [isize]) -> Self {
        Arg { ptr, strides }
    }
}

/// `out[i] = f(a[i])` over `shape`.
pub fn map1<A: Copy + Send + Sync, O: Copy + Send + Sync>(
    shape: &[usize],
    out: Arg<O>,
    a: Arg<A>,
    f: impl Fn(A) -> O + Sync + Send,
) {
    let (po, pa) = (SendPtr(out.ptr), SendPtr(a.ptr as *mut A));
    for_each_run(shape, [out.strides, a.strides], GRAIN, |offs, len, st| {
        let (o, a) = (po.at(offs[0]), pa.at(offs[1]) as *const A);
        // SAFETY: offsets/strides come from the operands' own layouts; output runs are disjoint.
        unsafe {
            if st == [1, 1] {
                let (o, a) = (std::slice::from_raw_parts_mut(o, len), std::slice::from_raw_parts(a, len));
                for (y, &x) in o.iter_mut().zip(a) {
                    *y = f(x);
                }
            } else if st[1] == 0 {
                let y = f(*a);
                for i in 0..len as isize {
                    *o.offset(i * st[0]) = y;
                }
            } else {
                for i in 0..len as isize {
                    *o.offset(i * st[0]) = f(*a.offset(i * st[1]));
                }
            }
        }
    });
}

/// `out[i] = f(a[i], b[i])` over `shape`; `out` must not overlap the inputs.
pub fn map2<A: Copy + Send + Sync, B: Copy + Send + Sync, O: Copy + Send + Sync>(
    shape: &[usize],
    out: Arg<O>,
    a: Arg<A>,
    b: Arg<B>,
    f: impl Fn(A, B) -> O + Sync + Send,
) {
    let (po, pa, pb) = (SendPtr(out.ptr), SendPtr(a.ptr as *mut A), SendPtr(b.ptr as *mut B));
    for_each_run(shape, [out.strides, a.strides, b.strides], GRAIN, |offs, len, st| {
        let (o, a, b) = (po.at(offs[0]), pa.at(offs[1]) as *const A, pb.at(offs[2]) as *const B);
        // SAFETY: as in map1; the output is a fresh buffer, so slices do not alias.
        unsafe {
            match st {
                [1, 1, 1] => {
                    let o = std::slice::from_raw_parts_mut(o, len);
                    let (a, b) = (std::slice::from_raw_parts(a, len), std::slice::from_raw_parts(b, len));
                    for i in 0..len {
                        o[i] = f(a[i], b[i]);
                    }
                }
                [1, 1, 0] => {
                    let o = std::slice::from_raw_parts_mut(o, len);
                    let (a, b) = (std::slice::from_raw_parts(a, len), *b);
                    for i in 0..len {
                        o[i] = f(a[i], b);
                    }
                }
                [1, 0, 1] => {
                    let o = std::slice::from_raw_parts_mut(o, len);
                    let (a, b) = (*a, std::slice::from_raw_parts(b, len));
                    for i in 0..len {
                        o[i] = f(a, b[i]);
                    }
                }
                _ => {
                    for i in 0..len as isize {
                        *o.offset(i * st[0]) = f(*a.offset(i * st[1]), *b.offset(i * st[2]));
                    }
                }
            }
        }
    });
}

/// `out[i] = f(a[i], b[i], c[i])` over `shape`; `out` must not overlap the inputs.
pub fn map3<A: Copy + Send + Sync, B: Copy + Send + Sync, C: Copy + Send + Sync, O: Copy + Send + Sync>(
    shape: &[usize],
    out: Arg<O>,
    a: Arg<A>,
    b: Arg<B>,
    c: Arg<C>,
    f: impl Fn(A, B, C) -> O + Sync + Send,
) {
    let (po, pa, pb, pc) = (SendPtr(out.ptr), SendPtr(a.ptr as *mut A), SendPtr(b.ptr as *mut B), SendPtr(c.ptr as *mut C));
    for_each_run(shape, [out.strides, a.strides, b.strides, c.strides], GRAIN, |offs, len, st| {
        let (o, a, b, c) = (po.at(offs[0]), pa.at(offs[1]), pb.at(offs[2]), pc.at(offs[3]));
        // SAFETY: offsets/strides come from the operands' own layouts; output runs are disjoint.
        // Contiguous runs (one operand possibly a broadcast scalar) index slices so that LLVM
        // vectorises them (a `where` then becomes a blend, not a mispredicted branch).
        unsafe {
            let o_ = || std::slice::from_raw_parts_mut(o, len);
            let s = |p: *mut A| std::slice::from_raw_parts(p as *const A, len);
            match st {
                [1, 1, 1, 1] => {
                    let (o, a, b, c) = (o_(), s(a), std::slice::from_raw_parts(b as *const B, len), std::slice::from_raw_parts(c as *const C, len));
                    for i in 0..len {
                        o[i] = f(a[i], b[i], c[i]);
                    }
                }
                [1, 1, 1, 0] => {
                    let (o, a, b, c) = (o_(), s(a), std::slice::from_raw_parts(b as *const B, len), *c);
                    for i in 0..len {
                        o[i] = f(a[i], b[i], c);
                    }
                }
                [1, 1, 0, 1] => {
                    let (o, a, b, c) = (o_(), s(a), *b, std::slice::from_raw_parts(c as *const C, len));
                    for i in 0..len {
                        o[i] = f(a[i], b, c[i]);
                    }
                }
                _ => {
                    for i in 0..len as isize {
                        *o.offset(i * st[0]) = f(*a.offset(i * st[1]), *b.offset(i * st[2]), *c.offset(i * st[3]));
                    }
                }
            }
        }
    });
}
