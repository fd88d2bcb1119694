//! Keras metrics with streaming state: each keeps its running totals in variables, updated
//! with tensor ops, so a metric updates inside a traced training step exactly as it does
//! eagerly, and [`Metric::reset_state`] starts it over (at every epoch, as Keras does).
//!
//! ```
//! use ferroflow_nn::metrics::{self, Metric};
//! use ferroflow_tensor_core::Tensor;
//! let acc = metrics::SparseCategoricalAccuracy::new()?;
//! acc.update_state(&Tensor::new([1i32, 0]), &Tensor::new([[0.2f32, 0.8], [0.3, 0.7]]), None)?;
//! acc.update_state(&Tensor::new([0i32]), &Tensor::new([[0.9f32, 0.1]]), None)?;
//! assert!((acc.result_value()? - 2.0 / 3.0).abs() < 1e-12);
//! acc.reset_state()?;
//! assert_eq!(acc.result_value()?, 0.0);
//! # Ok::<(), ferroflow_tensor_core::Error>(())
//! ```

mod auc;
mod confusion;
mod functions;
mod loss_metrics;
mod mean;

pub use auc::Auc;
pub use confusion::{Precision, Recall};
pub use functions::{
    binary_accuracy, categorical_accuracy, mean_absolute_error, mean_squared_error, sparse_categorical_accuracy,
    squeeze_or_expand_to_same_rank, top_k_categorical_accuracy,
};
pub use mean::{
    BinaryAccuracy, CategoricalAccuracy, Mean, MeanAbsoluteError, MeanMetricWrapper, MeanSquaredError,
    SparseCategoricalAccuracy, TopKCategoricalAccuracy,
};

use ferroflow_tensor_core::{DType, Error, Result, Tensor, TensorSpec, Variable};

/// Whether a larger metric value is better (`"up"`: accuracy, AUC) or a smaller one
/// (`"down"`: errors); callbacks monitoring a metric in `auto` mode read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Larger is better.
    Up,
    /// Smaller is better.
    Down,
}

/// A streaming metric (`keras.metrics.Metric`).
pub trait Metric {
    /// The name its value is logged under (`accuracy`, `val_accuracy`, ...).
    fn name(&self) -> &str;

    /// Accumulates a batch: targets, predictions and optional per-sample weights.
    fn update_state(&self, y_true: &Tensor, y_pred: &Tensor, sample_weight: Option<&Tensor>) -> Result<()>;

    /// The value over everything accumulated since the last reset, as a float64 scalar.
    fn result(&self) -> Result<Tensor>;

    /// The state variables. Training data-parallel, the workers' states are summed before
    /// [`Metric::result`] is computed from them, so states must be totals (sums, counts,
    /// confusion counts), as every built-in metric keeps.
    fn variables(&self) -> Vec<Variable>;

    /// Which way is better.
    fn direction(&self) -> Direction;

    /// Zeroes the state.
    fn reset_state(&self) -> Result<()> {
        for v in self.variables() {
            v.assign(&Tensor::zeros(v.shape().dims(), v.dtype())?)?;
        }
        Ok(())
    }

    /// [`Metric::result`] as a number.
    fn result_value(&self) -> Result<f64> {
        self.result()?.to_scalar::<f64>()
    }
}

/// A float64 state variable of `dims`, starting at zero.
fn state(name: &str, dims: &[usize]) -> Result<Variable> {
    Variable::non_trainable(name, Tensor::zeros(dims, DType::F64)?)
}

/// `numerator / denominator`, or 0 where the denominator is 0 (`divide_no_nan`).
fn divide_no_nan(numerator: &Tensor, denominator: &Tensor) -> Result<Tensor> {
    let zero = denominator.scalar_like(0.0);
    let safe = denominator
        .equal(&zero)?
        .select(&denominator.scalar_like(1.0), denominator)?;
    denominator.equal(&zero)?.select(&zero, &numerator.div(&safe)?)
}

