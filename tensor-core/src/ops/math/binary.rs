//! Broadcasting elementwise binary arithmetic. One list ([`binary_ops!`]) names every binary
//! op once, with its TensorFlow name and op type and an example; the enum, its names, the
//! tensor methods (with their doc examples) and the per-op dispatch of the kernels
//! ([`with_binary_op!`]) are generated from it.

use super::out_shape;
use crate::data::Array;
use crate::dispatch::dispatch1;
use crate::kernels::elementwise as el;
use crate::shape::broadcast_shapes;
use crate::{DType, Data, Error, FloatElement, IntElement, Op, Result, Tensor, TensorSpec};

/// The one list of binary ops: variant, tensor method, TensorFlow's name and op type, what
/// it computes, example inputs and a float64 reference. Hands the list (after `$extra`) to
/// the macro named by the path before the `!`.
macro_rules! binary_ops {
    ($($callback:ident)::+ ! $extra:tt) => {
        $($callback)::+! { $extra
            Add, add, "add", "AddV2", "`tf.math.add`: `x + y`", |a: f64, b: f64| a + b;
            Sub, sub, "subtract", "Sub", "`tf.math.subtract`: `x - y`", |a: f64, b: f64| a - b;
            Mul, mul, "multiply", "Mul", "`tf.math.multiply`: `x * y`", |a: f64, b: f64| a * b;
            Div, div, "divide", "RealDiv", "`tf.math.divide`: `x / y` (the op takes floats; the tensor method divides two integer tensors of one dtype as Python's true division does, in float64; `floordiv` keeps integers)", |a: f64, b: f64| a / b;
            Pow, pow, "pow", "Pow", "`tf.math.pow`: `x ^ y`", |a: f64, b: f64| a.powf(b);
            Maximum, maximum, "maximum", "Maximum", "`tf.math.maximum` (NaN wins)", |a: f64, b: f64| a.max(b);
            Minimum, minimum, "minimum", "Minimum", "`tf.math.minimum` (NaN wins)", |a: f64, b: f64| a.min(b);
            SquaredDifference, squared_difference, "squared_difference", "SquaredDifference", "`tf.math.squared_difference`: `(x - y)^2`", |a: f64, b: f64| (a - b) * (a - b);
            FloorDiv, floordiv, "floordiv", "FloorDiv", "`tf.math.floordiv`: `floor(x / y)`; an integer division by zero is an error", |a: f64, b: f64| (a / b).floor();
            FloorMod, floormod, "floormod", "FloorMod", "`tf.math.floormod`: `x - floor(x / y) * y`, with the divisor's sign as in Python", |a: f64, b: f64| a - (a / b).floor() * b;
            SigmoidGrad, sigmoid_grad, "sigmoid_grad", "SigmoidGrad", "`sigmoid_grad(y, g)`: `g · y · (1 - y)` for `self = y = sigmoid(x)`: sigmoid's backward step from its output, one op instead of three", |y: f64, g: f64| g * y * (1.0 - y);
            TanhGrad, tanh_grad, "tanh_grad", "TanhGrad", "`tanh_grad(y, g)`: `g · (1 - y²)` for `self = y = tanh(x)`", |y: f64, g: f64| g * (1.0 - y * y);
            ReluGrad, relu_grad, "relu_grad", "ReluGrad", "`relu_grad(x, g)`: `g` where `self = x > 0`, else 0", |x: f64, g: f64| if x > 0.0 { g } else { 0.0 };
        }
    };
}
pub(crate) use binary_ops;

