//! Custom ops on an accelerator: the seam through which a [`CustomOp`] brings its own device
//! kernel (a collective over device memory, such as an NCCL all-reduce) instead of the host
//! fallback's two copies.

use crate::op::{CustomOp, Outputs};
use crate::{Device, Error, Result, Tensor, TensorSpec};

/// Runs `custom`'s [`CustomOp::compute_on_device`] on `inputs` (already on `device`)
/// inside a scope for `device` and with gradient tapes paused, so the tensor ops it
/// dispatches run there and are not recorded besides the custom op itself; `None` when it has no kernel there. Its outputs are checked against
/// `out`, the specs dispatch inferred, and any left on the host are moved to `device`.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
pub(crate) fn custom_on_device(
    custom: &dyn CustomOp,
    device: Device,
    inputs: &[&Tensor],
    out: &[TensorSpec],
) -> Option<Result<Outputs<Tensor>>> {
    let _hidden = crate::dispatch::PauseObservers::new();
    let _scope = super::device_scope(device);
    let outputs = match custom.compute_on_device(device, inputs)? {
        Ok(outputs) => outputs,
        Err(e) => return Some(Err(e)),
    };
    Some(checked(custom.name(), device, outputs, out))
}

/// `outputs` when they are what shape inference promised, moved to `device`.
fn checked(name: &'static str, device: Device, outputs: Vec<Tensor>, out: &[TensorSpec]) -> Result<Outputs<Tensor>> {
    if outputs.len() != out.len() {
        return Err(Error::invalid(
            name,
            format!(
                "its {device} kernel gave {} outputs where shape inference gave {}",
                outputs.len(),
                out.len()
            ),
        ));
    }
    for (i, (t, spec)) in outputs.iter().zip(out).enumerate() {
        if t.spec() != *spec {
            return Err(Error::invalid(
                name,
                format!(
                    "its {device} kernel gave output {i} as {} where shape inference gave {spec}",
                    t.spec()
                ),
            ));
        }
    }
    outputs.into_iter().map(|t| t.to(device)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::{push_observer, Observer};
    use crate::{DType, Data, Op};
    use std::cell::Cell;
    use std::rc::Rc;

    /// What the test op's device kernel does.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Kernel {
        /// There is none.
        Absent,
        /// Doubles its input by dispatching `add`.
        Doubles,
        /// Doubles it into the wrong shape.
        WrongShape,
    }

    /// Doubles its input (on the host: copies it; only the device kernel is under test).
    #[derive(Debug)]
    struct Double(Kernel);

    impl CustomOp for Double {
        fn name(&self) -> &'static str {
            "double"
        }
        fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
            Ok(inputs.to_vec())
        }
        fn compute(&self, inputs: &[&Data]) -> Result<Vec<Data>> {
            Ok(vec![inputs[0].clone()])
        }
        fn compute_on_device(&self, device: Device, inputs: &[&Tensor]) -> Option<Result<Vec<Tensor>>> {
            if crate::default_device() != Some(device) {
                return Some(Err(crate::Error::invalid("double", "not inside the device's scope")));
            }
            let doubled = inputs[0].add(inputs[0]);
            match self.0 {
                Kernel::Absent => None,
                Kernel::Doubles => Some(doubled.map(|t| vec![t])),
                Kernel::WrongShape => Some(doubled.and_then(|t| t.reshape(&[-1])).map(|t| vec![t])),
            }
        }
    }

    /// Counts the ops it sees.
    struct Count(Cell<usize>);
    impl Observer for Count {
        fn observe(&self, _op: &Op, _inputs: &[&Tensor], _outputs: &[Tensor]) {
            self.0.set(self.0.get() + 1);
        }
    }

    #[test]
    fn device_kernels_run_hidden_from_tapes_and_are_checked() {
        let x = Tensor::new([[1.0f32, 2.0], [3.0, 4.0]]);
        let spec = [x.spec()];
        let seen = Rc::new(Count(Cell::new(0)));
        let _watching = push_observer(seen.clone());
        let good = Double(Kernel::Doubles);
        let out = custom_on_device(&good, Device::Cpu, &[&x], &spec).unwrap().unwrap();
        assert_eq!(out[0].to_vec::<f32>().unwrap(), vec![2.0, 4.0, 6.0, 8.0]);
        assert_eq!(seen.0.get(), 0, "the inner add was recorded");
        let _ = x.add(&x).unwrap();
        assert_eq!(seen.0.get(), 1, "observers resume after the kernel");

        let bad = Double(Kernel::WrongShape);
        let err = custom_on_device(&bad, Device::Cpu, &[&x], &spec)
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(err.contains("double") && err.contains("shape inference"), "{err}");
        let two = [x.spec(), TensorSpec::new(DType::F32, vec![1])];
        let err = custom_on_device(&good, Device::Cpu, &[&x], &two)
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(err.contains("1 outputs where shape inference gave 2"), "{err}");
    }

    #[test]
    fn ops_without_a_device_kernel_fall_back() {
        let x = Tensor::new([1.0f64]);
        assert!(custom_on_device(&Double(Kernel::Absent), Device::Cpu, &[&x], &[x.spec()]).is_none());
    }
}
