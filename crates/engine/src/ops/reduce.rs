//! Reductions: sum, mean, prod, amax/amin, max/min (with indices), argmax/argmin, all/any.

use crate::dispatch;
use crate::dtype::{DType, Element, Scalar};
use crate::error::{index_err, Error, Result};
use crate::kernels::num::{Float, Num};
use crate::kernels::reduce::{column_block, fold, fold_columns, fold_runs, prod_run, row_block, sum_run};
use crate::kernels::reduce16::{self, Term};
use crate::kernels::simd;
use crate::kernels::strided::SendPtr;
use crate::layout::{wrap_dim, Dims};
use crate::ops::cast::to_dtype;
use crate::parallel;
use crate::tensor::Tensor;

/// Which dims to reduce; `None` or an empty list means all of them (PyTorch's convention).
pub fn reduced_mask(ndim: usize, dims: Option<&[i64]>) -> Result<Vec<bool>> {
    let mut mask = vec![false; ndim];
    match dims {
        None | Some([]) => mask.iter_mut().for_each(|m| *m = true),
        Some(ds) => {
            for &d in ds {
                let w = wrap_dim(d, ndim)?;
                if ndim == 0 {
                    continue;
                }
                if mask[w] {
                    return Err(Error::Runtime(format!("dim {w} appears multiple times in the list of dims")));
                }
                mask[w] = true;
            }
        }
    }
    Ok(mask)
}

fn out_shape(shape: &[usize], mask: &[bool], keepdim: bool) -> Dims {
    shape
        .iter()
        .zip(mask)
        .filter_map(|(&d, &r)| if r { keepdim.then_some(1) } else { Some(d) })
        .collect()
}

/// Builds a tensor of `dtype` from accumulators.
fn from_accs<A: Copy>(accs: Vec<A>, shape: &[usize], dtype: DType, conv: impl Fn(A) -> Scalar) -> Result<Tensor> {
    dispatch!(dtype, O => Tensor::from_vec(accs.into_iter().map(|a| O::from_scalar(conv(a))).collect::<Vec<O>>(), shape))
}

/// Sum-like reductions: floats accumulate in f64, ints and bools in wrapping i64 (and return
/// int64 unless `dtype` says otherwise), as PyTorch's sum and prod do.
fn accumulate(
    t: &Tensor,
    dims: Option<&[i64]>,
    keepdim: bool,
    dtype: Option<DType>,
    identity: i64,
    float_op: fn(f64, f64) -> f64,
    int_op: fn(i64, i64) -> i64,
) -> Result<Tensor> {
    let src = match dtype {
        Some(d) => to_dtype(t, d),
        None => t.clone(),
    };
    let dt = src.dtype();
    let out_dt = dtype.unwrap_or(if dt.is_float() { dt } else { DType::I64 });
    let mask = reduced_mask(src.ndim(), dims)?;
    let shape = out_shape(&src.shape(), &mask, keepdim);
    let v = src.view();
    // sum and prod (identity 0 and 1) of float32/float64: the lane kernels.
    let lanes = match (dt, identity) {
        (DType::F32 | DType::F64, 0) => Some(float_only_sum(&v, &mask, dt)),
        (DType::F32, 1) => Some(float_prod_of::<f32>(&v, &mask)),
        (DType::F64, 1) => Some(float_prod_of::<f64>(&v, &mask)),
        _ => None,
    };
    if let Some(accs) = lanes {
        from_accs(accs, &shape, out_dt, Scalar::Float)
    } else if dt.is_float() {
        let accs = dispatch!(dt, T => fold::<T, f64>(&v, &mask, identity as f64, move |a, x| float_op(a, x.cast::<f64>()), float_op));
        from_accs(accs, &shape, out_dt, Scalar::Float)
    } else {
        let accs = dispatch!(dt, T => fold::<T, i64>(&v, &mask, identity, move |a, x| int_op(a, x.cast::<i64>()), int_op));
        from_accs(accs, &shape, out_dt, Scalar::Int)
    }
}

