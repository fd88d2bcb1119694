//! What every optimizer shares: the `iterations` counter, the learning rate (a constant or
//! a schedule), gradient clipping, lazily created slot variables, and `apply_gradients` /
//! `minimize`. Each optimizer supplies only its update rule.

use crate::schedules::LearningRateSchedule;
use ferroflow_autodiff::GradientTape;
use ferroflow_tensor_core::{Axes, DType, Device, Error, Result, Tensor, Variable};
use std::borrow::Borrow;
use std::cell::RefCell;
use std::sync::Arc;

/// A learning rate: a constant, or a schedule of the step. Converts from an `f64` and from
/// any [`LearningRateSchedule`], so optimizers take either: `Sgd::new(0.1)`,
/// `Sgd::new(ExponentialDecay { .. })`.
#[derive(Debug, Clone)]
pub enum LearningRate {
    /// The same rate at every step.
    Constant(f64),
    /// A rate computed from `iterations` at each step.
    Schedule(Arc<dyn LearningRateSchedule + Send + Sync>),
}

impl From<f64> for LearningRate {
    fn from(v: f64) -> Self {
        LearningRate::Constant(v)
    }
}

impl<S: LearningRateSchedule + Send + Sync + 'static> From<S> for LearningRate {
    fn from(schedule: S) -> Self {
        LearningRate::Schedule(Arc::new(schedule))
    }
}

impl LearningRate {
    /// A finite, non-negative constant, or a schedule whose parameters are valid.
    fn check(&self, op: &'static str) -> Result<()> {
        match self {
            LearningRate::Constant(v) => non_negative(op, "learning_rate", *v),
            LearningRate::Schedule(s) => s.validate(),
        }
    }
}

/// `value` must be finite and at least 0 (hyper-parameters: rates, epsilons, momenta).
pub(crate) fn non_negative(op: &'static str, name: &str, value: f64) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(
            op,
            format!("{name} must be finite and >= 0, got {value}"),
        ))
    }
}

/// `value` must lie in `[0, 1]` (decay factors: momentum, betas, rho).
pub(crate) fn unit_interval(op: &'static str, name: &str, value: f64) -> Result<()> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(Error::invalid(op, format!("{name} must be in [0, 1], got {value}")))
    }
}

/// `value` must lie in `[0, 1)`: decay factors whose bias correction divides by
/// `1 - value^t` (Adam's betas), where 1 gives NaN weights after one step.
pub(crate) fn below_one(op: &'static str, name: &str, value: f64) -> Result<()> {
    if (0.0..1.0).contains(&value) {
        Ok(())
    } else {
        Err(Error::invalid(op, format!("{name} must be in [0, 1), got {value}")))
    }
}

/// `value` must be finite and above 0 (clipping thresholds).
fn positive(op: &'static str, name: &str, value: f64) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(
            op,
            format!("{name} must be finite and > 0, got {value}"),
        ))
    }
}

/// Gradient clipping applied before the update, as Keras' optimizer arguments; set through
/// [`Optimizer::with_clipnorm`], [`Optimizer::with_clipvalue`] or
/// [`Optimizer::with_global_clipnorm`]. As in Keras, at most one of the three can be set.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Clipping {
    /// Rescale each gradient whose L2 norm exceeds this.
    pub clipnorm: Option<f64>,
    /// Clip each gradient element to `[-v, v]`.
    pub clipvalue: Option<f64>,
    /// Rescale all gradients together when their global L2 norm exceeds this.
    pub global_clipnorm: Option<f64>,
}

impl Clipping {
    /// `self` when at most one threshold is set, else Keras' error naming all three.
    fn only_one(self, op: &'static str) -> Result<Clipping> {
        let set = [self.clipnorm, self.clipvalue, self.global_clipnorm];
        if set.iter().filter(|v| v.is_some()).count() <= 1 {
            return Ok(self);
        }
        Err(Error::invalid(
            op,
            format!(
                "only one of clipnorm, clipvalue and global_clipnorm can be set, got clipnorm={:?}, \
                 clipvalue={:?}, global_clipnorm={:?}",
                self.clipnorm, self.clipvalue, self.global_clipnorm
            ),
        ))
    }
}

