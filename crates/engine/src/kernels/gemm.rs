//! Matrix multiply C = A·B for any numeric dtype. float32 goes to the SIMD kernels (`sgemm.rs`,
//! or `sgemm_nt.rs` for small A·Bᵀ products); other dtypes use cache-blocked loops over a
//! contiguous copy of B, rows of C split across threads.

use super::num::Num;
use super::strided::SendPtr;
use crate::parallel;

/// Row/column strides of a matrix operand, in elements.
#[derive(Clone, Copy)]
pub struct Mat<T> {
    pub ptr: *const T,
    pub rs: isize,
    pub cs: isize,
}

// SAFETY: a Mat is a read-only view; kernels only read through it while the operand is alive.
unsafe impl<T> Send for Mat<T> {}
unsafe impl<T> Sync for Mat<T> {}

const KB: usize = 256;
const NB: usize = 512;
const MB: usize = 16;

/// `c[m×n] (row-major, contiguous) = a[m×k] · b[k×n]`, split across the pool's threads.
pub fn gemm<T: Num + 'static>(m: usize, n: usize, k: usize, a: Mat<T>, b: Mat<T>, c: *mut T) {
    gemm_into(m, n, k, a, b, c, false, true)
}

/// `c = a·b`, or `c += a·b` with `accumulate`; `threads` false keeps it on this thread (callers
/// that parallelise over a batch). float32 goes to the packed SIMD kernel (`sgemm.rs`); other
/// dtypes use the cache-blocked loops below.
#[allow(clippy::too_many_arguments)]
pub fn gemm_into<T: Num + 'static>(m: usize, n: usize, k: usize, a: Mat<T>, b: Mat<T>, c: *mut T, accumulate: bool, threads: bool) {
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>() {
        let cast = |x: Mat<T>| Mat { ptr: x.ptr as *const f32, rs: x.rs, cs: x.cs };
        // A·Bᵀ with both operands contiguous along k and few rows: unpacked dot products, on
        // one thread. Each 6×4 tile ends in horizontal sums (one reduction tree per row of
        // four), which pay off against packing Bᵀ (16×16 register transposes; their cost
        // relative to the product falls as 1/m) when k is long for m: k ≥ 4m (env-switched
        // A/B on one thread: LeNet's fc1 forward 64×120×400 1.28×, 48×100×200 1.25×,
        // 64×64×256 1.15×; at k = 2m, 64×84×120, the same; at k = m 0.60×), or when B has so
        // few columns that a packed 32-wide strip would be mostly padding. Past 4M
        // multiply-adds a threaded caller gets the packed kernel on every core instead.
        // AVX2's 3 × 4 tiles stream four B rows from L2 per 12 multiply-adds: there the
        // packed kernel (Bᵀ packed in 8 × 8 register transposes) is faster past 8 rows of A
        // (A/B on one thread: LeNet's fc1 forward, 64×120×400, 1.43×; fc2's 64×84×120 1.18×),
        // the dot products up to 8 (6×75×784: 1.18×, packing Bᵀ outweighs the product).
        let long_k = k >= 4 * m && (super::sgemm_nt::lanes() >= 16 || m <= 8);
        let nt = a.cs == 1 && b.rs == 1 && a.rs > 0 && b.cs > 0 && m <= 64 && n <= 256 && k >= 64;
        if nt && (long_k || n <= 16) && (!threads || m * n * k < 1 << 22) {
            // From 1M multiply-adds a threaded caller splits B's rows (C's columns) between the
            // threads, in multiples of the 4-column tile (fc1's forward on two threads ran at
            // one thread's rate).
            let parts = if threads && m * n * k >= 1 << 20 { parallel::num_threads().min(n / 32).max(1) } else { 1 };
            let (pa, pb, pc) = (SendPtr(a.ptr as *mut f32), SendPtr(b.ptr as *mut f32), SendPtr(c as *mut f32));
            let done = std::sync::atomic::AtomicBool::new(true);
            parallel::for_chunks(parts, |p| {
                let (j0, j1) = (p * n / parts / 4 * 4, if p + 1 == parts { n } else { (p + 1) * n / parts / 4 * 4 });
                // SAFETY: columns j0..j1 of C belong to this part; B's rows j0..j1 lie inside B.
                let part = super::sgemm_nt::sgemm_nt(m, j1 - j0, k, pa.at(0), a.rs as usize, pb.at((j0 as isize) * b.cs), b.cs as usize, pc.at(j0 as isize), n, accumulate);
                if part.is_none() {
                    done.store(false, std::sync::atomic::Ordering::Relaxed);
                }
            });
            if done.into_inner() {
                return;
            }
        }
        super::sgemm::sgemm(m, n, k, cast(a), cast(b), c as *mut f32, accumulate, threads);
        return;
    }
    // B as contiguous rows so the inner loop streams.
    let mut bc: Vec<T> = Vec::with_capacity(k * n);
    for p in 0..k {
        for j in 0..n {
            // SAFETY: p < k, j < n lie inside B.
            bc.push(unsafe { *b.ptr.offset(p as isize * b.rs + j as isize * b.cs) });
        }
    }
    let (pc, pa) = (SendPtr(c), SendPtr(a.ptr as *mut T));
    let row_blocks = m.div_ceil(MB);
    let flops = m * n * k;
    let chunks = if !threads || flops < 64 * 64 * 64 { 1 } else { parallel::chunks_for(row_blocks * 1024, 1024).min(row_blocks) };
    let per = row_blocks.div_ceil(chunks.max(1));
    let bc = &bc;
    parallel::for_chunks(chunks, |ch| {
        let (r0, r1) = ((ch * per * MB).min(m), ((ch + 1) * per * MB).min(m));
        for i in (r0..r1).filter(|_| !accumulate) {
            // SAFETY: row i of C belongs to this chunk only.
            let row = unsafe { std::slice::from_raw_parts_mut(pc.at((i * n) as isize), n) };
            row.iter_mut().for_each(|x| *x = T::zero());
        }
        for i0 in (r0..r1).step_by(MB) {
            let i1 = (i0 + MB).min(r1);
            for p0 in (0..k).step_by(KB) {
                let p1 = (p0 + KB).min(k);
                for j0 in (0..n).step_by(NB) {
                    let j1 = (j0 + NB).min(n);
                    for i in i0..i1 {
                        let row = unsafe { std::slice::from_raw_parts_mut(pc.at((i * n + j0) as isize), j1 - j0) };
                        for p in p0..p1 {
                            let aip = unsafe { *pa.at(i as isize * a.rs + p as isize * a.cs) };
                            let brow = &bc[p * n + j0..p * n + j1];
                            for (cv, &bv) in row.iter_mut().zip(brow) {
                                *cv = Num::add(*cv, Num::mul(aip, bv));
                            }
                        }
                    }
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_naive_product_with_strided_a() {
        let (m, n, k) = (37, 29, 300);
        let a: Vec<f64> = (0..m * k).map(|i| ((i * 7) % 13) as f64 - 6.0).collect();
        let b: Vec<f64> = (0..k * n).map(|i| ((i * 5) % 11) as f64 - 5.0).collect();
        let mut c = vec![0.0; m * n];
        // A is read transposed from a k×m buffer to exercise strides.
        let at: Vec<f64> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
        gemm(m, n, k, Mat { ptr: at.as_ptr(), rs: 1, cs: m as isize }, Mat { ptr: b.as_ptr(), rs: n as isize, cs: 1 }, c.as_mut_ptr());
        for i in 0..m {
            for j in 0..n {
                let want: f64 = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
                assert_eq!(c[i * n + j], want);
            }
        }
    }
}
