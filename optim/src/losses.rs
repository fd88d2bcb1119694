//! Keras losses with Keras semantics: the last axis is reduced first (a mean for MSE, MAE,
//! Huber, binary cross-entropy and most regression losses, a sum for the categorical ones,
//! KL divergence and cosine similarity), then the
//! mean over everything left (`reduction="sum_over_batch_size"`), giving a scalar. Each loss
//! computes in its inputs' dtype. Cross-entropies on probabilities clip them to
//! `[1e-7, 1 - 1e-7]`, as Keras does; predictions that a sigmoid or softmax activation
//! recorded ([`crate::keras_logits`]) are read through their logits instead, as Keras'
//! TensorFlow backend reads them.

use crate::keras_logits::{self, Squash};
use ferroflow_tensor_core::{Axes, DType, Error, Result, Tensor};

mod margin;
mod probabilistic;
mod regression;

/// Keras' `epsilon()`, the clipping margin of probabilities.
pub const EPSILON: f64 = 1e-7;

/// What a cross-entropy's predictions are (Keras' `from_logits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Predictions {
    /// Probabilities (`from_logits=False`, Keras' default): clipped to `[1e-7, 1 - 1e-7]`.
    #[default]
    Probabilities,
    /// Unnormalised logits (`from_logits=True`): the fused, stable cross-entropies.
    Logits,
}

fn check_pair(op: &'static str, y_true: &Tensor, y_pred: &Tensor) -> Result<()> {
    if y_true.dtype() != y_pred.dtype() || !y_pred.dtype().is_float() {
        return Err(Error::dtypes(
            op,
            &[y_true.dtype(), y_pred.dtype()],
            "y_true and y_pred must share a float dtype",
        ));
    }
    if y_true.dims() != y_pred.dims() {
        return Err(Error::shapes(
            op,
            &[&y_true.shape(), &y_pred.shape()],
            "y_true and y_pred must have the same shape",
        ));
    }
    Ok(())
}

/// The mean over the last axis: one value per sample (Keras' `reduction=None`).
fn last_axis_mean(per_element: &Tensor) -> Result<Tensor> {
    // A last axis of size 1 reduces to itself exactly: skip that op (the values keep the
    // axis; a mean over all elements is the same either way).
    if per_element.rank() == 0 || per_element.dims().last() == Some(&1) {
        Ok(per_element.clone())
    } else {
        per_element.reduce_mean(-1)
    }
}

/// Keras' `reduction="sum_over_batch_size"` of per-sample losses: their mean, with Keras'
/// edges for an empty batch. Per-sample losses of shape `[0]` (an empty batch of vectors)
/// come back as they are, as Keras returns them; any other empty set averages to 0 (Keras
/// divides with `divide_no_nan`), where a plain mean would be NaN.
fn batch_mean(per_sample: &Tensor) -> Result<Tensor> {
    match per_sample.dims() {
        [0] => Ok(per_sample.clone()),
        dims if dims.contains(&0) => Tensor::zeros(&[], per_sample.dtype()),
        _ => per_sample.reduce_mean(Axes::All),
    }
}

/// Per-sample squared error: `mean(square(y_pred - y_true), axis=-1)`.
fn mse_per_sample(y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
    check_pair("mean_squared_error", y_true, y_pred)?;
    last_axis_mean(&y_pred.sub(y_true)?.square()?)
}

/// `mean(square(y_pred - y_true), axis=-1)`, averaged over the batch.
pub fn mean_squared_error(y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
    batch_mean(&mse_per_sample(y_true, y_pred)?)
}

fn mae_per_sample(y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
    check_pair("mean_absolute_error", y_true, y_pred)?;
    last_axis_mean(&y_pred.sub(y_true)?.abs()?)
}

/// `mean(abs(y_pred - y_true), axis=-1)`, averaged over the batch.
pub fn mean_absolute_error(y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
    batch_mean(&mae_per_sample(y_true, y_pred)?)
}

