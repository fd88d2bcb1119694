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

impl std::str::FromStr for DType {
    type Err = crate::Error;

    /// TensorFlow's names (`"float32"`, `"float64"`, `"int32"`, `"int64"`, `"bool"`) and
    /// NumPy's short ones (`"f32"`, `"f64"`, `"i32"`, `"i64"`).
    ///
    /// ```
    /// use ferroflow_tensor_core::DType;
    /// assert_eq!("float32".parse::<DType>()?, DType::F32);
    /// assert_eq!("i64".parse::<DType>()?, DType::I64);
    /// assert!("float8".parse::<DType>().is_err());
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    fn from_str(s: &str) -> crate::Result<DType> {
        let short = match s {
            "f32" => Some(DType::F32),
            "f64" => Some(DType::F64),
            "i32" => Some(DType::I32),
            "i64" => Some(DType::I64),
            _ => None,
        };
        short
            .or_else(|| DType::from_name(s))
            .ok_or_else(|| crate::Error::invalid("dtype", format!("unknown dtype {s:?}")))
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
    /// `e^x` in a form the compiler vectorises: for `f32` a Cephes-style polynomial (within
    /// 2 ulp of the exact value; `FMA` picks fused multiply-adds, see `exp_f32`), for
    /// `f64` the standard library's `exp`.
    fn exp_vec<const FMA: bool>(self) -> Self;
    /// `tanh` as TensorFlow's CPU kernel computes it: for `f32` Eigen's rational
    /// approximation (see `ops::math::eigen_f32`), for `f64` the standard library's.
    fn tanh_tf(self) -> Self;
    /// The logistic function `1 / (1 + e^-x)` on all but the last `n % 8` elements of a
    /// tensor, as TensorFlow's CPU kernel computes it: for `f32` Eigen's packet form (see
    /// `ops::math::eigen_f32`), for `f64` one exponential of `-|x|`, stable in both tails.
    fn sigmoid_tf(self) -> Self;
    /// [`FloatElement::sigmoid_tf`] on the last `n % 8` elements of a tensor, which
    /// TensorFlow's `f32` kernel computes one at a time by another formula (for `f64` the
    /// same as [`FloatElement::sigmoid_tf`]).
    fn sigmoid_tf_tail(self) -> Self;
}

/// `e^x` for f32 without a libm call, so loops over it vectorise: range reduction by
/// `ln 2`, a degree-6 polynomial on `[-ln2/2, ln2/2]` (Cephes `expf`), and the exponent
/// written straight into the float's bits.
///
/// With `FMA` the products and sums are fused multiply-adds (one rounding each): one
/// instruction each in the AVX2+FMA build of the loops, but a slow library call anywhere
/// the CPU or the build lacks FMA. Loops pick it with `with_fma!`, which sets it exactly
/// where it is fast; the two forms may differ in the last bit.
#[inline(always)]
pub fn exp_f32<const FMA: bool>(x: f32) -> f32 {
    // Below -104, e^x rounds to 0 in f32 (subnormals included); above ln(f32::MAX) it
    // overflows, and is infinite as in TensorFlow (a bare clamp would give f32::MAX).
    let (y, n) = exp_parts::<FMA>(x.clamp(-104.0, 88.722_83));
    // n is in [-150, 128] after the clamp, split in two factors so each power of two is a
    // normal float (both products are exact but the last, which may be subnormal).
    let half = n >> 1;
    let e = y * pow2(half) * pow2(n - half);
    if x > 88.722_83 {
        f32::INFINITY
    } else {
        e
    }
}

/// `e^x = y · 2^n` with `y = e^r`, `r = x - n ln 2` in `[-ln2/2, ln2/2]`.
#[inline(always)]
fn exp_parts<const FMA: bool>(x: f32) -> (f32, i32) {
    // `a * b + c`, fused or not.
    let fma = |a: f32, b: f32, c: f32| if FMA { a.mul_add(b, c) } else { a * b + c };
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Round to nearest by adding and subtracting 1.5·2^23 (plain arithmetic: `floor` or
    // `round` would be a libm call without SSE4.1 and stop vectorisation).
    // The integer n also sits in the low mantissa bits of t, so it is read from the bits
    // instead of a (scalar, saturating) float-to-int cast.
    const MAGIC: f32 = 12_582_912.0;
    let t = fma(x, LOG2E, MAGIC);
    let n = t - MAGIC;
    let ni = (t.to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
    let r = fma(-n, LN2_HI, x);
    let r = fma(-n, LN2_LO, r);
    let mut p = 1.987_569_2e-4f32;
    p = fma(p, r, 1.398_199_9e-3);
    p = fma(p, r, 8.333_452e-3);
    p = fma(p, r, 4.166_579_6e-2);
    p = fma(p, r, 1.666_666_5e-1);
    p = fma(p, r, 0.5);
    (fma(p * r, r, r) + 1.0, ni)
}

/// `2^n` for `n` in `[-126, 127]`, built in the exponent field.
#[inline(always)]
fn pow2(n: i32) -> f32 {
    f32::from_bits(((n + 127) as u32) << 23)
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
    #[inline(always)]
    fn exp_vec<const FMA: bool>(self) -> Self {
        exp_f32::<FMA>(self)
    }
    #[inline(always)]
    fn tanh_tf(self) -> Self {
        crate::ops::math::eigen_f32::tanh(self)
    }
    #[inline(always)]
    fn sigmoid_tf(self) -> Self {
        crate::ops::math::eigen_f32::sigmoid(self)
    }
    #[inline]
    fn sigmoid_tf_tail(self) -> Self {
        crate::ops::math::eigen_f32::sigmoid_scalar(self)
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
    #[inline(always)]
    fn exp_vec<const FMA: bool>(self) -> Self {
        self.exp()
    }
    #[inline(always)]
    fn tanh_tf(self) -> Self {
        self.tanh()
    }
    #[inline(always)]
    fn sigmoid_tf(self) -> Self {
        // One exponential of -|x| (never overflows), then a select.
        let e = (-self.abs()).exp();
        let s = 1.0 / (1.0 + e);
        if self >= 0.0 {
            s
        } else {
            e * s
        }
    }
    #[inline]
    fn sigmoid_tf_tail(self) -> Self {
        self.sigmoid_tf()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn exp_within_two_ulp<const FMA: bool>() {
        let mut x = -87.0f32;
        while x < 88.7 {
            let want = (x as f64).exp() as f32;
            let got = exp_f32::<FMA>(x);
            let ulps = want.to_bits().abs_diff(got.to_bits());
            assert!(ulps <= 2, "exp({x}) = {got}, want {want} ({ulps} ulp, fma {FMA})");
            x += 0.0137;
        }
        assert_eq!(exp_f32::<FMA>(0.0), 1.0);
        assert!(exp_f32::<FMA>(f32::NAN).is_nan());
        assert_eq!(exp_f32::<FMA>(-1000.0), 0.0);
        assert_eq!(exp_f32::<FMA>(1000.0), f32::INFINITY);
    }

    #[test]
    fn vectorisable_exp_is_within_two_ulp() {
        exp_within_two_ulp::<false>();
        exp_within_two_ulp::<true>();
    }
}
