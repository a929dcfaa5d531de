//! The differentiable op set: each function runs the raw op from `crate::ops` and, when grad
//! mode is on and an input requires grad, records one node whose backward is in `rules.rs`.
//! Composite ops compute their forward with recording off and record a single node, so
//! `grad_fn` names match PyTorch's. Backward rules call these same functions, which is what
//! makes `create_graph=True` produce higher-order gradients.

use crate::dtype::{DType, Scalar};
use crate::error::{shape_err, Error, Result};
use crate::layout::{fmt_shape, wrap_dim, Dims, Layout};
use crate::ops::elementwise::{BinaryOp, UnaryOp};
use crate::ops::index::IndexItem;
use crate::ops::reduce::reduced_mask;
use crate::ops::scatter::Source;
use crate::ops::conv::float_only;
use crate::ops::{self, Input};
use crate::tensor::Tensor;

use super::mode::no_grad;
use super::node::Saved;
use super::record::{needs_grad, record, record_view};
use super::rules::{Arg, Lin, NllPicks, Rule};

fn tensor_of<'a>(i: &Input<'a>) -> Option<&'a Tensor> {
    match i {
        Input::T(t) => Some(t),
        Input::S(_) => None,
    }
}

/// Saves an operand when some other input's gradient will need it.
fn arg(i: &Input, wanted: bool) -> Arg {
    match i {
        Input::T(t) if wanted => Arg::Tensor(Saved::input(t)),
        Input::T(_) => Arg::Unused,
        Input::S(s) => Arg::Number(*s),
    }
}

fn rg(i: &Input) -> bool {
    tensor_of(i).is_some_and(|t| t.requires_grad())
}

pub fn num(v: f64) -> Input<'static> {
    Input::S(Scalar::Float(v))
}

// ---------------------------------------------------------------- elementwise

pub fn binary(op: BinaryOp, a: Input, b: Input) -> Result<Tensor> {
    let (ta, tb) = (tensor_of(&a), tensor_of(&b));
    if !needs_grad(&[ta, tb]) {
        return ops::elementwise::binary(op, a, b);
    }
    use BinaryOp::*;
    // `number / x` is `number * x.reciprocal()` in PyTorch's graph.
    if let (Div, Input::S(s), Input::T(x)) = (op, &a, &b) {
        let want = ops::elementwise::binary_result_dtype(Div, Input::S(*s), b)?;
        let r = unary(UnaryOp::Reciprocal, &to_dtype(x, want)?)?;
        return binary(Mul, Input::T(&r), a);
    }
    let out = ops::elementwise::binary(op, a, b)?;
    let rule = || match op {
        Add => Rule::Add { alpha: Scalar::Int(1) },
        Sub if ta.is_none() => Rule::Rsub { alpha: Scalar::Int(1) },
        Sub => Rule::Sub { alpha: Scalar::Int(1) },
        Mul => Rule::Mul { a: arg(&a, rg(&b)), b: arg(&b, rg(&a)) },
        Div => Rule::Div { a: arg(&a, rg(&b)), b: arg(&b, true) },
        Pow => Rule::Pow { base: arg(&a, true), exp: arg(&b, true), out: tb.map(|_| Saved::output(&out, 0)) },
        Maximum | Minimum => Rule::MinMax { is_max: op == Maximum, a: arg(&a, true), b: arg(&b, true) },
        FloorDiv => Rule::ZeroGrad { name: "DivBackward2" },
        Rem => Rule::Remainder { a: arg(&a, rg(&b)), b: arg(&b, rg(&b)) },
        _ => Rule::ZeroGrad { name: "NotDifferentiable" },
    };
    let slots: Vec<Option<&Tensor>> = match (op, ta, tb) {
        (Sub, None, _) | (Pow, None, _) => vec![tb],
        (Pow, _, None) => vec![ta],
        _ => vec![ta, tb],
    };
    record(rule, &slots, &[&out]);
    Ok(out)
}

/// `a + alpha * b` / `a - alpha * b`.
pub fn add_scaled(a: Input, b: Input, alpha: Scalar, subtract: bool) -> Result<Tensor> {
    let out = ops::elementwise::add_scaled(a, b, alpha, subtract)?;
    let (ta, tb) = (tensor_of(&a), tensor_of(&b));
    let rule = || match (subtract, ta.is_none()) {
        (false, _) => Rule::Add { alpha },
        (true, true) => Rule::Rsub { alpha },
        (true, false) => Rule::Sub { alpha },
    };
    let slots: Vec<Option<&Tensor>> = if subtract && ta.is_none() { vec![tb] } else { vec![ta, tb] };
    record(rule, &slots, &[&out]);
    Ok(out)
}

pub fn add(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(BinaryOp::Add, a.into(), b.into())
}
pub fn sub(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(BinaryOp::Sub, a.into(), b.into())
}
pub fn mul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(BinaryOp::Mul, a.into(), b.into())
}
pub fn div(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(BinaryOp::Div, a.into(), b.into())
}
pub fn mul_n(a: &Tensor, v: f64) -> Result<Tensor> {
    binary(BinaryOp::Mul, a.into(), num(v))
}
pub fn add_n(a: &Tensor, v: f64) -> Result<Tensor> {
    binary(BinaryOp::Add, a.into(), num(v))
}
pub fn pow_n(a: &Tensor, v: f64) -> Result<Tensor> {
    binary(BinaryOp::Pow, a.into(), num(v))
}
pub fn neg(a: &Tensor) -> Result<Tensor> {
    unary(UnaryOp::Neg, a)
}
/// A boolean mask (never differentiable).
pub fn cmp(op: BinaryOp, a: Input, b: Input) -> Result<Tensor> {
    ops::elementwise::binary(op, a, b)
}

pub fn unary(op: UnaryOp, x: &Tensor) -> Result<Tensor> {
    let out = ops::elementwise::unary(op, x)?;
    if needs_grad(&[Some(x)]) {
        use UnaryOp::*;
        let saves_out = matches!(op, Exp | Expm1 | Sqrt | Rsqrt | Tan | Tanh | Sigmoid | Reciprocal | Relu | Elu { .. });
        let rule = || Rule::Unary {
            op,
            x: (!saves_out).then(|| Saved::input(x)),
            out: saves_out.then(|| Saved::output(&out, 0)),
        };
        record(rule, &[Some(x)], &[&out]);
    }
    Ok(out)
}

/// Number bounds on a float tensor: one pass (hardtanh's loop) instead of a maximum and a
/// minimum pass (1024²: 0.60 → 0.3 ms). Not for NaN bounds or min > max, where hardtanh's
/// order of tests would differ from `min(max(x, lo), hi)`.
fn clamp_as_hardtanh(x: &Tensor, min: &Option<Input>, max: &Option<Input>) -> Option<UnaryOp> {
    let number = |b: &Option<Input>, none: f64| match b {
        None => Some(none),
        Some(Input::S(Scalar::Float(v))) => Some(*v),
        Some(Input::S(Scalar::Int(v))) => Some(*v as f64),
        _ => None,
    };
    match (number(min, f64::NEG_INFINITY), number(max, f64::INFINITY)) {
        (Some(lo), Some(hi)) if x.dtype().is_float() && lo <= hi => Some(UnaryOp::Hardtanh { min: lo, max: hi }),
        _ => None,
    }
}

/// `clamp(x, min, max)` written straight into `out` when it is one hardtanh pass (`clamp_`
/// without a result tensor and a copy back); `Ok(false)`: not applicable. Records nothing.
pub fn clamp_into(x: &Tensor, min: Option<Input>, max: Option<Input>, out: &Tensor) -> Result<bool> {
    bounds_given(&min, &max)?;
    match clamp_as_hardtanh(x, &min, &max) {
        Some(op) => ops::elementwise::unary_into(op, x, out),
        None => Ok(false),
    }
}

