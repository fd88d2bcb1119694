//! `models.json`: the seed model and TensorFlow/Keras training trajectories reproduced with ferroflow's tape,
//! losses and optimizers — eagerly and as a traced training step — for every case in
//! float32 and float64: the loss at every step, the final weights, the final loss (and, for
//! the classifier, accuracy and predictions). The models are the lesson's user-written
//! modules (`#[derive(Module)]`), whose variable paths are the case's weight names. The CUDA
//! mode runs every case inside a GPU scope (`with tf.device('/GPU:0')`): variables,
//! optimizer state and every step on the GPU; it skips where no GPU is usable.

mod support;

use ferroflow::autodiff::GradientTape;
use ferroflow::graph::function;
use ferroflow::nn::Module;
use ferroflow::optim::{losses, Optimizer, Predictions};
use ferroflow::tensor::{with_device, Axes, DType, Device, Tensor, Variable};
use serde_json::Value;
use support::cases::{model_cases, optimizer};
use support::gpu::{gpu, GPU};
use support::oracle::{compare, tally, tensor_from_json};

/// The lesson's user-written dense layer: `act(x @ w + b)`, tracked by the derive.
#[derive(Module)]
struct DenseLayer {
    w: Variable,
    b: Variable,
    #[module(skip)]
    relu: bool,
}

impl DenseLayer {
    fn call(&self, x: &Tensor) -> ferroflow::Result<Tensor> {
        let y = x.matmul(&self.w.read()?)?.add(&self.b.read()?)?;
        if self.relu {
            y.relu()
        } else {
            Ok(y)
        }
    }
}

/// `dense_2(relu(dense_1(x)))`, a `tf.Module` with two attributes.
#[derive(Module)]
struct TwoLayers {
    dense_1: DenseLayer,
    dense_2: DenseLayer,
}

impl TwoLayers {
    fn call(&self, x: &Tensor) -> ferroflow::Result<Tensor> {
        self.dense_2.call(&self.dense_1.call(x)?)
    }
}

/// The case's model with its initial weights. Its variable paths (`dense_1/w`, ...) are the
/// case's weight names.
fn model(case: &Value) -> TwoLayers {
    let var = |n: &str| Variable::new(n, tensor_from_json(&case["initial_weights"][n])).expect("eager");
    let m = TwoLayers {
        dense_1: DenseLayer {
            w: var("dense_1/w"),
            b: var("dense_1/b"),
            relu: true,
        },
        dense_2: DenseLayer {
            w: var("dense_2/w"),
            b: var("dense_2/b"),
            relu: false,
        },
    };
    let mut paths: Vec<String> = m.variables_by_path_in_order().into_iter().map(|(p, _)| p).collect();
    let mut want: Vec<String> = case["weight_order"]
        .as_array()
        .expect("weight_order")
        .iter()
        .map(|n| n.as_str().expect("name").to_string())
        .collect();
    paths.sort();
    want.sort();
    assert_eq!(paths, want, "module paths are the case's weight names");
    m
}

fn loss_of(case: &Value, m: &TwoLayers, x: &Tensor, y: &Tensor) -> ferroflow::Result<Tensor> {
    let out = m.call(x)?;
    match case["loss"]["type"].as_str().expect("loss type") {
        "mean_squared_error" => losses::mean_squared_error(y, &out),
        "sparse_categorical_crossentropy" => losses::sparse_categorical_crossentropy(y, &out, Predictions::Logits),
        other => panic!("unknown loss {other}"),
    }
}

/// One training step of `case`'s model on a batch: the loss under a tape, then the
/// optimizer applies the gradients of every variable.
fn step(
    case: &Value,
    m: &TwoLayers,
    vars: &[Variable],
    opt: &dyn Optimizer,
    x: &Tensor,
    y: &Tensor,
) -> ferroflow::Result<Tensor> {
    let tape = GradientTape::new();
    let loss = loss_of(case, m, x, y)?;
    let grads = tape.gradient(&loss, vars)?;
    let pairs: Vec<(&Tensor, &Variable)> = grads.iter().zip(vars).collect();
    opt.apply_gradient_pairs(&pairs)?;
    Ok(loss)
}