/// f64 sums of a float32/float64 view over the `mask` dims.
fn float_only_sum(v: &crate::tensor::View, mask: &[bool], dt: DType) -> Vec<f64> {
    if dt == DType::F32 {
        float_sum_of::<f32>(v, mask, Term::Value)
    } else {
        float_sum_of::<f64>(v, mask, Term::Value)
    }
}

/// `Σ term(x)` in f64 over the `mask` dims of a float view, in one pass.
fn float_sum_of<T: Float>(v: &crate::tensor::View, mask: &[bool], term: Term) -> Vec<f64> {
    match term {
        Term::Value => sum_with(v, mask, term, |x: T| x),
        Term::Abs => sum_with(v, mask, term, |x: T| x.abs()),
        Term::Square => sum_with(v, mask, term, |x: T| x.mul(x)),
        Term::Deviation(c) => sum_with(v, mask, term, move |x: T| {
            let d = x.sub(T::from_f64(c as f64));
            d.mul(d)
        }),
    }
}

/// `float_sum_of` with `term` as the closure `g` too (the portable loops take it inlined).
/// Contiguous float32 rows go to `reduce16::sum_rows` where it takes them (AVX-512; AVX2 for
/// rows of 32 to 1024).
fn sum_with<T: Float>(v: &crate::tensor::View, mask: &[bool], term: Term, g: impl Fn(T) -> T + Copy + Sync + Send) -> Vec<f64> {
    let add = |a: f64, b: f64| a + b;
    if let Some(block) = column_block(v, mask) {
        return fold_columns::<T, f64>(v, block, 0.0, move |a, x| a + g(x).into(), add);
    }
    if T::DTYPE == DType::F32 {
        if let Some((rows, rs, len)) = row_block(v, mask).filter(|b| reduce16::sum_rows_supported(b.2)) {
            let (mut out, p) = (vec![0f64; rows], SendPtr(v.ptr::<f32>()));
            split_rows(&mut out, len, |part, r0| {
                reduce16::sum_rows(part, p.at(r0 as isize * rs), rs, len, term);
            });
            return out;
        }
    }
    let run = move |acc: f64, p: *const T, len: usize, st: isize| {
        if st == 1 && T::DTYPE == DType::F32 {
            if let Some(s) = reduce16::sum(acc, p as *const f32, len, term) {
                return s;
            }
        }
        sum_run(acc, p, len, st, g)
    };
    fold_runs::<T, f64>(v, mask, 0.0, run, add)
}

/// Runs `f(outputs, first_row)` over ranges of `out`'s rows (`len` values each), split across
/// threads.
fn split_rows<A: Copy + Send>(out: &mut [A], len: usize, f: impl Fn(&mut [A], usize) + Sync + Send) {
    let rows = out.len();
    let chunks = parallel::chunks_for(rows * len.max(1), parallel::GRAIN).min(rows).max(1);
    let po = SendPtr(out.as_mut_ptr());
    parallel::for_chunks(chunks, |c| {
        let (r0, r1) = (c * rows / chunks, (c + 1) * rows / chunks);
        // SAFETY: chunk c owns rows r0..r1 of `out`.
        f(unsafe { std::slice::from_raw_parts_mut(po.at(r0 as isize), r1 - r0) }, r0);
    });
}

