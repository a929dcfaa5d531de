//! Pooling over the last two dims: every output position reads a window of input taps along
//! each dim (`Taps`), so max/avg/adaptive pooling (and their 1-d forms, with a height of 1)
//! share one pair of kernels. Avg pooling is linear; `avg_pool_adjoint` is its backward.

use crate::dtype::{DType, Element};
use crate::error::{runtime_err, Result};
use crate::kernels::num::{Float, Num};
use crate::kernels::pool16;
use crate::kernels::simd::{has_avx2, wide};
use crate::kernels::strided::SendPtr;
use crate::layout::Dims;
use crate::ops::conv::float_only;
use crate::parallel;
use crate::tensor::Tensor;

/// The in-image taps of one output position along one dim: `first + i·step` for `i < count`,
/// and `div`, this dim's factor of the averaging divisor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Taps {
    pub first: usize,
    pub count: usize,
    pub step: usize,
    pub div: usize,
}

/// A sliding-window pool along one dim, as PyTorch sizes it.
#[derive(Clone, Copy, Debug)]
pub struct Sliding {
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub dilation: usize,
    pub ceil_mode: bool,
}

impl Sliding {
    /// PyTorch's `pooling_output_shape`: with ceil_mode the last window must start inside the
    /// input or its left padding.
    pub fn out_len(&self, size: usize) -> i64 {
        let (k, s, p, d) = (self.kernel as i64, self.stride as i64, self.padding as i64, self.dilation as i64);
        let num = size as i64 + 2 * p - d * (k - 1) - 1 + if self.ceil_mode { s - 1 } else { 0 };
        let mut out = num.div_euclid(s) + 1;
        if self.ceil_mode && (out - 1) * s >= size as i64 + p {
            out -= 1;
        }
        out
    }

    /// Taps of every output position; `include_pad` counts padded positions in the divisor.
    pub fn taps(&self, size: usize, out: usize, include_pad: bool) -> Vec<Taps> {
        let (k, d) = (self.kernel as i64, self.dilation as i64);
        (0..out as i64)
            .map(|o| {
                let start = o * self.stride as i64 - self.padding as i64;
                let kmin = if start < 0 { (-start + d - 1) / d } else { 0 };
                let kend = ((size as i64 - start + d - 1) / d).clamp(0, k);
                let count = (kend - kmin).max(0) as usize;
                // Divisor with padding: the window clipped to the padded extent (d is 1 for avg).
                let padded_end = (start + k).min(size as i64 + self.padding as i64);
                let div = if include_pad { (padded_end - start) as usize } else { count };
                Taps { first: (start + kmin * d).max(0) as usize, count, step: self.dilation, div }
            })
            .collect()
    }
}

/// Adaptive pooling: output `o` covers `[floor(o·size/out), ceil((o+1)·size/out))`.
pub fn adaptive_taps(size: usize, out: usize) -> Vec<Taps> {
    (0..out)
        .map(|o| {
            let start = o * size / out;
            let end = ((o + 1) * size).div_ceil(out);
            Taps { first: start, count: end - start, step: 1, div: end - start }
        })
        .collect()
}

/// Input viewed as planes: (leading dims, H, W).
fn planes(x: &Tensor, op: &str) -> Result<(Dims, usize, usize)> {
    let s = x.shape();
    if s.len() < 2 {
        return runtime_err(format!("{op}: expected an input with at least 2 dims, got {}", s.len()));
    }
    let (h, w) = (s[s.len() - 2], s[s.len() - 1]);
    Ok((s[..s.len() - 2].into(), h, w))
}

fn out_shape(lead: &[usize], oh: usize, ow: usize) -> Dims {
    let mut s: Dims = lead.into();
    s.push(oh);
    s.push(ow);
    s
}

/// Runs `f(plane)` over all planes, split across threads by work.
fn per_plane(p: usize, work: usize, f: impl Fn(usize) + Sync + Send) {
    let chunks = parallel::chunks_for(p * work, parallel::GRAIN).min(p);
    parallel::for_chunks(chunks, |ch| {
        for i in ch * p / chunks..(ch + 1) * p / chunks {
            f(i)
        }
    });
}

