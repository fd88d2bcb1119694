//! Broadcasting comparisons (bool outputs) and the logical ops on bools. One list
//! ([`compare_ops!`]) names every comparison once; its enum, names and tensor methods (with
//! their doc examples) are generated from it.

use super::out_shape;
use crate::data::Array;
use crate::dispatch::dispatch1;
use crate::kernels::elementwise as el;
use crate::shape::broadcast_shapes;
use crate::{DType, Data, Element, Error, Op, Result, Tensor, TensorSpec};

/// The one list of comparisons: variant, tensor method, TensorFlow's name and op type, what
/// it computes, and its Rust operator.
macro_rules! compare_ops {
    ($callback:ident ! $extra:tt) => {
        $callback! { $extra
            Equal, equal, "equal", "Equal", "`tf.math.equal`: `x == y`", ==;
            NotEqual, not_equal, "not_equal", "NotEqual", "`tf.math.not_equal`: `x != y`", !=;
            Less, less, "less", "Less", "`tf.math.less`: `x < y`", <;
            LessEqual, less_equal, "less_equal", "LessEqual", "`tf.math.less_equal`: `x <= y`", <=;
            Greater, greater, "greater", "Greater", "`tf.math.greater`: `x > y`", >;
            GreaterEqual, greater_equal, "greater_equal", "GreaterEqual", "`tf.math.greater_equal`: `x >= y`", >=;
        }
    };
}

/// The comparison enum, its names, the scalar comparison and one tensor method per op.
macro_rules! define_compare_ops {
    (() $( $var:ident, $method:ident, $name:literal, $tf:literal, $doc:literal, $cmp:tt; )*) => {
        /// Broadcasting comparisons with a bool output.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum CompareOp {
            $( #[doc = $doc] $var, )*
        }

        impl CompareOp {
            /// TensorFlow's name (`equal`, `less`, ...).
            pub fn name(self) -> &'static str {
                match self {
                    $( CompareOp::$var => $name, )*
                }
            }

            /// TensorFlow's op type (`Equal`, `Less`, ...).
            pub fn tf_op_type(self) -> &'static str {
                match self {
                    $( CompareOp::$var => $tf, )*
                }
            }

            #[inline(always)]
            fn apply<T: PartialOrd>(self, x: T, y: T) -> bool {
                match self {
                    $( CompareOp::$var => x $cmp y, )*
                }
            }
        }

        impl Tensor {
            $(
                #[doc = concat!($doc, ", elementwise with NumPy broadcasting; a bool tensor.")]
                ///
                /// ```
                /// use ferroflow_tensor_core::Tensor;
                /// let (x, y) = ([1.0f32, 2.0, 3.0], [2.0f32, 2.0, 2.0]);
                #[doc = concat!("let z = Tensor::new(x).", stringify!($method), "(&Tensor::new(y))?.to_vec::<bool>()?;")]
                #[doc = concat!("let want: Vec<bool> = x.iter().zip(&y).map(|(a, b)| a ", stringify!($cmp), " b).collect();")]
                /// assert_eq!(z, want);
                /// # Ok::<(), ferroflow_tensor_core::Error>(())
                /// ```
                pub fn $method(&self, other: &Tensor) -> Result<Tensor> {
                    dispatch1(Op::Compare(CompareOp::$var), &[self, other])
                }
            )*
        }
    };
}
compare_ops!(define_compare_ops!());

pub(crate) fn infer_compare(op: &'static str, x: &[TensorSpec]) -> Result<TensorSpec> {
    crate::ops::same_dtype(op, x)?;
    Ok(TensorSpec::new(
        DType::Bool,
        broadcast_shapes(op, &x[0].shape, &x[1].shape)?,
    ))
}

