//! Every backward rule, once per op: what each recorded node keeps (`Rule`'s fields) and how it
//! turns the gradients of its outputs into gradients for its inputs (`Rule::backward`). Rules
//! are written with the differentiable ops of `functions.rs`, so with `create_graph=True` the
//! backward pass is itself recorded. Summing a gradient back to a broadcast input's shape and
//! casting it to the input's dtype happens once, in the engine (`engine::fit`).

use std::borrow::Cow;
use std::sync::Arc;

use crate::dtype::{DType, Scalar};
use crate::error::Result;
use crate::layout::{Dims, Layout};
use crate::ops::elementwise::{BinaryOp, UnaryOp};
use crate::ops::index::IndexItem;
use crate::ops::Input;
use crate::tensor::Tensor;

use super::functions as f;
use super::nn::{self, ConvSpec, NormSpec, PoolKind};
use crate::ops::conv::Window2d;
use crate::ops::pool::Taps;
use super::functions::num;
use super::node::{Node, Saved};

/// An op operand as its backward sees it.
pub enum Arg {
    Tensor(Saved),
    Number(Scalar),
    /// A tensor operand whose value no gradient needs.
    Unused,
}

enum Val {
    T(Tensor),
    S(Scalar),
}

impl Val {
    fn input(&self) -> Input<'_> {
        match self {
            Val::T(t) => Input::T(t),
            Val::S(s) => Input::S(*s),
        }
    }
}

impl Arg {
    fn get(&self, node: &Arc<Node>) -> Result<Val> {
        match self {
            Arg::Tensor(s) => Ok(Val::T(s.unpack(node)?)),
            Arg::Number(n) => Ok(Val::S(*n)),
            Arg::Unused => Err(crate::error::Error::Runtime("internal: operand not saved for backward".into())),
        }
    }
}

/// The product kernels: `mm`, `bmm`, `dot`, `mv`.
#[derive(Clone, Copy)]
pub enum Lin {
    Mm,
    Bmm,
    Dot,
    Mv,
}

/// A Python `autograd.Function` (implemented by the binding).
pub trait CustomBackward: Send + Sync {
    fn name(&self) -> String;
    fn backward(&self, grads: &[Tensor], needs: &[bool]) -> Result<Vec<Option<Tensor>>>;
}

/// An NLL loss's per-sample class (`[N, 1]`, 0 where ignored) and weight (`[N]`, 0 where
/// ignored), the weights' total, and the reduction: what its backward needs.
pub struct NllPicks {
    pub classes: Tensor,
    pub weights: Tensor,
    pub total: f64,
    pub reduction: f::Reduction,
    /// The samples whose target is `ignore_index` (`[N]`, bool), where any are.
    pub ignored: Option<Tensor>,
}

impl NllPicks {
    /// Each sample's gradient at its class, `-weight·g` (`g` over the weights' total for
    /// 'mean'), as `[N]`; 0 for ignored samples, as PyTorch skips them (with every target
    /// ignored, 'mean' divides by a zero total: the loss is NaN, the gradient zeros).
    fn coefficients(&self, g: &Tensor) -> Result<Tensor> {
        let n = self.weights.numel();
        let per = match self.reduction {
            f::Reduction::None => f::reshape(g, &[n as i64])?,
            f::Reduction::Sum => f::expand_to(&f::reshape(g, &[1])?, &[n])?,
            f::Reduction::Mean => f::expand_to(&f::reshape(&f::mul_n(g, 1.0 / self.total)?, &[1])?, &[n])?,
        };
        let coef = f::neg(&f::mul(&per, &self.weights)?)?;
        match &self.ignored {
            Some(mask) => f::masked_fill(&coef, mask, num(0.0)),
            None => Ok(coef),
        }
    }

    /// The `[N, C]` gradient holding each sample's coefficient at its class, zeros elsewhere.
    fn dense(&self, coef: &Tensor, c: usize) -> Result<Tensor> {
        let n = self.weights.numel();
        let zeros = Tensor::zeros(&[n, c], coef.dtype());
        f::scatter(&zeros, 1, &self.classes, (&f::reshape(coef, &[n as i64, 1])?).into(), false)
    }
}

