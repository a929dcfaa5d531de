//! The `dtype`, `device` and `Generator` classes. dtypes are singletons, as in PyTorch
//! (`t.dtype is rustgrad.float32`).

use engine::ops::random::{Generator, SharedGenerator};
use engine::{DType, Device};
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

#[pyclass(name = "dtype", module = "rustgrad", frozen, eq, hash)]
#[derive(PartialEq, Eq, Hash, Clone, Copy)]
pub struct PyDType {
    pub d: DType,
}

static DTYPES: PyOnceLock<Vec<Py<PyDType>>> = PyOnceLock::new();

/// Creates the dtype singletons; called once from module init.
pub fn init_dtypes(py: Python<'_>) -> PyResult<()> {
    let all = DType::ALL.iter().map(|&d| Py::new(py, PyDType { d })).collect::<PyResult<Vec<_>>>()?;
    let _ = DTYPES.set(py, all);
    Ok(())
}

/// The singleton object for a dtype.
pub fn dtype_obj(py: Python<'_>, d: DType) -> PyResult<Py<PyDType>> {
    let all = DTYPES.get(py).ok_or_else(|| PyRuntimeError::new_err("rustgrad._C dtypes are not initialised"))?;
    let i = DType::ALL.iter().position(|&x| x == d).unwrap_or(0);
    Ok(all[i].clone_ref(py))
}

#[pymethods]
impl PyDType {
    fn __repr__(&self) -> String {
        format!("rustgrad.{}", self.d.name())
    }
    #[getter]
    fn is_floating_point(&self) -> bool {
        self.d.is_float()
    }
    #[getter]
    fn is_complex(&self) -> bool {
        false
    }
    #[getter]
    fn is_signed(&self) -> bool {
        self.d.is_signed()
    }
    #[getter]
    fn itemsize(&self) -> usize {
        self.d.size()
    }
    fn __reduce__(&self) -> (String, (String,)) {
        ("rustgrad._dtype_from_name".into(), (self.d.name().into(),))
    }
}

/// Accepts a rustgrad dtype or the Python types `float`, `int`, `bool`.
pub fn extract_dtype(obj: &Bound<'_, PyAny>) -> PyResult<DType> {
    if let Ok(d) = obj.cast::<PyDType>() {
        return Ok(d.get().d);
    }
    if let Ok(t) = obj.cast::<PyType>() {
        let name = t.name()?.to_string();
        match name.as_str() {
            "float" => return Ok(DType::F64),
            "int" => return Ok(DType::I64),
            "bool" => return Ok(DType::Bool),
            _ => {}
        }
    }
    Err(PyTypeError::new_err(format!(
        "expected a rustgrad.dtype, but got {}",
        obj.get_type().name()?
    )))
}

#[pyclass(name = "device", module = "rustgrad", frozen, eq, hash)]
#[derive(PartialEq, Eq, Hash, Clone, Copy)]
pub struct PyDevice {
    pub d: Device,
}

#[pymethods]
impl PyDevice {
    #[new]
    #[pyo3(signature = (r#type, index=None))]
    fn new(r#type: &Bound<'_, PyAny>, index: Option<usize>) -> PyResult<Self> {
        let kind = r#type;
        if let Ok(d) = kind.cast::<PyDevice>() {
            return Ok(*d.get());
        }
        if let Ok(i) = kind.extract::<usize>() {
            return Ok(PyDevice { d: Device::Cuda(i) });
        }
        let s: String = kind.extract()?;
        let d = Device::parse(&s).map_err(crate::errors::to_py)?;
        Ok(PyDevice {
            d: match (d, index) {
                (Device::Cuda(_), Some(i)) => Device::Cuda(i),
                (d, _) => d,
            },
        })
    }
    #[getter(r#type)]
    fn kind(&self) -> &'static str {
        self.d.kind()
    }
    #[getter]
    fn index(&self) -> Option<usize> {
        match self.d {
            Device::Cpu => None,
            Device::Cuda(i) => Some(i),
        }
    }
    fn __repr__(&self) -> String {
        match self.d {
            Device::Cpu => "device(type='cpu')".into(),
            Device::Cuda(i) => format!("device(type='cuda', index={i})"),
        }
    }
    fn __str__(&self) -> String {
        self.d.to_string()
    }
    fn __reduce__(&self) -> (String, (String,)) {
        ("rustgrad.device".into(), (self.d.to_string(),))
    }
}

/// Accepts a `device`, a string such as "cpu"/"cuda:0", or an int (a CUDA ordinal).
pub fn extract_device(obj: &Bound<'_, PyAny>) -> PyResult<Device> {
    if let Ok(d) = obj.cast::<PyDevice>() {
        return Ok(d.get().d);
    }
    if let Ok(s) = obj.extract::<String>() {
        return Device::parse(&s).map_err(|e| PyRuntimeError::new_err(e.to_string()));
    }
    if let Ok(i) = obj.extract::<usize>() {
        return Ok(Device::Cuda(i));
    }
    Err(PyTypeError::new_err("expected a device string or rustgrad.device"))
}

/// `torch.Generator`: an independent random stream.
#[pyclass(name = "Generator", module = "rustgrad")]
pub struct PyGenerator {
    pub g: SharedGenerator,
}

#[pymethods]
impl PyGenerator {
    #[new]
    #[pyo3(signature = (device=None))]
    fn new(device: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        if let Some(d) = device {
            extract_device(d)?.check_available().map_err(crate::errors::to_py)?;
        }
        Ok(PyGenerator { g: std::sync::Arc::new(parking_lot_mutex(Generator::default())) })
    }
    fn manual_seed(slf: PyRef<'_, Self>, seed: i128) -> PyRef<'_, Self> {
        slf.g.lock().manual_seed(seed as u64);
        slf
    }
    fn initial_seed(&self) -> u64 {
        self.g.lock().initial_seed()
    }
    /// Picks a fresh non-deterministic seed and returns it.
    fn seed(&self) -> u64 {
        let s = fresh_seed();
        self.g.lock().manual_seed(s);
        s
    }
    fn get_state(&self) -> (u64, u64) {
        self.g.lock().state()
    }
    fn set_state(&self, state: (u64, u64)) {
        self.g.lock().set_state(state.0, state.1)
    }
    #[getter]
    fn device(&self) -> PyDevice {
        PyDevice { d: Device::Cpu }
    }
}

pub fn parking_lot_mutex<T>(v: T) -> engine::ops::random::Mutex<T> {
    engine::ops::random::Mutex::new(v)
}

pub fn fresh_seed() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    let t = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    t ^ (std::process::id() as u64).rotate_left(32)
}
