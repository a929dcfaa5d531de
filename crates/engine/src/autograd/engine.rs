//! Running the tape backwards: collect the nodes reachable from the roots, count each node's
//! incoming edges, then execute nodes in dependency order (most recently recorded first among
//! the ready ones), summing gradients per input slot. The single place where a gradient is
//! summed back to its input's (broadcast) shape and cast to its dtype is `fit`.

use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::layout::fmt_shape;
use crate::tensor::Tensor;

use super::mode::GradMode;
use super::node::{Edge, Kind, Node, PreHook, TensorMeta};

/// Where `autograd.grad` (or `backward(inputs=...)`) wants a gradient captured: the gradient
/// arriving at input slot `slot` of `node`.
struct Capture {
    node: *const Node,
    slot: usize,
}

struct Task {
    node: Arc<Node>,
    deps: usize,
    needed: bool,
    buffer: Vec<Option<Tensor>>,
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Ready(u64, usize);

pub struct Options {
    pub keep_graph: bool,
    pub create_graph: bool,
    /// Sum gradients into leaves' `.grad` (backward) rather than only capturing (grad).
    pub accumulate: bool,
}

/// Backpropagates `grads` from `roots`. With `inputs`, returns the gradient flowing into each
/// of them (and, when `accumulate`, sums it into their `.grad`); without, accumulates into every
/// leaf reached.
pub fn run(roots: &[(Edge, Tensor)], inputs: Option<&[Tensor]>, opts: &Options) -> Result<Vec<Option<Tensor>>> {
    let _mode = GradMode::set(opts.create_graph);
    let mut index: HashMap<*const Node, usize> = HashMap::new();
    let mut tasks: Vec<Task> = Vec::new();
    let mut parents: Vec<Vec<usize>> = Vec::new();
    let mut stack: Vec<Arc<Node>> = Vec::new();
    let visit = |n: &Arc<Node>, index: &mut HashMap<*const Node, usize>, tasks: &mut Vec<Task>, stack: &mut Vec<Arc<Node>>| -> usize {
        let key = Arc::as_ptr(n);
        if let Some(&i) = index.get(&key) {
            return i;
        }
        let i = tasks.len();
        index.insert(key, i);
        tasks.push(Task { node: n.clone(), deps: 0, needed: inputs.is_none(), buffer: vec![None; n.num_outputs()] });
        stack.push(n.clone());
        i
    };
    for (e, _) in roots {
        let i = visit(&e.node, &mut index, &mut tasks, &mut stack);
        tasks[i].deps += 1;
    }
    while let Some(n) = stack.pop() {
        let pi = index[&Arc::as_ptr(&n)];
        for e in n.next.iter().flatten() {
            let ci = visit(&e.node, &mut index, &mut tasks, &mut stack);
            tasks[ci].deps += 1;
            if parents.len() < tasks.len() {
                parents.resize(tasks.len(), Vec::new());
            }
            parents[ci].push(pi);
        }
    }
    parents.resize(tasks.len(), Vec::new());

    // Captures: the slot each requested input's gradient arrives at.
    let mut captures: Vec<Option<Capture>> = Vec::new();
    if let Some(ins) = inputs {
        for t in ins {
            let edge = super::record::gradient_edge(t).ok_or_else(|| {
                Error::Runtime("One of the differentiated Tensors does not require grad".into())
            })?;
            let key = Arc::as_ptr(&edge.node);
            if let Some(&i) = index.get(&key) {
                // Everything upstream of a captured slot must run.
                let mut todo = vec![i];
                while let Some(j) = todo.pop() {
                    if !tasks[j].needed {
                        tasks[j].needed = true;
                        todo.extend(parents[j].iter().copied());
                    }
                }
            }
            captures.push(Some(Capture { node: key, slot: edge.input_nr }));
        }
    }
    let mut captured: Vec<Option<Tensor>> = vec![None; captures.len()];

    let mut ready = BinaryHeap::new();
    for (e, g) in roots {
        let i = index[&Arc::as_ptr(&e.node)];
        let meta = e.node.outputs[e.input_nr].clone();
        let g = fit(g.clone(), &meta, "backward", e.input_nr)?;
        add_into(&mut tasks[i].buffer[e.input_nr], g)?;
        tasks[i].deps -= 1;
        if tasks[i].deps == 0 && tasks[i].needed {
            ready.push(Ready(tasks[i].node.seq, i));
        }
    }

    while let Some(Ready(_, i)) = ready.pop() {
        let node = tasks[i].node.clone();
        let mut grads = std::mem::take(&mut tasks[i].buffer);
        run_pre_hooks(&node, &mut grads)?;
        for (c, slot) in captures.iter().zip(captured.iter_mut()) {
            if let Some(c) = c {
                if c.node == Arc::as_ptr(&node) {
                    *slot = grads[c.slot].clone();
                }
            }
        }
        let out: Vec<Option<Tensor>> = match &node.kind {
            Kind::Accumulate(leaf) => {
                if opts.accumulate && inputs.is_none() {
                    if let Some(g) = grads.into_iter().next().flatten() {
                        accumulate_grad(leaf, g, opts.create_graph)?;
                    }
                }
                continue;
            }
            Kind::Op(rule) => {
                let needs: Vec<bool> = node
                    .next
                    .iter()
                    .map(|e| e.as_ref().is_some_and(|e| index.get(&Arc::as_ptr(&e.node)).is_some_and(|&c| tasks[c].needed)))
                    .collect();
                if !needs.iter().any(|&n| n) {
                    vec![None; node.next.len()]
                } else if grads.iter().all(|g| g.is_none()) {
                    vec![None; node.next.len()]
                } else {
                    for (g, m) in grads.iter_mut().zip(&node.outputs) {
                        if g.is_none() {
                            *g = Some(Tensor::zeros(&m.shape, m.dtype));
                        }
                    }
                    let guard = rule.lock();
                    let Some(r) = guard.as_ref() else {
                        return Err(Error::Runtime("Trying to backward through the graph a second time (or directly access saved tensors after they have already been freed). Saved intermediate values of the graph are freed when you call .backward() or autograd.grad(). Specify retain_graph=True if you need to backward through the graph a second time or if you need to access saved tensors after calling backward.".into()));
                    };
                    let grads: Vec<Tensor> = grads.into_iter().flatten().collect();
                    let out = r.backward(&node, &grads, &needs)?;
                    drop(guard);
                    if out.len() != node.next.len() {
                        return Err(Error::Runtime(format!(
                            "function {} returned an incorrect number of gradients (expected {}, got {})",
                            node.name,
                            node.next.len(),
                            out.len()
                        )));
                    }
                    out
                }
            }
        };
        if !opts.keep_graph {
            node.release();
        }
        for (k, (e, g)) in node.next.iter().zip(out).enumerate() {
            let Some(e) = e else { continue };
            let Some(&c) = index.get(&Arc::as_ptr(&e.node)) else { continue };
            if !tasks[c].needed {
                continue;
            }
            if let Some(g) = g {
                let g = fit(g, &node.inputs[k], &node.name, k)?;
                add_into(&mut tasks[c].buffer[e.input_nr], g)?;
            }
            tasks[c].deps -= 1;
            if tasks[c].deps == 0 {
                ready.push(Ready(tasks[c].node.seq, c));
            }
        }
    }
    if opts.accumulate {
        if let Some(ins) = inputs {
            for (t, g) in ins.iter().zip(&captured) {
                if let Some(g) = g {
                    accumulate_grad(t, g.clone(), opts.create_graph)?;
                }
            }
        }
    }
    Ok(captured)
}

/// Makes a gradient fit its slot: summed over broadcast dims to the slot's shape, cast to its
/// dtype. Any other shape is a bug in a backward rule (or a custom Function) and is reported.
fn fit(g: Tensor, meta: &TensorMeta, name: &str, index: usize) -> Result<Tensor> {
    let mut g = g;
    let shape = g.shape();
    if shape != meta.shape {
        if crate::layout::broadcast_shapes(&meta.shape, &shape).map(|s| s == shape).unwrap_or(false) {
            g = super::functions::sum_to(&g, &meta.shape)?;
        } else {
            return Err(Error::Runtime(format!(
                "Function {name} returned an invalid gradient at index {index} - got {} but expected shape compatible with {}",
                fmt_shape(&shape),
                fmt_shape(&meta.shape)
            )));
        }
    }
    if g.dtype() != meta.dtype {
        g = super::functions::to_dtype(&g, meta.dtype)?;
    }
    Ok(g)
}

fn add_into(slot: &mut Option<Tensor>, g: Tensor) -> Result<()> {
    *slot = Some(match slot.take() {
        None => g,
        Some(prev) => super::functions::add(&prev, &g)?,
    });
    Ok(())
}

fn run_pre_hooks(node: &Arc<Node>, grads: &mut [Option<Tensor>]) -> Result<()> {
    let user: Vec<(usize, Arc<dyn super::node::GradHook>)> = match &node.kind {
        Kind::Accumulate(leaf) => leaf.meta().hooks.iter().map(|h| (0, h.f.clone())).collect(),
        Kind::Op(_) => node
            .pre_hooks
            .lock()
            .iter()
            .filter_map(|h| match h {
                PreHook::User { output_nr, hook } => Some((*output_nr, hook.f.clone())),
                PreHook::Retain { .. } => None,
            })
            .collect(),
    };
    for (nr, f) in user {
        if let Some(g) = &grads[nr] {
            if let Some(new) = f.call(g)? {
                grads[nr] = Some(new);
            }
        }
    }
    let retains: Vec<(usize, Tensor)> = node
        .pre_hooks
        .lock()
        .iter()
        .filter_map(|h| match h {
            PreHook::Retain { output_nr, tensor } => Tensor::upgrade(tensor).map(|t| (*output_nr, t)),
            PreHook::User { .. } => None,
        })
        .collect();
    for (nr, t) in retains {
        if let Some(g) = &grads[nr] {
            accumulate_grad(&t, g.clone(), super::mode::is_grad_enabled())?;
        }
    }
    Ok(())
}

/// Sums `g` into `t.grad`: the first gradient is stored (copied unless nothing else can see
/// it), later ones are added in place, or out of place when building a higher-order graph.
pub fn accumulate_grad(t: &Tensor, g: Tensor, create_graph: bool) -> Result<()> {
    let prev = t.meta().grad.clone();
    let new = match prev {
        None if create_graph => g,
        // A freshly computed gradient nobody else sees is kept as is; anything shared (a
        // user-supplied gradient, a view of one) is copied so `.grad` never aliases it.
        None if g.is_exclusive() && g.is_contiguous() && g.grad_fn().is_none() => g,
        None => crate::ops::cast::clone(&g),
        Some(old) if create_graph || old.requires_grad() => super::functions::add(&old, &g)?,
        Some(old) => {
            let s = crate::ops::elementwise::binary(crate::ops::elementwise::BinaryOp::Add, (&old).into(), (&g).into())?;
            old.copy_from(&s)?;
            old
        }
    };
    t.meta().grad = Some(new);
    Ok(())
}
