//! One error type for every checkpoint operation. Each variant names the file (or key) and
//! the problem, so a corrupt or mismatched checkpoint is diagnosed from the message alone.

use std::path::{Path, PathBuf};

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, CheckpointError>;

/// What went wrong while writing, reading or restoring a checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// An operating-system error on `path`.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// No checkpoint at `path` (neither the file nor a TensorFlow prefix exists).
    #[error("{path}: no checkpoint found ({why})")]
    NotFound {
        /// The path asked for.
        path: PathBuf,
        /// What was looked for.
        why: String,
    },
    /// The file exists but is not a valid checkpoint: truncated, corrupt or hostile.
    #[error("{path}: corrupt checkpoint: {why}")]
    Corrupt {
        /// The file that failed validation.
        path: PathBuf,
        /// The first problem found.
        why: String,
    },
    /// A stored dtype this crate cannot turn into a tensor.
    #[error("{path}: tensor '{name}' has dtype {dtype}, which ferroflow cannot load")]
    UnsupportedDtype {
        /// The checkpoint file.
        path: PathBuf,
        /// The stored tensor.
        name: String,
        /// The stored dtype's name.
        dtype: String,
    },
    /// A name that is not in the checkpoint.
    #[error("{path}: no tensor named '{name}'")]
    MissingKey {
        /// The checkpoint file.
        path: PathBuf,
        /// The name asked for.
        name: String,
    },
    /// Stored values that do not fit the variables they would restore: every mismatch at once.
    #[error("{path}: {} variable(s) do not match the checkpoint: {}", mismatches.len(), mismatches.join("; "))]
    Mismatch {
        /// The checkpoint file.
        path: PathBuf,
        /// One line per variable: its path, the stored and the expected dtype and shape.
        mismatches: Vec<String>,
    },
    /// A restore status assertion failed (`assert_consumed`, `assert_existing_objects_matched`).
    #[error("{0}")]
    Assertion(String),
    /// Two variables claim the same object path, or a path cannot be stored.
    #[error("invalid checkpoint contents: {0}")]
    Invalid(String),
    /// A tensor operation failed while converting values.
    #[error(transparent)]
    Tensor(#[from] ferroflow_tensor_core::Error),
}

impl CheckpointError {
    /// A [`CheckpointError::Corrupt`] for `path`.
    pub fn corrupt(path: &Path, why: impl Into<String>) -> Self {
        CheckpointError::Corrupt {
            path: path.to_path_buf(),
            why: why.into(),
        }
    }

    /// A [`CheckpointError::Io`] for `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Checkpoint errors join the framework's one error type, so `?` works in code that mixes
/// tensor ops and checkpoints.
impl From<CheckpointError> for ferroflow_tensor_core::Error {
    fn from(e: CheckpointError) -> Self {
        match e {
            CheckpointError::Tensor(t) => t,
            other => ferroflow_tensor_core::Error::external("checkpoint", other),
        }
    }
}
