//! The differentiable neural-network ops: convolution (GEMMs over `unfold` columns), pooling
//! and normalization. Each records one node named as PyTorch names it; the backward rules in
//! `rules.rs` are written with differentiable ops, so higher-order gradients work.

use crate::dtype::DType;
use crate::error::{runtime_err, shape_err, Error, Result};
use crate::layout::fmt_shape;
use crate::ops::batch_norm;
use crate::ops::layer_norm;
use crate::ops::conv::{self, Window2d};
use crate::ops::convolution;
use crate::ops::elementwise::UnaryOp;
use crate::ops::pool::{self, Taps};
use crate::tensor::Tensor;

use super::functions as f;
use super::mode::no_grad;
use super::node::Saved;
use super::record::record;
use super::rules::Rule;

/// `unfold` of `(N, C, H, W)` into columns on a `grid` of window positions.
pub fn unfold_grid(x: &Tensor, win: &Window2d, grid: [usize; 2]) -> Result<Tensor> {
    let out = conv::unfold(x, win, grid)?;
    let s = x.shape();
    record(|| Rule::Unfold { size: [s[2], s[3]], win: *win, grid }, &[Some(x)], &[&out]);
    Ok(out)
}

/// `fold` of columns on a `grid` into `(N, C, H, W)` of spatial `size`.
pub fn fold_grid(cols: &Tensor, size: [usize; 2], win: &Window2d, grid: [usize; 2]) -> Result<Tensor> {
    let out = conv::fold(cols, size, win, grid)?;
    record(|| Rule::Fold { win: *win, grid }, &[Some(cols)], &[&out]);
    Ok(out)
}

/// `F.unfold` on `(N, C, H, W)` or unbatched `(C, H, W)`: every window that fits.
pub fn unfold(x: &Tensor, win: &Window2d) -> Result<Tensor> {
    let s = x.shape();
    if s.len() == 3 {
        let x4 = crate::ops::shape::unsqueeze(x, 0)?;
        let out = conv::unfold(&x4, win, win.grid([s[1], s[2]])?)?;
        let out = crate::ops::shape::squeeze_dims(&out, &[0])?;
        record(|| Rule::Unfold { size: [s[1], s[2]], win: *win, grid: win.grid([s[1], s[2]]).unwrap_or([0, 0]) }, &[Some(x)], &[&out]);
        return Ok(out);
    }
    if s.len() != 4 {
        return runtime_err(format!("Expected 3D or 4D (batch mode) tensor with optional 0 dim batch size for input, but got: {}", fmt_shape(&s)));
    }
    unfold_grid(x, win, win.grid([s[2], s[3]])?)
}

/// `F.fold`: `(N, C·kh·kw, L)` (or unbatched `(C·kh·kw, L)`) columns summed into an image of
/// spatial `size`.
pub fn fold(cols: &Tensor, size: [usize; 2], win: &Window2d) -> Result<Tensor> {
    let grid = [win.out_len(0, size[0]).unwrap_or(0), win.out_len(1, size[1]).unwrap_or(0)];
    match cols.ndim() {
        3 => fold_grid(cols, size, win, grid),
        2 => {
            let c3 = crate::ops::shape::unsqueeze(cols, 0)?;
            let out = crate::ops::shape::squeeze_dims(&conv::fold(&c3, size, win, grid)?, &[0])?;
            record(|| Rule::Fold { win: *win, grid }, &[Some(cols)], &[&out]);
            Ok(out)
        }
        _ => runtime_err(format!(
            "Expected 2D or 3D (batch mode) tensor for input with possibly 0 batch size and non-zero dimensions for input, but got: {}",
            fmt_shape(&cols.shape())
        )),
    }
}

/// What a convolution does beyond its operands.
#[derive(Clone, Copy, Debug)]
pub struct ConvSpec {
    pub win: Window2d,
    pub groups: usize,
    pub transposed: bool,
    pub output_padding: [usize; 2],
    /// 1 for conv1d (run as a conv2d of height 1), 2 for conv2d.
    pub spatial: usize,
}

fn type_name(d: DType) -> &'static str {
    d.legacy_name()
}

/// `x`, `w` (and `g`) viewed as 4-D `(N, C, H, W)`: conv1d gains a height of 1, unbatched
/// input a batch of 1.
pub(crate) fn as4(t: &Tensor, spatial: usize, batched: bool) -> Result<Tensor> {
    let mut t = t.clone();
    if !batched {
        t = f::unsqueeze(&t, 0)?;
    }
    if spatial == 1 {
        t = f::unsqueeze(&t, 2)?;
    }
    Ok(t)
}

