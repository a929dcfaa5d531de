//! Direct convolution kernels (forward, input gradient, weight gradient) for `(N, C, H, W)`
//! float tensors: each image's columns are unfolded into a per-thread scratch buffer that stays
//! in cache and fed straight to a GEMM, so the full `(N, C·kh·kw, L)` column tensor never goes
//! through memory. Images run side by side across threads (a single image threads its GEMM).
//! `autograd::nn` uses these when no higher-order graph is being recorded.

use crate::dtype::Element;
use crate::error::Result;
use crate::kernels::gemm::{gemm_into, Mat};
use crate::kernels::num::Num;
use crate::kernels::scratch::{self, Plain, Slot};
use crate::kernels::simd;
use crate::kernels::strided::SendPtr;
use crate::kernels::{channel_lanes, sgemm, sgemm_nt};
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
    /// Whether the implicit-GEMM kernels apply: float32 with the AVX-512 or AVX2 kernel, and images
    /// spread over threads (or one thread, or too little work to thread one image's GEMM).
    fn implicit<T: 'static>(&self) -> bool {
        let (_, coutg, kg) = self.per_group();
        std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()
            && sgemm::has_rows_kernel()
            && (!self.split().1 || parallel::num_threads() == 1 || coutg * kg * self.l() < sgemm::PARALLEL_MIN_WORK)
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
    // Whole blocks without an early exit, so the check vectorises.
    simd::wide(#[inline(always)] || s.chunks(256).all(|b| b.iter().fold(true, |ok, &v| ok & (Num::sub(v, v) == T::zero()))))
}