/// `if take { a } else { b }` as bit masks: the optimiser keeps a data-dependent branch for the
/// plain form, which mispredicts on every other element of real data.
trait Select: Copy {
    fn select(take: bool, a: Self, b: Self) -> Self;
}
macro_rules! select_via_bits {
    ($($t:ty => $bits:ty, $to:expr, $from:expr);*) => {$(
        impl Select for $t {
            #[inline(always)]
            fn select(take: bool, a: Self, b: Self) -> Self {
                let m = (take as $bits).wrapping_neg();
                $from(($to(a) & m) | ($to(b) & !m))
            }
        }
    )*};
}
select_via_bits!(f32 => u32, f32::to_bits, f32::from_bits; f64 => u64, f64::to_bits, f64::from_bits; i64 => u64, |x: i64| x as u64, |x: u64| x as i64);

/// The shift between neighbouring windows when every window has the same non-empty taps
/// (no padding clipped any of them).
fn uniform_stride(cols: &[Taps]) -> Option<usize> {
    let c0 = *cols.first()?;
    let sx = cols.get(1).map_or(1, |c| c.first.wrapping_sub(c0.first));
    let same = cols.iter().enumerate().all(|(i, c)| c.count == c0.count && c.step == c0.step && c.first == c0.first + i * sx);
    (same && c0.count > 0 && sx > 0).then_some(sx)
}

/// One output row of the 2 × 2, stride-2 max pool (the common case), its four taps compared in
/// the general loop's order with selects, so the loop vectorises.
#[inline(always)]
fn pairs_2x2<T: Float + Select>(img: &[T], w: usize, base: usize, out: &mut [T], at: &mut [i64]) {
    let n = out.len();
    let (top, bottom) = (&img[base..base + 2 * n], &img[base + w..base + w + 2 * n]);
    for (xo, (o, i)) in out.iter_mut().zip(at.iter_mut()).enumerate() {
        let first = (base + 2 * xo) as i64;
        let (mut best, mut arg) = (top[2 * xo], first);
        for (v, pos) in [(top[2 * xo + 1], first + 1), (bottom[2 * xo], first + w as i64), (bottom[2 * xo + 1], first + w as i64 + 1)] {
            let take = (v > best) | v.is_nan();
            best = Select::select(take, v, best);
            arg = Select::select(take, pos, arg);
        }
        *o = best;
        *i = arg;
    }
}

