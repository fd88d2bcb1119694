//! `tf.train.CheckpointManager`: numbered checkpoints in one directory, the oldest deleted
//! beyond `max_to_keep`, recorded in the directory's `checkpoint` state file.

use crate::checkpoint::{numbered_path, Checkpoint};
use crate::error::{CheckpointError, Result};
use crate::format::{remove_checkpoint, Format};
use crate::state::{resolve, CheckpointState};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Keeps the last `max_to_keep` checkpoints of a [`Checkpoint`] in a directory.
///
/// ```
/// # fn main() -> ferroflow_checkpoint::Result<()> {
/// use ferroflow_checkpoint::{Checkpoint, CheckpointManager};
/// use ferroflow_tensor_core::{Tensor, Variable};
/// let dir = tempfile::tempdir().unwrap();
/// let v = Variable::new("v", Tensor::scalar(0.0f32))?;
/// let ckpt = Checkpoint::new().track("v", &v)?;
/// let mut manager = CheckpointManager::new(&ckpt, dir.path(), Some(2))?;
/// for i in 0..3 {
///     v.assign(&Tensor::scalar(i as f32))?;
///     manager.save()?;
/// }
/// let kept = vec![dir.path().join("ckpt-2.safetensors"), dir.path().join("ckpt-3.safetensors")];
/// assert_eq!(manager.checkpoints(), kept);
/// assert_eq!(manager.latest_checkpoint(), Some(dir.path().join("ckpt-3.safetensors")));
/// # Ok(()) }
/// ```
pub struct CheckpointManager<'c, 'a> {
    checkpoint: &'c Checkpoint<'a>,
    directory: PathBuf,
    max_to_keep: Option<usize>,
    checkpoint_name: String,
    format: Format,
    kept: Vec<(PathBuf, f64)>,
    last_preserved: f64,
}

impl<'c, 'a> CheckpointManager<'c, 'a> {
    /// A manager for `checkpoint` in `directory` keeping at most `max_to_keep` checkpoints
    /// (`None` keeps all). Checkpoints listed by an existing state file are picked up, as
    /// TensorFlow does, so a restarted program continues where the last one stopped.
    pub fn new(
        checkpoint: &'c Checkpoint<'a>,
        directory: impl AsRef<Path>,
        max_to_keep: Option<usize>,
    ) -> Result<Self> {
        let directory = directory.as_ref().to_path_buf();
        if max_to_keep == Some(0) {
            return Err(CheckpointError::Invalid(
                "max_to_keep must be at least 1 (None keeps every checkpoint)".into(),
            ));
        }
        let mut kept = Vec::new();
        let mut last_preserved = now();
        if let Some(st) = CheckpointState::read(&directory)? {
            if let Some(t) = st.last_preserved_timestamp {
                last_preserved = t;
            }
            for (i, p) in st.all_model_checkpoint_paths.iter().enumerate() {
                let ts = st
                    .all_model_checkpoint_timestamps
                    .get(i)
                    .copied()
                    .unwrap_or(last_preserved);
                kept.push((resolve(&directory, p), ts));
            }
        }
        Ok(CheckpointManager {
            checkpoint,
            directory,
            max_to_keep,
            checkpoint_name: "ckpt".into(),
            format: Format::Safetensors,
            kept,
            last_preserved,
        })
    }

    /// Saves in `format` from now on: safetensors files `ckpt-N.safetensors` by default (the
    /// project's default format), or TensorFlow prefixes `ckpt-N` as `tf.train.CheckpointManager`
    /// writes them.
    pub fn with_format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// Names checkpoints `NAME-N` instead of `ckpt-N`.
    pub fn with_checkpoint_name(mut self, name: &str) -> Self {
        self.checkpoint_name = name.to_string();
        self
    }

    /// The managed directory.
    pub fn directory(&self) -> &Path {
        &self.directory
    }

    /// The kept checkpoints, oldest first.
    pub fn checkpoints(&self) -> Vec<PathBuf> {
        self.kept.iter().map(|(p, _)| p.clone()).collect()
    }

    /// The newest kept checkpoint.
    pub fn latest_checkpoint(&self) -> Option<PathBuf> {
        self.kept.last().map(|(p, _)| p.clone())
    }

    /// Saves a checkpoint numbered by the incremented save counter.
    pub fn save(&mut self) -> Result<PathBuf> {
        let n = self.checkpoint.next_save_counter()?;
        self.save_numbered(n)
    }

    /// Saves a checkpoint named `NAME-number`; the save counter still advances by one.
    pub fn save_numbered(&mut self, number: i64) -> Result<PathBuf> {
        let base = match self.format {
            Format::Safetensors => format!("{}.safetensors", self.checkpoint_name),
            Format::TensorFlow => self.checkpoint_name.clone(),
        };
        let path = numbered_path(&self.directory.join(base), number);
        self.checkpoint
            .write_counted(&path, self.checkpoint.next_save_counter()?)?;
        self.kept.retain(|(p, _)| p != &path);
        self.kept.push((path.clone(), now()));
        let excess = match self.max_to_keep {
            Some(max) if self.kept.len() > max => self.kept.len() - max,
            _ => 0,
        };
        let dropped: Vec<(PathBuf, f64)> = self.kept.drain(..excess).collect();
        // The state file stops naming a checkpoint before its files go, so a crash in between
        // leaves stray files, never a state file pointing at nothing.
        self.write_state()?;
        for (old, _) in dropped {
            // Only files inside the managed directory are ever deleted, whatever the state
            // file said; a failed deletion leaves a stray file, not a broken manager.
            if old.starts_with(&self.directory) && !old.components().any(|c| c == std::path::Component::ParentDir) {
                let _ = remove_checkpoint(&old);
            }
        }
        Ok(path)
    }

    /// Restores the newest checkpoint and returns its path, or returns `None` (leaving the
    /// variables as initialised) when there is none.
    pub fn restore_or_initialize(&self) -> Result<Option<PathBuf>> {
        match self.latest_checkpoint() {
            None => Ok(None),
            Some(p) => {
                self.checkpoint.restore(&p)?.expect_partial();
                Ok(Some(p))
            }
        }
    }

    fn write_state(&self) -> Result<()> {
        let rel = |p: &Path| match p.strip_prefix(&self.directory) {
            Ok(r) => r.to_string_lossy().into_owned(),
            Err(_) => p.to_string_lossy().into_owned(),
        };
        let state = CheckpointState {
            model_checkpoint_path: self.kept.last().map(|(p, _)| rel(p)).unwrap_or_default(),
            all_model_checkpoint_paths: self.kept.iter().map(|(p, _)| rel(p)).collect(),
            all_model_checkpoint_timestamps: self.kept.iter().map(|(_, t)| *t).collect(),
            last_preserved_timestamp: Some(self.last_preserved),
        };
        state.write(&self.directory)
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
