//! One error type for the whole engine. Each variant carries the context (op, shapes, dtypes)
//! a user needs; the binding maps variants to Python exception types.

use crate::dtype::DType;

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// Shapes that cannot be combined (broadcast, matmul, cat, view...). → RuntimeError
    #[error("{0}")]
    Shape(String),
    /// An index or dim outside its range. → IndexError
    #[error("{0}")]
    Index(String),
    /// An operation that a dtype does not support. → NotImplementedError (a RuntimeError)
    #[error("\"{op}\" not implemented for '{dtype}'")]
    DTypeUnsupported { op: &'static str, dtype: DType },
    /// A result that cannot be cast to the destination of an in-place op. → RuntimeError
    #[error("result type {from} can't be cast to the desired output type {to}")]
    Cast { from: DType, to: DType },
    /// An argument with a bad value (negative size, zero step...). → RuntimeError
    #[error("{0}")]
    Runtime(String),
    /// The few bad values PyTorch reports as ValueError (negative slice step, empty cat). → ValueError
    #[error("{0}")]
    Value(String),
    /// Wrong kind of argument. → TypeError
    #[error("{0}")]
    Type(String),
    /// Device-related failures. → RuntimeError
    #[error("{0}")]
    Device(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Shorthand constructors so call sites read like the message they raise.
pub fn shape_err<T>(msg: impl Into<String>) -> Result<T> {
    Err(Error::Shape(msg.into()))
}
pub fn index_err<T>(msg: impl Into<String>) -> Result<T> {
    Err(Error::Index(msg.into()))
}
pub fn runtime_err<T>(msg: impl Into<String>) -> Result<T> {
    Err(Error::Runtime(msg.into()))
}
pub fn value_err<T>(msg: impl Into<String>) -> Result<T> {
    Err(Error::Value(msg.into()))
}
pub fn type_err<T>(msg: impl Into<String>) -> Result<T> {
    Err(Error::Type(msg.into()))
}