/// `conv1d`/`conv2d`/`conv_transpose2d` with PyTorch's argument checks and messages.
pub fn convolution(x: &Tensor, w: &Tensor, b: Option<&Tensor>, spec: &ConvSpec) -> Result<Tensor> {
    let name = match (spec.transposed, spec.spatial) {
        (true, _) => "conv_transpose2d",
        (false, 1) => "conv1d",
        _ => "conv2d",
    };
    let nd = spec.spatial + 2;
    if x.ndim() != nd && x.ndim() != nd - 1 {
        return runtime_err(format!(
            "Expected {}D (unbatched) or {}D (batched) input to {name}, but got input of size: {}",
            nd - 1,
            nd,
            fmt_shape(&x.shape())
        ));
    }
    if w.ndim() != nd {
        return runtime_err(format!("weight should have {nd} dimensions for {name}, but got weight of size {}", fmt_shape(&w.shape())));
    }
    for (what, t) in [("weight", Some(w)), ("bias", b)] {
        if let Some(t) = t {
            if t.dtype() != x.dtype() {
                return runtime_err(format!(
                    "Input type ({}) and {what} type ({}) should be the same",
                    type_name(x.dtype()),
                    type_name(t.dtype())
                ));
            }
        }
    }
    if !x.dtype().is_float() {
        return Err(Error::DTypeUnsupported { op: "convolution", dtype: x.dtype() });
    }
    let batched = x.ndim() == nd;
    let (x4, w4) = no_grad(|| -> Result<(Tensor, Tensor)> { Ok((as4(x, spec.spatial, batched)?, as4(w, spec.spatial, true)?)) })?;
    let (xs, ws) = (x4.shape(), w4.shape());
    let g = spec.groups;
    if g == 0 {
        return runtime_err("non-positive groups is not supported");
    }
    let (cin, cout) = if spec.transposed { (ws[0], ws[1] * g) } else { (ws[1] * g, ws[0]) };
    if spec.transposed && ws[0] % g != 0 || !spec.transposed && ws[0] % g != 0 {
        return runtime_err(format!(
            "Given groups={g}, expected weight to be divisible by {g} at dimension 0, but got weight of size {} instead",
            fmt_shape(&w.shape())
        ));
    }
    if xs[1] != cin {
        let expect = if spec.transposed {
            format!("Given transposed=1, weight of size {}, expected input{} to have {cin} channels, but got {} channels instead", fmt_shape(&w.shape()), fmt_shape(&x.shape()), xs[1])
        } else {
            format!("Given groups={g}, weight of size {}, expected input{} to have {cin} channels, but got {} channels instead", fmt_shape(&w.shape()), fmt_shape(&x.shape()), xs[1])
        };
        return runtime_err(expect);
    }
    if let Some(b) = b {
        if b.ndim() != 1 || b.shape()[0] != cout {
            return runtime_err(format!(
                "Given weight of size {}, expected bias to be 1-dimensional with {cout} elements, but got bias of size {} instead",
                fmt_shape(&w.shape()),
                fmt_shape(&b.shape())
            ));
        }
    }
    let win = spec.win;
    if spec.transposed {
        for d in 0..2 {
            if spec.output_padding[d] >= win.stride[d] && spec.output_padding[d] >= win.dilation[d] {
                return runtime_err("output padding must be smaller than either stride or dilation");
            }
        }
    } else {
        for d in 0..2 {
            let padded = xs[2 + d] + 2 * win.padding[d];
            let span = win.dilation[d] * (ws[2 + d].max(1) - 1) + 1;
            if padded < span {
                let (ph, pw) = (xs[2] + 2 * win.padding[0], xs[3] + 2 * win.padding[1]);
                let kdesc = if spec.spatial == 1 { format!("({})", ws[3]) } else { format!("({} x {})", ws[2], ws[3]) };
                let pdesc = if spec.spatial == 1 { format!("({pw})") } else { format!("({ph} x {pw})") };
                return runtime_err(format!(
                    "Calculated padded input size per channel: {pdesc}. Kernel size: {kdesc}. Kernel size can't be greater than actual input size"
                ));
            }
        }
    }
    let win = Window2d { kernel: [ws[2], ws[3]], ..win };
    let out4 = if spec.transposed {
        no_grad(|| conv_forward(&x4, &w4, b, &win, spec))?
    } else {
        convolution::conv2d(&x4, &w4, b, &win, spec.groups)?
    };
    let out = if batched && spec.spatial == 2 {
        out4
    } else {
        let mut s = out4.shape().to_vec();
        if spec.spatial == 1 {
            s.remove(2);
        }
        if !batched {
            s.remove(0);
        }
        crate::ops::shape::reshape(&out4, &s.iter().map(|&d| d as i64).collect::<Vec<_>>())?
    };
    let rule = || Rule::Conv { x: Saved::input(x), w: Saved::input(w), spec: ConvSpec { win, ..*spec }, batched };
    record(rule, &[Some(x), Some(w), b], &[&out]);
    Ok(out)
}

