//! `softmax` / `log_softmax` along one dim as one fused kernel: each line (the elements along
//! `dim` for one position of the other dims) is read for its max, again for the sum of
//! exponentials of the shifted values, and written once — numerically stable, no temporaries.

use crate::error::Result;
use crate::kernels::num::Float;
use crate::kernels::vmath::{exp_f32, log_f32};
use crate::kernels::reduce16::{self, Term};
use crate::kernels::vmath16;
use crate::kernels::strided::SendPtr;
use crate::ops::conv::float_only;
use crate::parallel;
use crate::tensor::Tensor;

/// Softmax (or log-softmax) of a float tensor along `dim` (already wrapped, `x.ndim() >= 1`).
pub fn softmax(x: &Tensor, dim: usize, log: bool) -> Result<Tensor> {
    let x = x.contiguous();
    let shape = x.shape();
    let d = shape[dim];
    let inner: usize = shape[dim + 1..].iter().product();
    let outer: usize = shape[..dim].iter().product();
    let out = Tensor::uninit(&shape, x.dtype());
    if inner == 1 && x.dtype() == crate::dtype::DType::F32 {
        // Rows along the last dim: slices, float32 arithmetic, vectorised exp.
        let (src, dst) = (SendPtr(x.view().ptr::<f32>()), SendPtr(out.view().ptr::<f32>()));
        let chunks = parallel::chunks_for(outer * d, parallel::GRAIN).min(outer.max(1));
        parallel::for_chunks(chunks, |c| {
            crate::kernels::simd::wide(#[inline(always)] || {
                let lines = c * outer / chunks..(c + 1) * outer / chunks;
                if d < SHORT_ROW && d > 0 {
                    let (at, len) = ((lines.start * d) as isize, lines.len() * d);
                    // SAFETY: these lines' values in each dense tensor, owned by this chunk.
                    let (s, o) = unsafe { (std::slice::from_raw_parts(src.at(at), len), std::slice::from_raw_parts_mut(dst.at(at), len)) };
                    return short_rows_softmax_f32(s, o, d, log);
                }
                for line in lines {
                    // SAFETY: line `line` of d values in each dense tensor, owned by this chunk.
                    let (s, o) = unsafe { (std::slice::from_raw_parts(src.at((line * d) as isize), d), std::slice::from_raw_parts_mut(dst.at((line * d) as isize), d)) };
                    row_softmax_f32(s, o, log);
                }
            })
        });
        return Ok(out);
    }
    if inner > 1 && x.dtype() == crate::dtype::DType::F32 {
        columns_softmax_f32(&x, &out, outer, d, inner, log);
        return Ok(out);
    }
    float_only!(x.dtype(), "softmax", T => {
        let (src, dst) = (SendPtr(x.view().ptr::<T>()), SendPtr(out.view().ptr::<T>()));
        let lines = outer * inner;
        let chunks = parallel::chunks_for(lines * d, parallel::GRAIN).min(lines.max(1));
        parallel::for_chunks(chunks, |c| {
            for line in c * lines / chunks..(c + 1) * lines / chunks {
                let (o, i) = (line / inner.max(1), line % inner.max(1));
                let base = (o * d * inner + i) as isize;
                // SAFETY: base + k·inner for k < d stays inside this line of the dense tensors.
                let at = |k: usize| unsafe { *src.at(base + (k * inner) as isize) };
                let put = |k: usize, v: T| unsafe { *dst.at(base + (k * inner) as isize) = v };
                line_softmax::<T>(d, at, put, log);
            }
        });
        Ok(())
    })?;
    Ok(out)
}

