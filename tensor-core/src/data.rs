//! Dense storage: one `ndarray` array per dtype, shared by reference count so that cloning a
//! tensor, transposing it or slicing it does not copy the elements.

use crate::{DType, Element};
use ndarray::{ArcArray, ArrayD, IxDyn};

/// A shared n-d array of one element type, as tensor-core stores it.
pub type Array<T> = ArcArray<T, IxDyn>;

/// `values` as a row-major array of `dims`: ndarray's `from_shape_vec`, through its
/// fixed-rank constructors for ranks up to four.
///
/// Why: the dynamic-rank constructor's stride computation and checks took a sixth of an
/// eager 2×2 `matmul` (about 50 ns of 300); the fixed-rank ones and `into_dyn` build the
/// same array for a fraction of that. Every op's output goes through here or a kernel
/// that does the same.
pub(crate) fn row_major<T>(dims: &[usize], values: Vec<T>) -> Result<ArrayD<T>, ndarray::ShapeError> {
    use ndarray::{Array0, Array1, Array2, Array3, Array4};
    match *dims {
        [] => Array0::from_shape_vec((), values).map(|a| a.into_dyn()),
        [d0] => Array1::from_shape_vec(d0, values).map(|a| a.into_dyn()),
        [d0, d1] => Array2::from_shape_vec((d0, d1), values).map(|a| a.into_dyn()),
        [d0, d1, d2] => Array3::from_shape_vec((d0, d1, d2), values).map(|a| a.into_dyn()),
        [d0, d1, d2, d3] => Array4::from_shape_vec((d0, d1, d2, d3), values).map(|a| a.into_dyn()),
        _ => ArrayD::from_shape_vec(IxDyn(dims), values),
    }
}

/// The elements of an eager tensor, tagged with their dtype.
#[derive(Clone, Debug)]
pub enum Data {
    /// `float32` elements.
    F32(Array<f32>),
    /// `float64` elements.
    F64(Array<f64>),
    /// `int32` elements.
    I32(Array<i32>),
    /// `int64` elements.
    I64(Array<i64>),
    /// `bool` elements.
    Bool(Array<bool>),
}

/// Runs `$body` with `$a` bound to the typed array inside a [`Data`], for every dtype.
macro_rules! with_data {
    ($data:expr, $a:ident => $body:expr) => {
        match $data {
            crate::Data::F32($a) => $body,
            crate::Data::F64($a) => $body,
            crate::Data::I32($a) => $body,
            crate::Data::I64($a) => $body,
            crate::Data::Bool($a) => $body,
        }
    };
}
pub(crate) use with_data;

impl Data {
    /// The dtype of the elements.
    pub fn dtype(&self) -> DType {
        match self {
            Data::F32(_) => DType::F32,
            Data::F64(_) => DType::F64,
            Data::I32(_) => DType::I32,
            Data::I64(_) => DType::I64,
            Data::Bool(_) => DType::Bool,
        }
    }