fn i64s(v: &[usize]) -> Vec<i64> {
    v.iter().map(|&d| d as i64).collect()
}

/// The forward as differentiable ops on 4-D operands: transposed convolutions run it (plain
/// ones go to `ops::convolution`; this form of them stays as the reference the kernels mirror).
pub(crate) fn conv_forward(x: &Tensor, w: &Tensor, b: Option<&Tensor>, win: &Window2d, spec: &ConvSpec) -> Result<Tensor> {
    let (xs, ws) = (x.shape(), w.shape());
    let (n, g) = (xs[0] as i64, spec.groups as i64);
    let k = (ws[2] * ws[3]) as i64;
    let out = if !spec.transposed {
        let cols = unfold(x, win)?;
        let l = cols.shape()[2] as i64;
        let cout = ws[0] as i64;
        let colsg = f::reshape(&cols, &[n, g, cols.shape()[1] as i64 / g, l])?;
        let wg = f::reshape(w, &[g, cout / g, -1])?;
        let y = f::matmul(&wg, &colsg)?;
        let (oh, ow) = (win.out_len(0, xs[2]).unwrap_or(0), win.out_len(1, xs[3]).unwrap_or(0));
        f::reshape(&y, &[n, cout, oh as i64, ow as i64])?
    } else {
        let (cin, cout) = (ws[0] as i64, ws[1] as i64 * g);
        let hw = (xs[2] * xs[3]) as i64;
        let xg = f::reshape(x, &[n, g, cin / g, hw])?;
        let wg = f::reshape(w, &[g, cin / g, (cout / g) * k])?;
        let cols = f::matmul(&f::transpose(&wg, 1, 2)?, &xg)?;
        let cols = f::reshape(&cols, &[n, cout * k, hw])?;
        fold_grid(&cols, transposed_size(&xs, win, spec), win, [xs[2], xs[3]])?
    };
    match b {
        Some(b) => f::add(&out, &f::reshape(b, &[1, -1, 1, 1])?),
        None => Ok(out),
    }
}

/// A transposed conv's output size: one window per input position, cropped by the padding
/// and extended by the output padding.
fn transposed_size(xs: &[usize], win: &Window2d, spec: &ConvSpec) -> [usize; 2] {
    let d = |i: usize| {
        ((xs[2 + i] - 1) * win.stride[i] + win.dilation[i] * (win.kernel[i] - 1) + 1 + spec.output_padding[i]).saturating_sub(2 * win.padding[i])
    };
    [d(0), d(1)]
}

/// Gradients of a convolution for `(x, w, b)` from the output gradient `g` (4-D operands).
pub(crate) fn conv_backward(x: &Tensor, w: &Tensor, g: &Tensor, spec: &ConvSpec, need: [bool; 3]) -> Result<[Option<Tensor>; 3]> {
    let (xs, ws) = (x.shape(), w.shape());
    let win = &spec.win;
    let (n, gr) = (xs[0] as i64, spec.groups as i64);
    let k = (ws[2] * ws[3]) as i64;
    let gb = if need[2] { Some(f::sum(g, Some(&[0, 2, 3]), false, None)?) } else { None };
    if !spec.transposed && !super::record::needs_grad(&[Some(g), Some(x), Some(w)]) {
        // Plain first-order backward: the fused kernels.
        let gx = need[0].then(|| convolution::conv2d_input_grad(g, w, &xs, win, spec.groups)).transpose()?;
        let gw = need[1].then(|| convolution::conv2d_weight_grad(x, g, &ws, win, spec.groups)).transpose()?;
        return Ok([gx, gw, gb]);
    }
    let (gx, gw) = if !spec.transposed {
        let cout = ws[0] as i64;
        let l = (g.shape()[2] * g.shape()[3]) as i64;
        let gm = f::reshape(g, &[n, gr, cout / gr, l])?;
        let gx = if need[0] {
            let wg = f::reshape(w, &[gr, cout / gr, -1])?;
            let cols = f::matmul(&f::transpose(&wg, 1, 2)?, &gm)?;
            let cols = f::reshape(&cols, &[n, -1, l])?;
            Some(fold_grid(&cols, [xs[2], xs[3]], win, [g.shape()[2], g.shape()[3]])?)
        } else {
            None
        };
        let gw = if need[1] {
            let cols = unfold(x, win)?;
            let colsg = f::reshape(&cols, &[n, gr, cols.shape()[1] as i64 / gr, l])?;
            let per = f::matmul(&gm, &f::transpose(&colsg, 2, 3)?)?;
            Some(f::reshape(&f::sum(&per, Some(&[0]), false, None)?, &i64s(&ws))?)
        } else {
            None
        };
        (gx, gw)
    } else {
        let (cin, cout) = (ws[0] as i64, ws[1] as i64 * gr);
        let hw = (xs[2] * xs[3]) as i64;
        let cols = f::reshape(&unfold_grid(g, win, [xs[2], xs[3]])?, &[n, gr, (cout / gr) * k, hw])?;
        let wg = f::reshape(w, &[gr, cin / gr, (cout / gr) * k])?;
        let gx = if need[0] { Some(f::reshape(&f::matmul(&wg, &cols)?, &i64s(&xs))?) } else { None };
        let gw = if need[1] {
            let xg = f::reshape(x, &[n, gr, cin / gr, hw])?;
            let per = f::matmul(&xg, &f::transpose(&cols, 2, 3)?)?;
            Some(f::reshape(&f::sum(&per, Some(&[0]), false, None)?, &i64s(&ws))?)
        } else {
            None
        };
        (gx, gw)
    };
    Ok([gx, gw, gb])
}

