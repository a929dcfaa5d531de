//! `Tensor`: a shared handle to storage + layout + dtype. Cloning the handle is cheap and keeps
//! identity; the view fields sit behind a lock because a few ops (`t_`, `.data = x`) change a
//! tensor's metadata in place, as in PyTorch.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::{Mutex, MutexGuard, RecursiveRwLock, RecursiveRwLockReadGuard};

use crate::autograd::node::{Node, TensorHook};

use crate::device::Device;
use crate::dtype::{DType, Element, Scalar};
use crate::error::{runtime_err, Result};
use crate::layout::{Dims, Layout};
use crate::storage::Storage;

/// What a tensor looks at: a storage, how to walk it, and as which dtype.
#[derive(Clone)]
pub struct View {
    pub storage: Arc<Storage>,
    pub layout: Layout,
    pub dtype: DType,
}

impl View {
    /// Pointer to the first element of the view (the layout offset applied).
    pub fn ptr<T>(&self) -> *mut T {
        // SAFETY: offset lies within the storage by construction of every layout.
        unsafe { (self.storage.as_ptr() as *mut T).add(self.layout.offset) }
    }
    pub fn shape(&self) -> &[usize] {
        &self.layout.shape
    }
    pub fn numel(&self) -> usize {
        self.layout.numel()
    }
    pub fn device(&self) -> Device {
        self.storage.device()
    }
    /// A 0-dim view of new storage holding `value` converted to `dtype`.
    pub fn scalar(value: Scalar, dtype: DType) -> View {
        let v = View::uninit(&[], dtype);
        // SAFETY: a fresh buffer of one element of `dtype`.
        crate::dispatch!(dtype, T => unsafe { *v.ptr::<T>() = T::from_scalar(value) });
        v
    }
    /// A contiguous view of new storage whose contents the caller will overwrite.
    pub fn uninit(shape: &[usize], dtype: DType) -> View {
        let n = crate::layout::numel(shape);
        View { storage: Arc::new(Storage::uninit(n * dtype.size())), layout: Layout::contiguous(shape), dtype }
    }
}

/// What autograd knows about a tensor. A leaf has no `grad_fn`; a computed tensor is output
/// `output_nr` of its `grad_fn`. Hooks on leaves live here; hooks on computed tensors live on
/// their `grad_fn` (they fire when the gradient for that output arrives).
#[derive(Default)]
pub struct AutogradMeta {
    pub grad_fn: Option<Arc<Node>>,
    pub output_nr: usize,
    pub grad: Option<Tensor>,
    /// The leaf's AccumulateGrad node while some graph holds it (reused by later graphs).
    pub accumulator: Weak<Node>,
    pub retains_grad: bool,
    pub hooks: Vec<TensorHook>,
    /// The tensor this one is a differentiable view of (in-place writes must reach it).
    pub base: Option<Tensor>,
}

/// A tensor's view borrowed under its read lock (`Tensor::read_view`).
pub type ViewGuard<'a> = RecursiveRwLockReadGuard<'a, View>;

pub struct TensorImpl {
    /// Recursive: readers never wait behind a queued writer, so an op may borrow the same
    /// tensor's view twice (`a + a`). Writers (`set_view`) are rare.
    view: RecursiveRwLock<View>,
    /// True for leaves that require grad and for every tensor with a `grad_fn`; read on every
    /// op, so it sits outside the metadata lock.
    requires_grad: AtomicBool,
    /// The view's element count, kept beside it (written under the view's write lock) so the
    /// binding's per-op size checks need no lock.
    numel: AtomicUsize,
    meta: Mutex<AutogradMeta>,
}

#[derive(Clone)]
pub struct Tensor(pub(crate) Arc<TensorImpl>);

