//! [`DistributedOptimizer`]: any optimizer, applying gradients averaged across workers.

use crate::buckets::{all_reduce_gradients, ReduceOptions, Weighting};
use crate::Communicator;
use ferroflow_optim::{Optimizer, OptimizerState};
use ferroflow_tensor_core::{Result, Tensor, Variable};
use std::sync::Arc;

/// Horovod's `DistributedOptimizer`: wraps an optimizer so that
/// [`apply_gradients`](Optimizer::apply_gradients) first averages the gradients over every
/// worker (bucketed, in the pairs' order), then clips and updates as the wrapped optimizer
/// does. Its state (iterations, slots) is the wrapped optimizer's, under the same paths, so
/// checkpoints are interchangeable with single-process runs.
///
/// For a hand-written training loop; `fit` with
/// [`MultiWorkerMirroredStrategy`](crate::MultiWorkerMirroredStrategy) reduces the gradients
/// itself, so compile its model with a plain optimizer (this one would reduce them twice).
///
/// ```
/// use ferroflow_distribute::{DistributedOptimizer, LocalCommunicator};
/// use ferroflow_optim::{Optimizer, Sgd};
/// use ferroflow_tensor_core::{Tensor, Variable};
/// use std::sync::Arc;
/// let opt = DistributedOptimizer::new(Sgd::new(0.5)?, Arc::new(LocalCommunicator::new()));
/// let w = Variable::new("w", Tensor::new([1.0f32]))?;
/// opt.apply_gradients([(Tensor::new([2.0f32]), &w)])?;
/// assert_eq!(w.value().to_vec::<f32>()?, vec![0.0]);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
pub struct DistributedOptimizer<O> {
    inner: O,
    comm: Arc<dyn Communicator>,
    options: ReduceOptions,
}

impl<O> std::fmt::Debug for DistributedOptimizer<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DistributedOptimizer")
            .field("comm", &self.comm)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl<O: Optimizer> DistributedOptimizer<O> {
    /// `inner`, averaging gradients over `comm`'s workers.
    pub fn new(inner: O, comm: Arc<dyn Communicator>) -> Self {
        DistributedOptimizer {
            inner,
            comm,
            options: ReduceOptions::new(),
        }
    }

    /// How the gradients are fused and reduced.
    pub fn reduce_options(mut self, options: ReduceOptions) -> Self {
        self.options = options;
        self
    }

    /// The wrapped optimizer.
    pub fn inner(&self) -> &O {
        &self.inner
    }
}

impl<O: Optimizer> Optimizer for DistributedOptimizer<O> {
    fn state(&self) -> &OptimizerState {
        self.inner.state()
    }

    fn state_mut(&mut self) -> &mut OptimizerState {
        self.inner.state_mut()
    }

    fn slot_names(&self) -> &'static [&'static str] {
        self.inner.slot_names()
    }

    fn uses_step(&self) -> bool {
        self.inner.uses_step()
    }

    fn slot_init(&self) -> f64 {
        self.inner.slot_init()
    }

    fn update(&self, var: &Variable, grad: &Tensor, slots: &[Variable], lr: &Tensor, t: &Tensor) -> Result<()> {
        self.inner.update(var, grad, slots, lr, t)
    }

    fn build(&self, vars: &[Variable]) -> Result<()> {
        self.inner.build(vars)
    }

    fn apply_gradient_pairs(&self, pairs: &[(&Tensor, &Variable)]) -> Result<()> {
        let grads: Vec<Tensor> = pairs.iter().map(|(g, _)| (*g).clone()).collect();
        let reduced = all_reduce_gradients(self.comm.clone(), &grads, Weighting::Equal, self.options)?;
        let pairs: Vec<(&Tensor, &Variable)> = reduced.iter().zip(pairs).map(|(g, (_, v))| (g, *v)).collect();
        self.inner.apply_gradient_pairs(&pairs)
    }
}
