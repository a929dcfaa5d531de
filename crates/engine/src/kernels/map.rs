//! Elementwise loops over strided operands: one output, one or two inputs. Inner runs are
//! specialised for the contiguous and broadcast-scalar cases so that LLVM vectorises them.

use super::simd::wide;
use super::stream;
use super::strided::{for_each_run, SendPtr};
use super::vmath16;
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

/// One input of a contiguous run: a slice, or a broadcast scalar (stride 0).
trait Lane<T: Copy> {
    fn at(&self, i: usize) -> T;
}
struct Run<'a, T>(&'a [T]);
struct Splat<T>(T);
impl<T: Copy> Lane<T> for Run<'_, T> {
    #[inline(always)]
    fn at(&self, i: usize) -> T {
        // SAFETY: runs index below their length (the output slice's).
        unsafe { *self.0.get_unchecked(i) }
    }
}
impl<T: Copy> Lane<T> for Splat<T> {
    #[inline(always)]
    fn at(&self, _: usize) -> T {
        self.0
    }
}

/// Binds `$name` to a `Run` (stride 1) or `Splat` (stride 0) over `len` values at `$ptr` and
/// expands `$body` for each, so every combination is compiled as its own vectorisable loop.
macro_rules! lanes {
    ($stride:expr, $ptr:expr, $len:expr, |$name:ident| $body:expr) => {
        if $stride == 1 {
            let $name = Run(std::slice::from_raw_parts($ptr, $len));
            $body
        } else {
            let $name = Splat(*$ptr);
            $body
        }
    };
}

/// `p[i] = f(p[i])` for `i < len`, where `p` holds `A`s read and `O`s written (same size).
/// A result that is sometimes the input itself (ReLU, clamp) written straight back through the
/// pointer it was read from becomes a masked store of the changed lanes only. AVX-512's masked
/// stores are cheap (Zen 4, 1M floats on one thread, in C: 42–52 µs against 74 through a
/// buffer), so there the loop stays plain. AVX2's are slow on AMD (ReLU in place on 1M floats:
/// 750 µs against 100 for `add_`): below AVX-512 the values are read through a copy of the
/// pointer that LLVM cannot see is `p`, 32 at a time into a local array, and written back as
/// whole vectors. (Through a 64-value buffer in memory, which doubled the stores: a standalone
/// ReLU on 64K floats 9.6 against 4.7 µs. A plain loop over the two pointers gets a run-time
/// overlap check that sends equal pointers to the scalar loop.)
#[inline(always)]
unsafe fn in_place<A: Copy, O: Copy>(p: *mut O, len: usize, f: &impl Fn(A) -> O) {
    if super::simd::has_avx512() {
        for i in 0..len {
            let q = p.add(i);
            *q = f(*(q as *const A));
        }
        return;
    }
    const B: usize = 32;
    let src = std::hint::black_box(p as *const A);
    let mut i = 0;
    while i + B <= len {
        // Each block is read whole before any of it is written.
        let x = std::ptr::read_unaligned(src.add(i) as *const [A; B]);
        let mut y = [std::mem::MaybeUninit::<O>::uninit(); B];
        for (y, &x) in y.iter_mut().zip(&x) {
            y.write(f(x));
        }
        std::ptr::write_unaligned(p.add(i) as *mut [std::mem::MaybeUninit<O>; B], y);
        i += B;
    }
    for i in i..len {
        let q = p.add(i);
        *q = f(*(q as *const A));
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
    let streamed = stream::wanted(shape.iter().product::<usize>() * size_of::<O>());
    for_each_run(shape, [out.strides, a.strides], GRAIN, #[inline(always)] |offs, len, st| {
        let (o, a) = (po.at(offs[0]), pa.at(offs[1]) as *const A);
        // SAFETY: offsets/strides come from the operands' own layouts; output runs are disjoint.
        wide(#[inline(always)] || unsafe {
            if st == [1, 1] && o as usize == a as usize && size_of::<A>() == size_of::<O>() {
                in_place(o, len, &f);
            } else if st == [1, 1] {
                if stream::run_streams(streamed, len * size_of::<O>()) {
                    stream::write(o, len, #[inline(always)] |o, s| {
                        let a = std::slice::from_raw_parts(a.add(s), o.len());
                        for (y, &x) in o.iter_mut().zip(a) {
                            *y = f(x);
                        }
                    });
                    return;
                }
                let (o, a) = (std::slice::from_raw_parts_mut(o, len), std::slice::from_raw_parts(a, len));
                for (y, &x) in o.iter_mut().zip(a) {
                    *y = f(x);
                }
            } else if st == [1, -1] && len > 0 {
                // A reversed read (`flip`) as a slice walked backwards, so it becomes vector
                // loads and lane reversals (element by element: flip of 1024² 1.1 ms).
                let (o, a) = (std::slice::from_raw_parts_mut(o, len), std::slice::from_raw_parts(a.sub(len - 1), len));
                for (y, &x) in o.iter_mut().zip(a.iter().rev()) {
                    *y = f(x);
                }
            } else if st[1] == 0 {
                // A fill: a slice for a contiguous run, so it becomes vector stores (one
                // store per element through the strided pointer: `zero_` of 4 MB 0.42 ms).
                let y = f(*a);
                if st[0] == 1 {
                    if stream::run_streams(streamed, len * size_of::<O>()) {
                        stream::write(o, len, #[inline(always)] |o, _| o.fill(y));
                        return;
                    }
                    std::slice::from_raw_parts_mut(o, len).fill(y);
                } else {
                    for i in 0..len as isize {
                        *o.offset(i * st[0]) = y;
                    }
                }
            } else {
                for i in 0..len as isize {
                    *o.offset(i * st[0]) = f(*a.offset(i * st[1]));
                }
            }
        })
    });
}

