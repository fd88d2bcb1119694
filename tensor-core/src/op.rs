//! The op vocabulary: every primitive operation of ferroflow is one variant of [`Op`],
//! named after TensorFlow and carrying its attributes. An op knows its name, how to infer its
//! outputs' specs from its inputs' specs (tracing uses this, and it is the single place where
//! inputs are validated), and its eager kernel. Families live in `ops/<family>.rs`.
//!
//! Composite ops (`tensordot`, `split`, `l2_normalize`, ...) are not variants: they are
//! functions that dispatch several primitives, so they trace and differentiate for free.

use crate::ops::{conv, linalg, math, nn, reduce, shape as shape_ops, state};
use crate::{Axes, DType, Data, Result, TensorSpec, Variable};
use std::fmt;
use std::sync::Arc;

pub use crate::ops::conv::{Padding, PoolKind};
pub use crate::ops::math::{BinaryOp, CompareOp, LogicalOp, UnaryOp};
pub use crate::ops::reduce::{ArgKind, ReduceKind, ScanKind};
pub use crate::ops::state::AssignMode;

/// A user-defined op: the same three answers as a built-in op (name, shape inference,
/// kernel), plus an optional gradient written with tensor ops.
pub trait CustomOp: Send + Sync + fmt::Debug {
    /// The op's name, shown in errors and graph dumps.
    fn name(&self) -> &'static str;
    /// Output specs from input specs; reject bad inputs here.
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>>;
    /// A key that fully describes what this op computes: two ops with equal keys are the
    /// same function of their inputs. A traced function compares two traces by it to tell
    /// whether its graph depends on input sizes (an op made afresh on each trace is never
    /// the same object). `None`, the default, says only this very object is this op.
    fn trace_key(&self) -> Option<String> {
        None
    }
    /// The eager kernel.
    fn compute(&self, inputs: &[&Data]) -> Result<Vec<Data>>;
    /// Vector-Jacobian product: the gradient of each input given each output's upstream
    /// gradient (`None` = zero). Return `None` for inputs with no gradient. The default says
    /// the op is not differentiable.
    fn gradient(
        &self,
        inputs: &[crate::Tensor],
        outputs: &[crate::Tensor],
        upstream: &[Option<crate::Tensor>],
    ) -> Result<Vec<Option<crate::Tensor>>> {
        let _ = (outputs, upstream);
        Ok(vec![None; inputs.len()])
    }
    /// The kernel for inputs on an accelerator `device`, tried before the host fallback
    /// (which copies the inputs to the host for [`CustomOp::compute`] and the outputs back).
    /// `None`, the default, says this op has none there. It runs inside a device scope for
    /// `device`, so the tensor ops it dispatches run there (host values they take are
    /// copied), hidden from gradient tapes; its outputs must match
    /// [`CustomOp::infer`]'s specs. A collective that reads device memory (an NCCL
    /// all-reduce of gradients) is what this is for.
    fn compute_on_device(
        &self,
        device: crate::Device,
        inputs: &[&crate::Tensor],
    ) -> Option<Result<Vec<crate::Tensor>>> {
        let _ = (device, inputs);
        None
    }
}

/// The outputs of one op: inline for the usual single output, so running an op allocates
/// nothing beyond its result.
pub type Outputs<T> = smallvec::SmallVec<[T; 1]>;

