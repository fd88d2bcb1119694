//! Named options for ops whose TensorFlow signature has optional or boolean arguments:
//! which axes a reduction covers and whether it keeps them, a cumulative sum's direction,
//! gelu's approximation, one-hot encoding, slices and matmul transposes.
//!
//! Each option type converts from the plain value it most often is, so the common call
//! stays short (`x.reduce_sum(1)`, `x.cumsum(0)`, `x.one_hot(10)`) and the rest is spelled
//! out by name (`x.reduce_sum(Axes::from(1).keepdims())`, `x.cumsum(Scan::along(0).reverse())`)
//! instead of positional `bool`s and `None`s.

use crate::DType;
use std::ops::{Range, RangeFrom, RangeFull, RangeInclusive, RangeTo, RangeToInclusive};

/// The axes an op works on: all of them, or a list (negative axes count from the end), as
/// TensorFlow's `axis=None` or `axis=[...]`.
///
/// Converts from an axis (`1`), an array or slice of axes (`[0, 2]`) and a `Vec`.
///
/// ```
/// use ferroflow_tensor_core::{Axes, Tensor};
/// let x = Tensor::new([[1.0f32, 2.0], [3.0, 4.0]]);
/// assert_eq!(x.reduce_sum(Axes::All)?.to_scalar::<f32>()?, 10.0);
/// assert_eq!(x.reduce_sum(0)?.to_vec::<f32>()?, vec![4.0, 6.0]);
/// assert_eq!(x.reduce_sum([0, 1])?.to_scalar::<f32>()?, 10.0);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum Axes {
    /// Every axis (`axis=None`).
    #[default]
    All,
    /// These axes.
    List(Vec<i64>),
}

impl Axes {
    /// The axes as TensorFlow's optional list (`None` = all).
    pub fn as_option(&self) -> Option<&[i64]> {
        match self {
            Axes::All => None,
            Axes::List(a) => Some(a),
        }
    }

    /// A reduction over these axes that keeps each reduced axis with size 1
    /// (`keepdims=True`).
    ///
    /// ```
    /// use ferroflow_tensor_core::{Axes, Tensor};
    /// let x = Tensor::new([[1.0f32, 2.0], [3.0, 4.0]]);
    /// assert_eq!(x.reduce_max(Axes::from(1).keepdims())?.dims(), &[2, 1]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn keepdims(self) -> Reduction {
        Reduction {
            axes: self,
            keepdims: true,
        }
    }
}

macro_rules! axes_from_ints {
    ($($t:ty),*) => {$(
        impl From<$t> for Axes {
            fn from(axis: $t) -> Self {
                Axes::List(vec![axis as i64])
            }
        }
        impl<const N: usize> From<[$t; N]> for Axes {
            fn from(axes: [$t; N]) -> Self {
                Axes::List(axes.iter().map(|&a| a as i64).collect())
            }
        }
        impl<const N: usize> From<&[$t; N]> for Axes {
            fn from(axes: &[$t; N]) -> Self {
                Axes::List(axes.iter().map(|&a| a as i64).collect())
            }
        }
        impl From<&[$t]> for Axes {
            fn from(axes: &[$t]) -> Self {
                Axes::List(axes.iter().map(|&a| a as i64).collect())
            }
        }
        impl From<Vec<$t>> for Axes {
            fn from(axes: Vec<$t>) -> Self {
                Axes::List(axes.into_iter().map(|a| a as i64).collect())
            }
        }
        impl From<&Vec<$t>> for Axes {
            fn from(axes: &Vec<$t>) -> Self {
                Axes::from(axes.as_slice())
            }
        }
    )*};
}
axes_from_ints!(i32, i64);

/// What a reduction covers: its [`Axes`] and whether reduced axes stay with size 1
/// (`keepdims`). Anything that converts into [`Axes`] converts into a reduction that drops
/// the reduced axes; [`Axes::keepdims`] keeps them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Reduction {
    /// The axes reduced.
    pub axes: Axes,
    /// Keep each reduced axis with size 1.
    pub keepdims: bool,
}

