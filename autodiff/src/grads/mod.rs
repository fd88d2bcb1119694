//! The gradient of every differentiable op, grouped by the same families as
//! `tensor-core/src/ops/`. Gradients are written with ordinary tensor ops, so they run
//! eagerly, trace into graphs, and can be differentiated again.

mod conv;
mod linalg;
mod math;
mod nn;
mod reduce;
mod shape;

use ferroflow_tensor_core::{Axes, BinaryOp, Error, Op, Result, Tensor, UnaryOp};

/// Input gradients (vector-Jacobian product) of `op`, given its inputs, outputs and the
/// upstream gradient of its output. `None` for an input means "no gradient" (integer inputs,
/// indices, ...).
pub type GradFn = fn(&Op, &[Tensor], &[Tensor], &Tensor) -> Result<Vec<Option<Tensor>>>;

/// A gradient that skips the inputs whose gradient nobody wants (`needed[i]` false): the
/// costly ones, matmul and conv2d.
type SelectiveGradFn = fn(&Op, &[Tensor], &Tensor, &[bool]) -> Result<Vec<Option<Tensor>>>;

/// How an op is differentiated.
enum Rule {
    /// No gradient flows through it (TensorFlow's `NotDifferentiable`, or an op without a
    /// gradient here); the tape does not record it.
    None,
    /// A family's gradient function.
    Family(GradFn),
    /// A family's gradient function that skips unwanted inputs.
    Selective(SelectiveGradFn),
    /// A user-defined op's own gradient.
    Custom,
}

/// The gradient rule of every op. The match is exhaustive on purpose: a new [`Op`] (or
/// unary or binary op) does not compile until it is given a rule here.
fn rule(op: &Op) -> Rule {
    match op {
        Op::Unary(u) if unary_differentiable(*u) => Rule::Family(math::grad),
        Op::Binary(b) if binary_differentiable(*b) => Rule::Family(math::grad),
        Op::Unary(_) | Op::Binary(_) => Rule::None,
        Op::Select | Op::Cast { .. } | Op::Identity => Rule::Family(math::grad),
        Op::Compare(_) | Op::Logical(_) | Op::LogicalNot | Op::StopGradient => Rule::None,
        Op::Reduce { .. } | Op::Scan { .. } => Rule::Family(reduce::grad),
        Op::ArgReduce { .. } => Rule::None,
        Op::MatMul { .. } => Rule::Selective(linalg::grad),
        Op::Transpose { .. }
        | Op::Reshape { .. }
        | Op::ExpandDims { .. }
        | Op::Squeeze { .. }
        | Op::Concat { .. }
        | Op::Stack { .. }
        | Op::StridedSlice { .. }
        | Op::StridedSliceGrad { .. }
        | Op::UnsortedSegmentSum { .. }
        | Op::Tile { .. }
        | Op::BroadcastTo { .. }
        | Op::Pad { .. }
        | Op::Gather { .. } => Rule::Family(shape::grad),
        Op::OneHot { .. } => Rule::None,
        Op::Softmax { .. } | Op::LogSoftmax { .. } | Op::SoftmaxCrossEntropy { .. } | Op::SparseSoftmaxCrossEntropy => {
            Rule::Family(nn::grad)
        }
        Op::Conv2D { .. }
        | Op::Conv2DBackpropInput { .. }
        | Op::Conv2DBackpropFilter { .. }
        | Op::Pool2D { .. }
        | Op::Pool2DGrad { .. }
        | Op::MaxPoolGradGrad { .. } => Rule::Selective(conv::grad),
        // Variable reads are the tape's sources (it tracks them itself); writes have no output.
        Op::ReadVariable(_) | Op::Assign { .. } => Rule::None,
        Op::Custom(_) => Rule::Custom,
    }
}

