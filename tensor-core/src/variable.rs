//! [`Variable`], the only mutable state, and [`Trackable`], the trait that lists an object's
//! variables by path (what checkpoints and optimizers walk).

use crate::dispatch::{dispatch, dispatch1};
use crate::ops::state::AssignMode;
use crate::{DType, Data, Device, DeviceData, Error, Op, Result, Shape, Tensor, TensorSpec, Value};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

struct Inner {
    id: u64,
    name: String,
    spec: TensorSpec,
    trainable: bool,
    /// Frozen by its layer (Keras' `layer.trainable = False`): not trainable for now.
    frozen: AtomicBool,
    value: RwLock<Held>,
}

/// Where a variable's value lives: host memory, or an accelerator's (then reads and
/// assignments run there without copies).
#[derive(Clone)]
pub(crate) enum Held {
    Host(Data),
    Device(DeviceData),
}

/// A named, mutable tensor with a fixed dtype and shape (`tf.Variable`). Cloning gives
/// another handle to the same variable.
///
/// Reading goes through the op [`Op::ReadVariable`], so gradient tapes watch trainable
/// variables automatically and traced graphs read the current value at each call.
///
/// ```
/// use ferroflow_tensor_core::{Tensor, Variable};
/// let v = Variable::new("w", Tensor::new([1.0f32, 2.0]))?;
/// v.assign_add(&Tensor::new([0.5f32, 0.5]))?;
/// assert_eq!(v.read()?.to_vec::<f32>()?, vec![1.5, 2.5]);
/// assert!(v.assign(&Tensor::new([1.0f64, 2.0])).is_err()); // dtype is fixed
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
#[derive(Clone)]
pub struct Variable(Arc<Inner>);

static NEXT_VAR: AtomicU64 = AtomicU64::new(1);

impl Variable {
    /// A trainable variable holding `initial`, which must be eager (`tf.Variable(initial,
    /// name=name)`).
    ///
    /// ```
    /// use ferroflow_tensor_core::{Tensor, Variable};
    /// let w = Variable::new("w", Tensor::new([[0.5f32], [-0.5]]))?;
    /// assert!(w.trainable());
    /// assert_eq!((w.name(), w.shape().dims()), ("w", &[2usize, 1][..]));
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn new(name: impl Into<String>, initial: Tensor) -> Result<Variable> {
        Variable::create(name.into(), initial, true)
    }

    /// A variable that optimizers and tapes leave alone unless asked (`tf.Variable(initial,
    /// trainable=False)`): step counters, moving statistics.
    ///
    /// ```
    /// use ferroflow_tensor_core::{Tensor, Variable};
    /// let steps = Variable::non_trainable("steps", Tensor::scalar(0i64))?;
    /// assert!(!steps.trainable());
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn non_trainable(name: impl Into<String>, initial: Tensor) -> Result<Variable> {
        Variable::create(name.into(), initial, false)
    }

    fn create(name: String, initial: Tensor, trainable: bool) -> Result<Variable> {
        if initial.is_symbolic() {
            return Err(Error::Symbolic {
                op: "Variable",
                msg: "a variable's initial value must be an eager tensor; create variables outside traced functions"
                    .into(),
            });
        }
        // As in TensorFlow, a variable made inside a device scope lives on that device.
        let initial = match crate::default_device() {
            Some(device) => initial.to(device)?,
            None => initial,
        };
        let held = match initial.value() {
            Value::Device(d) => Held::Device(d.clone()),
            _ => Held::Host(initial.data()?.clone()),
        };
        Ok(Variable(Arc::new(Inner {
            id: NEXT_VAR.fetch_add(1, Ordering::Relaxed),
            name,
            spec: initial.spec(),
            trainable,
            frozen: AtomicBool::new(false),
            value: RwLock::new(held),
        })))
    }