/// A scalar result against TensorFlow's value (and, for float32, its float64 run) by the
/// oracle's rule ([`compare`]).
fn compare_scalar(got: &Tensor, want: f64, exact: Option<f64>, tol: f64) -> Result<(), String> {
    let want = Tensor::scalar(want).cast(got.dtype()).map_err(|e| e.to_string())?;
    compare(got, &want, exact.map(Tensor::scalar).as_ref(), tol)
}

/// Row ranges of each step: full batches or consecutive mini-batches, epoch after epoch.
fn batches(case: &Value, rows: usize) -> Vec<(usize, usize)> {
    let bs = case["batch_size"].as_u64().expect("batch_size") as usize;
    let steps = case["num_steps"].as_u64().expect("num_steps") as usize;
    let per_epoch = rows.div_ceil(bs);
    (0..steps)
        .map(|s| {
            let b = s % per_epoch;
            (b * bs, ((b + 1) * bs).min(rows))
        })
        .collect()
}

fn rows(t: &Tensor, (a, b): (usize, usize)) -> Tensor {
    let mut begin = vec![a as i64];
    let mut size = vec![(b - a) as i64];
    for _ in 1..t.rank() {
        begin.push(0);
        size.push(-1);
    }
    t.slice(&begin, &size).expect("batch rows")
}

/// Fails unless `t` is on `device` (where the run's scope put it).
fn placed(what: &str, t: &Tensor, device: Device) -> Result<(), String> {
    if t.device() == device {
        Ok(())
    } else {
        Err(format!("{what} on {:?}, want {device:?}", t.device()))
    }
}

/// Runs one case eagerly (`traced = false`) or with the step traced into one graph, on
/// `device` (the default device of the caller's scope), and compares everything the case
/// records. Returns a description of the first mismatch.
fn run_case(case: &Value, traced: bool, device: Device) -> Result<(), String> {
    let dtype = DType::from_name(case["dtype"].as_str().expect("dtype")).expect("dtype");
    let tol = if dtype == DType::F64 { 1e-9 } else { 1e-4 };
    let m = model(case);
    let vars = m.trainable_variables();
    let opt = optimizer(case).map_err(|e| e.to_string())?;
    let x = tensor_from_json(&case["data"]["x"]);
    let y = tensor_from_json(&case["data"]["y"]);
    let step_fn = function(|x: &Tensor, y: &Tensor| step(case, &m, &vars, &*opt, x, y));
    let floats = |key: &str| -> Option<Vec<f64>> {
        case.get(key)
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|v| v.as_f64().expect("a number")).collect())
    };
    let want_losses = floats("losses").expect("losses");
    let exact_losses = floats("exact_losses");
    for (i, range) in batches(case, x.dims()[0]).into_iter().enumerate() {
        let (bx, by) = (rows(&x, range), rows(&y, range));
        let loss = if traced {
            step_fn.call((&bx, &by))
        } else {
            step(case, &m, &vars, &*opt, &bx, &by)
        }
        .map_err(|e| e.to_string())?;
        placed(&format!("step {i}: the loss"), &loss, device)?;
        let exact = exact_losses.as_ref().map(|e| e[i]);
        compare_scalar(&loss, want_losses[i], exact, tol).map_err(|e| format!("step {i}: loss {e}"))?;
    }
    if traced && step_fn.tracing_count() > 2 {
        return Err(format!("traced {} times", step_fn.tracing_count()));
    }
    for v in &vars {
        placed(v.name(), &v.value(), device)?;
        let exact = case.get("exact_final_weights").map(|e| tensor_from_json(&e[v.name()]));
        compare(
            &v.value(),
            &tensor_from_json(&case["final_weights"][v.name()]),
            exact.as_ref(),
            tol,
        )
        .map_err(|e| format!("final {}: {e}", v.name()))?;
    }
    let final_loss = loss_of(case, &m, &x, &y).map_err(|e| e.to_string())?;
    let want = case["final_loss"].as_f64().expect("final_loss");
    let exact = case.get("exact_final_loss").and_then(Value::as_f64);
    compare_scalar(&final_loss, want, exact, tol).map_err(|e| format!("final loss {e}"))?;
    if let Some(preds) = case.get("final_predictions") {
        let logits = m.call(&x).map_err(|e| e.to_string())?;
        let got = logits.argmax(-1).map_err(|e| e.to_string())?;
        compare(&got, &tensor_from_json(preds), None, 0.0).map_err(|e| format!("predictions: {e}"))?;
        let labels = y.cast(DType::I64).map_err(|e| e.to_string())?;
        let acc = got
            .equal(&labels)
            .and_then(|c| c.cast(DType::F64))
            .and_then(|c| c.reduce_mean(Axes::All))
            .and_then(|a| a.to_scalar::<f64>())
            .map_err(|e| e.to_string())?;
        let want = case["final_accuracy"].as_f64().expect("final_accuracy");
        if (acc - want).abs() > 1e-9 {
            return Err(format!("accuracy {acc}, want {want}"));
        }
    }
    Ok(())
}

