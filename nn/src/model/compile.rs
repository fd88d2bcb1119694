//! `compile`'s settings: [`CompileOptions`], and the loss and metrics it accepts by value or by
//! Keras name.

use crate::metrics::Metric;
use ferroflow_optim::{Loss, Optimizer};
use ferroflow_tensor_core::{Result, Tensor};
use std::fmt;
use std::sync::Arc;

/// A custom loss function: `(y_true, y_pred) -> per-sample or averaged losses`.
pub type LossFn = Arc<dyn Fn(&Tensor, &Tensor) -> Result<Tensor>>;

/// A loss for `compile`: a [`Loss`], a Keras name (`"mse"`,
/// `"sparse_categorical_crossentropy"`), or a function of `(y_true, y_pred)` returning
/// per-sample (or already averaged) values.
#[derive(Clone)]
pub enum LossSpec {
    /// A built-in loss.
    Loss(Loss),
    /// A Keras name, resolved by `compile`.
    Name(String),
    /// A custom loss function, named.
    Function(String, LossFn),
}

impl fmt::Debug for LossSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LossSpec::Loss(l) => write!(f, "{l:?}"),
            LossSpec::Name(n) => write!(f, "{n:?}"),
            LossSpec::Function(n, _) => write!(f, "fn {n}"),
        }
    }
}

impl From<Loss> for LossSpec {
    fn from(l: Loss) -> Self {
        LossSpec::Loss(l)
    }
}

impl From<&str> for LossSpec {
    fn from(name: &str) -> Self {
        LossSpec::Name(name.to_string())
    }
}

impl From<String> for LossSpec {
    fn from(name: String) -> Self {
        LossSpec::Name(name)
    }
}

impl LossSpec {
    /// A custom loss: `f(y_true, y_pred)` gives per-sample losses (averaged, and weighted by
    /// sample weights, by the model) or one already averaged value. As Keras'
    /// `LossFunctionWrapper`, the model first brings the two to one rank (`[b]` labels
    /// against a `[b, 1]` output arrive as `[b, 1]`) and the targets to the predictions'
    /// float dtype.
    pub fn function(name: &str, f: impl Fn(&Tensor, &Tensor) -> Result<Tensor> + 'static) -> Self {
        LossSpec::Function(name.to_string(), Arc::new(f))
    }
}

/// A metric for `compile`: a Keras name (`"accuracy"`, `"mae"`, `"auc"`) or a metric object.
pub enum MetricSpec {
    /// A Keras name; `"accuracy"` is resolved from the shapes of the first batch.
    Name(String),
    /// A metric object.
    Metric(Box<dyn Metric>),
}

impl fmt::Debug for MetricSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricSpec::Name(n) => write!(f, "{n:?}"),
            MetricSpec::Metric(m) => write!(f, "{}", m.name()),
        }
    }
}

impl From<&str> for MetricSpec {
    fn from(name: &str) -> Self {
        MetricSpec::Name(name.to_string())
    }
}

impl From<String> for MetricSpec {
    fn from(name: String) -> Self {
        MetricSpec::Name(name)
    }
}

impl<M: Metric + 'static> From<M> for MetricSpec {
    fn from(m: M) -> Self {
        MetricSpec::Metric(Box::new(m))
    }
}

/// `model.compile(...)`'s arguments: the optimizer and the loss are required; metrics,
/// `run_eagerly` (false: the train step, test step and predict are traced into graphs) and
/// `steps_per_execution` (1) are optional.
///
/// ```
/// use ferroflow_nn::CompileOptions;
/// use ferroflow_optim::Sgd;
/// let options = CompileOptions::new(Sgd::new(0.1)?, "mse")
///     .with_metrics(["mae"])
///     .run_eagerly(false);
/// # let _ = options;
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
pub struct CompileOptions {
    pub(crate) optimizer: Box<dyn Optimizer>,
    pub(crate) loss: LossSpec,
    pub(crate) metrics: Vec<MetricSpec>,
    pub(crate) weighted_metrics: Vec<MetricSpec>,
    pub(crate) run_eagerly: bool,
    pub(crate) steps_per_execution: usize,
}

impl fmt::Debug for CompileOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompileOptions")
            .field("loss", &self.loss)
            .field("metrics", &self.metrics)
            .field("weighted_metrics", &self.weighted_metrics)
            .field("run_eagerly", &self.run_eagerly)
            .field("steps_per_execution", &self.steps_per_execution)
            .finish_non_exhaustive()
    }
}

impl CompileOptions {
    /// An optimizer and a loss (a [`Loss`], a Keras name, or [`LossSpec::function`]).
    pub fn new(optimizer: impl Optimizer + 'static, loss: impl Into<LossSpec>) -> Self {
        CompileOptions {
            optimizer: Box::new(optimizer),
            loss: loss.into(),
            metrics: Vec::new(),
            weighted_metrics: Vec::new(),
            run_eagerly: false,
            steps_per_execution: 1,
        }
    }

    /// Metrics to compute (not weighted by sample weights, as Keras' `metrics`).
    pub fn with_metrics<M: Into<MetricSpec>>(mut self, metrics: impl IntoIterator<Item = M>) -> Self {
        self.metrics.extend(metrics.into_iter().map(Into::into));
        self
    }

    /// Metrics weighted by the sample weights (Keras' `weighted_metrics`).
    pub fn with_weighted_metrics<M: Into<MetricSpec>>(mut self, metrics: impl IntoIterator<Item = M>) -> Self {
        self.weighted_metrics.extend(metrics.into_iter().map(Into::into));
        self
    }

    /// `run_eagerly=True` runs the steps eagerly (for debugging); the default traces them.
    /// `run_functions_eagerly(true)` makes every step eager regardless.
    pub fn run_eagerly(mut self, eager: bool) -> Self {
        self.run_eagerly = eager;
        self
    }

    /// Runs this many batches per traced call (Keras' `steps_per_execution`); batch-level
    /// callbacks then see every `n`-th batch.
    pub fn steps_per_execution(mut self, n: usize) -> Self {
        self.steps_per_execution = n;
        self
    }
}
