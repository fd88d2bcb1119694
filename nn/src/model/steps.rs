//! The train, test and predict steps (Keras' `train_step`, `test_step`, `predict_step`),
//! written once with tensor ops and traced into graphs unless the model runs eagerly.
//!
//! A step runs `k` batches (`steps_per_execution`); its outputs are the `k` batch losses
//! followed by every metric's running result. The loss average the logs show is kept on the
//! host, weighted by batch size, as Keras' loss tracker.

use super::compile::{LossFn, LossSpec, MetricSpec};
use crate::metrics::{self, Metric};
use crate::{Layer, Mode};
use ferroflow_autodiff::GradientTape;
use ferroflow_distribute::{MultiWorkerMirroredStrategy, Weighting};
use ferroflow_graph::{Function, StaticArg};
use ferroflow_optim::{Loss, Optimizer};
use ferroflow_tensor_core::{Axes, Error, Result, Tensor, Variable};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

/// A loss ready to call.
#[derive(Clone)]
pub(crate) enum ResolvedLoss {
    Builtin(Loss),
    Function(String, LossFn),
}

impl ResolvedLoss {
    pub fn resolve(spec: LossSpec) -> Result<ResolvedLoss> {
        Ok(match spec {
            LossSpec::Loss(l) => ResolvedLoss::Builtin(l),
            LossSpec::Name(n) => ResolvedLoss::Builtin(n.parse()?),
            LossSpec::Function(n, f) => ResolvedLoss::Function(n, f),
        })
    }

    /// The name Keras records (`mean_squared_error`, or the function's name).
    pub fn name(&self) -> &str {
        match self {
            ResolvedLoss::Builtin(l) => l.name(),
            ResolvedLoss::Function(n, _) => n,
        }
    }
}

/// A compiled metric and whether it takes sample weights.
struct CompiledMetric {
    metric: Box<dyn Metric>,
    weighted: bool,
}

/// Everything a step needs, shared by the traced functions.
pub(crate) struct StepCore {
    pub layer: Rc<dyn Layer>,
    pub optimizer: Box<dyn Optimizer>,
    pub loss: ResolvedLoss,
    /// Specs not yet turned into metrics (names need the first batch's shapes).
    pending_metrics: RefCell<Vec<(MetricSpec, bool)>>,
    metrics: RefCell<Vec<CompiledMetric>>,
    /// The trainable variables, listed once the model has built them.
    trainable: RefCell<Option<Vec<Variable>>>,
    /// The strategy gradients are reduced with, when training data-parallel.
    strategy: RefCell<Option<MultiWorkerMirroredStrategy>>,
    /// Which strategy is in use (0: none, `i`: the `i`-th seen), passed to the traced steps as
    /// a static argument so a step traced for one strategy is not reused for another.
    generation: std::cell::Cell<i64>,
    seen: RefCell<Vec<MultiWorkerMirroredStrategy>>,
    /// Every set of trainable variable ids seen (the first at index 0).
    trainable_sets: RefCell<Vec<Vec<u64>>>,
    /// The index of the current set in `trainable_sets`, passed to the traced train step, so
    /// a step traced for other trainable weights is not reused (and one traced for these
    /// before is).
    trainable_generation: std::cell::Cell<i64>,
}

impl StepCore {
    pub fn new(
        layer: Rc<dyn Layer>,
        optimizer: Box<dyn Optimizer>,
        loss: ResolvedLoss,
        metrics: Vec<MetricSpec>,
        weighted_metrics: Vec<MetricSpec>,
    ) -> Result<StepCore> {
        let mut pending = Vec::new();
        for (spec, weighted) in metrics
            .into_iter()
            .map(|m| (m, false))
            .chain(weighted_metrics.into_iter().map(|m| (m, true)))
        {
            if let MetricSpec::Name(n) = &spec {
                if !metrics::is_known(n) {
                    // Report an unknown name at compile time, with the list of known ones.
                    let any = ferroflow_tensor_core::TensorSpec::new(ferroflow_tensor_core::DType::F32, vec![1, 2]);
                    metrics::from_name(n, &any, &any)?;
                }
            }
            pending.push((spec, weighted));
        }
        Ok(StepCore {
            layer,
            optimizer,
            loss,
            pending_metrics: RefCell::new(pending),
            metrics: RefCell::new(Vec::new()),
            trainable: RefCell::new(None),
            strategy: RefCell::new(None),
            generation: std::cell::Cell::new(0),
            seen: RefCell::new(Vec::new()),
            trainable_sets: RefCell::new(Vec::new()),
            trainable_generation: std::cell::Cell::new(0),
        })
    }

