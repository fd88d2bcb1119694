//! [`Model`]: a Keras model around any layer or module — `compile`, `fit`, `evaluate`,
//! `predict`, `summary`, weights and JSON.

mod compile;
mod config;
mod evaluate;
mod fit;
mod inputs;
mod logs;
mod replica;
mod restore;
mod steps;
mod summary;

pub use compile::{CompileOptions, LossFn, LossSpec, MetricSpec};
pub(crate) use config::{dtype_policy, get_f64, get_pair, get_str, get_usize, layer_entry, read_dtype};
pub use config::{layer_from_config, LayerConfig};
pub use evaluate::{EvaluateOptions, PredictOptions};
pub use fit::{FitOptions, Validation};
pub use inputs::{ClassWeight, Inputs};
pub use logs::{FitParams, History, Logs};

use crate::metrics::Direction;
use crate::{Attr, Layer, Mode, Module};
use ferroflow_optim::Optimizer;
use ferroflow_tensor_core::{Error, Result, Tensor, TensorSpec, Trackable, Variable};
use restore::Pending;
use std::cell::{Cell, RefCell};
use std::path::Path;
use std::rc::Rc;
use steps::{ResolvedLoss, StepCore, Steps};

/// A Keras model (`keras.Model`) around a layer — a [`Sequential`](crate::Sequential), a
/// built-in layer, or your own module with a forward method — adding the training API:
/// [`compile`](Model::compile), [`fit`](Model::fit), [`evaluate`](Model::evaluate),
/// [`predict`](Model::predict), the `*_on_batch` methods, [`summary`](Model::summary),
/// weights and JSON.
///
/// By default the train step, the test step and prediction are traced into graphs once per
/// input signature (`run_eagerly(false)`); metrics update inside them.
///
/// ```
/// use ferroflow_nn::{Activation, CompileOptions, Dense, FitOptions, Model, Sequential};
/// use ferroflow_optim::Sgd;
/// use ferroflow_tensor_core::random::{self, Normal};
///
/// let mut layers = Sequential::new();
/// layers.add(Dense::new(8).with_activation(Activation::Relu).with_seed(1));
/// layers.add(Dense::new(1).with_seed(2));
/// let mut model = Model::new(layers);
/// model.compile(CompileOptions::new(Sgd::new(0.1)?, "mse").with_metrics(["mae"]))?;
///
/// let x = random::normal(&[64, 3], Normal::default().seed(3))?;
/// let y = x.reduce_sum(ferroflow_tensor_core::Axes::from(-1).keepdims())?;
/// let history = model.fit((&x, &y), FitOptions::new().epochs(20).batch_size(16).verbose(0))?;
/// let losses = history.get("loss").unwrap();
/// assert!(losses[19] < losses[0] / 2.0);
/// let logs = model.evaluate((&x, &y), Default::default())?;
/// assert!(logs.get("mae").is_some());
/// assert_eq!(model.predict(&x, Default::default())?.dims(), &[64, 1]);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
pub struct Model {
    name: String,
    layer: Rc<dyn Layer>,
    steps: Option<Steps>,
    compile_config: Option<serde_json::Value>,
    stop_training: Cell<bool>,
    /// The epoch the next `fit` starts at, set by [`BackupAndRestore`](crate::callbacks::BackupAndRestore).
    resume_epoch: Cell<Option<usize>>,
    /// The shuffle seed of the current `fit`.
    shuffle_seed: Cell<Option<u64>>,
    /// The first input's spec: the model is built once it is set.
    input_spec: RefCell<Option<TensorSpec>>,
    /// The specs of the first training batch (to show the train step's graph).
    train_specs: RefCell<Option<Vec<TensorSpec>>>,
    /// Values read by `load_weights` before the variables existed (deferred restoration).
    pending: Pending,
    /// The strategy of the running data-parallel `fit`.
    strategy: RefCell<Option<ferroflow_distribute::MultiWorkerMirroredStrategy>>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("name", &self.name)
            .field("compiled", &self.steps.is_some())
            .field("input_spec", &self.input_spec.borrow())
            .finish_non_exhaustive()
    }
}