/// Which pooling a node recorded (for its name and its backward).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    Max,
    AdaptiveMax,
    Avg,
    AdaptiveAvg,
}

/// Max pooling over the last two dims; returns values and flat per-plane indices.
pub fn max_pool(x: &Tensor, rows: &[Taps], cols: &[Taps], kind: PoolKind) -> Result<(Tensor, Tensor)> {
    let (out, idx) = pool::max_pool(x, rows, cols)?;
    let rule = || Rule::MaxPool { indices: idx.clone(), shape: x.shape(), kind };
    record(rule, &[Some(x)], &[&out]);
    Ok((out, idx))
}

/// Average pooling over the last two dims; `adjoint` runs its transpose (the backward).
pub fn avg_pool(x: &Tensor, rows: &[Taps], cols: &[Taps], over: Option<i64>, kind: PoolKind, adjoint: Option<[usize; 2]>) -> Result<Tensor> {
    let s = x.shape();
    let size = [s[s.len().saturating_sub(2)], s[s.len().saturating_sub(1)]];
    let out = match adjoint {
        None => pool::avg_pool(x, rows, cols, over)?,
        Some(full) => pool::avg_pool_adjoint(x, full, rows, cols, over)?,
    };
    let rule = || Rule::AvgPool { rows: rows.to_vec(), cols: cols.to_vec(), over, kind, size, adjoint: adjoint.is_some() };
    record(rule, &[Some(x)], &[&out]);
    Ok(out)
}

/// Scatter-adds pooled gradients back to the argmax positions: one kernel, or differentiable
/// ops when the backward itself is being recorded (higher-order gradients).
pub(crate) fn max_pool_backward(g: &Tensor, indices: &Tensor, shape: &[usize]) -> Result<Tensor> {
    if !super::record::needs_grad(&[Some(g)]) {
        return pool::max_pool_scatter(g, indices, shape);
    }
    let nd = shape.len();
    let p: usize = shape[..nd - 2].iter().product();
    let hw = (shape[nd - 2] * shape[nd - 1]) as i64;
    let gp = f::reshape(g, &[p as i64, -1])?;
    let ip = crate::ops::shape::reshape(indices, &[p as i64, -1])?;
    let zeros = Tensor::zeros(&[p, hw as usize], g.dtype());
    let gx = f::scatter(&zeros, 1, &ip, (&gp).into(), true)?;
    f::reshape(&gx, &i64s(shape))
}

/// How a normalization groups its input: statistics over `dims` of `x` viewed as `groups`
/// (if set), affine parameters broadcast as `affine`.
#[derive(Clone, Debug)]
pub struct NormSpec {
    pub groups: Option<Vec<i64>>,
    pub dims: Vec<i64>,
    pub affine: Vec<i64>,
    pub eps: f64,
    pub name: &'static str,
}

/// `(x - mean) / sqrt(var + eps) * w + b` with batch statistics, or with `fixed` ones
/// (shaped to broadcast against the grouped view); returns the output and the batch
/// mean/biased variance (kept dims) it used.
pub fn normalize(x: &Tensor, w: Option<&Tensor>, b: Option<&Tensor>, spec: &NormSpec, fixed: Option<(&Tensor, &Tensor)>) -> Result<(Tensor, Tensor, Tensor)> {
    if !x.dtype().is_float() {
        return Err(Error::DTypeUnsupported { op: spec.name, dtype: x.dtype() });
    }
    let (out, mean, var) = no_grad(|| normalize_forward(x, w, b, spec, fixed))?;
    let rule = || Rule::Normalize {
        x: Saved::input(x),
        w: w.map(Saved::input),
        spec: spec.clone(),
        fixed: fixed.map(|(m, v)| (m.clone(), v.clone())),
    };
    record(rule, &[Some(x), w, b], &[&out]);
    Ok((out, mean, var))
}

