//! A gradient bucket reduced where its gradients live, for transports that read device
//! memory ([`Communicator::reduces_on`](crate::Communicator::reduces_on), an NCCL
//! communicator): the bucket is packed, weighted, summed and unpacked with tensor ops on the
//! device, with the host path's arithmetic in the host path's order, so both give the same
//! bits (NaN payloads aside: a GPU may canonicalise them). Other transports never get here:
//! the bucket op's host kernel copies instead.

use crate::buckets::AllReduceBucket;
use crate::ReduceOp;
use ferroflow_tensor_core::{DType, Error, Result, Tensor};

impl AllReduceBucket {
    /// The reductions of `inputs` (one float dtype, already on the transport's device).
    pub(crate) fn reduce_where_they_are(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let Some(first) = inputs.first() else {
            return Ok(Vec::new());
        };
        let dtype = first.dtype();
        // As on the host: float32 gradients weighted other than equally travel as float64.
        let work = if dtype == DType::F32 && self.widens() {
            DType::F64
        } else {
            dtype
        };
        let (scale, counted) = (self.scale(), self.counted());
        let mut parts = Vec::with_capacity(inputs.len() + 1);
        for t in inputs {
            let flat = t.cast(work)?.reshape(&[-1])?;
            parts.push(if scale == 0.0 {
                // Not `g * 0`: a worker without samples may hold NaN gradients of an empty mean.
                flat.zeros_like()?
            } else if scale != 1.0 {
                flat.mul(&flat.scalar_like(scale))?
            } else {
                flat
            });
        }
        if counted {
            parts.push(Tensor::new([scale]).cast(work)?.to(first.device())?);
        }
        let send = concat_all(parts)?;
        let summed = self.comm.all_reduce_on_device(&send, ReduceOp::Sum)?;
        let mut sizes: Vec<i64> = inputs.iter().map(|t| t.shape().num_elements() as i64).collect();
        if counted {
            sizes.push(1);
        }
        let mut pieces = summed.split(&sizes, 0)?;
        let total = if counted {
            // One element read back: the division needs the summed count on the host.
            pieces
                .pop()
                .map_or(Ok(0.0), |t| t.cast(DType::F64)?.to_vec::<f64>().map(|v| v[0]))?
        } else {
            1.0
        };
        let divisor = self.divisor(total)?;
        pieces
            .into_iter()
            .zip(inputs)
            .map(|(piece, t)| {
                let piece = if divisor == 1.0 {
                    piece
                } else {
                    piece.div(&piece.scalar_like(divisor))?
                };
                let dims: Vec<i64> = t.dims().iter().map(|&d| d as i64).collect();
                piece.reshape(&dims)?.cast(dtype)
            })
            .collect()
    }
}

/// Most tensors one `concat` joins here: the GPU's concat kernel takes up to eight, and
/// more would send the whole bucket through host memory.
const CONCAT_FAN_IN: usize = 8;

/// The rank-1 `parts` end to end, joined at most [`CONCAT_FAN_IN`] at a time.
fn concat_all(mut parts: Vec<Tensor>) -> Result<Tensor> {
    while parts.len() > 1 {
        parts = parts
            .chunks(CONCAT_FAN_IN)
            .map(|chunk| match chunk {
                [one] => Ok(one.clone()),
                _ => Tensor::concat(&chunk.iter().collect::<Vec<_>>(), 0),
            })
            .collect::<Result<_>>()?;
    }
    parts
        .pop()
        .ok_or_else(|| Error::invalid("all_reduce_gradients", "an empty bucket"))
}

#[cfg(test)]
mod tests {
    use crate::buckets::AllReduceBucket;
    use crate::{Communicator, ReduceOp, Weighting};
    use ferroflow_tensor_core::{CustomOp, DType, Data, Device, Error, Result, Tensor};
    use std::sync::Arc;

    /// `size` workers holding the same values, in one process: a sum is the value times the
    /// size, on the host and "on the device" (the CPU stands in for one) alike.
    #[derive(Debug)]
    struct Replicated {
        size: usize,
    }

