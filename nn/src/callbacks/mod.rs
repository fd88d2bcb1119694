//! Callbacks: code that `fit`, `evaluate` and `predict` call at Keras' hooks, with the model
//! and the logs — to stop early, save checkpoints, change the learning rate, log or draw
//! progress.
//!
//! Every callback implements [`Callback`]; each hook has an empty default, so a callback
//! writes only the hooks it needs. Pass them to [`FitOptions::with_callback`](crate::FitOptions::with_callback)
//! by value or as `&mut` (to read their state after `fit`).
//!
//! ```
//! use ferroflow_nn::callbacks::Callback;
//! use ferroflow_nn::{Logs, Model};
//!
//! /// Stops once the loss is below a target.
//! struct StopBelow(f64);
//! impl Callback for StopBelow {
//!     fn on_epoch_end(&mut self, model: &Model, _epoch: usize, logs: &mut Logs) -> ferroflow_tensor_core::Result<()> {
//!         if logs.get("loss").is_some_and(|l| l < self.0) {
//!             model.set_stop_training(true);
//!         }
//!         Ok(())
//!     }
//! }
//! ```

mod backup;
mod csv_logger;
mod early_stopping;
mod lambda;
mod lr;
mod model_checkpoint;
mod monitor;
mod progbar;
mod tensorboard;
mod terminate;

pub use backup::BackupAndRestore;
pub use csv_logger::CsvLogger;
pub use early_stopping::EarlyStopping;
pub use lambda::LambdaCallback;
pub use lr::{LearningRateScheduler, ReduceLrOnPlateau};
pub use model_checkpoint::ModelCheckpoint;
pub use model_checkpoint::SaveFreq;
pub use monitor::Mode as MonitorMode;
pub use progbar::{ProgbarLogger, Verbose};
pub use tensorboard::{TensorBoard, UpdateFreq};
pub use terminate::TerminateOnNaN;

use crate::model::{FitParams, Logs, Model};
use ferroflow_tensor_core::Result;

/// Keras' callback hooks. `epoch` and `batch` are 0-based; `on_epoch_end` may add values to
/// the epoch's logs (the learning rate, say), which later callbacks and the history see.
#[allow(unused_variables)]
pub trait Callback {
    /// The run's parameters, before it starts.
    fn set_params(&mut self, params: &FitParams) {}

    /// `fit` starts.
    fn on_train_begin(&mut self, model: &Model, logs: &Logs) -> Result<()> {
        Ok(())
    }

    /// `fit` ends, with the last epoch's logs.
    fn on_train_end(&mut self, model: &Model, logs: &Logs) -> Result<()> {
        Ok(())
    }

    /// An epoch starts.
    fn on_epoch_begin(&mut self, model: &Model, epoch: usize, logs: &Logs) -> Result<()> {
        Ok(())
    }

    /// An epoch ended: training values and, when it validated, `val_` values.
    fn on_epoch_end(&mut self, model: &Model, epoch: usize, logs: &mut Logs) -> Result<()> {
        Ok(())
    }

    /// A training batch starts.
    fn on_train_batch_begin(&mut self, model: &Model, batch: usize, logs: &Logs) -> Result<()> {
        Ok(())
    }

    /// A training batch ended: running values since the epoch began.
    fn on_train_batch_end(&mut self, model: &Model, batch: usize, logs: &Logs) -> Result<()> {
        Ok(())
    }

    /// Evaluation starts (also validation inside `fit`).
    fn on_test_begin(&mut self, model: &Model, logs: &Logs) -> Result<()> {
        Ok(())
    }

    /// Evaluation ended, with its values (without the `val_` prefix).
    fn on_test_end(&mut self, model: &Model, logs: &Logs) -> Result<()> {
        Ok(())
    }

    /// An evaluation batch starts.
    fn on_test_batch_begin(&mut self, model: &Model, batch: usize, logs: &Logs) -> Result<()> {
        Ok(())
    }

    /// An evaluation batch ended.
    fn on_test_batch_end(&mut self, model: &Model, batch: usize, logs: &Logs) -> Result<()> {
        Ok(())
    }

    /// Prediction starts.
    fn on_predict_begin(&mut self, model: &Model, logs: &Logs) -> Result<()> {
        Ok(())
    }

    /// Prediction ended.
    fn on_predict_end(&mut self, model: &Model, logs: &Logs) -> Result<()> {
        Ok(())
    }

    /// A prediction batch starts.
    fn on_predict_batch_begin(&mut self, model: &Model, batch: usize, logs: &Logs) -> Result<()> {
        Ok(())
    }

    /// A prediction batch ended.
    fn on_predict_batch_end(&mut self, model: &Model, batch: usize, logs: &Logs) -> Result<()> {
        Ok(())
    }

    /// Whether this callback draws progress (then `fit` adds no progress bar of its own).
    fn is_progress(&self) -> bool {
        false
    }

    /// Whether the batch hooks do anything; `fit` skips making batch logs when no callback
    /// needs them.
    fn wants_batch_logs(&self) -> bool {
        true
    }

