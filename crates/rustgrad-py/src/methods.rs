//! Arithmetic, comparison, bitwise and math methods of `Tensor`, generated from one table per
//! family so each op is declared once: its dunder, reflected dunder, in-place dunder, named
//! method (with `out=`) and in-place named method.

use engine::autograd::functions as f;
use engine::autograd::record::{inplace, inplace_direct, needs_grad};
use engine::ops::elementwise as ew;
use engine::ops::elementwise::{BinaryOp, UnaryOp};
use engine::{Scalar, Tensor};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::convert::{operand, operand_required, scalar_of, Operand};
use crate::errors::{guard, heavy};
use crate::tensor::{finish, wrap, PyTensor};

fn binop(py: Python<'_>, a: &Operand, b: &Operand, op: BinaryOp) -> PyResult<Tensor> {
    heavy(py, a.numel().max(b.numel()), || f::binary(op, a.input(), b.input()))
}

/// Runs an in-place op on `t`: `op` computes the new value from (a snapshot of) `t`; the
/// engine checks autograd's in-place rules, writes the result and moves `t`'s history.
fn assign_with(py: Python<'_>, t: &Tensor, other: Option<&Operand>, op: impl FnOnce(&Tensor) -> engine::Result<Tensor> + Send) -> PyResult<()> {
    let others: Vec<Option<&Tensor>> = match other {
        Some(Operand::T(o)) => vec![Some(o)],
        _ => vec![],
    };
    heavy(py, t.numel(), || inplace(t, &others, op))
}

/// `t op= b` in place: one pass into `t`'s memory when nothing is recorded.
fn assign_binary(py: Python<'_>, t: &Tensor, b: &Operand, op: BinaryOp) -> PyResult<()> {
    let others: Vec<Option<&Tensor>> = match b {
        Operand::T(o) => vec![Some(o)],
        _ => vec![],
    };
    heavy(py, t.numel(), || {
        inplace_direct(t, &others, |x| ew::binary_into(op, x.into(), b.input(), x), |x| f::binary(op, x.into(), b.input()))
    })
}

/// `op(a, b, out=out)`: straight into `out` when it has the result's shape and dtype.
fn binary_out(py: Python<'_>, a: &Operand, b: &Operand, op: BinaryOp, out: Option<&Bound<'_, PyTensor>>) -> PyResult<Py<PyAny>> {
    if let Some(o) = out {
        let dst = &o.get().t;
        let ins = [a.tensor(), b.tensor(), Some(dst)];
        if !needs_grad(&ins) && heavy(py, dst.numel(), || ew::binary_into(op, a.input(), b.input(), dst))? {
            return Ok(o.clone().into_any().unbind());
        }
    }
    finish(py, binop(py, a, b, op)?, out)
}

