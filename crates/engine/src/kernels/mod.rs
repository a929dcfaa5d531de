//! CPU kernels. They see raw pointers and strides only; validation happened in `ops`.

pub mod channel_lanes;
pub mod gemm;
pub mod lanes;
pub mod map;
pub mod num;
pub mod peak;
pub mod pool16;
pub mod reduce;
pub mod reduce16;
pub mod runs;
pub mod scratch;
pub mod sgemm;
pub mod simd;
pub mod stream;
pub mod sgemm_nt;
pub mod strided;
pub mod transpose;
pub mod vmath;
pub mod vmath16;
pub mod vmath8;
