//! [`CudaBuffer`]: one tensor's elements in device memory (dense, row-major; `bool` as one
//! byte), with the copies to and from the host. A buffer either owns its memory or is a
//! view of memory a captured CUDA graph owns (`super::capture`), which it keeps alive and
//! never frees.

use super::runtime::{Memory, Runtime};
use crate::{DType, Data, Element, Error, Result};
use cudarc::driver::{CudaSlice, DeviceRepr, DriverError, LaunchArgs, PushKernelArg};
use ndarray::{ArrayD, IxDyn};
use std::mem::ManuallyDrop;
use std::sync::Arc;

/// Typed device memory.
pub(crate) enum Slice {
    F32(CudaSlice<f32>),
    F64(CudaSlice<f64>),
    I32(CudaSlice<i32>),
    I64(CudaSlice<i64>),
    Bool(CudaSlice<u8>),
}

/// Runs `$body` with `$s` bound to the typed slice inside `$slice`, whatever its dtype.
macro_rules! with_slice {
    ($slice:expr, $s:ident => $body:expr) => {
        match $slice {
            Slice::F32($s) => $body,
            Slice::F64($s) => $body,
            Slice::I32($s) => $body,
            Slice::I64($s) => $body,
            Slice::Bool($s) => $body,
        }
    };
}

/// `$slice`'s typed slice `$s` mapped through `$body` into a new [`Slice`] of the same dtype.
macro_rules! map_slice {
    ($slice:expr, $s:ident => $body:expr) => {
        match $slice {
            Slice::F32($s) => Slice::F32($body),
            Slice::F64($s) => Slice::F64($body),
            Slice::I32($s) => Slice::I32($body),
            Slice::I64($s) => Slice::I64($body),
            Slice::Bool($s) => Slice::Bool($body),
        }
    };
}

/// A tensor's elements on one GPU. `len` is the element count; the allocation holds at
/// least one element so that empty tensors need no special case in the kernels.
pub(crate) struct CudaBuffer {
    /// Dropped by hand: freed when owned, released without freeing when a view.
    pub(crate) slice: ManuallyDrop<Slice>,
    pub(crate) len: usize,
    /// Bytes counted in the memory statistics (0 for a view: its owner counts them).
    bytes: usize,
    /// The GPU's counters, and its free list, where owned memory goes when the buffer is
    /// dropped (see `super::free_list`).
    memory: Arc<Memory>,
    /// For a view, the buffer that owns the memory.
    owner: Option<Arc<CudaBuffer>>,
}

impl Drop for CudaBuffer {
    fn drop(&mut self) {
        self.memory.freed(self.bytes);
        // SAFETY: `slice` is never used again after this.
        let slice = unsafe { ManuallyDrop::take(&mut self.slice) };
        if self.owner.is_some() {
            // The owner frees the memory; the view's handle only lets go of it.
            let _address = with_slice!(slice, s => s.leak());
        } else {
            // Kept for the next buffer of this size, or freed to the pool when not kept.
            let (dtype, len) = (slice.dtype(), slice.len());
            drop(self.memory.free.give(dtype, len, slice));
        }
    }
}

impl Slice {
    fn dtype(&self) -> DType {
        match self {
            Slice::F32(_) => DType::F32,
            Slice::F64(_) => DType::F64,
            Slice::I32(_) => DType::I32,
            Slice::I64(_) => DType::I64,
            Slice::Bool(_) => DType::Bool,
        }
    }

    /// Elements allocated (at least one).
    fn len(&self) -> usize {
        with_slice!(self, s => s.len())
    }
}

/// Maps a driver error to ferroflow's, naming the op.
pub(crate) fn driver_error(op: &'static str, rt: &Runtime, e: impl std::fmt::Display) -> Error {
    Error::DeviceUnavailable {
        op,
        device: crate::Device::Cuda(rt.ordinal),
        msg: e.to_string(),
    }
}

/// Device memory for `len` elements of `T`, uninitialised (every kernel writes all of it).
fn alloc<T: DeviceRepr>(rt: &Runtime, len: usize) -> std::result::Result<CudaSlice<T>, DriverError> {
    // SAFETY: the memory is written by the kernel or copy this buffer is made for before
    // anything reads it (all on the runtime's one stream).
    unsafe { rt.stream.alloc::<T>(len.max(1)) }
}

