//! The CUDA side of the device seam (`crate::device::storage::backend`).

use super::buffer::CudaBuffer;
use super::runtime::runtime;
use crate::device::storage::Buffer;
use crate::{Data, Device, DeviceData, Error, Result, TensorSpec};

pub(crate) use super::run::{run, run_fused};

pub(crate) fn cuda_available(ordinal: usize) -> bool {
    super::is_available(ordinal)
}

fn unavailable(op: &'static str, device: Device, msg: String) -> Error {
    Error::DeviceUnavailable { op, device, msg }
}

/// Copies host data to `device`.
pub(crate) fn upload(device: Device, data: &Data) -> Result<DeviceData> {
    let Device::Cuda(ordinal) = device else {
        return Err(Error::invalid("to", "the CPU holds host data already"));
    };
    let rt = runtime(ordinal).map_err(|m| unavailable("to", device, m))?;
    let buffer = CudaBuffer::upload(&rt, data)?;
    let spec = TensorSpec::new(data.dtype(), data.dims().to_vec());
    Ok(DeviceData::new(device, spec, Buffer::Cuda(buffer)))
}

/// Copies device data back to the host.
pub(crate) fn download(data: &DeviceData) -> Result<Data> {
    let device = data.device();
    let Device::Cuda(ordinal) = device else {
        return Err(Error::invalid("to", "host data is not device data"));
    };
    let rt = runtime(ordinal).map_err(|m| unavailable("to", device, m))?;
    match data.buffer() {
        Buffer::Cuda(b) => b.download(&rt, data.dims()),
    }
}
