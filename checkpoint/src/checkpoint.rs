//! `tf.train.Checkpoint`: named trackable objects saved and restored by object path.

use crate::error::{CheckpointError, Result};
use crate::format::{snapshot, write_values, CheckpointReader, Format, SAVE_COUNTER};
use crate::state::CheckpointState;
use crate::status::{restore_variables, LoadStatus};
use ferroflow_tensor_core::{Trackable, Variable};
use std::cell::Cell;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// A set of named [`Trackable`] objects (a model, an optimizer, ...) whose variables are saved
/// under `name/path` keys, e.g. `model/dense_1/w`, so a checkpoint written by one program
/// restores into the same structure built by another.
///
/// The format follows the path: `*.safetensors` is safetensors, anything else a TensorFlow
/// checkpoint prefix.
///
/// Unlike TensorFlow, a restore does not keep values for variables that do not exist yet
/// (deferred restoration): create lazily built variables first (`Dense::input_dim`,
/// `Optimizer::build`), then restore; [`LoadStatus::unused`] lists values that found no
/// variable.
///
/// ```
/// # fn main() -> ferroflow_checkpoint::Result<()> {
/// use ferroflow_checkpoint::Checkpoint;
/// use ferroflow_tensor_core::{Tensor, Variable};
/// let dir = tempfile::tempdir().unwrap();
/// let w = Variable::new("w", Tensor::new([1.0f32, 2.0]))?;
/// let path = Checkpoint::new().track("w", &w)?.write(dir.path().join("ckpt"))?;
///
/// let fresh = Variable::new("w", Tensor::new([0.0f32, 0.0]))?;
/// Checkpoint::new().track("w", &fresh)?.read(&path)?.assert_consumed()?;
/// assert_eq!(fresh.value().to_vec::<f32>()?, vec![1.0, 2.0]);
/// # Ok(()) }
/// ```
pub struct Checkpoint<'a> {
    objects: Vec<(String, &'a dyn Trackable)>,
    save_counter: Cell<i64>,
}

impl Default for Checkpoint<'_> {
    fn default() -> Self {
        Checkpoint::new()
    }
}

impl<'a> Checkpoint<'a> {
    /// A checkpoint tracking nothing yet, with its save counter at 0.
    pub fn new() -> Self {
        Checkpoint {
            objects: Vec::new(),
            save_counter: Cell::new(0),
        }
    }

    /// Adds `object` under `name` (a keyword argument of `tf.train.Checkpoint`). Names must be
    /// unique, non-empty, free of `/`, and not `save_counter`.
    pub fn track(mut self, name: &str, object: &'a dyn Trackable) -> Result<Self> {
        if name.is_empty() || name.contains('/') || name == SAVE_COUNTER {
            return Err(CheckpointError::Invalid(format!(
                "'{name}' cannot name a checkpointed object"
            )));
        }
        if self.objects.iter().any(|(n, _)| n == name) {
            return Err(CheckpointError::Invalid(format!("'{name}' is tracked twice")));
        }
        self.objects.push((name.to_string(), object));
        // TensorFlow orders a checkpoint's children by name.
        self.objects.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(self)
    }

    /// Number of completed [`Checkpoint::save`] calls (or the restored count).
    pub fn save_counter(&self) -> i64 {
        self.save_counter.get()
    }

    /// Every tracked variable with its full object path, in save order. Two variables may not
    /// share a path.
    pub fn variables(&self) -> Result<Vec<(String, Variable)>> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for (name, obj) in &self.objects {
            for (path, v) in obj.variables_by_path() {
                let full = ferroflow_tensor_core::join_path(name, &path);
                if !seen.insert(full.clone()) {
                    return Err(CheckpointError::Invalid(format!(
                        "two variables have the path '{full}'"
                    )));
                }
                out.push((full, v));
            }
        }
        Ok(out)
    }

    /// Writes the tracked variables to exactly `path` (no save counter, no state file) and
    /// returns `path`.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<PathBuf> {
        let path = path.as_ref();
        write_values(path, &snapshot(&self.variables()?)?, None)?;
        Ok(path.to_path_buf())
    }

    /// Increments the save counter, writes `prefix-N` (`stem-N.safetensors` for a
    /// `.safetensors` prefix) with the counter stored, records it in the directory's
    /// `checkpoint` state file and returns the path.
    pub fn save(&self, prefix: impl AsRef<Path>) -> Result<PathBuf> {
        let n = self.next_save_counter()?;
        let path = numbered_path(prefix.as_ref(), n);
        self.write_counted(&path, n)?;
        let name = path
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let state = CheckpointState {
            model_checkpoint_path: name.clone(),
            all_model_checkpoint_paths: vec![name],
            ..Default::default()
        };
        state.write(&crate::atomic::parent_dir(&path))?;
        Ok(path)
    }

    /// The save counter after one more `save`; an error rather than a wrap past `i64::MAX`
    /// (a restored checkpoint decides where the counter starts).
    pub(crate) fn next_save_counter(&self) -> Result<i64> {
        self.save_counter.get().checked_add(1).ok_or_else(|| {
            CheckpointError::Invalid(format!(
                "save_counter is {}: one more save would overflow it",
                self.save_counter.get()
            ))
        })
    }

    /// Writes `path` with the save counter set to `n`; the counter only advances once the
    /// checkpoint is safely on disk.
    pub(crate) fn write_counted(&self, path: &Path, n: i64) -> Result<()> {
        write_values(path, &snapshot(&self.variables()?)?, Some(n))?;
        self.save_counter.set(n);
        Ok(())
    }

    /// Restores the tracked variables from `path` (a file, prefix or directory); the save
    /// counter is left alone (`tf.train.Checkpoint.read`, the pair of `write`).
    pub fn read(&self, path: impl AsRef<Path>) -> Result<LoadStatus> {
        let reader = CheckpointReader::open(path)?;
        restore_variables(&reader, &self.variables()?)
    }

    /// Like [`Checkpoint::read`], and also restores the save counter, so the next `save`
    /// continues the numbering (the pair of `save`). A checkpoint without a counter leaves
    /// `save_counter` among the status's unmatched objects.
    pub fn restore(&self, path: impl AsRef<Path>) -> Result<LoadStatus> {
        let reader = CheckpointReader::open(path)?;
        // Read (and check) the counter first: a corrupt one must leave the variables alone.
        let counter = reader.save_counter()?;
        let mut status = restore_variables(&reader, &self.variables()?)?;
        match counter {
            Some(n) => self.save_counter.set(n),
            None => status.unmatched.push(SAVE_COUNTER.to_string()),
        }
        Ok(status)
    }
}

/// `prefix-n`, keeping a `.safetensors` extension last.
pub(crate) fn numbered_path(prefix: &Path, n: i64) -> PathBuf {
    match Format::for_path(prefix) {
        Format::Safetensors => {
            let stem = prefix
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            prefix.with_file_name(format!("{stem}-{n}.safetensors"))
        }
        Format::TensorFlow => {
            let mut s = prefix.as_os_str().to_os_string();
            s.push(format!("-{n}"));
            PathBuf::from(s)
        }
    }
}
