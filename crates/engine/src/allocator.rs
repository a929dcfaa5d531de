//! The caching allocator: large buffers are kept after their storage is dropped and handed out
//! again, so big fresh results (`a + b` on millions of elements, im2col columns) reuse memory
//! that is already mapped instead of paying the kernel's page faults on every op. Small buffers
//! go straight to the system allocator, which caches them well already.

use std::alloc::{self, Layout};
use std::collections::BTreeMap;
use std::ptr::NonNull;

use parking_lot::Mutex;

pub const ALIGN: usize = 64;
/// Below this size blocks are only 16-byte aligned (vector loads are unaligned anyway).
const SMALL: usize = 4096;
/// Buffers from this size up are cached.
const MIN_CACHED: usize = 1 << 17;
/// Most bytes kept cached at once (beyond it, freed buffers go back to the system).
const MAX_CACHED: usize = 512 << 20;
/// Blocks from this size up start on a 2 MiB boundary and ask Linux for transparent huge pages
/// (`madvise`; machines set to `madvise` mode give them to no one else). With 4 KiB pages a
/// memory-bound loop over 64 MB operands crosses a page, and a TLB entry, every 1024 floats,
/// and the L2 prefetchers stop at each page's end: `a + b` on 16M floats, in C, 7.2–7.8 ms
/// against 5.7–6.0 ms on huge pages (Zen 4, one thread; NumPy advises the same from 4 MiB).
const HUGE: usize = 4 << 20;
const HUGE_ALIGN: usize = 2 << 20;

struct Pool {
    /// Free blocks by size class.
    free: BTreeMap<usize, Vec<usize>>,
    cached: usize,
}

static POOL: Mutex<Pool> = Mutex::new(Pool { free: BTreeMap::new(), cached: 0 });

/// Sizes are rounded up to one of four steps per power of two (≤ 25 % slack), so buffers of
/// nearby sizes share a class.
fn size_class(n: usize) -> usize {
    if n < MIN_CACHED {
        return n;
    }
    let step = 1usize << (usize::BITS - 1 - n.leading_zeros()).saturating_sub(2);
    n.div_ceil(step) * step
}

/// The layout a block of size class `size` is allocated and freed with.
fn layout_of(size: usize) -> Layout {
    // Tiny blocks take malloc's own 16-byte alignment: a 64-byte `memalign` splits a chunk and
    // frees the pieces, which was a tenth of a one-element op's time.
    let align = match size {
        s if s < SMALL => 16,
        s if s >= HUGE => HUGE_ALIGN,
        _ => ALIGN,
    };
    match Layout::from_size_align(size, align) {
        Ok(l) => l,
        Err(_) => alloc::handle_alloc_error(Layout::new::<u8>()),
    }
}

