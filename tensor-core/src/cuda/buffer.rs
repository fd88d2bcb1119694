//! [`CudaBuffer`]: one tensor's elements in device memory (dense, row-major; `bool` as one
//! byte), with the copies to and from the host.

use super::runtime::{Runtime, Stats};
use crate::{DType, Data, Element, Error, Result};
use cudarc::driver::{CudaSlice, DeviceRepr, LaunchArgs, PushKernelArg};
use ndarray::{ArrayD, IxDyn};
use std::sync::Arc;

/// Typed device memory.
pub(crate) enum Slice {
    F32(CudaSlice<f32>),
    F64(CudaSlice<f64>),
    I32(CudaSlice<i32>),
    I64(CudaSlice<i64>),
    Bool(CudaSlice<u8>),
}

/// A tensor's elements on one GPU. `len` is the element count; the allocation holds at
/// least one element so that empty tensors need no special case in the kernels.
pub(crate) struct CudaBuffer {
    pub(crate) slice: Slice,
    pub(crate) len: usize,
    bytes: usize,
    stats: Arc<Stats>,
}

impl Drop for CudaBuffer {
    fn drop(&mut self) {
        self.stats.freed(self.bytes);
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
fn alloc<T: DeviceRepr>(rt: &Runtime, op: &'static str, len: usize) -> Result<CudaSlice<T>> {
    // SAFETY: the memory is written by the kernel or copy this buffer is made for before
    // anything reads it (all on the runtime's one stream).
    unsafe { rt.stream.alloc::<T>(len.max(1)) }.map_err(|e| driver_error(op, rt, e))
}

impl CudaBuffer {
    fn wrap(rt: &Runtime, slice: Slice, len: usize, elem: usize) -> CudaBuffer {
        let bytes = len.max(1) * elem;
        rt.stats.allocated(bytes);
        CudaBuffer {
            slice,
            len,
            bytes,
            stats: rt.stats.clone(),
        }
    }

    /// Passes this buffer to a kernel as a `const T*` argument, whatever its dtype (the
    /// kernel's source was generated for that dtype).
    pub(crate) fn arg<'a>(&'a self, launch: &mut LaunchArgs<'a>) {
        match &self.slice {
            Slice::F32(s) => launch.arg(s),
            Slice::F64(s) => launch.arg(s),
            Slice::I32(s) => launch.arg(s),
            Slice::I64(s) => launch.arg(s),
            Slice::Bool(s) => launch.arg(s),
        };
    }

    /// Passes this buffer to a kernel as its `T*` output.
    pub(crate) fn arg_mut<'a>(&'a mut self, launch: &mut LaunchArgs<'a>) {
        match &mut self.slice {
            Slice::F32(s) => launch.arg(s),
            Slice::F64(s) => launch.arg(s),
            Slice::I32(s) => launch.arg(s),
            Slice::I64(s) => launch.arg(s),
            Slice::Bool(s) => launch.arg(s),
        };
    }

    /// An uninitialised buffer of `len` elements of `dtype`, for a kernel to fill.
    pub(crate) fn uninit(rt: &Runtime, op: &'static str, dtype: DType, len: usize) -> Result<CudaBuffer> {
        let slice = match dtype {
            DType::F32 => Slice::F32(alloc(rt, op, len)?),
            DType::F64 => Slice::F64(alloc(rt, op, len)?),
            DType::I32 => Slice::I32(alloc(rt, op, len)?),
            DType::I64 => Slice::I64(alloc(rt, op, len)?),
            DType::Bool => Slice::Bool(alloc(rt, op, len)?),
        };
        Ok(CudaBuffer::wrap(rt, slice, len, dtype.size_of()))
    }

    /// Copies host elements (any layout) to the device.
    pub(crate) fn upload(rt: &Runtime, data: &Data) -> Result<CudaBuffer> {
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
            rt.stream.clone_htod(src).map_err(|e| driver_error("to", rt, e))
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
        match &self.slice {
            Slice::F32(s) => shaped(dims, back(rt, s, self.len)?),
            Slice::F64(s) => shaped(dims, back(rt, s, self.len)?),
            Slice::I32(s) => shaped(dims, back(rt, s, self.len)?),
            Slice::I64(s) => shaped(dims, back(rt, s, self.len)?),
            Slice::Bool(s) => shaped(dims, back(rt, s, self.len)?.into_iter().map(|b| b != 0).collect()),
        }
    }
}
