//! The tape's vocabulary: a `Node` is one recorded op (or a leaf's AccumulateGrad); `Edge`s point
//! from a node to the nodes that produced its inputs; `Saved` keeps a tensor a backward needs
//! together with the version it had when saved.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use smallvec::SmallVec;

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::layout::Dims;
use crate::tensor::{Tensor, TensorImpl};

use super::rules::Rule;

/// A node's per-input or per-output entries: most ops have one or two, kept in the node
/// itself rather than in three more heap blocks per recorded op.
pub type Slots<T> = SmallVec<[T; 2]>;

/// Where a gradient goes: input slot `input_nr` of `node`.
#[derive(Clone)]
pub struct Edge {
    pub node: Arc<Node>,
    pub input_nr: usize,
}

/// Shape and dtype of a gradient slot: incoming gradients are summed to this shape (broadcast)
/// and cast to this dtype before they are handed on.
#[derive(Clone, Debug)]
pub struct TensorMeta {
    pub shape: Dims,
    pub dtype: DType,
}

impl TensorMeta {
    pub fn of(t: &Tensor) -> TensorMeta {
        let v = t.read_view();
        TensorMeta { shape: Dims::from_slice(&v.layout.shape), dtype: v.dtype }
    }
}

/// A user hook on a gradient: may return a replacement gradient.
pub trait GradHook: Send + Sync {
    fn call(&self, grad: &Tensor) -> Result<Option<Tensor>>;
}

#[derive(Clone)]
pub struct TensorHook {
    pub id: u64,
    pub f: Arc<dyn GradHook>,
}

/// Hooks a node runs on the gradient of one of its outputs before its backward.
pub enum PreHook {
    User { output_nr: usize, hook: TensorHook },
    /// `retain_grad()`: store the gradient into that (non-leaf) tensor's `.grad`.
    Retain { output_nr: usize, tensor: Weak<TensorImpl> },
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Monotonic ids: node sequence numbers (later nodes run first) and hook handles.
pub fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

pub enum Kind {
    /// A recorded op. `None` once its saved tensors were freed by a backward without
    /// `retain_graph`.
    Op(Mutex<Option<Rule>>),
    /// Sums incoming gradients into the leaf's `.grad`.
    Accumulate(Tensor),
}

pub struct Node {
    pub name: Cow<'static, str>,
    pub kind: Kind,
    /// One entry per differentiable input: `None` where that input needs no gradient.
    pub next: Slots<Option<Edge>>,
    /// Shape/dtype of each input (what its gradient must look like).
    pub inputs: Slots<TensorMeta>,
    /// Shape/dtype of each output (missing output gradients are zeros of this form).
    pub outputs: Slots<TensorMeta>,
    /// Whether the rule holds saved tensors (only those graphs refuse a second backward).
    pub saves: bool,
    pub seq: u64,
    pub pre_hooks: Mutex<Vec<PreHook>>,
}

impl Node {
    pub fn op(rule: Rule, next: Slots<Option<Edge>>, inputs: Slots<TensorMeta>, outputs: Slots<TensorMeta>) -> Node {
        Node {
            name: rule.name(),
            saves: rule.saves_tensors(),
            kind: Kind::Op(Mutex::new(Some(rule))),
            next,
            inputs,
            outputs,
            seq: next_id(),
            pre_hooks: Mutex::new(Vec::new()),
        }
    }
    pub fn accumulate(leaf: &Tensor) -> Node {
        let m = TensorMeta::of(leaf);
        Node {
            name: Cow::Borrowed("AccumulateGrad"),
            kind: Kind::Accumulate(leaf.clone()),
            next: Slots::new(),
            inputs: smallvec::smallvec![m.clone()],
            outputs: smallvec::smallvec![m],
            saves: false,
            seq: u64::MAX,
            pre_hooks: Mutex::new(Vec::new()),
        }
    }
    /// The leaf an AccumulateGrad node feeds.
    pub fn variable(&self) -> Option<&Tensor> {
        match &self.kind {
            Kind::Accumulate(t) => Some(t),
            Kind::Op(_) => None,
        }
    }
    pub fn num_outputs(&self) -> usize {
        self.outputs.len()
    }
    pub fn add_pre_hook(&self, h: PreHook) {
        self.pre_hooks.lock().push(h)
    }
    pub fn remove_hook(&self, id: u64) {
        self.pre_hooks.lock().retain(|h| !matches!(h, PreHook::User { hook, .. } if hook.id == id));
    }
    /// Frees saved tensors after a backward that did not ask to retain the graph.
    pub fn release(&self) {
        if let Kind::Op(rule) = &self.kind {
            if self.saves {
                rule.lock().take();
            }
        }
    }
}

/// Graphs are chains of Arcs; dropping a long one recursively could overflow the stack, so
/// nodes that become unreachable are torn down iteratively.
impl Drop for Node {
    fn drop(&mut self) {
        let mut stack: Vec<Arc<Node>> = self.next.drain(..).flatten().map(|e| e.node).collect();
        while let Some(mut n) = stack.pop() {
            // Emptied in place where possible: moving a node out of its Arc copies it whole.
            if let Some(inner) = Arc::get_mut(&mut n) {
                stack.extend(inner.next.drain(..).flatten().map(|e| e.node));
            } else if let Some(mut inner) = Arc::into_inner(n) {
                stack.extend(inner.next.drain(..).flatten().map(|e| e.node));
            }
        }
    }
}

/// A tensor saved for backward. Inputs are kept as they are (with their history); an op's own
/// outputs are kept as history-free aliases (the output holds the node, so a strong link back
/// would be a cycle) and get the node re-attached when unpacked.
pub struct Saved {
    data: Tensor,
    version: u64,
    output_nr: Option<usize>,
}

impl Saved {
    pub fn input(t: &Tensor) -> Saved {
        Saved { data: t.clone(), version: t.version(), output_nr: None }
    }
    pub fn output(t: &Tensor, output_nr: usize) -> Saved {
        Saved { data: t.alias(), version: t.version(), output_nr: Some(output_nr) }
    }
    /// The saved tensor, checking no in-place op changed it since it was saved.
    pub fn unpack(&self, node: &Arc<Node>) -> Result<Tensor> {
        let now = self.data.version();
        if now != self.version {
            let producer = match self.output_nr {
                Some(nr) => format!(", which is output {nr} of {},", node.name),
                None => match self.data.grad_fn() {
                    Some(f) => format!(", which is output {} of {},", self.data.meta().output_nr, f.name),
                    None => String::new(),
                },
            };
            return Err(Error::Runtime(format!(
                "one of the variables needed for gradient computation has been modified by an inplace operation: [rustgrad.{} {}]{producer} is at version {now}; expected version {} instead. Hint: the backtrace further above shows the operation that failed to compute its gradient. The variable in question was changed in there or anywhere later. Good luck!",
                self.data.dtype().legacy_name(),
                crate::layout::fmt_shape(&self.data.shape()),
                self.version
            )));
        }
        Ok(match self.output_nr {
            None => self.data.clone(),
            Some(nr) => {
                let t = self.data.alias();
                {
                    let mut m = t.meta();
                    m.grad_fn = Some(node.clone());
                    m.output_nr = nr;
                }
                t.set_requires_grad_flag(true);
                t
            }
        })
    }
}