/// `map1` for float32 with a 16-lane kernel (`vmath16`): runs of stride 1 (in place included)
/// directly; strided and broadcast runs are gathered into a buffer 256 values at a time, mapped
/// there and scattered, so every layout gets the same vector code and the same bits (the
/// per-element portable form took 10 ns an element on a transposed input, one scalar `exp`
/// after another).
pub fn map1_runs(shape: &[usize], out: Arg<f32>, a: Arg<f32>, run: vmath16::Run) {
    let (po, pa) = (SendPtr(out.ptr), SendPtr(a.ptr));
    for_each_run(shape, [out.strides, a.strides], GRAIN, #[inline(always)] |offs, len, st| {
        let (o, a) = (po.at(offs[0]), pa.at(offs[1]) as *const f32);
        // SAFETY: offsets/strides come from the operands' own layouts; output runs are disjoint
        // and are either the input run itself or do not overlap it.
        unsafe {
            if st == [1, 1] {
                run(a, o, len);
                return;
            }
            let mut buf = [0f32; 256];
            for i0 in (0..len).step_by(256) {
                let n = 256.min(len - i0);
                for (q, v) in buf[..n].iter_mut().enumerate() {
                    *v = *a.offset((i0 + q) as isize * st[1]);
                }
                run(buf.as_ptr(), buf.as_mut_ptr(), n);
                for (q, &v) in buf[..n].iter().enumerate() {
                    *o.offset((i0 + q) as isize * st[0]) = v;
                }
            }
        }
    });
}

