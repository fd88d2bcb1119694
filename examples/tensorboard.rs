//! Writes the lesson's `matmul(x, y) + b` function graph and a short loss curve as
//! TensorBoard event files.
//!
//! `cargo run --release --example tensorboard -- LOGDIR`, then `tensorboard --logdir LOGDIR`.

use ferroflow::graph::export::SummaryWriter;
use ferroflow::prelude::*;

fn main() -> ferroflow::Result<()> {
    let logdir = std::env::args().nth(1).unwrap_or_else(|| "logs/ferroflow".to_string());

    // The lesson's function, traced once into a graph.
    let f = function(|x: &Tensor, y: &Tensor, b: &Tensor| x.matmul(y)?.add(b));
    let x = Tensor::new([[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]]);
    let y = Tensor::new([[0.5f32, -1.0], [1.0, 0.0], [-0.5, 2.0]]);
    let b = Tensor::new([0.1f32, 0.2]);
    println!("matmul(x, y) + b = {}", f.call((&x, &y, &b))?);
    let cf = f.get_concrete_function(&[x.spec(), y.spec(), b.spec()])?;
    println!("traced graph:\n{}", cf.graph());

    let mut writer = SummaryWriter::create(&logdir)?;
    writer.graph(&cf)?;

    // A short curve: fit w so that x·w approaches a target, logging the loss per step.
    let target = Tensor::new([[1.0f32], [2.0]]);
    let w = Variable::new("w", Tensor::zeros(&[3, 1], DType::F32)?)?;
    let opt = Sgd::new(0.01)?;
    for step in 0..20 {
        let tape = GradientTape::new();
        let loss = x.matmul(&w.read()?)?.sub(&target)?.square()?.reduce_mean(Axes::All)?;
        let dw = tape.gradient(&loss, &w)?;
        opt.apply_gradients([(dw, &w)])?;
        writer.scalar("loss", loss.to_scalar::<f32>()?, step)?;
    }
    writer.flush()?;
    println!("wrote {}", writer.path().display());
    println!("view it with: tensorboard --logdir {logdir}");
    Ok(())
}
