//! `matmul` on cuBLAS: one (strided batched) GEMM per op, TF32 off (cuBLAS' default math
//! mode), so float32 products keep float32 precision as TensorFlow's do.
//!
//! cuBLAS is column-major and our buffers are row-major: a row-major `C = A·B` is the
//! column-major `Cᵀ = Bᵀ·Aᵀ`, so the call passes `B` first and swaps `m` and `n`.

use super::buffer::{driver_error, CudaBuffer, Slice};
use super::runtime::Runtime;
use crate::{DType, Result};
use cudarc::cublas::sys::cublasOperation_t as Trans;
use cudarc::cublas::{Gemm, GemmConfig, StridedBatchedConfig};

/// One operand: its buffer and dims (rank ≥ 2), transposed or not.
pub(crate) struct Operand<'a> {
    pub buffer: &'a CudaBuffer,
    pub dims: &'a [usize],
    pub transpose: bool,
}

impl Operand<'_> {
    /// Rows and columns of the stored matrices (before the transpose flag).
    fn stored(&self) -> (usize, usize) {
        let r = self.dims.len();
        (self.dims[r - 2], self.dims[r - 1])
    }

    /// Number of matrices in the batch.
    fn batch(&self) -> usize {
        self.dims[..self.dims.len() - 2].iter().product()
    }
}

/// `a · b` with the batch of `out_dims`; `None` (host fallback) for batch broadcasting other
/// than "one side has a single matrix", for sizes past cuBLAS' 32-bit arguments, for an
/// empty inner dimension, and for integer dtypes.
pub(crate) fn matmul(
    rt: &Runtime,
    dtype: DType,
    a: Operand<'_>,
    b: Operand<'_>,
    out_dims: &[usize],
) -> Option<Result<CudaBuffer>> {
    if !dtype.is_float() {
        return None;
    }
    let r = out_dims.len();
    let (m, n) = (out_dims[r - 2], out_dims[r - 1]);
    let k = if a.transpose { a.stored().0 } else { a.stored().1 };
    let batch: usize = out_dims[..r - 2].iter().product();
    let (ba, bb) = (a.batch(), b.batch());
    if !(ba == batch || ba == 1) || !(bb == batch || bb == 1) {
        return None;
    }
    let fits = |v: usize| i32::try_from(v).is_ok();
    // An empty inner dimension (a product of zeros) stays on the host: cuBLAS is not asked
    // to fill `C` without reading `A` and `B`.
    if k == 0 || ![m, n, k, batch].into_iter().all(fits) {
        return None;
    }
    Some((|| {
        let mut c = CudaBuffer::uninit(rt, "matmul", dtype, batch * m * n)?;
        if m * n == 0 {
            return Ok(c);
        }
        let op = |t: bool| if t { Trans::CUBLAS_OP_T } else { Trans::CUBLAS_OP_N };
        let (lda, ldb) = (b.stored().1 as i32, a.stored().1 as i32);
        let stride = |o: &Operand<'_>, own: usize| if o.batch() == 1 { 0 } else { own as i64 };
        let blas = rt.blas();
        macro_rules! gemm {
            ($sa:expr, $sb:expr, $sc:expr, $one:expr, $zero:expr) => {{
                let gemm = GemmConfig {
                    transa: op(b.transpose),
                    transb: op(a.transpose),
                    m: n as i32,
                    n: m as i32,
                    k: k as i32,
                    alpha: $one,
                    lda,
                    ldb,
                    beta: $zero,
                    ldc: n as i32,
                };
                // SAFETY: the leading dimensions and strides describe the stored row-major
                // operands exactly (shape inference checked `k`), and `C` holds
                // `batch·m·n` elements.
                unsafe {
                    if batch == 1 {
                        blas.gemm(gemm, $sb, $sa, $sc)
                    } else {
                        let cfg = StridedBatchedConfig {
                            gemm,
                            batch_size: batch as i32,
                            stride_a: stride(&b, k * n),
                            stride_b: stride(&a, m * k),
                            stride_c: (m * n) as i64,
                        };
                        blas.gemm_strided_batched(cfg, $sb, $sa, $sc)
                    }
                }
            }};
        }
        let done = match (&*a.buffer.slice, &*b.buffer.slice, &mut *c.slice) {
            (Slice::F32(sa), Slice::F32(sb), Slice::F32(sc)) => gemm!(sa, sb, sc, 1.0f32, 0.0f32),
            (Slice::F64(sa), Slice::F64(sb), Slice::F64(sc)) => gemm!(sa, sb, sc, 1.0f64, 0.0f64),
            _ => unreachable!("float dtypes checked above; inference made both inputs alike"),
        };
        done.map_err(|e| driver_error("matmul", rt, e))?;
        Ok(c)
    })())
}
