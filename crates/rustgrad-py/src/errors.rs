//! Engine errors → Python exceptions, and the panic guard every call into the engine goes through.

use std::panic::{catch_unwind, AssertUnwindSafe};

use engine::Error;
use pyo3::exceptions::{PyIndexError, PyNotImplementedError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;

pub fn to_py(e: Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::Index(_) => PyIndexError::new_err(msg),
        Error::Type(_) => PyTypeError::new_err(msg),
        Error::Value(_) => PyValueError::new_err(msg),
        Error::DTypeUnsupported { .. } => PyNotImplementedError::new_err(msg),
        Error::Shape(_) | Error::Cast { .. } | Error::Runtime(_) | Error::Device(_) => {
            PyRuntimeError::new_err(msg)
        }
    }
}

/// Runs engine code; errors become the matching exception and a panic becomes RuntimeError
/// instead of crossing into Python.
pub fn guard<T>(f: impl FnOnce() -> engine::Result<T>) -> PyResult<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(to_py),
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(PyRuntimeError::new_err(format!("internal error in rustgrad's engine: {what}")))
        }
    }
}

/// Like `guard`, releasing the GIL while the engine works on large inputs.
pub fn heavy<T: Send>(py: Python<'_>, work: usize, f: impl FnOnce() -> engine::Result<T> + Send) -> PyResult<T> {
    if work >= 1 << 16 {
        py.detach(|| guard(f))
    } else {
        guard(f)
    }
}
