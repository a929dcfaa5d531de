//! One float32 vector register as a type the GEMM kernels are generic over: `__m512` (16 lanes,
//! AVX-512) and `__m256` (8 lanes, AVX2 + FMA). A kernel written once against `Lanes` is
//! instantiated inside a `#[target_feature]` entry point per level, where every method (each
//! one intrinsic) inlines.

#[cfg(target_arch = "x86_64")]
pub use x86::Lanes;

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// A vector of `W` float32 lanes. The methods are the intrinsics of the level; callers run
    /// them only on a CPU with that level (inside its `#[target_feature]` entry point).
    pub trait Lanes: Copy {
        /// Lanes per vector.
        const W: usize;
        /// Which lanes a partial load or store touches.
        type Mask: Copy;
        unsafe fn zero() -> Self;
        unsafe fn splat(v: f32) -> Self;
        unsafe fn load(p: *const f32) -> Self;
        unsafe fn store(p: *mut f32, v: Self);
        /// The first `n` lanes (`n ≤ W`).
        unsafe fn first(n: usize) -> Self::Mask;
        /// Loads the lanes of `m`, zero elsewhere; memory outside `m` is not touched.
        unsafe fn load_masked(m: Self::Mask, p: *const f32) -> Self;
        unsafe fn store_masked(p: *mut f32, m: Self::Mask, v: Self);
        /// `a·b + c`.
        unsafe fn fmadd(a: Self, b: Self, c: Self) -> Self;
        unsafe fn add(a: Self, b: Self) -> Self;
        /// The sums of four vectors' lanes, in that order.
        unsafe fn sum4(v: &[Self; 4]) -> __m128;
        /// `W` vectors: a square block of `W × W` lanes.
        type Square: AsRef<[Self]> + AsMut<[Self]>;
        unsafe fn zero_square() -> Self::Square;
        /// The block transposed: lane j of vector i is lane i of `rows[j]`.
        unsafe fn transpose(rows: Self::Square) -> Self::Square;
    }

    impl Lanes for __m512 {
        const W: usize = 16;
        type Mask = __mmask16;
        type Square = [Self; 16];
        #[inline(always)]
        unsafe fn zero_square() -> Self::Square {
            [Self::zero(); 16]
        }
        #[inline(always)]
        unsafe fn transpose(rows: Self::Square) -> Self::Square {
            crate::kernels::transpose::transpose16(rows)
        }
        #[inline(always)]
        unsafe fn zero() -> Self {
            _mm512_setzero_ps()
        }
        #[inline(always)]
        unsafe fn splat(v: f32) -> Self {
            _mm512_set1_ps(v)
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            _mm512_loadu_ps(p)
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: Self) {
            _mm512_storeu_ps(p, v)
        }
        #[inline(always)]
        unsafe fn first(n: usize) -> __mmask16 {
            if n >= 16 {
                0xFFFF
            } else {
                ((1u32 << n) - 1) as __mmask16
            }
        }
        #[inline(always)]
        unsafe fn load_masked(m: __mmask16, p: *const f32) -> Self {
            _mm512_maskz_loadu_ps(m, p)
        }
        #[inline(always)]
        unsafe fn store_masked(p: *mut f32, m: __mmask16, v: Self) {
            _mm512_mask_storeu_ps(p, m, v)
        }
        #[inline(always)]
        unsafe fn fmadd(a: Self, b: Self, c: Self) -> Self {
            _mm512_fmadd_ps(a, b, c)
        }
        #[inline(always)]
        unsafe fn add(a: Self, b: Self) -> Self {
            _mm512_add_ps(a, b)
        }
        /// Halves, then quarters of all four at once, then within each quarter (14 instructions
        /// against 32 for four separate sums).
        #[inline(always)]
        unsafe fn sum4(v: &[Self; 4]) -> __m128 {
            let ab = _mm512_add_ps(_mm512_shuffle_f32x4::<0x44>(v[0], v[1]), _mm512_shuffle_f32x4::<0xEE>(v[0], v[1]));
            let cd = _mm512_add_ps(_mm512_shuffle_f32x4::<0x44>(v[2], v[3]), _mm512_shuffle_f32x4::<0xEE>(v[2], v[3]));
            // 128-bit lane g holds four partial sums of v[g].
            let q = _mm512_add_ps(_mm512_shuffle_f32x4::<0x88>(ab, cd), _mm512_shuffle_f32x4::<0xDD>(ab, cd));
            let q = _mm512_add_ps(q, _mm512_permute_ps::<0x4E>(q));
            let q = _mm512_add_ps(q, _mm512_permute_ps::<0xB1>(q));
            _mm512_castps512_ps128(_mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), q))
        }
    }

    impl Lanes for __m256 {
        const W: usize = 8;
        type Mask = __m256i;
        type Square = [Self; 8];
        #[inline(always)]
        unsafe fn zero_square() -> Self::Square {
            [Self::zero(); 8]
        }
        #[inline(always)]
        unsafe fn transpose(rows: Self::Square) -> Self::Square {
            crate::kernels::transpose::transpose8(rows)
        }
        #[inline(always)]
        unsafe fn zero() -> Self {
            _mm256_setzero_ps()
        }
        #[inline(always)]
        unsafe fn splat(v: f32) -> Self {
            _mm256_set1_ps(v)
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            _mm256_loadu_ps(p)
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: Self) {
            _mm256_storeu_ps(p, v)
        }
        #[inline(always)]
        unsafe fn first(n: usize) -> __m256i {
            _mm256_cmpgt_epi32(_mm256_set1_epi32(n.min(8) as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
        }
        #[inline(always)]
        unsafe fn load_masked(m: __m256i, p: *const f32) -> Self {
            _mm256_maskload_ps(p, m)
        }
        #[inline(always)]
        unsafe fn store_masked(p: *mut f32, m: __m256i, v: Self) {
            _mm256_maskstore_ps(p, m, v)
        }
        #[inline(always)]
        unsafe fn fmadd(a: Self, b: Self, c: Self) -> Self {
            _mm256_fmadd_ps(a, b, c)
        }
        #[inline(always)]
        unsafe fn add(a: Self, b: Self) -> Self {
            _mm256_add_ps(a, b)
        }
        /// Two rounds of pairwise sums across the four, then the 128-bit halves added.
        #[inline(always)]
        unsafe fn sum4(v: &[Self; 4]) -> __m128 {
            let q = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
            _mm_add_ps(_mm256_castps256_ps128(q), _mm256_extractf128_ps::<1>(q))
        }
    }
}