/// Binary cross-entropy: `-(y·log(p) + (1-y)·log(1-p))` with `p` clipped (or, on logits,
/// the stable sigmoid cross-entropy), mean over the last axis, then the batch.
///
/// ```
/// use ferroflow_optim::losses::{binary_crossentropy, Predictions};
/// use ferroflow_tensor_core::Tensor;
/// let y = Tensor::new([[1.0f64, 0.0]]);
/// let p = binary_crossentropy(&y, &Tensor::new([[0.8f64, 0.4]]), Predictions::Probabilities)?;
/// assert!((p.to_scalar::<f64>()? - (-(0.8f64.ln()) - 0.6f64.ln()) / 2.0).abs() < 1e-12);
/// let l = binary_crossentropy(&y, &Tensor::new([[0.0f64, 0.0]]), Predictions::Logits)?;
/// assert!((l.to_scalar::<f64>()? - 2f64.ln()).abs() < 1e-12);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
pub fn binary_crossentropy(y_true: &Tensor, y_pred: &Tensor, predictions: Predictions) -> Result<Tensor> {
    batch_mean(&bce_per_sample(y_true, y_pred, predictions)?)
}

/// The predictions a cross-entropy computes from: the logits behind a recorded sigmoid or
/// softmax output, whichever of the two made it (as Keras' TensorFlow backend's
/// `_get_logits`, even when `from_logits` was asked, with the same warning), else `y_pred`
/// as given.
fn logits_behind(op: &str, y_pred: &Tensor, predictions: Predictions) -> (Tensor, Predictions) {
    match keras_logits::logits_of(y_pred) {
        Some((squash, z)) => {
            if predictions == Predictions::Logits {
                warn_once(op, squash);
            }
            (z, Predictions::Logits)
        }
        None => (y_pred.clone(), predictions),
    }
}

/// Keras' warning for `from_logits=True` on an activation's output, once per process.
fn warn_once(op: &str, squash: Squash) {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        eprintln!(
            "`{op}` received `from_logits=True`, but the predictions were produced by a {} \
             activation and thus do not represent logits; the activation's input is used.",
            squash.op_type()
        )
    });
}

fn bce_per_sample(y_true: &Tensor, y_pred: &Tensor, predictions: Predictions) -> Result<Tensor> {
    check_pair("binary_crossentropy", y_true, y_pred)?;
    let (y_pred, predictions) = logits_behind("binary_crossentropy", y_pred, predictions);
    let y_pred = &y_pred;
    let per = if predictions == Predictions::Logits {
        y_true.sigmoid_cross_entropy_with_logits(y_pred)?
    } else {
        let p = y_pred.clip_by_value(EPSILON, 1.0 - EPSILON)?;
        let one = p.scalar_like(1.0);
        let pos = y_true.mul(&p.log()?)?;
        let neg = one.sub(y_true)?.mul(&one.sub(&p)?.log()?)?;
        pos.add(&neg)?.neg()?
    };
    last_axis_mean(&per)
}

/// Categorical cross-entropy over the last (class) axis: probabilities are normalised to
/// sum to 1 and clipped (or, on logits, the fused softmax cross-entropy).
///
/// ```
/// use ferroflow_optim::losses::{categorical_crossentropy, Predictions};
/// use ferroflow_tensor_core::Tensor;
/// let y = Tensor::new([[0.0f64, 1.0]]);
/// let l = categorical_crossentropy(&y, &Tensor::new([[0.25f64, 0.75]]), Predictions::Probabilities)?;
/// assert!((l.to_scalar::<f64>()? + 0.75f64.ln()).abs() < 1e-12);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
pub fn categorical_crossentropy(y_true: &Tensor, y_pred: &Tensor, predictions: Predictions) -> Result<Tensor> {
    batch_mean(&cce_per_sample(y_true, y_pred, predictions)?)
}

fn cce_per_sample(y_true: &Tensor, y_pred: &Tensor, predictions: Predictions) -> Result<Tensor> {
    check_pair("categorical_crossentropy", y_true, y_pred)?;
    if y_pred.rank() == 0 {
        return Err(Error::shapes(
            "categorical_crossentropy",
            &[&y_pred.shape()],
            "needs a class axis",
        ));
    }
    let (y_pred, predictions) = logits_behind("categorical_crossentropy", y_pred, predictions);
    let y_pred = &y_pred;
    if predictions == Predictions::Logits {
        y_true.softmax_cross_entropy_with_logits(y_pred, -1)
    } else {
        let p = y_pred.div(&y_pred.reduce_sum(Axes::from(-1).keepdims())?)?;
        let p = p.clip_by_value(EPSILON, 1.0 - EPSILON)?;
        y_true.mul(&p.log()?)?.reduce_sum(-1)?.neg()
    }
}

