//! Sliding windows over the two spatial dims of `(N, C, H, W)` tensors: `unfold` (im2col: every
//! window as a column) and its adjoint `fold` (col2im: columns summed back into the image).
//! Convolutions are GEMMs over these columns (`autograd::nn`).

use crate::error::{runtime_err, Result};
use crate::kernels::num::Num;
use crate::kernels::runs::copy_run;
use crate::kernels::strided::SendPtr;
use crate::layout::fmt_shape;
use crate::parallel;
use crate::tensor::Tensor;

/// Kernel size, dilation, padding and stride along (height, width).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window2d {
    pub kernel: [usize; 2],
    pub dilation: [usize; 2],
    pub padding: [usize; 2],
    pub stride: [usize; 2],
}

impl Window2d {
    /// Output positions along dim `d` for an input extent `size` (`None` if no window fits).
    pub fn out_len(&self, d: usize, size: usize) -> Option<usize> {
        let span = self.dilation[d] * (self.kernel[d] - 1) + 1;
        let padded = size + 2 * self.padding[d];
        (padded >= span).then(|| (padded - span) / self.stride[d] + 1)
    }
    fn check(&self, op: &str) -> Result<()> {
        for d in 0..2 {
            if self.kernel[d] == 0 || self.stride[d] == 0 || self.dilation[d] == 0 {
                return runtime_err(format!(
                    "{op}: kernel size, stride and dilation should be greater than zero, but got kernel_size={:?}, stride={:?}, dilation={:?}",
                    self.kernel, self.stride, self.dilation
                ));
            }
        }
        Ok(())
    }
}

/// Runs `body` with `T` bound to the float type of `dtype`; other dtypes are unsupported.
macro_rules! float_only {
    ($dtype:expr, $op:expr, $T:ident => $body:expr) => {
        match $dtype {
            $crate::dtype::DType::F32 => {
                type $T = f32;
                $body
            }
            $crate::dtype::DType::F64 => {
                type $T = f64;
                $body
            }
            d => Err($crate::error::Error::DTypeUnsupported { op: $op, dtype: d }),
        }
    };
}
pub(crate) use float_only;

fn dims4(x: &Tensor, op: &str) -> Result<[usize; 4]> {
    let s = x.shape();
    if s.len() != 4 {
        return runtime_err(format!("{op}: expected a 4-D (N, C, H, W) tensor, but got input of size: {}", fmt_shape(&s)));
    }
    Ok([s[0], s[1], s[2], s[3]])
}

impl Window2d {
    /// The grid of window positions that fits an input of spatial `size`.
    pub fn grid(&self, size: [usize; 2]) -> Result<[usize; 2]> {
        self.check("unfold")?;
        match (self.out_len(0, size[0]), self.out_len(1, size[1])) {
            (Some(a), Some(b)) if a > 0 && b > 0 => Ok([a, b]),
            _ => runtime_err(format!(
                "Given input with spatial size ({}, {}), kernel_size={:?}, dilation={:?}, padding={:?}, calculated shape of the array of sliding blocks is non-positive",
                size[0], size[1], self.kernel, self.dilation, self.padding
            )),
        }
    }
}

/// `(N, C, H, W)` → `(N, C·kh·kw, L)`: column `l` holds the window at grid position `l`
/// (`grid` is usually `w.grid(H, W)`; a transposed convolution passes its input's size), rows
/// ordered (c, ki, kj); out-of-image taps read 0.
pub fn unfold(x: &Tensor, w: &Window2d, grid: [usize; 2]) -> Result<Tensor> {
    w.check("unfold")?;
    let [n, c, h, wd] = dims4(x, "unfold")?;
    let [oh, ow] = grid;
    let x = x.contiguous();
    let (kh, kw) = (w.kernel[0], w.kernel[1]);
    let out = Tensor::uninit(&[n, c * kh * kw, oh * ow], x.dtype());
    float_only!(x.dtype(), "unfold", T => {
        let (src, dst) = (SendPtr(x.view().ptr::<T>()), SendPtr(out.view().ptr::<T>()));
        let planes = n * c;
        let per_plane = kh * kw * oh * ow;
        let chunks = parallel::chunks_for(planes * per_plane, parallel::GRAIN).min(planes);
        parallel::for_chunks(chunks, |ch| {
            let (p0, p1) = (ch * planes / chunks, (ch + 1) * planes / chunks);
            for p in p0..p1 {
                // SAFETY: plane p of x and its kh·kw rows of the output are in bounds and owned here.
                let img = unsafe { std::slice::from_raw_parts(src.at((p * h * wd) as isize), h * wd) };
                let cols = unsafe { std::slice::from_raw_parts_mut(dst.at((p * per_plane) as isize), per_plane) };
                im2col_plane::<T>(img, cols, h, wd, oh, ow, w);
            }
        });
        Ok(())
    })?;
    Ok(out)
}

