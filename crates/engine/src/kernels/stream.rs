//! Non-temporal ("streaming") stores for large outputs. A plain store first reads the line it
//! writes (read-for-ownership), so `a + b` into a 64 MB result moves 16 bytes per float where 12
//! are needed, and fills the caches with a result too big to stay there. Streaming stores write
//! whole lines past the caches. Measured in C on this machine (16M floats, one thread): the add
//! 14.8 → 10.1 ms, and add-then-sum of the result 23–24 → 19.5–19.9 ms; at 4M floats 3.8–4.4 →
//! 3.2 ms; at 1M the result no longer stays in L2 for its reader, and the pair loses (0.69 →
//! 0.79 ms). Hence the threshold.
//!
//! Values are computed into a 1 KiB block that stays in L1 and copied out from there, so any
//! loop (and any element type) can stream its output. Measured in C, 16M floats: 1 KiB blocks
//! with 64-byte stores ran as fast as storing straight from the loop (11.0–12.4 against
//! 11.1–11.4 ms); 4 KiB blocks, or 16-byte stores, lost most of the gain (13.4–15.4 ms), the
//! loads of the inputs stalling while a long copy ran. Without AVX-512 the copy falls back to
//! 16-byte stores (SSE2, on every x86-64 CPU).

/// Outputs of at least this many bytes are streamed.
pub const MIN_BYTES: usize = 16 << 20;

/// Bytes per L1 block of `write`.
const BLOCK: usize = 1024;

/// Whether an output of `bytes` bytes should be written with streaming stores.
#[inline]
pub fn wanted(bytes: usize) -> bool {
    cfg!(target_arch = "x86_64") && bytes >= MIN_BYTES
}

#[repr(align(64))]
struct Block([u8; BLOCK]);

/// Whether a run of `bytes` bytes, in a call that streams (`streamed`, from `wanted`), is long
/// enough to go through `write`'s blocks.
#[inline(always)]
pub fn run_streams(streamed: bool, bytes: usize) -> bool {
    streamed && bytes >= BLOCK
}

/// Writes `len` values to `dst` as `fill(block, start)` produces them: `block` (in L1) receives
/// the values of positions `start..start + block.len()` and is streamed out after each fill.
///
/// Full blocks are filled through a slice of constant length, so LLVM unrolls the fill loop
/// completely (constant offsets into the block, no loop counter); with the length a variable,
/// as for the last block, `a + b` on 16M floats took 1.3–1.7× as long (8.5–13.7 against
/// 6.1–8.1 ms, one thread, Zen 4, the same buffers and the same loop written out by hand
/// beside it).
///
/// Out of line, with its own `wide` (pass `fill` as `#[inline(always)]`, so it is compiled for
/// the vector level inside): inlined into the callers' per-run closures, this loop made them
/// heavier for every run, streamed or not, and a product with 8-wide broadcast rows (a run per
/// 8 values) lost 10–24 %. Callers keep their plain loop for the runs that do not stream.
///
/// # Safety
/// `dst` must be valid for `len` writes of `T`, and `T` must be a plain number type (every type
/// the engine stores: all-zero bits are a valid value).
#[inline(never)]
pub unsafe fn write<T: Copy>(dst: *mut T, len: usize, mut fill: impl FnMut(&mut [T], usize)) {
    super::simd::wide(
        #[inline(always)]
        || {
            let mut block = Block([0; BLOCK]);
            let per = BLOCK / size_of::<T>();
            // SAFETY: the block is 64-byte aligned, BLOCK bytes long and zeroed (a valid T each).
            let buf = std::slice::from_raw_parts_mut(block.0.as_mut_ptr() as *mut T, per);
            let full = len - len % per;
            for start in (0..full).step_by(per) {
                fill(&mut buf[..per], start);
                copy_bytes(buf.as_ptr() as *const u8, dst.add(start) as *mut u8, per * size_of::<T>());
            }
            if full < len {
                let n = len - full;
                fill(&mut buf[..n], full);
                copy_bytes(buf.as_ptr() as *const u8, dst.add(full) as *mut u8, n * size_of::<T>());
            }
            fence();
        },
    )
}

