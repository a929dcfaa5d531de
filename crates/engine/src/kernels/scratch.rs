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

/// One cache line: buffers are made of these so that they start on a 64-byte boundary. (A
/// `Vec<f64>` of packing-panel size comes from `mmap` at 16 bytes past a page boundary, and every
/// 64-byte vector load from it then straddles two cache lines, 3 % of sgemm 1024³ on 1 thread.)
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([f64; 8]);

const EMPTY: Line = Line([0.0; 8]);

thread_local! {
    static SLOTS: [RefCell<Vec<Line>>; 6] = const { [const { RefCell::new(Vec::new()) }; 6] };
}

/// Runs `f` on a 64-byte aligned buffer of `len` values of `T` whose contents are unspecified
/// (stale data).
pub fn with<T: Plain, R>(slot: Slot, len: usize, f: impl FnOnce(&mut [T]) -> R) -> R {
    let lines = (len * std::mem::size_of::<T>()).div_ceil(64);
    SLOTS.with(|slots| match slots[slot as usize].try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < lines {
                buf.resize(lines, EMPTY);
            }
            // SAFETY: the buffer holds at least len·size_of::<T>() initialised bytes, aligned
            // to 64 (≥ T's alignment), and T accepts any bit pattern.
            f(unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr() as *mut T, len) })
        }
        Err(_) => {
            let mut fresh = vec![EMPTY; lines];
            // SAFETY: as above, on a fresh buffer.
            f(unsafe { std::slice::from_raw_parts_mut(fresh.as_mut_ptr() as *mut T, len) })
        }
    })
}