/// Sparse categorical cross-entropy: integer class ids against probabilities (clipped, then
/// `log`, then the sparse softmax cross-entropy, as Keras' TensorFlow backend does) or logits.
/// A trailing `y_true` axis of size 1 is squeezed.
///
/// ```
/// use ferroflow_optim::losses::{sparse_categorical_crossentropy, Predictions};
/// use ferroflow_tensor_core::Tensor;
/// let labels = Tensor::new([1i32, 0]);
/// let logits = Tensor::new([[0.0f32, 0.0], [0.0, 0.0]]);
/// let l = sparse_categorical_crossentropy(&labels, &logits, Predictions::Logits)?;
/// assert!((l.to_scalar::<f32>()? - 2f32.ln()).abs() < 1e-6);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
pub fn sparse_categorical_crossentropy(y_true: &Tensor, y_pred: &Tensor, predictions: Predictions) -> Result<Tensor> {
    batch_mean(&scce_per_sample(y_true, y_pred, predictions)?)
}

fn scce_per_sample(y_true: &Tensor, y_pred: &Tensor, predictions: Predictions) -> Result<Tensor> {
    let op = "sparse_categorical_crossentropy";
    if !(y_true.dtype().is_int() || y_true.dtype().is_float()) || !y_pred.dtype().is_float() {
        return Err(Error::dtypes(
            op,
            &[y_true.dtype(), y_pred.dtype()],
            "labels must be numbers (class ids) and predictions floats",
        ));
    }
    // Float class ids (labels read from a float array) are cast to int64, as Keras does.
    let y_true = &if y_true.dtype().is_float() {
        y_true.cast(DType::I64)?
    } else {
        y_true.clone()
    };
    let (y_pred, predictions) = logits_behind(op, y_pred, predictions);
    let y_pred = &y_pred;
    let labels = if y_true.rank() == y_pred.rank() && y_true.dims().last() == Some(&1) {
        y_true.squeeze(-1)?
    } else {
        y_true.clone()
    };
    let logits = if predictions == Predictions::Logits {
        y_pred.clone()
    } else {
        y_pred.clip_by_value(EPSILON, 1.0 - EPSILON)?.log()?
    };
    labels.sparse_softmax_cross_entropy_with_logits(&logits)
}

/// Huber loss: `0.5·e²` where `|e| <= delta`, else `delta·|e| - 0.5·delta²`, with
/// `e = y_pred - y_true`; mean over the last axis, then the batch.
pub fn huber(y_true: &Tensor, y_pred: &Tensor, delta: f64) -> Result<Tensor> {
    batch_mean(&huber_per_sample(y_true, y_pred, delta)?)
}

fn huber_per_sample(y_true: &Tensor, y_pred: &Tensor, delta: f64) -> Result<Tensor> {
    check_pair("huber", y_true, y_pred)?;
    let e = y_pred.sub(y_true)?;
    let abs = e.abs()?;
    let quadratic = e.square()?.mul(&e.scalar_like(0.5))?;
    let linear = abs
        .mul(&e.scalar_like(delta))?
        .sub(&e.scalar_like(0.5 * delta * delta))?;
    let per = abs.less_equal(&e.scalar_like(delta))?.select(&quadratic, &linear)?;
    last_axis_mean(&per)
}

/// Public batch losses (the per-sample values averaged over the batch) for per-sample
/// functions.
macro_rules! batch_mean_losses {
    ($($(#[$doc:meta])* $name:ident => $per_sample:path;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
                batch_mean(&$per_sample(y_true, y_pred)?)
            }
        )*
    };
}

