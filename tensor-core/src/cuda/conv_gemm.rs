//! `conv2d` and its filter gradient as one GEMM on cuBLAS: a generated kernel writes the
//! input's patches matrix `P` (im2col: one row per output position `(b, oy, ox)`, one
//! column per window tap `(ky, kx, c_in)`, zeros where the window hangs over the padding),
//! and then
//!
//! * the output is `P · F`, with the HWIO filter read as a `[kh·kw·c_in, c_out]` matrix and
//!   the `[n·oh·ow, c_out]` result already NHWC;
//! * the filter gradient is `Pᵀ · dY`, with the upstream gradient read as
//!   `[n·oh·ow, c_out]` and the result already HWIO.
//!
//! Small windows, few output channels and patch matrices past [`MAX_PATCH_BYTES`] keep the
//! direct kernels of [`super::window`], which need no scratch memory and one launch; so does
//! a GEMM path that fails (its scratch memory not granted, say). The input gradient keeps its
//! direct (gather) kernel too. The GEMM sums in the element type, as cuBLAS and TensorFlow's
//! kernels do; the direct kernels sum in double.

use super::blas::{self, Operand};
use super::buffer::CudaBuffer;
use super::kernel::Kernel;
use super::launch::{Arg, Launch};
use super::runtime::Runtime;
use super::window::{self, Window, WindowOp};
use crate::kernels::conv::Conv2dGeometry;
use crate::{DType, Error, Op, Result, Tensor};

/// Largest patches matrix, in bytes, the GEMM path makes.
pub(crate) const MAX_PATCH_BYTES: usize = 256 << 20;

/// Smallest window depth (`kh·kw·c_in`, the GEMM's inner dimension) and output channel
/// count for the GEMM path: below them a product is too thin for cuBLAS to beat the direct
/// kernel's single launch.
const MIN_DEPTH: usize = 16;
const MIN_CHANNELS: usize = 8;

/// Which product a convolution op is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Product {
    /// `conv2d(x, filter)`: `P · F`.
    Forward,
    /// `conv2d_backprop_filter(x, dy)`: `Pᵀ · dY`.
    Filter,
}

/// A convolution planned as patches and a GEMM.
#[derive(Debug, Clone)]
pub(crate) struct ConvGemm {
    pub(crate) product: Product,
    pub(crate) geometry: Conv2dGeometry,
    pub(crate) dtype: DType,
}

/// The GEMM plan of `op` on `inputs` (`x` first), when it is a float `conv2d` or filter
/// gradient that the GEMM path takes; `None` leaves it to the direct kernels.
pub(crate) fn plan(op: &Op, inputs: &[&Tensor]) -> Option<ConvGemm> {
    let (x, other) = (inputs.first()?, inputs.get(1)?);
    plan_dims(op, x.dtype(), x.dims(), other.dims())
}

/// [`plan`] from the dtype and the dims of `x` and the op's second input.
fn plan_dims(op: &Op, dtype: DType, x: &[usize], other: &[usize]) -> Option<ConvGemm> {
    if !dtype.is_float() {
        return None;
    }
    let (product, geometry) = match window::geometry(op, &[x, other])? {
        (WindowOp::Conv, g) => (Product::Forward, g),
        (WindowOp::ConvFilter, g) => (Product::Filter, g),
        _ => return None,
    };
    let plan = ConvGemm {
        product,
        geometry,
        dtype,
    };
    let (rows, depth, channels) = plan.dims();
    let fits = |v: usize| i32::try_from(v).is_ok();
    let bytes = rows.checked_mul(depth)?.checked_mul(dtype.size_of())?;
    let takes = depth >= MIN_DEPTH
        && channels >= MIN_CHANNELS
        && rows > 0
        && bytes <= MAX_PATCH_BYTES
        && [rows, depth, channels].into_iter().all(fits);
    takes.then_some(plan)
}

impl ConvGemm {
    /// The GEMM's dimensions: output positions `n·oh·ow`, window depth `kh·kw·c_in`,
    /// output channels.
    pub(crate) fn dims(&self) -> (usize, usize, usize) {
        let g = &self.geometry;
        (g.n * g.oh * g.ow, g.kh * g.kw * g.c_in, g.c_out)
    }

    /// Whether the patches matrix is `x` itself (a 1×1 window at stride 1 over no padding):
    /// the GEMM then reads `x`, and no patches are written.
    pub(crate) fn patches_are_the_input(&self) -> bool {
        let g = &self.geometry;
        (g.kh, g.kw, g.sh, g.sw, g.pad_top, g.pad_left) == (1, 1, 1, 1, 0, 0) && (g.oh, g.ow) == (g.h, g.w)
    }