fn bounds_given(min: &Option<Input>, max: &Option<Input>) -> Result<()> {
    if min.is_none() && max.is_none() {
        return Err(Error::Runtime("torch.clamp: At least one of 'min' or 'max' must not be None".into()));
    }
    Ok(())
}

/// `clamp(x, min, max)` with number or tensor bounds.
pub fn clamp(x: &Tensor, min: Option<Input>, max: Option<Input>) -> Result<Tensor> {
    bounds_given(&min, &max)?;
    let out = no_grad(|| -> Result<Tensor> {
        if let Some(op) = clamp_as_hardtanh(x, &min, &max) {
            return ops::elementwise::unary(op, x);
        }
        let mut r = x.clone();
        if let Some(lo) = &min {
            r = ops::elementwise::binary(BinaryOp::Maximum, (&r).into(), *lo)?;
        }
        if let Some(hi) = &max {
            r = ops::elementwise::binary(BinaryOp::Minimum, (&r).into(), *hi)?;
        }
        Ok(r)
    })?;
    let (tmin, tmax) = (min.as_ref().and_then(tensor_of), max.as_ref().and_then(tensor_of));
    let tensors = tmin.is_some() || tmax.is_some();
    let bound = |b: &Option<Input>| match b {
        None => Arg::Unused,
        Some(i) => arg(i, true),
    };
    let rule = || Rule::Clamp { x: Saved::input(x), min: bound(&min), max: bound(&max), tensors };
    let slots: Vec<Option<&Tensor>> = if tensors { vec![Some(x), tmin, tmax] } else { vec![Some(x)] };
    record(rule, &slots, &[&out]);
    Ok(out)
}

pub fn where_(cond: &Tensor, a: Input, b: Input) -> Result<Tensor> {
    let out = ops::elementwise::where_(cond, a, b)?;
    record(|| Rule::Where { cond: cond.clone() }, &[tensor_of(&a), tensor_of(&b)], &[&out]);
    Ok(out)
}

// ---------------------------------------------------------------- linear algebra

fn lin(kind: Lin, a: &Tensor, b: &Tensor, out: Tensor) -> Tensor {
    let rule = || Rule::Linalg {
        kind,
        a: b.requires_grad().then(|| Saved::input(a)),
        b: a.requires_grad().then(|| Saved::input(b)),
    };
    record(rule, &[Some(a), Some(b)], &[&out]);
    out
}

pub fn mm(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let out = ops::matmul::mm(a, b)?;
    Ok(lin(Lin::Mm, a, b, out))
}

pub fn bmm(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (sa, sb) = (a.shape(), b.shape());
    if sa.len() != 3 {
        return shape_err(format!("batch1 must be a 3D tensor"));
    }
    if sb.len() != 3 {
        return shape_err(format!("batch2 must be a 3D tensor"));
    }
    if sa[0] != sb[0] || sa[2] != sb[1] {
        return shape_err(format!(
            "Expected size for first two dimensions of batch2 tensor to be: [{}, {}] but got: [{}, {}].",
            sa[0], sa[2], sb[0], sb[1]
        ));
    }
    let out = ops::matmul::matmul(a, b)?;
    Ok(lin(Lin::Bmm, a, b, out))
}

pub fn dot(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if a.ndim() != 1 || b.ndim() != 1 {
        return shape_err(format!("1D tensors expected, but got {}D and {}D tensors", a.ndim(), b.ndim()));
    }
    let out = ops::matmul::matmul(a, b)?;
    Ok(lin(Lin::Dot, a, b, out))
}

pub fn mv(a: &Tensor, v: &Tensor) -> Result<Tensor> {
    if a.ndim() != 2 || v.ndim() != 1 {
        return shape_err(format!("vector + matrix @ vector expected, got {}, {}, {}", 1, a.ndim(), v.ndim()));
    }
    let out = ops::matmul::matmul(a, v)?;
    Ok(lin(Lin::Mv, a, v, out))
}

/// `beta * input + alpha * (m1 @ m2)`.
pub fn addmm(input: &Tensor, m1: &Tensor, m2: &Tensor, beta: Scalar, alpha: Scalar) -> Result<Tensor> {
    let out = no_grad(|| -> Result<Tensor> {
        let p = ops::matmul::mm(m1, m2)?;
        let p = if alpha.as_f64() == 1.0 { p } else { ops::elementwise::binary(BinaryOp::Mul, (&p).into(), alpha.into())? };
        if beta.as_f64() == 0.0 {
            // beta = 0 ignores input's values (NaN included), but its shape must broadcast.
            crate::layout::broadcast_shapes(&input.shape(), &p.shape())?;
            return Ok(p);
        }
        let i = if beta.as_f64() == 1.0 { input.clone() } else { ops::elementwise::binary(BinaryOp::Mul, input.into(), beta.into())? };
        let r = ops::elementwise::binary(BinaryOp::Add, (&i).into(), (&p).into())?;
        if r.shape() != p.shape() {
            return shape_err(format!(
                "The expanded size of the tensor ({}) must match the existing size ({}) at non-singleton dimension 1.  Target sizes: {}.  Tensor sizes: {}",
                p.shape()[1], input.shape().last().copied().unwrap_or(1), fmt_shape(&p.shape()), fmt_shape(&input.shape())
            ));
        }
        Ok(r)
    })?;
    let rule = || Rule::Addmm {
        m1: m2.requires_grad().then(|| Saved::input(m1)),
        m2: m1.requires_grad().then(|| Saved::input(m2)),
        beta,
        alpha,
    };
    record(rule, &[Some(input), Some(m1), Some(m2)], &[&out]);
    Ok(out)
}

/// `torch.matmul`, decomposed into dot/mv/mm/bmm and views exactly as PyTorch does, so the
/// recorded graph (and its node names) is the same.
pub fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if !needs_grad(&[Some(a), Some(b)]) {
        return ops::matmul::matmul(a, b);
    }
    let (sa, sb) = (a.shape(), b.shape());
    let (na, nb) = (sa.len(), sb.len());
    if na == 0 || nb == 0 || a.dtype() != b.dtype() {
        return ops::matmul::matmul(a, b); // reports the error
    }
    match (na, nb) {
        (1, 1) => dot(a, b),
        (2, 1) => mv(a, b),
        (1, 2) => squeeze_named(&mm(&unsqueeze(a, 0)?, b)?, &[0], "SqueezeBackward4"),
        (2, 2) => mm(a, b),
        (_, 1 | 2) if na >= 3 => {
            let k = sa[na - 1];
            let folded = reshape(a, &[-1, k as i64])?;
            let mut shape: Vec<i64> = sa[..na - 1].iter().map(|&d| d as i64).collect();
            let out = if nb == 1 {
                mv(&folded, b)?
            } else {
                shape.push(sb[1] as i64);
                mm(&folded, b)?
            };
            reshape_named(&out, &shape, "UnsafeViewBackward0")
        }
        (2, _) => {
            let r = matmul(&transpose(b, -1, -2)?, &transpose(a, -1, -2)?)?;
            contiguous(&transpose(&r, -1, -2)?)
        }
        _ => {
            let a2 = if na == 1 { unsqueeze(a, 0)? } else { a.clone() };
            let b2 = if nb == 1 { unsqueeze(b, -1)? } else { b.clone() };
            let (s2a, s2b) = (a2.shape(), b2.shape());
            let (n, k, m) = (s2a[s2a.len() - 2], s2a[s2a.len() - 1], s2b[s2b.len() - 1]);
            if s2b[s2b.len() - 2] != k {
                return ops::matmul::matmul(a, b);
            }
            let batch = crate::layout::broadcast_shapes(&s2a[..s2a.len() - 2], &s2b[..s2b.len() - 2])?;
            let bsz: usize = batch.iter().product();
            let full = |rows: usize, cols: usize| -> Vec<i64> {
                batch.iter().map(|&d| d as i64).chain([rows as i64, cols as i64]).collect()
            };
            let ea = reshape(&expand(&a2, &full(n, k))?, &[bsz as i64, n as i64, k as i64])?;
            let eb = reshape(&expand(&b2, &full(k, m))?, &[bsz as i64, k as i64, m as i64])?;
            let out = bmm(&ea, &eb)?;
            let mut shape: Vec<i64> = batch.iter().map(|&d| d as i64).collect();
            if na > 1 {
                shape.push(n as i64);
            }
            if nb > 1 {
                shape.push(m as i64);
            }
            reshape_named(&out, &shape, "UnsafeViewBackward0")
        }
    }
}