batch_mean_losses! {
    /// Keras' `mean_absolute_percentage_error`: `100 · mean(|y_true - y_pred| /
    /// max(|y_true|, ε), axis=-1)`, averaged over the batch.
    mean_absolute_percentage_error => regression::mape_per_sample;
    /// Keras' `mean_squared_logarithmic_error`: `mean((log(max(y_pred, ε) + 1) -
    /// log(max(y_true, ε) + 1))², axis=-1)`, averaged over the batch.
    mean_squared_logarithmic_error => regression::msle_per_sample;
    /// Keras' `log_cosh`: `mean(log(cosh(y_pred - y_true)), axis=-1)` (computed without
    /// overflow), averaged over the batch.
    log_cosh => regression::log_cosh_per_sample;
    /// Keras' `cosine_similarity` loss: `-sum(normalize(y_true) · normalize(y_pred),
    /// axis=-1)` (-1 for vectors pointing the same way), averaged over the batch.
    cosine_similarity => regression::cosine_similarity_per_sample;
    /// Keras' `kl_divergence`: `sum(t · log(t / p), axis=-1)` with both clipped to `[ε, 1]`,
    /// averaged over the batch.
    kl_divergence => probabilistic::kl_divergence_per_sample;
    /// Keras' `poisson`: `mean(y_pred - y_true · log(y_pred + ε), axis=-1)`, averaged over
    /// the batch.
    poisson => probabilistic::poisson_per_sample;
    /// Keras' `hinge`: `mean(max(1 - y_true · y_pred, 0), axis=-1)` (labels 0/1 read as
    /// -1/1), averaged over the batch.
    hinge => margin::hinge_per_sample;
    /// Keras' `squared_hinge`: `mean(max(1 - y_true · y_pred, 0)², axis=-1)` (labels 0/1 read
    /// as -1/1), averaged over the batch.
    squared_hinge => margin::squared_hinge_per_sample;
    /// Keras' `categorical_hinge`: `max(max((1 - y_true) · y_pred) - sum(y_true · y_pred) +
    /// 1, 0)` over the last axis, averaged over the batch.
    categorical_hinge => margin::categorical_hinge_per_sample;
}

/// A loss chosen by value or by Keras name, as `model.compile(loss=...)` takes it.
///
/// ```
/// use ferroflow_optim::losses::{Loss, Predictions};
/// use ferroflow_tensor_core::Tensor;
/// let mse: Loss = "mse".parse()?;
/// assert_eq!(mse, Loss::MeanSquaredError);
/// let l = mse.call(&Tensor::new([1.0f32, 2.0]), &Tensor::new([1.0f32, 4.0]))?;
/// assert_eq!(l.to_scalar::<f32>()?, 2.0);
/// let xent = Loss::SparseCategoricalCrossentropy(Predictions::Logits);
/// # let _ = xent;
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Loss {
    /// [`mean_squared_error`] (`"mse"`, `"mean_squared_error"`).
    MeanSquaredError,
    /// [`mean_absolute_error`] (`"mae"`, `"mean_absolute_error"`).
    MeanAbsoluteError,
    /// [`binary_crossentropy`] (`"binary_crossentropy"`: on probabilities).
    BinaryCrossentropy(Predictions),
    /// [`categorical_crossentropy`] (`"categorical_crossentropy"`: on probabilities).
    CategoricalCrossentropy(Predictions),
    /// [`sparse_categorical_crossentropy`] (`"sparse_categorical_crossentropy"`: on
    /// probabilities).
    SparseCategoricalCrossentropy(Predictions),
    /// [`huber`] with this `delta` (`"huber"`: delta 1).
    Huber(f64),
    /// [`mean_absolute_percentage_error`] ("mape", "mean_absolute_percentage_error").
    MeanAbsolutePercentageError,
    /// [`mean_squared_logarithmic_error`] ("msle", "mean_squared_logarithmic_error").
    MeanSquaredLogarithmicError,
    /// [`log_cosh`] ("log_cosh", "logcosh").
    LogCosh,
    /// [`cosine_similarity`] ("cosine_similarity").
    CosineSimilarity,
    /// [`kl_divergence`] ("kld", "kl_divergence", "kullback_leibler_divergence").
    KlDivergence,
    /// [`poisson`] ("poisson").
    Poisson,
    /// [`hinge`] ("hinge").
    Hinge,
    /// [`squared_hinge`] ("squared_hinge").
    SquaredHinge,
    /// [`categorical_hinge`] ("categorical_hinge").
    CategoricalHinge,
}