pub(crate) fn grouped(x: &Tensor, spec: &NormSpec) -> Result<Tensor> {
    match &spec.groups {
        Some(g) => f::reshape(x, g),
        None => Ok(x.clone()),
    }
}

/// Mean and biased variance of the grouped view over `spec.dims` (kept dims), as
/// differentiable ops.
pub(crate) fn stats(xs: &Tensor, spec: &NormSpec) -> Result<(Tensor, Tensor)> {
    let mean = f::mean(xs, Some(&spec.dims), true, None)?;
    let c = f::sub(xs, &mean)?;
    let var = f::mean(&f::mul(&c, &c)?, Some(&spec.dims), true, None)?;
    Ok((mean, var))
}

/// The `(N, C, S)` geometry when `spec` is batch norm's (statistics over every dim but 1) and
/// the tensors are dense float32: then the per-channel kernels of `ops::batch_norm` run.
fn batch_geometry(x: &Tensor, spec: &NormSpec, others: &[Option<&Tensor>]) -> Option<(usize, usize, usize)> {
    let nd = x.ndim() as i64;
    let over_all_but_channels = spec.groups.is_none() && spec.dims.iter().copied().eq((0..nd).filter(|&d| d != 1));
    if over_all_but_channels { batch_norm::geometry(x, others) } else { None }
}

/// Batch statistics as (mean, 1/sqrt(var + eps), var), from `fixed` or computed.
fn batch_stats(x: &Tensor, geo: (usize, usize, usize), eps: f64, fixed: Option<(&Tensor, &Tensor)>) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (mean, var) = match fixed {
        Some((m, v)) => (m.to_vec::<f32>().into_iter().map(f64::from).collect(), v.to_vec::<f32>().into_iter().map(f64::from).collect()),
        None => batch_norm::stats(x, geo),
    };
    let rstd = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
    (mean, rstd, var)
}

/// The `(rows, D)` geometry when `spec` is layer norm's (statistics over the trailing dims, the
/// affine parameters of their shape, no fixed statistics) and the tensors are dense float32:
/// then the per-row kernels of `ops::layer_norm` run.
fn layer_geometry(x: &Tensor, spec: &NormSpec, fixed: bool, others: &[Option<&Tensor>]) -> Option<(usize, usize)> {
    let (s, k) = (x.shape(), spec.affine.len());
    let nd = s.len();
    let trailing = !fixed
        && spec.groups.is_none()
        && (1..=nd).contains(&k)
        && spec.dims.iter().copied().eq((nd - k) as i64..nd as i64)
        && spec.affine.iter().zip(&s[nd - k..]).all(|(&a, &d)| a as usize == d);
    if trailing { layer_norm::geometry(x, k, others) } else { None }
}

/// Per-row statistics shaped like the input with its normalized dims kept as 1.
fn row_stats_tensors(x: &Tensor, k: usize, mean: &[f64], var: &[f64]) -> Result<(Tensor, Tensor)> {
    let s = x.shape();
    let kept: Vec<usize> = s[..s.len() - k].iter().copied().chain(std::iter::repeat(1).take(k)).collect();
    Ok((as_f32(mean, &kept)?, as_f32(var, &kept)?))
}

fn as_f32(v: &[f64], shape: &[usize]) -> Result<Tensor> {
    Tensor::from_vec(v.iter().map(|&x| x as f32).collect::<Vec<f32>>(), shape)
}

fn normalize_forward(x: &Tensor, w: Option<&Tensor>, b: Option<&Tensor>, spec: &NormSpec, fixed: Option<(&Tensor, &Tensor)>) -> Result<(Tensor, Tensor, Tensor)> {
    if let Some(geo) = layer_geometry(x, spec, fixed.is_some(), &[w, b]) {
        let (y, mean, var) = layer_norm::forward(x, geo, w, b, spec.eps);
        let (mean, var) = row_stats_tensors(x, spec.affine.len(), &mean, &var)?;
        return Ok((y, mean, var));
    }
    if let Some(geo) = batch_geometry(x, spec, &[w, b, fixed.map(|f| f.0), fixed.map(|f| f.1)]) {
        let (mean, rstd, var) = batch_stats(x, geo, spec.eps, fixed);
        let y = batch_norm::apply(x, geo, &mean, &rstd, w, b);
        return Ok(match fixed {
            Some((m, v)) => (y, m.clone(), v.clone()),
            None => {
                let kept: Vec<usize> = spec.affine.iter().map(|&d| d as usize).collect();
                (y, as_f32(&mean, &kept)?, as_f32(&var, &kept)?)
            }
        });
    }
    let xs = grouped(x, spec)?;
    let (mean, var) = match fixed {
        Some((m, v)) => (m.clone(), v.clone()),
        None => stats(&xs, spec)?,
    };
    let rstd = f::unary(UnaryOp::Rsqrt, &f::add_n(&var, spec.eps)?)?;
    let y = f::mul(&f::sub(&xs, &mean)?, &rstd)?;
    let mut y = f::reshape(&y, &i64s(&x.shape()))?;
    if let Some(w) = w {
        y = f::mul(&y, &f::reshape(w, &spec.affine)?)?;
    }
    if let Some(b) = b {
        y = f::add(&y, &f::reshape(b, &spec.affine)?)?;
    }
    Ok((y, mean, var))
}

