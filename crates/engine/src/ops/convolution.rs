//! Direct convolution kernels (forward, input gradient, weight gradient) for `(N, C, H, W)`
//! float tensors: each image's columns are unfolded into a per-thread scratch buffer that stays
//! in cache and fed straight to a GEMM, so the full `(N, C·kh·kw, L)` column tensor never goes
//! through memory. Images run side by side across threads (a single image threads its GEMM).
//! `autograd::nn` uses these when no higher-order graph is being recorded.

use crate::error::Result;
use crate::kernels::gemm::{gemm_into, Mat};
use crate::dtype::Element;
use crate::kernels::num::Num;
use crate::kernels::scratch::{self, Plain, Slot};
use crate::kernels::strided::SendPtr;
use crate::parallel;
use crate::tensor::Tensor;

use super::conv::{col2im_plane, float_only, im2col_plane, Window2d};
use super::conv_wide::Wide;

/// The sizes every kernel needs, from x `(N, C, H, W)`, w `(Cout, C/g, kh, kw)` and the grid.
#[derive(Clone, Copy)]
struct Geometry {
    n: usize,
    c: usize,
    hw: [usize; 2],
    cout: usize,
    groups: usize,
    grid: [usize; 2],
    win: Window2d,
}

impl Geometry {
    fn new(xs: &[usize], ws: &[usize], win: &Window2d, groups: usize) -> Geometry {
        let grid = [win.out_len(0, xs[2]).unwrap_or(0), win.out_len(1, xs[3]).unwrap_or(0)];
        Geometry { n: xs[0], c: xs[1], hw: [xs[2], xs[3]], cout: ws[0], groups, grid, win: *win }
    }
    /// Input channels, output channels and column rows (cg·kh·kw) per group.
    fn per_group(&self) -> (usize, usize, usize) {
        let cg = self.c / self.groups;
        (cg, self.cout / self.groups, cg * self.win.kernel[0] * self.win.kernel[1])
    }
    fn l(&self) -> usize {
        self.grid[0] * self.grid[1]
    }
    fn plane(&self) -> usize {
        self.hw[0] * self.hw[1]
    }
    /// A 1×1 window with unit stride and no padding: the image itself is its column matrix.
    fn pointwise(&self) -> bool {
        self.win.kernel == [1, 1] && self.win.stride == [1, 1] && self.win.padding == [0, 0]
    }
    /// (chunks of images, whether each GEMM threads itself).
    fn split(&self) -> (usize, bool) {
        let (_, _, kg) = self.per_group();
        let work = self.n * self.cout * kg * self.l();
        let chunks = if work < 1 << 20 { 1 } else { parallel::num_threads().min(self.n) };
        (chunks.max(1), chunks <= 1)
    }
    /// Runs `f(image)` for every image, images split across threads.
    fn for_images(&self, f: impl Fn(usize) + Sync + Send) {
        let (chunks, _) = self.split();
        let n = self.n;
        parallel::for_chunks(chunks, |ch| (ch * n / chunks..(ch + 1) * n / chunks).for_each(&f));
    }
}

/// Unfolds group `gi` of image `img` (contiguous `(C, H, W)` data at `x`) into `cols` (kg × L).
fn unfold_group<T: Num>(x: *const T, gm: &Geometry, gi: usize, cols: &mut [T]) {
    let (cg, _, _) = gm.per_group();
    let per = gm.win.kernel[0] * gm.win.kernel[1] * gm.l();
    for c in 0..cg {
        // SAFETY: channel gi·cg + c of the image is a plane of H·W values.
        let plane = unsafe { std::slice::from_raw_parts(x.add((gi * cg + c) * gm.plane()), gm.plane()) };
        im2col_plane(plane, &mut cols[c * per..(c + 1) * per], gm.hw[0], gm.hw[1], gm.grid[0], gm.grid[1], &gm.win);
    }
}