/// float32 `var`/`std` without temporaries where the reduction is every dim or a block of rows
/// (`row_block`): the mean, then the squared deviations from it (`Term::Deviation`). The
/// composed form (mean, subtract, square, sum) made two 64 MB temporaries for 16M floats: 0.65×
/// PyTorch. `None` for other dtypes and layouts.
pub fn var_f32(t: &Tensor, mask: &[bool], keepdim: bool, correction: f64, std: bool) -> Option<Result<Tensor>> {
    if t.dtype() != DType::F32 {
        return None;
    }
    let (v, shape) = (t.view(), out_shape(&t.shape(), mask, keepdim));
    let finish = move |q: f64, n: usize| {
        let var = q / (n as f64 - correction).max(0.0);
        (if std { var.sqrt() } else { var }) as f32
    };
    if mask.iter().all(|&m| m) {
        let total = |term| float_sum_of::<f32>(&v, mask, term).first().copied().unwrap_or(0.0);
        let mean = total(Term::Value) / t.numel() as f64;
        return Some(Tensor::from_vec(vec![finish(total(Term::Deviation(mean as f32)), t.numel())], &shape));
    }
    if !simd::has_avx512() {
        return None;
    }
    let (rows, rs, len) = row_block(&v, mask)?;
    let (mut out, p) = (vec![0f32; rows], SendPtr(v.ptr::<f32>()));
    split_rows(&mut out, len, |part, r0| {
        for (i, o) in part.iter_mut().enumerate() {
            let row = p.at((r0 + i) as isize * rs) as *const f32;
            let mean = reduce16::sum(0.0, row, len, Term::Value).unwrap_or(0.0) / len as f64;
            *o = finish(reduce16::sum(0.0, row, len, Term::Deviation(mean as f32)).unwrap_or(0.0), len);
        }
    });
    Some(Tensor::from_vec(out, &shape))
}

/// `Π x` in f64 over the `mask` dims of a float view.
fn float_prod_of<T: Float>(v: &crate::tensor::View, mask: &[bool]) -> Vec<f64> {
    let mul = |a: f64, b: f64| a * b;
    if let Some(block) = column_block(v, mask) {
        return fold_columns::<T, f64>(v, block, 1.0, move |a, x| a * x.into(), mul);
    }
    fold_runs::<T, f64>(v, mask, 1.0, prod_run, mul)
}

/// `Σ |x|` (`square`: `Σ x²`) over `dims` of a float32/float64 tensor in one pass, in its dtype:
/// the 1- and 2-norms without the temporaries of `abs` and `mul` (a 16M-element 2-norm read and
/// wrote 192 MB more).
pub fn sum_abs_or_square(t: &Tensor, dims: Option<&[i64]>, keepdim: bool, square: bool) -> Result<Tensor> {
    let dt = t.dtype();
    let mask = reduced_mask(t.ndim(), dims)?;
    let shape = out_shape(&t.shape(), &mask, keepdim);
    let v = t.view();
    let accs = match (dt, square) {
        (DType::F32, true) => float_sum_of::<f32>(&v, &mask, Term::Square),
        (DType::F32, false) => float_sum_of::<f32>(&v, &mask, Term::Abs),
        (DType::F64, true) => float_sum_of::<f64>(&v, &mask, Term::Square),
        (DType::F64, false) => float_sum_of::<f64>(&v, &mask, Term::Abs),
        _ => return Err(Error::Runtime(format!("sum_abs_or_square: expected float32 or float64, got {dt}"))),
    };
    from_accs(accs, &shape, dt, Scalar::Float)
}

/// `sum(dim, keepdim, dtype)`.
pub fn sum(t: &Tensor, dims: Option<&[i64]>, keepdim: bool, dtype: Option<DType>) -> Result<Tensor> {
    accumulate(t, dims, keepdim, dtype, 0, |a, b| a + b, i64::wrapping_add)
}

/// `mean`: float dtypes only, as in PyTorch.
pub fn mean(t: &Tensor, dims: Option<&[i64]>, keepdim: bool, dtype: Option<DType>) -> Result<Tensor> {
    let dt = dtype.unwrap_or(t.dtype());
    if !dt.is_float() {
        return Err(Error::Runtime(format!(
            "mean(): could not infer output dtype. Input dtype must be either a floating point or complex dtype. Got: {dt}"
        )));
    }
    let src = to_dtype(t, dt);
    let mask = reduced_mask(src.ndim(), dims)?;
    let count: usize = src.shape().iter().zip(&mask).filter(|(_, &r)| r).map(|(&d, _)| d).product();
    let shape = out_shape(&src.shape(), &mask, keepdim);
    let v = src.view();
    let accs = if matches!(dt, DType::F32 | DType::F64) {
        float_only_sum(&v, &mask, dt)
    } else {
        dispatch!(dt, T => fold::<T, f64>(&v, &mask, 0.0, |a, x| a + x.cast::<f64>(), |a, b| a + b))
    };
    from_accs(accs, &shape, dt, |s| Scalar::Float(s / count as f64))
}

