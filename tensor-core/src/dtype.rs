//! Element types: the [`DType`] tag and the [`Element`] / [`FloatElement`] traits that tie a
//! Rust scalar type to it.

use std::fmt;

/// The element type of a tensor, named as in TensorFlow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    /// 32-bit IEEE float (`tf.float32`).
    F32,
    /// 64-bit IEEE float (`tf.float64`).
    F64,
    /// 32-bit signed integer (`tf.int32`).
    I32,
    /// 64-bit signed integer (`tf.int64`).
    I64,
    /// Boolean (`tf.bool`).
    Bool,
}

impl DType {
    /// TensorFlow's name: `float32`, `float64`, `int32`, `int64`, `bool`.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::F64 => "float64",
            DType::I32 => "int32",
            DType::I64 => "int64",
            DType::Bool => "bool",
        }
    }

    /// Parses TensorFlow's dtype name (the inverse of [`DType::name`]).
    pub fn from_name(name: &str) -> Option<DType> {
        Some(match name {
            "float32" => DType::F32,
            "float64" => DType::F64,
            "int32" => DType::I32,
            "int64" => DType::I64,
            "bool" => DType::Bool,
            _ => return None,
        })
    }

    /// True for `float32` and `float64`.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }

    /// True for `int32` and `int64`.
    pub fn is_int(self) -> bool {
        matches!(self, DType::I32 | DType::I64)
    }

    /// Size of one element in bytes.
    pub fn size_of(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::F64 | DType::I64 => 8,
            DType::Bool => 1,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
    impl Sealed for i32 {}
    impl Sealed for i64 {}
    impl Sealed for bool {}
}

/// A Rust scalar type that a tensor can hold. Implemented for `f32`, `f64`, `i32`, `i64` and
/// `bool` only.
pub trait Element:
    sealed::Sealed + crate::data::DataVariant + Copy + Send + Sync + PartialEq + PartialOrd + Default + fmt::Debug + 'static
{
    /// The dtype tag of this type.
    const DTYPE: DType;
    /// Converts from f64 the way `tf.cast` does (floats truncate toward zero into integers,
    /// `x != 0` into bool).
    fn from_f64(v: f64) -> Self;
    /// Widens to f64 (bool: 0 or 1).
    fn to_f64(self) -> f64;
    /// Additive identity (`false` for bool).
    const ZERO: Self;
    /// Multiplicative identity (`true` for bool).
    const ONE: Self;
}

macro_rules! impl_num_element {
    ($t:ty, $d:expr) => {
        impl Element for $t {
            const DTYPE: DType = $d;
            #[inline]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
            const ZERO: Self = 0 as $t;
            const ONE: Self = 1 as $t;
        }
    };
}
impl_num_element!(f32, DType::F32);
impl_num_element!(f64, DType::F64);
impl_num_element!(i32, DType::I32);
impl_num_element!(i64, DType::I64);

impl Element for bool {
    const DTYPE: DType = DType::Bool;
    fn from_f64(v: f64) -> Self {
        v != 0.0
    }
    fn to_f64(self) -> f64 {
        if self {
            1.0
        } else {
            0.0
        }
    }
    const ZERO: Self = false;
    const ONE: Self = true;
}

/// The float element types (`f32`, `f64`) with the math the kernels need.
pub trait FloatElement: Element + num_traits::Float + num_traits::FloatConst + std::iter::Sum {
    /// The error function.
    fn erf(self) -> Self;
    /// The complementary error function `1 - erf(x)`, accurate in the tails.
    fn erfc(self) -> Self;
    /// Round half to even (TensorFlow's `round`).
    fn round_even(self) -> Self;
}

impl FloatElement for f32 {
    #[inline]
    fn erf(self) -> Self {
        libm::erff(self)
    }
    #[inline]
    fn erfc(self) -> Self {
        libm::erfcf(self)
    }
    #[inline]
    fn round_even(self) -> Self {
        self.round_ties_even()
    }
}

impl FloatElement for f64 {
    #[inline]
    fn erf(self) -> Self {
        libm::erf(self)
    }
    #[inline]
    fn erfc(self) -> Self {
        libm::erfc(self)
    }
    #[inline]
    fn round_even(self) -> Self {
        self.round_ties_even()
    }
}

/// The integer element types (`i32`, `i64`).
pub trait IntElement:
    Element
    + num_traits::PrimInt
    + num_traits::WrappingAdd
    + num_traits::WrappingMul
    + num_traits::WrappingSub
    + num_traits::Signed
{
}
impl IntElement for i32 {}
impl IntElement for i64 {}
