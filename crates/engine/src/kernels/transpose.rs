//! Float32 transposes of up-to-16 × 16 blocks in AVX-512 registers, and of up-to-8 × 8 blocks
//! in AVX2 ones (rounds of lane shuffles instead of one scalar load and store per element): a
//! GEMM's transposed operand packed into strips, a convolution gradient moved into channel
//! lanes.

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
    fn block8_transposes_every_shape() {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            let src: Vec<f32> = (0..8 * 11).map(|i| i as f32).collect();
            for rows in 0..=8 {
                for cols in 0..=8 {
                    let mut dst = vec![-1.0f32; 8 * 9];
                    // SAFETY: 8 rows of 11 readable values; 8 destination rows of 9.
                    unsafe { super::block8(src.as_ptr(), 11, rows, cols, dst.as_mut_ptr(), 9) };
                    for j in 0..8 {
                        for i in 0..9 {
                            let want = if j >= cols || i == 8 { -1.0 } else if i < rows { src[i * 11 + j] } else { 0.0 };
                            assert_eq!(dst[j * 9 + i], want, "rows {rows} cols {cols} at ({j}, {i})");
                        }
                    }
                }
            }
        }
    }

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

/// `dst[j·ldd + i] = src[i·lds + j]` for `i < rows`, `j < cols` (both ≤ 8); each of the `cols`
/// destination rows gets 8 values, zero past `rows`.
///
/// # Safety
/// The source rows must hold `cols` readable values and the destination rows 8 writable ones;
/// the CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
pub unsafe fn block8(src: *const f32, lds: usize, rows: usize, cols: usize, dst: *mut f32, ldd: usize) {
    use std::arch::x86_64::*;
    let mut r = [_mm256_setzero_ps(); 8];
    if cols == 8 {
        for (i, v) in r.iter_mut().enumerate().take(rows) {
            *v = _mm256_loadu_ps(src.add(i * lds));
        }
    } else {
        let idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let m = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols as i32), idx);
        for (i, v) in r.iter_mut().enumerate().take(rows) {
            *v = _mm256_maskload_ps(src.add(i * lds), m);
        }
    }
    let out = transpose8(r);
    for (j, v) in out.iter().enumerate().take(cols) {
        _mm256_storeu_ps(dst.add(j * ldd), *v);
    }
}

/// The 8 × 8 transpose: lane j of result i is lane i of `r[j]`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub unsafe fn transpose8(r: [std::arch::x86_64::__m256; 8]) -> [std::arch::x86_64::__m256; 8] {
    use std::arch::x86_64::*;
    // Pairs, quads, then 128-bit halves.
    let t0 = _mm256_unpacklo_ps(r[0], r[1]);
    let t1 = _mm256_unpackhi_ps(r[0], r[1]);
    let t2 = _mm256_unpacklo_ps(r[2], r[3]);
    let t3 = _mm256_unpackhi_ps(r[2], r[3]);
    let t4 = _mm256_unpacklo_ps(r[4], r[5]);
    let t5 = _mm256_unpackhi_ps(r[4], r[5]);
    let t6 = _mm256_unpacklo_ps(r[6], r[7]);
    let t7 = _mm256_unpackhi_ps(r[6], r[7]);
    let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
    let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
    let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
    let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
    let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
    let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
    let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
    let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
    [
        _mm256_permute2f128_ps::<0x20>(u0, u4),
        _mm256_permute2f128_ps::<0x20>(u1, u5),
        _mm256_permute2f128_ps::<0x20>(u2, u6),
        _mm256_permute2f128_ps::<0x20>(u3, u7),
        _mm256_permute2f128_ps::<0x31>(u0, u4),
        _mm256_permute2f128_ps::<0x31>(u1, u5),
        _mm256_permute2f128_ps::<0x31>(u2, u6),
        _mm256_permute2f128_ps::<0x31>(u3, u7),
    ]
}
