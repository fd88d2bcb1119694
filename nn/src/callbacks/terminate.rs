//! [`TerminateOnNaN`]: stops training when the loss becomes NaN or infinite.

use super::Callback;
use crate::model::{Logs, Model};
use ferroflow_tensor_core::{Error, Result};

/// `keras.callbacks.TerminateOnNaN`: after each training batch, a NaN or infinite running
/// loss stops training (the epoch still ends normally), or with `raise_error(true)` fails
/// `fit` with an error.
#[derive(Debug, Clone, Default)]
pub struct TerminateOnNaN {
    raise_error: bool,
    terminated_at: Option<usize>,
}

impl TerminateOnNaN {
    /// Stops training quietly (with a message on standard error).
    pub fn new() -> Self {
        TerminateOnNaN::default()
    }

    /// Makes `fit` fail with an error instead of stopping.
    pub fn raise_error(mut self, raise: bool) -> Self {
        self.raise_error = raise;
        self
    }

    /// The batch whose loss was invalid, if any.
    pub fn terminated_at(&self) -> Option<usize> {
        self.terminated_at
    }
}

impl Callback for TerminateOnNaN {
    fn on_train_batch_end(&mut self, model: &Model, batch: usize, logs: &Logs) -> Result<()> {
        let Some(loss) = logs.get("loss") else { return Ok(()) };
        if loss.is_finite() {
            return Ok(());
        }
        self.terminated_at = Some(batch);
        if self.raise_error {
            return Err(Error::invalid(
                "TerminateOnNaN",
                format!("NaN or Inf loss encountered at batch {batch}. Loss value: {loss}. Terminating training immediately."),
            ));
        }
        eprintln!("Batch {batch}: Invalid loss, terminating training");
        model.set_stop_training(true);
        Ok(())
    }
}