/// `outer(a, b)` = `a.reshape(n, 1) * b`, as PyTorch records it.
pub fn outer(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if a.ndim() != 1 || b.ndim() != 1 {
        return shape_err(format!("outer: expected 1D tensors, but got {}D and {}D", a.ndim(), b.ndim()));
    }
    mul(&reshape(a, &[-1, 1])?, b)
}

// ---------------------------------------------------------------- reductions

fn reduced_dims(x: &Tensor, dims: Option<&[i64]>) -> Result<Vec<bool>> {
    reduced_mask(x.ndim(), dims)
}

pub fn sum(x: &Tensor, dims: Option<&[i64]>, keepdim: bool, dtype: Option<DType>) -> Result<Tensor> {
    let out = ops::reduce::sum(x, dims, keepdim, dtype)?;
    record_sum(x, &out, dims, keepdim, false)
}

pub fn mean(x: &Tensor, dims: Option<&[i64]>, keepdim: bool, dtype: Option<DType>) -> Result<Tensor> {
    let out = ops::reduce::mean(x, dims, keepdim, dtype)?;
    record_sum(x, &out, dims, keepdim, true)
}

fn record_sum(x: &Tensor, out: &Tensor, dims: Option<&[i64]>, keepdim: bool, mean: bool) -> Result<Tensor> {
    if needs_grad(&[Some(x)]) {
        let mask = reduced_dims(x, dims)?;
        record(|| Rule::Sum { shape: x.shape(), mask, keepdim, full: dims.is_none(), mean }, &[Some(x)], &[out]);
    }
    Ok(out.clone())
}

/// Number of elements reduced by `mask`.
pub fn reduced_count(shape: &[usize], mask: &[bool]) -> usize {
    shape.iter().zip(mask).filter(|(_, &m)| m).map(|(&d, _)| d).product()
}

/// `var`/`std` with `correction` (1 = unbiased).
pub fn var_std(x: &Tensor, dims: Option<&[i64]>, correction: f64, keepdim: bool, std: bool) -> Result<Tensor> {
    if !x.dtype().is_float() {
        return Err(Error::Runtime(format!(
            "{}(): could not infer output dtype. Input dtype must be either a floating point or complex dtype. Got: {}",
            if std { "std" } else { "var" },
            x.dtype()
        )));
    }
    let mask = reduced_dims(x, dims)?;
    let n = reduced_count(&x.shape(), &mask) as f64;
    let out = no_grad(|| -> Result<Tensor> {
        if let Some(out) = ops::reduce::var_f32(x, &mask, keepdim, correction, std) {
            return out;
        }
        let m = ops::reduce::mean(x, dims, true, None)?;
        let d = ops::elementwise::binary(BinaryOp::Sub, x.into(), (&m).into())?;
        let sq = ops::elementwise::binary(BinaryOp::Mul, (&d).into(), (&d).into())?;
        let s = ops::reduce::sum(&sq, dims, keepdim, None)?;
        let v = ops::elementwise::binary(BinaryOp::Div, (&s).into(), num((n - correction).max(0.0)))?;
        if std { ops::elementwise::unary(UnaryOp::Sqrt, &v) } else { Ok(v) }
    })?;
    let rule = || Rule::VarStd { x: Saved::input(x), out: std.then(|| Saved::output(&out, 0)), mask, keepdim, correction };
    record(rule, &[Some(x)], &[&out]);
    Ok(out)
}

pub fn prod(x: &Tensor, dim: Option<i64>, keepdim: bool, dtype: Option<DType>) -> Result<Tensor> {
    let dims = dim.map(|d| [d]);
    let out = ops::reduce::prod(x, dims.as_ref().map(|d| &d[..]), keepdim, dtype)?;
    if needs_grad(&[Some(x)]) {
        let dim = match dim {
            Some(d) => Some(wrap_dim(d, x.ndim().max(1))?),
            None => None,
        };
        record(|| Rule::Prod { x: Saved::input(x), out: Saved::output(&out, 0), dim, keepdim }, &[Some(x)], &[&out]);
    }
    Ok(out)
}

/// `amax`/`amin`, and `max()`/`min()` over all elements (`all` picks the node name).
pub fn extreme(x: &Tensor, dims: Option<&[i64]>, keepdim: bool, is_max: bool, all: bool) -> Result<Tensor> {
    let out = ops::reduce::extreme(x, dims, keepdim, is_max)?;
    if needs_grad(&[Some(x)]) {
        let mask = reduced_dims(x, dims)?;
        let name = match (all, is_max) {
            (true, true) => "MaxBackward1",
            (true, false) => "MinBackward1",
            (false, true) => "AmaxBackward0",
            (false, false) => "AminBackward0",
        };
        record(|| Rule::Extreme { x: Saved::input(x), out: Saved::output(&out, 0), mask, keepdim, name }, &[Some(x)], &[&out]);
    }
    Ok(out)
}

/// `max(dim)`/`min(dim)`: (values, indices); only values are differentiable.
pub fn extreme_dim(x: &Tensor, dim: i64, keepdim: bool, is_max: bool) -> Result<(Tensor, Tensor)> {
    let (v, i) = ops::reduce::extreme_with_index(x, dim, keepdim, is_max)?;
    if needs_grad(&[Some(x)]) {
        let d = wrap_dim(dim, x.ndim().max(1))?;
        let rule = || Rule::ExtremeDim { shape: x.shape(), dim: d, keepdim, indices: i.clone(), is_max };
        record(rule, &[Some(x)], &[&v]);
    }
    Ok((v, i))
}

pub fn logsumexp(x: &Tensor, dims: &[i64], keepdim: bool) -> Result<Tensor> {
    let x = if x.dtype().is_float() { x.clone() } else { crate::ops::cast::to_dtype(x, crate::dtype::default_float()) };
    let out = no_grad(|| -> Result<Tensor> {
        if x.numel() == 0 {
            let s = ops::reduce::sum(&ops::elementwise::unary(UnaryOp::Exp, &x)?, Some(dims), keepdim, None)?;
            return ops::elementwise::unary(UnaryOp::Log, &s);
        }
        let m = ops::reduce::extreme(&x, Some(dims), true, true)?;
        // Infinite maxima would give inf - inf; shift by 0 there instead.
        let finite = ops::elementwise::unary(UnaryOp::IsFinite, &m)?;
        let m = ops::elementwise::where_(&finite, (&m).into(), num(0.0))?;
        let e = ops::elementwise::unary(UnaryOp::Exp, &ops::elementwise::binary(BinaryOp::Sub, (&x).into(), (&m).into())?)?;
        let s = ops::elementwise::unary(UnaryOp::Log, &ops::reduce::sum(&e, Some(dims), true, None)?)?;
        let r = ops::elementwise::binary(BinaryOp::Add, (&s).into(), (&m).into())?;
        if keepdim { Ok(r) } else { ops::reduce::sum(&r, Some(dims), false, None) }
    })?;
    if needs_grad(&[Some(&x)]) {
        let mask = reduced_dims(&x, Some(dims))?;
        record(|| Rule::Logsumexp { x: Saved::input(&x), out: Saved::output(&out, 0), mask, keepdim }, &[Some(&x)], &[&out]);
    }
    Ok(out)
}

