//! Keras losses with Keras semantics: the last axis is reduced first (a mean for MSE, MAE,
//! Huber and binary cross-entropy, a sum over classes for the categorical ones), then the
//! mean over everything left (`reduction="sum_over_batch_size"`), giving a scalar. Each loss
//! computes in its inputs' dtype. Cross-entropies on probabilities clip them to
//! `[1e-7, 1 - 1e-7]`, as Keras does.

use ferroflow_tensor_core::{Error, Result, Tensor};

/// Keras' `epsilon()`, the clipping margin of probabilities.
pub const EPSILON: f64 = 1e-7;

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

/// Mean over the last axis, then over all remaining elements.
fn reduce_keras(per_element: &Tensor, last_axis_sum: bool) -> Result<Tensor> {
    // A last axis of size 1 reduces to itself exactly: skip that op.
    let per_sample = if per_element.rank() == 0 || per_element.dims().last() == Some(&1) {
        per_element.clone()
    } else if last_axis_sum {
        per_element.reduce_sum(Some(&[-1]), false)?
    } else {
        per_element.reduce_mean(Some(&[-1]), false)?
    };
    per_sample.reduce_mean(None, false)
}

/// `mean(square(y_pred - y_true), axis=-1)`, averaged over the batch.
pub fn mean_squared_error(y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
    check_pair("mean_squared_error", y_true, y_pred)?;
    reduce_keras(&y_pred.sub(y_true)?.square()?, false)
}

/// `mean(abs(y_pred - y_true), axis=-1)`, averaged over the batch.
pub fn mean_absolute_error(y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
    check_pair("mean_absolute_error", y_true, y_pred)?;
    reduce_keras(&y_pred.sub(y_true)?.abs()?, false)
}

/// Binary cross-entropy: `-(y·log(p) + (1-y)·log(1-p))` with `p` clipped (or, with
/// `from_logits`, the stable sigmoid cross-entropy), mean over the last axis, then the batch.
pub fn binary_crossentropy(y_true: &Tensor, y_pred: &Tensor, from_logits: bool) -> Result<Tensor> {
    check_pair("binary_crossentropy", y_true, y_pred)?;
    let per = if from_logits {
        y_true.sigmoid_cross_entropy_with_logits(y_pred)?
    } else {
        let p = y_pred.clip_by_value(EPSILON, 1.0 - EPSILON)?;
        let one = p.scalar_like(1.0);
        let pos = y_true.mul(&p.log()?)?;
        let neg = one.sub(y_true)?.mul(&one.sub(&p)?.log()?)?;
        pos.add(&neg)?.neg()?
    };
    reduce_keras(&per, false)
}

/// Categorical cross-entropy over the last (class) axis: probabilities are normalised to
/// sum to 1 and clipped (or, with `from_logits`, the fused softmax cross-entropy).
pub fn categorical_crossentropy(y_true: &Tensor, y_pred: &Tensor, from_logits: bool) -> Result<Tensor> {
    check_pair("categorical_crossentropy", y_true, y_pred)?;
    if y_pred.rank() == 0 {
        return Err(Error::shapes(
            "categorical_crossentropy",
            &[&y_pred.shape()],
            "needs a class axis",
        ));
    }
    let per_sample = if from_logits {
        y_true.softmax_cross_entropy_with_logits(y_pred, -1)?
    } else {
        let p = y_pred.div(&y_pred.reduce_sum(Some(&[-1]), true)?)?;
        let p = p.clip_by_value(EPSILON, 1.0 - EPSILON)?;
        y_true.mul(&p.log()?)?.reduce_sum(Some(&[-1]), false)?.neg()?
    };
    per_sample.reduce_mean(None, false)
}

