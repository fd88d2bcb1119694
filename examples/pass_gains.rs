//! Gain of each optimisation pass: W3, W5 (training step) and W6 graphs timed with all passes,
//! with each pass switched off in turn, and with none. Prints one line per (workload, config).
#[path = "bench/train.rs"]
#[allow(dead_code)]
mod train;
use ferroflow::graph::PassConfig;
use ferroflow::prelude::*;
use std::time::Instant;

/// The best time per call of `f` over five 0.2 s rounds.
fn time(f: impl Fn() -> ferroflow::Result<Tensor>) -> f64 {
    f().unwrap();
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        let mut n = 0;
        while t.elapsed().as_secs_f64() < 0.2 {
            f().unwrap();
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
    let x = random::normal(&[1_000_000], Normal::default().seed(3)).unwrap();
    let (a6, b6, c6) = (Tensor::scalar(0.5f32), Tensor::scalar(0.1f32), Tensor::scalar(2.0f32));
    let a = random::normal(&[256, 256], Normal::default().seed(21)).unwrap();
    let b = random::normal(&[256, 256], Normal::default().seed(22)).unwrap();
    let c = random::normal(&[256], Normal::default().seed(23)).unwrap();
    for (name, cfg) in configs {
        let f6 = function(|x: &Tensor, a: &Tensor, b: &Tensor, c: &Tensor| x.mul(a)?.add(b)?.sigmoid()?.mul(c))
            .with_passes(cfg);
        let f3 = function(|x: &Tensor, w: &Tensor, b: &Tensor| x.matmul(w)?.add(b)?.relu()).with_passes(cfg);
        let s = train::w5_setup().unwrap();
        let f5 = train::graph_step(&s).with_passes(cfg);
        println!(
            "{name:16} W3 relu(matmul+b) {:8.1} us   W5 step {:6.2} us   W6 {:6.3} ms",
            time(|| f3.call((&a, &b, &c))) * 1e6,
            time(|| f5.call((&s.x, &s.y))) * 1e6,
            time(|| f6.call((&x, &a6, &b6, &c6))) * 1e3
        );
    }
}
