//! Learning-rate callbacks: [`LearningRateScheduler`] (a rate per epoch) and
//! [`ReduceLrOnPlateau`] (smaller steps when progress stalls). Both log `learning_rate`.

use super::monitor::{Mode, Monitor};
use super::Callback;
use crate::model::{Logs, Model};
use ferroflow_tensor_core::{Error, Result};

fn optimizer_of<'m>(model: &'m Model, who: &str) -> Result<&'m dyn ferroflow_optim::Optimizer> {
    model
        .optimizer()
        .ok_or_else(|| Error::invalid("callback", format!("{who} needs a compiled model (an optimizer)")))
}

/// `keras.callbacks.LearningRateScheduler`: at each epoch's start, sets the learning rate to
/// `schedule(epoch, current_rate)`.
///
/// ```
/// use ferroflow_nn::callbacks::LearningRateScheduler;
/// // Halve the rate every 10 epochs.
/// let s = LearningRateScheduler::new(|epoch, lr| if epoch > 0 && epoch % 10 == 0 { lr / 2.0 } else { lr });
/// # drop(s);
/// ```
pub struct LearningRateScheduler<'a> {
    schedule: Box<dyn FnMut(usize, f64) -> f64 + 'a>,
    verbose: bool,
}

impl std::fmt::Debug for LearningRateScheduler<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LearningRateScheduler").finish_non_exhaustive()
    }
}

impl<'a> LearningRateScheduler<'a> {
    /// A scheduler from `schedule(epoch, lr) -> new lr` (epoch 0-based).
    pub fn new(schedule: impl FnMut(usize, f64) -> f64 + 'a) -> Self {
        LearningRateScheduler {
            schedule: Box::new(schedule),
            verbose: false,
        }
    }

    /// Prints each new rate.
    pub fn verbose(mut self, verbose: bool) -> Self {
        self.verbose = verbose;
        self
    }
}

impl Callback for LearningRateScheduler<'_> {
    fn on_epoch_begin(&mut self, model: &Model, epoch: usize, _: &Logs) -> Result<()> {
        let opt = optimizer_of(model, "LearningRateScheduler")?;
        let lr = (self.schedule)(epoch, opt.learning_rate()?);
        if !lr.is_finite() {
            return Err(Error::invalid(
                "LearningRateScheduler",
                format!("the schedule returned {lr} for epoch {epoch}"),
            ));
        }
        opt.set_learning_rate(lr)?;
        if self.verbose {
            println!(
                "\nEpoch {}: LearningRateScheduler setting learning rate to {lr}.",
                epoch + 1
            );
        }
        Ok(())
    }

    fn on_epoch_end(&mut self, model: &Model, _: usize, logs: &mut Logs) -> Result<()> {
        logs.insert(
            "learning_rate",
            optimizer_of(model, "LearningRateScheduler")?.learning_rate()?,
        );
        Ok(())
    }

    fn wants_batch_logs(&self) -> bool {
        false
    }
}

/// `keras.callbacks.ReduceLROnPlateau`: multiplies the learning rate by `factor` (0.1) when
/// `monitor` (`val_loss`) has not improved by `min_delta` (1e-4) for `patience` (10) epochs,
/// then waits `cooldown` epochs; never below `min_lr`.
///
/// ```
/// use ferroflow_nn::callbacks::ReduceLrOnPlateau;
/// let r = ReduceLrOnPlateau::new().monitor("loss").factor(0.5)?.patience(2).min_lr(1e-4);
/// # drop(r);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ReduceLrOnPlateau {
    monitor: Monitor,
    factor: f64,
    patience: usize,
    cooldown: usize,
    min_lr: f64,
    verbose: bool,
    wait: usize,
    cooldown_counter: usize,
    best: Option<f64>,
}

impl Default for ReduceLrOnPlateau {
    fn default() -> Self {
        ReduceLrOnPlateau::new()
    }
}

impl ReduceLrOnPlateau {
    /// Keras' defaults.
    pub fn new() -> Self {
        ReduceLrOnPlateau {
            monitor: Monitor::new("val_loss", Mode::Auto, 1e-4),
            factor: 0.1,
            patience: 10,
            cooldown: 0,
            min_lr: 0.0,
            verbose: false,
            wait: 0,
            cooldown_counter: 0,
            best: None,
        }
    }

    /// The logged value to watch.
    pub fn monitor(mut self, name: &str) -> Self {
        self.monitor = Monitor::new(name, self.monitor.mode, self.monitor.min_delta);
        self
    }

    /// Whether smaller or larger is better.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.monitor.mode = mode;
        self
    }

    /// The reduction factor, in `(0, 1)`.
    pub fn factor(mut self, factor: f64) -> Result<Self> {
        if !(factor > 0.0 && factor < 1.0) {
            return Err(Error::invalid(
                "ReduceLROnPlateau",
                format!("factor must be in (0, 1), got {factor}"),
            ));
        }
        self.factor = factor;
        Ok(self)
    }

    /// Epochs without improvement before reducing.
    pub fn patience(mut self, epochs: usize) -> Self {
        self.patience = epochs;
        self
    }

    /// The smallest change that counts as an improvement.
    pub fn min_delta(mut self, delta: f64) -> Self {
        self.monitor.min_delta = delta.abs();
        self
    }

    /// Epochs to wait after a reduction before counting again.
    pub fn cooldown(mut self, epochs: usize) -> Self {
        self.cooldown = epochs;
        self
    }

    /// The lowest rate it sets.
    pub fn min_lr(mut self, min_lr: f64) -> Self {
        self.min_lr = min_lr;
        self
    }

    /// Prints each reduction.
    pub fn verbose(mut self, verbose: bool) -> Self {
        self.verbose = verbose;
        self
    }
}

impl Callback for ReduceLrOnPlateau {
    fn on_train_begin(&mut self, _: &Model, _: &Logs) -> Result<()> {
        self.wait = 0;
        self.cooldown_counter = 0;
        self.best = None;
        Ok(())
    }

    fn on_epoch_end(&mut self, model: &Model, epoch: usize, logs: &mut Logs) -> Result<()> {
        let opt = optimizer_of(model, "ReduceLROnPlateau")?;
        let lr = opt.learning_rate()?;
        logs.insert("learning_rate", lr);
        let Some(current) = logs.get(&self.monitor.name) else {
            eprintln!(
                "Learning rate reduction is conditioned on metric `{}` which is not available. Available metrics are: {}.",
                self.monitor.name,
                logs.keys().collect::<Vec<_>>().join(",")
            );
            return Ok(());
        };
        self.monitor.resolve(model, "ReduceLROnPlateau")?;
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.wait = 0;
        }
        if self.monitor.is_improvement(current, self.best) {
            self.best = Some(current);
            self.wait = 0;
        } else if self.cooldown_counter == 0 {
            self.wait += 1;
            if self.wait >= self.patience && lr > self.min_lr {
                let new = (lr * self.factor).max(self.min_lr);
                opt.set_learning_rate(new)?;
                if self.verbose {
                    println!(
                        "\nEpoch {}: ReduceLROnPlateau reducing learning rate to {new}.",
                        epoch + 1
                    );
                }
                self.cooldown_counter = self.cooldown;
                self.wait = 0;
            }
        }
        Ok(())
    }

    fn wants_batch_logs(&self) -> bool {
        false
    }
}