/// `make()`, tried once more after the freed buffers the runtime keeps are handed back to
/// the pool when the driver is out of memory and some are kept.
fn retry_out_of_memory<S>(
    rt: &Runtime,
    mut make: impl FnMut() -> std::result::Result<S, DriverError>,
) -> std::result::Result<S, DriverError> {
    match make() {
        Err(e) if e.0 == cudarc::driver::sys::CUresult::CUDA_ERROR_OUT_OF_MEMORY && rt.memory.free.bytes() > 0 => {
            rt.memory.free.clear();
            make()
        }
        made => made,
    }
}

impl CudaBuffer {
    fn wrap(rt: &Runtime, slice: Slice, len: usize, elem: usize) -> CudaBuffer {
        let bytes = len.max(1) * elem;
        rt.memory.allocated(bytes);
        CudaBuffer {
            slice: ManuallyDrop::new(slice),
            len,
            bytes,
            memory: rt.memory.clone(),
            owner: None,
        }
    }

    /// The element type.
    pub(crate) fn dtype(&self) -> DType {
        self.slice.dtype()
    }

    /// A buffer over `owner`'s memory that keeps it alive and never frees it.
    pub(crate) fn view(rt: &Runtime, owner: &Arc<CudaBuffer>) -> CudaBuffer {
        fn alias<T: DeviceRepr>(rt: &Runtime, s: &CudaSlice<T>) -> CudaSlice<T> {
            let (ptr, _sync) = cudarc::driver::DevicePtr::device_ptr(s, &rt.stream);
            // SAFETY: `ptr` is a live allocation of `s.len()` elements of `T`, kept alive by
            // the owner the view holds; the view never frees it (see `Drop`).
            unsafe { rt.stream.upgrade_device_ptr(ptr, s.len()) }
        }
        let slice = map_slice!(&*owner.slice, s => alias(rt, s));
        CudaBuffer {
            slice: ManuallyDrop::new(slice),
            len: owner.len,
            bytes: 0,
            memory: rt.memory.clone(),
            owner: Some(owner.clone()),
        }
    }

    /// The device address of the first element (identifies the memory).
    pub(crate) fn address(&self, rt: &Runtime) -> u64 {
        use cudarc::driver::DevicePtr;
        with_slice!(&*self.slice, s => s.device_ptr(&rt.stream).0)
    }

    /// Copies all of `src` (same dtype and length) into this buffer on this thread's
    /// launch stream. Tensors never change, so callers write only into memory no other
    /// live tensor reads (`super::capture` checks that before each use).
    pub(crate) fn copy_from(&self, rt: &Runtime, op: &'static str, src: &CudaBuffer) -> Result<()> {
        if src.len != self.len || src.dtype() != self.dtype() {
            return Err(Error::invalid(
                op,
                format!(
                    "cannot copy {} {:?} elements into {} {:?} ones",
                    src.len,
                    src.dtype(),
                    self.len,
                    self.dtype()
                ),
            ));
        }
        if self.len == 0 {
            return Ok(());
        }
        let bytes = self.len * self.dtype().size_of();
        rt.ctx.bind_to_thread().map_err(|e| driver_error(op, rt, e))?;
        // SAFETY: both addresses are live allocations of at least `bytes` bytes on this
        // context (equal lengths and dtypes, checked above), ordered on one stream.
        unsafe {
            cudarc::driver::result::memcpy_dtod_async(
                self.address(rt),
                src.address(rt),
                bytes,
                rt.launch_stream().cu_stream(),
            )
        }
        .map_err(|e| driver_error(op, rt, e))
    }

