//! Batch normalisation of dense float32 `(N, C, ...)` tensors as per-channel passes: the
//! composed version (mean, centre, square, mean, rsqrt, scale, shift, each a full tensor op
//! with its own temporary) reads and writes the tensor about a dozen times; here the statistics
//! take two reads, the output one read and one write, and the backward two reads of `x`
//! and `g` and one write. Channel `c`'s values are `N` runs of `S` (the spatial size) floats.

use crate::dtype::DType;
use crate::kernels::reduce16::{self, Term};
use crate::kernels::strided::SendPtr;
use crate::parallel;
use crate::tensor::Tensor;

/// The `(N, C, S)` geometry when `x` (and every other tensor given) is dense float32.
pub fn geometry(x: &Tensor, others: &[Option<&Tensor>]) -> Option<(usize, usize, usize)> {
    let s = x.shape();
    let dense = |t: &Tensor| t.dtype() == DType::F32 && t.is_contiguous();
    if s.len() < 2 || !dense(x) || !others.iter().flatten().all(|t| dense(t)) {
        return None;
    }
    Some((s[0], s[1], s[2..].iter().product()))
}

/// Σ x (`centre` None) or Σ (x - centre)² over one run, in float64: `reduce16`'s vector loop
/// with AVX-512 (two add chains and a masked tail; one sixteen-lane chain waited on the add
/// latency), sixteen float32 lanes without.
#[inline(always)]
pub(crate) fn run_sum(run: &[f32], centre: Option<f32>) -> f64 {
    if let Some(s) = reduce16::sum(0.0, run.as_ptr(), run.len(), centre.map_or(Term::Value, Term::Deviation)) {
        return s;
    }
    match centre {
        None => lanes_sum(run, |v| v),
        Some(c) => lanes_sum(run, |v| (v - c) * (v - c)),
    }
}

#[inline(always)]
fn lanes_sum(run: &[f32], f: impl Fn(f32) -> f32) -> f64 {
    let mut lanes = [0f32; 16];
    let blocks = run.chunks_exact(16);
    let tail: f32 = blocks.remainder().iter().map(|&v| f(v)).sum();
    for b in blocks {
        for i in 0..16 {
            lanes[i] += f(b[i]);
        }
    }
    (tail + lanes.iter().sum::<f32>()) as f64
}

/// Runs `f(c)` for every channel, channels split across threads.
fn channels(c: usize, work: usize, f: impl Fn(usize) + Sync + Send) {
    let chunks = parallel::chunks_for(work, parallel::GRAIN).min(c.max(1));
    parallel::for_chunks(chunks, |k| (k * c / chunks..(k + 1) * c / chunks).for_each(&f));
}

/// The `S`-float run of image `n`, channel `c`.
///
/// # Safety
/// `p` addresses a dense `(N, C, S)` tensor with `n < N`, `c < C`.
unsafe fn run<'a>(p: SendPtr<f32>, (cc, s): (usize, usize), n: usize, c: usize) -> &'a [f32] {
    std::slice::from_raw_parts(p.at(((n * cc + c) * s) as isize), s)
}

/// Per-channel mean and biased variance (two passes: the centred second pass keeps the
/// variance accurate when the mean is large).
pub fn stats(x: &Tensor, (n, c, s): (usize, usize, usize)) -> (Vec<f64>, Vec<f64>) {
    let (mut mean, mut var) = (vec![0f64; c], vec![0f64; c]);
    let (px, pm, pv) = (SendPtr(x.view().ptr::<f32>()), SendPtr(mean.as_mut_ptr()), SendPtr(var.as_mut_ptr()));
    let count = (n * s) as f64;
    channels(c, n * c * s, |ch| {
        crate::kernels::simd::wide(#[inline(always)] || unsafe {
            let m = (0..n).map(|i| run_sum(run(px, (c, s), i, ch), None)).sum::<f64>() / count;
            let mf = m as f32;
            let v = (0..n).map(|i| run_sum(run(px, (c, s), i, ch), Some(mf))).sum::<f64>() / count;
            *pm.at(ch as isize) = m;
            *pv.at(ch as isize) = v;
        })
    });
    (mean, var)
}

