//! The `Tensor` class: attribute access, conversions, shape ops and indexing. Arithmetic and
//! math methods are generated from tables in `methods.rs`. Every method parses arguments and
//! calls one engine op; no numerics live here.

use engine::autograd::functions as f;
use engine::autograd::record;
use engine::ops::{cast, index, reduce};
use engine::{DType, Device, Scalar, Tensor};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

use crate::convert::{self, index_items, int_list, scalar_of, scalar_to_py, shape_args};
use crate::errors::{guard, heavy};
use crate::types::{dtype_obj, extract_device, extract_dtype, extract_memory_format, MemoryFormat, PyDType, PyDevice};

#[pyclass(name = "Tensor", module = "rustgrad", subclass, dict, weakref, frozen)]
pub struct PyTensor {
    pub t: Tensor,
}

pub fn wrap(py: Python<'_>, t: Tensor) -> PyResult<Py<PyTensor>> {
    Py::new(py, PyTensor { t })
}

pub fn wrap_tuple(py: Python<'_>, ts: Vec<Tensor>) -> PyResult<Py<PyTuple>> {
    let objs = ts.into_iter().map(|t| wrap(py, t)).collect::<PyResult<Vec<_>>>()?;
    Ok(PyTuple::new(py, objs)?.unbind())
}

/// A Python object registered by the package at import (`Size`, the `return_types`).
pub fn hook<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    crate::HOOKS
        .get(py)
        .and_then(|d| d.bind(py).get_item(name).ok().flatten())
        .ok_or_else(|| PyRuntimeError::new_err(format!("rustgrad._C: hook '{name}' is not registered")))
}

pub fn size_obj<'py>(py: Python<'py>, dims: &[usize]) -> PyResult<Bound<'py, PyAny>> {
    hook(py, "Size")?.call1((PyTuple::new(py, dims)?,))
}

/// Nested lists of Python scalars.
pub fn tolist(py: Python<'_>, t: &Tensor) -> PyResult<Py<PyAny>> {
    let shape = t.shape();
    let flat: Vec<Scalar> = engine::dispatch!(t.dtype(), T => t.to_vec::<T>().into_iter().map(|x| engine::dtype::Element::to_scalar(x)).collect());
    fn build(py: Python<'_>, shape: &[usize], flat: &[Scalar], pos: &mut usize) -> PyResult<Py<PyAny>> {
        if shape.is_empty() {
            let v = scalar_to_py(py, flat[*pos])?;
            *pos += 1;
            return Ok(v);
        }
        let items = (0..shape[0]).map(|_| build(py, &shape[1..], flat, pos)).collect::<PyResult<Vec<_>>>()?;
        Ok(PyList::new(py, items)?.into_any().unbind())
    }
    build(py, &shape, &flat, &mut 0)
}

/// `size(d)`/`stride(d)` of a 0-dim tensor.
fn no_dims_error(d: i64) -> PyErr {
    pyo3::exceptions::PyIndexError::new_err(format!("Dimension specified as {d} but tensor has no dimensions"))
}