/// A fused kernel's gradients as the rule's `[x, w, b]`, the parameters' in the `affine` shape.
fn kernel_grads(gx: Option<Tensor>, gw: &[f64], gb: &[f64], spec: &NormSpec, has_w: bool, need: [bool; 3]) -> Result<[Option<Tensor>; 3]> {
    let affine: Vec<usize> = spec.affine.iter().map(|&d| d as usize).collect();
    let gw = if need[1] && has_w { Some(as_f32(gw, &affine)?) } else { None };
    let gb = if need[2] { Some(as_f32(gb, &affine)?) } else { None };
    Ok([gx, gw, gb])
}

/// Gradients of `normalize` for `(x, w, b)`, recomputing the statistics from `x` with
/// differentiable ops so that the result can itself be differentiated.
pub(crate) fn normalize_backward(x: &Tensor, w: Option<&Tensor>, g: &Tensor, spec: &NormSpec, fixed: Option<&(Tensor, Tensor)>, need: [bool; 3]) -> Result<[Option<Tensor>; 3]> {
    let fixed_refs = fixed.map(|(m, v)| (m, v));
    let plain = !super::record::needs_grad(&[Some(x), w, Some(g)]) && g.dtype() == DType::F32 && g.shape() == x.shape();
    if let Some(geo) = plain.then(|| batch_geometry(x, spec, &[w, fixed_refs.map(|f| f.0), fixed_refs.map(|f| f.1)])).flatten() {
        // One pass over x and g for the sums, one for the gradient (an expanded g is made dense).
        let g = g.contiguous();
        let (mean, rstd, _) = batch_stats(x, geo, spec.eps, fixed_refs);
        let (gx, gw, gb) = batch_norm::backward(x, &g, geo, &mean, &rstd, w, fixed.is_none(), need[0]);
        return kernel_grads(gx, &gw, &gb, spec, w.is_some(), need);
    }
    if let Some(geo) = plain.then(|| layer_geometry(x, spec, fixed.is_some(), &[w])).flatten() {
        let g = g.contiguous();
        let (gx, gw, gb) = layer_norm::backward(x, &g, geo, w, spec.eps, need[0]);
        return kernel_grads(gx, &gw, &gb, spec, w.is_some(), need);
    }
    let xs = grouped(x, spec)?;
    let (mean, var) = match fixed {
        Some((m, v)) => (m.clone(), v.clone()),
        None => stats(&xs, spec)?,
    };
    let rstd = f::unary(UnaryOp::Rsqrt, &f::add_n(&var, spec.eps)?)?;
    let xhat_s = f::mul(&f::sub(&xs, &mean)?, &rstd)?;
    let shape = i64s(&x.shape());
    let affine_shape: Vec<usize> = spec.affine.iter().map(|&d| d as usize).collect();
    // Both come back in the broadcast `affine` shape; the rule reshapes them to the parameters'.
    let gw = if need[1] && w.is_some() {
        Some(f::sum_to(&f::mul(g, &f::reshape(&xhat_s, &shape)?)?, &affine_shape)?)
    } else {
        None
    };
    let gb = if need[2] { Some(f::sum_to(g, &affine_shape)?) } else { None };
    let gx = if need[0] {
        let gxhat = match w {
            Some(w) => f::mul(g, &f::reshape(w, &spec.affine)?)?,
            None => g.clone(),
        };
        let gs = grouped(&gxhat, spec)?;
        let gxs = if fixed.is_some() {
            f::mul(&gs, &rstd)?
        } else {
            let m1 = f::mean(&gs, Some(&spec.dims), true, None)?;
            let m2 = f::mean(&f::mul(&gs, &xhat_s)?, Some(&spec.dims), true, None)?;
            f::mul(&rstd, &f::sub(&f::sub(&gs, &m1)?, &f::mul(&xhat_s, &m2)?)?)?
        };
        Some(f::reshape(&gxs, &shape)?)
    } else {
        None
    };
    Ok([gx, gw, gb])
}