/// Asks for huge pages over a fresh block, before its first touch (advice only: a kernel
/// without transparent huge pages, or set to `never`, keeps 4 KiB pages).
fn advise_huge(ptr: *mut u8, size: usize) {
    #[cfg(target_os = "linux")]
    {
        extern "C" {
            fn madvise(addr: *mut std::ffi::c_void, len: usize, advice: std::ffi::c_int) -> std::ffi::c_int;
        }
        const MADV_HUGEPAGE: std::ffi::c_int = 14;
        // SAFETY: the range is one block of ours, page aligned (2 MiB); madvise only advises.
        unsafe { madvise(ptr as *mut std::ffi::c_void, size, MADV_HUGEPAGE) };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (ptr, size);
}

/// A 64-byte aligned block (2 MiB aligned from 4 MiB up) of at least `nbytes` (> 0); returns
/// it with the layout to free it by.
pub fn allocate(nbytes: usize, zeroed: bool) -> (NonNull<u8>, Layout) {
    let size = size_class(nbytes);
    let layout = layout_of(size);
    if size >= MIN_CACHED {
        let reused = {
            let mut p = POOL.lock();
            let got = p.free.get_mut(&size).and_then(|v| v.pop());
            if got.is_some() {
                p.cached -= size;
            }
            got
        };
        if let Some(addr) = reused {
            let ptr = NonNull::new(addr as *mut u8).unwrap_or_else(|| alloc::handle_alloc_error(layout));
            if zeroed {
                // SAFETY: the block holds `size` >= nbytes bytes.
                unsafe { std::ptr::write_bytes(ptr.as_ptr(), 0, nbytes) };
            }
            return (ptr, layout);
        }
    }
    if size >= HUGE {
        // SAFETY: layout has non-zero size.
        let raw = NonNull::new(unsafe { alloc::alloc(layout) }).unwrap_or_else(|| alloc::handle_alloc_error(layout));
        advise_huge(raw.as_ptr(), size);
        if zeroed {
            // SAFETY: the block holds `size` >= nbytes bytes.
            unsafe { std::ptr::write_bytes(raw.as_ptr(), 0, nbytes) };
        }
        return (raw, layout);
    }
    // SAFETY: layout has non-zero size.
    let raw = unsafe { if zeroed { alloc::alloc_zeroed(layout) } else { alloc::alloc(layout) } };
    (NonNull::new(raw).unwrap_or_else(|| alloc::handle_alloc_error(layout)), layout)
}

/// Returns a block from `allocate`: kept for reuse. When the cache is full, the largest cached
/// blocks are given back to the system to make room, so the sizes a program uses now replace
/// the ones it used before (rather than the cache staying full of stale sizes).
pub fn release(ptr: NonNull<u8>, layout: Layout) {
    let size = layout.size();
    if (MIN_CACHED..=MAX_CACHED).contains(&size) {
        let mut evicted = Vec::new();
        {
            let mut p = POOL.lock();
            while p.cached + size > MAX_CACHED {
                let Some(mut class) = p.free.last_entry() else { break };
                let bytes = *class.key();
                let addr = class.get_mut().pop();
                if class.get().is_empty() {
                    class.remove();
                }
                if let Some(a) = addr {
                    p.cached -= bytes;
                    evicted.push((a, bytes));
                }
            }
            p.cached += size;
            p.free.entry(size).or_default().push(ptr.as_ptr() as usize);
        }
        for (addr, bytes) in evicted {
            // SAFETY: every cached block came from `allocate` with this size class.
            unsafe { alloc::dealloc(addr as *mut u8, layout_of(bytes)) };
        }
        return;
    }
    // SAFETY: allocated by `allocate` with this layout.
    unsafe { alloc::dealloc(ptr.as_ptr(), layout) };
}

/// Frees every cached block (`torch.cuda.empty_cache`'s CPU counterpart); returns the bytes freed.
pub fn empty_cache() -> usize {
    let mut p = POOL.lock();
    let freed = p.cached;
    for (size, blocks) in std::mem::take(&mut p.free) {
        for addr in blocks {
            // SAFETY: every cached block came from `allocate` with this size class.
            unsafe { alloc::dealloc(addr as *mut u8, layout_of(size)) };
        }
    }
    p.cached = 0;
    freed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_round_up_by_at_most_a_quarter() {
        for n in [MIN_CACHED, MIN_CACHED + 1, 3 << 20, (5 << 20) + 7, 1 << 30] {
            let c = size_class(n);
            assert!(c >= n && c - n <= n / 4, "{n} -> {c}");
        }
        assert_eq!(size_class(100), 100);
    }

    #[test]
    fn freed_blocks_are_reused_and_zeroed_on_request() {
        let (p, l) = allocate(1 << 20, false);
        unsafe { std::ptr::write_bytes(p.as_ptr(), 7, 1 << 20) };
        release(p, l);
        let (q, l2) = allocate((1 << 20) - 5, true);
        assert_eq!(l2.size(), l.size());
        let s = unsafe { std::slice::from_raw_parts(q.as_ptr(), (1 << 20) - 5) };
        assert!(s.iter().all(|&b| b == 0));
        release(q, l2);
    }

    #[test]
    fn huge_blocks_are_2_mib_aligned_zeroed_and_freed_with_their_layout() {
        let (p, l) = allocate((6 << 20) + 3, true);
        assert_eq!(p.as_ptr() as usize % HUGE_ALIGN, 0);
        assert_eq!(l.align(), HUGE_ALIGN);
        let s = unsafe { std::slice::from_raw_parts(p.as_ptr(), (6 << 20) + 3) };
        assert!(s.iter().all(|&b| b == 0));
        release(p, l);
        empty_cache(); // frees it with layout_of(its class): the 2 MiB alignment it was made with
    }
}
