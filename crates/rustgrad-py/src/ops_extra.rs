//! Tensor methods added with autograd: normalising reductions (var/std/logsumexp/softmax/norm),
//! cumsum, gather/scatter/index_select/masked_fill, the remaining products (bmm/addmm/outer/mv),
//! and the activation/padding primitives behind `rustgrad.nn.functional`.

use engine::autograd::functions as f;
use engine::autograd::record::inplace;
use engine::ops::elementwise::UnaryOp;
use engine::{Scalar, Tensor};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::convert::{int_list, operand_required, scalar_of, Operand};
use crate::errors::{guard, heavy};
use crate::tensor::{finish, opt_dims, wrap, PyTensor};
use crate::types::extract_dtype;

fn self_obj(slf: &Bound<'_, PyTensor>) -> Py<PyAny> {
    slf.clone().into_any().unbind()
}

/// `var`/`std` arguments: `(dim, unbiased, keepdim, correction)`; a bool in `dim`'s place is
/// the old `unbiased` positional.
fn correction_of(dim: Option<&Bound<'_, PyAny>>, unbiased: Option<bool>, correction: Option<&Bound<'_, PyAny>>) -> PyResult<(Option<Vec<i64>>, f64)> {
    let (dims, unbiased) = match dim {
        Some(d) if d.is_instance_of::<pyo3::types::PyBool>() => (None, Some(d.extract::<bool>()?)),
        other => (opt_dims(other)?, unbiased),
    };
    let c = match (correction.filter(|c| !c.is_none()), unbiased) {
        (Some(_), Some(_)) => return Err(PyRuntimeError::new_err("Cannot specify both unbiased and correction")),
        (Some(c), None) => c.extract::<f64>()?,
        (None, Some(u)) => u as i64 as f64,
        (None, None) => 1.0,
    };
    Ok((dims, c))
}

fn index_tensor(obj: &Bound<'_, PyTensor>) -> Tensor {
    obj.get().t.clone()
}

#[pymethods]
impl PyTensor {
    #[pyo3(signature = (dim=None, unbiased=None, keepdim=false, *, correction=None, out=None))]
    fn var(&self, py: Python<'_>, dim: Option<&Bound<'_, PyAny>>, unbiased: Option<bool>, keepdim: bool, correction: Option<&Bound<'_, PyAny>>, out: Option<&Bound<'_, PyTensor>>) -> PyResult<Py<PyAny>> {
        let (d, c) = correction_of(dim, unbiased, correction)?;
        finish(py, heavy(py, self.t.numel(), || f::var_std(&self.t, d.as_deref(), c, keepdim, false))?, out)
    }
    #[pyo3(signature = (dim=None, unbiased=None, keepdim=false, *, correction=None, out=None))]
    fn std(&self, py: Python<'_>, dim: Option<&Bound<'_, PyAny>>, unbiased: Option<bool>, keepdim: bool, correction: Option<&Bound<'_, PyAny>>, out: Option<&Bound<'_, PyTensor>>) -> PyResult<Py<PyAny>> {
        let (d, c) = correction_of(dim, unbiased, correction)?;
        finish(py, heavy(py, self.t.numel(), || f::var_std(&self.t, d.as_deref(), c, keepdim, true))?, out)
    }
    #[pyo3(signature = (dim, keepdim=false, *, out=None))]
    fn logsumexp(&self, py: Python<'_>, dim: &Bound<'_, PyAny>, keepdim: bool, out: Option<&Bound<'_, PyTensor>>) -> PyResult<Py<PyAny>> {
        let d = int_list(dim)?;
        finish(py, heavy(py, self.t.numel(), || f::logsumexp(&self.t, &d, keepdim))?, out)
    }
    #[pyo3(signature = (dim, dtype=None))]
    fn softmax(&self, py: Python<'_>, dim: i64, dtype: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyTensor>> {
        let dt = dtype.filter(|d| !d.is_none()).map(extract_dtype).transpose()?;
        wrap(py, heavy(py, self.t.numel(), || f::softmax(&self.t, dim, false, dt))?)
    }
    #[pyo3(signature = (dim, dtype=None))]
    fn log_softmax(&self, py: Python<'_>, dim: i64, dtype: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyTensor>> {
        let dt = dtype.filter(|d| !d.is_none()).map(extract_dtype).transpose()?;
        wrap(py, heavy(py, self.t.numel(), || f::softmax(&self.t, dim, true, dt))?)
    }
    /// `norm(p='fro', dim=None, keepdim=False)`: vector norms ('fro' is the 2-norm).
    #[pyo3(signature = (p=None, dim=None, keepdim=false, dtype=None))]
    fn norm(&self, py: Python<'_>, p: Option<&Bound<'_, PyAny>>, dim: Option<&Bound<'_, PyAny>>, keepdim: bool, dtype: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyTensor>> {
        let p = match p.filter(|p| !p.is_none()) {
            None => 2.0,
            Some(o) => match o.extract::<String>() {
                Ok(s) if s == "fro" => 2.0,
                Ok(s) => return Err(PyRuntimeError::new_err(format!("rustgrad supports vector norms only; got p='{s}'"))),
                Err(_) => o.extract::<f64>()?,
            },
        };
        let d = opt_dims(dim)?;
        let x = match dtype.filter(|d| !d.is_none()) {
            Some(dt) => {
                let dt = extract_dtype(dt)?;
                guard(|| f::to_dtype(&self.t, dt))?
            }
            None => self.t.clone(),
        };
        wrap(py, heavy(py, x.numel(), || f::norm(&x, p, d.as_deref(), keepdim))?)
    }
    #[pyo3(signature = (dim, *, dtype=None, out=None))]
    fn cumsum(&self, py: Python<'_>, dim: i64, dtype: Option<&Bound<'_, PyAny>>, out: Option<&Bound<'_, PyTensor>>) -> PyResult<Py<PyAny>> {
        let dt = dtype.filter(|d| !d.is_none()).map(extract_dtype).transpose()?;
        finish(py, heavy(py, self.t.numel(), || f::cumsum(&self.t, dim, dt))?, out)
    }