    /// The metrics' log keys, in compile order (empty until the first batch resolves them):
    /// their names made unique as Keras makes them (see [`unique_metric_names`]).
    pub fn metric_names(&self) -> Vec<String> {
        unique_metric_names(self.metrics.borrow().iter().map(|m| (m.metric.name(), m.weighted)))
    }

    /// Whether any metric still waits for the first batch.
    pub fn metrics_pending(&self) -> bool {
        !self.pending_metrics.borrow().is_empty()
    }

    /// The direction of the metric logged under `key` (for callbacks in `auto` mode).
    pub fn metric_direction(&self, key: &str) -> Option<metrics::Direction> {
        let metrics = self.metrics.borrow();
        self.metric_names()
            .iter()
            .zip(metrics.iter())
            .find(|(k, _)| *k == key)
            .map(|(_, m)| m.metric.direction())
    }

    /// Takes in layers frozen or unfrozen since the last `fit` or `train_on_batch` (Keras
    /// asks for `compile()` again; here it is not needed): the trainable variables are read
    /// afresh, and the train step is traced again only for a set of trainable variables not
    /// seen before (the test step never is). Warns, as Keras does, when nothing is trainable.
    pub fn sync_trainable(&self) {
        let ids: Vec<u64> = self.layer.trainable_variables().iter().map(Variable::id).collect();
        let mut sets = self.trainable_sets.borrow_mut();
        let current = usize::try_from(self.trainable_generation.get()).ok();
        if current.and_then(|i| sets.get(i)) == Some(&ids) {
            return;
        }
        if ids.is_empty() {
            eprintln!("the model has no trainable weights; training changes none of them");
        }
        let index = match sets.iter().position(|s| *s == ids) {
            Some(i) => i,
            None => {
                sets.push(ids);
                sets.len() - 1
            }
        };
        self.trainable_generation.set(index as i64);
        *self.trainable.borrow_mut() = None;
    }

    /// Trains with `strategy` from now on (`None`: on this process alone).
    pub fn set_strategy(&self, strategy: Option<MultiWorkerMirroredStrategy>) {
        let generation = match &strategy {
            None => 0,
            Some(s) => {
                let mut seen = self.seen.borrow_mut();
                let i = match seen.iter().position(|t| t.same_as(s)) {
                    Some(i) => i,
                    None => {
                        seen.push(s.clone());
                        seen.len() - 1
                    }
                };
                i as i64 + 1
            }
        };
        self.generation.set(generation);
        *self.strategy.borrow_mut() = strategy;
    }

    /// Every metric's state variables, in order.
    pub fn metric_variables(&self) -> Vec<Variable> {
        self.metrics
            .borrow()
            .iter()
            .flat_map(|m| m.metric.variables())
            .collect()
    }

    /// The metric results computed from other state values (the workers' summed states),
    /// leaving the metrics' own states as they were.
    pub fn metric_results_for(&self, states: &[Tensor]) -> Result<Vec<Tensor>> {
        let vars = self.metric_variables();
        if vars.len() != states.len() {
            return Err(Error::invalid(
                "fit",
                format!("{} metric states for {} variables", states.len(), vars.len()),
            ));
        }
        let saved: Vec<Tensor> = vars.iter().map(Variable::value).collect();
        let assign = |values: &[Tensor]| -> Result<()> {
            for (v, t) in vars.iter().zip(values) {
                v.assign(t)?;
            }
            Ok(())
        };
        assign(states)?;
        let results = self.metric_results();
        assign(&saved)?;
        results
    }

    /// Zeroes every metric (at each epoch and evaluation start).
    pub fn reset_metrics(&self) -> Result<()> {
        for m in self.metrics.borrow().iter() {
            m.metric.reset_state()?;
        }
        Ok(())
    }

