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

/// PyTorch's memory formats: how a fresh tensor's dims are nested in memory.
#[derive(PartialEq, Eq, Hash, Clone, Copy, Debug)]
pub enum MemoryFormat {
    Contiguous,
    Preserve,
    ChannelsLast,
    ChannelsLast3d,
}

impl MemoryFormat {
    pub const ALL: [MemoryFormat; 4] = [MemoryFormat::Contiguous, MemoryFormat::Preserve, MemoryFormat::ChannelsLast, MemoryFormat::ChannelsLast3d];
    pub fn name(self) -> &'static str {
        match self {
            MemoryFormat::Contiguous => "contiguous_format",
            MemoryFormat::Preserve => "preserve_format",
            MemoryFormat::ChannelsLast => "channels_last",
            MemoryFormat::ChannelsLast3d => "channels_last_3d",
        }
    }

    /// The dense strides this format gives a fresh tensor of `shape` made like `like` (whose
    /// layout `Preserve` keeps); `None` for row-major.
    pub fn strides(self, shape: &[usize], like: Option<&engine::layout::Layout>) -> PyResult<Option<engine::layout::Strides>> {
        match self {
            MemoryFormat::Contiguous => Ok(None),
            MemoryFormat::Preserve => Ok(like.and_then(engine::layout::preserved_strides)),
            MemoryFormat::ChannelsLast | MemoryFormat::ChannelsLast3d => {
                let rank = if self == MemoryFormat::ChannelsLast { 4 } else { 5 };
                if shape.len() != rank {
                    return Err(PyRuntimeError::new_err(format!("required rank {rank} tensor to use {} format", self.name())));
                }
                Ok(Some(engine::layout::strides_in_order(shape, &engine::layout::channels_last_order(rank))))
            }
        }
    }

    /// Whether `l` is laid out densely in this format (`Preserve` asks for row-major, as PyTorch).
    pub fn holds(self, l: &engine::layout::Layout) -> bool {
        match self {
            MemoryFormat::Contiguous | MemoryFormat::Preserve => l.is_contiguous(),
            MemoryFormat::ChannelsLast | MemoryFormat::ChannelsLast3d => {
                let rank = if self == MemoryFormat::ChannelsLast { 4 } else { 5 };
                l.ndim() == rank && l.is_dense_in(&engine::layout::channels_last_order(rank))
            }
        }
    }
}

#[pyclass(name = "memory_format", module = "rustgrad", frozen, eq, hash)]
#[derive(PartialEq, Eq, Hash, Clone, Copy)]
pub struct PyMemoryFormat {
    pub f: MemoryFormat,
}

#[pymethods]
impl PyMemoryFormat {
    fn __repr__(&self) -> String {
        format!("rustgrad.{}", self.f.name())
    }
    /// Pickled by name: the module attribute of the same name.
    fn __reduce__(&self) -> &'static str {
        self.f.name()
    }
}

static MEMORY_FORMATS: PyOnceLock<Vec<Py<PyMemoryFormat>>> = PyOnceLock::new();

/// Creates the memory-format singletons and adds them to the module; called once from init.
pub fn init_memory_formats(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let all = MemoryFormat::ALL.iter().map(|&f| Py::new(py, PyMemoryFormat { f })).collect::<PyResult<Vec<_>>>()?;
    for (f, obj) in MemoryFormat::ALL.iter().zip(&all) {
        m.add(f.name(), obj.clone_ref(py))?;
    }
    let _ = MEMORY_FORMATS.set(py, all);
    Ok(())
}

/// A `memory_format=` argument: `default` when absent or None.
pub fn extract_memory_format(obj: Option<&Bound<'_, PyAny>>, default: MemoryFormat, what: &str) -> PyResult<MemoryFormat> {
    match obj.filter(|o| !o.is_none()) {
        None => Ok(default),
        Some(o) => o.cast::<PyMemoryFormat>().map(|f| f.get().f).map_err(|_| {
            let name = o.get_type().name().map(|n| n.to_string()).unwrap_or_default();
            PyTypeError::new_err(format!("{what}(): argument 'memory_format' must be rustgrad.memory_format, not {name}"))
        }),
    }
}