    /// The launch writing the `[rows, depth]` patches matrix of its input 0 (`x`).
    pub(crate) fn patches(&self) -> Launch {
        let (rows, depth, _) = self.dims();
        let n = rows * depth;
        let args = smallvec::smallvec![
            Arg::Input(0),
            Arg::Output(0),
            Arg::U64(n as u64),
            Arg::Window(Window::from(&self.geometry))
        ];
        Launch::elementwise(Kernel::Window(WindowOp::Patches, self.dtype), args, (self.dtype, n))
    }

    /// Runs the plan on `rt`'s GPU: `x` and the op's second input (the filter, or the
    /// upstream gradient), returning the output's memory.
    pub(crate) fn run(&self, rt: &Runtime, x: &CudaBuffer, other: &CudaBuffer) -> Result<CudaBuffer> {
        let op = match self.product {
            Product::Forward => "conv2d",
            Product::Filter => "conv2d_backprop_filter",
        };
        let written;
        let patches = if self.patches_are_the_input() {
            x
        } else {
            written = self
                .patches()
                .run(rt, op, &[x])?
                .into_iter()
                .next()
                .ok_or_else(|| Error::invalid(op, "the patches kernel gave no output"))?;
            &written
        };
        let (rows, depth, channels) = self.dims();
        let patch_dims = [rows, depth];
        let p = |transpose| Operand {
            buffer: patches,
            dims: &patch_dims,
            transpose,
        };
        let product = match self.product {
            Product::Forward => blas::matmul(
                rt,
                self.dtype,
                p(false),
                Operand {
                    buffer: other,
                    dims: &[depth, channels],
                    transpose: false,
                },
                &[rows, channels],
            ),
            Product::Filter => blas::matmul(
                rt,
                self.dtype,
                p(true),
                Operand {
                    buffer: other,
                    dims: &[rows, channels],
                    transpose: false,
                },
                &[depth, channels],
            ),
        };
        product.unwrap_or_else(|| Err(Error::invalid(op, "cuBLAS refused a product the plan checked")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cuda::emulate;
    use crate::cuda::kernel_tests::assert_close;
    use crate::dispatch::host_compute;
    use crate::{MatMul, Padding, TensorSpec};

    fn input(dims: &[usize], dtype: DType, seed: f64) -> Tensor {
        let n: usize = dims.iter().product();
        let v: Vec<f64> = (0..n).map(|i| ((i as f64 + seed) * 0.618).sin()).collect();
        Tensor::from_vec(v, dims).unwrap().cast(dtype).unwrap()
    }

    /// The patches matrix the kernel writes, on the emulator.
    fn patches(plan: &ConvGemm, x: &Tensor) -> Tensor {
        let (rows, depth, _) = plan.dims();
        let spec = TensorSpec::new(plan.dtype, vec![rows, depth]);
        Tensor::from_data(emulate::run(&plan.patches(), &[x], &[spec]).remove(0))
    }

    /// Input dims, filter dims, strides, dilations, padding.
    type Case = ([usize; 4], [usize; 4], [usize; 2], [usize; 2], Padding);

    /// Every stride, dilation and padding case: the patches times the filter (the product
    /// cuBLAS computes, here on the CPU) is the CPU's conv2d, and the patches' transpose
    /// times the upstream gradient is its filter gradient.
    #[test]
    fn patches_times_the_filter_is_the_convolution() {
        let cases: [Case; 6] = [
            ([2, 7, 6, 3], [3, 3, 3, 8], [1, 1], [1, 1], Padding::Same),
            ([2, 7, 6, 3], [3, 3, 3, 8], [1, 1], [1, 1], Padding::Valid),
            ([1, 9, 8, 2], [3, 3, 2, 16], [2, 3], [1, 1], Padding::Same),
            ([3, 8, 8, 4], [2, 2, 4, 8], [1, 1], [2, 2], Padding::Same),
            ([1, 6, 5, 16], [1, 1, 16, 8], [2, 2], [1, 1], Padding::Valid),
            ([2, 5, 4, 16], [1, 1, 16, 8], [1, 1], [1, 1], Padding::Same),
        ];
        emulate::prepare(&[
            Kernel::Window(WindowOp::Patches, DType::F32),
            Kernel::Window(WindowOp::Patches, DType::F64),
        ]);
        for dtype in [DType::F32, DType::F64] {
            for (xd, fd, strides, dilations, padding) in cases {
                let what = format!("{dtype:?} x{xd:?} f{fd:?} s{strides:?} d{dilations:?} {padding:?}");
                let (x, f) = (input(&xd, dtype, 0.5), input(&fd, dtype, 1.5));
                let conv = Op::Conv2D {
                    strides,
                    dilations,
                    padding,
                };
                let plan = super::plan(&conv, &[&x, &f]).unwrap_or_else(|| panic!("{what}: not planned"));
                let p = patches(&plan, &x);
                // A 1×1 window at stride 1 reads `x` as its patches (the last case only).
                assert_eq!(
                    plan.patches_are_the_input(),
                    fd[..2] == [1, 1] && strides == [1, 1],
                    "{what}"
                );
                if plan.patches_are_the_input() {
                    assert_eq!(
                        p.cast(DType::F64).unwrap().to_vec::<f64>().unwrap(),
                        x.cast(DType::F64).unwrap().to_vec::<f64>().unwrap(),
                        "{what}"
                    );
                }
                let (rows, depth, channels) = plan.dims();
                let want = host_compute(&conv, &[&x, &f]).unwrap().remove(0);
                let got = p
                    .matmul(&f.reshape(&[depth as i64, channels as i64]).unwrap())
                    .unwrap()
                    .reshape(&want.dims().iter().map(|&d| d as i64).collect::<Vec<_>>())
                    .unwrap();
                assert_close(
                    &format!("{what} forward"),
                    got.data().unwrap(),
                    want.data().unwrap(),
                    1e-5,
                );

                let up = input(want.dims(), dtype, 2.5);
                let filter_grad = Op::Conv2DBackpropFilter {
                    filter_shape: fd,
                    strides,
                    dilations,
                    padding,
                };
                let plan = super::plan(&filter_grad, &[&x, &up]).unwrap_or_else(|| panic!("{what}: not planned"));
                assert_eq!(plan.product, Product::Filter);
                let want = host_compute(&filter_grad, &[&x, &up]).unwrap().remove(0);
                let got = patches(&plan, &x)
                    .matmul_with(
                        &up.reshape(&[rows as i64, channels as i64]).unwrap(),
                        MatMul::new().transpose_a(),
                    )
                    .unwrap()
                    .reshape(&fd.map(|d| d as i64))
                    .unwrap();
                assert_close(
                    &format!("{what} filter"),
                    got.data().unwrap(),
                    want.data().unwrap(),
                    1e-5,
                );
            }
        }
    }

    #[test]
    fn thin_huge_and_integer_convolutions_keep_the_direct_kernels() {
        let conv = Op::Conv2D {
            strides: [1, 1],
            dilations: [1, 1],
            padding: Padding::Same,
        };
        let planned = |x: &[usize], f: &[usize], dtype: DType| {
            let (x, f) = (Tensor::zeros(x, dtype).unwrap(), Tensor::zeros(f, dtype).unwrap());
            super::plan(&conv, &[&x, &f]).is_some()
        };
        assert!(planned(&[1, 8, 8, 2], &[3, 3, 2, 8], DType::F32));
        // A 3×3 window over one channel (depth 9), and four output channels: direct.
        assert!(!planned(&[1, 8, 8, 1], &[3, 3, 1, 8], DType::F32));
        assert!(!planned(&[1, 8, 8, 2], &[3, 3, 2, 4], DType::F32));
        assert!(!planned(&[1, 8, 8, 2], &[3, 3, 2, 8], DType::I32));
        assert!(!planned(&[0, 8, 8, 2], &[3, 3, 2, 8], DType::F32));
        // 64 × 256² positions × depth 576 × 4 bytes is 9.7 GB of patches: direct; a batch of
        // one image takes 151 MB and the GEMM.
        let (rows, depth) = (64 * 256 * 256, 3 * 3 * 64);
        assert!(rows * depth * 4 > MAX_PATCH_BYTES && rows / 64 * depth * 4 <= MAX_PATCH_BYTES);
        let (x, f) = ([64, 256, 256, 64], [3, 3, 64, 64]);
        assert!(plan_dims(&conv, DType::F32, &x, &f).is_none());
        let one = plan_dims(&conv, DType::F32, &[1, 256, 256, 64], &f).expect("one image");
        assert_eq!(one.dims(), (rows / 64, depth, 64));
        let x = Tensor::zeros(&[1, 1, 1, 1], DType::F32).unwrap();
        let pool = Op::Pool2D {
            kind: crate::PoolKind::Max,
            ksize: [1, 1],
            strides: [1, 1],
            padding: Padding::Valid,
        };
        assert!(super::plan(&pool, &[&x, &x]).is_none());
    }
}