/// Copies `len` values from `src` to `dst` (not overlapping) with streaming stores.
///
/// # Safety
/// `src` valid for `len` reads and `dst` for `len` writes; the two do not overlap.
pub unsafe fn copy<T: Copy>(src: *const T, dst: *mut T, len: usize) {
    copy_bytes(src as *const u8, dst as *mut u8, len * size_of::<T>());
    fence();
}

/// Makes this thread's streaming stores visible before anything it writes next: they are weakly
/// ordered, and the pool's completion flag alone would not order them.
#[inline(always)]
fn fence() {
    // SAFETY: sfence has no preconditions.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        std::arch::x86_64::_mm_sfence()
    };
}

/// Inlined, with the line loop: called once per 1 KiB block, an out-of-line copy (a call, a
/// `vzeroupper`, a second call) cost `a + b` on 16M floats 10–15 % (in C, Zen 4).
#[inline(always)]
unsafe fn copy_bytes(src: *const u8, dst: *mut u8, bytes: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        // Plain copies up to dst's first 64-byte boundary and after its last one.
        let head = dst.align_offset(64).min(bytes);
        std::ptr::copy_nonoverlapping(src, dst, head);
        let lines = (bytes - head) / 64;
        if super::simd::has_avx512() {
            x86::lines512(src.add(head), dst.add(head), lines);
        } else {
            x86::lines128(src.add(head), dst.add(head), lines);
        }
        let done = head + 64 * lines;
        std::ptr::copy_nonoverlapping(src.add(done), dst.add(done), bytes - done);
    }
    #[cfg(not(target_arch = "x86_64"))]
    std::ptr::copy_nonoverlapping(src, dst, bytes);
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// `lines` 64-byte lines from `src` to the 64-byte aligned `dst`, one store each.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn lines512(src: *const u8, dst: *mut u8, lines: usize) {
        for i in 0..lines {
            _mm512_stream_si512(dst.add(64 * i) as *mut __m512i, _mm512_loadu_si512(src.add(64 * i) as *const __m512i));
        }
    }

    /// The same in 16-byte stores (SSE2).
    #[inline(always)]
    pub unsafe fn lines128(src: *const u8, dst: *mut u8, lines: usize) {
        let (s, d) = (src as *const __m128i, dst as *mut __m128i);
        for i in 0..4 * lines {
            _mm_stream_si128(d.add(i), _mm_loadu_si128(s.add(i)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_and_copy_place_every_value_at_any_alignment() {
        for offset in 0..5usize {
            for len in [0usize, 1, 3, 17, 1023, 1024, 1025, 5000] {
                let mut dst = vec![0u8; offset + len * 4 + 8];
                let p = unsafe { dst.as_mut_ptr().add(offset) } as *mut f32;
                // SAFETY: p has room for len unaligned f32s; written and read unaligned below.
                unsafe {
                    let mut tmp = vec![0f32; len];
                    write(tmp.as_mut_ptr(), len, |b, s| b.iter_mut().enumerate().for_each(|(i, y)| *y = (s + i) as f32 * 0.5));
                    copy_bytes(tmp.as_ptr() as *const u8, p as *mut u8, len * 4);
                    fence();
                    for i in 0..len {
                        assert_eq!(std::ptr::read_unaligned(p.add(i)), i as f32 * 0.5, "offset {offset} len {len} at {i}");
                    }
                }
                assert!(dst[..offset].iter().all(|&b| b == 0) && dst[offset + len * 4..].iter().all(|&b| b == 0));
                let src: Vec<u16> = (0..len as u16).collect();
                let mut out = vec![7u16; len + 3];
                unsafe { copy(src.as_ptr(), out.as_mut_ptr().add(1), len) };
                assert_eq!(&out[1..len + 1], &src[..]);
                assert_eq!((out[0], out[len + 1], out[len + 2]), (7, 7, 7));
            }
        }
    }
}