/// A module and its forward function, as a layer.
struct ForwardLayer<M, F> {
    module: M,
    forward: F,
    trainable: std::cell::Cell<bool>,
}

impl<M: Module, F> Module for ForwardLayer<M, F> {
    fn name(&self) -> &str {
        self.module.name()
    }
    fn attributes(&self) -> Vec<(String, Attr<'_>)> {
        self.module.attributes()
    }
    fn as_dyn(&self) -> &dyn Module {
        self
    }
    fn class_name(&self) -> String {
        self.module.class_name()
    }
    fn trainable_variables(&self) -> Vec<Variable> {
        if self.trainable.get() {
            self.module.trainable_variables()
        } else {
            Vec::new()
        }
    }
}

impl<M: Module, F: Fn(&M, &Tensor) -> Result<Tensor>> Layer for ForwardLayer<M, F> {
    fn call(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        let y = (self.forward)(&self.module, x)?;
        // Variables the module makes on first use are frozen with it.
        if !self.trainable.get() {
            crate::layers::freeze_new(self, self.module.variables().iter());
        }
        Ok(y)
    }

    fn trainable_switch(&self) -> Option<&std::cell::Cell<bool>> {
        Some(&self.trainable)
    }
}

impl Model {
    /// A model around `layer`, named after it.
    pub fn new(layer: impl Layer + 'static) -> Model {
        Model::from_rc(Rc::new(layer))
    }

    fn from_rc(layer: Rc<dyn Layer>) -> Model {
        Model {
            name: layer.name().to_string(),
            layer,
            steps: None,
            compile_config: None,
            stop_training: Cell::new(false),
            resume_epoch: Cell::new(None),
            shuffle_seed: Cell::new(None),
            input_spec: RefCell::new(None),
            train_specs: RefCell::new(None),
            pending: Pending::default(),
            strategy: RefCell::new(None),
        }
    }

    /// A model around a module and its forward method, unchanged: the lesson's
    /// `SequentialModule` becomes a Keras model with
    /// `Model::from_module(my_module, SequentialModule::call)`.
    ///
    /// ```
    /// use ferroflow_nn::{Attr, Model, Module};
    /// use ferroflow_tensor_core::{Tensor, Variable};
    ///
    /// // A user module (with `ferroflow::prelude::*`, `#[derive(Module)]` writes this impl).
    /// struct Scale { w: Variable }
    /// impl Module for Scale {
    ///     fn name(&self) -> &str { "scale" }
    ///     fn attributes(&self) -> Vec<(String, Attr<'_>)> { vec![("w".into(), Attr::Variable(&self.w))] }
    ///     fn as_dyn(&self) -> &dyn Module { self }
    /// }
    /// impl Scale {
    ///     fn call(&self, x: &Tensor) -> ferroflow_tensor_core::Result<Tensor> { x.mul(&self.w.read()?) }
    /// }
    /// let model = Model::from_module(Scale { w: Variable::new("w", Tensor::scalar(2.0f32))? }, Scale::call);
    /// assert_eq!(model.predict_on_batch(&Tensor::new([1.0f32, 3.0]))?.to_vec::<f32>()?, vec![2.0, 6.0]);
    /// assert_eq!(model.name(), "scale");
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn from_module<M, F>(module: M, forward: F) -> Model
    where
        M: Module + 'static,
        F: Fn(&M, &Tensor) -> Result<Tensor> + 'static,
    {
        Model::new(ForwardLayer {
            module,
            forward,
            trainable: std::cell::Cell::new(true),
        })
    }

    /// Renames the model.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The layer (or module) the model runs.
    pub fn layer(&self) -> &dyn Layer {
        &*self.layer
    }

    /// Calls the model on `x` (`model(x, training=...)`), building it on the first call.
    pub fn call(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        // Values waiting for variables must land before the call computes with them.
        if !ferroflow_tensor_core::is_tracing() {
            self.ensure_built(x)?;
        }
        self.layer.call(x, mode)
    }

