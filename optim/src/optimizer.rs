//! What every optimizer shares: the `iterations` counter, the learning rate (a constant or
//! a schedule), gradient clipping, lazily created slot variables, and `apply_gradients` /
//! `minimize`. Each optimizer supplies only its update rule.

use crate::schedules::LearningRateSchedule;
use ferroflow_autodiff::GradientTape;
use ferroflow_tensor_core::{DType, Error, Result, Tensor, Variable};
use std::cell::RefCell;
use std::rc::Rc;

/// A learning rate: a constant, or a schedule of the step.
#[derive(Debug, Clone)]
pub enum LearningRate {
    /// The same rate at every step.
    Constant(f64),
    /// A rate computed from `iterations` at each step.
    Schedule(Rc<dyn LearningRateSchedule>),
}

impl From<f64> for LearningRate {
    fn from(v: f64) -> Self {
        LearningRate::Constant(v)
    }
}

/// Gradient clipping applied before the update, as Keras' optimizer arguments.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Clipping {
    /// Rescale each gradient whose L2 norm exceeds this.
    pub clipnorm: Option<f64>,
    /// Clip each gradient element to `[-v, v]`.
    pub clipvalue: Option<f64>,
    /// Rescale all gradients together when their global L2 norm exceeds this.
    pub global_clipnorm: Option<f64>,
}

/// The state shared by all optimizers.
#[derive(Debug)]
pub struct OptimizerState {
    /// Steps applied so far (int64 scalar), `optimizer.iterations`.
    pub iterations: Variable,
    /// The learning rate.
    pub learning_rate: LearningRate,
    /// Gradient clipping.
    pub clipping: Clipping,
    /// `(variable id, slot name, slot variable)`, in creation order.
    slots: RefCell<Vec<(u64, String, Variable)>>,
    /// Constant rates already made, per dtype, with the value they were made from: a step
    /// reuses them instead of building a scalar tensor per dtype per step.
    rates: RefCell<Vec<(DType, f64, Tensor)>>,
    /// The int64 `1` added to `iterations` each step.
    one: Tensor,
}

impl OptimizerState {
    /// State with a zero step counter.
    pub fn new(learning_rate: LearningRate) -> Self {
        OptimizerState {
            iterations: Variable::new("iterations", Tensor::scalar(0i64), false).expect("an eager scalar"),
            learning_rate,
            clipping: Clipping::default(),
            slots: RefCell::new(Vec::new()),
            rates: RefCell::new(Vec::new()),
            one: Tensor::scalar(1i64),
        }
    }

    /// The slot variables of `var` named `names`, created as zeros (or `init`) on first use.
    pub fn slots_for(&self, var: &Variable, names: &[&str], init: f64) -> Result<Vec<Variable>> {
        let mut slots = self.slots.borrow_mut();
        names
            .iter()
            .map(|name| {
                if let Some((_, _, s)) = slots.iter().find(|(id, n, _)| *id == var.id() && n == name) {
                    return Ok(s.clone());
                }
                let zeros = Tensor::fill(var.shape().dims(), init, var.dtype());
                let s = Variable::new(format!("{name}/{}", var.name()), zeros, false)?;
                slots.push((var.id(), name.to_string(), s.clone()));
                Ok(s)
            })
            .collect()
    }

    /// The learning rate for this step, as a scalar of `dtype`.
    pub fn current_rate(&self, dtype: DType) -> Result<Tensor> {
        match &self.learning_rate {
            LearningRate::Constant(v) => {
                let mut rates = self.rates.borrow_mut();
                if let Some((_, _, t)) = rates.iter().find(|(d, r, _)| *d == dtype && r.to_bits() == v.to_bits()) {
                    return Ok(t.clone());
                }
                let t = Tensor::fill(&[], *v, dtype);
                rates.retain(|(d, _, _)| *d != dtype);
                rates.push((dtype, *v, t.clone()));
                Ok(t)
            }
            LearningRate::Schedule(s) => s.rate(&self.iterations.read()?)?.cast(dtype),
        }
    }

