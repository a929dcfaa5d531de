//! Layer normalisation of dense float32 tensors over their trailing `D` values, row by row: a
//! row's mean and variance take two passes over it and the output a third, all but the first
//! from L1, rows split across threads. The composed version (mean, centre, square, mean,
//! rsqrt, scale, shift, each a full-tensor op with its own temporary) took 1.96 ms on 1024²
//! against PyTorch's 1.18. The backward recomputes the row statistics the same way.

use super::batch_norm::run_sum;
use crate::dtype::DType;
use crate::kernels::simd::wide;
use crate::kernels::strided::SendPtr;
use crate::parallel;
use crate::tensor::Tensor;

/// `(rows, D)` when `x` is dense float32 with `D` = the product of its last `k` dims and every
/// other tensor given is dense float32.
pub fn geometry(x: &Tensor, k: usize, others: &[Option<&Tensor>]) -> Option<(usize, usize)> {
    let s = x.shape();
    let dense = |t: &Tensor| t.dtype() == DType::F32 && t.is_contiguous();
    if k > s.len() || !dense(x) || !others.iter().flatten().all(|t| dense(t)) {
        return None;
    }
    let d: usize = s[s.len() - k..].iter().product();
    (d > 0).then(|| (x.numel() / d, d))
}

/// Mean and biased variance of one row (the centred second pass keeps the variance accurate
/// when the mean is large).
#[inline(always)]
fn row_stats(row: &[f32]) -> (f64, f64) {
    let n = row.len() as f64;
    let m = run_sum(row, None) / n;
    let mf = m as f32;
    (m, run_sum(row, Some(mf)) / n)
}

/// How many ranges of rows `row_chunks` makes for `passes` passes over `(rows, d)`.
fn chunk_count(rows: usize, d: usize, passes: usize) -> usize {
    parallel::chunks_for(passes * rows * d, parallel::GRAIN).min(rows.max(1))
}

/// Runs `f(chunk, rows)` over `chunk_count` ranges of rows, split across threads.
fn row_chunks(rows: usize, d: usize, passes: usize, f: impl Fn(usize, std::ops::Range<usize>) + Sync + Send) {
    let chunks = chunk_count(rows, d, passes);
    parallel::for_chunks(chunks, |c| f(c, c * rows / chunks..(c + 1) * rows / chunks));
}

/// `w` and `b` as `D` values, ones and zeros where absent.
fn affine(t: Option<&Tensor>, d: usize, default: f32) -> Vec<f32> {
    t.map_or_else(|| vec![default; d], |t| t.to_vec::<f32>())
}

/// `y = (x - mean)·rstd·w + b` per row; returns `y` and each row's mean and biased variance.
pub fn forward(x: &Tensor, (rows, d): (usize, usize), w: Option<&Tensor>, b: Option<&Tensor>, eps: f64) -> (Tensor, Vec<f64>, Vec<f64>) {
    let (w, b) = (affine(w, d, 1.0), affine(b, d, 0.0));
    let y = Tensor::uninit(&x.shape(), DType::F32);
    let (mut mean, mut var) = (vec![0f64; rows], vec![0f64; rows]);
    let (px, py, pm, pv) = (SendPtr(x.view().ptr::<f32>()), SendPtr(y.view().ptr::<f32>()), SendPtr(mean.as_mut_ptr()), SendPtr(var.as_mut_ptr()));
    row_chunks(rows, d, 3, |_, range| {
        wide(#[inline(always)] || {
            for r in range.clone() {
                // SAFETY: row r of two dense (rows, d) tensors; rows are split between chunks.
                let (src, dst) = unsafe { (std::slice::from_raw_parts(px.at((r * d) as isize), d), std::slice::from_raw_parts_mut(py.at((r * d) as isize), d)) };
                let (m, v) = row_stats(src);
                let (mf, rs) = (m as f32, (1.0 / (v + eps).sqrt()) as f32);
                for (((o, &x), &w), &b) in dst.iter_mut().zip(src).zip(&w).zip(&b) {
                    *o = (x - mf) * rs * w + b;
                }
                // SAFETY: entry r belongs to this chunk.
                unsafe { (*pm.at(r as isize), *pv.at(r as isize)) = (m, v) };
            }
        })
    });
    (y, mean, var)
}