impl Loss {
    /// The loss of a batch.
    pub fn call(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        match *self {
            Loss::MeanSquaredError => mean_squared_error(y_true, y_pred),
            Loss::MeanAbsoluteError => mean_absolute_error(y_true, y_pred),
            Loss::BinaryCrossentropy(p) => binary_crossentropy(y_true, y_pred, p),
            Loss::CategoricalCrossentropy(p) => categorical_crossentropy(y_true, y_pred, p),
            Loss::SparseCategoricalCrossentropy(p) => sparse_categorical_crossentropy(y_true, y_pred, p),
            Loss::Huber(delta) => huber(y_true, y_pred, delta),
            Loss::MeanAbsolutePercentageError => mean_absolute_percentage_error(y_true, y_pred),
            Loss::MeanSquaredLogarithmicError => mean_squared_logarithmic_error(y_true, y_pred),
            Loss::LogCosh => log_cosh(y_true, y_pred),
            Loss::CosineSimilarity => cosine_similarity(y_true, y_pred),
            Loss::KlDivergence => kl_divergence(y_true, y_pred),
            Loss::Poisson => poisson(y_true, y_pred),
            Loss::Hinge => hinge(y_true, y_pred),
            Loss::SquaredHinge => squared_hinge(y_true, y_pred),
            Loss::CategoricalHinge => categorical_hinge(y_true, y_pred),
        }
    }

    /// The loss of each sample, before the batch mean (Keras' `reduction=None`): the batch
    /// dimensions of the inputs, where the last axis (features or classes) is reduced. A last
    /// axis of size 1 is kept, as it reduces to itself.
    ///
    /// ```
    /// use ferroflow_optim::Loss;
    /// use ferroflow_tensor_core::Tensor;
    /// let per = Loss::MeanSquaredError.per_sample(&Tensor::new([[0.0f32, 0.0], [1.0, 1.0]]), &Tensor::new([[1.0f32, 1.0], [1.0, 3.0]]))?;
    /// assert_eq!(per.to_vec::<f32>()?, vec![1.0, 2.0]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn per_sample(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        match *self {
            Loss::MeanSquaredError => mse_per_sample(y_true, y_pred),
            Loss::MeanAbsoluteError => mae_per_sample(y_true, y_pred),
            Loss::BinaryCrossentropy(p) => bce_per_sample(y_true, y_pred, p),
            Loss::CategoricalCrossentropy(p) => cce_per_sample(y_true, y_pred, p),
            Loss::SparseCategoricalCrossentropy(p) => scce_per_sample(y_true, y_pred, p),
            Loss::Huber(delta) => huber_per_sample(y_true, y_pred, delta),
            Loss::MeanAbsolutePercentageError => regression::mape_per_sample(y_true, y_pred),
            Loss::MeanSquaredLogarithmicError => regression::msle_per_sample(y_true, y_pred),
            Loss::LogCosh => regression::log_cosh_per_sample(y_true, y_pred),
            Loss::CosineSimilarity => regression::cosine_similarity_per_sample(y_true, y_pred),
            Loss::KlDivergence => probabilistic::kl_divergence_per_sample(y_true, y_pred),
            Loss::Poisson => probabilistic::poisson_per_sample(y_true, y_pred),
            Loss::Hinge => margin::hinge_per_sample(y_true, y_pred),
            Loss::SquaredHinge => margin::squared_hinge_per_sample(y_true, y_pred),
            Loss::CategoricalHinge => margin::categorical_hinge_per_sample(y_true, y_pred),
        }
    }

    /// Whether the loss takes integer class ids as `y_true` (the sparse cross-entropy).
    pub fn takes_class_ids(&self) -> bool {
        matches!(self, Loss::SparseCategoricalCrossentropy(_))
    }

    /// Keras' name of the loss.
    pub fn name(&self) -> &'static str {
        match self {
            Loss::MeanSquaredError => "mean_squared_error",
            Loss::MeanAbsoluteError => "mean_absolute_error",
            Loss::BinaryCrossentropy(_) => "binary_crossentropy",
            Loss::CategoricalCrossentropy(_) => "categorical_crossentropy",
            Loss::SparseCategoricalCrossentropy(_) => "sparse_categorical_crossentropy",
            Loss::Huber(_) => "huber",
            Loss::MeanAbsolutePercentageError => "mean_absolute_percentage_error",
            Loss::MeanSquaredLogarithmicError => "mean_squared_logarithmic_error",
            Loss::LogCosh => "log_cosh",
            Loss::CosineSimilarity => "cosine_similarity",
            Loss::KlDivergence => "kl_divergence",
            Loss::Poisson => "poisson",
            Loss::Hinge => "hinge",
            Loss::SquaredHinge => "squared_hinge",
            Loss::CategoricalHinge => "categorical_hinge",
        }
    }
}

