//! The workloads, by id. Each prints its JSON lines and returns an error if an op fails.

use crate::harness::{emit, time_calls};
use ferroflow::prelude::*;

type Workload = fn() -> ferroflow::Result<()>;

/// Every workload this binary knows, in order.
pub fn all() -> Vec<(&'static str, Workload)> {
    vec![("W1", w1), ("W6", w6)]
}

/// W1: sgemm `C = A·B`, square n, random normal inputs; GFLOP/s.
fn w1() -> ferroflow::Result<()> {
    for n in [64usize, 128, 256, 512, 1024, 2048] {
        let a = random::normal(&[n, n], 0.0, 1.0, DType::F32, Some(1))?;
        let b = random::normal(&[n, n], 0.0, 1.0, DType::F32, Some(2))?;
        let mut err = None;
        let (secs, inner) = time_calls(
            || {
                if let Err(e) = a.matmul(&b) {
                    err = Some(e);
                }
            },
            0.4,
        );
        if let Some(e) = err {
            return Err(e);
        }
        let flops = 2.0 * (n as f64).powi(3);
        let gflops: Vec<f64> = secs.iter().map(|s| flops / s / 1e9).collect();
        emit(
            "W1",
            "ferroflow-eager",
            &format!("n={n}"),
            "GFLOP/s",
            &gflops,
            inner,
        );
    }
    Ok(())
}

/// W6: `sigmoid(x*a + b) * c` over 1e6 f32 elements, with scalar or same-shape a, b, c; ms.
fn w6() -> ferroflow::Result<()> {
    let n = 1_000_000;
    let x = random::normal(&[n], 0.0, 1.0, DType::F32, Some(3))?;
    let scalars = [
        Tensor::scalar(0.5f32),
        Tensor::scalar(0.1f32),
        Tensor::scalar(2.0f32),
    ];
    let tensors = [
        random::normal(&[n], 0.0, 1.0, DType::F32, Some(4))?,
        random::normal(&[n], 0.0, 1.0, DType::F32, Some(5))?,
        random::normal(&[n], 0.0, 1.0, DType::F32, Some(6))?,
    ];
    for (case, [a, b, c]) in [
        ("1e6 f32, a/b/c scalar", &scalars),
        ("1e6 f32, a/b/c same-shape", &tensors),
    ] {
        let f = || x.mul(a)?.add(b)?.sigmoid()?.mul(c);
        f()?;
        let (secs, inner) = time_calls(
            || {
                let _ = f();
            },
            0.3,
        );
        let ms: Vec<f64> = secs.iter().map(|s| s * 1e3).collect();
        emit("W6", "ferroflow-eager", case, "ms/call", &ms, inner);
    }
    Ok(())
}
