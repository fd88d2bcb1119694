//! Adagrad (Keras 3's update rule).

use crate::optimizer::{trackable_optimizer, LearningRate, Optimizer, OptimizerState};
use ferroflow_tensor_core::{Result, Tensor, Variable};

/// `keras.optimizers.Adagrad`: `acc += g²`; `w -= lr·g / sqrt(acc + ε)`, the accumulator
/// starting at `initial_accumulator_value`.
#[derive(Debug)]
pub struct Adagrad {
    state: OptimizerState,
    /// Starting value of the accumulator.
    pub initial_accumulator_value: f64,
    /// Added under the square root.
    pub epsilon: f64,
}

impl Adagrad {
    /// Adagrad with Keras' defaults: accumulator 0.1, ε 1e-7.
    pub fn new(learning_rate: impl Into<LearningRate>) -> Self {
        Adagrad {
            state: OptimizerState::new(learning_rate.into()),
            initial_accumulator_value: 0.1,
            epsilon: 1e-7,
        }
    }
}

impl Optimizer for Adagrad {
    fn state(&self) -> &OptimizerState {
        &self.state
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
        let w = Variable::new("w", Tensor::new([1.0f64]), true).unwrap();
        Adagrad::new(0.1)
            .apply_gradients(&[(Tensor::new([1.0f64]), w.clone())])
            .unwrap();
        let want = 1.0 - 0.1 / (1.1f64 + 1e-7).sqrt();
        assert!((w.value().to_vec::<f64>().unwrap()[0] - want).abs() < 1e-15);
    }
}
