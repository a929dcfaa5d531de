//! Python values → engine arguments: numbers, shapes, index expressions, nested lists and
//! NumPy arrays (zero-copy both ways), and engine values back to Python objects.

use std::sync::Arc;

use engine::dtype::default_float;
use engine::layout::Layout;
use engine::ops::index::IndexItem;
use engine::storage::Storage;
use engine::{DType, Scalar, Tensor};
use numpy::npyffi::{self, npy_intp, NPY_ARRAY_WRITEABLE, PY_ARRAY_API};
use numpy::{PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyIndexError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyEllipsis, PyFloat, PyInt, PyList, PySequence, PySlice, PyTuple};

use crate::tensor::PyTensor;

/// A Python bool/int/float (or NumPy scalar) as an engine scalar.
pub fn scalar_of(obj: &Bound<'_, PyAny>) -> Option<Scalar> {
    if obj.is_instance_of::<PyBool>() {
        return obj.extract::<bool>().ok().map(Scalar::Bool);
    }
    if obj.is_instance_of::<PyInt>() {
        return obj.extract::<i64>().ok().map(Scalar::Int);
    }
    if obj.is_instance_of::<PyFloat>() {
        return obj.extract::<f64>().ok().map(Scalar::Float);
    }
    numpy_scalar(obj)
}

/// NumPy scalars (np.float32(1), np.int64(2), np.bool_(True)) by their dtype kind.
fn numpy_scalar(obj: &Bound<'_, PyAny>) -> Option<Scalar> {
    let ty = obj.get_type();
    let module = ty.module().ok()?.to_string();
    if module != "numpy" {
        return None;
    }
    let kind: String = obj.getattr("dtype").ok()?.getattr("kind").ok()?.extract().ok()?;
    match kind.as_str() {
        "b" => obj.extract::<bool>().ok().map(Scalar::Bool),
        "i" | "u" => obj.call_method0("__int__").ok()?.extract::<i64>().ok().map(Scalar::Int),
        "f" => obj.call_method0("__float__").ok()?.extract::<f64>().ok().map(Scalar::Float),
        _ => None,
    }
}

pub fn scalar_to_py(py: Python<'_>, s: Scalar) -> PyResult<Py<PyAny>> {
    Ok(match s {
        Scalar::Bool(b) => PyBool::new(py, b).to_owned().into_any().unbind(),
        Scalar::Int(i) => i.into_pyobject(py)?.into_any().unbind(),
        Scalar::Float(f) => f.into_pyobject(py)?.into_any().unbind(),
    })
}

/// Sizes given as `f(2, 3)`, `f((2, 3))`, `f([2, 3])` or `f(Size)`.
pub fn shape_args(args: &Bound<'_, PyTuple>) -> PyResult<Vec<i64>> {
    if args.len() == 1 {
        let a = args.get_item(0)?;
        if !a.is_instance_of::<PyInt>() {
            return int_list(&a);
        }
    }
    int_list(args.as_any())
}

/// A sequence of ints (a lone int becomes a one-element list).
pub fn int_list(obj: &Bound<'_, PyAny>) -> PyResult<Vec<i64>> {
    if let Ok(i) = obj.extract::<i64>() {
        if !obj.is_instance_of::<PyBool>() {
            return Ok(vec![i]);
        }
    }
    if let Ok(t) = obj.cast::<PyTensor>() {
        return Ok(t.get().t.to_vec::<i64>());
    }
    let seq = obj.cast::<PySequence>().map_err(|_| {
        PyTypeError::new_err(format!("expected a sequence of integers, but got {}", type_name(obj)))
    })?;
    let mut out = Vec::with_capacity(seq.len()?);
    for item in seq.try_iter()? {
        let item = item?;
        let v = if let Ok(t) = item.cast::<PyTensor>() {
            match t.get().t.item().map_err(crate::errors::to_py)? {
                Scalar::Int(i) => i,
                _ => return Err(PyTypeError::new_err("expected integer tensors as sizes")),
            }
        } else {
            item.extract::<i64>().map_err(|_| {
                PyTypeError::new_err(format!("expected a sequence of integers, but got an element of type {}", type_name(&item)))
            })?
        };
        out.push(v);
    }
    Ok(out)
}

pub fn sizes(v: &[i64]) -> PyResult<Vec<usize>> {
    v.iter()
        .map(|&d| {
            if d < 0 {
                Err(PyRuntimeError::new_err(format!("Trying to create tensor with negative dimension {d}: {v:?}")))
            } else {
                Ok(d as usize)
            }
        })
        .collect()
}

