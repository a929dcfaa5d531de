//! Elementwise ops with broadcasting and PyTorch's type promotion: arithmetic, comparisons,
//! bitwise/logical ops and the unary math functions. One table per family.

use std::borrow::Cow;

use crate::dispatch;
use crate::dtype::{default_float, result_type, Category, DType, Element, Operand, Scalar};
use crate::error::{Error, Result};
use crate::kernels::map::{map1, map1_runs, map2, map2_flat, map3, Arg};
use crate::kernels::vmath16::{self, Fn16};
use crate::kernels::num::{Float, Num};
use crate::layout::{broadcast_shapes, Dims, Layout, Strides};
use crate::ops::cast::to_dtype;
use crate::ops::Input;
use crate::tensor::{Tensor, View, ViewGuard};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    FloorDiv,
    Rem,
    Pow,
    Maximum,
    Minimum,
    BitAnd,
    BitOr,
    BitXor,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    LogicalAnd,
    LogicalOr,
    LogicalXor,
}

impl BinaryOp {
    /// PyTorch's kernel names, as they appear in "not implemented for" messages.
    pub fn name(self) -> &'static str {
        use BinaryOp::*;
        match self {
            Add => "add", Sub => "sub", Mul => "mul", Div => "div", FloorDiv => "floor_divide",
            Rem => "remainder", Pow => "pow", Maximum => "maximum", Minimum => "minimum",
            BitAnd => "bitwise_and_cpu", BitOr => "bitwise_or_cpu", BitXor => "bitwise_xor_cpu",
            Eq => "eq", Ne => "ne", Lt => "lt", Le => "le", Gt => "gt", Ge => "ge",
            LogicalAnd => "logical_and", LogicalOr => "logical_or", LogicalXor => "logical_xor",
        }
    }
    fn returns_bool(self) -> bool {
        use BinaryOp::*;
        matches!(self, Eq | Ne | Lt | Le | Gt | Ge | LogicalAnd | LogicalOr | LogicalXor)
    }
}

/// An operand read once: a tensor's view, borrowed under one read lock (where every accessor
/// would take it again), or a number.
enum Val<'a> {
    V(ViewGuard<'a>),
    S(Scalar),
}

impl<'a> Val<'a> {
    fn of(i: &Input<'a>) -> Val<'a> {
        match i {
            Input::T(t) => Val::V(t.read_view()),
            Input::S(s) => Val::S(*s),
        }
    }
    fn operand(&self) -> Operand {
        match self {
            Val::V(v) if v.layout.ndim() == 0 => Operand::ZeroDim(v.dtype),
            Val::V(v) => Operand::Tensor(v.dtype),
            Val::S(s) => Operand::Number(*s),
        }
    }
    fn dtype(&self) -> DType {
        match self {
            Val::V(v) => v.dtype,
            Val::S(s) => s.default_dtype(default_float()),
        }
    }
    fn layout(&self) -> Option<&Layout> {
        match self {
            Val::V(v) => Some(&v.layout),
            Val::S(_) => None,
        }
    }
    fn shape(&self) -> &[usize] {
        match self {
            Val::V(v) => &v.layout.shape,
            Val::S(_) => &[],
        }
    }
    /// As a view of dtype `dt` (numbers become 0-dim tensors).
    fn as_view(&self, dt: DType) -> Cow<'_, View> {
        match self {
            Val::V(v) if v.dtype == dt => Cow::Borrowed(v),
            Val::V(v) => Cow::Owned(crate::ops::cast::materialize(v, dt)),
            Val::S(s) => Cow::Owned(View::scalar(*s, dt)),
        }
    }
    /// A tensor operand of a dtype other than `dt`, converted; `None` for one already of `dt`
    /// (read in place: no 136-byte view is moved around on the common path) or a number.
    fn converted(&self, dt: DType) -> Option<View> {
        match self {
            Val::V(v) if v.dtype != dt => Some(crate::ops::cast::materialize(v, dt)),
            _ => None,
        }
    }
    /// A tensor operand as a view of the dtype `converted` was given; `None` for a number.
    fn tensor_ref<'s>(&'s self, converted: &'s Option<View>) -> Option<&'s View> {
        match self {
            Val::V(v) => Some(converted.as_ref().unwrap_or(v)),
            Val::S(_) => None,
        }
    }
    /// A number operand converted to `T` (zero for a tensor).
    fn number_as<T: Element>(&self) -> T {
        match self {
            Val::S(s) => T::from_scalar(*s),
            Val::V(_) => T::from_scalar(Scalar::Int(0)),
        }
    }
    fn any_zero(&self, dt: DType) -> bool {
        match self {
            Val::S(s) => s.is_zero(),
            Val::V(_) => {
                let v = self.as_view(dt);
                dispatch!(dt, T => crate::kernels::reduce::any_of::<T>(&v, |x| x == T::zero()))
            }
        }
    }
}

/// The dtype of `op(a, b)` without running it (used by in-place ops to check castability).
pub fn binary_result_dtype(op: BinaryOp, a: Input, b: Input) -> Result<DType> {
    Ok(if op.returns_bool() { DType::Bool } else { compute_dtype(op, &Val::of(&a), &Val::of(&b))? })
}