macro_rules! binary_ops {
    ($($op:expr => $dunder:ident, $rdunder:ident, $idunder:ident;)*) => {
        #[pymethods]
        impl PyTensor {
            $(
            fn $dunder(slf: &Bound<'_, Self>, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
                let Some(b) = operand(other) else { return Ok(py.NotImplemented()) };
                Ok(wrap(py, binop(py, &Operand::T(slf.get().t.clone()), &b, $op)?)?.into_any())
            }
            fn $rdunder(slf: &Bound<'_, Self>, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
                let Some(a) = operand(other) else { return Ok(py.NotImplemented()) };
                Ok(wrap(py, binop(py, &a, &Operand::T(slf.get().t.clone()), $op)?)?.into_any())
            }
            fn $idunder(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<()> {
                let b = operand_required(other, stringify!($idunder))?;
                assign_binary(py, &self.t, &b, $op)
            }
            )*
        }
    };
}

binary_ops! {
    BinaryOp::Add => __add__, __radd__, __iadd__;
    BinaryOp::Sub => __sub__, __rsub__, __isub__;
    BinaryOp::Mul => __mul__, __rmul__, __imul__;
    BinaryOp::Div => __truediv__, __rtruediv__, __itruediv__;
    BinaryOp::FloorDiv => __floordiv__, __rfloordiv__, __ifloordiv__;
    BinaryOp::Rem => __mod__, __rmod__, __imod__;
    BinaryOp::BitAnd => __and__, __rand__, __iand__;
    BinaryOp::BitOr => __or__, __ror__, __ior__;
    BinaryOp::BitXor => __xor__, __rxor__, __ixor__;
}

macro_rules! named_binary_ops {
    ($($op:expr => $name:ident, $iname:ident;)*) => {
        #[pymethods]
        impl PyTensor {
            $(
            #[pyo3(signature = (other, *, out=None))]
            fn $name(&self, py: Python<'_>, other: &Bound<'_, PyAny>, out: Option<&Bound<'_, PyTensor>>) -> PyResult<Py<PyAny>> {
                let b = operand_required(other, stringify!($name))?;
                binary_out(py, &Operand::T(self.t.clone()), &b, $op, out)
            }
            fn $iname(slf: &Bound<'_, Self>, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
                let t = &slf.get().t;
                let b = operand_required(other, stringify!($iname))?;
                assign_binary(py, t, &b, $op)?;
                Ok(slf.clone().into_any().unbind())
            }
            )*
        }
    };
}

named_binary_ops! {
    BinaryOp::Mul => mul, mul_;
    BinaryOp::Mul => multiply, multiply_;
    BinaryOp::Div => true_divide, true_divide_;
    BinaryOp::FloorDiv => floor_divide, floor_divide_;
    BinaryOp::Rem => remainder, remainder_;
    BinaryOp::Pow => pow, pow_;
    BinaryOp::Maximum => maximum, maximum_;
    BinaryOp::Minimum => minimum, minimum_;
    BinaryOp::Eq => eq, eq_;
    BinaryOp::Ne => ne, ne_;
    BinaryOp::Ne => not_equal, not_equal_;
    BinaryOp::Lt => lt, lt_;
    BinaryOp::Lt => less, less_;
    BinaryOp::Le => le, le_;
    BinaryOp::Le => less_equal, less_equal_;
    BinaryOp::Gt => gt, gt_;
    BinaryOp::Gt => greater, greater_;
    BinaryOp::Ge => ge, ge_;
    BinaryOp::Ge => greater_equal, greater_equal_;
    BinaryOp::LogicalAnd => logical_and, logical_and_;
    BinaryOp::LogicalOr => logical_or, logical_or_;
    BinaryOp::LogicalXor => logical_xor, logical_xor_;
    BinaryOp::BitAnd => bitwise_and, bitwise_and_;
    BinaryOp::BitOr => bitwise_or, bitwise_or_;
    BinaryOp::BitXor => bitwise_xor, bitwise_xor_;
}

/// `op(t, out=out)`: straight into `out` when it has the result's shape and dtype.
fn unary_out(py: Python<'_>, t: &Tensor, op: UnaryOp, out: Option<&Bound<'_, PyTensor>>) -> PyResult<Py<PyAny>> {
    if let Some(o) = out {
        let dst = &o.get().t;
        if !needs_grad(&[Some(t), Some(dst)]) && heavy(py, dst.numel(), || ew::unary_into(op, t, dst))? {
            return Ok(o.clone().into_any().unbind());
        }
    }
    finish(py, heavy(py, t.numel(), || f::unary(op, t))?, out)
}

macro_rules! unary_ops {
    ($($op:expr => $name:ident, $iname:ident;)*) => {
        #[pymethods]
        impl PyTensor {
            $(
            #[pyo3(signature = (*, out=None))]
            fn $name(&self, py: Python<'_>, out: Option<&Bound<'_, PyTensor>>) -> PyResult<Py<PyAny>> {
                unary_out(py, &self.t, $op, out)
            }
            fn $iname(slf: &Bound<'_, Self>, py: Python<'_>) -> PyResult<Py<PyAny>> {
                let t = &slf.get().t;
                heavy(py, t.numel(), || inplace_direct(t, &[], |x| ew::unary_into($op, x, x), |x| f::unary($op, x)))?;
                Ok(slf.clone().into_any().unbind())
            }
            )*
        }
    };
}

unary_ops! {
    UnaryOp::Neg => neg, neg_;
    UnaryOp::Neg => negative, negative_;
    UnaryOp::Abs => abs, abs_;
    UnaryOp::Abs => absolute, absolute_;
    UnaryOp::Sign => sign, sign_;
    UnaryOp::BitNot => bitwise_not, bitwise_not_;
    UnaryOp::LogicalNot => logical_not, logical_not_;
    UnaryOp::Relu => relu, relu_;
    UnaryOp::Square => square, square_;
    UnaryOp::Exp => exp, exp_;
    UnaryOp::Log => log, log_;
    UnaryOp::Log2 => log2, log2_;
    UnaryOp::Log10 => log10, log10_;
    UnaryOp::Log1p => log1p, log1p_;
    UnaryOp::Expm1 => expm1, expm1_;
    UnaryOp::Erf => erf, erf_;
    UnaryOp::Erfc => erfc, erfc_;
    UnaryOp::Sqrt => sqrt, sqrt_;
    UnaryOp::Rsqrt => rsqrt, rsqrt_;
    UnaryOp::Sin => sin, sin_;
    UnaryOp::Cos => cos, cos_;
    UnaryOp::Tan => tan, tan_;
    UnaryOp::Tanh => tanh, tanh_;
    UnaryOp::Sigmoid => sigmoid, sigmoid_;
    UnaryOp::Reciprocal => reciprocal, reciprocal_;
    UnaryOp::Floor => floor, floor_;
    UnaryOp::Ceil => ceil, ceil_;
    UnaryOp::Round => round, round_;
    UnaryOp::Trunc => trunc, trunc_;
}

fn clamp_bound(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Operand>> {
    match obj {
        None => Ok(None),
        Some(o) if o.is_none() => Ok(None),
        Some(o) => operand(o).map(Some).ok_or_else(|| PyTypeError::new_err("clamp(): bounds must be numbers or tensors")),
    }
}

fn clamp_impl(t: &Tensor, min: Option<Operand>, max: Option<Operand>) -> engine::Result<Tensor> {
    f::clamp(t, min.as_ref().map(|m| m.input()), max.as_ref().map(|m| m.input()))
}

#[pymethods]
impl PyTensor {
    fn __neg__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.neg(py, None)
    }
    fn __abs__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.abs(py, None)
    }
    fn __invert__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.bitwise_not(py, None)
    }
    fn __pos__(slf: &Bound<'_, Self>) -> Py<PyAny> {
        slf.clone().into_any().unbind()
    }
    fn positive(slf: &Bound<'_, Self>) -> Py<PyAny> {
        slf.clone().into_any().unbind()
    }

    fn __pow__(slf: &Bound<'_, Self>, py: Python<'_>, other: &Bound<'_, PyAny>, _modulo: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyAny>> {
        let Some(b) = operand(other) else { return Ok(py.NotImplemented()) };
        Ok(wrap(py, binop(py, &Operand::T(slf.get().t.clone()), &b, BinaryOp::Pow)?)?.into_any())
    }
    fn __rpow__(slf: &Bound<'_, Self>, py: Python<'_>, other: &Bound<'_, PyAny>, _modulo: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyAny>> {
        let Some(a) = operand(other) else { return Ok(py.NotImplemented()) };
        Ok(wrap(py, binop(py, &a, &Operand::T(slf.get().t.clone()), BinaryOp::Pow)?)?.into_any())
    }
    fn __ipow__(&self, py: Python<'_>, other: &Bound<'_, PyAny>, _modulo: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let b = operand_required(other, "pow_")?;
        assign_binary(py, &self.t, &b, BinaryOp::Pow)
    }

    fn __richcmp__(&self, py: Python<'_>, other: &Bound<'_, PyAny>, op: pyo3::basic::CompareOp) -> PyResult<Py<PyAny>> {
        use pyo3::basic::CompareOp::*;
        let Some(b) = operand(other) else { return Ok(py.NotImplemented()) };
        let bop = match op {
            Eq => BinaryOp::Eq,
            Ne => BinaryOp::Ne,
            Lt => BinaryOp::Lt,
            Le => BinaryOp::Le,
            Gt => BinaryOp::Gt,
            Ge => BinaryOp::Ge,
        };
        Ok(wrap(py, binop(py, &Operand::T(self.t.clone()), &b, bop)?)?.into_any())
    }

    /// `add(other, *, alpha=1, out=None)`.
    #[pyo3(signature = (other, *, alpha=None, out=None))]
    fn add(&self, py: Python<'_>, other: &Bound<'_, PyAny>, alpha: Option<&Bound<'_, PyAny>>, out: Option<&Bound<'_, PyTensor>>) -> PyResult<Py<PyAny>> {
        if alpha.is_none() && out.is_some() {
            let b = operand_required(other, "add")?;
            return binary_out(py, &Operand::T(self.t.clone()), &b, BinaryOp::Add, out);
        }
        let r = self.scaled(other, alpha, false)?;
        finish(py, r, out)
    }
    #[pyo3(signature = (other, *, alpha=None, out=None))]
    fn sub(&self, py: Python<'_>, other: &Bound<'_, PyAny>, alpha: Option<&Bound<'_, PyAny>>, out: Option<&Bound<'_, PyTensor>>) -> PyResult<Py<PyAny>> {
        if alpha.is_none() && out.is_some() {
            let b = operand_required(other, "sub")?;
            return binary_out(py, &Operand::T(self.t.clone()), &b, BinaryOp::Sub, out);
        }
        let r = self.scaled(other, alpha, true)?;
        finish(py, r, out)
    }
    #[pyo3(signature = (other, *, alpha=None, out=None))]
    fn subtract(&self, py: Python<'_>, other: &Bound<'_, PyAny>, alpha: Option<&Bound<'_, PyAny>>, out: Option<&Bound<'_, PyTensor>>) -> PyResult<Py<PyAny>> {
        self.sub(py, other, alpha, out)
    }
    #[pyo3(signature = (other, *, alpha=None))]
    fn add_(slf: &Bound<'_, Self>, py: Python<'_>, other: &Bound<'_, PyAny>, alpha: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyAny>> {
        slf.get().scaled_(py, other, alpha, false)?;
        Ok(slf.clone().into_any().unbind())
    }
    #[pyo3(signature = (other, *, alpha=None))]
    fn sub_(slf: &Bound<'_, Self>, py: Python<'_>, other: &Bound<'_, PyAny>, alpha: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyAny>> {
        slf.get().scaled_(py, other, alpha, true)?;
        Ok(slf.clone().into_any().unbind())
    }
    /// `div(other, *, rounding_mode=None | 'trunc' | 'floor', out=None)`.
    #[pyo3(signature = (other, *, rounding_mode=None, out=None))]
    fn div(&self, py: Python<'_>, other: &Bound<'_, PyAny>, rounding_mode: Option<&str>, out: Option<&Bound<'_, PyTensor>>) -> PyResult<Py<PyAny>> {
        finish(py, self.divided(py, other, rounding_mode)?, out)
    }
    #[pyo3(signature = (other, *, rounding_mode=None, out=None))]
    fn divide(&self, py: Python<'_>, other: &Bound<'_, PyAny>, rounding_mode: Option<&str>, out: Option<&Bound<'_, PyTensor>>) -> PyResult<Py<PyAny>> {
        self.div(py, other, rounding_mode, out)
    }
    #[pyo3(signature = (other, *, rounding_mode=None))]
    fn div_(slf: &Bound<'_, Self>, py: Python<'_>, other: &Bound<'_, PyAny>, rounding_mode: Option<&str>) -> PyResult<Py<PyAny>> {
        let t = &slf.get().t;
        let b = operand_required(other, "div_")?;
        let mode = rounding_mode.map(str::to_owned);
        assign_with(py, t, Some(&b), |x| divided(x, &b, mode.as_deref()))?;
        Ok(slf.clone().into_any().unbind())
    }

    #[pyo3(signature = (min=None, max=None, *, out=None))]
    fn clamp(&self, py: Python<'_>, min: Option<&Bound<'_, PyAny>>, max: Option<&Bound<'_, PyAny>>, out: Option<&Bound<'_, PyTensor>>) -> PyResult<Py<PyAny>> {
        let (lo, hi) = (clamp_bound(min)?, clamp_bound(max)?);
        finish(py, heavy(py, self.t.numel(), || clamp_impl(&self.t, lo, hi))?, out)
    }
    #[pyo3(signature = (min=None, max=None, *, out=None))]
    fn clip(&self, py: Python<'_>, min: Option<&Bound<'_, PyAny>>, max: Option<&Bound<'_, PyAny>>, out: Option<&Bound<'_, PyTensor>>) -> PyResult<Py<PyAny>> {
        self.clamp(py, min, max, out)
    }
    #[pyo3(signature = (min=None, max=None))]
    fn clamp_(slf: &Bound<'_, Self>, min: Option<&Bound<'_, PyAny>>, max: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyAny>> {
        let t = &slf.get().t;
        let (lo, hi) = (clamp_bound(min)?, clamp_bound(max)?);
        let others: Vec<Option<&Tensor>> = lo.iter().chain(hi.iter()).map(Operand::tensor).collect();
        heavy(slf.py(), t.numel(), || {
            let direct = |x: &Tensor| f::clamp_into(x, lo.as_ref().map(|m| m.input()), hi.as_ref().map(|m| m.input()), x);
            inplace_direct(t, &others, direct, |x| clamp_impl(x, lo.clone(), hi.clone()))
        })?;
        Ok(slf.clone().into_any().unbind())
    }
    fn isnan(&self, py: Python<'_>) -> PyResult<Py<PyTensor>> {
        wrap(py, guard(|| f::unary(UnaryOp::IsNan, &self.t))?)
    }
    fn isinf(&self, py: Python<'_>) -> PyResult<Py<PyTensor>> {
        wrap(py, guard(|| f::unary(UnaryOp::IsInf, &self.t))?)
    }
    fn isfinite(&self, py: Python<'_>) -> PyResult<Py<PyTensor>> {
        wrap(py, guard(|| f::unary(UnaryOp::IsFinite, &self.t))?)
    }
    /// `x.where(condition, y)` = `where(condition, x, y)`.
    #[pyo3(name = "where")]
    fn where_method(&self, py: Python<'_>, condition: &Bound<'_, PyTensor>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyTensor>> {
        let b = operand_required(other, "where")?;
        wrap(py, guard(|| f::where_(&condition.get().t, (&self.t).into(), b.input()))?)
    }

    #[pyo3(signature = (other, *, out=None))]
    fn matmul(&self, py: Python<'_>, other: &Bound<'_, PyTensor>, out: Option<&Bound<'_, PyTensor>>) -> PyResult<Py<PyAny>> {
        let o = other.get().t.clone();
        let work = self.t.numel().max(o.numel());
        finish(py, heavy(py, work, || f::matmul(&self.t, &o))?, out)
    }
    #[pyo3(signature = (mat2, *, out=None))]
    fn mm(&self, py: Python<'_>, mat2: &Bound<'_, PyTensor>, out: Option<&Bound<'_, PyTensor>>) -> PyResult<Py<PyAny>> {
        let o = mat2.get().t.clone();
        let work = self.t.numel().max(o.numel());
        finish(py, heavy(py, work, || f::mm(&self.t, &o))?, out)
    }
    #[pyo3(signature = (other, *, out=None))]
    fn dot(&self, py: Python<'_>, other: &Bound<'_, PyTensor>, out: Option<&Bound<'_, PyTensor>>) -> PyResult<Py<PyAny>> {
        let o = &other.get().t;
        finish(py, guard(|| f::dot(&self.t, o))?, out)
    }
    fn __matmul__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let Ok(o) = other.cast::<PyTensor>() else { return Ok(py.NotImplemented()) };
        let o = o.get().t.clone();
        Ok(wrap(py, heavy(py, self.t.numel().max(o.numel()), || f::matmul(&self.t, &o))?)?.into_any())
    }
    fn __rmatmul__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let Ok(o) = other.cast::<PyTensor>() else { return Ok(py.NotImplemented()) };
        let o = o.get().t.clone();
        Ok(wrap(py, guard(|| f::matmul(&o, &self.t))?)?.into_any())
    }
}

