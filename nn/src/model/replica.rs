//! The data-parallel parts of `fit` and its validation: each worker's share of a global
//! batch, the per-step agreement that keeps workers in step (stop, data exhausted, a worker
//! failed), the reduction of losses and metrics to global values, and the start-of-training
//! broadcast of rank 0's state.

use super::fit::{batch_len, LossTracker};
use super::inputs::Batch;
use super::steps::StepCore;
use super::Model;
use crate::Module;
use ferroflow_distribute::{
    broadcast_variables, AutoShard, Communicator, CommunicatorExt, MultiWorkerMirroredStrategy, ReduceOp,
};
use ferroflow_tensor_core::{DType, Error, Result, Tensor, Trackable};

/// This worker's part of a global batch and the global batch's row count (0 when every
/// worker reads its own data, [`AutoShard::Off`]).
pub(crate) fn local_part(strategy: &MultiWorkerMirroredStrategy, batch: Batch) -> Result<(Batch, usize)> {
    if strategy.auto_shard_policy() == AutoShard::Off {
        return Ok((batch, 0));
    }
    let rows = batch_len(&batch);
    let part = strategy.local_rows(rows);
    if part.len() == rows {
        return Ok((batch, rows));
    }
    let local = batch
        .iter()
        .map(|t| ferroflow_data::rows::row_range(t, part.start, part.end))
        .collect::<Result<Batch>>()?;
    Ok((local, rows))
}

/// What the workers agreed on before a step.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Agreement {
    /// Some worker asked to stop training.
    pub stop: bool,
    /// The fewest batches any worker holds for this step (0: some worker's data ran out).
    pub batches: usize,
    /// The lowest rank that failed, if one did.
    pub failed: Option<usize>,
}

/// One small all-reduce that every worker makes at the same point of every step, so that
/// a stop request, the end of one worker's data (or a shorter group of batches) or one
/// worker's error reaches all of them at once, and none waits in a reduction the others
/// never start. `batches`: how many batches this worker holds (`usize::MAX` where it does
/// not matter).
pub(crate) fn agree(comm: &dyn Communicator, stop: bool, batches: usize, failed: bool) -> Result<Agreement> {
    let size = comm.size();
    let mut flags = [
        f64::from(u8::from(stop)),
        -(batches.min(1 << 40) as f64),
        if failed { (size - comm.rank()) as f64 } else { 0.0 },
    ];
    comm.all_reduce_in_place_f64(&mut flags, ReduceOp::Max)?;
    Ok(Agreement {
        stop: flags[0] > 0.0,
        batches: (-flags[1]) as usize,
        failed: (flags[2] > 0.0).then(|| size - flags[2] as usize),
    })
}

/// Whether `flag` is true on any worker.
pub(crate) fn any(comm: &dyn Communicator, flag: bool) -> Result<bool> {
    Ok(agree(comm, flag, usize::MAX, false)?.stop)
}

/// The error a worker reports when another one failed.
pub(crate) fn worker_failed(op: &'static str, rank: usize) -> Error {
    Error::invalid(
        op,
        format!("worker {rank} failed (its own error is in its output); every worker stops"),
    )
}

/// The loss and metric results over all workers: the loss trackers' sums and every metric
/// state summed, the metrics' results computed from the sums.
pub(crate) fn global_results(
    comm: &dyn Communicator,
    core: &StepCore,
    tracker: &LossTracker,
) -> Result<(f64, Vec<Tensor>)> {
    let vars = core.metric_variables();
    let mut buffer = vec![tracker.total, tracker.count];
    let mut values = Vec::with_capacity(vars.len());
    for v in &vars {
        let t = v.value().cast(DType::F64)?;
        buffer.extend(t.to_vec::<f64>()?);
        values.push(t);
    }
    // Every worker must send as many values. A mismatch (a bug) is a clear error on every
    // worker, which then stops the job, instead of MPI's message-truncated abort.
    let mut lengths = [buffer.len() as f64, -(buffer.len() as f64)];
    comm.all_reduce_in_place_f64(&mut lengths, ReduceOp::Max)?;
    if lengths[0] != -lengths[1] {
        return Err(Error::Other {
            op: "fit",
            msg: format!(
                "workers hold different metric states ({} to {} values; this one {}): they cannot be reduced",
                -lengths[1],
                lengths[0],
                buffer.len()
            ),
        });
    }
    comm.all_reduce_in_place_f64(&mut buffer, ReduceOp::Sum)?;
    let loss = if buffer[1] > 0.0 { buffer[0] / buffer[1] } else { 0.0 };
    let mut at = 2;
    let mut states = Vec::with_capacity(vars.len());
    for (v, t) in vars.iter().zip(&values) {
        let n = t.shape().num_elements();
        let summed = Tensor::from_vec(buffer[at..at + n].to_vec(), t.dims())?.cast(v.dtype())?;
        states.push(summed);
        at += n;
    }
    Ok((loss, core.metric_results_for(&states)?))
}

/// Rank 0's model and optimizer state on every worker (checked to be the same variables
/// first), and rank 0's starting epoch and shuffle seed, so a resumed job continues alike
/// everywhere. Returns the agreed epoch and seed.
pub(crate) fn sync_start(
    comm: &dyn Communicator,
    model: &Model,
    core: &StepCore,
    first_epoch: usize,
    seed: u64,
) -> Result<(usize, u64)> {
    // Slots exist on every worker, in the model's order, before their values travel.
    core.optimizer.build(&model.trainable_variables())?;
    let mut vars = model.variables_by_path();
    vars.extend(
        core.optimizer
            .state()
            .variables_by_path()
            .into_iter()
            .map(|(p, v)| (format!("optimizer/{p}"), v)),
    );
    broadcast_variables(comm, &vars, 0)?;
    // A constant learning rate too: a callback or a restored backup may have changed it.
    // Every worker sends the same message, the rate or NaN for a schedule.
    let mine = match core.optimizer.state().learning_rate() {
        ferroflow_optim::LearningRate::Constant(lr) => lr,
        ferroflow_optim::LearningRate::Schedule(_) => f64::NAN,
    };
    let rate = comm.broadcast(&Tensor::scalar(mine), 0)?.to_scalar::<f64>()?;
    if !rate.is_nan() && !mine.is_nan() && rate != mine {
        core.optimizer.set_learning_rate(rate)?;
    }
    let mut start = [first_epoch as u64, seed]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect::<Vec<u8>>();
    comm.broadcast_bytes(&mut start, 0)?;
    let word = |i: usize| u64::from_le_bytes(start[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
    Ok((word(0) as usize, word(1)))
}
