//! Module-level functions: factories, random draws, joins, promotion queries, threads.

use engine::dtype::{default_float, promote_types, result_type, set_default_float, Operand as DOperand};
use engine::ops::random::{self, SharedGenerator};
use engine::ops::{cast, factory, shape};
use engine::{DType, Device, Scalar, Tensor};
use numpy::PyUntypedArray;
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::convert::{self, scalar_of, shape_args, sizes};
use crate::errors::{guard, heavy};
use crate::tensor::{wrap, write_out, PyTensor};
use crate::types::{dtype_obj, extract_device, extract_dtype, extract_memory_format, MemoryFormat, PyDType, PyGenerator};

/// Common keyword handling of factories: dtype, device (must be available), requires_grad.
fn finish(py: Python<'_>, t: Tensor, device: Option<&Bound<'_, PyAny>>, requires_grad: bool) -> PyResult<Py<PyTensor>> {
    if let Some(d) = device.filter(|d| !d.is_none()) {
        let dev = extract_device(d)?;
        if dev != Device::Cpu {
            guard(|| dev.check_available())?;
        }
    }
    if requires_grad {
        guard(|| engine::autograd::record::set_requires_grad(&t, true))?;
    }
    wrap(py, t)
}

fn dtype_or(dtype: Option<&Bound<'_, PyAny>>, default: DType) -> PyResult<DType> {
    match dtype {
        Some(d) if !d.is_none() => extract_dtype(d),
        _ => Ok(default),
    }
}

fn gen_of(generator: Option<&Bound<'_, PyGenerator>>) -> SharedGenerator {
    generator.map(|g| g.borrow().g.clone()).unwrap_or_else(random::default_generator)
}

#[pyfunction]
#[pyo3(signature = (data, *, dtype=None, device=None, requires_grad=false, pin_memory=false))]
pub fn tensor(py: Python<'_>, data: &Bound<'_, PyAny>, dtype: Option<&Bound<'_, PyAny>>, device: Option<&Bound<'_, PyAny>>, requires_grad: bool, pin_memory: bool) -> PyResult<Py<PyTensor>> {
    let _ = pin_memory;
    let dt = match dtype {
        Some(d) if !d.is_none() => Some(extract_dtype(d)?),
        _ => None,
    };
    finish(py, convert::tensor_from_data(data, dt)?, device, requires_grad)
}

/// `as_tensor`: shares memory with tensors and NumPy arrays when no conversion is needed.
#[pyfunction]
#[pyo3(signature = (data, dtype=None, device=None))]
pub fn as_tensor(py: Python<'_>, data: &Bound<'_, PyAny>, dtype: Option<&Bound<'_, PyAny>>, device: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyAny>> {
    let dt = match dtype {
        Some(d) if !d.is_none() => Some(extract_dtype(d)?),
        _ => None,
    };
    if let Ok(t) = data.cast::<PyTensor>() {
        match dt {
            Some(d) if d != t.get().t.dtype() => return Ok(finish(py, cast::to_dtype(&t.get().t, d), device, false)?.into_any()),
            _ => return Ok(t.clone().into_any().unbind()),
        }
    }
    if let Ok(a) = data.cast::<PyUntypedArray>() {
        let t = convert::from_numpy(a)?;
        let t = match dt {
            Some(d) => cast::to_dtype(&t, d),
            None => t,
        };
        return Ok(finish(py, t, device, false)?.into_any());
    }
    Ok(finish(py, convert::tensor_from_data(data, dt)?, device, false)?.into_any())
}

#[pyfunction]
pub fn from_numpy(py: Python<'_>, ndarray: &Bound<'_, PyAny>) -> PyResult<Py<PyTensor>> {
    let a = ndarray.cast::<PyUntypedArray>().map_err(|_| {
        PyTypeError::new_err(format!("expected np.ndarray (got {})", convert::type_name(ndarray)))
    })?;
    wrap(py, convert::from_numpy(a)?)
}