/// `conv2d(x, w, b)` (no transposition) on contiguous copies of its operands.
pub fn conv2d(x: &Tensor, w: &Tensor, b: Option<&Tensor>, win: &Window2d, groups: usize) -> Result<Tensor> {
    let (x, w) = (x.contiguous(), w.contiguous());
    let b = b.map(|b| b.contiguous());
    let gm = Geometry::new(&x.shape(), &w.shape(), win, groups);
    let out = Tensor::uninit(&[gm.n, gm.cout, gm.grid[0], gm.grid[1]], x.dtype());
    float_only!(x.dtype(), "conv2d", T => {
        let (px, pw, po) = (SendPtr(x.view().ptr::<T>()), SendPtr(w.view().ptr::<T>()), SendPtr(out.view().ptr::<T>()));
        let pb = b.as_ref().map(|b| SendPtr(b.view().ptr::<T>()));
        forward::<T>(&gm, px, pw, pb, po);
        Ok(())
    })?;
    Ok(out)
}

/// Runs `f` on `planes` zero-padded planes of `src` (`src` itself when there is no padding).
fn with_planes<T: Num + Plain, R>(wd: &Wide, src: &[T], planes: usize, f: impl FnOnce(&[T]) -> R) -> R {
    if !wd.padded() {
        return f(src);
    }
    scratch::with(Slot::ConvPlanes, planes * wd.pp, |buf: &mut [T]| {
        wd.pad(src, planes, buf);
        f(buf)
    })
}

/// Whether every value is finite: the wide layout multiplies never-used positions by zero,
/// which only stays exact when no operand there is infinite or NaN.
fn all_finite<T: Num>(p: *const T, len: usize) -> bool {
    // SAFETY: callers pass a whole contiguous tensor.
    let s = unsafe { std::slice::from_raw_parts(p, len) };
    s.iter().all(|&v| Num::sub(v, v) == T::zero())
}

fn forward<T: Num + Plain>(gm: &Geometry, x: SendPtr<T>, w: SendPtr<T>, b: Option<SendPtr<T>>, out: SendPtr<T>) {
    let (cg, coutg, kg) = gm.per_group();
    let (l, threaded) = (gm.l(), gm.split().1);
    let wide = Wide::new(gm.hw[0], gm.hw[1], &gm.win);
    gm.for_images(|img| {
        let xi = x.at((img * gm.c * gm.plane()) as isize) as *const T;
        for gi in 0..gm.groups {
            let a = Mat { ptr: w.at((gi * coutg * kg) as isize) as *const T, rs: kg as isize, cs: 1 };
            let o = out.at(((img * gm.cout + gi * coutg) * l) as isize);
            if gm.pointwise() {
                // SAFETY: channels gi·cg.. of the image are kg rows of L values.
                let cols = Mat { ptr: unsafe { xi.add(gi * kg * l) }, rs: l as isize, cs: 1 };
                gemm_into(coutg, l, kg, a, cols, o, false, threaded);
            } else if let Some(wd) = wide {
                // SAFETY: this group's input channels, output block and biases.
                let (xg, og) = unsafe { (std::slice::from_raw_parts(xi.add(gi * cg * gm.plane()), cg * gm.plane()), std::slice::from_raw_parts_mut(o, coutg * l)) };
                let bias = b.map(|b| unsafe { std::slice::from_raw_parts(b.at((gi * coutg) as isize) as *const T, coutg) });
                with_planes(&wd, xg, cg, |planes| {
                    scratch::with(Slot::ConvCols, kg * wd.lx, |cols: &mut [T]| {
                        wd.columns(planes, cg, cols);
                        scratch::with(Slot::ConvRows, coutg * wd.lx, |rows: &mut [T]| {
                            gemm_into(coutg, wd.lx, kg, a, Mat { ptr: cols.as_ptr(), rs: wd.lx as isize, cs: 1 }, rows.as_mut_ptr(), false, threaded);
                            wd.narrow(rows, coutg, bias, og);
                        });
                    });
                });
                continue;
            } else {
                scratch::with(Slot::ConvCols, kg * l, |cols: &mut [T]| {
                    unfold_group(xi, gm, gi, cols);
                    gemm_into(coutg, l, kg, a, Mat { ptr: cols.as_ptr(), rs: l as isize, cs: 1 }, o, false, threaded);
                });
            }
            if let Some(b) = b {
                for co in 0..coutg {
                    // SAFETY: row co of this group's output block, and bias entry gi·coutg + co.
                    let (row, bv) = unsafe { (std::slice::from_raw_parts_mut(o.add(co * l), l), *b.at((gi * coutg + co) as isize)) };
                    row.iter_mut().for_each(|v| *v = Num::add(*v, bv));
                }
            }
        }
    });
}

