//! RMSprop (Keras 3's update rule, optional momentum and centering).

use crate::optimizer::{trackable_optimizer, LearningRate, Optimizer, OptimizerState};
use ferroflow_tensor_core::{Result, Tensor, Variable};

/// `keras.optimizers.RMSprop`: `v = ρ·v + (1-ρ)·g²`; `w -= lr·g / sqrt(v + ε)` (centered:
/// `v - ḡ²` under the root; with momentum the step goes through a momentum slot).
#[derive(Debug)]
pub struct RmsProp {
    state: OptimizerState,
    /// Decay of the squared-gradient average.
    pub rho: f64,
    /// Momentum factor (0 = none).
    pub momentum: f64,
    /// Added under the square root.
    pub epsilon: f64,
    /// Subtract the squared mean gradient.
    pub centered: bool,
}

impl RmsProp {
    /// RMSprop with Keras' defaults: ρ 0.9, no momentum, ε 1e-7, not centered.
    pub fn new(learning_rate: impl Into<LearningRate>) -> Self {
        RmsProp {
            state: OptimizerState::new(learning_rate.into()),
            rho: 0.9,
            momentum: 0.0,
            epsilon: 1e-7,
            centered: false,
        }
    }
}

impl Optimizer for RmsProp {
    fn state(&self) -> &OptimizerState {
        &self.state
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
        let w = Variable::new("w", Tensor::new([1.0f64]), true).unwrap();
        RmsProp::new(0.01)
            .apply_gradients(&[(Tensor::new([2.0f64]), w.clone())])
            .unwrap();
        let want = 1.0 - 0.01 * 2.0 / (0.1f64 * 4.0 + 1e-7).sqrt();
        assert!((w.value().to_vec::<f64>().unwrap()[0] - want).abs() < 1e-14);
        let m = RmsProp {
            momentum: 0.9,
            centered: true,
            ..RmsProp::new(0.01)
        };
        m.apply_gradients(&[(Tensor::new([2.0f64]), w.clone())]).unwrap();
        assert_eq!(m.slot_names(), ["velocity", "momentum", "average_gradient"]);
    }
}
