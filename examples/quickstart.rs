//! The ferroflow quickstart: the whole lesson, in its order — tensors, gradients, graphs
//! (`function` of `matmul(x, y) + b`, its graph for TensorBoard, `run_functions_eagerly`),
//! the lesson's `Dense` / `SequentialModule` modules, checkpoints (written, listed, restored,
//! and TensorFlow's own), a training loop by hand, and finally the same model as a Keras
//! model: `compile(run_eagerly=False, optimizer=SGD(0.1), loss=MSE)`, `fit`, `save_weights`.
//!
//! Run with `cargo run --release --example quickstart`.

use ferroflow::checkpoint::list_variables;
use ferroflow::graph::config::run_functions_eagerly;
use ferroflow::graph::export::SummaryWriter;
use ferroflow::prelude::*;
use std::cell::Cell;

/// The lesson's `Dense`: `sigmoid(x @ w)` with one weight.
#[derive(Module)]
struct Dense {
    w: Variable,
}

impl Dense {
    fn new(inputs: usize, outputs: usize, seed: u64) -> ferroflow::Result<Self> {
        let w = random::normal(&[inputs, outputs], Normal::default().seed(seed))?;
        Ok(Dense {
            w: Variable::new("w", w)?,
        })
    }

    fn call(&self, x: &Tensor) -> ferroflow::Result<Tensor> {
        x.matmul(&self.w.read()?)?.sigmoid()
    }
}

/// The lesson's `SequentialModule`: two dense layers.
#[derive(Module)]
struct SequentialModule {
    dense_1: Dense,
    dense_2: Dense,
}

impl SequentialModule {
    fn new(seed: u64) -> ferroflow::Result<Self> {
        Ok(SequentialModule {
            dense_1: Dense::new(3, 3, seed)?,
            dense_2: Dense::new(3, 1, seed + 1)?,
        })
    }

    fn call(&self, x: &Tensor) -> ferroflow::Result<Tensor> {
        self.dense_2.call(&self.dense_1.call(x)?)
    }
}