/// `prod(dim, keepdim, dtype)`.
pub fn prod(t: &Tensor, dims: Option<&[i64]>, keepdim: bool, dtype: Option<DType>) -> Result<Tensor> {
    accumulate(t, dims, keepdim, dtype, 1, |a, b| a * b, i64::wrapping_mul)
}

fn check_nonempty(t: &Tensor, mask: &[bool], name: &str) -> Result<()> {
    let shape = t.shape();
    if t.numel() == 0 {
        if shape.is_empty() || mask.iter().all(|&m| m) {
            return Err(Error::Runtime(format!(
                "{name}(): Expected reduction dim to be specified for input.numel() == 0. Specify the reduction dim with the 'dim' argument."
            )));
        }
        if let Some(d) = (0..shape.len()).find(|&d| mask[d] && shape[d] == 0) {
            return index_err(format!("{name}(): Expected reduction dim {d} to have non-zero size."));
        }
    }
    Ok(())
}

/// `amax`/`amin` (and `max()`/`min()` without dim): values only, NaN propagates.
pub fn extreme(t: &Tensor, dims: Option<&[i64]>, keepdim: bool, is_max: bool) -> Result<Tensor> {
    let mask = reduced_mask(t.ndim(), dims)?;
    check_nonempty(t, &mask, if is_max { "max" } else { "min" })?;
    let shape = out_shape(&t.shape(), &mask, keepdim);
    let v = t.view();
    match (t.dtype(), is_max) {
        (DType::F32, true) => return Tensor::from_vec(extreme_float::<f32, true>(&v, &mask), &shape),
        (DType::F32, false) => return Tensor::from_vec(extreme_float::<f32, false>(&v, &mask), &shape),
        (DType::F64, true) => return Tensor::from_vec(extreme_float::<f64, true>(&v, &mask), &shape),
        (DType::F64, false) => return Tensor::from_vec(extreme_float::<f64, false>(&v, &mask), &shape),
        _ => {}
    }
    dispatch!(t.dtype(), T => {
        let pick = move |a: Option<T>, x: T| -> Option<T> {
            match a {
                None => Some(x),
                Some(b) => Some(if (is_max && x.gt_nan(b)) || (!is_max && x.lt_nan(b)) { x } else { b }),
            }
        };
        let accs = fold::<T, Option<T>>(&v, &mask, None, pick, move |a, b| match b { Some(x) => pick(a, x), None => a });
        Tensor::from_vec(accs.into_iter().map(|a| a.unwrap_or_default()).collect::<Vec<T>>(), &shape)
    })
}

