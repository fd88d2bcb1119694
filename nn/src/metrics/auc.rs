//! [`Auc`]: the area under the ROC curve from confusion counts at fixed thresholds, as
//! `keras.metrics.AUC` (200 thresholds, trapezoidal interpolation).

use super::{divide_no_nan, state, Direction, Metric};
use ferroflow_tensor_core::{Axes, DType, Error, Result, Tensor, Variable};

/// `keras.metrics.AUC()`: ROC AUC with `num_thresholds` (200) evenly spaced thresholds in
/// `[0, 1]` (the ends pushed out by 1e-7), summed with the trapezoidal rule.
///
/// ```
/// use ferroflow_nn::metrics::{Auc, Metric};
/// use ferroflow_tensor_core::Tensor;
/// let auc = Auc::new()?;
/// auc.update_state(&Tensor::new([0.0f32, 0.0, 1.0, 1.0]), &Tensor::new([0.1f32, 0.4, 0.35, 0.8]), None)?;
/// assert!((auc.result_value()? - 0.75).abs() < 0.01);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Auc {
    name: String,
    thresholds: Tensor,
    true_positives: Variable,
    false_positives: Variable,
    true_negatives: Variable,
    false_negatives: Variable,
}

impl Auc {
    /// ROC AUC with 200 thresholds, named `auc`.
    pub fn new() -> Result<Self> {
        Auc::with_thresholds(200)
    }

    /// ROC AUC with `num_thresholds` (at least 2) thresholds.
    pub fn with_thresholds(num_thresholds: usize) -> Result<Self> {
        if num_thresholds < 2 {
            return Err(Error::invalid(
                "AUC",
                format!("num_thresholds must be > 1, got {num_thresholds}"),
            ));
        }
        let n = num_thresholds;
        let t: Vec<f64> = (0..n)
            .map(|i| match i {
                0 => -1e-7,
                i if i == n - 1 => 1.0 + 1e-7,
                i => i as f64 / (n - 1) as f64,
            })
            .collect();
        Ok(Auc {
            name: "auc".into(),
            thresholds: Tensor::from_vec(t, &[1, n])?,
            true_positives: state("auc/true_positives", &[n])?,
            false_positives: state("auc/false_positives", &[n])?,
            true_negatives: state("auc/true_negatives", &[n])?,
            false_negatives: state("auc/false_negatives", &[n])?,
        })
    }

    /// Renames the metric.
    pub fn with_name(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }
}

impl Metric for Auc {
    fn name(&self) -> &str {
        &self.name
    }

    fn update_state(&self, y_true: &Tensor, y_pred: &Tensor, sample_weight: Option<&Tensor>) -> Result<()> {
        if y_true.shape().num_elements() != y_pred.shape().num_elements() {
            return Err(Error::shapes(
                "AUC",
                &[&y_true.shape(), &y_pred.shape()],
                "targets and predictions must have as many elements",
            ));
        }
        // As Keras: a target is positive when non-zero, and scores are clipped into [0, 1]
        // (so a negative score still counts as positive at the lowest threshold, -1e-7).
        let truth = y_true.cast(DType::Bool)?.cast(DType::F64)?.reshape(&[-1, 1])?;
        let pred = y_pred.cast(DType::F64)?.clip_by_value(0.0, 1.0)?.reshape(&[-1, 1])?;
        let above = pred.greater(&self.thresholds)?.cast(DType::F64)?; // [n, T]
        let mut weight = truth.ones_like()?;
        if let Some(w) = sample_weight {
            let w = w.cast(DType::F64)?;
            let per_row = truth.shape().num_elements() / w.shape().num_elements().max(1);
            weight = w
                .reshape(&[-1, 1])?
                .broadcast_to(&[w.shape().num_elements(), per_row])?
                .reshape(&[-1, 1])?;
        }
        let pos = truth.mul(&weight)?;
        let neg = truth.ones_like()?.sub(&truth)?.mul(&weight)?;
        let below = above.ones_like()?.sub(&above)?;
        let sum0 = |t: Tensor| t.reduce_sum(0);
        self.true_positives.assign_add(&sum0(above.mul(&pos)?)?)?;
        self.false_positives.assign_add(&sum0(above.mul(&neg)?)?)?;
        self.true_negatives.assign_add(&sum0(below.mul(&neg)?)?)?;
        self.false_negatives.assign_add(&sum0(below.mul(&pos)?)?)
    }

    fn result(&self) -> Result<Tensor> {
        let tp = self.true_positives.read()?;
        let fp = self.false_positives.read()?;
        let tn = self.true_negatives.read()?;
        let fnn = self.false_negatives.read()?;
        let recall = divide_no_nan(&tp, &tp.add(&fnn)?)?;
        let fpr = divide_no_nan(&fp, &fp.add(&tn)?)?;
        let n = self.thresholds.dims()[1] as i64;
        let head = |t: &Tensor| t.slice(&[0], &[n - 1]);
        let tail = |t: &Tensor| t.slice(&[1], &[n - 1]);
        let heights = head(&recall)?.add(&tail(&recall)?)?.mul(&recall.scalar_like(0.5))?;
        head(&fpr)?.sub(&tail(&fpr)?)?.mul(&heights)?.reduce_sum(Axes::All)
    }

    fn variables(&self) -> Vec<Variable> {
        vec![
            self.true_positives.clone(),
            self.false_positives.clone(),
            self.true_negatives.clone(),
            self.false_negatives.clone(),
        ]
    }

    fn direction(&self) -> Direction {
        Direction::Up
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_and_inverted_rankings() -> Result<()> {
        let auc = Auc::new()?;
        let y = Tensor::new([0.0f32, 0.0, 1.0, 1.0]);
        auc.update_state(&y, &Tensor::new([0.1f32, 0.2, 0.8, 0.9]), None)?;
        assert!((auc.result_value()? - 1.0).abs() < 1e-9);
        auc.reset_state()?;
        auc.update_state(&y, &Tensor::new([0.9f32, 0.8, 0.2, 0.1]), None)?;
        assert!(auc.result_value()?.abs() < 1e-9);
        assert!(Auc::with_thresholds(1).is_err());
        Ok(())
    }
}
