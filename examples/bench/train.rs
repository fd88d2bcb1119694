//! W4 and W5, the training-step workloads: the models, data and steps shared by their eager
//! and (later) graph forms.

use ferroflow::prelude::*;

/// W4's case label.
pub const W4_CASE: &str = "784-256-256-10 b128 SGD0.1 CE";
/// W5's case label.
pub const W5_CASE: &str = "3-3-1 sigmoid b32 SGD0.1 MSE";

/// A model for a training step: its trainable variables and a loss function.
pub struct TrainSetup {
    /// Trainable variables, in update order.
    pub params: Vec<Variable>,
    /// Inputs of one batch.
    pub x: Tensor,
    /// Targets of one batch.
    pub y: Tensor,
    /// Loss of a batch, reading the variables.
    pub loss: fn(&[Variable], &Tensor, &Tensor) -> ferroflow::Result<Tensor>,
    /// Learning rate as a tensor.
    pub lr: Tensor,
}

/// W4: 784→256 relu →256 relu →10 logits, He-normal weights, zero biases, batch 128.
pub fn w4_setup() -> ferroflow::Result<TrainSetup> {
    random::set_seed(0);
    let shapes = [(784usize, 256usize), (256, 256), (256, 10)];
    let mut params = Vec::new();
    for (i, &(fan_in, out)) in shapes.iter().enumerate() {
        let w = random::normal(&[fan_in, out], Normal::new(0.0, (2.0 / fan_in as f64).sqrt()))?;
        params.push(Variable::new(format!("dense_{}/w", i + 1), w)?);
        params.push(Variable::new(
            format!("dense_{}/b", i + 1),
            Tensor::zeros(&[out], DType::F32)?,
        )?);
    }
    let x = random::normal(&[128, 784], Normal::default().seed(11))?;
    let y = random::uniform(&[128], Uniform::new(0.0, 10.0).dtype(DType::I32).seed(12))?;
    Ok(TrainSetup {
        params,
        x,
        y,
        loss: w4_loss,
        lr: Tensor::scalar(0.1f32),
    })
}

/// W4's logits.
pub fn w4_forward(p: &[Variable], x: &Tensor) -> ferroflow::Result<Tensor> {
    let h = x.matmul(&p[0].read()?)?.add(&p[1].read()?)?.relu()?;
    let h = h.matmul(&p[2].read()?)?.add(&p[3].read()?)?.relu()?;
    h.matmul(&p[4].read()?)?.add(&p[5].read()?)
}

fn w4_loss(p: &[Variable], x: &Tensor, y: &Tensor) -> ferroflow::Result<Tensor> {
    y.sparse_softmax_cross_entropy_with_logits(&w4_forward(p, x)?)?
        .reduce_mean(Axes::All)
}

/// W5: the seed model (3→3→1, sigmoid, no bias), MSE, batch 32.
pub fn w5_setup() -> ferroflow::Result<TrainSetup> {
    random::set_seed(0);
    let params = vec![
        Variable::new("dense_1/w", random::normal(&[3, 3], Normal::default())?)?,
        Variable::new("dense_2/w", random::normal(&[3, 1], Normal::default())?)?,
    ];
    let x = random::normal(&[32, 3], Normal::default().seed(13))?;
    let y = random::uniform(&[32, 1], Uniform::default().seed(14))?;
    Ok(TrainSetup {
        params,
        x,
        y,
        loss: w5_loss,
        lr: Tensor::scalar(0.1f32),
    })
}

/// The seed model's output.
pub fn w5_forward(p: &[Variable], x: &Tensor) -> ferroflow::Result<Tensor> {
    x.matmul(&p[0].read()?)?.sigmoid()?.matmul(&p[1].read()?)?.sigmoid()
}

fn w5_loss(p: &[Variable], x: &Tensor, y: &Tensor) -> ferroflow::Result<Tensor> {
    w5_forward(p, x)?.sub(y)?.square()?.reduce_mean(Axes::All)
}

/// One eager training step: forward under a tape, gradients, `assign_sub(lr * g)`.
pub fn eager_step(s: &TrainSetup) -> ferroflow::Result<Tensor> {
    step(s, &s.x, &s.y)
}

