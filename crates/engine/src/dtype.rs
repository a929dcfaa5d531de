//! Element types, scalar values and PyTorch's type-promotion rules.

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};

/// The dtypes rustgrad stores. Order matters: promotion within this set is the maximum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    Bool,
    U8,
    I32,
    I64,
    F32,
    F64,
}

/// The three promotion categories: a scalar of a higher category changes a tensor's dtype.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Category {
    Bool,
    Int,
    Float,
}

impl DType {
    pub const ALL: [DType; 6] = [DType::Bool, DType::U8, DType::I32, DType::I64, DType::F32, DType::F64];

    pub fn size(self) -> usize {
        match self {
            DType::Bool | DType::U8 => 1,
            DType::I32 | DType::F32 => 4,
            DType::I64 | DType::F64 => 8,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::U8 => "uint8",
            DType::I32 => "int32",
            DType::I64 => "int64",
            DType::F32 => "float32",
            DType::F64 => "float64",
        }
    }
    /// PyTorch's legacy tensor-type names, as returned by `Tensor.type()`.
    pub fn legacy_name(self) -> &'static str {
        match self {
            DType::Bool => "BoolTensor",
            DType::U8 => "ByteTensor",
            DType::I32 => "IntTensor",
            DType::I64 => "LongTensor",
            DType::F32 => "FloatTensor",
            DType::F64 => "DoubleTensor",
        }
    }
    pub fn from_name(name: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.name() == name)
    }
    pub fn category(self) -> Category {
        match self {
            DType::Bool => Category::Bool,
            DType::U8 | DType::I32 | DType::I64 => Category::Int,
            DType::F32 | DType::F64 => Category::Float,
        }
    }
    pub fn is_float(self) -> bool {
        self.category() == Category::Float
    }
    pub fn is_signed(self) -> bool {
        !matches!(self, DType::Bool | DType::U8)
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // PyTorch names dtypes in messages by their C++ scalar-type names.
        f.write_str(match self {
            DType::Bool => "Bool",
            DType::U8 => "Byte",
            DType::I32 => "Int",
            DType::I64 => "Long",
            DType::F32 => "Float",
            DType::F64 => "Double",
        })
    }
}

static DEFAULT_FLOAT: AtomicU8 = AtomicU8::new(DType::F32 as u8);

/// The dtype Python floats and float factories produce (`torch.get_default_dtype()`).
pub fn default_float() -> DType {
    if DEFAULT_FLOAT.load(Ordering::Relaxed) == DType::F64 as u8 { DType::F64 } else { DType::F32 }
}

/// Only float32 and float64 may be the default, as in PyTorch.
pub fn set_default_float(d: DType) -> bool {
    if !d.is_float() {
        return false;
    }
    DEFAULT_FLOAT.store(d as u8, Ordering::Relaxed);
    true
}

/// `torch.promote_types`: within rustgrad's dtype set this is the larger of the two.
pub fn promote_types(a: DType, b: DType) -> DType {
    a.max(b)
}

/// A Python number passed where a tensor could be.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scalar {
    Bool(bool),
    Int(i64),
    Float(f64),
}

impl Scalar {
    pub fn category(self) -> Category {
        match self {
            Scalar::Bool(_) => Category::Bool,
            Scalar::Int(_) => Category::Int,
            Scalar::Float(_) => Category::Float,
        }
    }
    /// The dtype PyTorch gives a tensor made from this value alone.
    pub fn default_dtype(self, default_float: DType) -> DType {
        match self {
            Scalar::Bool(_) => DType::Bool,
            Scalar::Int(_) => DType::I64,
            Scalar::Float(_) => default_float,
        }
    }
    pub fn as_f64(self) -> f64 {
        match self {
            Scalar::Bool(b) => b as u8 as f64,
            Scalar::Int(i) => i as f64,
            Scalar::Float(f) => f,
        }
    }
    pub fn as_i64(self) -> i64 {
        match self {
            Scalar::Bool(b) => b as i64,
            Scalar::Int(i) => i,
            Scalar::Float(f) => f as i64,
        }
    }
    pub fn is_zero(self) -> bool {
        match self {
            Scalar::Bool(b) => !b,
            Scalar::Int(i) => i == 0,
            Scalar::Float(f) => f == 0.0,
        }
    }
}

/// One operand's contribution to `result_type`: PyTorch ranks dimensioned tensors above
/// zero-dim tensors above Python numbers; a lower tier only matters if its category is higher.
#[derive(Clone, Copy, Debug)]
pub enum Operand {
    Tensor(DType),
    ZeroDim(DType),
    Number(Scalar),
}

/// `torch.result_type` over any number of operands.
pub fn result_type(ops: &[Operand], default_float: DType) -> DType {
    let (mut dim, mut zero, mut num) = (None, None, None);
    let merge = |slot: &mut Option<DType>, d: DType| *slot = Some(slot.map_or(d, |s| promote_types(s, d)));
    for op in ops {
        match *op {
            Operand::Tensor(d) => merge(&mut dim, d),
            Operand::ZeroDim(d) => merge(&mut zero, d),
            // A Python float counts as the default float dtype, an int as int64.
            Operand::Number(s) => merge(&mut num, s.default_dtype(default_float)),
        }
    }
    combine_categories(dim, combine_categories(zero, num)).unwrap_or(default_float)
}

