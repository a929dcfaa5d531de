//! Float32 transposes of up-to-16 × 16 blocks in AVX-512 registers (four rounds of lane
//! shuffles instead of one scalar load and store per element): a GEMM's transposed operand
//! packed into strips, a convolution gradient moved into channel lanes.

/// `dst[j·ldd + i] = src[i·lds + j]` for `i < rows`, `j < cols` (both ≤ 16); each of the `cols`
/// destination rows gets `store` (≥ rows, ≤ 16) values, zero past `rows`.
///
/// # Safety
/// The source rows must hold `cols` readable values and the destination rows `store` writable
/// ones; the CPU must have AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn block16(src: *const f32, lds: usize, rows: usize, cols: usize, dst: *mut f32, ldd: usize, store: usize) {
    use std::arch::x86_64::*;
    let lanes = |n: usize| -> __mmask16 { if n >= 16 { 0xFFFF } else { ((1u32 << n) - 1) as __mmask16 } };
    let mut block = [_mm512_setzero_ps(); 16];
    let cm = lanes(cols);
    for (i, v) in block.iter_mut().enumerate().take(rows) {
        *v = _mm512_maskz_loadu_ps(cm, src.add(i * lds));
    }
    let out = transpose16(block);
    let sm = lanes(store);
    for (j, v) in out.iter().enumerate().take(cols) {
        _mm512_mask_storeu_ps(dst.add(j * ldd), sm, *v);
    }
}

/// The 16 × 16 transpose: lane j of result i is lane i of `r[j]`. (Plain loops: closures would
/// not inherit the caller's target features, and the intrinsics would become calls.)
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub unsafe fn transpose16(r: [std::arch::x86_64::__m512; 16]) -> [std::arch::x86_64::__m512; 16] {
    use std::arch::x86_64::*;
    // 32-bit, then 64-bit interleaves within 128-bit lanes: b[4g + j] lane k holds element
    // 4k + j of rows 4g..4g+4.
    let mut a = [_mm512_setzero_ps(); 16];
    for i in (0..16).step_by(2) {
        a[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        a[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    let mut b = [_mm512_setzero_ps(); 16];
    for g in 0..4 {
        for h in 0..2 {
            let (x, y) = (_mm512_castps_pd(a[4 * g + h]), _mm512_castps_pd(a[4 * g + 2 + h]));
            b[4 * g + 2 * h] = _mm512_castpd_ps(_mm512_unpacklo_pd(x, y));
            b[4 * g + 2 * h + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(x, y));
        }
    }
    // 128-bit lanes: result 4k + j gathers lane k of b[j], b[4 + j], b[8 + j], b[12 + j].
    let mut c = [_mm512_setzero_ps(); 16];
    for j in 0..4 {
        let d0 = _mm512_shuffle_f32x4::<0x44>(b[j], b[4 + j]);
        let d1 = _mm512_shuffle_f32x4::<0xEE>(b[j], b[4 + j]);
        let e0 = _mm512_shuffle_f32x4::<0x44>(b[8 + j], b[12 + j]);
        let e1 = _mm512_shuffle_f32x4::<0xEE>(b[8 + j], b[12 + j]);
        c[j] = _mm512_shuffle_f32x4::<0x88>(d0, e0);
        c[4 + j] = _mm512_shuffle_f32x4::<0xDD>(d0, e0);
        c[8 + j] = _mm512_shuffle_f32x4::<0x88>(d1, e1);
        c[12 + j] = _mm512_shuffle_f32x4::<0xDD>(d1, e1);
    }
    c
}

#[cfg(test)]
mod tests {
    #[test]
    fn block16_transposes_partial_blocks() {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            return;
        }
        let src: Vec<f32> = (0..20 * 20).map(|i| i as f32).collect();
        for (rows, cols, store) in [(16, 16, 16), (5, 11, 5), (5, 11, 16), (16, 3, 16)] {
            let mut dst = vec![-1.0f32; 16 * 20];
            // SAFETY: 20-wide buffers hold every row read or written.
            unsafe { super::block16(src.as_ptr().add(1), 20, rows, cols, dst.as_mut_ptr(), 20, store) };
            for j in 0..16 {
                for i in 0..20 {
                    let want = if j >= cols || i >= store { -1.0 } else if i < rows { src[1 + i * 20 + j] } else { 0.0 };
                    assert_eq!(dst[j * 20 + i], want, "{rows}x{cols} store {store}: ({j}, {i})");
                }
            }
        }
    }
}