impl<T: Into<Axes>> From<T> for Reduction {
    fn from(axes: T) -> Self {
        Reduction {
            axes: axes.into(),
            keepdims: false,
        }
    }
}

/// A cumulative sum or product along one axis (`tf.math.cumsum(x, axis, exclusive,
/// reverse)`). Converts from the axis alone.
///
/// ```
/// use ferroflow_tensor_core::{Scan, Tensor};
/// let x = Tensor::new([1i32, 2, 3]);
/// assert_eq!(x.cumsum(0)?.to_vec::<i32>()?, vec![1, 3, 6]);
/// assert_eq!(x.cumsum(Scan::along(0).exclusive().reverse())?.to_vec::<i32>()?, vec![5, 3, 0]);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scan {
    /// The axis (negative counts from the end).
    pub axis: i64,
    /// Leave the current element out of its running total.
    pub exclusive: bool,
    /// Run from the end of the axis.
    pub reverse: bool,
}

impl Scan {
    /// A forward, inclusive scan along `axis`.
    pub fn along(axis: i64) -> Self {
        Scan {
            axis,
            exclusive: false,
            reverse: false,
        }
    }

    /// Leaves the current element out (`exclusive=True`).
    pub fn exclusive(self) -> Self {
        Scan {
            exclusive: true,
            ..self
        }
    }

    /// Runs from the end (`reverse=True`).
    pub fn reverse(self) -> Self {
        Scan { reverse: true, ..self }
    }
}

impl From<i64> for Scan {
    fn from(axis: i64) -> Self {
        Scan::along(axis)
    }
}

impl From<i32> for Scan {
    fn from(axis: i32) -> Self {
        Scan::along(axis as i64)
    }
}

/// How `gelu` is computed (`tf.nn.gelu(x, approximate)`).
///
/// ```
/// use ferroflow_tensor_core::{Gelu, Tensor};
/// let x = Tensor::new([1.0f64]);
/// let exact = x.gelu(Gelu::Exact)?.to_scalar::<f64>()?;
/// let tanh = x.gelu(Gelu::Tanh)?.to_scalar::<f64>()?;
/// assert!((exact - 0.841345).abs() < 1e-6 && (tanh - exact).abs() < 1e-3);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Gelu {
    /// `x · Φ(x)` with the error function (`approximate=False`, the default).
    #[default]
    Exact,
    /// The tanh approximation (`approximate=True`).
    Tanh,
}

/// One-hot encoding options (`tf.one_hot(indices, depth, on_value, off_value, axis,
/// dtype)`). Converts from the depth alone: ones and zeros, float32, new last axis.
///
/// ```
/// use ferroflow_tensor_core::{DType, OneHot, Tensor};
/// let i = Tensor::new([0i32, 2]);
/// assert_eq!(i.one_hot(3)?.to_vec::<f32>()?, vec![1.0, 0.0, 0.0, 0.0, 0.0, 1.0]);
/// let t = i.one_hot(OneHot::new(3).on_value(5.0).off_value(-1.0).dtype(DType::I64))?;
/// assert_eq!(t.to_vec::<i64>()?, vec![5, -1, -1, -1, -1, 5]);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OneHot {
    /// Number of classes.
    pub depth: usize,
    /// Value at the index.
    pub on_value: f64,
    /// Value elsewhere.
    pub off_value: f64,
    /// Where the new axis goes (-1 = last).
    pub axis: i64,
    /// Output dtype.
    pub dtype: DType,
}

impl OneHot {
    /// `depth` classes, ones and zeros, float32, a new last axis.
    pub fn new(depth: usize) -> Self {
        OneHot {
            depth,
            on_value: 1.0,
            off_value: 0.0,
            axis: -1,
            dtype: DType::F32,
        }
    }

    /// The value at each index.
    pub fn on_value(self, on_value: f64) -> Self {
        OneHot { on_value, ..self }
    }

    /// The value elsewhere.
    pub fn off_value(self, off_value: f64) -> Self {
        OneHot { off_value, ..self }
    }

    /// Where the new axis goes.
    pub fn axis(self, axis: i64) -> Self {
        OneHot { axis, ..self }
    }

