//! Keras' regression losses beyond MSE, MAE and Huber: percentage error, squared log error,
//! log-cosh and cosine similarity, each a value per sample (the last axis reduced).

use super::{check_pair, last_axis_mean, EPSILON};
use ferroflow_tensor_core::{Axes, Result, Tensor};

/// `100 · mean(|y_true - y_pred| / max(|y_true|, ε), axis=-1)` per sample.
pub(super) fn mape_per_sample(y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
    check_pair("mean_absolute_percentage_error", y_true, y_pred)?;
    let scale = y_true.abs()?.maximum(&y_true.scalar_like(EPSILON))?;
    let diff = y_true.sub(y_pred)?.div(&scale)?.abs()?;
    last_axis_mean(&diff)?.mul(&diff.scalar_like(100.0))
}

/// `mean((log(max(y_pred, ε) + 1) - log(max(y_true, ε) + 1))², axis=-1)` per sample.
pub(super) fn msle_per_sample(y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
    check_pair("mean_squared_logarithmic_error", y_true, y_pred)?;
    let log1 = |t: &Tensor| -> Result<Tensor> { t.maximum(&t.scalar_like(EPSILON))?.add(&t.scalar_like(1.0))?.log() };
    last_axis_mean(&log1(y_pred)?.sub(&log1(y_true)?)?.square()?)
}

/// `mean(log(cosh(y_pred - y_true)), axis=-1)` per sample, as Keras computes it without
/// overflow: `x + softplus(-2x) - log 2`.
pub(super) fn log_cosh_per_sample(y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
    check_pair("log_cosh", y_true, y_pred)?;
    let x = y_pred.sub(y_true)?;
    let per = x
        .add(&x.mul(&x.scalar_like(-2.0))?.softplus()?)?
        .sub(&x.scalar_like(std::f64::consts::LN_2))?;
    last_axis_mean(&per)
}

/// `-sum(normalize(y_true) · normalize(y_pred), axis=-1)` per sample, Keras'
/// `normalize(x) = x / max(‖x‖, ε)` along the last axis.
pub(super) fn cosine_similarity_per_sample(y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
    check_pair("cosine_similarity", y_true, y_pred)?;
    let normalize = |t: &Tensor| -> Result<Tensor> {
        let norm = t.square()?.reduce_sum(Axes::from(-1).keepdims())?.sqrt()?;
        t.div(&norm.maximum(&norm.scalar_like(EPSILON))?)
    };
    normalize(y_true)?.mul(&normalize(y_pred)?)?.reduce_sum(-1)?.neg()
}
