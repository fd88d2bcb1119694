//! The [`Communicator`] trait: what data-parallel training needs from a transport (rank,
//! world size, barrier, broadcast, all-reduce), with tensor-level helpers built on it once.

use ferroflow_tensor_core::{DType, Data, Device, Error, Result, Tensor};
use std::fmt;

/// How [`Communicator`]s combine the workers' values element by element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReduceOp {
    /// The sum over workers.
    Sum,
    /// The sum divided by the world size.
    Mean,
    /// The largest value.
    Max,
    /// The smallest value.
    Min,
}

impl ReduceOp {
    /// The operation a transport runs: `Mean` is a `Sum` followed by [`ReduceOp::finish`].
    pub fn primitive(self) -> ReduceOp {
        match self {
            ReduceOp::Mean => ReduceOp::Sum,
            other => other,
        }
    }

    /// Completes a reduction the transport ran as [`ReduceOp::primitive`]: divides by the
    /// world size for `Mean`, leaves the others alone.
    pub fn finish<T: Float>(self, values: &mut [T], world_size: usize) {
        if self == ReduceOp::Mean && world_size > 1 {
            let n = T::from_usize(world_size);
            values.iter_mut().for_each(|v| *v = v.div(n));
        }
    }

    /// Combines `b` into `a` as this op's primitive does (the world-of-one and test
    /// transports use it).
    pub fn combine<T: Float>(self, a: T, b: T) -> T {
        match self.primitive() {
            ReduceOp::Max => {
                if b.gt(a) {
                    b
                } else {
                    a
                }
            }
            ReduceOp::Min => {
                if b.gt(a) {
                    a
                } else {
                    b
                }
            }
            _ => a.add(b),
        }
    }
}

/// The element types a communicator reduces: `f32` and `f64` (gradients, metrics, flags).
pub trait Float: Copy + PartialOrd + Send + Sync + 'static {
    /// `n` as this type.
    fn from_usize(n: usize) -> Self;
    /// `self + other`.
    fn add(self, other: Self) -> Self;
    /// `self / other`.
    fn div(self, other: Self) -> Self;
    /// `self > other`.
    fn gt(self, other: Self) -> bool;
}

macro_rules! float {
    ($t:ty) => {
        impl Float for $t {
            fn from_usize(n: usize) -> Self {
                n as $t
            }
            fn add(self, other: Self) -> Self {
                self + other
            }
            fn div(self, other: Self) -> Self {
                self / other
            }
            fn gt(self, other: Self) -> bool {
                self > other
            }
        }
    };
}
float!(f32);
float!(f64);

/// A group of workers that reduce and broadcast together (an MPI communicator, or the
/// [`LocalCommunicator`](crate::LocalCommunicator) world of one).
///
/// Every worker must call the collective methods in the same order with buffers of the same
/// length; that is MPI's contract, and the training code in this crate keeps it by running
/// the same steps on every worker. Methods return an error instead of hanging where the
/// transport can tell (a length mismatch announced by a broadcast, a finalized transport).
///
/// ```
/// use ferroflow_distribute::{Communicator, LocalCommunicator, ReduceOp};
/// let comm = LocalCommunicator::new();
/// let mut out = [0.0f32; 3];
/// comm.all_reduce_f32(&[1.0, 2.0, 3.0], &mut out, ReduceOp::Mean)?;
/// assert_eq!((comm.rank(), comm.size(), out), (0, 1, [1.0, 2.0, 3.0]));
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
pub trait Communicator: Send + Sync + fmt::Debug {
    /// This worker's rank, `0..size()`.
    fn rank(&self) -> usize;

    /// The number of workers.
    fn size(&self) -> usize;

    /// Returns once every worker has called it.
    fn barrier(&self) -> Result<()>;

    /// Reduces `send` over all workers into `recv` (same length on every worker).
    fn all_reduce_f32(&self, send: &[f32], recv: &mut [f32], op: ReduceOp) -> Result<()>;

    /// [`Communicator::all_reduce_f32`] for `f64`.
    fn all_reduce_f64(&self, send: &[f64], recv: &mut [f64], op: ReduceOp) -> Result<()>;

    /// Copies `root`'s `buf` into every worker's `buf` (same length everywhere).
    fn broadcast_bytes(&self, buf: &mut [u8], root: usize) -> Result<()>;

    /// Whether this transport reduces memory of `device` where it is (NCCL over GPU
    /// buffers). `false`, the default: gradients on a device are copied to the host for
    /// [`Communicator::all_reduce_f32`] and back. Every worker must give the same answer.
    fn reduces_on(&self, device: Device) -> bool {
        let _ = device;
        false
    }

    /// The reduction over workers of `t`, a rank-1 float32 or float64 tensor on a device
    /// this transport [`reduces_on`](Communicator::reduces_on) (same length on every worker),
    /// left on that device. Gradient buckets call it with the op `Sum`.
    fn all_reduce_on_device(&self, t: &Tensor, op: ReduceOp) -> Result<Tensor> {
        let _ = op;
        Err(Error::invalid(
            "all_reduce",
            format!("this transport does not reduce memory on {}", t.device()),
        ))
    }

