//! The GPU lines of W1, W3, W4, W5 and W6 (feature `cuda`, frameworks `ferroflow-cuda-eager`
//! and, for traced functions, `ferroflow-cuda-graph`), beside `bench/device_peers.py
//! torch-cuda`. Each timed batch of calls ends with a stream synchronisation, as the peer's
//! does. Nothing is printed without a GPU.

use crate::harness::emit;
use crate::train::{eager_step, graph_step, w4_setup, w5_setup, TrainSetup, W4_CASE, W5_CASE};
use ferroflow::graph::function;
use ferroflow::prelude::*;
use ferroflow::tensor::cuda;
use std::time::Instant;

const GPU: Device = Device::Cuda(0);

/// Seconds per call of `f` over `inner` calls, seven times after two warm-up calls; the GPU
/// drained around each.
fn gpu_times(mut f: impl FnMut() -> ferroflow::Result<Tensor>, inner: usize) -> ferroflow::Result<Vec<f64>> {
    // Twice: a traced function traces on its first call and captures its CUDA graph on
    // the second.
    f()?;
    f()?;
    cuda::synchronize(0)?;
    let mut out = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        for _ in 0..inner {
            f()?;
        }
        cuda::synchronize(0)?;
        out.push(t.elapsed().as_secs_f64() / inner as f64);
    }
    Ok(out)
}

/// True when the GPU is usable; else says so (and, under `FERROFLOW_REQUIRE_GPU=1`, as
/// on the device check, exits with an error rather than print nothing).
fn available() -> bool {
    let ok = GPU.is_available();
    if !ok {
        eprintln!("bench: no CUDA device, GPU lines skipped");
        if std::env::var_os("FERROFLOW_REQUIRE_GPU").is_some_and(|v| v != "0") {
            std::process::exit(1);
        }
    }
    ok
}

/// The GPU lines alone of the workloads `ids` (all of them when empty).
pub fn only(ids: &[String]) -> ferroflow::Result<()> {
    let wanted = |id: &str| ids.is_empty() || ids.iter().any(|a| a == id);
    if wanted("W1") {
        w1()?;
    }
    if wanted("W3") {
        w3()?;
    }
    if wanted("W4") {
        training("W4", W4_CASE, w4_setup()?, 200)?;
    }
    if wanted("W5") {
        training("W5", W5_CASE, w5_setup()?, 500)?;
    }
    if wanted("W6") {
        w6()?;
    }
    Ok(())
}

/// W1 on the GPU: float32 GEMM at n = 1024, 2048, 4096 (cuBLAS, TF32 off).
pub fn w1() -> ferroflow::Result<()> {
    if !available() {
        return Ok(());
    }
    for n in [1024usize, 2048, 4096] {
        let a = random::normal(&[n, n], Normal::default().seed(1))?.to(GPU)?;
        let b = random::normal(&[n, n], Normal::default().seed(2))?.to(GPU)?;
        let inner = (2e10 / (2.0 * (n as f64).powi(3))).max(1.0) as usize;
        let secs = gpu_times(|| a.matmul(&b), inner)?;
        let flops = 2.0 * (n as f64).powi(3);
        let gflops: Vec<f64> = secs.iter().map(|s| flops / s / 1e9).collect();
        emit(
            "W1",
            "ferroflow-cuda-eager",
            &format!("n={n}"),
            "GFLOP/s",
            &gflops,
            inner,
        );
    }
    Ok(())
}

/// W3 on the GPU: `matmul(256²) + b`.
pub fn w3() -> ferroflow::Result<()> {
    if !available() {
        return Ok(());
    }
    let x = random::normal(&[256, 256], Normal::default().seed(21))?.to(GPU)?;
    let y = random::normal(&[256, 256], Normal::default().seed(22))?.to(GPU)?;
    let b = random::normal(&[256], Normal::default().seed(23))?.to(GPU)?;
    let secs = gpu_times(|| x.matmul(&y)?.add(&b), 200)?;
    let us: Vec<f64> = secs.iter().map(|s| s * 1e6).collect();
    emit("W3", "ferroflow-cuda-eager", "matmul(256x256)+b", "us/call", &us, 200);
    Ok(())
}

/// W6 on the GPU: `sigmoid(x·a + b)·c` over 1e6 floats, scalars or tensors.
pub fn w6() -> ferroflow::Result<()> {
    if !available() {
        return Ok(());
    }
    let n = 1_000_000;
    let x = random::normal(&[n], Normal::default().seed(3))?.to(GPU)?;
    let scalars = [0.5f32, 0.1, 2.0].map(|v| Tensor::scalar(v).to(GPU));
    let tensors = [4u64, 5, 6].map(|s| random::normal(&[n], Normal::default().seed(s)).and_then(|t| t.to(GPU)));
    for (case, [a, b, c]) in [
        ("1e6 f32, a/b/c scalar", scalars),
        ("1e6 f32, a/b/c same-shape", tensors),
    ] {
        let (a, b, c) = (a?, b?, c?);
        let secs = gpu_times(|| x.mul(&a)?.add(&b)?.sigmoid()?.mul(&c), 100)?;
        let ms: Vec<f64> = secs.iter().map(|s| s * 1e3).collect();
        emit("W6", "ferroflow-cuda-eager", case, "ms/call", &ms, 100);
        let g = function(|x: &Tensor, a: &Tensor, b: &Tensor, c: &Tensor| x.mul(a)?.add(b)?.sigmoid()?.mul(c));
        let secs = gpu_times(|| g.call((&x, &a, &b, &c)), 100)?;
        let ms: Vec<f64> = secs.iter().map(|s| s * 1e3).collect();
        emit("W6", "ferroflow-cuda-graph", case, "ms/call", &ms, 100);
    }
    Ok(())
}

/// Moves a training workload to the GPU: its variables, batch and learning rate.
fn on_gpu(mut s: TrainSetup) -> ferroflow::Result<TrainSetup> {
    for p in &s.params {
        p.to_device(GPU)?;
    }
    s.x = s.x.to(GPU)?;
    s.y = s.y.to(GPU)?;
    s.lr = s.lr.to(GPU)?;
    Ok(s)
}

/// The training-step lines of W4 or W5 on the GPU: the hand-written step eagerly
/// (`ferroflow-cuda-eager`) and traced (`ferroflow-cuda-graph`), in steps per second.
pub fn training(workload: &str, case: &str, setup: TrainSetup, inner: usize) -> ferroflow::Result<()> {
    if !available() {
        return Ok(());
    }
    let s = on_gpu(setup)?;
    let rate = |secs: Vec<f64>| secs.iter().map(|t| 1.0 / t).collect::<Vec<f64>>();
    let eager = gpu_times(|| eager_step(&s), inner)?;
    emit(workload, "ferroflow-cuda-eager", case, "steps/s", &rate(eager), inner);
    let step = graph_step(&s);
    let traced = gpu_times(|| step.call((&s.x, &s.y)), inner)?;
    emit(workload, "ferroflow-cuda-graph", case, "steps/s", &rate(traced), inner);
    Ok(())
}