#[inline(always)]
fn line_softmax<T: Float>(d: usize, at: impl Fn(usize) -> T, put: impl Fn(usize, T), log: bool) {
    let mut m = f64::NEG_INFINITY;
    for k in 0..d {
        let v: f64 = at(k).into();
        if v > m || v.is_nan() {
            m = v;
        }
    }
    // Shifting by an infinite max gives NaN for the line, as PyTorch does.
    let shift = m;
    let mut sum = 0.0f64;
    for k in 0..d {
        let v: f64 = at(k).into();
        sum += (v - shift).exp();
    }
    if log {
        let ls = sum.ln();
        for k in 0..d {
            let v: f64 = at(k).into();
            put(k, T::from_f64(v - shift - ls));
        }
    } else {
        for k in 0..d {
            let v: f64 = at(k).into();
            put(k, T::from_f64((v - shift).exp() / sum));
        }
    }
}

/// Softmax along a dim with others after it (`dim=0` of a matrix, the classes of an N×C×H×W
/// map) of a dense float32 tensor: for each outer index and block of up to 256 inner columns,
/// the d rows are folded into per-column maxima, then exponentials and sums, then one scaling
/// pass, all vectorised across the columns. Per column, one line at a time in float64 with a
/// libm `exp` read each element a cache line apart: 29 ms for 1024², PyTorch 1.4–1.7 ms.
fn columns_softmax_f32(x: &Tensor, out: &Tensor, outer: usize, d: usize, inner: usize, log: bool) {
    const W: usize = 256;
    let blocks = inner.div_ceil(W);
    let jobs = outer * blocks;
    let (src, dst) = (SendPtr(x.view().ptr::<f32>()), SendPtr(out.view().ptr::<f32>()));
    let chunks = parallel::chunks_for(outer * d * inner, parallel::GRAIN).min(jobs.max(1));
    parallel::for_chunks(chunks, |c| {
        crate::kernels::simd::wide(#[inline(always)] || {
            let (mut m, mut sum, mut nan) = ([0f32; W], [0f32; W], [false; W]);
            for job in c * jobs / chunks..(c + 1) * jobs / chunks {
                let (o, b) = (job / blocks, job % blocks);
                let (j0, w) = (b * W, W.min(inner - b * W));
                let at = |k: usize| ((o * d + k) * inner + j0) as isize;
                let (m, sum, nan) = (&mut m[..w], &mut sum[..w], &mut nan[..w]);
                m.fill(f32::NEG_INFINITY);
                sum.fill(0.0);
                nan.fill(false);
                // SAFETY: row k of this block is w values at `at(k)` in each dense tensor; the
                // block (o, columns j0..j0+w) of the output belongs to this job.
                let row = |k: usize| unsafe { std::slice::from_raw_parts(src.at(at(k)), w) };
                let orow = |k: usize| unsafe { std::slice::from_raw_parts_mut(dst.at(at(k)), w) };
                for k in 0..d {
                    for ((mj, nj), &v) in m.iter_mut().zip(nan.iter_mut()).zip(row(k)) {
                        *mj = if v > *mj { v } else { *mj };
                        *nj |= v.is_nan();
                    }
                }
                for k in 0..d {
                    for (((e, sj), &mj), &v) in orow(k).iter_mut().zip(sum.iter_mut()).zip(m.iter()).zip(row(k)) {
                        *e = exp_f32(v - mj);
                        *sj += *e;
                    }
                }
                // A NaN in a column makes the column NaN, as PyTorch (and the rows above) do.
                for ((sj, &mj), &nj) in sum.iter_mut().zip(m.iter()).zip(nan.iter()) {
                    let f = if log { mj + (*sj as f64).ln() as f32 } else { 1.0 / *sj };
                    *sj = if nj { f32::NAN } else { f };
                }
                for k in 0..d {
                    if log {
                        for ((y, &v), &sh) in orow(k).iter_mut().zip(row(k)).zip(sum.iter()) {
                            *y = v - sh;
                        }
                    } else {
                        for (y, &r) in orow(k).iter_mut().zip(sum.iter()) {
                            *y *= r;
                        }
                    }
                }
            }
        })
    });
}