    /// Whether only the chief (rank 0) runs this callback when training data-parallel:
    /// progress, TensorBoard, checkpoints and CSV logs are written once, not by every worker.
    /// Other callbacks run on every worker, with the same global logs. A chief-only callback
    /// must not start anything the workers do together (`evaluate`, `fit`): the others would
    /// not join it.
    fn chief_only(&self) -> bool {
        false
    }
}

impl<C: Callback + ?Sized> Callback for &mut C {
    fn set_params(&mut self, params: &FitParams) {
        (**self).set_params(params)
    }
    fn on_train_begin(&mut self, model: &Model, logs: &Logs) -> Result<()> {
        (**self).on_train_begin(model, logs)
    }
    fn on_train_end(&mut self, model: &Model, logs: &Logs) -> Result<()> {
        (**self).on_train_end(model, logs)
    }
    fn on_epoch_begin(&mut self, model: &Model, epoch: usize, logs: &Logs) -> Result<()> {
        (**self).on_epoch_begin(model, epoch, logs)
    }
    fn on_epoch_end(&mut self, model: &Model, epoch: usize, logs: &mut Logs) -> Result<()> {
        (**self).on_epoch_end(model, epoch, logs)
    }
    fn on_train_batch_begin(&mut self, model: &Model, batch: usize, logs: &Logs) -> Result<()> {
        (**self).on_train_batch_begin(model, batch, logs)
    }
    fn on_train_batch_end(&mut self, model: &Model, batch: usize, logs: &Logs) -> Result<()> {
        (**self).on_train_batch_end(model, batch, logs)
    }
    fn on_test_begin(&mut self, model: &Model, logs: &Logs) -> Result<()> {
        (**self).on_test_begin(model, logs)
    }
    fn on_test_end(&mut self, model: &Model, logs: &Logs) -> Result<()> {
        (**self).on_test_end(model, logs)
    }
    fn on_test_batch_begin(&mut self, model: &Model, batch: usize, logs: &Logs) -> Result<()> {
        (**self).on_test_batch_begin(model, batch, logs)
    }
    fn on_test_batch_end(&mut self, model: &Model, batch: usize, logs: &Logs) -> Result<()> {
        (**self).on_test_batch_end(model, batch, logs)
    }
    fn on_predict_begin(&mut self, model: &Model, logs: &Logs) -> Result<()> {
        (**self).on_predict_begin(model, logs)
    }
    fn on_predict_end(&mut self, model: &Model, logs: &Logs) -> Result<()> {
        (**self).on_predict_end(model, logs)
    }
    fn on_predict_batch_begin(&mut self, model: &Model, batch: usize, logs: &Logs) -> Result<()> {
        (**self).on_predict_batch_begin(model, batch, logs)
    }
    fn on_predict_batch_end(&mut self, model: &Model, batch: usize, logs: &Logs) -> Result<()> {
        (**self).on_predict_batch_end(model, batch, logs)
    }
    fn is_progress(&self) -> bool {
        (**self).is_progress()
    }
    fn wants_batch_logs(&self) -> bool {
        (**self).wants_batch_logs()
    }
    fn chief_only(&self) -> bool {
        (**self).chief_only()
    }
}

/// The callbacks of one run, called in order.
pub(crate) struct CallbackList<'a> {
    items: Vec<Box<dyn Callback + 'a>>,
    batch_logs: bool,
}

macro_rules! each {
    ($name:ident($($arg:ident: $t:ty),*)) => {
        pub fn $name(&mut self, model: &Model, $($arg: $t),*) -> Result<()> {
            let chief = model.is_chief();
            for c in &mut self.items {
                if chief || !c.chief_only() {
                    c.$name(model, $($arg),*)?;
                }
            }
            Ok(())
        }
    };
}

impl<'a> CallbackList<'a> {
    pub fn new(items: Vec<Box<dyn Callback + 'a>>) -> Self {
        let batch_logs = items.iter().any(|c| c.wants_batch_logs());
        CallbackList { items, batch_logs }
    }

    /// Whether any callback reads batch logs.
    pub fn wants_batch_logs(&self) -> bool {
        self.batch_logs
    }

    pub fn set_params(&mut self, params: &FitParams) {
        for c in &mut self.items {
            c.set_params(params);
        }
    }

    pub fn on_epoch_end(&mut self, model: &Model, epoch: usize, logs: &mut Logs) -> Result<()> {
        let chief = model.is_chief();
        for c in &mut self.items {
            if chief || !c.chief_only() {
                c.on_epoch_end(model, epoch, logs)?;
            }
        }
        Ok(())
    }

    each!(on_train_begin(logs: &Logs));
    each!(on_train_end(logs: &Logs));
    each!(on_epoch_begin(epoch: usize, logs: &Logs));
    each!(on_train_batch_begin(batch: usize, logs: &Logs));
    each!(on_train_batch_end(batch: usize, logs: &Logs));
    each!(on_test_begin(logs: &Logs));
    each!(on_test_end(logs: &Logs));
    each!(on_test_batch_begin(batch: usize, logs: &Logs));
    each!(on_test_batch_end(batch: usize, logs: &Logs));
    each!(on_predict_begin(logs: &Logs));
    each!(on_predict_end(logs: &Logs));
    each!(on_predict_batch_begin(batch: usize, logs: &Logs));
    each!(on_predict_batch_end(batch: usize, logs: &Logs));
}