/// Gradients for `(x, w, b)` given the output gradient `g` (dense, `x`'s shape):
/// `gx = rstd·(ĝ - mean(ĝ) - x̂·mean(ĝ·x̂))` with `ĝ = g·w`, `gw = Σ_rows g·x̂`, `gb = Σ_rows g`
/// (`D`-element vectors; each chunk of rows sums its own, combined in order).
pub fn backward(x: &Tensor, g: &Tensor, (rows, d): (usize, usize), w: Option<&Tensor>, eps: f64, need_x: bool) -> (Option<Tensor>, Vec<f64>, Vec<f64>) {
    let w = affine(w, d, 1.0);
    let gx = need_x.then(|| Tensor::uninit(&x.shape(), DType::F32));
    let (px, pg) = (SendPtr(x.view().ptr::<f32>()), SendPtr(g.view().ptr::<f32>()));
    let po = gx.as_ref().map(|t| SendPtr(t.view().ptr::<f32>()));
    let chunks = chunk_count(rows, d, 4);
    let mut partial = vec![0f64; chunks * 2 * d];
    let pp = SendPtr(partial.as_mut_ptr());
    row_chunks(rows, d, 4, |c, range| {
        // SAFETY: chunk c owns its 2·d partial sums.
        let (pw, pb) = unsafe { std::slice::from_raw_parts_mut(pp.at((c * 2 * d) as isize), 2 * d).split_at_mut(d) };
        wide(#[inline(always)] || {
            for r in range.clone() {
                // SAFETY: row r of dense (rows, d) tensors; rows are split between chunks.
                let (xr, gr) = unsafe { (std::slice::from_raw_parts(px.at((r * d) as isize), d), std::slice::from_raw_parts(pg.at((r * d) as isize), d)) };
                let (m, v) = row_stats(xr);
                let (mf, rs) = (m as f32, (1.0 / (v + eps).sqrt()) as f32);
                // One pass for the row's two sums and its share of gw and gb.
                let (mut s1, mut s2) = ([0f32; 16], [0f32; 16]);
                let (xb, gb, wb) = (xr.chunks_exact(16), gr.chunks_exact(16), w.chunks_exact(16));
                let (pwb, pbb) = (pw.chunks_exact_mut(16), pb.chunks_exact_mut(16));
                let (mut t1, mut t2) = (0f32, 0f32);
                let tails = xb.remainder().iter().zip(gb.remainder()).zip(wb.remainder());
                for (((&x, &g), &w), (pw, pb)) in tails.zip(pwb.into_remainder().iter_mut().zip(pbb.into_remainder().iter_mut())) {
                    let xh = (x - mf) * rs;
                    t1 += g * w;
                    t2 += g * w * xh;
                    *pw += (g * xh) as f64;
                    *pb += g as f64;
                }
                let (pwb, pbb) = (pw.chunks_exact_mut(16), pb.chunks_exact_mut(16));
                for ((((xc, gc), wc), pwc), pbc) in xb.zip(gb).zip(wb).zip(pwb).zip(pbb) {
                    for k in 0..16 {
                        let xh = (xc[k] - mf) * rs;
                        let gh = gc[k] * wc[k];
                        s1[k] += gh;
                        s2[k] += gh * xh;
                        pwc[k] += (gc[k] * xh) as f64;
                        pbc[k] += gc[k] as f64;
                    }
                }
                let Some(po) = po else { continue };
                let n = d as f32;
                let (m1, m2) = ((t1 + s1.iter().sum::<f32>()) / n, (t2 + s2.iter().sum::<f32>()) / n);
                // SAFETY: row r of gx belongs to this chunk.
                let o = unsafe { std::slice::from_raw_parts_mut(po.at((r * d) as isize), d) };
                for (((o, &x), &g), &w) in o.iter_mut().zip(xr).zip(gr).zip(&w) {
                    *o = rs * (g * w - m1 - (x - mf) * rs * m2);
                }
            }
        })
    });
    let (mut gw, mut gb) = (vec![0f64; d], vec![0f64; d]);
    for part in partial.chunks_exact(2 * d) {
        let (pw, pb) = part.split_at(d);
        gw.iter_mut().zip(pw).for_each(|(a, b)| *a += b);
        gb.iter_mut().zip(pb).for_each(|(a, b)| *a += b);
    }
    (gx, gw, gb)
}
