//! Single-precision GEMM, packed BLIS-style: B is packed into NR-wide column strips per
//! (KC × NC) panel, A into MR-tall row strips per (MC × KC) block, and a register-blocked
//! micro-kernel computes each MR × NR tile of C. The micro-kernel is chosen once at run time from
//! the CPU's features (AVX-512, AVX2+FMA, or a portable one), so one wheel runs everywhere.
//! `RUSTGRAD_GEMM_KERNEL=portable|avx2|avx512` forces a kernel (tests compare them).

use std::sync::OnceLock;

use super::gemm::Mat;
use super::scratch::{self, Slot};
#[cfg(target_arch = "x86_64")]
use super::transpose;
use super::strided::SendPtr;
use crate::parallel;

const KC: usize = 256;
const MC: usize = 72;
const NC: usize = 3072;
/// Multiply-adds below which a product stays on the calling thread (the pool's hand-off to a
/// spinning worker costs about a microsecond; fc1's forward went 70 → 63 µs from 2M to 512K).
pub const PARALLEL_MIN_WORK: usize = 1 << 19;
/// Up to this many rows of A, row-contiguous B is read in place instead of packed.
const DIRECT_MAX_M: usize = 4 * MC;

/// Whether a strip of B read in place (`kc` rows of `nr` floats, `rs` floats apart) stays in
/// L1 from one row tile to the next. Rows a multiple of 64 bytes apart fall into only
/// 64 / gcd(lines apart, 64) of the 64 sets of a 32–48 KiB L1; at 8 ways each (Zen 4), rows 4
/// KiB apart (a 32×32 image's channels, a 1×1 convolution's B) leave room for 8 lines where the
/// strip needs 2 per row: every tile fetched it again from L2, and the 1×1 64→128 forward ran
/// at 49 % of the FMA probe on one thread. Such strips are packed.
fn strip_fits_l1(rs: usize, kc: usize, nr: usize) -> bool {
    const SETS: usize = 64;
    const WAYS: usize = 8;
    let bytes = rs * size_of::<f32>();
    if bytes % 64 != 0 {
        return true; // rows start at every offset within a line: they spread over the sets
    }
    let lines_apart = bytes / 64;
    let mut g = SETS;
    let mut x = lines_apart % SETS;
    while x != 0 {
        (g, x) = (x, g % x);
    }
    let sets = SETS / g;
    sets * WAYS >= kc.min(KC) * (nr * size_of::<f32>()).div_ceil(64)
}

/// The widest tile any kernel uses (sizes the scratch tile for edges).
const MAX_TILE: usize = 8 * 32;

/// A micro-kernel: `c[mr×nr] (+)= a_strip · b_strip` over `kc`; `ldb` and `ldc` are the row
/// strides of the B strip (nr when packed, B's own when read in place) and of C.
type MicroKernel = unsafe fn(kc: usize, a: *const f32, b: *const f32, ldb: usize, c: *mut f32, ldc: usize, mr: usize, nr: usize, accumulate: bool);

#[derive(Clone, Copy)]
struct Kernel {
    mr: usize,
    nr: usize,
    run: MicroKernel,
    name: &'static str,
    /// Computes partial (edge) tiles itself, reading only the valid columns of B.
    edges: bool,
    /// The AVX-512 kernel (its packing routines and 8-row tiles may run).
    avx512: bool,
}

fn pick() -> Kernel {
    let forced = std::env::var("RUSTGRAD_GEMM_KERNEL").ok();
    let portable = Kernel { mr: 4, nr: 8, run: portable_kernel, name: "portable", edges: false, avx512: false };
    #[cfg(target_arch = "x86_64")]
    {
        let avx512 = std::arch::is_x86_feature_detected!("avx512f");
        let avx2 = std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma");
        let k512 = Kernel { mr: 6, nr: 32, run: x86::kernel_avx512, name: "avx512", edges: true, avx512: true };
        let k2 = Kernel { mr: 6, nr: 16, run: x86::kernel_avx2, name: "avx2", edges: true, avx512: false };
        return match forced.as_deref() {
            Some("portable") => portable,
            Some("avx2") if avx2 => k2,
            Some("avx512") if avx512 => k512,
            _ if avx512 => k512,
            _ if avx2 => k2,
            _ => portable,
        };
    }
    #[allow(unreachable_code)]
    {
        let _ = forced;
        portable
    }
}

fn kernel() -> Kernel {
    static K: OnceLock<Kernel> = OnceLock::new();
    *K.get_or_init(pick)
}

/// Whether `sgemm_rows` runs here (the AVX-512 or AVX2 kernel is in use).
pub fn has_rows_kernel() -> bool {
    kernel().edges
}

/// The name of the micro-kernel in use (for benchmarks and docs).
pub fn kernel_name() -> &'static str {
    kernel().name
}