    /// Ends every worker's process with `code` (`MPI_Abort`): the way out when one worker
    /// failed somewhere the others cannot be told in order, so that nobody waits forever.
    fn abort(&self, code: i32) -> !;

    /// Whether this worker is the chief (rank 0), the one that writes logs and files.
    fn is_chief(&self) -> bool {
        self.rank() == 0
    }
}

/// Tensor-level collectives, for every [`Communicator`].
pub trait CommunicatorExt: Communicator {
    /// The reduction of a float tensor over all workers (same shape everywhere).
    ///
    /// ```
    /// use ferroflow_distribute::{CommunicatorExt, LocalCommunicator, ReduceOp};
    /// use ferroflow_tensor_core::Tensor;
    /// let t = LocalCommunicator::new().all_reduce(&Tensor::new([1.0f64, 2.0]), ReduceOp::Sum)?;
    /// assert_eq!(t.to_vec::<f64>()?, vec![1.0, 2.0]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    fn all_reduce(&self, t: &Tensor, op: ReduceOp) -> Result<Tensor> {
        let data = t.data()?;
        let out = match data {
            Data::F32(a) => {
                let send = contiguous(a);
                let mut recv = vec![0f32; send.len()];
                self.all_reduce_f32(&send, &mut recv, op)?;
                Tensor::from_vec(recv, a.shape())?
            }
            Data::F64(a) => {
                let send = contiguous(a);
                let mut recv = vec![0f64; send.len()];
                self.all_reduce_f64(&send, &mut recv, op)?;
                Tensor::from_vec(recv, a.shape())?
            }
            other => {
                return Err(Error::dtypes(
                    "all_reduce",
                    &[other.dtype()],
                    "reduces float32 and float64 tensors",
                ))
            }
        };
        Ok(out)
    }

    /// Reduces `values` in place (a copy is sent).
    fn all_reduce_in_place_f64(&self, values: &mut [f64], op: ReduceOp) -> Result<()> {
        let send = values.to_vec();
        self.all_reduce_f64(&send, values, op)
    }

    /// `root`'s tensor on every worker. Every worker passes a tensor of the same dtype and
    /// shape (its own values are replaced).
    fn broadcast(&self, t: &Tensor, root: usize) -> Result<Tensor> {
        let mut bytes = tensor_bytes(t)?;
        self.broadcast_bytes(&mut bytes, root)?;
        tensor_from_bytes(&bytes, t.dtype(), t.dims())
    }

    /// `root`'s byte string on every worker, whatever the length elsewhere: the length is
    /// broadcast first.
    fn broadcast_vec(&self, bytes: &mut Vec<u8>, root: usize) -> Result<()> {
        let mut len = (bytes.len() as u64).to_le_bytes();
        self.broadcast_bytes(&mut len, root)?;
        let len = u64::from_le_bytes(len);
        let len = usize::try_from(len)
            .ok()
            .filter(|&n| n <= 1 << 30)
            .ok_or_else(|| Error::invalid("broadcast", format!("rank {root} announced {len} bytes")))?;
        bytes.resize(len, 0);
        self.broadcast_bytes(bytes, root)
    }
}

impl<C: Communicator + ?Sized> CommunicatorExt for C {}

/// The elements of an array in row-major order, borrowed when they already are.
fn contiguous<T: Clone>(a: &ferroflow_tensor_core::Array<T>) -> std::borrow::Cow<'_, [T]> {
    match a.as_slice() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(a.iter().cloned().collect()),
    }
}

/// A tensor's elements as little-endian bytes.
pub(crate) fn tensor_bytes(t: &Tensor) -> Result<Vec<u8>> {
    Ok(match t.data()? {
        Data::F32(a) => a.iter().flat_map(|v| v.to_le_bytes()).collect(),
        Data::F64(a) => a.iter().flat_map(|v| v.to_le_bytes()).collect(),
        Data::I32(a) => a.iter().flat_map(|v| v.to_le_bytes()).collect(),
        Data::I64(a) => a.iter().flat_map(|v| v.to_le_bytes()).collect(),
        Data::Bool(a) => a.iter().map(|&v| u8::from(v)).collect(),
    })
}

/// The inverse of [`tensor_bytes`]; the length is checked against the shape.
pub(crate) fn tensor_from_bytes(bytes: &[u8], dtype: DType, dims: &[usize]) -> Result<Tensor> {
    let n: usize = dims.iter().product();
    if bytes.len() != n * dtype.size_of() {
        return Err(Error::invalid(
            "broadcast",
            format!("{} bytes cannot fill a {dtype:?} tensor of shape {dims:?}", bytes.len()),
        ));
    }
    macro_rules! decode {
        ($t:ty, $w:expr) => {
            Tensor::from_vec(
                bytes
                    .chunks_exact($w)
                    .map(|c| <$t>::from_le_bytes(c.try_into().expect("chunk of the element size")))
                    .collect::<Vec<$t>>(),
                dims,
            )
        };
    }
    match dtype {
        DType::F32 => decode!(f32, 4),
        DType::F64 => decode!(f64, 8),
        DType::I32 => decode!(i32, 4),
        DType::I64 => decode!(i64, 8),
        DType::Bool => Tensor::from_vec(bytes.iter().map(|&b| b != 0).collect::<Vec<bool>>(), dims),
    }
}
