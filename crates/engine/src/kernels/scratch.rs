//! Per-thread scratch buffers reused across kernel calls (GEMM packing panels, convolution
//! columns), so that hot loops on small problems do not allocate. Each use names a `Slot`; a
//! slot already borrowed further up the stack falls back to a fresh buffer.

use std::cell::RefCell;

/// Types any bit pattern of which is a valid value (so recycled bytes can be handed out).
///
/// # Safety
/// Implementors must be plain numbers with no invalid bit patterns.
pub unsafe trait Plain: Copy + 'static {}
unsafe impl Plain for f32 {}
unsafe impl Plain for f64 {}

#[derive(Clone, Copy)]
pub enum Slot {
    GemmB = 0,
    GemmA = 1,
    GemmEdge = 2,
    ConvCols = 3,
    ConvPlanes = 4,
    ConvRows = 5,
}

thread_local! {
    static SLOTS: [RefCell<Vec<f64>>; 6] = const { [const { RefCell::new(Vec::new()) }; 6] };
}

/// Runs `f` on a buffer of `len` values of `T` whose contents are unspecified (stale data).
pub fn with<T: Plain, R>(slot: Slot, len: usize, f: impl FnOnce(&mut [T]) -> R) -> R {
    let words = (len * std::mem::size_of::<T>()).div_ceil(8);
    SLOTS.with(|slots| match slots[slot as usize].try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < words {
                buf.resize(words, 0.0);
            }
            // SAFETY: the buffer holds at least len·size_of::<T>() initialised bytes, aligned
            // for f64 (≥ T's alignment), and T accepts any bit pattern.
            f(unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr() as *mut T, len) })
        }
        Err(_) => {
            let mut fresh = vec![0f64; words];
            // SAFETY: as above, on a fresh buffer.
            f(unsafe { std::slice::from_raw_parts_mut(fresh.as_mut_ptr() as *mut T, len) })
        }
    })
}
