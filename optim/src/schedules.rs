//! Learning-rate schedules (`keras.optimizers.schedules`), evaluated from the optimizer's
//! `iterations` variable with tensor ops so a traced training step sees the current step.

use ferroflow_tensor_core::{DType, Error, Result, Tensor};

/// A learning rate as a function of the (0-based) step. Optimizers take a schedule wherever
/// they take a rate: `Sgd::new(ExponentialDecay { .. })`.
pub trait LearningRateSchedule: std::fmt::Debug {
    /// The rate at `step` (an int64 scalar tensor), as a float32 scalar tensor.
    fn rate(&self, step: &Tensor) -> Result<Tensor>;

    /// Checks the schedule's parameters (an optimizer calls it when it is made).
    fn validate(&self) -> Result<()> {
        Ok(())
    }
}

/// Rates must be finite and `>= 0`; `what` names the schedule and parameter.
fn rate_ok(op: &'static str, name: &str, v: f64) -> Result<()> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(op, format!("{name} must be finite and >= 0, got {v}")))
    }
}

/// Step counts must be finite and `> 0`.
fn steps_ok(op: &'static str, v: f64) -> Result<()> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(
            op,
            format!("decay_steps must be finite and > 0, got {v}"),
        ))
    }
}

fn step_f32(step: &Tensor) -> Result<Tensor> {
    step.cast(DType::F32)
}

/// `initial · decay_rate^(step / decay_steps)`, with the exponent floored when `staircase`.
///
/// ```
/// use ferroflow_optim::{ExponentialDecay, Optimizer, Sgd};
/// let schedule = ExponentialDecay {
///     initial_learning_rate: 0.1,
///     decay_steps: 100.0,
///     decay_rate: 0.5,
///     staircase: true,
/// };
/// let opt = Sgd::new(schedule.clone())?; // a schedule wherever a rate goes
/// # let _ = opt;
/// assert!(Sgd::new(ExponentialDecay { decay_steps: 0.0, ..schedule }).is_err());
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ExponentialDecay {
    /// Rate at step 0.
    pub initial_learning_rate: f64,
    /// Steps per decay period.
    pub decay_steps: f64,
    /// Factor per period.
    pub decay_rate: f64,
    /// Decay in whole periods.
    pub staircase: bool,
}

impl LearningRateSchedule for ExponentialDecay {
    fn validate(&self) -> Result<()> {
        rate_ok("ExponentialDecay", "initial_learning_rate", self.initial_learning_rate)?;
        rate_ok("ExponentialDecay", "decay_rate", self.decay_rate)?;
        steps_ok("ExponentialDecay", self.decay_steps)
    }

    fn rate(&self, step: &Tensor) -> Result<Tensor> {
        self.validate()?;
        let mut p = step_f32(step)?.div(&Tensor::scalar(self.decay_steps as f32))?;
        if self.staircase {
            p = p.floor()?;
        }
        Tensor::scalar(self.decay_rate as f32)
            .pow(&p)?
            .mul(&Tensor::scalar(self.initial_learning_rate as f32))
    }
}

/// `values[i]` while `step <= boundaries[i]` (and `values[last]` after the last boundary).
#[derive(Debug, Clone, PartialEq)]
pub struct PiecewiseConstantDecay {
    /// Increasing step boundaries.
    pub boundaries: Vec<i64>,
    /// One more value than boundaries.
    pub values: Vec<f64>,
}

impl LearningRateSchedule for PiecewiseConstantDecay {
    fn validate(&self) -> Result<()> {
        if self.values.len() != self.boundaries.len() + 1 {
            return Err(Error::invalid(
                "PiecewiseConstantDecay",
                format!(
                    "needs exactly one more value than boundaries, got {} values for {} boundaries",
                    self.values.len(),
                    self.boundaries.len()
                ),
            ));
        }
        if self.boundaries.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Error::invalid(
                "PiecewiseConstantDecay",
                format!("boundaries must increase, got {:?}", self.boundaries),
            ));
        }
        self.values
            .iter()
            .try_for_each(|&v| rate_ok("PiecewiseConstantDecay", "every value", v))
    }

    fn rate(&self, step: &Tensor) -> Result<Tensor> {
        self.validate()?;
        // Walk from the last piece back: each boundary selects the earlier value at or below it.
        let mut rate = Tensor::scalar(*self.values.last().unwrap_or(&0.0) as f32);
        for (b, v) in self.boundaries.iter().zip(&self.values).rev() {
            let inside = step.less_equal(&Tensor::scalar(*b))?;
            rate = inside.select(&Tensor::scalar(*v as f32), &rate)?;
        }
        Ok(rate)
    }
}

/// Cosine decay from `initial` to `initial · alpha` over `decay_steps`, then flat.
#[derive(Debug, Clone, PartialEq)]
pub struct CosineDecay {
    /// Rate at step 0.
    pub initial_learning_rate: f64,
    /// Steps to decay over.
    pub decay_steps: f64,
    /// Final fraction of the initial rate.
    pub alpha: f64,
}

impl LearningRateSchedule for CosineDecay {
    fn validate(&self) -> Result<()> {
        rate_ok("CosineDecay", "initial_learning_rate", self.initial_learning_rate)?;
        rate_ok("CosineDecay", "alpha", self.alpha)?;
        steps_ok("CosineDecay", self.decay_steps)
    }

    fn rate(&self, step: &Tensor) -> Result<Tensor> {
        self.validate()?;
        let frac = step_f32(step)?
            .minimum(&Tensor::scalar(self.decay_steps as f32))?
            .div(&Tensor::scalar(self.decay_steps as f32))?;
        let cosine = frac
            .mul(&Tensor::scalar(std::f32::consts::PI))?
            .cos()?
            .add(&Tensor::scalar(1.0f32))?
            .mul(&Tensor::scalar(0.5f32))?;
        let a = self.alpha as f32;
        cosine
            .mul(&Tensor::scalar(1.0 - a))?
            .add(&Tensor::scalar(a))?
            .mul(&Tensor::scalar(self.initial_learning_rate as f32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &dyn LearningRateSchedule, step: i64) -> f32 {
        s.rate(&Tensor::scalar(step)).unwrap().to_scalar::<f32>().unwrap()
    }

    #[test]
    fn schedules_match_keras_formulas() {
        let e = ExponentialDecay {
            initial_learning_rate: 0.1,
            decay_steps: 10.0,
            decay_rate: 0.5,
            staircase: false,
        };
        assert!((at(&e, 10) - 0.05).abs() < 1e-7 && (at(&e, 5) - 0.1 * 0.5f32.sqrt()).abs() < 1e-7);
        let s = ExponentialDecay { staircase: true, ..e };
        assert!((at(&s, 19) - 0.05).abs() < 1e-7);
        let p = PiecewiseConstantDecay {
            boundaries: vec![10, 20],
            values: vec![1.0, 0.5, 0.1],
        };
        assert_eq!(
            [at(&p, 0), at(&p, 10), at(&p, 11), at(&p, 20), at(&p, 21)],
            [1.0, 1.0, 0.5, 0.5, 0.1]
        );
        let c = CosineDecay {
            initial_learning_rate: 1.0,
            decay_steps: 100.0,
            alpha: 0.0,
        };
        assert!((at(&c, 0) - 1.0).abs() < 1e-6 && (at(&c, 50) - 0.5).abs() < 1e-6 && at(&c, 200).abs() < 1e-6);
    }
}