/// Max over each window, NaN winning (the last NaN, as in PyTorch's loop); indices are flat `h·W + w` per plane.
pub fn max_pool(x: &Tensor, rows: &[Taps], cols: &[Taps]) -> Result<(Tensor, Tensor)> {
    let (lead, h, w) = planes(x, "max_pool2d")?;
    let p: usize = lead.iter().product();
    let (oh, ow) = (rows.len(), cols.len());
    let x = x.contiguous();
    let shape = out_shape(&lead, oh, ow);
    let out = Tensor::uninit(&shape, x.dtype());
    let idx = Tensor::uninit(&shape, DType::I64);
    let uniform = uniform_stride(cols);
    let two_by_two = |t: &Taps| t.count == 2 && t.step == 1;
    if x.dtype() == DType::F32 && uniform == Some(2) && two_by_two(&cols[0]) && rows.iter().all(two_by_two) && has_avx2() {
        // The 2 × 2, stride-2 windows on float32: the vector kernel, plane by plane.
        let bases: Vec<usize> = rows.iter().map(|r| r.first * w + cols[0].first).collect();
        let (src, dst, ind) = (SendPtr(x.view().ptr::<f32>()), SendPtr(out.view().ptr::<f32>()), SendPtr(idx.view().ptr::<i64>()));
        let done = std::sync::atomic::AtomicBool::new(true);
        per_plane(p, oh * ow * 4, |pl| {
            // SAFETY: plane pl of input and outputs is in bounds and written by this call only.
            let img = unsafe { std::slice::from_raw_parts(src.at((pl * h * w) as isize), h * w) };
            let o = unsafe { std::slice::from_raw_parts_mut(dst.at((pl * oh * ow) as isize), oh * ow) };
            let oi = unsafe { std::slice::from_raw_parts_mut(ind.at((pl * oh * ow) as isize), oh * ow) };
            if !pool16::max_2x2(img, w, &bases, ow, o, oi) {
                done.store(false, std::sync::atomic::Ordering::Relaxed);
            }
        });
        if done.into_inner() {
            return Ok((out, idx));
        }
    }
    float_only!(x.dtype(), "max_pool2d", T => {
        let (src, dst, ind) = (SendPtr(x.view().ptr::<T>()), SendPtr(out.view().ptr::<T>()), SendPtr(idx.view().ptr::<i64>()));
        let neg_inf = T::from_f64(f64::NEG_INFINITY);
        per_plane(p, oh * ow * 4, |pl| wide(#[inline(always)] || {
            // SAFETY: plane pl of input and outputs is in bounds and written by this call only.
            let img = unsafe { std::slice::from_raw_parts(src.at((pl * h * w) as isize), h * w) };
            let o = unsafe { std::slice::from_raw_parts_mut(dst.at((pl * oh * ow) as isize), oh * ow) };
            let oi = unsafe { std::slice::from_raw_parts_mut(ind.at((pl * oh * ow) as isize), oh * ow) };
            if let Some(sx) = uniform {
                // Every column window has the same taps, shifted by sx: sweep each tap across the
                // whole output row (independent lanes, so it vectorises), in the same tap order.
                let c0 = cols[0];
                for (y, r) in rows.iter().enumerate() {
                    let (orow, irow) = (&mut o[y * ow..(y + 1) * ow], &mut oi[y * ow..(y + 1) * ow]);
                    if sx == 2 && c0.count == 2 && c0.step == 1 && r.count == 2 && r.step == 1 {
                        pairs_2x2(img, w, r.first * w + c0.first, orow, irow);
                        continue;
                    }
                    orow.iter_mut().for_each(|v| *v = neg_inf);
                    irow.iter_mut().enumerate().for_each(|(xo, v)| *v = (r.first * w + c0.first + xo * sx) as i64);
                    for i in 0..r.count {
                        for j in 0..c0.count {
                            let base = (r.first + i * r.step) * w + c0.first + j * c0.step;
                            let run = &img[base..base + (ow - 1) * sx + 1];
                            // Gather the tap into a contiguous block, then compare lane by lane
                            // (selects on slices, so no data-dependent branch).
                            let mut tap = [neg_inf; 64];
                            for x0 in (0..ow).step_by(64) {
                                let n = 64.min(ow - x0);
                                for (t, v) in tap[..n].iter_mut().zip(run[x0 * sx..].iter().step_by(sx)) {
                                    *t = *v;
                                }
                                let lanes = orow[x0..x0 + n].iter_mut().zip(irow[x0..x0 + n].iter_mut()).zip(&tap[..n]);
                                for (xo, ((b, at), &v)) in lanes.enumerate() {
                                    let take = (v > *b) | v.is_nan();
                                    *b = Select::select(take, v, *b);
                                    *at = Select::select(take, (base + (x0 + xo) * sx) as i64, *at);
                                }
                            }
                        }
                    }
                }
                return;
            }
            for (y, r) in rows.iter().enumerate() {
                for (xo, c) in cols.iter().enumerate() {
                    let mut best = neg_inf;
                    let mut at = r.first * w + c.first;
                    for i in 0..r.count {
                        let line = (r.first + i * r.step) * w + c.first;
                        // The taps of this window row: a strided run of the image row.
                        let run = &img[line..line + (c.count.max(1) - 1) * c.step + usize::from(c.count > 0)];
                        for (j, &v) in run.iter().step_by(c.step).enumerate() {
                            // PyTorch's rule (`val > max || isnan(val)`), written to compile to selects.
                            let take = (v > best) | v.is_nan();
                            best = if take { v } else { best };
                            at = if take { line + j * c.step } else { at };
                        }
                    }
                    o[y * ow + xo] = best;
                    oi[y * ow + xo] = at as i64;
                }
            }
        }));
        Ok(())
    })?;
    Ok((out, idx))
}

