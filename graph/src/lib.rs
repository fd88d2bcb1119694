//! # ferroflow-graph
//!
//! `tf.function`-style graph capture for ferroflow: trace a closure into a graph, cache it by
//! input signature, optimise it and run it. Tracing plugs into tensor-core's single
//! [`ferroflow_tensor_core::dispatch`] point through its tracer hook, so every op that runs
//! eagerly also traces.
//!
//! This crate is being built; today it only re-exports the tensor type it traces.
//!
//! ```
//! use ferroflow_graph::Tensor;
//! let x = Tensor::scalar(3.0f64);
//! assert_eq!(x.shape().rank(), 0);
//! ```
#![warn(missing_docs)]

pub use ferroflow_tensor_core::Tensor;