fn compute_dtype(op: BinaryOp, a: &Val, b: &Val) -> Result<DType> {
    use BinaryOp::*;
    // Two tensors of one float dtype (the common case): promotion keeps it, and only the logical
    // and bitwise ops below decide otherwise.
    if let (Val::V(va), Val::V(vb)) = (a, b) {
        if va.dtype == vb.dtype && va.dtype.is_float() && !matches!(op, LogicalAnd | LogicalOr | LogicalXor | BitAnd | BitOr | BitXor) {
            return Ok(va.dtype);
        }
    }
    let rt = result_type(&[a.operand(), b.operand()], default_float());
    Ok(match op {
        Div if !rt.is_float() => default_float(),
        LogicalAnd | LogicalOr | LogicalXor => DType::Bool,
        BitAnd | BitOr | BitXor if rt.is_float() => {
            return Err(Error::DTypeUnsupported { op: op.name(), dtype: rt });
        }
        Sub if a.dtype() == DType::Bool && b.dtype() == DType::Bool => {
            return Err(Error::Runtime(
                "Subtraction, the `-` operator, with two bool tensors is not supported. Use the `^` or `logical_xor()` operator instead.".into(),
            ));
        }
        Sub if a.dtype() == DType::Bool || b.dtype() == DType::Bool => {
            return Err(Error::Runtime(
                "Subtraction, the `-` operator, with a bool tensor is not supported. If you are trying to invert a mask, use the `~` or `logical_not()` operator instead.".into(),
            ));
        }
        FloorDiv if rt == DType::Bool => return Err(Error::DTypeUnsupported { op: "div_floor_cpu", dtype: rt }),
        Rem if rt == DType::Bool => return Err(Error::DTypeUnsupported { op: "remainder_cpu", dtype: rt }),
        _ => rt,
    })
}

/// `op(a, b)` with broadcasting, promotion and PyTorch's error cases.
pub fn binary(op: BinaryOp, a: Input, b: Input) -> Result<Tensor> {
    let (a, b) = (Val::of(&a), Val::of(&b));
    let (ct, shape, out_dt) = binary_checked(op, &a, &b)?;
    let out = fresh(&shape, out_dt, &[a.layout(), b.layout()])?;
    binary_kernel(op, &a, &b, ct, &shape, &out)?;
    Ok(Tensor::from_view(out))
}

/// A fresh result of `shape` laid out as PyTorch lays it out after operands with these layouts
/// (`None`: a number): row-major when every operand is a contiguous tensor of that shape
/// (TensorIterator's fast setup), else dense in the operands' memory order
/// (`layout::result_strides`): `exp(x.t())` has `x.t()`'s strides, as in PyTorch.
#[inline]
fn fresh(shape: &[usize], dt: DType, operands: &[Option<&Layout>]) -> Result<View> {
    let mut out = View::uninit(shape, dt);
    // Fewer than two dims have one order (and tiny ops skip the strides work).
    if shape.len() < 2 || operands.iter().all(|l| l.is_some_and(|l| l.shape[..] == *shape && l.is_contiguous())) {
        return Ok(out);
    }
    if let Some(st) = operand_order(shape, operands)? {
        out.layout.strides = st;
    }
    Ok(out)
}

