//! [`Tensor`]: an immutable value handle, eager (holding [`Data`]) or symbolic (a node output
//! of a graph being traced), and [`TensorSpec`], the dtype and shape that describe either.

use crate::data::{row_major, Array};
use crate::{DType, Data, Element, Error, Result, Shape};
use ndarray::{ArrayD, IxDyn};
use std::any::Any;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Dtype and shape of a tensor: all that shape inference and tracing need to know.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TensorSpec {
    /// Element type.
    pub dtype: DType,
    /// Dimensions.
    pub shape: Shape,
}

impl TensorSpec {
    /// A spec from dtype and shape.
    ///
    /// ```
    /// use ferroflow_tensor_core::*;
    /// assert_eq!(Tensor::new([[1.0f32, 2.0]]).spec(), TensorSpec::new(DType::F32, vec![1, 2]));
    /// ```
    pub fn new(dtype: DType, shape: impl Into<Shape>) -> Self {
        TensorSpec {
            dtype,
            shape: shape.into(),
        }
    }
}

impl fmt::Display for TensorSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{:?}", self.dtype, self.shape)
    }
}

/// The payload of a symbolic tensor: its spec plus an opaque handle owned by the tracer that
/// created it (the graph crate stores its node reference there).
#[derive(Clone)]
pub struct Symbolic {
    /// Dtype and shape of the value the node will produce.
    pub spec: TensorSpec,
    /// Tracer-defined node reference.
    pub handle: Arc<dyn Any + Send + Sync>,
}

impl fmt::Debug for Symbolic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Symbolic({})", self.spec)
    }
}

/// What a tensor holds.
#[derive(Clone, Debug)]
pub enum Value {
    /// Concrete elements.
    Eager(Data),
    /// A placeholder for a value computed later by a graph.
    Symbolic(Symbolic),
    /// Concrete elements in an accelerator's memory (see [`crate::Device`]).
    Device(crate::DeviceData),
}

/// Unique identity of a tensor value, used by gradient tapes and tracers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorId(pub u64);

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Ids a thread hands out before asking the shared counter again.
const ID_BLOCK: u64 = 1024;

thread_local! {
    /// This thread's reserved ids: the next one and the end of its block.
    static ID_RANGE: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
}

impl TensorId {
    /// A fresh, never used id. Ids increase within a thread; each thread takes blocks from
    /// one shared counter, so making a tensor costs no atomic operation most of the time.
    pub fn fresh() -> Self {
        ID_RANGE.with(|r| {
            let (next, end) = r.get();
            if next < end {
                r.set((next + 1, end));
                TensorId(next)
            } else {
                let start = NEXT_ID.fetch_add(ID_BLOCK, Ordering::Relaxed);
                r.set((start + 1, start + ID_BLOCK));
                TensorId(start)
            }
        })
    }
}

struct Inner {
    id: TensorId,
    value: Value,
}

impl Drop for Inner {
    /// A large buffer this tensor alone owned goes to [`crate::host_cache`] for the next
    /// output of its size.
    fn drop(&mut self) {
        if let Value::Eager(data) = &mut self.value {
            crate::host_cache::offer(data);
        }
    }
}

/// An immutable n-d value: cheap to clone (a reference count), with a unique [`TensorId`].
///
/// ```
/// use ferroflow_tensor_core::Tensor;
/// let x = Tensor::new([[1.0f32, 2.0], [3.0, 4.0]]);
/// let y = x.matmul(&x).unwrap();
/// assert_eq!(y.to_vec::<f32>().unwrap(), vec![7.0, 10.0, 15.0, 22.0]);
/// ```
#[derive(Clone)]
pub struct Tensor(Arc<Inner>);

/// A reference to a [`Tensor`] that does not keep it alive: for side tables keyed by a
/// tensor that must not outlive it (Keras' logits of an activation's output).
///
/// ```
/// use ferroflow_tensor_core::Tensor;
/// let t = Tensor::scalar(1.0f32);
/// let w = t.downgrade();
/// assert_eq!(w.upgrade().map(|u| u.id()), Some(t.id()));
/// drop(t);
/// assert!(w.upgrade().is_none());
/// ```
#[derive(Clone)]
pub struct WeakTensor(std::sync::Weak<Inner>);