/// `c[m×n] (row-major, contiguous) = a[m×k] · b[k×n]` (`+=` with `accumulate`); `threads` false
/// keeps it on this thread (batched callers parallelise across the batch instead).
#[allow(clippy::too_many_arguments)]
pub fn sgemm(m: usize, n: usize, k: usize, a: Mat<f32>, b: Mat<f32>, c: *mut f32, accumulate: bool, threads: bool) {
    if m == 0 || n == 0 || k == 0 && accumulate {
        return;
    }
    if k == 0 {
        // SAFETY: c holds m·n elements.
        unsafe { std::slice::from_raw_parts_mut(c, m * n).fill(0.0) };
        return;
    }
    let kr = kernel();
    #[cfg(target_arch = "x86_64")]
    // 8-row tiles where they leave no more rows empty than 6-row ones (as `PackedA`): 16
    // multiply-adds per pair of B loads instead of 12, and m = 64 (a linear layer at batch 64)
    // fills them exactly: 64×400×120 5–8 % faster, 16×100×150 8–10 %.
    let kr = if kr.avx512 && m.next_multiple_of(8) - m <= m.next_multiple_of(6) - m {
        Kernel { mr: 8, run: x86::kernel_avx512_8, ..kr }
    } else {
        kr
    };
    let (mr, nr) = (kr.mr, kr.nr);
    // Rows of B that are contiguous are read in place when A has few rows (packing B would cost
    // as much as the product); only a partial last strip is packed then.
    let direct = b.cs == 1 && b.rs > 0 && m <= DIRECT_MAX_M && strip_fits_l1(b.rs as usize, k, nr);
    let panel = if direct { 0 } else { NC.min(n).div_ceil(nr) * KC.min(k) * nr };
    scratch::with(Slot::GemmB, panel, |bpack: &mut [f32]| {
        for jc in (0..n).step_by(NC) {
            let nc = NC.min(n - jc);
            let strips = nc.div_ceil(nr);
            for pc in (0..k).step_by(KC) {
                let kc = KC.min(k - pc);
                let accumulate = accumulate || pc > 0;
                // Only panels of PARALLEL_MIN_WORK multiply-adds or more are split.
                let work = m * nc * kc;
                let threads_wanted = if threads && work >= PARALLEL_MIN_WORK { parallel::num_threads() } else { 1 };
                // Few rows (one MC block), or at least as many columns as rows: each thread packs
                // and multiplies its own group of column strips (and packs all of A for
                // itself) in one job, so no packed strip crosses to the other core and there is
                // one hand-off per panel instead of two. 64×120×400 at 2 threads was slower than
                // at one; 512³ 2–5 % and 300×2048×512 20 % faster than rows split between the
                // threads over a shared panel. With more rows than columns, packing all of A
                // twice costs more than the shared panel (4096×256×256: 0.96×).
                let own_strips = !direct && threads_wanted > 1 && (m <= MC || n >= m) && strips >= threads_wanted;
                if !direct && !own_strips {
                    // Threads pack disjoint groups of strips.
                    let bp = SendPtr(bpack.as_mut_ptr());
                    let groups = threads_wanted.min(strips);
                    parallel::for_chunks(groups, |g| {
                        let (s0, s1) = (g * strips / groups, (g + 1) * strips / groups);
                        // SAFETY: strips s0..s1 of the panel are written by this group only.
                        let dst = unsafe { std::slice::from_raw_parts_mut(bp.at((s0 * kc * nr) as isize), (s1 - s0) * kc * nr) };
                        pack_b(dst, b, pc, kc, jc + s0 * nr, (nc - s0 * nr).min((s1 - s0) * nr), nr);
                    });
                }
                // Jobs: an even share of the rows each (in whole MR strips) when there are enough
                // rows for every thread, else (row block, group of column strips) pairs.
                let units = m.div_ceil(mr);
                let (row_jobs, groups) = if own_strips {
                    (1, threads_wanted)
                } else if units >= threads_wanted * 2 {
                    (threads_wanted, 1)
                } else {
                    let blocks = m.div_ceil(MC);
                    (blocks, if blocks >= threads_wanted { 1 } else { threads_wanted.div_ceil(blocks).min(strips) })
                };
                let rows_of = |r: usize| -> (usize, usize) {
                    if groups == 1 {
                        ((r * units / row_jobs * mr).min(m), ((r + 1) * units / row_jobs * mr).min(m))
                    } else if own_strips {
                        (0, m) // every row, in MC blocks
                    } else {
                        (r * MC, ((r + 1) * MC).min(m))
                    }
                };
                let jobs = row_jobs * groups;
                let (cp, bp) = (SendPtr(c), SendPtr(bpack.as_mut_ptr()));
                let run_job = |job: usize| {
                    let (rj, grp) = (job / groups, job % groups);
                    let (r0, r1) = rows_of(rj);
                    let strip_range = grp * strips / groups..(grp + 1) * strips / groups;
                    if own_strips {
                        let (s0, s1) = (strip_range.start, strip_range.end);
                        // SAFETY: strips s0..s1 of the panel are written by this job only.
                        let dst = unsafe { std::slice::from_raw_parts_mut(bp.at((s0 * kc * nr) as isize), (s1 - s0) * kc * nr) };
                        pack_b(dst, b, pc, kc, jc + s0 * nr, (nc - s0 * nr).min((s1 - s0) * nr), nr);
                    }
                    for ic in (r0..r1).step_by(MC) {
                        let mc = MC.min(r1 - ic);
                        scratch::with(Slot::GemmA, mc.div_ceil(mr) * kc * mr, |apack: &mut [f32]| {
                            pack_a(apack, a, ic, mc, pc, kc, mr);
                            let tiles = Tiles { kr, apack, c: cp, n, kc, accumulate, rows: ic..ic + mc };
                            for s in strip_range.clone() {
                                let j = jc + s * nr;
                                let nr_eff = nr.min(n - j);
                                if !direct {
                                    // SAFETY: strip s of the packed panel holds kc·nr values.
                                    tiles.run(bp.at((s * kc * nr) as isize), nr, j, nr_eff);
                                } else if nr_eff == nr || kr.edges {
                                    // SAFETY: rows pc..pc+kc, columns j..j+nr_eff lie inside B (an
                                    // edge-capable kernel reads no further).
                                    tiles.run(unsafe { b.ptr.offset(pc as isize * b.rs + j as isize) }, b.rs as usize, j, nr_eff);
                                } else {
                                    scratch::with(Slot::GemmEdge, kc * nr, |edge: &mut [f32]| {
                                        pack_b(edge, b, pc, kc, j, nr_eff, nr);
                                        tiles.run(edge.as_ptr(), nr, j, nr_eff);
                                    });
                                }
                            }
                        });
                    }
                };
                if jobs == 1 {
                    run_job(0);
                } else {
                    parallel::for_chunks(jobs, run_job);
                }
            }
        }
    });
}