    /// The device holding the value.
    ///
    /// ```
    /// use ferroflow_tensor_core::{Device, Tensor, Variable};
    /// assert_eq!(Variable::new("v", Tensor::scalar(1.0f32))?.device(), Device::Cpu);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn device(&self) -> Device {
        match &*self.held() {
            Held::Host(_) => Device::Cpu,
            Held::Device(d) => d.device(),
        }
    }

    /// Moves the value to `device` (PyTorch's `.to(device)` for parameters; TensorFlow
    /// places variables when they are made, see [`crate::with_device`]). Later reads and
    /// assignments run there.
    ///
    /// ```
    /// use ferroflow_tensor_core::{Device, Tensor, Variable};
    /// let v = Variable::new("v", Tensor::new([1.0f32, 2.0]))?;
    /// v.to_device(Device::Cpu)?;
    /// if v.to_device(Device::Cuda(0)).is_ok() {
    ///     assert_eq!(v.read()?.device(), Device::Cuda(0));
    /// }
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn to_device(&self, device: Device) -> Result<()> {
        let moved = self.value().to(device)?;
        let held = match moved.value() {
            Value::Device(d) => Held::Device(d.clone()),
            _ => Held::Host(moved.data()?.clone()),
        };
        *self.held_mut() = held;
        Ok(())
    }

    /// Unique id of the variable (shared by its clones).
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// The variable's name.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// Element type (fixed).
    pub fn dtype(&self) -> DType {
        self.0.spec.dtype
    }

    /// Shape (fixed).
    pub fn shape(&self) -> &Shape {
        &self.0.spec.shape
    }

    /// Dtype and shape.
    pub fn spec(&self) -> TensorSpec {
        self.0.spec.clone()
    }

    /// Whether it is a parameter: made with [`Variable::new`] and not
    /// [frozen](Variable::set_frozen). Tapes watch reads of trainable variables, and
    /// `trainable_variables` (what `fit` differentiates and updates) lists only these.
    pub fn trainable(&self) -> bool {
        self.0.trainable && !self.0.frozen.load(Ordering::Relaxed)
    }

    /// Freezes (or unfreezes) a trainable variable, as Keras' `layer.trainable = False` does
    /// to a layer's weights: a frozen variable is read like any other, but tapes do not watch
    /// it and `fit` neither differentiates nor updates it (an optimizer given it explicitly
    /// still updates it). A variable made with [`Variable::non_trainable`] stays
    /// non-trainable either way (a layer's moving statistics are never trained).
    ///
    /// ```
    /// use ferroflow_tensor_core::{Tensor, Variable};
    /// let w = Variable::new("w", Tensor::new([1.0f32]))?;
    /// w.set_frozen(true);
    /// assert!(!w.trainable());
    /// w.set_frozen(false);
    /// assert!(w.trainable());
    /// let steps = Variable::non_trainable("steps", Tensor::scalar(0i64))?;
    /// steps.set_frozen(false);
    /// assert!(!steps.trainable());
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn set_frozen(&self, frozen: bool) {
        self.0.frozen.store(frozen, Ordering::Relaxed);
    }

    /// Reads the current value as an op (`read_variable`): tapes watch the read of a trainable
    /// variable and traced graphs read the value current at each call.
    ///
    /// ```
    /// use ferroflow_tensor_core::{Tensor, Variable};
    /// let v = Variable::new("v", Tensor::new([1.0f32, 2.0]))?;
    /// assert_eq!(v.read()?.to_vec::<f32>()?, vec![1.0, 2.0]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn read(&self) -> Result<Tensor> {
        dispatch1(Op::ReadVariable(self.clone()), &[])
    }

    /// The current value without recording a read (for printing, checkpoints, tests).
    ///
    /// ```
    /// use ferroflow_tensor_core::{Tensor, Variable};
    /// let v = Variable::non_trainable("steps", Tensor::scalar(3i64))?;
    /// assert_eq!(v.value().to_scalar::<i64>()?, 3);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn value(&self) -> Tensor {
        match &*self.held() {
            Held::Host(d) => Tensor::from_data(d.clone()),
            Held::Device(d) => Tensor::from_device_data(d.clone()),
        }
    }

    /// `var.assign(x)`: dtype and shape must match (a variable's are fixed).
    ///
    /// ```
    /// use ferroflow_tensor_core::{Tensor, Variable};
    /// let v = Variable::new("v", Tensor::new([1.0f32, 2.0]))?;
    /// v.assign(&Tensor::new([5.0f32, 6.0]))?;
    /// assert_eq!(v.value().to_vec::<f32>()?, vec![5.0, 6.0]);
    /// assert!(v.assign(&Tensor::new([1.0f32])).is_err());
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn assign(&self, x: &Tensor) -> Result<()> {
        dispatch(
            Op::Assign {
                var: self.clone(),
                mode: AssignMode::Set,
            },
            &[x],
        )
        .map(|_| ())
    }

    /// `var.assign_add(x)`: adds in place (earlier reads keep their values).
    ///
    /// ```
    /// use ferroflow_tensor_core::{Tensor, Variable};
    /// let v = Variable::new("v", Tensor::new([1.0f32]))?;
    /// let before = v.read()?;
    /// v.assign_add(&Tensor::new([0.5f32]))?;
    /// assert_eq!((before.to_vec::<f32>()?, v.value().to_vec::<f32>()?), (vec![1.0], vec![1.5]));
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn assign_add(&self, x: &Tensor) -> Result<()> {
        dispatch(
            Op::Assign {
                var: self.clone(),
                mode: AssignMode::Add,
            },
            &[x],
        )
        .map(|_| ())
    }

    /// `var.assign_sub(x)`: subtracts in place.
    ///
    /// ```
    /// use ferroflow_tensor_core::{Tensor, Variable};
    /// let v = Variable::new("v", Tensor::new([1.0f64]))?;
    /// v.assign_sub(&Tensor::new([0.25f64]))?;
    /// assert_eq!(v.value().to_vec::<f64>()?, vec![0.75]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn assign_sub(&self, x: &Tensor) -> Result<()> {
        dispatch(
            Op::Assign {
                var: self.clone(),
                mode: AssignMode::Sub,
            },
            &[x],
        )
        .map(|_| ())
    }

    fn held(&self) -> std::sync::RwLockReadGuard<'_, Held> {
        self.0.value.read().unwrap_or_else(|p| p.into_inner())
    }

    fn held_mut(&self) -> std::sync::RwLockWriteGuard<'_, Held> {
        self.0.value.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The value, locked against every other read and assign until the guard drops (a
    /// CUDA-graph replay checks, updates and stores variables as one step).
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub(crate) fn lock(&self) -> std::sync::RwLockWriteGuard<'_, Held> {
        self.held_mut()
    }

    /// The value on the host (a cheap shared handle; copied from a device on first use).
    pub(crate) fn value_data(&self) -> Result<Data> {
        match &*self.held() {
            Held::Host(d) => Ok(d.clone()),
            Held::Device(d) => d.to_host().cloned(),
        }
    }

    /// The value in device memory, when it lives there.
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub(crate) fn device_value(&self) -> Option<DeviceData> {
        match &*self.held() {
            Held::Device(d) => Some(d.clone()),
            Held::Host(_) => None,
        }
    }

    /// Runs `f` on host-held data under the write lock; `false` (nothing done) for a value
    /// on a device.
    pub(crate) fn update_in_place(&self, f: impl FnOnce(&mut Data) -> bool) -> bool {
        match &mut *self.held_mut() {
            Held::Host(d) => f(d),
            Held::Device(_) => false,
        }
    }

    /// Replaces the value (validated by the assign op's inference), keeping its device.
    pub(crate) fn store(&self, d: Data) -> Result<()> {
        let device = self.device();
        let new = if device.is_cpu() {
            Held::Host(d)
        } else {
            match Tensor::from_data(d).to(device)?.value() {
                Value::Device(dd) => Held::Device(dd.clone()),
                _ => {
                    return Err(Error::invalid(
                        "assign",
                        format!("could not place the value on {device}"),
                    ))
                }
            }
        };
        *self.held_mut() = new;
        Ok(())
    }

    /// Replaces a device-held value with new device data of the same spec.
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub(crate) fn store_device(&self, d: DeviceData) {
        *self.held_mut() = Held::Device(d);
    }
}