/// The binary op enum, its names, and one tensor method per op, from the list.
macro_rules! define_binary_ops {
    (() $( $var:ident, $method:ident, $name:literal, $tf:literal, $doc:literal, $reference:expr; )*) => {
        /// Broadcasting binary arithmetic. Both inputs must have the same dtype.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum BinaryOp {
            $( #[doc = $doc] $var, )*
        }

        impl BinaryOp {
            /// TensorFlow's name (`add`, `subtract`, ...).
            pub fn name(self) -> &'static str {
                match self {
                    $( BinaryOp::$var => $name, )*
                }
            }

            /// TensorFlow's op type (`AddV2`, `Sub`, ...).
            pub fn tf_op_type(self) -> &'static str {
                match self {
                    $( BinaryOp::$var => $tf, )*
                }
            }
        }

        impl Tensor {
            $(
                #[doc = concat!($doc, ", with NumPy broadcasting.")]
                ///
                /// ```
                /// use ferroflow_tensor_core::Tensor;
                /// let (x, y) = ([1.5, -2.0, 0.25], [0.5, 4.0, 1.5]);
                #[doc = concat!("let z = Tensor::new(x).", stringify!($method), "(&Tensor::new(y))?.to_vec::<f64>()?;")]
                #[doc = concat!("let reference = ", stringify!($reference), ";")]
                /// for ((got, a), b) in z.iter().zip(x).zip(y) {
                ///     let want = reference(a, b);
                ///     assert!((got - want).abs() <= 1e-12 * want.abs().max(1.0), "{got} vs {want}");
                /// }
                /// # Ok::<(), ferroflow_tensor_core::Error>(())
                /// ```
                pub fn $method(&self, other: &Tensor) -> Result<Tensor> {
                    binary_method(BinaryOp::$var, self, other)
                }
            )*
        }
    };
}
binary_ops!(define_binary_ops!());

/// The arms of [`with_binary_op!`]: one per op, each binding the op as a `const`.
macro_rules! with_binary_op_arms {
    (($op:expr, $v:ident, $body:expr) $( $var:ident, $method:ident, $name:literal, $tf:literal, $doc:literal, $reference:expr; )*) => {{
        use crate::BinaryOp as B;
        match $op {
            $(
                B::$var => {
                    #[allow(non_upper_case_globals)]
                    const $v: B = B::$var;
                    $body
                }
            )*
        }
    }};
}
pub(crate) use with_binary_op_arms;

/// [`with_unary_op!`](super::unary::with_unary_op)'s counterpart for binary ops.
macro_rules! with_binary_op {
    ($op:expr, $v:ident => $body:expr) => {
        crate::ops::math::binary::binary_ops!(crate::ops::math::binary::with_binary_op_arms!($op, $v, $body))
    };
}
pub(crate) use with_binary_op;

impl BinaryOp {
    /// The scalar function on float elements (shared with fused graph kernels).
    #[inline(always)]
    pub(crate) fn apply_float<T: FloatElement>(self, x: T, y: T) -> T {
        use BinaryOp::*;
        match self {
            Add => x + y,
            Sub => x - y,
            Mul => x * y,
            Div => x / y,
            Pow => x.powf(y),
            Maximum => {
                if x >= y || x.is_nan() {
                    x
                } else {
                    y
                }
            }
            Minimum => {
                if x <= y || x.is_nan() {
                    x
                } else {
                    y
                }
            }
            SquaredDifference => (x - y) * (x - y),
            FloorDiv => (x / y).floor(),
            FloorMod => {
                let r = x % y;
                if r != T::zero() && ((r < T::zero()) != (y < T::zero())) {
                    r + y
                } else {
                    r
                }
            }
            SigmoidGrad => y * x * (T::one() - x),
            TanhGrad => y * (T::one() - x * x),
            ReluGrad => {
                if x > T::zero() {
                    y
                } else {
                    T::zero()
                }
            }
        }
    }

    /// True for the activation-gradient ops, which take floats only.
    pub(crate) fn is_activation_grad(self) -> bool {
        matches!(self, BinaryOp::SigmoidGrad | BinaryOp::TanhGrad | BinaryOp::ReluGrad)
    }
}

