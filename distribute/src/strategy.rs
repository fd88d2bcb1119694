//! [`MultiWorkerMirroredStrategy`]: what `fit` needs to train data-parallel.

use crate::buckets::{all_reduce_gradients, ReduceOptions, Weighting};
use crate::{Communicator, LocalCommunicator};
use ferroflow_tensor_core::{Result, Tensor};
use std::ops::Range;
use std::sync::Arc;

/// How `fit` splits the data between workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AutoShard {
    /// Every worker reads the same (identically shuffled) data and trains on its share of
    /// each global batch: `batch_size` is the global batch, and training matches one process
    /// on that batch. The default.
    #[default]
    Data,
    /// The data is already one worker's part (for example a dataset sharded with
    /// [`Dataset::shard`](https://docs.rs/ferroflow-data)); each worker trains on all of its
    /// batches, and an epoch ends when any worker runs out.
    Off,
}

/// TensorFlow's `MultiWorkerMirroredStrategy`, for `fit`: every worker holds a replica of the
/// model, initial state is broadcast from rank 0, gradients are averaged with an all-reduce
/// inside the train step, and losses and metrics are reduced so every worker logs the
/// global values. Files and progress are written by rank 0 only.
///
/// ```
/// use ferroflow_distribute::{AutoShard, MultiWorkerMirroredStrategy};
/// let strategy = MultiWorkerMirroredStrategy::local().auto_shard(AutoShard::Data);
/// assert_eq!((strategy.rank(), strategy.num_workers()), (0, 1));
/// assert_eq!(strategy.local_rows(10), 0..10);
/// ```
#[derive(Clone, Debug)]
pub struct MultiWorkerMirroredStrategy {
    comm: Arc<dyn Communicator>,
    options: ReduceOptions,
    auto_shard: AutoShard,
}

impl MultiWorkerMirroredStrategy {
    /// A strategy over `comm`'s workers (an `MpiWorld`'s communicator).
    pub fn new(comm: Arc<dyn Communicator>) -> Self {
        MultiWorkerMirroredStrategy {
            comm,
            options: ReduceOptions::new(),
            auto_shard: AutoShard::Data,
        }
    }

    /// The world of one: the distributed code paths, in one process.
    pub fn local() -> Self {
        Self::new(Arc::new(LocalCommunicator::new()))
    }

    /// How gradients are fused into buckets.
    pub fn reduce_options(mut self, options: ReduceOptions) -> Self {
        self.options = options;
        self
    }

    /// How `fit` splits the data (see [`AutoShard`]).
    pub fn auto_shard(mut self, auto_shard: AutoShard) -> Self {
        self.auto_shard = auto_shard;
        self
    }

    /// The data split policy.
    pub fn auto_shard_policy(&self) -> AutoShard {
        self.auto_shard
    }

    /// The communicator.
    pub fn communicator(&self) -> &Arc<dyn Communicator> {
        &self.comm
    }

    /// This worker's rank.
    pub fn rank(&self) -> usize {
        self.comm.rank()
    }

    /// The number of workers.
    pub fn num_workers(&self) -> usize {
        self.comm.size()
    }

    /// Whether this worker is rank 0, the one that writes.
    pub fn is_chief(&self) -> bool {
        self.comm.rank() == 0
    }

    /// This worker's rows of a global batch of `rows`: contiguous, as even as possible, the
    /// first workers taking one more when it does not divide.
    pub fn local_rows(&self, rows: usize) -> Range<usize> {
        shard_range(rows, self.comm.size(), self.comm.rank())
    }

    /// The gradients averaged over workers, each weighing as `weighting` says (in `fit`:
    /// its share of the global batch).
    pub fn reduce_gradients(&self, grads: &[Tensor], weighting: Weighting) -> Result<Vec<Tensor>> {
        all_reduce_gradients(self.comm.clone(), grads, weighting, self.options)
    }

    /// The gradients summed over workers (each computed from a loss already divided by the
    /// global batch size, as TensorFlow's `compute_average_loss` does in `fit`).
    pub fn sum_gradients(&self, grads: &[Tensor]) -> Result<Vec<Tensor>> {
        all_reduce_gradients(self.comm.clone(), grads, Weighting::Equal, self.options.sum())
    }

    /// Whether two strategies reduce over the same communicator with the same settings
    /// (a traced step made for one serves the other).
    pub fn same_as(&self, other: &MultiWorkerMirroredStrategy) -> bool {
        Arc::ptr_eq(&self.comm, &other.comm) && self.options == other.options && self.auto_shard == other.auto_shard
    }
}

/// Part `index` of `rows` split into `parts` contiguous ranges.
pub fn shard_range(rows: usize, parts: usize, index: usize) -> Range<usize> {
    let parts = parts.max(1);
    let (base, extra) = (rows / parts, rows % parts);
    let start = index * base + index.min(extra);
    let len = base + usize::from(index < extra);
    start.min(rows)..(start + len).min(rows)
}

#[cfg(test)]
mod tests {
    use super::shard_range;

    #[test]
    fn shard_ranges_partition_the_rows() {
        for rows in 0..12 {
            for parts in 1..5 {
                let ranges: Vec<_> = (0..parts).map(|i| shard_range(rows, parts, i)).collect();
                assert_eq!(ranges[0].start, 0);
                assert_eq!(ranges[parts - 1].end, rows);
                for w in ranges.windows(2) {
                    assert_eq!(w[0].end, w[1].start);
                    assert!(w[0].len() >= w[1].len() && w[0].len() - w[1].len() <= 1);
                }
            }
        }
        assert_eq!(shard_range(10, 3, 0), 0..4);
        assert_eq!(shard_range(10, 3, 2), 7..10);
    }
}