pub fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into())
}

/// Parses one `__getitem__`/`__setitem__` key.
pub fn index_items(key: &Bound<'_, PyAny>) -> PyResult<Vec<IndexItem>> {
    if let Ok(t) = key.cast::<PyTuple>() {
        return t.iter().map(|k| index_item(&k)).collect();
    }
    Ok(vec![index_item(key)?])
}

fn opt_i64(obj: Bound<'_, PyAny>) -> PyResult<Option<i64>> {
    if obj.is_none() {
        return Ok(None);
    }
    if let Ok(t) = obj.cast::<PyTensor>() {
        return Ok(Some(t.get().t.item().map_err(crate::errors::to_py)?.as_i64()));
    }
    Ok(Some(obj.call_method0("__index__")?.extract::<i64>()?))
}

fn index_item(k: &Bound<'_, PyAny>) -> PyResult<IndexItem> {
    if k.is_none() {
        return Ok(IndexItem::NewAxis);
    }
    if k.is_instance_of::<PyEllipsis>() {
        return Ok(IndexItem::Ellipsis);
    }
    if k.is_instance_of::<PyBool>() {
        return Ok(IndexItem::Bool(k.extract()?));
    }
    if k.is_instance_of::<PyInt>() {
        return Ok(IndexItem::Int(k.extract()?));
    }
    if let Ok(s) = k.cast::<PySlice>() {
        let step = opt_i64(s.getattr("step")?)?.unwrap_or(1);
        return Ok(IndexItem::Slice { start: opt_i64(s.getattr("start")?)?, stop: opt_i64(s.getattr("stop")?)?, step });
    }
    if let Ok(t) = k.cast::<PyTensor>() {
        let t = t.get().t.clone();
        // A 0-dim integer tensor indexes like an int (and so keeps the result a view).
        if t.ndim() == 0 && matches!(t.dtype(), DType::I64 | DType::I32 | DType::U8) && t.dtype() != DType::U8 {
            return Ok(IndexItem::Int(t.item().map_err(crate::errors::to_py)?.as_i64()));
        }
        return Ok(IndexItem::Tensor(t));
    }
    if k.is_instance_of::<PyList>() || k.cast::<PyUntypedArray>().is_ok() {
        return Ok(IndexItem::Tensor(tensor_from_data(k, None)?));
    }
    if let Some(Scalar::Int(i)) = numpy_scalar(k) {
        return Ok(IndexItem::Int(i));
    }
    if let Ok(i) = k.call_method0("__index__") {
        return Ok(IndexItem::Int(i.extract()?));
    }
    Err(PyIndexError::new_err(
        "only integers, slices (`:`), ellipsis (`...`), None and long or byte Variables are valid indices",
    ))
}

/// NumPy dtype → rustgrad dtype, with PyTorch's error for unsupported ones.
fn numpy_dtype(arr: &Bound<'_, PyUntypedArray>) -> PyResult<DType> {
    let d = arr.dtype();
    let (kind, size) = (d.kind(), d.itemsize());
    Ok(match (kind, size) {
        (b'f', 4) => DType::F32,
        (b'f', 8) => DType::F64,
        (b'i', 8) => DType::I64,
        (b'i', 4) => DType::I32,
        (b'u', 1) => DType::U8,
        (b'b', 1) => DType::Bool,
        _ => {
            return Err(PyTypeError::new_err(format!(
                "can't convert np.ndarray of type numpy.{}. The only supported types are: float64, float32, int64, int32, uint8, and bool.",
                d.str()?.to_string().trim_start_matches(['<', '>', '|', '='])
            )))
        }
    })
}

/// A tensor over the NumPy array's memory (kept alive by the storage).
pub fn from_numpy(arr: &Bound<'_, PyUntypedArray>) -> PyResult<Tensor> {
    let dt = numpy_dtype(arr)?;
    let item = dt.size() as isize;
    let shape: Vec<usize> = arr.shape().to_vec();
    let mut strides = Vec::with_capacity(shape.len());
    for &s in arr.strides() {
        if s < 0 {
            return Err(PyValueError::new_err(
                "At least one stride in the given numpy array is negative, and tensors with negative strides are not currently supported. (You can probably work around this by making a copy of your array  with array.copy().) ",
            ));
        }
        if s % item != 0 {
            return Err(PyValueError::new_err(
                "given numpy array strides not a multiple of the element byte size. Copy the numpy array to reallocate the memory.",
            ));
        }
        strides.push(s / item);
    }
    let layout = Layout { shape: shape.into(), strides: strides.into(), offset: 0 };
    let nbytes = layout.storage_extent() * dt.size();
    // SAFETY: the array's data pointer is valid for its extent while the array lives; the
    // storage owns a reference to the array.
    let data = unsafe { (*arr.as_array_ptr()).fields.data as *mut u8 };
    let owner: Box<dyn std::any::Any + Send + Sync> = Box::new(arr.clone().into_any().unbind());
    let storage = unsafe { Storage::borrowed(data, nbytes, owner) };
    Ok(Tensor::from_storage(Arc::new(storage), layout, dt))
}