fn int_binary<T: IntElement>(op: BinaryOp, a: &Array<T>, b: &Array<T>, dims: &[usize]) -> Result<Array<T>> {
    use BinaryOp::*;
    let name = op.name();
    let zero_divisor = || Error::invalid(name, "integer division by zero");
    match op {
        Add => Ok(el::binary(a, b, dims, |x: T, y: T| x.wrapping_add(&y))),
        Sub => Ok(el::binary(a, b, dims, |x: T, y: T| x.wrapping_sub(&y))),
        Mul => Ok(el::binary(a, b, dims, |x: T, y: T| x.wrapping_mul(&y))),
        Maximum => Ok(el::binary(a, b, dims, |x: T, y: T| if x >= y { x } else { y })),
        Minimum => Ok(el::binary(a, b, dims, |x: T, y: T| if x <= y { x } else { y })),
        SquaredDifference => Ok(el::binary(a, b, dims, |x: T, y: T| {
            let d = x.wrapping_sub(&y);
            d.wrapping_mul(&d)
        })),
        Div | SigmoidGrad | TanhGrad | ReluGrad => Err(Error::dtypes(
            name,
            &[T::DTYPE],
            "integer inputs: this op takes floats (use floordiv to divide integers)",
        )),
        FloorDiv | FloorMod => {
            if b.iter().any(|&y| y == T::zero()) {
                return Err(zero_divisor());
            }
            Ok(el::binary(a, b, dims, move |x: T, y: T| {
                // checked_div only fails for MIN / -1, which wraps in TensorFlow too.
                let q = x.checked_div(&y).unwrap_or(x);
                let r = x.wrapping_sub(&q.wrapping_mul(&y));
                let adjust = r != T::zero() && ((r < T::zero()) != (y < T::zero()));
                if op == FloorDiv {
                    if adjust {
                        q - T::one()
                    } else {
                        q
                    }
                } else if adjust {
                    r + y
                } else {
                    r
                }
            }))
        }
        Pow => {
            if b.iter().any(|&y| y < T::zero()) {
                return Err(Error::invalid(
                    name,
                    "integers to negative integer powers are not allowed",
                ));
            }
            Ok(el::binary(a, b, dims, |x: T, y: T| {
                let mut base = x;
                let mut e = y.to_u64().unwrap_or(0);
                let mut acc = T::one();
                while e > 0 {
                    if e & 1 == 1 {
                        acc = acc.wrapping_mul(&base);
                    }
                    base = base.wrapping_mul(&base);
                    e >>= 1;
                }
                acc
            }))
        }
    }
}

/// The tensor method of a binary op. `tf.math.divide` of two integer tensors is Python's
/// true division (`_truediv_python3`): both are cast to float64 first. The `RealDiv` op
/// itself stays float-only.
fn binary_method(op: BinaryOp, x: &Tensor, y: &Tensor) -> Result<Tensor> {
    if op == BinaryOp::Div && x.dtype().is_int() && x.dtype() == y.dtype() {
        return x.cast(DType::F64)?.div(&y.cast(DType::F64)?);
    }
    dispatch1(Op::Binary(op), &[x, y])
}

pub(crate) fn infer_binary(op: BinaryOp, x: &[TensorSpec]) -> Result<TensorSpec> {
    let d = crate::ops::same_dtype(op.name(), x)?;
    if d == DType::Bool || (d.is_int() && (op == BinaryOp::Div || op.is_activation_grad())) {
        return Err(Error::dtypes(
            op.name(),
            &[d, d],
            "expects float (or, except divide, integer) tensors",
        ));
    }
    Ok(TensorSpec::new(
        d,
        broadcast_shapes(op.name(), &x[0].shape, &x[1].shape)?,
    ))
}

/// Element count from which `op`'s float loop goes parallel: `pow` (a transcendental
/// function) sooner than the cheap ops.
pub(crate) fn par_from(op: BinaryOp) -> usize {
    if op == BinaryOp::Pow {
        el::PAR_THRESHOLD_COSTLY
    } else {
        el::PAR_THRESHOLD
    }
}

fn float_binary<T: FloatElement>(op: BinaryOp, a: &Array<T>, b: &Array<T>, dims: &[usize]) -> Array<T> {
    let par_from = par_from(op);
    with_binary_op!(op, f => el::binary_with(a, b, dims, move |x: T, y: T| f.apply_float(x, y), par_from))
}

pub(crate) fn binary(op: BinaryOp, a: &Data, b: &Data) -> Result<Data> {
    let shape = out_shape(op.name(), a, b)?;
    let dims = shape.dims();
    Ok(match (a, b) {
        (Data::F32(x), Data::F32(y)) => Data::F32(float_binary(op, x, y, dims)),
        (Data::F64(x), Data::F64(y)) => Data::F64(float_binary(op, x, y, dims)),
        (Data::I32(x), Data::I32(y)) => Data::I32(int_binary(op, x, y, dims)?),
        (Data::I64(x), Data::I64(y)) => Data::I64(int_binary(op, x, y, dims)?),
        _ => return Err(Error::dtypes(op.name(), &[a.dtype(), b.dtype()], "unsupported dtypes")),
    })
}
