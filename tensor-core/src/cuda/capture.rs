//! CUDA-graph capture and replay of a traced call: the second call of a traced function on
//! a GPU is recorded as one CUDA graph, and later calls with arguments of the same specs
//! replay it with one launch instead of one launch per op.
//!
//! A graph replays fixed addresses, so a captured call works on memory of its own:
//!
//! * each argument is copied into a buffer of the capture before a replay, unless it is the
//!   very memory copied last time (tensors never change);
//! * each variable the call reads or writes is moved, before the capture, into memory the
//!   capture keeps; inside the capture an assign writes into that memory (after checking
//!   that no value of the call still reads the old contents), so the variable's memory is
//!   the same on every replay; a value assigned outside the graph is copied in before the
//!   next replay;
//! * every buffer an op allocates while the capture records is kept by the capture (the
//!   tensors made meanwhile are views of it), and each replay writes the same buffers;
//! * the outputs are copied out after each replay, so a caller never holds memory the next
//!   replay overwrites.
//!
//! Anything a graph cannot hold makes the capture fail, and the call then runs op by op:
//! a copy between host and GPU, an op without a kernel (it runs on host copies), an assign
//! whose old value is still read. A replay is refused (the call runs op by op) when an
//! argument's spec differs from the captured one or when a tensor outside the call still
//! shares the memory of a variable the graph writes, which a replay would change under it.
//! A replay holds the write locks of the call's variables from its checks until the
//! variables are stored back, so no other thread reads or assigns one in between.
//!
//! Captures record on a stream of their own (`Runtime::capture_stream`), so work queued by
//! other threads meanwhile runs normally; replays launch on the one stream every op runs on.

use super::buffer::CudaBuffer;
use super::runtime::{runtime, Runtime};
use crate::device::storage::Buffer;
use crate::variable::Held;
use crate::{DType, Device, DeviceData, Error, Result, Tensor, TensorSpec, Value, Variable};
use cudarc::driver::{sys, CudaGraph, CudaStream};
use std::cell::RefCell;
use std::sync::{Arc, Mutex};

/// What this thread is capturing: the GPU, the memory the recorded kernels write, and the
/// variables' memory its assigns write.
struct Recorder {
    ordinal: usize,
    owners: Vec<Arc<CudaBuffer>>,
    written: Vec<u64>,
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
    // The variable and `current` hold the data; the capture's own handle and the
    // variable's data hold the memory (see `Captured::capture`).
    if current.holders() != (2, 2) {
        return Err(Error::Other {
            op,
            msg: "the variable's old value is still read, so this assign cannot be captured into a CUDA graph".into(),
        });
    }
    let dst = cuda(current);
    dst.copy_from(rt, op, cuda(new))?;
    let address = dst.address(rt);
    RECORDER.with(|r| {
        if let Some(rec) = r.borrow_mut().as_mut() {
            rec.written.push(address);
        }
    });
    Ok(())
}

/// Ends this thread's recording however the capture ends (a panic included), so the stream
/// never stays in capture mode and no later allocation is taken for a dead capture.
struct Recording<'a> {
    stream: &'a Arc<CudaStream>,
    active: bool,
}

/// What a recording leaves: the instantiated graph (if the capture held together), the
/// memory its kernels write, and the addresses its assigns write.
type Recorded = (Option<CudaGraph>, Vec<Arc<CudaBuffer>>, Vec<u64>);

