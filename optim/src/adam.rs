//! Adam (Keras 3's update rule, epsilon added to the raw second moment's square root after
//! the bias correction is folded into the step size; optional AMSGrad).

use crate::optimizer::{below_one, non_negative, trackable_optimizer, LearningRate, Optimizer, OptimizerState};
use ferroflow_tensor_core::{Result, Tensor, Variable};

/// `keras.optimizers.Adam`:
/// `m += (g - m)(1 - β1)`, `v += (g² - v)(1 - β2)`,
/// `α = lr·sqrt(1 - β2^t)/(1 - β1^t)`, `w -= m·α / (sqrt(v) + ε)`.
///
/// ```
/// use ferroflow_optim::{Adam, Optimizer};
/// use ferroflow_tensor_core::{Tensor, Variable};
/// let w = Variable::new("w", Tensor::new([1.0f64]))?;
/// let opt = Adam::new(0.01)?.with_beta_2(0.99)?.with_amsgrad(true);
/// opt.apply_gradients([(Tensor::new([0.5f64]), &w)])?;
/// assert!((w.value().to_scalar::<f64>()? - 0.99).abs() < 1e-5); // a first step of about lr
/// assert!(Adam::new(0.01)?.with_beta_1(1.5).is_err());
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
#[derive(Debug)]
pub struct Adam {
    state: OptimizerState,
    beta_1: f64,
    beta_2: f64,
    epsilon: f64,
    amsgrad: bool,
}

impl Adam {
    /// Adam with Keras' defaults: β1 0.9, β2 0.999, ε 1e-7. A learning rate that is negative
    /// or not finite is an error.
    pub fn new(learning_rate: impl Into<LearningRate>) -> Result<Self> {
        Ok(Adam {
            state: OptimizerState::new("Adam", learning_rate)?,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
            amsgrad: false,
        })
    }

    /// `keras.optimizers.AdamW`: Adam with decoupled weight decay, Keras' default of
    /// 0.004 (change it with [`Optimizer::with_weight_decay`]).
    ///
    /// ```
    /// use ferroflow_optim::{Adam, Optimizer};
    /// assert_eq!(Adam::adamw(0.001)?.state().weight_decay(), Some(0.004));
    /// assert_eq!(Adam::adamw(0.001)?.with_weight_decay(0.01)?.state().weight_decay(), Some(0.01));
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn adamw(learning_rate: impl Into<LearningRate>) -> Result<Self> {
        Adam::new(learning_rate)?.with_weight_decay(0.004)
    }

    /// The first-moment decay, in `[0, 1)` (Keras' `beta_1`; 1 would divide the bias
    /// correction by zero).
    pub fn with_beta_1(mut self, beta_1: f64) -> Result<Self> {
        below_one("Adam", "beta_1", beta_1)?;
        self.beta_1 = beta_1;
        Ok(self)
    }

    /// The second-moment decay, in `[0, 1)` (Keras' `beta_2`; 1 would freeze the second
    /// moment at zero and the step size with it).
    pub fn with_beta_2(mut self, beta_2: f64) -> Result<Self> {
        below_one("Adam", "beta_2", beta_2)?;
        self.beta_2 = beta_2;
        Ok(self)
    }

    /// The term added to `sqrt(v)`, finite and `>= 0` (Keras' `epsilon`).
    pub fn with_epsilon(mut self, epsilon: f64) -> Result<Self> {
        non_negative("Adam", "epsilon", epsilon)?;
        self.epsilon = epsilon;
        Ok(self)
    }

    /// Whether to use the running maximum of `v` (AMSGrad, Keras' `amsgrad`).
    pub fn with_amsgrad(mut self, amsgrad: bool) -> Self {
        self.amsgrad = amsgrad;
        self
    }

    /// `(beta_1, beta_2, epsilon, amsgrad)`.
    pub fn hyper_parameters(&self) -> (f64, f64, f64, bool) {
        (self.beta_1, self.beta_2, self.epsilon, self.amsgrad)
    }
}

impl Optimizer for Adam {
    fn state(&self) -> &OptimizerState {
        &self.state
    }

    fn state_mut(&mut self) -> &mut OptimizerState {
        &mut self.state
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
        let w = Variable::new("w", Tensor::new([1.0f64, -1.0])).unwrap();
        let opt = Adam::new(0.01).unwrap();
        opt.apply_gradients([(Tensor::new([0.5f64, -2.0]), &w)]).unwrap();
        // m = 0.1 g, v = 0.001 g², α = 0.01·sqrt(0.001)/0.1: w -= 0.01·g/(|g| + ε/sqrt(0.001))
        let got = w.value().to_vec::<f64>().unwrap();
        let eps_hat = 1e-7 / 0.001f64.sqrt();
        assert!((got[0] - (1.0 - 0.01 * 0.5 / (0.5 + eps_hat))).abs() < 1e-12);
        assert!((got[1] - (-1.0 + 0.01 * 2.0 / (2.0 + eps_hat))).abs() < 1e-12);
        let ams = Adam::new(0.01).unwrap().with_amsgrad(true);
        let u = Variable::new("u", Tensor::new([1.0f64])).unwrap();
        ams.apply_gradients([(Tensor::new([1.0f64]), &u)]).unwrap();
        ams.apply_gradients([(Tensor::new([0.0f64]), &u)]).unwrap();
        assert_eq!(ams.slot_names().len(), 3);
    }

    #[test]
    fn betas_of_one_are_rejected_naming_the_optimizer_and_value() {
        // β1 = 1 makes the bias correction 1/(1 - 1^t) infinite and the first step NaN.
        for err in [
            Adam::new(0.01).unwrap().with_beta_1(1.0).unwrap_err(),
            Adam::new(0.01).unwrap().with_beta_2(1.0).unwrap_err(),
        ] {
            let msg = err.to_string();
            assert!(
                msg.contains("Adam") && msg.contains("[0, 1)") && msg.contains("got 1"),
                "{msg}"
            );
        }
        assert!(Adam::new(0.01).unwrap().with_beta_1(f64::NAN).is_err());
        // Values just below 1 and 0 itself stay valid, and train to finite weights.
        let opt = Adam::new(0.01)
            .unwrap()
            .with_beta_1(0.0)
            .unwrap()
            .with_beta_2(0.9999)
            .unwrap();
        let w = Variable::new("w", Tensor::new([1.0f64])).unwrap();
        opt.apply_gradients([(Tensor::new([0.5f64]), &w)]).unwrap();
        assert!((w.value().to_scalar::<f64>().unwrap() - 0.99).abs() < 1e-5);
    }
}