/// `out[i] = fast(a[i])` over `shape`, except that a run holding an element for which `slow_needed`
/// holds takes `slow` throughout (float32 sin/cos: a polynomial up to a bound, libm beyond).
/// The check is one vectorised pass over the run, which is then in cache for the map.
pub fn map1_guarded<A: Copy + Send + Sync, O: Copy + Send + Sync>(
    shape: &[usize],
    out: Arg<O>,
    a: Arg<A>,
    slow_needed: impl Fn(A) -> bool + Sync + Send,
    fast: impl Fn(A) -> O + Sync + Send,
    slow: impl Fn(A) -> O + Sync + Send,
) {
    let (po, pa) = (SendPtr(out.ptr), SendPtr(a.ptr as *mut A));
    for_each_run(shape, [out.strides, a.strides], GRAIN, #[inline(always)] |offs, len, st| {
        let (o, a) = (po.at(offs[0]), pa.at(offs[1]) as *const A);
        let (so, sa) = (st[0], st[1]);
        // SAFETY: as in map1: offsets and strides come from the operands' layouts.
        unsafe {
            let any_slow = wide(#[inline(always)] || {
                let mut any = false;
                for i in 0..len as isize {
                    any |= slow_needed(*a.offset(i * sa));
                }
                any
            });
            if any_slow {
                for i in 0..len as isize {
                    *o.offset(i * so) = slow(*a.offset(i * sa));
                }
                return;
            }
            wide(#[inline(always)] || {
                if so == 1 && sa == 1 && o as usize != a as usize {
                    let (o, a) = (std::slice::from_raw_parts_mut(o, len), std::slice::from_raw_parts(a, len));
                    for (y, &x) in o.iter_mut().zip(a) {
                        *y = fast(x);
                    }
                } else {
                    for i in 0..len as isize {
                        *o.offset(i * so) = fast(*a.offset(i * sa));
                    }
                }
            })
        }
    });
}

/// `out[i] = f(a[i], b[i])` over `shape`; `out` must not overlap the inputs, except by being
/// exactly one of them (an in-place op).
pub fn map2<A: Copy + Send + Sync, B: Copy + Send + Sync, O: Copy + Send + Sync>(
    shape: &[usize],
    out: Arg<O>,
    a: Arg<A>,
    b: Arg<B>,
    f: impl Fn(A, B) -> O + Sync + Send,
) {
    match short_rows(shape, [out.strides, a.strides, b.strides]) {
        Some(rows) => widened_rows(rows, out, a, b, f),
        // By reference, as `widened_rows` passes it: one instantiation of the walk per op.
        None => map2_walk(shape, out, a, b, &f),
    }
}

/// `out[i] = f(a[i·sa], b[i·sb])` for `i < n` in a plain loop on this thread: a tiny op's
/// contiguous operands (step 1) or numbers (step 0), where `map2`'s setup costs more than the
/// work. The output may be one of the operands (an in-place op): each element is read before
/// it is written.
///
/// # Safety
/// `out` holds `n` elements, and `a` and `b` hold the elements their steps reach.
#[inline(always)]
pub unsafe fn map2_flat<A: Copy, B: Copy, O: Copy>(n: usize, out: *mut O, a: *const A, sa: isize, b: *const B, sb: isize, f: impl Fn(A, B) -> O) {
    for i in 0..n as isize {
        *out.offset(i) = f(*a.offset(i * sa), *b.offset(i * sb));
    }
}

