#![allow(non_snake_case)] // the extension module must be named `_C`
//! `rustgrad._C`: the thin PyO3 layer over the engine. Argument parsing, NumPy interop and
//! error mapping only; everything numeric is in `crates/engine`.

mod autograd;
mod convert;
mod errors;
mod functions;
mod methods;
mod nn;
mod optim;
mod ops_extra;
mod tensor;
mod types;

use engine::DType;

#[global_allocator]
static ALLOCATOR: engine::global_alloc::MiMalloc = engine::global_alloc::MiMalloc;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;

/// Python objects the package registers at import (`Size`, `return_types.max`, ...).
pub(crate) static HOOKS: PyOnceLock<Py<PyDict>> = PyOnceLock::new();

#[pymodule]
#[pyo3(name = "_C")]
fn rustgrad_c(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<tensor::PyTensor>()?;
    m.add_class::<types::PyDType>()?;
    m.add_class::<types::PyDevice>()?;
    m.add_class::<types::PyGenerator>()?;
    m.add_class::<types::PyMemoryFormat>()?;
    m.add_class::<convert::StorageRef>()?;
    m.add_class::<autograd::PyNode>()?;
    m.add_class::<autograd::PyHookHandle>()?;
    m.add_class::<autograd::PySaved>()?;
    types::init_dtypes(py)?;
    types::init_memory_formats(m)?;
    for d in DType::ALL {
        m.add(d.name(), types::dtype_obj(py, d)?)?;
    }
    use functions as f;
    for func in [
        wrap_pyfunction!(f::tensor, m)?,
        wrap_pyfunction!(f::as_tensor, m)?,
        wrap_pyfunction!(f::from_numpy, m)?,
        wrap_pyfunction!(f::zeros, m)?,
        wrap_pyfunction!(f::ones, m)?,
        wrap_pyfunction!(f::empty, m)?,
        wrap_pyfunction!(f::empty_strided, m)?,
        wrap_pyfunction!(f::_empty_like, m)?,
        wrap_pyfunction!(f::full, m)?,
        wrap_pyfunction!(f::eye, m)?,
        wrap_pyfunction!(f::arange, m)?,
        wrap_pyfunction!(f::linspace, m)?,
        wrap_pyfunction!(f::rand, m)?,
        wrap_pyfunction!(f::randn, m)?,
        wrap_pyfunction!(f::randint, m)?,
        wrap_pyfunction!(f::randperm, m)?,
        wrap_pyfunction!(f::_uniform_, m)?,
        wrap_pyfunction!(f::_normal_, m)?,
        wrap_pyfunction!(f::manual_seed, m)?,
        wrap_pyfunction!(f::initial_seed, m)?,
        wrap_pyfunction!(f::seed, m)?,
        wrap_pyfunction!(f::_default_generator, m)?,
        wrap_pyfunction!(f::cat, m)?,
        wrap_pyfunction!(f::stack, m)?,
        wrap_pyfunction!(f::where_fn, m)?,
        wrap_pyfunction!(f::get_default_dtype, m)?,
        wrap_pyfunction!(f::set_default_dtype, m)?,
        wrap_pyfunction!(f::set_num_threads, m)?,
        wrap_pyfunction!(f::_after_fork_in_child, m)?,
        wrap_pyfunction!(f::get_num_threads, m)?,
        wrap_pyfunction!(f::_fma_peak_gflops, m)?,
        wrap_pyfunction!(f::_register_hook, m)?,
        wrap_pyfunction!(f::_dtype_from_name, m)?,
        wrap_pyfunction!(f::_panic_in_engine_for_test, m)?,
        wrap_pyfunction!(autograd::_backward, m)?,
        wrap_pyfunction!(autograd::_grad, m)?,
        wrap_pyfunction!(autograd::is_grad_enabled, m)?,
        wrap_pyfunction!(autograd::_set_grad_enabled, m)?,
        wrap_pyfunction!(autograd::is_inference_mode_enabled, m)?,
        wrap_pyfunction!(autograd::_set_inference_mode, m)?,
        wrap_pyfunction!(autograd::_record_function, m)?,
        wrap_pyfunction!(ops_extra::_activation, m)?,
        wrap_pyfunction!(ops_extra::_pad, m)?,
        wrap_pyfunction!(ops_extra::_mse_loss, m)?,
        wrap_pyfunction!(ops_extra::_nll_loss, m)?,
        wrap_pyfunction!(nn::_convolution, m)?,
        wrap_pyfunction!(nn::_unfold, m)?,
        wrap_pyfunction!(nn::_fold, m)?,
        wrap_pyfunction!(nn::_max_pool2d, m)?,
        wrap_pyfunction!(nn::_avg_pool2d, m)?,
        wrap_pyfunction!(nn::_adaptive_pool2d, m)?,
        wrap_pyfunction!(nn::_batch_norm, m)?,
        wrap_pyfunction!(nn::_layer_norm, m)?,
        wrap_pyfunction!(nn::_group_norm, m)?,
        wrap_pyfunction!(optim::_optim_step, m)?,
        wrap_pyfunction!(optim::_optim_fusable, m)?,
    ] {
        m.add_function(func)?;
    }
    m.add("result_type", wrap_pyfunction!(f::result_type_fn, m)?)?;
    m.add("promote_types", wrap_pyfunction!(f::promote_types_fn, m)?)?;
    HOOKS.get_or_init(py, || PyDict::new(py).unbind());
    Ok(())
}
