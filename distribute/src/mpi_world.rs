//! The MPI communicator, on rsmpi (feature `mpi`): `MPI_COMM_WORLD` of the job `mpirun`
//! started.

use crate::local::check_lengths;
use crate::{Communicator, ReduceOp};
use ferroflow_tensor_core::{Error, Result};
use mpi::collective::SystemOperation;
use mpi::topology::{Communicator as _, SimpleCommunicator};
use mpi::traits::{CommunicatorCollectives, Root};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// MPI, initialised for this process: keep it alive for as long as anything communicates
/// (until the end of `main`); dropping it finalizes MPI, after which the communicators it
/// handed out return errors. Dropped while panicking, it aborts the job instead, and a
/// finalize that waits too long for the other ranks ends the process (see its `Drop`).
///
/// ```no_run
/// use ferroflow_distribute::{Communicator, MpiWorld};
/// let mpi = MpiWorld::init()?;
/// let world = mpi.communicator();
/// println!("rank {} of {}", world.rank(), world.size());
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
#[must_use = "dropping the MpiWorld finalizes MPI"]
pub struct MpiWorld {
    comm: Arc<MpiCommunicator>,
    /// Dropping it calls `MPI_Finalize`; taken in [`Drop`], under a watchdog.
    universe: Option<mpi::environment::Universe>,
}

/// Seconds `MPI_Finalize` may take before the process ends without it (see [`MpiWorld`]'s
/// `Drop`): `FERROFLOW_MPI_FINALIZE_TIMEOUT`; unset or 0, no limit.
fn finalize_timeout() -> Option<std::time::Duration> {
    let secs = std::env::var("FERROFLOW_MPI_FINALIZE_TIMEOUT")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    (secs > 0).then(|| std::time::Duration::from_secs(secs))
}

/// Elements per MPI call: counts are C `int`s, so larger buffers go in pieces.
const CHUNK: usize = 1 << 28;

impl std::fmt::Debug for MpiWorld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MpiWorld").field("comm", &self.comm).finish()
    }
}

impl MpiWorld {
    /// Initialises MPI (once per process; a second call is an error).
    pub fn init() -> Result<MpiWorld> {
        let (universe, threading) = mpi::initialize_with_threading(mpi::Threading::Multiple)
            .ok_or_else(|| Error::invalid("MpiWorld::init", "MPI is already initialised in this process"))?;
        // Calls may come from any thread (one at a time, under the lock): that needs at least
        // MPI_THREAD_SERIALIZED.
        if matches!(threading, mpi::Threading::Single | mpi::Threading::Funneled) {
            return Err(Error::invalid(
                "MpiWorld::init",
                format!("the MPI library grants only {threading:?} threading; ferroflow needs Serialized or Multiple"),
            ));
        }
        let world = universe.world();
        let comm = Arc::new(MpiCommunicator {
            rank: world.rank() as usize,
            size: world.size() as usize,
            world: Mutex::new(world),
            finalized: AtomicBool::new(false),
        });
        Ok(MpiWorld {
            comm,
            universe: Some(universe),
        })
    }

    /// The world communicator, to share with tapes, optimizers and `fit`.
    pub fn communicator(&self) -> Arc<MpiCommunicator> {
        self.comm.clone()
    }
}

impl Drop for MpiWorld {
    /// Finalizes MPI, unless this process is failing:
    ///
    /// * while panicking, the other ranks may wait in a collective this one will never join,
    ///   and `MPI_Finalize` would wait for them in turn, so the job is aborted instead;
    /// * `MPI_Finalize` waits for every rank. If one is stuck (in a collective that this
    ///   process left early by returning an error from `main`), it would wait for ever; with
    ///   `FERROFLOW_MPI_FINALIZE_TIMEOUT=N` a watchdog aborts this process after `N` seconds,
    ///   and `mpirun` then ends the others. Off by default: healthy ranks also wait in
    ///   `MPI_Finalize` while rank 0 finishes its own work (saving a model, say).
    fn drop(&mut self) {
        self.comm.finalized.store(true, Ordering::SeqCst);
        if std::thread::panicking() {
            eprintln!(
                "rank {}: panicked; aborting the MPI job so the other ranks do not wait for it",
                self.comm.rank
            );
            self.comm.abort(101);
        }
        let done = Arc::new(AtomicBool::new(false));
        if let Some(limit) = finalize_timeout() {
            let (done, rank) = (done.clone(), self.comm.rank);
            let _ = std::thread::Builder::new()
                .name("ferroflow-mpi-finalize-watchdog".into())
                .spawn(move || {
                    std::thread::sleep(limit);
                    if !done.load(Ordering::SeqCst) {
                        eprintln!(
                            "rank {rank}: MPI_Finalize did not complete within {}s (another rank is stuck or still working); aborting",
                            limit.as_secs()
                        );
                        // Not `exit`: no exit handlers while the main thread is inside MPI.
                        std::process::abort();
                    }
                });
        }
        drop(self.universe.take());
        done.store(true, Ordering::SeqCst);
    }
}

