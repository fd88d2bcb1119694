//! # ferroflow-nn
//!
//! `tf.Module`-style variable tracking, Keras-style layers (`Dense`, `Sequential`, ...) and a
//! Keras-style `Model` with compile / fit / evaluate / predict.
//!
//! This crate is being built; today it only re-exports the tensor types modules hold.
//!
//! ```
//! use ferroflow_nn::{Tensor, Variable};
//! let w = Variable::new("w", Tensor::zeros(&[3, 1], ferroflow_tensor_core::DType::F32), true).unwrap();
//! assert_eq!(w.shape().dims(), &[3, 1]);
//! let _ = Tensor::scalar(0.0f32);
//! ```
#![warn(missing_docs)]

pub use ferroflow_tensor_core::{Tensor, Variable};