impl WeakTensor {
    /// The tensor, if something still holds it.
    pub fn upgrade(&self) -> Option<Tensor> {
        self.0.upgrade().map(Tensor)
    }

    /// Whether the tensor has been dropped.
    pub fn is_dropped(&self) -> bool {
        self.0.strong_count() == 0
    }
}

impl fmt::Debug for WeakTensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WeakTensor({})", if self.is_dropped() { "dropped" } else { "live" })
    }
}

impl Tensor {
    /// A [`WeakTensor`] to this tensor.
    pub fn downgrade(&self) -> WeakTensor {
        WeakTensor(Arc::downgrade(&self.0))
    }

    /// Wraps eager data in a new tensor.
    ///
    /// ```
    /// use ferroflow_tensor_core::*;
    /// let t = Tensor::from_data(Tensor::new([1i32, 2]).data()?.clone());
    /// assert_eq!(t.to_vec::<i32>()?, vec![1, 2]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn from_data(data: Data) -> Tensor {
        Tensor(Arc::new(Inner {
            id: TensorId::fresh(),
            value: Value::Eager(data),
        }))
    }

    /// A symbolic tensor (used by tracers).
    ///
    /// ```
    /// use ferroflow_tensor_core::*;
    /// let s = Tensor::symbolic(TensorSpec::new(DType::F32, vec![2]), std::sync::Arc::new(()));
    /// assert!(s.is_symbolic() && s.data().is_err());
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn symbolic(spec: TensorSpec, handle: Arc<dyn Any + Send + Sync>) -> Tensor {
        Tensor(Arc::new(Inner {
            id: TensorId::fresh(),
            value: Value::Symbolic(Symbolic { spec, handle }),
        }))
    }

    /// A tensor from a nested array literal: `Tensor::new([[1.0f32, 2.0], [3.0, 4.0]])`.
    ///
    /// ```
    /// use ferroflow_tensor_core::*;
    /// let t = Tensor::new([[1.0f32, 2.0], [3.0, 4.0]]);
    /// assert_eq!((t.dims(), t.dtype()), (&[2usize, 2][..], DType::F32));
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn new<L: Literal>(literal: L) -> Tensor {
        let mut dims = Vec::new();
        L::dims(&mut dims);
        let mut values = Vec::with_capacity(dims.iter().product());
        literal.flatten_into(&mut values);
        let a = row_major(&dims, values).expect("literal dims match its element count");
        Tensor::from_data(Data::from_owned(a))
    }

    /// A tensor from a vector of values and a shape (row-major).
    ///
    /// ```
    /// use ferroflow_tensor_core::*;
    /// let t = Tensor::from_vec(vec![1i64, 2, 3, 4, 5, 6], &[2, 3])?;
    /// assert_eq!(t.dims(), &[2, 3]);
    /// assert!(Tensor::from_vec(vec![1.0f32, 2.0], &[3]).is_err());
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn from_vec<T: Element>(values: Vec<T>, shape: &[usize]) -> Result<Tensor> {
        let s = Shape::from(shape);
        if s.checked_num_elements() != Some(values.len()) {
            return Err(Error::DataLength {
                op: "from_vec",
                len: values.len(),
                shape: s,
            });
        }
        let a = row_major(shape, values).map_err(|e| Error::invalid("from_vec", e.to_string()))?;
        Ok(Tensor::from_data(Data::from_owned(a)))
    }

    /// A tensor from a slice of values and a shape (copies the values).
    ///
    /// ```
    /// use ferroflow_tensor_core::*;
    /// let t = Tensor::from_slice(&[true, false], &[2, 1])?;
    /// assert_eq!(t.to_vec::<bool>()?, vec![true, false]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn from_slice<T: Element>(values: &[T], shape: &[usize]) -> Result<Tensor> {
        Tensor::from_vec(values.to_vec(), shape)
    }

    /// A rank-0 tensor.
    ///
    /// ```
    /// use ferroflow_tensor_core::*;
    /// let t = Tensor::scalar(2.5f64);
    /// assert_eq!((t.rank(), t.to_scalar::<f64>()?), (0, 2.5));
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn scalar<T: Element>(v: T) -> Tensor {
        Tensor::from_data(Data::from_owned(ArrayD::from_elem(IxDyn(&[]), v)))
    }

    /// Takes an `ndarray` array without copying it.
    ///
    /// ```
    /// use ferroflow_tensor_core::*;
    /// let t = Tensor::from_ndarray(ndarray::array![[1.0f32, 2.0]]);
    /// assert_eq!(t.dims(), &[1, 2]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn from_ndarray<T: Element, D: ndarray::Dimension>(a: ndarray::Array<T, D>) -> Tensor {
        Tensor::from_data(Data::from_owned(a.into_dyn()))
    }

    /// A shared `ndarray` array of the elements (no copy; fails on a dtype mismatch or a
    /// symbolic tensor).
    ///
    /// ```
    /// use ferroflow_tensor_core::*;
    /// let a = Tensor::new([[1.0f32, 2.0]]).to_ndarray::<f32>()?;
    /// assert_eq!(a.shape(), &[1, 2]);
    /// assert!(Tensor::new([1i32]).to_ndarray::<f32>().is_err());
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn to_ndarray<T: Element>(&self) -> Result<Array<T>> {
        let d = self.data()?;
        d.array::<T>().cloned().ok_or_else(|| {
            Error::dtypes(
                "to_ndarray",
                &[d.dtype(), T::DTYPE],
                "dtype differs from the requested element type",
            )
        })
    }

    /// `tf.fill`: a tensor of `shape` filled with `value`, converted to `dtype` as `tf.cast`
    /// would. Fails (like every constructor) when the shape needs more memory than the
    /// machine has.
    ///
    /// ```
    /// use ferroflow_tensor_core::{DType, Tensor};
    /// assert_eq!(Tensor::fill(&[2], 2.7, DType::I32)?.to_vec::<i32>()?, vec![2, 2]);
    /// assert!(Tensor::fill(&[1 << 40], 0.0, DType::F32).is_err());
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn fill(shape: &[usize], value: f64, dtype: DType) -> Result<Tensor> {
        fn f<T: Element>(shape: &[usize], v: f64) -> Data {
            Data::from_owned(ArrayD::from_elem(IxDyn(shape), T::from_f64(v)))
        }
        crate::alloc::checked_elements("fill", shape, dtype)?;
        Ok(Tensor::from_data(match dtype {
            DType::F32 => f::<f32>(shape, value),
            DType::F64 => f::<f64>(shape, value),
            DType::I32 => f::<i32>(shape, value),
            DType::I64 => f::<i64>(shape, value),
            DType::Bool => f::<bool>(shape, value),
        }))
    }

    /// `tf.zeros`.
    ///
    /// ```
    /// use ferroflow_tensor_core::{DType, Tensor};
    /// let z = Tensor::zeros(&[2, 3], DType::F64)?;
    /// assert_eq!((z.dims(), z.to_vec::<f64>()?), (&[2usize, 3][..], vec![0.0; 6]));
    /// assert!(Tensor::zeros(&[1 << 32, 1 << 32], DType::F32).is_err());
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn zeros(shape: &[usize], dtype: DType) -> Result<Tensor> {
        Tensor::fill(shape, 0.0, dtype)
    }

    /// `tf.ones`.
    ///
    /// ```
    /// use ferroflow_tensor_core::{DType, Tensor};
    /// assert_eq!(Tensor::ones(&[2], DType::I64)?.to_vec::<i64>()?, vec![1, 1]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn ones(shape: &[usize], dtype: DType) -> Result<Tensor> {
        Tensor::fill(shape, 1.0, dtype)
    }

    /// `tf.zeros_like`: zeros of this tensor's shape and dtype.
    ///
    /// ```
    /// use ferroflow_tensor_core::Tensor;
    /// let z = Tensor::new([[1i32, 2]]).zeros_like()?;
    /// assert_eq!((z.dims(), z.to_vec::<i32>()?), (&[1usize, 2][..], vec![0, 0]));
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn zeros_like(&self) -> Result<Tensor> {
        Tensor::zeros(self.dims(), self.dtype())?.to(self.device())
    }

    /// `tf.ones_like`: ones of this tensor's shape and dtype.
    ///
    /// ```
    /// use ferroflow_tensor_core::Tensor;
    /// assert_eq!(Tensor::new([3.0f32, 4.0]).ones_like()?.to_vec::<f32>()?, vec![1.0, 1.0]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn ones_like(&self) -> Result<Tensor> {
        Tensor::ones(self.dims(), self.dtype())?.to(self.device())
    }

    /// `tf.eye`: the `n × n` identity matrix.
    ///
    /// ```
    /// use ferroflow_tensor_core::{DType, Tensor};
    /// assert_eq!(Tensor::eye(2, DType::F32)?.to_vec::<f32>()?, vec![1.0, 0.0, 0.0, 1.0]);
    /// assert!(Tensor::eye(1 << 20, DType::F32).is_err()); // 4 TiB
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn eye(n: usize, dtype: DType) -> Result<Tensor> {
        crate::alloc::checked_elements("eye", &[n, n], dtype)?;
        let mut v = vec![0.0f64; n * n];
        for i in 0..n {
            v[i * n + i] = 1.0;
        }
        Tensor::from_vec(v, &[n, n])?.cast(dtype)
    }

    /// `tf.range`: `[start, start + delta, ...)` up to (excluding) `limit`.
    ///
    /// As TensorFlow's `Range` kernel: `start`, `limit` and `delta` are first converted to
    /// `dtype` (an integer dtype needs whole numbers), the values are made by adding `delta`
    /// repeatedly in `dtype`, and a `limit` on the wrong side of `start` for the sign of
    /// `delta` is an error (not an empty range).
    ///
    /// ```
    /// use ferroflow_tensor_core::{DType, Tensor};
    /// assert_eq!(Tensor::range(0.0, 5.0, 2.0, DType::I32)?.to_vec::<i32>()?, vec![0, 2, 4]);
    /// assert_eq!(Tensor::range(5.0, 0.0, -2.5, DType::F64)?.to_vec::<f64>()?, vec![5.0, 2.5]);
    /// assert!(Tensor::range(0.0, 1e18, 1.0, DType::F32).is_err());
    /// assert!(Tensor::range(5.0, 0.0, 1.0, DType::F32).is_err());
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn range(start: f64, limit: f64, delta: f64, dtype: DType) -> Result<Tensor> {
        if delta == 0.0 || !delta.is_finite() || !start.is_finite() || !limit.is_finite() {
            return Err(Error::invalid(
                "range",
                format!("delta must be finite and non-zero, got start={start} limit={limit} delta={delta}"),
            ));
        }
        if (delta > 0.0 && start > limit) || (delta < 0.0 && start < limit) {
            let want = if delta > 0.0 {
                "start <= limit"
            } else {
                "start >= limit"
            };
            return Err(Error::invalid(
                "range",
                format!("requires {want} when delta is {delta}, got start={start} limit={limit}"),
            ));
        }
        match dtype {
            DType::F32 => float_range(start as f32, limit as f32, delta as f32),
            DType::F64 => float_range(start, limit, delta),
            DType::I32 | DType::I64 => {
                // TensorFlow converts each bound to the dtype first, which rejects fractions
                // and values out of its range.
                let (lo, hi) = match dtype {
                    DType::I32 => (i32::MIN as f64, i32::MAX as f64),
                    _ => (-(2f64.powi(63)), 2f64.powi(63) - 1024.0),
                };
                let whole = |v: f64, what: &str| -> Result<i64> {
                    if v.fract() != 0.0 || v < lo || v > hi {
                        return Err(Error::invalid(
                            "range",
                            format!("{what} {v} is not a whole number in the range of {}", dtype.name()),
                        ));
                    }
                    Ok(v as i64)
                };
                let (s, l, d) = (whole(start, "start")?, whole(limit, "limit")?, whole(delta, "delta")?);
                // TensorFlow's integer size: (|limit - start| + |delta| - 1) / |delta|.
                let span = (l as i128 - s as i128).unsigned_abs();
                let step = (d as i128).unsigned_abs();
                let n = usize::try_from(span.div_ceil(step)).unwrap_or(usize::MAX);
                crate::alloc::checked_elements("range", &[n], dtype)?;
                let v: Vec<i64> = (0..n as i64).map(|i| s.wrapping_add(i.wrapping_mul(d))).collect();
                Tensor::from_vec(v, &[n])?.cast(dtype)
            }
            DType::Bool => Err(Error::dtypes("range", &[dtype], "range needs a numeric dtype")),
        }
    }

    /// `tf.linspace`: `num` evenly spaced values from `start` to `stop` inclusive.
    ///
    /// ```
    /// use ferroflow_tensor_core::{DType, Tensor};
    /// let t = Tensor::linspace(0.0, 1.0, 5, DType::F64)?;
    /// assert_eq!(t.to_vec::<f64>()?, vec![0.0, 0.25, 0.5, 0.75, 1.0]);
    /// assert!(Tensor::linspace(0.0, 1.0, usize::MAX, DType::F32).is_err());
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn linspace(start: f64, stop: f64, num: usize, dtype: DType) -> Result<Tensor> {
        crate::alloc::checked_elements("linspace", &[num], dtype)?;
        match dtype {
            DType::F32 => Ok(linspace_in(start as f32, stop as f32, num)),
            DType::F64 => Ok(linspace_in(start, stop, num)),
            _ => Err(Error::dtypes("linspace", &[dtype], "linspace needs a float dtype")),
        }
    }

    /// The unique id of this value.
    ///
    /// ```
    /// use ferroflow_tensor_core::*;
    /// let (a, b) = (Tensor::scalar(1.0f32), Tensor::scalar(1.0f32));
    /// assert_ne!(a.id(), b.id());
    /// assert_eq!(a.id(), a.clone().id());
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn id(&self) -> TensorId {
        self.0.id
    }

    /// What the tensor holds.
    ///
    /// ```
    /// use ferroflow_tensor_core::*;
    /// assert!(matches!(Tensor::scalar(1i32).value(), Value::Eager(_)));
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn value(&self) -> &Value {
        &self.0.value
    }

    /// Wraps elements held by an accelerator in a new tensor.
    pub fn from_device_data(data: crate::DeviceData) -> Tensor {
        Tensor(Arc::new(Inner {
            id: TensorId::fresh(),
            value: Value::Device(data),
        }))
    }

    /// The device holding the elements: [`crate::Device::Cpu`] for host and symbolic
    /// tensors.
    ///
    /// ```
    /// use ferroflow_tensor_core::{Device, Tensor};
    /// assert_eq!(Tensor::scalar(1.0f32).device(), Device::Cpu);
    /// ```
    pub fn device(&self) -> crate::Device {
        match &self.0.value {
            Value::Device(d) => d.device(),
            Value::Eager(_) | Value::Symbolic(_) => crate::Device::Cpu,
        }
    }

    /// This tensor on `device`: itself when already there, else a copy (TensorFlow's
    /// `tf.identity` under `tf.device`, PyTorch's `.to`). Copies are not recorded by tapes.
    ///
    /// ```
    /// use ferroflow_tensor_core::{Device, Tensor};
    /// let x = Tensor::new([1.0f32, 2.0]);
    /// assert_eq!(x.to(Device::Cpu)?.id(), x.id());
    /// if let Ok(g) = x.to(Device::Cuda(0)) {
    ///     assert_eq!(g.device(), Device::Cuda(0));
    ///     assert_eq!(g.to(Device::Cpu)?.to_vec::<f32>()?, vec![1.0, 2.0]);
    /// }
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn to(&self, device: crate::Device) -> Result<Tensor> {
        if self.device() == device {
            return Ok(self.clone());
        }
        if let Value::Symbolic(s) = &self.0.value {
            return Err(Error::Symbolic {
                op: "to",
                msg: format!(
                    "tensor {} is symbolic; copy tensors to a device outside traced functions",
                    s.spec
                ),
            });
        }
        match device {
            crate::Device::Cpu => Ok(Tensor::from_data(self.data()?.clone())),
            crate::Device::Cuda(_) => {
                let host = self.data()?;
                crate::device::storage::backend::upload(device, host).map(Tensor::from_device_data)
            }
        }
    }

    /// True for a symbolic (traced) tensor.
    ///
    /// ```
    /// use ferroflow_tensor_core::*;
    /// assert!(!Tensor::scalar(1i32).is_symbolic());
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn is_symbolic(&self) -> bool {
        matches!(self.0.value, Value::Symbolic(_))
    }

    /// The symbolic payload, if symbolic.
    ///
    /// ```
    /// use ferroflow_tensor_core::*;
    /// assert!(Tensor::scalar(1i32).as_symbolic().is_none());
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn as_symbolic(&self) -> Option<&Symbolic> {
        match &self.0.value {
            Value::Symbolic(s) => Some(s),
            Value::Eager(_) | Value::Device(_) => None,
        }
    }

    /// The host elements when reading them copies nothing: host data, or a device tensor's
    /// kept host copy.
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub(crate) fn host_data_if_cached(&self) -> Option<&Data> {
        match &self.0.value {
            Value::Eager(d) => Some(d),
            Value::Device(d) => d.cached_host(),
            Value::Symbolic(_) => None,
        }
    }

    /// The eager data, or an error for a symbolic tensor. A tensor on an accelerator is
    /// copied to the host on the first call (like TensorFlow's `.numpy()`); the copy is kept.
    ///
    /// ```
    /// use ferroflow_tensor_core::*;
    /// assert_eq!(Tensor::new([1.0f64, 2.0]).data()?.dtype(), DType::F64);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn data(&self) -> Result<&Data> {
        match &self.0.value {
            Value::Eager(d) => Ok(d),
            Value::Device(d) => d.to_host(),
            Value::Symbolic(s) => Err(Error::Symbolic {
                op: "data",
                msg: format!(
                    "tensor {} is symbolic (inside a traced function) and has no value yet",
                    s.spec
                ),
            }),
        }
    }

    /// Element type.
    ///
    /// ```
    /// use ferroflow_tensor_core::*;
    /// assert_eq!(Tensor::new([1i64]).dtype(), DType::I64);
    /// ```
    pub fn dtype(&self) -> DType {
        match &self.0.value {
            Value::Eager(d) => d.dtype(),
            Value::Symbolic(s) => s.spec.dtype,
            Value::Device(d) => d.dtype(),
        }
    }

    /// Dimensions.
    ///
    /// ```
    /// use ferroflow_tensor_core::*;
    /// assert_eq!(Tensor::new([[1i32; 3]; 2]).dims(), &[2, 3]);
    /// ```
    pub fn dims(&self) -> &[usize] {
        match &self.0.value {
            Value::Eager(d) => d.dims(),
            Value::Symbolic(s) => s.spec.shape.dims(),
            Value::Device(d) => d.dims(),
        }
    }

    /// The shape (allocates; prefer [`Tensor::dims`] in hot code).
    ///
    /// ```
    /// use ferroflow_tensor_core::*;
    /// assert_eq!(Tensor::new([[1.0f32], [2.0]]).shape(), Shape::new(vec![2, 1]));
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn shape(&self) -> Shape {
        Shape::from(self.dims())
    }

    /// Number of dimensions.
    ///
    /// ```
    /// use ferroflow_tensor_core::*;
    /// assert_eq!(Tensor::new([[[1i32]]]).rank(), 3);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn rank(&self) -> usize {
        self.dims().len()
    }

    /// Number of elements.
    ///
    /// ```
    /// use ferroflow_tensor_core::*;
    /// assert_eq!(Tensor::zeros(&[2, 0, 3], DType::F32)?.num_elements(), 0);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn num_elements(&self) -> usize {
        self.dims().iter().product()
    }

    /// Dtype and shape.
    ///
    /// ```
    /// use ferroflow_tensor_core::*;
    /// assert_eq!(Tensor::new([1.0f32, 2.0]).spec(), TensorSpec::new(DType::F32, vec![2]));
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn spec(&self) -> TensorSpec {
        TensorSpec {
            dtype: self.dtype(),
            shape: self.shape(),
        }
    }

    /// The elements as a row-major vector of `T` (the dtype must match).
    ///
    /// ```
    /// use ferroflow_tensor_core::*;
    /// let t = Tensor::new([[1i32, 2], [3, 4]]);
    /// assert_eq!(t.t()?.to_vec::<i32>()?, vec![1, 3, 2, 4]);
    /// assert!(t.to_vec::<i64>().is_err());
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        let d = self.data()?;
        match d.array::<T>() {
            Some(a) => Ok(a.iter().copied().collect()),
            None => Err(Error::dtypes(
                "to_vec",
                &[d.dtype(), T::DTYPE],
                "dtype differs from the requested element type",
            )),
        }
    }

    /// The single element of a tensor with one element, as `T` (the dtype must match).
    ///
    /// ```
    /// use ferroflow_tensor_core::*;
    /// assert_eq!(Tensor::new([[7.5f32]]).to_scalar::<f32>()?, 7.5);
    /// assert!(Tensor::new([1.0f32, 2.0]).to_scalar::<f32>().is_err());
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn to_scalar<T: Element>(&self) -> Result<T> {
        let v = self.to_vec::<T>()?;
        match v.as_slice() {
            [x] => Ok(*x),
            _ => Err(Error::shapes(
                "to_scalar",
                &[&self.shape()],
                "tensor does not have exactly one element",
            )),
        }
    }

    /// All elements widened to f64, row-major (for tests, printing and comparisons).
    ///
    /// ```
    /// use ferroflow_tensor_core::*;
    /// assert_eq!(Tensor::new([true, false]).to_f64_vec()?, vec![1.0, 0.0]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn to_f64_vec(&self) -> Result<Vec<f64>> {
        Ok(self.data()?.to_f64_vec())
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A nested array literal of elements: `T`, `[T; N]`, `[[T; N]; M]`, ...
pub trait Literal {
    /// The element type at the leaves.
    type Elem: Element;
    /// Appends this literal's dimensions (outermost first).
    fn dims(dims: &mut Vec<usize>);
    /// Appends the leaves in row-major order.
    fn flatten_into(self, out: &mut Vec<Self::Elem>);
}

