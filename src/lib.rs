//! # ferroflow
//!
//! A TensorFlow-like deep-learning framework in Rust: eager tensors with TensorFlow's op set
//! and numbers, reverse-mode autodiff with a [`GradientTape`](autodiff::GradientTape),
//! `tf.function`-style graphs, Keras-style modules, optimizers and losses, and checkpoints
//! that TensorFlow and safetensors tools read. The lesson TensorFlow users know, in Rust:
//!
//! ```
//! use ferroflow::prelude::*;
//!
//! let (x, y) = (Tensor::new([[1.0f32, 2.0], [3.0, 4.0]]), Tensor::new([[1.0f32], [0.0]]));
//! let w = Variable::new("w", random::normal(&[2, 1], Normal::default().seed(1))?)?;
//! let b = Variable::new("b", Tensor::zeros(&[1], DType::F32)?)?;
//! let model = function(|x: &Tensor| x.matmul(&w.read()?)?.add(&b.read()?)); // tf.function
//! let opt = Sgd::new(0.05)?;
//! for _ in 0..200 {
//!     let tape = GradientTape::new();
//!     let loss = losses::mean_squared_error(&y, &model.call(&x)?)?;
//!     let [dw, db] = tape.gradient(&loss, [&w, &b])?;
//!     opt.apply_gradients([(dw, &w), (db, &b)])?;
//! }
//! assert!((model.call(&x)?.to_vec::<f32>()?[0] - 1.0).abs() < 0.05);
//! # Ok::<(), ferroflow::Error>(())
//! ```
//!
//! This facade re-exports every crate of the workspace:
//!
//! | module | crate | what |
//! | --- | --- | --- |
//! | [`tensor`] | `ferroflow-tensor-core` | tensors, ops, dispatch, variables, the error type |
//! | [`autodiff`] | `ferroflow-autodiff` | `GradientTape` |
//! | [`graph`] | `ferroflow-graph` | `function` (tf.function) |
//! | [`nn`] | `ferroflow-nn` | modules and Keras-style layers |
//! | [`optim`] | `ferroflow-optim` | optimizers, schedules and losses |
//! | [`checkpoint`] | `ferroflow-checkpoint` | checkpoints |
//! | [`data`] | `ferroflow-data` | `tf.data`-style datasets, CSV and NumPy loaders |
//! | `distribute` | `ferroflow-distribute` | data-parallel training over MPI (features `distribute`, `mpi`) |
//!
//! One error type runs through all of them: [`Error`] (checkpoint and I/O errors convert
//! into it), so `?` works everywhere and programs return [`Result`].
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

pub use ferroflow_autodiff as autodiff;
pub use ferroflow_checkpoint as checkpoint;
pub use ferroflow_data as data;
#[cfg(feature = "distribute")]
pub use ferroflow_distribute as distribute;
pub use ferroflow_graph as graph;
pub use ferroflow_nn as nn;
pub use ferroflow_optim as optim;
pub use ferroflow_tensor_core as tensor;

pub use ferroflow_tensor_core::{
    device_scope, random, with_device, DType, Device, Error, Result, Shape, Tensor, Variable,
};

/// The names most programs need, methods' traits included: `use ferroflow::prelude::*;`.
pub mod prelude {
    pub use ferroflow_autodiff::{GradientOptions, GradientTape, TapeOptions, UnconnectedGradients};
    pub use ferroflow_checkpoint::{Checkpoint, CheckpointManager, Weights};
    pub use ferroflow_data::{Batch, Dataset};
    pub use ferroflow_graph::{function, Function};
    pub use ferroflow_nn::callbacks::{self, Callback};
    pub use ferroflow_nn::{
        metrics, Activation, CompileOptions, Dense, EvaluateOptions, FitOptions, History, Layer, Logs, Mode, Model,
        Module, PredictOptions, Sequential,
    };
    pub use ferroflow_optim::{losses, Adagrad, Adam, Loss, Optimizer, Predictions, RmsProp, Sgd};
    pub use ferroflow_tensor_core::random::{self, Normal, Uniform};
    pub use ferroflow_tensor_core::{
        with_device, Axes, DType, Device, Error, Gelu, MatMul, OneHot, Padding, Result, Scan, Shape, Slice, Tensor,
        TensorSpec, Trackable, Variable,
    };
}

/// The README's examples, compiled and run as doctests so they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