    fn clip(&self, grads: Vec<Tensor>) -> Result<Vec<Tensor>> {
        let c = self.clipping;
        let mut grads = grads;
        if let Some(v) = c.clipvalue {
            grads = grads.iter().map(|g| g.clip_by_value(-v, v)).collect::<Result<_>>()?;
        }
        if let Some(n) = c.clipnorm {
            grads = grads
                .iter()
                .map(|g| {
                    let norm = g.square()?.reduce_sum(None, false)?.sqrt()?;
                    g.mul(&g.scalar_like(n))?.div(&norm.maximum(&g.scalar_like(n))?)
                })
                .collect::<Result<_>>()?;
        }
        if let Some(n) = c.global_clipnorm {
            if let Some(first) = grads.first() {
                let mut total = first.scalar_like(0.0);
                for g in &grads {
                    total = total.add(&g.square()?.reduce_sum(None, false)?.cast(first.dtype())?)?;
                }
                let norm = total.sqrt()?;
                let scale = first.scalar_like(n).div(&norm.maximum(&first.scalar_like(n))?)?;
                grads = grads
                    .iter()
                    .map(|g| g.mul(&scale.cast(g.dtype())?))
                    .collect::<Result<_>>()?;
            }
        }
        Ok(grads)
    }
}

/// An optimizer: an update rule over the shared [`OptimizerState`].
pub trait Optimizer {
    /// The shared state.
    fn state(&self) -> &OptimizerState;

    /// Slot names kept per variable (`["momentum"]`, `["m", "v"]`, ...).
    fn slot_names(&self) -> &'static [&'static str];

    /// Whether [`Optimizer::update`] reads the step number `t` (Adam does; skipping it saves
    /// two ops per variable for the others).
    fn uses_step(&self) -> bool {
        false
    }

    /// Initial value of the slots (0 for most; Adagrad's accumulator starts at 0.1).
    fn slot_init(&self) -> f64 {
        0.0
    }

    /// One update of `var` from `grad`, with its slots, the learning rate and the 1-based
    /// step number `t` (meaningful only when [`Optimizer::uses_step`]), both scalars of the variable's
    /// dtype. Written with tensor ops and
    /// assigns, so it runs eagerly and traces.
    fn update(&self, var: &Variable, grad: &Tensor, slots: &[Variable], lr: &Tensor, t: &Tensor) -> Result<()>;

    /// Creates the slot variables of `vars` now, in this order (`optimizer.build(vars)`), so
    /// the optimizer's state exists before the first step, e.g. to restore it from a
    /// checkpoint. Variables already seen keep their slots.
    fn build(&self, vars: &[Variable]) -> Result<()> {
        for v in vars {
            self.state().slots_for(v, self.slot_names(), self.slot_init())?;
        }
        Ok(())
    }

    /// Applies one step (`optimizer.apply_gradients(zip(grads, vars))`): clips, updates
    /// every variable, then increments `iterations`.
    fn apply_gradients(&self, grads_and_vars: &[(Tensor, Variable)]) -> Result<()> {
        let st = self.state();
        for (g, v) in grads_and_vars {
            if g.dtype() != v.dtype() || g.dims() != v.shape().dims() {
                return Err(Error::shapes(
                    "apply_gradients",
                    &[&g.shape(), v.shape()],
                    format!("gradient does not match variable '{}'", v.name()),
                ));
            }
        }
        // Without clipping the gradients are used as given (no copy of the list).
        let clipped;
        let grads: Vec<&Tensor> = if st.clipping == Clipping::default() {
            grads_and_vars.iter().map(|(g, _)| g).collect()
        } else {
            clipped = st.clip(grads_and_vars.iter().map(|(g, _)| g.clone()).collect())?;
            clipped.iter().collect()
        };
        // The rate and step number are made once per dtype, not once per variable.
        let step = if self.uses_step() {
            Some(st.iterations.read()?.add(&st.one)?)
        } else {
            None
        };
        let mut per_dtype: Vec<(DType, Tensor, Tensor)> = Vec::new();
        for (g, (_, v)) in grads.iter().zip(grads_and_vars) {
            let dtype = v.dtype();
            if !per_dtype.iter().any(|(d, _, _)| *d == dtype) {
                let lr = st.current_rate(dtype)?;
                // `t` is only read by optimizers that use the step; the others get the rate
                // as a stand-in rather than a freshly made zero.
                let t = match &step {
                    Some(s) => s.cast(dtype)?,
                    None => lr.clone(),
                };
                per_dtype.push((dtype, lr, t));
            }
            let (_, lr, t) = per_dtype.iter().find(|(d, _, _)| *d == dtype).expect("just added");
            let slots = st.slots_for(v, self.slot_names(), self.slot_init())?;
            self.update(v, g, &slots, lr, t)?;
        }
        st.iterations.assign_add(&st.one)
    }

    /// Computes `loss_fn()` under a tape and applies its gradients to `vars`
    /// (`optimizer.minimize`). Returns the loss.
    fn minimize(&self, loss_fn: &dyn Fn() -> Result<Tensor>, vars: &[Variable]) -> Result<Tensor> {
        let tape = GradientTape::new();
        let loss = loss_fn()?;
        let refs: Vec<&Variable> = vars.iter().collect();
        let grads = tape.gradient_vars(&loss, &refs)?;
        let pairs: Vec<(Tensor, Variable)> = grads
            .into_iter()
            .zip(vars)
            .filter_map(|(g, v)| g.map(|g| (g, v.clone())))
            .collect();
        self.apply_gradients(&pairs)?;
        Ok(loss)
    }

    /// Steps applied so far.
    fn iterations(&self) -> Result<i64> {
        self.state().iterations.value().to_scalar::<i64>()
    }
}