    /// Turns pending metric specs into metrics, now that the shapes are known.
    fn resolve_metrics(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<()> {
        let pending: Vec<(MetricSpec, bool)> = self.pending_metrics.borrow_mut().drain(..).collect();
        let mut metrics = self.metrics.borrow_mut();
        for (spec, weighted) in pending {
            let metric = match spec {
                MetricSpec::Name(n) => metrics::from_name(&n, &y_true.spec(), &y_pred.spec())?,
                MetricSpec::Metric(m) => m,
            };
            metrics.push(CompiledMetric { metric, weighted });
        }
        Ok(())
    }

    /// The loss of a batch: per-sample losses, weighted by the sample weights, summed and
    /// divided by their number (Keras' `sum_over_batch_size`).
    pub fn compute_loss(&self, y_true: &Tensor, y_pred: &Tensor, sample_weight: Option<&Tensor>) -> Result<Tensor> {
        self.compute_loss_over(y_true, y_pred, sample_weight, None)
    }

    /// [`StepCore::compute_loss`], divided as for a global batch of `global_rows` rows when
    /// given (TensorFlow's `compute_average_loss` with the global batch size): each worker's
    /// share of the global batch's mean loss, so that summing the workers' gradients gives the
    /// global batch's gradient, rounded as one process would round it.
    fn compute_loss_over(
        &self,
        y_true: &Tensor,
        y_pred: &Tensor,
        sample_weight: Option<&Tensor>,
        global_rows: Option<usize>,
    ) -> Result<Tensor> {
        let per_sample = match &self.loss {
            ResolvedLoss::Builtin(loss) if loss.takes_class_ids() => loss.per_sample(y_true, y_pred)?,
            ResolvedLoss::Builtin(loss) => {
                let (y_true, y_pred) = align_ranks(y_true, y_pred)?;
                loss.per_sample(&y_true, &y_pred)?
            }
            // Keras wraps a loss function so that it sees targets and predictions of one rank
            // and float dtype (`LossFunctionWrapper`): `[b]` labels against a `[b, 1]`
            // output would otherwise broadcast to `[b, b]` in the user's `p - t`.
            ResolvedLoss::Function(_, f) => {
                let (y_true, y_pred) = align_ranks(y_true, y_pred)?;
                f(&y_true, &y_pred)?
            }
        };
        let per_sample = match sample_weight {
            // A loss function that returns one value, already averaged: as Keras'
            // `reduce_weighted_values`, it stands for every weighted value (broadcast to the
            // weights' shape), so weighting gives the loss times the weights' mean, not
            // their sum (and, data-parallel, this worker's share of the global mean).
            Some(w) if per_sample.rank() == 0 => per_sample.mul(&w.cast(per_sample.dtype())?.ones_like()?)?,
            _ => per_sample,
        };
        if let (0, Some(global)) = (per_sample.rank(), global_rows) {
            // A loss function that returns one value, already the mean over this worker's
            // rows: its share of the global mean is `rows / global` of it.
            let rows = y_pred.dims().first().copied().unwrap_or(0);
            return per_sample.mul(&per_sample.scalar_like(rows as f64 / global.max(1) as f64));
        }
        let elements = per_sample.shape().num_elements();
        let rows = per_sample.dims().first().copied().unwrap_or(1).max(1);
        let denominator = match global_rows {
            Some(global) => (elements / rows * global).max(1) as f64,
            None => elements.max(1) as f64,
        };
        let Some(w) = sample_weight else {
            if global_rows.is_none() {
                return per_sample.reduce_mean(Axes::All);
            }
            return per_sample
                .reduce_sum(Axes::All)?
                .div(&per_sample.scalar_like(denominator));
        };
        let mut w = w.cast(per_sample.dtype())?;
        if w.dims() != per_sample.dims() && w.shape().num_elements() == elements {
            w = w.reshape(&per_sample.dims().iter().map(|&d| d as i64).collect::<Vec<_>>())?;
        }
        let weighted = per_sample.mul(&w).map_err(|e| {
            Error::shapes(
                "fit",
                &[&per_sample.shape(), &w.shape()],
                format!("sample weights do not fit the per-sample losses: {e}"),
            )
        })?;
        weighted
            .reduce_sum(Axes::All)?
            .div(&per_sample.scalar_like(denominator))
    }

    fn update_metrics(&self, y_true: &Tensor, y_pred: &Tensor, sample_weight: Option<&Tensor>) -> Result<()> {
        if self.metrics_pending() {
            self.resolve_metrics(y_true, y_pred)?;
        }
        for m in self.metrics.borrow().iter() {
            let w = if m.weighted { sample_weight } else { None };
            m.metric.update_state(y_true, y_pred, w)?;
        }
        Ok(())
    }

    fn metric_results(&self) -> Result<Vec<Tensor>> {
        self.metrics.borrow().iter().map(|m| m.metric.result()).collect()
    }

    fn trainable_variables(&self) -> Vec<Variable> {
        if let Some(v) = self.trainable.borrow().as_ref() {
            return v.clone();
        }
        self.layer.trainable_variables()
    }

    /// One training step on one batch; returns its loss. Training data-parallel, the batch is
    /// this worker's part of a global batch of `global_rows` rows: the loss is its share of
    /// the global mean and the gradients are summed over workers (0: an unknown global batch,
    /// each worker reading its own data, so the local means are averaged weighted by rows).
    fn train_batch(
        &self,
        x: &Tensor,
        y: &Tensor,
        sample_weight: Option<&Tensor>,
        global_rows: usize,
    ) -> Result<Tensor> {
        let Some(strategy) = self.strategy.borrow().clone() else {
            let tape = GradientTape::new();
            let y_pred = self.layer.call(x, Mode::Training)?;
            let loss = self.compute_loss(y, &y_pred, sample_weight)?;
            let vars = self.trainable_variables();
            let pairs = tape.connected_gradients(&loss, &vars)?;
            drop(tape);
            let nothing_to_train = vars.is_empty();
            self.remember_trainable(vars);
            let refs: Vec<(&Tensor, &Variable)> = pairs.iter().map(|(g, v)| (g, v)).collect();
            // With no trainable weights Keras skips the update (the step count stays).
            if !nothing_to_train {
                self.optimizer.apply_gradient_pairs(&refs)?;
            }
            self.update_metrics(y, &y_pred, sample_weight)?;
            return Ok(loss);
        };
        let rows = x.dims().first().copied().unwrap_or(0);
        let vars = self.trainable_variables();
        // Every worker reduces one gradient per trainable variable, in the same order, so the
        // buckets match whatever this worker's batch reached: zeros where it reached nothing,
        // and all zeros for an empty share of a small global batch (no training pass: a mean
        // over no rows is NaN, and layers such as batch normalization would keep it).
        let (loss, grads) = if rows == 0 {
            self.empty_share(x, y)?;
            let grads = vars
                .iter()
                .map(|v| Tensor::zeros(v.shape().dims(), v.dtype()))
                .collect::<Result<Vec<_>>>()?;
            (Tensor::scalar(0.0f32), grads)
        } else {
            let tape = GradientTape::new();
            let y_pred = self.layer.call(x, Mode::Training)?;
            let loss = match global_rows {
                0 => self.compute_loss(y, &y_pred, sample_weight)?,
                global => self.compute_loss_over(y, &y_pred, sample_weight, Some(global))?,
            };
            let mut connected = tape.connected_gradients(&loss, &vars)?.into_iter().peekable();
            drop(tape);
            let mut grads = Vec::with_capacity(vars.len());
            for v in &vars {
                grads.push(match connected.next_if(|(_, c)| c.id() == v.id()) {
                    Some((g, _)) => g,
                    None => Tensor::zeros(v.shape().dims(), v.dtype())?,
                });
            }
            self.update_metrics(y, &y_pred, sample_weight)?;
            (loss, grads)
        };
        self.remember_trainable(vars.clone());
        let reduced = if global_rows > 0 {
            strategy.sum_gradients(&grads)?
        } else {
            strategy.reduce_gradients(&grads, Weighting::Samples(rows))?
        };
        let refs: Vec<(&Tensor, &Variable)> = reduced.iter().zip(&vars).collect();
        if !refs.is_empty() {
            self.optimizer.apply_gradient_pairs(&refs)?;
        }
        Ok(loss)
    }

    /// Lists the trainable variables once, outside tracing (their order is fixed then).
    fn remember_trainable(&self, vars: Vec<Variable>) {
        if self.trainable.borrow().is_none() && !ferroflow_tensor_core::is_tracing() {
            *self.trainable.borrow_mut() = Some(vars);
        }
    }

    /// A worker's empty share of a global batch smaller than the world: nothing to learn
    /// from or measure, but named metrics are resolved as on the workers that got rows, so
    /// that every worker reduces the same metric states. The pass runs in inference mode: in
    /// training mode layers such as batch normalization would keep statistics of no rows.
    fn empty_share(&self, x: &Tensor, y: &Tensor) -> Result<()> {
        if self.metrics_pending() {
            let y_pred = self.layer.call(x, Mode::Inference)?;
            self.resolve_metrics(y, &y_pred)?;
        }
        Ok(())
    }

    /// One evaluation step on one batch; returns its loss (0 for a worker's empty share, which
    /// the loss tracker weighs by its 0 rows).
    fn test_batch(&self, x: &Tensor, y: &Tensor, sample_weight: Option<&Tensor>) -> Result<Tensor> {
        if x.dims().first() == Some(&0) {
            self.empty_share(x, y)?;
            return Ok(Tensor::scalar(0.0f32));
        }
        let y_pred = self.layer.call(x, Mode::Inference)?;
        let loss = self.compute_loss(y, &y_pred, sample_weight)?;
        self.update_metrics(y, &y_pred, sample_weight)?;
        Ok(loss)
    }

    /// `k` batches of `arity` tensors each (`[x, y]` or `[x, y, w]`), in order; `global_rows`
    /// has each batch's global row count when training data-parallel.
    fn run_batches(&self, args: &[Tensor], arity: usize, train: bool, global_rows: &[usize]) -> Result<Vec<Tensor>> {
        if arity < 2 || args.is_empty() || !args.len().is_multiple_of(arity) {
            return Err(Error::invalid(
                "fit",
                format!("{} tensors do not split into batches of {arity}", args.len()),
            ));
        }
        let mut out = Vec::with_capacity(args.len() / arity + 4);
        for (i, batch) in args.chunks(arity).enumerate() {
            let w = batch.get(2);
            out.push(if train {
                self.train_batch(&batch[0], &batch[1], w, global_rows.get(i).copied().unwrap_or(0))?
            } else {
                self.test_batch(&batch[0], &batch[1], w)?
            });
        }
        out.extend(self.metric_results()?);
        Ok(out)
    }
}

/// Keras' `squeeze_or_expand_to_same_rank(y_true, y_pred)`, as its `LossFunctionWrapper`
/// applies it, then the targets in the predictions' float dtype.
fn align_ranks(y_true: &Tensor, y_pred: &Tensor) -> Result<(Tensor, Tensor)> {
    let (t, p) = crate::metrics::squeeze_or_expand_to_same_rank(y_true, y_pred)?;
    let t = if t.dtype() != p.dtype() && p.dtype().is_float() {
        t.cast(p.dtype())?
    } else {
        t
    };
    Ok((t, p))
}

/// The compiled steps: traced functions over a shared [`StepCore`], or the core itself when
/// running eagerly.
pub(crate) struct Steps {
    pub core: Rc<StepCore>,
    pub run_eagerly: bool,
    pub steps_per_execution: usize,
    train_fn: Function<'static>,
    test_fn: Function<'static>,
    predict_fn: Function<'static>,
}

impl Steps {
    pub fn new(core: StepCore, run_eagerly: bool, steps_per_execution: usize) -> Steps {
        let core = Rc::new(core);
        let train_core = core.clone();
        let train_fn = Function::with_statics(move |args: &[Tensor], statics: &[StaticArg]| {
            train_core.run_batches(args, arity(statics), true, &global_rows(statics))
        });
        let test_core = core.clone();
        let test_fn = Function::with_statics(move |args: &[Tensor], statics: &[StaticArg]| {
            test_core.run_batches(args, arity(statics), false, &[])
        });
        let predict_core = core.clone();
        let predict_fn = Function::with_statics(move |args: &[Tensor], _: &[StaticArg]| {
            Ok(vec![predict_core.layer.call(&args[0], Mode::Inference)?])
        });
        Steps {
            core,
            run_eagerly,
            steps_per_execution,
            train_fn,
            test_fn,
            predict_fn,
        }
    }

