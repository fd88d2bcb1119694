//! Adagrad (Keras 3's update rule).

use crate::optimizer::{non_negative, trackable_optimizer, LearningRate, Optimizer, OptimizerState};
use ferroflow_tensor_core::{Result, Tensor, Variable};

/// `keras.optimizers.Adagrad`: `acc += g²`; `w -= lr·g / sqrt(acc + ε)`, the accumulator
/// starting at `initial_accumulator_value`.
///
/// ```
/// use ferroflow_optim::{Adagrad, Optimizer};
/// use ferroflow_tensor_core::{Tensor, Variable};
/// let w = Variable::new("w", Tensor::new([1.0f64]))?;
/// let opt = Adagrad::new(0.1)?.with_initial_accumulator_value(0.0)?.with_epsilon(0.0)?;
/// opt.apply_gradients([(Tensor::new([2.0f64]), &w)])?;
/// assert!((w.value().to_scalar::<f64>()? - 0.9).abs() < 1e-15); // 1 - 0.1·2/sqrt(4)
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
#[derive(Debug)]
pub struct Adagrad {
    state: OptimizerState,
    initial_accumulator_value: f64,
    epsilon: f64,
}

impl Adagrad {
    /// Adagrad with Keras' defaults: accumulator 0.1, ε 1e-7. A learning rate that is
    /// negative or not finite is an error.
    pub fn new(learning_rate: impl Into<LearningRate>) -> Result<Self> {
        Ok(Adagrad {
            state: OptimizerState::new("Adagrad", learning_rate)?,
            initial_accumulator_value: 0.1,
            epsilon: 1e-7,
        })
    }

    /// The accumulator's starting value, finite and `>= 0` (Keras'
    /// `initial_accumulator_value`).
    pub fn with_initial_accumulator_value(mut self, value: f64) -> Result<Self> {
        non_negative("Adagrad", "initial_accumulator_value", value)?;
        self.initial_accumulator_value = value;
        Ok(self)
    }

    /// The term added under the square root, finite and `>= 0` (Keras' `epsilon`).
    pub fn with_epsilon(mut self, epsilon: f64) -> Result<Self> {
        non_negative("Adagrad", "epsilon", epsilon)?;
        self.epsilon = epsilon;
        Ok(self)
    }
}

impl Optimizer for Adagrad {
    fn state(&self) -> &OptimizerState {
        &self.state
    }

    fn state_mut(&mut self) -> &mut OptimizerState {
        &mut self.state
    }

    fn slot_names(&self) -> &'static [&'static str] {
        &["accumulator"]
    }

    fn slot_init(&self) -> f64 {
        self.initial_accumulator_value
    }

    fn update(&self, var: &Variable, grad: &Tensor, slots: &[Variable], lr: &Tensor, _t: &Tensor) -> Result<()> {
        let acc = &slots[0];
        acc.assign_add(&grad.square()?)?;
        var.assign_sub(
            &lr.mul(grad)?
                .div(&acc.read()?.add(&lr.scalar_like(self.epsilon))?.sqrt()?)?,
        )
    }
}

trackable_optimizer!(Adagrad);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accumulator_starts_at_its_initial_value() {
        let w = Variable::new("w", Tensor::new([1.0f64])).unwrap();
        Adagrad::new(0.1)
            .unwrap()
            .apply_gradients([(Tensor::new([1.0f64]), &w)])
            .unwrap();
        let want = 1.0 - 0.1 / (1.1f64 + 1e-7).sqrt();
        assert!((w.value().to_vec::<f64>().unwrap()[0] - want).abs() < 1e-15);
    }
}
