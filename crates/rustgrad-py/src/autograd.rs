//! Autograd's Python face: `Tensor.grad`/`grad_fn`/`backward`/hooks, graph nodes as Python
//! objects named like PyTorch's (`AddBackward0`, ...), grad mode, and the bridge that lets a
//! Python `autograd.Function` or hook run inside the engine's backward pass.

use std::cell::RefCell;
use std::sync::{Arc, Weak};

use engine::autograd::node::{GradHook, Node, Saved};
use engine::autograd::rules::{CustomBackward, Rule};
use engine::autograd::{self, mode, record};
use engine::{Error, Tensor};
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyTuple, PyType};

use crate::errors::guard;
use crate::tensor::{wrap, PyTensor};

thread_local! {
    /// A Python exception raised inside a hook or custom backward, re-raised as itself once
    /// the engine returns (the engine only carries its own error type).
    static PENDING: RefCell<Option<PyErr>> = const { RefCell::new(None) };
}

fn stash(e: PyErr) -> Error {
    let msg = e.to_string();
    PENDING.with(|p| *p.borrow_mut() = Some(e));
    Error::Runtime(msg)
}

/// Runs a backward pass with the GIL released; Python errors from hooks come back unchanged.
fn run_engine<T: Send>(py: Python<'_>, f: impl FnOnce() -> engine::Result<T> + Send) -> PyResult<T> {
    let r = py.detach(|| guard(f));
    match PENDING.with(|p| p.borrow_mut().take()) {
        Some(e) if r.is_err() => Err(e),
        _ => r,
    }
}

fn tensors_of(obj: &Bound<'_, PyAny>) -> PyResult<Vec<Tensor>> {
    if let Ok(t) = obj.cast::<PyTensor>() {
        return Ok(vec![t.get().t.clone()]);
    }
    obj.try_iter()?
        .map(|o| Ok(o?.cast::<PyTensor>().map_err(|_| PyTypeError::new_err("expected a Tensor or a sequence of Tensors"))?.get().t.clone()))
        .collect()
}

fn opt_tensors_of(obj: Option<&Bound<'_, PyAny>>, n: usize) -> PyResult<Vec<Option<Tensor>>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else { return Ok(vec![None; n]) };
    if let Ok(t) = obj.cast::<PyTensor>() {
        return Ok(vec![Some(t.get().t.clone())]);
    }
    obj.try_iter()?
        .map(|o| {
            let o = o?;
            if o.is_none() {
                return Ok(None);
            }
            Ok(Some(o.cast::<PyTensor>().map_err(|_| PyTypeError::new_err("gradients must be Tensors or None"))?.get().t.clone()))
        })
        .collect()
}

// ---------------------------------------------------------------- graph nodes

/// `grad_fn` objects. Each node name gets its own Python subclass, so `type(y.grad_fn).__name__`
/// reads `MulBackward0` as in PyTorch.
#[pyclass(name = "Node", module = "rustgrad.autograd.graph", subclass, frozen)]
pub struct PyNode {
    node: Arc<Node>,
}

static NODE_CLASSES: PyOnceLock<Py<PyDict>> = PyOnceLock::new();

pub fn node_obj(py: Python<'_>, node: Arc<Node>) -> PyResult<Py<PyAny>> {
    let classes = NODE_CLASSES.get_or_init(py, || PyDict::new(py).unbind()).bind(py);
    let name = node.name.to_string();
    let cls = match classes.get_item(&name)? {
        Some(c) => c,
        None => {
            let base = py.get_type::<PyNode>();
            let ns = PyDict::new(py);
            ns.set_item("__module__", "rustgrad.autograd.graph")?;
            let c = py.get_type::<PyType>().call1((&name, (base,), ns))?;
            classes.set_item(&name, &c)?;
            c
        }
    };
    let raw = Py::new(py, PyNode { node })?;
    Ok(cls.call1((raw,))?.unbind())
}

