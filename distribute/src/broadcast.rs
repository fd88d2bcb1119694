//! Broadcasting initial state from one worker, with a check that every worker holds the
//! same variables: a worker started with another model is caught here, by name, instead of
//! corrupting memory or hanging in a later reduction of the wrong length.

use crate::communicator::{tensor_bytes, tensor_from_bytes};
use crate::{Communicator, CommunicatorExt, ReduceOp};
use ferroflow_tensor_core::{Error, Result, Trackable, Variable};

/// Sets every worker's variables to `root`'s (Horovod's `broadcast_variables`), after checking
/// that all workers list the same variables: the same count, and for each its path, dtype and
/// shape. A mismatch is the same error on every worker (op `broadcast_variables`), naming the
/// first difference and the rank; other errors (op `broadcast_variables/assign`, or the
/// transport's) are this worker's own.
///
/// For an optimizer's state, create its slots first (`optimizer.build(&vars)`) so that
/// every worker lists them.
///
/// ```
/// use ferroflow_distribute::{broadcast_variables, LocalCommunicator};
/// use ferroflow_tensor_core::{Tensor, Variable};
/// let w = Variable::new("w", Tensor::new([1.0f32, 2.0]))?;
/// broadcast_variables(&LocalCommunicator::new(), &[("w".to_string(), w.clone())], 0)?;
/// assert_eq!(w.value().to_vec::<f32>()?, vec![1.0, 2.0]);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
pub fn broadcast_variables(comm: &dyn Communicator, vars: &[(String, Variable)], root: usize) -> Result<()> {
    if root >= comm.size() {
        return Err(Error::invalid(
            "broadcast_variables",
            format!("root {root} in a world of {}", comm.size()),
        ));
    }
    check_same_variables(comm, vars, root)?;
    // One message for all values: variables are many and mostly small.
    let mut payload = Vec::new();
    if comm.rank() == root {
        for (_, v) in vars {
            payload.extend(tensor_bytes(&v.value())?);
        }
    } else {
        let total: usize = vars
            .iter()
            .map(|(_, v)| v.shape().num_elements() * v.dtype().size_of())
            .sum();
        payload.resize(total, 0);
    }
    comm.broadcast_bytes(&mut payload, root)?;
    if comm.rank() != root {
        let mut at = 0;
        for (path, v) in vars {
            let n = v.shape().num_elements() * v.dtype().size_of();
            let value = tensor_from_bytes(&payload[at..at + n], v.dtype(), v.shape().dims())?;
            v.assign(&value)
                .map_err(|e| Error::invalid("broadcast_variables", format!("assigning '{path}': {e}")))?;
            at += n;
        }
    }
    Ok(())
}

/// [`broadcast_variables`] of everything a trackable object holds (a model, an optimizer's
/// state), by its object paths.
pub fn broadcast_trackable(comm: &dyn Communicator, object: &dyn Trackable, root: usize) -> Result<()> {
    broadcast_variables(comm, &object.variables_by_path(), root)
}

/// One line per variable: `path dtype [dims]`.
fn describe(vars: &[(String, Variable)]) -> Vec<String> {
    vars.iter()
        .map(|(p, v)| format!("{p} {:?} {:?}", v.dtype(), v.shape().dims()))
        .collect()
}

/// Every worker compares its variable list with `root`'s; the lowest mismatching rank's
/// description of the difference is then sent to all, so every worker fails with the same
/// message (and none waits in a reduction the others never start).
fn check_same_variables(comm: &dyn Communicator, vars: &[(String, Variable)], root: usize) -> Result<()> {
    let mine = describe(vars);
    let mut theirs = mine.join("\n").into_bytes();
    comm.broadcast_vec(&mut theirs, root)?;
    let theirs = String::from_utf8_lossy(&theirs).into_owned();
    let theirs: Vec<&str> = if theirs.is_empty() {
        Vec::new()
    } else {
        theirs.lines().collect()
    };
    let rank = comm.rank();
    let difference = if theirs.len() != mine.len() {
        Some(format!(
            "rank {rank} has {} variables, rank {root} has {}",
            mine.len(),
            theirs.len()
        ))
    } else {
        mine.iter()
            .zip(&theirs)
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .map(|(i, (a, b))| format!("variable {i} is `{a}` on rank {rank} but `{b}` on rank {root}"))
    };
    let flag = if difference.is_some() {
        rank as f64
    } else {
        f64::INFINITY
    };
    let mut first = [flag];
    comm.all_reduce_in_place_f64(&mut first, ReduceOp::Min)?;
    if first[0].is_infinite() {
        return Ok(());
    }
    let culprit = first[0] as usize;
    let mut message = difference.unwrap_or_default().into_bytes();
    comm.broadcast_vec(&mut message, culprit)?;
    Err(Error::invalid(
        "broadcast_variables",
        format!(
            "the workers' models differ: {} (every worker must build the same model before the first broadcast)",
            String::from_utf8_lossy(&message)
        ),
    ))
}