macro_rules! sized_factory {
    ($($name:ident => $make:expr;)*) => {$(
        #[pyfunction]
        #[pyo3(signature = (*size, out=None, dtype=None, layout=None, device=None, requires_grad=false, pin_memory=false, memory_format=None))]
        #[allow(clippy::too_many_arguments)]
        pub fn $name(py: Python<'_>, size: &Bound<'_, PyTuple>, out: Option<&Bound<'_, PyTensor>>, dtype: Option<&Bound<'_, PyAny>>, layout: Option<&Bound<'_, PyAny>>,
                     device: Option<&Bound<'_, PyAny>>, requires_grad: bool, pin_memory: bool, memory_format: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyTensor>> {
            let _ = (layout, pin_memory);
            let s = sizes(&shape_args(size)?)?;
            let dt = dtype_or(dtype, default_float())?;
            let fmt = extract_memory_format(memory_format, MemoryFormat::Contiguous, stringify!($name))?;
            if fmt == MemoryFormat::Preserve {
                return Err(PyRuntimeError::new_err("unsupported memory format Preserve"));
            }
            let make = $make;
            let mut t: Tensor = guard(|| make(&s, dt))?;
            if let Some(st) = fmt.strides(&s, None)? {
                // Every element holds the same value, so any dense order of the dims reads alike.
                let mut l = t.layout();
                l.strides = st;
                t = t.with_layout(l);
            }
            if let Some(o) = out {
                write_out(&o.get().t, &t)?;
                return Ok(o.clone().unbind());
            }
            finish(py, t, device, requires_grad)
        }
    )*};
}

sized_factory! {
    zeros => |s: &[usize], dt| Ok(Tensor::zeros(s, dt));
    ones => |s: &[usize], dt| factory::full(s, Scalar::Int(1), dt);
    empty => |s: &[usize], dt| Ok(Tensor::zeros(s, dt));
}

/// `empty_strided(size, stride)`: zeroed storage just large enough for the layout.
#[pyfunction]
#[pyo3(signature = (size, stride, *, dtype=None, layout=None, device=None, requires_grad=false, pin_memory=false))]
#[allow(clippy::too_many_arguments)]
pub fn empty_strided(py: Python<'_>, size: &Bound<'_, PyAny>, stride: &Bound<'_, PyAny>, dtype: Option<&Bound<'_, PyAny>>, layout: Option<&Bound<'_, PyAny>>, device: Option<&Bound<'_, PyAny>>, requires_grad: bool, pin_memory: bool) -> PyResult<Py<PyTensor>> {
    let _ = (layout, pin_memory);
    let (s, st) = (sizes(&convert::int_list(size)?)?, convert::int_list(stride)?);
    let dt = dtype_or(dtype, default_float())?;
    finish(py, guard(|| factory::empty_strided(&s, &st, dt))?, device, requires_grad)
}

/// The zeroed tensor behind the `*_like` factories (zeros, as `empty`): `input`'s shape, laid out by
/// `memory_format` (`preserve_format` by default: `input`'s own dense strides).
#[pyfunction]
#[pyo3(signature = (input, dtype=None, memory_format=None))]
pub fn _empty_like(py: Python<'_>, input: &Bound<'_, PyTensor>, dtype: Option<&Bound<'_, PyAny>>, memory_format: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyTensor>> {
    let t = &input.get().t;
    let layout = t.layout();
    let dt = dtype_or(dtype, t.dtype())?;
    let strides = extract_memory_format(memory_format, MemoryFormat::Preserve, "empty_like")?.strides(&layout.shape, Some(&layout))?;
    wrap(py, factory::zeros_strided(&layout.shape, strides, dt))
}

