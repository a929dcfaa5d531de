//! `MiMalloc`, the global allocator the Python extension declares: mimalloc for every Rust
//! allocation (an eager op on small tensors makes about ten: tensor, storage, buffer, graph
//! node; glibc's malloc and free were 16 % of the instructions of a tiny forward + backward,
//! callgrind).
//!
//! Blocks are asked for with `mi_malloc` whenever its own alignment serves. `mi_malloc_aligned`
//! (what the `mimalloc` crate calls for every layout) went to its generic path for the
//! engine's 16-byte aligned structs: 143 instructions for a one-element result's storage
//! against ~25 for a plain block (callgrind).

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// Every mimalloc block is aligned to a word: its size classes are whole words.
const WORD: usize = std::mem::size_of::<usize>();

pub struct MiMalloc;

// SAFETY: every block comes from mimalloc with at least the layout's size and alignment
// (checked when the layout asks for more than a word), and goes back to `mi_free`.
unsafe impl GlobalAlloc for MiMalloc {
    #[inline]
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        block(l, mi::mi_malloc, mi::mi_malloc_aligned)
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        block(l, mi::mi_zalloc, mi::mi_zalloc_aligned)
    }

    #[inline]
    unsafe fn dealloc(&self, p: *mut u8, _l: Layout) {
        mi::mi_free(p as *mut c_void);
    }

    #[inline]
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
        if l.align() <= WORD {
            mi::mi_realloc(p as *mut c_void, new_size) as *mut u8
        } else {
            mi::mi_realloc_aligned(p as *mut c_void, new_size, l.align()) as *mut u8
        }
    }
}

/// A block for `l` from `plain(size)` when its address meets the alignment (a plain block is
/// usually aligned to 16, often more), else from `aligned(size, align)`.
#[inline(always)]
unsafe fn block(l: Layout, plain: unsafe extern "C" fn(usize) -> *mut c_void, aligned: unsafe extern "C" fn(usize, usize) -> *mut c_void) -> *mut u8 {
    let p = plain(l.size());
    if l.align() <= WORD || (p as usize) & (l.align() - 1) == 0 {
        return p as *mut u8;
    }
    mi::mi_free(p);
    aligned(l.size(), l.align()) as *mut u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_meet_their_layouts() {
        // Sizes that land in every small size class (also below the alignment, which plain
        // blocks of those classes do not meet), at alignments up to a page.
        let mut held = Vec::new();
        for align in [1usize, 8, 16, 32, 64, 4096] {
            for size in (1usize..=300).chain([1000, 4096, 70_000]) {
                let l = Layout::from_size_align(size, align).unwrap();
                // SAFETY: a non-zero size; each block is freed below with its layout.
                let (p, z) = unsafe { (MiMalloc.alloc(l), MiMalloc.alloc_zeroed(l)) };
                assert!(!p.is_null() && !z.is_null());
                assert_eq!(p as usize % align, 0, "alloc {l:?}");
                assert_eq!(z as usize % align, 0, "alloc_zeroed {l:?}");
                // SAFETY: z holds l.size() zeroed bytes.
                assert!(unsafe { std::slice::from_raw_parts(z, l.size()) }.iter().all(|&b| b == 0));
                held.push((p, l));
                held.push((z, l));
            }
        }
        for (p, l) in held {
            // SAFETY: allocated above with this layout; grown, its alignment must hold too.
            let q = unsafe { MiMalloc.realloc(p, l, l.size() * 2 + 8) };
            assert_eq!(q as usize % l.align(), 0, "realloc {l:?}");
            unsafe { MiMalloc.dealloc(q, Layout::from_size_align(l.size() * 2 + 8, l.align()).unwrap()) };
        }
    }
}