impl<'a> Recording<'a> {
    fn begin(rt: &Runtime, stream: &'a Arc<CudaStream>) -> Option<Recording<'a>> {
        stream
            .begin_capture(sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_RELAXED)
            .ok()?;
        RECORDER.with(|r| {
            *r.borrow_mut() = Some(Recorder {
                ordinal: rt.ordinal,
                owners: Vec::new(),
                written: Vec::new(),
            })
        });
        Some(Recording { stream, active: true })
    }

    fn end(mut self) -> Recorded {
        self.active = false;
        let (owners, written) = RECORDER
            .with(|r| r.borrow_mut().take())
            .map_or_else(Default::default, |r| (r.owners, r.written));
        let graph = self.stream.end_capture(sys::CUgraphInstantiate_flags(0)).ok().flatten();
        (graph, owners, written)
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

/// A variable of a captured call and the memory the graph reads (and maybe writes) it in.
struct Static {
    var: Variable,
    own: DeviceData,
    /// True when the graph assigns the variable.
    written: bool,
}

/// Where a captured call's output is after a replay.
enum Output {
    /// Memory the capture keeps (an op's output, an argument's copy, a constant).
    Data(DeviceData),
    /// A variable's memory (`statics[index]`), viewed with `spec`: a returned read.
    Variable { index: usize, spec: TensorSpec },
}

/// A traced call captured as a CUDA graph on one GPU (see the module docs).
pub(crate) struct Captured {
    rt: Arc<Runtime>,
    device: Device,
    exec: Mutex<Exec>,
    /// Where each argument is copied before a replay; also its spec.
    inputs: Vec<DeviceData>,
    /// The argument last copied into each input buffer: tensors never change, so the same
    /// memory passed again needs no copy (held, so its address cannot be reused).
    last_args: Mutex<Vec<Option<DeviceData>>>,
    /// The call's variables, by id (the order their locks are taken in).
    statics: Vec<Static>,
    outputs: Vec<Output>,
    /// The memory the graph's kernels write, alive as long as the graph.
    _owners: Vec<Arc<CudaBuffer>>,
}

/// The CUDA memory of device data.
fn cuda(d: &DeviceData) -> &CudaBuffer {
    match d.buffer() {
        Buffer::Cuda(b) => b,
    }
}

/// A copy of `d`'s elements in fresh memory of its own, as `spec`.
fn copy_as(rt: &Runtime, d: &DeviceData, spec: &TensorSpec) -> Result<DeviceData> {
    let src = cuda(d);
    let dst = CudaBuffer::owned(rt, OP, src.dtype(), src.len)?;
    dst.copy_from(rt, OP, src)?;
    Ok(DeviceData::new(d.device(), spec.clone(), Buffer::Cuda(dst)))
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
    /// the graph once and returns it with the call's outputs (an error there comes after
    /// the call ran); `None` when the call cannot be captured and nothing ran (the caller
    /// then runs it op by op, which reports any error of its own).
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
            .map(|a| on(device, a).and_then(|d| copy_as(&rt, d, d.spec()).ok()))
            .collect::<Option<_>>()?;
        let mut vars: Vec<&Variable> = variables.iter().collect();
        vars.sort_by_key(|v| v.id());
        vars.dedup_by_key(|v| v.id());
        let mut statics = Vec::with_capacity(vars.len());
        for v in vars {
            // Locked from read to store, so an assign from another thread is not lost.
            let mut held = v.lock();
            let Held::Device(current) = &*held else {
                return None;
            };
            if current.device() != device {
                return None;
            }
            let own = copy_as(&rt, current, current.spec()).ok()?;
            *held = Held::Device(own.with_spec(own.spec().clone()));
            drop(held);
            statics.push(Static {
                var: v.clone(),
                own,
                written: false,
            });
        }
        let arg_tensors: Vec<Tensor> = inputs.iter().map(|d| Tensor::from_device_data(d.clone())).collect();
        let refs: Vec<&Tensor> = arg_tensors.iter().collect();
        let recording = Recording::begin(&rt, stream)?;
        let result = run(&refs);
        let (graph, owners, written) = recording.end();
        let (graph, result) = (graph?, result.ok()?);
        for s in &mut statics {
            s.written = written.contains(&cuda(&s.own).address(&rt));
        }
        let outputs: Vec<Output> = result
            .iter()
            .map(|t| {
                let d = on(device, t)?;
                Some(match statics.iter().position(|s| s.own.shares_buffer(d)) {
                    Some(index) => Output::Variable {
                        index,
                        spec: d.spec().clone(),
                    },
                    None => Output::Data(d.clone()),
                })
            })
            .collect::<Option<_>>()?;
        drop(result);
        let last_args: Vec<Option<DeviceData>> = args.iter().map(|a| on(device, a).cloned()).collect();
        let mut captured = Captured {
            last_args: Mutex::new(Vec::new()),
            device,
            exec: Mutex::new(Exec(graph)),
            inputs,
            statics,
            outputs,
            _owners: owners,
            rt: rt.clone(),
        };
        let remembered = last_args.into_iter().map(|a| captured.unshared(a)).collect();
        *captured.last_args.get_mut().unwrap_or_else(|p| p.into_inner()) = remembered;
        // The arguments are in place already; each variable must still hold the capture's
        // memory (an assign from another thread meanwhile would have had the graph read
        // memory it does not keep).
        let outs = captured.perform(None)?;
        Some((captured, outs))
    }

    /// Replays the call on `args`; `None` when it cannot be replayed now (see the module
    /// docs) or the driver refused the launch: nothing ran and the caller runs the call op
    /// by op.
    pub(crate) fn replay(&self, args: &[&Tensor]) -> Option<Result<Vec<Tensor>>> {
        if args.len() != self.inputs.len() {
            return None;
        }
        let sources: Vec<&DeviceData> = args
            .iter()
            .zip(&self.inputs)
            .map(|(a, own)| on(self.device, a).filter(|d| d.spec() == own.spec()))
            .collect::<Option<_>>()?;
        self.perform(Some(&sources))
    }

    /// With the variables locked: checks them (bringing in values assigned outside the
    /// graph), copies new arguments in (`None`: they are in place), launches the graph,
    /// stores the variables back and copies the outputs out.
    fn perform(&self, sources: Option<&[&DeviceData]>) -> Option<Result<Vec<Tensor>>> {
        let mut locked: Vec<_> = self.statics.iter().map(|s| s.var.lock()).collect();
        let mut refresh = vec![false; self.statics.len()];
        for ((s, held), refresh) in self.statics.iter().zip(&locked).zip(&mut refresh) {
            let Held::Device(current) = &**held else {
                return None;
            };
            if current.device() != self.device {
                return None;
            }
            if current.shares_buffer(&s.own) {
                // The variable alone holds its data, and that data and `own` the memory:
                // no tensor outside sees what the graph writes.
                if s.written {
                    if current.holders() != (1, 2) {
                        return None;
                    }
                    *refresh = true;
                }
            } else {
                // Assigned outside the graph: bring the value in, unless something still
                // views the graph's memory (or the capture is new: see `capture`).
                if sources.is_none() || s.own.holders().1 != 1 || current.spec() != s.own.spec() {
                    return None;
                }
                if let Err(e) = cuda(&s.own).copy_from(&self.rt, OP, cuda(current)) {
                    return Some(Err(e));
                }
                *refresh = true;
            }
        }
        if let Some(sources) = sources {
            let mut last = self.last_args.lock().unwrap_or_else(|p| p.into_inner());
            for ((src, own), last) in sources.iter().zip(&self.inputs).zip(last.iter_mut()) {
                if last.as_ref().is_some_and(|l| l.shares_buffer(src)) {
                    continue;
                }
                *last = None;
                if let Err(e) = cuda(own).copy_from(&self.rt, OP, cuda(src)) {
                    return Some(Err(e));
                }
                *last = self.unshared(Some((*src).clone()));
            }
        }
        self.launch().ok()?;
        // Fresh data over the same memory: no host copy of an older value survives.
        for ((s, held), refresh) in self.statics.iter().zip(&mut locked).zip(refresh) {
            if refresh {
                **held = Held::Device(s.own.with_spec(s.own.spec().clone()));
            }
        }
        drop(locked);
        Some(
            self.outputs
                .iter()
                .map(|o| {
                    let copied = match o {
                        Output::Data(d) => copy_as(&self.rt, d, d.spec()),
                        Output::Variable { index, spec } => copy_as(&self.rt, &self.statics[*index].own, spec),
                    };
                    copied.map(Tensor::from_device_data)
                })
                .collect(),
        )
    }

    /// `arg` as worth remembering in `last_args`: not when it is a variable's memory, which
    /// the graph may write and whose holders the variable checks count.
    fn unshared(&self, arg: Option<DeviceData>) -> Option<DeviceData> {
        arg.filter(|d| !self.statics.iter().any(|s| s.own.shares_buffer(d)))
    }

    /// Launches the graph on the one stream (an error: nothing ran).
    fn launch(&self) -> Result<()> {
        let exec = self.exec.lock().unwrap_or_else(|p| p.into_inner());
        self.rt
            .ctx
            .bind_to_thread()
            .map_err(|e| super::buffer::driver_error(OP, &self.rt, e))?;
        // SAFETY: a graph instantiated on this context, launched on a stream of it (never on
        // the capture stream, which would not be ordered after the one stream's work).
        unsafe { cudarc::driver::result::graph::launch(exec.0.cu_graph_exec(), self.rt.stream.cu_stream()) }
            .map_err(|e| super::buffer::driver_error(OP, &self.rt, e))
    }
}
