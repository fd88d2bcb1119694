//! [`CapturedCall`]: a whole traced call recorded once on an accelerator and replayed with
//! one launch (CUDA graphs), for the graph executor. Device-neutral: without an accelerator
//! backend nothing is ever captured.

use super::Device;
use crate::{Result, Tensor, Variable};
use std::sync::atomic::{AtomicU8, Ordering};

/// A traced call captured on an accelerator (a CUDA graph), replayed by
/// [`CapturedCall::replay`]. Made by [`CapturedCall::capture`]; the graph executor of
/// `ferroflow-graph` captures the second call of a traced function on a GPU.
pub struct CapturedCall {
    #[cfg(feature = "cuda")]
    inner: crate::cuda::capture::Captured,
    #[cfg(not(feature = "cuda"))]
    never: std::convert::Infallible,
}

impl std::fmt::Debug for CapturedCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CapturedCall")
    }
}

impl CapturedCall {
    /// Records `run` (a call on `args`, op by op, reading and writing `variables`) on
    /// `device` as one graph, performs it once and returns the graph with the call's
    /// outputs (an error there comes after the call ran); `None` when the call cannot be
    /// captured (then nothing was performed and the caller runs the call itself). Captures
    /// only when [`graph_capture_enabled`].
    ///
    /// While recording, nothing runs: ops only record their kernels. The arguments and
    /// variables are moved into memory the capture keeps, so `variables` must list every
    /// variable the call reads or writes.
    ///
    /// ```
    /// use ferroflow_tensor_core::{CapturedCall, Device, Tensor};
    /// let x = Tensor::new([1.0f32, 2.0]);
    /// // Nothing is captured on the CPU (or without a GPU).
    /// let captured = CapturedCall::capture(Device::Cpu, &[&x], &[], &mut |a| Ok(vec![a[0].exp()?]));
    /// assert!(captured.is_none());
    /// ```
    pub fn capture(
        device: Device,
        args: &[&Tensor],
        variables: &[Variable],
        run: &mut dyn FnMut(&[&Tensor]) -> Result<Vec<Tensor>>,
    ) -> Option<(CapturedCall, Result<Vec<Tensor>>)> {
        if device.is_cpu() || !graph_capture_enabled() {
            return None;
        }
        #[cfg(feature = "cuda")]
        {
            crate::cuda::capture::Captured::capture(device, args, variables, run)
                .map(|(inner, outs)| (CapturedCall { inner }, outs))
        }
        #[cfg(not(feature = "cuda"))]
        {
            let _ = (args, variables, run);
            None
        }
    }

    /// Performs the captured call again on `args` (copied into the capture's memory first);
    /// `None` when it cannot be replayed now and nothing ran: an argument's dtype or shape
    /// differs from the captured one, a tensor outside the call still shares a variable's
    /// memory (which a replay would change), or the driver refused the launch. The caller
    /// then runs the call op by op.
    pub fn replay(&self, args: &[&Tensor]) -> Option<Result<Vec<Tensor>>> {
        #[cfg(feature = "cuda")]
        {
            self.inner.replay(args)
        }
        #[cfg(not(feature = "cuda"))]
        {
            let _ = args;
            match self.never {}
        }
    }
}

/// 0: not read yet; 1: on; 2: off.
static ENABLED: AtomicU8 = AtomicU8::new(0);

/// Turns the capture of traced calls into accelerator graphs on or off for the process
/// (on by default; the environment variable `FERROFLOW_CUDA_GRAPHS=0` turns it off at
/// start). Off, every call of a traced function on a GPU runs op by op.
///
/// ```
/// use ferroflow_tensor_core::{graph_capture_enabled, set_graph_capture};
/// set_graph_capture(false);
/// assert!(!graph_capture_enabled());
/// set_graph_capture(true);
/// assert!(graph_capture_enabled());
/// ```
pub fn set_graph_capture(enabled: bool) {
    ENABLED.store(if enabled { 1 } else { 2 }, Ordering::Relaxed);
}

/// True when traced calls on an accelerator are captured as graphs (see
/// [`set_graph_capture`]).
pub fn graph_capture_enabled() -> bool {
    match ENABLED.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            let on = std::env::var("FERROFLOW_CUDA_GRAPHS").map_or(true, |v| v != "0");
            set_graph_capture(on);
            on
        }
    }
}