/// A metric chosen by Keras name, for `compile(metrics=[...])`: it is logged under exactly
/// that name. `"accuracy"` / `"acc"` pick binary, categorical or sparse accuracy from the
/// shapes of the targets and predictions, as Keras does, which is why the specs are needed.
///
/// ```
/// use ferroflow_nn::metrics::{from_name, Metric};
/// use ferroflow_tensor_core::{DType, TensorSpec};
/// let y_true = TensorSpec::new(DType::I32, [32]);
/// let y_pred = TensorSpec::new(DType::F32, [32, 10]);
/// let m = from_name("accuracy", &y_true, &y_pred)?;
/// assert_eq!(m.name(), "accuracy");
/// assert!(from_name("no_such_metric", &y_true, &y_pred).is_err());
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
pub fn from_name(name: &str, y_true: &TensorSpec, y_pred: &TensorSpec) -> Result<Box<dyn Metric>> {
    let wrap = |f: functions::MetricFn, direction| -> Result<Box<dyn Metric>> {
        Ok(Box::new(MeanMetricWrapper::new(name, f, direction)?))
    };
    match name {
        "accuracy" | "acc" | "Accuracy" | "ACC" => {
            let pred = y_pred.shape.dims();
            let truth = y_true.shape.dims();
            let binary = pred.last() == Some(&1);
            let sparse = truth.len() < pred.len() || (truth.last() == Some(&1) && pred.last().is_some_and(|&c| c > 1));
            if binary {
                wrap(binary_accuracy, Direction::Up)
            } else if sparse {
                wrap(sparse_categorical_accuracy, Direction::Up)
            } else {
                wrap(categorical_accuracy, Direction::Up)
            }
        }
        "binary_accuracy" | "BinaryAccuracy" => wrap(binary_accuracy, Direction::Up),
        "categorical_accuracy" | "CategoricalAccuracy" => wrap(categorical_accuracy, Direction::Up),
        "sparse_categorical_accuracy" | "SparseCategoricalAccuracy" => wrap(sparse_categorical_accuracy, Direction::Up),
        "top_k_categorical_accuracy" | "TopKCategoricalAccuracy" => wrap(top_k_categorical_accuracy, Direction::Up),
        "mae" | "MAE" | "mean_absolute_error" | "MeanAbsoluteError" => wrap(mean_absolute_error, Direction::Down),
        "mse" | "MSE" | "mean_squared_error" | "MeanSquaredError" => wrap(mean_squared_error, Direction::Down),
        "auc" | "AUC" => Ok(Box::new(Auc::new()?.with_name(name))),
        "precision" | "Precision" => Ok(Box::new(Precision::new()?.with_name(name))),
        "recall" | "Recall" => Ok(Box::new(Recall::new()?.with_name(name))),
        "mape" | "MAPE" | "mean_absolute_percentage_error" | "MeanAbsolutePercentageError" => {
            wrap(loss_metrics::mean_absolute_percentage_error, Direction::Down)
        }
        "msle" | "MSLE" | "mean_squared_logarithmic_error" | "MeanSquaredLogarithmicError" => {
            wrap(loss_metrics::mean_squared_logarithmic_error, Direction::Down)
        }
        "logcosh" | "log_cosh" | "log_cosh_error" | "LogCoshError" => wrap(loss_metrics::log_cosh, Direction::Down),
        "kld" | "KLD" | "kl_divergence" | "kullback_leibler_divergence" | "KLDivergence" => {
            wrap(loss_metrics::kl_divergence, Direction::Down)
        }
        "poisson" | "Poisson" => wrap(loss_metrics::poisson, Direction::Down),
        "hinge" | "Hinge" => wrap(loss_metrics::hinge, Direction::Down),
        "squared_hinge" | "SquaredHinge" => wrap(loss_metrics::squared_hinge, Direction::Down),
        "categorical_hinge" | "CategoricalHinge" => wrap(loss_metrics::categorical_hinge, Direction::Down),
        "cosine_similarity" | "CosineSimilarity" => wrap(loss_metrics::cosine_similarity, Direction::Up),
        "binary_crossentropy" | "bce" | "BCE" | "BinaryCrossentropy" => {
            wrap(loss_metrics::binary_crossentropy, Direction::Down)
        }
        "categorical_crossentropy" | "CategoricalCrossentropy" => {
            wrap(loss_metrics::categorical_crossentropy, Direction::Down)
        }
        "sparse_categorical_crossentropy" | "SparseCategoricalCrossentropy" => {
            wrap(loss_metrics::sparse_categorical_crossentropy, Direction::Down)
        }
        _ => Err(Error::invalid(
            "metrics",
            format!(
                "unknown metric {name:?}; known: accuracy, binary_accuracy, categorical_accuracy, \
                 sparse_categorical_accuracy, top_k_categorical_accuracy, mae, mse, mape, msle, logcosh, \
                 kld, poisson, hinge, squared_hinge, categorical_hinge, cosine_similarity, \
                 binary_crossentropy, categorical_crossentropy, sparse_categorical_crossentropy, auc, \
                 precision, recall"
            ),
        )),
    }
}

/// Whether `name` is a metric [`from_name`] knows (checked at `compile`, before any data).
pub fn is_known(name: &str) -> bool {
    let spec = TensorSpec::new(DType::F32, [1, 2]);
    from_name(name, &spec, &spec).is_ok()
}