/// A left operand packed once for many `sgemm_rows` products (a convolution's weights, reused
/// for every image): MR-row strips per KC block.
pub struct PackedA {
    data: Vec<f32>,
    m: usize,
    k: usize,
    /// Rows per strip (and per tile of `sgemm_rows`).
    mr: usize,
}

/// Columns per `sgemm_rows` tile.
pub const ROWS_NR: usize = 32;

impl PackedA {
    pub fn new(m: usize, k: usize, a: Mat<f32>) -> PackedA {
        // 8-row tiles load each B row once per 16 multiply-adds instead of 12 (3×3 64→64
        // forward: 3 % faster); 6-row ones where they leave fewer rows empty.
        // AVX2 has 16 registers: 6 rows × 2 vectors of accumulators is its largest tile.
        let mr = if kernel().avx512 && m.next_multiple_of(8) - m <= m.next_multiple_of(6) - m { 8 } else { 6 };
        let strips = m.div_ceil(mr);
        let mut data = vec![0f32; strips * mr * k];
        for pc in (0..k).step_by(KC) {
            let kc = KC.min(k - pc);
            pack_a(&mut data[strips * mr * pc..][..strips * mr * kc], a, 0, m, pc, kc, mr);
        }
        PackedA { data, m, k, mr }
    }
}

/// The positions an `sgemm_rows` product covers: `count` runs of `len` columns, run y starting
/// at `y·src_pitch` in every row of B and at `y·dst_pitch` in every row of C. One run of all
/// the wide positions, or one run per output row so that C is the output itself. Columns
/// 16..32 of a run's tile are read `half` after its start in B (16: the run is contiguous; a
/// padded row's pitch: a 32-column run covers two 16-wide output rows).
#[derive(Clone, Copy)]
pub struct Runs {
    pub count: usize,
    pub len: usize,
    pub src_pitch: usize,
    pub dst_pitch: usize,
    pub half: usize,
}

impl Runs {
    /// Contiguous runs.
    pub fn new(count: usize, len: usize, src_pitch: usize, dst_pitch: usize) -> Runs {
        Runs { count, len, src_pitch, dst_pitch, half: 16 }
    }
}

/// For a tile reading B columns `first..=last` (positions relative to `src`), the rows of B
/// that can hold anything but zeros; the others are skipped. A convolution's input gradient
/// orders its rows by kernel row and skips the rows whose taps only meet padding.
pub type KSpan<'a> = &'a (dyn Fn(usize, usize) -> std::ops::Range<usize> + Sync);

/// `c (row stride ldc) = a[m×k] · B (+ bias[i] on row i)` over the positions of `runs`, where
/// row p of B is read at `src + offs[p]`: an implicit-GEMM convolution reads its columns in
/// place this way instead of copying them. With `k_span`, each tile sums only the rows it
/// names. Runs on the calling thread; `None` (doing nothing) without the AVX-512 or AVX2 kernel.
#[allow(clippy::too_many_arguments)]
pub fn sgemm_rows(a: &PackedA, runs: Runs, src: *const f32, offs: &[isize], c: *mut f32, ldc: usize, bias: Option<&[f32]>, k_span: Option<KSpan>) -> Option<()> {
    let (m, k) = (a.m, a.k);
    #[cfg(target_arch = "x86_64")]
    if has_rows_kernel() && m > 0 && runs.len > 0 && k > 0 && offs.len() >= k && bias.is_none_or(|b| b.len() >= m) && (runs.half == 16 || runs.len <= ROWS_NR) {
        let mr = a.mr;
        let strips = m.div_ceil(mr);
        let rows_kernel = match (kernel().avx512, mr) {
            (true, 8) => x86::kernel_avx512_rows::<8>,
            (true, _) => x86::kernel_avx512_rows::<6>,
            (false, _) => x86::kernel_avx2_rows::<6>,
        };
        for pc in (0..k).step_by(KC) {
            let kc = KC.min(k - pc);
            let block = &a.data[strips * mr * pc..];
            for y in 0..runs.count {
                for j in (0..runs.len).step_by(ROWS_NR) {
                    let (base, nr_eff) = (y * runs.src_pitch + j, ROWS_NR.min(runs.len - j));
                    // This block's share of the tile's rows; the tile starts (bias, no
                    // accumulation) in the block holding its first row.
                    let span = match k_span {
                        Some(f) => {
                            let last = if nr_eff > 16 { base + runs.half + nr_eff - 17 } else { base + nr_eff - 1 };
                            let r = f(base, last);
                            if r.start < r.end && r.end <= k { r } else { 0..k }
                        }
                        None => 0..k,
                    };
                    let (p0, p1) = (span.start.max(pc), span.end.min(pc + kc));
                    if p0 >= p1 {
                        continue;
                    }
                    let first = span.start >= pc;
                    for (t, i) in (0..m).step_by(mr).enumerate() {
                        let init = bias.filter(|_| first).map_or(std::ptr::null(), |b| b[i..].as_ptr());
                        // SAFETY: the caller guarantees src + offs[p] + y·src_pitch + j.. holds
                        // len - j readable values for every p; the tile lies in C. Strips hold
                        // their kc rows mr apart, so row p0 - pc starts (p0 - pc)·mr in.
                        unsafe {
                            rows_kernel(
                                p1 - p0,
                                block[t * kc * mr + (p0 - pc) * mr..].as_ptr(),
                                src.add(base),
                                offs[p0..].as_ptr(),
                                c.add(i * ldc + y * runs.dst_pitch + j),
                                ldc,
                                mr.min(m - i),
                                nr_eff,
                                !first,
                                init,
                                runs.half,
                            );
                        }
                    }
                }
            }
        }
        return Some(());
    }
    let _ = (m, k, runs, src, offs, c, ldc, bias, k_span);
    None
}