/// `softmax(dim)` / `log_softmax(dim)`, optionally computed in `dtype`.
pub fn softmax(x: &Tensor, dim: i64, log: bool, dtype: Option<DType>) -> Result<Tensor> {
    let x = match dtype {
        Some(d) => to_dtype(x, d)?,
        None if !x.dtype().is_float() => {
            return Err(Error::Runtime(format!(
                "\"{}_lastdim_kernel_impl\" not implemented for '{}'",
                if log { "log_softmax" } else { "softmax" },
                x.dtype().legacy_name().trim_end_matches("Tensor")
            )))
        }
        None => x.clone(),
    };
    let d = wrap_dim(dim, x.ndim().max(1))?;
    let out = no_grad(|| -> Result<Tensor> {
        if x.ndim() == 0 {
            return ops::factory::full(&[], Scalar::Float(if log { 0.0 } else { 1.0 }), x.dtype());
        }
        ops::softmax::softmax(&x, d, log)
    })?;
    record(|| Rule::Softmax { out: Saved::output(&out, 0), dim: d, log }, &[Some(&x)], &[&out]);
    Ok(out)
}

/// `linalg.vector_norm` / `Tensor.norm(p, dim, keepdim)`.
pub fn norm(x: &Tensor, p: f64, dims: Option<&[i64]>, keepdim: bool) -> Result<Tensor> {
    if !x.dtype().is_float() {
        return Err(Error::Runtime(format!(
            "linalg.vector_norm: Expected a floating point or complex tensor as input. Got {}",
            x.dtype().legacy_name().trim_end_matches("Tensor")
        )));
    }
    let out = no_grad(|| -> Result<Tensor> {
        if (p == 1.0 || p == 2.0) && matches!(x.dtype(), DType::F32 | DType::F64) {
            let s = ops::reduce::sum_abs_or_square(x, dims, keepdim, p == 2.0)?;
            return if p == 2.0 { ops::elementwise::unary(UnaryOp::Sqrt, &s) } else { Ok(s) };
        }
        let a = ops::elementwise::unary(UnaryOp::Abs, x)?;
        if p.is_infinite() {
            return ops::reduce::extreme(&a, dims, keepdim, p > 0.0);
        }
        if p == 0.0 {
            let nz = ops::elementwise::binary(BinaryOp::Ne, (&a).into(), num(0.0))?;
            return Ok(ops::cast::to_dtype(&ops::reduce::sum(&nz, dims, keepdim, None)?, x.dtype()));
        }
        if p == 1.0 {
            return ops::reduce::sum(&a, dims, keepdim, None);
        }
        if p == 2.0 {
            let s = ops::reduce::sum(&ops::elementwise::binary(BinaryOp::Mul, (&a).into(), (&a).into())?, dims, keepdim, None)?;
            return ops::elementwise::unary(UnaryOp::Sqrt, &s);
        }
        let s = ops::reduce::sum(&ops::elementwise::binary(BinaryOp::Pow, (&a).into(), num(p))?, dims, keepdim, None)?;
        ops::elementwise::binary(BinaryOp::Pow, (&s).into(), num(1.0 / p))
    })?;
    if needs_grad(&[Some(x)]) {
        let mask = reduced_dims(x, dims)?;
        record(|| Rule::Norm { x: Saved::input(x), out: Saved::output(&out, 0), p, mask, keepdim }, &[Some(x)], &[&out]);
    }
    Ok(out)
}

pub fn cumsum(x: &Tensor, dim: i64, dtype: Option<DType>) -> Result<Tensor> {
    let out = ops::scatter::cumsum(x, dim, dtype)?;
    if needs_grad(&[Some(x)]) {
        let d = wrap_dim(dim, x.ndim().max(1))?;
        record(|| Rule::Cumsum { dim: d }, &[Some(x)], &[&out]);
    }
    Ok(out)
}

// ---------------------------------------------------------------- views and shape ops

fn as_i64(shape: &[usize]) -> Vec<i64> {
    shape.iter().map(|&d| d as i64).collect()
}

/// Records a view whose backward reshapes the gradient back to the input's shape.
fn reshaped(x: &Tensor, out: Tensor, name: &'static str) -> Tensor {
    record_view(|| Rule::Reshape { shape: x.shape(), name }, x, &out);
    out
}

pub fn view(x: &Tensor, shape: &[i64]) -> Result<Tensor> {
    Ok(reshaped(x, ops::shape::view(x, shape)?, "ViewBackward0"))
}

/// `reshape`: a view when the layout allows it, else a clone viewed to the new shape.
pub fn reshape(x: &Tensor, shape: &[i64]) -> Result<Tensor> {
    let target = crate::layout::infer_size(shape, x.numel())?;
    if x.layout().view(&target).is_some() {
        if x.is_contiguous() {
            return view(x, shape);
        }
        return Ok(reshaped(x, ops::shape::view(x, shape)?, "ReshapeAliasBackward0"));
    }
    reshape_named(&clone(x)?, shape, "UnsafeViewBackward0")
}

fn reshape_named(x: &Tensor, shape: &[i64], name: &'static str) -> Result<Tensor> {
    let out = ops::shape::reshape(x, shape)?;
    record(|| Rule::Reshape { shape: x.shape(), name }, &[Some(x)], &[&out]);
    Ok(out)
}

fn squeeze_named(x: &Tensor, dims: &[i64], name: &'static str) -> Result<Tensor> {
    Ok(reshaped(x, ops::shape::squeeze_dims(x, dims)?, name))
}

pub fn flatten(x: &Tensor, start: i64, end: i64) -> Result<Tensor> {
    let probe = ops::shape::flatten(&x.alias(), start, end)?;
    if x.ndim() == 0 || probe.shape() != x.shape() || !needs_grad(&[Some(x)]) {
        return reshape(x, &as_i64(&probe.shape()));
    }
    // flatten that changes nothing returns the input itself, as in PyTorch.
    Ok(x.clone())
}

pub fn unflatten(x: &Tensor, dim: i64, sizes: &[i64]) -> Result<Tensor> {
    let probe = ops::shape::unflatten(&x.alias(), dim, sizes)?;
    reshape(x, &as_i64(&probe.shape()))
}

pub fn squeeze_all(x: &Tensor) -> Result<Tensor> {
    Ok(reshaped(x, ops::shape::squeeze_all(x), "SqueezeBackward0"))
}

pub fn squeeze_dims(x: &Tensor, dims: &[i64]) -> Result<Tensor> {
    let name = if dims.len() == 1 { "SqueezeBackward1" } else { "SqueezeBackward2" };
    squeeze_named(x, dims, name)
}

pub fn unsqueeze(x: &Tensor, dim: i64) -> Result<Tensor> {
    Ok(reshaped(x, ops::shape::unsqueeze(x, dim)?, "UnsqueezeBackward0"))
}

pub fn transpose(x: &Tensor, d0: i64, d1: i64) -> Result<Tensor> {
    let out = ops::shape::transpose(x, d0, d1)?;
    record_view(|| Rule::Transpose { d0, d1, name: "TransposeBackward0" }, x, &out);
    Ok(out)
}

