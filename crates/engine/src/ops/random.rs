//! Random numbers from a counter-based generator (Philox 4x32-10): element i of a draw is a pure
//! function of (seed, offset + i), so results are reproducible and independent of thread count.

use std::sync::Arc;

pub use parking_lot::Mutex;

use crate::dispatch;
use crate::dtype::{DType, Element, Scalar};
use crate::error::{runtime_err, Result};
use crate::kernels::strided::SendPtr;
use crate::parallel;
use crate::tensor::Tensor;

/// Seed and position in the stream (in 128-bit Philox blocks).
#[derive(Clone, Debug)]
pub struct Generator {
    seed: u64,
    offset: u64,
}

const DEFAULT_SEED: u64 = 67280421310721;

impl Default for Generator {
    fn default() -> Self {
        Generator { seed: DEFAULT_SEED, offset: 0 }
    }
}

impl Generator {
    pub fn new(seed: u64) -> Generator {
        Generator { seed, offset: 0 }
    }
    pub fn manual_seed(&mut self, seed: u64) {
        self.seed = seed;
        self.offset = 0;
    }
    pub fn initial_seed(&self) -> u64 {
        self.seed
    }
    /// (seed, offset) as a state pair for `get_state`/`set_state`.
    pub fn state(&self) -> (u64, u64) {
        (self.seed, self.offset)
    }
    pub fn set_state(&mut self, seed: u64, offset: u64) {
        self.seed = seed;
        self.offset = offset;
    }
    /// Reserves `blocks` counters and returns the first.
    fn take(&mut self, blocks: u64) -> (u64, u64) {
        let start = self.offset;
        self.offset = self.offset.wrapping_add(blocks);
        (self.seed, start)
    }
    /// One 64-bit value from the stream (for sequential algorithms such as shuffles).
    pub fn next_u64(&mut self) -> u64 {
        let (seed, c) = self.take(1);
        let w = philox(seed, c);
        (w[0] as u64) << 32 | w[1] as u64
    }
}

pub type SharedGenerator = Arc<Mutex<Generator>>;

static DEFAULT: std::sync::OnceLock<SharedGenerator> = std::sync::OnceLock::new();

/// The process-wide generator behind `torch.manual_seed` and every draw without `generator=`.
pub fn default_generator() -> SharedGenerator {
    DEFAULT.get_or_init(|| Arc::new(Mutex::new(Generator::default()))).clone()
}

#[inline(always)]
fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let p = a as u64 * b as u64;
    ((p >> 32) as u32, p as u32)
}

/// Philox 4x32 with 10 rounds: four random words for counter `ctr` under key `seed`.
#[inline]
pub fn philox(seed: u64, ctr: u64) -> [u32; 4] {
    let (mut k0, mut k1) = (seed as u32, (seed >> 32) as u32);
    let mut c = [ctr as u32, (ctr >> 32) as u32, 0, 0];
    for _ in 0..10 {
        let (hi0, lo0) = mulhilo(0xD251_1F53, c[0]);
        let (hi1, lo1) = mulhilo(0xCD9E_8D57, c[2]);
        c = [hi1 ^ c[1] ^ k0, lo1, hi0 ^ c[3] ^ k1, lo0];
        k0 = k0.wrapping_add(0x9E37_79B9);
        k1 = k1.wrapping_add(0xBB67_AE85);
    }
    c
}

/// Fills a fresh tensor: `per_block` values come from each Philox block via `make`.
fn draw<T: Element>(shape: &[usize], gen: &SharedGenerator, per_block: usize, make: impl Fn([u32; 4], usize) -> T + Sync + Send) -> Tensor {
    let t = Tensor::uninit(shape, T::DTYPE);
    let n = t.numel();
    let (seed, base) = gen.lock().take(n.div_ceil(per_block) as u64);
    let p = SendPtr(t.view().ptr::<T>());
    let chunks = parallel::chunks_for(n, parallel::GRAIN);
    // Chunk boundaries on block boundaries so every block is computed once.
    let per = n.div_ceil(chunks.max(1)).div_ceil(per_block) * per_block;
    parallel::for_chunks(chunks, |c| {
        let (lo, hi) = ((c * per).min(n), ((c + 1) * per).min(n));
        let mut i = lo;
        while i < hi {
            let w = philox(seed, base + (i / per_block) as u64);
            for slot in 0..per_block.min(hi - i) {
                // SAFETY: i + slot < hi ≤ n, written by this chunk only.
                unsafe { *p.at((i + slot) as isize) = make(w, slot) };
            }
            i += per_block;
        }
    });
    t
}

