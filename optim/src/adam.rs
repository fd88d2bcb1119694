//! Adam (Keras 3's update rule, epsilon added to the raw second moment's square root after
//! the bias correction is folded into the step size; optional AMSGrad).

use crate::optimizer::{trackable_optimizer, LearningRate, Optimizer, OptimizerState};
use ferroflow_tensor_core::{Result, Tensor, Variable};

/// `keras.optimizers.Adam`:
/// `m += (g - m)(1 - β1)`, `v += (g² - v)(1 - β2)`,
/// `α = lr·sqrt(1 - β2^t)/(1 - β1^t)`, `w -= m·α / (sqrt(v) + ε)`.
#[derive(Debug)]
pub struct Adam {
    state: OptimizerState,
    /// First-moment decay.
    pub beta_1: f64,
    /// Second-moment decay.
    pub beta_2: f64,
    /// Added to `sqrt(v)`.
    pub epsilon: f64,
    /// Use the running maximum of `v` (AMSGrad).
    pub amsgrad: bool,
}

impl Adam {
    /// Adam with Keras' defaults: β1 0.9, β2 0.999, ε 1e-7.
    pub fn new(learning_rate: impl Into<LearningRate>) -> Self {
        Adam {
            state: OptimizerState::new(learning_rate.into()),
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
            amsgrad: false,
        }
    }

    /// Mutable access to clipping and schedule settings.
    pub fn state_mut(&mut self) -> &mut OptimizerState {
        &mut self.state
    }
}

impl Optimizer for Adam {
    fn state(&self) -> &OptimizerState {
        &self.state
    }

    fn uses_step(&self) -> bool {
        true
    }

    fn slot_names(&self) -> &'static [&'static str] {
        if self.amsgrad {
            &["m", "v", "vhat"]
        } else {
            &["m", "v"]
        }
    }

    fn update(&self, var: &Variable, grad: &Tensor, slots: &[Variable], lr: &Tensor, t: &Tensor) -> Result<()> {
        let (m, v) = (&slots[0], &slots[1]);
        let c = |x: f64| lr.scalar_like(x);
        let one = c(1.0);
        let b1 = c(self.beta_1);
        let b2 = c(self.beta_2);
        let b1_power = b1.pow(t)?;
        let b2_power = b2.pow(t)?;
        let alpha = lr.mul(&one.sub(&b2_power)?.sqrt()?)?.div(&one.sub(&b1_power)?)?;
        m.assign_add(&grad.sub(&m.read()?)?.mul(&one.sub(&b1)?)?)?;
        v.assign_add(&grad.square()?.sub(&v.read()?)?.mul(&one.sub(&b2)?)?)?;
        let mut second = v.read()?;
        if let Some(vhat) = slots.get(2) {
            second = vhat.read()?.maximum(&second)?;
            vhat.assign(&second)?;
        }
        var.assign_sub(&m.read()?.mul(&alpha)?.div(&second.sqrt()?.add(&c(self.epsilon))?)?)
    }
}

trackable_optimizer!(Adam);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_step_moves_by_about_the_learning_rate() {
        let w = Variable::new("w", Tensor::new([1.0f64, -1.0]), true).unwrap();
        let opt = Adam::new(0.01);
        opt.apply_gradients(&[(Tensor::new([0.5f64, -2.0]), w.clone())])
            .unwrap();
        // m = 0.1 g, v = 0.001 g², α = 0.01·sqrt(0.001)/0.1: w -= 0.01·g/(|g| + ε/sqrt(0.001))
        let got = w.value().to_vec::<f64>().unwrap();
        let eps_hat = 1e-7 / 0.001f64.sqrt();
        assert!((got[0] - (1.0 - 0.01 * 0.5 / (0.5 + eps_hat))).abs() < 1e-12);
        assert!((got[1] - (-1.0 + 0.01 * 2.0 / (2.0 + eps_hat))).abs() < 1e-12);
        let ams = Adam {
            amsgrad: true,
            ..Adam::new(0.01)
        };
        let u = Variable::new("u", Tensor::new([1.0f64]), true).unwrap();
        ams.apply_gradients(&[(Tensor::new([1.0f64]), u.clone())]).unwrap();
        ams.apply_gradients(&[(Tensor::new([0.0f64]), u.clone())]).unwrap();
        assert_eq!(ams.slot_names().len(), 3);
    }
}