    /// Passes this buffer to a kernel as a `const T*` argument, whatever its dtype (the
    /// kernel's source was generated for that dtype).
    pub(crate) fn arg<'a>(&'a self, launch: &mut LaunchArgs<'a>) {
        with_slice!(&*self.slice, s => launch.arg(s));
    }

    /// Passes this buffer to a kernel as its `T*` output.
    pub(crate) fn arg_mut<'a>(&'a mut self, launch: &mut LaunchArgs<'a>) {
        with_slice!(&mut *self.slice, s => launch.arg(s));
    }

    /// An uninitialised buffer of `len` elements of `dtype`, for a kernel to fill.
    /// While this thread captures a CUDA graph, the memory comes from the capture instead
    /// (see `super::capture`).
    pub(crate) fn uninit(rt: &Runtime, op: &'static str, dtype: DType, len: usize) -> Result<CudaBuffer> {
        if let Some(captured) = super::capture::intercept_alloc(rt, op, dtype, len) {
            return captured;
        }
        Self::owned(rt, op, dtype, len)
    }

    /// An uninitialised buffer this handle owns, whatever this thread is doing: a freed
    /// one of the same dtype and length if one is kept, else new memory from the pool.
    pub(crate) fn owned(rt: &Runtime, op: &'static str, dtype: DType, len: usize) -> Result<CudaBuffer> {
        let slice = match rt.memory.free.take(dtype, len.max(1)) {
            // What allocating did besides: make this GPU's context current on this thread
            // (cuBLAS calls rely on it) and report an error the context recorded earlier.
            Some(slice) => rt.ctx.bind_to_thread().map(|()| slice),
            None => retry_out_of_memory(rt, || Self::fresh(rt, dtype, len)),
        }
        .map_err(|e| driver_error(op, rt, e))?;
        Ok(CudaBuffer::wrap(rt, slice, len, dtype.size_of()))
    }

    /// New memory from the stream-ordered pool.
    fn fresh(rt: &Runtime, dtype: DType, len: usize) -> std::result::Result<Slice, DriverError> {
        Ok(match dtype {
            DType::F32 => Slice::F32(alloc(rt, len)?),
            DType::F64 => Slice::F64(alloc(rt, len)?),
            DType::I32 => Slice::I32(alloc(rt, len)?),
            DType::I64 => Slice::I64(alloc(rt, len)?),
            DType::Bool => Slice::Bool(alloc(rt, len)?),
        })
    }

    /// Copies host elements (any layout) to the device.
    pub(crate) fn upload(rt: &Runtime, data: &Data) -> Result<CudaBuffer> {
        super::capture::refuse_host_copy(rt, "to")?;
        fn copy<T: DeviceRepr + Copy>(rt: &Runtime, values: &[T]) -> Result<CudaSlice<T>> {
            let one;
            // Never allocate zero bytes: pad an empty upload to one element.
            let src = if values.is_empty() {
                // SAFETY: a zeroed element of a plain numeric type is a valid value.
                one = [unsafe { std::mem::zeroed::<T>() }];
                &one[..]
            } else {
                values
            };
            retry_out_of_memory(rt, || rt.stream.clone_htod(src)).map_err(|e| driver_error("to", rt, e))
        }
        fn contiguous<T: Element>(a: &crate::Array<T>) -> std::borrow::Cow<'_, [T]> {
            match a.as_slice() {
                Some(s) => s.into(),
                None => a.iter().cloned().collect::<Vec<_>>().into(),
            }
        }
        let len = data.len();
        let slice = match data {
            Data::F32(a) => Slice::F32(copy(rt, &contiguous(a))?),
            Data::F64(a) => Slice::F64(copy(rt, &contiguous(a))?),
            Data::I32(a) => Slice::I32(copy(rt, &contiguous(a))?),
            Data::I64(a) => Slice::I64(copy(rt, &contiguous(a))?),
            Data::Bool(a) => Slice::Bool(copy(rt, &a.iter().map(|&b| b as u8).collect::<Vec<_>>())?),
        };
        Ok(CudaBuffer::wrap(rt, slice, len, data.dtype().size_of()))
    }

    /// Copies the elements back to the host as `dims`-shaped data (waits for the stream).
    pub(crate) fn download(&self, rt: &Runtime, dims: &[usize]) -> Result<Data> {
        super::capture::refuse_host_copy(rt, "to")?;
        fn back<T: DeviceRepr + Default + Clone>(rt: &Runtime, s: &CudaSlice<T>, len: usize) -> Result<Vec<T>> {
            if len == 0 {
                return Ok(Vec::new());
            }
            rt.stream
                .clone_dtoh(&s.slice(0..len))
                .map_err(|e| driver_error("to", rt, e))
        }
        fn shaped<T: Element>(dims: &[usize], v: Vec<T>) -> Result<Data> {
            ArrayD::from_shape_vec(IxDyn(dims), v)
                .map(Data::from_owned)
                .map_err(|e| Error::invalid("to", e.to_string()))
        }
        match &*self.slice {
            Slice::F32(s) => shaped(dims, back(rt, s, self.len)?),
            Slice::F64(s) => shaped(dims, back(rt, s, self.len)?),
            Slice::I32(s) => shaped(dims, back(rt, s, self.len)?),
            Slice::I64(s) => shaped(dims, back(rt, s, self.len)?),
            Slice::Bool(s) => shaped(dims, back(rt, s, self.len)?.into_iter().map(|b| b != 0).collect()),
        }
    }
}
