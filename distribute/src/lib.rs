//! # ferroflow-distribute
//!
//! Data-parallel training, the way TensorFlow users know it from Horovod and
//! `MultiWorkerMirroredStrategy`: every worker holds a replica of the model, initial state is
//! broadcast from rank 0, and gradients are averaged with an all-reduce, so training on `n`
//! workers is training on one big batch.
//!
//! * [`Communicator`]: rank, world size, barrier, broadcast and all-reduce (sum, mean, max,
//!   min), with tensor helpers in [`CommunicatorExt`]. Two transports: MPI (`MpiWorld`,
//!   feature `mpi`, on rsmpi over the system's Open MPI) and [`LocalCommunicator`], the
//!   world of one, so every code path also runs without MPI.
//! * [`DistributedGradientTape`] and [`DistributedOptimizer`] (Horovod's), with gradients
//!   fused into buckets ([`ReduceOptions`]) and reduced in a fixed order; the reduction is an
//!   op, so it works eagerly and inside traced functions.
//! * [`broadcast_variables`] / [`broadcast_trackable`]: rank 0's model and optimizer state
//!   to every worker, after checking that all workers hold the same variables.
//! * [`MultiWorkerMirroredStrategy`] for Keras-style `fit` in `ferroflow-nn`.
//!
//! Launch a program built with `--features mpi` with `mpirun -n 2 target/release/examples/<name>`
//! (add `--hostfile hosts` to spread it over machines).
//!
//! ```
//! use ferroflow_distribute::{broadcast_trackable, DistributedGradientTape, LocalCommunicator};
//! use ferroflow_optim::{Optimizer, Sgd};
//! use ferroflow_tensor_core::{Tensor, Variable};
//! use std::sync::Arc;
//!
//! // With MPI: `let mpi = MpiWorld::init()?;` kept alive to the end, `mpi.communicator()`.
//! let comm = Arc::new(LocalCommunicator::new());
//! let w = Variable::new("w", Tensor::new([1.0f32, -1.0]))?;
//! broadcast_trackable(comm.as_ref(), &w, 0)?;
//! let opt = Sgd::new(0.1)?;
//! for _ in 0..3 {
//!     let tape = DistributedGradientTape::new(comm.clone());
//!     let loss = w.read()?.square()?.reduce_sum(0)?;
//!     let [dw] = tape.gradient(&loss, [&w])?;
//!     opt.apply_gradients([(dw, &w)])?;
//! }
//! assert!((w.value().to_vec::<f32>()?[0] - 0.512).abs() < 1e-6);
//! # Ok::<(), ferroflow_tensor_core::Error>(())
//! ```
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod broadcast;
mod buckets;
mod communicator;
mod device_buckets;
mod local;
#[cfg(feature = "mpi")]
mod mpi_world;
mod optimizer;
mod strategy;
mod tape;

pub use broadcast::{broadcast_trackable, broadcast_variables};
pub use buckets::{all_reduce_gradients, ReduceOptions, Weighting};
pub use communicator::{Communicator, CommunicatorExt, Float, ReduceOp};
pub use local::LocalCommunicator;
/// The rsmpi crate this transport is built on, for direct MPI calls.
#[cfg(feature = "mpi")]
pub use mpi;
#[cfg(feature = "mpi")]
pub use mpi_world::{MpiCommunicator, MpiWorld};
pub use optimizer::DistributedOptimizer;
pub use strategy::{shard_range, AutoShard, MultiWorkerMirroredStrategy};
pub use tape::DistributedGradientTape;
