//! # ferroflow-graph
//!
//! `tf.function`-style graph capture for ferroflow. [`function`] wraps a closure; its first
//! call with a new input signature *traces* it: a [`Tracer`](ferroflow_tensor_core::Tracer)
//! registered with tensor-core's single dispatch point turns every op into a graph node and
//! hands back symbolic tensors, so every op that runs eagerly also traces, gradients
//! included. The graph is then optimised (dead-code elimination, constant folding,
//! common-subexpression elimination, matmul epilogue fusion, elementwise fusion, buffer
//! reuse: see [`passes`]) and run by a lean executor on later calls.
//!
//! ```
//! use ferroflow_graph::{function, config};
//! use ferroflow_tensor_core::{Tensor, Variable};
//!
//! let w = Variable::new("w", Tensor::new([[1.0f32], [2.0]]))?;
//! let w2 = w.clone();
//! let f = function(move |x: &[Tensor]| Ok(vec![x[0].matmul(&w2.read()?)?.sigmoid()?]));
//! let x = Tensor::new([[0.5f32, -0.25]]);
//! let y1 = f.call(&[x.clone()])?[0].to_scalar::<f32>()?;   // traces
//! w.assign(&Tensor::new([[0.0f32], [0.0]]))?;              // seen without retracing
//! let y2 = f.call(&[x.clone()])?[0].to_scalar::<f32>()?;
//! assert_eq!((y1, y2, f.tracing_count()), (0.5, 0.5, 1));
//!
//! config::run_functions_eagerly(true);                      // debugging: run the closure
//! f.call(&[x])?;
//! config::run_functions_eagerly(false);
//! # Ok::<(), ferroflow_tensor_core::Error>(())
//! ```
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod args;
pub mod config;
mod exec;
pub mod export;
mod function;
pub mod ir;
pub mod passes;
mod shape_check;
mod trace;

pub use args::{ArgTensors, CallArgs, FunctionOutput, TraceableFn};
pub use ferroflow_tensor_core::Tensor;
pub use function::{function, op_count, operations, ConcreteFunction, Function, InputSpec, Operation, StaticArg};
pub use ir::{Graph, Node, NodeKind, ValueRef};
pub use passes::PassConfig;