/// The output positions `x0..x1` whose tap `x·stride + offset - pad` falls inside a row of
/// `wd`, and the input column `ix0` of the first one.
#[inline]
fn in_image(ow: usize, wd: usize, stride: usize, offset: usize, pad: usize) -> (usize, usize, usize) {
    // First x with x·stride + offset >= pad, and one past the last with x·stride + offset < wd + pad.
    let x0 = pad.saturating_sub(offset).div_ceil(stride).min(ow);
    let x1 = (wd + pad).saturating_sub(offset).div_ceil(stride).min(ow).max(x0);
    (x0, x1, (x0 * stride + offset).saturating_sub(pad))
}

pub(crate) fn im2col_plane<T: Num>(img: &[T], cols: &mut [T], h: usize, wd: usize, oh: usize, ow: usize, w: &Window2d) {
    let (kh, kw) = (w.kernel[0], w.kernel[1]);
    let (sy, sx) = (w.stride[0], w.stride[1]);
    for ki in 0..kh {
        // Output rows y0..y1 read image rows iy0, iy0 + sy, ...; the others are padding.
        let (y0, y1, iy0) = in_image(oh, h, sy, ki * w.dilation[0], w.padding[0]);
        for kj in 0..kw {
            let row = &mut cols[(ki * kw + kj) * oh * ow..][..oh * ow];
            let (x0, x1, ix0) = in_image(ow, wd, sx, kj * w.dilation[1], w.padding[1]);
            row[..y0 * ow].iter_mut().for_each(|v| *v = T::zero());
            row[y1 * ow..].iter_mut().for_each(|v| *v = T::zero());
            let inside = row[y0 * ow..y1 * ow].chunks_exact_mut(ow.max(1));
            for (r, out_row) in inside.enumerate() {
                let line = &img[(iy0 + r * sy) * wd..][..wd];
                if x0 == 0 && x1 == ow && sx == 1 {
                    copy_run(out_row, &line[ix0..ix0 + ow]);
                    continue;
                }
                out_row[..x0].iter_mut().for_each(|v| *v = T::zero());
                out_row[x1..].iter_mut().for_each(|v| *v = T::zero());
                if sx == 1 {
                    copy_run(&mut out_row[x0..x1], &line[ix0..ix0 + (x1 - x0)]);
                } else {
                    for (i, v) in out_row[x0..x1].iter_mut().enumerate() {
                        *v = line[ix0 + i * sx];
                    }
                }
            }
        }
    }
}

