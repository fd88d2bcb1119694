//! NHWC 2-D convolution and pooling kernels, forward and backward, with
//! TensorFlow's exact semantics.
//!
//! # Layout
//!
//! Every buffer is a contiguous row-major slice:
//!
//! * input and input gradients: NHWC `[n, h, w, c_in]`;
//! * filters and filter gradients: HWIO `[kh, kw, c_in, c_out]`;
//! * conv outputs and their gradients: NHWC `[n, oh, ow, c_out]`;
//! * pool outputs and their gradients: NHWC `[n, oh, ow, c_in]` (pools keep
//!   the channel count).
//!
//! The spatial geometry (output size and padding for `SAME` / `VALID`,
//! strides, dilations) is computed once by [`Conv2dGeometry`], which also
//! rejects anything that would make a kernel index out of bounds. `SAME`
//! padding follows TensorFlow: `out = ceil(in / stride)`, the total padding is
//! `max((out - 1) * stride + ek - in, 0)` with `ek = (k - 1) * dilation + 1`,
//! and the odd unit goes at the end (bottom / right).
//!
//! # Why im2col
//!
//! Convolution is lowered to matrix multiplication: the receptive fields of a
//! block of output rows are gathered ("im2col") into a `[rows * ow, kh*kw*c_in]`
//! matrix whose column order `(ky, kx, ci)` is exactly the row order of the
//! HWIO filter seen as a `[kh*kw*c_in, c_out]` matrix. One serial GEMM
//! (matmul's [`gemm_serial`](crate::kernels::matmul::gemm_serial)) then writes the NHWC output block in place, because NHWC output rows
//! are exactly the rows of the `[n*oh*ow, c_out]` result. The gather costs
//! `O(out * k)` memory traffic against `O(out * k * c_out)` multiply-adds,
//! and the GEMM runs at close to peak, which beats direct loops for all but
//! the tiniest shapes. Blocks hold about a quarter million im2col elements
//! (but at least a few hundred GEMM rows, to amortise packing the filter),
//! so memory use stays small however large the batch. A 1x1, stride-1
//! convolution skips the gather entirely: the input already is the im2col
//! matrix.
//!
//! * forward: `out_block = cols_block · filter`;
//! * input gradient: `dcols_block = grad_block · filterᵀ`, then "col2im"
//!   scatters (adds) it back into the input gradient;
//! * filter gradient: `dfilter = Σ_blocks cols_blockᵀ · grad_block`.
//!
//! # Parallelism and determinism
//!
//! Large problems (about a quarter million multiply-adds or more) run on the
//! rayon pool; small ones stay on the calling thread. Blocking depends only
//! on the geometry, never on the thread count or timing, and no reduction is
//! ever split in a timing-dependent way:
//!
//! * forward blocks write disjoint output rows;
//! * input-gradient blocks are runs of whole images (disjoint scatters) or,
//!   for large images, row blocks of one image whose col2im scatters run
//!   serially in block order;
//! * the filter gradient either sums a geometry-determined number of
//!   partial sums in a fixed order (small filters) or accumulates blocks in
//!   order while splitting each GEMM over disjoint rows of the result;
//! * pooling gradients are parallel over images only.
//!
//! Results are therefore bit-for-bit reproducible run to run, and identical
//! for any number of threads.

mod conv2d;
mod geometry;
mod im2col;
mod pool;
#[cfg(test)]
mod tests;

pub use conv2d::{conv2d, conv2d_backprop_filter, conv2d_backprop_input};
pub use geometry::{Conv2dGeometry, Padding};
pub use pool::{avg_pool2d, avg_pool2d_grad, max_pool2d, max_pool2d_grad, max_pool2d_grad_grad};

use crate::kernels::matmul::GemmFloat;
use core::ops::{AddAssign, Div, Sub};
use rayon::prelude::*;