/// `MPI_COMM_WORLD`. Calls are serialised through a lock, so tapes on several threads can
/// share it whatever thread level the MPI library grants.
pub struct MpiCommunicator {
    world: Mutex<SimpleCommunicator>,
    rank: usize,
    size: usize,
    finalized: AtomicBool,
}

// SAFETY: the handle is only used under the mutex, one call at a time, and MPI was
// initialised asking for MPI_THREAD_MULTIPLE; Open MPI's communicator handles are plain
// pointers to process-global objects that any thread may use.
unsafe impl Send for MpiCommunicator {}
unsafe impl Sync for MpiCommunicator {}

impl std::fmt::Debug for MpiCommunicator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MpiCommunicator")
            .field("rank", &self.rank)
            .field("size", &self.size)
            .finish()
    }
}

impl MpiCommunicator {
    fn with<R>(&self, op: &'static str, f: impl FnOnce(&SimpleCommunicator) -> R) -> Result<R> {
        if self.finalized.load(Ordering::SeqCst) {
            return Err(Error::invalid(op, "MPI was finalized (the MpiWorld was dropped)"));
        }
        let world = self
            .world
            .lock()
            .map_err(|_| Error::invalid(op, "a thread panicked inside an MPI call"))?;
        Ok(f(&world))
    }

    /// Runs `f` with the underlying rsmpi communicator (for MPI calls this crate does not
    /// wrap, or to compare with plain MPI), under the same lock as every other call.
    pub fn with_raw<R>(&self, f: impl FnOnce(&SimpleCommunicator) -> R) -> Result<R> {
        self.with("with_raw", f)
    }

    /// `MPI_Allreduce` of any float slice, in pieces of at most [`CHUNK`] elements.
    fn all_reduce_slices<T>(&self, send: &[T], recv: &mut [T], op: ReduceOp) -> Result<()>
    where
        T: crate::Float + mpi::datatype::Equivalence,
    {
        check_lengths(send.len(), recv.len())?;
        self.with("all_reduce", |w| {
            for (s, r) in send.chunks(CHUNK).zip(recv.chunks_mut(CHUNK)) {
                w.all_reduce_into(s, r, system_op(op));
            }
        })?;
        op.finish(recv, self.size);
        Ok(())
    }

    fn check_root(&self, root: usize) -> Result<()> {
        if root >= self.size {
            return Err(Error::invalid(
                "broadcast",
                format!("root {root} in a world of {}", self.size),
            ));
        }
        Ok(())
    }
}

fn system_op(op: ReduceOp) -> SystemOperation {
    match op.primitive() {
        ReduceOp::Max => SystemOperation::max(),
        ReduceOp::Min => SystemOperation::min(),
        _ => SystemOperation::sum(),
    }
}

impl Communicator for MpiCommunicator {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn barrier(&self) -> Result<()> {
        self.with("barrier", |w| w.barrier())
    }

    fn all_reduce_f32(&self, send: &[f32], recv: &mut [f32], op: ReduceOp) -> Result<()> {
        self.all_reduce_slices(send, recv, op)
    }

    fn all_reduce_f64(&self, send: &[f64], recv: &mut [f64], op: ReduceOp) -> Result<()> {
        self.all_reduce_slices(send, recv, op)
    }

    fn broadcast_bytes(&self, buf: &mut [u8], root: usize) -> Result<()> {
        self.check_root(root)?;
        self.with("broadcast", |w| {
            for piece in buf.chunks_mut(CHUNK) {
                w.process_at_rank(root as i32).broadcast_into(piece);
            }
        })
    }

    fn abort(&self, code: i32) -> ! {
        // Without the lock: another thread may hold it, blocked in a collective.
        SimpleCommunicator::world().abort(code)
    }
}
