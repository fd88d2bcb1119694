//! # ferroflow-checkpoint
//!
//! Save, list and restore variables by object path (`model/dense_1/w`), in formats other
//! tools read: safetensors and TensorFlow checkpoints. Anything that implements
//! [`ferroflow_tensor_core::Trackable`] can be checkpointed.
//!
//! This crate is being built; today it only re-exports the trait it serialises.
//!
//! ```
//! use ferroflow_checkpoint::Trackable;
//! use ferroflow_tensor_core::{Tensor, Variable};
//! let v = Variable::new("w", Tensor::scalar(1.0f32), true).unwrap();
//! assert_eq!(v.variables_by_path().len(), 1);
//! ```
#![warn(missing_docs)]

pub use ferroflow_tensor_core::Trackable;
