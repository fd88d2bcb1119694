//! The gradient of every differentiable op, grouped by the same families as
//! `tensor-core/src/ops/`. Gradients are written with ordinary tensor ops, so they run
//! eagerly, trace into graphs, and can be differentiated again.

mod conv;
mod linalg;
mod math;
mod nn;
mod reduce;
mod shape;

use ferroflow_tensor_core::{Error, Op, Result, Tensor};

/// Input gradients (vector-Jacobian product) of `op`, given its inputs, outputs and the
/// upstream gradient of each output (`None` = zero). `None` for an input means "no
/// gradient" (integer inputs, indices, ...).
pub type GradFn = fn(&Op, &[Tensor], &[Tensor], &Tensor) -> Result<Vec<Option<Tensor>>>;

/// True for ops that have a gradient (the tape records only those).
pub fn is_differentiable(op: &Op) -> bool {
    !matches!(
        op,
        Op::Compare(_)
            | Op::Logical(_)
            | Op::LogicalNot
            | Op::ArgReduce { .. }
            | Op::OneHot { .. }
            | Op::StopGradient
            | Op::Assign { .. }
            | Op::ReadVariable(_)
    ) && !matches!(op, Op::Binary(b) if matches!(b, ferroflow_tensor_core::BinaryOp::FloorDiv | ferroflow_tensor_core::BinaryOp::FloorMod))
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
    if let Op::Custom(c) = op {
        return c.gradient(inputs, outputs, upstream);
    }
    // Every built-in differentiable op has one output.
    let g = match upstream.first().cloned().flatten() {
        Some(g) => g,
        None => return Ok(vec![None; inputs.len()]),
    };
    let f: GradFn = match op {
        Op::Unary(_) | Op::Binary(_) | Op::Select | Op::Cast { .. } | Op::Identity => math::grad,
        Op::Reduce { .. } | Op::Scan { .. } => reduce::grad,
        Op::MatMul { .. } => return filter_float(linalg::grad(op, inputs, &g, needed)?, inputs),
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
        | Op::Gather { .. } => shape::grad,
        Op::Softmax { .. } | Op::LogSoftmax { .. } | Op::SoftmaxCrossEntropy { .. } | Op::SparseSoftmaxCrossEntropy => {
            nn::grad
        }
        Op::Conv2D { .. }
        | Op::Conv2DBackpropInput { .. }
        | Op::Conv2DBackpropFilter { .. }
        | Op::Pool2D { .. }
        | Op::Pool2DGrad { .. } => return filter_float(conv::grad(op, inputs, &g, needed)?, inputs),
        _ => return Ok(vec![None; inputs.len()]),
    };
    filter_float(f(op, inputs, outputs, &g)?, inputs)
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
        g.reduce_sum(Some(&axes), true)?
    };
    summed.reshape(&dims.iter().map(|&d| d as i64).collect::<Vec<_>>())
}

/// A scalar of `like`'s dtype.
fn scalar(like: &Tensor, v: f64) -> Tensor {
    like.scalar_like(v)
}

#[cfg(test)]
mod numeric_tests;
