//! # ferroflow
//!
//! A TensorFlow-like deep-learning framework in Rust. This facade re-exports every crate of
//! the workspace:
//!
//! | module | crate | what |
//! | --- | --- | --- |
//! | [`tensor`] | `ferroflow-tensor-core` | tensors, ops, dispatch, variables |
//! | [`autodiff`] | `ferroflow-autodiff` | `GradientTape` |
//! | [`graph`] | `ferroflow-graph` | `function` (tf.function) |
//! | [`nn`] | `ferroflow-nn` | modules, layers, Keras-style models |
//! | [`optim`] | `ferroflow-optim` | optimizers and losses |
//! | [`checkpoint`] | `ferroflow-checkpoint` | checkpoints |
//!
//! ```
//! use ferroflow::prelude::*;
//!
//! let x = Tensor::new([[2.0f32, 2.0, 2.0]]);
//! let w = Tensor::ones(&[3, 1], DType::F32);
//! let y = x.matmul(&w)?.sigmoid()?;
//! assert!((y.to_scalar::<f32>()? - 0.9975274).abs() < 1e-6);
//! # Ok::<(), ferroflow::Error>(())
//! ```
#![warn(missing_docs)]

pub use ferroflow_autodiff as autodiff;
pub use ferroflow_checkpoint as checkpoint;
pub use ferroflow_graph as graph;
pub use ferroflow_nn as nn;
pub use ferroflow_optim as optim;
pub use ferroflow_tensor_core as tensor;

pub use ferroflow_tensor_core::{random, DType, Error, Result, Shape, Tensor, Variable};

/// The names most programs need: `use ferroflow::prelude::*;`.
pub mod prelude {
    pub use ferroflow_autodiff::GradientTape;
    pub use ferroflow_checkpoint::{Checkpoint, CheckpointManager, Weights};
    pub use ferroflow_graph::{function, Function};
    pub use ferroflow_tensor_core::{random, DType, Padding, Shape, Tensor, TensorSpec, Trackable, Variable};
}
