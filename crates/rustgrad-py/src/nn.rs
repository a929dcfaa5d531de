//! The engine's neural-network ops behind `rustgrad.nn.functional`: convolution, fold/unfold,
//! pooling and normalization. The Python wrappers normalise arguments (ints → pairs, 'same'
//! padding, 1-d forms); these functions only convert and call the engine.

use engine::autograd::nn::{self as n, ConvSpec, Pool2d};
use engine::ops::conv::Window2d;
use engine::Tensor;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use crate::errors::heavy;
use crate::tensor::{wrap, PyTensor};

type T<'a> = Bound<'a, PyTensor>;

fn t(b: &T<'_>) -> Tensor {
    b.get().t.clone()
}
fn opt(b: Option<&T<'_>>) -> Option<Tensor> {
    b.map(t)
}

/// A non-negative pair from Python (already normalised to two ints by the wrapper).
fn pair(v: (i64, i64), what: &str) -> PyResult<[usize; 2]> {
    if v.0 < 0 || v.1 < 0 {
        return Err(PyValueError::new_err(format!("{what} must be non-negative, got ({}, {})", v.0, v.1)));
    }
    Ok([v.0 as usize, v.1 as usize])
}

fn window(kernel: (i64, i64), dilation: (i64, i64), padding: (i64, i64), stride: (i64, i64)) -> PyResult<Window2d> {
    Ok(Window2d { kernel: pair(kernel, "kernel_size")?, dilation: pair(dilation, "dilation")?, padding: pair(padding, "padding")?, stride: pair(stride, "stride")? })
}

/// `conv1d`/`conv2d`/`conv_transpose2d` (`spatial` is 1 or 2; the kernel comes from the weight).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn _convolution(py: Python<'_>, input: &T<'_>, weight: &T<'_>, bias: Option<&T<'_>>, stride: (i64, i64), padding: (i64, i64), dilation: (i64, i64), transposed: bool, output_padding: (i64, i64), groups: i64, spatial: usize) -> PyResult<Py<PyTensor>> {
    let err = |m: String| Err(PyRuntimeError::new_err(m));
    if groups <= 0 {
        return err("non-positive groups is not supported".into());
    }
    if stride.0 <= 0 || stride.1 <= 0 {
        return err("non-positive stride is not supported".into());
    }
    if dilation.0 <= 0 || dilation.1 <= 0 {
        let d = if spatial == 1 { format!("[{}]", dilation.1) } else { format!("[{}, {}]", dilation.0, dilation.1) };
        return err(format!("dilation should be greater than zero, but got {d}"));
    }
    if padding.0 < 0 || padding.1 < 0 {
        return err("negative padding is not supported".into());
    }
    let spec = ConvSpec { win: window((1, 1), dilation, padding, stride)?, groups: groups as usize, transposed, output_padding: pair(output_padding, "output_padding")?, spatial };
    let (x, w, b) = (t(input), t(weight), opt(bias));
    let work = x.numel() * w.numel().max(1);
    wrap(py, heavy(py, work, || n::convolution(&x, &w, b.as_ref(), &spec))?)
}

/// `F.unfold` (4-D input).
#[pyfunction]
pub fn _unfold(py: Python<'_>, input: &T<'_>, kernel: (i64, i64), dilation: (i64, i64), padding: (i64, i64), stride: (i64, i64)) -> PyResult<Py<PyTensor>> {
    let (x, win) = (t(input), window(kernel, dilation, padding, stride)?);
    wrap(py, heavy(py, x.numel(), || n::unfold(&x, &win))?)
}

/// `F.fold` (3-D input).
#[pyfunction]
pub fn _fold(py: Python<'_>, input: &T<'_>, output_size: (i64, i64), kernel: (i64, i64), dilation: (i64, i64), padding: (i64, i64), stride: (i64, i64)) -> PyResult<Py<PyTensor>> {
    let (x, win, size) = (t(input), window(kernel, dilation, padding, stride)?, pair(output_size, "output_size")?);
    wrap(py, heavy(py, x.numel(), || n::fold(&x, size, &win))?)
}