    impl Communicator for Replicated {
        fn rank(&self) -> usize {
            0
        }
        fn size(&self) -> usize {
            self.size
        }
        fn barrier(&self) -> Result<()> {
            Ok(())
        }
        fn all_reduce_f32(&self, send: &[f32], recv: &mut [f32], op: ReduceOp) -> Result<()> {
            assert_eq!(op, ReduceOp::Sum);
            recv.iter_mut().zip(send).for_each(|(r, s)| *r = s * self.size as f32);
            Ok(())
        }
        fn all_reduce_f64(&self, send: &[f64], recv: &mut [f64], op: ReduceOp) -> Result<()> {
            assert_eq!(op, ReduceOp::Sum);
            recv.iter_mut().zip(send).for_each(|(r, s)| *r = s * self.size as f64);
            Ok(())
        }
        fn broadcast_bytes(&self, _buf: &mut [u8], _root: usize) -> Result<()> {
            Ok(())
        }
        fn abort(&self, code: i32) -> ! {
            std::process::exit(code)
        }
        fn reduces_on(&self, device: Device) -> bool {
            device == Device::Cpu
        }
        fn all_reduce_on_device(&self, t: &Tensor, op: ReduceOp) -> Result<Tensor> {
            assert_eq!((op, t.rank()), (ReduceOp::Sum, 1));
            t.mul(&t.scalar_like(self.size as f64))
        }
    }

    /// Gradient buckets: three of assorted shapes (one NaN when asked), a single gradient,
    /// and eleven with an empty one among them (more than one concat joins).
    fn buckets(dtype: DType, nan: bool) -> Vec<Vec<Tensor>> {
        let values = |n: usize, k: f64| -> Vec<f64> { (0..n).map(|i| ((i as f64 + k) * 0.731).sin() / 3.0).collect() };
        let mut first = values(6, 0.5);
        if nan {
            first[2] = f64::NAN;
        }
        let tensor = |v: Vec<f64>, dims: &[usize]| Tensor::from_vec(v, dims).and_then(|t| t.cast(dtype)).unwrap();
        let three = vec![
            tensor(first, &[2, 3]),
            tensor(values(1, 1.5), &[]),
            tensor(values(300, 2.5), &[100, 3]),
        ];
        let one = vec![tensor(values(40, 3.5), &[8, 5])];
        let eleven = (0..11)
            .map(|i| match i {
                4 => tensor(Vec::new(), &[0, 3]),
                _ => tensor(values(7 + i, i as f64), &[7 + i]),
            })
            .collect();
        vec![three, one, eleven]
    }

    fn host(op: &AllReduceBucket, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let datas: Vec<&Data> = inputs.iter().map(|t| t.data()).collect::<Result<_>>()?;
        Ok(op.compute(&datas)?.into_iter().map(Tensor::from_data).collect())
    }

    #[test]
    fn a_bucket_reduced_on_the_device_gives_the_host_paths_bits() {
        let weightings = [
            Weighting::Equal,
            Weighting::Samples(3),
            Weighting::Samples(0),
            Weighting::Share(0.3),
            Weighting::Share(0.0),
        ];
        for dtype in [DType::F32, DType::F64] {
            for weighting in weightings {
                for sum in [false, true] {
                    let op = AllReduceBucket {
                        comm: Arc::new(Replicated { size: 3 }),
                        weighting,
                        sum,
                    };
                    let nan = matches!(weighting, Weighting::Share(f) if f == 0.0);
                    for inputs in buckets(dtype, nan) {
                        let refs: Vec<&Tensor> = inputs.iter().collect();
                        let what = format!("{dtype:?} {weighting:?} sum={sum} {} gradients", inputs.len());
                        let on_device = op.compute_on_device(Device::Cpu, &refs).expect("reduces on the CPU");
                        match (host(&op, &inputs), on_device) {
                            (Ok(want), Ok(got)) => {
                                for ((w, g), t) in want.iter().zip(&got).zip(&inputs) {
                                    assert_eq!((g.dtype(), g.dims()), (t.dtype(), t.dims()), "{what}");
                                    let bits = |x: &Tensor| -> Vec<u64> {
                                        x.cast(DType::F64)
                                            .unwrap()
                                            .to_vec::<f64>()
                                            .unwrap()
                                            .iter()
                                            .map(|v| v.to_bits())
                                            .collect()
                                    };
                                    assert_eq!(bits(g), bits(w), "{what}");
                                }
                            }
                            (Err(want), Err(got)) => assert_eq!(got.to_string(), want.to_string(), "{what}"),
                            (want, got) => panic!("{what}: host {want:?}, device {got:?}"),
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn transports_that_read_host_memory_leave_device_buckets_to_the_host_kernel() {
        let op = AllReduceBucket {
            comm: Arc::new(crate::LocalCommunicator::new()),
            weighting: Weighting::Equal,
            sum: false,
        };
        let x = Tensor::new([1.0f32]);
        assert!(op.compute_on_device(Device::Cpu, &[&x]).is_none());
        let err: Error = crate::LocalCommunicator::new()
            .all_reduce_on_device(&x, ReduceOp::Sum)
            .unwrap_err();
        assert!(err.to_string().contains("does not reduce memory on"), "{err}");
    }
}