impl PyTensor {
    fn scaled(&self, other: &Bound<'_, PyAny>, alpha: Option<&Bound<'_, PyAny>>, subtract: bool) -> PyResult<Tensor> {
        let b = operand_required(other, if subtract { "sub" } else { "add" })?;
        let alpha = match alpha {
            None => Scalar::Int(1),
            Some(a) => scalar_of(a).ok_or_else(|| PyTypeError::new_err("alpha must be a number"))?,
        };
        let t = &self.t;
        guard(|| f::add_scaled(t.into(), b.input(), alpha, subtract))
    }
    fn scaled_(&self, py: Python<'_>, other: &Bound<'_, PyAny>, alpha: Option<&Bound<'_, PyAny>>, subtract: bool) -> PyResult<()> {
        let b = operand_required(other, if subtract { "sub_" } else { "add_" })?;
        let alpha = match alpha {
            None => Scalar::Int(1),
            Some(a) => scalar_of(a).ok_or_else(|| PyTypeError::new_err("alpha must be a number"))?,
        };
        if alpha == Scalar::Int(1) || alpha == Scalar::Float(1.0) {
            return assign_binary(py, &self.t, &b, if subtract { BinaryOp::Sub } else { BinaryOp::Add });
        }
        assign_with(py, &self.t, Some(&b), |x| f::add_scaled(x.into(), b.input(), alpha, subtract))
    }
    fn divided(&self, py: Python<'_>, other: &Bound<'_, PyAny>, rounding_mode: Option<&str>) -> PyResult<Tensor> {
        let b = operand_required(other, "div")?;
        if !matches!(rounding_mode, None | Some("floor") | Some("trunc")) {
            return Err(rounding_error(rounding_mode.unwrap_or_default()));
        }
        heavy(py, self.t.numel().max(b.numel()), || divided(&self.t, &b, rounding_mode))
    }
}

fn rounding_error(m: &str) -> PyErr {
    PyValueError::new_err(format!("div expected rounding_mode to be one of None, 'trunc', or 'floor' but found '{m}'"))
}

/// `a / b` with PyTorch's rounding modes (`floor`/`trunc` have zero gradient).
fn divided(a: &Tensor, b: &Operand, rounding_mode: Option<&str>) -> engine::Result<Tensor> {
    match rounding_mode {
        Some("floor") => f::binary(BinaryOp::FloorDiv, a.into(), b.input()),
        Some("trunc") => {
            let q = f::binary(BinaryOp::Div, a.into(), b.input())?;
            let tq = f::unary(UnaryOp::Trunc, &q)?;
            let want = engine::ops::elementwise::binary_result_dtype(BinaryOp::Mul, a.into(), b.input())?;
            f::to_dtype(&tq, want)
        }
        _ => f::binary(BinaryOp::Div, a.into(), b.input()),
    }
}