    /// Records the input spec of the first call and applies values waiting for variables
    /// that now exist.
    fn note_built(&self, x: &Tensor) -> Result<()> {
        if self.input_spec.borrow().is_none() && !ferroflow_tensor_core::is_tracing() {
            *self.input_spec.borrow_mut() = Some(x.spec());
        }
        if !self.pending.is_empty() && !ferroflow_tensor_core::is_tracing() {
            self.pending.apply(&self.variables_by_path())?;
        }
        Ok(())
    }

    /// Builds the model from a batch (an eager forward pass in inference mode) if it has
    /// not seen one yet, so its variables exist before a traced step and waiting values are
    /// assigned.
    pub(crate) fn ensure_built(&self, x: &Tensor) -> Result<()> {
        if self.input_spec.borrow().is_none() || !self.pending.is_empty() {
            let one = match x.dims().first() {
                Some(&n) if n > 1 => ferroflow_data::rows::row_range(x, 0, 1)?,
                _ => x.clone(),
            };
            self.layer.call(&one, Mode::Inference)?;
            self.note_built(x)?;
        }
        Ok(())
    }

    /// Builds the model's variables from an example input, as Keras' `model.build` (given a
    /// tensor rather than a shape, so the dtype is known too): one eager forward pass in
    /// inference mode on its first row. Values waiting from `load_weights` are assigned.
    pub fn build_from(&self, example: &Tensor) -> Result<()> {
        self.ensure_built(example)
    }

    /// Whether the model has seen an input (its layers have built their variables).
    pub fn is_built(&self) -> bool {
        self.input_spec.borrow().is_some()
    }

    /// The spec of the first input the model saw.
    pub fn input_spec(&self) -> Option<TensorSpec> {
        self.input_spec.borrow().clone()
    }

    /// Configures training (`model.compile(optimizer, loss, metrics, run_eagerly,
    /// steps_per_execution)`). A loss or metric name Keras does not know is an error here.
    pub fn compile(&mut self, options: CompileOptions) -> Result<()> {
        if options.steps_per_execution == 0 {
            return Err(Error::invalid("compile", "steps_per_execution must be at least 1"));
        }
        let loss = ResolvedLoss::resolve(options.loss)?;
        let metric_names: Vec<String> = options.metrics.iter().map(metric_label).collect();
        let weighted_names: Vec<String> = options.weighted_metrics.iter().map(metric_label).collect();
        let compile_config = serde_json::json!({
            "loss": loss.name(),
            "metrics": metric_names,
            "weighted_metrics": if weighted_names.is_empty() { serde_json::Value::Null } else { serde_json::json!(weighted_names) },
            "run_eagerly": options.run_eagerly,
            "steps_per_execution": options.steps_per_execution,
        });
        let core = StepCore::new(
            self.layer.clone(),
            options.optimizer,
            loss,
            options.metrics,
            options.weighted_metrics,
        )?;
        self.steps = Some(Steps::new(core, options.run_eagerly, options.steps_per_execution));
        self.compile_config = Some(compile_config);
        Ok(())
    }

    /// The traced train step's graph (for the first training batch's shapes), once `fit` has
    /// run a step; `None` when the model runs eagerly.
    pub fn train_step_graph(&self) -> Result<Option<std::sync::Arc<ferroflow_graph::ConcreteFunction>>> {
        let (Some(steps), Some(specs)) = (&self.steps, self.train_specs.borrow().clone()) else {
            return Ok(None);
        };
        if steps.run_eagerly {
            return Ok(None);
        }
        steps.train_graph(&specs).map(Some)
    }

    pub(crate) fn note_train_batch(&self, batch: &[Tensor]) {
        if self.train_specs.borrow().is_none() {
            *self.train_specs.borrow_mut() = Some(batch.iter().map(Tensor::spec).collect());
        }
    }

