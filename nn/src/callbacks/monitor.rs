//! What the monitoring callbacks share (Keras' `MonitorCallback`): a logged value to watch,
//! whether smaller or larger is better, and what counts as an improvement.

use crate::metrics::Direction;
use crate::model::Model;
use ferroflow_tensor_core::{Error, Result};

/// Whether the monitored value should go down or up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Decide from the value's name: losses and errors go down, accuracies and AUC up.
    #[default]
    Auto,
    /// Smaller is better.
    Min,
    /// Larger is better.
    Max,
}

impl std::str::FromStr for Mode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Mode> {
        match s {
            "auto" => Ok(Mode::Auto),
            "min" => Ok(Mode::Min),
            "max" => Ok(Mode::Max),
            _ => Err(Error::invalid(
                "callback",
                format!("mode must be auto, min or max, got {s:?}"),
            )),
        }
    }
}

/// A monitored value and its improvement rule.
#[derive(Debug, Clone)]
pub(crate) struct Monitor {
    pub name: String,
    pub mode: Mode,
    pub min_delta: f64,
    /// Resolved at the first comparison: true when larger is better.
    maximize: Option<bool>,
}

impl Monitor {
    pub fn new(name: &str, mode: Mode, min_delta: f64) -> Self {
        Monitor {
            name: name.to_string(),
            mode,
            min_delta: min_delta.abs(),
            maximize: None,
        }
    }

    /// Decides the direction (once): from the mode, else from the model's metrics.
    pub fn resolve(&mut self, model: &Model, who: &str) -> Result<bool> {
        if let Some(m) = self.maximize {
            return Ok(m);
        }
        let maximize = match self.mode {
            Mode::Min => false,
            Mode::Max => true,
            Mode::Auto => match model.metric_direction(&self.name) {
                Some(Direction::Up) => true,
                Some(Direction::Down) => false,
                None => {
                    return Err(Error::invalid(
                        "callback",
                        format!(
                            "{who} callback received monitor={}, but it cannot tell whether that metric should be maximized or minimized; pass mode Max or Min",
                            self.name
                        ),
                    ))
                }
            },
        };
        self.maximize = Some(maximize);
        Ok(maximize)
    }

    /// Whether `current` improves on `reference` by more than `min_delta` (any value
    /// improves on none).
    pub fn is_improvement(&self, current: f64, reference: Option<f64>) -> bool {
        let Some(reference) = reference else { return true };
        if self.maximize == Some(true) {
            current - self.min_delta > reference
        } else {
            current + self.min_delta < reference
        }
    }
}