    /// Trains on `batches` (each `[x, y]` or `[x, y, w]`, all alike): the batch losses, then
    /// the metric results. `global_rows`: each batch's global row count when training
    /// data-parallel (empty otherwise).
    pub fn train(&self, batches: &[Vec<Tensor>], global_rows: &[usize]) -> Result<Vec<Tensor>> {
        self.run(batches, true, global_rows)
    }

    /// Evaluates `batches`, as [`Steps::train`] without updates.
    pub fn test(&self, batches: &[Vec<Tensor>]) -> Result<Vec<Tensor>> {
        self.run(batches, false, &[])
    }

    fn run(&self, batches: &[Vec<Tensor>], train: bool, global_rows: &[usize]) -> Result<Vec<Tensor>> {
        let arity = batches.first().map_or(2, |b| b.len());
        if batches.iter().any(|b| b.len() != arity) {
            return Err(Error::invalid(
                "fit",
                "batches of one step must all have targets (and weights) alike",
            ));
        }
        // The arity, the strategy's generation, the trainable weights' generation, then each
        // batch's global rows (a trace per combination: the weights the gradients are reduced
        // with are part of the graph).
        let mut statics = Vec::with_capacity(3 + global_rows.len());
        statics.push(StaticArg::Int(arity as i64));
        statics.push(StaticArg::Int(self.core.generation.get()));
        // Inference does not depend on which weights train: the test step is not retraced.
        statics.push(StaticArg::Int(if train {
            self.core.trainable_generation.get()
        } else {
            0
        }));
        statics.extend(global_rows.iter().map(|&r| StaticArg::Int(r as i64)));
        let f = if train { &self.train_fn } else { &self.test_fn };
        match batches {
            // One batch per step (the default): its tensors are the arguments as they are.
            [batch] if !self.run_eagerly => f.call_with(&batch[..], &statics),
            [batch] => self.core.run_batches(batch, arity, train, global_rows),
            _ if self.run_eagerly => {
                let flat: Vec<Tensor> = batches.iter().flat_map(|b| b.iter().cloned()).collect();
                self.core.run_batches(&flat, arity, train, global_rows)
            }
            _ => {
                let flat: Vec<&Tensor> = batches.iter().flat_map(|b| b.iter()).collect();
                f.call_with(&flat[..], &statics)
            }
        }
    }