/// The state shared by all optimizers: the step counter, the learning rate, clipping and the
/// slot variables.
#[derive(Debug)]
pub struct OptimizerState {
    /// Steps applied so far (int64 scalar), `optimizer.iterations`.
    iterations: Variable,
    learning_rate: RefCell<LearningRate>,
    clipping: Clipping,
    /// Keras' `weight_decay`: each step first shrinks every variable by `lr·weight_decay`
    /// of itself (decoupled weight decay, AdamW's rule, for any optimizer).
    weight_decay: Option<f64>,
    /// Variables (by id) and name fragments left out of the weight decay.
    decay_excluded: RefCell<(Vec<u64>, Vec<String>)>,
    /// Whether a step or `build` has run: what is excluded from the weight decay is fixed
    /// from then on (a traced step has it in its graph).
    built: std::cell::Cell<bool>,
    /// `(variable id, slot name, slot variable)`, in creation order.
    slots: RefCell<Vec<(u64, String, Variable)>>,
    /// A constant rate as a variable per dtype of the optimized variables (as Keras keeps
    /// `learning_rate` in a variable): a traced step reads it, so a callback that changes
    /// the rate changes what the next step of a compiled graph uses.
    rates: RefCell<Vec<(DType, Variable)>>,
    /// The int64 `1` added to `iterations` each step.
    one: Tensor,
}

impl OptimizerState {
    /// State with a zero step counter; `op` names the optimizer in the error for a learning
    /// rate that is negative, not finite, or an invalid schedule.
    pub fn new(op: &'static str, learning_rate: impl Into<LearningRate>) -> Result<Self> {
        let learning_rate = learning_rate.into();
        learning_rate.check(op)?;
        Ok(OptimizerState {
            iterations: Variable::non_trainable("iterations", Tensor::scalar(0i64))?,
            learning_rate: RefCell::new(learning_rate),
            clipping: Clipping::default(),
            weight_decay: None,
            decay_excluded: RefCell::new((Vec::new(), Vec::new())),
            built: std::cell::Cell::new(false),
            slots: RefCell::new(Vec::new()),
            rates: RefCell::new(Vec::new()),
            one: Tensor::scalar(1i64),
        })
    }

    /// `optimizer.iterations`: the int64 step counter.
    pub fn iterations(&self) -> &Variable {
        &self.iterations
    }

    /// The learning rate: a constant or a schedule.
    pub fn learning_rate(&self) -> LearningRate {
        self.learning_rate.borrow().clone()
    }

    /// The learning-rate variables made so far (one per dtype of the optimized variables).
    pub fn rate_variables(&self) -> Vec<Variable> {
        self.rates.borrow().iter().map(|(_, v)| v.clone()).collect()
    }

    /// The rate the next step uses: the constant, or the schedule at the current step.
    pub fn learning_rate_value(&self) -> Result<f64> {
        let lr = self.learning_rate();
        match lr {
            LearningRate::Constant(v) => Ok(v),
            LearningRate::Schedule(s) => s.rate(&self.iterations.read()?)?.cast(DType::F64)?.to_scalar::<f64>(),
        }
    }

    /// Sets a constant learning rate (`optimizer.learning_rate = lr`), also for graphs
    /// already traced. A rate given as a schedule cannot be set, as in Keras.
    pub fn set_learning_rate(&self, lr: f64) -> Result<()> {
        if let LearningRate::Schedule(_) = &*self.learning_rate.borrow() {
            return Err(Error::invalid(
                "set_learning_rate",
                "the learning rate is a schedule; it cannot be set to a constant",
            ));
        }
        non_negative("set_learning_rate", "learning_rate", lr)?;
        *self.learning_rate.borrow_mut() = LearningRate::Constant(lr);
        for (dtype, var) in self.rates.borrow().iter() {
            var.assign(&Tensor::fill(&[], lr, *dtype)?)?;
        }
        Ok(())
    }

    /// The clipping applied before each update.
    pub fn clipping(&self) -> Clipping {
        self.clipping
    }

    /// The weight decay applied before each update (Keras' `weight_decay`), if any.
    pub fn weight_decay(&self) -> Option<f64> {
        self.weight_decay
    }