/// A lower tier changes the result only when it brings a higher category (or the higher tier is bool).
fn combine_categories(higher: Option<DType>, lower: Option<DType>) -> Option<DType> {
    match (higher, lower) {
        (Some(h), _) if h.is_float() => Some(h),
        (Some(h), Some(l)) if h == DType::Bool || l.is_float() => Some(promote_types(h, l)),
        (Some(h), _) => Some(h),
        (None, l) => l,
    }
}

/// A Rust type that backs a DType. Conversions go through `Scalar`, which the compiler folds
/// away after monomorphisation.
pub trait Element: Copy + Send + Sync + PartialOrd + Default + fmt::Debug + 'static {
    const DTYPE: DType;
    fn to_scalar(self) -> Scalar;
    fn from_scalar(s: Scalar) -> Self;
    fn zero() -> Self;
    fn one() -> Self;
    #[inline]
    fn cast<U: Element>(self) -> U {
        U::from_scalar(self.to_scalar())
    }
}

macro_rules! int_element {
    ($t:ty, $d:ident) => {
        impl Element for $t {
            const DTYPE: DType = DType::$d;
            #[inline(always)]
            fn to_scalar(self) -> Scalar {
                Scalar::Int(self as i64)
            }
            #[inline(always)]
            fn from_scalar(s: Scalar) -> Self {
                match s {
                    Scalar::Bool(b) => b as $t,
                    Scalar::Int(i) => i as $t,
                    // C-style float→int conversion truncates toward zero (via i64 so uint8 wraps).
                    Scalar::Float(f) => (f as i64) as $t,
                }
            }
            fn zero() -> Self { 0 }
            fn one() -> Self { 1 }
        }
    };
}
int_element!(u8, U8);
int_element!(i32, I32);
int_element!(i64, I64);

macro_rules! float_element {
    ($t:ty, $d:ident) => {
        impl Element for $t {
            const DTYPE: DType = DType::$d;
            #[inline(always)]
            fn to_scalar(self) -> Scalar {
                Scalar::Float(self as f64)
            }
            #[inline(always)]
            fn from_scalar(s: Scalar) -> Self {
                match s {
                    Scalar::Bool(b) => b as u8 as $t,
                    Scalar::Int(i) => i as $t,
                    Scalar::Float(f) => f as $t,
                }
            }
            fn zero() -> Self { 0.0 }
            fn one() -> Self { 1.0 }
        }
    };
}
float_element!(f32, F32);
float_element!(f64, F64);

impl Element for bool {
    const DTYPE: DType = DType::Bool;
    #[inline(always)]
    fn to_scalar(self) -> Scalar {
        Scalar::Bool(self)
    }
    #[inline(always)]
    fn from_scalar(s: Scalar) -> Self {
        !s.is_zero()
    }
    fn zero() -> Self { false }
    fn one() -> Self { true }
}

/// Runs `$body` with `$T` bound to the Rust type of `$dtype`.
#[macro_export]
macro_rules! dispatch {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            $crate::dtype::DType::Bool => { type $T = bool; $body }
            $crate::dtype::DType::U8 => { type $T = u8; $body }
            $crate::dtype::DType::I32 => { type $T = i32; $body }
            $crate::dtype::DType::I64 => { type $T = i64; $body }
            $crate::dtype::DType::F32 => { type $T = f32; $body }
            $crate::dtype::DType::F64 => { type $T = f64; $body }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use DType::*;

    #[test]
    fn promotion_follows_pytorch() {
        let f = F32;
        assert_eq!(result_type(&[Operand::Tensor(I64), Operand::Number(Scalar::Float(2.5))], f), F32);
        assert_eq!(result_type(&[Operand::Tensor(I32), Operand::Number(Scalar::Int(2))], f), I32);
        assert_eq!(result_type(&[Operand::Tensor(U8), Operand::Tensor(I32)], f), I32);
        assert_eq!(result_type(&[Operand::Tensor(F32), Operand::Tensor(F64)], f), F64);
        assert_eq!(result_type(&[Operand::Tensor(F32), Operand::ZeroDim(F64)], f), F32);
        assert_eq!(result_type(&[Operand::Tensor(I64), Operand::ZeroDim(F64)], f), F64);
        assert_eq!(result_type(&[Operand::Tensor(I32), Operand::ZeroDim(I64)], f), I32);
        assert_eq!(result_type(&[Operand::Tensor(Bool), Operand::Number(Scalar::Int(1))], f), I64);
        assert_eq!(result_type(&[Operand::Tensor(U8), Operand::Number(Scalar::Float(1.0))], f), F32);
        assert_eq!(result_type(&[Operand::ZeroDim(I64), Operand::Number(Scalar::Float(1.0))], f), F32);
        assert_eq!(result_type(&[Operand::Tensor(F64), Operand::Number(Scalar::Float(1.0))], f), F64);
    }

    #[test]
    fn casts_truncate_like_c() {
        assert_eq!((-2.7f64).cast::<i64>(), -2);
        assert_eq!(300i64.cast::<u8>(), 44);
        assert!(0.5f32.cast::<bool>());
        assert_eq!(true.cast::<f32>(), 1.0);
    }
}
