//! Keras-style `save_weights` / `load_weights` on anything trackable: the object's own
//! variable paths (`dense_1/w`) as keys, with no root name in front.

use crate::error::{CheckpointError, Result};
use crate::format::{snapshot, write_values, CheckpointReader};
use crate::status::restore_variables;
use ferroflow_tensor_core::Trackable;
use std::path::Path;

/// `save_weights(path)` / `load_weights(path)` for every [`Trackable`] (modules, layers,
/// optimizers). The format follows the path, as everywhere in this crate.
///
/// ```
/// # fn main() -> ferroflow_checkpoint::Result<()> {
/// use ferroflow_checkpoint::Weights;
/// use ferroflow_tensor_core::{Tensor, Variable};
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("w.safetensors");
/// let layer = vec![Variable::new("k", Tensor::new([3.0f64]))?];
/// layer.save_weights(&path)?;
/// let other = vec![Variable::new("k", Tensor::new([0.0f64]))?];
/// other.load_weights(&path)?;
/// assert_eq!(other[0].value().to_vec::<f64>()?, vec![3.0]);
/// # Ok(()) }
/// ```
pub trait Weights: Trackable {
    /// Writes every variable of `self` to `path`, atomically.
    fn save_weights(&self, path: impl AsRef<Path>) -> Result<()> {
        let vars = own_paths(self);
        write_values(path.as_ref(), &snapshot(&vars)?, None)
    }

    /// Loads every variable of `self` from `path`. Like Keras, the file must match exactly:
    /// a variable without a stored value, or a stored value without a variable, is an error
    /// (and then nothing is changed).
    fn load_weights(&self, path: impl AsRef<Path>) -> Result<()> {
        let reader = CheckpointReader::open(path)?;
        let vars = own_paths(self);
        let stored: std::collections::HashSet<String> = reader.list().into_iter().map(|i| i.name).collect();
        let missing: Vec<&str> = vars
            .iter()
            .filter(|(p, _)| !stored.contains(p))
            .map(|(p, _)| p.as_str())
            .collect();
        let own: std::collections::HashSet<&str> = vars.iter().map(|(p, _)| p.as_str()).collect();
        let mut extra: Vec<&String> = stored.iter().filter(|s| !own.contains(s.as_str())).collect();
        extra.sort();
        if !missing.is_empty() || !extra.is_empty() {
            return Err(CheckpointError::Mismatch {
                path: reader.path().to_path_buf(),
                mismatches: missing
                    .iter()
                    .map(|p| format!("{p}: no stored value"))
                    .chain(
                        extra
                            .iter()
                            .map(|s| format!("{s}: stored but not a variable of this object")),
                    )
                    .collect(),
            });
        }
        restore_variables(&reader, &vars)?.assert_consumed()?;
        Ok(())
    }
}

impl<T: Trackable + ?Sized> Weights for T {}

/// The object's variable paths; a lone variable (empty path) is stored under its own name.
fn own_paths<T: Trackable + ?Sized>(object: &T) -> Vec<(String, ferroflow_tensor_core::Variable)> {
    object
        .variables_by_path()
        .into_iter()
        .map(|(p, v)| {
            if p.is_empty() {
                (v.name().to_string(), v)
            } else {
                (p, v)
            }
        })
        .collect()
}
