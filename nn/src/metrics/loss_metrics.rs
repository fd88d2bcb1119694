//! Keras' metrics that are its losses' per-sample values, averaged over samples:
//! `metrics=["mape", "kld", "hinge", "binary_crossentropy", ...]`.

use super::functions::squeeze_or_expand_to_same_rank;
use ferroflow_optim::{Loss, Predictions};
use ferroflow_tensor_core::{Result, Tensor};

/// `loss`'s value per sample, targets aligned with the predictions as Keras' metric
/// functions align them, in the predictions' dtype (class ids stay ids).
fn per_sample(loss: Loss, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
    let (y_true, y_pred) = squeeze_or_expand_to_same_rank(y_true, y_pred)?;
    let y_true = if loss.takes_class_ids() {
        y_true
    } else {
        y_true.cast(y_pred.dtype())?
    };
    loss.per_sample(&y_true, &y_pred)
}

macro_rules! loss_metric {
    ($($name:ident => $loss:expr),* $(,)?) => {
        $(
            pub(super) fn $name(y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
                per_sample($loss, y_true, y_pred)
            }
        )*
    };
}

loss_metric! {
    mean_absolute_percentage_error => Loss::MeanAbsolutePercentageError,
    mean_squared_logarithmic_error => Loss::MeanSquaredLogarithmicError,
    log_cosh => Loss::LogCosh,
    kl_divergence => Loss::KlDivergence,
    poisson => Loss::Poisson,
    hinge => Loss::Hinge,
    squared_hinge => Loss::SquaredHinge,
    categorical_hinge => Loss::CategoricalHinge,
    binary_crossentropy => Loss::BinaryCrossentropy(Predictions::Probabilities),
    categorical_crossentropy => Loss::CategoricalCrossentropy(Predictions::Probabilities),
    sparse_categorical_crossentropy => Loss::SparseCategoricalCrossentropy(Predictions::Probabilities),
}

/// Keras' `cosine_similarity` metric: the similarity itself (the loss is its negative).
pub(super) fn cosine_similarity(y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
    per_sample(Loss::CosineSimilarity, y_true, y_pred)?.neg()
}

#[cfg(test)]
mod tests {
    use crate::metrics::from_name;
    use ferroflow_optim::{Loss, Predictions};
    use ferroflow_tensor_core::{Tensor, TensorSpec};

    #[test]
    fn loss_metrics_average_the_losses_per_sample_values() {
        let t = Tensor::new([[0.0f32, 1.0, 1.0], [1.0, 0.0, 1.0]]);
        let p = Tensor::new([[0.25f32, 0.5, 0.25], [0.5, 0.25, 0.25]]);
        let spec = |x: &Tensor| TensorSpec::new(x.dtype(), x.dims().to_vec());
        for (name, loss, sign) in [
            ("mape", Loss::MeanAbsolutePercentageError, 1.0),
            ("msle", Loss::MeanSquaredLogarithmicError, 1.0),
            ("logcosh", Loss::LogCosh, 1.0),
            ("kld", Loss::KlDivergence, 1.0),
            ("poisson", Loss::Poisson, 1.0),
            ("hinge", Loss::Hinge, 1.0),
            ("squared_hinge", Loss::SquaredHinge, 1.0),
            ("categorical_hinge", Loss::CategoricalHinge, 1.0),
            ("cosine_similarity", Loss::CosineSimilarity, -1.0),
            (
                "binary_crossentropy",
                Loss::BinaryCrossentropy(Predictions::Probabilities),
                1.0,
            ),
            (
                "categorical_crossentropy",
                Loss::CategoricalCrossentropy(Predictions::Probabilities),
                1.0,
            ),
        ] {
            let m = from_name(name, &spec(&t), &spec(&p)).unwrap();
            m.update_state(&t, &p, None).unwrap();
            let want = sign * loss.call(&t, &p).unwrap().to_scalar::<f32>().unwrap() as f64;
            let got = m.result_value().unwrap();
            assert!(
                (got - want).abs() <= 1e-6 * want.abs().max(1.0),
                "{name}: {got} vs {want}"
            );
        }
        // Sparse: integer ids against probabilities.
        let ids = Tensor::new([1i32, 0]);
        let m = from_name("sparse_categorical_crossentropy", &spec(&ids), &spec(&p)).unwrap();
        m.update_state(&ids, &p, None).unwrap();
        let want = Loss::SparseCategoricalCrossentropy(Predictions::Probabilities)
            .call(&ids, &p)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap() as f64;
        assert!((m.result_value().unwrap() - want).abs() < 1e-6);
    }
}