#[inline(always)]
fn unit_f32(w: u32) -> f32 {
    (w >> 8) as f32 * (1.0 / (1u32 << 24) as f32)
}
#[inline(always)]
fn unit_f64(hi: u32, lo: u32) -> f64 {
    (((hi as u64) << 32 | lo as u64) >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Uniform [0, 1).
pub fn rand(shape: &[usize], dtype: DType, gen: &SharedGenerator) -> Result<Tensor> {
    match dtype {
        DType::F32 => Ok(draw::<f32>(shape, gen, 4, |w, s| unit_f32(w[s]))),
        DType::F64 => Ok(draw::<f64>(shape, gen, 2, |w, s| unit_f64(w[2 * s], w[2 * s + 1]))),
        d => runtime_err(format!("\"check_uniform_bounds\" not implemented for '{d}'")),
    }
}

/// Standard normal via Box–Muller on pairs of uniforms.
pub fn randn(shape: &[usize], dtype: DType, gen: &SharedGenerator) -> Result<Tensor> {
    fn pair(u1: f64, u2: f64, s: usize) -> f64 {
        let r = (-2.0 * (1.0 - u1).ln()).sqrt();
        let th = 2.0 * std::f64::consts::PI * u2;
        if s % 2 == 0 { r * th.cos() } else { r * th.sin() }
    }
    match dtype {
        DType::F32 => Ok(draw::<f32>(shape, gen, 4, |w, s| {
            let k = s & !1;
            pair(unit_f32(w[k]) as f64, unit_f32(w[k + 1]) as f64, s) as f32
        })),
        DType::F64 => Ok(draw::<f64>(shape, gen, 2, |w, s| pair(unit_f64(w[0], w[1]), unit_f64(w[2], w[3]), s))),
        d => runtime_err(format!("\"normal_kernel_cpu\" not implemented for '{d}'")),
    }
}

/// Integers uniform in [low, high).
pub fn randint(low: i64, high: i64, shape: &[usize], dtype: DType, gen: &SharedGenerator) -> Result<Tensor> {
    if low >= high {
        return runtime_err(format!("random_ expects 'from' to be less than 'to', but got from={low} >= to={high}"));
    }
    let range = (high as i128 - low as i128) as u64;
    Ok(dispatch!(dtype, T => draw::<T>(shape, gen, 2, |w, s| {
        let r = ((w[2 * s] as u64) << 32 | w[2 * s + 1] as u64) % range;
        T::from_scalar(Scalar::Int((low as i128 + r as i128) as i64))
    })))
}

/// A random permutation of 0..n (Fisher–Yates).
pub fn randperm(n: usize, dtype: DType, gen: &SharedGenerator) -> Result<Tensor> {
    let mut v: Vec<i64> = (0..n as i64).collect();
    let mut g = gen.lock();
    for i in (1..n).rev() {
        let j = (g.next_u64() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    drop(g);
    let t = Tensor::from_vec(v, &[n])?;
    Ok(crate::ops::cast::to_dtype(&t, dtype))
}

/// `uniform_(from, to)` and `normal_(mean, std)` write into an existing tensor.
pub fn uniform_(t: &Tensor, from: f64, to: f64, gen: &SharedGenerator) -> Result<()> {
    let u = rand(&t.shape(), t.dtype(), gen)?; // integer and bool tensors refuse, as PyTorch
    let scaled = crate::ops::elementwise::binary(
        crate::ops::elementwise::BinaryOp::Add,
        crate::ops::Input::T(&crate::ops::elementwise::binary(crate::ops::elementwise::BinaryOp::Mul, (&u).into(), Scalar::Float(to - from).into())?),
        Scalar::Float(from).into(),
    )?;
    t.copy_from(&scaled)
}

pub fn normal_(t: &Tensor, mean: f64, std: f64, gen: &SharedGenerator) -> Result<()> {
    let z = randn(&t.shape(), t.dtype(), gen)?;
    let scaled = crate::ops::elementwise::binary(
        crate::ops::elementwise::BinaryOp::Add,
        crate::ops::Input::T(&crate::ops::elementwise::binary(crate::ops::elementwise::BinaryOp::Mul, (&z).into(), Scalar::Float(std).into())?),
        Scalar::Float(mean).into(),
    )?;
    t.copy_from(&scaled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproducible_and_uniform() {
        let g1 = Arc::new(Mutex::new(Generator::new(7)));
        let g2 = Arc::new(Mutex::new(Generator::new(7)));
        let a = rand(&[100_000], DType::F32, &g1).unwrap().to_vec::<f32>();
        let b = rand(&[100_000], DType::F32, &g2).unwrap().to_vec::<f32>();
        assert_eq!(a, b);
        let mean: f32 = a.iter().sum::<f32>() / a.len() as f32;
        assert!((mean - 0.5).abs() < 0.01 && a.iter().all(|&x| (0.0..1.0).contains(&x)));
        let z = randn(&[100_001], DType::F64, &g1).unwrap().to_vec::<f64>();
        let m: f64 = z.iter().sum::<f64>() / z.len() as f64;
        let var: f64 = z.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / z.len() as f64;
        assert!(m.abs() < 0.02 && (var - 1.0).abs() < 0.02);
    }
}
