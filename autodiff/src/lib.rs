//! # ferroflow-autodiff
//!
//! Reverse-mode automatic differentiation for ferroflow, in the shape TensorFlow users know
//! from `tf.GradientTape`. A tape is an *observer* registered with
//! [`ferroflow_tensor_core::dispatch`]: it sees every op that runs while it is active and
//! records what it needs to walk the computation backwards.
//!
//! This crate is being built; today it only re-exports the tensor type it differentiates.
//!
//! ```
//! use ferroflow_autodiff::Tensor;
//! let x = Tensor::from_vec(vec![1.0f32, 2.0], &[2]).unwrap();
//! assert_eq!(x.shape().dims(), &[2]);
//! ```
#![warn(missing_docs)]

pub use ferroflow_tensor_core::Tensor;
