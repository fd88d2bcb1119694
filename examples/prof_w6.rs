use ferroflow::graph::function;
use ferroflow::tensor::{random, DType, Tensor};
fn main() {
    let n = 1_000_000;
    let x = random::normal(&[n], 0.0, 1.0, DType::F32, Some(3)).unwrap();
    let args = [
        x,
        Tensor::scalar(0.5f32),
        Tensor::scalar(0.1f32),
        Tensor::scalar(2.0f32),
    ];
    let g = function(|v: &[Tensor]| Ok(vec![v[0].mul(&v[1])?.add(&v[2])?.sigmoid()?.mul(&v[3])?]));
    g.call(&args).unwrap();
    let t = std::time::Instant::now();
    let mut k = 0;
    while t.elapsed().as_secs_f64() < 4.0 {
        g.call(&args).unwrap();
        k += 1;
    }
    println!("{:.3} ms/call", t.elapsed().as_secs_f64() * 1e3 / k as f64);
}