    /// The dimensions.
    pub fn dims(&self) -> &[usize] {
        with_data!(self, a => a.shape())
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        with_data!(self, a => a.len())
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The typed array if the dtype is `T`'s.
    pub fn array<T: Element>(&self) -> Option<&Array<T>> {
        T::array_of(self)
    }

    /// Wraps a typed array.
    pub fn from_array<T: Element>(a: Array<T>) -> Data {
        T::wrap(a)
    }

    /// Wraps an owned `ndarray` array (no copy).
    pub fn from_owned<T: Element>(a: ArrayD<T>) -> Data {
        T::wrap(a.into_shared())
    }

    /// All elements widened to f64, in row-major order (bool as 0/1). For tests and printing.
    pub fn to_f64_vec(&self) -> Vec<f64> {
        with_data!(self, a => a.iter().map(|v| v.to_f64()).collect())
    }

    /// Every element's exact bit pattern, in row-major order: two tensors of one dtype hold
    /// the same values exactly when these are equal (unlike [`Data::to_f64_vec`], which
    /// rounds `int64` values past 2^53, and compares `NaN` unequal and `-0.0` equal to `0.0`).
    ///
    /// ```
    /// use ferroflow_tensor_core::Tensor;
    /// let (a, b) = (Tensor::new([i64::MAX]), Tensor::new([i64::MAX - 1]));
    /// assert_ne!(a.data()?.element_bits(), b.data()?.element_bits());
    /// assert_eq!(a.data()?.to_f64_vec(), b.data()?.to_f64_vec());
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn element_bits(&self) -> Vec<u64> {
        match self {
            Data::F32(a) => a.iter().map(|v| u64::from(v.to_bits())).collect(),
            Data::F64(a) => a.iter().map(|v| v.to_bits()).collect(),
            // Sign-extended, so the pattern is the value's two's complement.
            Data::I32(a) => a.iter().map(|&v| i64::from(v) as u64).collect(),
            Data::I64(a) => a.iter().map(|&v| v as u64).collect(),
            Data::Bool(a) => a.iter().map(|&v| u64::from(v)).collect(),
        }
    }

    /// True when both hold the same dtype, shape and element bit patterns (the comparison of
    /// [`Data::element_bits`], without copying; it stops at the first difference).
    ///
    /// ```
    /// use ferroflow_tensor_core::Tensor;
    /// let (a, b) = (Tensor::new([f32::NAN, 0.0]), Tensor::new([f32::NAN, -0.0]));
    /// assert!(a.data()?.bitwise_eq(a.data()?));
    /// assert!(!a.data()?.bitwise_eq(b.data()?));
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn bitwise_eq(&self, other: &Data) -> bool {
        fn same<T: Copy, B: PartialEq>(a: &Array<T>, b: &Array<T>, bits: impl Fn(T) -> B) -> bool {
            a.shape() == b.shape() && a.iter().zip(b.iter()).all(|(&x, &y)| bits(x) == bits(y))
        }
        match (self, other) {
            (Data::F32(a), Data::F32(b)) => same(a, b, f32::to_bits),
            (Data::F64(a), Data::F64(b)) => same(a, b, f64::to_bits),
            (Data::I32(a), Data::I32(b)) => same(a, b, |v| v),
            (Data::I64(a), Data::I64(b)) => same(a, b, |v| v),
            (Data::Bool(a), Data::Bool(b)) => same(a, b, |v| v),
            _ => false,
        }
    }
}

/// Ties each element type to its [`Data`] variant (implemented by the sealed [`Element`]
/// types).
pub trait DataVariant: Sized {
    /// Wraps an array of this type.
    fn wrap(a: Array<Self>) -> Data;
    /// The typed array if `d` holds this type.
    fn array_of(d: &Data) -> Option<&Array<Self>>;
}

macro_rules! impl_variant {
    ($t:ty, $v:ident) => {
        impl DataVariant for $t {
            #[inline]
            fn wrap(a: Array<Self>) -> Data {
                Data::$v(a)
            }
            #[inline]
            fn array_of(d: &Data) -> Option<&Array<Self>> {
                match d {
                    Data::$v(a) => Some(a),
                    _ => None,
                }
            }
        }
    };
}
impl_variant!(f32, F32);
impl_variant!(f64, F64);
impl_variant!(i32, I32);
impl_variant!(i64, I64);
impl_variant!(bool, Bool);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_major_builds_what_the_dynamic_constructor_builds() {
        for dims in [
            vec![],
            vec![0],
            vec![5],
            vec![2, 3],
            vec![3, 0],
            vec![2, 1, 3],
            vec![2, 3, 1, 2],
            vec![1, 2, 1, 2, 3],
            vec![2, 1, 2, 1, 2, 1],
        ] {
            let n: usize = dims.iter().product();
            let values: Vec<i64> = (0..n as i64).collect();
            let fast = row_major(&dims, values.clone()).unwrap();
            let general = ArrayD::from_shape_vec(IxDyn(&dims), values).unwrap();
            assert_eq!(fast.shape(), general.shape(), "{dims:?}");
            assert_eq!(fast.strides(), general.strides(), "{dims:?}");
            assert_eq!(fast, general, "{dims:?}");
        }
    }

    #[test]
    fn row_major_rejects_a_wrong_element_count_at_every_rank() {
        for dims in [
            vec![],
            vec![3],
            vec![2, 2],
            vec![2, 2, 2],
            vec![1, 2, 2, 2],
            vec![1, 1, 2, 2, 2],
        ] {
            let n: usize = dims.iter().product();
            assert!(row_major(&dims, vec![0.0f32; n + 1]).is_err(), "{dims:?}");
        }
    }
}
