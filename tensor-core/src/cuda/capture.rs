//! CUDA-graph capture and replay of a traced call: the second call of a traced function on
//! a GPU is recorded as one CUDA graph, and later calls with arguments of the same specs
//! replay it with one launch instead of one launch per op.
//!
//! A graph replays fixed addresses, so a captured call works on memory of its own:
//!
//! * each argument is copied into a buffer of the capture before each replay;
//! * each variable the call reads or writes is moved, before the capture, into memory the
//!   capture keeps; inside the capture an assign writes into that memory (after checking
//!   that no value of the call still reads the old contents), so the variable's memory is
//!   the same on every replay;
//! * every buffer an op allocates while the capture records is kept by the capture (the
//!   tensors made meanwhile are views of it), and each replay writes the same buffers;
//! * the outputs are copied out after each replay, so a caller never holds memory the next
//!   replay overwrites.
//!
//! Anything a graph cannot hold makes the capture fail, and the call then runs op by op:
//! a copy between host and GPU, an op without a kernel (it runs on host copies), an assign
//! whose old value is still read. A replay is refused (the call runs op by op) when an
//! argument's spec differs from the captured one or when a tensor outside the call still
//! shares a variable's memory, which a replay would change under it.
//!
//! Captures record on a stream of their own (`Runtime::capture_stream`), so work queued by
//! other threads meanwhile runs normally; replays launch on the one stream every op runs on.

use super::buffer::CudaBuffer;
use super::runtime::{runtime, Runtime};
use crate::device::storage::Buffer;
use crate::{DType, Device, DeviceData, Error, Result, Tensor, Value, Variable};
use cudarc::driver::{sys, CudaGraph};
use std::cell::RefCell;
use std::sync::{Arc, Mutex};

/// What this thread is capturing: the GPU, and the memory the recorded kernels write.
struct Recorder {
    ordinal: usize,
    owners: Vec<Arc<CudaBuffer>>,
}

thread_local! {
    static RECORDER: RefCell<Option<Recorder>> = const { RefCell::new(None) };
}

/// True while this thread records a capture on GPU `ordinal`.
pub(crate) fn capturing(ordinal: usize) -> bool {
    RECORDER.with(|r| r.borrow().as_ref().is_some_and(|r| r.ordinal == ordinal))
}

/// While this thread records on `rt`'s GPU, a buffer kept by the capture (the caller gets a
/// view of it); else `None` and the caller allocates as usual.
pub(crate) fn intercept_alloc(rt: &Runtime, op: &'static str, dtype: DType, len: usize) -> Option<Result<CudaBuffer>> {
    RECORDER.with(|r| {
        let mut r = r.borrow_mut();
        let rec = r.as_mut().filter(|rec| rec.ordinal == rt.ordinal)?;
        Some(CudaBuffer::owned(rt, op, dtype, len).map(|b| {
            let owner = Arc::new(b);
            rec.owners.push(owner.clone());
            CudaBuffer::view(rt, &owner)
        }))
    })
}

/// An error while recording: a graph cannot hold a copy from or to host memory.
pub(crate) fn refuse_host_copy(rt: &Runtime, op: &'static str) -> Result<()> {
    if capturing(rt.ordinal) {
        return Err(Error::Other {
            op,
            msg: "a copy between host and GPU cannot be captured into a CUDA graph".into(),
        });
    }
    Ok(())
}

/// An assign while recording: writes `new` into the variable's memory (`current`, which
/// every replay reads) instead of giving the variable new memory. Refused when anything but
/// the variable (and the caller's `current`) holds that memory: a value of the call that
/// still reads the old contents, or a view of them.
pub(crate) fn assign_in_place(rt: &Runtime, op: &'static str, current: &DeviceData, new: &DeviceData) -> Result<()> {
    // The variable and `current` hold the data; the capture's own copy and the variable's
    // data hold the buffer (see `capture`).
    if current.holders() != (2, 2) {
        return Err(Error::Other {
            op,
            msg: "the variable's old value is still read, so this assign cannot be captured into a CUDA graph".into(),
        });
    }
    let (Buffer::Cuda(dst), Buffer::Cuda(src)) = (current.buffer(), new.buffer());
    dst.copy_from(rt, op, src)
}

