//! # ferroflow-checkpoint
//!
//! Save, list and restore variables by object path (`model/dense_1/w`), in formats other
//! tools read: safetensors and TensorFlow checkpoints.
#![warn(missing_docs)]

pub mod atomic;
pub mod error;
pub mod raw;
pub mod tf;

pub use error::{CheckpointError, Result};
pub use ferroflow_tensor_core::Trackable;
pub use raw::{RawTensor, StoredDtype, TensorInfo};