/// The adjoint of `unfold`: `(N, C·kh·kw, L)` columns on a `grid` of window positions summed
/// into an `(N, C, H, W)` image of spatial `size`.
pub fn fold(cols: &Tensor, size: [usize; 2], w: &Window2d, grid: [usize; 2]) -> Result<Tensor> {
    w.check("fold")?;
    let s = cols.shape();
    let k = w.kernel[0] * w.kernel[1];
    if s.len() != 3 || s[1] % k != 0 {
        return runtime_err(format!(
            "Expected size of input's dimension 1 to be divisible by the product of kernel_size, but got input.size(1)={} and kernel_size={:?}",
            s.get(1).copied().unwrap_or(0),
            w.kernel
        ));
    }
    let [h, wd] = size;
    let [oh, ow] = grid;
    if oh * ow != s[2] {
        return runtime_err(format!(
            "Given output_size=({h}, {wd}), kernel_size={:?}, dilation={:?}, padding={:?}, stride={:?}, expected size of input's dimension 2 to match the calculated number of sliding blocks {oh} * {ow} = {}, but got input.size(2)={}.",
            w.kernel, w.dilation, w.padding, w.stride, oh * ow, s[2]
        ));
    }
    let (n, c) = (s[0], s[1] / k);
    let cols = cols.contiguous();
    let out = Tensor::uninit(&[n, c, h, wd], cols.dtype());
    float_only!(cols.dtype(), "fold", T => {
        let (src, dst) = (SendPtr(cols.view().ptr::<T>()), SendPtr(out.view().ptr::<T>()));
        let planes = n * c;
        let per_plane = k * oh * ow;
        let chunks = parallel::chunks_for(planes * per_plane, parallel::GRAIN).min(planes);
        parallel::for_chunks(chunks, |ch| {
            let (p0, p1) = (ch * planes / chunks, (ch + 1) * planes / chunks);
            for p in p0..p1 {
                // SAFETY: plane p of the output and its rows of the columns belong to this chunk.
                let img = unsafe { std::slice::from_raw_parts_mut(dst.at((p * h * wd) as isize), h * wd) };
                let cols = unsafe { std::slice::from_raw_parts(src.at((p * per_plane) as isize), per_plane) };
                col2im_plane::<T>(cols, img, wd, oh, ow, w);
            }
        });
        Ok(())
    })?;
    Ok(out)
}

pub(crate) fn col2im_plane<T: Num>(cols: &[T], img: &mut [T], wd: usize, oh: usize, ow: usize, w: &Window2d) {
    img.iter_mut().for_each(|v| *v = T::zero());
    let h = img.len() / wd.max(1);
    let (kh, kw) = (w.kernel[0], w.kernel[1]);
    for ki in 0..kh {
        for kj in 0..kw {
            let row = &cols[(ki * kw + kj) * oh * ow..][..oh * ow];
            let (x0, x1, ix0) = in_image(ow, wd, w.stride[1], kj * w.dilation[1], w.padding[1]);
            for y in 0..oh {
                let iy = (y * w.stride[0] + ki * w.dilation[0]) as isize - w.padding[0] as isize;
                if iy < 0 || iy >= h as isize {
                    continue;
                }
                let line = &mut img[iy as usize * wd..][..wd];
                let src = &row[y * ow + x0..y * ow + x1];
                if w.stride[1] == 1 {
                    for (d, &v) in line[ix0..ix0 + src.len()].iter_mut().zip(src) {
                        *d = Num::add(*d, v);
                    }
                } else {
                    for (i, &v) in src.iter().enumerate() {
                        let at = ix0 + i * w.stride[1];
                        line[at] = Num::add(line[at], v);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_is_the_adjoint_of_unfold() {
        // <unfold(x), y> == <x, fold(y)> for random x, y.
        let w = Window2d { kernel: [3, 2], dilation: [2, 1], padding: [1, 1], stride: [2, 1] };
        let (n, c, h, wd) = (2, 3, 7, 5);
        let xs: Vec<f64> = (0..n * c * h * wd).map(|i| ((i * 37) % 17) as f64 - 8.0).collect();
        let x = Tensor::from_vec(xs.clone(), &[n, c, h, wd]).unwrap();
        let grid = w.grid([h, wd]).unwrap();
        let u = unfold(&x, &w, grid).unwrap();
        let us = u.shape();
        let ys: Vec<f64> = (0..us.iter().product::<usize>()).map(|i| ((i * 11) % 7) as f64 - 3.0).collect();
        let y = Tensor::from_vec(ys.clone(), &us).unwrap();
        let f = fold(&y, [h, wd], &w, grid).unwrap();
        let lhs: f64 = u.to_vec::<f64>().iter().zip(&ys).map(|(a, b)| a * b).sum();
        let rhs: f64 = xs.iter().zip(f.to_vec::<f64>()).map(|(a, b)| a * b).sum();
        assert_eq!(lhs, rhs);
    }
}