impl PartialEq for Variable {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}

impl Eq for Variable {}

impl std::hash::Hash for Variable {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.id.hash(state)
    }
}

impl fmt::Debug for Variable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<ff.Variable '{}' shape={} dtype={}>",
            self.name(),
            self.shape(),
            self.dtype()
        )
    }
}

/// An object that owns variables and lists them by object path (`dense_1/w`), like
/// TensorFlow's trackable objects. Modules and optimizers implement it; checkpoints save any
/// `Trackable`.
///
/// Paths are relative to the object: a variable is its own object, so its path is empty, and
/// a list numbers its elements as TensorFlow does (`0`, `1/kernel`, ...).
pub trait Trackable {
    /// Every variable reachable from this object, keyed by a stable path, in a stable order.
    fn variables_by_path(&self) -> Vec<(String, Variable)>;
}

/// `parent/child`, or just `parent` when the child is the object itself.
pub fn join_path(parent: &str, child: &str) -> String {
    if child.is_empty() {
        parent.to_string()
    } else if parent.is_empty() {
        child.to_string()
    } else {
        format!("{parent}/{child}")
    }
}

impl Trackable for Variable {
    fn variables_by_path(&self) -> Vec<(String, Variable)> {
        vec![(String::new(), self.clone())]
    }
}

impl<T: Trackable> Trackable for [T] {
    fn variables_by_path(&self) -> Vec<(String, Variable)> {
        self.iter()
            .enumerate()
            .flat_map(|(i, t)| {
                t.variables_by_path()
                    .into_iter()
                    .map(move |(p, v)| (join_path(&i.to_string(), &p), v))
            })
            .collect()
    }
}