    /// The output dtype.
    pub fn dtype(self, dtype: DType) -> Self {
        OneHot { dtype, ..self }
    }
}

impl From<usize> for OneHot {
    fn from(depth: usize) -> Self {
        OneHot::new(depth)
    }
}

/// One dimension of a strided slice, as Python's `start:end:step` (either bound may be left
/// out; negative bounds count from the end; a negative step walks backwards). Converts from
/// Rust ranges: `1..3`, `1..`, `..3`, `..=2`, `..`.
///
/// ```
/// use ferroflow_tensor_core::{Slice, Tensor};
/// let x = Tensor::new([[1i32, 2, 3], [4, 5, 6]]);
/// // x[1:, ::-1]
/// let y = x.strided_slice([Slice::from(1..), Slice::from(..).step(-1)])?;
/// assert_eq!(y.to_vec::<i32>()?, vec![6, 5, 4]);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Slice {
    /// First index (left out: from the start in the step's direction).
    pub start: Option<i64>,
    /// End index, exclusive (left out: to the end in the step's direction).
    pub end: Option<i64>,
    /// Step (non-zero).
    pub step: i64,
}

impl Slice {
    /// The whole dimension (`:`).
    pub fn full() -> Self {
        Slice {
            start: None,
            end: None,
            step: 1,
        }
    }

    /// The same bounds with another step (`start:end:step`).
    pub fn step(self, step: i64) -> Self {
        Slice { step, ..self }
    }
}

impl Default for Slice {
    fn default() -> Self {
        Slice::full()
    }
}

impl From<RangeFull> for Slice {
    fn from(_: RangeFull) -> Self {
        Slice::full()
    }
}

macro_rules! slice_from_ranges {
    ($($t:ty),*) => {$(
        impl From<Range<$t>> for Slice {
            fn from(r: Range<$t>) -> Self {
                Slice { start: Some(r.start as i64), end: Some(r.end as i64), step: 1 }
            }
        }
        impl From<RangeFrom<$t>> for Slice {
            fn from(r: RangeFrom<$t>) -> Self {
                Slice { start: Some(r.start as i64), end: None, step: 1 }
            }
        }
        impl From<RangeTo<$t>> for Slice {
            fn from(r: RangeTo<$t>) -> Self {
                Slice { start: None, end: Some(r.end as i64), step: 1 }
            }
        }
        impl From<RangeInclusive<$t>> for Slice {
            fn from(r: RangeInclusive<$t>) -> Self {
                let end = (*r.end() as i64).checked_add(1).filter(|&e| e != 0);
                Slice { start: Some(*r.start() as i64), end, step: 1 }
            }
        }
        impl From<RangeToInclusive<$t>> for Slice {
            fn from(r: RangeToInclusive<$t>) -> Self {
                let end = (r.end as i64).checked_add(1).filter(|&e| e != 0);
                Slice { start: None, end, step: 1 }
            }
        }
    )*};
}
slice_from_ranges!(i32, i64);

/// Transposes applied by `matmul` to its operands' last two axes
/// (`tf.linalg.matmul(a, b, transpose_a, transpose_b)`). [`Tensor::t`](crate::Tensor::t)
/// gives the same product as a view; these options spare the extra op.
///
/// ```
/// use ferroflow_tensor_core::{MatMul, Tensor};
/// let x = Tensor::new([[1.0f32, 2.0], [3.0, 4.0]]);
/// let xxt = x.matmul_with(&x, MatMul::new().transpose_b())?;
/// assert_eq!(xxt.to_vec::<f32>()?, x.matmul(&x.t()?)?.to_vec::<f32>()?);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MatMul {
    /// Use the transpose of the first operand.
    pub transpose_a: bool,
    /// Use the transpose of the second operand.
    pub transpose_b: bool,
}

impl MatMul {
    /// No transposes.
    pub fn new() -> Self {
        MatMul::default()
    }

    /// Transposes the first operand.
    pub fn transpose_a(self) -> Self {
        MatMul {
            transpose_a: true,
            ..self
        }
    }

    /// Transposes the second operand.
    pub fn transpose_b(self) -> Self {
        MatMul {
            transpose_b: true,
            ..self
        }
    }
}
