//! Gradient fusion, Horovod-style: many small gradients travel in a few all-reduces. The
//! gradients are cut into buckets in their given order (one dtype per bucket, at most
//! [`ReduceOptions::bucket_bytes`] each), and each bucket is one op, so a traced train step
//! reduces exactly as an eager one, in the same order on every worker.

use crate::{Communicator, ReduceOp};
use ferroflow_tensor_core::{dispatch, DType, Data, Device, Error, Op, Result, Tensor, TensorSpec};
use std::fmt;
use std::sync::Arc;

/// How gradients are reduced across workers.
///
/// ```
/// use ferroflow_distribute::ReduceOptions;
/// let options = ReduceOptions::new().bucket_bytes(1 << 20);
/// assert_eq!(options.bucket_size(), 1 << 20);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReduceOptions {
    bucket_bytes: usize,
    sum: bool,
}

impl Default for ReduceOptions {
    fn default() -> Self {
        ReduceOptions::new()
    }
}

impl ReduceOptions {
    /// The default bucket size: 8 MiB, enough to fuse every gradient of a CPU-sized model
    /// into one or two reductions while keeping the packing buffers small.
    pub const DEFAULT_BUCKET_BYTES: usize = 8 << 20;

    /// Averaged gradients, in buckets of [`ReduceOptions::DEFAULT_BUCKET_BYTES`].
    pub fn new() -> Self {
        ReduceOptions {
            bucket_bytes: Self::DEFAULT_BUCKET_BYTES,
            sum: false,
        }
    }

    /// Bytes per bucket (a gradient larger than this travels alone; 0 puts each gradient in
    /// its own reduction).
    pub fn bucket_bytes(mut self, bytes: usize) -> Self {
        self.bucket_bytes = bytes;
        self
    }

    /// Sums the workers' gradients instead of averaging them (Horovod's `op=Sum`).
    pub fn sum(mut self) -> Self {
        self.sum = true;
        self
    }

    /// Whether gradients are summed rather than averaged.
    pub fn is_sum(&self) -> bool {
        self.sum
    }

    /// The bucket size in bytes.
    pub fn bucket_size(&self) -> usize {
        self.bucket_bytes
    }
}

/// How much each worker's gradients count in the average.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Weighting {
    /// Every worker the same: the plain mean (Horovod's average).
    Equal,
    /// By this worker's sample count, divided by the total over workers (sent along), so
    /// uneven batches give the gradient of the whole global batch; a worker with no samples
    /// contributes nothing.
    Samples(usize),
    /// By a fraction this worker knows (its share of a global batch every worker knows):
    /// the gradients are scaled and summed, with no count sent.
    Share(f64),
}

/// Averages (or sums) `grads` across the workers of `comm`, bucket by bucket, weighting each
/// worker as `weighting` says.
///
/// ```
/// use ferroflow_distribute::{all_reduce_gradients, LocalCommunicator, ReduceOptions, Weighting};
/// use ferroflow_tensor_core::Tensor;
/// use std::sync::Arc;
/// let comm = Arc::new(LocalCommunicator::new());
/// let grads = [Tensor::new([1.0f32, 2.0]), Tensor::new([[3.0f64]])];
/// let avg = all_reduce_gradients(comm, &grads, Weighting::Samples(4), ReduceOptions::new())?;
/// assert_eq!(avg[0].to_vec::<f32>()?, vec![1.0, 2.0]);
/// assert_eq!(avg[1].dims(), &[1, 1]);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
pub fn all_reduce_gradients(
    comm: Arc<dyn Communicator>,
    grads: &[Tensor],
    weighting: Weighting,
    options: ReduceOptions,
) -> Result<Vec<Tensor>> {
    let mut out: Vec<Option<Tensor>> = vec![None; grads.len()];
    for bucket in plan(grads, options.bucket_bytes)? {
        let op = AllReduceBucket {
            comm: comm.clone(),
            weighting,
            sum: options.sum,
        };
        let inputs: Vec<&Tensor> = bucket.iter().map(|&i| &grads[i]).collect();
        let reduced = dispatch(Op::Custom(Arc::new(op)), &inputs)?;
        for (i, t) in bucket.into_iter().zip(reduced) {
            out[i] = Some(t);
        }
    }
    out.into_iter()
        .map(|t| t.ok_or_else(|| Error::invalid("all_reduce_gradients", "a gradient was left out of every bucket")))
        .collect()
}