/// `full(size, fill_value)`: dtype follows the fill value when not given.
#[pyfunction]
#[pyo3(signature = (size, fill_value, *, dtype=None, device=None, requires_grad=false, layout=None, pin_memory=false))]
#[allow(clippy::too_many_arguments)]
pub fn full(py: Python<'_>, size: &Bound<'_, PyAny>, fill_value: &Bound<'_, PyAny>, dtype: Option<&Bound<'_, PyAny>>, device: Option<&Bound<'_, PyAny>>, requires_grad: bool, layout: Option<&Bound<'_, PyAny>>, pin_memory: bool) -> PyResult<Py<PyTensor>> {
    let _ = (layout, pin_memory);
    let s = sizes(&convert::int_list(size)?)?;
    let v = match fill_value.cast::<PyTensor>() {
        Ok(t) => guard(|| t.get().t.item())?,
        Err(_) => scalar_of(fill_value).ok_or_else(|| PyTypeError::new_err("full(): fill_value must be a number"))?,
    };
    let dt = dtype_or(dtype, v.default_dtype(default_float()))?;
    finish(py, guard(|| factory::full(&s, v, dt))?, device, requires_grad)
}

#[pyfunction]
#[pyo3(signature = (n, m=None, *, dtype=None, device=None, requires_grad=false))]
pub fn eye(py: Python<'_>, n: i64, m: Option<i64>, dtype: Option<&Bound<'_, PyAny>>, device: Option<&Bound<'_, PyAny>>, requires_grad: bool) -> PyResult<Py<PyTensor>> {
    let m = m.unwrap_or(n);
    if n < 0 || m < 0 {
        return Err(PyRuntimeError::new_err(format!("n must be greater or equal to 0, got {}", n.min(m))));
    }
    let dt = dtype_or(dtype, default_float())?;
    finish(py, guard(|| factory::eye(n as usize, m as usize, dt))?, device, requires_grad)
}