/// `F.batch_norm`: batch statistics in training (updating the running buffers in place with
/// `momentum`), running statistics otherwise.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm(x: &Tensor, running: Option<(&Tensor, &Tensor)>, w: Option<&Tensor>, b: Option<&Tensor>, training: bool, momentum: f64, eps: f64) -> Result<Tensor> {
    if x.ndim() < 2 {
        return runtime_err(format!("batch_norm: expected an input with at least 2 dims (N, C, ...), got {}", fmt_shape(&x.shape())));
    }
    let s = x.shape();
    let c = s[1];
    for (what, t) in [("running_mean", running.map(|r| r.0)), ("running_var", running.map(|r| r.1)), ("weight", w), ("bias", b)] {
        if let Some(t) = t {
            if t.numel() != c {
                return runtime_err(format!("{what} should contain {c} elements not {}", t.numel()));
            }
        }
    }
    let mut affine = vec![1i64; s.len()];
    affine[1] = c as i64;
    let dims: Vec<i64> = (0..s.len() as i64).filter(|&d| d != 1).collect();
    let spec = NormSpec { groups: None, dims, affine: affine.clone(), eps, name: "NativeBatchNormBackward0" };
    if !training {
        let (rm, rv) = running.ok_or_else(|| Error::Runtime("running_mean and running_var must be defined in evaluation mode".into()))?;
        let (m, v) = (crate::ops::shape::reshape(rm, &affine)?, crate::ops::shape::reshape(rv, &affine)?);
        let (m, v) = (crate::ops::cast::to_dtype(&m, x.dtype()), crate::ops::cast::to_dtype(&v, x.dtype()));
        return Ok(normalize(x, w, b, &spec, Some((&m, &v)))?.0);
    }
    let count = x.numel() / c.max(1);
    if count <= 1 {
        return Err(Error::Value(format!("Expected more than 1 value per channel when training, got input size {}", fmt_shape(&s))));
    }
    let (out, mean, var) = normalize(x, w, b, &spec, None)?;
    if let Some((rm, rv)) = running {
        no_grad(|| -> Result<()> {
            let unbiased = f::mul_n(&var, count as f64 / (count - 1) as f64)?;
            for (buf, stat) in [(rm, &mean), (rv, &unbiased)] {
                let stat = f::reshape(stat, &[-1])?;
                let keep = f::mul_n(buf, 1.0 - momentum)?;
                let upd = f::add(&keep, &f::mul_n(&crate::ops::cast::to_dtype(&stat, buf.dtype()), momentum)?)?;
                buf.copy_from(&upd)?;
                buf.bump_version();
            }
            Ok(())
        })?;
    }
    Ok(out)
}

/// `F.layer_norm` over the trailing `normalized` dims.
pub fn layer_norm(x: &Tensor, normalized: &[usize], w: Option<&Tensor>, b: Option<&Tensor>, eps: f64) -> Result<Tensor> {
    let s = x.shape();
    let k = normalized.len();
    if k == 0 || s.len() < k || s[s.len() - k..] != *normalized {
        return runtime_err(format!(
            "Given normalized_shape={}, expected input with shape [*, {}], but got input of size{}",
            fmt_shape(normalized),
            normalized.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "),
            fmt_shape(&s)
        ));
    }
    for (what, t) in [("weight", w), ("bias", b)] {
        if let Some(t) = t {
            if t.shape()[..] != *normalized {
                return shape_err(format!("Expected {what} to be of same shape as normalized_shape, but got {what} of shape {} and normalized_shape = {}", fmt_shape(&t.shape()), fmt_shape(normalized)));
            }
        }
    }
    let dims: Vec<i64> = ((s.len() - k)..s.len()).map(|d| d as i64).collect();
    let spec = NormSpec { groups: None, dims, affine: i64s(normalized), eps, name: "NativeLayerNormBackward0" };
    Ok(normalize(x, w, b, &spec, None)?.0)
}

/// `F.group_norm`: statistics per (sample, group of channels).
pub fn group_norm(x: &Tensor, groups: usize, w: Option<&Tensor>, b: Option<&Tensor>, eps: f64) -> Result<Tensor> {
    let s = x.shape();
    if s.len() < 2 || groups == 0 || s[1] % groups != 0 {
        return runtime_err(format!(
            "Expected number of channels in input to be divisible by num_groups, but got input of shape {} and num_groups={groups}",
            fmt_shape(&s)
        ));
    }
    let c = s[1];
    for (what, t) in [("weight", w), ("bias", b)] {
        if let Some(t) = t {
            if t.ndim() != 1 || t.numel() != c {
                return runtime_err(format!("Expected {what} to be a vector of size equal to the number of channels in input, but got {what} of shape {} and input of shape {}", fmt_shape(&t.shape()), fmt_shape(&s)));
            }
        }
    }
    let mut affine = vec![1i64; s.len()];
    affine[1] = c as i64;
    let spec = NormSpec { groups: Some(vec![s[0] as i64, groups as i64, -1]), dims: vec![2], affine, eps, name: "NativeGroupNormBackward0" };
    Ok(normalize(x, w, b, &spec, None)?.0)
}