impl Tensor {
    pub fn from_view(view: View) -> Tensor {
        Tensor(Arc::new(TensorImpl {
            numel: AtomicUsize::new(view.numel()),
            view: RecursiveRwLock::new(view),
            requires_grad: AtomicBool::new(false),
            meta: Mutex::new(AutogradMeta::default()),
        }))
    }
    /// The autograd metadata, locked.
    pub fn meta(&self) -> MutexGuard<'_, AutogradMeta> {
        self.0.meta.lock()
    }
    pub fn downgrade(&self) -> Weak<TensorImpl> {
        Arc::downgrade(&self.0)
    }
    pub fn upgrade(w: &Weak<TensorImpl>) -> Option<Tensor> {
        w.upgrade().map(Tensor)
    }
    /// A new tensor object over the same view, with no autograd history (`detach()`).
    pub fn alias(&self) -> Tensor {
        Tensor::from_view(self.view())
    }
    pub fn grad_fn(&self) -> Option<Arc<Node>> {
        self.0.meta.lock().grad_fn.clone()
    }
    pub fn is_leaf(&self) -> bool {
        self.0.meta.lock().grad_fn.is_none()
    }
    /// Whether nothing else holds this tensor object or its storage (so it may be adopted
    /// instead of copied).
    pub fn is_exclusive(&self) -> bool {
        Arc::strong_count(&self.0) == 1 && Arc::strong_count(&self.0.view.read().storage) == 1
    }
    /// Identity of the tensor object (for hooks and maps keyed by tensor).
    pub fn id(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }
    pub fn from_storage(storage: Arc<Storage>, layout: Layout, dtype: DType) -> Tensor {
        Tensor::from_view(View { storage, layout, dtype })
    }
    /// A contiguous tensor whose contents the caller will overwrite.
    pub fn uninit(shape: &[usize], dtype: DType) -> Tensor {
        Tensor::from_view(View::uninit(shape, dtype))
    }
    pub fn zeros(shape: &[usize], dtype: DType) -> Tensor {
        let n = crate::layout::numel(shape);
        Tensor::from_storage(Arc::new(Storage::zeroed(n * dtype.size())), Layout::contiguous(shape), dtype)
    }
    pub fn from_vec<T: Element>(data: Vec<T>, shape: &[usize]) -> Result<Tensor> {
        if data.len() != crate::layout::numel(shape) {
            return runtime_err(format!("{} values cannot fill shape {:?}", data.len(), shape));
        }
        Ok(Tensor::from_storage(Arc::new(Storage::from_vec(data)), Layout::contiguous(shape), T::DTYPE))
    }
    /// A 0-dim tensor holding `value` converted to `dtype`.
    pub fn scalar(value: Scalar, dtype: DType) -> Tensor {
        Tensor::from_view(View::scalar(value, dtype))
    }

    /// A consistent snapshot of the tensor's view (cheap: an Arc clone and a small layout).
    pub fn view(&self) -> View {
        self.0.view.read().clone()
    }
    /// The view, borrowed under its read lock (no clone); hold it only for the op's own duration.
    pub fn read_view(&self) -> ViewGuard<'_> {
        self.0.view.read()
    }
    /// Replaces storage/layout/dtype in place (`t_()`, `.data = x`, `set_`).
    pub fn set_view(&self, view: View) {
        let mut v = self.0.view.write();
        self.0.numel.store(view.numel(), Ordering::Relaxed);
        *v = view;
    }
    /// A new tensor sharing this one's storage with another layout.
    pub fn with_layout(&self, layout: Layout) -> Tensor {
        let v = self.view();
        Tensor::from_storage(v.storage, layout, v.dtype)
    }
    pub fn layout(&self) -> Layout {
        self.0.view.read().layout.clone()
    }
    pub fn shape(&self) -> Dims {
        self.0.view.read().layout.shape.clone()
    }
    pub fn dtype(&self) -> DType {
        self.0.view.read().dtype
    }
    pub fn device(&self) -> Device {
        self.0.view.read().storage.device()
    }
    pub fn ndim(&self) -> usize {
        self.0.view.read().layout.ndim()
    }
    pub fn numel(&self) -> usize {
        self.0.numel.load(Ordering::Relaxed)
    }
    pub fn is_contiguous(&self) -> bool {
        self.0.view.read().layout.is_contiguous()
    }
    pub fn storage(&self) -> Arc<Storage> {
        self.0.view.read().storage.clone()
    }
    /// Address of the first element, as `Tensor.data_ptr()` reports it.
    pub fn data_ptr(&self) -> usize {
        let v = self.0.view.read();
        v.storage.as_ptr() as usize + v.layout.offset * v.dtype.size()
    }
    /// Same tensor object (not merely same storage).
    pub fn same(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
    pub fn requires_grad(&self) -> bool {
        self.0.requires_grad.load(Ordering::Relaxed)
    }
    /// Sets the flag only; `autograd::set_requires_grad` is the checked user-facing form.
    pub(crate) fn set_requires_grad_flag(&self, on: bool) {
        self.0.requires_grad.store(on, Ordering::Relaxed)
    }
    /// Records an in-place write for autograd's saved-tensor checks.
    pub fn bump_version(&self) {
        self.0.view.read().storage.bump_version()
    }
    pub fn version(&self) -> u64 {
        self.0.view.read().storage.version()
    }

    /// The single value of a one-element tensor.
    pub fn item(&self) -> Result<Scalar> {
        let v = self.view();
        if v.numel() != 1 {
            return runtime_err(format!(
                "a Tensor with {} elements cannot be converted to Scalar",
                v.numel()
            ));
        }
        Ok(crate::dispatch!(v.dtype, T => unsafe { (*v.ptr::<T>()).to_scalar() }))
    }
    /// Elements in row-major order, converted to `T`.
    pub fn to_vec<T: Element>(&self) -> Vec<T> {
        let c = crate::ops::cast::to_dtype(self, T::DTYPE).contiguous();
        let v = c.view();
        // SAFETY: contiguous tensor of dtype T with numel elements.
        unsafe { std::slice::from_raw_parts(v.ptr::<T>(), v.numel()) }.to_vec()
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor(shape={:?}, dtype={})", &self.shape()[..], self.dtype().name())
    }
}
