//! One [`Runtime`] per GPU, created on first use: the context, the one stream every op of
//! the process is ordered on, the cuBLAS handle, the compiled kernels and the memory
//! counters.
//!
//! One stream keeps the semantics of eager ops simple (each op sees its inputs finished)
//! without a synchronisation per op; host reads synchronise through the copy. It is a
//! created stream, not the legacy default one, because only created streams can be
//! captured into CUDA graphs; a second stream (with its own cuBLAS handle) is made for
//! captures, so that work other threads queue meanwhile is never swept into a graph.

use super::free_list::FreeList;
use cudarc::cublas::CudaBlas;
use cudarc::driver::{CudaContext, CudaFunction, CudaSlice, CudaStream};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Device memory of one GPU as ferroflow uses it: held by tensors, and kept for reuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct MemoryStats {
    /// Bytes held by live tensors now.
    pub in_use: usize,
    /// The most bytes held at once since start (or the last [`reset_peak_memory`]).
    pub peak: usize,
    /// Buffers allocated so far, whether new memory or a freed buffer reused (the
    /// stream-ordered pool and ferroflow's own cache both reuse freed memory without going
    /// back to the driver's allocator).
    pub allocations: u64,
    /// Bytes of freed buffers ferroflow keeps for reuse (not in `in_use`; see
    /// [`empty_cache`]).
    pub cached: usize,
}

/// One GPU's memory bookkeeping, shared by its runtime and every buffer it allocated: the
/// counters, and the freed buffers kept for reuse.
pub(crate) struct Memory {
    in_use: AtomicUsize,
    peak: AtomicUsize,
    allocations: AtomicU64,
    pub(crate) free: FreeList<super::buffer::Slice>,
}

impl Memory {
    /// No bytes counted; `FERROFLOW_CUDA_CACHE=0` sends every freed buffer straight back to
    /// the pool.
    fn new() -> Memory {
        Memory {
            in_use: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            allocations: AtomicU64::new(0),
            free: FreeList::new(std::env::var_os("FERROFLOW_CUDA_CACHE").is_none_or(|v| v != "0")),
        }
    }

    pub(crate) fn allocated(&self, bytes: usize) {
        let now = self.in_use.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.peak.fetch_max(now, Ordering::Relaxed);
        self.allocations.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn freed(&self, bytes: usize) {
        self.in_use.fetch_sub(bytes, Ordering::Relaxed);
    }

    fn snapshot(&self) -> MemoryStats {
        MemoryStats {
            in_use: self.in_use.load(Ordering::Relaxed),
            peak: self.peak.load(Ordering::Relaxed),
            allocations: self.allocations.load(Ordering::Relaxed),
            cached: self.free.bytes(),
        }
    }
}

/// A stream graph captures record on, with the cuBLAS handle bound to it.
pub(crate) type CaptureStream = (Arc<CudaStream>, Mutex<CudaBlas>);

/// Everything one GPU needs.
pub(crate) struct Runtime {
    pub(crate) ordinal: usize,
    pub(crate) ctx: Arc<CudaContext>,
    /// The stream every op of the process runs on.
    pub(crate) stream: Arc<CudaStream>,
    blas: Mutex<CudaBlas>,
    /// The stream and cuBLAS handle graph captures record on, made on first capture.
    capture: OnceLock<Result<CaptureStream, String>>,
    /// Held for the length of a capture: one capture at a time per GPU.
    pub(crate) capture_lock: Mutex<()>,
    /// cuBLAS's workspace, given to both handles (see `share_workspace`).
    blas_workspace: Option<CudaSlice<u8>>,
    kernels: Mutex<HashMap<KernelKey, CudaFunction>>,
    pub(crate) memory: Arc<Memory>,
}

impl Runtime {
    fn create(ordinal: usize) -> Result<Runtime, String> {
        if !libraries_present() {
            return Err("the CUDA driver, NVRTC or cuBLAS library was not found (is the CUDA lib64 directory on LD_LIBRARY_PATH?)".into());
        }
        let count = CudaContext::device_count().map_err(|e| format!("cuInit failed: {e}"))?;
        if ordinal >= count.max(0) as usize {
            return Err(format!("this machine has {count} CUDA device(s)"));
        }
        let ctx = CudaContext::new(ordinal).map_err(|e| e.to_string())?;
        // A single stream orders every op, so the per-buffer events cudarc would record for
        // cross-stream safety are pure launch overhead.
        // SAFETY: called before any buffer or second stream of this context exists.
        unsafe { ctx.disable_event_tracking() };
        keep_freed_memory_pooled(&ctx);
        let stream = ctx.new_stream().map_err(|e| format!("creating a stream: {e}"))?;
        let blas = CudaBlas::new(stream.clone()).map_err(|e| format!("cuBLAS: {e}"))?;
        // SAFETY: cuBLAS only uses the workspace as scratch space; it is never read as data.
        let blas_workspace = unsafe { stream.alloc::<u8>(BLAS_WORKSPACE) }.ok();
        if let Some(ws) = &blas_workspace {
            share_workspace(&blas, ws, &stream);
        }
        Ok(Runtime {
            ordinal,
            ctx,
            stream,
            blas: Mutex::new(blas),
            capture: OnceLock::new(),
            capture_lock: Mutex::new(()),
            blas_workspace,
            kernels: Mutex::new(HashMap::new()),
            memory: Arc::new(Memory::new()),
        })
    }