/// One packed A block against B strips: every MR × NR tile of C in `rows` × one strip.
struct Tiles<'a> {
    kr: Kernel,
    apack: &'a [f32],
    c: SendPtr<f32>,
    n: usize,
    kc: usize,
    accumulate: bool,
    rows: std::ops::Range<usize>,
}

impl Tiles<'_> {
    /// C tiles in columns `j..j+nr_eff` from the strip at `bs` (row stride `ldb`).
    fn run(&self, bs: *const f32, ldb: usize, j: usize, nr_eff: usize) {
        let (mr, nr, kc, n) = (self.kr.mr, self.kr.nr, self.kc, self.n);
        let mut tile = [0f32; MAX_TILE];
        for (t, i) in self.rows.clone().step_by(mr).enumerate() {
            let mr_eff = mr.min(self.rows.end - i);
            let as_ = self.apack[t * kc * mr..].as_ptr();
            // SAFETY: the tile (i..i+mr_eff, j..j+nr_eff) lies in C and belongs to this job; the
            // strip holds kc rows of nr readable values.
            unsafe {
                let ct = self.c.at((i * n + j) as isize);
                if mr_eff == mr && nr_eff == nr || self.kr.edges {
                    (self.kr.run)(kc, as_, bs, ldb, ct, n, mr_eff, nr_eff, self.accumulate);
                } else {
                    // Edge tile: compute the full tile in scratch, copy the valid part.
                    (self.kr.run)(kc, as_, bs, ldb, tile.as_mut_ptr(), nr, mr, nr, false);
                    for r in 0..mr_eff {
                        for q in 0..nr_eff {
                            let dst = ct.add(r * n + q);
                            let v = tile[r * nr + q];
                            *dst = if self.accumulate { *dst + v } else { v };
                        }
                    }
                }
            }
        }
    }
}

/// B[pc..pc+kc, jc..jc+nc] as strips of `nr` columns: strip s, row p at `(s·kc + p)·nr`,
/// zero-padded past column nc.
fn pack_b(dst: &mut [f32], b: Mat<f32>, pc: usize, kc: usize, jc: usize, nc: usize, nr: usize) {
    let full = nc / nr;
    if b.cs == 1 && full > 1 && (nr == 32 || nr == 16) && dst.len() >= full * kc * nr {
        // Row-major B, several full strips: eight rows at a time across the strips, so B is
        // read as eight streams in order and each strip gets 1 KiB in one place. Strip by
        // strip, each strip's rows (B's rows a plane apart in a 1×1 convolution, 4 KiB) were
        // loads that neither the prefetchers nor L1 held: packing took 27 % of the 1×1 64→128
        // forward (15 % row by row, where each row's stores go to as many strips).
        for p0 in (0..kc).step_by(8) {
            let rows = 8.min(kc - p0);
            for s in 0..full {
                for p in p0..p0 + rows {
                    // SAFETY: row pc + p of B holds columns jc..jc + full·nr; strip s holds kc
                    // rows of nr (32, or 16 for the AVX2 kernel: strip by strip, its packing
                    // was 8 % of a 1×1 64→128 forward + backward).
                    unsafe {
                        let (src, d) = (b.ptr.offset((pc + p) as isize * b.rs + (jc + s * nr) as isize), dst.as_mut_ptr().add((s * kc + p) * nr));
                        if nr == 32 {
                            std::ptr::copy_nonoverlapping(src as *const [f32; 32], d as *mut [f32; 32], 1);
                        } else {
                            std::ptr::copy_nonoverlapping(src as *const [f32; 16], d as *mut [f32; 16], 1);
                        }
                    }
                }
            }
        }
        if full * nr < nc {
            pack_b(&mut dst[full * kc * nr..], b, pc, kc, jc + full * nr, nc - full * nr, nr);
        }
        return;
    }
    for (s, strip) in dst.chunks_mut(kc * nr).enumerate() {
        let j0 = jc + s * nr;
        let w = nr.min(jc + nc - j0);
        // SAFETY: (pc + p, j0 + q) for p < kc, q < w lies inside B.
        let base = |p: usize| unsafe { b.ptr.offset((pc + p) as isize * b.rs + j0 as isize * b.cs) };
        #[cfg(target_arch = "x86_64")]
        if b.rs == 1 && nr == 32 && kernel().avx512 && strip.len() >= kc * 32 {
            // Column-major B (a transposed operand): 16 × 16 blocks transposed in registers,
            // zero past column w.
            for p0 in (0..kc).step_by(16) {
                for q0 in [0, 16] {
                    // SAFETY: columns j0 + q0.. (w - q0 of them) hold rows pc + p0.. of B; the
                    // strip holds kc rows of 32; AVX-512 is present (the kernel in use).
                    unsafe {
                        let src = base(p0).offset(q0 as isize * b.cs);
                        transpose::block16(src, b.cs as usize, w.saturating_sub(q0).min(16), (kc - p0).min(16), strip.as_mut_ptr().add(p0 * 32 + q0), 32, 16);
                    }
                }
            }
            continue;
        }
        #[cfg(target_arch = "x86_64")]
        if b.rs == 1 && nr == 16 && kernel().name == "avx2" && strip.len() >= kc * 16 {
            // The same on AVX2 in 8 × 8 blocks (element by element, a transposed B of
            // 120 × 400 took about half as long to pack as the product it fed).
            for p0 in (0..kc).step_by(8) {
                for q0 in [0, 8] {
                    // SAFETY: as above; the strip's rows p0.. hold 16 values from column q0's
                    // 8; the AVX2 kernel (so AVX2) is in use.
                    unsafe {
                        let src = base(p0).offset(q0 as isize * b.cs);
                        transpose::block8(src, b.cs as usize, w.saturating_sub(q0).min(8), (kc - p0).min(8), strip.as_mut_ptr().add(p0 * 16 + q0), 16);
                    }
                }
            }
            continue;
        }
        if b.cs == 1 && w == nr && strip.len() >= kc * nr {
            // Whole rows of a full strip as fixed-size copies (inline vector moves; a `memcpy`
            // call per 128-byte row took 5 % of a 1024³ product).
            // SAFETY: row p of the strip holds nr values; B's row holds nr from j0.
            match nr {
                32 => (0..kc).for_each(|p| unsafe { std::ptr::copy_nonoverlapping(base(p) as *const [f32; 32], strip.as_mut_ptr().add(p * 32) as *mut [f32; 32], 1) }),
                16 => (0..kc).for_each(|p| unsafe { std::ptr::copy_nonoverlapping(base(p) as *const [f32; 16], strip.as_mut_ptr().add(p * 16) as *mut [f32; 16], 1) }),
                _ => (0..kc).for_each(|p| strip[p * nr..(p + 1) * nr].copy_from_slice(unsafe { std::slice::from_raw_parts(base(p), nr) })),
            }
            continue;
        }
        for p in 0..kc {
            let row = &mut strip[p * nr..(p + 1) * nr];
            if b.cs == 1 {
                row[..w].copy_from_slice(unsafe { std::slice::from_raw_parts(base(p), w) });
            } else {
                for (q, v) in row[..w].iter_mut().enumerate() {
                    *v = unsafe { *base(p).offset(q as isize * b.cs) };
                }
            }
            row[w..].fill(0.0);
        }
    }
}

