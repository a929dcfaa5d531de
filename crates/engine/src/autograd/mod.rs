//! Reverse-mode autograd. Ops record nodes as they run (`record.rs`, `functions.rs`); each
//! node's backward lives in `rules.rs`; `engine.rs` runs a graph backwards. `mode.rs` holds
//! the thread-local grad mode that `no_grad()` switches off.

pub mod engine;
pub mod functions;
pub mod mode;
pub mod nn;
pub mod node;
pub mod record;
pub mod rules;

use crate::error::{Error, Result};
use crate::layout::fmt_shape;
use crate::tensor::Tensor;

use node::Edge;

pub use mode::{is_grad_enabled, no_grad, set_grad_enabled, GradMode};

/// Pairs each output with its gradient (implicit ones only for one-element outputs).
fn roots(outputs: &[Tensor], grads: &[Option<Tensor>]) -> Result<Vec<(Edge, Tensor)>> {
    if !grads.is_empty() && grads.len() != outputs.len() {
        return Err(Error::Runtime(format!(
            "got {} tensors and {} gradients",
            outputs.len(),
            grads.len()
        )));
    }
    let mut out = Vec::with_capacity(outputs.len());
    for (i, t) in outputs.iter().enumerate() {
        let g = match grads.get(i).cloned().flatten() {
            Some(g) => {
                if g.shape() != t.shape() {
                    return Err(Error::Runtime(format!(
                        "Mismatch in shape: grad_output[{i}] has a shape of rustgrad.Size({}) and output[{i}] has a shape of rustgrad.Size({}).",
                        fmt_shape(&g.shape()),
                        fmt_shape(&t.shape())
                    )));
                }
                g
            }
            None => {
                if t.numel() != 1 {
                    return Err(Error::Runtime("grad can be implicitly created only for scalar outputs".into()));
                }
                if !t.dtype().is_float() {
                    return Err(Error::Runtime(format!(
                        "grad can be implicitly created only for real scalar outputs but got {}",
                        t.dtype()
                    )));
                }
                crate::ops::factory::full(&t.shape(), crate::dtype::Scalar::Float(1.0), t.dtype())?
            }
        };
        let edge = record::gradient_edge(t).ok_or_else(|| {
            Error::Runtime(format!("element {i} of tensors does not require grad and does not have a grad_fn"))
        })?;
        out.push((edge, g));
    }
    Ok(out)
}

/// `torch.autograd.backward`: sums gradients into the `.grad` of the leaves (or only of
/// `inputs`). `retain_graph` defaults to `create_graph`.
pub fn backward(
    outputs: &[Tensor],
    grads: &[Option<Tensor>],
    retain_graph: Option<bool>,
    create_graph: bool,
    inputs: Option<&[Tensor]>,
) -> Result<()> {
    if inputs.is_some_and(|i| i.is_empty()) {
        return Err(Error::Runtime("'inputs' argument to backward() cannot be empty.".into()));
    }
    let roots = roots(outputs, grads)?;
    let opts = engine::Options { keep_graph: retain_graph.unwrap_or(create_graph), create_graph, accumulate: true };
    engine::run(&roots, inputs, &opts)?;
    Ok(())
}

/// `torch.autograd.grad`: the gradients of `outputs` with respect to `inputs`, returned rather
/// than accumulated.
pub fn grad(
    outputs: &[Tensor],
    grads: &[Option<Tensor>],
    inputs: &[Tensor],
    retain_graph: Option<bool>,
    create_graph: bool,
    allow_unused: bool,
) -> Result<Vec<Option<Tensor>>> {
    let roots = roots(outputs, grads)?;
    let opts = engine::Options { keep_graph: retain_graph.unwrap_or(create_graph), create_graph, accumulate: false };
    let res = engine::run(&roots, Some(inputs), &opts)?;
    if !allow_unused {
        if let Some(i) = res.iter().position(|g| g.is_none()) {
            return Err(Error::Runtime(format!(
                "The differentiated Tensor at index {i} appears to not have been used in the graph. Set allow_unused=True if this is the desired behavior."
            )));
        }
    }
    Ok(res)
}
