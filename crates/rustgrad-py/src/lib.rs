use pyo3::prelude::*;
#[pymodule]
#[pyo3(name = "_C")]
fn module(_m: &Bound<'_, PyModule>) -> PyResult<()> { Ok(()) }