macro_rules! impl_literal_leaf {
    ($($t:ty),*) => {$(
        impl Literal for $t {
            type Elem = $t;
            fn dims(_: &mut Vec<usize>) {}
            fn flatten_into(self, out: &mut Vec<$t>) {
                out.push(self);
            }
        }
    )*};
}
impl_literal_leaf!(f32, f64, i32, i64, bool);

impl<L: Literal, const N: usize> Literal for [L; N] {
    type Elem = L::Elem;
    fn dims(dims: &mut Vec<usize>) {
        dims.push(N);
        L::dims(dims);
    }
    fn flatten_into(self, out: &mut Vec<L::Elem>) {
        for x in self {
            x.flatten_into(out);
        }
    }
}

impl<T: Element> From<T> for Tensor {
    fn from(v: T) -> Tensor {
        Tensor::scalar(v)
    }
}

impl<T: Element> From<Vec<T>> for Tensor {
    fn from(v: Vec<T>) -> Tensor {
        let n = v.len();
        Tensor::from_vec(v, &[n]).expect("a vector fills its own length")
    }
}

/// `tf.range` in a float dtype, as TensorFlow's kernel computes it: the size is
/// `ceil(|(limit - start) / delta|)` and the values accumulate `delta` in `T`.
fn float_range<T: crate::FloatElement>(start: T, limit: T, delta: T) -> Result<Tensor> {
    let n = ((limit - start) / delta).abs().ceil().to_f64();
    let n = if n < usize::MAX as f64 { n as usize } else { usize::MAX };
    crate::alloc::checked_elements("range", &[n], T::DTYPE)?;
    let mut v = Vec::with_capacity(n);
    let mut val = start;
    for _ in 0..n {
        v.push(val);
        val = val + delta;
    }
    Tensor::from_vec(v, &[n])
}

