//! # ferroflow-tensor-core
//!
//! Dense n-d tensors for ferroflow: five dtypes (`f32`, `f64`, `i32`, `i64`, `bool`) on
//! `ndarray` storage, NumPy broadcasting, TensorFlow's op set with TensorFlow's names and
//! semantics, a parallel matmul over `matrixmultiply` and `rayon`, and the two ideas the rest
//! of the framework stands on:
//!
//! * **One op vocabulary** — every primitive is a variant of [`Op`] that knows its name, its
//!   shape inference and its kernel.
//! * **One dispatch point** — every tensor method builds an `Op` and calls [`dispatch`],
//!   which runs it eagerly or hands it to the active [`Tracer`] (graph capture), then tells
//!   every [`Observer`] (gradient tapes) what ran.
//!
//! ```
//! use ferroflow_tensor_core::{DType, Tensor};
//!
//! let x = Tensor::new([[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]]);
//! let b = Tensor::new([10.0f32, 20.0, 30.0]);
//! let y = x.add(&b)?;                        // broadcasting
//! let z = x.matmul(&x.t()?)?;               // x · xᵀ: the transpose is a view
//! assert_eq!(y.to_vec::<f32>()?, vec![11.0, 22.0, 33.0, 14.0, 25.0, 36.0]);
//! assert_eq!(z.to_vec::<f32>()?, vec![14.0, 32.0, 32.0, 77.0]);
//! let s = x.reduce_sum(1)?;
//! assert_eq!(s.to_string(), "ff.Tensor([ 6. 15.], shape=(2,), dtype=float32)");
//! assert_eq!(x.cast(DType::I32)?.dtype(), DType::I32);
//! # Ok::<(), ferroflow_tensor_core::Error>(())
//! ```
//!
//! Errors never panic: every op returns [`Result`], and messages name the op, the shapes and
//! the dtypes involved.
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod alloc;
#[cfg(feature = "cuda")]
pub mod cuda;
mod data;
mod device;
mod dispatch;
mod display;
mod dtype;
mod error;
pub mod fused;
pub mod host_cache;
mod kernels;
mod op;
mod ops;
mod options;
pub mod random;
mod shape;
mod tensor;
mod variable;

pub use alloc::{checked_elements, memory_limit};
pub use data::{Array, Data};
pub use device::{
    constant_on, default_device, device_scope, graph_capture_enabled, set_graph_capture, with_device, CapturedCall,
    Device, DeviceData, DeviceScope,
};
pub use dispatch::{
    dispatch, dispatch1, has_observers, is_tracing, push_observer, push_tracer, Observer, ObserverGuard,
    PauseObservers, Tracer, TracerGuard,
};
pub use display::numpy_text;
pub use dtype::{DType, Element, FloatElement, IntElement};
pub use error::{Error, Result};
pub use op::{
    ArgKind, AssignMode, BinaryOp, CompareOp, CustomOp, LogicalOp, Op, Outputs, Padding, PoolKind, ReduceKind,
    ScanKind, UnaryOp,
};
pub use ops::linalg::TensordotAxes;
pub use options::{Axes, Gelu, MatMul, OneHot, Reduction, Scan, Slice};
pub use shape::{broadcast_shapes, normalize_axes, normalize_axis, Shape};
pub use tensor::{Literal, Symbolic, Tensor, TensorId, TensorSpec, Value, WeakTensor};
pub use variable::{join_path, Trackable, Variable};