/// `map2`'s walk over `shape` as it is.
fn map2_walk<A: Copy + Send + Sync, B: Copy + Send + Sync, O: Copy + Send + Sync>(
    shape: &[usize],
    out: Arg<O>,
    a: Arg<A>,
    b: Arg<B>,
    f: impl Fn(A, B) -> O + Sync + Send,
) {
    let (po, pa, pb) = (SendPtr(out.ptr), SendPtr(a.ptr as *mut A), SendPtr(b.ptr as *mut B));
    let streamed = stream::wanted(shape.iter().product::<usize>() * size_of::<O>());
    for_each_run(shape, [out.strides, a.strides, b.strides], GRAIN, #[inline(always)] |offs, len, st| {
        let (o, a, b) = (po.at(offs[0]), pa.at(offs[1]) as *const A, pb.at(offs[2]) as *const B);
        // SAFETY: as in map1. Slices are made only of operands that are not the output; an
        // operand that is the output (in place) is read through the output's own pointer.
        wide(#[inline(always)] || unsafe {
            let o = o; // a local, not the captured variable, that stores cannot change
            let own = |p: usize, s: isize, size: usize| s == 1 && p == o as usize && size == size_of::<O>();
            let (own_a, own_b) = (own(a as usize, st[1], size_of::<A>()), own(b as usize, st[2], size_of::<B>()));
            if st[0] == 1 && own_a && own_b {
                for i in 0..len {
                    let p = o.add(i);
                    *p = f(*(p as *const A), *(p as *const B));
                }
            } else if st[0] == 1 && own_a && (st[2] == 0 || st[2] == 1) {
                lanes!(st[2], b, len, |b| for i in 0..len {
                    let p = o.add(i);
                    *p = f(*(p as *const A), b.at(i));
                });
            } else if st[0] == 1 && own_b && (st[1] == 0 || st[1] == 1) {
                lanes!(st[1], a, len, |a| for i in 0..len {
                    let p = o.add(i);
                    *p = f(a.at(i), *(p as *const B));
                });
            } else if st[0] == 1 && st[1..].iter().all(|&s| s == 0 || s == 1) {
                if stream::run_streams(streamed, len * size_of::<O>()) {
                    stream::write(o, len, #[inline(always)] |o, s| {
                        let (a, b) = (a.offset(s as isize * st[1]), b.offset(s as isize * st[2]));
                        lanes!(st[1], a, o.len(), |a| lanes!(st[2], b, o.len(), |b| for (i, y) in o.iter_mut().enumerate() {
                            *y = f(a.at(i), b.at(i));
                        }))
                    });
                    return;
                }
                let o = std::slice::from_raw_parts_mut(o, len);
                lanes!(st[1], a, len, |a| lanes!(st[2], b, len, |b| for (i, y) in o.iter_mut().enumerate() {
                    *y = f(a.at(i), b.at(i));
                }));
            } else {
                for i in 0..len as isize {
                    *o.offset(i * st[0]) = f(*a.offset(i * st[1]), *b.offset(i * st[2]));
                }
            }
        })
    });
}

/// Rows shorter than this are widened by `widened_rows` (each row was one run of the walk: a
/// product with an 8-wide row broadcast over 1M floats took 2.1 ms, PyTorch's 0.54).
const SHORT_ROW: usize = 64;
/// Values per widened row.
const WIDE_ROW: usize = 512;

/// `(rows, w, strides)` when `shape` is, once coalesced, `rows` dense rows of a short `w` in the
/// output, and every operand is dense the same way, one row repeated over all rows (strides
/// `[0, 1]`), or one value (`[0, 0]`); `None` otherwise, or when there is too little work to gain
/// from widening. `strides` are the operands' coalesced ones.
fn short_rows<const K: usize>(shape: &[usize], strides: [&[isize]; K]) -> Option<(usize, usize, [[isize; 2]; K])> {
    // Decided before coalescing, which drops size-1 dims and keeps the element count.
    if shape.len() < 2 || shape.iter().product::<usize>() < 4 * WIDE_ROW {
        return None;
    }
    let (shape, st) = super::strided::coalesce(shape, strides);
    if shape.len() != 2 || shape[1] >= SHORT_ROW || shape[0] * shape[1] < 4 * WIDE_ROW {
        return None;
    }
    let w = shape[1] as isize;
    let ok = st[0][..] == [w, 1] && st[1..].iter().all(|s| s[..] == [w, 1] || s[..] == [0, 1] || s[..] == [0, 0]);
    ok.then(|| (shape[0], shape[1], std::array::from_fn(|k| [st[k][0], st[k][1]])))
}