/// Ends this thread's recording however the capture ends (a panic included), so the stream
/// never stays in capture mode and no later allocation is taken for a dead capture.
struct Recording<'a> {
    stream: &'a Arc<cudarc::driver::CudaStream>,
    active: bool,
}

impl<'a> Recording<'a> {
    fn begin(rt: &'a Runtime, stream: &'a Arc<cudarc::driver::CudaStream>) -> Option<Recording<'a>> {
        stream
            .begin_capture(sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_RELAXED)
            .ok()?;
        RECORDER.with(|r| {
            *r.borrow_mut() = Some(Recorder {
                ordinal: rt.ordinal,
                owners: Vec::new(),
            })
        });
        Some(Recording { stream, active: true })
    }

    /// Stops recording: the instantiated graph (if the capture held together) and the
    /// memory its kernels write.
    fn end(mut self) -> (Option<CudaGraph>, Vec<Arc<CudaBuffer>>) {
        self.active = false;
        let owners = RECORDER
            .with(|r| r.borrow_mut().take())
            .map_or_else(Vec::new, |r| r.owners);
        let graph = self.stream.end_capture(sys::CUgraphInstantiate_flags(0)).ok().flatten();
        (graph, owners)
    }
}

impl Drop for Recording<'_> {
    fn drop(&mut self) {
        if self.active {
            RECORDER.with(|r| r.borrow_mut().take());
            let _ = self.stream.end_capture(sys::CUgraphInstantiate_flags(0));
        }
    }
}

/// An instantiated CUDA graph. Graph handles may be used from any thread when calls are
/// serialised, which the mutex around it does.
struct Exec(CudaGraph);

// SAFETY: CUDA allows a graph to be launched from any thread; every use goes through the
// `Mutex` in `Captured`, which serialises them as the driver requires.
unsafe impl Send for Exec {}

/// A traced call captured as a CUDA graph on one GPU (see the module docs).
pub(crate) struct Captured {
    rt: Arc<Runtime>,
    device: Device,
    exec: Mutex<Exec>,
    /// Where each argument is copied before a replay; also its spec.
    inputs: Vec<DeviceData>,
    /// Each variable the call uses, with the memory the graph reads and writes it in.
    variables: Vec<(Variable, DeviceData)>,
    /// The call's outputs where the graph leaves them.
    outputs: Vec<DeviceData>,
    /// The memory the graph's kernels write, alive as long as the graph.
    _owners: Vec<Arc<CudaBuffer>>,
}

/// The CUDA memory of device data.
fn cuda(d: &DeviceData) -> &CudaBuffer {
    match d.buffer() {
        Buffer::Cuda(b) => b,
    }
}

/// A copy of `d` in fresh memory of its own.
fn copy_of(rt: &Runtime, d: &DeviceData, op: &'static str) -> Result<DeviceData> {
    let src = cuda(d);
    let dst = CudaBuffer::owned(rt, op, src.dtype(), src.len)?;
    dst.copy_from(rt, op, src)?;
    Ok(DeviceData::new(d.device(), d.spec().clone(), Buffer::Cuda(dst)))
}

/// `t`'s device data when it lives on `device`.
fn on(device: Device, t: &Tensor) -> Option<&DeviceData> {
    match t.value() {
        Value::Device(d) if d.device() == device => Some(d),
        _ => None,
    }
}

const OP: &str = "function";

