//! The engine's thread pool: kernels split work into chunks and run them here.
//!
//! Ops on LeNet-sized tensors last tens of microseconds, so the hand-off is what matters: the
//! calling thread publishes a job and takes chunks itself alongside `threads - 1` workers, and an
//! idle worker spins briefly before it parks, so the next op finds it awake. (A pool where the
//! caller sleeps while workers run pays two futex wake-ups per op; at batch 64 that was more
//! than a tenth of a LeNet step.) `set_num_threads` swaps the pool, like PyTorch's.

use std::cell::Cell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering::*};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

/// How long an idle worker spins before it parks: longer than the gap between two ops of a
/// training step, short enough not to hold a core once the caller has moved on.
const SPIN: Duration = Duration::from_micros(300);

/// One `for_chunks` call, on the caller's stack; workers reach it through `Shared::job`.
///
/// The chunks are cut into one contiguous block per thread (the caller is thread 0), and each
/// thread runs its own block first and then helps with the others'. Thread `k` thus touches the
/// same part of a tensor op after op, and that part stays in its core's L2; a shared counter
/// handed chunks out in arrival order, so consecutive ops on an L2-sized tensor met it in the
/// other core's cache (relu on 64×6×28×28, 2 threads: 27–37 µs that way, 19–23 µs in blocks).
struct Job<'a> {
    f: &'a (dyn Fn(usize) + Sync),
    /// Per thread: the next chunk of its block, and the block's end.
    blocks: Vec<(AtomicUsize, usize)>,
    panic: Mutex<Option<Box<dyn std::any::Any + Send>>>,
}

impl Job<'_> {
    fn new(f: &(dyn Fn(usize) + Sync), chunks: usize, threads: usize) -> Job<'_> {
        let blocks = (0..threads).map(|k| (AtomicUsize::new(k * chunks / threads), (k + 1) * chunks / threads)).collect();
        Job { f, blocks, panic: Mutex::new(None) }
    }

    /// Thread `me` takes the chunks of its own block, then of the others' until none are left;
    /// a panic stops the job and is kept for the caller.
    fn run(&self, me: usize) {
        let n = self.blocks.len();
        let taken = catch_unwind(AssertUnwindSafe(|| {
            for k in (0..n).map(|j| (me + j) % n) {
                let (next, end) = &self.blocks[k];
                loop {
                    let i = next.fetch_add(1, Relaxed);
                    if i >= *end {
                        break;
                    }
                    (self.f)(i);
                }
            }
        }));
        if let Err(p) = taken {
            for (next, end) in &self.blocks {
                next.store(*end, Relaxed);
            }
            self.panic.lock().get_or_insert(p);
        }
    }
}

struct Shared {
    /// Bumped when a job is published; workers wait for it to change.
    epoch: AtomicUsize,
    /// The job in progress (a `*const Job` with its lifetime erased), or null.
    job: AtomicPtr<()>,
    /// Workers that may be reading `job`: the caller waits for zero before its job goes away.
    active: AtomicUsize,
    /// Parked workers, changed under `lock`, so a publisher knows whether to notify.
    sleepers: AtomicUsize,
    /// std's futex-based pair, not parking_lot's: parking_lot parks through one process-wide
    /// table of bucket locks, and a fork while a parent worker held one (parking, 300 µs after
    /// an op) left the child's new workers deadlocked on it.
    lock: std::sync::Mutex<()>,
    wake: std::sync::Condvar,
    /// Set while a caller owns the pool; a second caller (another Python thread) runs serially.
    busy: AtomicBool,
    shutdown: AtomicBool,
}

struct Pool {
    threads: usize,
    shared: Arc<Shared>,
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, SeqCst);
        let _g = self.shared.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.shared.wake.notify_all();
    }
}

thread_local! {
    static IN_WORKER: Cell<bool> = const { Cell::new(false) };
}

fn worker(shared: Arc<Shared>, me: usize) {
    IN_WORKER.with(|w| w.set(true));
    let mut seen = shared.epoch.load(SeqCst);
    loop {
        let start = Instant::now();
        let mut spins = 0u32;
        while shared.epoch.load(Acquire) == seen && !shared.shutdown.load(Relaxed) {
            std::hint::spin_loop();
            spins = spins.wrapping_add(1);
            if spins % 256 == 0 && start.elapsed() > SPIN {
                let mut g = shared.lock.lock().unwrap_or_else(|e| e.into_inner());
                shared.sleepers.fetch_add(1, SeqCst);
                while shared.epoch.load(SeqCst) == seen && !shared.shutdown.load(SeqCst) {
                    g = shared.wake.wait(g).unwrap_or_else(|e| e.into_inner());
                }
                shared.sleepers.fetch_sub(1, SeqCst);
                drop(g);
                break;
            }
        }
        if shared.shutdown.load(SeqCst) {
            return;
        }
        seen = shared.epoch.load(SeqCst);
        // Register before reading the job: the caller clears `job` and then waits for
        // `active == 0`, so a job seen here is still alive until the decrement.
        shared.active.fetch_add(1, SeqCst);
        let job = shared.job.load(SeqCst) as *const Job<'static>;
        if !job.is_null() {
            // SAFETY: see above; the caller keeps the job on its stack until `active` is zero.
            unsafe { (*job).run(me) };
        }
        shared.active.fetch_sub(1, SeqCst);
    }
}