/// Unary ops with a gradient: all but `floor`, `ceil` and `round`, which TensorFlow gives
/// none (`sign`'s is zeros, as TensorFlow's `_SignGrad`).
fn unary_differentiable(u: UnaryOp) -> bool {
    use UnaryOp::*;
    match u {
        Neg
        | Abs
        | Exp
        | Log
        | Log1p
        | Sqrt
        | Rsqrt
        | Square
        | Reciprocal
        | Sin
        | Cos
        | Tanh
        | Sigmoid
        | Erf
        | Erfc
        | Softplus
        | Softsign
        | Relu
        | Relu6
        | Elu
        | Selu
        | LeakyRelu { .. }
        | Gelu(_)
        | Sign => true,
        Floor | Ceil | Round => false,
    }
}

/// Binary ops with a gradient: all but `floordiv` (TensorFlow registers `FloorMod`'s).
fn binary_differentiable(b: BinaryOp) -> bool {
    use BinaryOp::*;
    match b {
        Add | Sub | Mul | Div | Pow | Maximum | Minimum | SquaredDifference | FloorMod | SigmoidGrad | TanhGrad
        | ReluGrad => true,
        FloorDiv => false,
    }
}

/// True for ops that have a gradient (the tape records only those).
pub fn is_differentiable(op: &Op) -> bool {
    !matches!(rule(op), Rule::None)
}

/// Computes the input gradients of one recorded op. `needed[i]` says whether input `i`'s
/// gradient is wanted at all: the expensive gradients (matmul, conv2d) skip the others.
pub fn gradient(
    op: &Op,
    inputs: &[Tensor],
    outputs: &[Tensor],
    upstream: &[Option<Tensor>],
    needed: &[bool],
) -> Result<Vec<Option<Tensor>>> {
    let rule = rule(op);
    if let (Rule::Custom, Op::Custom(c)) = (&rule, op) {
        return c.gradient(inputs, outputs, upstream);
    }
    // Every built-in differentiable op has one output.
    let Some(g) = upstream.first().cloned().flatten() else {
        return Ok(vec![None; inputs.len()]);
    };
    let grads = match rule {
        Rule::None | Rule::Custom => return Ok(vec![None; inputs.len()]),
        Rule::Family(f) => f(op, inputs, outputs, &g)?,
        Rule::Selective(f) => f(op, inputs, &g, needed)?,
    };
    filter_float(grads, inputs)
}

/// The error of a family's gradient function handed an op of another family (a wrong entry
/// in [`rule`]).
fn wrong_family(op: &Op, family: &str) -> Error {
    Error::Other {
        op: op.name(),
        msg: format!("the {family} gradients have no rule for this op"),
    }
}

/// Integer and bool inputs never get a gradient.
fn filter_float(grads: Vec<Option<Tensor>>, inputs: &[Tensor]) -> Result<Vec<Option<Tensor>>> {
    Ok(grads
        .into_iter()
        .zip(inputs)
        .map(|(g, x)| g.filter(|_| x.dtype().is_float()))
        .collect())
}

/// Sums `g` over the dimensions that broadcasting added or stretched, so it takes `dims`:
/// the one place where broadcasting is undone.
pub fn unbroadcast(g: &Tensor, dims: &[usize]) -> Result<Tensor> {
    let gd = g.dims();
    if gd == dims {
        return Ok(g.clone());
    }
    if gd.len() < dims.len() {
        return Err(Error::shapes(
            "unbroadcast",
            &[&g.shape(), &dims.into()],
            "gradient has fewer dimensions than its input",
        ));
    }
    let lead = gd.len() - dims.len();
    let axes: Vec<i64> = (0..gd.len())
        .filter(|&i| i < lead || (dims[i - lead] == 1 && gd[i] != 1))
        .map(|i| i as i64)
        .collect();
    let summed = if axes.is_empty() {
        g.clone()
    } else {
        g.reduce_sum(Axes::from(axes).keepdims())?
    };
    summed.reshape(&dims.iter().map(|&d| d as i64).collect::<Vec<_>>())
}

/// A scalar of `like`'s dtype.
fn scalar(like: &Tensor, v: f64) -> Tensor {
    like.scalar_like(v)
}

#[cfg(test)]
mod edge_tests;
#[cfg(test)]
mod numeric_tests;
