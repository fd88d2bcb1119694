//! Where tensors live and where ops run: [`Device`], the default-device scope
//! ([`with_device`], TensorFlow's `with tf.device(...)`), and the placement rule that
//! [`crate::dispatch`] applies to every eager op.
//!
//! The rule, as in TensorFlow's eager mode with soft placement off:
//!
//! * an op runs on the scope's device when a scope is active, else on the device of its
//!   non-scalar inputs (the CPU when it has none);
//! * inputs already there are used in place; scalars are copied silently (TensorFlow does
//!   the same for host scalars); host inputs of an op inside a device scope are copied to
//!   that device, because the scope asked for it;
//! * any other disagreement is an error naming the op and both devices. Copies between
//!   devices are otherwise explicit: [`crate::Tensor::to`].
//!
//! Without the `cuda` feature only the CPU exists; asking for a GPU is an error that says so.

mod capture;
mod custom;
pub(crate) mod storage;
#[cfg(feature = "cuda")]
pub(crate) use custom::custom_on_device;

pub use capture::{graph_capture_enabled, set_graph_capture, CapturedCall};

pub use storage::DeviceData;

use crate::{Error, Result, Tensor, Value};
use std::cell::Cell;
use std::fmt;
use std::str::FromStr;

/// A place for tensors and kernels: the host CPU or one CUDA GPU.
///
/// Parses TensorFlow's spellings (`"/GPU:0"`, `"/device:GPU:1"`, `"CPU"`) and PyTorch's
/// (`"cuda:1"`, `"cpu"`), and prints TensorFlow's full name.
///
/// ```
/// use ferroflow_tensor_core::Device;
/// let gpu: Device = "/GPU:1".parse()?;
/// assert_eq!(gpu, Device::Cuda(1));
/// assert_eq!("cuda".parse::<Device>()?, Device::Cuda(0));
/// assert_eq!(Device::Cpu.to_string(), "/device:CPU:0");
/// assert_eq!(gpu.to_string(), "/device:GPU:1");
/// assert!("tpu:0".parse::<Device>().is_err());
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Device {
    /// The host: ndarray storage and the CPU kernels.
    #[default]
    Cpu,
    /// The CUDA GPU with this ordinal (needs the `cuda` feature and a GPU at run time).
    Cuda(usize),
}

impl Device {
    /// True for [`Device::Cpu`].
    ///
    /// ```
    /// assert!(ferroflow_tensor_core::Device::Cpu.is_cpu());
    /// ```
    pub fn is_cpu(self) -> bool {
        self == Device::Cpu
    }

    /// True when this device can hold tensors in this process: always for the CPU; for a
    /// GPU, when the crate was built with the `cuda` feature and the driver finds that GPU.
    ///
    /// ```
    /// use ferroflow_tensor_core::Device;
    /// assert!(Device::Cpu.is_available());
    /// if !Device::Cuda(0).is_available() {
    ///     assert!(ferroflow_tensor_core::Tensor::scalar(1.0f32).to(Device::Cuda(0)).is_err());
    /// }
    /// ```
    pub fn is_available(self) -> bool {
        match self {
            Device::Cpu => true,
            Device::Cuda(ordinal) => storage::backend::cuda_available(ordinal),
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("/device:CPU:0"),
            Device::Cuda(i) => write!(f, "/device:GPU:{i}"),
        }
    }
}

impl FromStr for Device {
    type Err = Error;

    fn from_str(s: &str) -> Result<Device> {
        let bad = || {
            Error::invalid(
                "device",
                format!("unknown device {s:?}: expected e.g. \"/GPU:0\", \"cuda:0\" or \"CPU\""),
            )
        };
        let lower = s.trim().to_ascii_lowercase();
        let name = lower.trim_start_matches('/').trim_start_matches("device:");
        let (kind, index) = match name.split_once(':') {
            Some((kind, index)) => (kind, index.parse::<usize>().map_err(|_| bad())?),
            None => (name, 0),
        };
        match kind {
            "cpu" if index == 0 => Ok(Device::Cpu),
            "gpu" | "cuda" => Ok(Device::Cuda(index)),
            _ => Err(bad()),
        }
    }
}

thread_local! {
    /// The innermost active [`with_device`] scope of this thread.
    static SCOPE: Cell<Option<Device>> = const { Cell::new(None) };
}

/// Restores the previous default device when dropped (see [`device_scope`]).
#[must_use = "the scope ends when the guard is dropped"]
pub struct DeviceScope {
    previous: Option<Device>,
}

impl Drop for DeviceScope {
    fn drop(&mut self) {
        SCOPE.with(|s| s.set(self.previous));
    }
}

/// Makes `device` this thread's default device until the guard drops: eager ops run there
/// and copy their host inputs there (TensorFlow's `with tf.device(...)`). Scopes nest.
///
/// ```
/// use ferroflow_tensor_core::{device_scope, default_device, Device};
/// assert_eq!(default_device(), None);
/// {
///     let _cpu = device_scope(Device::Cpu);
///     assert_eq!(default_device(), Some(Device::Cpu));
/// }
/// assert_eq!(default_device(), None);
/// ```
pub fn device_scope(device: Device) -> DeviceScope {
    DeviceScope {
        previous: SCOPE.with(|s| s.replace(Some(device))),
    }
}

