//! `reduce_sum` and `reduce_mean` over any axes of float tensors: one block per output
//! element, the block's threads striding over the reduced elements and summing in double
//! (so float32 sums are at least as close to exact as TensorFlow's), then a tree in shared
//! memory.

use super::buffer::{driver_error, CudaBuffer};
use super::elementwise::{kernel_name, MAX_RANK};
use super::runtime::{KernelKey, Runtime};
use crate::{DType, ReduceKind, Result};
use cudarc::driver::{DeviceRepr, LaunchConfig, PushKernelArg};

/// Threads per block (a power of two: the tree halves it).
const THREADS: u32 = 256;

/// Kept and reduced axes with the input's strides, laid out as the CUDA `struct Reduction`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct Reduction {
    kept_rank: u64,
    red_rank: u64,
    red_count: u64,
    kept_dims: [u64; MAX_RANK],
    kept_strides: [i64; MAX_RANK],
    red_dims: [u64; MAX_RANK],
    red_strides: [i64; MAX_RANK],
}

// SAFETY: plain `repr(C)` integers, the same layout as the CUDA struct.
unsafe impl DeviceRepr for Reduction {}

impl Reduction {
    /// `dims` reduced over the sorted, distinct `axes`; `None` above [`MAX_RANK`].
    fn new(dims: &[usize], axes: &[usize]) -> Option<Reduction> {
        if dims.len() > MAX_RANK {
            return None;
        }
        let mut g = Reduction::default();
        let mut stride = 1i64;
        let mut strides = [0i64; MAX_RANK];
        for d in (0..dims.len()).rev() {
            strides[d] = stride;
            stride *= dims[d] as i64;
        }
        for (d, &n) in dims.iter().enumerate() {
            if axes.contains(&d) {
                g.red_dims[g.red_rank as usize] = n as u64;
                g.red_strides[g.red_rank as usize] = strides[d];
                g.red_rank += 1;
            } else {
                g.kept_dims[g.kept_rank as usize] = n as u64;
                g.kept_strides[g.kept_rank as usize] = strides[d];
                g.kept_rank += 1;
            }
        }
        g.red_count = axes.iter().map(|&a| dims[a] as u64).product();
        Some(g)
    }
}

/// Sum or mean of `x` (dims `dims`) over `axes` into `outputs` elements; `None` for other
/// kinds and dtypes, which stay on the host.
pub(crate) fn reduce(
    rt: &Runtime,
    kind: ReduceKind,
    dtype: DType,
    x: &CudaBuffer,
    dims: &[usize],
    axes: &[usize],
    outputs: usize,
) -> Option<Result<CudaBuffer>> {
    let mean = match kind {
        ReduceKind::Sum => false,
        ReduceKind::Mean => true,
        _ => return None,
    };
    let t = match dtype {
        DType::F32 => "float",
        DType::F64 => "double",
        _ => return None,
    };
    let g = Reduction::new(dims, axes)?;
    let key: KernelKey = ("reduce", kind.name(), 0, dtype);
    Some((|| {
        let src = || {
            let name = kernel_name(key);
            let src = format!(
                r#"
struct Reduction {{
    unsigned long long kept_rank, red_rank, red_count;
    unsigned long long kept_dims[8]; long long kept_strides[8];
    unsigned long long red_dims[8]; long long red_strides[8];
}};
extern "C" __global__ void {name}(const {t}* x, {t}* out, unsigned long long outputs, Reduction g) {{
    __shared__ double part[{THREADS}];
    for (unsigned long long o = blockIdx.x; o < outputs; o += gridDim.x) {{
        unsigned long long rem = o; long long base = 0;
        for (int d = (int)g.kept_rank - 1; d >= 0; --d) {{
            unsigned long long c = rem % g.kept_dims[d]; rem /= g.kept_dims[d];
            base += (long long)c * g.kept_strides[d];
        }}
        double acc = 0.0;
        for (unsigned long long r = threadIdx.x; r < g.red_count; r += blockDim.x) {{
            unsigned long long q = r; long long off = base;
            for (int d = (int)g.red_rank - 1; d >= 0; --d) {{
                unsigned long long c = q % g.red_dims[d]; q /= g.red_dims[d];
                off += (long long)c * g.red_strides[d];
            }}
            acc += (double)x[off];
        }}
        part[threadIdx.x] = acc;
        __syncthreads();
        for (unsigned int s = blockDim.x / 2; s > 0; s >>= 1) {{
            if (threadIdx.x < s) part[threadIdx.x] += part[threadIdx.x + s];
            __syncthreads();
        }}
        if (threadIdx.x == 0) out[o] = ({t})({mean} ? part[0] / (double)g.red_count : part[0]);
        __syncthreads();
    }}
}}
"#
            );
            (name, src)
        };
        let op = kind.name();
        let f = rt.kernel(key, src).map_err(|e| driver_error(op, rt, e))?;
        let mut y = CudaBuffer::uninit(rt, op, dtype, outputs)?;
        if outputs == 0 {
            return Ok(y);
        }
        let n = outputs as u64;
        let mut l = rt.stream.launch_builder(&f);
        x.arg(&mut l);
        y.arg_mut(&mut l);
        l.arg(&n).arg(&g);
        let cfg = LaunchConfig {
            grid_dim: (outputs.min(65_535) as u32, 1, 1),
            block_dim: (THREADS, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: every offset the geometry produces lies inside `x` (dense, `dims`); the
        // kernel writes `outputs` elements of `out`.
        unsafe { l.launch(cfg) }.map_err(|e| driver_error(op, rt, e))?;
        Ok(y)
    })())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduction_geometry_splits_kept_and_reduced_axes() {
        let g = Reduction::new(&[2, 3, 4], &[0, 2]).unwrap();
        assert_eq!((g.kept_rank, g.red_rank, g.red_count), (1, 2, 8));
        assert_eq!((g.kept_dims[0], g.kept_strides[0]), (3, 4));
        assert_eq!(
            (&g.red_dims[..2], &g.red_strides[..2]),
            (&[2u64, 4][..], &[12i64, 1][..])
        );
    }
}