fn divisor(r: &Taps, c: &Taps, over: Option<i64>) -> f64 {
    over.map_or((r.div * c.div) as f64, |d| d as f64)
}

/// Mean over each window with PyTorch's divisor (or `divisor_override`).
pub fn avg_pool(x: &Tensor, rows: &[Taps], cols: &[Taps], over: Option<i64>) -> Result<Tensor> {
    let (lead, h, w) = planes(x, "avg_pool2d")?;
    let p: usize = lead.iter().product();
    let (oh, ow) = (rows.len(), cols.len());
    let x = x.contiguous();
    let out = Tensor::uninit(&out_shape(&lead, oh, ow), x.dtype());
    float_only!(x.dtype(), "avg_pool2d", T => {
        let (src, dst) = (SendPtr(x.view().ptr::<T>()), SendPtr(out.view().ptr::<T>()));
        per_plane(p, oh * ow * 4, |pl| {
            // SAFETY: as in max_pool.
            let img = unsafe { std::slice::from_raw_parts(src.at((pl * h * w) as isize), h * w) };
            let o = unsafe { std::slice::from_raw_parts_mut(dst.at((pl * oh * ow) as isize), oh * ow) };
            for (y, r) in rows.iter().enumerate() {
                for (xo, c) in cols.iter().enumerate() {
                    let mut s = T::zero();
                    for i in 0..r.count {
                        let line = &img[(r.first + i * r.step) * w..];
                        for j in 0..c.count {
                            s = Num::add(s, line[c.first + j * c.step]);
                        }
                    }
                    o[y * ow + xo] = Num::div(s, T::from_f64(divisor(r, c, over)));
                }
            }
        });
        Ok(())
    })?;
    Ok(out)
}

