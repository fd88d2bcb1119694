//! Keras model files both ways: `cargo run --example keras_interop -- write DIR`, then
//! `scripts/verify_keras_json.py DIR` (real Keras 3), then `... -- read DIR`.
//!
//! `write` trains a small Sequential (Flatten, Dense, Dropout, Dense, Dropout, Activation),
//! freezes its first Dense (as for fine-tuning) and writes its architecture (`model.json`,
//! [`Model::to_json`]), its weights in Keras' order (`weights.json`), a batch of inputs
//! (`x.json`) and its predictions on them (`predictions.json`). The Python side loads the
//! architecture with `keras.models.model_from_json`, checks the frozen layer, sets the weights,
//! checks the predictions agree, and writes Keras' own JSON of the model (`keras.json`) and
//! Keras' predictions (`keras_predictions.json`). `read` loads Keras' file with
//! [`Model::from_json`], checks the same layer is frozen, sets the same weights and checks its
//! predictions against Keras'.

use ferroflow::nn::{Dropout, Flatten};
use ferroflow::prelude::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// The model both sides describe.
fn layers() -> Result<Sequential> {
    let mut s = Sequential::new().with_name("interop");
    s.add(Flatten::new());
    s.add(Dense::new(8).with_activation(Activation::Relu).with_seed(1));
    s.add(Dropout::new(0.5)?.with_seed(2));
    s.add(Dense::new(3).with_seed(3));
    s.add(Dropout::new(0.25)?.with_seed(4));
    s.add(Activation::Softmax);
    Ok(s)
}

fn tensor_json(t: &Tensor) -> Result<Value> {
    Ok(json!({"shape": t.dims(), "values": t.to_f64_vec()?}))
}

fn tensor_from_json(v: &Value) -> Result<Tensor> {
    let bad = || Error::invalid("keras_interop", format!("not a tensor: {v}"));
    let shape: Vec<usize> = serde_json::from_value(v["shape"].clone()).map_err(|_| bad())?;
    let values: Vec<f64> = serde_json::from_value(v["values"].clone()).map_err(|_| bad())?;
    Tensor::from_vec(values.into_iter().map(|x| x as f32).collect(), &shape)
}

fn read_json(path: &Path) -> Result<Value> {
    serde_json::from_str(&std::fs::read_to_string(path)?).map_err(|e| Error::external("keras_interop", e))
}

fn write_json(path: &Path, value: &Value) -> Result<()> {
    std::fs::write(path, value.to_string())?;
    Ok(())
}

fn write(dir: &Path) -> Result<()> {
    let x = random::normal(&[64, 2, 3], Normal::default().seed(5))?;
    // Class = which of three column sums is largest: learnable, so training moves weights.
    let y = x.reduce_sum(1)?.argmax(-1)?;
    let mut model = Model::new(layers()?);
    model
        .compile(CompileOptions::new(Adam::new(0.05)?, "sparse_categorical_crossentropy").with_metrics(["accuracy"]))?;
    model.fit((&x, &y), FitOptions::new().epochs(5).batch_size(16).seed(0).verbose(0))?;
    let probe = x.slice(&[0, 0, 0], &[8, -1, -1])?;
    let predictions = model.predict(&probe, PredictOptions::new())?;
    // Frozen for fine-tuning: the file says so and Keras must read it so.
    if let Some(layers) = model.layer().sublayers() {
        layers[1].set_trainable(false);
    }
    std::fs::write(dir.join("model.json"), model.to_json()?)?;
    let weights = model
        .get_weights()?
        .iter()
        .map(tensor_json)
        .collect::<Result<Vec<_>>>()?;
    write_json(&dir.join("weights.json"), &Value::Array(weights))?;
    write_json(&dir.join("x.json"), &tensor_json(&probe)?)?;
    write_json(&dir.join("predictions.json"), &tensor_json(&predictions)?)?;
    println!(
        "wrote {} (the model, its weights, inputs and predictions)",
        dir.display()
    );
    Ok(())
}

fn read(dir: &Path) -> Result<()> {
    let model = Model::from_json(&std::fs::read_to_string(dir.join("keras.json"))?)?;
    let weights = match read_json(&dir.join("weights.json"))? {
        Value::Array(items) => items.iter().map(tensor_from_json).collect::<Result<Vec<_>>>()?,
        other => return Err(Error::invalid("keras_interop", format!("weights.json: {other}"))),
    };
    let x = tensor_from_json(&read_json(&dir.join("x.json"))?)?;
    // Keras' file records the input shape, so the model is built and takes the weights now.
    model.set_weights(&weights)?;
    let frozen: Vec<bool> = model
        .layer()
        .sublayers()
        .map(|layers| layers.iter().map(|l| !l.trainable()).collect())
        .unwrap_or_default();
    if frozen.get(1) != Some(&true) || model.layer().trainable_variables().len() != 2 {
        return Err(Error::invalid(
            "keras_interop",
            format!("Keras' file should freeze the first Dense only (frozen: {frozen:?})"),
        ));
    }
    let ours = model.predict(&x, PredictOptions::new())?.to_f64_vec()?;
    let keras = tensor_from_json(&read_json(&dir.join("keras_predictions.json"))?)?.to_f64_vec()?;
    // A NaN difference counts as infinite (f64::max would drop it).
    let worst = ours
        .iter()
        .zip(&keras)
        .map(|(a, b)| {
            let d = (a - b).abs();
            if d.is_nan() {
                f64::INFINITY
            } else {
                d
            }
        })
        .fold(0.0f64, f64::max);
    if ours.len() != keras.len() || worst > 1e-5 {
        return Err(Error::invalid(
            "keras_interop",
            format!("predictions of Keras' model file differ from Keras' by up to {worst:e}"),
        ));
    }
    println!("keras interop: Keras' model file predicts as Keras (max difference {worst:.1e})");
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [mode, dir] if mode == "write" => write(&PathBuf::from(dir)),
        [mode, dir] if mode == "read" => read(&PathBuf::from(dir)),
        _ => Err(Error::invalid("keras_interop", "usage: keras_interop write|read DIR")),
    }
}