/// A[ic..ic+mc, pc..pc+kc] as strips of `mr` rows: strip t, column p at `(t·kc + p)·mr`,
/// zero-padded past row mc.
fn pack_a(dst: &mut [f32], a: Mat<f32>, ic: usize, mc: usize, pc: usize, kc: usize, mr: usize) {
    for (t, strip) in dst.chunks_mut(kc * mr).enumerate() {
        let i0 = ic + t * mr;
        let h = mr.min(ic + mc - i0);
        if h == 6 && mr == 6 {
            pack_a_strip::<6>(strip, a, i0, pc, kc);
            continue;
        }
        if h == 8 && mr == 8 {
            pack_a_strip::<8>(strip, a, i0, pc, kc);
            continue;
        }
        for r in 0..mr {
            if r >= h {
                for p in 0..kc {
                    strip[p * mr + r] = 0.0;
                }
                continue;
            }
            // SAFETY: (i0 + r, pc + p) for p < kc lies inside A.
            let base = unsafe { a.ptr.offset((i0 + r) as isize * a.rs + pc as isize * a.cs) };
            for p in 0..kc {
                strip[p * mr + r] = unsafe { *base.offset(p as isize * a.cs) };
            }
        }
    }
}

/// A full strip of `MR` rows, column by column: the stores are sequential and the `MR` row
/// reads advance together (row by row, every store was `MR` apart: 9 % of a 1024³ product).
fn pack_a_strip<const MR: usize>(strip: &mut [f32], a: Mat<f32>, i0: usize, pc: usize, kc: usize) {
    // SAFETY: rows i0..i0+MR and columns pc..pc+kc lie inside A.
    let rows: [*const f32; MR] = std::array::from_fn(|r| unsafe { a.ptr.offset((i0 + r) as isize * a.rs + pc as isize * a.cs) });
    if a.rs == 1 {
        // Column-major A (a transposed operand): each column of the strip is MR contiguous values.
        for (p, col) in strip[..kc * MR].chunks_exact_mut(MR).enumerate() {
            // SAFETY: column pc + p holds rows i0..i0+MR of A contiguously.
            unsafe { std::ptr::copy_nonoverlapping(rows[0].offset(p as isize * a.cs) as *const [f32; MR], col.as_mut_ptr() as *mut [f32; MR], 1) };
        }
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if a.cs == 1 && kernel().avx512 && (MR == 6 || MR == 8) {
        // SAFETY: the rows hold kc values each and the strip kc·MR (the AVX-512 kernel is in use).
        unsafe {
            if MR == 6 {
                x86::pack_a6(&rows[..], kc, strip.as_mut_ptr())
            } else {
                x86::pack_a8(&rows[..], kc, strip.as_mut_ptr())
            }
        };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if a.cs == 1 && a.rs > 0 && MR == 6 && kernel().name == "avx2" {
        // AVX2: 6 × 8 blocks transposed in registers (element by element, packing A was 4–6 %
        // of a 256³–1024³ product). Each column's store of 8 values runs 2 into the next
        // column, which is written after it; the last block, whose spill would leave the
        // strip, goes element by element.
        let mut p0 = 0;
        while p0 + 8 < kc {
            // SAFETY: rows i0..i0+6 hold columns pc+p0..+8 (a.rs apart); the strip holds
            // (p0 + 8)·6 + 2 values past this block's start; the AVX2 kernel (so AVX2) is in use.
            unsafe { transpose::block8(rows[0].add(p0), a.rs as usize, MR, 8, strip.as_mut_ptr().add(p0 * MR), MR) };
            p0 += 8;
        }
        for (p, col) in strip[..kc * MR].chunks_exact_mut(MR).enumerate().skip(p0) {
            for (v, row) in col.iter_mut().zip(rows) {
                // SAFETY: column pc + p of the strip's rows lies inside A.
                *v = unsafe { *row.offset(p as isize) };
            }
        }
        return;
    }
    for (p, col) in strip[..kc * MR].chunks_exact_mut(MR).enumerate() {
        for (v, row) in col.iter_mut().zip(rows) {
            // SAFETY: column pc + p of the strip's rows lies inside A.
            *v = unsafe { *row.offset(p as isize * a.cs) };
        }
    }
}

/// The portable micro-kernel (4 × 8), written so the compiler can vectorise the inner loop.
unsafe fn portable_kernel(kc: usize, a: *const f32, b: *const f32, ldb: usize, c: *mut f32, ldc: usize, mr: usize, nr: usize, accumulate: bool) {
    const R: usize = 4;
    const Q: usize = 8;
    debug_assert!(mr == R && nr == Q);
    let mut acc = [[0f32; Q]; R];
    for p in 0..kc {
        let bv = std::slice::from_raw_parts(b.add(p * ldb), Q);
        for r in 0..R {
            let av = *a.add(p * R + r);
            for q in 0..Q {
                acc[r][q] += av * bv[q];
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        for (q, v) in row.iter().enumerate() {
            let dst = c.add(r * ldc + q);
            *dst = if accumulate { *dst + v } else { *v };
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::super::lanes::Lanes;

    /// 6 × 32 tile: 12 zmm accumulators, two B vectors and one broadcast per k step. Handles
    /// edge tiles itself: only `mr` rows and `nr` (≤ 32) columns are read from B and stored.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn kernel_avx512(kc: usize, a: *const f32, b: *const f32, ldb: usize, c: *mut f32, ldc: usize, mr: usize, nr: usize, accumulate: bool) {
        tile::<__m512, 6>(kc, a, |p| b.add(p * ldb), c, ldc, mr, nr, accumulate, std::ptr::null(), 16)
    }

    /// 8 × 32 tile: 16 accumulators, two B vectors and one broadcast per k step.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn kernel_avx512_8(kc: usize, a: *const f32, b: *const f32, ldb: usize, c: *mut f32, ldc: usize, mr: usize, nr: usize, accumulate: bool) {
        tile::<__m512, 8>(kc, a, |p| b.add(p * ldb), c, ldc, mr, nr, accumulate, std::ptr::null(), 16)
    }

    /// 6 × 16 tile on AVX2: 12 ymm accumulators, two B vectors and one broadcast per k step
    /// (15 of the 16 registers). Handles edge tiles itself, as the AVX-512 ones.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn kernel_avx2(kc: usize, a: *const f32, b: *const f32, ldb: usize, c: *mut f32, ldc: usize, mr: usize, nr: usize, accumulate: bool) {
        tile::<__m256, 6>(kc, a, |p| b.add(p * ldb), c, ldc, mr, nr, accumulate, std::ptr::null(), 8)
    }

    /// The same tile with row p of B at `src + offs[p]` (an implicit-GEMM convolution's columns)
    /// and its columns 16..32 at `half` from there; without `accumulate`, a non-null `init`
    /// holds a value per row to start the sums from.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f")]
    pub unsafe fn kernel_avx512_rows<const R: usize>(kc: usize, a: *const f32, src: *const f32, offs: *const isize, c: *mut f32, ldc: usize, mr: usize, nr: usize, accumulate: bool, init: *const f32, half: usize) {
        tile::<__m512, R>(kc, a, |p| src.offset(*offs.add(p)), c, ldc, mr, nr, accumulate, init, half)
    }

    /// `kernel_avx512_rows` on AVX2: a tile of up to 32 columns as two 6 × 16 ones, columns
    /// 16..32 read from `half`.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn kernel_avx2_rows<const R: usize>(kc: usize, a: *const f32, src: *const f32, offs: *const isize, c: *mut f32, ldc: usize, mr: usize, nr: usize, accumulate: bool, init: *const f32, half: usize) {
        tile::<__m256, R>(kc, a, |p| src.offset(*offs.add(p)), c, ldc, mr, nr.min(16), accumulate, init, 8);
        if nr > 16 {
            let src = src.add(half);
            tile::<__m256, R>(kc, a, |p| src.offset(*offs.add(p)), c.add(16), ldc, mr, nr - 16, accumulate, init, 8)
        }
    }

    /// Dispatches a tile of `nr` ≤ 2·W columns to one or two vectors per row, so a tile of W
    /// columns or fewer (a partial strip, a narrow convolution row) does half the work.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    unsafe fn tile<V: Lanes, const R: usize>(kc: usize, a: *const f32, row: impl Fn(usize) -> *const f32, c: *mut f32, ldc: usize, mr: usize, nr: usize, accumulate: bool, init: *const f32, step: usize) {
        if nr > V::W {
            tile_h::<V, R, 2>(kc, a, row, c, ldc, mr, nr, accumulate, init, step)
        } else {
            tile_h::<V, R, 1>(kc, a, row, c, ldc, mr, nr, accumulate, init, step)
        }
    }

    /// An R × W·H tile (`nr` of its columns valid), vector h of a B row read `h·step` after
    /// its start.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    unsafe fn tile_h<V: Lanes, const R: usize, const H: usize>(kc: usize, a: *const f32, row: impl Fn(usize) -> *const f32, c: *mut f32, ldc: usize, mr: usize, nr: usize, accumulate: bool, init: *const f32, step: usize) {
        let mut masks = [V::first(0); H];
        for (h, m) in masks.iter_mut().enumerate() {
            *m = V::first(nr.saturating_sub(V::W * h));
        }
        // The tile of C is read or written only after the k loop: fetch its lines now so that
        // the loop hides their latency (C comes from L3 when the matrix exceeds L2).
        for r in 0..mr {
            let d = c.add(r * ldc) as *const i8;
            for off in (0..4 * nr).step_by(64) {
                _mm_prefetch::<_MM_HINT_T0>(d.wrapping_add(off));
            }
            _mm_prefetch::<_MM_HINT_T0>(d.wrapping_add(4 * nr - 4));
        }
        let mut start = [V::zero(); R];
        if !init.is_null() {
            for (r, v) in start.iter_mut().enumerate().take(mr) {
                *v = V::splat(*init.add(r));
            }
        }
        let acc = if nr == V::W * H { product::<V, R, H>(kc, a, &row, step, masks, false, start) } else { product::<V, R, H>(kc, a, &row, step, masks, true, start) };
        // Full tiles store whole vectors (AVX2's masked stores are slow).
        let full = nr == V::W * H;
        for (r, row) in acc.iter().enumerate().take(mr) {
            let dst = c.add(r * ldc);
            for (h, (v, m)) in row.iter().zip(masks).enumerate() {
                let d = dst.add(h * V::W);
                if full {
                    V::store(d, if accumulate { V::add(V::load(d), *v) } else { *v });
                } else {
                    V::store_masked(d, m, if accumulate { V::add(V::load_masked(m, d), *v) } else { *v });
                }
            }
        }
    }

    /// The R × W·H accumulation from `start[r]` in row r, vector h of each B row read at
    /// `h·step`; `masked` reads only the lanes in `masks`.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn product<V: Lanes, const R: usize, const H: usize>(kc: usize, a: *const f32, row_at: &impl Fn(usize) -> *const f32, step: usize, masks: [V::Mask; H], masked: bool, start: [V; R]) -> [[V; H]; R] {
        let mut acc = [[V::zero(); H]; R];
        for (row, v) in acc.iter_mut().zip(start) {
            *row = [v; H];
        }
        for p in 0..kc {
            let row = row_at(p);
            let mut bv = [V::zero(); H];
            for (h, b) in bv.iter_mut().enumerate() {
                *b = if masked { V::load_masked(masks[h], row.add(h * step)) } else { V::load(row.add(h * step)) };
            }
            let ap = a.add(p * R);
            for r in 0..R {
                let av = V::splat(*ap.add(r));
                for h in 0..H {
                    acc[r][h] = V::fmadd(av, bv[h], acc[r][h]);
                }
            }
        }
        acc
    }

    /// Where output lane l of vector k of a 16-column block of 6 interleaved rows comes from:
    /// element `16k + l` is row `(16k + l) % 6`, column `(16k + l) / 6`; the index picks that
    /// column from the pair of rows (`+ 16` for the pair's second row).
    const fn interleave6() -> [[i32; 16]; 6] {
        let mut out = [[0; 16]; 6];
        let mut k = 0;
        while k < 6 {
            let mut l = 0;
            while l < 16 {
                let f = 16 * k + l;
                out[k][l] = (f / 6 + 16 * (f % 2)) as i32;
                l += 1;
            }
            k += 1;
        }
        out
    }

    /// Lanes of vector k taken from row pair `pair` (rows 2·pair and 2·pair + 1).
    const fn pair_mask(k: usize, pair: usize) -> u16 {
        let mut m = 0u16;
        let mut l = 0;
        while l < 16 {
            if (16 * k + l) % 6 / 2 == pair {
                m |= 1 << l;
            }
            l += 1;
        }
        m
    }

    /// Packs 6 unit-stride rows of `kc` values as `dst[p·6 + r] = rows[r][p]`: 16 columns at a
    /// time with three two-row permutes and two blends per output vector.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn pack_a6(rows: &[*const f32], kc: usize, dst: *mut f32) {
        const IDX: [[i32; 16]; 6] = interleave6();
        let mut p = 0;
        while p + 16 <= kc {
            let mut v = [_mm512_setzero_ps(); 6];
            for (r, v) in v.iter_mut().enumerate() {
                *v = _mm512_loadu_ps(rows[r].add(p));
            }
            for (k, idx) in IDX.iter().enumerate() {
                let idx = _mm512_loadu_si512(idx.as_ptr() as *const _);
                let t01 = _mm512_permutex2var_ps(v[0], idx, v[1]);
                let t23 = _mm512_permutex2var_ps(v[2], idx, v[3]);
                let t45 = _mm512_permutex2var_ps(v[4], idx, v[5]);
                let out = _mm512_mask_blend_ps(pair_mask(k, 1), t01, t23);
                let out = _mm512_mask_blend_ps(pair_mask(k, 2), out, t45);
                _mm512_storeu_ps(dst.add(p * 6 + 16 * k), out);
            }
            p += 16;
        }
        for p in p..kc {
            for (r, row) in rows.iter().enumerate() {
                *dst.add(p * 6 + r) = *row.add(p);
            }
        }
    }

    /// Packs 8 unit-stride rows of `kc` values as `dst[p·8 + r] = rows[r][p]`: 16 columns at a
    /// time, transposed in three rounds of shuffles (32 for 128 values; a 16 × 16 transpose
    /// through memory cost 14 % of a 128³ product).
    #[target_feature(enable = "avx512f")]
    pub unsafe fn pack_a8(rows: &[*const f32], kc: usize, dst: *mut f32) {
        let mut p = 0;
        while p + 16 <= kc {
            let r: [__m512; 8] = std::array::from_fn(|i| _mm512_loadu_ps(rows[i].add(p)));
            // Within each 128-bit lane L (columns 4L..4L+4): pairs of rows interleaved, then
            // quads: c[g][j] lane L holds column 4L + j of rows 4g..4g+4.
            let mut c = [[_mm512_setzero_ps(); 4]; 2];
            for (g, cg) in c.iter_mut().enumerate() {
                let b = 4 * g;
                let lo01 = _mm512_castps_pd(_mm512_unpacklo_ps(r[b], r[b + 1]));
                let hi01 = _mm512_castps_pd(_mm512_unpackhi_ps(r[b], r[b + 1]));
                let lo23 = _mm512_castps_pd(_mm512_unpacklo_ps(r[b + 2], r[b + 3]));
                let hi23 = _mm512_castps_pd(_mm512_unpackhi_ps(r[b + 2], r[b + 3]));
                cg[0] = _mm512_castpd_ps(_mm512_unpacklo_pd(lo01, lo23));
                cg[1] = _mm512_castpd_ps(_mm512_unpackhi_pd(lo01, lo23));
                cg[2] = _mm512_castpd_ps(_mm512_unpacklo_pd(hi01, hi23));
                cg[3] = _mm512_castpd_ps(_mm512_unpackhi_pd(hi01, hi23));
            }
            // Output vector 2L + j/2 (j = 0, 2) holds columns 4L + j and 4L + j + 1, each as
            // rows 0..4 then 4..8: lanes (c[0][j], c[1][j], c[0][j+1], c[1][j+1]) at L.
            for j in [0, 2] {
                let g0 = _mm512_shuffle_f32x4::<0x44>(c[0][j], c[1][j]);
                let g1 = _mm512_shuffle_f32x4::<0xEE>(c[0][j], c[1][j]);
                let h0 = _mm512_shuffle_f32x4::<0x44>(c[0][j + 1], c[1][j + 1]);
                let h1 = _mm512_shuffle_f32x4::<0xEE>(c[0][j + 1], c[1][j + 1]);
                let out = dst.add(p * 8 + 16 * (j / 2));
                _mm512_storeu_ps(out, _mm512_shuffle_f32x4::<0x88>(g0, h0));
                _mm512_storeu_ps(out.add(32), _mm512_shuffle_f32x4::<0xDD>(g0, h0));
                _mm512_storeu_ps(out.add(64), _mm512_shuffle_f32x4::<0x88>(g1, h1));
                _mm512_storeu_ps(out.add(96), _mm512_shuffle_f32x4::<0xDD>(g1, h1));
            }
            p += 16;
        }
        for p in p..kc {
            for (r, row) in rows.iter().enumerate() {
                *dst.add(p * 8 + r) = *row.add(p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: &[f32], b: &[f32]) -> Vec<f64> {
        let mut c = vec![0f64; m * n];
        for i in 0..m {
            for p in 0..k {
                for j in 0..n {
                    c[i * n + j] += a[i * k + p] as f64 * b[p * n + j] as f64;
                }
            }
        }
        c
    }

    #[test]
    fn strips_whose_rows_share_few_l1_sets_are_packed() {
        assert!(!strip_fits_l1(1024, 64, 32)); // 4 KiB apart: one set
        assert!(!strip_fits_l1(256, 40, 32)); // 1 KiB: four sets, 32 lines for 80
        assert!(strip_fits_l1(256, 8, 32)); // 16 lines fit in those sets
        assert!(strip_fits_l1(400, 256, 32)); // 25 lines apart: every set
        assert!(strip_fits_l1(1000, 256, 32)); // not whole lines apart
    }

    #[test]
    fn matches_naive_on_edges_strides_and_k_blocks() {
        // 8-row tiles for m = 7, 13, 16, 64 and 72 (full and partial strips, k not a multiple
        // of 16 or of KC), 6-row ones for 1, 6 and 100; rows of B 1024 and 256 floats apart
        // packed although m is small (`strip_fits_l1`).
        for &(m, n, k) in &[(1, 1, 1), (7, 33, 5), (13, 70, 300), (72, 40, 257), (100, 3, 600), (6, 16, 0), (64, 50, 21), (16, 40, 300), (16, 1024, 70), (8, 256, 40)] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7) % 13) as f32 - 6.0).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i * 5) % 11) as f32 * 0.5 - 2.0).collect();
            let want = naive(m, n, k, &a, &b);
            // B read transposed from an n×k buffer to exercise strided packing.
            let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
            // A read transposed from a k×m buffer (column-major packing).
            let at: Vec<f32> = (0..m * k).map(|i| a[(i % m) * k + i / m]).collect();
            let a_row = Mat { ptr: a.as_ptr(), rs: k as isize, cs: 1 };
            let a_col = Mat { ptr: at.as_ptr(), rs: 1, cs: m as isize };
            for (am, bm, threads) in [
                (a_row, Mat { ptr: b.as_ptr(), rs: n as isize, cs: 1 }, true),
                (a_row, Mat { ptr: bt.as_ptr(), rs: 1, cs: k as isize }, false),
                (a_col, Mat { ptr: bt.as_ptr(), rs: 1, cs: k as isize }, true),
            ] {
                let mut c = vec![f32::NAN; m * n];
                sgemm(m, n, k, am, bm, c.as_mut_ptr(), false, threads);
                for (x, y) in c.iter().zip(&want) {
                    assert!((*x as f64 - y).abs() <= 1e-3 * (1.0 + y.abs()), "{m}x{n}x{k}: {x} vs {y}");
                }
            }
        }
    }
}