/// Keeps a tensor's storage alive as the `base` of NumPy arrays that view it.
#[pyclass(module = "rustgrad._C", frozen)]
pub struct StorageRef {
    #[allow(dead_code)]
    storage: Arc<Storage>,
}

/// An ndarray sharing the tensor's memory.
pub fn to_numpy<'py>(py: Python<'py>, t: &Tensor) -> PyResult<Bound<'py, PyAny>> {
    let v = t.view();
    let descr = match v.dtype {
        DType::F32 => numpy::dtype::<f32>(py),
        DType::F64 => numpy::dtype::<f64>(py),
        DType::I64 => numpy::dtype::<i64>(py),
        DType::I32 => numpy::dtype::<i32>(py),
        DType::U8 => numpy::dtype::<u8>(py),
        DType::Bool => numpy::dtype::<bool>(py),
    };
    let size = v.dtype.size() as isize;
    let mut dims: Vec<npy_intp> = v.layout.shape.iter().map(|&d| d as npy_intp).collect();
    let mut strides: Vec<npy_intp> = v.layout.strides.iter().map(|&s| (s * size) as npy_intp).collect();
    let base = Py::new(py, StorageRef { storage: v.storage.clone() })?;
    // SAFETY: data points into the storage for the layout's extent; the array holds `base`,
    // which keeps that storage alive. NewFromDescr steals the descr reference, SetBaseObject
    // steals the base reference.
    unsafe {
        let data = v.storage.as_ptr().add(v.layout.offset * size as usize) as *mut std::ffi::c_void;
        let arr = PY_ARRAY_API.PyArray_NewFromDescr(
            py,
            npyffi::get_type_object(py, npyffi::NpyTypes::PyArray_Type),
            descr.into_dtype_ptr(),
            dims.len() as i32,
            dims.as_mut_ptr(),
            strides.as_mut_ptr(),
            data,
            NPY_ARRAY_WRITEABLE,
            std::ptr::null_mut(),
        );
        if arr.is_null() {
            return Err(PyErr::fetch(py));
        }
        let arr = Bound::from_owned_ptr(py, arr);
        if PY_ARRAY_API.PyArray_SetBaseObject(py, arr.as_ptr() as *mut npyffi::PyArrayObject, base.into_ptr()) < 0 {
            return Err(PyErr::fetch(py));
        }
        Ok(arr)
    }
}

/// `torch.tensor(data)`: always copies. Accepts nested sequences of numbers, tensors, ndarrays.
pub fn tensor_from_data(obj: &Bound<'_, PyAny>, dtype: Option<DType>) -> PyResult<Tensor> {
    if let Ok(t) = obj.cast::<PyTensor>() {
        let t = &t.get().t;
        return Ok(engine::ops::cast::clone(&engine::ops::cast::to_dtype(t, dtype.unwrap_or(t.dtype()))));
    }
    if let Ok(a) = obj.cast::<PyUntypedArray>() {
        let t = from_numpy(a)?;
        return Ok(engine::ops::cast::clone(&engine::ops::cast::to_dtype(&t, dtype.unwrap_or(t.dtype()))));
    }
    let mut shape = Vec::new();
    let mut leaves = Vec::new();
    let mut inferred: Option<DType> = None;
    collect(obj, 0, &mut shape, &mut leaves, &mut inferred, false)?;
    let dt = dtype.unwrap_or_else(|| match inferred {
        Some(d) if d.is_float() => default_float().max(d),
        Some(d) => d,
        None => default_float(),
    });
    crate::errors::guard(|| {
        engine::dispatch!(dt, T => Tensor::from_vec(leaves.iter().map(|&s| <T as engine::dtype::Element>::from_scalar(s)).collect::<Vec<T>>(), &shape))
    })
}