/// Floating-point element type accepted by the convolution and pooling kernels
/// (implemented for `f32` and `f64`); their products go through matmul's GEMM.
pub trait ConvFloat: GemmFloat + PartialOrd + Sub<Output = Self> + Div<Output = Self> + AddAssign {
    /// Converts a count to this type (used for averaging).
    fn from_usize(n: usize) -> Self;

    /// Whether the value is NaN (max pooling propagates NaNs).
    fn is_nan(self) -> bool;
}

impl ConvFloat for f32 {
    fn from_usize(n: usize) -> Self {
        n as f32
    }

    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
}

impl ConvFloat for f64 {
    fn from_usize(n: usize) -> Self {
        n as f64
    }

    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
}

// Shared by the convolutions and the pools.

/// Work (multiply-adds or element visits) from which kernels go parallel.
const PAR_MIN_WORK: usize = 1 << 18;
/// Target size, in elements, of one im2col block.
pub(super) const IM2COL_TARGET: usize = 1 << 18;
/// Smallest GEMM row count a block aims for (amortises packing the filter).
pub(super) const MIN_GEMM_M: usize = 256;
/// A large problem aims for at least this many blocks (unless that would
/// make blocks shorter than [`MIN_GEMM_M`] rows).
pub(super) const MIN_PAR_BLOCKS: usize = 8;
/// Most partial sums the filter gradient reduces over (and most row ranges
/// each of its GEMMs is split into).
pub(super) const MAX_FILTER_PARTIALS: usize = 8;
/// Element budget for all filter-gradient partial sums together.
pub(super) const FILTER_PARTIAL_BUDGET: usize = 1 << 22;

pub(super) fn is_large(work: usize) -> bool {
    work >= PAR_MIN_WORK
}

pub(super) fn go_parallel(work: usize) -> bool {
    is_large(work) && rayon::current_num_threads() > 1
}

pub(super) fn check_len(got: usize, want: usize, op: &str, what: &str) {
    assert_eq!(
        got, want,
        "{op}: {what} has {got} elements but the geometry expects {want}"
    );
}

/// Valid taps of one window: returns `(k0, k1, base)` such that taps
/// `k0..k1` land at input index `base + k * dil` inside `0..len`.
#[inline]
pub(super) fn tap_range(
    o: usize,
    stride: usize,
    pad: usize,
    dil: usize,
    k: usize,
    len: usize,
) -> (usize, usize, isize) {
    let base = (o * stride) as isize - pad as isize;
    if dil == 1 {
        // Common case without the divisions.
        let k0 = if base >= 0 { 0 } else { base.unsigned_abs() };
        let k1 = if base >= len as isize {
            0
        } else {
            ((len as isize - base) as usize).min(k)
        };
        return (k0.min(k1), k1, base);
    }
    let k0 = if base >= 0 {
        0
    } else {
        base.unsigned_abs().div_ceil(dil)
    };
    let k1 = if base >= len as isize {
        0
    } else {
        ((len as isize - base - 1) as usize / dil + 1).min(k)
    };
    (k0.min(k1), k1, base)
}

#[inline]
pub(super) fn tap_index(base: isize, k: usize, dil: usize) -> usize {
    (base + (k * dil) as isize) as usize
}

/// Runs `f(first_row, block)` over blocks of `rows_per` rows of `row_len`
/// elements each, in parallel when asked.
pub(super) fn for_each_row_block<T, F>(out: &mut [T], row_len: usize, rows_per: usize, parallel: bool, f: F)
where
    T: Send,
    F: Fn(usize, &mut [T]) + Sync,
{
    if out.is_empty() || row_len == 0 {
        return;
    }
    let block = rows_per.max(1) * row_len;
    if parallel {
        out.par_chunks_mut(block)
            .enumerate()
            .for_each(|(i, chunk)| f(i * rows_per, chunk));
    } else {
        for (i, chunk) in out.chunks_mut(block).enumerate() {
            f(i * rows_per, chunk);
        }
    }
}