    /// The capture stream and its cuBLAS handle, made on first use.
    pub(crate) fn capture_stream(&self) -> Result<&CaptureStream, String> {
        self.capture
            .get_or_init(|| {
                let stream = self
                    .ctx
                    .new_stream()
                    .map_err(|e| format!("creating a capture stream: {e}"))?;
                let blas = CudaBlas::new(stream.clone()).map_err(|e| format!("cuBLAS: {e}"))?;
                if let Some(ws) = &self.blas_workspace {
                    share_workspace(&blas, ws, &self.stream);
                }
                Ok((stream, Mutex::new(blas)))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The stream this thread's kernels go to: the capture stream while this thread
    /// captures a graph on this GPU, else the one stream.
    pub(crate) fn launch_stream(&self) -> &Arc<CudaStream> {
        match self.capture.get() {
            Some(Ok((stream, _))) if super::capture::capturing(self.ordinal) => stream,
            _ => &self.stream,
        }
    }

    /// The cuBLAS handle bound to [`Runtime::launch_stream`].
    pub(crate) fn blas(&self) -> std::sync::MutexGuard<'_, CudaBlas> {
        let handle = match self.capture.get() {
            Some(Ok((_, blas))) if super::capture::capturing(self.ordinal) => blas,
            _ => &self.blas,
        };
        handle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The kernel for `key`, compiled with NVRTC from `source()` (its entry point's name
    /// and CUDA text) on first use, then cached for the life of the process. A hit costs a
    /// hash lookup: no name is formatted per call.
    pub(crate) fn kernel(
        &self,
        key: KernelKey,
        source: impl FnOnce() -> (String, String),
    ) -> Result<CudaFunction, String> {
        let mut cache = self.kernels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = cache.get(&key) {
            return Ok(f.clone());
        }
        let (name, src) = source();
        let opts = super::kernel::compile_options(&name);
        let ptx =
            cudarc::nvrtc::compile_ptx_with_opts(&src, opts).map_err(|e| format!("NVRTC compiling {name}: {e}"))?;
        let module = self.ctx.load_module(ptx).map_err(|e| format!("loading {name}: {e}"))?;
        let f = module.load_function(&name).map_err(|e| format!("{name}: {e}"))?;
        cache.insert(key, f.clone());
        Ok(f)
    }
}

/// Bytes of cuBLAS workspace (NVIDIA's recommendation for Hopper GPUs).
const BLAS_WORKSPACE: usize = 32 << 20;

/// Gives `blas` the runtime's workspace. Both handles' GEMMs run on the one stream (a
/// captured graph is launched there), so they never use it at once; and a GEMM recorded
/// into a graph then has the same workspace, hence the same algorithm and the same bits,
/// as the same GEMM run directly. Best effort: on failure the handle keeps its own.
fn share_workspace(blas: &CudaBlas, workspace: &CudaSlice<u8>, stream: &Arc<CudaStream>) {
    let (ptr, _sync) = cudarc::driver::DevicePtr::device_ptr(workspace, stream);
    // SAFETY: a live allocation of `workspace.len()` bytes that outlives both handles (the
    // runtime owning all three lives as long as the process).
    let _ = unsafe {
        cudarc::cublas::sys::cublasSetWorkspace_v2(*blas.handle(), ptr as *mut std::ffi::c_void, workspace.len())
    };
}

/// What identifies a generated kernel: its family (`unary`, `binary`, `reduce`), the op's
/// name, the bits of the op's attribute where it has one (leaky_relu's alpha, gelu's
/// approximation), and the dtype.
pub(crate) type KernelKey = (&'static str, &'static str, u64, crate::DType);

/// True when the three shared libraries the backend loads can be found. cudarc panics on a
/// missing library, so this is asked first.
fn libraries_present() -> bool {
    // SAFETY: these only try to open the libraries.
    unsafe {
        cudarc::driver::sys::is_culib_present()
            && cudarc::nvrtc::sys::is_culib_present()
            && cudarc::cublas::sys::is_culib_present()
    }
}

/// Raises the release threshold of the device's default memory pool to "never", so memory
/// freed by tensors stays in the stream-ordered pool and a training step allocates nothing
/// from the driver after its first run. Best effort: an old driver without pools keeps the
/// synchronous allocator.
fn keep_freed_memory_pooled(ctx: &CudaContext) {
    use cudarc::driver::sys;
    if !ctx.has_async_alloc() {
        return;
    }
    let mut pool: sys::CUmemoryPool = std::ptr::null_mut();
    let mut threshold: u64 = u64::MAX;
    // SAFETY: plain driver calls on this context's device with valid out-pointers.
    unsafe {
        if sys::cuDeviceGetDefaultMemPool(&mut pool, ctx.cu_device()) == sys::CUresult::CUDA_SUCCESS {
            let _ = sys::cuMemPoolSetAttribute(
                pool,
                sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
                (&mut threshold as *mut u64).cast(),
            );
        }
    }
}

type Slot = OnceLock<Result<Arc<Runtime>, String>>;

/// Runtimes by ordinal (a few slots; more GPUs than this in one process are refused).
const MAX_DEVICES: usize = 16;

static RUNTIMES: [Slot; MAX_DEVICES] = [const { OnceLock::new() }; MAX_DEVICES];

/// The runtime of GPU `ordinal`, created on first use; the reason when there is none.
pub(crate) fn runtime(ordinal: usize) -> Result<Arc<Runtime>, String> {
    let slot = RUNTIMES
        .get(ordinal)
        .ok_or_else(|| format!("ferroflow supports CUDA ordinals below {MAX_DEVICES}"))?;
    slot.get_or_init(|| {
        // A driver that misbehaves must not take the process down: report it instead.
        std::panic::catch_unwind(|| Runtime::create(ordinal))
            .unwrap_or_else(|_| Err("the CUDA driver could not be initialised".into()))
            .map(Arc::new)
    })
    .clone()
}

/// True when GPU `ordinal` can be used by this process.
///
/// ```
/// // Never panics, with or without a GPU or the CUDA libraries.
/// let _ = ferroflow_tensor_core::cuda::is_available(0);
/// ```
pub fn is_available(ordinal: usize) -> bool {
    runtime(ordinal).is_ok()
}

/// Number of CUDA GPUs this process can use (0 without the driver).
pub fn device_count() -> usize {
    if !libraries_present() {
        return 0;
    }
    std::panic::catch_unwind(CudaContext::device_count)
        .ok()
        .and_then(|r| r.ok())
        .map_or(0, |n| n.max(0) as usize)
}

/// Device memory held by tensors on GPU `ordinal`, and kept for reuse (`None` when it is
/// unavailable).
///
/// ```
/// if let Some(m) = ferroflow_tensor_core::cuda::memory_stats(0) {
///     assert!(m.peak >= m.in_use);
/// }
/// ```
pub fn memory_stats(ordinal: usize) -> Option<MemoryStats> {
    runtime(ordinal).ok().map(|rt| rt.memory.snapshot())
}

/// Hands the freed buffers ferroflow keeps for reuse on GPU `ordinal` back to the driver's
/// stream-ordered pool (as `torch.cuda.empty_cache` does for PyTorch's), so that
/// [`memory_stats`]'s `cached` drops to 0.
///
/// ```
/// ferroflow_tensor_core::cuda::empty_cache(0);
/// if let Some(m) = ferroflow_tensor_core::cuda::memory_stats(0) {
///     assert_eq!(m.cached, 0);
/// }
/// ```
pub fn empty_cache(ordinal: usize) {
    // Only a runtime that exists: no context is created to empty nothing.
    if let Some(Ok(rt)) = RUNTIMES.get(ordinal).and_then(OnceLock::get) {
        rt.memory.free.clear();
    }
}

/// Restarts the peak of [`memory_stats`] from the bytes in use now.
pub fn reset_peak_memory(ordinal: usize) {
    if let Ok(rt) = runtime(ordinal) {
        let now = rt.memory.in_use.load(Ordering::Relaxed);
        rt.memory.peak.store(now, Ordering::Relaxed);
    }
}

/// Waits until every op queued on GPU `ordinal` has finished (for timing; reading a
/// tensor on the host waits by itself).
pub fn synchronize(ordinal: usize) -> crate::Result<()> {
    let device = crate::Device::Cuda(ordinal);
    let rt = runtime(ordinal).map_err(|msg| crate::Error::DeviceUnavailable {
        op: "synchronize",
        device,
        msg,
    })?;
    rt.stream
        .synchronize()
        .map_err(|e| super::buffer::driver_error("synchronize", &rt, e))
}