impl Captured {
    /// Captures `run` (the call, op by op, on the given arguments) on GPU `device`, launches
    /// the graph once and returns it with the call's outputs; `None` when the call cannot be
    /// captured and nothing ran (the caller then runs it op by op, which reports any error
    /// of its own).
    pub(crate) fn capture(
        device: Device,
        args: &[&Tensor],
        variables: &[Variable],
        run: &mut dyn FnMut(&[&Tensor]) -> Result<Vec<Tensor>>,
    ) -> Option<(Captured, Result<Vec<Tensor>>)> {
        let Device::Cuda(ordinal) = device else {
            return None;
        };
        let rt = runtime(ordinal).ok()?;
        let _one_at_a_time = rt.capture_lock.lock().unwrap_or_else(|p| p.into_inner());
        let (stream, _) = rt.capture_stream().ok()?;
        let inputs: Vec<DeviceData> = args
            .iter()
            .map(|a| on(device, a).and_then(|d| copy_of(&rt, d, OP).ok()))
            .collect::<Option<_>>()?;
        let mut statics = Vec::with_capacity(variables.len());
        for v in variables {
            let current = v.device_value().filter(|d| d.device() == device)?;
            let own = copy_of(&rt, &current, OP).ok()?;
            v.store_device(own.with_spec(own.spec().clone()));
            statics.push((v.clone(), own));
        }
        let arg_tensors: Vec<Tensor> = inputs.iter().map(|d| Tensor::from_device_data(d.clone())).collect();
        let refs: Vec<&Tensor> = arg_tensors.iter().collect();
        let recording = Recording::begin(&rt, stream)?;
        let result = run(&refs);
        let (graph, owners) = recording.end();
        let outputs: Vec<DeviceData> = result
            .ok()?
            .iter()
            .map(|t| on(device, t).cloned())
            .collect::<Option<_>>()?;
        let captured = Captured {
            device,
            exec: Mutex::new(Exec(graph?)),
            inputs,
            variables: statics,
            outputs,
            _owners: owners,
            rt: rt.clone(),
        };
        captured.launch().ok()?;
        // The call ran: from here an error is the call's.
        let outs = captured.results();
        Some((captured, outs))
    }

    /// Replays the call on `args`; `None` when it cannot be replayed now (see the module
    /// docs) or the driver refused the launch, and the caller runs it op by op (nothing
    /// ran); an error once the graph ran.
    pub(crate) fn replay(&self, args: &[&Tensor]) -> Option<Result<Vec<Tensor>>> {
        if args.len() != self.inputs.len() {
            return None;
        }
        let sources: Vec<&DeviceData> = args
            .iter()
            .zip(&self.inputs)
            .map(|(a, own)| on(self.device, a).filter(|d| d.spec() == own.spec()))
            .collect::<Option<_>>()?;
        for (v, own) in &self.variables {
            let current = v.device_value().filter(|d| d.device() == self.device)?;
            if current.shares_buffer(own) {
                // The variable and `current` hold its data; the data and `own` its buffer.
                if current.holders() != (2, 2) {
                    return None;
                }
            } else {
                // Assigned outside the graph: bring the value into the graph's memory, if
                // nothing else still views that memory.
                if own.holders().1 != 1 || current.spec() != own.spec() {
                    return None;
                }
                if let Err(e) = cuda(own).copy_from(&self.rt, OP, cuda(&current)) {
                    return Some(Err(e));
                }
            }
        }
        let copied = sources.iter().zip(&self.inputs).try_for_each(|(src, own)| {
            let (src, dst) = (cuda(src), cuda(own));
            if src.address(&self.rt) == dst.address(&self.rt) {
                return Ok(());
            }
            dst.copy_from(&self.rt, OP, src)
        });
        if let Err(e) = copied {
            return Some(Err(e));
        }
        self.launch().ok()?;
        Some(self.results())
    }

    /// Launches the graph on the one stream (an error: nothing ran).
    fn launch(&self) -> Result<()> {
        let exec = self.exec.lock().unwrap_or_else(|p| p.into_inner());
        self.rt
            .ctx
            .bind_to_thread()
            .map_err(|e| super::buffer::driver_error(OP, &self.rt, e))?;
        // SAFETY: a graph instantiated on this context, launched on a stream of it.
        unsafe { cudarc::driver::result::graph::launch(exec.0.cu_graph_exec(), self.rt.stream.cu_stream()) }
            .map_err(|e| super::buffer::driver_error(OP, &self.rt, e))
    }

    /// After a launch: gives each variable fresh data over its memory (no host copy of an
    /// older value survives a replay) and copies the outputs out.
    fn results(&self) -> Result<Vec<Tensor>> {
        for (v, own) in &self.variables {
            v.store_device(own.with_spec(own.spec().clone()));
        }
        self.outputs
            .iter()
            .map(|d| copy_of(&self.rt, d, OP).map(Tensor::from_device_data))
            .collect()
    }
}