/// Rows shorter than this take `short_rows_softmax_f32`; from `LANES_FROM` values on, its
/// rows' max and sum run in sixteen lanes (below, the lanes' setup and fold cost more than the
/// serial chain).
const SHORT_ROW: usize = 256;
const LANES_FROM: usize = 32;

/// Softmax (or log-softmax) of contiguous float32 rows of `d < SHORT_ROW` values, 256 rows at a
/// time: each row's max (NaN if it holds one, so that the row comes out NaN), then the shifted
/// values, their exponentials and the rows' logarithms as flat loops over the block, which
/// vectorise whatever `d` is. One row at a time, rows of 10 (a classifier's logits) took 74 ns
/// each for log-softmax, a libm `ln` and two horizontal reductions for ten values (PyTorch:
/// 30 ns). The sums run in order along the row, as the long rows' short tails do; the log is
/// `vmath::log_f32` (within an ulp) where long rows take float64's.
#[inline(always)]
fn short_rows_softmax_f32(s: &[f32], o: &mut [f32], d: usize, log: bool) {
    const B: usize = 256;
    let (mut m, mut sum) = ([0f32; B], [0f32; B]);
    for (s, o) in s.chunks(B * d).zip(o.chunks_mut(B * d)) {
        let nb = s.len() / d;
        let (m, sum) = (&mut m[..nb], &mut sum[..nb]);
        for (mr, row) in m.iter_mut().zip(s.chunks_exact(d)) {
            let (mut mx, mut nan) = (f32::NEG_INFINITY, false);
            if d >= LANES_FROM {
                (mx, nan) = row_max_portable(row);
            } else {
                for &v in row {
                    mx = if v > mx { v } else { mx };
                    nan |= v.is_nan();
                }
            }
            *mr = if nan { f32::NAN } else { mx };
        }
        for ((orow, row), &mr) in o.chunks_exact_mut(d).zip(s.chunks_exact(d)).zip(m.iter()) {
            orow.iter_mut().zip(row).for_each(|(ov, &v)| *ov = v - mr);
        }
        o.iter_mut().for_each(|v| *v = exp_f32(*v));
        for (sr, orow) in sum.iter_mut().zip(o.chunks_exact(d)) {
            *sr = if d >= LANES_FROM { sum_lanes(orow) } else { orow.iter().fold(0.0, |a, &v| a + v) };
        }
        if log {
            sum.iter_mut().zip(m.iter()).for_each(|(sr, &mr)| *sr = mr + log_f32(*sr));
            for ((orow, row), &shift) in o.chunks_exact_mut(d).zip(s.chunks_exact(d)).zip(sum.iter()) {
                orow.iter_mut().zip(row).for_each(|(ov, &v)| *ov = v - shift);
            }
        } else {
            sum.iter_mut().for_each(|sr| *sr = 1.0 / *sr);
            for (orow, &r) in o.chunks_exact_mut(d).zip(sum.iter()) {
                orow.iter_mut().for_each(|v| *v *= r);
            }
        }
    }
}

/// A row's max and whether it holds a NaN, in sixteen lanes (a single running max is a serial
/// chain); for CPUs without AVX-512 (`reduce16::extreme`).
#[inline(always)]
fn row_max_portable(s: &[f32]) -> (f32, bool) {
    let (mut lm, mut ln) = ([f32::NEG_INFINITY; 16], [false; 16]);
    let blocks = s.chunks_exact(16);
    let rest = blocks.remainder();
    for c in blocks {
        for i in 0..16 {
            lm[i] = if c[i] > lm[i] { c[i] } else { lm[i] };
            ln[i] |= c[i].is_nan();
        }
    }
    let (mut m, mut nan) = (f32::NEG_INFINITY, ln.iter().any(|&b| b));
    for &v in lm.iter().chain(rest) {
        m = if v > m { v } else { m };
        nan |= v.is_nan();
    }
    (m, nan)
}