    #[pyo3(signature = (dim, index, *, out=None))]
    fn gather(&self, py: Python<'_>, dim: i64, index: &Bound<'_, PyTensor>, out: Option<&Bound<'_, PyTensor>>) -> PyResult<Py<PyAny>> {
        let ix = index_tensor(index);
        finish(py, heavy(py, ix.numel(), || f::gather(&self.t, dim, &ix))?, out)
    }
    #[pyo3(signature = (dim, index, src=None, *, value=None, reduce=None))]
    fn scatter(&self, py: Python<'_>, dim: i64, index: &Bound<'_, PyTensor>, src: Option<&Bound<'_, PyAny>>, value: Option<&Bound<'_, PyAny>>, reduce: Option<&str>) -> PyResult<Py<PyTensor>> {
        let (ix, s) = (index_tensor(index), scatter_src(src, value, reduce)?);
        wrap(py, heavy(py, ix.numel(), || f::scatter(&self.t, dim, &ix, s.input(), false))?)
    }
    #[pyo3(signature = (dim, index, src=None, *, value=None, reduce=None))]
    fn scatter_(slf: &Bound<'_, Self>, py: Python<'_>, dim: i64, index: &Bound<'_, PyTensor>, src: Option<&Bound<'_, PyAny>>, value: Option<&Bound<'_, PyAny>>, reduce: Option<&str>) -> PyResult<Py<PyAny>> {
        let (ix, s) = (index_tensor(index), scatter_src(src, value, reduce)?);
        let t = &slf.get().t;
        heavy(py, ix.numel(), || inplace(t, &[operand_tensor(&s)], |x| f::scatter(x, dim, &ix, s.input(), false)))?;
        Ok(self_obj(slf))
    }
    fn scatter_add(&self, py: Python<'_>, dim: i64, index: &Bound<'_, PyTensor>, src: &Bound<'_, PyTensor>) -> PyResult<Py<PyTensor>> {
        let (ix, s) = (index_tensor(index), src.get().t.clone());
        wrap(py, heavy(py, ix.numel(), || f::scatter(&self.t, dim, &ix, (&s).into(), true))?)
    }
    fn scatter_add_(slf: &Bound<'_, Self>, py: Python<'_>, dim: i64, index: &Bound<'_, PyTensor>, src: &Bound<'_, PyTensor>) -> PyResult<Py<PyAny>> {
        let (ix, s) = (index_tensor(index), src.get().t.clone());
        let t = &slf.get().t;
        heavy(py, ix.numel(), || inplace(t, &[Some(&s)], |x| f::scatter(x, dim, &ix, (&s).into(), true)))?;
        Ok(self_obj(slf))
    }
    #[pyo3(signature = (dim, index, *, out=None))]
    fn index_select(&self, py: Python<'_>, dim: i64, index: &Bound<'_, PyTensor>, out: Option<&Bound<'_, PyTensor>>) -> PyResult<Py<PyAny>> {
        let ix = index_tensor(index);
        finish(py, heavy(py, self.t.numel(), || f::index_select(&self.t, dim, &ix))?, out)
    }
    fn masked_fill(&self, py: Python<'_>, mask: &Bound<'_, PyTensor>, value: &Bound<'_, PyAny>) -> PyResult<Py<PyTensor>> {
        let (m, v) = (mask.get().t.clone(), operand_required(value, "masked_fill")?);
        wrap(py, heavy(py, self.t.numel(), || f::masked_fill(&self.t, &m, v.input()))?)
    }
    fn masked_fill_(slf: &Bound<'_, Self>, py: Python<'_>, mask: &Bound<'_, PyTensor>, value: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let (m, v) = (mask.get().t.clone(), operand_required(value, "masked_fill_")?);
        let t = &slf.get().t;
        heavy(py, t.numel(), || inplace(t, &[operand_tensor(&v)], |x| f::masked_fill(x, &m, v.input())))?;
        Ok(self_obj(slf))
    }