/// One operand of `widened_rows`: its pointer and strides over rows of `k·w` values. A repeated
/// row is copied `k` times into `buf`.
fn widened<T: Copy>(p: *mut T, st: [isize; 2], w: usize, k: usize, buf: &mut Vec<T>) -> (*mut T, [isize; 2]) {
    match st {
        [0, 1] => {
            // SAFETY: a repeated operand holds one row of w values at p.
            *buf = unsafe { std::slice::from_raw_parts(p, w) }.repeat(k);
            (buf.as_mut_ptr(), [0, 1])
        }
        [0, 0] => (p, [0, 0]),
        _ => (p, [(k * w) as isize, 1]),
    }
}

/// `map2` over `rows` rows of a short `w` (as `short_rows` found them, with strides `st`), as
/// rows of `k·w` values so that each run of the walk is long. The rows left over (fewer than
/// `k`) keep their width.
fn widened_rows<A: Copy + Send + Sync, B: Copy + Send + Sync, O: Copy + Send + Sync>(
    (rows, w, st): (usize, usize, [[isize; 2]; 3]),
    out: Arg<O>,
    a: Arg<A>,
    b: Arg<B>,
    f: impl Fn(A, B) -> O + Sync + Send,
) {
    let k = WIDE_ROW / w;
    let (mut va, mut vb) = (Vec::new(), Vec::new());
    let (pa, sa) = widened(a.ptr, st[1], w, k, &mut va);
    let (pb, sb) = widened(b.ptr, st[2], w, k, &mut vb);
    let so = [(k * w) as isize, 1];
    map2_walk(&[rows / k, k * w], Arg::new(out.ptr, &so), Arg::new(pa, &sa), Arg::new(pb, &sb), &f);
    if rows % k > 0 {
        // The last rows start this far in wherever an operand is dense.
        let done = (rows / k * k) as isize;
        let at = |st: [isize; 2]| done * st[0];
        map2_walk(
            &[rows % k, w],
            Arg::new(out.ptr.wrapping_offset(at(st[0])), &st[0]),
            Arg::new(a.ptr.wrapping_offset(at(st[1])), &st[1]),
            Arg::new(b.ptr.wrapping_offset(at(st[2])), &st[2]),
            &f,
        );
    }
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
    let streamed = stream::wanted(shape.iter().product::<usize>() * size_of::<O>());
    for_each_run(shape, [out.strides, a.strides, b.strides, c.strides], GRAIN, #[inline(always)] |offs, len, st| {
        let (o, a, b, c) = (po.at(offs[0]), pa.at(offs[1]), pb.at(offs[2]), pc.at(offs[3]));
        // SAFETY: offsets/strides come from the operands' own layouts; output runs are disjoint.
        // Runs whose operands are each contiguous or a broadcast scalar index slices, so that
        // LLVM vectorises them (a `where` then becomes a blend, not a mispredicted branch).
        wide(#[inline(always)] || unsafe {
            if st[0] == 1 && st[1..].iter().all(|&s| s == 0 || s == 1) {
                if stream::run_streams(streamed, len * size_of::<O>()) {
                    stream::write(o, len, #[inline(always)] |o, s| {
                        let (a, b, c) = (a.offset(s as isize * st[1]), b.offset(s as isize * st[2]), c.offset(s as isize * st[3]));
                        lanes!(st[1], a as *const A, o.len(), |a| lanes!(st[2], b as *const B, o.len(), |b| lanes!(st[3], c as *const C, o.len(), |c| {
                            for (i, y) in o.iter_mut().enumerate() {
                                *y = f(a.at(i), b.at(i), c.at(i));
                            }
                        })));
                    });
                    return;
                }
                let o = std::slice::from_raw_parts_mut(o, len);
                lanes!(st[1], a as *const A, len, |a| lanes!(st[2], b as *const B, len, |b| lanes!(st[3], c as *const C, len, |c| {
                    for (i, y) in o.iter_mut().enumerate() {
                        *y = f(a.at(i), b.at(i), c.at(i));
                    }
                })));
            } else {
                for i in 0..len as isize {
                    *o.offset(i * st[0]) = f(*a.offset(i * st[1]), *b.offset(i * st[2]), *c.offset(i * st[3]));
                }
            }
        })
    });
}