pub fn opt_dims(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Vec<i64>>> {
    match obj {
        None => Ok(None),
        Some(o) if o.is_none() => Ok(None),
        Some(o) => int_list(o).map(Some),
    }
}

impl PyTensor {
    pub fn new_like(&self, py: Python<'_>, t: Tensor) -> PyResult<Py<PyTensor>> {
        wrap(py, t)
    }
}

/// Writes `result` into `dst` (the `out=` argument), resizing `dst` when its shape differs.
pub fn write_out(dst: &Tensor, result: &Tensor) -> PyResult<()> {
    if engine::autograd::is_grad_enabled() && (result.requires_grad() || dst.requires_grad()) {
        return Err(PyRuntimeError::new_err(
            "out=... arguments don't support automatic differentiation, but one of the arguments requires grad.",
        ));
    }
    if dst.shape() != result.shape() {
        let r = cast::to_dtype(result, dst.dtype());
        dst.set_view(cast::clone(&r).view());
        return Ok(());
    }
    guard(|| dst.copy_from(result))
}

/// The result of an op with an `out=` argument: written into `out` (returned), else wrapped.
pub fn finish(py: Python<'_>, r: Tensor, out: Option<&Bound<'_, PyTensor>>) -> PyResult<Py<PyAny>> {
    match out {
        Some(o) => {
            write_out(&o.get().t, &r)?;
            Ok(o.clone().into_any().unbind())
        }
        None => Ok(wrap(py, r)?.into_any()),
    }
}

#[pymethods]
impl PyTensor {
    /// `Tensor(data)`, `Tensor(*sizes)` (uninitialised float), or a subclass sharing `_shares`.
    #[new]
    #[pyo3(signature = (*args, _shares=None))]
    fn py_new(args: &Bound<'_, PyTuple>, _shares: Option<&Bound<'_, PyTensor>>) -> PyResult<Self> {
        if let Some(s) = _shares {
            let src = &s.get().t;
            return Ok(PyTensor { t: src.with_layout(src.layout()) });
        }
        let dt = engine::dtype::default_float();
        if args.is_empty() {
            return Ok(PyTensor { t: Tensor::zeros(&[0], dt) });
        }
        let first = args.get_item(0)?;
        if args.len() == 1 && !first.is_instance_of::<pyo3::types::PyInt>() {
            if let Ok(s) = first.cast::<PyTensor>() {
                return Ok(PyTensor { t: s.get().t.clone() });
            }
            return Ok(PyTensor { t: convert::tensor_from_data(&first, Some(dt))? });
        }
        let sizes = convert::sizes(&shape_args(args)?)?;
        Ok(PyTensor { t: Tensor::zeros(&sizes, dt) })
    }

    // ---- attributes ----
    #[getter]
    fn shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        size_obj(py, &self.t.shape())
    }
    #[getter]
    fn dtype(&self, py: Python<'_>) -> PyResult<Py<PyDType>> {
        dtype_obj(py, self.t.dtype())
    }
    #[getter]
    fn device(&self) -> PyDevice {
        PyDevice { d: self.t.device() }
    }
    #[getter]
    fn is_cuda(&self) -> bool {
        matches!(self.t.device(), Device::Cuda(_))
    }
    #[getter]
    fn ndim(&self) -> usize {
        self.t.ndim()
    }
    #[getter]
    fn itemsize(&self) -> usize {
        self.t.dtype().size()
    }
    #[getter]
    fn nbytes(&self) -> usize {
        self.t.dtype().size() * self.t.numel()
    }
    #[getter(T)]
    fn big_t(&self, py: Python<'_>) -> PyResult<Py<PyTensor>> {
        wrap(py, guard(|| f::reverse_dims(&self.t))?)
    }
    #[getter(mT)]
    fn m_t(&self, py: Python<'_>) -> PyResult<Py<PyTensor>> {
        if self.t.ndim() < 2 {
            return Err(PyRuntimeError::new_err("tensor.mT is only supported on matrices or batches of matrices. Got 1-D tensor."));
        }
        wrap(py, guard(|| f::transpose(&self.t, -2, -1))?)
    }
    /// `.data`: the same memory, detached from autograd.
    #[getter]
    fn get_data(&self, py: Python<'_>) -> PyResult<Py<PyTensor>> {
        wrap(py, record::detach(&self.t))
    }
    #[setter]
    fn set_data(&self, other: &Bound<'_, PyTensor>) {
        self.t.set_view(other.get().t.view());
    }
    #[getter]
    fn get_requires_grad(&self) -> bool {
        self.t.requires_grad()
    }
    #[setter]
    fn set_requires_grad(&self, on: bool) -> PyResult<()> {
        guard(|| record::set_requires_grad(&self.t, on))
    }
    #[pyo3(signature = (requires_grad=true))]
    fn requires_grad_(slf: &Bound<'_, Self>, requires_grad: bool) -> PyResult<Py<PyAny>> {
        slf.get().set_requires_grad(requires_grad)?;
        Ok(slf.clone().into_any().unbind())
    }

    #[pyo3(signature = (dim=None))]
    fn size<'py>(&self, py: Python<'py>, dim: Option<i64>) -> PyResult<Bound<'py, PyAny>> {
        let s = self.t.shape();
        match dim {
            None => size_obj(py, &s),
            Some(d) => {
                let i = guard(|| engine::layout::wrap_dim(d, s.len()))?;
                let size = s.get(i).ok_or_else(|| no_dims_error(d))?;
                Ok(size.into_pyobject(py)?.into_any())
            }
        }
    }
    fn dim(&self) -> usize {
        self.t.ndim()
    }
    fn ndimension(&self) -> usize {
        self.t.ndim()
    }
    fn numel(&self) -> usize {
        self.t.numel()
    }
    fn nelement(&self) -> usize {
        self.t.numel()
    }
    fn element_size(&self) -> usize {
        self.t.dtype().size()
    }
    #[pyo3(signature = (dim=None))]
    fn stride<'py>(&self, py: Python<'py>, dim: Option<i64>) -> PyResult<Bound<'py, PyAny>> {
        let l = self.t.layout();
        match dim {
            None => Ok(PyTuple::new(py, l.strides.iter().map(|&s| s as i64))?.into_any()),
            Some(d) => {
                let i = guard(|| engine::layout::wrap_dim(d, l.ndim()))?;
                let stride = l.strides.get(i).ok_or_else(|| no_dims_error(d))?;
                Ok((*stride as i64).into_pyobject(py)?.into_any())
            }
        }
    }
    fn storage_offset(&self) -> usize {
        self.t.layout().offset
    }
    fn data_ptr(&self) -> usize {
        self.t.data_ptr()
    }
    /// `(address, nbytes)` of the whole storage under this tensor: tensors sharing a storage
    /// share the address (serialization writes each storage once).
    fn _storage_meta(&self) -> (usize, usize) {
        let s = self.t.storage();
        (s.as_ptr() as usize, s.nbytes())
    }
    /// Version counter of the storage (bumped by in-place writes).
    #[getter]
    fn _version(&self) -> u64 {
        self.t.version()
    }
    #[pyo3(signature = (memory_format=None))]
    fn is_contiguous(&self, memory_format: Option<&Bound<'_, PyAny>>) -> PyResult<bool> {
        match memory_format.filter(|m| !m.is_none()) {
            None => Ok(self.t.is_contiguous()),
            m => Ok(extract_memory_format(m, MemoryFormat::Contiguous, "is_contiguous")?.holds(&self.t.layout())),
        }
    }
    fn is_floating_point(&self) -> bool {
        self.t.dtype().is_float()
    }
    fn is_complex(&self) -> bool {
        false
    }
    fn is_signed(&self) -> bool {
        self.t.dtype().is_signed()
    }
    fn item(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let s = self.t.item().map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
        scalar_to_py(py, s)
    }
    fn tolist(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        tolist(py, &self.t)
    }
    #[pyo3(signature = (*, force=false))]
    fn numpy<'py>(&self, py: Python<'py>, force: bool) -> PyResult<Bound<'py, PyAny>> {
        if self.t.requires_grad() && !force {
            return Err(PyRuntimeError::new_err(
                "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.",
            ));
        }
        if self.t.device() != Device::Cpu {
            return Err(PyTypeError::new_err(format!(
                "can't convert {} device type tensor to numpy. Use Tensor.cpu() to copy the tensor to host memory first.",
                self.t.device()
            )));
        }
        convert::to_numpy(py, &self.t)
    }
    fn __len__(&self) -> PyResult<usize> {
        let s = self.t.shape();
        s.first().copied().ok_or_else(|| PyTypeError::new_err("len() of a 0-d tensor"))
    }
    fn __bool__(&self) -> PyResult<bool> {
        if self.t.numel() != 1 {
            return Err(PyRuntimeError::new_err(format!(
                "Boolean value of Tensor with {} values is ambiguous",
                if self.t.numel() == 0 { "no".to_string() } else { "more than one".to_string() }
            )));
        }
        Ok(!guard(|| self.t.item())?.is_zero())
    }
    fn __float__(&self) -> PyResult<f64> {
        self.one_value("float").map(|s| s.as_f64())
    }
    fn __int__(&self) -> PyResult<i64> {
        self.one_value("int").map(|s| s.as_i64())
    }
    fn __index__(&self) -> PyResult<i64> {
        if self.t.dtype().is_float() || self.t.numel() != 1 {
            return Err(PyTypeError::new_err(
                "only integer tensors of a single element can be converted to an index",
            ));
        }
        self.one_value("index").map(|s| s.as_i64())
    }
    fn __hash__(slf: &Bound<'_, Self>) -> isize {
        slf.as_ptr() as isize
    }

    // ---- copies and conversions ----
    #[pyo3(signature = (memory_format=None))]
    fn contiguous(slf: &Bound<'_, Self>, py: Python<'_>, memory_format: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyAny>> {
        let t = &slf.get().t;
        let fmt = extract_memory_format(memory_format, MemoryFormat::Contiguous, "contiguous")?;
        if fmt.holds(&t.layout()) {
            return Ok(slf.clone().into_any().unbind());
        }
        let strides = fmt.strides(&t.shape(), None)?;
        Ok(wrap(py, heavy(py, t.numel(), || f::clone_strided(t, strides))?)?.into_any())
    }
    #[pyo3(signature = (*, memory_format=None))]
    fn clone(&self, py: Python<'_>, memory_format: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyTensor>> {
        let fmt = extract_memory_format(memory_format, MemoryFormat::Preserve, "clone")?;
        let strides = fmt.strides(&self.t.shape(), Some(&self.t.layout()))?;
        wrap(py, heavy(py, self.t.numel(), || f::clone_strided(&self.t, strides))?)
    }
    fn detach(&self, py: Python<'_>) -> PyResult<Py<PyTensor>> {
        wrap(py, record::detach(&self.t))
    }
    fn detach_(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        guard(|| record::detach_(&slf.get().t))?;
        Ok(slf.clone().into_any().unbind())
    }
    /// `to(dtype)`, `to(device, dtype=None)`, `to(other)`, keywords `dtype`, `device`, `copy`.
    #[pyo3(signature = (*args, dtype=None, device=None, copy=false, non_blocking=false, memory_format=None))]
    fn to(
        slf: &Bound<'_, Self>,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        dtype: Option<&Bound<'_, PyAny>>,
        device: Option<&Bound<'_, PyAny>>,
        copy: bool,
        non_blocking: bool,
        memory_format: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let _ = non_blocking;
        let fmt = extract_memory_format(memory_format, MemoryFormat::Preserve, "to")?;
        let t = &slf.get().t;
        let mut want_dt = dtype.map(extract_dtype).transpose()?;
        let mut want_dev = device.filter(|d| !d.is_none()).map(extract_device).transpose()?;
        for a in args.iter() {
            if let Ok(o) = a.cast::<PyTensor>() {
                want_dt = Some(o.get().t.dtype());
                want_dev = Some(o.get().t.device());
            } else if let Ok(d) = extract_dtype(&a) {
                want_dt = Some(d);
            } else if a.is_none() {
            } else {
                want_dev = Some(extract_device(&a)?);
            }
        }
        if let Some(d) = want_dev {
            if d != t.device() {
                guard(|| d.check_available())?;
            }
        }
        let dt = want_dt.unwrap_or(t.dtype());
        let in_format = fmt == MemoryFormat::Preserve || fmt.holds(&t.layout());
        if dt == t.dtype() && !copy && in_format {
            return Ok(slf.clone().into_any().unbind());
        }
        if in_format {
            return Ok(wrap(py, heavy(py, t.numel(), || f::to_copy(t, dt))?)?.into_any());
        }
        // Another memory format: the copy takes its strides (after the dtype change, if any).
        let strides = fmt.strides(&t.shape(), None)?;
        let out = if dt == t.dtype() { t.clone() } else { heavy(py, t.numel(), || f::to_copy(t, dt))? };
        Ok(wrap(py, heavy(py, t.numel(), || f::clone_strided(&out, strides))?)?.into_any())
    }
    fn cpu(slf: &Bound<'_, Self>) -> Py<PyAny> {
        slf.clone().into_any().unbind()
    }
    #[pyo3(signature = (device=None, non_blocking=false))]
    fn cuda(&self, device: Option<&Bound<'_, PyAny>>, non_blocking: bool) -> PyResult<Py<PyTensor>> {
        let _ = (device, non_blocking);
        guard(|| Device::Cuda(0).check_available())?;
        Err(PyRuntimeError::new_err("CUDA is not available"))
    }
    /// `type()` → 'rustgrad.FloatTensor'; `type(dtype)` → converted tensor.
    #[pyo3(signature = (dtype=None, non_blocking=false))]
    fn r#type(slf: &Bound<'_, Self>, py: Python<'_>, dtype: Option<&Bound<'_, PyAny>>, non_blocking: bool) -> PyResult<Py<PyAny>> {
        let _ = non_blocking;
        let t = &slf.get().t;
        let Some(d) = dtype else {
            return Ok(format!("rustgrad.{}", t.dtype().legacy_name()).into_pyobject(py)?.into_any().unbind());
        };
        let dt = if let Ok(s) = d.extract::<String>() {
            let name = s.trim_start_matches("rustgrad.").trim_start_matches("torch.");
            DType::ALL
                .into_iter()
                .find(|x| x.legacy_name() == name)
                .ok_or_else(|| PyValueError::new_err(format!("invalid type: '{s}'")))?
        } else {
            extract_dtype(d)?
        };
        if dt == t.dtype() {
            return Ok(slf.clone().into_any().unbind());
        }
        Ok(wrap(py, guard(|| f::to_dtype(t, dt))?)?.into_any())
    }
    fn type_as(slf: &Bound<'_, Self>, py: Python<'_>, other: &Bound<'_, PyTensor>) -> PyResult<Py<PyAny>> {
        let dt = other.get().t.dtype();
        if dt == slf.get().t.dtype() {
            return Ok(slf.clone().into_any().unbind());
        }
        Ok(wrap(py, guard(|| f::to_dtype(&slf.get().t, dt))?)?.into_any())
    }

    // ---- views and shape ops ----
    #[pyo3(signature = (*shape))]
    fn view(&self, py: Python<'_>, shape: &Bound<'_, PyTuple>) -> PyResult<Py<PyTensor>> {
        let s = shape_args(shape)?;
        wrap(py, guard(|| f::view(&self.t, &s))?)
    }
    #[pyo3(signature = (*shape))]
    fn reshape(&self, py: Python<'_>, shape: &Bound<'_, PyTuple>) -> PyResult<Py<PyTensor>> {
        let s = shape_args(shape)?;
        wrap(py, guard(|| f::reshape(&self.t, &s))?)
    }
    fn view_as(&self, py: Python<'_>, other: &Bound<'_, PyTensor>) -> PyResult<Py<PyTensor>> {
        let s: Vec<i64> = other.get().t.shape().iter().map(|&d| d as i64).collect();
        wrap(py, guard(|| f::view(&self.t, &s))?)
    }
    fn reshape_as(&self, py: Python<'_>, other: &Bound<'_, PyTensor>) -> PyResult<Py<PyTensor>> {
        let s: Vec<i64> = other.get().t.shape().iter().map(|&d| d as i64).collect();
        wrap(py, guard(|| f::reshape(&self.t, &s))?)
    }
    #[pyo3(signature = (start_dim=0, end_dim=-1))]
    fn flatten(&self, py: Python<'_>, start_dim: i64, end_dim: i64) -> PyResult<Py<PyTensor>> {
        wrap(py, guard(|| f::flatten(&self.t, start_dim, end_dim))?)
    }
    fn unflatten(&self, py: Python<'_>, dim: i64, sizes: &Bound<'_, PyAny>) -> PyResult<Py<PyTensor>> {
        let s = int_list(sizes)?;
        wrap(py, guard(|| f::unflatten(&self.t, dim, &s))?)
    }
    #[pyo3(signature = (dim=None))]
    fn squeeze(&self, py: Python<'_>, dim: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyTensor>> {
        let t = match opt_dims(dim)? {
            None => guard(|| f::squeeze_all(&self.t))?,
            Some(ds) => guard(|| f::squeeze_dims(&self.t, &ds))?,
        };
        wrap(py, t)
    }
    fn unsqueeze(&self, py: Python<'_>, dim: i64) -> PyResult<Py<PyTensor>> {
        wrap(py, guard(|| f::unsqueeze(&self.t, dim))?)
    }
    #[pyo3(signature = (dim=None))]
    fn squeeze_(slf: &Bound<'_, Self>, py: Python<'_>, dim: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyAny>> {
        let r = PyTensor::squeeze(slf.get(), py, dim)?;
        record::adopt(&slf.get().t, &r.get().t);
        Ok(slf.clone().into_any().unbind())
    }
    fn unsqueeze_(slf: &Bound<'_, Self>, dim: i64) -> PyResult<Py<PyAny>> {
        let t = &slf.get().t;
        record::adopt(t, &guard(|| f::unsqueeze(t, dim))?);
        Ok(slf.clone().into_any().unbind())
    }
    fn transpose(&self, py: Python<'_>, dim0: i64, dim1: i64) -> PyResult<Py<PyTensor>> {
        wrap(py, guard(|| f::transpose(&self.t, dim0, dim1))?)
    }
    fn swapaxes(&self, py: Python<'_>, axis0: i64, axis1: i64) -> PyResult<Py<PyTensor>> {
        self.transpose(py, axis0, axis1)
    }
    fn transpose_(slf: &Bound<'_, Self>, dim0: i64, dim1: i64) -> PyResult<Py<PyAny>> {
        let t = &slf.get().t;
        record::adopt(t, &guard(|| f::transpose(t, dim0, dim1))?);
        Ok(slf.clone().into_any().unbind())
    }
    fn t(&self, py: Python<'_>) -> PyResult<Py<PyTensor>> {
        wrap(py, guard(|| f::t2d(&self.t))?)
    }
    fn t_(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        let t = &slf.get().t;
        record::adopt(t, &guard(|| f::t2d(t))?);
        Ok(slf.clone().into_any().unbind())
    }
    #[pyo3(signature = (*dims))]
    fn permute(&self, py: Python<'_>, dims: &Bound<'_, PyTuple>) -> PyResult<Py<PyTensor>> {
        let d = shape_args(dims)?;
        wrap(py, guard(|| f::permute(&self.t, &d))?)
    }
    fn movedim(&self, py: Python<'_>, source: &Bound<'_, PyAny>, destination: &Bound<'_, PyAny>) -> PyResult<Py<PyTensor>> {
        let (s, d) = (int_list(source)?, int_list(destination)?);
        wrap(py, guard(|| f::movedim(&self.t, &s, &d))?)
    }
    fn moveaxis(&self, py: Python<'_>, source: &Bound<'_, PyAny>, destination: &Bound<'_, PyAny>) -> PyResult<Py<PyTensor>> {
        self.movedim(py, source, destination)
    }
    #[pyo3(signature = (*sizes))]
    fn expand(&self, py: Python<'_>, sizes: &Bound<'_, PyTuple>) -> PyResult<Py<PyTensor>> {
        let s = shape_args(sizes)?;
        wrap(py, guard(|| f::expand(&self.t, &s))?)
    }
    fn expand_as(&self, py: Python<'_>, other: &Bound<'_, PyTensor>) -> PyResult<Py<PyTensor>> {
        let s: Vec<i64> = other.get().t.shape().iter().map(|&d| d as i64).collect();
        wrap(py, guard(|| f::expand(&self.t, &s))?)
    }
    #[pyo3(signature = (size, stride, storage_offset=None))]
    fn as_strided(&self, py: Python<'_>, size: &Bound<'_, PyAny>, stride: &Bound<'_, PyAny>, storage_offset: Option<i64>) -> PyResult<Py<PyTensor>> {
        let (size, stride) = (crate::convert::int_list(size)?, crate::convert::int_list(stride)?);
        wrap(py, guard(|| f::as_strided(&self.t, &size, &stride, storage_offset))?)
    }
    fn narrow(&self, py: Python<'_>, dim: i64, start: i64, length: i64) -> PyResult<Py<PyTensor>> {
        wrap(py, guard(|| f::narrow(&self.t, dim, start, length))?)
    }
    fn select(&self, py: Python<'_>, dim: i64, index: i64) -> PyResult<Py<PyTensor>> {
        wrap(py, guard(|| f::select(&self.t, dim, index))?)
    }
    #[pyo3(signature = (dim=0))]
    fn unbind(&self, py: Python<'_>, dim: i64) -> PyResult<Py<PyTuple>> {
        wrap_tuple(py, guard(|| f::unbind(&self.t, dim))?)
    }
    #[pyo3(signature = (split_size_or_sections, dim=0))]
    fn split(&self, py: Python<'_>, split_size_or_sections: &Bound<'_, PyAny>, dim: i64) -> PyResult<Py<PyTuple>> {
        let parts = if let Ok(n) = split_size_or_sections.extract::<i64>() {
            guard(|| f::split(&self.t, n, dim))?
        } else {
            let sizes = int_list(split_size_or_sections)?;
            guard(|| f::split_sizes(&self.t, &sizes, dim))?
        };
        wrap_tuple(py, parts)
    }
    #[pyo3(signature = (chunks, dim=0))]
    fn chunk(&self, py: Python<'_>, chunks: i64, dim: i64) -> PyResult<Py<PyTuple>> {
        wrap_tuple(py, guard(|| f::chunk(&self.t, chunks, dim))?)
    }
    #[pyo3(signature = (*dims))]
    fn flip(&self, py: Python<'_>, dims: &Bound<'_, PyTuple>) -> PyResult<Py<PyTensor>> {
        let d = shape_args(dims)?;
        wrap(py, guard(|| f::flip(&self.t, &d))?)
    }
    #[pyo3(signature = (shifts, dims=None))]
    fn roll(&self, py: Python<'_>, shifts: &Bound<'_, PyAny>, dims: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyTensor>> {
        let s = int_list(shifts)?;
        let d = opt_dims(dims)?.unwrap_or_default();
        wrap(py, guard(|| f::roll(&self.t, &s, &d))?)
    }
    fn nonzero(&self, py: Python<'_>) -> PyResult<Py<PyTensor>> {
        wrap(py, guard(|| index::nonzero(&self.t))?)
    }

    // ---- indexing ----
    fn __getitem__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Py<PyTensor>> {
        let items = index_items(key)?;
        wrap(py, heavy(py, self.t.numel(), || f::index(&self.t, &items))?)
    }
    fn __setitem__(&self, key: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let items = index_items(key)?;
        let v = if let Ok(t) = value.cast::<PyTensor>() {
            t.get().t.clone()
        } else if let Some(s) = scalar_of(value) {
            Tensor::scalar(s, self.t.dtype())
        } else {
            convert::tensor_from_data(value, Some(self.t.dtype()))?
        };
        let t = &self.t;
        // Basic indexing with nothing recorded writes straight into the view (`copy_into` copies
        // an aliasing value first); the general path clones the whole tensor and copies it back.
        let direct = |x: &Tensor| {
            if !engine::ops::index::is_basic(&items) {
                return Ok(false);
            }
            engine::ops::index::set(x, &items, &v, false).map(|_| true)
        };
        guard(|| record::inplace_direct(t, &[Some(&v)], direct, |x| f::index_put(x, &items, &v, false)))
    }

    // ---- in-place writes ----
    #[pyo3(signature = (src, non_blocking=false))]
    fn copy_(slf: &Bound<'_, Self>, py: Python<'_>, src: &Bound<'_, PyAny>, non_blocking: bool) -> PyResult<Py<PyAny>> {
        let _ = non_blocking;
        let t = &slf.get().t;
        let s = match src.cast::<PyTensor>() {
            Ok(s) => s.get().t.clone(),
            Err(_) => convert::tensor_from_data(src, None)?,
        };
        heavy(py, t.numel(), || {
            let direct = |x: &Tensor| {
                cast::check_no_partial_overlap(&x.view(), &s.view())?;
                x.copy_from(&s).map(|_| true)
            };
            record::inplace_direct(t, &[Some(&s)], direct, |x| f::copied(x, &s))
        })?;
        Ok(slf.clone().into_any().unbind())
    }
    fn fill_(slf: &Bound<'_, Self>, value: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let t = &slf.get().t;
        match value.cast::<PyTensor>() {
            Ok(v) => {
                let v = &v.get().t;
                let direct = |x: &Tensor| if v.ndim() == 0 { x.copy_from(v).map(|_| true) } else { Ok(false) };
                guard(|| record::inplace_direct(t, &[Some(v)], direct, |x| f::filled(x, v.into(), "FillBackward1")))?
            }
            Err(_) => {
                let s = scalar_of(value).ok_or_else(|| PyTypeError::new_err("fill_(): argument 'value' must be Number"))?;
                let direct = |x: &Tensor| engine::ops::factory::fill(x, s).map(|_| true);
                guard(|| record::inplace_direct(t, &[], direct, |x| f::filled(x, s.into(), "FillBackward2")))?
            }
        }
        Ok(slf.clone().into_any().unbind())
    }
    fn zero_(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        let t = &slf.get().t;
        let direct = |x: &Tensor| engine::ops::factory::fill(x, Scalar::Int(0)).map(|_| true);
        guard(|| record::inplace_direct(t, &[], direct, |x| f::filled(x, Scalar::Int(0).into(), "ZeroBackward0")))?;
        Ok(slf.clone().into_any().unbind())
    }

    // ---- reductions ----
    #[pyo3(signature = (dim=None, keepdim=false, *, dtype=None, out=None))]
    fn sum(&self, py: Python<'_>, dim: Option<&Bound<'_, PyAny>>, keepdim: bool, dtype: Option<&Bound<'_, PyAny>>, out: Option<&Bound<'_, PyTensor>>) -> PyResult<Py<PyAny>> {
        let (d, dt) = (opt_dims(dim)?, dtype.map(extract_dtype).transpose()?);
        finish(py, heavy(py, self.t.numel(), || f::sum(&self.t, d.as_deref(), keepdim, dt))?, out)
    }
    #[pyo3(signature = (dim=None, keepdim=false, *, dtype=None, out=None))]
    fn mean(&self, py: Python<'_>, dim: Option<&Bound<'_, PyAny>>, keepdim: bool, dtype: Option<&Bound<'_, PyAny>>, out: Option<&Bound<'_, PyTensor>>) -> PyResult<Py<PyAny>> {
        let (d, dt) = (opt_dims(dim)?, dtype.map(extract_dtype).transpose()?);
        finish(py, heavy(py, self.t.numel(), || f::mean(&self.t, d.as_deref(), keepdim, dt))?, out)
    }
    #[pyo3(signature = (dim=None, keepdim=false, *, dtype=None, out=None))]
    fn prod(&self, py: Python<'_>, dim: Option<&Bound<'_, PyAny>>, keepdim: bool, dtype: Option<&Bound<'_, PyAny>>, out: Option<&Bound<'_, PyTensor>>) -> PyResult<Py<PyAny>> {
        let (d, dt) = (opt_dims(dim)?, dtype.map(extract_dtype).transpose()?);
        let d = match d.as_deref() {
            None | Some([]) => None,
            Some([one]) => Some(*one),
            Some(_) => return Err(PyTypeError::new_err("prod(): argument 'dim' must be int, not tuple")),
        };
        finish(py, heavy(py, self.t.numel(), || f::prod(&self.t, d, keepdim, dt))?, out)
    }
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn max(&self, py: Python<'_>, dim: Option<&Bound<'_, PyAny>>, keepdim: bool) -> PyResult<Py<PyAny>> {
        self.extreme(py, dim, keepdim, true)
    }
    #[pyo3(signature = (dim=None, keepdim=false))]
    fn min(&self, py: Python<'_>, dim: Option<&Bound<'_, PyAny>>, keepdim: bool) -> PyResult<Py<PyAny>> {
        self.extreme(py, dim, keepdim, false)
    }
    #[pyo3(signature = (dim=None, keepdim=false, *, out=None))]
    fn amax(&self, py: Python<'_>, dim: Option<&Bound<'_, PyAny>>, keepdim: bool, out: Option<&Bound<'_, PyTensor>>) -> PyResult<Py<PyAny>> {
        let d = opt_dims(dim)?;
        finish(py, heavy(py, self.t.numel(), || f::extreme(&self.t, d.as_deref(), keepdim, true, false))?, out)
    }
    #[pyo3(signature = (dim=None, keepdim=false, *, out=None))]
    fn amin(&self, py: Python<'_>, dim: Option<&Bound<'_, PyAny>>, keepdim: bool, out: Option<&Bound<'_, PyTensor>>) -> PyResult<Py<PyAny>> {
        let d = opt_dims(dim)?;
        finish(py, heavy(py, self.t.numel(), || f::extreme(&self.t, d.as_deref(), keepdim, false, false))?, out)
    }
    #[pyo3(signature = (dim=None, keepdim=false, *, out=None))]
    fn argmax(&self, py: Python<'_>, dim: Option<i64>, keepdim: bool, out: Option<&Bound<'_, PyTensor>>) -> PyResult<Py<PyAny>> {
        finish(py, guard(|| reduce::arg_extreme(&self.t, dim, keepdim, true))?, out)
    }
    #[pyo3(signature = (dim=None, keepdim=false, *, out=None))]
    fn argmin(&self, py: Python<'_>, dim: Option<i64>, keepdim: bool, out: Option<&Bound<'_, PyTensor>>) -> PyResult<Py<PyAny>> {
        finish(py, guard(|| reduce::arg_extreme(&self.t, dim, keepdim, false))?, out)
    }
    #[pyo3(signature = (dim=None, keepdim=false, *, out=None))]
    fn all(&self, py: Python<'_>, dim: Option<&Bound<'_, PyAny>>, keepdim: bool, out: Option<&Bound<'_, PyTensor>>) -> PyResult<Py<PyAny>> {
        let d = opt_dims(dim)?;
        finish(py, guard(|| reduce::all_any(&self.t, d.as_deref(), keepdim, true))?, out)
    }
    #[pyo3(signature = (dim=None, keepdim=false, *, out=None))]
    fn any(&self, py: Python<'_>, dim: Option<&Bound<'_, PyAny>>, keepdim: bool, out: Option<&Bound<'_, PyTensor>>) -> PyResult<Py<PyAny>> {
        let d = opt_dims(dim)?;
        finish(py, guard(|| reduce::all_any(&self.t, d.as_deref(), keepdim, false))?, out)
    }
    fn equal(&self, other: &Bound<'_, PyTensor>) -> PyResult<bool> {
        guard(|| reduce::equal(&self.t, &other.get().t))
    }
    #[pyo3(signature = (other, rtol=1e-5, atol=1e-8, equal_nan=false))]
    fn allclose(&self, other: &Bound<'_, PyTensor>, rtol: f64, atol: f64, equal_nan: bool) -> PyResult<bool> {
        guard(|| reduce::allclose(&self.t, &other.get().t, rtol, atol, equal_nan))
    }
}

impl PyTensor {
    fn one_value(&self, what: &str) -> PyResult<Scalar> {
        if self.t.numel() != 1 {
            return Err(PyRuntimeError::new_err(format!(
                "only one element tensors can be converted to Python scalars (converting to {what})"
            )));
        }
        guard(|| self.t.item())
    }

    /// `max()`, `max(dim)` → (values, indices), `max(other)` → elementwise maximum.
    fn extreme(&self, py: Python<'_>, dim: Option<&Bound<'_, PyAny>>, keepdim: bool, is_max: bool) -> PyResult<Py<PyAny>> {
        match dim {
            None => Ok(wrap(py, heavy(py, self.t.numel(), || f::extreme(&self.t, None, false, is_max, true))?)?.into_any()),
            Some(o) if o.cast::<PyTensor>().is_ok() => {
                let other = o.cast::<PyTensor>()?.get().t.clone();
                let op = if is_max { engine::ops::elementwise::BinaryOp::Maximum } else { engine::ops::elementwise::BinaryOp::Minimum };
                Ok(wrap(py, guard(|| f::binary(op, (&self.t).into(), (&other).into()))?)?.into_any())
            }
            Some(o) => {
                let d: i64 = o.extract()?;
                let (v, i) = heavy(py, self.t.numel(), || f::extreme_dim(&self.t, d, keepdim, is_max))?;
                let cls = hook(py, if is_max { "max" } else { "min" })?;
                Ok(cls.call1(((wrap(py, v)?, wrap(py, i)?),))?.unbind())
            }
        }
    }
}