    /// Object paths of values `load_weights` read whose variables do not exist yet (they are
    /// assigned when the layers build them).
    pub fn pending_restorations(&self) -> Vec<String> {
        self.pending.waiting()
    }

    /// The names the logs use: `loss`, then the compiled metrics once the first batch has
    /// resolved them (`model.metrics_names`).
    pub fn metrics_names(&self) -> Vec<String> {
        let mut names = vec!["loss".to_string()];
        if let Some(s) = &self.steps {
            names.extend(s.core.metric_names());
        }
        names
    }

    /// Whether [`Model::compile`] has been called.
    pub fn is_compiled(&self) -> bool {
        self.steps.is_some()
    }

    pub(crate) fn steps(&self, op: &'static str) -> Result<&Steps> {
        self.steps.as_ref().ok_or_else(|| {
            Error::invalid(
                op,
                "you must call compile() before using the model for training or evaluation",
            )
        })
    }

    /// The compiled optimizer.
    pub fn optimizer(&self) -> Option<&dyn Optimizer> {
        self.steps.as_ref().map(|s| &*s.core.optimizer)
    }

    /// The strategy of the data-parallel `fit` running now ([`FitOptions::strategy`]), if any.
    pub fn distribute_strategy(&self) -> Option<ferroflow_distribute::MultiWorkerMirroredStrategy> {
        self.strategy.borrow().clone()
    }

    /// Whether this process is the chief: always, except on ranks other than 0 while a
    /// data-parallel `fit` runs. Callbacks that write files write them on the chief only.
    pub fn is_chief(&self) -> bool {
        self.strategy.borrow().as_ref().is_none_or(|s| s.is_chief())
    }

    /// Whether training stops after the current batch or epoch (set by callbacks).
    pub fn stop_training(&self) -> bool {
        self.stop_training.get()
    }

    /// Asks `fit` to stop (`model.stop_training = True`): a batch callback stops after that
    /// batch, an epoch callback after that epoch.
    pub fn set_stop_training(&self, stop: bool) {
        self.stop_training.set(stop);
    }

    /// Makes the next `fit` start at `epoch` (what [`BackupAndRestore`](crate::callbacks::BackupAndRestore)
    /// does when it finds a backup).
    pub fn set_resume_epoch(&self, epoch: Option<usize>) {
        self.resume_epoch.set(epoch);
    }

    /// The shuffle seed of the running (or last) `fit`.
    pub fn shuffle_seed(&self) -> Option<u64> {
        self.shuffle_seed.get()
    }

    /// Replaces the shuffle seed of the running `fit` (a restored backup's).
    pub fn set_shuffle_seed(&self, seed: u64) {
        self.shuffle_seed.set(Some(seed));
    }

    /// Whether a larger value of the logged metric `name` (`val_` prefix allowed) is better,
    /// for callbacks in `auto` mode: `loss` is minimised, compiled metrics say.
    pub fn metric_direction(&self, name: &str) -> Option<Direction> {
        let base = name.strip_prefix("val_").unwrap_or(name);
        if base == "loss" {
            return Some(Direction::Down);
        }
        self.steps.as_ref()?.core.metric_direction(base)
    }

    /// The model's variables' values in Keras' `get_weights` order (see
    /// [`Model::weights`]): a Dense layer gives `[kernel, bias]`, a BatchNormalization
    /// `[gamma, beta, moving_mean, moving_variance]`.
    pub fn get_weights(&self) -> Result<Vec<Tensor>> {
        Ok(self.weights().iter().map(Variable::value).collect())
    }

    /// The model's variables in Keras' `model.weights` order: layer by layer, and within a
    /// layer in the order Keras creates them (kernel or embeddings or gamma, then bias or
    /// beta, then the moving statistics). Variables of other modules keep [`Module::variables`]'
    /// sorted-name order, which is `tf.Module`'s.
    pub fn weights(&self) -> Vec<Variable> {
        keras_weight_order(self.layer.variables_by_path_in_order())
    }

