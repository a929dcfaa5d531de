//! Putting ops on the tape: an op records one node when grad mode is on and some input
//! requires grad; the node's edges point at the inputs' producers (or their AccumulateGrad).

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::ops::cast::clone;
use crate::tensor::Tensor;

use super::mode::is_grad_enabled;
use super::node::{next_id, Edge, GradHook, Node, PreHook, TensorHook, TensorMeta};
use super::rules::Rule;

/// Whether an op on these inputs must be recorded.
#[inline]
pub fn needs_grad(inputs: &[Option<&Tensor>]) -> bool {
    is_grad_enabled() && inputs.iter().flatten().any(|t| t.requires_grad())
}

/// The edge a gradient for `t` flows along: its producer's output slot, or (for a leaf that
/// requires grad) its AccumulateGrad node, created on first use and shared afterwards.
pub fn gradient_edge(t: &Tensor) -> Option<Edge> {
    if !t.requires_grad() {
        return None;
    }
    let mut m = t.meta();
    if let Some(f) = &m.grad_fn {
        return Some(Edge { node: f.clone(), input_nr: m.output_nr });
    }
    let node = match m.accumulator.upgrade() {
        Some(n) => n,
        None => {
            let n = Arc::new(Node::accumulate(t));
            m.accumulator = Arc::downgrade(&n);
            n
        }
    };
    Some(Edge { node, input_nr: 0 })
}

/// Records `rule()` as the `grad_fn` of the float `outputs` if the inputs need it. Inputs are
/// the op's gradient slots in order (`None` for numbers and non-differentiable arguments).
/// Returns the node so multi-output ops and in-place ops can refer to it.
pub fn record(rule: impl FnOnce() -> Rule, inputs: &[Option<&Tensor>], outputs: &[&Tensor]) -> Option<Arc<Node>> {
    if !needs_grad(inputs) || !outputs.iter().any(|o| o.dtype().is_float()) {
        return None;
    }
    let next = inputs.iter().map(|t| t.and_then(gradient_edge)).collect();
    let metas = inputs
        .iter()
        .map(|t| match t {
            Some(t) => TensorMeta::of(t),
            None => TensorMeta { shape: Default::default(), dtype: crate::dtype::DType::F32 },
        })
        .collect();
    let node = Arc::new(Node::op(rule(), next, metas, outputs.iter().map(|o| TensorMeta::of(o)).collect()));
    for (nr, o) in outputs.iter().enumerate() {
        if o.dtype().is_float() {
            set_history(o, &node, nr);
        }
    }
    Some(node)
}

/// Like `record` for ops whose output is a view of `input`: the view also remembers its base,
/// so that in-place writes through it can be checked.
pub fn record_view(rule: impl FnOnce() -> Rule, input: &Tensor, out: &Tensor) {
    if record(rule, &[Some(input)], &[out]).is_some() {
        let base = input.meta().base.clone().unwrap_or_else(|| input.clone());
        out.meta().base = Some(base);
    }
}

pub(crate) fn set_history(t: &Tensor, node: &Arc<Node>, output_nr: usize) {
    let mut m = t.meta();
    m.grad_fn = Some(node.clone());
    m.output_nr = output_nr;
    drop(m);
    t.set_requires_grad_flag(true);
}

/// `t.requires_grad = on`, with PyTorch's checks.
pub fn set_requires_grad(t: &Tensor, on: bool) -> Result<()> {
    if !t.is_leaf() {
        if on {
            return Ok(());
        }
        return Err(Error::Runtime(
            "you can only change requires_grad flags of leaf variables. If you want to use a computed variable in a subgraph that doesn't require differentiation use var_no_grad = var.detach().".into(),
        ));
    }
    if on && !t.dtype().is_float() {
        return Err(Error::Runtime("only Tensors of floating point and complex dtype can require gradients".into()));
    }
    t.set_requires_grad_flag(on);
    Ok(())
}

/// `detach()`: same data (and version counter), no history, no grad requirement.
pub fn detach(t: &Tensor) -> Tensor {
    t.alias()
}