pub fn t2d(x: &Tensor) -> Result<Tensor> {
    let out = ops::shape::t2d(x)?;
    record_view(|| Rule::Transpose { d0: 0, d1: if x.ndim() < 2 { 0 } else { 1 }, name: "TBackward0" }, x, &out);
    Ok(out)
}

pub fn permute(x: &Tensor, dims: &[i64]) -> Result<Tensor> {
    let out = ops::shape::permute(x, dims)?;
    if needs_grad(&[Some(x)]) {
        let nd = x.ndim();
        let mut inv = vec![0i64; nd];
        for (i, &d) in dims.iter().enumerate() {
            inv[wrap_dim(d, nd)?] = i as i64;
        }
        record_view(|| Rule::Permute { inverse: inv }, x, &out);
    }
    Ok(out)
}

pub fn reverse_dims(x: &Tensor) -> Result<Tensor> {
    let dims: Vec<i64> = (0..x.ndim() as i64).rev().collect();
    permute(x, &dims)
}

pub fn movedim(x: &Tensor, src: &[i64], dst: &[i64]) -> Result<Tensor> {
    let probe = ops::shape::movedim(&x.alias(), src, dst)?;
    // Recover the permutation from the probe's strides against a contiguous layout.
    let nd = x.ndim();
    let c = Layout::contiguous(&x.shape());
    let moved = ops::shape::movedim(&Tensor::from_storage(x.storage(), c.clone(), x.dtype()), src, dst)?;
    let ml = moved.layout();
    let mut used = vec![false; nd];
    let mut perm = Vec::with_capacity(nd);
    for k in 0..nd {
        let d = (0..nd)
            .find(|&d| !used[d] && c.strides[d] == ml.strides[k] && c.shape[d] == ml.shape[k])
            .unwrap_or(k);
        used[d] = true;
        perm.push(d as i64);
    }
    let out = permute(x, &perm)?;
    debug_assert_eq!(out.shape(), probe.shape());
    Ok(out)
}

pub fn expand(x: &Tensor, sizes: &[i64]) -> Result<Tensor> {
    let out = ops::shape::expand(x, sizes)?;
    record_view(|| Rule::Expand { shape: x.shape() }, x, &out);
    Ok(out)
}

/// A view of `x` at `layout` (built from `x`'s own by select/slice), recorded so that its
/// gradient is embedded back at those positions.
fn embedded_view(x: &Tensor, out: Tensor, rel: Layout, name: &'static str) -> Tensor {
    record_view(|| Rule::Embed { shape: x.shape(), layout: rel, name }, x, &out);
    out
}

pub fn select(x: &Tensor, dim: i64, index: i64) -> Result<Tensor> {
    let out = ops::shape::select(x, dim, index)?;
    if !needs_grad(&[Some(x)]) {
        return Ok(out);
    }
    let rel = ops::shape::select(&contiguous_probe(x), dim, index)?.layout();
    Ok(embedded_view(x, out, rel, "SelectBackward0"))
}

pub fn slice(x: &Tensor, dim: usize, start: Option<i64>, stop: Option<i64>, step: i64) -> Result<Tensor> {
    let out = ops::shape::slice(x, dim, start, stop, step)?;
    if !needs_grad(&[Some(x)]) {
        return Ok(out);
    }
    let rel = ops::shape::slice(&contiguous_probe(x), dim, start, stop, step)?.layout();
    Ok(embedded_view(x, out, rel, "SliceBackward0"))
}

pub fn narrow(x: &Tensor, dim: i64, start: i64, length: i64) -> Result<Tensor> {
    let out = ops::shape::narrow(x, dim, start, length)?;
    if !needs_grad(&[Some(x)]) {
        return Ok(out);
    }
    let rel = ops::shape::narrow(&contiguous_probe(x), dim, start, length)?.layout();
    Ok(embedded_view(x, out, rel, "SliceBackward0"))
}

/// A metadata-only contiguous stand-in for `x` (same shape), used to express a view's
/// position relative to a fresh gradient buffer.
/// `as_strided`: differentiable when the view is a plain (non-overlapping) window of a
/// contiguous tensor, whose gradient then goes back at the viewed positions.
pub fn as_strided(x: &Tensor, size: &[i64], stride: &[i64], offset: Option<i64>) -> Result<Tensor> {
    let out = ops::shape::as_strided(x, size, stride, offset)?;
    if !needs_grad(&[Some(x)]) {
        return Ok(out);
    }
    let base = x.layout().offset;
    let l = out.layout();
    if !x.is_contiguous() || l.offset < base || overlaps(&l) || l.offset - base + extent(&l) > x.numel() {
        return Err(Error::Runtime(
            "as_strided on a tensor that requires grad is differentiable only for non-overlapping views inside a contiguous tensor".into(),
        ));
    }
    let rel = Layout { offset: l.offset - base, ..l };
    Ok(embedded_view(x, out, rel, "AsStridedBackward0"))
}

/// One past the largest element offset a layout reaches (relative to its own offset).
fn extent(l: &Layout) -> usize {
    if l.shape.iter().any(|&s| s == 0) {
        return 0;
    }
    l.shape.iter().zip(&l.strides).map(|(&s, &st)| (s - 1) * st.unsigned_abs()).sum::<usize>() + 1
}

/// Whether two positions of a layout can address the same element.
fn overlaps(l: &Layout) -> bool {
    let mut dims: Vec<(usize, usize)> = l.shape.iter().zip(&l.strides).filter(|(&s, _)| s > 1).map(|(&s, &st)| (st.unsigned_abs(), s)).collect();
    dims.sort();
    let mut reach = 1;
    for (st, s) in dims {
        if st < reach {
            return true;
        }
        reach = st * (s - 1) + reach;
    }
    false
}

fn contiguous_probe(x: &Tensor) -> Tensor {
    Tensor::from_storage(x.storage(), Layout::contiguous(&x.shape()), x.dtype())
}

/// `zeros(shape)` with `g` written at `layout` (the backward of select/slice/narrow).
pub fn embed(g: &Tensor, shape: &[usize], layout: &Layout) -> Result<Tensor> {
    let out = Tensor::zeros(shape, g.dtype());
    out.with_layout(layout.clone()).copy_from(g)?;
    record(|| Rule::Restrict { layout: layout.clone() }, &[Some(g)], &[&out]);
    Ok(out)
}

/// The positions `layout` picks out of a contiguous `g` (the backward of `embed`).
pub fn restrict(g: &Tensor, layout: &Layout) -> Result<Tensor> {
    let c = ops::cast::clone(g);
    let out = ops::cast::clone(&c.with_layout(layout.clone()));
    record(|| Rule::Embed { shape: g.shape(), layout: layout.clone(), name: "AsStridedBackward0" }, &[Some(g)], &[&out]);
    Ok(out)
}

/// `base` with `src` written at `layout` (relative to a contiguous `base`): the value of an
/// in-place op applied to a view of `base` (PyTorch's CopySlices).
pub fn copy_slices(base: &Tensor, layout: &Layout, src: &Tensor) -> Result<Tensor> {
    let out = ops::cast::clone(base);
    out.with_layout(layout.clone()).copy_from(src)?;
    record(|| Rule::CopySlices { layout: layout.clone() }, &[Some(base), Some(src)], &[&out]);
    Ok(out)
}

/// Ops with several outputs that are views of one input (split, chunk, unbind): one node.
fn multi_view(x: &Tensor, outs: Vec<Tensor>, rule: impl FnOnce() -> Rule) -> Vec<Tensor> {
    let refs: Vec<&Tensor> = outs.iter().collect();
    if record(rule, &[Some(x)], &refs).is_some() {
        let base = x.meta().base.clone().unwrap_or_else(|| x.clone());
        for o in &outs {
            o.meta().base = Some(base.clone());
        }
    }
    outs
}