/// Runs `f` with `device` as the default device (see [`device_scope`]).
///
/// ```
/// use ferroflow_tensor_core::{with_device, Device, Tensor};
/// let y = with_device(Device::Cpu, || Tensor::new([1.0f32, 2.0]).exp())?;
/// assert_eq!(y.device(), Device::Cpu);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
pub fn with_device<R>(device: Device, f: impl FnOnce() -> R) -> R {
    let _scope = device_scope(device);
    f()
}

/// `data` on `device`, keeping `data` itself as the host copy: reading it on the host never
/// copies back, and ops that check index values on the host (a gather's indices, sparse
/// labels) check it as they check host tensors. For small values used many times, such as
/// a traced graph's constants; a large tensor moved this way keeps its host memory too.
///
/// ```
/// use ferroflow_tensor_core::{constant_on, Device, Tensor};
/// let c = constant_on(Tensor::new([1i64, 2]).data()?, Device::Cpu)?;
/// assert_eq!(c.to_vec::<i64>()?, vec![1, 2]);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
pub fn constant_on(data: &crate::Data, device: Device) -> Result<Tensor> {
    let t = Tensor::from_data(data.clone()).to(device)?;
    if let Value::Device(d) = t.value() {
        d.keep_host_copy(data.clone());
    }
    Ok(t)
}

/// The device of the innermost active scope on this thread, if any.
pub fn default_device() -> Option<Device> {
    SCOPE.with(|s| s.get())
}

/// Where an eager op runs, from its inputs and the scope (the rule in the module docs).
/// `Ok(None)` is the common case: everything on the host, no scope, nothing to decide.
///
/// Variable ops run where their variable lives, whatever the scope, and their inputs are
/// copied there (TensorFlow assigns a host value to a GPU variable the same way).
pub(crate) fn placement(op: &crate::Op, inputs: &[&Tensor]) -> Result<Option<Device>> {
    let variable = match op {
        crate::Op::ReadVariable(v) | crate::Op::Assign { var: v, .. } => Some(v.device()),
        _ => None,
    };
    placement_named(op.name(), variable, inputs)
}

/// [`placement`] for a computation named `name` (in errors) that is not one op, such as a
/// fused program; `variable` is the device of the variable it reads or writes, if any.
pub(crate) fn placement_named(
    name: &'static str,
    variable: Option<Device>,
    inputs: &[&Tensor],
) -> Result<Option<Device>> {
    let scoped = default_device();
    let on_device = inputs.iter().any(|t| matches!(t.value(), Value::Device(_)));
    if !on_device && scoped.is_none_or(Device::is_cpu) && variable.is_none_or(Device::is_cpu) {
        return Ok(None);
    }
    if let Some(device) = variable {
        return Ok(Some(device));
    }
    let target = scoped.unwrap_or_else(|| {
        let big = inputs.iter().find(|t| t.rank() > 0 && !t.is_symbolic());
        big.or(inputs.first()).map_or(Device::Cpu, |t| t.device())
    });
    for t in inputs {
        let here = t.device();
        let copied_by_scope = scoped.is_some() && here.is_cpu();
        if here != target && t.rank() > 0 && !copied_by_scope {
            return Err(Error::DeviceMismatch {
                op: name,
                devices: vec![target, here],
                msg: "copy one of them with `.to(device)` first".into(),
            });
        }
    }
    Ok(Some(target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tensorflow_and_torch_spellings() {
        for (s, d) in [
            ("CPU", Device::Cpu),
            ("/cpu:0", Device::Cpu),
            ("/device:CPU:0", Device::Cpu),
            ("GPU", Device::Cuda(0)),
            ("/GPU:3", Device::Cuda(3)),
            ("/device:GPU:2", Device::Cuda(2)),
            ("cuda:1", Device::Cuda(1)),
        ] {
            assert_eq!(s.parse::<Device>().unwrap(), d, "{s}");
            assert_eq!(d.to_string().parse::<Device>().unwrap(), d);
        }
        for bad in ["", "cpu:1", "gpu:x", "tpu", "/device:GPU:-1"] {
            let e = bad.parse::<Device>().unwrap_err().to_string();
            assert!(e.contains("unknown device"), "{bad}: {e}");
        }
    }

    #[test]
    fn scopes_nest_and_restore() {
        let outer = device_scope(Device::Cuda(1));
        {
            let _inner = device_scope(Device::Cpu);
            assert_eq!(default_device(), Some(Device::Cpu));
        }
        assert_eq!(default_device(), Some(Device::Cuda(1)));
        drop(outer);
        assert_eq!(default_device(), None);
    }

    #[test]
    fn host_ops_need_no_placement() {
        let x = Tensor::new([1.0f32, 2.0]);
        let add = crate::Op::Binary(crate::BinaryOp::Add);
        assert_eq!(placement(&add, &[&x, &x]).unwrap(), None);
        let _cpu = device_scope(Device::Cpu);
        assert_eq!(placement(&add, &[&x, &x]).unwrap(), None);
        let v = crate::Variable::new("v", x.clone()).unwrap();
        assert_eq!(placement(&crate::Op::ReadVariable(v), &[]).unwrap(), None);
    }

    #[test]
    fn a_gpu_scope_without_a_gpu_is_a_clear_error() {
        if Device::Cuda(0).is_available() {
            return;
        }
        let x = Tensor::new([1.0f32, 2.0]);
        let e = with_device(Device::Cuda(0), || x.add(&x)).unwrap_err().to_string();
        assert!(e.contains("/device:GPU:0") && e.contains("add"), "{e}");
        let e = x.to(Device::Cuda(0)).unwrap_err().to_string();
        assert!(e.contains("/device:GPU:0"), "{e}");
    }
}
