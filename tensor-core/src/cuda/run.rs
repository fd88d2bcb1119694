//! Runs one op on a GPU: a CUDA kernel where the backend has one for the op and dtype, else
//! the CPU kernel on host copies with the outputs copied back (counted, see
//! [`super::host_fallbacks`]), so every op of the vocabulary works on the device while
//! kernels arrive.

use super::blas::{self, Operand};
use super::buffer::CudaBuffer;
use super::launch::Launch;
use super::runtime::{runtime, Runtime};
use super::{accumulate, conv_gemm, elementwise, fused, index, layout, reduce, softmax, window};
use crate::device::storage::Buffer;
use crate::fused::FusedElementwise;
use crate::op::Outputs;
use crate::{AssignMode, BinaryOp, Device, DeviceData, Error, Op, Result, Tensor, TensorSpec, Value};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Ops that ran on the host for want of a kernel, by name.
static FALLBACKS: Mutex<BTreeMap<&'static str, u64>> = Mutex::new(BTreeMap::new());

/// How many times each op ran on the host copies of GPU tensors because the CUDA backend
/// has no kernel for it (or for its dtype) yet. Empty when every op found a kernel.
///
/// ```
/// let counts = ferroflow_tensor_core::cuda::host_fallbacks();
/// assert!(counts.values().all(|&n| n > 0));
/// ```
pub fn host_fallbacks() -> BTreeMap<&'static str, u64> {
    FALLBACKS.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// The CUDA memory of a tensor already on `rt`'s device.
fn cuda_buffer(t: &Tensor) -> Option<&CudaBuffer> {
    match t.value() {
        Value::Device(d) => match d.buffer() {
            Buffer::Cuda(b) => Some(b),
        },
        _ => None,
    }
}

/// Runs `op` on GPU `device` with outputs `out` (already inferred by dispatch).
pub(crate) fn run(device: Device, op: &Op, inputs: &[&Tensor], out: &[TensorSpec]) -> Result<Outputs<Tensor>> {
    let Device::Cuda(ordinal) = device else {
        return crate::dispatch::host_compute(op, inputs);
    };
    let rt = runtime(ordinal).map_err(|msg| Error::DeviceUnavailable {
        op: op.name(),
        device,
        msg,
    })?;
    // The CPU kernels' errors for an index out of range, where the indices can be read
    // without a copy (on the GPU itself a bad index gives NaN or zeros, as in TensorFlow).
    let checked = match op {
        Op::SparseSoftmaxCrossEntropy => Some((0, inputs[1].dims().last().copied().unwrap_or(0), "label")),
        Op::Gather { axis } => crate::shape::normalize_axis("gather", *axis, inputs[0].rank())
            .ok()
            .map(|ax| (1, inputs[0].dims()[ax], "index")),
        Op::UnsortedSegmentSum { num_segments } => Some((1, *num_segments, "segment id")),
        _ => None,
    };
    if let Some((i, n, what)) = checked {
        if let Some(bad) = index::first_out_of_range(inputs[i], n) {
            return Err(Error::invalid(
                op.name(),
                format!("{what} {bad} is out of range [0, {n})"),
            ));
        }
    }
    // Placement allowed host scalars (and host inputs inside a device scope): copy them.
    let staged: smallvec::SmallVec<[Tensor; 4]> = inputs.iter().map(|t| t.to(device)).collect::<Result<_>>()?;
    if let Some(done) = kernel(&rt, device, op, &staged, out) {
        return done;
    }
    if let Op::Custom(custom) = op {
        let refs: smallvec::SmallVec<[&Tensor; 4]> = staged.iter().collect();
        if let Some(done) = crate::device::custom_on_device(custom.as_ref(), device, &refs, out) {
            return done;
        }
    }
    *FALLBACKS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(op.name())
        .or_default() += 1;
    let refs: smallvec::SmallVec<[&Tensor; 4]> = staged.iter().collect();
    crate::dispatch::host_compute(op, &refs)?
        .into_iter()
        .map(|t| t.to(device))
        .collect()
}

/// The launch computing `op` on `inputs` with outputs `out`, if a generated kernel covers
/// this op, these dtypes and this rank. Pure: the tests run the same plans on the CPU.
pub(crate) fn plan(op: &Op, inputs: &[&Tensor], out: &[TensorSpec]) -> Option<Launch> {
    elementwise::plan(op, inputs, out)
        .or_else(|| reduce::plan(op, inputs, out))
        .or_else(|| softmax::plan(op, inputs, out))
        .or_else(|| layout::plan(op, inputs, out))
        .or_else(|| window::plan(op, inputs, out))
        .or_else(|| index::plan(op, inputs, out))
        .or_else(|| accumulate::plan(op, inputs, out))
}