    /// Assigns every variable (`set_weights`), in [`Model::get_weights`] order; the count,
    /// dtypes and shapes must match, and nothing is assigned if one does not.
    pub fn set_weights(&self, values: &[Tensor]) -> Result<()> {
        let vars = self.weights();
        if vars.len() != values.len() {
            return Err(Error::invalid(
                "set_weights",
                format!(
                    "the model has {} variables, {} values were given",
                    vars.len(),
                    values.len()
                ),
            ));
        }
        for (v, t) in vars.iter().zip(values) {
            if v.dtype() != t.dtype() || v.shape().dims() != t.dims() {
                return Err(Error::shapes(
                    "set_weights",
                    &[v.shape(), &t.shape()],
                    format!(
                        "value for '{}' is {} but the variable is {}",
                        v.name(),
                        t.dtype(),
                        v.dtype()
                    ),
                ));
            }
        }
        for (v, t) in vars.iter().zip(values) {
            v.assign(t)?;
        }
        Ok(())
    }

    /// Writes the model's variables to `path` (safetensors by extension, else TensorFlow's
    /// format), atomically.
    pub fn save_weights(&self, path: impl AsRef<Path>) -> Result<()> {
        ferroflow_checkpoint::Weights::save_weights(self, path).map_err(Error::from)
    }

    /// Loads variables from `path`. A built model must match the file exactly (nothing is
    /// assigned otherwise); values for variables a lazily built layer has not created yet
    /// wait and are assigned when it builds them (deferred restoration).
    pub fn load_weights(&self, path: impl AsRef<Path>) -> Result<()> {
        self.pending
            .load(path.as_ref(), &self.variables_by_path(), self.is_built())
    }
}

/// The name a metric spec will log under (for the compile config).
fn metric_label(m: &MetricSpec) -> String {
    match m {
        MetricSpec::Name(n) => n.clone(),
        MetricSpec::Metric(m) => m.name().to_string(),
    }
}

impl Module for Model {
    fn name(&self) -> &str {
        &self.name
    }
    fn attributes(&self) -> Vec<(String, Attr<'_>)> {
        self.layer.attributes()
    }
    fn as_dyn(&self) -> &dyn Module {
        self
    }
    fn class_name(&self) -> String {
        self.layer.class_name()
    }
    /// The layer's: a frozen container trains nothing inside it (Keras' rule).
    fn trainable_variables(&self) -> Vec<Variable> {
        self.layer.trainable_variables()
    }
}

impl Trackable for Model {
    fn variables_by_path(&self) -> Vec<(String, Variable)> {
        self.layer.variables_by_path_in_order()
    }
}

/// Where a layer creates a variable, for Keras' weight order: `kernel` before `bias`,
/// `gamma` before `beta` before the moving statistics. Other names rank first, in their
/// sorted order.
fn creation_rank(leaf: &str) -> u8 {
    match leaf {
        "bias" | "beta" => 1,
        "moving_mean" => 2,
        "moving_variance" => 3,
        _ => 0,
    }
}

/// Variables by object path, each once, reordered within each owner (the path before the
/// last `/`) by [`creation_rank`].
fn keras_weight_order(by_path: Vec<(String, Variable)>) -> Vec<Variable> {
    let mut seen = std::collections::HashSet::new();
    let mut unique: Vec<(String, Variable)> = by_path.into_iter().filter(|(_, v)| seen.insert(v.id())).collect();
    let owner = |p: &str| p.rsplit_once('/').map_or("", |(o, _)| o).to_string();
    let leaf = |p: &str| p.rsplit_once('/').map_or(p, |(_, l)| l).to_string();
    let mut start = 0;
    while start < unique.len() {
        let o = owner(&unique[start].0);
        let end = start + unique[start..].iter().take_while(|(p, _)| owner(p) == o).count();
        unique[start..end].sort_by_key(|(p, _)| creation_rank(&leaf(p)));
        start = end;
    }
    unique.into_iter().map(|(_, v)| v).collect()
}