#[pymethods]
impl PyNode {
    #[new]
    fn new(src: &Bound<'_, PyNode>) -> Self {
        PyNode { node: src.get().node.clone() }
    }
    fn name(&self) -> String {
        self.node.name.to_string()
    }
    /// `((node, input_nr), ...)`, `(None, 0)` where an input needs no gradient.
    #[getter]
    fn next_functions(&self, py: Python<'_>) -> PyResult<Py<PyTuple>> {
        let items = self
            .node
            .next
            .iter()
            .map(|e| -> PyResult<Py<PyAny>> {
                Ok(match e {
                    Some(e) => (node_obj(py, e.node.clone())?, e.input_nr).into_pyobject(py)?.into_any().unbind(),
                    None => (py.None(), 0).into_pyobject(py)?.into_any().unbind(),
                })
            })
            .collect::<PyResult<Vec<_>>>()?;
        Ok(PyTuple::new(py, items)?.unbind())
    }
    /// The leaf an `AccumulateGrad` node accumulates into.
    #[getter]
    fn variable(&self, py: Python<'_>) -> PyResult<Py<PyTensor>> {
        match self.node.variable() {
            Some(t) => wrap(py, t.clone()),
            None => Err(pyo3::exceptions::PyAttributeError::new_err(format!("'{}' object has no attribute 'variable'", self.node.name))),
        }
    }
    fn __repr__(slf: &Bound<'_, Self>) -> String {
        format!("<{} object at {:#x}>", slf.get().node.name, slf.as_ptr() as usize)
    }
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<PyNode>().is_ok_and(|o| Arc::ptr_eq(&o.get().node, &self.node))
    }
    fn __hash__(&self) -> isize {
        Arc::as_ptr(&self.node) as isize
    }
}

// ---------------------------------------------------------------- hooks

struct PyHook(Py<PyAny>);

impl GradHook for PyHook {
    fn call(&self, grad: &Tensor) -> engine::Result<Option<Tensor>> {
        Python::attach(|py| {
            let r = self.0.bind(py).call1((wrap(py, grad.clone()).map_err(stash)?,)).map_err(stash)?;
            if r.is_none() {
                return Ok(None);
            }
            match r.cast::<PyTensor>() {
                Ok(t) => Ok(Some(t.get().t.clone())),
                Err(_) => Err(stash(PyTypeError::new_err("hooks must return None or a Tensor"))),
            }
        })
    }
}

/// What `register_hook` returns: `.remove()` unregisters the hook.
#[pyclass(name = "RemovableHandle", module = "rustgrad.utils.hooks")]
pub struct PyHookHandle {
    tensor: Weak<engine::tensor::TensorImpl>,
    id: u64,
}

#[pymethods]
impl PyHookHandle {
    fn remove(&self) {
        if let Some(t) = Tensor::upgrade(&self.tensor) {
            record::remove_hook(&t, self.id);
        }
    }
    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }
    fn __exit__(&self, _a: &Bound<'_, PyAny>, _b: &Bound<'_, PyAny>, _c: &Bound<'_, PyAny>) {
        self.remove()
    }
}

// ---------------------------------------------------------------- Tensor methods

