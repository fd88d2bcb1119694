//! # ferroflow-optim
//!
//! Optimizers (SGD, Adam, ...), learning-rate schedules and Keras-style losses for ferroflow.
//! An optimizer step is a pure function of (parameter, gradient, state), applied to
//! [`ferroflow_tensor_core::Variable`]s.
//!
//! This crate is being built; today it only re-exports the variable type it updates.
//!
//! ```
//! use ferroflow_optim::Variable;
//! use ferroflow_tensor_core::Tensor;
//! let v = Variable::new("w", Tensor::scalar(1.0f32), true).unwrap();
//! assert_eq!(v.name(), "w");
//! ```
#![warn(missing_docs)]

pub use ferroflow_tensor_core::Variable;
