//! The one error type of tensor-core.
//!
//! Every variant that comes from an op carries the op's TensorFlow name, so a message reads
//! like `matmul: inner dimensions differ: [2, 3] x [4, 5]` wherever it surfaces.

use crate::{DType, Shape};

/// Errors raised by tensor creation, ops, variables and dispatch.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// Two or more shapes do not fit together for `op`.
    #[error("{op}: incompatible shapes {shapes:?}: {msg}")]
    ShapeMismatch {
        /// TensorFlow name of the op.
        op: &'static str,
        /// The shapes involved, in input order.
        shapes: Vec<Shape>,
        /// What exactly does not fit.
        msg: String,
    },
    /// An input has a dtype the op does not accept (or inputs disagree).
    #[error("{op}: unsupported dtype(s) {dtypes:?}: {msg}")]
    DTypeMismatch {
        /// TensorFlow name of the op.
        op: &'static str,
        /// The dtypes involved, in input order.
        dtypes: Vec<DType>,
        /// What was expected.
        msg: String,
    },
    /// An attribute (axis, perm, size, ...) is invalid for the given input.
    #[error("{op}: invalid argument: {msg}")]
    InvalidArgument {
        /// TensorFlow name of the op (or the constructor).
        op: &'static str,
        /// What is wrong.
        msg: String,
    },
    /// Data length does not match the element count of the requested shape.
    #[error("{op}: {len} values cannot fill shape {shape}")]
    DataLength {
        /// Constructor that was called.
        op: &'static str,
        /// Number of values supplied.
        len: usize,
        /// Requested shape.
        shape: Shape,
    },
    /// The op needs concrete values but got a symbolic (traced) tensor, or the reverse.
    #[error("{op}: {msg}")]
    Symbolic {
        /// Op or method that was called.
        op: &'static str,
        /// What is wrong.
        msg: String,
    },
    /// A tracer, observer or user-defined op reported a failure.
    #[error("{op}: {msg}")]
    Other {
        /// Op or component that failed.
        op: &'static str,
        /// Message.
        msg: String,
    },
}

/// Result alias used across tensor-core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(op: &'static str, msg: impl Into<String>) -> Self {
        Error::InvalidArgument { op, msg: msg.into() }
    }

    /// Shorthand for [`Error::ShapeMismatch`].
    pub fn shapes(op: &'static str, shapes: &[&Shape], msg: impl Into<String>) -> Self {
        Error::ShapeMismatch {
            op,
            shapes: shapes.iter().map(|s| (*s).clone()).collect(),
            msg: msg.into(),
        }
    }

    /// Shorthand for [`Error::DTypeMismatch`].
    pub fn dtypes(op: &'static str, dtypes: &[DType], msg: impl Into<String>) -> Self {
        Error::DTypeMismatch {
            op,
            dtypes: dtypes.to_vec(),
            msg: msg.into(),
        }
    }
}
