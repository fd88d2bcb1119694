//! Averaging metrics: [`Mean`] of values, and [`MeanMetricWrapper`] averaging a per-sample
//! function (the accuracies and errors).

use super::functions::MetricFn;
use super::{divide_no_nan, state, Direction, Metric};
use ferroflow_tensor_core::{Axes, DType, Result, Tensor, Variable};

/// The weighted mean of everything given to it (`keras.metrics.Mean`): a float64 `total`
/// and `count`.
///
/// ```
/// use ferroflow_nn::metrics::Mean;
/// use ferroflow_tensor_core::Tensor;
/// let m = Mean::new("loss")?;
/// m.update_state(&Tensor::new([1.0f32, 3.0]), None)?;
/// m.update_state(&Tensor::new([5.0f32]), Some(&Tensor::new([2.0f32])))?;
/// assert_eq!(m.result()?.to_scalar::<f64>()?, (1.0 + 3.0 + 10.0) / 4.0);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Mean {
    name: String,
    total: Variable,
    count: Variable,
}

impl Mean {
    /// A mean logged as `name`.
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        Ok(Mean {
            total: state(&format!("{name}/total"), &[])?,
            count: state(&format!("{name}/count"), &[])?,
            name,
        })
    }

    /// The metric's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds `values` (any shape), weighted by `sample_weight`, as Keras' `Mean` with its
    /// `reduce_to_samplewise_values`: values and weights are brought to one rank
    /// ([`squeeze_or_expand_to_same_rank`](super::squeeze_or_expand_to_same_rank)), values
    /// averaged down to the weights' rank, weighted, and counted by the weights' per-sample
    /// mean. Unweighted, each value counts once (the same mean as one per sample, samples
    /// having equal sizes).
    pub fn update_state(&self, values: &Tensor, sample_weight: Option<&Tensor>) -> Result<()> {
        let values = values.cast(DType::F64)?;
        match sample_weight {
            None => {
                self.total.assign_add(&values.reduce_sum(Axes::All)?)?;
                self.count
                    .assign_add(&Tensor::scalar(values.shape().num_elements() as f64))?;
            }
            Some(w) => {
                let (mut v, w) = super::squeeze_or_expand_to_same_rank(&values, &w.cast(DType::F64)?)?;
                if v.rank() > w.rank() {
                    let trailing: Vec<i64> = (w.rank() as i64..v.rank() as i64).collect();
                    v = v.reduce_mean(&trailing)?;
                }
                let mut w = w.broadcast_to(v.dims())?;
                let mut weighted = v.mul(&w)?;
                // One value and one weight per sample: means over the other axes.
                if w.rank() > 1 {
                    let trailing: Vec<i64> = (1..w.rank() as i64).collect();
                    weighted = weighted.reduce_mean(&trailing)?;
                    w = w.reduce_mean(&trailing)?;
                }
                self.total.assign_add(&weighted.reduce_sum(Axes::All)?)?;
                self.count.assign_add(&w.reduce_sum(Axes::All)?)?;
            }
        }
        Ok(())
    }

    /// `total / count` (0 before any update).
    pub fn result(&self) -> Result<Tensor> {
        divide_no_nan(&self.total.read()?, &self.count.read()?)
    }

    /// The state variables (`total`, `count`).
    pub fn variables(&self) -> Vec<Variable> {
        vec![self.total.clone(), self.count.clone()]
    }
}

/// The running mean of a per-sample metric function (`MeanMetricWrapper`): what the
/// accuracies and the error metrics are.
///
/// ```
/// use ferroflow_nn::metrics::{self, Direction, MeanMetricWrapper, Metric};
/// use ferroflow_tensor_core::Tensor;
/// let mae = MeanMetricWrapper::new("mae", metrics::mean_absolute_error, Direction::Down)?;
/// mae.update_state(&Tensor::new([[1.0f32], [2.0]]), &Tensor::new([[2.0f32], [2.0]]), None)?;
/// assert_eq!(mae.result_value()?, 0.5);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct MeanMetricWrapper {
    mean: Mean,
    function: MetricFn,
    direction: Direction,
}

impl MeanMetricWrapper {
    /// Averages `function`'s per-sample values under `name`.
    pub fn new(name: &str, function: MetricFn, direction: Direction) -> Result<Self> {
        Ok(MeanMetricWrapper {
            mean: Mean::new(name)?,
            function,
            direction,
        })
    }
}

impl Metric for MeanMetricWrapper {
    fn name(&self) -> &str {
        self.mean.name()
    }

    fn update_state(&self, y_true: &Tensor, y_pred: &Tensor, sample_weight: Option<&Tensor>) -> Result<()> {
        let values = (self.function)(y_true, y_pred)?;
        self.mean.update_state(&values, sample_weight)
    }

    fn result(&self) -> Result<Tensor> {
        self.mean.result()
    }

    fn variables(&self) -> Vec<Variable> {
        self.mean.variables()
    }

    fn direction(&self) -> Direction {
        self.direction
    }
}

macro_rules! named_metric {
    ($(#[$doc:meta])* $t:ident, $name:literal, $f:path, $dir:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $t(MeanMetricWrapper);

        impl $t {
            #[doc = concat!("The metric, named `", $name, "`.")]
            pub fn new() -> Result<Self> {
                Ok($t(MeanMetricWrapper::new($name, $f, $dir)?))
            }

            /// Renames the metric.
            pub fn with_name(self, name: &str) -> Result<Self> {
                Ok($t(MeanMetricWrapper::new(name, $f, $dir)?))
            }
        }

        impl Metric for $t {
            fn name(&self) -> &str {
                self.0.name()
            }
            fn update_state(&self, y_true: &Tensor, y_pred: &Tensor, sample_weight: Option<&Tensor>) -> Result<()> {
                self.0.update_state(y_true, y_pred, sample_weight)
            }
            fn result(&self) -> Result<Tensor> {
                self.0.result()
            }
            fn variables(&self) -> Vec<Variable> {
                self.0.variables()
            }
            fn direction(&self) -> Direction {
                self.0.direction()
            }
        }
    };
}

named_metric!(
    /// `keras.metrics.BinaryAccuracy` (threshold 0.5).
    BinaryAccuracy, "binary_accuracy", super::functions::binary_accuracy, Direction::Up
);
named_metric!(
    /// `keras.metrics.CategoricalAccuracy` (one-hot targets).
    CategoricalAccuracy, "categorical_accuracy", super::functions::categorical_accuracy, Direction::Up
);
named_metric!(
    /// `keras.metrics.SparseCategoricalAccuracy` (class-id targets).
    SparseCategoricalAccuracy, "sparse_categorical_accuracy", super::functions::sparse_categorical_accuracy, Direction::Up
);
named_metric!(
    /// `keras.metrics.TopKCategoricalAccuracy` with k = 5.
    TopKCategoricalAccuracy, "top_k_categorical_accuracy", super::functions::top_k_categorical_accuracy, Direction::Up
);
named_metric!(
    /// `keras.metrics.MeanAbsoluteError`.
    MeanAbsoluteError, "mean_absolute_error", super::functions::mean_absolute_error, Direction::Down
);
named_metric!(
    /// `keras.metrics.MeanSquaredError`.
    MeanSquaredError, "mean_squared_error", super::functions::mean_squared_error, Direction::Down
);