fn build(threads: usize) -> Arc<Pool> {
    let shared = Arc::new(Shared {
        epoch: AtomicUsize::new(0),
        job: AtomicPtr::new(ptr::null_mut()),
        active: AtomicUsize::new(0),
        sleepers: AtomicUsize::new(0),
        lock: std::sync::Mutex::new(()),
        wake: std::sync::Condvar::new(),
        busy: AtomicBool::new(false),
        shutdown: AtomicBool::new(false),
    });
    let mut started = 1;
    for i in 1..threads {
        let s = shared.clone();
        // If the system refuses more threads, the pool runs with those it got.
        if std::thread::Builder::new().name(format!("rustgrad-{i}")).spawn(move || worker(s, i)).is_err() {
            break;
        }
        started += 1;
    }
    Arc::new(Pool { threads: started, shared })
}

static POOL: RwLock<Option<Arc<Pool>>> = RwLock::new(None);
/// The current pool's size, readable without a lock (kernels ask for it on every call).
static THREADS: AtomicUsize = AtomicUsize::new(0);

fn pool() -> Arc<Pool> {
    if let Some(p) = POOL.read().as_ref() {
        return p.clone();
    }
    let mut w = POOL.write();
    w.get_or_insert_with(|| {
        let p = build(default_threads());
        THREADS.store(p.threads, Relaxed);
        p
    })
    .clone()
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

pub fn num_threads() -> usize {
    match THREADS.load(Relaxed) {
        0 => pool().threads,
        n => n,
    }
}

/// In a child process right after `fork()`: the inherited pool's threads do not exist there, and
/// its state may say a job is running, so it is leaked; the child builds a fresh pool on first use.
pub fn forget_pool_after_fork() {
    if let Some(old) = POOL.write().take() {
        std::mem::forget(old);
    }
    THREADS.store(0, Relaxed);
}

pub fn set_num_threads(n: usize) {
    let p = build(n.max(1));
    THREADS.store(p.threads, Relaxed);
    let old = POOL.write().replace(p);
    drop(old);
}

/// Elements per chunk for memory-bound loops: big enough to amortise scheduling.
pub const GRAIN: usize = 32 * 1024;

/// Runs `f(chunk_index)` for `0..chunks`, in parallel when there is more than one chunk.
/// Calls from inside a chunk, or from a second thread while the pool is busy, run serially.
pub fn for_chunks(chunks: usize, f: impl Fn(usize) + Sync + Send) {
    if chunks <= 1 || IN_WORKER.with(|w| w.get()) || num_threads() == 1 {
        (0..chunks).for_each(f);
        return;
    }
    let p = pool();
    let s = &p.shared;
    if s.busy.swap(true, Acquire) {
        (0..chunks).for_each(f);
        return;
    }
    let job = Job::new(&f, chunks, p.threads);
    s.job.store(&job as *const Job as *mut (), SeqCst);
    s.epoch.fetch_add(1, SeqCst);
    if s.sleepers.load(SeqCst) > 0 {
        let _g = s.lock.lock().unwrap_or_else(|e| e.into_inner());
        s.wake.notify_all();
    }
    IN_WORKER.with(|w| w.set(true));
    job.run(0);
    IN_WORKER.with(|w| w.set(false));
    s.job.store(ptr::null_mut(), SeqCst);
    while s.active.load(SeqCst) != 0 {
        std::hint::spin_loop();
    }
    s.busy.store(false, Release);
    let panic = job.panic.lock().take();
    if let Some(p) = panic {
        resume_unwind(p);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_chunk_runs_once() {
        // Three threads with two chunks leave one thread's block empty.
        for (threads, chunks) in [(2, 2), (2, 3), (2, 17), (2, 64), (3, 2), (3, 7), (3, 64)] {
            set_num_threads(threads);
            let hits: Vec<AtomicUsize> = (0..chunks).map(|_| AtomicUsize::new(0)).collect();
            for_chunks(chunks, |i| {
                hits[i].fetch_add(1, Relaxed);
                // Nested calls run serially inside a chunk.
                for_chunks(2, |_| {});
            });
            assert!(hits.iter().all(|h| h.load(Relaxed) == 1));
        }
    }

    #[test]
    fn panic_in_a_chunk_reaches_the_caller() {
        set_num_threads(2);
        let r = catch_unwind(|| for_chunks(8, |i| assert!(i != 5, "chunk five")));
        assert!(r.is_err());
        // The pool is usable afterwards.
        let n = AtomicUsize::new(0);
        for_chunks(8, |_| {
            n.fetch_add(1, Relaxed);
        });
        assert_eq!(n.load(Relaxed), 8);
    }
}
