//! Handwritten digits with the Keras API: an MLP and a small CNN trained with `fit` on the
//! 8×8 digits shipped with ferroflow-data (a stratified 80/20 split), with a progress bar,
//! a validation split, early stopping, TensorBoard curves and `save_weights`.
//!
//! `cargo run --release --example digits [-- LOGDIR]`; then `tensorboard --logdir LOGDIR`.

use ferroflow::data::{datasets, Split};
use ferroflow::nn::callbacks::{EarlyStopping, TensorBoard};
use ferroflow::nn::{Conv2D, Flatten, MaxPooling2D};
use ferroflow::prelude::*;

fn mlp() -> Sequential {
    let mut m = Sequential::new().with_name("mlp");
    m.add(Dense::new(128).with_activation(Activation::Relu).with_seed(1));
    m.add(Dense::new(10).with_seed(2));
    m
}

fn cnn() -> ferroflow::Result<Sequential> {
    let mut m = Sequential::new().with_name("cnn");
    m.add(
        Conv2D::new(16, [3, 3])
            .with_padding(Padding::Same)
            .with_activation(Activation::Relu)
            .with_seed(3),
    );
    m.add(MaxPooling2D::new([2, 2]));
    m.add(Flatten::new());
    m.add(Dense::new(64).with_activation(Activation::Relu).with_seed(4));
    m.add(Dense::new(10).with_seed(5));
    Ok(m)
}

/// Compiles, trains with early stopping on a validation split, and returns the test accuracy.
fn train(
    layers: Sequential,
    (x_train, y_train): (&Tensor, &Tensor),
    (x_test, y_test): (&Tensor, &Tensor),
    logdir: &std::path::Path,
) -> ferroflow::Result<(Model, f64)> {
    let mut model = Model::new(layers);
    model.compile(
        CompileOptions::new(
            Adam::new(0.002)?,
            Loss::SparseCategoricalCrossentropy(Predictions::Logits),
        )
        .with_metrics(["accuracy"]),
    )?;
    let mut stop = EarlyStopping::new()
        .monitor("val_loss")
        .patience(10)
        .restore_best_weights(true);
    let history = model.fit(
        (x_train, y_train),
        FitOptions::new()
            .epochs(100)
            .batch_size(16)
            .seed(0)
            .validation_split(0.1)
            .with_callback(&mut stop)
            .with_callback(TensorBoard::new(logdir.join(model.name()))),
    )?;
    if let Some(epoch) = stop.stopped_epoch() {
        println!(
            "early stopping after epoch {} (best val_loss at epoch {})",
            epoch + 1,
            stop.best().map_or(0, |b| b.1 + 1)
        );
    }
    println!("trained {} epochs", history.epoch.len());
    let logs = model.evaluate((x_test, y_test), EvaluateOptions::new())?;
    Ok((model, logs.get("accuracy").unwrap_or(0.0)))
}

fn main() -> ferroflow::Result<()> {
    let logdir = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("ferroflow-digits-logs"));
    let digits = datasets::digits()?;
    let (train_set, test_set) = digits.split(Split::test_fraction(0.2).seed(0))?;
    // Standardise each pixel with the training set's mean and deviation (border pixels that
    // are always 0 keep a deviation of 1).
    let mean = train_set.x.reduce_mean(0)?;
    let std = train_set.x.reduce_std(0)?;
    let std = std.greater(&std.scalar_like(0.0))?.select(&std, &std.ones_like()?)?;
    let standardise = |x: &Tensor| x.sub(&mean)?.div(&std);
    let (x_train, x_test) = (standardise(&train_set.x)?, standardise(&test_set.x)?);
    println!(
        "digits: {} training and {} test images",
        train_set.len(),
        test_set.len()
    );

    let (mlp, accuracy) = train(mlp(), (&x_train, &train_set.y), (&x_test, &test_set.y), &logdir)?;
    println!("{}", mlp.summary()?);
    println!("test accuracy: {accuracy:.4}");
    let weights = std::env::temp_dir().join("ferroflow-digits-mlp.safetensors");
    mlp.save_weights(&weights)?;
    println!("saved the MLP's weights to {}", weights.display());

    // The same images as 8×8×1 pictures for the CNN.
    let images = |x: &Tensor| x.reshape(&[-1, 8, 8, 1]);
    let (cnn, cnn_accuracy) = train(
        cnn()?,
        (&images(&x_train)?, &train_set.y),
        (&images(&x_test)?, &test_set.y),
        &logdir,
    )?;
    println!("{}", cnn.summary()?);
    println!("CNN accuracy on the test images: {cnn_accuracy:.4}");
    println!("view the curves with: tensorboard --logdir {}", logdir.display());
    Ok(())
}