/// Optimizer state as trackable variables: `iterations`, then `<slot>/<k>` in creation order,
/// where `k` numbers the optimized variables in the order the optimizer first saw them (Keras
/// 3 numbers its `_variables` the same way). Indices rather than names keep the paths unique
/// when two layers both call their kernel `w`; [`Optimizer::build`] fixes the order up front so
/// a fresh optimizer has the paths a checkpoint needs.
pub fn optimizer_variables(state: &OptimizerState) -> Vec<(String, Variable)> {
    let mut out = vec![("iterations".to_string(), state.iterations.clone())];
    let mut order: Vec<u64> = Vec::new();
    for (id, slot, v) in state.slots.borrow().iter() {
        let k = order.iter().position(|i| i == id).unwrap_or_else(|| {
            order.push(*id);
            order.len() - 1
        });
        out.push((format!("{slot}/{k}"), v.clone()));
    }
    out
}

/// Implements [`Trackable`] for an optimizer type through [`optimizer_variables`].
macro_rules! trackable_optimizer {
    ($t:ty) => {
        impl ferroflow_tensor_core::Trackable for $t {
            fn variables_by_path(&self) -> Vec<(String, ferroflow_tensor_core::Variable)> {
                $crate::optimizer::optimizer_variables(self.state())
            }
        }
    };
}
pub(crate) use trackable_optimizer;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedules::PiecewiseConstantDecay;
    use crate::Sgd;

    fn step(opt: &Sgd, g: Tensor) -> Vec<f64> {
        let w = Variable::new("w", Tensor::zeros(g.dims(), DType::F64), true).unwrap();
        opt.apply_gradients(&[(g, w.clone())]).unwrap();
        w.value().to_vec::<f64>().unwrap()
    }

    #[test]
    fn clipping_follows_keras() {
        let g = Tensor::new([3.0f64, 4.0]); // norm 5
        let mut opt = Sgd::new(1.0);
        opt.state_mut().clipping.clipnorm = Some(1.0);
        assert_eq!(step(&opt, g.clone()), vec![-0.6, -0.8]);
        let mut opt = Sgd::new(1.0);
        opt.state_mut().clipping.clipvalue = Some(3.5);
        assert_eq!(step(&opt, g.clone()), vec![-3.0, -3.5]);
        let mut opt = Sgd::new(1.0);
        opt.state_mut().clipping.global_clipnorm = Some(10.0);
        assert_eq!(step(&opt, g), vec![-3.0, -4.0], "under the global norm: unchanged");
    }

    #[test]
    fn schedules_read_the_step_counter() {
        let sched = PiecewiseConstantDecay {
            boundaries: vec![0],
            values: vec![1.0, 0.5],
        };
        let opt = Sgd::new(LearningRate::Schedule(Rc::new(sched)));
        let w = Variable::new("w", Tensor::new([0.0f64]), true).unwrap();
        opt.apply_gradients(&[(Tensor::new([1.0f64]), w.clone())]).unwrap();
        opt.apply_gradients(&[(Tensor::new([1.0f64]), w.clone())]).unwrap();
        assert_eq!(w.value().to_vec::<f64>().unwrap(), vec![-1.5]);
    }
}