fn sizes_along(outs: &[Tensor], d: usize) -> Vec<usize> {
    outs.iter().map(|o| o.shape()[d]).collect()
}

pub fn split(x: &Tensor, size: i64, dim: i64) -> Result<Vec<Tensor>> {
    let outs = ops::shape::split(x, size, dim)?;
    let d = wrap_dim(dim, x.ndim().max(1))?;
    let sizes = sizes_along(&outs, d);
    Ok(multi_view(x, outs, || Rule::Split { dim: d, sizes, name: "SplitBackward0" }))
}

pub fn split_sizes(x: &Tensor, sizes: &[i64], dim: i64) -> Result<Vec<Tensor>> {
    let outs = ops::shape::split_sizes(x, sizes, dim)?;
    let d = wrap_dim(dim, x.ndim().max(1))?;
    let sizes = sizes_along(&outs, d);
    Ok(multi_view(x, outs, || Rule::Split { dim: d, sizes, name: "SplitWithSizesBackward0" }))
}

pub fn chunk(x: &Tensor, chunks: i64, dim: i64) -> Result<Vec<Tensor>> {
    let outs = ops::shape::chunk(x, chunks, dim)?;
    let d = wrap_dim(dim, x.ndim().max(1))?;
    let sizes = sizes_along(&outs, d);
    Ok(multi_view(x, outs, || Rule::Split { dim: d, sizes, name: "SplitBackward0" }))
}

pub fn unbind(x: &Tensor, dim: i64) -> Result<Vec<Tensor>> {
    let outs = ops::shape::unbind(x, dim)?;
    let d = wrap_dim(dim, x.ndim().max(1))?;
    Ok(multi_view(x, outs, || Rule::Unbind { dim: d }))
}

pub fn cat(ts: &[Tensor], dim: i64) -> Result<Tensor> {
    let out = ops::shape::cat(ts, dim)?;
    let slots: Vec<Option<&Tensor>> = ts.iter().map(Some).collect();
    if needs_grad(&slots) {
        let d = wrap_dim(dim, out.ndim().max(1))?;
        // Legacy empty 1-D inputs take no part in the result (and get no gradient slice).
        let sizes: Vec<Option<usize>> =
            ts.iter().map(|t| if t.ndim() == 1 && t.numel() == 0 && out.ndim() != 1 { None } else { Some(t.shape()[d]) }).collect();
        record(|| Rule::Cat { dim: d, sizes }, &slots, &[&out]);
    }
    Ok(out)
}

pub fn stack(ts: &[Tensor], dim: i64) -> Result<Tensor> {
    let out = ops::shape::stack(ts, dim)?;
    let slots: Vec<Option<&Tensor>> = ts.iter().map(Some).collect();
    if needs_grad(&slots) {
        let d = wrap_dim(dim, out.ndim())?;
        record(|| Rule::Stack { dim: d }, &slots, &[&out]);
    }
    Ok(out)
}

pub fn flip(x: &Tensor, dims: &[i64]) -> Result<Tensor> {
    let out = ops::shape::flip(x, dims)?;
    record(|| Rule::Flip { dims: dims.to_vec() }, &[Some(x)], &[&out]);
    Ok(out)
}

pub fn roll(x: &Tensor, shifts: &[i64], dims: &[i64]) -> Result<Tensor> {
    let out = ops::shape::roll(x, shifts, dims)?;
    record(|| Rule::Roll { shifts: shifts.to_vec(), dims: dims.to_vec() }, &[Some(x)], &[&out]);
    Ok(out)
}

/// `F.pad(x, pads, value=...)` in constant mode; negative pads crop.
pub fn pad(x: &Tensor, pads: &[i64], value: Scalar) -> Result<Tensor> {
    if pads.len() % 2 != 0 {
        return Err(Error::Runtime("Padding length must be divisible by 2".into()));
    }
    let nd = x.ndim();
    if pads.len() / 2 > nd {
        return Err(Error::Runtime(format!(
            "Padding length should be less than or equal to two times the input dimension but got padding length {} and input of dimension {nd}",
            pads.len()
        )));
    }
    let shape = x.shape();
    let mut out_shape: Dims = shape.clone();
    // pads run from the last dim backwards: (left, right) pairs.
    let mut src = x.alias();
    let mut at = vec![0; nd];
    for (k, pair) in pads.chunks(2).enumerate() {
        let d = nd - 1 - k;
        let (lo, hi) = (pair[0], pair[1]);
        let new = shape[d] as i64 + lo + hi;
        if new < 0 {
            return Err(Error::Runtime(format!(
                "The input size {}, plus negative padding {} and {} resulted in a negative output size, which is invalid. Check dimension {d} of your input.",
                shape[d], lo, hi
            )));
        }
        out_shape[d] = new as usize;
        // Crop the source for negative pads, and place it at max(lo, 0) in the output.
        let (crop_lo, crop_hi) = ((-lo).max(0), (-hi).max(0));
        let keep = (shape[d] as i64 - crop_lo - crop_hi).max(0);
        src = ops::shape::narrow(&src, d as i64, crop_lo.min(shape[d] as i64), keep)?;
        at[d] = lo.max(0) as usize;
    }
    let out = ops::shape::pad_constant(&src, &out_shape, &at, value)?;
    record(|| Rule::Pad { pads: pads.to_vec() }, &[Some(x)], &[&out]);
    Ok(out)
}

// ---------------------------------------------------------------- indexing

/// `x[items]`: basic items build a chain of recorded views; index tensors then gather through
/// one `IndexBackward0` node over that view.
pub fn index(x: &Tensor, items: &[IndexItem]) -> Result<Tensor> {
    let (v, advanced) = ops::index::basic_view(x, items)?;
    match advanced {
        None if v.same(x) => alias(x),
        None => Ok(v),
        Some(rel) => {
            let out = ops::index::get(&v, &rel)?;
            if needs_grad(&[Some(&v)]) {
                record(|| Rule::Index { shape: v.shape(), items: rel, name: "IndexBackward0" }, &[Some(&v)], &[&out]);
            }
            Ok(out)
        }
    }
}

/// A copy of `x` with `values` put at `items` (added when `accumulate`).
pub fn index_put(x: &Tensor, items: &[IndexItem], values: &Tensor, accumulate: bool) -> Result<Tensor> {
    let out = ops::cast::clone(x);
    no_grad(|| ops::index::set(&out, items, values, accumulate))?;
    let name = if accumulate || !ops::index::is_basic(items) { "IndexPutBackward0" } else { "CopySlices" };
    record(|| Rule::IndexPut { items: items.to_vec(), accumulate, name }, &[Some(x), Some(values)], &[&out]);
    Ok(out)
}

fn dim_items(dim: usize, index: &Tensor) -> Vec<IndexItem> {
    let mut items: Vec<IndexItem> = (0..dim).map(|_| IndexItem::Slice { start: None, stop: None, step: 1 }).collect();
    items.push(IndexItem::Tensor(index.clone()));
    items
}

pub fn index_select(x: &Tensor, dim: i64, index: &Tensor) -> Result<Tensor> {
    if index.ndim() > 1 {
        return Err(Error::Index("index_select(): Index is supposed to be a vector".into()));
    }
    if index.dtype() != DType::I64 && index.dtype() != DType::I32 {
        return Err(Error::Runtime("index_select(): Expected dtype int32 or int64 for index".into()));
    }
    let d = wrap_dim(dim, x.ndim().max(1))?;
    let flat = ops::shape::reshape(index, &[-1])?;
    if x.ndim() == 0 {
        return self::index(&reshape(x, &[1])?, &[IndexItem::Tensor(flat)]).and_then(|r| reshape(&r, &as_i64(&index.shape())));
    }
    let items = dim_items(d, &flat);
    let out = ops::index::get(x, &items)?;
    if needs_grad(&[Some(x)]) {
        record(|| Rule::Index { shape: x.shape(), items, name: "IndexSelectBackward0" }, &[Some(x)], &[&out]);
    }
    Ok(out)
}