fn merge(inferred: &mut Option<DType>, d: DType) {
    *inferred = Some(inferred.map_or(d, |c| engine::dtype::promote_types(c, d)));
}

/// The dtype of a NumPy scalar (np.float64(1.0) → float64), as PyTorch infers it.
fn numpy_scalar_dtype(obj: &Bound<'_, PyAny>) -> Option<DType> {
    if obj.get_type().module().ok()?.to_string() != "numpy" {
        return None;
    }
    let name: String = obj.getattr("dtype").ok()?.getattr("name").ok()?.extract().ok()?;
    DType::from_name(&name)
}

/// Walks nested sequences into `shape` and `leaves`, inferring the dtype as PyTorch does;
/// `typed` leaves (from a NumPy array, whose dtype was already merged) add no dtype of their own.
fn collect(obj: &Bound<'_, PyAny>, depth: usize, shape: &mut Vec<usize>, leaves: &mut Vec<Scalar>, inferred: &mut Option<DType>, typed: bool) -> PyResult<()> {
    if let Some(s) = scalar_of(obj) {
        if depth < shape.len() {
            return Err(PyValueError::new_err(format!(
                "expected sequence of length {} at dim {depth} (got {})",
                shape[depth],
                type_name(obj)
            )));
        }
        if !typed {
            merge(inferred, numpy_scalar_dtype(obj).unwrap_or_else(|| s.default_dtype(DType::F32)));
        }
        leaves.push(s);
        return Ok(());
    }
    if let Ok(t) = obj.cast::<PyTensor>() {
        let t = &t.get().t;
        if t.ndim() == 0 {
            merge(inferred, t.dtype());
            leaves.push(t.item().map_err(crate::errors::to_py)?);
            return Ok(());
        }
        let list = crate::tensor::tolist(obj.py(), t)?;
        return collect(list.bind(obj.py()), depth, shape, leaves, inferred, typed);
    }
    if let Ok(a) = obj.cast::<PyUntypedArray>() {
        if !typed {
            merge(inferred, numpy_dtype(a)?);
        }
        let list = obj.call_method0("tolist")?;
        return collect(&list, depth, shape, leaves, inferred, true);
    }
    if obj.is_instance_of::<pyo3::types::PyString>() || obj.is_instance_of::<pyo3::types::PyBytes>() {
        return Err(PyTypeError::new_err(format!("new(): invalid data type '{}'", type_name(obj))));
    }
    let seq = obj.cast::<PySequence>().map_err(|_| {
        PyTypeError::new_err(format!("Could not infer dtype of {}", type_name(obj)))
    })?;
    let n = seq.len()?;
    if depth == shape.len() {
        if !leaves.is_empty() {
            return Err(PyValueError::new_err(format!("expected a number at dim {depth} (got a sequence)")));
        }
        shape.push(n);
    } else if shape[depth] != n {
        return Err(PyValueError::new_err(format!(
            "expected sequence of length {} at dim {depth} (got {n})",
            shape[depth]
        )));
    }
    for item in seq.try_iter()? {
        collect(&item?, depth + 1, shape, leaves, inferred, typed)?;
    }
    Ok(())
}

/// An operand of an arithmetic op: a tensor, or a Python number.
#[derive(Clone)]
pub enum Operand {
    T(Tensor),
    S(Scalar),
}

impl Operand {
    pub fn input(&self) -> engine::ops::Input<'_> {
        match self {
            Operand::T(t) => engine::ops::Input::T(t),
            Operand::S(s) => engine::ops::Input::S(*s),
        }
    }
    pub fn tensor(&self) -> Option<&Tensor> {
        match self {
            Operand::T(t) => Some(t),
            Operand::S(_) => None,
        }
    }
    pub fn numel(&self) -> usize {
        match self {
            Operand::T(t) => t.numel(),
            Operand::S(_) => 1,
        }
    }
}

/// `None` for objects that are neither (the dunder then returns NotImplemented).
pub fn operand(obj: &Bound<'_, PyAny>) -> Option<Operand> {
    if let Ok(t) = obj.cast::<PyTensor>() {
        return Some(Operand::T(t.get().t.clone()));
    }
    scalar_of(obj).map(Operand::S)
}

pub fn operand_required(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Operand> {
    operand(obj).ok_or_else(|| {
        PyTypeError::new_err(format!("{what}(): argument 'other' must be Tensor or Number, not {}", type_name(obj)))
    })
}
