//! SGD with optional momentum and Nesterov momentum (Keras 3's update rule).

use crate::optimizer::{trackable_optimizer, unit_interval, LearningRate, Optimizer, OptimizerState};
use ferroflow_tensor_core::{Result, Tensor, Variable};

/// `keras.optimizers.SGD`: `w -= lr·g`; with momentum `m = momentum·m - lr·g`, `w += m`;
/// Nesterov `w += momentum·m - lr·g`.
///
/// ```
/// use ferroflow_optim::{Optimizer, Sgd};
/// use ferroflow_tensor_core::{Tensor, Variable};
/// let w = Variable::new("w", Tensor::new([1.0f64]))?;
/// let opt = Sgd::new(0.1)?.with_momentum(0.9)?.with_nesterov(true);
/// opt.apply_gradients([(Tensor::new([1.0f64]), &w)])?;
/// assert!((w.value().to_scalar::<f64>()? - 0.81).abs() < 1e-15); // m = -0.1; w += 0.9·m - 0.1
/// assert!(Sgd::new(f64::NAN).is_err());
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
#[derive(Debug)]
pub struct Sgd {
    state: OptimizerState,
    momentum: f64,
    nesterov: bool,
}

impl Sgd {
    /// Plain SGD with this learning rate (a constant or a schedule). A rate that is
    /// negative or not finite is an error.
    pub fn new(learning_rate: impl Into<LearningRate>) -> Result<Self> {
        Ok(Sgd {
            state: OptimizerState::new("SGD", learning_rate)?,
            momentum: 0.0,
            nesterov: false,
        })
    }

    /// With momentum in `[0, 1]` (Keras' `momentum`).
    pub fn with_momentum(mut self, momentum: f64) -> Result<Self> {
        unit_interval("SGD", "momentum", momentum)?;
        self.momentum = momentum;
        Ok(self)
    }

    /// With or without Nesterov momentum (Keras' `nesterov`).
    pub fn with_nesterov(mut self, nesterov: bool) -> Self {
        self.nesterov = nesterov;
        self
    }

    /// The momentum factor (0 for plain SGD).
    pub fn momentum(&self) -> f64 {
        self.momentum
    }

    /// Whether the momentum is Nesterov's.
    pub fn nesterov(&self) -> bool {
        self.nesterov
    }
}

impl Optimizer for Sgd {
    fn state(&self) -> &OptimizerState {
        &self.state
    }

    fn state_mut(&mut self) -> &mut OptimizerState {
        &mut self.state
    }

    fn slot_names(&self) -> &'static [&'static str] {
        if self.momentum > 0.0 {
            &["momentum"]
        } else {
            &[]
        }
    }

    fn update(&self, var: &Variable, grad: &Tensor, slots: &[Variable], lr: &Tensor, _t: &Tensor) -> Result<()> {
        let step = grad.mul(lr)?;
        let Some(m) = slots.first() else {
            return var.assign_sub(&step);
        };
        let momentum = lr.scalar_like(self.momentum);
        let new_m = m.read()?.mul(&momentum)?.sub(&step)?;
        m.assign(&new_m)?;
        if self.nesterov {
            var.assign_add(&new_m.mul(&momentum)?.sub(&step)?)
        } else {
            var.assign_add(&new_m)
        }
    }
}

trackable_optimizer!(Sgd);

#[cfg(test)]
mod tests {
    use super::*;
    use ferroflow_tensor_core::Trackable;

    #[test]
    fn momentum_update_by_hand() {
        let w = Variable::new("w", Tensor::new([1.0f64])).unwrap();
        let opt = Sgd::new(0.1).unwrap().with_momentum(0.9).unwrap();
        for _ in 0..2 {
            opt.apply_gradients([(Tensor::new([1.0f64]), &w)]).unwrap();
        }
        // m1 = -0.1, w = 0.9; m2 = -0.09 - 0.1 = -0.19, w = 0.71
        assert!((w.value().to_vec::<f64>().unwrap()[0] - 0.71).abs() < 1e-15);
        assert_eq!(opt.iterations().unwrap(), 2);
        let paths: Vec<String> = opt.variables_by_path().into_iter().map(|(p, _)| p).collect();
        assert_eq!(paths, vec!["iterations", "momentum/0"]);
        // Two variables with the same name still get distinct paths.
        let same = Variable::new("w", Tensor::new([2.0f64])).unwrap();
        opt.build(&[w.clone(), same]).unwrap();
        let paths: Vec<String> = opt.variables_by_path().into_iter().map(|(p, _)| p).collect();
        assert_eq!(paths, vec!["iterations", "momentum/0", "momentum/1"]);
        let n = Sgd::new(0.1).unwrap().with_momentum(0.9).unwrap().with_nesterov(true);
        let v = Variable::new("v", Tensor::new([1.0f64])).unwrap();
        n.apply_gradients([(Tensor::new([1.0f64]), &v)]).unwrap();
        // m = -0.1; w += 0.9·(-0.1) - 0.1 = -0.19
        assert!((v.value().to_vec::<f64>().unwrap()[0] - 0.81).abs() < 1e-15);
        assert!(n.apply_gradients([(Tensor::new([1.0f32]), v)]).is_err());
    }
}
