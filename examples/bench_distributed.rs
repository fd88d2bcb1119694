//! Benchmarks of data-parallel training, as JSON lines (the format of `bench/`):
//!
//! ```text
//! cargo build --release --features mpi --example bench_distributed
//! mpirun -n 2 target/release/examples/bench_distributed allreduce
//! mpirun -n 2 -x RAYON_NUM_THREADS=1 target/release/examples/bench_distributed w4
//! RAYON_NUM_THREADS=2 mpirun -n 1 target/release/examples/bench_distributed w4
//! ```
//!
//! `allreduce`: float32 buffers of 1 KiB to 64 MiB summed over the ranks, three ways in one
//! run, interleaved: plain `MPI_Allreduce` through rsmpi, our [`Communicator`] call, and our
//! gradient path (a tensor through the bucketed all-reduce op, packing and unpacking
//! included); time per call and bus bandwidth (`2 (n-1)/n · bytes / time`).
//! `w4`: the W4 train step through `fit` with a global batch of 128 split over the ranks;
//! steps per second.

use ferroflow::distribute::mpi::collective::SystemOperation;
use ferroflow::distribute::mpi::traits::CommunicatorCollectives;
use ferroflow::distribute::{
    all_reduce_gradients, Communicator, MpiWorld, MultiWorkerMirroredStrategy, ReduceOp, ReduceOptions, Weighting,
};
use ferroflow::prelude::*;
use std::sync::Arc;
use std::time::Instant;

fn line(workload: &str, framework: &str, case: &str, unit: &str, value: f64, extra: &str) {
    println!(
        "{{\"workload\": \"{workload}\", \"framework\": \"{framework}\", \"case\": \"{case}\", \"unit\": \"{unit}\", \"value\": {value:.4}{extra}}}"
    );
}

/// Median seconds per call of `f`, over `reps` rounds of `iters` calls after a warm-up.
fn time(comm: &dyn Communicator, iters: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..iters.min(3) {
        f();
    }
    let mut rounds = Vec::new();
    for _ in 0..5 {
        let _ = comm.barrier();
        let t = Instant::now();
        for _ in 0..iters {
            f();
        }
        rounds.push(t.elapsed().as_secs_f64() / iters as f64);
    }
    rounds.sort_by(f64::total_cmp);
    rounds[rounds.len() / 2]
}

fn allreduce(mpi: &MpiWorld) -> ferroflow::Result<()> {
    let comm = mpi.communicator();
    let dyn_comm: Arc<dyn Communicator> = comm.clone();
    let n = comm.size() as f64;
    for kib in [1usize, 16, 256, 4096, 65536] {
        let len = kib * 1024 / 4;
        let send = vec![1.0f32; len];
        let mut recv = vec![0.0f32; len];
        let iters = (64 * 1024 / kib).clamp(3, 2000);
        let plain = time(comm.as_ref(), iters, || {
            let _ = comm.with_raw(|w| w.all_reduce_into(&send[..], &mut recv[..], SystemOperation::sum()));
        });
        let ours = time(comm.as_ref(), iters, || {
            let _ = comm.all_reduce_f32(&send, &mut recv, ReduceOp::Sum);
        });
        let grad = Tensor::from_vec(send.clone(), &[len])?;
        let grads = [grad];
        let options = ReduceOptions::new().sum();
        let tensor_path = time(comm.as_ref(), iters, || {
            let _ = all_reduce_gradients(dyn_comm.clone(), &grads, Weighting::Equal, options);
        });
        if comm.rank() == 0 {
            let bytes = (len * 4) as f64;
            let case = if kib >= 1024 {
                format!("{} MiB", kib / 1024)
            } else {
                format!("{kib} KiB")
            };
            for (framework, t) in [
                ("mpi-allreduce", plain),
                ("ferroflow-comm", ours),
                ("ferroflow-gradients", tensor_path),
            ] {
                let busbw = 2.0 * (n - 1.0) / n * bytes / t / 1e9;
                line(
                    "allreduce",
                    framework,
                    &format!("{case} x{} ranks", comm.size()),
                    "us",
                    t * 1e6,
                    &format!(", \"bus_GBps\": {busbw:.3}, \"over_plain\": {:.3}", t / plain),
                );
            }
        }
    }
    Ok(())
}

fn w4(mpi: &MpiWorld) -> ferroflow::Result<()> {
    let comm = mpi.communicator();
    let strategy = MultiWorkerMirroredStrategy::new(comm.clone());
    let steps = 200;
    let x = random::normal(&[steps * 128, 784], Normal::default().seed(1))?;
    let y = random::uniform(&[steps * 128], Uniform::new(0.0, 10.0).seed(2))?
        .floor()?
        .cast(DType::I32)?;
    let mut layers = Sequential::new();
    layers.add(Dense::new(256).with_activation(Activation::Relu).with_seed(1));
    layers.add(Dense::new(256).with_activation(Activation::Relu).with_seed(2));
    layers.add(Dense::new(10).with_seed(3));
    let mut model = Model::new(layers);
    model.compile(CompileOptions::new(
        Sgd::new(0.1)?,
        Loss::SparseCategoricalCrossentropy(Predictions::Logits),
    ))?;
    let options = || {
        FitOptions::new()
            .batch_size(128)
            .shuffle(false)
            .verbose(0)
            .strategy(&strategy)
    };
    // Warm-up: traces the step for this batch shape.
    model.fit((&x, &y), options().steps_per_epoch(10))?;
    let best = (0..3)
        .map(|_| {
            let _ = comm.barrier();
            let t = Instant::now();
            model.fit((&x, &y), options()).map(|_| t.elapsed().as_secs_f64())
        })
        .collect::<ferroflow::Result<Vec<f64>>>()?
        .into_iter()
        .fold(f64::INFINITY, f64::min);
    if comm.rank() == 0 {
        let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into());
        line(
            "W4",
            "ferroflow-mpi",
            &format!("784-256-256-10 b128 {} ranks x {threads} threads", comm.size()),
            "steps/s",
            steps as f64 / best,
            "",
        );
    }
    Ok(())
}

fn main() -> ferroflow::Result<()> {
    let mpi = MpiWorld::init()?;
    match std::env::args().nth(1).as_deref() {
        Some("w4") => w4(&mpi)?,
        _ => allreduce(&mpi)?,
    }
    Ok(())
}