    /// Whether the weight decay shrinks `var`: it is set, and neither `var` nor a name
    /// fragment was excluded (Keras' `_use_weight_decay`).
    fn decays(&self, var: &Variable) -> bool {
        let (ids, names) = &*self.decay_excluded.borrow();
        self.weight_decay.is_some()
            && !ids.contains(&var.id())
            && !names.iter().any(|n| var.name().contains(n.as_str()))
    }

    /// The slot variables of `var` named `names`, created as zeros (or `init`) on first use.
    pub fn slots_for(&self, var: &Variable, names: &[&str], init: f64) -> Result<Vec<Variable>> {
        self.built.set(true);
        let mut slots = self.slots.borrow_mut();
        names
            .iter()
            .map(|name| {
                if let Some((_, _, s)) = slots.iter().find(|(id, n, _)| *id == var.id() && n == name) {
                    return Ok(s.clone());
                }
                // Slots live where their variable does.
                let zeros = Tensor::fill(var.shape().dims(), init, var.dtype())?.to(var.device())?;
                let s = Variable::non_trainable(format!("{name}/{}", var.name()), zeros)?;
                slots.push((var.id(), name.to_string(), s.clone()));
                Ok(s)
            })
            .collect()
    }

    /// The learning rate for this step, as a scalar of `dtype`.
    pub fn current_rate(&self, dtype: DType) -> Result<Tensor> {
        let lr = self.learning_rate();
        match lr {
            LearningRate::Constant(v) => {
                let mut rates = self.rates.borrow_mut();
                if let Some((_, var)) = rates.iter().find(|(d, _)| *d == dtype) {
                    return var.read();
                }
                let var = Variable::non_trainable("learning_rate", Tensor::fill(&[], v, dtype)?)?;
                let device = self.iterations.device();
                if !device.is_cpu() {
                    var.to_device(device)?;
                }
                rates.push((dtype, var.clone()));
                var.read()
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
                    let norm = g.square()?.reduce_sum(Axes::All)?.sqrt()?;
                    g.mul(&g.scalar_like(n))?.div(&norm.maximum(&g.scalar_like(n))?)
                })
                .collect::<Result<_>>()?;
        }
        if let Some(n) = c.global_clipnorm {
            if let Some(first) = grads.first() {
                let mut total = first.scalar_like(0.0);
                for g in &grads {
                    total = total.add(&g.square()?.reduce_sum(Axes::All)?.cast(first.dtype())?)?;
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

    /// The index in `per_dtype` of `dtype`'s learning rate and step number, made on first
    /// use: once per dtype, not once per variable.
    fn rate_and_step(
        &self,
        per_dtype: &mut Vec<(DType, Tensor, Tensor)>,
        dtype: DType,
        step: &Option<Tensor>,
    ) -> Result<usize> {
        if let Some(i) = per_dtype.iter().position(|(d, _, _)| *d == dtype) {
            return Ok(i);
        }
        let lr = self.current_rate(dtype)?;
        // `t` is only read by optimizers that use the step; the others get the rate as a
        // stand-in rather than a freshly made zero.
        let t = match step {
            Some(s) => s.cast(dtype)?,
            None => lr.clone(),
        };
        per_dtype.push((dtype, lr, t));
        Ok(per_dtype.len() - 1)
    }

    /// Keeps the step counter and the learning-rate variables on `device`, where the
    /// variables they update live (slots are made there too), so that a step on a GPU
    /// reads and writes no host memory and a traced step can be captured whole.
    fn follow(&self, device: Device) -> Result<()> {
        if self.iterations.device() != device {
            self.iterations.to_device(device)?;
        }
        for (_, v) in self.rates.borrow().iter() {
            if v.device() != device {
                v.to_device(device)?;
            }
        }
        Ok(())
    }

    /// One step: checks every pair, clips, updates each variable through `opt`, then
    /// increments `iterations`.
    fn apply<O: Optimizer + ?Sized>(&self, opt: &O, pairs: &[(&Tensor, &Variable)]) -> Result<()> {
        if let Some((_, first)) = pairs.first() {
            self.follow(first.device())?;
        }
        for (g, v) in pairs {
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
        let grads: Vec<&Tensor> = if self.clipping == Clipping::default() {
            pairs.iter().map(|(g, _)| *g).collect()
        } else {
            clipped = self.clip(pairs.iter().map(|(g, _)| (*g).clone()).collect())?;
            clipped.iter().collect()
        };
        // The rate and step number are made once per dtype, not once per variable.
        let step = if opt.uses_step() {
            Some(self.iterations.read()?.add(&self.one)?)
        } else {
            None
        };
        let mut per_dtype: Vec<(DType, Tensor, Tensor)> = Vec::new();
        // Keras decays every variable before it updates any, at this step's rate.
        if let Some(wd) = self.weight_decay {
            for (_, v) in pairs.iter().filter(|(_, v)| self.decays(v)) {
                let index = self.rate_and_step(&mut per_dtype, v.dtype(), &step)?;
                let lr = &per_dtype[index].1;
                let value = v.read()?;
                // `v - v·wd·lr`, in Keras' order of operations.
                v.assign(&value.sub(&value.mul(&lr.scalar_like(wd))?.mul(lr)?)?)?;
            }
        }
        for (g, (_, v)) in grads.iter().zip(pairs) {
            let index = self.rate_and_step(&mut per_dtype, v.dtype(), &step)?;
            let (_, lr, t) = &per_dtype[index];
            let slots = self.slots_for(v, opt.slot_names(), opt.slot_init())?;
            opt.update(v, g, &slots, lr, t)?;
        }
        self.iterations.assign_add(&self.one)
    }
}

/// An optimizer: an update rule over the shared [`OptimizerState`].
///
/// ```
/// use ferroflow_autodiff::GradientTape;
/// use ferroflow_optim::{Optimizer, Sgd};
/// use ferroflow_tensor_core::{Tensor, Variable};
///
/// let w = Variable::new("w", Tensor::new([1.0f32, -1.0]))?;
/// let b = Variable::new("b", Tensor::new([0.5f32]))?;
/// let opt = Sgd::new(0.1)?;
/// let tape = GradientTape::new();
/// let loss = w.read()?.square()?.reduce_sum(0)?.add(&b.read()?)?;
/// let [dw, db] = tape.gradient(&loss, [&w, &b])?;
/// opt.apply_gradients([(dw, &w), (db, &b)])?; // optimizer.apply_gradients(zip(grads, vars))
/// assert_eq!(w.value().to_vec::<f32>()?, vec![0.8, -0.8]);
/// assert_eq!(opt.iterations()?, 1);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
pub trait Optimizer {
    /// The shared state.
    fn state(&self) -> &OptimizerState;

    /// The shared state, to change its settings (clipping) through the `with_*` builders.
    fn state_mut(&mut self) -> &mut OptimizerState;

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
    /// step number `t` (meaningful only when [`Optimizer::uses_step`]), both scalars of the
    /// variable's dtype. Written with tensor ops and assigns, so it runs eagerly and traces.
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

    /// One step over `(gradient, variable)` pairs: clips, updates every variable, then
    /// increments `iterations`. The object-safe form of [`Optimizer::apply_gradients`].
    fn apply_gradient_pairs(&self, pairs: &[(&Tensor, &Variable)]) -> Result<()> {
        self.state().apply(self, pairs)
    }

    /// Applies one step (`optimizer.apply_gradients(zip(grads, vars))`): any pairs of a
    /// gradient and its variable, owned or borrowed: `zip(&grads, &vars)`,
    /// `[(dw, &w), (db, &b)]`, or the pairs of [`GradientTape::connected_gradients`].
    fn apply_gradients<I, G, V>(&self, grads_and_vars: I) -> Result<()>
    where
        Self: Sized,
        I: IntoIterator<Item = (G, V)>,
        G: Borrow<Tensor>,
        V: Borrow<Variable>,
    {
        let owned: Vec<(G, V)> = grads_and_vars.into_iter().collect();
        let pairs: Vec<(&Tensor, &Variable)> = owned.iter().map(|(g, v)| (g.borrow(), v.borrow())).collect();
        self.apply_gradient_pairs(&pairs)
    }

    /// Computes `loss_fn()` under a tape and applies its gradients to `vars`
    /// (`optimizer.minimize`); variables the loss does not depend on are left alone, as in
    /// Keras. Returns the loss.
    fn minimize(&self, loss_fn: &dyn Fn() -> Result<Tensor>, vars: &[Variable]) -> Result<Tensor> {
        let tape = GradientTape::new();
        let loss = loss_fn()?;
        let pairs = tape.connected_gradients(&loss, vars)?;
        let refs: Vec<(&Tensor, &Variable)> = pairs.iter().map(|(g, v)| (g, v)).collect();
        self.apply_gradient_pairs(&refs)?;
        Ok(loss)
    }

    /// Steps applied so far.
    fn iterations(&self) -> Result<i64> {
        self.state().iterations.value().to_scalar::<i64>()
    }

    /// The learning rate the next step uses (`float(optimizer.learning_rate)`).
    fn learning_rate(&self) -> Result<f64> {
        self.state().learning_rate_value()
    }

    /// Sets a constant learning rate (`optimizer.learning_rate = lr`); graphs traced before
    /// use it from their next call.
    fn set_learning_rate(&self, lr: f64) -> Result<()> {
        self.state().set_learning_rate(lr)
    }

    /// Rescales each gradient whose L2 norm exceeds `clipnorm` (Keras' `clipnorm`).
    fn with_clipnorm(mut self, clipnorm: f64) -> Result<Self>
    where
        Self: Sized,
    {
        positive("clipnorm", "clipnorm", clipnorm)?;
        let mut c = self.state().clipping;
        c.clipnorm = Some(clipnorm);
        self.state_mut().clipping = c.only_one("clipnorm")?;
        Ok(self)
    }

    /// Clips each gradient element to `[-clipvalue, clipvalue]` (Keras' `clipvalue`).
    fn with_clipvalue(mut self, clipvalue: f64) -> Result<Self>
    where
        Self: Sized,
    {
        positive("clipvalue", "clipvalue", clipvalue)?;
        let mut c = self.state().clipping;
        c.clipvalue = Some(clipvalue);
        self.state_mut().clipping = c.only_one("clipvalue")?;
        Ok(self)
    }

    /// Decoupled weight decay (Keras' `weight_decay`, AdamW's rule for any optimizer): each
    /// step first sets every variable `w` to `w - w·weight_decay·lr`, at the step's learning
    /// rate, then applies the update. `weight_decay` must be finite and `>= 0`.
    ///
    /// ```
    /// use ferroflow_optim::{Optimizer, Sgd};
    /// use ferroflow_tensor_core::{Tensor, Variable};
    /// let w = Variable::new("kernel", Tensor::new([1.0f64, 2.0]))?;
    /// let opt = Sgd::new(0.5)?.with_weight_decay(0.1)?;
    /// opt.apply_gradients([(Tensor::new([0.0f64, 1.0]), &w)])?;
    /// // w·(1 - 0.1·0.5), then w -= 0.5·g.
    /// assert_eq!(w.value().to_vec::<f64>()?, vec![0.95, 1.4]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    fn with_weight_decay(mut self, weight_decay: f64) -> Result<Self>
    where
        Self: Sized,
    {
        non_negative("weight_decay", "weight_decay", weight_decay)?;
        self.state_mut().weight_decay = Some(weight_decay);
        Ok(self)
    }

    /// Leaves `vars`, and every variable whose name contains one of `var_names`, out of the
    /// weight decay (Keras' `exclude_from_weight_decay(var_list, var_names)`; Keras reads
    /// the names as regular expressions, here they are plain fragments). Replaces what an
    /// earlier call excluded. As in Keras, only before the optimizer is built (its first
    /// step or [`Optimizer::build`]); after that it is an error, since a traced step keeps
    /// what it was traced with.
    ///
    /// ```
    /// use ferroflow_optim::{Adam, Optimizer};
    /// use ferroflow_tensor_core::{Tensor, Variable};
    /// let b = Variable::new("dense/bias", Tensor::new([1.0f32]))?;
    /// let opt = Adam::adamw(0.1)?;
    /// opt.exclude_from_weight_decay(&[], &["bias"])?;
    /// opt.apply_gradients([(Tensor::new([0.0f32]), &b)])?;
    /// assert_eq!(b.value().to_vec::<f32>()?, vec![1.0]);
    /// assert!(opt.exclude_from_weight_decay(&[], &["kernel"]).is_err());
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    fn exclude_from_weight_decay(&self, vars: &[Variable], var_names: &[&str]) -> Result<()> {
        let state = self.state();
        if state.built.get() {
            return Err(Error::invalid(
                "exclude_from_weight_decay",
                "can only be configured before the optimizer is built (its first step or build())",
            ));
        }
        *state.decay_excluded.borrow_mut() = (
            vars.iter().map(Variable::id).collect(),
            var_names.iter().map(|n| n.to_string()).collect(),
        );
        Ok(())
    }

    /// Rescales all gradients together when their global L2 norm exceeds `global_clipnorm`
    /// (Keras' `global_clipnorm`).
    fn with_global_clipnorm(mut self, global_clipnorm: f64) -> Result<Self>
    where
        Self: Sized,
    {
        positive("global_clipnorm", "global_clipnorm", global_clipnorm)?;
        let mut c = self.state().clipping;
        c.global_clipnorm = Some(global_clipnorm);
        self.state_mut().clipping = c.only_one("global_clipnorm")?;
        Ok(self)
    }
}

/// A boxed or borrowed optimizer is an optimizer: code holding a `Box<dyn Optimizer>`
/// (a Keras model's `compile`) calls the same methods.
macro_rules! forward_optimizer {
    ($($t:ty),*) => {$(
        impl<O: Optimizer + ?Sized> Optimizer for $t {
            fn state(&self) -> &OptimizerState {
                (**self).state()
            }
            fn state_mut(&mut self) -> &mut OptimizerState {
                (**self).state_mut()
            }
            fn slot_names(&self) -> &'static [&'static str] {
                (**self).slot_names()
            }
            fn uses_step(&self) -> bool {
                (**self).uses_step()
            }
            fn slot_init(&self) -> f64 {
                (**self).slot_init()
            }
            fn update(&self, var: &Variable, grad: &Tensor, slots: &[Variable], lr: &Tensor, t: &Tensor) -> Result<()> {
                (**self).update(var, grad, slots, lr, t)
            }
            // Forwarded too, so a wrapper that overrides them (a distributed optimizer
            // reducing gradients first) keeps doing so behind a box.
            fn build(&self, vars: &[Variable]) -> Result<()> {
                (**self).build(vars)
            }
            fn apply_gradient_pairs(&self, pairs: &[(&Tensor, &Variable)]) -> Result<()> {
                (**self).apply_gradient_pairs(pairs)
            }
        }
    )*};
}
forward_optimizer!(Box<O>, &mut O);

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

/// The state's variables are the optimizer's: a checkpoint can track `optimizer.state()` of
/// any optimizer, boxed or not.
impl ferroflow_tensor_core::Trackable for OptimizerState {
    fn variables_by_path(&self) -> Vec<(String, Variable)> {
        optimizer_variables(self)
    }
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
        let w = Variable::new("w", Tensor::zeros(g.dims(), DType::F64).unwrap()).unwrap();
        opt.apply_gradients([(g, &w)]).unwrap();
        w.value().to_vec::<f64>().unwrap()
    }

    #[test]
    fn clipping_follows_keras() {
        let g = Tensor::new([3.0f64, 4.0]); // norm 5
        let opt = Sgd::new(1.0).unwrap().with_clipnorm(1.0).unwrap();
        assert_eq!(step(&opt, g.clone()), vec![-0.6, -0.8]);
        let opt = Sgd::new(1.0).unwrap().with_clipvalue(3.5).unwrap();
        assert_eq!(step(&opt, g.clone()), vec![-3.0, -3.5]);
        let opt = Sgd::new(1.0).unwrap().with_global_clipnorm(10.0).unwrap();
        assert_eq!(step(&opt, g), vec![-3.0, -4.0], "under the global norm: unchanged");
        // As Keras: one clipping threshold at most; setting the same one again is fine.
        let two = Sgd::new(1.0).unwrap().with_clipvalue(0.5).unwrap().with_clipnorm(1.0);
        assert!(two.unwrap_err().to_string().contains("only one of"));
        assert!(Sgd::new(1.0)
            .unwrap()
            .with_clipnorm(2.0)
            .unwrap()
            .with_global_clipnorm(1.0)
            .is_err());
        let again = Sgd::new(1.0)
            .unwrap()
            .with_clipnorm(2.0)
            .unwrap()
            .with_clipnorm(1.0)
            .unwrap();
        assert_eq!(again.state().clipping().clipnorm, Some(1.0));
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(Sgd::new(1.0).unwrap().with_clipnorm(bad).is_err(), "{bad}");
            assert!(Sgd::new(1.0).unwrap().with_clipvalue(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_hyper_parameters_are_rejected_at_construction() {
        for bad in [f64::NAN, -0.1, f64::INFINITY] {
            let e = Sgd::new(bad).unwrap_err().to_string();
            assert!(e.contains("learning_rate"), "{e}");
            assert!(crate::Adam::new(bad).is_err());
            assert!(crate::RmsProp::new(bad).is_err());
            assert!(crate::Adagrad::new(bad).is_err());
            assert!(Sgd::new(0.1).unwrap().with_momentum(bad).is_err());
            assert!(crate::Adam::new(0.1).unwrap().with_beta_1(bad).is_err());
            assert!(crate::Adam::new(0.1).unwrap().with_epsilon(bad).is_err());
        }
        assert!(Sgd::new(0.1).unwrap().with_momentum(1.5).is_err());
        assert!(Sgd::new(0.0).is_ok(), "a zero rate is allowed, as in Keras");
        let bad_schedule = PiecewiseConstantDecay {
            boundaries: vec![1, 2],
            values: vec![1.0],
        };
        assert!(Sgd::new(bad_schedule).is_err());
    }

    /// Three steps on a kernel and a bias against Keras 3.15's float32 results (JAX backend)
    /// under the oracle's float32 rule: each value matches Keras' or is at least as close to
    /// the float64 result of Keras' formulas. SGD with momentum decays both; AdamW leaves out
    /// the bias by name; with a schedule the decay uses each step's rate.
    #[test]
    fn weight_decay_matches_keras() {
        use crate::schedules::ExponentialDecay;
        use crate::Adam;
        let run = |opt: &dyn Optimizer| -> Vec<f32> {
            let k = Variable::new("dense/kernel", Tensor::new([[0.5f32, -1.0], [2.0, 0.25]])).unwrap();
            let b = Variable::new("dense/bias", Tensor::new([0.1f32, -0.2])).unwrap();
            for s in 1..=3 {
                let scale = |t: Tensor| t.mul(&Tensor::scalar(s as f32)).unwrap();
                let gk = scale(Tensor::new([[0.3f32, -0.1], [0.05, 0.2]]));
                let gb = scale(Tensor::new([0.01f32, -0.4]));
                opt.apply_gradient_pairs(&[(&gk, &k), (&gb, &b)]).unwrap();
            }
            let mut out = k.value().to_vec::<f32>().unwrap();
            out.extend(b.value().to_vec::<f32>().unwrap());
            out
        };
        let check = |got: &[f32], keras: &[f64], exact: &[f64]| {
            for ((&g, &k), &e) in got.iter().zip(keras).zip(exact) {
                let matches = (f64::from(g) - k).abs() <= 1e-7 * k.abs().max(1.0);
                assert!(
                    matches || (f64::from(g) - e).abs() <= (k - e).abs(),
                    "{got:?}: Keras {keras:?}, exact {exact:?}"
                );
            }
        };
        let sgd = Sgd::new(0.5)
            .unwrap()
            .with_momentum(0.9)
            .unwrap()
            .with_weight_decay(0.1)
            .unwrap();
        check(
            &run(&sgd),
            &[
                -0.9614375829696655,
                -0.39399999380111694,
                1.483062505722046,
                -0.7124062180519104,
                0.039399996399879456,
                1.6820249557495117,
            ],
            &[-0.9614375, -0.394, 1.4830625, -0.71240625, 0.0394, 1.682025],
        );

        let adamw = Adam::adamw(0.01).unwrap();
        adamw.exclude_from_weight_decay(&[], &["bias"]).unwrap();
        check(
            &run(&adamw),
            &[
                0.4707096815109253,
                -0.9706500768661499,
                1.9705307483673096,
                0.22073982656002045,
                0.07077370584011078,
                -0.17076849937438965,
            ],
            &[
                0.4707095338532578,
                -0.9706498920361761,
                1.9705304304895155,
                0.22073962160006252,
                0.07077350345964066,
                -0.17076830093051182,
            ],
        );

        let decay = ExponentialDecay {
            initial_learning_rate: 0.1,
            decay_steps: 1.0,
            decay_rate: 0.5,
            staircase: false,
        };
        let scheduled = Adam::adamw(decay).unwrap().with_weight_decay(0.2).unwrap();
        scheduled.exclude_from_weight_decay(&[], &["bias"]).unwrap();
        check(
            &run(&scheduled),
            &[
                0.31220418214797974,
                -0.7948813438415527,
                1.7602344751358032,
                0.0708676427602768,
                -0.07216743379831314,
                -0.027793118730187416,
            ],
            &[
                0.31220299580135213,
                -0.794880160105024,
                1.7602331563775135,
                0.07086641188642148,
                -0.07216867011916739,
                -0.027791879922184258,
            ],
        );

        // Excluded by variable; a bad rate is refused.
        let w = Variable::new("w", Tensor::new([1.0f64])).unwrap();
        let opt = Sgd::new(1.0).unwrap().with_weight_decay(0.5).unwrap();
        opt.exclude_from_weight_decay(std::slice::from_ref(&w), &[]).unwrap();
        opt.apply_gradients([(Tensor::new([0.0f64]), &w)]).unwrap();
        assert_eq!(w.value().to_vec::<f64>().unwrap(), vec![1.0]);
        for bad in [-0.1, f64::NAN, f64::INFINITY] {
            let e = Sgd::new(1.0).unwrap().with_weight_decay(bad).unwrap_err().to_string();
            assert!(e.contains("weight_decay"), "{e}");
        }
    }

    #[test]
    fn boxed_optimizers_step_like_their_contents() {
        let boxed: Box<dyn Optimizer> = Box::new(Sgd::new(0.5).unwrap());
        let w = Variable::new("w", Tensor::new([1.0f64])).unwrap();
        boxed.apply_gradients([(Tensor::new([1.0f64]), &w)]).unwrap();
        assert_eq!(w.value().to_vec::<f64>().unwrap(), vec![0.5]);
        assert_eq!(boxed.iterations().unwrap(), 1);
    }

    #[test]
    fn schedules_read_the_step_counter() {
        let sched = PiecewiseConstantDecay {
            boundaries: vec![0],
            values: vec![1.0, 0.5],
        };
        let opt = Sgd::new(sched).unwrap();
        let w = Variable::new("w", Tensor::new([0.0f64])).unwrap();
        opt.apply_gradients([(Tensor::new([1.0f64]), &w)]).unwrap();
        opt.apply_gradients([(Tensor::new([1.0f64]), &w)]).unwrap();
        assert_eq!(w.value().to_vec::<f64>().unwrap(), vec![-1.5]);
    }

    #[test]
    fn a_set_learning_rate_is_used_by_the_next_step() {
        let opt = Sgd::new(1.0).unwrap();
        let w = Variable::new("w", Tensor::new([0.0f32])).unwrap();
        opt.apply_gradients([(Tensor::new([1.0f32]), &w)]).unwrap();
        opt.set_learning_rate(0.25).unwrap();
        assert_eq!(opt.learning_rate().unwrap(), 0.25);
        opt.apply_gradients([(Tensor::new([1.0f32]), &w)]).unwrap();
        assert_eq!(w.value().to_vec::<f32>().unwrap(), vec![-1.25]);
        assert!(opt.set_learning_rate(-1.0).is_err());
        let scheduled = Sgd::new(PiecewiseConstantDecay {
            boundaries: vec![0],
            values: vec![1.0, 0.5],
        })
        .unwrap();
        assert!(scheduled.set_learning_rate(0.1).is_err());
        assert_eq!(scheduled.learning_rate().unwrap(), 1.0);
    }
}