/// A sliding 2-d pool's parameters along (height, width).
#[derive(Clone, Copy, Debug)]
pub struct Pool2d {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub ceil_mode: bool,
}

fn pool_input(x: &Tensor, op: &str) -> Result<()> {
    let s = x.shape();
    if !(s.len() == 3 || s.len() == 4) || s[s.len() - 3..].iter().any(|&d| d == 0) {
        return runtime_err(format!("{op}: Expected 3D or 4D (batch mode) tensor with non-zero channel and spatial dims for input, but got: {}", fmt_shape(&s)));
    }
    Ok(())
}

/// Taps of both dims of a sliding pool, with PyTorch's checks.
fn sliding_taps(x: &Tensor, p: &Pool2d, include_pad: bool, avg: bool) -> Result<(Vec<Taps>, Vec<Taps>)> {
    let s = x.shape();
    let (h, w) = (s[s.len() - 2], s[s.len() - 1]);
    if p.stride.contains(&0) {
        return runtime_err("stride should not be zero");
    }
    for d in 0..2 {
        if p.kernel[d] == 0 || p.dilation[d] == 0 {
            return runtime_err(format!("kernel size, stride and dilation should be greater than zero, but got kernel_size={:?}, stride={:?}, dilation={:?}", p.kernel, p.stride, p.dilation));
        }
        if p.padding[d] * 2 > p.kernel[d] {
            return runtime_err(if avg {
                format!("pad should be at most half of kernel size, but got pad={} and kernel_size={}", p.padding[d], p.kernel[d])
            } else {
                format!("pad should be at most half of effective kernel size, but got pad={}, kernel_size={} and dilation={}", p.padding[d], p.kernel[d], p.dilation[d])
            });
        }
    }
    let dims = [h, w];
    let sl: Vec<pool::Sliding> = (0..2)
        .map(|d| pool::Sliding { kernel: p.kernel[d], stride: p.stride[d], padding: p.padding[d], dilation: p.dilation[d], ceil_mode: p.ceil_mode })
        .collect();
    let (oh, ow) = (sl[0].out_len(h), sl[1].out_len(w));
    if oh < 1 || ow < 1 {
        let c = s[s.len() - 3];
        return runtime_err(format!("Given input size: ({c}x{h}x{w}). Calculated output size: ({c}x{oh}x{ow}). Output size is too small"));
    }
    Ok((sl[0].taps(dims[0], oh as usize, include_pad), sl[1].taps(dims[1], ow as usize, include_pad)))
}

/// `F.max_pool2d(..., return_indices=True)`.
pub fn max_pool2d(x: &Tensor, p: &Pool2d) -> Result<(Tensor, Tensor)> {
    pool_input(x, "max_pool2d")?;
    let (rows, cols) = sliding_taps(x, p, false, false)?;
    max_pool(x, &rows, &cols, PoolKind::Max)
}

/// `F.avg_pool2d`.
pub fn avg_pool2d(x: &Tensor, p: &Pool2d, count_include_pad: bool, divisor_override: Option<i64>) -> Result<Tensor> {
    pool_input(x, "avg_pool2d")?;
    if divisor_override == Some(0) {
        return runtime_err("divisor must be not zero");
    }
    let (rows, cols) = sliding_taps(x, &Pool2d { dilation: [1, 1], ..*p }, count_include_pad, true)?;
    avg_pool(x, &rows, &cols, divisor_override, PoolKind::Avg, None)
}

/// `F.adaptive_avg_pool2d` / `F.adaptive_max_pool2d` (values and indices).
pub fn adaptive_pool2d(x: &Tensor, out: [usize; 2], max: bool) -> Result<(Tensor, Option<Tensor>)> {
    let op = if max { "adaptive_max_pool2d" } else { "adaptive_avg_pool2d" };
    let s = x.shape();
    if !(s.len() == 3 || s.len() == 4) || s[s.len() - 2..].iter().any(|&d| d == 0) {
        return runtime_err(format!("{op}(): Expected 3D or 4D tensor, but got {}", fmt_shape(&s)));
    }
    let (h, w) = (s[s.len() - 2], s[s.len() - 1]);
    if max && (out[0] == 0 || out[1] == 0) {
        return runtime_err(format!("{op}(): internal error: output_size.size() must be 2, and output sizes must be positive, got {:?}", out));
    }
    let (rows, cols) = (pool::adaptive_taps(h, out[0]), pool::adaptive_taps(w, out[1]));
    if max {
        let (v, i) = max_pool(x, &rows, &cols, PoolKind::AdaptiveMax)?;
        Ok((v, Some(i)))
    } else {
        Ok((avg_pool(x, &rows, &cols, None, PoolKind::AdaptiveAvg, None)?, None))
    }
}
