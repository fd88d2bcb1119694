//! Writes the lesson's `matmul(x, y) + b` function graph and a short loss curve as
//! TensorBoard event files.
//!
//! `cargo run --release --example tensorboard -- LOGDIR`, then `tensorboard --logdir LOGDIR`.

use ferroflow::autodiff::GradientTape;
use ferroflow::graph::export::SummaryWriter;
use ferroflow::graph::function;
use ferroflow::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let logdir = std::env::args().nth(1).unwrap_or_else(|| "logs/ferroflow".to_string());

    // The lesson's function, traced once into a graph.
    let f = function(|a: &[Tensor]| Ok(vec![a[0].matmul(&a[1])?.add(&a[2])?]));
    let x = Tensor::new([[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]]);
    let y = Tensor::new([[0.5f32, -1.0], [1.0, 0.0], [-0.5, 2.0]]);
    let b = Tensor::new([0.1f32, 0.2]);
    let out = f.call(&[x.clone(), y.clone(), b.clone()])?;
    println!("matmul(x, y) + b = {}", out[0]);
    let cf = f.get_concrete_function(&[x.spec(), y.spec(), b.spec()])?;
    println!("traced graph:\n{}", cf.graph());

    let mut writer = SummaryWriter::create(&logdir)?;
    writer.graph(&cf)?;

    // A short curve: fit w so that x·w approaches a target, logging the loss per step.
    let target = Tensor::new([[1.0f32], [2.0]]);
    let w = Variable::new("w", Tensor::zeros(&[3, 1], DType::F32), true)?;
    for step in 0..20 {
        let tape = GradientTape::new();
        let loss = x.matmul(&w.read()?)?.sub(&target)?.square()?.reduce_mean(None, false)?;
        let g = tape.gradient_vars(&loss, &[&w])?[0].clone().ok_or("no gradient")?;
        w.assign_sub(&g.mul(&Tensor::scalar(0.01f32))?)?;
        writer.scalar("loss", loss.to_scalar::<f32>()?, step)?;
    }
    writer.flush()?;
    println!("wrote {}", writer.path().display());
    println!("view it with: tensorboard --logdir {logdir}");
    Ok(())
}
