//! The world of one: a [`Communicator`] with a single worker, so every distributed code path
//! runs (and is tested) without MPI.

use crate::{Communicator, ReduceOp};
use ferroflow_tensor_core::{Error, Result};

/// A communicator whose only worker is this process: reductions copy, broadcasts keep.
///
/// ```
/// use ferroflow_distribute::{Communicator, LocalCommunicator};
/// let world = LocalCommunicator::new();
/// assert!(world.is_chief());
/// world.barrier()?;
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalCommunicator;

impl LocalCommunicator {
    /// The world of one.
    pub fn new() -> Self {
        LocalCommunicator
    }
}

fn same_len(op: &'static str, send: usize, recv: usize) -> Result<()> {
    if send != recv {
        return Err(Error::invalid(
            op,
            format!("send buffer of {send} elements, receive buffer of {recv}"),
        ));
    }
    Ok(())
}

impl Communicator for LocalCommunicator {
    fn rank(&self) -> usize {
        0
    }

    fn size(&self) -> usize {
        1
    }

    fn barrier(&self) -> Result<()> {
        Ok(())
    }

    fn all_reduce_f32(&self, send: &[f32], recv: &mut [f32], op: ReduceOp) -> Result<()> {
        same_len("all_reduce", send.len(), recv.len())?;
        recv.copy_from_slice(send);
        op.finish(recv, 1);
        Ok(())
    }

    fn all_reduce_f64(&self, send: &[f64], recv: &mut [f64], op: ReduceOp) -> Result<()> {
        same_len("all_reduce", send.len(), recv.len())?;
        recv.copy_from_slice(send);
        op.finish(recv, 1);
        Ok(())
    }

    fn broadcast_bytes(&self, _buf: &mut [u8], root: usize) -> Result<()> {
        if root != 0 {
            return Err(Error::invalid("broadcast", format!("root {root} in a world of 1")));
        }
        Ok(())
    }

    fn abort(&self, code: i32) -> ! {
        std::process::exit(code)
    }
}

/// Checks that `send` and `recv` have the same length (for transports).
#[cfg_attr(not(feature = "mpi"), allow(dead_code))]
pub(crate) fn check_lengths(send: usize, recv: usize) -> Result<()> {
    same_len("all_reduce", send, recv)
}