/// A row's sum in sixteen lanes (the tail first, then the lanes).
#[inline(always)]
fn sum_lanes(o: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    let blocks = o.chunks_exact(16);
    let sum = blocks.remainder().iter().sum::<f32>();
    for c in blocks {
        for i in 0..16 {
            lanes[i] += c[i];
        }
    }
    sum + lanes.iter().sum::<f32>()
}

/// One contiguous float32 row: max (NaN anywhere makes the row NaN, as PyTorch), then the sum
/// of shifted exponentials, then one write pass. Max and sum take `reduce16`'s vector scans
/// where the CPU has AVX-512.
#[inline(always)]
fn row_softmax_f32(s: &[f32], o: &mut [f32], log: bool) {
    let (m, nan) = match if s.is_empty() { None } else { reduce16::extreme::<true>(s.as_ptr(), s.len()) } {
        Some(m) => (m, m.is_nan()),
        None => row_max_portable(s),
    };
    if nan {
        o.iter_mut().for_each(|v| *v = f32::NAN);
        return;
    }
    // The exponentials go to the output first (a plain map, vectorised to the last element),
    // then are summed from there (the row is in L1) in sixteen lanes. Summing them in the same
    // loop kept the lane array on the stack, a store-to-load chain per sixteen elements, and
    // left the row's last `len % 16` exponentials to scalar code.
    if !vmath16::exp_shifted(s, o, m) {
        for (o, &v) in o.iter_mut().zip(s) {
            *o = exp_f32(v - m);
        }
    }
    let sum = match reduce16::sum(0.0, o.as_ptr(), o.len(), Term::Value) {
        Some(sum) => sum as f32,
        None => sum_lanes(o),
    };
    if log {
        let shift = m + (sum as f64).ln() as f32;
        for (o, &v) in o.iter_mut().zip(s) {
            *o = v - shift;
        }
        return;
    }
    let r = 1.0 / sum;
    o.iter_mut().for_each(|v| *v *= r);
}

/// The gradient of `nll_loss(log_softmax(x))` from the log-probabilities `logp` (`[N, C]`,
/// dense float32), each row's class (`[N, 1]`) and NLL gradient at it, `coef` (`[N]`): what
/// `softmax_backward_rows` gives for the NLL's one-hot gradient, bit for bit (`s = coef + 0`
/// is that row's sum; `0 - exp(y)·s` off the class, `coef - exp(y)·s` at it), in one write
/// pass without the dense one-hot tensor. `None` where the layout or dtype does not fit.
pub fn cross_entropy_backward_rows(logp: &Tensor, classes: &Tensor, coef: &Tensor) -> Option<Tensor> {
    let shape = logp.shape();
    let f32 = crate::dtype::DType::F32;
    if shape.len() != 2 || logp.dtype() != f32 || coef.dtype() != f32 || !logp.is_contiguous() {
        return None;
    }
    let (rows, d) = (shape[0], shape[1]);
    let (classes, coef) = (classes.to_vec::<i64>(), coef.to_vec::<f32>());
    let out = Tensor::uninit(&shape, f32);
    let (py, po) = (SendPtr(logp.view().ptr::<f32>()), SendPtr(out.view().ptr::<f32>()));
    let chunks = parallel::chunks_for(rows * d, parallel::GRAIN).min(rows.max(1));
    // Blocks of rows (about 16 KiB) take their exponentials in one flat loop, which vectorises
    // whatever the row length (rows of 10 left most of each row to scalar code), then are
    // scaled row by row while still in L1.
    let block = (4096 / d.max(1)).max(1);
    parallel::for_chunks(chunks, |c| {
        crate::kernels::simd::wide(#[inline(always)] || {
            let (first, end) = (c * rows / chunks, (c + 1) * rows / chunks);
            for r0 in (first..end).step_by(block) {
                let nb = block.min(end - r0);
                let at = (r0 * d) as isize;
                // SAFETY: rows r0..r0+nb of d values in each dense tensor, owned by this chunk.
                let (y, o) = unsafe { (std::slice::from_raw_parts(py.at(at), nb * d), std::slice::from_raw_parts_mut(po.at(at), nb * d)) };
                o.iter_mut().zip(y).for_each(|(o, &yv)| *o = exp_f32(yv));
                for (r, orow) in (r0..r0 + nb).zip(o.chunks_exact_mut(d.max(1))) {
                    let s = coef[r] + 0.0;
                    let class = usize::try_from(classes[r]).ok().filter(|&k| k < d).map(|k| (k, orow[k]));
                    orow.iter_mut().for_each(|e| *e = 0.0 - *e * s);
                    if let Some((k, e)) = class {
                        orow[k] = coef[r] - e * s;
                    }
                }
            }
        })
    });
    Some(out)
}