/// The adjoint of `avg_pool`: each output gradient spread over its window's taps.
pub fn avg_pool_adjoint(g: &Tensor, size: [usize; 2], rows: &[Taps], cols: &[Taps], over: Option<i64>) -> Result<Tensor> {
    let (lead, oh, ow) = planes(g, "avg_pool2d_backward")?;
    if oh != rows.len() || ow != cols.len() {
        return runtime_err(format!("avg_pool2d_backward: gradient of spatial size ({oh}, {ow}) for an output of ({}, {})", rows.len(), cols.len()));
    }
    let p: usize = lead.iter().product();
    let [h, w] = size;
    let g = g.contiguous();
    let out = Tensor::uninit(&out_shape(&lead, h, w), g.dtype());
    float_only!(g.dtype(), "avg_pool2d_backward", T => {
        let (src, dst) = (SendPtr(g.view().ptr::<T>()), SendPtr(out.view().ptr::<T>()));
        per_plane(p, h * w + oh * ow * 4, |pl| {
            // SAFETY: as in max_pool.
            let gp = unsafe { std::slice::from_raw_parts(src.at((pl * oh * ow) as isize), oh * ow) };
            let img = unsafe { std::slice::from_raw_parts_mut(dst.at((pl * h * w) as isize), h * w) };
            img.iter_mut().for_each(|v| *v = T::zero());
            for (y, r) in rows.iter().enumerate() {
                for (xo, c) in cols.iter().enumerate() {
                    let share = Num::div(gp[y * ow + xo], T::from_f64(divisor(r, c, over)));
                    for i in 0..r.count {
                        let line = (r.first + i * r.step) * w;
                        for j in 0..c.count {
                            let pos = line + c.first + j * c.step;
                            img[pos] = Num::add(img[pos], share);
                        }
                    }
                }
            }
        });
        Ok(())
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_taps_clip_padding_and_dilation() {
        let s = Sliding { kernel: 3, stride: 2, padding: 1, dilation: 2, ceil_mode: false };
        assert_eq!(s.out_len(7), 3);
        let t = s.taps(7, 3, false);
        // windows start at -1, 1, 3 with taps every 2: {1,3}, {1,3,5}, {3,5}.
        assert_eq!((t[0].first, t[0].count), (1, 2));
        assert_eq!((t[1].first, t[1].count), (1, 3));
        assert_eq!((t[2].first, t[2].count), (3, 2));
    }

    #[test]
    fn ceil_mode_drops_a_window_starting_in_right_padding() {
        let s = Sliding { kernel: 2, stride: 2, padding: 1, dilation: 1, ceil_mode: true };
        assert_eq!(s.out_len(4), 3);
        let s = Sliding { kernel: 3, stride: 2, padding: 0, dilation: 1, ceil_mode: true };
        assert_eq!(s.out_len(6), 3);
    }

    #[test]
    fn adaptive_windows_cover_the_input() {
        let t = adaptive_taps(5, 3);
        assert_eq!(t.iter().map(|t| (t.first, t.count)).collect::<Vec<_>>(), vec![(0, 2), (1, 3), (3, 2)]);
    }
}

/// The backward of `max_pool` as a kernel: each plane's gradient scattered (added) to its
/// argmax positions. `shape` is the pooled input's shape.
pub fn max_pool_scatter(g: &Tensor, indices: &Tensor, shape: &[usize]) -> Result<Tensor> {
    let nd = shape.len();
    if nd < 2 || indices.shape() != g.shape() || indices.dtype() != DType::I64 {
        return runtime_err("max_pool2d_backward: gradient and indices must have the pooled output's shape");
    }
    let (h, w) = (shape[nd - 2], shape[nd - 1]);
    let p: usize = shape[..nd - 2].iter().product();
    let l = g.numel() / p.max(1);
    let ow = g.shape().last().copied().unwrap_or(0);
    let fast = g.dtype() == DType::F32 && has_avx2() && g.shape().len() == nd;
    let (g, indices) = (g.contiguous(), indices.contiguous());
    let out = Tensor::uninit(shape, g.dtype());
    float_only!(g.dtype(), "max_pool2d_backward", T => {
        let (src, ind, dst) = (SendPtr(g.view().ptr::<T>()), SendPtr(indices.view().ptr::<i64>()), SendPtr(out.view().ptr::<T>()));
        let bad = std::sync::atomic::AtomicBool::new(false);
        per_plane(p, h * w + l, |pl| {
            // SAFETY: plane pl of the gradient, indices and output belong to this call only.
            let gp = unsafe { std::slice::from_raw_parts(src.at((pl * l) as isize), l) };
            let ip = unsafe { std::slice::from_raw_parts(ind.at((pl * l) as isize), l) };
            let img = unsafe { std::slice::from_raw_parts_mut(dst.at((pl * h * w) as isize), h * w) };
            if fast {
                // SAFETY: T is f32 (the dtype was checked); the same plane as above.
                let (g32, img32) = unsafe { (std::slice::from_raw_parts(gp.as_ptr().cast::<f32>(), l), std::slice::from_raw_parts_mut(img.as_mut_ptr().cast::<f32>(), h * w)) };
                // Indices from 2 × 2 windows (checked per index): each input written once.
                if pool16::scatter_2x2(g32, ip, h, w, ow, img32) {
                    return;
                }
            }
            img.iter_mut().for_each(|v| *v = T::zero());
            for (&v, &i) in gp.iter().zip(ip) {
                match img.get_mut(i as usize) {
                    Some(slot) => *slot = Num::add(*slot, v),
                    None => bad.store(true, std::sync::atomic::Ordering::Relaxed),
                }
            }
        });
        if bad.into_inner() {
            return runtime_err("max_pool2d_backward: an index lies outside the pooled plane");
        }
        Ok(())
    })?;
    Ok(out)
}
