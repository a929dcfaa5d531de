//! rustgrad's engine: tensors (storage, layout, dtype), the op set and its CPU kernels.
//! Pure Rust; the Python binding lives in `crates/rustgrad-py`.

pub mod allocator;
pub mod autograd;
pub mod device;
pub mod dtype;
pub mod error;
pub mod global_alloc;
pub mod kernels;
pub mod layout;
pub mod ops;
pub mod parallel;
pub mod storage;
pub mod tensor;

pub use device::Device;
pub use dtype::{DType, Scalar};
pub use error::{Error, Result};
pub use tensor::Tensor;
