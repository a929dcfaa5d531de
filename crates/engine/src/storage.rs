//! Reference-counted buffers shared by every view of a tensor: either our own 64-byte aligned
//! allocation or memory borrowed from another owner (a NumPy array) that we keep alive.

use std::alloc::Layout as AllocLayout;
use std::any::Any;
use std::cell::UnsafeCell;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::device::Device;

use crate::allocator::{self, ALIGN};

enum Owner {
    Heap(AllocLayout),
    /// Keeps the foreign owner alive as long as the storage; it frees the memory itself.
    Foreign(#[allow(dead_code)] Box<dyn Any + Send + Sync>),
    Empty,
    /// The bytes live in the storage itself (`Small`).
    Inline,
}

/// Buffers of up to this many bytes live inside the storage: one-element tensors and the
/// numbers an op broadcasts are most of a tiny op's allocations, and a heap block for each was
/// a malloc/free pair per op. 16-byte aligned like malloc's own small blocks.
const INLINE_BYTES: usize = 16;
#[repr(align(16))]
struct Small(UnsafeCell<[u8; INLINE_BYTES]>);

/// A non-null pointer aligned for every dtype, for buffers of zero bytes.
fn aligned_dangling() -> NonNull<u8> {
    NonNull::<u8>::dangling().with_addr(std::num::NonZeroUsize::MIN.saturating_add(ALIGN - 1))
}

pub struct Storage {
    /// The buffer, except for `Owner::Inline` (the storage moves after it is built).
    ptr: NonNull<u8>,
    small: Small,
    nbytes: usize,
    owner: Owner,
    device: Device,
    /// Bumped by every in-place write; autograd checks it on tensors saved for backward.
    version: AtomicU64,
}

// The buffer is plain memory; concurrent access is coordinated by the ops (like PyTorch).
unsafe impl Send for Storage {}
unsafe impl Sync for Storage {}

impl Storage {
    fn alloc(nbytes: usize, zeroed: bool) -> Storage {
        let owned = |ptr, owner| Storage { ptr, small: Small(UnsafeCell::new([0; INLINE_BYTES])), nbytes, owner, device: Device::Cpu, version: AtomicU64::new(0) };
        if nbytes == 0 {
            return owned(aligned_dangling(), Owner::Empty);
        }
        if nbytes <= INLINE_BYTES {
            return owned(aligned_dangling(), Owner::Inline);
        }
        let (ptr, layout) = allocator::allocate(nbytes, zeroed);
        owned(ptr, Owner::Heap(layout))
    }
    /// Uninitialised bytes: for outputs that a kernel fully overwrites.
    pub fn uninit(nbytes: usize) -> Storage {
        Storage::alloc(nbytes, false)
    }
    pub fn zeroed(nbytes: usize) -> Storage {
        Storage::alloc(nbytes, true)
    }
    /// Wraps memory owned by `owner`.
    ///
    /// # Safety
    /// `ptr` must stay valid for `nbytes` bytes as long as `owner` lives.
    pub unsafe fn borrowed(ptr: *mut u8, nbytes: usize, owner: Box<dyn Any + Send + Sync>) -> Storage {
        let ptr = NonNull::new(ptr).unwrap_or_else(aligned_dangling);
        Storage { ptr, small: Small(UnsafeCell::new([0; INLINE_BYTES])), nbytes, owner: Owner::Foreign(owner), device: Device::Cpu, version: AtomicU64::new(0) }
    }
    pub fn from_vec<T: Copy>(v: Vec<T>) -> Storage {
        let nbytes = std::mem::size_of_val(v.as_slice());
        let s = Storage::uninit(nbytes);
        // SAFETY: fresh allocation of exactly nbytes.
        unsafe { std::ptr::copy_nonoverlapping(v.as_ptr() as *const u8, s.as_ptr(), nbytes) };
        s
    }
    pub fn as_ptr(&self) -> *mut u8 {
        match self.owner {
            Owner::Inline => self.small.0.get() as *mut u8,
            _ => self.ptr.as_ptr(),
        }
    }
    pub fn nbytes(&self) -> usize {
        self.nbytes
    }
    pub fn device(&self) -> Device {
        self.device
    }
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Relaxed)
    }
    pub fn bump_version(&self) {
        self.version.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        if let Owner::Heap(layout) = self.owner {
            allocator::release(self.ptr, layout);
        }
    }
}