/// `layout::result_strides` over the tensor operands' broadcast strides (kept out of line: its
/// buffers made every tiny op's frame bigger, 7 % of a tiny add).
#[inline(never)]
fn operand_order(shape: &[usize], operands: &[Option<&Layout>]) -> Result<Option<Strides>> {
    let strides = operands.iter().flatten().map(|l| l.broadcast_strides(shape)).collect::<Result<smallvec::SmallVec<[Cow<'_, Strides>; 4]>>>()?;
    let refs: smallvec::SmallVec<[&[isize]; 4]> = strides.iter().map(|s| &s[..]).collect();
    Ok(crate::layout::result_strides(shape, &refs))
}

/// `op(a, b)` written straight into `out` (an in-place op or `out=` with nothing recorded), when
/// `out` already has the result's dtype and shape and no operand reads memory that `out` writes
/// at another position. `Ok(false)`: not applicable, nothing written.
pub fn binary_into(op: BinaryOp, a: Input, b: Input, out: &Tensor) -> Result<bool> {
    let (a, b) = (Val::of(&a), Val::of(&b));
    let (ct, shape, out_dt) = binary_checked(op, &a, &b)?;
    let vo = out.view();
    if out_dt != vo.dtype || shape != vo.layout.shape || !writable_from(&vo, &[&a, &b], ct)? {
        return Ok(false);
    }
    binary_kernel(op, &a, &b, ct, &shape, &vo)?;
    vo.storage.bump_version();
    Ok(true)
}

/// `out` can be written in one pass while the operands are read: no element of `out` shares
/// memory with another, and each operand lives in other storage, is `out` itself, or is
/// converted to the compute dtype (a copy) before the pass. An operand that partly overlaps
/// `out` is PyTorch's error.
fn writable_from(out: &View, inputs: &[&Val], ct: DType) -> Result<bool> {
    let mut ok = !out.layout.has_internal_overlap();
    for i in inputs {
        if let Val::V(v) = i {
            crate::ops::cast::check_no_partial_overlap(out, v)?;
            ok &= !std::sync::Arc::ptr_eq(&v.storage, &out.storage) || v.dtype != ct || v.layout == out.layout;
        }
    }
    Ok(ok)
}

/// The compute dtype, broadcast shape and result dtype of `op(a, b)`, or PyTorch's error.
fn binary_checked(op: BinaryOp, a: &Val, b: &Val) -> Result<(DType, Dims, DType)> {
    use BinaryOp::*;
    let ct = compute_dtype(op, a, b)?;
    let shape = broadcast_shapes(a.shape(), b.shape())?;
    if matches!(op, FloorDiv | Rem) && ct.category() != Category::Float && b.any_zero(ct) {
        return Err(Error::Runtime("ZeroDivisionError".into()));
    }
    if op == Pow && ct.category() != Category::Float {
        if let Val::S(s) = b {
            if s.as_i64() < 0 {
                return Err(Error::Runtime("Integers to negative integer powers are not allowed.".into()));
            }
        }
    }
    Ok((ct, shape, if op.returns_bool() { DType::Bool } else { ct }))
}

fn binary_kernel(op: BinaryOp, a: &Val, b: &Val, ct: DType, shape: &[usize], vo: &View) -> Result<()> {
    use BinaryOp::*;
    let (ca, cb) = (a.converted(ct), b.converted(ct));
    let (va, vb) = (a.tensor_ref(&ca), b.tensor_ref(&cb));
    let flat = flat_operands(shape, vo, [va, vb]);
    // A number operand is read from a local with stride 0 everywhere: no storage for it.
    let zeros: Strides = if flat.is_some() { Strides::new() } else { smallvec::smallvec![0; shape.len()] };
    let sa = match (&va, flat) { (Some(v), None) => v.layout.broadcast_strides(shape)?, _ => Cow::Borrowed(&zeros) };
    let sb = match (&vb, flat) { (Some(v), None) => v.layout.broadcast_strides(shape)?, _ => Cow::Borrowed(&zeros) };
    let so = &vo.layout.strides;
    dispatch!(ct, T => {
        let (xa, xb) = (a.number_as::<T>(), b.number_as::<T>());
        let pa = match &va { Some(v) => v.ptr::<T>(), None => &xa as *const T as *mut T };
        let pb = match &vb { Some(v) => v.ptr::<T>(), None => &xb as *const T as *mut T };
        let (pa, pb) = (Arg::new(pa, &sa), Arg::new(pb, &sb));
        macro_rules! run {
            ($O:ty, $f:expr) => {
                match flat {
                    // SAFETY: flat_operands found each operand (and the output) holding the
                    // result's elements contiguously, or a number (step 0), or one element.
                    Some((n, [fa, fb])) => unsafe { map2_flat::<T, T, $O>(n, vo.ptr::<$O>(), pa.ptr, fa, pb.ptr, fb, $f) },
                    None => map2::<T, T, $O>(shape, Arg::new(vo.ptr::<$O>(), &so), pa, pb, $f),
                }
            };
        }
        match op {
            Add => run!(T, |x, y| Num::add(x, y)),
            Sub => run!(T, |x, y| Num::sub(x, y)),
            Mul => run!(T, |x, y| Num::mul(x, y)),
            Div => run!(T, |x, y| Num::div(x, y)),
            FloorDiv => run!(T, |x, y| Num::floor_div(x, y)),
            Rem => run!(T, |x, y| Num::rem(x, y)),
            Pow => run!(T, |x, y| Num::pow(x, y)),
            Maximum => run!(T, |x, y| Num::maximum(x, y)),
            Minimum => run!(T, |x, y| Num::minimum(x, y)),
            BitAnd => run!(T, |x, y| Num::bitand(x, y)),
            BitOr => run!(T, |x, y| Num::bitor(x, y)),
            BitXor => run!(T, |x, y| Num::bitxor(x, y)),
            Eq => run!(bool, |x, y| x == y),
            Ne => run!(bool, |x, y| x != y),
            Lt => run!(bool, |x, y| x < y),
            Le => run!(bool, |x, y| x <= y),
            Gt => run!(bool, |x, y| x > y),
            Ge => run!(bool, |x, y| x >= y),
            LogicalAnd => run!(bool, |x, y| x.cast::<bool>() & y.cast::<bool>()),
            LogicalOr => run!(bool, |x, y| x.cast::<bool>() | y.cast::<bool>()),
            LogicalXor => run!(bool, |x, y| x.cast::<bool>() ^ y.cast::<bool>()),
        }
    });
    Ok(())
}

/// Results of at most this many elements whose operands need no walk go through `map2_flat`.
const FLAT_MAX: usize = 16;

/// `(n, steps)` when the result has at most `FLAT_MAX` elements, the output and every tensor
/// operand hold them contiguously in the result's order (or there is one element), and each
/// operand's step is 1 (a tensor) or 0 (a number, `None`): a tiny op then skips the strides, the
/// walk and the vector dispatch (about 600 instructions of a one-element add's 3,800).
fn flat_operands<const K: usize>(shape: &[usize], vo: &View, operands: [Option<&View>; K]) -> Option<(usize, [isize; K])> {
    let n = crate::layout::numel(shape);
    let dense = |l: &Layout| n == 1 || l.shape[..] == *shape && l.is_contiguous();
    if n > FLAT_MAX || !dense(&vo.layout) || !operands.iter().all(|v| v.as_ref().is_none_or(|v| dense(&v.layout))) {
        return None;
    }
    Some((n, operands.map(|v| v.is_some() as isize)))
}

/// `a + alpha * b` (and `sub`): PyTorch's `alpha` keyword.
pub fn add_scaled(a: Input, b: Input, alpha: Scalar, subtract: bool) -> Result<Tensor> {
    let op = if subtract { BinaryOp::Sub } else { BinaryOp::Add };
    if alpha == Scalar::Int(1) || alpha == Scalar::Float(1.0) {
        return binary(op, a, b);
    }
    let ct = compute_dtype(op, &Val::of(&a), &Val::of(&b))?;
    if alpha.category() == Category::Float && !ct.is_float() {
        return Err(Error::Runtime(
            "For integral input tensors, argument alpha must not be a floating point number.".into(),
        ));
    }
    let scaled = binary(BinaryOp::Mul, b, Input::S(alpha))?;
    // The scaled term must not change the promoted dtype of the original pair.
    let scaled = to_dtype(&scaled, ct);
    binary(op, a, Input::T(&scaled))
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryOp {
    Neg,
    Abs,
    Sign,
    BitNot,
    LogicalNot,
    Relu,
    Square,
    // Float-valued functions: integer inputs are promoted to the default float dtype.
    Exp,
    Log,
    Log2,
    Log10,
    Log1p,
    Expm1,
    Sqrt,
    Rsqrt,
    Sin,
    Cos,
    Tan,
    Tanh,
    Sigmoid,
    Reciprocal,
    Erf,
    Erfc,
    // Activations (float-valued, with PyTorch's parameters).
    LeakyRelu(f64),
    /// ELU family: `scale * (x > 0 ? x : alpha * (exp(x * input_scale) - 1))`.
    Elu { alpha: f64, scale: f64, input_scale: f64 },
    Gelu,
    GeluTanh,
    Silu,
    Softplus { beta: f64, threshold: f64 },
    Mish,
    /// `x` clamped to `[min, max]` (relu6 is `[0, 6]`).
    Hardtanh { min: f64, max: f64 },
    Hardsigmoid,
    Hardswish,
    LogSigmoid,
    /// `x` where `x > threshold`, else `value`.
    Threshold { threshold: f64, value: f64 },
    Hardshrink(f64),
    Softshrink(f64),
    // Rounding: identity on integers.
    Floor,
    Ceil,
    Round,
    Trunc,
    IsNan,
    IsInf,
    IsFinite,
}

impl UnaryOp {
    fn float_valued(self) -> bool {
        use UnaryOp::*;
        matches!(
            self,
            Exp | Log | Log2 | Log10 | Log1p | Expm1 | Sqrt | Rsqrt | Sin | Cos | Tan | Tanh | Sigmoid | Reciprocal | Erf | Erfc
                | LeakyRelu(_) | Elu { .. } | Gelu | GeluTanh | Silu | Softplus { .. } | Mish | Hardtanh { .. }
                | Hardsigmoid | Hardswish | LogSigmoid | Threshold { .. } | Hardshrink(_) | Softshrink(_)
        )
    }
    fn returns_bool(self) -> bool {
        matches!(self, UnaryOp::LogicalNot | UnaryOp::IsNan | UnaryOp::IsInf | UnaryOp::IsFinite)
    }
}

#[inline(always)]
fn unary_float<T: Float>(op: UnaryOp, x: T) -> T {
    use UnaryOp::*;
    let one = T::one();
    match op {
        Exp => x.exp(),
        Log => x.ln(),
        Log2 => x.log2(),
        Log10 => x.log10(),
        Log1p => x.ln_1p(),
        Expm1 => x.exp_m1(),
        Sqrt => x.sqrt(),
        Rsqrt => Num::div(one, x.sqrt()),
        Sin => x.sin(),
        Cos => x.cos(),
        Tan => x.tan(),
        Tanh => x.tanh(),
        Sigmoid => Num::div(one, Num::add(one, Num::neg(x).exp())),
        Reciprocal => Num::div(one, x),
        Erf => x.erf(),
        Erfc => x.erfc(),
        LeakyRelu(s) => leaky_relu(x, T::from_f64(s)),
        Elu { alpha, scale, input_scale } => elu(x, T::from_f64(alpha), T::from_f64(scale), T::from_f64(input_scale)),
        Gelu => x.gelu(),
        GeluTanh => {
            let k = T::from_f64((2.0 / std::f64::consts::PI).sqrt());
            let inner = Num::mul(k, Num::add(x, Num::mul(T::from_f64(0.044715), Num::mul(x, Num::mul(x, x)))));
            Num::mul(Num::mul(T::from_f64(0.5), x), Num::add(one, inner.tanh()))
        }
        Silu => Num::div(x, Num::add(one, Num::neg(x).exp())),
        Softplus { beta, threshold } => softplus(x, T::from_f64(beta), T::from_f64(threshold)),
        Mish => Num::mul(x, softplus(x, one, T::from_f64(20.0)).tanh()),
        Hardtanh { min, max } => hardtanh(x, T::from_f64(min), T::from_f64(max)),
        Hardsigmoid => hardsigmoid(x),
        Hardswish => Num::mul(x, hardsigmoid(x)),
        // -softplus(-x) in the form that neither overflows nor cancels: min(x, 0) - log1p(exp(-|x|)).
        LogSigmoid => {
            let low = if x < T::zero() { x } else { T::zero() };
            Num::sub(low, Num::neg(Num::abs(x)).exp().ln_1p())
        }
        Threshold { threshold, value } => threshold_op(x, T::from_f64(threshold), T::from_f64(value)),
        Hardshrink(l) => hardshrink(x, T::from_f64(l)),
        Softshrink(l) => softshrink(x, T::from_f64(l)),
        Floor => x.floor(),
        Ceil => x.ceil(),
        Round => x.round_even(),
        Trunc => x.trunc(),
        _ => x,
    }
}

/// What `op` does on a dtype: PyTorch's error, a trivial result, or a kernel pass.
enum UnaryPlan {
    /// Compute in the first dtype, return the second.
    Kernel(DType, DType),
    /// Rounding of integers: the input unchanged.
    Clone,
    /// `isnan`/`isinf` of integers: all false.
    AllFalse,
}

fn unary_plan(op: UnaryOp, dt: DType) -> Result<UnaryPlan> {
    use UnaryOp::*;
    match op {
        Neg if dt == DType::Bool => {
            return Err(Error::Runtime("Negation, the `-` operator, on a bool tensor is not supported. If you are trying to invert a mask, use the `~` or `logical_not()` operator instead.".into()));
        }
        BitNot if dt.is_float() => return Err(Error::DTypeUnsupported { op: "bitwise_not_cpu", dtype: dt }),
        Abs if dt == DType::Bool => return Err(Error::DTypeUnsupported { op: "abs_cpu", dtype: dt }),
        Floor | Ceil | Round | Trunc if !dt.is_float() => return Ok(UnaryPlan::Clone),
        IsNan | IsInf if !dt.is_float() => return Ok(UnaryPlan::AllFalse),
        _ => {}
    }
    let ct = if op.float_valued() && !dt.is_float() { default_float() } else { dt };
    Ok(UnaryPlan::Kernel(ct, if op.returns_bool() { DType::Bool } else { ct }))
}

/// `op(x)` elementwise.
pub fn unary(op: UnaryOp, x: &Tensor) -> Result<Tensor> {
    match unary_plan(op, x.dtype())? {
        UnaryPlan::Clone => Ok(crate::ops::cast::clone(x)),
        UnaryPlan::AllFalse => Ok(Tensor::zeros(&x.shape(), DType::Bool)),
        UnaryPlan::Kernel(ct, out_dt) => {
            let v = x.read_view();
            let out = fresh(&v.layout.shape, out_dt, &[Some(&v.layout)])?;
            unary_kernel(op, &Val::V(v).as_view(ct), ct, &out);
            Ok(Tensor::from_view(out))
        }
    }
}

/// `op(x)` written straight into `out` (see `binary_into`); `Ok(false)`: not applicable.
pub fn unary_into(op: UnaryOp, x: &Tensor, out: &Tensor) -> Result<bool> {
    let UnaryPlan::Kernel(ct, out_dt) = unary_plan(op, x.dtype())? else { return Ok(false) };
    let vo = out.view();
    if out_dt != vo.dtype || x.shape() != vo.layout.shape || !writable_from(&vo, &[&Val::V(x.read_view())], ct)? {
        return Ok(false);
    }
    unary_kernel(op, &Val::V(x.read_view()).as_view(ct), ct, &vo);
    vo.storage.bump_version();
    Ok(true)
}

// The parameterised activations compute both sides and select, so every parameter is read on
// every element: a parameter read in one branch only is a conditional load that LLVM vectorised
// as a masked gather per element (elu ran at half speed that way).
#[inline(always)]
fn leaky_relu<T: Float>(x: T, slope: T) -> T {
    let neg = Num::mul(x, slope);
    if x > T::zero() { x } else { neg }
}

/// `scale * (x > 0 ? x : alpha * (exp(x * input_scale) - 1))`.
#[inline(always)]
fn elu<T: Float>(x: T, alpha: T, scale: T, input_scale: T) -> T {
    let neg = Num::mul(alpha, Num::mul(x, input_scale).exp_m1());
    Num::mul(scale, if x > T::zero() { x } else { neg })
}

/// `log(1 + exp(beta * x)) / beta`, and `x` itself where `beta * x > threshold`.
#[inline(always)]
fn softplus<T: Float>(x: T, beta: T, threshold: T) -> T {
    let bx = Num::mul(x, beta);
    let soft = Num::div(bx.exp().ln_1p(), beta);
    if bx > threshold { x } else { soft }
}

/// `x` clamped to `[lo, hi]`; NaN stays NaN.
#[inline(always)]
fn hardtanh<T: Float>(x: T, lo: T, hi: T) -> T {
    // Both bounds compared on every element (the same result as testing `lo` first, for any
    // bounds): `hi` read only where `x >= lo` became a gather (clamp of 1M floats 4× slower).
    let upper = if x > hi { hi } else { x };
    if x < lo { lo } else { upper }
}

/// `relu6(x + 3) / 6`.
#[inline(always)]
fn hardsigmoid<T: Float>(x: T) -> T {
    Num::div(hardtanh(Num::add(x, T::from_f64(3.0)), T::zero(), T::from_f64(6.0)), T::from_f64(6.0))
}

/// `value` where `x <= threshold` (NaN is kept, as in PyTorch).
#[inline(always)]
fn threshold_op<T: Float>(x: T, threshold: T, value: T) -> T {
    if x <= threshold { value } else { x }
}

/// 0 where `-l <= x <= l`, else `x`.
#[inline(always)]
fn hardshrink<T: Float>(x: T, l: T) -> T {
    if x >= Num::neg(l) && x <= l { T::zero() } else { x }
}

/// `x ∓ l` outside `[-l, l]`, else 0 (`x·0`, so NaN stays NaN).
#[inline(always)]
fn softshrink<T: Float>(x: T, l: T) -> T {
    let (dn, up, mid) = (Num::sub(x, l), Num::add(x, l), Num::mul(x, T::zero()));
    if x > l { dn } else if x < Num::neg(l) { up } else { mid }
}

/// `op` of `v` (already in the compute dtype `ct`) into `vo`.
fn unary_kernel(op: UnaryOp, v: &View, ct: DType, vo: &View) {
    use UnaryOp::*;
    let shape = &v.layout.shape;
    if matches!(op, Sin | Cos | Tan) && ct == DType::F32 {
        // Polynomials up to TRIG_LIMIT (libm's scalar sinf/cosf were 54 % of a small graph's
        // backward that used sin); a run holding a larger finite argument goes to libm.
        use crate::kernels::vmath::{cos_f32, sin_f32, tan_f32, TRIG_LIMIT};
        let (o, a) = (Arg::new(vo.ptr::<f32>(), &vo.layout.strides), Arg::new(v.ptr::<f32>(), &v.layout.strides));
        macro_rules! trig {
            ($poly:ident, $libm:expr) => {
                crate::kernels::map::map1_guarded(
                    shape,
                    o,
                    a,
                    #[inline(always)]
                    |x: f32| x.abs() > TRIG_LIMIT && x.abs() < f32::INFINITY,
                    #[inline(always)]
                    |x| $poly(x),
                    $libm,
                )
            };
        }
        match op {
            Sin => trig!(sin_f32, f32::sin),
            Cos => trig!(cos_f32, f32::cos),
            _ => trig!(tan_f32, f32::tan),
        }
        return;
    }
    dispatch!(ct, T => {
        let (po, pa) = (vo.ptr::<T>(), Arg::new(v.ptr::<T>(), &v.layout.strides));
        let o = |p| Arg::new(p, &vo.layout.strides);
        match op {
            Neg => map1::<T, T>(&shape, o(po), pa, |a| Num::neg(a)),
            Abs => map1::<T, T>(&shape, o(po), pa, |a| Num::abs(a)),
            Sign => map1::<T, T>(&shape, o(po), pa, |a| Num::sign(a)),
            BitNot => map1::<T, T>(&shape, o(po), pa, |a| Num::bitnot(a)),
            Relu => map1::<T, T>(&shape, o(po), pa, |a| if Num::is_nan(a) || a > T::zero() { a } else { T::zero() }),
            Square => map1::<T, T>(&shape, o(po), pa, |a| Num::mul(a, a)),
            LogicalNot => map1::<T, bool>(&shape, Arg::new(vo.ptr::<bool>(), &vo.layout.strides), pa, |a| !a.cast::<bool>()),
            IsNan => map1::<T, bool>(&shape, Arg::new(vo.ptr::<bool>(), &vo.layout.strides), pa, |a| Num::is_nan(a)),
            IsInf => map1::<T, bool>(&shape, Arg::new(vo.ptr::<bool>(), &vo.layout.strides), pa, |a| a.cast::<f64>().is_infinite()),
            IsFinite => map1::<T, bool>(&shape, Arg::new(vo.ptr::<bool>(), &vo.layout.strides), pa, |a| a.cast::<f64>().is_finite()),
            _ => float_map::<T>(op, &shape, o(po), pa),
        }
    });
}

/// Float functions only instantiate for float element types; others cannot reach here.
fn float_map<T: Element>(op: UnaryOp, shape: &[usize], out: Arg<T>, a: Arg<T>) {
    use std::any::TypeId;
    // The op is matched outside the loop, so each function (parameters bound as constants of
    // the loop) gets a loop of its own that LLVM inlines into the vector code and vectorises.
    // A per-element `match` defeats both, and a loop left uninlined is compiled for baseline
    // x86-64, where the exp/tanh polynomials' fused multiply-adds become libm calls (gelu with
    // tanh took 26 ms for 1M floats that way).
    macro_rules! specialised {
        ($T:ty, $($name:ident),*) => {{
            // SAFETY: T is $T (checked by the caller), so the pointer casts are identities.
            let (o, i) = (Arg::new(out.ptr as *mut $T, out.strides), Arg::new(a.ptr as *mut $T, a.strides));
            match op {
                $(UnaryOp::$name => map1::<$T, $T>(shape, o, i, #[inline(always)] |x| unary_float(UnaryOp::$name, x)),)*
                UnaryOp::LeakyRelu(s) => {
                    let s = <$T>::from_f64(s);
                    map1::<$T, $T>(shape, o, i, #[inline(always)] move |x| leaky_relu(x, s))
                }
                UnaryOp::Elu { alpha, scale, input_scale } => {
                    let (a, s, k) = (<$T>::from_f64(alpha), <$T>::from_f64(scale), <$T>::from_f64(input_scale));
                    map1::<$T, $T>(shape, o, i, #[inline(always)] move |x| elu(x, a, s, k))
                }
                UnaryOp::Softplus { beta, threshold } => {
                    let (b, t) = (<$T>::from_f64(beta), <$T>::from_f64(threshold));
                    map1::<$T, $T>(shape, o, i, #[inline(always)] move |x| softplus(x, b, t))
                }
                UnaryOp::Hardtanh { min, max } => {
                    let (lo, hi) = (<$T>::from_f64(min), <$T>::from_f64(max));
                    map1::<$T, $T>(shape, o, i, #[inline(always)] move |x| hardtanh(x, lo, hi))
                }
                UnaryOp::Threshold { threshold, value } => {
                    let (t, v) = (<$T>::from_f64(threshold), <$T>::from_f64(value));
                    map1::<$T, $T>(shape, o, i, #[inline(always)] move |x| threshold_op(x, t, v))
                }
                UnaryOp::Hardshrink(l) => {
                    let l = <$T>::from_f64(l);
                    map1::<$T, $T>(shape, o, i, #[inline(always)] move |x| hardshrink(x, l))
                }
                UnaryOp::Softshrink(l) => {
                    let l = <$T>::from_f64(l);
                    map1::<$T, $T>(shape, o, i, #[inline(always)] move |x| softshrink(x, l))
                }
                _ => map1::<$T, $T>(shape, o, i, #[inline(always)] |x| unary_float(op, x)),
            }
        }};
    }
    if TypeId::of::<T>() == TypeId::of::<f32>() {
        let lanes = match op {
            UnaryOp::Exp => vmath16::run(Fn16::Exp),
            UnaryOp::Tanh => vmath16::run(Fn16::Tanh),
            UnaryOp::Sigmoid => vmath16::run(Fn16::Sigmoid),
            UnaryOp::Silu => vmath16::run(Fn16::Silu),
            UnaryOp::Gelu => vmath16::run(Fn16::Gelu).or_else(crate::kernels::vmath8::gelu_run),
            UnaryOp::Log => vmath16::run(Fn16::Log),
            UnaryOp::Log2 => vmath16::run(Fn16::Log2),
            UnaryOp::Log10 => vmath16::run(Fn16::Log10),
            _ => None,
        };
        if let Some(run) = lanes {
            // SAFETY: T is f32.
            let (o, i) = (Arg::new(out.ptr as *mut f32, out.strides), Arg::new(a.ptr as *mut f32, a.strides));
            return map1_runs(shape, o, i, run);
        }
        specialised!(f32, Exp, Sigmoid, Tanh, Sqrt, Rsqrt, Reciprocal, Log, Silu, Gelu, GeluTanh, Expm1, Log1p, Log2, Log10, Erf, Erfc, Sin, Cos, Tan, Mish, Hardsigmoid, Hardswish, LogSigmoid, Floor, Ceil, Round, Trunc)
    } else if TypeId::of::<T>() == TypeId::of::<f64>() {
        specialised!(f64, Exp, Sigmoid, Tanh, Sqrt, Rsqrt, Reciprocal, Log, Silu, Gelu, GeluTanh, Expm1, Log1p, Log2, Log10, Erf, Erfc, Sin, Cos, Tan, Mish, Hardsigmoid, Hardswish, LogSigmoid, Floor, Ceil, Round, Trunc)
    }
}

/// `g` where `y > 0`, else 0, in one pass: ReLU's backward from its saved output `y`. With
/// `reuse` (a gradient the backward owns and nothing else holds) the result is written into
/// `g` when it has the result's layout: the lines read are the ones written, and no fresh
/// buffer is filled (LeNet's first ReLU at batch 256: 4.8 MB a step).
pub fn relu_backward(g: &Tensor, y: &Tensor, reuse: bool) -> Result<Tensor> {
    let shape = broadcast_shapes(&g.shape(), &y.shape())?;
    let dt = g.dtype();
    let (vg, vy) = (g.view(), to_dtype(y, dt).view());
    let (lg, ly) = (vg.layout.broadcast_to(&shape)?, vy.layout.broadcast_to(&shape)?);
    let in_place = reuse && vg.layout.is_contiguous() && vg.layout.shape == shape;
    let out = if in_place { g.clone() } else { Tensor::from_view(fresh(&shape, dt, &[Some(&vg.layout), Some(&vy.layout)])?) };
    let ov = out.view();
    dispatch!(dt, T => map2::<T, T, T>(
        &shape,
        Arg::new(ov.ptr::<T>(), &ov.layout.strides),
        Arg::new(vg.ptr::<T>(), &lg.strides),
        Arg::new(vy.ptr::<T>(), &ly.strides),
        |g, y| if y > T::zero() { g } else { T::zero() },
    ));
    Ok(out)
}

/// `where(cond, a, b)`.
pub fn where_(cond: &Tensor, a: Input, b: Input) -> Result<Tensor> {
    if cond.dtype() != DType::Bool && cond.dtype() != DType::U8 {
        return Err(Error::Runtime(format!(
            "where expected condition to be a boolean tensor, but got a tensor with dtype {}",
            cond.dtype()
        )));
    }
    let (a, b) = (Val::of(&a), Val::of(&b));
    let ct = result_type(&[a.operand(), b.operand()], default_float());
    let shape = broadcast_shapes(&broadcast_shapes(&cond.shape(), a.shape())?, b.shape())?;
    let c = to_dtype(cond, DType::Bool).view();
    let (va, vb) = (a.as_view(ct), b.as_view(ct));
    let (lc, la, lb) = (c.layout.broadcast_to(&shape)?, va.layout.broadcast_to(&shape)?, vb.layout.broadcast_to(&shape)?);
    // Laid out after the operands as given, before any dtype conversion.
    let out = Tensor::from_view(fresh(&shape, ct, &[Some(&cond.layout()), a.layout(), b.layout()])?);
    let ov = out.view();
    dispatch!(ct, T => map3::<bool, T, T, T>(
        &shape,
        Arg::new(ov.ptr::<T>(), &ov.layout.strides),
        Arg::new(c.ptr::<bool>(), &lc.strides),
        Arg::new(va.ptr::<T>(), &la.strides),
        Arg::new(vb.ptr::<T>(), &lb.strides),
        |c, x, y| if c { x } else { y },
    ));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(t: &Tensor) -> Vec<f64> {
        to_dtype(t, DType::F64).to_vec::<f64>()
    }

    fn same(got: &[f64], want: &[f64], what: &str) {
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(g.to_bits() == w.to_bits() || g.is_nan() && w.is_nan(), "{what}[{i}]: {g} against {w}");
        }
    }

    /// Tiny results (at most FLAT_MAX elements) take `map2_flat`; each must equal the head of the
    /// same op over operands too long for it (the strided walk), with a tensor or a number as the
    /// second operand, and written in place.
    #[test]
    fn flat_tiny_ops_match_the_walk() {
        use BinaryOp::*;
        let big = 3 * FLAT_MAX;
        let xs: Vec<f32> = (0..big).map(|i| (i as f32 - 20.0) * 0.37).collect();
        let ys: Vec<f32> = (0..big).map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.53).collect();
        let tensor = |v: &[f32]| Tensor::from_vec(v.to_vec(), &[v.len()]).unwrap();
        let (xb, yb) = (tensor(&xs), tensor(&ys));
        let num = Scalar::Float(1.5);
        for op in [Add, Sub, Mul, Div, FloorDiv, Rem, Pow, Maximum, Minimum, Lt, Eq] {
            let want = values(&binary(op, Input::T(&xb), Input::T(&yb)).unwrap());
            let want_num = values(&binary(op, Input::T(&xb), Input::S(num)).unwrap());
            let want_num_first = values(&binary(op, Input::S(num), Input::T(&yb)).unwrap());
            for n in [1, 5, FLAT_MAX] {
                let (x, y) = (tensor(&xs[..n]), tensor(&ys[..n]));
                let what = format!("{op:?} over {n}");
                same(&values(&binary(op, Input::T(&x), Input::T(&y)).unwrap()), &want[..n], &what);
                same(&values(&binary(op, Input::T(&x), Input::S(num)).unwrap()), &want_num[..n], &what);
                same(&values(&binary(op, Input::S(num), Input::T(&y)).unwrap()), &want_num_first[..n], &what);
                if !op.returns_bool() {
                    assert!(binary_into(op, Input::T(&x), Input::T(&y), &x).unwrap(), "{what}: not written in place");
                    same(&values(&x), &want[..n], &format!("{what}, in place"));
                }
            }
        }
    }
}