/// `detach_()`: drops this tensor's history in place.
pub fn detach_(t: &Tensor) -> Result<()> {
    let is_view = t.meta().base.is_some();
    if is_view && !t.is_leaf() {
        return Err(Error::Runtime(
            "Can't detach views in-place. Use detach() instead. If you are using DistributedDataParallel (DDP) for training, and gradient_as_bucket_view is set as True, gradients are views of DDP buckets, and hence detach_() cannot be called on these gradients. To fix this error, please refer to the Optimizer.zero_grad() function in torch/optim/optimizer.py as the solution.".into(),
        ));
    }
    let mut m = t.meta();
    m.grad_fn = None;
    m.output_nr = 0;
    drop(m);
    t.set_requires_grad_flag(false);
    Ok(())
}

/// `retain_grad()`: a non-leaf keeps its gradient in `.grad` after backward.
pub fn retain_grad(t: &Tensor) -> Result<()> {
    if !t.requires_grad() {
        return Err(Error::Runtime("can't retain_grad on Tensor that has requires_grad=False".into()));
    }
    let mut m = t.meta();
    if m.retains_grad {
        return Ok(());
    }
    if let Some(f) = m.grad_fn.clone() {
        f.add_pre_hook(PreHook::Retain { output_nr: m.output_nr, tensor: t.downgrade() });
        m.retains_grad = true;
    }
    Ok(())
}

/// `register_hook(fn)`: returns an id for `remove_hook`.
pub fn register_hook(t: &Tensor, f: Arc<dyn GradHook>) -> Result<u64> {
    if !t.requires_grad() {
        return Err(Error::Runtime("cannot register a hook on a tensor that doesn't require gradient".into()));
    }
    let hook = TensorHook { id: next_id(), f };
    let id = hook.id;
    let mut m = t.meta();
    match m.grad_fn.clone() {
        Some(node) => node.add_pre_hook(PreHook::User { output_nr: m.output_nr, hook }),
        None => m.hooks.push(hook),
    }
    Ok(id)
}

pub fn remove_hook(t: &Tensor, id: u64) {
    let mut m = t.meta();
    m.hooks.retain(|h| h.id != id);
    if let Some(f) = &m.grad_fn {
        f.remove_hook(id);
    }
}

/// PyTorch's checks before an in-place write into `t` while grad mode is on.
pub fn check_inplace(t: &Tensor) -> Result<()> {
    if !is_grad_enabled() {
        return Ok(());
    }
    let m = t.meta();
    if m.grad_fn.is_none() && t.requires_grad() {
        return Err(Error::Runtime(
            "a leaf Variable that requires grad is being used in an in-place operation.".into(),
        ));
    }
    if let Some(base) = &m.base {
        if base.is_leaf() && base.requires_grad() {
            return Err(Error::Runtime(
                "a view of a leaf Variable that requires grad is being used in an in-place operation.".into(),
            ));
        }
    }
    Ok(())
}

/// Runs an in-place op: `f` computes the new value from a snapshot of `t` (with `t`'s history),
/// the result is written into `t`'s memory, and `t` takes over the result's history. The
/// snapshot is a copy only when the write is recorded, so saved inputs keep the old values.
pub fn inplace(t: &Tensor, others: &[Option<&Tensor>], f: impl FnOnce(&Tensor) -> Result<Tensor>) -> Result<()> {
    let mut ins: Vec<Option<&Tensor>> = vec![Some(t)];
    ins.extend_from_slice(others);
    if !needs_grad(&ins) {
        let r = f(t)?;
        return write_result(t, &r);
    }
    check_inplace(t)?;
    let base = t.meta().base.clone();
    if let Some(base) = base.filter(|b| b.requires_grad() || others.iter().flatten().any(|o| o.requires_grad())) {
        return inplace_on_view(t, &base, f);
    }
    let snapshot = clone(t);
    {
        let (src, mut dst) = (t.meta(), snapshot.meta());
        dst.grad_fn = src.grad_fn.clone();
        dst.output_nr = src.output_nr;
    }
    snapshot.set_requires_grad_flag(t.requires_grad());
    let r = f(&snapshot)?;
    write_result(t, &r)?;
    let (node, nr) = {
        let m = r.meta();
        (m.grad_fn.clone(), m.output_nr)
    };
    match node {
        Some(node) => {
            // Hooks registered on the old history stay with it; retain_grad moves along.
            let retains = t.meta().retains_grad;
            set_history(t, &node, nr);
            if retains {
                node.add_pre_hook(PreHook::Retain { output_nr: nr, tensor: t.downgrade() });
            }
        }
        None => {
            let mut m = t.meta();
            m.grad_fn = None;
            drop(m);
            t.set_requires_grad_flag(false);
        }
    }
    Ok(())
}