#[pymethods]
impl PyTensor {
    #[getter]
    fn get_grad(&self, py: Python<'_>) -> PyResult<Option<Py<PyTensor>>> {
        self.t.meta().grad.clone().map(|g| wrap(py, g)).transpose()
    }
    #[setter]
    fn set_grad(&self, grad: Option<&Bound<'_, PyTensor>>) -> PyResult<()> {
        let g = match grad {
            None => None,
            Some(g) => {
                let g = g.get().t.clone();
                if g.dtype() != self.t.dtype() {
                    return Err(PyRuntimeError::new_err("assigned grad has data of a different type"));
                }
                if g.shape() != self.t.shape() {
                    return Err(PyRuntimeError::new_err("assigned grad has data of a different size"));
                }
                Some(g)
            }
        };
        self.t.meta().grad = g;
        Ok(())
    }
    #[getter]
    fn grad_fn(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        self.t.grad_fn().map(|n| node_obj(py, n)).transpose()
    }
    #[getter]
    fn is_leaf(&self) -> bool {
        self.t.is_leaf()
    }
    #[getter]
    fn retains_grad(&self) -> bool {
        self.t.meta().retains_grad
    }
    #[getter]
    fn output_nr(&self) -> usize {
        self.t.meta().output_nr
    }
    #[getter]
    fn _base(&self, py: Python<'_>) -> PyResult<Option<Py<PyTensor>>> {
        self.t.meta().base.clone().map(|b| wrap(py, b)).transpose()
    }
    fn _is_view(&self) -> bool {
        self.t.meta().base.is_some()
    }
    fn retain_grad(&self) -> PyResult<()> {
        guard(|| record::retain_grad(&self.t))
    }
    fn register_hook(&self, hook: Py<PyAny>) -> PyResult<PyHookHandle> {
        let id = guard(|| record::register_hook(&self.t, Arc::new(PyHook(hook))))?;
        Ok(PyHookHandle { tensor: self.t.downgrade(), id })
    }
    #[pyo3(signature = (gradient=None, retain_graph=None, create_graph=false, inputs=None))]
    fn backward(
        &self,
        py: Python<'_>,
        gradient: Option<&Bound<'_, PyTensor>>,
        retain_graph: Option<bool>,
        create_graph: bool,
        inputs: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let grads = vec![gradient.map(|g| g.get().t.clone())];
        let inputs = inputs.filter(|i| !i.is_none()).map(tensors_of).transpose()?;
        let t = self.t.clone();
        run_engine(py, move || autograd::backward(&[t], &grads, retain_graph, create_graph, inputs.as_deref()))
    }
}

// ---------------------------------------------------------------- module functions

#[pyfunction]
#[pyo3(signature = (tensors, grad_tensors=None, retain_graph=None, create_graph=false, inputs=None))]
pub fn _backward(
    py: Python<'_>,
    tensors: &Bound<'_, PyAny>,
    grad_tensors: Option<&Bound<'_, PyAny>>,
    retain_graph: Option<bool>,
    create_graph: bool,
    inputs: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    let outs = tensors_of(tensors)?;
    let grads = opt_tensors_of(grad_tensors, outs.len())?;
    let inputs = inputs.filter(|i| !i.is_none()).map(tensors_of).transpose()?;
    run_engine(py, move || autograd::backward(&outs, &grads, retain_graph, create_graph, inputs.as_deref()))
}

#[pyfunction]
#[pyo3(signature = (outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=false, allow_unused=false))]
pub fn _grad(
    py: Python<'_>,
    outputs: &Bound<'_, PyAny>,
    inputs: &Bound<'_, PyAny>,
    grad_outputs: Option<&Bound<'_, PyAny>>,
    retain_graph: Option<bool>,
    create_graph: bool,
    allow_unused: bool,
) -> PyResult<Py<PyTuple>> {
    let outs = tensors_of(outputs)?;
    let ins = tensors_of(inputs)?;
    let grads = opt_tensors_of(grad_outputs, outs.len())?;
    let res = run_engine(py, move || autograd::grad(&outs, &grads, &ins, retain_graph, create_graph, allow_unused))?;
    let items = res
        .into_iter()
        .map(|g| -> PyResult<Py<PyAny>> {
            Ok(match g {
                Some(g) => wrap(py, g)?.into_any(),
                None => py.None(),
            })
        })
        .collect::<PyResult<Vec<_>>>()?;
    Ok(PyTuple::new(py, items)?.unbind())
}

#[pyfunction]
pub fn is_grad_enabled() -> bool {
    mode::is_grad_enabled()
}