    #[pyo3(signature = (mat2, *, out=None))]
    fn bmm(&self, py: Python<'_>, mat2: &Bound<'_, PyTensor>, out: Option<&Bound<'_, PyTensor>>) -> PyResult<Py<PyAny>> {
        let o = mat2.get().t.clone();
        finish(py, heavy(py, self.t.numel().max(o.numel()), || f::bmm(&self.t, &o))?, out)
    }
    #[pyo3(signature = (mat1, mat2, *, beta=None, alpha=None, out=None))]
    fn addmm(&self, py: Python<'_>, mat1: &Bound<'_, PyTensor>, mat2: &Bound<'_, PyTensor>, beta: Option<&Bound<'_, PyAny>>, alpha: Option<&Bound<'_, PyAny>>, out: Option<&Bound<'_, PyTensor>>) -> PyResult<Py<PyAny>> {
        let (a, b) = (mat1.get().t.clone(), mat2.get().t.clone());
        let (beta, alpha) = (number(beta)?, number(alpha)?);
        finish(py, heavy(py, a.numel().max(b.numel()), || f::addmm(&self.t, &a, &b, beta, alpha))?, out)
    }
    #[pyo3(signature = (vec2, *, out=None))]
    fn outer(&self, py: Python<'_>, vec2: &Bound<'_, PyTensor>, out: Option<&Bound<'_, PyTensor>>) -> PyResult<Py<PyAny>> {
        let o = vec2.get().t.clone();
        finish(py, guard(|| f::outer(&self.t, &o))?, out)
    }
    #[pyo3(signature = (vec2, *, out=None))]
    fn ger(&self, py: Python<'_>, vec2: &Bound<'_, PyTensor>, out: Option<&Bound<'_, PyTensor>>) -> PyResult<Py<PyAny>> {
        self.outer(py, vec2, out)
    }
    #[pyo3(signature = (vec, *, out=None))]
    fn mv(&self, py: Python<'_>, vec: &Bound<'_, PyTensor>, out: Option<&Bound<'_, PyTensor>>) -> PyResult<Py<PyAny>> {
        let o = vec.get().t.clone();
        finish(py, guard(|| f::mv(&self.t, &o))?, out)
    }
}