/// The lesson's seed model (`seed_sequential`, `_f64`): two bias-free sigmoid dense layers;
/// its output and the gradient of each weight, eagerly or traced, on `device`.
fn run_seed(case: &Value, traced: bool, device: Device) -> Result<(), String> {
    let dtype = DType::from_name(case["dtype"].as_str().expect("dtype")).expect("dtype");
    let (out_tol, grad_tol) = if dtype == DType::F64 {
        (1e-12, 1e-9)
    } else {
        (1e-5, 1e-4)
    };
    let names = ["dense_1/w", "dense_2/w"];
    let vars: Vec<Variable> = names
        .iter()
        .map(|n| Variable::new(*n, tensor_from_json(&case["weights"][*n]).cast(dtype).expect("cast")).expect("eager"))
        .collect();
    let body = |x: &Tensor| -> ferroflow::Result<[Tensor; 3]> {
        let tape = GradientTape::new();
        let y = x
            .matmul(&vars[0].read()?)?
            .sigmoid()?
            .matmul(&vars[1].read()?)?
            .sigmoid()?;
        let [g1, g2] = tape.gradient(&y, [&vars[0], &vars[1]])?;
        Ok([y, g1, g2])
    };
    let x = tensor_from_json(&case["input"]);
    let out = if traced { function(body).call(&x) } else { body(&x) }.map_err(|e| e.to_string())?;
    for (t, what) in out.iter().zip(["the output", "a gradient", "a gradient"]) {
        placed(what, t, device)?;
    }
    compare(&out[0], &tensor_from_json(&case["output"]), None, out_tol).map_err(|e| format!("output: {e}"))?;
    for (g, n) in out[1..].iter().zip(names) {
        compare(g, &tensor_from_json(&case["grads"][n]), None, grad_tol).map_err(|e| format!("grad {n}: {e}"))?;
    }
    Ok(())
}

/// Every case of `models.json`, eagerly and traced, on `device` (inside its scope); prints
/// `oracle <label>: P/N cases passed`.
fn run_all(label: &str, device: Device) {
    let cases = model_cases();
    assert_eq!(cases.len(), 10);
    let runs = cases.iter().flat_map(|case| {
        [false, true].map(|traced| {
            let name = format!("{} ({})", case["name"], if traced { "traced" } else { "eager" });
            let seed = case["name"].as_str().expect("name").starts_with("seed_sequential");
            let run = move || {
                with_device(device, || {
                    if seed {
                        run_seed(case, traced, device)
                    } else {
                        run_case(case, traced, device)
                    }
                })
            };
            (name, run)
        })
    });
    tally(label, runs);
}

/// Prints `oracle models: P/N cases passed`.
#[test]
fn oracle_models() {
    run_all("models", Device::Cpu);
}

/// The same cases on the GPU; prints `oracle cuda models: P/N cases passed`.
#[test]
fn oracle_cuda_models() {
    let Some(_serial) = gpu("oracle cuda models") else {
        return;
    };
    run_all("cuda models", GPU);
}
