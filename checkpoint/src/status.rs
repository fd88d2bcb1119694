//! Restoring values into variables, and the status a restore returns
//! (`tf.train.Checkpoint.read(...)`'s `CheckpointLoadStatus`).

use crate::error::{CheckpointError, Result};
use crate::format::CheckpointReader;
use ferroflow_tensor_core::Variable;
use std::path::{Path, PathBuf};

/// What a restore matched. Values were assigned when the status was made; its assertions tell
/// whether the checkpoint and the program agreed.
#[derive(Clone, Debug)]
#[must_use = "check the status with assert_consumed, assert_existing_objects_matched or expect_partial"]
pub struct LoadStatus {
    path: PathBuf,
    restored: Vec<String>,
    unused: Vec<String>,
    pub(crate) unmatched: Vec<String>,
}

impl LoadStatus {
    /// The checkpoint that was read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Object paths that received a value.
    pub fn restored(&self) -> &[String] {
        &self.restored
    }

    /// Stored values that no variable took.
    pub fn unused(&self) -> &[String] {
        &self.unused
    }

    /// Variables the checkpoint had no value for.
    pub fn unmatched(&self) -> &[String] {
        &self.unmatched
    }

    /// Every stored value matched a variable and every variable got a value.
    pub fn assert_consumed(&self) -> Result<&Self> {
        self.assert_existing_objects_matched()?;
        self.assert_none(&self.unused, "stored value(s) were not used")
    }

    /// Every variable of the program got a value (unused stored values are allowed).
    pub fn assert_existing_objects_matched(&self) -> Result<&Self> {
        self.assert_none(&self.unmatched, "variable(s) were not found in the checkpoint")
    }

    /// `Ok` if `names` is empty, else an assertion error listing them.
    fn assert_none(&self, names: &[String], what: &str) -> Result<&Self> {
        if names.is_empty() {
            return Ok(self);
        }
        Err(CheckpointError::Assertion(format!(
            "{}: {} {what}: {}",
            self.path.display(),
            names.len(),
            names.join(", ")
        )))
    }

    /// Accepts a partial restore. ferroflow does not warn about unused values, so this only
    /// states the intent (and silences the `must_use` lint).
    pub fn expect_partial(&self) -> &Self {
        self
    }
}

/// Restores `vars` (object path → variable) from `reader`. Every variable with a stored value
/// is checked first; if any dtype or shape differs, all mismatches are reported together and
/// nothing is assigned. Values are read and converted before the first assignment, so a
/// failure part-way leaves every variable as it was.
pub fn restore_variables(reader: &CheckpointReader, vars: &[(String, Variable)]) -> Result<LoadStatus> {
    let stored: std::collections::BTreeMap<String, crate::raw::TensorInfo> =
        reader.list().into_iter().map(|i| (i.name.clone(), i)).collect();
    let mut mismatches = Vec::new();
    let mut matched = Vec::new();
    let mut unmatched = Vec::new();
    for (path, var) in vars {
        match stored.get(path) {
            None => unmatched.push(path.clone()),
            Some(info) => {
                let dtype_ok = info.dtype.load_dtype() == Some(var.dtype());
                if !dtype_ok || info.shape != var.shape().dims() {
                    mismatches.push(format!(
                        "{path}: stored {} {:?}, variable is {} {:?}",
                        info.dtype,
                        info.shape,
                        var.dtype().name(),
                        var.shape().dims()
                    ));
                } else {
                    matched.push((path, var));
                }
            }
        }
    }
    if !mismatches.is_empty() {
        return Err(CheckpointError::Mismatch {
            path: reader.path().to_path_buf(),
            mismatches,
        });
    }
    let values = matched
        .iter()
        .map(|(path, _)| reader.load(path))
        .collect::<Result<Vec<_>>>()?;
    for ((_, var), value) in matched.iter().zip(&values) {
        var.assign(value)?;
    }
    let restored: Vec<String> = matched.iter().map(|(p, _)| (*p).clone()).collect();
    let wanted: std::collections::HashSet<&str> = vars.iter().map(|(p, _)| p.as_str()).collect();
    let unused = stored
        .keys()
        .filter(|k| !wanted.contains(k.as_str()))
        .cloned()
        .collect();
    Ok(LoadStatus {
        path: reader.path().to_path_buf(),
        restored,
        unused,
        unmatched,
    })
}