pub fn gather(x: &Tensor, dim: i64, index: &Tensor) -> Result<Tensor> {
    let out = ops::scatter::gather(x, dim, index)?;
    if needs_grad(&[Some(x)]) {
        let d = wrap_dim(dim, x.ndim().max(1))?;
        record(|| Rule::Gather { shape: x.shape(), dim: d, index: index.clone() }, &[Some(x)], &[&out]);
    }
    Ok(out)
}

/// `scatter(dim, index, src)` (tensor or number) and `scatter_add`.
pub fn scatter(x: &Tensor, dim: i64, index: &Tensor, src: Input, add: bool) -> Result<Tensor> {
    let source = match &src {
        Input::T(t) => Source::Tensor(t),
        Input::S(s) => Source::Value(*s),
    };
    let out = ops::scatter::scatter(x, dim, index, source, add)?;
    let ts = tensor_of(&src);
    if needs_grad(&[Some(x), ts]) {
        let d = wrap_dim(dim, x.ndim().max(1))?;
        let rule = || Rule::Scatter { dim: d, index: index.clone(), add, value: ts.is_none() };
        let slots: Vec<Option<&Tensor>> = if ts.is_some() { vec![Some(x), ts] } else { vec![Some(x)] };
        record(rule, &slots, &[&out]);
    }
    Ok(out)
}

pub fn masked_fill(x: &Tensor, mask: &Tensor, value: Input) -> Result<Tensor> {
    if mask.dtype() != DType::Bool {
        return Err(Error::Runtime(format!("masked_fill_ only supports boolean masks, but got mask with dtype {}", mask.dtype())));
    }
    let shape = crate::layout::broadcast_shapes(&x.shape(), &mask.shape())?;
    if shape != x.shape() {
        return Err(Error::Runtime(format!(
            "The expanded size of the tensor ({}) must match the existing size ({}) at non-singleton dimension 0.  Target sizes: {}.  Tensor sizes: {}",
            x.shape().first().copied().unwrap_or(1),
            shape.first().copied().unwrap_or(1),
            fmt_shape(&x.shape()),
            fmt_shape(&mask.shape())
        )));
    }
    let vt = tensor_of(&value);
    if let Some(v) = vt {
        if v.ndim() != 0 {
            return Err(Error::Runtime(format!(
                "masked_fill_ only supports a 0-dimensional value tensor, but got tensor with {} dimension(s).",
                v.ndim()
            )));
        }
    }
    let out = no_grad(|| -> Result<Tensor> {
        let fill = match value {
            Input::T(v) => ops::cast::to_dtype(v, x.dtype()),
            Input::S(s) => Tensor::scalar(s, x.dtype()),
        };
        ops::elementwise::where_(mask, (&fill).into(), x.into())
    })?;
    let slots: Vec<Option<&Tensor>> = if vt.is_some() { vec![Some(x), vt] } else { vec![Some(x)] };
    record(|| Rule::MaskedFill { mask: mask.clone(), value_tensor: vt.is_some() }, &slots, &[&out]);
    Ok(out)
}

// ---------------------------------------------------------------- losses

/// How a loss combines its per-element terms.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Reduction {
    None,
    Mean,
    Sum,
}

impl Reduction {
    pub fn parse(s: &str) -> Result<Reduction> {
        match s {
            "none" => Ok(Reduction::None),
            "mean" => Ok(Reduction::Mean),
            "sum" => Ok(Reduction::Sum),
            _ => Err(Error::Value(format!("{s} is not a valid value for reduction"))),
        }
    }
}

fn reduce_loss(terms: &Tensor, reduction: Reduction) -> Result<Tensor> {
    match reduction {
        Reduction::None => Ok(terms.clone()),
        Reduction::Mean => ops::reduce::mean(terms, None, false, None),
        Reduction::Sum => ops::reduce::sum(terms, None, false, None),
    }
}

/// `F.mse_loss(input, target, reduction)`: mean/sum/none of `(input - target)²`.
pub fn mse_loss(input: &Tensor, target: &Tensor, reduction: Reduction) -> Result<Tensor> {
    let out = no_grad(|| -> Result<Tensor> {
        let d = ops::elementwise::binary(BinaryOp::Sub, input.into(), target.into())?;
        reduce_loss(&ops::elementwise::binary(BinaryOp::Mul, (&d).into(), (&d).into())?, reduction)
    })?;
    let rule = || Rule::MseLoss { input: Saved::input(input), target: Saved::input(target), reduction };
    record(rule, &[Some(input), Some(target)], &[&out]);
    Ok(out)
}

/// `F.nll_loss(input, target, weight, ignore_index, reduction)` for `(C)` or `(N, C)` inputs.
pub fn nll_loss(input: &Tensor, target: &Tensor, weight: Option<&Tensor>, ignore_index: i64, reduction: Reduction) -> Result<Tensor> {
    let (out, picks) = nll_forward(input, target, weight, ignore_index, reduction)?;
    record(|| Rule::NllLoss { picks, shape: input.shape() }, &[Some(input)], &[&out]);
    Ok(out)
}

/// `F.cross_entropy(input, target, weight, ignore_index, reduction)` with class-index targets
/// for `(C)` or `(N, C)` inputs: `nll_loss(log_softmax(input))` recorded as one node, so that
/// the float32 backward is one pass writing `coef·(onehot - softmax)` per row
/// (`ops::softmax::cross_entropy_backward_rows`) instead of a dense one-hot gradient and
/// log-softmax's backward over it.
pub fn cross_entropy(input: &Tensor, target: &Tensor, weight: Option<&Tensor>, ignore_index: i64, reduction: Reduction) -> Result<Tensor> {
    if !matches!(input.ndim(), 1 | 2) {
        return Err(Error::Value(format!("Expected 1 or 2 dimensions (got {})", input.ndim())));
    }
    // log_softmax is recorded (when x wants a gradient) but stays off the loss's graph, whose
    // node leads straight to x: it serves a create_graph backward only, where the composite
    // formula on logp differentiates through it into x. Its saved output is logp itself, the
    // tensor PyTorch's LogSoftmaxBackward holds, so nothing more is kept alive.
    let logp = softmax(input, input.ndim() as i64 - 1, true, None)?;
    let (out, picks) = nll_forward(&logp, target, weight, ignore_index, reduction)?;
    let logp = match input.ndim() {
        1 => reshape(&logp, &[1, input.shape()[0] as i64])?,
        _ => logp,
    };
    let rule = || Rule::CrossEntropy { picks, shape: input.shape(), logp };
    record(rule, &[Some(input)], &[&out]);
    Ok(out)
}

