//! "Wide" columns for convolutions. With the image zero-padded to `hp × wp`, the
//! tap (ki, kj) of output position `t = y·wp + x` is padded-plane element `ki·d₀·wp + kj·d₁ + t`,
//! so each column row is ONE contiguous copy of `oh·wp` values instead of `oh` short ones. The
//! GEMM then also computes the `wp - ow` positions past each output row; they are dropped when
//! the result is narrowed to `(oh, ow)`. On small images (LeNet) this removes most of im2col's
//! per-row cost for a few percent more GEMM work.
//!
//! A stride `(s₀, s₁)` splits each padded plane into `s₀·s₁` phase planes, phase `(a, b)`
//! holding elements `(y·s₀ + a, x·s₁ + b)`: the tap (ki, kj) of output `(y, x)` is then element
//! `(y + ki·d₀ / s₀, x + kj·d₁ / s₁)` of phase `(ki·d₀ mod s₀, kj·d₁ mod s₁)`, again one
//! contiguous run per output row, and the same offsets serve every stride.

use crate::kernels::num::Num;
use crate::kernels::simd;

use super::conv::Window2d;
use crate::kernels::runs::{copy_run, deinterleave_pairs, fill_run, interleave_pairs};

#[derive(Clone, Copy)]
pub(crate) struct Wide {
    /// Padded plane: row pitch and elements.
    pub wp: usize,
    pub pp: usize,
    /// Output rows and width, and wide positions (oh·wp).
    pub oh: usize,
    pub ow: usize,
    pub lx: usize,
    /// Rows of one phase plane (the padded height for unit stride).
    hq: usize,
    h: usize,
    w: usize,
    win: Window2d,
}

impl Wide {
    /// The wide layout for a window over `h × w` planes.
    pub fn new(h: usize, w: usize, win: &Window2d) -> Option<Wide> {
        let (oh, ow) = (win.out_len(0, h)?, win.out_len(1, w)?);
        let [s0, s1] = win.stride;
        let (hq, wq) = ((h + 2 * win.padding[0]).div_ceil(s0), (w + 2 * win.padding[1]).div_ceil(s1));
        Some(Wide { wp: wq, pp: s0 * s1 * hq * wq, oh, ow, lx: oh * wq, hq, h, w, win: *win })
    }

    /// Whether the planes must be copied (padded or phase-split) rather than read as they are.
    pub fn padded(&self) -> bool {
        self.win.padding != [0, 0] || !self.unit_stride()
    }

    fn unit_stride(&self) -> bool {
        self.win.stride == [1, 1]
    }

    /// Where padded-plane element `(y, x)` sits in a channel's (phase-split) block.
    fn at(&self, y: usize, x: usize) -> usize {
        let [s0, s1] = self.win.stride;
        ((y % s0) * s1 + x % s1) * self.hq * self.wp + (y / s0) * self.wp + x / s1
    }