/// The gradient of `conv2d` for its input `(N, C, H, W)` of spatial `size`, from `g`.
pub fn conv2d_input_grad(g: &Tensor, w: &Tensor, xshape: &[usize], win: &Window2d, groups: usize) -> Result<Tensor> {
    let (g, w) = (g.contiguous(), w.contiguous());
    let gm = Geometry::new(xshape, &w.shape(), win, groups);
    let gx = Tensor::uninit(xshape, g.dtype());
    let (cg, coutg, kg) = gm.per_group();
    let (l, threaded) = (gm.l(), gm.split().1);
    float_only!(g.dtype(), "conv2d", T => {
        let (pg, pw, px) = (SendPtr(g.view().ptr::<T>()), SendPtr(w.view().ptr::<T>()), SendPtr(gx.view().ptr::<T>()));
        let wide = Wide::new(gm.hw[0], gm.hw[1], &gm.win).filter(|_| all_finite(pw.0, w.numel()));
        gm.for_images(|img| {
            for gi in 0..gm.groups {
                // W_gᵀ (kg × coutg) · g_i,g (coutg × L): the gradient of this group's columns.
                let wt = Mat { ptr: pw.at((gi * coutg * kg) as isize) as *const T, rs: 1, cs: kg as isize };
                let gg = Mat { ptr: pg.at(((img * gm.cout + gi * coutg) * l) as isize) as *const T, rs: l as isize, cs: 1 };
                let xi = px.at(((img * gm.c + gi * cg) * gm.plane()) as isize);
                if gm.pointwise() {
                    gemm_into(kg, l, coutg, wt, gg, xi, false, threaded);
                    continue;
                }
                if let Some(wd) = wide {
                    // SAFETY: this group's output-gradient block and input-gradient planes.
                    let (gs, gxs) = unsafe { (std::slice::from_raw_parts(gg.ptr, coutg * l), std::slice::from_raw_parts_mut(xi, cg * gm.plane())) };
                    scratch::with(Slot::ConvRows, coutg * wd.lx, |rows: &mut [T]| {
                        wd.widen(gs, coutg, rows);
                        scratch::with(Slot::ConvCols, kg * wd.lx, |cols: &mut [T]| {
                            let g_wide = Mat { ptr: rows.as_ptr(), rs: wd.lx as isize, cs: 1 };
                            gemm_into(kg, wd.lx, coutg, wt, g_wide, cols.as_mut_ptr(), false, threaded);
                            if wd.padded() {
                                scratch::with(Slot::ConvPlanes, cg * wd.pp, |planes: &mut [T]| {
                                    wd.scatter_columns(cols, cg, planes);
                                    wd.crop(planes, cg, gxs);
                                });
                            } else {
                                wd.scatter_columns(cols, cg, gxs);
                            }
                        });
                    });
                    continue;
                }
                scratch::with(Slot::ConvCols, kg * l, |cols: &mut [T]| {
                    gemm_into(kg, l, coutg, wt, gg, cols.as_mut_ptr(), false, threaded);
                    let per = gm.win.kernel[0] * gm.win.kernel[1] * l;
                    for c in 0..cg {
                        // SAFETY: channel c of this group's block of the gradient image.
                        let plane = unsafe { std::slice::from_raw_parts_mut(xi.add(c * gm.plane()), gm.plane()) };
                        col2im_plane(&cols[c * per..(c + 1) * per], plane, gm.hw[1], gm.grid[0], gm.grid[1], &gm.win);
                    }
                });
            }
        });
        Ok(())
    })?;
    Ok(gx)
}

