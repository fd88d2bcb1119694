//! [`EarlyStopping`]: stops training when a monitored value stops improving.

use super::monitor::{Mode, Monitor};
use super::Callback;
use crate::model::{Logs, Model};
use ferroflow_tensor_core::{Result, Tensor};

/// `keras.callbacks.EarlyStopping`: stops `fit` once `monitor` (default `val_loss`) has not
/// improved by more than `min_delta` for `patience` epochs; optionally restores the weights
/// of the best epoch at the end. Epochs before `start_from_epoch` are ignored, and training
/// never stops after the first epoch.
///
/// ```
/// use ferroflow_nn::callbacks::EarlyStopping;
/// let stop = EarlyStopping::new().monitor("loss").patience(2).restore_best_weights(true);
/// assert_eq!(stop.stopped_epoch(), None);
/// ```
#[derive(Debug, Clone)]
pub struct EarlyStopping {
    monitor: Monitor,
    patience: usize,
    baseline: Option<f64>,
    restore_best_weights: bool,
    start_from_epoch: usize,
    verbose: bool,
    wait: usize,
    best: Option<f64>,
    best_epoch: usize,
    best_weights: Option<Vec<Tensor>>,
    stopped_epoch: Option<usize>,
}

impl Default for EarlyStopping {
    fn default() -> Self {
        EarlyStopping::new()
    }
}

impl EarlyStopping {
    /// Monitors `val_loss` with patience 0 (Keras' defaults).
    pub fn new() -> Self {
        EarlyStopping {
            monitor: Monitor::new("val_loss", Mode::Auto, 0.0),
            patience: 0,
            baseline: None,
            restore_best_weights: false,
            start_from_epoch: 0,
            verbose: false,
            wait: 0,
            best: None,
            best_epoch: 0,
            best_weights: None,
            stopped_epoch: None,
        }
    }

    /// The logged value to watch (`loss`, `val_accuracy`, ...).
    pub fn monitor(mut self, name: &str) -> Self {
        self.monitor = Monitor::new(name, self.monitor.mode, self.monitor.min_delta);
        self
    }

    /// Whether smaller or larger is better (`Auto` asks the model's metrics).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.monitor.mode = mode;
        self
    }

    /// The smallest change that counts as an improvement.
    pub fn min_delta(mut self, delta: f64) -> Self {
        self.monitor.min_delta = delta.abs();
        self
    }

    /// Epochs without improvement before stopping.
    pub fn patience(mut self, epochs: usize) -> Self {
        self.patience = epochs;
        self
    }

    /// A value an improvement must also beat to reset the patience count.
    pub fn baseline(mut self, value: f64) -> Self {
        self.baseline = Some(value);
        self
    }

    /// Restores the best epoch's weights when training ends.
    pub fn restore_best_weights(mut self, restore: bool) -> Self {
        self.restore_best_weights = restore;
        self
    }

    /// Ignores the epochs before this one (a warm-up).
    pub fn start_from_epoch(mut self, epoch: usize) -> Self {
        self.start_from_epoch = epoch;
        self
    }

    /// Prints when it stops and restores.
    pub fn verbose(mut self, verbose: bool) -> Self {
        self.verbose = verbose;
        self
    }

    /// The epoch training stopped at (0-based), if it stopped early.
    pub fn stopped_epoch(&self) -> Option<usize> {
        self.stopped_epoch
    }

    /// The best value seen and its epoch.
    pub fn best(&self) -> Option<(f64, usize)> {
        self.best.map(|b| (b, self.best_epoch))
    }
}

impl Callback for EarlyStopping {
    fn on_train_begin(&mut self, _: &Model, _: &Logs) -> Result<()> {
        self.wait = 0;
        self.best = None;
        self.best_epoch = 0;
        self.best_weights = None;
        self.stopped_epoch = None;
        Ok(())
    }

    fn on_epoch_end(&mut self, model: &Model, epoch: usize, logs: &mut Logs) -> Result<()> {
        let Some(current) = logs.get(&self.monitor.name) else {
            eprintln!(
                "Early stopping conditioned on metric `{}` which is not available. Available metrics are: {}",
                self.monitor.name,
                logs.keys().collect::<Vec<_>>().join(",")
            );
            return Ok(());
        };
        if epoch < self.start_from_epoch {
            return Ok(());
        }
        self.monitor.resolve(model, "EarlyStopping")?;
        if self.restore_best_weights && self.best_weights.is_none() {
            self.best_weights = Some(model.get_weights()?);
            self.best_epoch = epoch;
        }
        self.wait += 1;
        if self.monitor.is_improvement(current, self.best) {
            self.best = Some(current);
            self.best_epoch = epoch;
            if self.restore_best_weights {
                self.best_weights = Some(model.get_weights()?);
            }
            if self
                .baseline
                .is_none_or(|b| self.monitor.is_improvement(current, Some(b)))
            {
                self.wait = 0;
            }
            return Ok(());
        }
        if self.wait >= self.patience && epoch > 0 {
            self.stopped_epoch = Some(epoch);
            model.set_stop_training(true);
        }
        Ok(())
    }

    fn on_train_end(&mut self, model: &Model, _: &Logs) -> Result<()> {
        if let (Some(e), true) = (self.stopped_epoch, self.verbose) {
            println!("Epoch {}: early stopping", e + 1);
        }
        if self.restore_best_weights {
            if let Some(w) = &self.best_weights {
                if self.verbose {
                    println!(
                        "Restoring model weights from the end of the best epoch: {}.",
                        self.best_epoch + 1
                    );
                }
                model.set_weights(w)?;
            }
        }
        Ok(())
    }

    fn wants_batch_logs(&self) -> bool {
        false
    }
}