impl<T: Trackable> Trackable for Vec<T> {
    fn variables_by_path(&self) -> Vec<(String, Variable)> {
        self.as_slice().variables_by_path()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assign_checks_dtype_and_shape() {
        let v = Variable::non_trainable("v", Tensor::new([[1.0f64, 2.0]])).unwrap();
        assert!(v.assign(&Tensor::new([1.0f64, 2.0])).is_err());
        let e = v.assign_sub(&Tensor::new([[1.0f32, 2.0]])).unwrap_err();
        assert!(e.to_string().contains("assign_sub"), "{e}");
        v.assign_sub(&Tensor::new([[1.0f64, 1.0]])).unwrap();
        assert_eq!(v.value().to_vec::<f64>().unwrap(), vec![0.0, 1.0]);
        let w = v.clone();
        w.assign(&Tensor::new([[5.0f64, 6.0]])).unwrap();
        assert_eq!(v.read().unwrap().to_vec::<f64>().unwrap(), vec![5.0, 6.0]);
        assert_eq!(v, w);
        assert!(!v.trainable());
    }

    #[test]
    fn in_place_updates_leave_earlier_reads_alone() {
        let v = Variable::new("v", Tensor::new([1.0f32, 2.0])).unwrap();
        let before = v.read().unwrap();
        v.assign_add(&Tensor::new([10.0f32, 20.0])).unwrap();
        v.assign_sub(&Tensor::new([1.0f32, 1.0])).unwrap();
        assert_eq!(before.to_vec::<f32>().unwrap(), vec![1.0, 2.0]);
        assert_eq!(v.value().to_vec::<f32>().unwrap(), vec![10.0, 21.0]);
        let c = Variable::non_trainable("c", Tensor::scalar(i64::MAX)).unwrap();
        c.assign_add(&Tensor::scalar(1i64)).unwrap();
        assert_eq!(c.value().to_scalar::<i64>().unwrap(), i64::MIN);
        let d = Variable::non_trainable("d", Tensor::new([i32::MIN, 5])).unwrap();
        d.assign_sub(&Tensor::new([1i32, 7])).unwrap();
        assert_eq!(d.value().to_vec::<i32>().unwrap(), vec![i32::MAX, -2]);
        let e = Variable::new("e", Tensor::new([0.5f64, -1.0, 3.0])).unwrap();
        e.assign_sub(&Tensor::new([0.25f64, 1.0, -1.0])).unwrap();
        assert_eq!(e.value().to_vec::<f64>().unwrap(), vec![0.25, -2.0, 4.0]);
        // Broadcast increments take the general path.
        let m = Variable::new("m", Tensor::new([[1.0f64, 2.0], [3.0, 4.0]])).unwrap();
        m.assign_add(&Tensor::new([[1.0f64, 1.0], [1.0, 1.0]])).unwrap();
        assert_eq!(m.value().to_vec::<f64>().unwrap(), vec![2.0, 3.0, 4.0, 5.0]);
    }

    /// Updates long enough to run on the pool give the out-of-place `subtract` / `add`
    /// bits, as shorter ones do, and still leave earlier reads alone.
    #[test]
    fn long_in_place_updates_match_the_out_of_place_ops() {
        use crate::kernels::elementwise::PAR_THRESHOLD;
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        pool.install(|| {
            for n in [1001, PAR_THRESHOLD + 1001] {
                let start = Tensor::range(0.0, n as f64, 1.0, DType::F32).unwrap().sqrt().unwrap();
                let x = start.cos().unwrap();
                let v = Variable::new("v", start.clone()).unwrap();
                let before = v.read().unwrap();
                let holds = |want: &Tensor| {
                    let got = v.value().to_vec::<f32>().unwrap();
                    assert_eq!(got, want.to_vec::<f32>().unwrap(), "n = {n}");
                };
                // The first update copies the array `before` shares, the second finds it unique.
                v.assign_sub(&x).unwrap();
                let want = start.sub(&x).unwrap();
                holds(&want);
                v.assign_add(&x).unwrap();
                holds(&want.add(&x).unwrap());
                assert_eq!(before.to_vec::<f32>().unwrap(), start.to_vec::<f32>().unwrap());
            }
        });
    }

    #[test]
    fn trackable_paths() {
        let a = Variable::new("w", Tensor::scalar(1.0f32)).unwrap();
        let b = Variable::new("b", Tensor::scalar(2.0f32)).unwrap();
        let paths: Vec<String> = [a.clone(), b].variables_by_path().into_iter().map(|(p, _)| p).collect();
        // As TensorFlow's `m.lst = [v, w]`: list elements are numbered, a variable is itself.
        assert_eq!(paths, vec!["0", "1"]);
        let nested = vec![vec![a]];
        assert_eq!(nested.variables_by_path()[0].0, "0/0");
        assert_eq!(join_path("", "x"), "x");
    }
}