fn forward<T: Num + Plain>(gm: &Geometry, x: SendPtr<T>, w: SendPtr<T>, b: Option<SendPtr<T>>, out: SendPtr<T>) {
    let (cg, coutg, kg) = gm.per_group();
    let (l, threaded) = (gm.l(), gm.split().1);
    let wide = Wide::new(gm.hw[0], gm.hw[1], &gm.win);
    let implicit_offs = wide.filter(|_| gm.implicit::<T>()).map(|wd| wd.offsets(cg));
    // 9 to 16 channels fill one vector (two on AVX2); for more, the 6×32 kernel measured faster
    // (3×3 64→64: 8.8 against 9.4 ms), and for fewer the lanes would be mostly empty. On AVX2,
    // LeNet's conv2 forward went 0.91 → 0.63 ms: the row kernel also computed the padded rows'
    // extra columns (40 %).
    let lanes = implicit_offs.is_some() && LANE_CHANNELS.contains(&coutg) && channel_lanes::forward_available();
    let packed = if implicit_offs.is_some() && !lanes { packed_groups(w.0, gm.groups, coutg, kg) } else { Vec::new() };
    let lane_w: Vec<channel_lanes::LaneWeights> = if lanes {
        (0..gm.groups).map(|gi| channel_lanes::LaneWeights::new(coutg, kg, Mat { ptr: f32s(w.0).wrapping_add(gi * coutg * kg), rs: kg as isize, cs: 1 })).collect()
    } else {
        Vec::new()
    };
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
                let (xg, og) =
                    unsafe { (std::slice::from_raw_parts(xi.add(gi * cg * gm.plane()), cg * gm.plane()), std::slice::from_raw_parts_mut(o, coutg * l)) };
                let bias = b.map(|b| unsafe { std::slice::from_raw_parts(b.at((gi * coutg) as isize) as *const T, coutg) });
                if let (Some(offs), true) = (&implicit_offs, lanes) {
                    lanes_forward_group(&wd, offs, &lane_w[gi], xg, cg, bias, og);
                    continue;
                }
                if let Some(offs) = &implicit_offs {
                    implicit_forward(&wd, offs, &packed[gi], xg, cg, coutg, bias, og, None);
                    continue;
                }
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

/// Reinterprets a float32 operand (callers check `Geometry::implicit`).
fn f32s<T>(p: *const T) -> *const f32 {
    p as *const f32
}

/// `planes` image planes of `src` zero-padded into `buf`, followed by zeros for the overrun of
/// the last wide row.
fn padded_planes<T: Num>(wd: &Wide, src: &[T], planes: usize, buf: &mut [T]) {
    wd.pad(src, planes, buf);
    buf[planes * wd.pp..].iter_mut().for_each(|v| *v = T::zero());
}

/// Forward of one image group through the implicit GEMM: `w (coutg × kg)` times columns read in
/// place from the padded planes (plus bias) into `out`. When an output row fills whole tiles no
/// wider than the padded row, the tiles follow the output rows and are stored in place, and
/// 16-wide rows go two to a 32-column tile; otherwise the product covers the wide grid (fewer
/// wasted columns) and is narrowed.
#[allow(clippy::too_many_arguments)]
fn implicit_forward<T: Num + Plain>(wd: &Wide, offs: &[isize], w: &sgemm::PackedA, x: &[T], cg: usize, coutg: usize, bias: Option<&[T]>, out: &mut [T], k_span: Option<sgemm::KSpan>) {
    scratch::with(Slot::ConvPlanes, cg * wd.pp + wd.overrun(), |planes: &mut [T]| {
        padded_planes(wd, x, cg, planes);
        let src = f32s(planes.as_ptr());
        // SAFETY: T is f32 on this path (`Geometry::implicit`).
        let bias32 = bias.map(|b| unsafe { std::slice::from_raw_parts(f32s(b.as_ptr()), b.len()) });
        let (o, plane) = (out.as_mut_ptr() as *mut f32, wd.oh * wd.ow);
        if wd.ow == 16 && wd.oh >= 2 {
            // Rows y and y + 1 in one tile: the 272-wide grid of a 16-wide output on a 17-wide
            // pitch filled 9 tiles of 32 for 8 rows' worth; two rows per tile fill 8 exactly.
            let pairs = sgemm::Runs { count: wd.oh / 2, len: 32, src_pitch: 2 * wd.wp, dst_pitch: 32, half: wd.wp };
            let done = sgemm::sgemm_rows(w, pairs, src, offs, o, plane, bias32, k_span);
            debug_assert!(done.is_some());
            if wd.oh % 2 == 1 {
                let last = wd.oh - 1;
                // SAFETY: the last output row lies inside the planes' reach and the output.
                let (s, d) = unsafe { (src.add(last * wd.wp), o.add(last * 16)) };
                // Positions relative to the last row's start.
                let tail_span = k_span.map(|f| move |a: usize, b: usize| f(a + last * wd.wp, b + last * wd.wp));
                let done = sgemm::sgemm_rows(w, sgemm::Runs::new(1, 16, 0, 0), s, offs, d, plane, bias32, tail_span.as_ref().map(|f| f as sgemm::KSpan));
                debug_assert!(done.is_some());
            }
            return;
        }
        if wd.ow == wd.wp {
            // The wide grid is the output plane itself (`Wide::shared_columns`).
            let done = sgemm::sgemm_rows(w, sgemm::Runs::new(1, wd.lx, 0, 0), src, offs, o, plane, bias32, k_span);
            debug_assert!(done.is_some());
            return;
        }
        if wd.ow.next_multiple_of(sgemm::ROWS_NR) <= wd.wp {
            let runs = sgemm::Runs::new(wd.oh, wd.ow, wd.wp, wd.ow);
            let done = sgemm::sgemm_rows(w, runs, src, offs, o, plane, bias32, k_span);
            debug_assert!(done.is_some());
            return;
        }
        scratch::with(Slot::ConvRows, coutg * wd.lx, |rows: &mut [T]| {
            let done = sgemm::sgemm_rows(w, sgemm::Runs::new(1, wd.lx, 0, 0), src, offs, rows.as_mut_ptr() as *mut f32, wd.lx, None, k_span);
            debug_assert!(done.is_some());
            wd.narrow(rows, coutg, bias, out);
        });
    });
}

/// Forward of one image group with the output channels in vector lanes
/// (`kernels::channel_lanes`), straight into the output planes.
fn lanes_forward_group<T: Num + Plain>(wd: &Wide, offs: &[isize], w: &channel_lanes::LaneWeights, x: &[T], cg: usize, bias: Option<&[T]>, out: &mut [T]) {
    with_planes(wd, x, cg, |planes| {
        // SAFETY: T is f32 on this path (`Geometry::implicit`).
        let bias = bias.map(|b| unsafe { std::slice::from_raw_parts(f32s(b.as_ptr()), b.len()) });
        let runs = sgemm::Runs::new(wd.oh, wd.ow, wd.wp, wd.ow);
        let done = channel_lanes::forward(w, runs, f32s(planes.as_ptr()), offs, bias, out.as_mut_ptr() as *mut f32, wd.oh * wd.ow);
        debug_assert!(done.is_some());
    });
}

/// Output channels per group for which the channel-lane forward runs (one vector of 16 lanes).
const LANE_CHANNELS: std::ops::RangeInclusive<usize> = 9..=16;

/// Per group, the weights `(rows × k)` at `w` packed for `sgemm_rows`.
fn packed_groups<T>(w: *const T, groups: usize, rows: usize, k: usize) -> Vec<sgemm::PackedA> {
    (0..groups).map(|gi| sgemm::PackedA::new(rows, k, Mat { ptr: f32s(w).wrapping_add(gi * rows * k), rs: k as isize, cs: 1 })).collect()
}

/// Per group, `w` as `(cg × kh·coutg·kw)` with the kernel flipped: the weights of the input
/// gradient as a correlation of the output gradient, columns in `Wide::offsets_by_tap`'s order.
fn flipped_weights<T: Num>(w: *const T, gm: &Geometry) -> Vec<T> {
    let (cg, coutg, _) = gm.per_group();
    let [kh, kw] = gm.win.kernel;
    let mut out = Vec::with_capacity(gm.groups * cg * coutg * kh * kw);
    for gi in 0..gm.groups {
        for c in 0..cg {
            for ki in (0..kh).rev() {
                for o in 0..coutg {
                    for kj in (0..kw).rev() {
                        // SAFETY: (gi·coutg + o, c, ki, kj) indexes the contiguous weight.
                        out.push(unsafe { *w.add((((gi * coutg + o) * cg + c) * kh + ki) * kw + kj) });
                    }
                }
            }
        }
    }
    out
}

/// Bytes of padded planes and widened gradient rows a weight-gradient batch keeps in L2.
const WEIGHT_GRAD_BATCH_BYTES: usize = 384 << 10;

/// Weight gradient of images `imgs` summed into `acc` through the implicit A·Bᵀ kernel: the
/// widened output gradient times columns read in place from padded planes, several images per
/// kernel call so that small images pay the horizontal sums once.
#[allow(clippy::too_many_arguments)]
fn implicit_weight_grad<T: Num + Plain>(wd: &Wide, offs: &[isize], gm: &Geometry, imgs: std::ops::Range<usize>, x: *const T, g: *const T, acc: *mut T) {
    let (cg, coutg, kg) = gm.per_group();
    let l = gm.l();
    let (plane_len, rows_len) = (cg * wd.pp, coutg * wd.lx);
    let batch = (WEIGHT_GRAD_BATCH_BYTES / ((plane_len + rows_len) * std::mem::size_of::<T>())).clamp(1, imgs.len().max(1));
    for i0 in imgs.clone().step_by(batch) {
        let s = batch.min(imgs.end - i0);
        for gi in 0..gm.groups {
            scratch::with(Slot::ConvPlanes, s * plane_len + wd.overrun(), |planes: &mut [T]| {
                scratch::with(Slot::ConvRows, s * rows_len, |rows: &mut [T]| {
                    for j in 0..s {
                        let img = i0 + j;
                        // SAFETY: group gi's input planes and output-gradient block of image img.
                        let (xg, gg) = unsafe {
                            (
                                std::slice::from_raw_parts(x.add((img * gm.c + gi * cg) * gm.plane()), cg * gm.plane()),
                                std::slice::from_raw_parts(g.add((img * gm.cout + gi * coutg) * l), coutg * l),
                            )
                        };
                        wd.pad(xg, cg, &mut planes[j * plane_len..(j + 1) * plane_len]);
                        wd.widen(gg, coutg, &mut rows[j * rows_len..(j + 1) * rows_len]);
                    }
                    planes[s * plane_len..].iter_mut().for_each(|v| *v = T::zero());
                    let operands = sgemm_nt::Rows {
                        a: f32s(rows.as_ptr()),
                        lda: wd.lx,
                        src: f32s(planes.as_ptr()),
                        offs,
                        segments: s,
                        a_step: rows_len,
                        src_step: plane_len,
                    };
                    // SAFETY: group gi's block of the partial sum.
                    let done = sgemm_nt::sgemm_nt_rows(coutg, wd.lx, &operands, unsafe { acc.add(gi * coutg * kg) } as *mut f32, kg, true);
                    debug_assert!(done.is_some());
                });
            });
        }
    }
}

/// Weight gradient with the output channels in the vector lanes (`kernels::channel_lanes`, `w`
/// lanes from `weight_grad_width`): no horizontal sums, and the transposed gradient of one image
/// is read from cache by every tile. One image at a time. (3×3 64→64 forward+backward: 16 %
/// faster than the dot-product kernel at 2 threads on AVX-512; on AVX2 LeNet conv2 and the
/// 3×3 1.29–1.30× faster.)
fn lanes_weight_grad(wd: &Wide, offs: &[isize], gm: &Geometry, imgs: std::ops::Range<usize>, x: *const f32, g: *const f32, acc: *mut f32, w: usize) {
    let (cg, coutg, kg) = gm.per_group();
    let l = gm.l();
    let mut part = vec![0f32; gm.groups * kg * w];
    scratch::with(Slot::ConvPlanes, cg * wd.pp + wd.overrun(), |planes: &mut [f32]| {
        scratch::with(Slot::ConvRows, wd.lx * w, |gt: &mut [f32]| {
            // Lanes past coutg and wide positions past each output row stay zero throughout.
            gt.iter_mut().for_each(|v| *v = 0.0);
            planes[cg * wd.pp..].iter_mut().for_each(|v| *v = 0.0);
            for img in imgs {
                for gi in 0..gm.groups {
                    // SAFETY: group gi's input planes and output-gradient block of image img.
                    let (xg, gg) = unsafe {
                        (
                            std::slice::from_raw_parts(x.add((img * gm.c + gi * cg) * gm.plane()), cg * gm.plane()),
                            std::slice::from_raw_parts(g.add((img * gm.cout + gi * coutg) * l), coutg * l),
                        )
                    };
                    wd.pad(xg, cg, &mut planes[..cg * wd.pp]);
                    let done = channel_lanes::to_lanes(gg, coutg, wd.oh, wd.ow, wd.wp, w, gt);
                    debug_assert!(done.is_some());
                    let done = channel_lanes::weight_grad(wd.lx, w, gt, planes.as_ptr(), offs, &mut part[gi * kg * w..(gi + 1) * kg * w]);
                    debug_assert!(done.is_some());
                }
            }
        });
    });
    for gi in 0..gm.groups {
        for o in 0..coutg {
            for p in 0..kg {
                // SAFETY: group gi's block of the partial sum (coutg × kg).
                unsafe { *acc.add((gi * coutg + o) * kg + p) += part[(gi * kg + p) * w + o] };
            }
        }
    }
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
        // The implicit GEMM correlates the zero-padded output gradient with the flipped kernel.
        let implicit = wide.and_then(|wd| wd.transposed()).filter(|_| gm.implicit::<T>());
        let (packed, goffs) = match implicit {
            Some(t) => (packed_groups(flipped_weights(pw.0, &gm).as_ptr(), gm.groups, cg, coutg * gm.win.kernel[0] * gm.win.kernel[1]), t.offsets_by_tap(coutg)),
            None => (Vec::new(), Vec::new()),
        };
        // Rows are (kernel row, channel, kernel column): a tile sums only the kernel rows that
        // meet the gradient rather than its zero padding (LeNet conv2: 20 % of the products).
        let per_tap_row = coutg * gm.win.kernel[1];
        let k_span = implicit.map(|t| move |first: usize, last: usize| {
            let r = t.tap_rows(first, last);
            r.start * per_tap_row..r.end * per_tap_row
        });
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
                    if let Some(t) = &implicit {
                        implicit_forward(t, &goffs, &packed[gi], gs, coutg, cg, None, gxs, k_span.as_ref().map(|f| f as sgemm::KSpan));
                        continue;
                    }
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
        // A 1×1 window's gradient is one packed GEMM per image (1×1 64→128 forward+backward
        // 10-17 % faster than through the implicit dot products).
        // Without the channel-lane kernels a strided window's gradient is faster through
        // explicit columns than through the dot products (AVX2, 3×3 stride 2, 64 channels:
        // 1.06×); with them (AVX2's form) the two measured level.
        let lanes_or_unit = channel_lanes::weight_grad_width(coutg).is_some() || gm.win.stride == [1, 1];
        let implicit_offs = wide.filter(|_| gm.implicit::<T>() && !gm.pointwise() && sgemm_nt::available() && lanes_or_unit).map(|wd| wd.offsets(cg));
        // One partial sum per chunk of images, added up afterwards.
        let partials: Vec<Vec<T>> = (0..chunks).map(|_| vec![T::zero(); numel]).collect();
        let pp: Vec<SendPtr<T>> = partials.iter().map(|p| SendPtr(p.as_ptr() as *mut T)).collect();
        let n = gm.n;
        parallel::for_chunks(chunks, |ch| {
            if let (Some(wd), Some(offs)) = (wide, &implicit_offs) {
                let imgs = ch * n / chunks..(ch + 1) * n / chunks;
                if let Some(w) = channel_lanes::weight_grad_width(coutg) {
                    lanes_weight_grad(&wd, offs, &gm, imgs, f32s(px.0), f32s(pg.0), pp[ch].0 as *mut f32, w);
                } else {
                    implicit_weight_grad(&wd, offs, &gm, imgs, px.0, pg.0, pp[ch].0);
                }
                return;
            }
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
        // SAFETY: gw holds numel contiguous values.
        let dst = unsafe { std::slice::from_raw_parts_mut(gw.view().ptr::<T>(), numel) };
        simd::wide(#[inline(always)] || {
            for p in &partials {
                dst.iter_mut().zip(p).for_each(|(d, &v)| *d = Num::add(*d, v));
            }
        });
        Ok(())
    })?;
    Ok(gw)
}