/// Every primitive op, with its attributes.
#[derive(Debug, Clone)]
pub enum Op {
    /// Elementwise unary math and activations (`exp`, `sigmoid`, `relu`, ...).
    Unary(UnaryOp),
    /// Broadcasting elementwise binary math (`add`, `pow`, `floormod`, ...).
    Binary(BinaryOp),
    /// Broadcasting comparisons with a bool output (`equal`, `less`, ...).
    Compare(CompareOp),
    /// Broadcasting logical `and` / `or` on bools.
    Logical(LogicalOp),
    /// `logical_not` on bools.
    LogicalNot,
    /// `where(cond, x, y)`: broadcasting select.
    Select,
    /// `cast` to another dtype.
    Cast {
        /// Target dtype.
        dtype: DType,
    },
    /// Identity in the forward pass, no gradient (`stop_gradient`).
    StopGradient,
    /// Identity (`identity`).
    Identity,
    /// Reductions over axes (`reduce_sum`, `reduce_mean`, `reduce_max`, `reduce_min`,
    /// `reduce_prod`).
    Reduce {
        /// Which reduction.
        kind: ReduceKind,
        /// Axes to reduce.
        axes: Axes,
        /// Keep reduced axes with size 1.
        keepdims: bool,
    },
    /// `argmax` / `argmin` along an axis, int64 output.
    ArgReduce {
        /// argmax or argmin.
        kind: ArgKind,
        /// The axis.
        axis: i64,
    },
    /// `cumsum` (or `cumprod` when `product`) along an axis.
    Scan {
        /// Running sum or running product.
        kind: ScanKind,
        /// The axis.
        axis: i64,
        /// Exclude the current element.
        exclusive: bool,
        /// Sum from the end.
        reverse: bool,
    },
    /// `matmul` with batch broadcasting and transpose flags.
    MatMul {
        /// Use the transpose of the last two axes of `a`.
        transpose_a: bool,
        /// Use the transpose of the last two axes of `b`.
        transpose_b: bool,
    },
    /// `transpose` by a permutation (a view, no copy).
    Transpose {
        /// Output axis `i` is input axis `perm[i]`.
        perm: Vec<usize>,
    },
    /// `reshape` (one entry may be -1).
    Reshape {
        /// Target shape.
        shape: Vec<i64>,
    },
    /// `expand_dims`: insert an axis of size 1.
    ExpandDims {
        /// Where the new axis goes (negative counts from the end of the output).
        axis: i64,
    },
    /// `squeeze`: remove axes of size 1.
    Squeeze {
        /// Axes to remove; [`Axes::All`] removes every size-1 axis.
        axes: Axes,
    },
    /// `concat` along an axis.
    Concat {
        /// The axis.
        axis: i64,
    },
    /// `stack` along a new axis.
    Stack {
        /// The new axis.
        axis: i64,
    },
    /// `strided_slice` with Python slice semantics per dimension (also serves `slice` and
    /// `split`). A view, no copy.
    StridedSlice {
        /// Start per dimension (`None` = from the start in the stride's direction).
        begin: Vec<Option<i64>>,
        /// End per dimension, exclusive (`None` = to the end).
        end: Vec<Option<i64>>,
        /// Step per dimension (non-zero).
        strides: Vec<i64>,
    },
    /// Gradient of `strided_slice`: the upstream values scattered into zeros of the input's
    /// shape (input: the upstream gradient).
    StridedSliceGrad {
        /// Shape of the sliced input.
        input_shape: Vec<usize>,
        /// As in [`Op::StridedSlice`].
        begin: Vec<Option<i64>>,
        /// As in [`Op::StridedSlice`].
        end: Vec<Option<i64>>,
        /// As in [`Op::StridedSlice`].
        strides: Vec<i64>,
    },
    /// `unsorted_segment_sum(data, segment_ids, num_segments)` with rank-1 ids over the first
    /// axis of `data` (the gradient of `gather`).
    UnsortedSegmentSum {
        /// Number of output rows.
        num_segments: usize,
    },
    /// `tile` by multiples.
    Tile {
        /// Repetitions per axis.
        multiples: Vec<usize>,
    },
    /// `broadcast_to` a shape.
    BroadcastTo {
        /// Target shape.
        shape: Vec<usize>,
    },
    /// `pad` with a constant.
    Pad {
        /// `[before, after]` per axis.
        paddings: Vec<[usize; 2]>,
        /// Fill value.
        constant: f64,
    },
    /// `gather` along an axis (batch_dims 0).
    Gather {
        /// The axis of `params`.
        axis: i64,
    },
    /// `one_hot`.
    OneHot {
        /// Number of classes.
        depth: usize,
        /// Value at the index.
        on_value: f64,
        /// Value elsewhere.
        off_value: f64,
        /// Where the new axis goes (-1 = last).
        axis: i64,
        /// Output dtype.
        dtype: DType,
    },
    /// `softmax` along an axis.
    Softmax {
        /// The axis.
        axis: i64,
    },
    /// `log_softmax` along an axis.
    LogSoftmax {
        /// The axis.
        axis: i64,
    },
    /// `softmax_cross_entropy_with_logits(labels, logits)` along an axis (fused, stable).
    SoftmaxCrossEntropy {
        /// The class axis.
        axis: i64,
    },
    /// `sparse_softmax_cross_entropy_with_logits(labels, logits)` (fused, stable).
    SparseSoftmaxCrossEntropy,
    /// `conv2d`, NHWC input and HWIO filters.
    Conv2D {
        /// `[sh, sw]`.
        strides: [usize; 2],
        /// `[dh, dw]`.
        dilations: [usize; 2],
        /// SAME or VALID.
        padding: Padding,
    },
    /// Gradient of `conv2d` with respect to its input: inputs (filters, upstream).
    Conv2DBackpropInput {
        /// The forward input's shape.
        input_shape: [usize; 4],
        /// `[sh, sw]`.
        strides: [usize; 2],
        /// `[dh, dw]`.
        dilations: [usize; 2],
        /// SAME or VALID.
        padding: Padding,
    },
    /// Gradient of `conv2d` with respect to its filters: inputs (input, upstream).
    Conv2DBackpropFilter {
        /// The forward filters' shape.
        filter_shape: [usize; 4],
        /// `[sh, sw]`.
        strides: [usize; 2],
        /// `[dh, dw]`.
        dilations: [usize; 2],
        /// SAME or VALID.
        padding: Padding,
    },
    /// `max_pool2d` or `avg_pool2d` (NHWC).
    Pool2D {
        /// Max or average pooling.
        kind: PoolKind,
        /// `[kh, kw]`.
        ksize: [usize; 2],
        /// `[sh, sw]`.
        strides: [usize; 2],
        /// SAME or VALID.
        padding: Padding,
    },
    /// Gradient of a pool: inputs (forward input, upstream).
    Pool2DGrad {
        /// Max or average pooling.
        kind: PoolKind,
        /// `[kh, kw]`.
        ksize: [usize; 2],
        /// `[sh, sw]`.
        strides: [usize; 2],
        /// SAME or VALID.
        padding: Padding,
    },
    /// TensorFlow's `MaxPoolGradGrad`, the gradient of a max pool's gradient with respect
    /// to its upstream: inputs (forward input, a tensor of the forward input's shape); each
    /// output element is the second input at its window's maximum (the first on ties), so
    /// the output has the pool's shape.
    MaxPoolGradGrad {
        /// `[kh, kw]`.
        ksize: [usize; 2],
        /// `[sh, sw]`.
        strides: [usize; 2],
        /// SAME or VALID.
        padding: Padding,
    },
    /// Reads a variable's current value (so tapes and graphs see the read).
    ReadVariable(Variable),
    /// Writes a variable (`assign`, `assign_add`, `assign_sub`); no output.
    Assign {
        /// The variable written.
        var: Variable,
        /// How the input combines with the current value.
        mode: AssignMode,
    },
    /// A user-defined op.
    Custom(Arc<dyn CustomOp>),
}

