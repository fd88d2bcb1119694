//! [`BackupAndRestore`]: lets an interrupted `fit` resume where it stopped.

use super::Callback;
use crate::model::{Logs, Model};
use crate::Module;
use ferroflow_checkpoint::atomic::write_atomic;
use ferroflow_checkpoint::Checkpoint;
use ferroflow_tensor_core::random::{self, RandomState};
use ferroflow_tensor_core::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What is saved beside the variables.
#[derive(Debug, Serialize, Deserialize)]
struct Metadata {
    /// The next epoch to run.
    epoch: usize,
    /// The variables' file, in the backup directory.
    weights: String,
    /// The run's shuffle seed.
    seed: Option<u64>,
    /// The optimizer's learning rate (callbacks may have changed it).
    learning_rate: Option<f64>,
    /// The random generator's state.
    random_global: Option<u64>,
    random_next_op_seed: u64,
    random_calls: Vec<(u64, u64, u64)>,
}

/// `keras.callbacks.BackupAndRestore`: at the end of every epoch, saves the model, the
/// optimizer (slots and step count), the epoch, the shuffle seed, the learning rate and the
/// random generator's state to `backup_dir`; a later `fit` with the same callback starts from
/// the saved epoch with everything restored, so it ends exactly as an uninterrupted run would.
/// The backup is deleted when `fit` completes (not when it fails).
///
/// Training data-parallel, the chief (rank 0) writes the backup and every worker restores
/// from it where it can see the directory; rank 0's restored state is broadcast to every
/// worker in any case, so a directory only rank 0 sees also resumes the job.
///
/// ```no_run
/// use ferroflow_nn::callbacks::BackupAndRestore;
/// use ferroflow_nn::FitOptions;
/// let options = FitOptions::new().epochs(100).with_callback(BackupAndRestore::new("/tmp/backup"));
/// # drop(options);
/// ```
#[derive(Debug, Clone)]
pub struct BackupAndRestore {
    dir: PathBuf,
    delete_on_success: bool,
    restored_epoch: Option<usize>,
}

impl BackupAndRestore {
    /// Backs up into `dir` (created if needed).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        BackupAndRestore {
            dir: dir.into(),
            delete_on_success: true,
            restored_epoch: None,
        }
    }

    /// Keeps the backup after a completed `fit` (`delete_checkpoint=False`).
    pub fn delete_on_success(mut self, delete: bool) -> Self {
        self.delete_on_success = delete;
        self
    }

    /// The epoch a restored run resumed at.
    pub fn restored_epoch(&self) -> Option<usize> {
        self.restored_epoch
    }

    /// The variables after `epochs` epochs. Each backup writes a new file and the metadata
    /// names it, so a crash between the two writes leaves the previous backup whole.
    fn weights_name(epochs: usize) -> String {
        format!("backup-{epochs}.safetensors")
    }

    fn metadata_path(&self) -> PathBuf {
        self.dir.join("training_metadata.json")
    }

    fn checkpoint<'a>(model: &'a Model) -> Result<Checkpoint<'a>> {
        let mut ck = Checkpoint::new().track("model", model).map_err(Error::from)?;
        if let Some(opt) = model.optimizer() {
            ck = ck.track("optimizer", opt.state()).map_err(Error::from)?;
        }
        Ok(ck)
    }

    fn io(path: &Path, e: impl std::fmt::Display) -> Error {
        Error::invalid("BackupAndRestore", format!("{}: {e}", path.display()))
    }
}

impl Callback for BackupAndRestore {
    fn on_train_begin(&mut self, model: &Model, _: &Logs) -> Result<()> {
        self.restored_epoch = None;
        let meta_path = self.metadata_path();
        if !meta_path.exists() {
            return Ok(());
        }
        if !model.is_built() {
            return Err(Error::invalid(
                "BackupAndRestore",
                "the model must be built before restoring a backup",
            ));
        }
        let text = std::fs::read_to_string(&meta_path).map_err(|e| Self::io(&meta_path, e))?;
        let meta: Metadata = serde_json::from_str(&text).map_err(|e| Self::io(&meta_path, e))?;
        if let Some(opt) = model.optimizer() {
            // Slots must exist, in the model's order, before their values can load.
            opt.build(&model.trainable_variables())?;
        }
        Self::checkpoint(model)?
            .read(self.dir.join(&meta.weights))
            .map_err(Error::from)?
            .assert_consumed()
            .map_err(Error::from)?;
        if let (Some(opt), Some(lr)) = (model.optimizer(), meta.learning_rate) {
            if matches!(opt.state().learning_rate(), ferroflow_optim::LearningRate::Constant(_)) {
                opt.set_learning_rate(lr)?;
            }
        }
        if let Some(seed) = meta.seed {
            model.set_shuffle_seed(seed);
        }
        random::set_state(&RandomState {
            global: meta.random_global,
            next_op_seed: meta.random_next_op_seed,
            calls: meta.random_calls,
        });
        model.set_resume_epoch(Some(meta.epoch));
        self.restored_epoch = Some(meta.epoch);
        Ok(())
    }

    fn on_epoch_end(&mut self, model: &Model, epoch: usize, _: &mut Logs) -> Result<()> {
        if !model.is_chief() {
            // Training data-parallel, every worker restores from the chief's backup.
            return Ok(());
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| Self::io(&self.dir, e))?;
        let weights = Self::weights_name(epoch + 1);
        Self::checkpoint(model)?
            .write(self.dir.join(&weights))
            .map_err(Error::from)?;
        let previous = std::fs::read_to_string(self.metadata_path())
            .ok()
            .and_then(|t| serde_json::from_str::<Metadata>(&t).ok())
            .map(|m| m.weights)
            .filter(|w| *w != weights);
        let rng = random::get_state();
        let meta = Metadata {
            epoch: epoch + 1,
            weights,
            seed: model.shuffle_seed(),
            learning_rate: model.optimizer().map(|o| o.learning_rate()).transpose()?,
            random_global: rng.global,
            random_next_op_seed: rng.next_op_seed,
            random_calls: rng.calls,
        };
        let text = serde_json::to_string(&meta).map_err(|e| Self::io(&self.metadata_path(), e))?;
        // The metadata goes last: until it names the new file, the previous backup holds.
        write_atomic(&self.metadata_path(), text.as_bytes()).map_err(Error::from)?;
        if let Some(old) = previous {
            let _ = std::fs::remove_file(self.dir.join(old));
        }
        Ok(())
    }

    fn on_train_end(&mut self, model: &Model, _: &Logs) -> Result<()> {
        if self.delete_on_success && model.is_chief() && self.dir.exists() {
            std::fs::remove_dir_all(&self.dir).map_err(|e| Self::io(&self.dir, e))?;
        }
        Ok(())
    }

    fn wants_batch_logs(&self) -> bool {
        false
    }
}
