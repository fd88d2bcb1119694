//! RMSprop (Keras 3's update rule, optional momentum and centering).

use crate::optimizer::{non_negative, trackable_optimizer, unit_interval, LearningRate, Optimizer, OptimizerState};
use ferroflow_tensor_core::{Result, Tensor, Variable};

/// `keras.optimizers.RMSprop`: `v = ρ·v + (1-ρ)·g²`; `w -= lr·g / sqrt(v + ε)` (centered:
/// `v - ḡ²` under the root; with momentum the step goes through a momentum slot).
///
/// ```
/// use ferroflow_optim::{Optimizer, RmsProp};
/// use ferroflow_tensor_core::{Tensor, Variable};
/// let w = Variable::new("w", Tensor::new([1.0f64]))?;
/// let opt = RmsProp::new(0.01)?.with_rho(0.9)?.with_momentum(0.5)?.with_centered(true);
/// opt.apply_gradients([(Tensor::new([2.0f64]), &w)])?;
/// assert!(w.value().to_scalar::<f64>()? < 1.0);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
#[derive(Debug)]
pub struct RmsProp {
    state: OptimizerState,
    rho: f64,
    momentum: f64,
    epsilon: f64,
    centered: bool,
}

impl RmsProp {
    /// RMSprop with Keras' defaults: ρ 0.9, no momentum, ε 1e-7, not centered. A learning
    /// rate that is negative or not finite is an error.
    pub fn new(learning_rate: impl Into<LearningRate>) -> Result<Self> {
        Ok(RmsProp {
            state: OptimizerState::new("RMSprop", learning_rate)?,
            rho: 0.9,
            momentum: 0.0,
            epsilon: 1e-7,
            centered: false,
        })
    }

    /// The decay of the squared-gradient average, in `[0, 1]` (Keras' `rho`).
    pub fn with_rho(mut self, rho: f64) -> Result<Self> {
        unit_interval("RMSprop", "rho", rho)?;
        self.rho = rho;
        Ok(self)
    }

    /// A momentum factor in `[0, 1]` (Keras' `momentum`).
    pub fn with_momentum(mut self, momentum: f64) -> Result<Self> {
        unit_interval("RMSprop", "momentum", momentum)?;
        self.momentum = momentum;
        Ok(self)
    }

    /// The term added under the square root, finite and `>= 0` (Keras' `epsilon`).
    pub fn with_epsilon(mut self, epsilon: f64) -> Result<Self> {
        non_negative("RMSprop", "epsilon", epsilon)?;
        self.epsilon = epsilon;
        Ok(self)
    }

    /// Whether to subtract the squared mean gradient (Keras' `centered`).
    pub fn with_centered(mut self, centered: bool) -> Self {
        self.centered = centered;
        self
    }
}

impl Optimizer for RmsProp {
    fn state(&self) -> &OptimizerState {
        &self.state
    }

    fn state_mut(&mut self) -> &mut OptimizerState {
        &mut self.state
    }

    fn slot_names(&self) -> &'static [&'static str] {
        match (self.momentum > 0.0, self.centered) {
            (false, false) => &["velocity"],
            (true, false) => &["velocity", "momentum"],
            (false, true) => &["velocity", "average_gradient"],
            (true, true) => &["velocity", "momentum", "average_gradient"],
        }
    }

    fn update(&self, var: &Variable, grad: &Tensor, slots: &[Variable], lr: &Tensor, _t: &Tensor) -> Result<()> {
        let c = |x: f64| lr.scalar_like(x);
        let velocity = &slots[0];
        let v = velocity
            .read()?
            .mul(&c(self.rho))?
            .add(&grad.square()?.mul(&c(1.0 - self.rho))?)?;
        velocity.assign(&v)?;
        let denominator = if self.centered {
            let avg_slot = slots.last().expect("centered RMSprop has an average slot");
            let avg = avg_slot
                .read()?
                .mul(&c(self.rho))?
                .add(&grad.mul(&c(1.0 - self.rho))?)?;
            avg_slot.assign(&avg)?;
            v.sub(&avg.square()?)?.add(&c(self.epsilon))?
        } else {
            v.add(&c(self.epsilon))?
        };
        let increment = lr.mul(grad)?.div(&denominator.sqrt()?)?;
        if self.momentum > 0.0 {
            let m = &slots[1];
            let new_m = m.read()?.mul(&c(self.momentum))?.add(&increment)?;
            m.assign(&new_m)?;
            var.assign_sub(&new_m)
        } else {
            var.assign_sub(&increment)
        }
    }
}

trackable_optimizer!(RmsProp);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_step_by_hand() {
        let w = Variable::new("w", Tensor::new([1.0f64])).unwrap();
        RmsProp::new(0.01)
            .unwrap()
            .apply_gradients([(Tensor::new([2.0f64]), &w)])
            .unwrap();
        let want = 1.0 - 0.01 * 2.0 / (0.1f64 * 4.0 + 1e-7).sqrt();
        assert!((w.value().to_vec::<f64>().unwrap()[0] - want).abs() < 1e-14);
        let m = RmsProp::new(0.01)
            .unwrap()
            .with_momentum(0.9)
            .unwrap()
            .with_centered(true);
        m.apply_gradients([(Tensor::new([2.0f64]), &w)]).unwrap();
        assert_eq!(m.slot_names(), ["velocity", "momentum", "average_gradient"]);
    }
}
