//! A probe of the machine's FP32 FMA peak: independent fused multiply-adds on the widest
//! vectors the CPU has, on every thread of the pool at once. GEMM efficiency is reported as a
//! share of this number.

use crate::parallel;

/// Measured GFLOP/s of `threads` threads each running an FMA-only loop (2 flops per lane).
pub fn fma_peak_gflops(threads: usize) -> f64 {
    let threads = threads.max(1);
    const ITERS: usize = 4_000_000;
    let flops_per_iter = fma_block_flops();
    let run = || {
        std::hint::black_box(fma_block(ITERS));
    };
    run(); // warm-up: clocks up, code paged in
    let wall = std::time::Instant::now();
    parallel::for_chunks_on(threads, |_| run());
    let wall = wall.elapsed().as_secs_f64();
    (threads * ITERS * flops_per_iter) as f64 / wall / 1e9
}

/// Accumulator chains of the AVX2 probe: 12 of its 16 registers (16 chains spilled to memory
/// and measured half the FMA rate; 10 cover a 5-cycle latency on two ports).
const AVX2_CHAINS: usize = 12;

/// Flops of one `fma_block` iteration on this CPU.
fn fma_block_flops() -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return 16 * 16 * 2;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            return AVX2_CHAINS * 8 * 2;
        }
    }
    16 * 2
}

fn fma_block(iters: usize) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: each kernel runs only when its features were detected.
        if std::arch::is_x86_feature_detected!("avx512f") {
            return unsafe { x86::fma_avx512(iters) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            return unsafe { x86::fma_avx2(iters) };
        }
    }
    let mut acc = [1f32; 16];
    for _ in 0..iters {
        for a in acc.iter_mut() {
            *a = a.mul_add(0.999_999, 1e-7);
        }
    }
    acc.iter().sum()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// `$chains` independent accumulator chains: enough to cover FMA latency on two ports.
    macro_rules! fma_loop {
        ($iters:expr, $chains:expr, $set1:ident, $fmadd:ident, $add:ident, $reduce:expr) => {{
            let (m, a) = ($set1(0.999_999), $set1(1e-7));
            let mut acc = [$set1(1.0); $chains];
            for _ in 0..$iters {
                for v in acc.iter_mut() {
                    *v = $fmadd(*v, m, a);
                }
            }
            let mut s = acc[0];
            for v in &acc[1..] {
                s = $add(s, *v);
            }
            $reduce(s)
        }};
    }

    #[target_feature(enable = "avx512f")]
    pub unsafe fn fma_avx512(iters: usize) -> f32 {
        fma_loop!(iters, 16, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, |s| _mm512_reduce_add_ps(s))
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn fma_avx2(iters: usize) -> f32 {
        fma_loop!(iters, super::AVX2_CHAINS, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, |s: __m256| {
            let mut lanes = [0f32; 8];
            _mm256_storeu_ps(lanes.as_mut_ptr(), s);
            lanes.iter().sum::<f32>()
        })
    }
}
