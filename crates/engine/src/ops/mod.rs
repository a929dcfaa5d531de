//! The op set. Each op validates its inputs (typed errors naming shapes and dtypes), picks the
//! kernel for the dtype, and returns a new tensor or view.

pub mod batch_norm;
pub mod cast;
pub mod conv;
pub mod convolution;
pub(crate) mod conv_wide;
pub mod elementwise;
pub mod factory;
pub mod index;
pub mod layer_norm;
pub mod matmul;
pub mod optim;
pub mod pool;
pub mod random;
pub mod reduce;
pub mod scatter;
pub mod shape;
pub mod softmax;

use crate::dtype::Scalar;
use crate::tensor::Tensor;

/// An op argument that may be a tensor or a Python number (numbers promote more weakly).
#[derive(Clone, Copy)]
pub enum Input<'a> {
    T(&'a Tensor),
    S(Scalar),
}

impl<'a> From<&'a Tensor> for Input<'a> {
    fn from(t: &'a Tensor) -> Self {
        Input::T(t)
    }
}
impl From<Scalar> for Input<'_> {
    fn from(s: Scalar) -> Self {
        Input::S(s)
    }
}