/// The gradient of `conv2d` for its weight (shape `wshape`), from input `x` and `g`.
pub fn conv2d_weight_grad(x: &Tensor, g: &Tensor, wshape: &[usize], win: &Window2d, groups: usize) -> Result<Tensor> {
    let (x, g) = (x.contiguous(), g.contiguous());
    let gm = Geometry::new(&x.shape(), wshape, win, groups);
    let (cg, coutg, kg) = gm.per_group();
    let (l, threaded) = (gm.l(), gm.split().1);
    // Partial sums over fixed groups of images, added in order: the result does not depend on
    // the thread count.
    let big = gm.n * gm.cout * kg * l >= 1 << 16;
    let (chunks, numel) = (if big { gm.n.clamp(1, 8) } else { 1 }, gm.cout * kg);
    let gw = Tensor::zeros(wshape, x.dtype());
    float_only!(x.dtype(), "conv2d", T => {
        let (px, pg) = (SendPtr(x.view().ptr::<T>()), SendPtr(g.view().ptr::<T>()));
        let wide = Wide::new(gm.hw[0], gm.hw[1], &gm.win).filter(|_| all_finite(px.0, x.numel()));
        // One partial sum per chunk of images, added up afterwards.
        let partials: Vec<Vec<T>> = (0..chunks).map(|_| vec![T::zero(); numel]).collect();
        let pp: Vec<SendPtr<T>> = partials.iter().map(|p| SendPtr(p.as_ptr() as *mut T)).collect();
        let n = gm.n;
        parallel::for_chunks(chunks, |ch| {
            for img in ch * n / chunks..(ch + 1) * n / chunks {
                let xi = px.at((img * gm.c * gm.plane()) as isize) as *const T;
                for gi in 0..gm.groups {
                    // g_i,g (coutg × L) · columnsᵀ (L × kg), accumulated.
                    let gg = Mat { ptr: pg.at(((img * gm.cout + gi * coutg) * l) as isize) as *const T, rs: l as isize, cs: 1 };
                    let acc = pp[ch].at((gi * coutg * kg) as isize);
                    if gm.pointwise() {
                        // SAFETY: channels of group gi of image img.
                        let cols = Mat { ptr: unsafe { xi.add(gi * kg * l) }, rs: 1, cs: l as isize };
                        gemm_into(coutg, kg, l, gg, cols, acc, true, threaded);
                        continue;
                    }
                    if let Some(wd) = wide {
                        // SAFETY: this group's output-gradient block and input channels.
                        let (gs, xg) = unsafe { (std::slice::from_raw_parts(gg.ptr, coutg * l), std::slice::from_raw_parts(xi.add(gi * cg * gm.plane()), cg * gm.plane())) };
                        scratch::with(Slot::ConvRows, coutg * wd.lx, |rows: &mut [T]| {
                            wd.widen(gs, coutg, rows);
                            with_planes(&wd, xg, cg, |planes| {
                                scratch::with(Slot::ConvCols, kg * wd.lx, |cols: &mut [T]| {
                                    wd.columns(planes, cg, cols);
                                    let g_wide = Mat { ptr: rows.as_ptr(), rs: wd.lx as isize, cs: 1 };
                                    gemm_into(coutg, kg, wd.lx, g_wide, Mat { ptr: cols.as_ptr(), rs: 1, cs: wd.lx as isize }, acc, true, threaded);
                                });
                            });
                        });
                        continue;
                    }
                    scratch::with(Slot::ConvCols, kg * l, |cols: &mut [T]| {
                        unfold_group(xi, &gm, gi, cols);
                        gemm_into(coutg, kg, l, gg, Mat { ptr: cols.as_ptr(), rs: 1, cs: l as isize }, acc, true, threaded);
                    });
                }
            }
        });
        let dst = gw.view().ptr::<T>();
        for p in &partials {
            for (i, &v) in p.iter().enumerate() {
                // SAFETY: gw holds numel contiguous values.
                unsafe { *dst.add(i) = Num::add(*dst.add(i), v) };
            }
        }
        Ok(())
    })?;
    Ok(gw)
}