impl Op {
    /// TensorFlow's name of the op (`matmul`, `reduce_sum`, `sigmoid`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Unary(u) => u.name(),
            Op::Binary(b) => b.name(),
            Op::Compare(c) => c.name(),
            Op::Logical(l) => l.name(),
            Op::LogicalNot => "logical_not",
            Op::Select => "where",
            Op::Cast { .. } => "cast",
            Op::StopGradient => "stop_gradient",
            Op::Identity => "identity",
            Op::Reduce { kind, .. } => kind.name(),
            Op::ArgReduce { kind, .. } => kind.name(),
            Op::Scan { kind, .. } => kind.name(),
            Op::MatMul { .. } => "matmul",
            Op::Transpose { .. } => "transpose",
            Op::Reshape { .. } => "reshape",
            Op::ExpandDims { .. } => "expand_dims",
            Op::Squeeze { .. } => "squeeze",
            Op::Concat { .. } => "concat",
            Op::Stack { .. } => "stack",
            Op::StridedSlice { .. } => "strided_slice",
            Op::StridedSliceGrad { .. } => "strided_slice_grad",
            Op::UnsortedSegmentSum { .. } => "unsorted_segment_sum",
            Op::Tile { .. } => "tile",
            Op::BroadcastTo { .. } => "broadcast_to",
            Op::Pad { .. } => "pad",
            Op::Gather { .. } => "gather",
            Op::OneHot { .. } => "one_hot",
            Op::Softmax { .. } => "softmax",
            Op::LogSoftmax { .. } => "log_softmax",
            Op::SoftmaxCrossEntropy { .. } => "softmax_cross_entropy_with_logits",
            Op::SparseSoftmaxCrossEntropy => "sparse_softmax_cross_entropy_with_logits",
            Op::Conv2D { .. } => "conv2d",
            Op::Conv2DBackpropInput { .. } => "conv2d_backprop_input",
            Op::Conv2DBackpropFilter { .. } => "conv2d_backprop_filter",
            Op::Pool2D { kind, .. } => kind.name(),
            Op::Pool2DGrad { kind, .. } => kind.grad_name(),
            Op::MaxPoolGradGrad { .. } => "max_pool2d_grad_grad",
            Op::ReadVariable(_) => "read_variable",
            Op::Assign { mode, .. } => mode.name(),
            Op::Custom(c) => c.name(),
        }
    }

    /// TensorFlow's op type (`MatMul`, `AddV2`, ...): what TensorBoard and
    /// `get_operations()` show.
    pub fn tf_op_type(&self) -> &'static str {
        use crate::{
            ArgKind, AssignMode, BinaryOp as B, CompareOp as C, LogicalOp as L, PoolKind, ReduceKind as R, ScanKind,
            UnaryOp as U,
        };
        match self {
            Op::Unary(u) => match u {
                U::Neg => "Neg",
                U::Abs => "Abs",
                U::Exp => "Exp",
                U::Log => "Log",
                U::Log1p => "Log1p",
                U::Sqrt => "Sqrt",
                U::Rsqrt => "Rsqrt",
                U::Square => "Square",
                U::Reciprocal => "Reciprocal",
                U::Sin => "Sin",
                U::Cos => "Cos",
                U::Tanh => "Tanh",
                U::Sigmoid => "Sigmoid",
                U::Erf => "Erf",
                U::Erfc => "Erfc",
                U::Softplus => "Softplus",
                U::Softsign => "Softsign",
                U::Relu => "Relu",
                U::Relu6 => "Relu6",
                U::Elu => "Elu",
                U::Selu => "Selu",
                U::LeakyRelu { .. } => "LeakyRelu",
                U::Gelu(_) => "Gelu",
                U::Sign => "Sign",
                U::Floor => "Floor",
                U::Ceil => "Ceil",
                U::Round => "Round",
            },
            Op::Binary(b) => match b {
                B::Add => "AddV2",
                B::Sub => "Sub",
                B::Mul => "Mul",
                B::Div => "RealDiv",
                B::Pow => "Pow",
                B::Maximum => "Maximum",
                B::Minimum => "Minimum",
                B::SquaredDifference => "SquaredDifference",
                B::FloorDiv => "FloorDiv",
                B::FloorMod => "FloorMod",
                B::SigmoidGrad => "SigmoidGrad",
                B::TanhGrad => "TanhGrad",
                B::ReluGrad => "ReluGrad",
            },
            Op::Compare(c) => match c {
                C::Equal => "Equal",
                C::NotEqual => "NotEqual",
                C::Less => "Less",
                C::LessEqual => "LessEqual",
                C::Greater => "Greater",
                C::GreaterEqual => "GreaterEqual",
            },
            Op::Logical(L::And) => "LogicalAnd",
            Op::Logical(L::Or) => "LogicalOr",
            Op::LogicalNot => "LogicalNot",
            Op::Select => "SelectV2",
            Op::Cast { .. } => "Cast",
            Op::StopGradient => "StopGradient",
            Op::Identity => "Identity",
            Op::Reduce { kind, .. } => match kind {
                R::Sum => "Sum",
                R::Mean => "Mean",
                R::Max => "Max",
                R::Min => "Min",
                R::Prod => "Prod",
            },
            Op::ArgReduce { kind: ArgKind::Max, .. } => "ArgMax",
            Op::ArgReduce { kind: ArgKind::Min, .. } => "ArgMin",
            Op::Scan {
                kind: ScanKind::Sum, ..
            } => "Cumsum",
            Op::Scan {
                kind: ScanKind::Prod, ..
            } => "Cumprod",
            Op::MatMul { .. } => "MatMul",
            Op::Transpose { .. } => "Transpose",
            Op::Reshape { .. } => "Reshape",
            Op::ExpandDims { .. } => "ExpandDims",
            Op::Squeeze { .. } => "Squeeze",
            Op::Concat { .. } => "ConcatV2",
            Op::Stack { .. } => "Pack",
            Op::StridedSlice { .. } => "StridedSlice",
            Op::StridedSliceGrad { .. } => "StridedSliceGrad",
            Op::UnsortedSegmentSum { .. } => "UnsortedSegmentSum",
            Op::Tile { .. } => "Tile",
            Op::BroadcastTo { .. } => "BroadcastTo",
            Op::Pad { .. } => "PadV2",
            Op::Gather { .. } => "GatherV2",
            Op::OneHot { .. } => "OneHot",
            Op::Softmax { .. } => "Softmax",
            Op::LogSoftmax { .. } => "LogSoftmax",
            Op::SoftmaxCrossEntropy { .. } => "SoftmaxCrossEntropyWithLogits",
            Op::SparseSoftmaxCrossEntropy => "SparseSoftmaxCrossEntropyWithLogits",
            Op::Conv2D { .. } => "Conv2D",
            Op::Conv2DBackpropInput { .. } => "Conv2DBackpropInput",
            Op::Conv2DBackpropFilter { .. } => "Conv2DBackpropFilter",
            Op::Pool2D {
                kind: PoolKind::Max, ..
            } => "MaxPool",
            Op::Pool2D {
                kind: PoolKind::Avg, ..
            } => "AvgPool",
            Op::Pool2DGrad {
                kind: PoolKind::Max, ..
            } => "MaxPoolGrad",
            Op::Pool2DGrad {
                kind: PoolKind::Avg, ..
            } => "AvgPoolGrad",
            Op::MaxPoolGradGrad { .. } => "MaxPoolGradGrad",
            Op::ReadVariable(_) => "ReadVariableOp",
            Op::Assign {
                mode: AssignMode::Set, ..
            } => "AssignVariableOp",
            Op::Assign {
                mode: AssignMode::Add, ..
            } => "AssignAddVariableOp",
            Op::Assign {
                mode: AssignMode::Sub, ..
            } => "AssignSubVariableOp",
            Op::Custom(c) => c.name(),
        }
    }

    /// True for ops with side effects or hidden state (variable reads and writes): a graph
    /// keeps them in program order and never folds or merges them.
    pub fn is_stateful(&self) -> bool {
        matches!(self, Op::ReadVariable(_) | Op::Assign { .. })
    }

    /// Output specs for inputs of the given specs. This is the one place where an op
    /// validates its inputs and attributes, and checks that its outputs fit in memory;
    /// kernels rely on it.
    pub fn infer(&self, inputs: &[TensorSpec]) -> Result<Outputs<TensorSpec>> {
        let out = self.infer_specs(inputs)?;
        for spec in &out {
            crate::alloc::check_spec(|| self.name(), spec)?;
        }
        Ok(out)
    }

    fn infer_specs(&self, inputs: &[TensorSpec]) -> Result<Outputs<TensorSpec>> {
        let name = self.name();
        let one = |s: TensorSpec| Ok(smallvec::smallvec![s]);
        match self {
            Op::Unary(u) => one(math::infer_unary(*u, arity(name, inputs, 1)?)?),
            Op::Binary(b) => one(math::infer_binary(*b, arity(name, inputs, 2)?)?),
            Op::Compare(_) => one(math::infer_compare(name, arity(name, inputs, 2)?)?),
            Op::Logical(_) => one(math::infer_logical(name, inputs)?),
            Op::LogicalNot => one(math::infer_logical(name, inputs)?),
            Op::Select => one(math::infer_select(arity(name, inputs, 3)?)?),
            Op::Cast { dtype } => {
                let x = arity(name, inputs, 1)?;
                one(TensorSpec::new(*dtype, x[0].shape.clone()))
            }
            Op::StopGradient | Op::Identity => one(arity(name, inputs, 1)?[0].clone()),
            Op::Reduce { kind, axes, keepdims } => {
                one(reduce::infer_reduce(*kind, axes, *keepdims, arity(name, inputs, 1)?)?)
            }
            Op::ArgReduce { axis, .. } => one(reduce::infer_arg(name, *axis, arity(name, inputs, 1)?)?),
            Op::Scan { kind, axis, .. } => one(reduce::infer_scan(*kind, *axis, arity(name, inputs, 1)?)?),
            Op::MatMul {
                transpose_a,
                transpose_b,
            } => one(linalg::infer_matmul(
                *transpose_a,
                *transpose_b,
                arity(name, inputs, 2)?,
            )?),
            Op::Transpose { perm } => one(shape_ops::infer_transpose(perm, arity(name, inputs, 1)?)?),
            Op::Reshape { shape } => one(shape_ops::infer_reshape(shape, arity(name, inputs, 1)?)?),
            Op::ExpandDims { axis } => one(shape_ops::infer_expand_dims(*axis, arity(name, inputs, 1)?)?),
            Op::Squeeze { axes } => one(shape_ops::infer_squeeze(axes, arity(name, inputs, 1)?)?),
            Op::Concat { axis } => one(shape_ops::infer_concat(*axis, inputs)?),
            Op::Stack { axis } => one(shape_ops::infer_stack(*axis, inputs)?),
            Op::StridedSlice { begin, end, strides } => {
                let x = arity(name, inputs, 1)?;
                let plan = shape_ops::plan_strided_slice(begin, end, strides, x[0].shape.dims())?;
                one(TensorSpec::new(x[0].dtype, plan.out_dims()))
            }
            Op::StridedSliceGrad {
                input_shape,
                begin,
                end,
                strides,
            } => one(shape_ops::infer_strided_slice_grad(
                input_shape,
                begin,
                end,
                strides,
                arity(name, inputs, 1)?,
            )?),
            Op::UnsortedSegmentSum { num_segments } => {
                one(shape_ops::infer_segment_sum(*num_segments, arity(name, inputs, 2)?)?)
            }
            Op::Tile { multiples } => one(shape_ops::infer_tile(multiples, arity(name, inputs, 1)?)?),
            Op::BroadcastTo { shape } => one(shape_ops::infer_broadcast_to(shape, arity(name, inputs, 1)?)?),
            Op::Pad { paddings, .. } => one(shape_ops::infer_pad(paddings, arity(name, inputs, 1)?)?),
            Op::Gather { axis } => one(shape_ops::infer_gather(*axis, arity(name, inputs, 2)?)?),
            Op::OneHot { depth, axis, dtype, .. } => one(shape_ops::infer_one_hot(
                *depth,
                *axis,
                *dtype,
                arity(name, inputs, 1)?,
            )?),
            Op::Softmax { axis } | Op::LogSoftmax { axis } => {
                one(nn::infer_softmax(name, *axis, arity(name, inputs, 1)?)?)
            }
            Op::SoftmaxCrossEntropy { axis } => one(nn::infer_softmax_xent(*axis, arity(name, inputs, 2)?)?),
            Op::SparseSoftmaxCrossEntropy => one(nn::infer_sparse_xent(arity(name, inputs, 2)?)?),
            Op::Conv2D {
                strides,
                dilations,
                padding,
            } => one(conv::infer_conv2d(
                *strides,
                *dilations,
                *padding,
                arity(name, inputs, 2)?,
            )?),
            Op::Conv2DBackpropInput {
                input_shape,
                strides,
                dilations,
                padding,
            } => one(conv::infer_conv2d_backprop_input(
                *input_shape,
                *strides,
                *dilations,
                *padding,
                arity(name, inputs, 2)?,
            )?),
            Op::Conv2DBackpropFilter {
                filter_shape,
                strides,
                dilations,
                padding,
            } => one(conv::infer_conv2d_backprop_filter(
                *filter_shape,
                *strides,
                *dilations,
                *padding,
                arity(name, inputs, 2)?,
            )?),
            Op::Pool2D {
                ksize,
                strides,
                padding,
                ..
            } => one(conv::infer_pool(
                name,
                *ksize,
                *strides,
                *padding,
                arity(name, inputs, 1)?,
            )?),
            Op::Pool2DGrad {
                ksize,
                strides,
                padding,
                ..
            } => one(conv::infer_pool_grad(
                name,
                *ksize,
                *strides,
                *padding,
                arity(name, inputs, 2)?,
            )?),
            Op::MaxPoolGradGrad {
                ksize,
                strides,
                padding,
            } => one(conv::infer_max_pool_grad_grad(
                name,
                *ksize,
                *strides,
                *padding,
                arity(name, inputs, 2)?,
            )?),
            Op::ReadVariable(v) => {
                arity(name, inputs, 0)?;
                one(v.spec())
            }
            Op::Assign { var, .. } => {
                state::check_assign(name, var, arity(name, inputs, 1)?)?;
                Ok(Outputs::new())
            }
            Op::Custom(c) => c.infer(inputs).map(Outputs::from_vec),
        }
    }

    /// Runs the eager kernel. Inputs must have passed [`Op::infer`]; [`crate::dispatch`]
    /// guarantees that.
    pub fn compute(&self, inputs: &[&Data]) -> Result<Outputs<Data>> {
        let one = |d: Data| Ok(smallvec::smallvec![d]);
        match self {
            Op::Unary(u) => one(math::unary(*u, inputs[0])?),
            Op::Binary(b) => one(math::binary(*b, inputs[0], inputs[1])?),
            Op::Compare(c) => one(math::compare(*c, inputs[0], inputs[1])?),
            Op::Logical(l) => one(math::logical(*l, inputs[0], inputs[1])?),
            Op::LogicalNot => one(math::logical_not(inputs[0])?),
            Op::Select => one(math::select(inputs[0], inputs[1], inputs[2])?),
            Op::Cast { dtype } => one(math::cast(inputs[0], *dtype)),
            Op::StopGradient | Op::Identity => one(inputs[0].clone()),
            Op::Reduce { kind, axes, keepdims } => one(reduce::reduce(*kind, axes, *keepdims, inputs[0])?),
            Op::ArgReduce { kind, axis } => one(reduce::arg_reduce(*kind, *axis, inputs[0])?),
            Op::Scan {
                kind,
                axis,
                exclusive,
                reverse,
            } => one(reduce::scan(*kind, *axis, *exclusive, *reverse, inputs[0])?),
            Op::MatMul {
                transpose_a,
                transpose_b,
            } => one(linalg::matmul(*transpose_a, *transpose_b, inputs[0], inputs[1])?),
            Op::Transpose { perm } => one(shape_ops::transpose(perm, inputs[0])),
            Op::Reshape { shape } => one(shape_ops::reshape(shape, inputs[0])?),
            Op::ExpandDims { axis } => one(shape_ops::expand_dims(*axis, inputs[0])?),
            Op::Squeeze { axes } => one(shape_ops::squeeze(axes, inputs[0])?),
            Op::Concat { axis } => one(shape_ops::concat(*axis, inputs)?),
            Op::Stack { axis } => one(shape_ops::stack(*axis, inputs)?),
            Op::StridedSlice { begin, end, strides } => one(shape_ops::strided_slice(begin, end, strides, inputs[0])?),
            Op::StridedSliceGrad {
                input_shape,
                begin,
                end,
                strides,
            } => one(shape_ops::strided_slice_grad(
                input_shape,
                begin,
                end,
                strides,
                inputs[0],
            )?),
            Op::UnsortedSegmentSum { num_segments } => {
                one(shape_ops::segment_sum(*num_segments, inputs[0], inputs[1])?)
            }
            Op::Tile { multiples } => one(shape_ops::tile(multiples, inputs[0])?),
            Op::BroadcastTo { shape } => one(shape_ops::broadcast_to(shape, inputs[0])?),
            Op::Pad { paddings, constant } => one(shape_ops::pad(paddings, *constant, inputs[0])?),
            Op::Gather { axis } => one(shape_ops::gather(*axis, inputs[0], inputs[1])?),
            Op::OneHot {
                depth,
                on_value,
                off_value,
                axis,
                dtype,
            } => one(shape_ops::one_hot(
                *depth, *on_value, *off_value, *axis, *dtype, inputs[0],
            )?),
            Op::Softmax { axis } => one(nn::softmax(false, *axis, inputs[0])?),
            Op::LogSoftmax { axis } => one(nn::softmax(true, *axis, inputs[0])?),
            Op::SoftmaxCrossEntropy { axis } => one(nn::softmax_xent(*axis, inputs[0], inputs[1])?),
            Op::SparseSoftmaxCrossEntropy => one(nn::sparse_xent(inputs[0], inputs[1])?),
            Op::Conv2D {
                strides,
                dilations,
                padding,
            } => one(conv::conv2d(*strides, *dilations, *padding, inputs[0], inputs[1])?),
            Op::Conv2DBackpropInput {
                input_shape,
                strides,
                dilations,
                padding,
            } => one(conv::conv2d_backprop_input(
                *input_shape,
                *strides,
                *dilations,
                *padding,
                inputs[0],
                inputs[1],
            )?),
            Op::Conv2DBackpropFilter {
                filter_shape,
                strides,
                dilations,
                padding,
            } => one(conv::conv2d_backprop_filter(
                *filter_shape,
                *strides,
                *dilations,
                *padding,
                inputs[0],
                inputs[1],
            )?),
            Op::Pool2D {
                kind,
                ksize,
                strides,
                padding,
            } => one(conv::pool(*kind, *ksize, *strides, *padding, inputs[0])?),
            Op::Pool2DGrad {
                kind,
                ksize,
                strides,
                padding,
            } => one(conv::pool_grad(
                *kind, *ksize, *strides, *padding, inputs[0], inputs[1],
            )?),
            Op::MaxPoolGradGrad {
                ksize,
                strides,
                padding,
            } => one(conv::max_pool_grad_grad(
                *ksize, *strides, *padding, inputs[0], inputs[1],
            )?),
            Op::ReadVariable(v) => one(v.value_data()?),
            Op::Assign { var, mode } => {
                state::assign(var, *mode, inputs[0])?;
                Ok(Outputs::new())
            }
            Op::Custom(c) => c.compute(inputs).map(Outputs::from_vec),
        }
    }
}

/// Checks the input count and returns the inputs.
fn arity<'a>(op: &'static str, inputs: &'a [TensorSpec], n: usize) -> Result<&'a [TensorSpec]> {
    if inputs.len() != n {
        return Err(crate::Error::invalid(
            op,
            format!("expects {n} input(s), got {}", inputs.len()),
        ));
    }
    Ok(inputs)
}