    /// `at(y + padding₀, x) - col(x)` for each image row `y` in order (see `col`): the row
    /// part of `at`, stepped without the divisions `at` does (which were half of `pad`).
    #[inline(always)]
    fn row_bases(&self) -> impl Iterator<Item = usize> + '_ {
        let ([s0, s1], py, plane) = (self.win.stride, self.win.padding[0], self.hq * self.wp);
        // (phase, row within the phase) of padded row y + py
        (0..self.h).scan((py % s0, py / s0), #[inline(always)] move |st, _| {
            let (a, r) = *st;
            *st = if a + 1 == s0 { (0, r + 1) } else { (a + 1, r) };
            Some(a * s1 * plane + r * self.wp)
        })
    }

    /// The column part of `at(y, x)`.
    #[inline(always)]
    fn col(&self, x: usize) -> usize {
        let s1 = self.win.stride[1];
        (x % s1) * self.hq * self.wp + x / s1
    }

    /// The wide layout of the input gradient: the output gradient `(oh, ow)`, zero-padded by
    /// the window's reach less its padding, correlated with the flipped kernel gives back the
    /// `h × w` input (`None` when the padding exceeds the reach or for other strides).
    pub fn transposed(&self) -> Option<Wide> {
        if !self.unit_stride() {
            return None;
        }
        let reach = |d: usize| (self.win.kernel[d] - 1) * self.win.dilation[d];
        let pad = [reach(0).checked_sub(self.win.padding[0])?, reach(1).checked_sub(self.win.padding[1])?];
        let win = Window2d { padding: pad, ..self.win };
        Wide::new(self.oh, self.ow, &win).map(Wide::shared_columns).filter(|t| t.oh == self.h && t.ow == self.w)
    }

    /// The unit-stride layout with a row's right padding serving as the next row's left
    /// padding: pitch `w + px` instead of `w + 2·px`, and `px` zeros more at the end of the
    /// plane, so that tap `(ki, kj)` is still element `ki·d₀·wp + kj·d₁ + t` of the plane. With
    /// the padding at the window's reach (the input gradient of an unpadded convolution), the
    /// output rows fill the pitch exactly: LeNet conv2's input gradient computes its 14 × 14
    /// planes directly instead of a 14 × 18 grid to narrow.
    fn shared_columns(self) -> Wide {
        let [py, px] = self.win.padding;
        let wp = self.w + px;
        Wide { wp, pp: (self.h + 2 * py) * wp + px, lx: self.oh * wp, ..self }
    }

    /// Where column row (c, ki, kj) starts in `planes` consecutive padded planes, in row order.
    pub fn offsets(&self, planes: usize) -> Vec<isize> {
        self.offsets_in(planes, false)
    }

    /// `offsets` with the rows in (ki, c, kj) order: a kernel row's taps over all planes are
    /// consecutive rows, so `tap_rows` names a contiguous run of them.
    pub fn offsets_by_tap(&self, planes: usize) -> Vec<isize> {
        self.offsets_in(planes, true)
    }

    fn offsets_in(&self, planes: usize, by_tap: bool) -> Vec<isize> {
        let [kh, kw] = self.win.kernel;
        let (outer, inner) = if by_tap { (kh, planes) } else { (planes, kh) };
        let mut offs = Vec::with_capacity(planes * kh * kw);
        for a in 0..outer {
            for b in 0..inner {
                let (c, ki) = if by_tap { (b, a) } else { (a, b) };
                for kj in 0..kw {
                    offs.push((c * self.pp + self.tap(ki, kj).0) as isize);
                }
            }
        }
        offs
    }

    /// The kernel rows whose taps meet a real (unpadded) row for some wide position in
    /// `first..=last` (unit stride); the others read only zeros there.
    pub fn tap_rows(&self, first: usize, last: usize) -> std::ops::Range<usize> {
        let (pad, d, kh) = (self.win.padding[0], self.win.dilation[0], self.win.kernel[0]);
        let (ya, yb) = (first / self.wp, last / self.wp);
        // Row y meets real rows through ki with pad ≤ y + ki·d ≤ pad + h - 1.
        let lo = pad.saturating_sub(yb).div_ceil(d);
        let Some(top) = (pad + self.h).checked_sub(ya + 1) else { return lo..lo };
        let hi = (top / d + 1).min(kh);
        lo..hi.max(lo)
    }

    /// Values read past the last padded plane by the wide positions of the last output row.
    pub fn overrun(&self) -> usize {
        (self.win.kernel[1] - 1) * self.win.dilation[1] / self.win.stride[1]
    }

    /// Copies `planes` image planes (`h × w` each, at `src`) into zero-padded planes in `dst`.
    pub fn pad<T: Num>(&self, src: &[T], planes: usize, dst: &mut [T]) {
        // The whole pass in one vector context: a `wide` call per 16-pair row (and the scalar
        // slicing around it) cost more than the row's deinterleave.
        simd::wide(#[inline(always)] || self.pad_planes(src, planes, dst))
    }

    #[inline(always)]
    fn pad_planes<T: Num>(&self, src: &[T], planes: usize, dst: &mut [T]) {
        let px = self.win.padding[1];
        let (col0, col1) = (self.col(px), self.col(px + 1));
        for c in 0..planes {
            let d = &mut dst[c * self.pp..(c + 1) * self.pp];
            // The whole block zeroed first (one `memset`, 1.7 % of a stride-2 forward): zeroing
            // only the gaps between the image's runs measured slower (11.5 % against 8.9 % for
            // this pass), a call's worth of work per 16-value run.
            d.iter_mut().for_each(|v| *v = T::zero());
            for (y, base) in self.row_bases().enumerate() {
                let s = &src[(c * self.h + y) * self.w..][..self.w];
                if self.unit_stride() {
                    copy_run(&mut d[base + col0..][..self.w], s);
                } else if self.win.stride[1] == 2 && self.w >= 2 {
                    // Even and odd columns in one pass, a vector deinterleave (one element at a
                    // time, this copy took a fifth of a stride-2 forward).
                    let (at0, at1) = (base + col0, base + col1);
                    let pairs = self.w / 2;
                    let (even, odd) = if at0 < at1 {
                        let (lo, hi) = d.split_at_mut(at1);
                        (&mut lo[at0..at0 + self.w.div_ceil(2)], &mut hi[..pairs])
                    } else {
                        let (lo, hi) = d.split_at_mut(at0);
                        (&mut hi[..self.w.div_ceil(2)], &mut lo[at1..at1 + pairs])
                    };
                    deinterleave_pairs(s, even, odd);
                    if self.w % 2 == 1 {
                        even[pairs] = s[self.w - 1];
                    }
                } else {
                    self.phase_runs(base, |x0, at, n| {
                        for (j, v) in d[at..at + n].iter_mut().enumerate() {
                            *v = s[x0 + j * self.win.stride[1]];
                        }
                    });
                }
            }
        }
    }

    /// An image row (its `row_bases` entry `base`) as one run per column phase: `f(x0, at, n)`
    /// for the `n` image columns `x0, x0 + s₁, …`, which lie contiguously from `at` in the
    /// channel's phase-split block.
    fn phase_runs(&self, base: usize, mut f: impl FnMut(usize, usize, usize)) {
        let (s1, px) = (self.win.stride[1], self.win.padding[1]);
        for x0 in 0..s1.min(self.w) {
            let n = (self.w - x0).div_ceil(s1);
            f(x0, base + self.col(x0 + px), n);
        }
    }

    /// Where column row (ki, kj) starts in a padded plane, and how many of its `lx` values lie
    /// inside the plane (the rest, past the last row, are never-used wide positions).
    fn tap(&self, ki: usize, kj: usize) -> (usize, usize) {
        let start = self.at(ki * self.win.dilation[0], kj * self.win.dilation[1]);
        (start, self.lx.min(self.pp - start))
    }

    /// Column rows `(c, ki, kj)` (each `lx` long) of `planes` padded planes.
    pub fn columns<T: Num>(&self, src: &[T], planes: usize, cols: &mut [T]) {
        let [kh, kw] = self.win.kernel;
        for c in 0..planes {
            let plane = &src[c * self.pp..(c + 1) * self.pp];
            for ki in 0..kh {
                for kj in 0..kw {
                    let row = &mut cols[((c * kh + ki) * kw + kj) * self.lx..][..self.lx];
                    let (start, n) = self.tap(ki, kj);
                    row[..n].copy_from_slice(&plane[start..start + n]);
                    row[n..].iter_mut().for_each(|v| *v = T::zero());
                }
            }
        }
    }

    /// The adjoint of `columns`: column rows summed into zeroed padded planes.
    pub fn scatter_columns<T: Num>(&self, cols: &[T], planes: usize, dst: &mut [T]) {
        simd::wide(#[inline(always)] || self.scatter_planes(cols, planes, dst))
    }

    #[inline(always)]
    fn scatter_planes<T: Num>(&self, cols: &[T], planes: usize, dst: &mut [T]) {
        let [kh, kw] = self.win.kernel;
        for c in 0..planes {
            let plane = &mut dst[c * self.pp..(c + 1) * self.pp];
            plane.iter_mut().for_each(|v| *v = T::zero());
            for ki in 0..kh {
                for kj in 0..kw {
                    let row = &cols[((c * kh + ki) * kw + kj) * self.lx..][..self.lx];
                    let (start, n) = self.tap(ki, kj);
                    for (d, &v) in plane[start..start + n].iter_mut().zip(&row[..n]) {
                        *d = Num::add(*d, v);
                    }
                }
            }
        }
    }

    /// The interior `h × w` of `planes` padded planes, copied out.
    pub fn crop<T: Num>(&self, src: &[T], planes: usize, dst: &mut [T]) {
        simd::wide(#[inline(always)] || self.crop_planes(src, planes, dst))
    }

    #[inline(always)]
    fn crop_planes<T: Num>(&self, src: &[T], planes: usize, dst: &mut [T]) {
        let px = self.win.padding[1];
        let (col0, col1) = (self.col(px), self.col(px + 1));
        for c in 0..planes {
            for (y, base) in self.row_bases().enumerate() {
                let d = &mut dst[(c * self.h + y) * self.w..][..self.w];
                if self.unit_stride() {
                    copy_run(d, &src[c * self.pp + base + col0..][..self.w]);
                } else if self.win.stride[1] == 2 && self.w >= 2 {
                    // The inverse of `pad`'s deinterleave: even and odd columns in one pass.
                    let block = &src[c * self.pp..(c + 1) * self.pp];
                    let (at0, at1) = (base + col0, base + col1);
                    let pairs = self.w / 2;
                    let (even, odd) = (&block[at0..at0 + self.w.div_ceil(2)], &block[at1..at1 + pairs]);
                    interleave_pairs(even, odd, d);
                    if self.w % 2 == 1 {
                        d[self.w - 1] = even[pairs];
                    }
                } else {
                    let block = &src[c * self.pp..(c + 1) * self.pp];
                    self.phase_runs(base, |x0, at, n| {
                        for (j, &v) in block[at..at + n].iter().enumerate() {
                            d[x0 + j * self.win.stride[1]] = v;
                        }
                    });
                }
            }
        }
    }

    /// `rows` wide rows (pitch `wp`) narrowed to `(oh, ow)` planes, plus `bias[r]` if given.
    pub fn narrow<T: Num>(&self, wide: &[T], rows: usize, bias: Option<&[T]>, dst: &mut [T]) {
        for r in 0..rows {
            let b = bias.map_or(T::zero(), |b| b[r]);
            for y in 0..self.oh {
                let s = &wide[r * self.lx + y * self.wp..][..self.ow];
                let d = &mut dst[(r * self.oh + y) * self.ow..][..self.ow];
                if bias.is_some() {
                    for (d, &v) in d.iter_mut().zip(s) {
                        *d = Num::add(v, b);
                    }
                } else {
                    copy_run(d, s);
                }
            }
        }
    }

    /// `rows` planes of `(oh, ow)` widened to pitch `wp`, zero past `ow`.
    pub fn widen<T: Num>(&self, src: &[T], rows: usize, wide: &mut [T]) {
        for r in 0..rows {
            for y in 0..self.oh {
                let d = &mut wide[r * self.lx + y * self.wp..][..self.wp];
                copy_run(&mut d[..self.ow], &src[(r * self.oh + y) * self.ow..][..self.ow]);
                fill_run(&mut d[self.ow..], T::zero());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::conv::im2col_plane;

    #[test]
    fn wide_columns_narrow_to_im2col() {
        for win in [
            Window2d { kernel: [3, 2], dilation: [1, 2], padding: [1, 0], stride: [1, 1] },
            Window2d { kernel: [5, 5], dilation: [1, 1], padding: [0, 0], stride: [1, 1] },
            Window2d { kernel: [1, 1], dilation: [1, 1], padding: [2, 1], stride: [1, 1] },
            Window2d { kernel: [3, 3], dilation: [1, 1], padding: [1, 1], stride: [2, 2] },
            Window2d { kernel: [3, 2], dilation: [2, 1], padding: [0, 1], stride: [2, 3] },
            Window2d { kernel: [1, 1], dilation: [1, 1], padding: [0, 0], stride: [3, 2] },
        ] {
            for (h, w) in [(7, 6), (6, 7)] {
                let img: Vec<f64> = (0..h * w).map(|i| i as f64 + 1.0).collect();
                let wide = Wide::new(h, w, &win).unwrap();
                let mut planes = vec![f64::NAN; wide.pp];
                wide.pad(&img, 1, &mut planes);
                let k = win.kernel[0] * win.kernel[1];
                let mut cols = vec![f64::NAN; k * wide.lx];
                wide.columns(&planes, 1, &mut cols);
                let mut narrow = vec![f64::NAN; k * wide.oh * wide.ow];
                wide.narrow(&cols, k, None, &mut narrow);
                let mut want = vec![f64::NAN; k * wide.oh * wide.ow];
                im2col_plane(&img, &mut want, h, w, wide.oh, wide.ow, &win);
                assert_eq!(narrow, want);
                let mut back = vec![f64::NAN; h * w];
                wide.crop(&planes, 1, &mut back);
                assert_eq!(back, img);
            }
        }
    }
}

