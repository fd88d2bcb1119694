//! Data-parallel training over MPI, checked against one process.
//!
//! ```text
//! cargo build --release --features mpi --example distributed
//! mpirun -n 2 target/release/examples/distributed
//! mpirun -n 4 --hostfile hosts target/release/examples/distributed   # across machines
//! ```
//!
//! Every rank trains the W4 model (784-256-256-10, ReLU, sparse softmax cross-entropy, SGD
//! 0.1) for 20 steps of a global batch of 128 with `fit` and a
//! [`MultiWorkerMirroredStrategy`]: rank 0's initial weights are broadcast, each rank takes
//! its share of every batch, gradients are averaged with an all-reduce. The ranks check that
//! their float32 weights are bit-identical; then every rank trains the model in float64 both
//! ways, data-parallel and alone on the full batches, and checks that the weights agree to
//! 1e-12. Rank 0 prints
//! `distributed check: N ranks, weights identical: yes, matches one process: yes`; the exit
//! status is non-zero where either is `no`.

use ferroflow::distribute::{Communicator, CommunicatorExt, MpiWorld, MultiWorkerMirroredStrategy, ReduceOp};
use ferroflow::prelude::*;
use std::process::ExitCode;

const STEPS: usize = 20;
const BATCH: usize = 128;

fn w4(dtype: DType) -> ferroflow::Result<Model> {
    let mut layers = Sequential::new().with_name("w4");
    layers.add(
        Dense::new(256)
            .with_activation(Activation::Relu)
            .with_seed(1)
            .with_dtype(dtype),
    );
    layers.add(
        Dense::new(256)
            .with_activation(Activation::Relu)
            .with_seed(2)
            .with_dtype(dtype),
    );
    layers.add(Dense::new(10).with_seed(3).with_dtype(dtype));
    let mut model = Model::new(layers);
    model.compile(CompileOptions::new(
        Sgd::new(0.1)?,
        Loss::SparseCategoricalCrossentropy(Predictions::Logits),
    ))?;
    Ok(model)
}

/// The data and the initial weights every run starts from (random draws differ from call
/// to call, so they are drawn once; float32 values, widened for the float64 run).
struct Start {
    x: Tensor,
    y: Tensor,
    init: Vec<Tensor>,
}

impl Start {
    fn new() -> ferroflow::Result<Start> {
        let x = random::normal(&[STEPS * BATCH, 784], Normal::default().seed(10))?;
        let y = random::uniform(&[STEPS * BATCH], Uniform::new(0.0, 10.0).seed(11))?
            .floor()?
            .cast(DType::I32)?;
        let model = w4(DType::F32)?;
        model.build_from(&x)?;
        Ok(Start {
            x,
            y,
            init: model.get_weights()?,
        })
    }
}

/// The W4 model's weights after 20 steps, data-parallel with `strategy` or alone.
fn train(
    start: &Start,
    strategy: Option<&MultiWorkerMirroredStrategy>,
    dtype: DType,
) -> ferroflow::Result<Vec<Tensor>> {
    let x = start.x.cast(dtype)?;
    let y = &start.y;
    let model = w4(dtype)?;
    model.build_from(&x)?;
    let init = start
        .init
        .iter()
        .map(|t| t.cast(dtype))
        .collect::<ferroflow::Result<Vec<_>>>()?;
    model.set_weights(&init)?;
    let mut options = FitOptions::new().epochs(1).batch_size(BATCH).shuffle(false).verbose(0);
    if let Some(s) = strategy {
        options = options.strategy(s);
    }
    model.fit((&x, y), options)?;
    model.get_weights()
}

fn values(t: &Tensor) -> ferroflow::Result<Vec<f64>> {
    t.cast(DType::F64)?.to_vec::<f64>()
}

/// Float64 weights within 1e-12 of the one-process ones (relative to values of order one
/// and above): the data-parallel sum differs from one process only in summation order.
fn matches(got: &[Tensor], one: &[Tensor]) -> ferroflow::Result<bool> {
    for (g, o) in got.iter().zip(one) {
        for (a, b) in values(g)?.into_iter().zip(values(o)?) {
            if (a - b).abs() > 1e-12 * b.abs().max(1.0) {
                if std::env::var_os("FERROFLOW_DEBUG").is_some() {
                    eprintln!("mismatch: {a} (data-parallel) vs {b} (one process)");
                }
                return Ok(false);
            }
        }
    }
    Ok(true)
}

fn run(comm: &dyn Communicator, strategy: &MultiWorkerMirroredStrategy) -> ferroflow::Result<(bool, bool)> {
    // Every rank draws the same values (the same program, the same seeds); the broadcast at
    // the start of `fit` makes the weights rank 0's in any case.
    let start = Start::new()?;
    let distributed = train(&start, Some(strategy), DType::F32)?;
    // Bit-identical: every rank compares its weights with rank 0's.
    let mine: Vec<u8> = distributed
        .iter()
        .map(|t| t.to_vec::<f32>())
        .collect::<ferroflow::Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .flat_map(f32::to_le_bytes)
        .collect();
    let mut rank0 = mine.clone();
    comm.broadcast_vec(&mut rank0, 0)?;
    // The comparison with one process runs in float64, where only the summation order of the
    // data-parallel sum differs; float32 adds rounding noise that near-zero weights magnify.
    let distributed64 = train(&start, Some(strategy), DType::F64)?;
    let one64 = train(&start, None, DType::F64)?;
    let local = [
        f64::from(u8::from(rank0 == mine)),
        f64::from(u8::from(matches(&distributed64, &one64)?)),
    ];
    let mut all = local;
    comm.all_reduce_in_place_f64(&mut all, ReduceOp::Min)?;
    Ok((all[0] == 1.0, all[1] == 1.0))
}

fn main() -> ExitCode {
    let mpi = match MpiWorld::init() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("distributed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let comm = mpi.communicator();
    let strategy = MultiWorkerMirroredStrategy::new(comm.clone());
    let yes = |b: bool| if b { "yes" } else { "no" };
    let code = match run(comm.as_ref(), &strategy) {
        Ok((identical, matching)) => {
            if comm.rank() == 0 {
                println!(
                    "distributed check: {} ranks, weights identical: {}, matches one process: {}",
                    comm.size(),
                    yes(identical),
                    yes(matching)
                );
            }
            if identical && matching {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("distributed: rank {}: {e}", comm.rank());
            ExitCode::FAILURE
        }
    };
    drop(mpi);
    code
}