/// `tf.linspace` in `T`, as TensorFlow's kernel: `start + step·i` with
/// `step = (stop - start) / (num - 1)`, and exactly `stop` last.
fn linspace_in<T: crate::FloatElement>(start: T, stop: T, num: usize) -> Tensor {
    let v: Vec<T> = match num {
        0 => Vec::new(),
        1 => vec![start],
        _ => {
            let step = (stop - start) / T::from_f64((num - 1) as f64);
            (0..num)
                .map(|i| {
                    if i == num - 1 {
                        stop
                    } else {
                        start + step * T::from_f64(i as f64)
                    }
                })
                .collect()
        }
    };
    let n = v.len();
    Tensor::from_vec(v, &[n]).expect("linspace: a vector of its own length")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `tf.range` as TensorFlow's kernel: float32 values accumulate in float32, a limit on
    /// the wrong side is an error, integer sizes are exact.
    #[test]
    fn range_accumulates_in_its_dtype_and_checks_direction() {
        let v = Tensor::range(0.0, 1000.0, 0.1, DType::F32)
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        let mut want = Vec::new();
        let mut acc = 0.0f32;
        for _ in 0..10000 {
            want.push(acc);
            acc += 0.1f32;
        }
        assert_eq!(v, want);
        assert_ne!(v[9999], 999.9f32, "accumulated, not start + i·delta");
        assert!(Tensor::range(5.0, 0.0, 1.0, DType::F32).is_err());
        assert!(Tensor::range(0.0, 5.0, -1.0, DType::I32).is_err());
        assert_eq!(Tensor::range(3.0, 3.0, 1.0, DType::I64).unwrap().num_elements(), 0);
        assert_eq!(
            Tensor::range(10.0, 1.0, -3.0, DType::I32)
                .unwrap()
                .to_vec::<i32>()
                .unwrap(),
            vec![10, 7, 4]
        );
        assert!(Tensor::range(0.0, 2.5, 0.5, DType::I32).is_err());
        // Bounds outside int32 are an error, not wrapped values.
        assert!(Tensor::range(0.0, 5e9, 1e9, DType::I32).is_err());
        let big = Tensor::range(0.0, 5e9, 1e9, DType::I64)
            .unwrap()
            .to_vec::<i64>()
            .unwrap();
        assert_eq!(big, vec![0, 1_000_000_000, 2_000_000_000, 3_000_000_000, 4_000_000_000]);
        assert!(Tensor::range(0.0, 1.0, 0.1, DType::Bool).is_err());
    }

    /// `tf.linspace` computes in its dtype and ends exactly at `stop`.
    #[test]
    fn linspace_computes_in_its_dtype() {
        let v = Tensor::linspace(0.1, 0.7, 4, DType::F32)
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        let step = (0.7f32 - 0.1f32) / 3.0;
        assert_eq!(v, vec![0.1f32, 0.1 + step, 0.1 + step * 2.0, 0.7]);
        assert!(Tensor::linspace(0.0, 1.0, 3, DType::I32).is_err());
    }

    #[test]
    fn creation_checks_lengths() {
        assert!(Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[2, 2]).is_err());
        let t = Tensor::from_vec(vec![1i32, 2, 3, 4, 5, 6], &[2, 3]).unwrap();
        assert_eq!(t.dims(), &[2, 3]);
        assert_eq!(t.dtype(), DType::I32);
        assert!(t.to_vec::<f32>().is_err());
        let e = Tensor::from_vec(Vec::<f64>::new(), &[0, 5]).unwrap();
        assert_eq!(e.num_elements(), 0);
        assert!(Tensor::from_vec(vec![0.0f32], &[usize::MAX, 3]).is_err());
    }

    #[test]
    fn literals_nest() {
        let t = Tensor::new([[[1i64], [2]], [[3], [4]]]);
        assert_eq!(t.dims(), &[2, 2, 1]);
        assert_eq!(t.to_vec::<i64>().unwrap(), vec![1, 2, 3, 4]);
        assert_eq!(Tensor::new(true).dims(), &[] as &[usize]);
    }

    #[test]
    fn constructors() {
        assert_eq!(
            Tensor::eye(2, DType::F32).unwrap().to_vec::<f32>().unwrap(),
            vec![1.0, 0.0, 0.0, 1.0]
        );
        assert_eq!(
            Tensor::range(0.0, 5.0, 2.0, DType::I32)
                .unwrap()
                .to_vec::<i32>()
                .unwrap(),
            vec![0, 2, 4]
        );
        assert_eq!(
            Tensor::range(5.0, 0.0, -2.5, DType::F64)
                .unwrap()
                .to_vec::<f64>()
                .unwrap(),
            vec![5.0, 2.5]
        );
        assert!(Tensor::range(0.0, 1.0, 0.0, DType::F32).is_err());
        assert_eq!(
            Tensor::linspace(0.0, 1.0, 5, DType::F64)
                .unwrap()
                .to_vec::<f64>()
                .unwrap(),
            vec![0.0, 0.25, 0.5, 0.75, 1.0]
        );
        assert_eq!(
            Tensor::fill(&[2], 2.7, DType::I32).unwrap().to_vec::<i32>().unwrap(),
            vec![2, 2]
        );
        let a = ndarray::array![[1.0f64, 2.0], [3.0, 4.0]];
        let t = Tensor::from_ndarray(a);
        assert_eq!(t.to_ndarray::<f64>().unwrap().shape(), &[2, 2]);
    }
}
