//! The per-sample values that mean-style metrics average: Keras' metric functions. Each
//! reduces the last axis, giving one value per sample.

use ferroflow_tensor_core::{Axes, DType, Result, Tensor};

/// A per-sample metric function: `(y_true, y_pred) -> values`.
pub type MetricFn = fn(&Tensor, &Tensor) -> Result<Tensor>;

/// Targets and predictions of one rank, as Keras' metric functions align them with
/// `squeeze_or_expand_to_same_rank` (see [`squeeze_or_expand_to_same_rank`]).
fn align(y_true: &Tensor, y_pred: &Tensor) -> Result<(Tensor, Tensor)> {
    squeeze_or_expand_to_same_rank(y_true, y_pred)
}

/// Keras' `squeeze_or_expand_to_same_rank(x1, x2)`: when the ranks differ by one and the
/// longer one ends in a size-1 axis, a rank-1 other side gains that axis, else the longer
/// one loses it (`[b]` labels against a `[b, 1]` output become `[b, 1]`; a `[b, t, 1]`
/// output against `[b, t]` labels becomes `[b, t]`).
///
/// ```
/// use ferroflow_nn::metrics::squeeze_or_expand_to_same_rank;
/// use ferroflow_tensor_core::{DType, Tensor};
/// let (t, p) = squeeze_or_expand_to_same_rank(&Tensor::zeros(&[4], DType::F32)?, &Tensor::zeros(&[4, 1], DType::F32)?)?;
/// assert_eq!((t.dims(), p.dims()), (&[4, 1][..], &[4, 1][..]));
/// let (t, p) = squeeze_or_expand_to_same_rank(&Tensor::zeros(&[2, 3], DType::F32)?, &Tensor::zeros(&[2, 3, 1], DType::F32)?)?;
/// assert_eq!((t.dims(), p.dims()), (&[2, 3][..], &[2, 3][..]));
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
pub fn squeeze_or_expand_to_same_rank(x1: &Tensor, x2: &Tensor) -> Result<(Tensor, Tensor)> {
    let (mut a, mut b) = (x1.clone(), x2.clone());
    let (ra, rb) = (a.rank(), b.rank());
    if ra == rb + 1 && a.dims().last() == Some(&1) {
        if rb == 1 {
            b = b.expand_dims(-1)?;
        } else {
            a = a.squeeze(-1)?;
        }
    } else if rb == ra + 1 && b.dims().last() == Some(&1) {
        if ra == 1 {
            a = a.expand_dims(-1)?;
        } else {
            b = b.squeeze(-1)?;
        }
    }
    Ok((a, b))
}

/// Integer class ids from sparse labels: a trailing axis of 1 squeezed, as int64.
fn class_ids(y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
    let ids = if y_true.rank() == y_pred.rank() && y_true.dims().last() == Some(&1) {
        y_true.squeeze(-1)?
    } else {
        y_true.clone()
    };
    ids.cast(DType::I64)
}

/// The mean over the last axis of a 0/1 comparison.
fn mean_last(hits: &Tensor) -> Result<Tensor> {
    let hits = hits.cast(DType::F64)?;
    if hits.rank() == 0 {
        Ok(hits)
    } else {
        hits.reduce_mean(-1)
    }
}

/// Whether `y_pred > 0.5` matches `y_true` (`binary_accuracy`, threshold 0.5), element by
/// element as Keras 3's (the [`Mean`](super::Mean) it feeds reduces to one value per sample).
pub fn binary_accuracy(y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
    let (y_true, y_pred) = align(y_true, y_pred)?;
    let y_true = y_true.cast(DType::F64)?;
    let predicted = y_pred.greater(&y_pred.scalar_like(0.5))?.cast(DType::F64)?;
    y_true.equal(&predicted)?.cast(DType::F64)
}

/// Whether the largest prediction is at the largest target (`categorical_accuracy`, one-hot
/// targets).
pub fn categorical_accuracy(y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
    y_true.argmax(-1)?.equal(&y_pred.argmax(-1)?)?.cast(DType::F64)
}

/// Whether the largest prediction is at the class id (`sparse_categorical_accuracy`).
pub fn sparse_categorical_accuracy(y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
    class_ids(y_true, y_pred)?.equal(&y_pred.argmax(-1)?)?.cast(DType::F64)
}

/// Whether the target class is among the 5 largest predictions
/// (`top_k_categorical_accuracy`, k = 5; ties at the boundary count as inside, as
/// `tf.math.in_top_k`).
pub fn top_k_categorical_accuracy(y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
    top_k_hits(&y_true.argmax(-1)?, y_pred, 5)
}

/// Whether each class id's prediction has fewer than `k` predictions above it.
pub(crate) fn top_k_hits(ids: &Tensor, y_pred: &Tensor, k: usize) -> Result<Tensor> {
    let classes = y_pred.dims().last().copied().unwrap_or(1);
    let one_hot = ids.one_hot(ferroflow_tensor_core::OneHot::new(classes).dtype(y_pred.dtype()))?;
    let target = y_pred.mul(&one_hot)?.reduce_sum(Axes::from(-1).keepdims())?;
    let above = y_pred.greater(&target)?.cast(DType::F64)?.reduce_sum(-1)?;
    above.less(&above.scalar_like(k as f64))?.cast(DType::F64)
}

/// `mean(|y_pred - y_true|, axis=-1)`.
pub fn mean_absolute_error(y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
    let (y_true, y_pred) = align(y_true, y_pred)?;
    let y_true = y_true.cast(y_pred.dtype())?;
    mean_last(&y_pred.sub(&y_true)?.abs()?)
}

/// `mean((y_pred - y_true)², axis=-1)`.
pub fn mean_squared_error(y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
    let (y_true, y_pred) = align(y_true, y_pred)?;
    let y_true = y_true.cast(y_pred.dtype())?;
    mean_last(&y_pred.sub(&y_true)?.square()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_sample_values_follow_keras() -> Result<()> {
        let p = Tensor::new([[0.1f32, 0.7, 0.2], [0.5, 0.3, 0.2]]);
        assert_eq!(
            sparse_categorical_accuracy(&Tensor::new([1i32, 1]), &p)?.to_vec::<f64>()?,
            vec![1.0, 0.0]
        );
        assert_eq!(
            sparse_categorical_accuracy(&Tensor::new([[1i64], [0]]), &p)?.to_vec::<f64>()?,
            vec![1.0, 1.0]
        );
        let onehot = Tensor::new([[0.0f32, 0.0, 1.0], [1.0, 0.0, 0.0]]);
        assert_eq!(categorical_accuracy(&onehot, &p)?.to_vec::<f64>()?, vec![0.0, 1.0]);
        assert_eq!(
            top_k_hits(&Tensor::new([2i64, 2]), &p, 2)?.to_vec::<f64>()?,
            vec![1.0, 0.0]
        );
        let b = binary_accuracy(&Tensor::new([1.0f32, 0.0]), &Tensor::new([[0.6f32], [0.6]]))?;
        assert_eq!(b.to_vec::<f64>()?, vec![1.0, 0.0]);
        let mae = mean_absolute_error(&Tensor::new([[1.0f64, 2.0]]), &Tensor::new([[2.0f64, 4.0]]))?;
        assert_eq!(mae.to_vec::<f64>()?, vec![1.5]);
        Ok(())
    }
}
