//! [`LambdaCallback`]: a callback from closures.

use super::Callback;
use crate::model::{Logs, Model};
use ferroflow_tensor_core::Result;

type EpochFn<'a> = Box<dyn FnMut(&Model, usize, &Logs) -> Result<()> + 'a>;
type TrainFn<'a> = Box<dyn FnMut(&Model, &Logs) -> Result<()> + 'a>;

/// `keras.callbacks.LambdaCallback`: closures for the hooks you need.
///
/// ```
/// use ferroflow_nn::callbacks::LambdaCallback;
/// let mut losses = Vec::new();
/// let cb = LambdaCallback::new().on_epoch_end(|_model, _epoch, logs| {
///     losses.extend(logs.get("loss"));
///     Ok(())
/// });
/// # drop(cb);
/// ```
#[derive(Default)]
pub struct LambdaCallback<'a> {
    epoch_begin: Option<EpochFn<'a>>,
    epoch_end: Option<EpochFn<'a>>,
    batch_begin: Option<EpochFn<'a>>,
    batch_end: Option<EpochFn<'a>>,
    train_begin: Option<TrainFn<'a>>,
    train_end: Option<TrainFn<'a>>,
}

impl std::fmt::Debug for LambdaCallback<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LambdaCallback").finish_non_exhaustive()
    }
}

impl<'a> LambdaCallback<'a> {
    /// No closures yet.
    pub fn new() -> Self {
        LambdaCallback::default()
    }

    /// At each epoch's start: `(model, epoch, logs)`.
    pub fn on_epoch_begin(mut self, f: impl FnMut(&Model, usize, &Logs) -> Result<()> + 'a) -> Self {
        self.epoch_begin = Some(Box::new(f));
        self
    }

    /// At each epoch's end: `(model, epoch, logs)`.
    pub fn on_epoch_end(mut self, f: impl FnMut(&Model, usize, &Logs) -> Result<()> + 'a) -> Self {
        self.epoch_end = Some(Box::new(f));
        self
    }

    /// Before each training batch: `(model, batch, logs)`.
    pub fn on_batch_begin(mut self, f: impl FnMut(&Model, usize, &Logs) -> Result<()> + 'a) -> Self {
        self.batch_begin = Some(Box::new(f));
        self
    }

    /// After each training batch: `(model, batch, logs)`.
    pub fn on_batch_end(mut self, f: impl FnMut(&Model, usize, &Logs) -> Result<()> + 'a) -> Self {
        self.batch_end = Some(Box::new(f));
        self
    }

    /// When training starts: `(model, logs)`.
    pub fn on_train_begin(mut self, f: impl FnMut(&Model, &Logs) -> Result<()> + 'a) -> Self {
        self.train_begin = Some(Box::new(f));
        self
    }

    /// When training ends: `(model, logs)`.
    pub fn on_train_end(mut self, f: impl FnMut(&Model, &Logs) -> Result<()> + 'a) -> Self {
        self.train_end = Some(Box::new(f));
        self
    }
}

impl Callback for LambdaCallback<'_> {
    fn on_epoch_begin(&mut self, model: &Model, epoch: usize, logs: &Logs) -> Result<()> {
        self.epoch_begin.as_mut().map_or(Ok(()), |f| f(model, epoch, logs))
    }
    fn on_epoch_end(&mut self, model: &Model, epoch: usize, logs: &mut Logs) -> Result<()> {
        self.epoch_end.as_mut().map_or(Ok(()), |f| f(model, epoch, logs))
    }
    fn on_train_batch_begin(&mut self, model: &Model, batch: usize, logs: &Logs) -> Result<()> {
        self.batch_begin.as_mut().map_or(Ok(()), |f| f(model, batch, logs))
    }
    fn on_train_batch_end(&mut self, model: &Model, batch: usize, logs: &Logs) -> Result<()> {
        self.batch_end.as_mut().map_or(Ok(()), |f| f(model, batch, logs))
    }
    fn on_train_begin(&mut self, model: &Model, logs: &Logs) -> Result<()> {
        self.train_begin.as_mut().map_or(Ok(()), |f| f(model, logs))
    }
    fn on_train_end(&mut self, model: &Model, logs: &Logs) -> Result<()> {
        self.train_end.as_mut().map_or(Ok(()), |f| f(model, logs))
    }
    fn wants_batch_logs(&self) -> bool {
        self.batch_begin.is_some() || self.batch_end.is_some()
    }
}