    /// The model's output for one batch.
    pub fn predict(&self, x: &Tensor) -> Result<Tensor> {
        if self.run_eagerly {
            return self.core.layer.call(x, Mode::Inference);
        }
        let mut out = self.predict_fn.call_with([x], &[])?;
        out.pop()
            .ok_or_else(|| Error::invalid("predict", "the model returned nothing"))
    }

    /// The train step's graph for batches like these (tracing it if needed).
    pub fn train_graph(
        &self,
        specs: &[ferroflow_tensor_core::TensorSpec],
    ) -> Result<Arc<ferroflow_graph::ConcreteFunction>> {
        self.train_fn.get_concrete_function_with(
            specs,
            &[
                (specs.len() as i64).into(),
                self.core.generation.get().into(),
                self.core.trainable_generation.get().into(),
            ],
        )
    }
}

/// Log keys for metrics named `names` (with whether each is weighted; the unweighted ones
/// first), as Keras' `CompileMetrics.result` makes them: a repeated unweighted name gets a
/// counter (`mae`, `mae_1`), a weighted metric whose name is taken becomes `weighted_mae`
/// (then `weighted_mae_1`), so that no result overwrites another in the logs.
pub(crate) fn unique_metric_names<'a>(names: impl Iterator<Item = (&'a str, bool)>) -> Vec<String> {
    use std::collections::HashMap;
    fn numbered(name: String, counters: &mut HashMap<String, usize>) -> String {
        match counters.get_mut(&name) {
            Some(n) => {
                *n += 1;
                format!("{name}_{}", *n - 1)
            }
            None => {
                counters.insert(name.clone(), 1);
                name
            }
        }
    }
    let mut counters = HashMap::new();
    names
        .map(|(name, weighted)| {
            if weighted && counters.contains_key(name) {
                numbered(format!("weighted_{name}"), &mut counters)
            } else {
                numbered(name.to_string(), &mut counters)
            }
        })
        .collect()
}

fn arity(statics: &[StaticArg]) -> usize {
    statics.first().and_then(StaticArg::as_i64).unwrap_or(2) as usize
}

/// The global row counts after the arity and the two generations.
fn global_rows(statics: &[StaticArg]) -> Vec<usize> {
    statics
        .iter()
        .skip(3)
        .map(|s| s.as_i64().unwrap_or(0).max(0) as usize)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::unique_metric_names;

    #[test]
    fn repeated_metric_names_are_made_unique_as_keras_makes_them() {
        let names = [
            ("mae", false),
            ("mae", false),
            ("acc", false),
            ("mae", true),
            ("mae", true),
            ("mse", true),
        ];
        assert_eq!(
            unique_metric_names(names.into_iter()),
            ["mae", "mae_1", "acc", "weighted_mae", "weighted_mae_1", "mse"]
        );
    }
}
