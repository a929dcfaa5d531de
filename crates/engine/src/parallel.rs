//! The engine's thread pool: kernels split work into chunks and run them here.
//! `set_num_threads` swaps the pool, so the count can change at run time like PyTorch's.

use std::sync::Arc;

use parking_lot::RwLock;
use rayon::prelude::*;

static POOL: RwLock<Option<Arc<rayon::ThreadPool>>> = RwLock::new(None);

fn build(n: usize) -> Arc<rayon::ThreadPool> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("rustgrad-{i}"))
        .build()
        .or_else(|_| rayon::ThreadPoolBuilder::new().num_threads(1).build());
    match pool {
        Ok(p) => Arc::new(p),
        // Thread creation is exhausted: fall back to the global pool's single shared instance.
        Err(_) => Arc::new(rayon::ThreadPoolBuilder::new().build().unwrap_or_else(|e| panic!("{e}"))),
    }
}

fn pool() -> Arc<rayon::ThreadPool> {
    if let Some(p) = POOL.read().as_ref() {
        return p.clone();
    }
    let mut w = POOL.write();
    w.get_or_insert_with(|| build(default_threads())).clone()
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

pub fn num_threads() -> usize {
    pool().current_num_threads()
}

/// In a child process right after `fork()`: the inherited pool's threads do not exist there, and
/// dropping the pool would wait on them forever, so it is leaked; the child builds a fresh pool
/// on first use.
pub fn forget_pool_after_fork() {
    if let Some(old) = POOL.write().take() {
        std::mem::forget(old);
    }
}

pub fn set_num_threads(n: usize) {
    let old = POOL.write().replace(build(n.max(1)));
    drop(old);
}

/// Elements per chunk for memory-bound loops: big enough to amortise scheduling.
pub const GRAIN: usize = 32 * 1024;

/// Runs `f(chunk_index)` for `0..chunks`, in parallel when there is more than one chunk.
pub fn for_chunks(chunks: usize, f: impl Fn(usize) + Sync + Send) {
    if chunks <= 1 || rayon::current_thread_index().is_some() {
        (0..chunks).for_each(f);
        return;
    }
    let p = pool();
    if p.current_num_threads() == 1 {
        (0..chunks).for_each(f);
        return;
    }
    p.install(|| (0..chunks).into_par_iter().for_each(f));
}

/// Runs `f(i)` for `0..n` on `n` threads of their own at once (probes that must occupy
/// exactly that many cores, whatever the pool size).
pub fn for_chunks_on(n: usize, f: impl Fn(usize) + Sync + Send) {
    std::thread::scope(|s| {
        let f = &f;
        for i in 1..n {
            s.spawn(move || f(i));
        }
        f(0);
    });
}

/// How many chunks to cut `work` elements into.
pub fn chunks_for(work: usize, grain: usize) -> usize {
    let threads = num_threads();
    if threads == 1 || work < 2 * grain {
        return 1;
    }
    (work / grain).clamp(1, threads * 4)
}