/// One training step of `s` on a batch.
fn step(s: &TrainSetup, x: &Tensor, y: &Tensor) -> ferroflow::Result<Tensor> {
    let tape = GradientTape::new();
    let loss = (s.loss)(&s.params, x, y)?;
    let grads = tape.gradient(&loss, &s.params)?;
    for (p, g) in s.params.iter().zip(grads) {
        p.assign_sub(&g.mul(&s.lr)?)?;
    }
    Ok(loss)
}

/// The same training step traced into one graph: forward, tape gradient and updates.
pub fn graph_step(s: &TrainSetup) -> Function<'_, (Tensor, Tensor), Tensor> {
    function(move |x: &Tensor, y: &Tensor| step(s, x, y))
}

/// The same model built from nn layers, with optim's loss and SGD: what a Keras user writes.
pub struct NnSetup {
    /// The model.
    pub model: Sequential,
    /// Inputs of one batch.
    pub x: Tensor,
    /// Targets of one batch.
    pub y: Tensor,
    /// The loss.
    pub loss: Loss,
    /// The optimizer.
    pub opt: Sgd,
}

/// W4 or W5 written with `Sequential`, `Dense`, a loss and `Sgd`, initialised with the
/// hand-written setup's weights so both run the same numbers.
pub fn nn_setup(hand: &TrainSetup, w4: bool) -> ferroflow::Result<NnSetup> {
    let mut model = Sequential::new();
    let layers: Vec<(usize, Activation, bool)> = if w4 {
        vec![
            (256, Activation::Relu, true),
            (256, Activation::Relu, true),
            (10, Activation::Linear, true),
        ]
    } else {
        vec![(3, Activation::Sigmoid, false), (1, Activation::Sigmoid, false)]
    };
    let mut in_dim = hand.x.dims()[1];
    let mut p = hand.params.iter();
    for (units, act, bias) in layers {
        let d = Dense::new(units)
            .with_activation(act)
            .with_bias(bias)
            .with_input_dim(in_dim)?;
        if let (Some(k), Some(w)) = (d.kernel(), p.next()) {
            k.assign(&w.value())?;
        }
        if bias {
            if let (Some(b), Some(v)) = (d.bias(), p.next()) {
                b.assign(&v.value())?;
            }
        }
        in_dim = units;
        model.add(d);
    }
    let loss = if w4 {
        Loss::SparseCategoricalCrossentropy(Predictions::Logits)
    } else {
        Loss::MeanSquaredError
    };
    Ok(NnSetup {
        model,
        x: hand.x.clone(),
        y: hand.y.clone(),
        loss,
        opt: Sgd::new(0.1)?,
    })
}

/// One training step with the nn model: tape, loss, `apply_gradients`.
pub fn nn_step(n: &NnSetup, vars: &[Variable], x: &Tensor, y: &Tensor) -> ferroflow::Result<Tensor> {
    let tape = GradientTape::new();
    let loss = n.loss.call(y, &n.model.call(x, Mode::Training)?)?;
    let grads = tape.gradient(&loss, vars)?;
    n.opt.apply_gradients(std::iter::zip(grads, vars))?;
    Ok(loss)
}

/// W4 or W5 as a compiled Keras model (traced steps, the hand-written setup's weights), with
/// the steps `fit` runs per timed call: `k` copies of the batch as a repeated dataset, as the
/// Keras peer does (`Dataset.from_tensors((x, y)).repeat(k)`, `fit(epochs=1, verbose=0)`).
pub fn fit_setup(hand: &TrainSetup, w4: bool, k: usize) -> ferroflow::Result<(Model, Dataset)> {
    let n = nn_setup(hand, w4)?;
    let mut model = Model::new(n.model);
    model.compile(CompileOptions::new(n.opt, n.loss))?;
    let ds = Dataset::from_tensors((&n.x, &n.y)).repeat_n(k);
    Ok((model, ds))
}

/// One timed `fit` call: `k` steps.
pub fn fit_steps(model: &Model, ds: &Dataset) -> ferroflow::Result<()> {
    model.fit(ds, FitOptions::new().epochs(1).verbose(0)).map(|_| ())
}