fn number(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Scalar> {
    match obj {
        None => Ok(Scalar::Int(1)),
        Some(o) => scalar_of(o).ok_or_else(|| PyTypeError::new_err("beta and alpha must be numbers")),
    }
}

fn operand_tensor(o: &Operand) -> Option<&Tensor> {
    match o {
        Operand::T(t) => Some(t),
        Operand::S(_) => None,
    }
}

fn scatter_src(src: Option<&Bound<'_, PyAny>>, value: Option<&Bound<'_, PyAny>>, reduce: Option<&str>) -> PyResult<Operand> {
    if let Some(r) = reduce {
        return Err(PyRuntimeError::new_err(format!("scatter(): reduce='{r}' is not supported by rustgrad; use scatter_add")));
    }
    match (src.filter(|s| !s.is_none()), value.filter(|v| !v.is_none())) {
        (Some(s), None) | (None, Some(s)) => operand_required(s, "scatter"),
        _ => Err(PyTypeError::new_err("scatter() expects exactly one of 'src' or 'value'")),
    }
}

/// The elementwise activation behind `nn.functional.<name>`, out of place or in place.
#[pyfunction]
#[pyo3(signature = (input, name, a=0.0, b=0.0, c=0.0, inplace=false))]
pub fn _activation(py: Python<'_>, input: &Bound<'_, PyTensor>, name: &str, a: f64, b: f64, c: f64, inplace: bool) -> PyResult<Py<PyAny>> {
    let op = match name {
        "relu" => UnaryOp::Relu,
        "sigmoid" => UnaryOp::Sigmoid,
        "tanh" => UnaryOp::Tanh,
        "leaky_relu" => UnaryOp::LeakyRelu(a),
        "elu" => UnaryOp::Elu { alpha: a, scale: b, input_scale: c },
        "gelu" => UnaryOp::Gelu,
        "gelu_tanh" => UnaryOp::GeluTanh,
        "silu" => UnaryOp::Silu,
        "softplus" => UnaryOp::Softplus { beta: a, threshold: b },
        "erf" => UnaryOp::Erf,
        "mish" => UnaryOp::Mish,
        "hardtanh" => UnaryOp::Hardtanh { min: a, max: b },
        "hardsigmoid" => UnaryOp::Hardsigmoid,
        "hardswish" => UnaryOp::Hardswish,
        "logsigmoid" => UnaryOp::LogSigmoid,
        "threshold" => UnaryOp::Threshold { threshold: a, value: b },
        "hardshrink" => UnaryOp::Hardshrink(a),
        "softshrink" => UnaryOp::Softshrink(a),
        _ => return Err(PyValueError::new_err(format!("unknown activation '{name}'"))),
    };
    let t = &input.get().t;
    if inplace {
        heavy(py, t.numel(), || {
            engine::autograd::record::inplace_direct(t, &[], |x| engine::ops::elementwise::unary_into(op, x, x), |x| f::unary(op, x))
        })?;
        return Ok(input.clone().into_any().unbind());
    }
    Ok(wrap(py, heavy(py, t.numel(), || f::unary(op, t))?)?.into_any())
}

/// `nn.functional.pad` in constant mode.
#[pyfunction]
#[pyo3(signature = (input, pad, value=None))]
pub fn _pad(py: Python<'_>, input: &Bound<'_, PyTensor>, pad: &Bound<'_, PyAny>, value: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyTensor>> {
    let pads = int_list(pad)?;
    let v = match value.filter(|v| !v.is_none()) {
        None => Scalar::Int(0),
        Some(v) => scalar_of(v).ok_or_else(|| PyTypeError::new_err("pad(): value must be a number"))?,
    };
    let t = &input.get().t;
    wrap(py, heavy(py, t.numel(), || f::pad(t, &pads, v))?)
}


/// `nn.functional.mse_loss`.
#[pyfunction]
#[pyo3(signature = (input, target, reduction="mean"))]
pub fn _mse_loss(py: Python<'_>, input: &Bound<'_, PyTensor>, target: &Bound<'_, PyTensor>, reduction: &str) -> PyResult<Py<PyTensor>> {
    let (x, t) = (input.get().t.clone(), target.get().t.clone());
    let r = guard(|| f::Reduction::parse(reduction))?;
    wrap(py, heavy(py, x.numel(), || f::mse_loss(&x, &t, r))?)
}

/// `nn.functional.nll_loss` for `(C)` and `(N, C)` inputs; with `logits`, the NLL of the
/// input's log-softmax (`cross_entropy` with class indices).
#[pyfunction]
#[pyo3(signature = (input, target, weight=None, ignore_index=-100, reduction="mean", logits=false))]
pub fn _nll_loss(
    py: Python<'_>,
    input: &Bound<'_, PyTensor>,
    target: &Bound<'_, PyTensor>,
    weight: Option<&Bound<'_, PyTensor>>,
    ignore_index: i64,
    reduction: &str,
    logits: bool,
) -> PyResult<Py<PyTensor>> {
    let (x, t) = (input.get().t.clone(), target.get().t.clone());
    let w = weight.map(|w| w.get().t.clone());
    let r = guard(|| f::Reduction::parse(reduction))?;
    let loss = if logits { f::cross_entropy } else { f::nll_loss };
    wrap(py, heavy(py, x.numel(), || loss(&x, &t, w.as_ref(), ignore_index, r))?)
}