impl std::str::FromStr for Loss {
    type Err = Error;

    /// Keras' names and aliases (`"mse"`, `"mean_squared_error"`, `"mae"`,
    /// `"binary_crossentropy"`, `"categorical_crossentropy"`,
    /// `"sparse_categorical_crossentropy"`, `"huber"`, `"mape"`, `"msle"`, `"log_cosh"`,
    /// `"cosine_similarity"`, `"kld"`, `"poisson"`, `"hinge"`, `"squared_hinge"`,
    /// `"categorical_hinge"`, and the class names); the cross-entropies take probabilities,
    /// as Keras' string losses do.
    fn from_str(s: &str) -> Result<Loss> {
        Ok(match s {
            "mse" | "MSE" | "mean_squared_error" | "MeanSquaredError" => Loss::MeanSquaredError,
            "mae" | "MAE" | "mean_absolute_error" | "MeanAbsoluteError" => Loss::MeanAbsoluteError,
            "binary_crossentropy" | "bce" | "BCE" | "BinaryCrossentropy" => {
                Loss::BinaryCrossentropy(Predictions::Probabilities)
            }
            "categorical_crossentropy" | "CategoricalCrossentropy" => {
                Loss::CategoricalCrossentropy(Predictions::Probabilities)
            }
            "sparse_categorical_crossentropy" | "SparseCategoricalCrossentropy" => {
                Loss::SparseCategoricalCrossentropy(Predictions::Probabilities)
            }
            "huber" | "Huber" => Loss::Huber(1.0),
            "mape" | "MAPE" | "mean_absolute_percentage_error" | "MeanAbsolutePercentageError" => {
                Loss::MeanAbsolutePercentageError
            }
            "msle" | "MSLE" | "mean_squared_logarithmic_error" | "MeanSquaredLogarithmicError" => {
                Loss::MeanSquaredLogarithmicError
            }
            "log_cosh" | "logcosh" | "LogCosh" => Loss::LogCosh,
            "cosine_similarity" | "CosineSimilarity" => Loss::CosineSimilarity,
            "kld" | "KLD" | "kl_divergence" | "kullback_leibler_divergence" | "KLDivergence" => Loss::KlDivergence,
            "poisson" | "Poisson" => Loss::Poisson,
            "hinge" | "Hinge" => Loss::Hinge,
            "squared_hinge" | "SquaredHinge" => Loss::SquaredHinge,
            "categorical_hinge" | "CategoricalHinge" => Loss::CategoricalHinge,
            _ => return Err(Error::invalid("loss", format!("unknown loss {s:?}"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Per-sample values of Keras 3.15's own loss functions on these inputs (JAX backend,
    /// float64 inputs; some of its steps round through float32, hence the tolerance).
    #[test]
    fn regression_probabilistic_and_margin_losses_match_keras() {
        let t = Tensor::new([[0.0f64, 1.0, 0.5], [2.0, -1.0, 0.25]]);
        let p = Tensor::new([[0.3f64, 0.8, -0.2], [1.5, -0.5, 0.75]]);
        let b = Tensor::new([[0.0f64, 1.0, 1.0], [1.0, 0.0, 1.0]]);
        let pm = Tensor::new([[0.2f64, 0.7, 0.1], [0.5, 0.25, 0.25]]);
        let tm = Tensor::new([[0.0f64, 1.0, 0.0], [0.3, 0.3, 0.4]]);
        let (ta, pa) = (t.abs().unwrap(), p.abs().unwrap());
        let cases: [(Loss, &Tensor, &Tensor, [f64; 2]); 10] = [
            (
                Loss::MeanAbsolutePercentageError,
                &t,
                &p,
                [100000062.5, 91.66666865348816],
            ),
            (
                Loss::MeanSquaredLogarithmicError,
                &t,
                &p,
                [0.08144588768482208, 0.04881824180483818],
            ),
            (Loss::LogCosh, &t, &p, [0.09715969860553741, 0.12011450529098511]),
            (
                Loss::CosineSimilarity,
                &t,
                &p,
                [-0.7135060680126758, -0.9365079365079365],
            ),
            (Loss::KlDivergence, &tm, &pm, [0.35667211152190276, 0.08945023160668342]),
            (Loss::Poisson, &ta, &pa, [0.7759541273117065, 0.9013790488243103]),
            (Loss::Hinge, &b, &p, [0.9000000357627869, 0.25]),
            (Loss::Hinge, &t, &p, [0.7666667699813843, 0.4375]),
            (Loss::SquaredHinge, &b, &p, [1.0566667318344116, 0.1041666716337204]),
            (Loss::CategoricalHinge, &b, &p, [0.7, 0.0]),
        ];
        for (loss, y_true, y_pred, keras) in cases {
            let per = loss.per_sample(y_true, y_pred).unwrap().to_vec::<f64>().unwrap();
            for (got, want) in per.iter().zip(keras) {
                assert!(
                    (got - want).abs() <= 1e-6 * want.abs().max(1e-6),
                    "{}: {got} vs {want}",
                    loss.name()
                );
            }
            let batch = loss.call(y_true, y_pred).unwrap().to_scalar::<f64>().unwrap();
            assert!((batch - (per[0] + per[1]) / 2.0).abs() < 1e-9);
            assert_eq!(
                loss.name().parse::<Loss>().unwrap(),
                loss,
                "{} parses back",
                loss.name()
            );
        }
        assert_eq!("kld".parse::<Loss>().unwrap(), Loss::KlDivergence);
        assert_eq!("KLDivergence".parse::<Loss>().unwrap(), Loss::KlDivergence);
    }

    /// Keras 3.15's `reduce_values`: per-sample losses of shape `[0]` come back unreduced,
    /// other empty sets average to 0 (`divide_no_nan`).
    #[test]
    fn empty_batches_reduce_as_keras_does() {
        let empty = Tensor::zeros(&[0, 10], DType::F32).unwrap();
        for loss in [Loss::MeanSquaredError, Loss::Huber(1.0), Loss::LogCosh] {
            let out = loss.call(&empty, &empty).unwrap();
            assert_eq!(out.dims(), &[0], "{}", loss.name());
        }
        let cce = categorical_crossentropy(&empty, &empty, Predictions::Logits).unwrap();
        assert_eq!(cce.dims(), &[0]);
        let wide = Tensor::zeros(&[0, 3, 10], DType::F64).unwrap();
        let zero = mean_squared_error(&wide, &wide).unwrap();
        assert_eq!((zero.dims(), zero.to_scalar::<f64>().unwrap()), (&[][..], 0.0));
    }

    #[test]
    fn hand_checked_values() {
        let t = Tensor::new([[1.0f64, 0.0], [0.0, 1.0]]);
        let p = Tensor::new([[0.5f64, 0.5], [0.25, 0.75]]);
        let mse = mean_squared_error(&t, &p).unwrap().to_scalar::<f64>().unwrap();
        assert!((mse - (0.25 + 0.25 + 0.0625 + 0.0625) / 4.0).abs() < 1e-15);
        let cce = categorical_crossentropy(&t, &p, Predictions::Probabilities)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        assert!((cce - (-(0.5f64.ln()) - 0.75f64.ln()) / 2.0).abs() < 1e-12);
        let h = huber(&Tensor::new([0.0f64, 0.0]), &Tensor::new([0.5f64, 3.0]), 1.0)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        assert!((h - (0.125 + 2.5) / 2.0).abs() < 1e-15);
        assert!(mean_squared_error(&t, &Tensor::new([1.0f64])).is_err());
        assert!(sparse_categorical_crossentropy(&Tensor::new([true, false]), &p, Predictions::Probabilities).is_err());
        // Float class ids are cast, as Keras casts them.
        let float_ids = sparse_categorical_crossentropy(&Tensor::new([0.0f64, 1.0]), &p, Predictions::Probabilities)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        assert!((float_ids - (-(0.5f64.ln()) - 0.75f64.ln()) / 2.0).abs() < 1e-12);
        assert!("hinges".parse::<Loss>().is_err());
        assert_eq!("mae".parse::<Loss>().unwrap(), Loss::MeanAbsoluteError);
    }
}