/// The buckets: indices of `grads`, in order, one float dtype each, at most `bytes` each.
fn plan(grads: &[Tensor], bytes: usize) -> Result<Vec<Vec<usize>>> {
    let mut buckets: Vec<(DType, usize, Vec<usize>)> = Vec::new();
    for (i, g) in grads.iter().enumerate() {
        let dtype = g.dtype();
        if !matches!(dtype, DType::F32 | DType::F64) {
            return Err(Error::dtypes(
                "all_reduce_gradients",
                &[dtype],
                format!("gradient {i} is not float32 or float64"),
            ));
        }
        let size = g.shape().num_elements() * dtype.size_of();
        // The open bucket of this dtype, if the gradient fits in it.
        let open = buckets
            .iter_mut()
            .rev()
            .find(|(d, _, _)| *d == dtype)
            .filter(|(_, used, idx)| !idx.is_empty() && used + size <= bytes);
        match open {
            Some((_, used, idx)) => {
                *used += size;
                idx.push(i);
            }
            None => buckets.push((dtype, size, vec![i])),
        }
    }
    Ok(buckets.into_iter().map(|(_, _, idx)| idx).collect())
}

thread_local! {
    /// The send and receive buffers, reused by every reduction on this thread (buckets reduce
    /// one after the other, eagerly or in a graph), so a step packs into no fresh pages.
    static BUFFERS: std::cell::RefCell<Buffers> = std::cell::RefCell::new(Buffers::default());
}

/// Packing buffers, one per element type.
#[derive(Default)]
struct Buffers {
    f32: (Vec<f32>, Vec<f32>),
    f64: (Vec<f64>, Vec<f64>),
}

/// One bucket's all-reduce, as an op: inputs are the bucket's gradients, outputs their
/// reductions.
pub(crate) struct AllReduceBucket {
    pub(crate) comm: Arc<dyn Communicator>,
    pub(crate) weighting: Weighting,
    pub(crate) sum: bool,
}

impl fmt::Debug for AllReduceBucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AllReduceBucket")
            .field("rank", &self.comm.rank())
            .field("size", &self.comm.size())
            .field("weighting", &self.weighting)
            .field("sum", &self.sum)
            .finish()
    }
}

/// The element types a bucket packs.
trait Packable: crate::communicator::Float + ferroflow_tensor_core::Element {
    fn mul(self, other: Self) -> Self;
    fn zero() -> Self;
    fn view(d: &Data) -> Option<&ferroflow_tensor_core::Array<Self>>;
    fn buffers(b: &mut Buffers) -> &mut (Vec<Self>, Vec<Self>);
    fn reduce(comm: &dyn Communicator, send: &[Self], recv: &mut [Self]) -> Result<()>;
}

macro_rules! packable {
    ($t:ty, $field:ident, $variant:ident, $reduce:ident) => {
        impl Packable for $t {
            fn mul(self, other: Self) -> Self {
                self * other
            }
            fn zero() -> Self {
                0.0
            }
            fn view(d: &Data) -> Option<&ferroflow_tensor_core::Array<Self>> {
                match d {
                    Data::$variant(a) => Some(a),
                    _ => None,
                }
            }
            fn buffers(b: &mut Buffers) -> &mut (Vec<Self>, Vec<Self>) {
                &mut b.$field
            }
            fn reduce(comm: &dyn Communicator, send: &[Self], recv: &mut [Self]) -> Result<()> {
                comm.$reduce(send, recv, ReduceOp::Sum)
            }
        }
    };
}
packable!(f32, f32, F32, all_reduce_f32);
packable!(f64, f64, F64, all_reduce_f64);

