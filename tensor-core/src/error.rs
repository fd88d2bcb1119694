//! The one error type of ferroflow.
//!
//! Every variant that comes from an op carries the op's TensorFlow name, so a message reads
//! like `matmul: inner dimensions differ: [2, 3] x [4, 5]` wherever it surfaces. Failures
//! from outside the op set (checkpoint files, the operating system) convert into
//! [`Error::External`] with `From`, so `?` works across the whole framework.

use crate::{DType, Shape};
use std::sync::Arc;

/// Errors raised by tensor creation, ops, variables and dispatch, and (as
/// [`Error::External`]) by the rest of the framework.
///
/// ```
/// use ferroflow_tensor_core::{Error, Tensor};
/// let e = Tensor::new([1.0f32, 2.0]).matmul(&Tensor::new([3.0f32])).unwrap_err();
/// assert!(matches!(e, Error::ShapeMismatch { op: "matmul", .. }));
/// let io: Error = std::io::Error::other("disk on fire").into();
/// assert_eq!(io.to_string(), "io: disk on fire");
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
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
    /// The op or constructor would need more memory than the machine has (TensorFlow's
    /// `ResourceExhaustedError`), or an element count that overflows.
    #[error("{op}: resource exhausted: {msg}")]
    ResourceExhausted {
        /// Op or constructor that was called.
        op: &'static str,
        /// The request and the limit.
        msg: String,
    },
    /// A failure from outside the op set, kept whole: a checkpoint error, an operating-system
    /// error, a data loader's. The source can be downcast (`std::error::Error::source`).
    #[error("{op}: {source}")]
    External {
        /// The component that failed (`checkpoint`, `io`, ...).
        op: &'static str,
        /// The original error.
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
    /// Inputs of `op` live on different devices (see [`crate::Device`]).
    #[error("{op}: inputs on different devices ({}): {msg}", device_list(.devices))]
    DeviceMismatch {
        /// TensorFlow name of the op.
        op: &'static str,
        /// The devices involved: where the op runs, then the input's.
        devices: Vec<crate::Device>,
        /// What to do about it.
        msg: String,
    },
    /// `device` cannot run `op` in this process (no backend built in, no driver, no GPU, or
    /// the driver failed).
    #[error("{op}: device {device} unavailable: {msg}")]
    DeviceUnavailable {
        /// TensorFlow name of the op (`to` for copies).
        op: &'static str,
        /// The device asked for.
        device: crate::Device,
        /// Why.
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

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::external("io", e)
    }
}

impl Error {
    /// An [`Error::External`] from any error.
    pub fn external(op: &'static str, e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::External {
            op,
            source: Arc::new(e),
        }
    }

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

/// `a and b` in TensorFlow's device names, for [`Error::DeviceMismatch`].
fn device_list(devices: &[crate::Device]) -> String {
    devices.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(" and ")
}
