//! Gain of each optimisation pass: W3, W5 (training step) and W6 graphs timed with all passes,
//! with each pass switched off in turn, and with none. Prints one line per (workload, config).
#[path = "bench/train.rs"]
#[allow(dead_code)]
mod train;
use ferroflow::graph::{function, Function, PassConfig};
use ferroflow::tensor::{random, DType, Tensor};
use std::time::Instant;

fn time(f: &Function, args: &[Tensor]) -> f64 {
    f.call(args).unwrap();
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        let mut n = 0;
        while t.elapsed().as_secs_f64() < 0.2 {
            f.call(args).unwrap();
            n += 1;
        }
        best = best.min(t.elapsed().as_secs_f64() / n as f64);
    }
    best
}

fn main() {
    // All passes, each one switched off in turn, none.
    let without = |name: &'static str, off: fn(&mut PassConfig)| {
        let mut c = PassConfig::default();
        off(&mut c);
        (name, c)
    };
    let configs: Vec<(&str, PassConfig)> = vec![
        ("all", PassConfig::default()),
        without("no dce", |c| c.dead_code_elimination = false),
        without("no folding", |c| c.constant_folding = false),
        without("no cse", |c| c.common_subexpression_elimination = false),
        without("no fusion", |c| c.elementwise_fusion = false),
        without("no loop merging", |c| c.loop_merging = false),
        without("no epilogue", |c| c.matmul_epilogue_fusion = false),
        without("no buffer reuse", |c| c.buffer_reuse = false),
        ("none", PassConfig::none()),
    ];
    let x = random::normal(&[1_000_000], 0.0, 1.0, DType::F32, Some(3)).unwrap();
    let w6 = [
        x,
        Tensor::scalar(0.5f32),
        Tensor::scalar(0.1f32),
        Tensor::scalar(2.0f32),
    ];
    let a = random::normal(&[256, 256], 0.0, 1.0, DType::F32, Some(21)).unwrap();
    let b = random::normal(&[256, 256], 0.0, 1.0, DType::F32, Some(22)).unwrap();
    let c = random::normal(&[256], 0.0, 1.0, DType::F32, Some(23)).unwrap();
    let w3 = [a, b, c];
    for (name, cfg) in configs {
        let f6 =
            function(|v: &[Tensor]| Ok(vec![v[0].mul(&v[1])?.add(&v[2])?.sigmoid()?.mul(&v[3])?])).with_passes(cfg);
        let f3 = function(|v: &[Tensor]| Ok(vec![v[0].matmul(&v[1])?.add(&v[2])?.relu()?])).with_passes(cfg);
        let s = train::w5_setup().unwrap();
        let f5 = train::graph_step(&s).with_passes(cfg);
        let w5 = [s.x.clone(), s.y.clone()];
        println!(
            "{name:16} W3 relu(matmul+b) {:8.1} us   W5 step {:6.2} us   W6 {:6.3} ms",
            time(&f3, &w3) * 1e6,
            time(&f5, &w5) * 1e6,
            time(&f6, &w6) * 1e3
        );
    }
}