pub(crate) fn compare(op: CompareOp, a: &Data, b: &Data) -> Result<Data> {
    let shape = out_shape(op.name(), a, b)?;
    let dims = shape.dims();
    fn go<T: Element>(op: CompareOp, x: &Array<T>, y: &Array<T>, dims: &[usize]) -> Data {
        Data::Bool(el::binary(x, y, dims, move |p, q| op.apply(p, q)))
    }
    Ok(match (a, b) {
        (Data::F32(x), Data::F32(y)) => go(op, x, y, dims),
        (Data::F64(x), Data::F64(y)) => go(op, x, y, dims),
        (Data::I32(x), Data::I32(y)) => go(op, x, y, dims),
        (Data::I64(x), Data::I64(y)) => go(op, x, y, dims),
        (Data::Bool(x), Data::Bool(y)) => go(op, x, y, dims),
        _ => {
            return Err(Error::dtypes(
                op.name(),
                &[a.dtype(), b.dtype()],
                "inputs must have the same dtype",
            ))
        }
    })
}

/// Broadcasting logical ops on bools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogicalOp {
    /// `x && y`
    And,
    /// `x || y`
    Or,
}

impl LogicalOp {
    /// TensorFlow's name.
    pub fn name(self) -> &'static str {
        match self {
            LogicalOp::And => "logical_and",
            LogicalOp::Or => "logical_or",
        }
    }
}

pub(crate) fn infer_logical(op: &'static str, x: &[TensorSpec]) -> Result<TensorSpec> {
    let want = if op == "logical_not" { 1 } else { 2 };
    if x.len() != want {
        return Err(Error::invalid(op, format!("expects {want} input(s), got {}", x.len())));
    }
    if x.iter().any(|s| s.dtype != DType::Bool) {
        let ds: Vec<DType> = x.iter().map(|s| s.dtype).collect();
        return Err(Error::dtypes(op, &ds, "expects bool tensors"));
    }
    let shape = if want == 2 {
        broadcast_shapes(op, &x[0].shape, &x[1].shape)?
    } else {
        x[0].shape.clone()
    };
    Ok(TensorSpec::new(DType::Bool, shape))
}

pub(crate) fn logical(op: LogicalOp, a: &Data, b: &Data) -> Result<Data> {
    let shape = out_shape(op.name(), a, b)?;
    let dims = shape.dims();
    match (a, b) {
        (Data::Bool(x), Data::Bool(y)) => Ok(Data::Bool(match op {
            LogicalOp::And => el::binary(x, y, dims, |p, q| p && q),
            LogicalOp::Or => el::binary(x, y, dims, |p, q| p || q),
        })),
        _ => Err(Error::dtypes(
            op.name(),
            &[a.dtype(), b.dtype()],
            "expects bool tensors",
        )),
    }
}

pub(crate) fn logical_not(a: &Data) -> Result<Data> {
    match a {
        Data::Bool(x) => Ok(Data::Bool(el::unary(x, |p: bool| !p))),
        _ => Err(Error::dtypes("logical_not", &[a.dtype()], "expects a bool tensor")),
    }
}

impl Tensor {
    /// `tf.math.logical_and`, with broadcasting.
    ///
    /// ```
    /// use ferroflow_tensor_core::Tensor;
    /// let z = Tensor::new([true, true, false]).logical_and(&Tensor::new([true, false, false]))?;
    /// assert_eq!(z.to_vec::<bool>()?, vec![true, false, false]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn logical_and(&self, other: &Tensor) -> Result<Tensor> {
        dispatch1(Op::Logical(LogicalOp::And), &[self, other])
    }

    /// `tf.math.logical_or`, with broadcasting.
    ///
    /// ```
    /// use ferroflow_tensor_core::Tensor;
    /// let z = Tensor::new([true, false]).logical_or(&Tensor::new(false))?;
    /// assert_eq!(z.to_vec::<bool>()?, vec![true, false]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn logical_or(&self, other: &Tensor) -> Result<Tensor> {
        dispatch1(Op::Logical(LogicalOp::Or), &[self, other])
    }

    /// `tf.math.logical_not`.
    ///
    /// ```
    /// use ferroflow_tensor_core::Tensor;
    /// assert_eq!(Tensor::new([true, false]).logical_not()?.to_vec::<bool>()?, vec![false, true]);
    /// assert!(Tensor::new([1.0f32]).logical_not().is_err());
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn logical_not(&self) -> Result<Tensor> {
        dispatch1(Op::LogicalNot, &[self])
    }
}