/// `inplace` with a direct kernel: when nothing is recorded, `direct(t)` writes the new value
/// into `t`'s memory in one pass (no result tensor, no copy back). It returns false where it
/// cannot (a dtype change, an aliasing operand), and the general path runs.
pub fn inplace_direct(
    t: &Tensor,
    others: &[Option<&Tensor>],
    direct: impl FnOnce(&Tensor) -> Result<bool>,
    f: impl FnOnce(&Tensor) -> Result<Tensor>,
) -> Result<()> {
    let mut ins: Vec<Option<&Tensor>> = vec![Some(t)];
    ins.extend_from_slice(others);
    if !needs_grad(&ins) && direct(t)? {
        return Ok(());
    }
    inplace(t, others, f)
}

/// An in-place view op (`t_()`, `squeeze_()`, ...): `t` takes the view `r` of itself, history
/// included.
pub fn adopt(t: &Tensor, r: &Tensor) {
    t.set_view(r.view());
    let (node, nr) = {
        let m = r.meta();
        (m.grad_fn.clone(), m.output_nr)
    };
    if let Some(node) = node {
        if !t.is_leaf() {
            set_history(t, &node, nr);
        }
    }
}

/// An in-place op on a view `t` of `base` (PyTorch's CopySlices): the op runs on the view's
/// old values taken from a snapshot of `base`; `base`'s history becomes "snapshot with that
/// region replaced by the result", and `t`'s history becomes that region of the new `base`.
fn inplace_on_view(t: &Tensor, base: &Tensor, f: impl FnOnce(&Tensor) -> Result<Tensor>) -> Result<()> {
    let (bl, tl) = (base.layout(), t.layout());
    if !bl.is_contiguous() || !Arc::ptr_eq(&base.storage(), &t.storage()) || tl.offset < bl.offset {
        return Err(Error::Runtime(format!(
            "in-place operation on a [{}] view whose base is not contiguous is not supported by rustgrad's autograd; apply it out of place",
            crate::layout::fmt_shape(&tl.shape)
        )));
    }
    let rel = crate::layout::Layout { offset: tl.offset - bl.offset, ..tl };
    let snapshot = clone(base);
    {
        let (src, mut dst) = (base.meta(), snapshot.meta());
        dst.grad_fn = src.grad_fn.clone();
        dst.output_nr = src.output_nr;
    }
    snapshot.set_requires_grad_flag(base.requires_grad());
    let old_view = super::functions::restrict(&snapshot, &rel)?;
    let r = f(&old_view)?;
    let new_base = super::functions::copy_slices(&snapshot, &rel, &r)?;
    write_result(t, &r)?;
    if let Some(node) = new_base.grad_fn() {
        set_history(base, &node, new_base.meta().output_nr);
        let shape = base.shape();
        record(|| Rule::Embed { shape, layout: rel.clone(), name: "AsStridedBackward0" }, &[Some(base)], &[t]);
    }
    Ok(())
}

fn write_result(t: &Tensor, r: &Tensor) -> Result<()> {
    // No silent downcast of category (float into int, int into bool), as in PyTorch.
    if r.dtype().category() > t.dtype().category() {
        return Err(Error::Cast { from: r.dtype(), to: t.dtype() });
    }
    if r.shape() != t.shape() {
        return Err(Error::Runtime(format!(
            "output with shape {} doesn't match the broadcast shape {}",
            crate::layout::fmt_shape(&t.shape()),
            crate::layout::fmt_shape(&r.shape())
        )));
    }
    t.copy_from(r)
}