impl AllReduceBucket {
    /// The factor each gradient is scaled by before the sum.
    pub(crate) fn scale(&self) -> f64 {
        match self.weighting {
            Weighting::Equal => 1.0,
            Weighting::Samples(n) => n as f64,
            Weighting::Share(f) => f,
        }
    }

    /// Whether this worker's sample count travels as a last element, so that the sum
    /// carries the total.
    pub(crate) fn counted(&self) -> bool {
        matches!(self.weighting, Weighting::Samples(_))
    }

    /// What the sum is divided by, given the summed sample count `total` (when counted).
    pub(crate) fn divisor(&self, total: f64) -> Result<f64> {
        if self.counted() && total <= 0.0 {
            return Err(Error::invalid(
                "all_reduce_gradients",
                "no worker had a sample in this step: the weighted mean is undefined",
            ));
        }
        Ok(match self.weighting {
            _ if self.sum => 1.0,
            Weighting::Equal => self.comm.size() as f64,
            Weighting::Samples(_) => total,
            Weighting::Share(_) => 1.0,
        })
    }

    fn run<T: Packable>(&self, inputs: &[&Data]) -> Result<Vec<Data>> {
        BUFFERS.with(|b| match b.try_borrow_mut() {
            Ok(mut buffers) => {
                let (send, recv) = T::buffers(&mut buffers);
                self.run_with(inputs, send, recv)
            }
            // Re-entered (cannot happen with the ops of this crate): use fresh buffers.
            Err(_) => self.run_with::<T>(inputs, &mut Vec::new(), &mut Vec::new()),
        })
    }

    fn run_with<T: Packable>(&self, inputs: &[&Data], send: &mut Vec<T>, recv: &mut Vec<T>) -> Result<Vec<Data>> {
        send.clear();
        let (scale, counted) = (self.scale(), self.counted());
        // One contiguous gradient sent as it is: no packing pass over its memory.
        let direct = match inputs {
            [d] if scale == 1.0 && !counted => T::view(d).and_then(|a| a.as_slice()),
            _ => None,
        };
        if direct.is_none() {
            for d in inputs {
                let a =
                    T::view(d).ok_or_else(|| Error::dtypes("all_reduce", &[d.dtype()], "mixed dtypes in a bucket"))?;
                if scale == 0.0 {
                    // Not `g * 0`: a worker without samples may hold NaN gradients of an empty mean.
                    send.extend(std::iter::repeat_n(T::zero(), a.len()));
                } else if scale != 1.0 {
                    let w = <T as ferroflow_tensor_core::Element>::from_f64(scale);
                    send.extend(a.iter().map(|&v| v.mul(w)));
                } else {
                    match a.as_slice() {
                        Some(s) => send.extend_from_slice(s),
                        None => send.extend(a.iter().copied()),
                    }
                }
            }
            if counted {
                send.push(<T as ferroflow_tensor_core::Element>::from_f64(scale));
            }
        }
        let send: &[T] = direct.unwrap_or(send);
        // The receive buffer is reused: MPI moves large messages much faster between pages it
        // has seen before than into freshly mapped ones.
        recv.clear();
        recv.resize(send.len(), T::zero());
        T::reduce(self.comm.as_ref(), send, recv)?;
        let total = if counted {
            recv.pop().map_or(0.0, <T as ferroflow_tensor_core::Element>::to_f64)
        } else {
            1.0
        };
        let divisor = self.divisor(total)?;
        let div = <T as ferroflow_tensor_core::Element>::from_f64(divisor);
        let shaped = |dims: &[usize], values: Vec<T>| -> Result<Data> {
            Ok(Data::from_owned(
                ndarray::ArrayD::from_shape_vec(dims, values).map_err(|e| Error::external("all_reduce", e))?,
            ))
        };
        let mut outputs = Vec::with_capacity(inputs.len());
        let mut at = 0;
        for d in inputs {
            let n = d.len();
            let part = &recv[at..at + n];
            // The division, if any, while copying out: one pass over the result.
            let values = if divisor == 1.0 {
                part.to_vec()
            } else {
                part.iter().map(|&v| v.div(div)).collect()
            };
            outputs.push(shaped(d.dims(), values)?);
            at += n;
        }
        Ok(outputs)
    }
}

