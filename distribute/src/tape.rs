//! [`DistributedGradientTape`]: a gradient tape whose gradients are averaged across workers.

use crate::buckets::{all_reduce_gradients, ReduceOptions, Weighting};
use crate::Communicator;
use ferroflow_autodiff::{GradientTape, Sources, TapeOptions};
use ferroflow_tensor_core::{Result, Tensor, Variable};
use std::sync::Arc;

/// Horovod's `DistributedGradientTape`: records like a [`GradientTape`], and
/// [`gradient`](DistributedGradientTape::gradient) returns the gradients averaged over every
/// worker (fused into buckets, reduced in the sources' order). Eager and traced alike: inside
/// a [`function`](https://docs.rs/ferroflow-graph) the reduction is an op of the graph.
///
/// ```
/// use ferroflow_distribute::{DistributedGradientTape, LocalCommunicator};
/// use ferroflow_tensor_core::{Tensor, Variable};
/// use std::sync::Arc;
/// let comm = Arc::new(LocalCommunicator::new());
/// let w = Variable::new("w", Tensor::new([3.0f64]))?;
/// let tape = DistributedGradientTape::new(comm);
/// let loss = w.read()?.square()?.reduce_sum(0)?;
/// let [dw] = tape.gradient(&loss, [&w])?;
/// assert_eq!(dw.to_vec::<f64>()?, vec![6.0]);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
pub struct DistributedGradientTape {
    tape: GradientTape,
    comm: Arc<dyn Communicator>,
    options: ReduceOptions,
    weighting: Weighting,
}

impl std::fmt::Debug for DistributedGradientTape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DistributedGradientTape")
            .field("comm", &self.comm)
            .field("options", &self.options)
            .field("weighting", &self.weighting)
            .finish_non_exhaustive()
    }
}

impl DistributedGradientTape {
    /// Starts recording, averaging over `comm`'s workers.
    pub fn new(comm: Arc<dyn Communicator>) -> Self {
        Self::with_options(comm, TapeOptions::new())
    }

    /// Starts recording with tape options (persistent, which variables are watched).
    pub fn with_options(comm: Arc<dyn Communicator>, options: TapeOptions) -> Self {
        DistributedGradientTape {
            tape: GradientTape::with_options(options),
            comm,
            options: ReduceOptions::new(),
            weighting: Weighting::Equal,
        }
    }

    /// How the gradients are fused and reduced.
    pub fn reduce_options(mut self, options: ReduceOptions) -> Self {
        self.options = options;
        self
    }

    /// Weighs this worker's gradients by its number of samples in the step, so workers with
    /// uneven batches give exactly the gradient of the whole global batch.
    pub fn local_samples(mut self, samples: usize) -> Self {
        self.weighting = Weighting::Samples(samples);
        self
    }

    /// Watches a tensor, as [`GradientTape::watch`].
    pub fn watch(&self, t: &Tensor) {
        self.tape.watch(t);
    }

    /// Watches a variable, as [`GradientTape::watch_variable`].
    pub fn watch_variable(&self, v: &Variable) {
        self.tape.watch_variable(v);
    }

    /// The local tape (for local gradients, or to pause recording).
    pub fn local(&self) -> &GradientTape {
        &self.tape
    }

    /// The gradients of `target` with respect to `sources`, averaged over all workers, in
    /// the shape of the sources as [`GradientTape::gradient`]:
    /// `let [dw, db] = tape.gradient(&loss, [&w, &b])?`.
    pub fn gradient<'a, S: Sources<'a>>(&self, target: &Tensor, sources: S) -> Result<S::Gradients> {
        let sources = sources.sources();
        let local: Vec<Tensor> = self.tape.gradient(target, &sources[..])?;
        let reduced = all_reduce_gradients(self.comm.clone(), &local, self.weighting, self.options)?;
        S::gradients(reduced)
    }
}
