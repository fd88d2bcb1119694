//! [`Precision`] and [`Recall`]: counts of true positives against false positives or false
//! negatives, a prediction being positive when it exceeds the threshold (0.5).

use super::{divide_no_nan, state, Direction, Metric};
use ferroflow_tensor_core::{Axes, DType, Error, Result, Tensor, Variable};

/// Flattened targets and positive predictions (as 0/1 float64) and weights.
fn binarize(
    y_true: &Tensor,
    y_pred: &Tensor,
    sample_weight: Option<&Tensor>,
    threshold: f64,
) -> Result<(Tensor, Tensor, Tensor)> {
    if y_true.shape().num_elements() != y_pred.shape().num_elements() {
        return Err(Error::shapes(
            "precision/recall",
            &[&y_true.shape(), &y_pred.shape()],
            "targets and predictions must have as many elements",
        ));
    }
    // Keras casts the targets to bool: any non-zero target is a positive.
    let truth = y_true.cast(DType::Bool)?.cast(DType::F64)?.reshape(&[-1])?;
    let positive = y_pred
        .greater(&y_pred.scalar_like(threshold))?
        .cast(DType::F64)?
        .reshape(&[-1])?;
    let weight = match sample_weight {
        None => truth.ones_like()?,
        Some(w) => {
            let w = w.cast(DType::F64)?;
            // A weight per sample applies to each of its outputs.
            let per_row = truth.shape().num_elements() / w.shape().num_elements().max(1);
            w.reshape(&[-1, 1])?
                .broadcast_to(&[w.shape().num_elements(), per_row])?
                .reshape(&[-1])?
        }
    };
    Ok((truth, positive, weight))
}

macro_rules! confusion_metric {
    ($(#[$doc:meta])* $t:ident, $name:literal, $other:ident, |$truth:ident, $pos:ident| $other_expr:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $t {
            name: String,
            threshold: f64,
            true_positives: Variable,
            $other: Variable,
        }

        impl $t {
            #[doc = concat!("The metric, named `", $name, "`, with threshold 0.5.")]
            pub fn new() -> Result<Self> {
                Ok($t {
                    name: $name.to_string(),
                    threshold: 0.5,
                    true_positives: state(concat!($name, "/true_positives"), &[])?,
                    $other: state(concat!($name, "/", stringify!($other)), &[])?,
                })
            }

            /// Renames the metric.
            pub fn with_name(mut self, name: &str) -> Self {
                self.name = name.to_string();
                self
            }

            /// Counts a prediction as positive above `threshold` instead of 0.5.
            pub fn with_threshold(mut self, threshold: f64) -> Self {
                self.threshold = threshold;
                self
            }
        }

        impl Metric for $t {
            fn name(&self) -> &str {
                &self.name
            }

            fn update_state(&self, y_true: &Tensor, y_pred: &Tensor, sample_weight: Option<&Tensor>) -> Result<()> {
                let ($truth, $pos, weight) = binarize(y_true, y_pred, sample_weight, self.threshold)?;
                let tp = $truth.mul(&$pos)?.mul(&weight)?.reduce_sum(Axes::All)?;
                let other = $other_expr.mul(&weight)?.reduce_sum(Axes::All)?;
                self.true_positives.assign_add(&tp)?;
                self.$other.assign_add(&other)
            }

            fn result(&self) -> Result<Tensor> {
                let tp = self.true_positives.read()?;
                divide_no_nan(&tp, &tp.add(&self.$other.read()?)?)
            }

            fn variables(&self) -> Vec<Variable> {
                vec![self.true_positives.clone(), self.$other.clone()]
            }

            fn direction(&self) -> Direction {
                Direction::Up
            }
        }
    };
}

confusion_metric!(
    /// `keras.metrics.Precision`: `tp / (tp + fp)` over everything seen (0 with no positive
    /// prediction).
    ///
    /// ```
    /// use ferroflow_nn::metrics::{Metric, Precision};
    /// use ferroflow_tensor_core::Tensor;
    /// let p = Precision::new()?;
    /// p.update_state(&Tensor::new([1.0f32, 0.0, 1.0]), &Tensor::new([0.9f32, 0.8, 0.2]), None)?;
    /// assert_eq!(p.result_value()?, 0.5);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    Precision, "precision", false_positives, |truth, pos| truth.ones_like()?.sub(&truth)?.mul(&pos)?
);

confusion_metric!(
    /// `keras.metrics.Recall`: `tp / (tp + fn)` over everything seen (0 with no positive
    /// target).
    ///
    /// ```
    /// use ferroflow_nn::metrics::{Metric, Recall};
    /// use ferroflow_tensor_core::Tensor;
    /// let r = Recall::new()?;
    /// r.update_state(&Tensor::new([1.0f32, 0.0, 1.0]), &Tensor::new([0.9f32, 0.8, 0.2]), None)?;
    /// assert_eq!(r.result_value()?, 0.5);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    Recall, "recall", false_negatives, |truth, pos| truth.mul(&pos.ones_like()?.sub(&pos)?)?
);