/// Sparse categorical cross-entropy: integer class ids against probabilities (clipped, then
/// `log`, then the sparse softmax cross-entropy, as Keras' TensorFlow backend does) or logits.
/// A trailing `y_true` axis of size 1 is squeezed.
pub fn sparse_categorical_crossentropy(y_true: &Tensor, y_pred: &Tensor, from_logits: bool) -> Result<Tensor> {
    let op = "sparse_categorical_crossentropy";
    if !y_true.dtype().is_int() || !y_pred.dtype().is_float() {
        return Err(Error::dtypes(
            op,
            &[y_true.dtype(), y_pred.dtype()],
            "labels must be integers and predictions floats",
        ));
    }
    let labels = if y_true.rank() == y_pred.rank() && y_true.dims().last() == Some(&1) {
        y_true.squeeze(Some(&[-1]))?
    } else {
        y_true.clone()
    };
    let logits = if from_logits {
        y_pred.clone()
    } else {
        y_pred.clip_by_value(EPSILON, 1.0 - EPSILON)?.log()?
    };
    labels
        .sparse_softmax_cross_entropy_with_logits(&logits)?
        .reduce_mean(None, false)
}

/// Huber loss: `0.5·e²` where `|e| <= delta`, else `delta·|e| - 0.5·delta²`, with
/// `e = y_pred - y_true`; mean over the last axis, then the batch.
pub fn huber(y_true: &Tensor, y_pred: &Tensor, delta: f64) -> Result<Tensor> {
    check_pair("huber", y_true, y_pred)?;
    let e = y_pred.sub(y_true)?;
    let abs = e.abs()?;
    let quadratic = e.square()?.mul(&e.scalar_like(0.5))?;
    let linear = abs
        .mul(&e.scalar_like(delta))?
        .sub(&e.scalar_like(0.5 * delta * delta))?;
    let per = abs.less_equal(&e.scalar_like(delta))?.select(&quadratic, &linear)?;
    reduce_keras(&per, false)
}

/// A loss chosen by name, as `model.compile(loss=...)` takes it.
#[derive(Debug, Clone, PartialEq)]
pub enum Loss {
    /// [`mean_squared_error`].
    MeanSquaredError,
    /// [`mean_absolute_error`].
    MeanAbsoluteError,
    /// [`binary_crossentropy`].
    BinaryCrossentropy {
        /// Predictions are logits.
        from_logits: bool,
    },
    /// [`categorical_crossentropy`].
    CategoricalCrossentropy {
        /// Predictions are logits.
        from_logits: bool,
    },
    /// [`sparse_categorical_crossentropy`].
    SparseCategoricalCrossentropy {
        /// Predictions are logits.
        from_logits: bool,
    },
    /// [`huber`].
    Huber {
        /// Where the loss turns linear.
        delta: f64,
    },
}

impl Loss {
    /// The loss of a batch.
    pub fn call(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        match *self {
            Loss::MeanSquaredError => mean_squared_error(y_true, y_pred),
            Loss::MeanAbsoluteError => mean_absolute_error(y_true, y_pred),
            Loss::BinaryCrossentropy { from_logits } => binary_crossentropy(y_true, y_pred, from_logits),
            Loss::CategoricalCrossentropy { from_logits } => categorical_crossentropy(y_true, y_pred, from_logits),
            Loss::SparseCategoricalCrossentropy { from_logits } => {
                sparse_categorical_crossentropy(y_true, y_pred, from_logits)
            }
            Loss::Huber { delta } => huber(y_true, y_pred, delta),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_checked_values() {
        let t = Tensor::new([[1.0f64, 0.0], [0.0, 1.0]]);
        let p = Tensor::new([[0.5f64, 0.5], [0.25, 0.75]]);
        let mse = mean_squared_error(&t, &p).unwrap().to_scalar::<f64>().unwrap();
        assert!((mse - (0.25 + 0.25 + 0.0625 + 0.0625) / 4.0).abs() < 1e-15);
        let cce = categorical_crossentropy(&t, &p, false)
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
        assert!(sparse_categorical_crossentropy(&Tensor::new([0.0f64]), &p, false).is_err());
    }
}