/// `y = (x - mean)·rstd·w + b` as `x·scale + shift` per channel.
pub fn apply(x: &Tensor, (n, c, s): (usize, usize, usize), mean: &[f64], rstd: &[f64], w: Option<&Tensor>, b: Option<&Tensor>) -> Tensor {
    let (w, b) = (w.map(|t| t.to_vec::<f32>()), b.map(|t| t.to_vec::<f32>()));
    let y = Tensor::uninit(&x.shape(), DType::F32);
    let (px, py) = (SendPtr(x.view().ptr::<f32>()), SendPtr(y.view().ptr::<f32>()));
    channels(c, n * c * s, |ch| {
        let scale = rstd[ch] * w.as_ref().map_or(1.0, |w| w[ch] as f64);
        let shift = b.as_ref().map_or(0.0, |b| b[ch] as f64) - mean[ch] * scale;
        let (scale, shift) = (scale as f32, shift as f32);
        crate::kernels::simd::wide(#[inline(always)] || {
            for i in 0..n {
                // SAFETY: run (i, ch) of two dense tensors of x's shape; channels are disjoint.
                let (src, dst) = unsafe { (run(px, (c, s), i, ch), std::slice::from_raw_parts_mut(py.at(((i * c + ch) * s) as isize), s)) };
                for (o, &v) in dst.iter_mut().zip(src) {
                    *o = v * scale + shift;
                }
            }
        })
    });
    y
}

/// Gradients for `(x, w, b)` given the output gradient `g` and the statistics used. With
/// batch statistics (`batch`), `x`'s gradient includes the paths through mean and variance.
/// `gw`/`gb` come back as `C`-element vectors.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    x: &Tensor,
    g: &Tensor,
    (n, c, s): (usize, usize, usize),
    mean: &[f64],
    rstd: &[f64],
    w: Option<&Tensor>,
    batch: bool,
    need_x: bool,
) -> (Option<Tensor>, Vec<f64>, Vec<f64>) {
    let w = w.map(|t| t.to_vec::<f32>());
    let (mut gw, mut gb) = (vec![0f64; c], vec![0f64; c]);
    let gx = need_x.then(|| Tensor::uninit(&x.shape(), DType::F32));
    let (px, pg) = (SendPtr(x.view().ptr::<f32>()), SendPtr(g.view().ptr::<f32>()));
    let po = gx.as_ref().map(|t| SendPtr(t.view().ptr::<f32>()));
    let (pw, pb) = (SendPtr(gw.as_mut_ptr()), SendPtr(gb.as_mut_ptr()));
    let count = (n * s) as f64;
    channels(c, 2 * n * c * s, |ch| {
        crate::kernels::simd::wide(#[inline(always)] || unsafe {
            let mf = mean[ch] as f32;
            let (mut sum_g, mut dot) = (0f64, 0f64);
            for i in 0..n {
                let (xr, gr) = (run(px, (c, s), i, ch), run(pg, (c, s), i, ch));
                sum_g += run_sum(gr, None);
                let mut lanes = [0f32; 16];
                let (xb, gbk) = (xr.chunks_exact(16), gr.chunks_exact(16));
                let tail: f32 = xb.remainder().iter().zip(gbk.remainder()).map(|(&x, &g)| (x - mf) * g).sum();
                for (xc, gc) in xb.zip(gbk) {
                    for k in 0..16 {
                        lanes[k] += (xc[k] - mf) * gc[k];
                    }
                }
                dot += (tail + lanes.iter().sum::<f32>()) as f64;
            }
            *pw.at(ch as isize) = dot * rstd[ch];
            *pb.at(ch as isize) = sum_g;
            let Some(po) = po else { return };
            let wc = w.as_ref().map_or(1.0, |w| w[ch] as f64);
            // gx = (g - Σg/M - (x - mean)·rstd²·dot/M)·rstd·w, or g·rstd·w with fixed statistics.
            let (gm, k) = if batch { (sum_g / count, dot * rstd[ch] * rstd[ch] / count) } else { (0.0, 0.0) };
            let (a, gm, k, mf) = ((rstd[ch] * wc) as f32, gm as f32, k as f32, mf);
            for i in 0..n {
                let (xr, gr) = (run(px, (c, s), i, ch), run(pg, (c, s), i, ch));
                let o = std::slice::from_raw_parts_mut(po.at(((i * c + ch) * s) as isize), s);
                for ((o, &x), &g) in o.iter_mut().zip(xr).zip(gr) {
                    *o = (g - gm - (x - mf) * k) * a;
                }
            }
        })
    });
    (gx, gw, gb)
}