/// NLL's forward: the loss and, for the backward, each sample's class and weight.
fn nll_forward(input: &Tensor, target: &Tensor, weight: Option<&Tensor>, ignore_index: i64, reduction: Reduction) -> Result<(Tensor, NllPicks)> {
    if !matches!(target.dtype(), DType::I64 | DType::U8) {
        return Err(Error::Runtime(format!(
            "expected target dtype to be Long or Byte, but got {}",
            target.dtype().legacy_name().trim_end_matches("Tensor")
        )));
    }
    let (x, t) = match (input.ndim(), target.ndim()) {
        (1, 0) => (ops::shape::unsqueeze(input, 0)?, ops::shape::reshape(target, &[1])?),
        (2, 1) => (input.clone(), target.clone()),
        (2, _) | (1, _) => return Err(Error::Runtime(format!("0D or 1D target tensor expected, multi-target not supported"))),
        (n, _) => return Err(Error::Value(format!("Expected 2 or fewer dimensions (got {n})"))),
    };
    let (n, c) = (x.shape()[0], x.shape()[1]);
    if t.shape()[0] != n {
        return Err(Error::Value(format!("Expected input batch_size ({n}) to match target batch_size ({}).", t.shape()[0])));
    }
    if let Some(w) = weight {
        if w.ndim() != 1 || w.shape()[0] != c {
            return Err(Error::Runtime(format!(
                "weight tensor should be defined either for all {c} classes or no classes but got weight tensor of shape: {}",
                fmt_shape(&w.shape())
            )));
        }
    }
    // Per-sample class and weight; ignored samples weigh 0 and point at class 0.
    let targets = t.to_vec::<i64>();
    let wv = weight.map(|w| w.to_vec::<f64>());
    let mut classes = Vec::with_capacity(n);
    let mut weights = Vec::with_capacity(n);
    let mut ignored = vec![false; n];
    for (i, &k) in targets.iter().enumerate() {
        if k == ignore_index {
            classes.push(0i64);
            weights.push(0.0);
            ignored[i] = true;
            continue;
        }
        if k < 0 || k as usize >= c {
            return Err(Error::Index(format!("Target {k} is out of bounds.")));
        }
        classes.push(k);
        weights.push(wv.as_ref().map_or(1.0, |w| w[k as usize]));
    }
    let total: f64 = weights.iter().sum();
    // The terms `-x[i, class]·weight` in float64 (the product of two values of x's dtype is
    // exact there, so each term rounds once, as the dtype's own product does) and their sum
    // accumulated in float64, as PyTorch's CPU kernel does: one loop instead of five ops.
    let v = x.view();
    let (s0, s1) = (v.layout.strides[0], v.layout.strides[1]);
    let picked: Vec<f64> = float_only!(x.dtype(), "nll_loss", T => {
        // SAFETY: row i < n and class k < c lie inside x's view (ignored rows point at class
        // 0, which exists unless c is 0; they weigh 0).
        let at = |i: usize, k: i64| if (k as usize) < c { unsafe { *v.ptr::<T>().offset(i as isize * s0 + k as isize * s1) }.into() } else { 0.0 };
        Ok(classes.iter().enumerate().map(|(i, &k)| at(i, k)).collect())
    })?;
    let round = |w: f64| if x.dtype() == DType::F32 { w as f32 as f64 } else { w };
    let terms: Vec<f64> = picked.iter().zip(&weights).map(|(&p, &w)| -(p * round(w))).collect();
    let sum = terms.iter().fold(0.0, |a, t| a + t);
    let (shape, terms): (&[usize], Vec<f64>) = match reduction {
        Reduction::None => (if input.ndim() == 1 { &[] } else { &[n] }, terms),
        Reduction::Sum => (&[], vec![sum]),
        Reduction::Mean => (&[], vec![sum / total]),
    };
    let out = ops::cast::to_dtype(&Tensor::from_vec(terms, shape)?, x.dtype());
    let classes = Tensor::from_vec(classes, &[n, 1])?;
    let weights = ops::cast::to_dtype(&Tensor::from_vec(weights, &[n])?, x.dtype());
    let ignored = if ignored.contains(&true) { Some(Tensor::from_vec(ignored, &[n])?) } else { None };
    Ok((out, NllPicks { classes, weights, total, reduction, ignored }))
}

// ---------------------------------------------------------------- copies and casts

/// `clone()`: PyTorch's `preserve_format` (a permuted tensor's copy keeps its strides).
pub fn clone(x: &Tensor) -> Result<Tensor> {
    clone_strided(x, crate::layout::preserved_strides(&x.layout()))
}

/// `clone(memory_format=...)`: a recorded copy with dense `strides` (`None`: row-major).
pub fn clone_strided(x: &Tensor, strides: Option<crate::layout::Strides>) -> Result<Tensor> {
    let out = ops::cast::copy_strided(x, x.dtype(), strides);
    record(|| Rule::Identity { name: "CloneBackward0" }, &[Some(x)], &[&out]);
    Ok(out)
}

pub fn contiguous(x: &Tensor) -> Result<Tensor> {
    if x.is_contiguous() {
        return Ok(x.clone());
    }
    let out = ops::cast::clone(x);
    record(|| Rule::Identity { name: "CloneBackward0" }, &[Some(x)], &[&out]);
    Ok(out)
}

/// A new tensor object sharing `x`'s data (`x[...]`).
pub fn alias(x: &Tensor) -> Result<Tensor> {
    let out = x.alias();
    record_view(|| Rule::Identity { name: "AliasBackward0" }, x, &out);
    Ok(out)
}

/// `x.to(dtype)`: `x` itself when the dtype already matches.
pub fn to_dtype(x: &Tensor, dtype: DType) -> Result<Tensor> {
    if x.dtype() == dtype {
        return Ok(x.clone());
    }
    to_copy(x, dtype)
}

/// `x.to(dtype, copy=True)`: always a new tensor.
pub fn to_copy(x: &Tensor, dtype: DType) -> Result<Tensor> {
    let out = ops::cast::copy_like(x, dtype);
    record(|| Rule::Identity { name: "ToCopyBackward0" }, &[Some(x)], &[&out]);
    Ok(out)
}

/// `g` summed over the dims along which `shape` was broadcast to `g`'s shape.
pub fn sum_to(g: &Tensor, shape: &[usize]) -> Result<Tensor> {
    let gs = g.shape();
    if &gs[..] == shape {
        return Ok(g.clone());
    }
    let lead = gs.len() - shape.len();
    let dims: Vec<i64> = (0..gs.len())
        .filter(|&d| d < lead || (shape[d - lead] == 1 && gs[d] != 1))
        .map(|d| d as i64)
        .collect();
    let s = if dims.is_empty() { g.clone() } else { sum(g, Some(&dims), true, None)? };
    reshape(&s, &as_i64(shape))
}

/// The value of an in-place `fill_`/`zero_` as a new tensor (recorded with a zero gradient).
pub fn filled(x: &Tensor, value: Input, name: &'static str) -> Result<Tensor> {
    let out = match value {
        Input::S(s) => ops::factory::full(&x.shape(), s, x.dtype())?,
        Input::T(v) => {
            if v.ndim() != 0 {
                return Err(Error::Runtime(format!(
                    "fill_ only supports 0-dimension value tensor but got tensor with {} dimensions.",
                    v.ndim()
                )));
            }
            let o = Tensor::uninit(&x.shape(), x.dtype());
            o.copy_from(v)?;
            o
        }
    };
    record(|| Rule::ZeroGrad { name }, &[Some(x), tensor_of(&value)], &[&out]);
    Ok(out)
}

/// The value of `x.copy_(src)` as a new tensor: `src` broadcast to `x`'s shape, cast to its dtype.
pub fn copied(x: &Tensor, src: &Tensor) -> Result<Tensor> {
    let out = Tensor::uninit(&x.shape(), x.dtype());
    out.copy_from(src)?;
    record(|| Rule::Copy, &[Some(x), Some(src)], &[&out]);
    Ok(out)
}

/// Zeros shaped like `t` (never recorded).
pub fn zeros_like(t: &Tensor) -> Tensor {
    Tensor::zeros(&t.shape(), t.dtype())
}

/// `g` broadcast (as a view) to `shape`.
pub fn expand_to(g: &Tensor, shape: &[usize]) -> Result<Tensor> {
    expand(g, &as_i64(shape))
}