/// The CUDA kernel for `op`, if the backend has one for these inputs.
fn kernel(
    rt: &Runtime,
    device: Device,
    op: &Op,
    inputs: &[Tensor],
    out: &[TensorSpec],
) -> Option<Result<Outputs<Tensor>>> {
    let wrap = |spec: &TensorSpec, b: CudaBuffer| {
        smallvec::smallvec![Tensor::from_device_data(DeviceData::new(
            device,
            spec.clone(),
            Buffer::Cuda(b)
        ))]
    };
    let same_elements = |i: usize| match inputs[i].value() {
        Value::Device(d) => Some(Ok(smallvec::smallvec![Tensor::from_device_data(
            d.with_spec(out[0].clone())
        )])),
        _ => None,
    };
    match op {
        Op::Identity | Op::StopGradient | Op::Reshape { .. } | Op::ExpandDims { .. } | Op::Squeeze { .. } => {
            same_elements(0)
        }
        Op::Cast { dtype } if *dtype == inputs[0].dtype() => same_elements(0),
        Op::MatMul {
            transpose_a,
            transpose_b,
        } => {
            let a = Operand {
                buffer: cuda_buffer(&inputs[0])?,
                dims: inputs[0].dims(),
                transpose: *transpose_a,
            };
            let b = Operand {
                buffer: cuda_buffer(&inputs[1])?,
                dims: inputs[1].dims(),
                transpose: *transpose_b,
            };
            blas::matmul(rt, inputs[0].dtype(), a, b, out[0].shape.dims()).map(|r| r.map(|c| wrap(&out[0], c)))
        }
        Op::ReadVariable(v) => v
            .device_value()
            .filter(|d| d.device() == device)
            .map(|d| Ok(smallvec::smallvec![Tensor::from_device_data(d)])),
        Op::Assign { var, mode } => {
            let current = var.device_value().filter(|d| d.device() == device)?;
            let Value::Device(new) = inputs[0].value() else {
                return None;
            };
            let stored = match mode {
                // Tensors never change, so the variable can hold the input's memory itself.
                AssignMode::Set => Ok(new.clone()),
                AssignMode::Add | AssignMode::Sub => {
                    let op = if *mode == AssignMode::Add {
                        BinaryOp::Add
                    } else {
                        BinaryOp::Sub
                    };
                    let (Buffer::Cuda(a), Buffer::Cuda(b)) = (current.buffer(), new.buffer());
                    let launch = elementwise::plan_same_shape(op, current.dtype(), current.dims())?;
                    launch.run(rt, op.name(), &[a, b]).and_then(|outputs| {
                        let c = outputs
                            .into_iter()
                            .next()
                            .ok_or_else(|| Error::invalid(op.name(), "no output"))?;
                        Ok(DeviceData::new(device, current.spec().clone(), Buffer::Cuda(c)))
                    })
                }
            };
            Some(stored.and_then(|d| {
                if super::capture::capturing(rt.ordinal) {
                    // A captured graph keeps the variable's memory: write into it.
                    super::capture::assign_in_place(rt, op.name(), &current, &d)?;
                } else {
                    var.store_device(d);
                }
                Ok(Outputs::new())
            }))
        }
        _ => {
            let refs: smallvec::SmallVec<[&Tensor; 4]> = inputs.iter().collect();
            if let Some(conv) = conv_gemm::plan(op, &refs) {
                let (x, other) = (cuda_buffer(&inputs[0])?, cuda_buffer(&inputs[1])?);
                // On failure (no memory for the patches, say) the direct kernel below runs.
                if let Ok(c) = conv.run(rt, x, other) {
                    return Some(Ok(wrap(&out[0], c)));
                }
            }
            let launch = plan(op, &refs, out)?;
            let buffers: smallvec::SmallVec<[&CudaBuffer; 4]> =
                inputs.iter().map(cuda_buffer).collect::<Option<_>>()?;
            Some(launch.run(rt, op.name(), &buffers).map(|outputs| {
                outputs
                    .into_iter()
                    .zip(out)
                    .map(|(b, spec)| Tensor::from_device_data(DeviceData::new(device, spec.clone(), Buffer::Cuda(b))))
                    .collect()
            }))
        }
    }
}

/// Runs a graph's fused elementwise program on GPU `device` as one generated kernel; `None`
/// when no kernel covers it (the caller then runs its ops one by one).
pub(crate) fn run_fused(device: Device, fused: &FusedElementwise, inputs: &[&Tensor]) -> Option<Result<Tensor>> {
    const OP: &str = "fused_elementwise";
    let Device::Cuda(ordinal) = device else {
        return None;
    };
    let (launch, spec) = fused::plan(fused, inputs)?;
    let rt = match runtime(ordinal) {
        Ok(rt) => rt,
        Err(msg) => return Some(Err(Error::DeviceUnavailable { op: OP, device, msg })),
    };
    let run = || {
        let staged: smallvec::SmallVec<[Tensor; 4]> = inputs.iter().map(|t| t.to(device)).collect::<Result<_>>()?;
        let buffers: smallvec::SmallVec<[&CudaBuffer; 4]> = staged
            .iter()
            .map(|t| cuda_buffer(t).ok_or_else(|| Error::invalid(OP, "an input is not in CUDA memory")))
            .collect::<Result<_>>()?;
        let out = launch
            .run(&rt, OP, &buffers)?
            .into_iter()
            .next()
            .ok_or_else(|| Error::invalid(OP, "no output"))?;
        Ok(Tensor::from_device_data(DeviceData::new(
            device,
            spec,
            Buffer::Cuda(out),
        )))
    };
    Some(run())
}
