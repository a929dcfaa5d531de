//! Running the tape backwards: collect the nodes reachable from the roots, count each node's
//! incoming edges, then execute nodes in dependency order (most recently recorded first among
//! the ready ones), summing gradients per input slot. The single place where a gradient is
//! summed back to its input's (broadcast) shape and cast to its dtype is `fit`.

use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use smallvec::SmallVec;

use crate::error::{Error, Result};
use crate::layout::fmt_shape;
use crate::tensor::Tensor;

use super::mode::GradMode;
use super::node::{Edge, Kind, Node, PreHook, Slots, TensorMeta};

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
    buffer: Slots<Option<Tensor>>,
    /// The task of each of the node's `next` edges (`None` where the edge is).
    children: SmallVec<[Option<usize>; 2]>,
}

/// Node address → task. The keys are pointers, so a multiply is hash enough (the default
/// SipHash was a tenth of a small graph's backward).
type NodeIndex = HashMap<*const Node, usize, BuildHasherDefault<PtrHasher>>;

#[derive(Default)]
struct PtrHasher(u64);

impl Hasher for PtrHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_usize(&mut self, x: usize) {
        // The high bits pick the bucket in hashbrown, so fold the product down.
        let h = (x as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = h ^ (h >> 29);
    }
}

/// For each task, the tasks whose node has an edge to it.
fn parents_of(tasks: &[Task]) -> Vec<Vec<usize>> {
    let mut parents = vec![Vec::new(); tasks.len()];
    for (pi, t) in tasks.iter().enumerate() {
        for &c in t.children.iter().flatten() {
            parents[c].push(pi);
        }
    }
    parents
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
    let mut index: NodeIndex = HashMap::with_capacity_and_hasher(32, Default::default());
    let mut tasks: Vec<Task> = Vec::with_capacity(32);
    let mut stack: Vec<usize> = Vec::with_capacity(8);
    let visit = |n: &Arc<Node>, index: &mut NodeIndex, tasks: &mut Vec<Task>, stack: &mut Vec<usize>| -> usize {
        *index.entry(Arc::as_ptr(n)).or_insert_with(|| {
            let i = tasks.len();
            tasks.push(Task { node: n.clone(), deps: 0, needed: inputs.is_none(), buffer: smallvec::smallvec![None; n.num_outputs()], children: SmallVec::new() });
            stack.push(i);
            i
        })
    };
    for (e, _) in roots {
        let i = visit(&e.node, &mut index, &mut tasks, &mut stack);
        tasks[i].deps += 1;
    }
    while let Some(pi) = stack.pop() {
        let n = tasks[pi].node.clone();
        for e in n.next.iter() {
            let ci = e.as_ref().map(|e| visit(&e.node, &mut index, &mut tasks, &mut stack));
            if let Some(ci) = ci {
                tasks[ci].deps += 1;
            }
            tasks[pi].children.push(ci);
        }
    }

    // Captures: the slot each requested input's gradient arrives at.
    let mut captures: Vec<Option<Capture>> = Vec::new();
    let mut parents: Option<Vec<Vec<usize>>> = None;
    if let Some(ins) = inputs {
        for t in ins {
            let edge = super::record::gradient_edge(t).ok_or_else(|| {
                Error::Runtime("One of the differentiated Tensors does not require grad".into())
            })?;
            let key = Arc::as_ptr(&edge.node);
            if let Some(&i) = index.get(&key) {
                // Everything upstream of a captured slot must run.
                let parents = parents.get_or_insert_with(|| parents_of(&tasks));
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
                let needs: SmallVec<[bool; 4]> = tasks[i].children.iter().map(|c| c.is_some_and(|c| tasks[c].needed)).collect();
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
                    let grads: Slots<Tensor> = grads.into_iter().flatten().collect();
                    let out = r.backward(&node, &grads, &needs[..])?;
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
        let children = std::mem::take(&mut tasks[i].children);
        for (k, ((e, g), c)) in node.next.iter().zip(out).zip(children).enumerate() {
            let (Some(e), Some(c)) = (e, c) else { continue };
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
    let (same_shape, same_dtype) = {
        let v = g.read_view();
        (v.layout.shape == meta.shape, v.dtype == meta.dtype)
    };
    if same_shape && same_dtype {
        return Ok(g);
    }
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

/// Sums `g` into a task's input slot. A partial sum nothing else sees takes `g` in place when
/// the graph of the backward itself is not being recorded.
fn add_into(slot: &mut Option<Tensor>, g: Tensor) -> Result<()> {
    use crate::ops::elementwise::{binary_into, BinaryOp::Add};
    *slot = Some(match slot.take() {
        None => g,
        Some(prev) if !super::mode::is_grad_enabled() && prev.is_exclusive() && binary_into(Add, (&prev).into(), (&g).into(), &prev)? => prev,
        Some(prev) => super::functions::add(&prev, &g)?,
    });
    Ok(())
}

fn run_pre_hooks(node: &Arc<Node>, grads: &mut [Option<Tensor>]) -> Result<()> {
    let none = match &node.kind {
        Kind::Accumulate(leaf) => leaf.meta().hooks.is_empty(),
        Kind::Op(_) => true,
    };
    if none && node.pre_hooks.lock().is_empty() {
        return Ok(());
    }
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
            use crate::ops::elementwise::{binary, binary_into, BinaryOp::Add};
            // One pass into the existing gradient where it can take the sum as it is.
            if !binary_into(Add, (&old).into(), (&g).into(), &old)? {
                let s = binary(Add, (&old).into(), (&g).into())?;
                old.copy_from(&s)?;
            }
            old
        }
    };
    t.meta().grad = Some(new);
    Ok(())
}
