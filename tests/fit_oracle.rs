//! `models.json`'s training cases reproduced through the Keras API: the model as a
//! `Sequential` of `Dense` layers with the case's initial weights, `compile` with the case's
//! optimizer and loss, `fit` without shuffling (the same batch order), then `evaluate` and
//! `predict` — eagerly (`run_eagerly(true)`) and traced. Prints
//! `oracle fit: P/N cases passed`; the CUDA mode builds, trains and evaluates each model
//! inside a GPU scope and prints `oracle cuda fit: P/N cases passed` (it skips where no GPU
//! is usable).

mod support;

use ferroflow::prelude::*;
use serde_json::Value;
use support::cases::{model_cases, optimizer};
use support::gpu::{gpu, GPU};
use support::oracle::{compare, tally, tensor_from_json};

/// The case's two dense layers (`act(x @ w + b)`), built and holding its initial weights.
fn model(case: &Value, dtype: DType) -> ferroflow::Result<Sequential> {
    let mut layers = Sequential::new();
    for spec in case["layers"].as_array().expect("layers") {
        let name = spec["name"].as_str().expect("name");
        let activation = if spec["activation"].as_str().expect("activation") == "relu" {
            Activation::Relu
        } else {
            Activation::Linear
        };
        let dense = Dense::new(spec["out"].as_u64().expect("out") as usize)
            .with_name(name)
            .with_activation(activation)
            .with_dtype(dtype)
            .with_input_dim(spec["in"].as_u64().expect("in") as usize)?;
        let init = |key: &str| tensor_from_json(&case["initial_weights"][format!("{name}/{key}")]);
        dense.kernel().expect("built").assign(&init("w"))?;
        dense.bias().expect("bias").assign(&init("b"))?;
        layers.add(dense);
    }
    Ok(layers)
}

fn floats(case: &Value, key: &str) -> Option<Vec<f64>> {
    case.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|v| v.as_f64().expect("a number")).collect())
}

/// A scalar by the oracle's rule, in the case's dtype.
fn compare_scalar(got: f64, dtype: DType, want: f64, exact: Option<f64>, tol: f64) -> Result<(), String> {
    let got = Tensor::scalar(got).cast(dtype).map_err(|e| e.to_string())?;
    let want = Tensor::scalar(want).cast(dtype).map_err(|e| e.to_string())?;
    compare(&got, &want, exact.map(Tensor::scalar).as_ref(), tol)
}

/// One case, eagerly or traced, on `device` (the default device of the caller's scope).
fn run_case(case: &Value, eager: bool, device: Device) -> Result<(), String> {
    let e = |e: ferroflow::Error| e.to_string();
    let dtype = DType::from_name(case["dtype"].as_str().expect("dtype")).expect("dtype");
    let tol = if dtype == DType::F64 { 1e-9 } else { 1e-4 };
    let layers = model(case, dtype).map_err(e)?;
    let mut m = Model::new(layers);
    let classifier = case["loss"]["type"] == "sparse_categorical_crossentropy";
    let loss = if classifier {
        Loss::SparseCategoricalCrossentropy(Predictions::Logits)
    } else {
        "mse".parse().map_err(e)?
    };
    let mut options = CompileOptions::new(optimizer(case).map_err(e)?, loss).run_eagerly(eager);
    if classifier {
        options = options.with_metrics(["accuracy"]);
    }
    m.compile(options).map_err(e)?;
    let x = tensor_from_json(&case["data"]["x"]);
    let y = tensor_from_json(&case["data"]["y"]);
    let rows = x.dims()[0];
    let batch_size = case["batch_size"].as_u64().expect("batch_size") as usize;
    let steps = case["num_steps"].as_u64().expect("num_steps") as usize;
    let per_epoch = rows.div_ceil(batch_size);
    let epochs = steps / per_epoch;
    let history = m
        .fit(
            (&x, &y),
            FitOptions::new()
                .epochs(epochs)
                .batch_size(batch_size)
                .shuffle(false)
                .verbose(0),
        )
        .map_err(e)?;

    // The epoch's loss is the batch-size-weighted mean of its steps' losses (every batch of
    // these cases has the same size, so the plain mean).
    let losses = floats(case, "losses").expect("losses");
    let exact = floats(case, "exact_losses");
    let got = history.get("loss").ok_or("no loss in the history")?;
    if got.len() != epochs {
        return Err(format!("{} epochs in the history, want {epochs}", got.len()));
    }
    for (epoch, g) in got.iter().enumerate() {
        let mean = |v: &[f64]| v[epoch * per_epoch..(epoch + 1) * per_epoch].iter().sum::<f64>() / per_epoch as f64;
        compare_scalar(*g, dtype, mean(&losses), exact.as_deref().map(mean), tol)
            .map_err(|err| format!("epoch {epoch} loss: {err}"))?;
    }
    for (path, var) in m.variables_by_path_in_order() {
        if var.value().device() != device {
            return Err(format!("{path} on {:?}, want {device:?}", var.value().device()));
        }
        // Paths are `layers/<i>/kernel`; the case names them `dense_<i+1>/w`.
        let mut parts = path.split('/').skip(1);
        let index: usize = parts.next().and_then(|i| i.parse().ok()).ok_or("path")?;
        let key = format!(
            "dense_{}/{}",
            index + 1,
            if parts.next() == Some("kernel") { "w" } else { "b" }
        );
        let want = tensor_from_json(&case["final_weights"][&key]);
        let exact = case.get("exact_final_weights").map(|w| tensor_from_json(&w[&key]));
        compare(&var.value(), &want, exact.as_ref(), tol).map_err(|err| format!("final {key}: {err}"))?;
    }
    let logs = m
        .evaluate((&x, &y), EvaluateOptions::new().batch_size(rows))
        .map_err(e)?;
    let final_loss = logs.get("loss").ok_or("no loss")?;
    compare_scalar(
        final_loss,
        dtype,
        case["final_loss"].as_f64().expect("final_loss"),
        case.get("exact_final_loss").and_then(Value::as_f64),
        tol,
    )
    .map_err(|err| format!("final loss: {err}"))?;
    if classifier {
        let accuracy = logs.get("accuracy").ok_or("no accuracy")?;
        let want = case["final_accuracy"].as_f64().expect("final_accuracy");
        if (accuracy - want).abs() > 1e-12 {
            return Err(format!("accuracy {accuracy}, want {want}"));
        }
        let predicted = m.predict(&x, PredictOptions::new()).map_err(e)?.argmax(-1).map_err(e)?;
        compare(&predicted, &tensor_from_json(&case["final_predictions"]), None, 0.0)
            .map_err(|err| format!("predictions: {err}"))?;
    }
    Ok(())
}

/// The training cases, eagerly and traced, each inside a `device` scope; prints
/// `oracle <label>: P/N cases passed`.
fn run_all(label: &str, device: Device) {
    let cases: Vec<Value> = model_cases()
        .into_iter()
        .filter(|c| c.get("num_steps").is_some())
        .collect();
    assert_eq!(cases.len(), 8, "the training cases of models.json");
    let runs = cases.iter().flat_map(|case| {
        [true, false].map(|eager| {
            let name = format!("{} ({})", case["name"], if eager { "eager" } else { "traced" });
            (name, move || with_device(device, || run_case(case, eager, device)))
        })
    });
    tally(label, runs);
}

#[test]
fn oracle_fit() {
    run_all("fit", Device::Cpu);
}

#[test]
fn oracle_cuda_fit() {
    let Some(_serial) = gpu("oracle cuda fit") else {
        return;
    };
    run_all("cuda fit", GPU);
}
