//! `rustgrad._C._optim_step`: one fused engine call per parameter group for the optimizers in
//! `rustgrad.optim._functional`.

use engine::ops::optim::{self, Algo};
use engine::Tensor;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::heavy;
use crate::tensor::PyTensor;

fn tensors(list: Vec<Bound<'_, PyTensor>>) -> Vec<Tensor> {
    list.iter().map(|t| t.get().t.clone()).collect()
}

fn hp<'py, T: FromPyObjectOwned<'py>>(d: &Bound<'py, PyDict>, key: &str) -> PyResult<T> {
    match d.get_item(key)? {
        Some(v) => v.extract::<T>().map_err(Into::into),
        None => Err(PyValueError::new_err(format!("_optim_step: missing hyper-parameter '{key}'"))),
    }
}

use pyo3::conversion::FromPyObjectOwned;

/// Updates `params` in place with `algo` (`sgd`, `adam`, `rmsprop`, `adagrad`); returns False,
/// touching nothing, when the tensors are not dense floats of one dtype (the caller then runs
/// the composite path).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn _optim_step(
    py: Python<'_>,
    algo: &str,
    params: Vec<Bound<'_, PyTensor>>,
    grads: Vec<Bound<'_, PyTensor>>,
    states: Vec<Vec<Bound<'_, PyTensor>>>,
    steps: Vec<f64>,
    fresh: Vec<bool>,
    hyper: &Bound<'_, PyDict>,
) -> PyResult<bool> {
    let a = match algo {
        "sgd" => Algo::Sgd {
            lr: hp(hyper, "lr")?,
            momentum: hp(hyper, "momentum")?,
            dampening: hp(hyper, "dampening")?,
            weight_decay: hp(hyper, "weight_decay")?,
            nesterov: hp(hyper, "nesterov")?,
            maximize: hp(hyper, "maximize")?,
        },
        "adam" => Algo::Adam {
            lr: hp(hyper, "lr")?,
            beta1: hp(hyper, "beta1")?,
            beta2: hp(hyper, "beta2")?,
            eps: hp(hyper, "eps")?,
            weight_decay: hp(hyper, "weight_decay")?,
            amsgrad: hp(hyper, "amsgrad")?,
            maximize: hp(hyper, "maximize")?,
            decoupled: hp(hyper, "decoupled_weight_decay")?,
        },
        "rmsprop" => Algo::RmsProp {
            lr: hp(hyper, "lr")?,
            alpha: hp(hyper, "alpha")?,
            eps: hp(hyper, "eps")?,
            weight_decay: hp(hyper, "weight_decay")?,
            momentum: hp(hyper, "momentum")?,
            centered: hp(hyper, "centered")?,
            maximize: hp(hyper, "maximize")?,
        },
        "adagrad" => Algo::Adagrad {
            lr: hp(hyper, "lr")?,
            lr_decay: hp(hyper, "lr_decay")?,
            eps: hp(hyper, "eps")?,
            weight_decay: hp(hyper, "weight_decay")?,
            maximize: hp(hyper, "maximize")?,
        },
        other => return Err(PyValueError::new_err(format!("_optim_step: unknown algorithm '{other}'"))),
    };
    let (p, g) = (tensors(params), tensors(grads));
    let st: Vec<Vec<Tensor>> = states.into_iter().map(tensors).collect();
    let mut lists: Vec<&[Tensor]> = vec![&g];
    lists.extend(st.iter().map(|s| s.as_slice()));
    if !optim::fusable(&p, &lists) {
        return Ok(false);
    }
    let work: usize = p.iter().map(|t| t.numel()).sum();
    heavy(py, work, || optim::step(&a, &p, &g, &st, &steps, &fresh))?;
    Ok(true)
}

/// Whether `_optim_step` would take this group (so callers can advance step counters first).
#[pyfunction]
pub fn _optim_fusable(params: Vec<Bound<'_, PyTensor>>, grads: Vec<Bound<'_, PyTensor>>, states: Vec<Vec<Bound<'_, PyTensor>>>) -> bool {
    let (p, g) = (tensors(params), tensors(grads));
    let st: Vec<Vec<Tensor>> = states.into_iter().map(tensors).collect();
    let mut lists: Vec<&[Tensor]> = vec![&g];
    lists.extend(st.iter().map(|s| s.as_slice()));
    optim::fusable(&p, &lists)
}