impl AllReduceBucket {
    /// Whether float32 gradients are scaled and summed in float64: weights other than 1 would
    /// round every element once more than one process does, and the float32 result would
    /// drift from the one-process one. The answer sets the buffer's type, so it must be the
    /// same on every worker: it depends on the kind of weighting only, never on this worker's
    /// weight.
    pub(crate) fn widens(&self) -> bool {
        !matches!(self.weighting, Weighting::Equal)
    }

    /// [`AllReduceBucket::run`] for float32 gradients through a float64 buffer.
    fn run_widened(&self, inputs: &[&Data]) -> Result<Vec<Data>> {
        let widened: Vec<Data> = inputs
            .iter()
            .map(|d| match d {
                Data::F32(a) => Ok(Data::from_owned(a.mapv(f64::from).into_owned())),
                other => Err(Error::dtypes(
                    "all_reduce",
                    &[other.dtype()],
                    "mixed dtypes in a bucket",
                )),
            })
            .collect::<Result<_>>()?;
        let refs: Vec<&Data> = widened.iter().collect();
        self.run::<f64>(&refs)?
            .into_iter()
            .map(|d| match d {
                Data::F64(a) => Ok(Data::from_owned(a.mapv(|v| v as f32).into_owned())),
                other => Ok(other),
            })
            .collect()
    }
}

impl ferroflow_tensor_core::CustomOp for AllReduceBucket {
    fn name(&self) -> &'static str {
        "all_reduce_gradients"
    }

    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        let Some(first) = inputs.first() else {
            return Err(Error::invalid("all_reduce_gradients", "an empty bucket"));
        };
        if !matches!(first.dtype, DType::F32 | DType::F64) || inputs.iter().any(|s| s.dtype != first.dtype) {
            return Err(Error::dtypes(
                "all_reduce_gradients",
                &inputs.iter().map(|s| s.dtype).collect::<Vec<_>>(),
                "a bucket holds float32 or float64 gradients of one dtype",
            ));
        }
        Ok(inputs.to_vec())
    }

    fn compute(&self, inputs: &[&Data]) -> Result<Vec<Data>> {
        match inputs.first().map(|d| d.dtype()) {
            Some(DType::F32) if self.widens() => self.run_widened(inputs),
            Some(DType::F32) => self.run::<f32>(inputs),
            Some(DType::F64) => self.run::<f64>(inputs),
            other => Err(Error::invalid("all_reduce_gradients", format!("a bucket of {other:?}"))),
        }
    }

    fn compute_on_device(&self, device: Device, inputs: &[&Tensor]) -> Option<Result<Vec<Tensor>>> {
        self.comm.reduces_on(device).then(|| self.reduce_where_they_are(inputs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zeros(n: usize, dtype: DType) -> Tensor {
        Tensor::zeros(&[n], dtype).unwrap()
    }

    #[test]
    fn buckets_keep_order_split_by_size_and_dtype() {
        let g = [
            zeros(4, DType::F32),
            zeros(4, DType::F32),
            zeros(2, DType::F64),
            zeros(4, DType::F32),
        ];
        assert_eq!(plan(&g, 1 << 20).unwrap(), vec![vec![0, 1, 3], vec![2]]);
        assert_eq!(plan(&g, 32).unwrap(), vec![vec![0, 1], vec![2], vec![3]]);
        assert_eq!(plan(&g, 0).unwrap(), vec![vec![0], vec![1], vec![2], vec![3]]);
        assert!(plan(&[Tensor::new([1i32])], 64).is_err());
    }
}