/// `amax`/`amin` of a float view: ±inf-started accumulators that a NaN takes over (`gt_nan`),
/// 32 of them across a contiguous run (one running extreme is a serial chain, and the
/// `Option` start of the generic fold kept it from vectorising: 12× PyTorch's time on rows of
/// 4096), a row of them over a `column_block`.
fn extreme_float<T: Float, const MAX: bool>(v: &crate::tensor::View, mask: &[bool]) -> Vec<T> {
    let init = T::from_f64(if MAX { f64::NEG_INFINITY } else { f64::INFINITY });
    let pick = |a: T, x: T| if (MAX && x.gt_nan(a)) || (!MAX && x.lt_nan(a)) { x } else { a };
    if let Some(block) = column_block(v, mask) {
        return fold_columns::<T, T>(v, block, init, pick, pick);
    }
    if T::DTYPE == DType::F32 && simd::has_avx512() {
        if let Some((rows, rs, len)) = row_block(v, mask).filter(|b| b.2 > 0) {
            let (mut out, p) = (vec![init; rows], SendPtr(v.ptr::<f32>()));
            split_rows(&mut out, len, |part, r0| {
                // SAFETY: T is f32 (its dtype is).
                let part = unsafe { std::slice::from_raw_parts_mut(part.as_mut_ptr() as *mut f32, part.len()) };
                reduce16::extreme_rows::<MAX>(part, p.at(r0 as isize * rs), rs, len);
            });
            return out;
        }
    }
    let run = |acc: T, p: *const T, len: usize, stride: isize| -> T {
        // SAFETY: fold_runs hands out runs inside the view.
        unsafe {
            if stride != 1 {
                return (0..len as isize).fold(acc, |a, i| pick(a, *p.offset(i * stride)));
            }
            if T::DTYPE == DType::F32 && len > 0 {
                if let Some(e) = reduce16::extreme::<MAX>(p as *const f32, len) {
                    return pick(acc, T::from_f64(e as f64));
                }
            }
            let s = std::slice::from_raw_parts(p, len);
            crate::kernels::simd::wide(#[inline(always)] || {
                // A plain compare-and-select per lane (one vmaxps/vminps), NaNs noted on the side
                // as all-ones flags, and the lanes combined the same way as a tree. IEEE maxNum
                // (`f32::max`, which skips NaNs) costs a compare and a blend more per vector, and as
                // the tree's step it kept the tree scalar: 36 against 59 GB/s on rows of 4096 in
                // L2, 31 against 10 ns on rows of 32. One running extreme, with the rest, is a
                // chain of 32+ dependent picks (rows of 8: 80 ns, PyTorch 10); a NaN `acc`
                // (an earlier run's) survives through `pick`, and `sel` over runs under 32.
                let sel = |a: T, b: T| if (MAX && b > a) || (!MAX && b < a) { b } else { a };
                if len < 32 {
                    let (mut r, mut nan) = (acc, false);
                    for &x in s {
                        r = sel(r, x);
                        #[allow(clippy::eq_op)]
                        let is_nan = x != x;
                        nan |= is_nan;
                    }
                    return if nan { T::from_f64(f64::NAN) } else { r };
                }
                let (mut lanes, mut nan) = ([acc; 32], [0i32; 32]);
                let mut blocks = s.chunks_exact(32);
                for blk in &mut blocks {
                    for i in 0..32 {
                        let x = blk[i];
                        lanes[i] = sel(lanes[i], x);
                        #[allow(clippy::eq_op)]
                        let is_nan = x != x;
                        nan[i] |= -(is_nan as i32);
                    }
                }
                let mut r = pick(acc, crate::kernels::reduce::pairwise(lanes, sel));
                for &x in blocks.remainder() {
                    r = pick(r, x);
                }
                let mut any_nan = 0;
                for f in nan {
                    any_nan |= f;
                }
                if any_nan != 0 { T::from_f64(f64::NAN) } else { r }
            })
        }
    };
    fold_runs::<T, T>(v, mask, init, run, pick)
}