/// `F.max_pool2d` with indices.
#[pyfunction]
pub fn _max_pool2d(py: Python<'_>, input: &T<'_>, kernel: (i64, i64), stride: (i64, i64), padding: (i64, i64), dilation: (i64, i64), ceil_mode: bool) -> PyResult<(Py<PyTensor>, Py<PyTensor>)> {
    let p = Pool2d { kernel: pair(kernel, "kernel_size")?, stride: pair(stride, "stride")?, padding: pair(padding, "padding")?, dilation: pair(dilation, "dilation")?, ceil_mode };
    let x = t(input);
    let (v, i) = heavy(py, x.numel(), || n::max_pool2d(&x, &p))?;
    Ok((wrap(py, v)?, wrap(py, i)?))
}

/// `F.avg_pool2d`.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn _avg_pool2d(py: Python<'_>, input: &T<'_>, kernel: (i64, i64), stride: (i64, i64), padding: (i64, i64), ceil_mode: bool, count_include_pad: bool, divisor_override: Option<i64>) -> PyResult<Py<PyTensor>> {
    let p = Pool2d { kernel: pair(kernel, "kernel_size")?, stride: pair(stride, "stride")?, padding: pair(padding, "padding")?, dilation: [1, 1], ceil_mode };
    let x = t(input);
    wrap(py, heavy(py, x.numel(), || n::avg_pool2d(&x, &p, count_include_pad, divisor_override))?)
}

/// `F.adaptive_avg_pool2d` / `F.adaptive_max_pool2d` (indices only for max).
#[pyfunction]
pub fn _adaptive_pool2d(py: Python<'_>, input: &T<'_>, output_size: (i64, i64), max: bool) -> PyResult<(Py<PyTensor>, Option<Py<PyTensor>>)> {
    if output_size.0 < 0 || output_size.1 < 0 {
        let op = if max { "adaptive_max_pool2d" } else { "adaptive_avg_pool2d" };
        return Err(PyRuntimeError::new_err(format!(
            "{op}: elements of output_size must be greater than or equal to 0 but received {{{}, {}}}",
            output_size.0, output_size.1
        )));
    }
    let (x, out) = (t(input), pair(output_size, "output_size")?);
    let (v, i) = heavy(py, x.numel(), || n::adaptive_pool2d(&x, out, max))?;
    Ok((wrap(py, v)?, i.map(|i| wrap(py, i)).transpose()?))
}

/// `F.batch_norm` (updates the running buffers in place when training).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn _batch_norm(py: Python<'_>, input: &T<'_>, running_mean: Option<&T<'_>>, running_var: Option<&T<'_>>, weight: Option<&T<'_>>, bias: Option<&T<'_>>, training: bool, momentum: f64, eps: f64) -> PyResult<Py<PyTensor>> {
    let (x, rm, rv, w, b) = (t(input), opt(running_mean), opt(running_var), opt(weight), opt(bias));
    let running = rm.as_ref().zip(rv.as_ref());
    wrap(py, heavy(py, x.numel(), || n::batch_norm(&x, running, w.as_ref(), b.as_ref(), training, momentum, eps))?)
}

/// `F.layer_norm`.
#[pyfunction]
pub fn _layer_norm(py: Python<'_>, input: &T<'_>, normalized_shape: Vec<i64>, weight: Option<&T<'_>>, bias: Option<&T<'_>>, eps: f64) -> PyResult<Py<PyTensor>> {
    let (x, w, b) = (t(input), opt(weight), opt(bias));
    let shape: Vec<usize> = normalized_shape.iter().map(|&d| d.max(0) as usize).collect();
    wrap(py, heavy(py, x.numel(), || n::layer_norm(&x, &shape, w.as_ref(), b.as_ref(), eps))?)
}

/// `F.group_norm`.
#[pyfunction]
pub fn _group_norm(py: Python<'_>, input: &T<'_>, num_groups: i64, weight: Option<&T<'_>>, bias: Option<&T<'_>>, eps: f64) -> PyResult<Py<PyTensor>> {
    let (x, w, b) = (t(input), opt(weight), opt(bias));
    wrap(py, heavy(py, x.numel(), || n::group_norm(&x, num_groups.max(0) as usize, w.as_ref(), b.as_ref(), eps))?)
}
