//! Keras' maximum-margin losses: hinge, squared hinge and categorical hinge, each a value per
//! sample (the last axis reduced).

use super::{check_pair, last_axis_mean};
use ferroflow_tensor_core::{Axes, Result, Tensor};

/// Keras' `convert_binary_labels_to_hinge`: labels that are all 0 or 1 become -1 or 1;
/// other labels (already ±1) are kept. Decided over the whole batch, inside the graph.
fn hinge_labels(y_true: &Tensor) -> Result<Tensor> {
    let zero = y_true.equal(&y_true.scalar_like(0.0))?;
    let one = y_true.equal(&y_true.scalar_like(1.0))?;
    let all_binary = zero
        .logical_or(&one)?
        .cast(y_true.dtype())?
        .reduce_min(Axes::All)?
        .equal(&y_true.scalar_like(1.0))?;
    let signed = y_true.mul(&y_true.scalar_like(2.0))?.sub(&y_true.scalar_like(1.0))?;
    all_binary.broadcast_to(y_true.dims())?.select(&signed, y_true)
}

/// `max(1 - y_true · y_pred, 0)` per element.
fn margins(y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
    let one = y_pred.scalar_like(1.0);
    one.sub(&hinge_labels(y_true)?.mul(y_pred)?)?
        .maximum(&y_pred.scalar_like(0.0))
}

/// `mean(max(1 - y_true · y_pred, 0), axis=-1)` per sample, labels 0/1 read as -1/1.
pub(super) fn hinge_per_sample(y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
    check_pair("hinge", y_true, y_pred)?;
    last_axis_mean(&margins(y_true, y_pred)?)
}

/// `mean(max(1 - y_true · y_pred, 0)², axis=-1)` per sample, labels 0/1 read as -1/1.
pub(super) fn squared_hinge_per_sample(y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
    check_pair("squared_hinge", y_true, y_pred)?;
    last_axis_mean(&margins(y_true, y_pred)?.square()?)
}

/// `max(max((1 - y_true) · y_pred) - sum(y_true · y_pred) + 1, 0)` over the last axis (one-hot
/// `y_true`).
pub(super) fn categorical_hinge_per_sample(y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
    check_pair("categorical_hinge", y_true, y_pred)?;
    let pos = y_true.mul(y_pred)?.reduce_sum(-1)?;
    let neg = y_true.scalar_like(1.0).sub(y_true)?.mul(y_pred)?.reduce_max(-1)?;
    neg.sub(&pos)?
        .add(&pos.scalar_like(1.0))?
        .maximum(&pos.scalar_like(0.0))
}