/// `max(dim)`/`min(dim)`/`argmax`/`argmin`: the first extreme element's value and index.
pub fn extreme_with_index(t: &Tensor, dim: i64, keepdim: bool, is_max: bool) -> Result<(Tensor, Tensor)> {
    let nd = t.ndim();
    let d = wrap_dim(dim, nd)?;
    let mut mask = vec![false; nd];
    if nd > 0 {
        mask[d] = true;
    }
    let shape = t.shape();
    if nd > 0 && shape[d] == 0 {
        return index_err(format!(
            "{}(): Expected reduction dim {d} to have non-zero size.",
            if is_max { "max" } else { "min" }
        ));
    }
    let out = out_shape(&shape, &mask, keepdim);
    let v = t.view();
    if nd > 0 && d == nd - 1 && t.dtype() == DType::F32 && v.layout.is_contiguous() {
        return rows_extreme_f32(&v, shape[d], &out, is_max);
    }
    dispatch!(t.dtype(), T => {
        // (best value, its index, elements seen): chunks combine in order, shifting indices.
        type Acc<T> = (T, i64, i64);
        let better = move |x: T, b: T| (is_max && x.gt_nan(b)) || (!is_max && x.lt_nan(b));
        let step = move |(b, bi, n): Acc<T>, x: T| if n == 0 || better(x, b) { (x, n, n + 1) } else { (b, bi, n + 1) };
        let join = move |l: Acc<T>, r: Acc<T>| {
            if r.2 == 0 { l } else if l.2 == 0 || better(r.0, l.0) { (r.0, r.1 + l.2, l.2 + r.2) } else { (l.0, l.1, l.2 + r.2) }
        };
        let accs = fold::<T, Acc<T>>(&v, &mask, (T::zero(), 0, 0), step, join);
        let vals = Tensor::from_vec(accs.iter().map(|a| a.0).collect::<Vec<T>>(), &out)?;
        let idx = Tensor::from_vec(accs.iter().map(|a| a.1).collect::<Vec<i64>>(), &out)?;
        Ok((vals, idx))
    })
}

/// `max(dim=-1)`/`min(dim=-1)` of a dense float32 tensor: per row, the extreme in sixteen lanes
/// (a single running max is a serial chain), then the first position holding it; a NaN
/// anywhere wins, at its first position, as in PyTorch.
fn rows_extreme_f32(v: &crate::tensor::View, len: usize, out: &[usize], is_max: bool) -> Result<(Tensor, Tensor)> {
    use crate::kernels::strided::SendPtr;
    let rows = v.layout.numel() / len;
    let (vals, idx) = (Tensor::uninit(out, DType::F32), Tensor::uninit(out, DType::I64));
    let (src, pv, pi) = (SendPtr(v.ptr::<f32>()), SendPtr(vals.view().ptr::<f32>()), SendPtr(idx.view().ptr::<i64>()));
    let chunks = crate::parallel::chunks_for(rows * len, crate::parallel::GRAIN).min(rows);
    crate::parallel::for_chunks(chunks, |c| {
        crate::kernels::simd::wide(#[inline(always)] || {
            for r in c * rows / chunks..(c + 1) * rows / chunks {
                // SAFETY: row r of a dense tensor of `rows` rows of `len`; outputs have `rows` slots.
                let row = unsafe { std::slice::from_raw_parts(src.at((r * len) as isize), len) };
                // Two vector scans with AVX-512: the extreme, then its first position.
                let e = if is_max { reduce16::extreme::<true>(row.as_ptr(), len) } else { reduce16::extreme::<false>(row.as_ptr(), len) };
                if let Some(at) = e.and_then(|m| reduce16::first_index(row.as_ptr(), len, m)) {
                    let at = at.min(len - 1);
                    unsafe {
                        *pv.at(r as isize) = row[at];
                        *pi.at(r as isize) = at as i64;
                    }
                    continue;
                }
                let (mut lm, mut nan) = ([row[0]; 16], [false; 16]);
                let blocks = row.chunks_exact(16);
                let rest = blocks.remainder();
                for b in blocks {
                    for i in 0..16 {
                        let better = if is_max { b[i] > lm[i] } else { b[i] < lm[i] };
                        lm[i] = if better { b[i] } else { lm[i] };
                        nan[i] |= b[i].is_nan();
                    }
                }
                let mut m = row[0];
                let mut any_nan = nan.iter().any(|&n| n);
                for &x in lm.iter().chain(rest) {
                    m = if (is_max && x > m) || (!is_max && x < m) { x } else { m };
                    any_nan |= x.is_nan();
                }
                let at = if any_nan { row.iter().position(|x| x.is_nan()) } else { row.iter().position(|&x| x == m) };
                let at = at.unwrap_or(0);
                unsafe {
                    *pv.at(r as isize) = row[at];
                    *pi.at(r as isize) = at as i64;
                }
            }
        })
    });
    Ok((vals, idx))
}