/// The gradient of `softmax`/`log_softmax` along the last dim of dense float32 tensors, fused
/// (one row sum, one write pass): `g - exp(y)·Σg` for log-softmax, `y·(g - Σ g·y)` for softmax.
/// `None` where the layout or dtype does not fit; the caller then composes it from ops.
pub fn softmax_backward_rows(g: &Tensor, y: &Tensor, dim: usize, log: bool) -> Option<Tensor> {
    let shape = y.shape();
    let f32_dense = |t: &Tensor| t.dtype() == crate::dtype::DType::F32 && t.is_contiguous() && t.shape() == shape;
    if dim + 1 != shape.len() || !f32_dense(g) || !f32_dense(y) {
        return None;
    }
    let d = shape[dim];
    let rows = if d == 0 { 0 } else { y.numel() / d };
    let out = Tensor::uninit(&shape, crate::dtype::DType::F32);
    let (pg, py, po) = (SendPtr(g.view().ptr::<f32>()), SendPtr(y.view().ptr::<f32>()), SendPtr(out.view().ptr::<f32>()));
    let chunks = parallel::chunks_for(rows * d, parallel::GRAIN).min(rows.max(1));
    // For log-softmax, a block of rows (about 16 KiB) takes its exponentials in one flat loop
    // first (as `cross_entropy_backward_rows`: short rows left most of each row to scalar code).
    let block = (4096 / d.max(1)).max(1);
    parallel::for_chunks(chunks, |c| {
        crate::kernels::simd::wide(#[inline(always)] || {
            let (first, end) = (c * rows / chunks, (c + 1) * rows / chunks);
            for r in first..end {
                let at = (r * d) as isize;
                if log && (r - first) % block == 0 {
                    let len = block.min(end - r) * d;
                    // SAFETY: the block's rows in the dense tensors, owned by this chunk.
                    let (y, o) = unsafe { (std::slice::from_raw_parts(py.at(at), len), std::slice::from_raw_parts_mut(po.at(at), len)) };
                    o.iter_mut().zip(y).for_each(|(o, &yv)| *o = exp_f32(yv));
                }
                // SAFETY: row r of d values in each dense tensor, owned by this chunk.
                let (g, y, o) = unsafe {
                    (std::slice::from_raw_parts(pg.at(at), d), std::slice::from_raw_parts(py.at(at), d), std::slice::from_raw_parts_mut(po.at(at), d))
                };
                let mut lanes = [0f32; 16];
                let mut tail = 0f32;
                for (gc, yc) in g.chunks_exact(16).zip(y.chunks_exact(16)) {
                    for i in 0..16 {
                        lanes[i] += if log { gc[i] } else { gc[i] * yc[i] };
                    }
                }
                let done = d - d % 16;
                for (&gv, &yv) in g[done..].iter().zip(&y[done..]) {
                    tail += if log { gv } else { gv * yv };
                }
                let s = tail + lanes.iter().sum::<f32>();
                for ((o, &gv), &yv) in o.iter_mut().zip(g).zip(y) {
                    *o = if log { gv - *o * s } else { yv * (gv - s) };
                }
            }
        })
    });
    Some(out)
}