fn number(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Scalar> {
    if let Ok(t) = obj.cast::<PyTensor>() {
        return guard(|| t.get().t.item());
    }
    scalar_of(obj).ok_or_else(|| PyTypeError::new_err(format!("{what} must be a number, not {}", convert::type_name(obj))))
}

/// `arange(end)`, `arange(start, end, step=1)`; int arguments give int64, any float the default float.
#[pyfunction]
#[pyo3(signature = (start, end=None, step=None, *, dtype=None, device=None, requires_grad=false, out=None))]
#[allow(clippy::too_many_arguments)]
pub fn arange(py: Python<'_>, start: &Bound<'_, PyAny>, end: Option<&Bound<'_, PyAny>>, step: Option<&Bound<'_, PyAny>>, dtype: Option<&Bound<'_, PyAny>>, device: Option<&Bound<'_, PyAny>>, requires_grad: bool, out: Option<&Bound<'_, PyTensor>>) -> PyResult<Py<PyTensor>> {
    let (s, e) = match end {
        Some(e) if !e.is_none() => (number(start, "start")?, number(e, "end")?),
        _ => (Scalar::Int(0), number(start, "end")?),
    };
    let st = match step {
        Some(x) if !x.is_none() => number(x, "step")?,
        _ => Scalar::Int(1),
    };
    let any_float = [s, e, st].iter().any(|x| matches!(x, Scalar::Float(_)));
    let dt = dtype_or(dtype, if any_float { default_float() } else { DType::I64 })?;
    let t = guard(|| factory::arange(s, e, st, dt))?;
    if let Some(o) = out {
        write_out(&o.get().t, &t)?;
        return Ok(o.clone().unbind());
    }
    finish(py, t, device, requires_grad)
}

#[pyfunction]
#[pyo3(signature = (start, end, steps, *, dtype=None, device=None, requires_grad=false))]
pub fn linspace(py: Python<'_>, start: &Bound<'_, PyAny>, end: &Bound<'_, PyAny>, steps: i64, dtype: Option<&Bound<'_, PyAny>>, device: Option<&Bound<'_, PyAny>>, requires_grad: bool) -> PyResult<Py<PyTensor>> {
    let (s, e) = (number(start, "start")?.as_f64(), number(end, "end")?.as_f64());
    let dt = dtype_or(dtype, default_float())?;
    finish(py, guard(|| factory::linspace(s, e, steps, dt))?, device, requires_grad)
}

macro_rules! random_factory {
    ($($name:ident => $draw:path;)*) => {$(
        #[pyfunction]
        #[pyo3(signature = (*size, generator=None, out=None, dtype=None, layout=None, device=None, requires_grad=false, pin_memory=false))]
        #[allow(clippy::too_many_arguments)]
        pub fn $name(py: Python<'_>, size: &Bound<'_, PyTuple>, generator: Option<&Bound<'_, PyGenerator>>, out: Option<&Bound<'_, PyTensor>>, dtype: Option<&Bound<'_, PyAny>>,
                     layout: Option<&Bound<'_, PyAny>>, device: Option<&Bound<'_, PyAny>>, requires_grad: bool, pin_memory: bool) -> PyResult<Py<PyTensor>> {
            let _ = (layout, pin_memory);
            let s = sizes(&shape_args(size)?)?;
            let dt = dtype_or(dtype, default_float())?;
            let g = gen_of(generator);
            let t = heavy(py, s.iter().product(), || $draw(&s, dt, &g))?;
            if let Some(o) = out {
                write_out(&o.get().t, &t)?;
                return Ok(o.clone().unbind());
            }
            finish(py, t, device, requires_grad)
        }
    )*};
}

random_factory! {
    rand => random::rand;
    randn => random::randn;
}

/// `randint(high, size)` or `randint(low, high, size)`.
#[pyfunction]
#[pyo3(signature = (*args, size=None, generator=None, dtype=None, device=None, requires_grad=false))]
pub fn randint(py: Python<'_>, args: &Bound<'_, PyTuple>, size: Option<&Bound<'_, PyAny>>, generator: Option<&Bound<'_, PyGenerator>>, dtype: Option<&Bound<'_, PyAny>>, device: Option<&Bound<'_, PyAny>>, requires_grad: bool) -> PyResult<Py<PyTensor>> {
    let mut nums = Vec::new();
    let mut shape_obj = size.cloned();
    for a in args.iter() {
        if a.is_instance_of::<pyo3::types::PyInt>() {
            nums.push(a.extract::<i64>()?);
        } else {
            shape_obj = Some(a);
        }
    }
    let (low, high) = match nums.as_slice() {
        [h] => (0, *h),
        [l, h] => (*l, *h),
        _ => return Err(PyTypeError::new_err("randint() expects (high, size) or (low, high, size)")),
    };
    let shape_obj = shape_obj.ok_or_else(|| PyTypeError::new_err("randint() missing required argument 'size'"))?;
    let s = sizes(&convert::int_list(&shape_obj)?)?;
    let dt = dtype_or(dtype, DType::I64)?;
    let g = gen_of(generator);
    finish(py, guard(|| random::randint(low, high, &s, dt, &g))?, device, requires_grad)
}

#[pyfunction]
#[pyo3(signature = (n, *, generator=None, dtype=None, device=None, requires_grad=false))]
pub fn randperm(py: Python<'_>, n: i64, generator: Option<&Bound<'_, PyGenerator>>, dtype: Option<&Bound<'_, PyAny>>, device: Option<&Bound<'_, PyAny>>, requires_grad: bool) -> PyResult<Py<PyTensor>> {
    if n < 0 {
        return Err(PyRuntimeError::new_err(format!("n must be non-negative, got{n}")));
    }
    let dt = dtype_or(dtype, DType::I64)?;
    let g = gen_of(generator);
    finish(py, guard(|| random::randperm(n as usize, dt, &g))?, device, requires_grad)
}

/// In-place draws used by `nn.init` and `Tensor.uniform_`/`normal_`.
#[pyfunction]
#[pyo3(signature = (t, low=0.0, high=1.0, generator=None))]
pub fn _uniform_(t: &Bound<'_, PyTensor>, low: f64, high: f64, generator: Option<&Bound<'_, PyGenerator>>) -> PyResult<()> {
    guard(|| random::uniform_(&t.get().t, low, high, &gen_of(generator)))
}

#[pyfunction]
#[pyo3(signature = (t, mean=0.0, std=1.0, generator=None))]
pub fn _normal_(t: &Bound<'_, PyTensor>, mean: f64, std: f64, generator: Option<&Bound<'_, PyGenerator>>) -> PyResult<()> {
    guard(|| random::normal_(&t.get().t, mean, std, &gen_of(generator)))
}

#[pyfunction]
pub fn manual_seed(seed: i128) -> PyResult<()> {
    random::default_generator().lock().manual_seed(seed as u64);
    Ok(())
}

#[pyfunction]
pub fn initial_seed() -> u64 {
    random::default_generator().lock().initial_seed()
}

#[pyfunction]
pub fn seed() -> u64 {
    let s = crate::types::fresh_seed();
    random::default_generator().lock().manual_seed(s);
    s
}

/// The default generator as a `Generator` object sharing its state.
#[pyfunction]
pub fn _default_generator() -> PyGenerator {
    PyGenerator { g: random::default_generator() }
}

fn tensor_list(seq: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<Tensor>> {
    let mut out = Vec::new();
    for item in seq.try_iter()? {
        let item = item?;
        let t = item.cast::<PyTensor>().map_err(|_| {
            PyTypeError::new_err(format!("{what}(): expected a sequence of Tensors, but got an element of type {}", convert::type_name(&item)))
        })?;
        out.push(t.get().t.clone());
    }
    Ok(out)
}

/// `cat` and `stack` share argument handling: a sequence of tensors, a dim, `out=`.
fn join(py: Python<'_>, tensors: &Bound<'_, PyAny>, dim: i64, out: Option<&Bound<'_, PyTensor>>, name: &str, f: fn(&[Tensor], i64) -> engine::Result<Tensor>) -> PyResult<Py<PyTensor>> {
    let ts = tensor_list(tensors, name)?;
    let work = ts.iter().map(|t| t.numel()).sum();
    let r = heavy(py, work, || f(&ts, dim))?;
    if let Some(o) = out {
        write_out(&o.get().t, &r)?;
        return Ok(o.clone().unbind());
    }
    wrap(py, r)
}

#[pyfunction]
#[pyo3(signature = (tensors, dim=0, *, out=None))]
pub fn cat(py: Python<'_>, tensors: &Bound<'_, PyAny>, dim: i64, out: Option<&Bound<'_, PyTensor>>) -> PyResult<Py<PyTensor>> {
    join(py, tensors, dim, out, "cat", engine::autograd::functions::cat)
}

#[pyfunction]
#[pyo3(signature = (tensors, dim=0, *, out=None))]
pub fn stack(py: Python<'_>, tensors: &Bound<'_, PyAny>, dim: i64, out: Option<&Bound<'_, PyTensor>>) -> PyResult<Py<PyTensor>> {
    join(py, tensors, dim, out, "stack", engine::autograd::functions::stack)
}

/// `where(condition, input, other)`; `where(condition)` is `nonzero(as_tuple=True)`.
#[pyfunction]
#[pyo3(name = "where", signature = (condition, input=None, other=None, *, out=None))]
pub fn where_fn(py: Python<'_>, condition: &Bound<'_, PyTensor>, input: Option<&Bound<'_, PyAny>>, other: Option<&Bound<'_, PyAny>>, out: Option<&Bound<'_, PyTensor>>) -> PyResult<Py<PyAny>> {
    let c = &condition.get().t;
    match (input, other) {
        (Some(a), Some(b)) => {
            let a = convert::operand_required(a, "where")?;
            let b = convert::operand_required(b, "where")?;
            crate::tensor::finish(py, guard(|| engine::autograd::functions::where_(c, a.input(), b.input()))?, out)
        }
        (None, None) => {
            let nz = guard(|| engine::ops::index::nonzero(c))?;
            let cols = guard(|| shape::unbind(&nz, 1))?;
            Ok(crate::tensor::wrap_tuple(py, cols)?.into_any())
        }
        _ => Err(PyTypeError::new_err("where() expects either 1 or 3 arguments")),
    }
}

fn promotion_operand(obj: &Bound<'_, PyAny>) -> PyResult<DOperand> {
    if let Ok(t) = obj.cast::<PyTensor>() {
        let t = &t.get().t;
        return Ok(if t.ndim() == 0 { DOperand::ZeroDim(t.dtype()) } else { DOperand::Tensor(t.dtype()) });
    }
    scalar_of(obj)
        .map(DOperand::Number)
        .ok_or_else(|| PyTypeError::new_err(format!("result_type(): expected a Tensor or Number, got {}", convert::type_name(obj))))
}

#[pyfunction]
pub fn result_type_fn(py: Python<'_>, tensor: &Bound<'_, PyAny>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyDType>> {
    let ops = [promotion_operand(tensor)?, promotion_operand(other)?];
    dtype_obj(py, result_type(&ops, default_float()))
}

#[pyfunction]
pub fn promote_types_fn(py: Python<'_>, type1: &Bound<'_, PyAny>, type2: &Bound<'_, PyAny>) -> PyResult<Py<PyDType>> {
    dtype_obj(py, promote_types(extract_dtype(type1)?, extract_dtype(type2)?))
}

#[pyfunction]
pub fn get_default_dtype(py: Python<'_>) -> PyResult<Py<PyDType>> {
    dtype_obj(py, default_float())
}

#[pyfunction]
pub fn set_default_dtype(d: &Bound<'_, PyAny>) -> PyResult<()> {
    let dt = extract_dtype(d)?;
    if !set_default_float(dt) {
        return Err(PyTypeError::new_err(format!(
            "only floating-point types are supported as the default type, got rustgrad.{}",
            dt.name()
        )));
    }
    Ok(())
}

/// Called in a forked child (registered with `os.register_at_fork`): drops the parent's thread
/// pool without waiting on threads that do not exist in the child.
#[pyfunction]
pub fn _after_fork_in_child() {
    engine::parallel::forget_pool_after_fork();
}

#[pyfunction]
pub fn set_num_threads(n: i64) -> PyResult<()> {
    if n <= 0 {
        return Err(PyValueError::new_err("set_num_threads expects a positive integer"));
    }
    engine::parallel::set_num_threads(n as usize);
    Ok(())
}

/// GFLOP/s of an FP32 FMA loop on `threads` threads (the machine peak GEMM is measured against).
#[pyfunction]
pub fn _fma_peak_gflops(py: Python<'_>, threads: usize) -> f64 {
    py.detach(|| engine::kernels::peak::fma_peak_gflops(threads))
}

#[pyfunction]
pub fn get_num_threads() -> usize {
    engine::parallel::num_threads()
}

#[pyfunction]
pub fn _register_hook(py: Python<'_>, name: &str, obj: &Bound<'_, PyAny>) -> PyResult<()> {
    let d = crate::HOOKS.get_or_init(py, || PyDict::new(py).unbind());
    d.bind(py).set_item(name, obj)
}

#[pyfunction]
pub fn _dtype_from_name(py: Python<'_>, name: &str) -> PyResult<Py<PyDType>> {
    DType::from_name(name)
        .ok_or_else(|| PyValueError::new_err(format!("unknown dtype '{name}'")))
        .and_then(|d| dtype_obj(py, d))
}

/// Panics inside the engine guard: lets the test suite check that a Rust panic reaches
/// Python as RuntimeError rather than aborting the interpreter.
#[pyfunction]
pub fn _panic_in_engine_for_test() -> PyResult<()> {
    guard(|| -> engine::Result<()> { panic!("deliberate test panic") })
}