#[pyfunction]
pub fn _set_grad_enabled(on: bool) {
    mode::set_grad_enabled(on)
}

#[pyfunction]
pub fn is_inference_mode_enabled() -> bool {
    mode::is_inference_mode_enabled()
}

#[pyfunction]
pub fn _set_inference_mode(on: bool) {
    mode::set_inference_mode(on)
}

// ---------------------------------------------------------------- custom Functions

/// The backward of a Python `autograd.Function`: calls `fn(*grads)` with the GIL held.
struct PyFunctionBackward {
    name: String,
    backward: Py<PyAny>,
}

impl CustomBackward for PyFunctionBackward {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn backward(&self, grads: &[Tensor], needs: &[bool]) -> engine::Result<Vec<Option<Tensor>>> {
        Python::attach(|py| {
            let gs = grads.iter().map(|g| wrap(py, g.clone())).collect::<PyResult<Vec<_>>>().map_err(stash)?;
            let r = self.backward.bind(py).call1((PyTuple::new(py, gs).map_err(stash)?, needs.to_vec())).map_err(stash)?;
            r.try_iter()
                .map_err(stash)?
                .map(|o| {
                    let o = o.map_err(stash)?;
                    if o.is_none() {
                        return Ok(None);
                    }
                    o.cast::<PyTensor>()
                        .map(|t| Some(t.get().t.clone()))
                        .map_err(|_| stash(PyTypeError::new_err(format!("{}: backward must return Tensors or None", self.name))))
                })
                .collect()
        })
    }
}

/// A tensor a custom Function saved: version-checked, outputs re-attached to the node.
#[pyclass(name = "_SavedTensor", module = "rustgrad._C")]
pub struct PySaved {
    saved: Saved,
    node: Weak<Node>,
}

#[pymethods]
impl PySaved {
    fn unpack(&self, py: Python<'_>) -> PyResult<Py<PyTensor>> {
        let node = self.node.upgrade().ok_or_else(|| {
            PyRuntimeError::new_err("Trying to backward through the graph a second time (or directly access saved tensors after they have already been freed).")
        })?;
        wrap(py, guard(|| self.saved.unpack(&node))?)
    }
}

/// Records a custom Function's node: `inputs` are its tensor arguments, `outputs` its
/// differentiable outputs; returns the saved-tensor handles for `saved` (or None when nothing
/// was recorded).
#[pyfunction]
pub fn _record_function(
    py: Python<'_>,
    name: String,
    inputs: &Bound<'_, PyList>,
    outputs: &Bound<'_, PyList>,
    backward: Py<PyAny>,
    saved: &Bound<'_, PyList>,
) -> PyResult<Option<Vec<PySaved>>> {
    let ins = tensors_of(inputs)?;
    let outs = tensors_of(outputs)?;
    let in_refs: Vec<Option<&Tensor>> = ins.iter().map(Some).collect();
    let out_refs: Vec<&Tensor> = outs.iter().collect();
    for o in &outs {
        if o.is_leaf() && o.requires_grad() && ins.iter().any(|i| i.same(o)) {
            return Err(PyRuntimeError::new_err("a leaf Variable that requires grad has been used in an in-place operation."));
        }
    }
    let rule = Rule::Custom(Arc::new(PyFunctionBackward { name, backward }));
    let Some(node) = record::record(|| rule, &in_refs, &out_refs) else { return Ok(None) };
    let _ = py;
    let handles = saved
        .iter()
        .map(|s| -> PyResult<PySaved> {
            let t = s.cast::<PyTensor>()?.get().t.clone();
            let saved = match outs.iter().position(|o| o.same(&t)) {
                Some(nr) => Saved::output(&t, nr),
                None => Saved::input(&t),
            };
            Ok(PySaved { saved, node: Arc::downgrade(&node) })
        })
        .collect::<PyResult<Vec<_>>>()?;
    Ok(Some(handles))
}