fn main() -> ferroflow::Result<()> {
    // Creation: literals, constructors and seeded random numbers.
    let x = Tensor::new([[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]]);
    println!("x = {x}");
    println!("zeros = {}", Tensor::zeros(&[2, 2], DType::F32)?);
    println!("eye = {}", Tensor::eye(3, DType::F64)?);
    println!("range = {}", Tensor::range(0.0, 10.0, 2.0, DType::I32)?);
    println!("linspace = {}", Tensor::linspace(0.0, 1.0, 5, DType::F32)?);
    random::set_seed(42);
    println!("normal (seed 42) = {}", random::normal(&[2, 3], Normal::default())?);

    // Broadcasting: [2, 3] + [3] and [2, 3] * [2, 1].
    let b = Tensor::new([10.0f32, 20.0, 30.0]);
    println!("x + b = {}", x.add(&b)?);
    let col = Tensor::new([[1.0f32], [-1.0]]);
    println!("x * col = {}", x.mul(&col)?);

    // Matmul: the lesson's `matmul(x, y) + b`; a transpose is a view.
    let y = Tensor::new([[1.0f32, 0.0], [0.0, 1.0], [1.0, 1.0]]);
    let bias = Tensor::new([0.5f32, -0.5]);
    println!("matmul(x, y) + b = {}", x.matmul(&y)?.add(&bias)?);
    println!("x · xᵀ = {}", x.matmul(&x.t()?)?);
    println!("tensordot(x, y, 1) = {}", x.tensordot(&y, 1)?);

    // Reductions: all axes, one axis, keepdims.
    println!("reduce_sum(x) = {}", x.reduce_sum(Axes::All)?);
    println!("reduce_mean(x, axis=0) = {}", x.reduce_mean(0)?);
    println!(
        "reduce_max(x, axis=1, keepdims) = {}",
        x.reduce_max(Axes::from(1).keepdims())?
    );
    println!("argmax(x, axis=1) = {}", x.argmax(1)?);
    println!("softmax(x) = {}", x.softmax(-1)?);

    // The seed model's forward pass by hand: sigmoid(sigmoid(x @ w1) @ w2).
    let input = Tensor::new([[2.0f32, 2.0, 2.0]]);
    let w1 = random::normal(&[3, 3], Normal::default().seed(1))?;
    let w2 = random::normal(&[3, 1], Normal::default().seed(2))?;
    println!(
        "model output = {}",
        input.matmul(&w1)?.sigmoid()?.matmul(&w2)?.sigmoid()?
    );

    // Gradients: a tape records what touches watched values, then walks it backwards.
    let v = Tensor::scalar(3.0f64);
    let outer = GradientTape::new();
    outer.watch(&v);
    let inner = GradientTape::new();
    inner.watch(&v);
    let cube = v.mul(&v)?.mul(&v)?;
    let d1 = inner.gradient(&cube, &v)?;
    let d2 = outer.gradient(&d1, &v)?;
    println!("d(x³)/dx at 3 = {d1}, d²(x³)/dx² = {d2}");
    // dw, db = tape.gradient(loss, [w, b]); optimizer.apply_gradients(zip(grads, vars))
    let w = Variable::new("w", Tensor::new([[0.5f32], [-0.5], [1.0]]))?;
    let b = Variable::new("b", Tensor::new([0.0f32]))?;
    let tape = GradientTape::new();
    let loss = input
        .matmul(&w.read()?)?
        .add(&b.read()?)?
        .sigmoid()?
        .reduce_sum(Axes::All)?;
    let [dw, db] = tape.gradient(&loss, [&w, &b])?;
    println!("d loss / d w = {dw}, d loss / d b = {db}");
    Sgd::new(0.1)?.apply_gradients([(dw, &w), (db, &b)])?;
    println!("w after one SGD step = {}", w.value());

    // Graphs: `function` traces the closure once per input signature, optimises the graph
    // (folding, CSE, fusion) and runs it on later calls without running the closure.
    let f = function(|x: &Tensor, y: &Tensor, b: &Tensor| x.matmul(y)?.add(b));
    println!("function: matmul(x, y) + b = {}", f.call((&x, &y, &bias))?);
    f.call((&x, &y, &bias))?;
    println!("traced {} time(s) for two calls", f.tracing_count());
    let cf = f.get_concrete_function(&[x.spec(), y.spec(), bias.spec()])?;
    println!("the graph:\n{}", cf.graph());
    println!(
        "as Graphviz:\n{}",
        ferroflow::graph::export::to_dot(cf.optimized_graph())
    );
    // The graph for TensorBoard's Graphs dashboard.
    let logdir = std::env::temp_dir().join("ferroflow-quickstart-logs");
    let mut writer = SummaryWriter::create(&logdir)?;
    writer.graph(&cf)?;
    writer.flush()?;
    println!("graph written; view it with: tensorboard --logdir {}", logdir.display());

    // run_functions_eagerly(true): every function runs its closure as plain Rust (prints,
    // breakpoints); false goes back to the traced graph.
    let calls = Cell::new(0);
    let g = function(|x: &Tensor| {
        calls.set(calls.get() + 1);
        x.square()
    });
    run_functions_eagerly(true);
    g.call(&x)?;
    g.call(&x)?;
    println!(
        "run_functions_eagerly(true): the closure ran {} times for 2 calls",
        calls.get()
    );
    run_functions_eagerly(false);
    calls.set(0);
    g.call(&x)?;
    g.call(&x)?;
    println!(
        "run_functions_eagerly(false): the closure ran {} time (tracing) for 2 calls",
        calls.get()
    );

    // Large tensors print with their middle elided, like NumPy.
    println!("{}", Tensor::range(0.0, 5000.0, 1.0, DType::F32)?.reshape(&[50, 100])?);

    // Errors name the op, the shapes and the dtypes; nothing panics.
    if let Err(e) = x.matmul(&x) {
        println!("error: {e}");
    }

    // The lesson's model as a module: variables found by the derive, by path, and its call
    // traced like `@tf.function` on `__call__` (the function borrows the model).
    let lesson_input = Tensor::new([[0.0288f32, -0.3256, 0.5925]]);
    let dense = Dense::new(3, 3, 1)?;
    println!("Dense on the lesson's input: {}", dense.call(&lesson_input)?);
    let my_model = SequentialModule::new(1)?;
    let traced_call = function(|x: &Tensor| my_model.call(x));
    println!("model results: {}", traced_call.call(&lesson_input)?);
    for (path, v) in my_model.variables_by_path_in_order() {
        println!("variable {path}: shape {:?}", v.shape().dims());
    }

    // tf.train.Checkpoint(model=my_model).write(path), list_variables, restore elsewhere.
    let dir = std::env::temp_dir().join(format!("ferroflow-quickstart-{}", std::process::id()));
    let path = Checkpoint::new()
        .track("model", &my_model)?
        .write(dir.join("my_checkpoint"))?;
    for info in list_variables(&path)? {
        println!("checkpoint: {} {:?} {}", info.name, info.shape, info.dtype);
    }
    let new_model = SequentialModule::new(7)?;
    Checkpoint::new()
        .track("model", &new_model)?
        .read(&path)?
        .assert_consumed()?;
    println!("restored model results: {}", new_model.call(&lesson_input)?);
    // TensorFlow's own checkpoint of the lesson's model restores into the Rust module and
    // gives TensorFlow's answer (0.6172168 for [[2, 2, 2]]).
    let tf_checkpoint = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/checkpoint/tests/fixtures/tf_ckpt/checkpoint1"
    );
    let from_tf = SequentialModule::new(9)?;
    Checkpoint::new()
        .track("model", &from_tf)?
        .read(tf_checkpoint)?
        .assert_consumed()?;
    println!(
        "TensorFlow's checkpoint: my_model([[2, 2, 2]]) = {}",
        from_tf.call(&Tensor::new([[2.0f32, 2.0, 2.0]]))?
    );

    // Training by hand: data, model, loss, gradients, optimizer, evaluation.
    let true_model = SequentialModule::new(100)?;
    let inputs = random::normal(&[256, 3], Normal::default().seed(3))?;
    let noise = random::normal(&[256, 1], Normal::new(0.0, 0.01).seed(4))?;
    let targets = true_model.call(&inputs)?.add(&noise)?;
    let model = SequentialModule::new(1)?;
    let mse = |y: &Tensor, p: &Tensor| Loss::MeanSquaredError.call(y, p);
    println!(
        "loss before training: {:.6}",
        mse(&targets, &model.call(&inputs)?)?.to_scalar::<f32>()?
    );
    let optimizer = Sgd::new(0.1)?;
    let variables = model.trainable_variables();
    let initial: Vec<Tensor> = variables.iter().map(Variable::value).collect();
    for epoch in 0..10 {
        for start in (0..256).step_by(32) {
            let (bx, by) = (
                inputs.slice(&[start, 0], &[32, -1])?,
                targets.slice(&[start, 0], &[32, -1])?,
            );
            let tape = GradientTape::new();
            let loss = mse(&by, &model.call(&bx)?)?;
            let grads = tape.gradient(&loss, &variables)?;
            optimizer.apply_gradients(std::iter::zip(grads, &variables))?;
        }
        if epoch % 3 == 0 {
            println!(
                "epoch {epoch}: loss {:.6}",
                mse(&targets, &model.call(&inputs)?)?.to_scalar::<f32>()?
            );
        }
    }
    println!(
        "loss after training by hand: {:.6}",
        mse(&targets, &model.call(&inputs)?)?.to_scalar::<f32>()?
    );

    // The same model as a Keras model: the module unchanged, from the same initial weights,
    // compiled (traced steps, SGD 0.1, MSE) and fitted on the same batches in the same order,
    // so it ends where the loop by hand ended.
    let mut keras_model = Model::from_module(SequentialModule::new(1)?, SequentialModule::call);
    keras_model.set_weights(&initial)?;
    keras_model.compile(CompileOptions::new(Sgd::new(0.1)?, Loss::MeanSquaredError).run_eagerly(false))?;
    let history = keras_model.fit(
        (&inputs, &targets),
        FitOptions::new().epochs(10).batch_size(32).shuffle(false).verbose(2),
    )?;
    println!(
        "Keras fit: loss per epoch {:?}",
        history.get("loss").unwrap_or_default()
    );
    let evaluation = keras_model.evaluate((&inputs, &targets), EvaluateOptions::new())?;
    println!("evaluate: {evaluation:?}");
    let weights = dir.join("my_model.weights.safetensors");
    keras_model.save_weights(&weights)?;
    println!("save_weights wrote {}", weights.display());
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
