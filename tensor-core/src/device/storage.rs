//! [`DeviceData`]: the elements of a tensor that lives on an accelerator, and the seam
//! (`backend`) between the device-neutral core and the one backend compiled in.

use super::Device;
use crate::{DType, Data, Result, TensorSpec};
use std::fmt;
use std::sync::{Arc, OnceLock};

/// The elements of an eager tensor held in accelerator memory: always dense and row-major.
///
/// Cheap to clone (a reference count). Reading it on the host ([`DeviceData::to_host`])
/// copies once and keeps the copy, since tensors never change.
#[derive(Clone)]
pub struct DeviceData(Arc<Stored>);

struct Stored {
    device: Device,
    spec: TensorSpec,
    /// Shared between tensors that view the same elements under other shapes (`reshape`).
    buffer: Arc<Buffer>,
    host: OnceLock<Data>,
}

/// The backend's memory. Without an accelerator backend compiled in, this has no variants
/// and no `DeviceData` can exist.
pub(crate) enum Buffer {
    /// CUDA device memory.
    #[cfg(feature = "cuda")]
    Cuda(crate::cuda::CudaBuffer),
}

impl DeviceData {
    /// Wraps backend memory holding `spec`'s elements.
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub(crate) fn new(device: Device, spec: TensorSpec, buffer: Buffer) -> DeviceData {
        DeviceData(Arc::new(Stored {
            device,
            spec,
            buffer: Arc::new(buffer),
            host: OnceLock::new(),
        }))
    }

    /// The same elements under another spec with as many elements (`reshape` and kin: the
    /// storage is dense and row-major, so no copy).
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub(crate) fn with_spec(&self, spec: TensorSpec) -> DeviceData {
        DeviceData(Arc::new(Stored {
            device: self.0.device,
            spec,
            buffer: self.0.buffer.clone(),
            host: OnceLock::new(),
        }))
    }

    /// How many handles share this data, and how many data (views under other specs
    /// included) share its memory: a capture writes only memory it alone can see.
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub(crate) fn holders(&self) -> (usize, usize) {
        (Arc::strong_count(&self.0), Arc::strong_count(&self.0.buffer))
    }

    /// True when `self` and `other` are views of the same memory.
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub(crate) fn shares_buffer(&self, other: &DeviceData) -> bool {
        Arc::ptr_eq(&self.0.buffer, &other.0.buffer)
    }

    /// The device holding the elements.
    pub fn device(&self) -> Device {
        self.0.device
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.0.spec.dtype
    }

    /// Dimensions.
    pub fn dims(&self) -> &[usize] {
        self.0.spec.shape.dims()
    }

    /// Dtype and shape.
    pub fn spec(&self) -> &TensorSpec {
        &self.0.spec
    }

    /// The backend memory.
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub(crate) fn buffer(&self) -> &Buffer {
        &self.0.buffer
    }

    /// The elements on the host: copied from the device on first use, then kept.
    pub fn to_host(&self) -> Result<&Data> {
        if let Some(d) = self.cached_host() {
            return Ok(d);
        }
        let d = backend::download(self)?;
        Ok(self.0.host.get_or_init(|| d))
    }

    /// Records `data` (these very elements) as the host copy, so reads never copy back.
    /// No effect when a host copy exists.
    pub(crate) fn keep_host_copy(&self, data: Data) {
        let _ = self.0.host.set(data);
    }

    /// The host copy, if one was made already (never copies).
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub(crate) fn cached_host(&self) -> Option<&Data> {
        self.0.host.get()
    }
}
impl fmt::Debug for DeviceData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceData({} on {})", self.0.spec, self.0.device)
    }
}

/// The one backend compiled in: the device-neutral code calls only these.
pub(crate) mod backend {
    #[cfg(feature = "cuda")]
    pub(crate) use crate::cuda::backend::*;

    #[cfg(not(feature = "cuda"))]
    pub(crate) use self::absent::*;

    /// No accelerator backend: every request for one is an error that says why.
    #[cfg(not(feature = "cuda"))]
    mod absent {
        use crate::device::{Device, DeviceData};
        use crate::op::Outputs;
        use crate::{Data, Error, Op, Result, Tensor};

        fn unavailable(op: &'static str, device: Device) -> Error {
            Error::DeviceUnavailable {
                op,
                device,
                msg: "ferroflow was built without the `cuda` feature".into(),
            }
        }

        pub(crate) fn cuda_available(_ordinal: usize) -> bool {
            false
        }

        pub(crate) fn upload(device: Device, _data: &Data) -> Result<DeviceData> {
            Err(unavailable("to", device))
        }

        pub(crate) fn download(data: &DeviceData) -> Result<Data> {
            match *data.buffer() {}
        }

        pub(crate) fn run(
            device: Device,
            op: &Op,
            _inputs: &[&Tensor],
            _out: &[crate::TensorSpec],
        ) -> Result<Outputs<Tensor>> {
            Err(unavailable(op.name(), device))
        }

        pub(crate) fn run_fused(
            _device: Device,
            _fused: &crate::fused::FusedElementwise,
            _inputs: &[&Tensor],
        ) -> Option<Result<Tensor>> {
            None
        }
    }
}
