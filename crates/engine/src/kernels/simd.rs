//! Hot loops compiled for the widest vectors this CPU has. The engine is built for baseline
//! x86-64 (SSE2) so one wheel runs everywhere; `wide(f)` runs `f` inside a function compiled
//! with AVX-512 (or AVX2+FMA) enabled, chosen once at run time, so LLVM inlines the loop there
//! and vectorises it 16 (or 8) float lanes wide instead of 4.

use std::sync::OnceLock;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Level {
    Avx512,
    Avx2,
    Baseline,
}

fn level() -> Level {
    static L: OnceLock<Level> = OnceLock::new();
    *L.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            let has = |f: &str| match f {
                "avx512" => {
                    std::arch::is_x86_feature_detected!("avx512f")
                        && std::arch::is_x86_feature_detected!("avx512bw")
                        && std::arch::is_x86_feature_detected!("avx512dq")
                        && std::arch::is_x86_feature_detected!("avx512vl")
                }
                _ => std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma"),
            };
            let forced = std::env::var("RUSTGRAD_SIMD").ok();
            return match forced.as_deref() {
                Some("baseline") => Level::Baseline,
                Some("avx2") if has("avx2") => Level::Avx2,
                _ if has("avx512") => Level::Avx512,
                _ if has("avx2") => Level::Avx2,
                _ => Level::Baseline,
            };
        }
        #[allow(unreachable_code)]
        Level::Baseline
    })
}

/// The vector level in use (`RUSTGRAD_SIMD=baseline|avx2` caps it; tests compare levels).
pub fn level_name() -> &'static str {
    match level() {
        Level::Avx512 => "avx512",
        Level::Avx2 => "avx2",
        Level::Baseline => "baseline",
    }
}

/// True when the AVX-512 kernels (`vmath16`, `reduce16`) may run.
#[inline]
pub fn has_avx512() -> bool {
    level() == Level::Avx512
}

/// True when AVX2 (alone or under AVX-512) may run.
#[inline]
pub fn has_avx2() -> bool {
    level() != Level::Baseline
}

/// True when the level in use is AVX2 with FMA (not AVX-512): the AVX2 forms of `reduce16`.
#[inline]
pub fn has_avx2_only() -> bool {
    level() == Level::Avx2
}

/// Runs `f` compiled for the widest vector level available.
#[inline(always)]
pub fn wide<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        match level() {
            // SAFETY: the level was detected on this CPU.
            Level::Avx512 => return unsafe { x86::avx512(f) },
            Level::Avx2 => return unsafe { x86::avx2(f) },
            Level::Baseline => {}
        }
    }
    f()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
    pub unsafe fn avx512<R>(f: impl FnOnce() -> R) -> R {
        f()
    }

    #[target_feature(enable = "avx2,fma,bmi1,bmi2,lzcnt,popcnt")]
    pub unsafe fn avx2<R>(f: impl FnOnce() -> R) -> R {
        f()
    }
}