/// `argmax`/`argmin` over a dim, or over the flattened tensor when `dim` is None.
pub fn arg_extreme(t: &Tensor, dim: Option<i64>, keepdim: bool, is_max: bool) -> Result<Tensor> {
    match dim {
        Some(d) => Ok(extreme_with_index(t, d, keepdim, is_max)?.1),
        None => {
            if t.numel() == 0 {
                return index_err(format!(
                    "{}(): Expected reduction dim to be specified for input.numel() == 0.",
                    if is_max { "argmax" } else { "argmin" }
                ));
            }
            let flat = crate::ops::shape::reshape(t, &[-1])?;
            let (_, i) = extreme_with_index(&flat, 0, false, is_max)?;
            if keepdim {
                let ones: Vec<i64> = vec![1; t.ndim()];
                return crate::ops::shape::reshape(&i, &ones);
            }
            Ok(i)
        }
    }
}

/// `all`/`any` (bool result).
pub fn all_any(t: &Tensor, dims: Option<&[i64]>, keepdim: bool, is_all: bool) -> Result<Tensor> {
    let mask = reduced_mask(t.ndim(), dims)?;
    let shape = out_shape(&t.shape(), &mask, keepdim);
    let v = t.view();
    let accs = dispatch!(t.dtype(), T => fold::<T, bool>(&v, &mask, is_all,
        move |a, x| if is_all { a && x.cast::<bool>() } else { a || x.cast::<bool>() },
        move |a, b| if is_all { a && b } else { a || b }));
    Tensor::from_vec(accs, &shape)
}

/// Whole-tensor equality of shape and values (`torch.equal`).
pub fn equal(a: &Tensor, b: &Tensor) -> Result<bool> {
    if a.shape() != b.shape() {
        return Ok(false);
    }
    let eq = crate::ops::elementwise::binary(crate::ops::elementwise::BinaryOp::Eq, a.into(), b.into())?;
    Ok(all_any(&eq, None, false, true)?.item()? == Scalar::Bool(true))
}

/// `allclose(a, b, rtol, atol, equal_nan)`.
pub fn allclose(a: &Tensor, b: &Tensor, rtol: f64, atol: f64, equal_nan: bool) -> Result<bool> {
    let sa = a.shape();
    let sb = b.shape();
    crate::layout::broadcast_shapes(&sa, &sb)?;
    if a.dtype() != b.dtype() {
        return Err(Error::Runtime(format!("{} did not match {}", a.dtype(), b.dtype())));
    }
    let (x, y) = (to_dtype(a, DType::F64), to_dtype(b, DType::F64));
    let (vx, vy) = (x.view(), y.view());
    let shape = crate::layout::broadcast_shapes(&sa, &sb)?;
    let (lx, ly) = (vx.layout.broadcast_to(&shape)?, vy.layout.broadcast_to(&shape)?);
    let ok = Tensor::uninit(&shape, DType::Bool);
    let ov = ok.view();
    crate::kernels::map::map2::<f64, f64, bool>(
        &shape,
        crate::kernels::map::Arg::new(ov.ptr::<bool>(), &ov.layout.strides),
        crate::kernels::map::Arg::new(vx.ptr::<f64>(), &lx.strides),
        crate::kernels::map::Arg::new(vy.ptr::<f64>(), &ly.strides),
        move |p, q| {
            if p.is_nan() || q.is_nan() {
                return equal_nan && p.is_nan() && q.is_nan();
            }
            p == q || (p - q).abs() <= atol + rtol * q.abs()
        },
    );
    Ok(all_any(&ok, None, false, true)?.item()? == Scalar::Bool(true))
}
