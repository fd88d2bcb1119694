//! Keras' losses between distributions or counts: Kullback-Leibler divergence and Poisson,
//! each a value per sample (the last axis reduced).

use super::{check_pair, last_axis_mean, EPSILON};
use ferroflow_tensor_core::{Result, Tensor};

/// `sum(t · log(t / p), axis=-1)` per sample, with `t` and `p` clipped to `[ε, 1]`.
pub(super) fn kl_divergence_per_sample(y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
    check_pair("kl_divergence", y_true, y_pred)?;
    let t = y_true.clip_by_value(EPSILON, 1.0)?;
    let p = y_pred.clip_by_value(EPSILON, 1.0)?;
    t.mul(&t.div(&p)?.log()?)?.reduce_sum(-1)
}

/// `mean(y_pred - y_true · log(y_pred + ε), axis=-1)` per sample.
pub(super) fn poisson_per_sample(y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
    check_pair("poisson", y_true, y_pred)?;
    let log = y_pred.add(&y_pred.scalar_like(EPSILON))?.log()?;
    last_axis_mean(&y_pred.sub(&y_true.mul(&log)?)?)
}