pub enum Rule {
    Add { alpha: Scalar },
    Sub { alpha: Scalar },
    /// `number - alpha * x`.
    Rsub { alpha: Scalar },
    Mul { a: Arg, b: Arg },
    Div { a: Arg, b: Arg },
    Pow { base: Arg, exp: Arg, out: Option<Saved> },
    MinMax { is_max: bool, a: Arg, b: Arg },
    Remainder { a: Arg, b: Arg },
    /// Piecewise-constant ops (and in-place fills): zero gradient for every input.
    ZeroGrad { name: &'static str },
    Unary { op: UnaryOp, x: Option<Saved>, out: Option<Saved> },
    Clamp { x: Saved, min: Arg, max: Arg, tensors: bool },
    Where { cond: Tensor },
    Linalg { kind: Lin, a: Option<Saved>, b: Option<Saved> },
    Addmm { m1: Option<Saved>, m2: Option<Saved>, beta: Scalar, alpha: Scalar },
    Sum { shape: Dims, mask: Vec<bool>, keepdim: bool, full: bool, mean: bool },
    VarStd { x: Saved, out: Option<Saved>, mask: Vec<bool>, keepdim: bool, correction: f64 },
    Prod { x: Saved, out: Saved, dim: Option<usize>, keepdim: bool },
    Extreme { x: Saved, out: Saved, mask: Vec<bool>, keepdim: bool, name: &'static str },
    ExtremeDim { shape: Dims, dim: usize, keepdim: bool, indices: Tensor, is_max: bool },
    Logsumexp { x: Saved, out: Saved, mask: Vec<bool>, keepdim: bool },
    Softmax { out: Saved, dim: usize, log: bool },
    Norm { x: Saved, out: Saved, p: f64, mask: Vec<bool>, keepdim: bool },
    Cumsum { dim: usize },
    Reshape { shape: Dims, name: &'static str },
    Transpose { d0: i64, d1: i64, name: &'static str },
    Permute { inverse: Vec<i64> },
    Expand { shape: Dims },
    /// A select/slice view: the gradient goes back at the view's positions (`layout`, relative
    /// to a contiguous tensor of `shape`).
    Embed { shape: Dims, layout: Layout, name: &'static str },
    Restrict { layout: Layout },
    CopySlices { layout: Layout },
    Split { dim: usize, sizes: Vec<usize>, name: &'static str },
    Unbind { dim: usize },
    Cat { dim: usize, sizes: Vec<Option<usize>> },
    Stack { dim: usize },
    Flip { dims: Vec<i64> },
    Roll { shifts: Vec<i64>, dims: Vec<i64> },
    Pad { pads: Vec<i64> },
    Index { shape: Dims, items: Vec<IndexItem>, name: &'static str },
    IndexPut { items: Vec<IndexItem>, accumulate: bool, name: &'static str },
    Gather { shape: Dims, dim: usize, index: Tensor },
    Scatter { dim: usize, index: Tensor, add: bool, value: bool },
    MaskedFill { mask: Tensor, value_tensor: bool },
    MseLoss { input: Saved, target: Saved, reduction: f::Reduction },
    NllLoss { picks: NllPicks, shape: Dims },
    /// `nll_loss(log_softmax(x))` (`F.cross_entropy` with class indices): the log-probabilities
    /// as `[N, C]`, recorded from x off the loss's graph (for a create_graph backward).
    CrossEntropy { picks: NllPicks, shape: Dims, logp: Tensor },
    /// `unfold` of an input with spatial `size`, and its adjoint `fold`.
    Unfold { size: [usize; 2], win: Window2d, grid: [usize; 2] },
    Fold { win: Window2d, grid: [usize; 2] },
    Conv { x: Saved, w: Saved, spec: ConvSpec, batched: bool },
    MaxPool { indices: Tensor, shape: Dims, kind: PoolKind },
    /// An average pool (or, `adjoint`, its transpose) whose input had spatial `size`.
    AvgPool { rows: Vec<Taps>, cols: Vec<Taps>, over: Option<i64>, kind: PoolKind, size: [usize; 2], adjoint: bool },
    Normalize { x: Saved, w: Option<Saved>, spec: NormSpec, fixed: Option<(Tensor, Tensor)> },
    Identity { name: &'static str },
    Copy,
    Custom(Arc<dyn CustomBackward>),
}

fn unary_name(op: UnaryOp) -> &'static str {
    use UnaryOp::*;
    match op {
        Neg => "NegBackward0",
        Abs => "AbsBackward0",
        Sign => "SignBackward0",
        Relu => "ReluBackward0",
        Square => "PowBackward0",
        Exp => "ExpBackward0",
        Log => "LogBackward0",
        Log2 => "Log2Backward0",
        Log10 => "Log10Backward0",
        Log1p => "Log1PBackward0",
        Expm1 => "Expm1Backward0",
        Sqrt => "SqrtBackward0",
        Rsqrt => "RsqrtBackward0",
        Sin => "SinBackward0",
        Cos => "CosBackward0",
        Tan => "TanBackward0",
        Tanh => "TanhBackward0",
        Sigmoid => "SigmoidBackward0",
        Reciprocal => "ReciprocalBackward0",
        Erf => "ErfBackward0",
        Erfc => "ErfcBackward0",
        LeakyRelu(_) => "LeakyReluBackward0",
        Elu { .. } => "EluBackward0",
        Gelu | GeluTanh => "GeluBackward0",
        Silu => "SiluBackward0",
        Softplus { .. } => "SoftplusBackward0",
        Mish => "MishBackward0",
        Hardtanh { .. } => "HardtanhBackward0",
        Hardsigmoid => "HardsigmoidBackward0",
        Hardswish => "HardswishBackward0",
        LogSigmoid => "LogSigmoidBackward0",
        Threshold { .. } => "ThresholdBackward0",
        Hardshrink(_) => "HardshrinkBackward0",
        Softshrink(_) => "SoftshrinkBackward0",
        Floor => "FloorBackward0",
        Ceil => "CeilBackward0",
        Round => "RoundBackward0",
        Trunc => "TruncBackward0",
        BitNot | LogicalNot | IsNan | IsInf | IsFinite => "NotDifferentiable",
    }
}

impl Rule {
    pub fn name(&self) -> Cow<'static, str> {
        use Rule::*;
        Cow::Borrowed(match self {
            Add { .. } => "AddBackward0",
            Sub { .. } => "SubBackward0",
            Rsub { .. } => "RsubBackward1",
            Mul { .. } => "MulBackward0",
            Div { .. } => "DivBackward0",
            Pow { base: Arg::Number(_), .. } => "PowBackward2",
            Pow { exp: Arg::Number(_), .. } => "PowBackward0",
            Pow { .. } => "PowBackward1",
            MinMax { is_max: true, .. } => "MaximumBackward0",
            MinMax { .. } => "MinimumBackward0",
            Remainder { b: Arg::Number(_), .. } => "RemainderBackward0",
            Remainder { .. } => "RemainderBackward1",
            ZeroGrad { name } | Reshape { name, .. } | Transpose { name, .. } | Embed { name, .. } | Split { name, .. } => name,
            Index { name, .. } | IndexPut { name, .. } | Identity { name } | Extreme { name, .. } => name,
            Unary { op, .. } => unary_name(*op),
            Clamp { tensors: true, .. } => "ClampBackward0",
            Clamp { .. } => "ClampBackward1",
            Where { .. } => "WhereBackward0",
            Linalg { kind: Lin::Mm, .. } => "MmBackward0",
            Linalg { kind: Lin::Bmm, .. } => "BmmBackward0",
            Linalg { kind: Lin::Dot, .. } => "DotBackward0",
            Linalg { kind: Lin::Mv, .. } => "MvBackward0",
            Addmm { .. } => "AddmmBackward0",
            Sum { full: true, mean: false, .. } => "SumBackward0",
            Sum { mean: false, .. } => "SumBackward1",
            Sum { full: true, .. } => "MeanBackward0",
            Sum { .. } => "MeanBackward1",
            VarStd { out: Some(_), .. } => "StdBackward0",
            VarStd { .. } => "VarBackward0",
            Prod { dim: None, .. } => "ProdBackward0",
            Prod { .. } => "ProdBackward1",
            ExtremeDim { is_max: true, .. } => "MaxBackward0",
            ExtremeDim { .. } => "MinBackward0",
            Logsumexp { .. } => "LogsumexpBackward0",
            Softmax { log: false, .. } => "SoftmaxBackward0",
            Softmax { .. } => "LogSoftmaxBackward0",
            Norm { .. } => "LinalgVectorNormBackward0",
            Cumsum { .. } => "CumsumBackward0",
            Permute { .. } => "PermuteBackward0",
            Expand { .. } => "ExpandBackward0",
            Restrict { .. } => "AsStridedScatterBackward0",
            CopySlices { .. } => "CopySlices",
            Unbind { .. } => "UnbindBackward0",
            Cat { .. } => "CatBackward0",
            Stack { .. } => "StackBackward0",
            Flip { .. } => "FlipBackward0",
            Roll { .. } => "RollBackward0",
            Pad { .. } => "ConstantPadNdBackward0",
            Gather { .. } => "GatherBackward0",
            Scatter { add: true, .. } => "ScatterAddBackward0",
            Scatter { value: true, .. } => "ScatterBackward1",
            Scatter { .. } => "ScatterBackward0",
            MaskedFill { value_tensor: true, .. } => "MaskedFillBackward1",
            MaskedFill { .. } => "MaskedFillBackward0",
            Copy => "CopyBackwards",
            MseLoss { .. } => "MseLossBackward0",
            // PyTorch's cross_entropy is NLL over log_softmax: its loss's grad_fn is the NLL's.
            NllLoss { .. } | CrossEntropy { .. } => "NllLossBackward0",
            Unfold { .. } => "Im2ColBackward0",
            Fold { .. } => "Col2ImBackward0",
            Conv { .. } => "ConvolutionBackward0",
            MaxPool { kind: PoolKind::AdaptiveMax, .. } => "AdaptiveMaxPool2DBackward0",
            MaxPool { .. } => "MaxPool2DWithIndicesBackward0",
            AvgPool { kind: PoolKind::AdaptiveAvg, adjoint: false, .. } => "AdaptiveAvgPool2DBackward0",
            AvgPool { kind: PoolKind::AdaptiveAvg, .. } => "AdaptiveAvgPool2DBackwardBackward0",
            AvgPool { adjoint: false, .. } => "AvgPool2DBackward0",
            AvgPool { .. } => "AvgPool2DBackwardBackward0",
            Normalize { spec, .. } => spec.name,
            Custom(c) => return Cow::Owned(c.name()),
        })
    }

    /// Whether the node holds saved tensors (so a second backward without retain_graph fails).
    pub fn saves_tensors(&self) -> bool {
        use Rule::*;
        // Numbers count: PyTorch wraps them into saved 0-dim tensors.
        let arg = |a: &Arg| !matches!(a, Arg::Unused);
        match self {
            Mul { a, b } | Div { a, b } | MinMax { a, b, .. } | Remainder { a, b } => arg(a) || arg(b),
            Pow { .. } | Clamp { .. } | VarStd { .. } | Prod { .. } | Extreme { .. } | Logsumexp { .. } => true,
            Softmax { .. } | Norm { .. } | Custom(_) | MseLoss { .. } | CrossEntropy { .. } => true,
            Conv { .. } | Normalize { .. } | MaxPool { .. } => true,
            Unary { x, out, .. } => x.is_some() || out.is_some(),
            Linalg { a, b, .. } => a.is_some() || b.is_some(),
            Addmm { m1, m2, .. } => m1.is_some() || m2.is_some(),
            _ => false,
        }
    }

    /// Gradients for each input slot from the gradients of each output.
    pub fn backward(&self, node: &Arc<Node>, grads: &[Tensor], needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        use Rule::*;
        let g = &grads[0];
        let need = |i: usize| needs.get(i).copied().unwrap_or(false);
        // Computes the gradient for slot i only if some input upstream wants it.
        macro_rules! slot {
            ($i:expr, $e:expr) => {
                if need($i) { Some($e) } else { None }
            };
        }
        Ok(match self {
            Add { alpha } => vec![slot!(0, g.clone()), slot!(1, scaled(g, *alpha)?)],
            Sub { alpha } => vec![slot!(0, g.clone()), slot!(1, f::neg(&scaled(g, *alpha)?)?)],
            Rsub { alpha } => vec![slot!(0, f::neg(&scaled(g, *alpha)?)?)],
            Mul { a, b } => vec![
                slot!(0, f::binary(BinaryOp::Mul, g.into(), b.get(node)?.input())?),
                slot!(1, f::binary(BinaryOp::Mul, g.into(), a.get(node)?.input())?),
            ],
            Div { a, b } => {
                let bv = b.get(node)?;
                let ga = slot!(0, f::binary(BinaryOp::Div, g.into(), bv.input())?);
                let gb = if need(1) {
                    let ga_num = f::binary(BinaryOp::Mul, g.into(), a.get(node)?.input())?;
                    let bt = match &bv {
                        Val::T(t) => t.clone(),
                        Val::S(_) => unreachable_number()?,
                    };
                    Some(f::neg(&f::div(&ga_num, &f::mul(&bt, &bt)?)?)?)
                } else {
                    None
                };
                vec![ga, gb]
            }
            Pow { base, exp, out } => pow_backward(node, g, base, exp, out, &need)?,
            MinMax { is_max, a, b } => {
                let (av, bv) = (a.get(node)?, b.get(node)?);
                let eq = f::cmp(BinaryOp::Eq, av.input(), bv.input())?;
                let half = f::mul_n(g, 0.5)?;
                let pick = |wins: BinaryOp| -> Result<Tensor> {
                    let w = f::cmp(wins, av.input(), bv.input())?;
                    let sel = f::where_(&w, g.into(), num(0.0))?;
                    f::where_(&eq, (&half).into(), (&sel).into())
                };
                let (ga_op, gb_op) = if *is_max { (BinaryOp::Gt, BinaryOp::Lt) } else { (BinaryOp::Lt, BinaryOp::Gt) };
                let mut out = vec![slot!(0, pick(ga_op)?)];
                if matches!(b, Arg::Tensor(_)) || need(1) {
                    out.push(slot!(1, pick(gb_op)?));
                } else {
                    out.push(None);
                }
                out
            }
            Remainder { a, b } => {
                let gb = if need(1) {
                    let q = crate::ops::elementwise::binary(BinaryOp::FloorDiv, a.get(node)?.input(), b.get(node)?.input())?;
                    Some(f::neg(&f::mul(g, &q)?)?)
                } else {
                    None
                };
                vec![slot!(0, g.clone()), gb]
            }
            ZeroGrad { .. } => (0..node.next.len())
                .map(|i| need(i).then(|| Tensor::zeros(&node.inputs[i].shape, node.inputs[i].dtype)))
                .collect(),
            Unary { op, x, out } => {
                let x = x.as_ref().map(|s| s.unpack(node)).transpose()?;
                let out = out.as_ref().map(|s| s.unpack(node)).transpose()?;
                vec![slot!(0, unary_backward(*op, g, x.as_ref(), out.as_ref())?)]
            }
            Clamp { x, min, max, tensors } => {
                let x = x.unpack(node)?;
                let (lo, hi) = (bound(min, node)?, bound(max, node)?);
                let mut ok: Option<Tensor> = None;
                for (b, op) in [(&lo, BinaryOp::Ge), (&hi, BinaryOp::Le)] {
                    if let Some(v) = b {
                        let m = f::cmp(op, (&x).into(), v.input())?;
                        ok = Some(match ok {
                            None => m,
                            Some(p) => f::cmp(BinaryOp::LogicalAnd, (&p).into(), (&m).into())?,
                        });
                    }
                }
                let gx = match &ok {
                    Some(m) => f::where_(m, g.into(), num(0.0))?,
                    None => g.clone(),
                };
                let mut out = vec![slot!(0, gx)];
                if *tensors {
                    let side = |b: &Option<Val>, op: BinaryOp| -> Result<Option<Tensor>> {
                        match b {
                            Some(v @ Val::T(_)) => {
                                let m = f::cmp(op, (&x).into(), v.input())?;
                                Ok(Some(f::where_(&m, g.into(), num(0.0))?))
                            }
                            _ => Ok(None),
                        }
                    };
                    out.push(if need(1) { side(&lo, BinaryOp::Lt)? } else { None });
                    out.push(if need(2) { side(&hi, BinaryOp::Gt)? } else { None });
                }
                out
            }
            Where { cond } => vec![
                slot!(0, f::where_(cond, g.into(), num(0.0))?),
                slot!(1, f::where_(cond, num(0.0), g.into())?),
            ],
            Linalg { kind, a, b } => {
                let a = a.as_ref().map(|s| s.unpack(node)).transpose()?;
                let b = b.as_ref().map(|s| s.unpack(node)).transpose()?;
                let (a, b) = (a.as_ref(), b.as_ref());
                match kind {
                    Lin::Mm => vec![
                        slot!(0, f::mm(g, &f::t2d(saved(b)?)?)?),
                        slot!(1, f::mm(&f::t2d(saved(a)?)?, g)?),
                    ],
                    Lin::Bmm => vec![
                        slot!(0, f::bmm(g, &f::transpose(saved(b)?, 1, 2)?)?),
                        slot!(1, f::bmm(&f::transpose(saved(a)?, 1, 2)?, g)?),
                    ],
                    Lin::Dot => vec![slot!(0, f::mul(g, saved(b)?)?), slot!(1, f::mul(g, saved(a)?)?)],
                    Lin::Mv => vec![
                        slot!(0, f::mul(&f::reshape(g, &[-1, 1])?, saved(b)?)?),
                        slot!(1, f::mv(&f::t2d(saved(a)?)?, g)?),
                    ],
                }
            }
            Addmm { m1, m2, beta, alpha } => {
                let m1 = m1.as_ref().map(|s| s.unpack(node)).transpose()?;
                let m2 = m2.as_ref().map(|s| s.unpack(node)).transpose()?;
                vec![
                    slot!(0, scaled(g, *beta)?),
                    slot!(1, scaled(&f::mm(g, &f::t2d(saved(m2.as_ref())?)?)?, *alpha)?),
                    slot!(2, scaled(&f::mm(&f::t2d(saved(m1.as_ref())?)?, g)?, *alpha)?),
                ]
            }
            Sum { shape, mask, keepdim, mean, .. } => {
                let gx = f::expand_to(&restore(g, shape, mask, *keepdim)?, shape)?;
                let gx = if *mean { f::mul_n(&gx, 1.0 / f::reduced_count(shape, mask) as f64)? } else { gx };
                vec![Some(gx)]
            }
            VarStd { x, out, mask, keepdim, correction } => {
                let x = x.unpack(node)?;
                let shape = x.shape();
                let dims = mask_dims(mask);
                let m = f::mean(&x, Some(&dims), true, None)?;
                let centered = f::sub(&x, &m)?;
                let denom = (f::reduced_count(&shape, mask) as f64 - correction).max(0.0);
                let gk = restore(g, &shape, mask, *keepdim)?;
                let gx = match out {
                    None => f::mul(&gk, &f::mul_n(&centered, 2.0 / denom)?)?,
                    Some(o) => {
                        let ok = restore(&o.unpack(node)?, &shape, mask, *keepdim)?;
                        f::div(&f::mul(&gk, &centered)?, &f::mul_n(&ok, denom)?)?
                    }
                };
                vec![Some(gx)]
            }
            Prod { x, out, dim, keepdim } => {
                let x = x.unpack(node)?;
                let out = out.unpack(node)?;
                vec![Some(prod_backward(g, &x, &out, *dim, *keepdim)?)]
            }
            Extreme { x, out, mask, keepdim, .. } => {
                let x = x.unpack(node)?;
                let shape = x.shape();
                let ok = restore(&out.unpack(node)?, &shape, mask, *keepdim)?;
                let hit = crate::ops::cast::to_dtype(&f::cmp(BinaryOp::Eq, (&x).into(), (&ok).into())?, g.dtype());
                let count = crate::ops::reduce::sum(&hit, Some(&mask_dims(mask)), true, None)?;
                let share = crate::ops::elementwise::binary(BinaryOp::Div, (&hit).into(), (&count).into())?;
                vec![Some(f::mul(&restore(g, &shape, mask, *keepdim)?, &share)?)]
            }
            ExtremeDim { shape, dim, keepdim, indices, .. } => {
                let (gk, ik) = if *keepdim || shape.is_empty() {
                    (g.clone(), indices.clone())
                } else {
                    (f::unsqueeze(g, *dim as i64)?, crate::ops::shape::unsqueeze(indices, *dim as i64)?)
                };
                let zeros = Tensor::zeros(shape, g.dtype());
                vec![Some(f::scatter(&zeros, *dim as i64, &ik, (&gk).into(), false)?)]
            }
            Logsumexp { x, out, mask, keepdim } => {
                let x = x.unpack(node)?;
                let shape = x.shape();
                let ok = restore(&out.unpack(node)?, &shape, mask, *keepdim)?;
                let w = f::unary(UnaryOp::Exp, &f::sub(&x, &ok)?)?;
                vec![Some(f::mul(&restore(g, &shape, mask, *keepdim)?, &w)?)]
            }
            Softmax { out, dim, log } => {
                let y = out.unpack(node)?;
                let d = [*dim as i64];
                let fused = || {
                    let plain = y.ndim() > 0 && !super::record::needs_grad(&[Some(g), Some(&y)]);
                    plain.then(|| crate::ops::softmax::softmax_backward_rows(g, &y, *dim, *log)).flatten()
                };
                let gx = if y.ndim() == 0 {
                    if *log { g.clone() } else { f::mul_n(g, 0.0)? }
                } else if let Some(gx) = fused() {
                    gx
                } else if *log {
                    let s = f::sum(g, Some(&d), true, None)?;
                    f::sub(g, &f::mul(&f::unary(UnaryOp::Exp, &y)?, &s)?)?
                } else {
                    let s = f::sum(&f::mul(g, &y)?, Some(&d), true, None)?;
                    f::mul(&y, &f::sub(g, &s)?)?
                };
                vec![Some(gx)]
            }
            Norm { x, out, p, mask, keepdim } => {
                let x = x.unpack(node)?;
                let out = out.unpack(node)?;
                vec![Some(norm_backward(g, &x, &out, *p, mask, *keepdim)?)]
            }
            Cumsum { dim } => {
                let d = [*dim as i64];
                if g.ndim() == 0 {
                    vec![Some(g.clone())]
                } else {
                    vec![Some(f::flip(&f::cumsum(&f::flip(g, &d)?, *dim as i64, None)?, &d)?)]
                }
            }
            Reshape { shape, .. } => vec![Some(f::reshape(g, &as_i64(shape))?)],
            Transpose { d0, d1, .. } => vec![Some(f::transpose(g, *d0, *d1)?)],
            Permute { inverse } => vec![Some(f::permute(g, inverse)?)],
            Expand { shape } => vec![Some(f::sum_to(g, shape)?)],
            Embed { shape, layout, .. } => vec![Some(f::embed(g, shape, layout)?)],
            Restrict { layout } => vec![Some(f::restrict(g, layout)?)],
            CopySlices { layout } => {
                let region = f::restrict(g, layout)?;
                let gb = if need(0) { Some(f::sub(g, &f::embed(&region, &g.shape(), layout)?)?) } else { None };
                vec![gb, slot!(1, region)]
            }
            Split { dim, .. } => vec![Some(f::cat(grads, *dim as i64)?)],
            Unbind { dim } => vec![Some(f::stack(grads, *dim as i64)?)],
            Cat { dim, sizes } => {
                let mut at = 0i64;
                let mut out = Vec::with_capacity(sizes.len());
                for (i, s) in sizes.iter().enumerate() {
                    out.push(match s {
                        Some(len) => {
                            let piece = slot!(i, f::narrow(g, *dim as i64, at, *len as i64)?);
                            at += *len as i64;
                            piece
                        }
                        None => need(i).then(|| Tensor::zeros(&node.inputs[i].shape, node.inputs[i].dtype)),
                    });
                }
                out
            }
            Stack { dim } => f::unbind(g, *dim as i64)?.into_iter().enumerate().map(|(i, t)| need(i).then_some(t)).collect(),
            Flip { dims } => vec![Some(f::flip(g, dims)?)],
            Roll { shifts, dims } => {
                let back: Vec<i64> = shifts.iter().map(|s| -s).collect();
                vec![Some(f::roll(g, &back, dims)?)]
            }
            Pad { pads } => {
                let back: Vec<i64> = pads.iter().map(|p| -p).collect();
                vec![Some(f::pad(g, &back, Scalar::Float(0.0))?)]
            }
            Index { shape, items, .. } => {
                let zeros = Tensor::zeros(shape, g.dtype());
                vec![Some(f::index_put(&zeros, items, g, true)?)]
            }
            IndexPut { items, accumulate, .. } => {
                let gx = if *accumulate {
                    g.clone()
                } else {
                    f::index_put(g, items, &Tensor::scalar(Scalar::Float(0.0), g.dtype()), false)?
                };
                vec![slot!(0, gx), slot!(1, f::index(g, items)?)]
            }
            Gather { shape, dim, index } => {
                let zeros = Tensor::zeros(shape, g.dtype());
                vec![Some(f::scatter(&zeros, *dim as i64, index, g.into(), true)?)]
            }
            Scatter { dim, index, add, value } => {
                let gx = if *add { g.clone() } else { f::scatter(g, *dim as i64, index, Input::S(Scalar::Float(0.0)), false)? };
                let mut out = vec![slot!(0, gx)];
                if !*value {
                    out.push(slot!(1, f::gather(g, *dim as i64, index)?));
                }
                out
            }
            MaskedFill { mask, value_tensor } => {
                let mut out = vec![slot!(0, f::where_(mask, num(0.0), g.into())?)];
                if *value_tensor {
                    out.push(slot!(1, f::sum(&f::where_(mask, g.into(), num(0.0))?, None, false, None)?));
                }
                out
            }
            MseLoss { input, target, reduction } => {
                let d = f::sub(&input.unpack(node)?, &target.unpack(node)?)?;
                let scale = match reduction {
                    f::Reduction::Mean => 2.0 / d.numel().max(1) as f64,
                    _ => 2.0,
                };
                let gi = f::mul(&f::mul_n(&d, scale)?, g)?;
                let gt = if need(1) { Some(f::neg(&gi)?) } else { None };
                vec![slot!(0, gi), gt]
            }
            NllLoss { picks, shape } => {
                let gi = picks.dense(&picks.coefficients(g)?, *shape.last().unwrap_or(&1))?;
                vec![Some(f::reshape(&gi, &as_i64(shape))?)]
            }
            CrossEntropy { picks, shape, logp } => {
                let coef = picks.coefficients(g)?;
                let plain = !super::record::needs_grad(&[Some(g), Some(logp)]);
                let fused = || plain.then(|| crate::ops::softmax::cross_entropy_backward_rows(logp, &picks.classes, &coef)).flatten();
                let gx = match fused() {
                    Some(gx) => gx,
                    None => {
                        // Log-softmax's backward of the NLL's one-hot gradient, recorded under
                        // create_graph (through logp's node into x).
                        let gl = picks.dense(&coef, logp.shape()[1])?;
                        let s = f::sum(&gl, Some(&[1]), true, None)?;
                        f::sub(&gl, &f::mul(&f::unary(UnaryOp::Exp, logp)?, &s)?)?
                    }
                };
                vec![Some(f::reshape(&gx, &as_i64(shape))?)]
            }
            // Unbatched (2-D columns / 3-D image) gradients gain and lose a batch of one.
            Unfold { size, win, grid } => {
                let g3 = if g.ndim() == 2 { f::unsqueeze(g, 0)? } else { g.clone() };
                shaped_like_inputs(node, [Some(nn::fold_grid(&g3, *size, win, *grid)?)])?
            }
            Fold { win, grid } => {
                let g4 = if g.ndim() == 3 { f::unsqueeze(g, 0)? } else { g.clone() };
                shaped_like_inputs(node, [Some(nn::unfold_grid(&g4, win, *grid)?)])?
            }
            Conv { x, w, spec, batched } => {
                let (x, w) = (x.unpack(node)?, w.unpack(node)?);
                let x4 = nn::as4(&x, spec.spatial, *batched)?;
                let w4 = nn::as4(&w, spec.spatial, true)?;
                let g4 = nn::as4(g, spec.spatial, *batched)?;
                let grads = nn::conv_backward(&x4, &w4, &g4, spec, [need(0), need(1), need(2)])?;
                shaped_like_inputs(node, grads)?
            }
            MaxPool { indices, shape, .. } => vec![Some(nn::max_pool_backward(g, indices, shape)?)],
            AvgPool { rows, cols, over, kind, size, adjoint } => {
                let back = if *adjoint { None } else { Some(*size) };
                vec![Some(nn::avg_pool(g, rows, cols, *over, *kind, back)?)]
            }
            Normalize { x, w, spec, fixed } => {
                let x = x.unpack(node)?;
                let w = w.as_ref().map(|w| w.unpack(node)).transpose()?;
                let grads = nn::normalize_backward(&x, w.as_ref(), g, spec, fixed.as_ref(), [need(0), need(1), need(2)])?;
                shaped_like_inputs(node, grads)?
            }
            Identity { .. } => vec![Some(g.clone())],
            Copy => vec![
                need(0).then(|| Tensor::zeros(&node.inputs[0].shape, node.inputs[0].dtype)),
                slot!(1, g.clone()),
            ],
            Custom(c) => c.backward(grads, needs)?,
        })
    }
}

/// Gradients computed on reshaped operands, returned in the shapes of the node's inputs.
fn shaped_like_inputs<const N: usize>(node: &Arc<Node>, grads: [Option<Tensor>; N]) -> Result<Vec<Option<Tensor>>> {
    grads
        .into_iter()
        .enumerate()
        .map(|(i, g)| g.map(|g| f::reshape(&g, &as_i64(&node.inputs[i].shape))).transpose())
        .collect()
}

fn unreachable_number<T>() -> Result<T> {
    Err(crate::error::Error::Runtime("internal: number operand has no gradient".into()))
}

fn saved(t: Option<&Tensor>) -> Result<&Tensor> {
    t.ok_or_else(|| crate::error::Error::Runtime("internal: operand not saved for backward".into()))
}

fn bound(a: &Arg, node: &Arc<Node>) -> Result<Option<Val>> {
    match a {
        Arg::Unused => Ok(None),
        a => a.get(node).map(Some),
    }
}

fn scaled(g: &Tensor, s: Scalar) -> Result<Tensor> {
    if s.as_f64() == 1.0 {
        return Ok(g.clone());
    }
    f::binary(BinaryOp::Mul, g.into(), Input::S(s))
}

fn as_i64(shape: &[usize]) -> Vec<i64> {
    shape.iter().map(|&d| d as i64).collect()
}

fn mask_dims(mask: &[bool]) -> Vec<i64> {
    mask.iter().enumerate().filter(|(_, &m)| m).map(|(d, _)| d as i64).collect()
}

/// A reduction's output (or gradient) with its reduced dims restored as size 1.
fn restore(t: &Tensor, shape: &[usize], mask: &[bool], keepdim: bool) -> Result<Tensor> {
    if keepdim || shape.is_empty() {
        return Ok(t.clone());
    }
    let kept: Vec<i64> = shape.iter().zip(mask).map(|(&d, &m)| if m { 1 } else { d as i64 }).collect();
    f::reshape(t, &kept)
}

fn pow_backward(node: &Arc<Node>, g: &Tensor, base: &Arg, exp: &Arg, out: &Option<Saved>, need: &dyn Fn(usize) -> bool) -> Result<Vec<Option<Tensor>>> {
    let b = base.get(node)?;
    let e = exp.get(node)?;
    let grad_base = |x: &Tensor| -> Result<Tensor> {
        match &e {
            Val::S(p) if p.as_f64() == 0.0 => Ok(f::mul_n(g, 0.0)?),
            Val::S(p) => {
                let p = p.as_f64();
                f::mul(g, &f::mul_n(&f::pow_n(x, p - 1.0)?, p)?)
            }
            Val::T(y) => {
                let ym1 = f::add_n(y, -1.0)?;
                f::mul(g, &f::mul(y, &f::binary(BinaryOp::Pow, x.into(), (&ym1).into())?)?)
            }
        }
    };
    let grad_exp = |y: &Tensor| -> Result<Tensor> {
        let o = out.as_ref().ok_or_else(|| crate::error::Error::Runtime("internal: pow output not saved".into()))?.unpack(node)?;
        let (log_base, zero_base) = match &b {
            Val::T(x) => (f::unary(UnaryOp::Log, x)?, f::cmp(BinaryOp::Eq, x.into(), num(0.0))?),
            Val::S(s) => {
                let v = s.as_f64();
                (Tensor::scalar(Scalar::Float(v.ln()), g.dtype()), Tensor::scalar(Scalar::Bool(v == 0.0), DType::Bool))
            }
        };
        // 0 ** y has zero derivative in y for y >= 0 (not 0 * log 0 = nan).
        let nonneg = f::cmp(BinaryOp::Ge, y.into(), num(0.0))?;
        let mask = f::cmp(BinaryOp::LogicalAnd, (&zero_base).into(), (&nonneg).into())?;
        let d = f::mul(g, &f::mul(&o, &log_base)?)?;
        f::where_(&mask, num(0.0), (&d).into())
    };
    Ok(match (&b, &e) {
        (Val::T(x), Val::S(_)) => vec![if need(0) { Some(grad_base(x)?) } else { None }],
        (Val::S(_), Val::T(y)) => vec![if need(0) { Some(grad_exp(y)?) } else { None }],
        (Val::T(x), Val::T(y)) => vec![
            if need(0) { Some(grad_base(x)?) } else { None },
            if need(1) { Some(grad_exp(y)?) } else { None },
        ],
        (Val::S(_), Val::S(_)) => vec![],
    })
}

fn unary_backward(op: UnaryOp, g: &Tensor, x: Option<&Tensor>, out: Option<&Tensor>) -> Result<Tensor> {
    use UnaryOp::*;
    let x = || saved(x);
    let y = || saved(out);
    let un = |op: UnaryOp, t: &Tensor| f::unary(op, t);
    Ok(match op {
        Neg => f::neg(g)?,
        Abs => f::mul(g, &un(Sign, x()?)?)?,
        Sign | Floor | Ceil | Round | Trunc => f::mul_n(g, 0.0)?,
        // `g` is this backward's own when no other handle to it or its storage exists.
        Relu if !super::record::needs_grad(&[Some(g), out]) => crate::ops::elementwise::relu_backward(g, y()?, g.is_exclusive())?,
        Relu => {
            let pos = f::cmp(BinaryOp::Gt, y()?.into(), num(0.0))?;
            f::where_(&pos, g.into(), num(0.0))?
        }
        Square => f::mul(g, &f::mul_n(x()?, 2.0)?)?,
        Exp => f::mul(g, y()?)?,
        Log => f::div(g, x()?)?,
        Log2 => f::div(g, &f::mul_n(x()?, std::f64::consts::LN_2)?)?,
        Log10 => f::div(g, &f::mul_n(x()?, std::f64::consts::LN_10)?)?,
        Log1p => f::div(g, &f::add_n(x()?, 1.0)?)?,
        Expm1 => f::mul(g, &f::add_n(y()?, 1.0)?)?,
        Sqrt => f::div(g, &f::mul_n(y()?, 2.0)?)?,
        Rsqrt => f::mul(g, &f::mul_n(&f::pow_n(y()?, 3.0)?, -0.5)?)?,
        Sin => f::mul(g, &un(Cos, x()?)?)?,
        Cos => f::neg(&f::mul(g, &un(Sin, x()?)?)?)?,
        Tan => f::mul(g, &f::add_n(&f::mul(y()?, y()?)?, 1.0)?)?,
        Tanh => f::mul(g, &f::binary(BinaryOp::Sub, num(1.0), (&f::mul(y()?, y()?)?).into())?)?,
        Sigmoid => f::mul(g, &f::mul(y()?, &f::binary(BinaryOp::Sub, num(1.0), y()?.into())?)?)?,
        Reciprocal => f::neg(&f::mul(g, &f::mul(y()?, y()?)?)?)?,
        Erf => {
            let e = un(Exp, &f::neg(&f::mul(x()?, x()?)?)?)?;
            f::mul(g, &f::mul_n(&e, 2.0 / std::f64::consts::PI.sqrt())?)?
        }
        Erfc => {
            let e = un(Exp, &f::neg(&f::mul(x()?, x()?)?)?)?;
            f::mul(g, &f::mul_n(&e, -2.0 / std::f64::consts::PI.sqrt())?)?
        }
        LeakyRelu(s) => {
            let pos = f::cmp(BinaryOp::Gt, x()?.into(), num(0.0))?;
            f::where_(&pos, g.into(), (&f::mul_n(g, s)?).into())?
        }
        Elu { alpha, scale, input_scale } => {
            let pos = f::cmp(BinaryOp::Gt, y()?.into(), num(0.0))?;
            let neg = f::mul(g, &f::mul_n(&f::add_n(y()?, alpha * scale)?, input_scale)?)?;
            f::where_(&pos, (&f::mul_n(g, scale)?).into(), (&neg).into())?
        }
        Gelu => {
            let x = x()?;
            let cdf = f::mul_n(&f::add_n(&un(Erf, &f::mul_n(x, std::f64::consts::FRAC_1_SQRT_2)?)?, 1.0)?, 0.5)?;
            let pdf = f::mul_n(&un(Exp, &f::mul_n(&f::mul(x, x)?, -0.5)?)?, 1.0 / (2.0 * std::f64::consts::PI).sqrt())?;
            f::mul(g, &f::add(&cdf, &f::mul(x, &pdf)?)?)?
        }
        GeluTanh => {
            let x = x()?;
            let k = (2.0 / std::f64::consts::PI).sqrt();
            let x2 = f::mul(x, x)?;
            let inner = f::mul_n(&f::mul(x, &f::add_n(&f::mul_n(&x2, 0.044715)?, 1.0)?)?, k)?;
            let t = un(Tanh, &inner)?;
            let left = f::mul_n(&f::add_n(&t, 1.0)?, 0.5)?;
            let dt = f::binary(BinaryOp::Sub, num(1.0), (&f::mul(&t, &t)?).into())?;
            let dinner = f::mul_n(&f::add_n(&f::mul_n(&x2, 3.0 * 0.044715)?, 1.0)?, k)?;
            let right = f::mul_n(&f::mul(x, &f::mul(&dt, &dinner)?)?, 0.5)?;
            f::mul(g, &f::add(&left, &right)?)?
        }
        Silu => {
            let x = x()?;
            let s = un(Sigmoid, x)?;
            let one_minus = f::binary(BinaryOp::Sub, num(1.0), (&s).into())?;
            f::mul(g, &f::mul(&s, &f::add_n(&f::mul(x, &one_minus)?, 1.0)?)?)?
        }
        Softplus { beta, threshold } => {
            let bx = f::mul_n(x()?, beta)?;
            let big = f::cmp(BinaryOp::Gt, (&bx).into(), num(threshold))?;
            let soft = f::mul(g, &un(Sigmoid, &bx)?)?;
            f::where_(&big, g.into(), (&soft).into())?
        }
        Mish => {
            // tanh(sp) + x·σ(x)·(1 - tanh(sp)²) with sp = softplus(x).
            let x = x()?;
            let t = un(Tanh, &un(Softplus { beta: 1.0, threshold: 20.0 }, x)?)?;
            let dt = f::binary(BinaryOp::Sub, num(1.0), (&f::mul(&t, &t)?).into())?;
            f::mul(g, &f::add(&t, &f::mul(&f::mul(x, &un(Sigmoid, x)?)?, &dt)?)?)?
        }
        Hardtanh { min, max } => pass_where(g, x()?, (BinaryOp::Gt, min), (BinaryOp::Lt, max))?,
        Hardsigmoid => f::mul_n(&pass_where(g, x()?, (BinaryOp::Gt, -3.0), (BinaryOp::Lt, 3.0))?, 1.0 / 6.0)?,
        Hardswish => {
            // 0 below -3, x/3 + 1/2 up to 3, 1 beyond (PyTorch's one-sided choices at ±3).
            let x = x()?;
            let mid = f::mul(g, &f::add_n(&f::mul_n(x, 1.0 / 3.0)?, 0.5)?)?;
            let high = f::cmp(BinaryOp::Gt, x.into(), num(3.0))?;
            let low = f::cmp(BinaryOp::Lt, x.into(), num(-3.0))?;
            f::where_(&low, num(0.0), (&f::where_(&high, g.into(), (&mid).into())?).into())?
        }
        LogSigmoid => f::mul(g, &un(Sigmoid, &f::neg(x()?)?)?)?,
        Threshold { threshold, .. } => f::where_(&f::cmp(BinaryOp::Gt, x()?.into(), num(threshold))?, g.into(), num(0.0))?,
        Hardshrink(l) | Softshrink(l) => {
            let x = x()?;
            let out = f::cmp(BinaryOp::Gt, (&f::unary(Abs, x)?).into(), num(l))?;
            f::where_(&out, g.into(), num(0.0))?
        }
        BitNot | LogicalNot | IsNan | IsInf | IsFinite => f::mul_n(g, 0.0)?,
    })
}

/// `g` where both comparisons of `x` with their bounds hold, else 0.
fn pass_where(g: &Tensor, x: &Tensor, a: (BinaryOp, f64), b: (BinaryOp, f64)) -> Result<Tensor> {
    let ma = f::cmp(a.0, x.into(), num(a.1))?;
    let mb = f::cmp(b.0, x.into(), num(b.1))?;
    let both = f::cmp(BinaryOp::LogicalAnd, (&ma).into(), (&mb).into())?;
    f::where_(&both, g.into(), num(0.0))
}

/// d prod / d x_i = product of the other elements, exact with zeros in the input.
fn prod_backward(g: &Tensor, x: &Tensor, out: &Tensor, dim: Option<usize>, keepdim: bool) -> Result<Tensor> {
    let shape = x.shape();
    let mask: Vec<bool> = (0..shape.len()).map(|d| dim.is_none_or(|k| k == d)).collect();
    let dims = mask_dims(&mask);
    let zero = f::cmp(BinaryOp::Eq, x.into(), num(0.0))?;
    let safe_x = f::where_(&zero, num(1.0), x.into())?;
    let zeros_per = crate::ops::reduce::sum(&zero, if dims.is_empty() { None } else { Some(&dims) }, true, None)?;
    let prod_nonzero = match dim {
        Some(d) if !shape.is_empty() => f::prod(&safe_x, Some(d as i64), true, None)?,
        _ => f::reshape(&f::prod(&safe_x, None, false, None)?, &vec![1; shape.len()])?,
    };
    let ok = restore(out, &shape, &mask, keepdim)?;
    let one_zero = f::cmp(BinaryOp::Eq, (&zeros_per).into(), Input::S(Scalar::Int(1)))?;
    let no_zero = f::cmp(BinaryOp::Eq, (&zeros_per).into(), Input::S(Scalar::Int(0)))?;
    let at_zero = f::where_(&one_zero, (&prod_nonzero).into(), num(0.0))?;
    let elsewhere = f::where_(&no_zero, (&f::div(&ok, &safe_x)?).into(), num(0.0))?;
    let others = f::where_(&zero, (&at_zero).into(), (&elsewhere).into())?;
    f::mul(&restore(g, &shape, &mask, keepdim)?, &others)
}

fn norm_backward(g: &Tensor, x: &Tensor, out: &Tensor, p: f64, mask: &[bool], keepdim: bool) -> Result<Tensor> {
    let shape = x.shape();
    let gk = restore(g, &shape, mask, keepdim)?;
    let ok = restore(out, &shape, mask, keepdim)?;
    // Where the norm is 0 every element is 0, so dividing by 1 there gives the 0 PyTorch returns.
    let zero_norm = f::cmp(BinaryOp::Eq, (&ok).into(), num(0.0))?;
    let safe = f::where_(&zero_norm, num(1.0), (&ok).into())?;
    Ok(if p == 0.0 {
        f::mul_n(&f::expand_to(&gk, &shape)?, 0.0)?
    } else if p == 1.0 {
        f::mul(&gk, &f::unary(UnaryOp::Sign, x)?)?
    } else if p == 2.0 {
        f::mul(&gk, &f::div(x, &safe)?)?
    } else if p.is_infinite() {
        let a = f::unary(UnaryOp::Abs, x)?;
        let hit = crate::ops::cast::to_dtype(&f::cmp(BinaryOp::Eq, (&a).into(), (&ok).into())?, g.dtype());
        let count = crate::ops::reduce::sum(&hit, Some(&mask_dims(mask)), true, None)?;
        let share = crate::ops::elementwise::binary(BinaryOp::Div, (&hit).into(), (&count).into())?;
        f::mul(&gk, &f::mul(&f::unary(UnaryOp::Sign, x)?, &share)?)?
    } else {
        let a = f::unary(UnaryOp::Abs, x)?;
        let num_ = f::mul(x, &f::pow_n(&a, p - 2.0)?)?;
        let xz = f::cmp(BinaryOp::Eq, x.into(), num(0.0))?;
        let num_ = f::where_(&xz, num(0.0), (&num_).into())?;
        f::div(&f::mul(&gk, &num_)?, &f::pow_n(&safe, p - 1.0)?)?
    })
}
