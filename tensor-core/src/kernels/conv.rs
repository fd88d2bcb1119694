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
//! HWIO filter seen as a `[kh*kw*c_in, c_out]` matrix. One `matrixmultiply`
//! GEMM then writes the NHWC output block in place, because NHWC output rows
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

use core::ops::{Add, AddAssign, Div, Mul, Sub};
use rayon::prelude::*;

/// Floating-point element type accepted by the convolution and pooling
/// kernels (implemented for `f32` and `f64`).
pub trait ConvFloat:
    Copy
    + Send
    + Sync
    + Default
    + PartialOrd
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + AddAssign
{
    /// Converts a count to this type (used for averaging).
    fn from_usize(n: usize) -> Self;

    /// Whether the value is NaN (max pooling propagates NaNs).
    fn is_nan(self) -> bool;

    /// General matrix multiply `C = alpha * A · B + beta * C` with arbitrary
    /// strides, forwarded to `matrixmultiply::sgemm` / `dgemm`; `A` is
    /// `m x k`, `B` is `k x n`, `C` is `m x n`. When `beta` is zero, `C` is
    /// not read.
    ///
    /// # Safety
    ///
    /// Same contract as `matrixmultiply::sgemm`: every element addressed
    /// through the pointers and strides must be valid (for reads of `a`,
    /// `b`, and reads and writes of `c`), and `c` must not alias `a` or `b`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    );
}

impl ConvFloat for f32 {
    fn from_usize(n: usize) -> Self {
        n as f32
    }

    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }

    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    ) {
        // SAFETY: forwarded verbatim; the caller upholds sgemm's contract.
        unsafe { matrixmultiply::sgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc) }
    }
}

impl ConvFloat for f64 {
    fn from_usize(n: usize) -> Self {
        n as f64
    }

    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }

    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    ) {
        // SAFETY: forwarded verbatim; the caller upholds dgemm's contract.
        unsafe { matrixmultiply::dgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc) }
    }
}

/// Padding scheme of a convolution or pooling window, as in TensorFlow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Padding {
    /// Pad so that `out = ceil(in / stride)`; the odd padding unit goes at
    /// the end (bottom / right).
    Same,
    /// No padding: only windows that fit entirely inside the input,
    /// `out = ceil((in - ek + 1) / stride)` (0 when `in < ek`).
    Valid,
}

/// Output size and padding of one spatial dimension, TensorFlow style.
///
/// Returns `(out, pad_before, pad_after)` for an input of length `input`, a
/// window of `kernel` taps spaced `dilation` apart and the given stride.
///
/// # Errors
///
/// Returns a message when `kernel`, `stride` or `dilation` is zero, or the
/// effective window size overflows.
pub fn conv_output_dim(
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    padding: Padding,
) -> Result<(usize, usize, usize), String> {
    if kernel == 0 {
        return Err("window size must be positive".to_string());
    }
    if stride == 0 {
        return Err("strides must be positive".to_string());
    }
    if dilation == 0 {
        return Err("dilations must be positive".to_string());
    }
    let ek = (kernel - 1)
        .checked_mul(dilation)
        .and_then(|v| v.checked_add(1))
        .ok_or_else(|| "effective window size overflows".to_string())?;
    match padding {
        Padding::Valid => {
            let out = if input < ek { 0 } else { (input - ek) / stride + 1 };
            Ok((out, 0, 0))
        }
        Padding::Same => {
            let out = input.div_ceil(stride);
            if out == 0 {
                return Ok((0, 0, 0));
            }
            // (out - 1) * stride < input, so this cannot overflow usize
            // unless `ek` is huge; check anyway.
            let needed = ((out - 1) * stride)
                .checked_add(ek)
                .ok_or_else(|| "padding size overflows".to_string())?;
            let total = needed.saturating_sub(input);
            Ok((out, total / 2, total - total / 2))
        }
    }
}

/// Complete geometry of a 2-D convolution or pooling op (NHWC data, HWIO
/// filters). Build it with [`Conv2dGeometry::new`] or
/// [`Conv2dGeometry::pool`]; the kernels trust it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Conv2dGeometry {
    /// Batch size.
    pub n: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Input channels.
    pub c_in: usize,
    /// Filter (window) height.
    pub kh: usize,
    /// Filter (window) width.
    pub kw: usize,
    /// Output channels of a convolution (pools use `c_in` and ignore this).
    pub c_out: usize,
    /// Vertical stride.
    pub sh: usize,
    /// Horizontal stride.
    pub sw: usize,
    /// Vertical dilation.
    pub dh: usize,
    /// Horizontal dilation.
    pub dw: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
    /// Rows of implicit zero (or ignored) padding above the input.
    pub pad_top: usize,
    /// Columns of implicit zero (or ignored) padding left of the input.
    pub pad_left: usize,
}

/// Largest element count accepted for any buffer (so offsets fit `isize`).
const MAX_ELEMS: usize = isize::MAX as usize;

fn checked_len(dims: &[usize], what: &str) -> Result<usize, String> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&len| len <= MAX_ELEMS)
        .ok_or_else(|| format!("{what} size overflows"))
}

impl Conv2dGeometry {
    /// Geometry of a convolution of an NHWC `input` shape with an HWIO
    /// `filter` shape `[kh, kw, c_in, c_out]`, with `strides` and
    /// `dilations` given as `[vertical, horizontal]`.
    ///
    /// An empty batch, zero channels or a zero-sized output are valid; the
    /// kernels then return empty (or all-zero) results.
    ///
    /// # Errors
    ///
    /// Returns a message for a zero stride, dilation or filter height /
    /// width, for an input channel count that differs from the filter's,
    /// or for sizes that overflow.
    pub fn new(
        input: [usize; 4],
        filter: [usize; 4],
        strides: [usize; 2],
        dilations: [usize; 2],
        padding: Padding,
    ) -> Result<Self, String> {
        let [n, h, w, c_in] = input;
        let [kh, kw, f_in, c_out] = filter;
        if strides.contains(&0) {
            return Err(format!("strides must be positive, got {strides:?}"));
        }
        if dilations.contains(&0) {
            return Err(format!("dilations must be positive, got {dilations:?}"));
        }
        if kh == 0 || kw == 0 {
            return Err(format!(
                "filter height and width must be positive, got filter shape {filter:?}"
            ));
        }
        if f_in != c_in {
            return Err(format!(
                "input depth {c_in} does not match filter input depth {f_in} \
                 (input shape {input:?}, filter shape {filter:?})"
            ));
        }
        let (oh, pad_top, _) = conv_output_dim(h, kh, strides[0], dilations[0], padding)?;
        let (ow, pad_left, _) = conv_output_dim(w, kw, strides[1], dilations[1], padding)?;
        checked_len(&[kh, kw], "window")?;
        checked_len(&input, "input")?;
        checked_len(&filter, "filter")?;
        checked_len(&[n, oh, ow, c_out], "output")?;
        checked_len(&[n, oh, ow, c_in], "pool output")?;
        checked_len(&[oh, ow, kh, kw, c_in], "im2col row block")?;
        Ok(Self {
            n,
            h,
            w,
            c_in,
            kh,
            kw,
            c_out,
            sh: strides[0],
            sw: strides[1],
            dh: dilations[0],
            dw: dilations[1],
            oh,
            ow,
            pad_top,
            pad_left,
        })
    }

    /// Geometry of a 2-D pooling op over an NHWC `input` shape with a
    /// `[kh, kw]` window (no dilation); `c_out` is set to the channel count.
    ///
    /// # Errors
    ///
    /// Returns a message for a zero stride or window size, or for sizes that
    /// overflow.
    pub fn pool(input: [usize; 4], ksize: [usize; 2], strides: [usize; 2], padding: Padding) -> Result<Self, String> {
        let c = input[3];
        Self::new(input, [ksize[0], ksize[1], c, c], strides, [1, 1], padding)
    }

    /// Input shape `[n, h, w, c_in]`.
    pub fn input_shape(&self) -> [usize; 4] {
        [self.n, self.h, self.w, self.c_in]
    }

    /// Filter shape `[kh, kw, c_in, c_out]` (HWIO).
    pub fn filter_shape(&self) -> [usize; 4] {
        [self.kh, self.kw, self.c_in, self.c_out]
    }

    /// Convolution output shape `[n, oh, ow, c_out]`.
    pub fn output_shape(&self) -> [usize; 4] {
        [self.n, self.oh, self.ow, self.c_out]
    }

    /// Pooling output shape `[n, oh, ow, c_in]`.
    pub fn pool_output_shape(&self) -> [usize; 4] {
        [self.n, self.oh, self.ow, self.c_in]
    }

    /// Number of input elements.
    pub fn input_len(&self) -> usize {
        self.n * self.h * self.w * self.c_in
    }

    /// Number of filter elements.
    pub fn filter_len(&self) -> usize {
        self.kh * self.kw * self.c_in * self.c_out
    }

    /// Number of convolution output elements.
    pub fn output_len(&self) -> usize {
        self.n * self.oh * self.ow * self.c_out
    }

    /// Number of pooling output elements.
    pub fn pool_output_len(&self) -> usize {
        self.n * self.oh * self.ow * self.c_in
    }

    /// Rows of padding below the input (TensorFlow puts the odd unit here).
    pub fn pad_bottom(&self) -> usize {
        let needed = self.oh.saturating_sub(1) * self.sh + (self.kh - 1) * self.dh + 1;
        if self.oh == 0 {
            0
        } else {
            needed.saturating_sub(self.h + self.pad_top)
        }
    }

    /// Columns of padding right of the input.
    pub fn pad_right(&self) -> usize {
        let needed = self.ow.saturating_sub(1) * self.sw + (self.kw - 1) * self.dw + 1;
        if self.ow == 0 {
            0
        } else {
            needed.saturating_sub(self.w + self.pad_left)
        }
    }

    /// Length of one im2col row: `kh * kw * c_in`.
    fn k_len(&self) -> usize {
        self.kh * self.kw * self.c_in
    }

    /// Whether the convolution is a plain per-pixel matrix multiply (1x1
    /// filter, unit strides), so the input is its own im2col matrix.
    fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.sh == 1 && self.sw == 1
    }
}

// ---------------------------------------------------------------------------
// Internal helpers
// ---------------------------------------------------------------------------

/// Work (multiply-adds or element visits) from which kernels go parallel.
const PAR_MIN_WORK: usize = 1 << 18;
/// Target size, in elements, of one im2col block.
const IM2COL_TARGET: usize = 1 << 18;
/// Smallest GEMM row count a block aims for (amortises packing the filter).
const MIN_GEMM_M: usize = 256;
/// A large problem aims for at least this many blocks (unless that would
/// make blocks shorter than [`MIN_GEMM_M`] rows).
const MIN_PAR_BLOCKS: usize = 8;
/// Most partial sums the filter gradient reduces over (and most row ranges
/// each of its GEMMs is split into).
const MAX_FILTER_PARTIALS: usize = 8;
/// Element budget for all filter-gradient partial sums together.
const FILTER_PARTIAL_BUDGET: usize = 1 << 22;

fn is_large(work: usize) -> bool {
    work >= PAR_MIN_WORK
}

fn go_parallel(work: usize) -> bool {
    is_large(work) && rayon::current_num_threads() > 1
}

fn check_len(got: usize, want: usize, op: &str, what: &str) {
    assert_eq!(
        got, want,
        "{op}: {what} has {got} elements but the geometry expects {want}"
    );
}

/// Valid taps of one window: returns `(k0, k1, base)` such that taps
/// `k0..k1` land at input index `base + k * dil` inside `0..len`.
#[inline]
fn tap_range(o: usize, stride: usize, pad: usize, dil: usize, k: usize, len: usize) -> (usize, usize, isize) {
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
fn tap_index(base: isize, k: usize, dil: usize) -> usize {
    (base + (k * dil) as isize) as usize
}

/// Rows `(b, oy)` of output per block for the im2col kernels; a function of
/// the geometry only.
fn rows_per_block(g: &Conv2dGeometry, large: bool) -> usize {
    let total_rows = g.n * g.oh;
    let per_row = (g.ow * g.k_len()).max(1);
    let mut rows = IM2COL_TARGET / per_row;
    if large {
        rows = rows.min(total_rows.div_ceil(MIN_PAR_BLOCKS));
    }
    rows = rows.max(MIN_GEMM_M.div_ceil(g.ow.max(1)));
    rows.clamp(1, total_rows.max(1))
}

/// A strided read-only matrix view.
#[derive(Clone, Copy)]
struct Mat<'a, T> {
    data: &'a [T],
    rs: usize,
    cs: usize,
}

/// `c (+)= a · b` for `a: m x k`, `b: k x n`, `c` contiguous row-major
/// `m x n`; bounds are checked before calling into the GEMM.
fn matmul<T: ConvFloat>(m: usize, k: usize, n: usize, a: Mat<'_, T>, b: Mat<'_, T>, c: &mut [T], accumulate: bool) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(c.len() >= m * n, "matmul: output too small");
    if k == 0 {
        if !accumulate {
            c[..m * n].fill(T::default());
        }
        return;
    }
    assert!(
        (m - 1) * a.rs + (k - 1) * a.cs < a.data.len(),
        "matmul: lhs out of bounds"
    );
    assert!(
        (k - 1) * b.rs + (n - 1) * b.cs < b.data.len(),
        "matmul: rhs out of bounds"
    );
    let beta = if accumulate { T::from_usize(1) } else { T::default() };
    // SAFETY: the asserts above keep every addressed element of `a`, `b`
    // and `c` in bounds; `c` is a unique borrow so it aliases neither input;
    // all strides fit `isize` because the slices do.
    unsafe {
        T::gemm(
            m,
            k,
            n,
            T::from_usize(1),
            a.data.as_ptr(),
            a.rs as isize,
            a.cs as isize,
            b.data.as_ptr(),
            b.rs as isize,
            b.cs as isize,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// Zeroes a (usually short or empty) run without a library call.
#[inline]
fn fill_zero<T: ConvFloat>(dst: &mut [T]) {
    if dst.len() > 16 {
        dst.fill(T::default());
    } else {
        for d in dst {
            *d = T::default();
        }
    }
}

/// Copies a (usually short) run without a library call for tiny lengths.
#[inline]
fn copy_run<T: ConvFloat>(dst: &mut [T], src: &[T]) {
    if dst.len() > 16 {
        dst.copy_from_slice(src);
    } else {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = s;
        }
    }
}

/// Valid horizontal taps of every output column: `(kx0, kx1, ix0)` with
/// `ix0` the input column of tap `kx0` (0 when there is no valid tap).
fn x_taps(g: &Conv2dGeometry) -> Vec<(usize, usize, usize)> {
    (0..g.ow)
        .map(|ox| {
            let (kx0, kx1, base) = tap_range(ox, g.sw, g.pad_left, g.dw, g.kw, g.w);
            let ix0 = if kx1 > kx0 { tap_index(base, kx0, g.dw) } else { 0 };
            (kx0, kx1, ix0)
        })
        .collect()
}

/// Gathers the receptive fields of output rows `row0..row0 + nrows` (global
/// `(b, oy)` row index) into `cols`, one `k_len` row per output pixel.
fn im2col_rows<T: ConvFloat>(g: &Conv2dGeometry, input: &[T], row0: usize, nrows: usize, cols: &mut [T]) {
    let c = g.c_in;
    let k_len = g.k_len();
    let krow = g.kw * c;
    let img_len = g.h * g.w * c;
    let row_stride = g.w * c;
    let xt = x_taps(g);
    let rows = cols[..nrows * g.ow * k_len].chunks_exact_mut(g.ow * k_len);
    for (lr, out_row) in rows.enumerate() {
        let r = row0 + lr;
        let (b, oy) = (r / g.oh, r % g.oh);
        let img = &input[b * img_len..][..img_len];
        let (ky0, ky1, ybase) = tap_range(oy, g.sh, g.pad_top, g.dh, g.kh, g.h);
        let iy0 = if ky1 > ky0 { tap_index(ybase, ky0, g.dh) } else { 0 };
        for (dst, &(kx0, kx1, ix0)) in out_row.chunks_exact_mut(k_len).zip(&xt) {
            fill_zero(&mut dst[..ky0 * krow]);
            fill_zero(&mut dst[ky1 * krow..]);
            let taps = &mut dst[ky0 * krow..ky1 * krow];
            let mut src_off = iy0 * row_stride + ix0 * c;
            if kx0 == 0 && kx1 == g.kw && g.dw == 1 {
                // Every horizontal tap is real: one contiguous run per row.
                for drow in taps.chunks_exact_mut(krow) {
                    copy_run(drow, &img[src_off..src_off + krow]);
                    src_off += g.dh * row_stride;
                }
                continue;
            }
            for drow in taps.chunks_exact_mut(krow) {
                fill_zero(&mut drow[..kx0 * c]);
                fill_zero(&mut drow[kx1 * c..]);
                let live = &mut drow[kx0 * c..kx1 * c];
                if g.dw == 1 {
                    copy_run(live, &img[src_off..src_off + live.len()]);
                } else {
                    let mut off = src_off;
                    for d in live.chunks_exact_mut(c) {
                        copy_run(d, &img[off..off + c]);
                        off += g.dw * c;
                    }
                }
                src_off += g.dh * row_stride;
            }
        }
    }
}

/// Adds im2col-layout gradients of output rows `row0..row0 + nrows` back
/// into the input gradient (the adjoint of [`im2col_rows`]).
fn col2im_rows<T: ConvFloat>(g: &Conv2dGeometry, cols: &[T], row0: usize, nrows: usize, dinput: &mut [T]) {
    let c = g.c_in;
    let k_len = g.k_len();
    let krow = g.kw * c;
    let img_len = g.h * g.w * c;
    for lr in 0..nrows {
        let r = row0 + lr;
        let (b, oy) = (r / g.oh, r % g.oh);
        let img = &mut dinput[b * img_len..][..img_len];
        let (ky0, ky1, ybase) = tap_range(oy, g.sh, g.pad_top, g.dh, g.kh, g.h);
        for ox in 0..g.ow {
            let src = &cols[(lr * g.ow + ox) * k_len..][..k_len];
            let (kx0, kx1, xbase) = tap_range(ox, g.sw, g.pad_left, g.dw, g.kw, g.w);
            if kx1 == kx0 {
                continue;
            }
            let ix0 = tap_index(xbase, kx0, g.dw);
            for ky in ky0..ky1 {
                let iy = tap_index(ybase, ky, g.dh);
                let drow = &mut img[iy * g.w * c..][..g.w * c];
                let srow = &src[ky * krow..][..krow];
                if g.dw == 1 {
                    let d = &mut drow[ix0 * c..(ix0 + kx1 - kx0) * c];
                    for (d, &s) in d.iter_mut().zip(&srow[kx0 * c..kx1 * c]) {
                        *d += s;
                    }
                } else {
                    for kx in kx0..kx1 {
                        let ix = ix0 + (kx - kx0) * g.dw;
                        for (d, &s) in drow[ix * c..][..c].iter_mut().zip(&srow[kx * c..][..c]) {
                            *d += s;
                        }
                    }
                }
            }
        }
    }
}

/// Runs `f(first_row, block)` over blocks of `rows_per` rows of `row_len`
/// elements each, in parallel when asked.
fn for_each_row_block<T, F>(out: &mut [T], row_len: usize, rows_per: usize, parallel: bool, f: F)
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

/// Max-pool comparison: strictly greater wins (so the first maximum is kept
/// on ties), and the first NaN wins over any number.
#[inline]
fn beats<T: ConvFloat>(v: T, best: T) -> bool {
    (v > best) | (v.is_nan() & !best.is_nan())
}

// ---------------------------------------------------------------------------
// Convolution
// ---------------------------------------------------------------------------

/// 2-D convolution (cross-correlation, like `tf.nn.conv2d`) of an NHWC
/// `input` with an HWIO `filter`; returns the NHWC `[n, oh, ow, c_out]`
/// output.
///
/// # Panics
///
/// Panics if a slice length does not match the geometry.
pub fn conv2d<T: ConvFloat>(g: &Conv2dGeometry, input: &[T], filter: &[T]) -> Vec<T> {
    check_len(input.len(), g.input_len(), "conv2d", "input");
    check_len(filter.len(), g.filter_len(), "conv2d", "filter");
    let mut out = vec![T::default(); g.output_len()];
    let k_len = g.k_len();
    if out.is_empty() || k_len == 0 {
        return out;
    }
    let work = g.output_len().saturating_mul(k_len);
    let rows_per = rows_per_block(g, is_large(work));
    let row_len = g.ow * g.c_out;
    let pointwise = g.is_pointwise();
    let filter_mat = Mat {
        data: filter,
        rs: g.c_out,
        cs: 1,
    };
    let block = |row0: usize, out_block: &mut [T], buf: &mut Vec<T>| {
        let m = out_block.len() / g.c_out;
        let cols: &[T] = if pointwise {
            &input[row0 * g.ow * k_len..][..m * k_len]
        } else {
            buf.resize(m * k_len, T::default());
            im2col_rows(g, input, row0, m / g.ow, buf);
            &buf[..m * k_len]
        };
        let cols = Mat {
            data: cols,
            rs: k_len,
            cs: 1,
        };
        matmul(m, k_len, g.c_out, cols, filter_mat, out_block, false);
    };
    let block_len = rows_per * row_len;
    if go_parallel(work) {
        out.par_chunks_mut(block_len)
            .enumerate()
            .for_each_init(Vec::new, |buf, (i, chunk)| block(i * rows_per, chunk, buf));
    } else {
        let mut buf = Vec::new();
        for (i, chunk) in out.chunks_mut(block_len).enumerate() {
            block(i * rows_per, chunk, &mut buf);
        }
    }
    out
}

/// Gradient of [`conv2d`] with respect to its input: given `grad_out`
/// (`[n, oh, ow, c_out]`), returns `d(sum(conv2d(x, filter) * grad_out)) /
/// dx` as an NHWC `[n, h, w, c_in]` buffer (like
/// `tf.nn.conv2d_backprop_input`).
///
/// # Panics
///
/// Panics if a slice length does not match the geometry.
pub fn conv2d_backprop_input<T: ConvFloat>(g: &Conv2dGeometry, filter: &[T], grad_out: &[T]) -> Vec<T> {
    check_len(filter.len(), g.filter_len(), "conv2d_backprop_input", "filter");
    check_len(grad_out.len(), g.output_len(), "conv2d_backprop_input", "grad_out");
    let mut dinput = vec![T::default(); g.input_len()];
    let k_len = g.k_len();
    if dinput.is_empty() || grad_out.is_empty() {
        return dinput;
    }
    let work = g.output_len().saturating_mul(k_len);
    let parallel = go_parallel(work);
    let rows_per = rows_per_block(g, is_large(work));
    // filterᵀ: [c_out, k_len] view of the [k_len, c_out] filter.
    let filter_t = Mat {
        data: filter,
        rs: 1,
        cs: g.c_out,
    };
    let grad_rows = |row0: usize, m: usize| Mat {
        data: &grad_out[row0 * g.ow * g.c_out..][..m * g.c_out],
        rs: g.c_out,
        cs: 1,
    };
    if g.is_pointwise() {
        // The input gradient is itself the im2col gradient: one GEMM per
        // block, written straight into disjoint rows.
        let row_len = g.w * k_len;
        for_each_row_block(&mut dinput, row_len, rows_per, parallel, |row0, chunk| {
            let m = chunk.len() / k_len;
            matmul(m, g.c_out, k_len, grad_rows(row0, m), filter_t, chunk, false);
        });
        return dinput;
    }
    let img_len = g.h * g.w * g.c_in;
    if rows_per >= g.oh {
        // Small images: each block is a run of whole images, so blocks
        // scatter into disjoint parts of the input gradient.
        let imgs = rows_per / g.oh;
        let run = |bi: usize, dchunk: &mut [T], buf: &mut Vec<T>| {
            let nrows = dchunk.len() / img_len * g.oh;
            let m = nrows * g.ow;
            buf.resize(m * k_len, T::default());
            let grad = grad_rows(bi * imgs * g.oh, m);
            matmul(m, g.c_out, k_len, grad, filter_t, &mut buf[..m * k_len], false);
            col2im_rows(g, buf, 0, nrows, dchunk);
        };
        if parallel {
            dinput
                .par_chunks_mut(imgs * img_len)
                .enumerate()
                .for_each_init(Vec::new, |buf, (bi, dchunk)| run(bi, dchunk, buf));
        } else {
            let mut buf = Vec::new();
            for (bi, dchunk) in dinput.chunks_mut(imgs * img_len).enumerate() {
                run(bi, dchunk, &mut buf);
            }
        }
        return dinput;
    }
    // Large images: blocks of rows within one image. Each image's gradient
    // is the same whichever way the work is spread: the per-block GEMMs are
    // identical and every image is scattered serially in block order.
    let rows_img = rows_per;
    let blocks_img = g.oh.div_ceil(rows_img);
    let dcols = |b: usize, j: usize, buf: &mut Vec<T>| {
        let oy0 = j * rows_img;
        let nrows = rows_img.min(g.oh - oy0);
        let m = nrows * g.ow;
        buf.resize(m * k_len, T::default());
        let grad = grad_rows(b * g.oh + oy0, m);
        matmul(m, g.c_out, k_len, grad, filter_t, &mut buf[..m * k_len], false);
        (oy0, nrows)
    };
    let threads = rayon::current_num_threads();
    if parallel && g.n >= threads && (g.n >= 2 * threads || g.n % threads == 0) {
        // Enough images to keep every thread busy: one task per image.
        dinput
            .par_chunks_mut(img_len)
            .enumerate()
            .for_each_init(Vec::new, |buf, (b, dimg)| {
                for j in 0..blocks_img {
                    let (oy0, nrows) = dcols(b, j, buf);
                    col2im_rows(g, buf, oy0, nrows, dimg);
                }
            });
        return dinput;
    }
    // Few images: compute a wave of blocks in parallel, then scatter them
    // serially in block order.
    let wave = if parallel { threads.clamp(1, blocks_img) } else { 1 };
    let mut bufs: Vec<(Vec<T>, usize, usize)> = (0..wave).map(|_| (Vec::new(), 0, 0)).collect();
    for (b, dimg) in dinput.chunks_mut(img_len).enumerate() {
        for first in (0..blocks_img).step_by(wave) {
            let count = wave.min(blocks_img - first);
            let run = |(j, slot): (usize, &mut (Vec<T>, usize, usize))| {
                let (oy0, nrows) = dcols(b, first + j, &mut slot.0);
                slot.1 = oy0;
                slot.2 = nrows;
            };
            if count > 1 {
                bufs[..count].par_iter_mut().enumerate().for_each(run);
            } else {
                bufs[..count].iter_mut().enumerate().for_each(run);
            }
            for (buf, oy0, nrows) in &bufs[..count] {
                col2im_rows(g, buf, *oy0, *nrows, dimg);
            }
        }
    }
    dinput
}

/// Gradient of [`conv2d`] with respect to its filter: given `grad_out`
/// (`[n, oh, ow, c_out]`), returns `d(sum(conv2d(input, f) * grad_out)) /
/// df` as an HWIO `[kh, kw, c_in, c_out]` buffer (like
/// `tf.nn.conv2d_backprop_filter`).
///
/// # Panics
///
/// Panics if a slice length does not match the geometry.
pub fn conv2d_backprop_filter<T: ConvFloat>(g: &Conv2dGeometry, input: &[T], grad_out: &[T]) -> Vec<T> {
    check_len(input.len(), g.input_len(), "conv2d_backprop_filter", "input");
    check_len(grad_out.len(), g.output_len(), "conv2d_backprop_filter", "grad_out");
    let f_len = g.filter_len();
    let mut dfilter = vec![T::default(); f_len];
    let k_len = g.k_len();
    if dfilter.is_empty() || grad_out.is_empty() {
        return dfilter;
    }
    let work = g.output_len().saturating_mul(k_len);
    let large = is_large(work);
    let rows_per = rows_per_block(g, large);
    let total_rows = g.n * g.oh;
    let n_blocks = total_rows.div_ceil(rows_per);
    let pointwise = g.is_pointwise();
    // The im2col block `bi` (borrowing `buf` when a gather is needed) and
    // the matching rows of `grad_out`.
    let block = |bi: usize, buf: &'_ mut Vec<T>| -> (usize, usize) {
        let row0 = bi * rows_per;
        let m = rows_per.min(total_rows - row0) * g.ow;
        if !pointwise {
            buf.resize(m * k_len, T::default());
            im2col_rows(g, input, row0, m / g.ow, buf);
        }
        (row0, m)
    };
    let cols_of = |row0: usize, m: usize| row0 * g.ow * k_len..(row0 * g.ow + m) * k_len;
    let grad_of = |row0: usize, m: usize| Mat {
        data: &grad_out[row0 * g.ow * g.c_out..][..m * g.c_out],
        rs: g.c_out,
        cs: 1,
    };
    // Rows `k0..k0 + acc.len() / c_out` of the filter gradient: (+)=
    // colsᵀ · grad, with colsᵀ the [k_len, m] view of the [m, k_len] block.
    let gemm_rows = |cols: &[T], k0: usize, row0: usize, m: usize, acc: &mut [T], add: bool| {
        let cols_t = Mat {
            data: &cols[k0..],
            rs: 1,
            cs: k_len,
        };
        let rows = acc.len() / g.c_out;
        matmul(rows, m, g.c_out, cols_t, grad_of(row0, m), acc, add);
    };
    // How the reduction over blocks is organised is a function of the
    // geometry only, so the summation order never depends on threads or
    // timing.
    let partials = n_blocks.min(MAX_FILTER_PARTIALS).min(FILTER_PARTIAL_BUDGET / f_len);
    if !large || partials < 2 {
        // Blocks accumulate serially in order; a large problem splits each
        // GEMM over disjoint row ranges of the filter gradient, which leaves
        // every element's summation order unchanged.
        let split = if large {
            k_len.div_ceil(MAX_FILTER_PARTIALS).max(MIN_GEMM_M)
        } else {
            k_len
        } * g.c_out;
        let parallel = large && split < f_len && rayon::current_num_threads() > 1;
        let mut buf = Vec::new();
        for bi in 0..n_blocks {
            let (row0, m) = block(bi, &mut buf);
            let cols = if pointwise {
                &input[cols_of(row0, m)]
            } else {
                &buf[..m * k_len]
            };
            let part = |(si, acc): (usize, &mut [T])| {
                gemm_rows(cols, si * (split / g.c_out), row0, m, acc, bi != 0);
            };
            if parallel {
                dfilter.par_chunks_mut(split).enumerate().for_each(part);
            } else {
                dfilter.chunks_mut(split).enumerate().for_each(part);
            }
        }
        return dfilter;
    }
    // Small filter, many blocks: contiguous runs of blocks reduce into
    // separate partial sums in parallel, then the partials are added in
    // order.
    let blocks_per_partial = n_blocks.div_ceil(partials);
    let partials = n_blocks.div_ceil(blocks_per_partial);
    let accumulate = |pi: usize, acc: &mut [T], buf: &mut Vec<T>| {
        let first = pi * blocks_per_partial;
        let last = (first + blocks_per_partial).min(n_blocks);
        for bi in first..last {
            let (row0, m) = block(bi, buf);
            let cols = if pointwise {
                &input[cols_of(row0, m)]
            } else {
                &buf[..m * k_len]
            };
            gemm_rows(cols, 0, row0, m, acc, bi != first);
        }
    };
    let mut sums = vec![T::default(); partials * f_len];
    if rayon::current_num_threads() > 1 {
        sums.par_chunks_mut(f_len)
            .enumerate()
            .for_each_init(Vec::new, |buf, (pi, acc)| accumulate(pi, acc, buf));
    } else {
        let mut buf = Vec::new();
        for (pi, acc) in sums.chunks_mut(f_len).enumerate() {
            accumulate(pi, acc, &mut buf);
        }
    }
    let (head, rest) = sums.split_at(f_len);
    dfilter.copy_from_slice(head);
    for part in rest.chunks(f_len) {
        for (d, &p) in dfilter.iter_mut().zip(part) {
            *d += p;
        }
    }
    dfilter
}

// ---------------------------------------------------------------------------
// Pooling
// ---------------------------------------------------------------------------

/// Output rows per block for the pooling kernels.
fn pool_rows_per_block(g: &Conv2dGeometry, large: bool) -> usize {
    let total_rows = g.n * g.oh;
    if large {
        total_rows.div_ceil(MIN_PAR_BLOCKS * 4).max(1)
    } else {
        total_rows.max(1)
    }
}

fn pool_work(g: &Conv2dGeometry) -> usize {
    g.pool_output_len().saturating_mul(g.kh * g.kw)
}

/// Max pooling (like `tf.nn.max_pool2d`): each output is the maximum of the
/// real (unpadded) input elements in its window; NaNs propagate. Returns
/// `[n, oh, ow, c_in]`. Windows are spaced by the strides; `dh`/`dw` > 1
/// would space the taps inside a window (a window with no real element
/// yields zero, which `SAME` / `VALID` pooling without dilation never
/// produces).
///
/// # Panics
///
/// Panics if the input length does not match the geometry.
pub fn max_pool2d<T: ConvFloat>(g: &Conv2dGeometry, input: &[T]) -> Vec<T> {
    check_len(input.len(), g.input_len(), "max_pool2d", "input");
    let c = g.c_in;
    let mut out = vec![T::default(); g.pool_output_len()];
    let work = pool_work(g);
    let rows_per = pool_rows_per_block(g, is_large(work));
    let img_len = g.h * g.w * c;
    for_each_row_block(&mut out, g.ow * c, rows_per, go_parallel(work), |row0, chunk| {
        for (lr, orow) in chunk.chunks_mut(g.ow * c).enumerate() {
            let r = row0 + lr;
            let (b, oy) = (r / g.oh, r % g.oh);
            let img = &input[b * img_len..][..img_len];
            let (ky0, ky1, ybase) = tap_range(oy, g.sh, g.pad_top, g.dh, g.kh, g.h);
            for (ox, dst) in orow.chunks_mut(c).enumerate() {
                let (kx0, kx1, xbase) = tap_range(ox, g.sw, g.pad_left, g.dw, g.kw, g.w);
                let mut first = true;
                for ky in ky0..ky1 {
                    let iy = tap_index(ybase, ky, g.dh);
                    for kx in kx0..kx1 {
                        let ix = tap_index(xbase, kx, g.dw);
                        let src = &img[(iy * g.w + ix) * c..][..c];
                        if first {
                            dst.copy_from_slice(src);
                            first = false;
                        } else {
                            for (d, &v) in dst.iter_mut().zip(src) {
                                if beats(v, *d) {
                                    *d = v;
                                }
                            }
                        }
                    }
                }
            }
        }
    });
    out
}

/// Gradient of [`max_pool2d`] (like TensorFlow's `MaxPoolGrad`): each
/// `grad_out` element is added to the input position holding its window's
/// maximum (the first one in row-major window order on ties). Returns
/// `[n, h, w, c_in]`.
///
/// # Panics
///
/// Panics if a slice length does not match the geometry.
pub fn max_pool2d_grad<T: ConvFloat>(g: &Conv2dGeometry, input: &[T], grad_out: &[T]) -> Vec<T> {
    check_len(input.len(), g.input_len(), "max_pool2d_grad", "input");
    check_len(grad_out.len(), g.pool_output_len(), "max_pool2d_grad", "grad_out");
    // Narrow argmax indices vectorise better; images with more than 2^32
    // pixels fall back to `usize`.
    if u32::try_from(g.h * g.w).is_ok() {
        max_pool2d_grad_with::<T, u32>(g, input, grad_out)
    } else {
        max_pool2d_grad_with::<T, usize>(g, input, grad_out)
    }
}

/// Pixel index type used to record argmaxes.
trait PixIndex: Copy + Send + Sync + Default {
    fn from_pix(pix: usize) -> Self;
    fn pix(self) -> usize;
}

impl PixIndex for u32 {
    #[inline]
    fn from_pix(pix: usize) -> Self {
        pix as u32
    }

    #[inline]
    fn pix(self) -> usize {
        self as usize
    }
}

impl PixIndex for usize {
    #[inline]
    fn from_pix(pix: usize) -> Self {
        pix
    }

    #[inline]
    fn pix(self) -> usize {
        self
    }
}

/// [`max_pool2d_grad`] with argmax indices of type `I` (which must hold
/// every pixel index of an image).
fn max_pool2d_grad_with<T: ConvFloat, I: PixIndex>(g: &Conv2dGeometry, input: &[T], grad_out: &[T]) -> Vec<T> {
    let c = g.c_in;
    let img_len = g.h * g.w * c;
    let out_img_len = g.oh * g.ow * c;
    let mut dinput = vec![T::default(); g.input_len()];
    if dinput.is_empty() || out_img_len == 0 {
        return dinput;
    }
    let image = |b: usize, dimg: &mut [T], scratch: &mut (Vec<T>, Vec<I>)| {
        let img = &input[b * img_len..][..img_len];
        let gimg = &grad_out[b * out_img_len..][..out_img_len];
        let (best, arg) = scratch;
        best.resize(c, T::default());
        arg.resize(c, I::default());
        for oy in 0..g.oh {
            let (ky0, ky1, ybase) = tap_range(oy, g.sh, g.pad_top, g.dh, g.kh, g.h);
            for ox in 0..g.ow {
                let (kx0, kx1, xbase) = tap_range(ox, g.sw, g.pad_left, g.dw, g.kw, g.w);
                let mut first = true;
                for ky in ky0..ky1 {
                    let iy = tap_index(ybase, ky, g.dh);
                    for kx in kx0..kx1 {
                        let pix = iy * g.w + tap_index(xbase, kx, g.dw);
                        let src = &img[pix * c..][..c];
                        let pix = I::from_pix(pix);
                        if first {
                            best.copy_from_slice(src);
                            arg.fill(pix);
                            first = false;
                        } else {
                            for ((bv, a), &v) in best.iter_mut().zip(arg.iter_mut()).zip(src) {
                                let take = beats(v, *bv);
                                *bv = if take { v } else { *bv };
                                *a = if take { pix } else { *a };
                            }
                        }
                    }
                }
                if first {
                    continue; // empty window: no input receives gradient
                }
                let grow = &gimg[(oy * g.ow + ox) * c..][..c];
                for (ch, (&a, &gv)) in arg.iter().zip(grow).enumerate() {
                    dimg[a.pix() * c + ch] += gv;
                }
            }
        }
    };
    if go_parallel(pool_work(g)) && g.n > 1 {
        dinput
            .par_chunks_mut(img_len)
            .enumerate()
            .for_each_init(|| (Vec::new(), Vec::new()), |s, (b, dimg)| image(b, dimg, s));
    } else {
        let mut scratch = (Vec::new(), Vec::new());
        for (b, dimg) in dinput.chunks_mut(img_len).enumerate() {
            image(b, dimg, &mut scratch);
        }
    }
    dinput
}

/// Average pooling (like `tf.nn.avg_pool2d`): each output is the mean of the
/// real (unpadded) input elements in its window, so border windows under
/// `SAME` padding divide by their real element count. Returns
/// `[n, oh, ow, c_in]`.
///
/// # Panics
///
/// Panics if the input length does not match the geometry.
pub fn avg_pool2d<T: ConvFloat>(g: &Conv2dGeometry, input: &[T]) -> Vec<T> {
    check_len(input.len(), g.input_len(), "avg_pool2d", "input");
    let c = g.c_in;
    let mut out = vec![T::default(); g.pool_output_len()];
    let work = pool_work(g);
    let rows_per = pool_rows_per_block(g, is_large(work));
    let img_len = g.h * g.w * c;
    for_each_row_block(&mut out, g.ow * c, rows_per, go_parallel(work), |row0, chunk| {
        for (lr, orow) in chunk.chunks_mut(g.ow * c).enumerate() {
            let r = row0 + lr;
            let (b, oy) = (r / g.oh, r % g.oh);
            let img = &input[b * img_len..][..img_len];
            let (ky0, ky1, ybase) = tap_range(oy, g.sh, g.pad_top, g.dh, g.kh, g.h);
            for (ox, dst) in orow.chunks_mut(c).enumerate() {
                let (kx0, kx1, xbase) = tap_range(ox, g.sw, g.pad_left, g.dw, g.kw, g.w);
                let count = (ky1 - ky0) * (kx1 - kx0);
                if count == 0 {
                    continue;
                }
                for ky in ky0..ky1 {
                    let iy = tap_index(ybase, ky, g.dh);
                    for kx in kx0..kx1 {
                        let ix = tap_index(xbase, kx, g.dw);
                        let src = &img[(iy * g.w + ix) * c..][..c];
                        for (d, &v) in dst.iter_mut().zip(src) {
                            *d += v;
                        }
                    }
                }
                let denom = T::from_usize(count);
                for d in dst.iter_mut() {
                    *d = *d / denom;
                }
            }
        }
    });
    out
}

/// Gradient of [`avg_pool2d`] (like TensorFlow's `AvgPoolGrad`): each
/// `grad_out` element is divided by its window's real element count and
/// added to every real input position of the window. Returns
/// `[n, h, w, c_in]`.
///
/// # Panics
///
/// Panics if the gradient length does not match the geometry.
pub fn avg_pool2d_grad<T: ConvFloat>(g: &Conv2dGeometry, grad_out: &[T]) -> Vec<T> {
    check_len(grad_out.len(), g.pool_output_len(), "avg_pool2d_grad", "grad_out");
    let c = g.c_in;
    let img_len = g.h * g.w * c;
    let out_img_len = g.oh * g.ow * c;
    let mut dinput = vec![T::default(); g.input_len()];
    if dinput.is_empty() || out_img_len == 0 {
        return dinput;
    }
    let image = |b: usize, dimg: &mut [T], share: &mut Vec<T>| {
        let gimg = &grad_out[b * out_img_len..][..out_img_len];
        share.resize(c, T::default());
        for oy in 0..g.oh {
            let (ky0, ky1, ybase) = tap_range(oy, g.sh, g.pad_top, g.dh, g.kh, g.h);
            for ox in 0..g.ow {
                let (kx0, kx1, xbase) = tap_range(ox, g.sw, g.pad_left, g.dw, g.kw, g.w);
                let count = (ky1 - ky0) * (kx1 - kx0);
                if count == 0 {
                    continue;
                }
                let denom = T::from_usize(count);
                let grow = &gimg[(oy * g.ow + ox) * c..][..c];
                for (s, &gv) in share.iter_mut().zip(grow) {
                    *s = gv / denom;
                }
                for ky in ky0..ky1 {
                    let iy = tap_index(ybase, ky, g.dh);
                    for kx in kx0..kx1 {
                        let ix = tap_index(xbase, kx, g.dw);
                        let dst = &mut dimg[(iy * g.w + ix) * c..][..c];
                        for (d, &s) in dst.iter_mut().zip(share.iter()) {
                            *d += s;
                        }
                    }
                }
            }
        }
    };
    if go_parallel(pool_work(g)) && g.n > 1 {
        dinput
            .par_chunks_mut(img_len)
            .enumerate()
            .for_each_init(Vec::new, |s, (b, dimg)| image(b, dimg, s));
    } else {
        let mut share = Vec::new();
        for (b, dimg) in dinput.chunks_mut(img_len).enumerate() {
            image(b, dimg, &mut share);
        }
    }
    dinput
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;

    /// Deterministic xorshift generator of values in [-1, 1).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        }

        fn vec(&mut self, len: usize) -> Vec<f64> {
            (0..len).map(|_| self.next()).collect()
        }
    }

    fn geom(input: [usize; 4], filter: [usize; 4], s: [usize; 2], d: [usize; 2], p: Padding) -> Conv2dGeometry {
        Conv2dGeometry::new(input, filter, s, d, p).unwrap()
    }

    /// Input coordinate of tap `k` of output `o`, if inside the input.
    fn coord(o: usize, k: usize, s: usize, d: usize, pad: usize, len: usize) -> Option<usize> {
        let i = (o * s + k * d) as isize - pad as isize;
        (i >= 0 && (i as usize) < len).then_some(i as usize)
    }

    fn in_idx(g: &Conv2dGeometry, b: usize, y: usize, x: usize, c: usize) -> usize {
        ((b * g.h + y) * g.w + x) * g.c_in + c
    }

    fn f_idx(g: &Conv2dGeometry, ky: usize, kx: usize, ci: usize, co: usize) -> usize {
        ((ky * g.kw + kx) * g.c_in + ci) * g.c_out + co
    }

    fn out_idx(g: &Conv2dGeometry, b: usize, y: usize, x: usize, c: usize, ch: usize) -> usize {
        ((b * g.oh + y) * g.ow + x) * ch + c
    }

    /// Calls `visit(out_index, in_index, filter_index)` for every
    /// multiply-add of the convolution, in the naive 7-loop order.
    fn for_each_mac(g: &Conv2dGeometry, mut visit: impl FnMut(usize, usize, usize)) {
        for b in 0..g.n {
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    for co in 0..g.c_out {
                        for ky in 0..g.kh {
                            let Some(iy) = coord(oy, ky, g.sh, g.dh, g.pad_top, g.h) else {
                                continue;
                            };
                            for kx in 0..g.kw {
                                let Some(ix) = coord(ox, kx, g.sw, g.dw, g.pad_left, g.w) else {
                                    continue;
                                };
                                for ci in 0..g.c_in {
                                    visit(
                                        out_idx(g, b, oy, ox, co, g.c_out),
                                        in_idx(g, b, iy, ix, ci),
                                        f_idx(g, ky, kx, ci, co),
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    fn naive_conv(g: &Conv2dGeometry, x: &[f64], f: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; g.output_len()];
        for_each_mac(g, |o, i, k| out[o] += x[i] * f[k]);
        out
    }

    fn naive_bwd_input(g: &Conv2dGeometry, f: &[f64], gy: &[f64]) -> Vec<f64> {
        let mut dx = vec![0.0; g.input_len()];
        for_each_mac(g, |o, i, k| dx[i] += gy[o] * f[k]);
        dx
    }

    fn naive_bwd_filter(g: &Conv2dGeometry, x: &[f64], gy: &[f64]) -> Vec<f64> {
        let mut df = vec![0.0; g.filter_len()];
        for_each_mac(g, |o, i, k| df[k] += gy[o] * x[i]);
        df
    }

    /// Calls `visit(out_index, [in_index in window order])` per pool output.
    fn for_each_window(g: &Conv2dGeometry, mut visit: impl FnMut(usize, &[usize])) {
        let mut window = Vec::new();
        for b in 0..g.n {
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    for c in 0..g.c_in {
                        window.clear();
                        for ky in 0..g.kh {
                            for kx in 0..g.kw {
                                if let (Some(iy), Some(ix)) = (
                                    coord(oy, ky, g.sh, g.dh, g.pad_top, g.h),
                                    coord(ox, kx, g.sw, g.dw, g.pad_left, g.w),
                                ) {
                                    window.push(in_idx(g, b, iy, ix, c));
                                }
                            }
                        }
                        visit(out_idx(g, b, oy, ox, c, g.c_in), &window);
                    }
                }
            }
        }
    }

    fn naive_max_pool(g: &Conv2dGeometry, x: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; g.pool_output_len()];
        for_each_window(g, |o, win| {
            out[o] = win.iter().map(|&i| x[i]).fold(f64::NEG_INFINITY, f64::max);
        });
        out
    }

    fn naive_max_pool_grad(g: &Conv2dGeometry, x: &[f64], gy: &[f64]) -> Vec<f64> {
        let mut dx = vec![0.0; g.input_len()];
        for_each_window(g, |o, win| {
            let mut best = win[0];
            for &i in &win[1..] {
                if x[i] > x[best] {
                    best = i;
                }
            }
            dx[best] += gy[o];
        });
        dx
    }

    fn naive_avg_pool(g: &Conv2dGeometry, x: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; g.pool_output_len()];
        for_each_window(g, |o, win| {
            out[o] = win.iter().map(|&i| x[i]).sum::<f64>() / win.len() as f64;
        });
        out
    }

    fn naive_avg_pool_grad(g: &Conv2dGeometry, gy: &[f64]) -> Vec<f64> {
        let mut dx = vec![0.0; g.input_len()];
        for_each_window(g, |o, win| {
            for &i in win {
                dx[i] += gy[o] / win.len() as f64;
            }
        });
        dx
    }

    fn dot(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= tol * (1.0 + w.abs()),
                "{what}: element {i}: got {g}, want {w}"
            );
        }
    }

    /// Central finite differences of a scalar function.
    fn numeric_grad(x: &[f64], eps: f64, f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
        let mut x = x.to_vec();
        (0..x.len())
            .map(|i| {
                let orig = x[i];
                x[i] = orig + eps;
                let up = f(&x);
                x[i] = orig - eps;
                let down = f(&x);
                x[i] = orig;
                (up - down) / (2.0 * eps)
            })
            .collect()
    }

    /// Small conv geometries: VALID/SAME, strides 1/2/3, dilations 1/2,
    /// odd and even sizes, several channel counts, batch 2.
    fn small_conv_cases() -> Vec<Conv2dGeometry> {
        let channels = [(1, 1), (3, 2), (2, 4)];
        let mut cases = Vec::new();
        let mut i = 0;
        for (h, w) in [(5, 5), (6, 7), (4, 3), (1, 1), (2, 6)] {
            for (kh, kw) in [(1, 1), (2, 2), (3, 3), (3, 2)] {
                for s in [[1, 1], [2, 2], [3, 3], [2, 1]] {
                    for d in [[1, 1], [2, 2], [1, 2]] {
                        for p in [Padding::Same, Padding::Valid] {
                            let (ci, co) = channels[i % channels.len()];
                            i += 1;
                            cases.push(geom([2, h, w, ci], [kh, kw, ci, co], s, d, p));
                        }
                    }
                }
            }
        }
        // A long im2col row just below the parallel threshold.
        let g = geom([1, 20, 20, 20], [5, 5, 20, 1], [1, 1], [1, 1], Padding::Same);
        assert!(!is_large(g.output_len() * g.k_len()));
        cases.push(g);
        cases
    }

    /// Geometries above the parallel threshold (and a pointwise one).
    fn large_conv_cases() -> Vec<Conv2dGeometry> {
        let cases = vec![
            geom([2, 17, 17, 8], [3, 3, 8, 16], [1, 1], [1, 1], Padding::Same),
            geom([1, 30, 27, 8], [3, 3, 8, 24], [2, 2], [2, 2], Padding::Same),
            geom([3, 16, 15, 5], [5, 4, 5, 16], [1, 2], [1, 1], Padding::Valid),
            geom([2, 24, 24, 32], [1, 1, 32, 32], [1, 1], [1, 1], Padding::Valid),
            // One image cut into several row blocks.
            geom([1, 64, 40, 4], [3, 3, 4, 8], [2, 1], [2, 2], Padding::Same),
        ];
        for g in &cases {
            assert!(is_large(g.output_len() * g.k_len()), "{g:?}");
        }
        let g = &cases[4];
        assert!(rows_per_block(g, true) < g.oh, "{g:?}");
        cases
    }

    #[test]
    fn output_dims_match_tensorflow() {
        assert_eq!(conv_output_dim(5, 3, 2, 1, Padding::Same), Ok((3, 1, 1)));
        assert_eq!(conv_output_dim(6, 3, 2, 1, Padding::Same), Ok((3, 0, 1)));
        assert_eq!(conv_output_dim(5, 3, 2, 1, Padding::Valid), Ok((2, 0, 0)));
        assert_eq!(conv_output_dim(6, 3, 2, 1, Padding::Valid), Ok((2, 0, 0)));
        assert_eq!(conv_output_dim(7, 3, 1, 2, Padding::Valid), Ok((3, 0, 0)));
        assert_eq!(conv_output_dim(7, 3, 1, 2, Padding::Same), Ok((7, 2, 2)));
        assert_eq!(conv_output_dim(4, 2, 1, 1, Padding::Same), Ok((4, 0, 1)));
        assert_eq!(conv_output_dim(7, 3, 3, 1, Padding::Same), Ok((3, 1, 1)));
        // Stride larger than the window: no padding needed.
        assert_eq!(conv_output_dim(6, 1, 3, 1, Padding::Same), Ok((2, 0, 0)));
        assert_eq!(conv_output_dim(2, 3, 1, 1, Padding::Valid), Ok((0, 0, 0)));
        assert_eq!(conv_output_dim(0, 3, 1, 1, Padding::Same), Ok((0, 0, 0)));
        assert!(conv_output_dim(5, 0, 1, 1, Padding::Same).is_err());
        assert!(conv_output_dim(5, 3, 0, 1, Padding::Same).is_err());
        assert!(conv_output_dim(5, 3, 1, 0, Padding::Same).is_err());
    }

    #[test]
    fn geometry_fields_and_errors() {
        let g = geom([2, 5, 6, 3], [3, 3, 3, 4], [2, 2], [1, 1], Padding::Same);
        assert_eq!((g.oh, g.ow, g.pad_top, g.pad_left), (3, 3, 1, 0));
        assert_eq!((g.pad_bottom(), g.pad_right()), (1, 1));
        assert_eq!(g.output_shape(), [2, 3, 3, 4]);
        assert_eq!(g.pool_output_shape(), [2, 3, 3, 3]);
        assert_eq!(g.input_shape(), [2, 5, 6, 3]);
        assert_eq!(g.filter_shape(), [3, 3, 3, 4]);
        assert_eq!((g.input_len(), g.filter_len(), g.output_len()), (180, 108, 72));
        let v = geom([1, 5, 5, 1], [3, 3, 1, 1], [2, 2], [1, 1], Padding::Valid);
        assert_eq!((v.oh, v.ow, v.pad_top, v.pad_left), (2, 2, 0, 0));
        assert_eq!((v.pad_bottom(), v.pad_right()), (0, 0));
        let p = Conv2dGeometry::pool([1, 6, 6, 2], [3, 3], [2, 2], Padding::Same).unwrap();
        assert_eq!((p.oh, p.ow, p.pad_top, p.c_out, p.dh), (3, 3, 0, 2, 1));
        assert_eq!(p.pad_bottom(), 1);

        let new = |i, f, s, d| Conv2dGeometry::new(i, f, s, d, Padding::Same);
        assert!(new([1, 5, 5, 3], [3, 3, 2, 4], [1, 1], [1, 1]).is_err());
        assert!(new([1, 5, 5, 3], [3, 3, 3, 4], [0, 1], [1, 1]).is_err());
        assert!(new([1, 5, 5, 3], [3, 3, 3, 4], [1, 1], [1, 0]).is_err());
        assert!(new([1, 5, 5, 3], [0, 3, 3, 4], [1, 1], [1, 1]).is_err());
        assert!(new([1, 5, 5, 3], [3, 0, 3, 4], [1, 1], [1, 1]).is_err());
        assert!(new([usize::MAX, 5, 5, 3], [3, 3, 3, 4], [1, 1], [1, 1]).is_err());
        assert!(new([1, 5, 5, 3], [3, usize::MAX, 3, 4], [1, 1], [2, 2]).is_err());
        assert!(Conv2dGeometry::pool([1, 4, 4, 1], [2, 2], [1, 0], Padding::Valid).is_err());
        assert!(Conv2dGeometry::pool([1, 4, 4, 1], [0, 2], [1, 1], Padding::Valid).is_err());
    }

    #[test]
    fn empty_geometries_give_empty_or_zero_results() {
        let mut rng = Rng(7);
        // Empty batch.
        let g = geom([0, 5, 5, 2], [3, 3, 2, 3], [1, 1], [1, 1], Padding::Same);
        let f = rng.vec(g.filter_len());
        assert!(conv2d(&g, &[], &f).is_empty());
        assert!(conv2d_backprop_input(&g, &f, &[]).is_empty());
        assert_eq!(conv2d_backprop_filter::<f64>(&g, &[], &[]), vec![0.0; 54]);
        assert!(max_pool2d::<f64>(&g, &[]).is_empty());
        assert!(max_pool2d_grad::<f64>(&g, &[], &[]).is_empty());
        assert!(avg_pool2d::<f64>(&g, &[]).is_empty());
        assert!(avg_pool2d_grad::<f64>(&g, &[]).is_empty());
        // VALID with the window larger than the input: zero-sized output.
        let g = geom([2, 2, 4, 2], [3, 3, 2, 3], [1, 1], [1, 1], Padding::Valid);
        assert_eq!((g.oh, g.ow), (0, 2));
        let x = rng.vec(g.input_len());
        assert!(conv2d(&g, &x, &f).is_empty());
        assert_eq!(conv2d_backprop_input(&g, &f, &[]), vec![0.0; x.len()]);
        assert_eq!(conv2d_backprop_filter(&g, &x, &[]), vec![0.0; f.len()]);
        assert!(max_pool2d(&g, &x).is_empty());
        assert_eq!(max_pool2d_grad(&g, &x, &[]), vec![0.0; x.len()]);
        assert!(avg_pool2d(&g, &x).is_empty());
        assert_eq!(avg_pool2d_grad::<f64>(&g, &[]), vec![0.0; x.len()]);
        // Zero input channels: the convolution is all zeros.
        let g = geom([1, 3, 3, 0], [2, 2, 0, 2], [1, 1], [1, 1], Padding::Same);
        assert_eq!(conv2d::<f32>(&g, &[], &[]), vec![0.0; 18]);
        assert!(conv2d_backprop_input::<f32>(&g, &[], &[1.0; 18]).is_empty());
        assert!(conv2d_backprop_filter::<f32>(&g, &[], &[1.0; 18]).is_empty());
        // Zero output channels.
        let g = geom([1, 3, 3, 2], [2, 2, 2, 0], [1, 1], [1, 1], Padding::Same);
        assert!(conv2d::<f32>(&g, &[1.0; 18], &[]).is_empty());
        assert_eq!(conv2d_backprop_input::<f32>(&g, &[], &[]), vec![0.0; 18]);
    }

    #[test]
    fn conv2d_matches_hand_computed_tensorflow_values() {
        // tf.nn.conv2d(arange(1..=9) as [1,3,3,1], ones [2,2,1,1], 1, SAME)
        let x: Vec<f64> = (1..=9).map(f64::from).collect();
        let g = geom([1, 3, 3, 1], [2, 2, 1, 1], [1, 1], [1, 1], Padding::Same);
        let y = conv2d(&g, &x, &[1.0; 4]);
        assert_eq!(y, vec![12.0, 16.0, 9.0, 24.0, 28.0, 15.0, 15.0, 17.0, 9.0]);
        // 3x3 window, stride 2, SAME on a 5x5 input: pad 1 on every side.
        let x: Vec<f64> = (0..25).map(f64::from).collect();
        let g = geom([1, 5, 5, 1], [3, 3, 1, 1], [2, 2], [1, 1], Padding::Same);
        let y = conv2d(&g, &x, &[1.0; 9]);
        assert_eq!(y, vec![12.0, 27.0, 24.0, 63.0, 108.0, 81.0, 72.0, 117.0, 84.0]);
    }

    #[test]
    fn conv2d_matches_naive_reference() {
        let mut rng = Rng(1);
        for g in small_conv_cases().iter().chain(&large_conv_cases()) {
            let x = rng.vec(g.input_len());
            let f = rng.vec(g.filter_len());
            let want = naive_conv(g, &x, &f);
            assert_close(&conv2d(g, &x, &f), &want, 1e-12, &format!("{g:?}"));
            // f32 path against the f64 reference.
            let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let f32_: Vec<f32> = f.iter().map(|&v| v as f32).collect();
            let got: Vec<f64> = conv2d(g, &x32, &f32_).iter().map(|&v| f64::from(v)).collect();
            assert_close(&got, &want, 1e-4, &format!("f32 {g:?}"));
        }
    }

    #[test]
    fn conv2d_backprops_match_naive_reference_and_adjoint_identity() {
        let mut rng = Rng(2);
        for g in small_conv_cases().iter().chain(&large_conv_cases()) {
            let x = rng.vec(g.input_len());
            let f = rng.vec(g.filter_len());
            let gy = rng.vec(g.output_len());
            let dx = conv2d_backprop_input(g, &f, &gy);
            let df = conv2d_backprop_filter(g, &x, &gy);
            assert_close(&dx, &naive_bwd_input(g, &f, &gy), 1e-12, &format!("dx {g:?}"));
            assert_close(&df, &naive_bwd_filter(g, &x, &gy), 1e-11, &format!("df {g:?}"));
            let lhs = dot(&conv2d(g, &x, &f), &gy);
            assert_abs_diff_eq!(lhs, dot(&x, &dx), epsilon = 1e-9 * (1.0 + lhs.abs()));
            assert_abs_diff_eq!(lhs, dot(&f, &df), epsilon = 1e-9 * (1.0 + lhs.abs()));
        }
    }

    #[test]
    fn conv2d_backprops_match_finite_differences() {
        let mut rng = Rng(3);
        let cases = [
            geom([2, 5, 4, 2], [3, 2, 2, 3], [2, 1], [1, 2], Padding::Same),
            geom([2, 6, 5, 3], [3, 3, 3, 2], [1, 1], [1, 1], Padding::Valid),
            geom([1, 4, 4, 1], [2, 2, 1, 1], [2, 2], [1, 1], Padding::Same),
            geom([2, 7, 6, 2], [1, 1, 2, 3], [1, 1], [1, 1], Padding::Same),
        ];
        for g in &cases {
            let x = rng.vec(g.input_len());
            let f = rng.vec(g.filter_len());
            let gy = rng.vec(g.output_len());
            let num_dx = numeric_grad(&x, 1e-5, |x| dot(&conv2d(g, x, &f), &gy));
            let num_df = numeric_grad(&f, 1e-5, |f| dot(&conv2d(g, &x, f), &gy));
            assert_close(&conv2d_backprop_input(g, &f, &gy), &num_dx, 1e-7, "dx");
            assert_close(&conv2d_backprop_filter(g, &x, &gy), &num_df, 1e-7, "df");
        }
    }

    #[test]
    fn results_do_not_depend_on_thread_count() {
        let mut rng = Rng(4);
        let run = |threads: usize, g: &Conv2dGeometry, x: &[f32], f: &[f32], gy: &[f32]| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                (
                    conv2d(g, x, f),
                    conv2d_backprop_input(g, f, gy),
                    conv2d_backprop_filter(g, x, gy),
                    max_pool2d_grad(g, x, &gy[..g.pool_output_len()]),
                    avg_pool2d(g, x),
                )
            })
        };
        let mut cases = large_conv_cases();
        // Many images of one row block each, and a huge filter-gradient
        // reduction split into partial sums.
        cases.push(geom([16, 9, 9, 8], [3, 3, 8, 8], [1, 1], [1, 1], Padding::Same));
        cases.push(geom([4, 40, 40, 3], [5, 5, 3, 4], [1, 1], [1, 1], Padding::Same));
        for g in &cases {
            let x: Vec<f32> = rng.vec(g.input_len()).iter().map(|&v| v as f32).collect();
            let f: Vec<f32> = rng.vec(g.filter_len()).iter().map(|&v| v as f32).collect();
            let len = g.output_len().max(g.pool_output_len());
            let gy: Vec<f32> = rng.vec(len).iter().map(|&v| v as f32).collect();
            let gy = &gy[..g.output_len()];
            let one = run(1, g, &x, &f, gy);
            assert_eq!(one, run(3, g, &x, &f, gy), "{g:?}");
            assert_eq!(one, run(2, g, &x, &f, gy), "{g:?}");
        }
    }

    #[test]
    fn large_filter_gradient_splits_rows_deterministically() {
        // Too big a filter for partial sums: each block's GEMM is split over
        // row ranges of the filter gradient instead.
        let g = geom([1, 4, 5, 1024], [3, 3, 1024, 256], [1, 1], [1, 1], Padding::Same);
        assert!(FILTER_PARTIAL_BUDGET / g.filter_len() < 2);
        let mut rng = Rng(8);
        let x = rng.vec(g.input_len());
        let gy = rng.vec(g.output_len());
        let want = naive_bwd_filter(&g, &x, &gy);
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| conv2d_backprop_filter(&g, &x, &gy))
        };
        let one = run(1);
        assert_close(&one, &want, 1e-11, "df");
        assert_eq!(one, run(3));
    }

    /// Pool geometries including SAME windows that hit every border.
    fn pool_cases() -> Vec<Conv2dGeometry> {
        let mut cases = Vec::new();
        for (h, w) in [(5, 5), (6, 7), (4, 3), (1, 1), (2, 6)] {
            for k in [[1, 1], [2, 2], [3, 3], [2, 3]] {
                for s in [[1, 1], [2, 2], [3, 2]] {
                    for p in [Padding::Same, Padding::Valid] {
                        cases.push(Conv2dGeometry::pool([2, h, w, 3], k, s, p).unwrap());
                    }
                }
            }
        }
        let big = Conv2dGeometry::pool([4, 48, 48, 16], [3, 3], [2, 2], Padding::Same).unwrap();
        assert!(is_large(pool_work(&big)));
        cases.push(big);
        cases
    }

    #[test]
    fn pools_match_naive_reference() {
        let mut rng = Rng(5);
        for g in &pool_cases() {
            let x = rng.vec(g.input_len());
            let gy = rng.vec(g.pool_output_len());
            let what = format!("{g:?}");
            assert_close(&max_pool2d(g, &x), &naive_max_pool(g, &x), 0.0, &what);
            assert_close(&avg_pool2d(g, &x), &naive_avg_pool(g, &x), 1e-12, &what);
            assert_close(
                &max_pool2d_grad(g, &x, &gy),
                &naive_max_pool_grad(g, &x, &gy),
                1e-12,
                &what,
            );
            assert_close(&avg_pool2d_grad(g, &gy), &naive_avg_pool_grad(g, &gy), 1e-12, &what);
        }
    }

    #[test]
    fn pools_match_hand_computed_tensorflow_values() {
        // tf.nn.{max,avg}_pool2d(arange(1..=9) as [1,3,3,1], 2, 1, SAME):
        // padding only at the bottom / right, averages over real elements.
        let x: Vec<f64> = (1..=9).map(f64::from).collect();
        let g = Conv2dGeometry::pool([1, 3, 3, 1], [2, 2], [1, 1], Padding::Same).unwrap();
        assert_eq!(max_pool2d(&g, &x), vec![5.0, 6.0, 6.0, 8.0, 9.0, 9.0, 8.0, 9.0, 9.0]);
        assert_eq!(avg_pool2d(&g, &x), vec![3.0, 4.0, 4.5, 6.0, 7.0, 7.5, 7.5, 8.5, 9.0]);
        // Overlapping windows accumulate gradient on the shared maximum.
        assert_eq!(
            max_pool2d_grad(&g, &x, &[1.0; 9]),
            vec![0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 0.0, 2.0, 4.0]
        );
        assert_eq!(
            avg_pool2d_grad(&g, &[1.0; 9]),
            vec![0.25, 0.5, 0.75, 0.5, 1.0, 1.5, 0.75, 1.5, 2.25]
        );
        // 3x3 window, stride 2, SAME on 5x5: corner windows see 4 elements.
        let x: Vec<f64> = (0..25).map(f64::from).collect();
        let g = Conv2dGeometry::pool([1, 5, 5, 1], [3, 3], [2, 2], Padding::Same).unwrap();
        assert_eq!(
            avg_pool2d(&g, &x),
            vec![3.0, 4.5, 6.0, 10.5, 12.0, 13.5, 18.0, 19.5, 21.0]
        );
    }

    #[test]
    fn max_pool_grad_wide_index_fallback() {
        let mut rng = Rng(9);
        for g in &pool_cases()[..40] {
            let x = rng.vec(g.input_len());
            let gy = rng.vec(g.pool_output_len());
            let got = max_pool2d_grad_with::<f64, usize>(g, &x, &gy);
            assert_close(&got, &naive_max_pool_grad(g, &x, &gy), 1e-12, "usize");
        }
    }

    #[test]
    fn max_pool_ties_and_nans() {
        // Ties go to the first element in row-major window order.
        let g = Conv2dGeometry::pool([1, 2, 2, 1], [2, 2], [1, 1], Padding::Valid).unwrap();
        assert_eq!(max_pool2d_grad(&g, &[1.0; 4], &[3.0]), vec![3.0, 0.0, 0.0, 0.0]);
        let g = Conv2dGeometry::pool([1, 1, 3, 2], [1, 2], [1, 1], Padding::Same).unwrap();
        let x = [2.0, 0.0, 2.0, 5.0, 1.0, 5.0];
        assert_eq!(max_pool2d(&g, &x), vec![2.0, 5.0, 2.0, 5.0, 1.0, 5.0]);
        assert_eq!(
            max_pool2d_grad(&g, &x, &[1.0, 10.0, 100.0, 1000.0, 1e4, 1e5]),
            vec![1.0, 0.0, 100.0, 1010.0, 1e4, 1e5]
        );
        // NaNs propagate and take the gradient.
        let g = Conv2dGeometry::pool([1, 1, 3, 1], [1, 3], [1, 1], Padding::Valid).unwrap();
        let x = [1.0f32, f32::NAN, 3.0];
        assert!(max_pool2d(&g, &x)[0].is_nan());
        assert_eq!(max_pool2d_grad(&g, &x, &[1.0]), vec![0.0, 1.0, 0.0]);
    }

    #[test]
    fn pool_grads_match_finite_differences() {
        let mut rng = Rng(6);
        let cases = [
            Conv2dGeometry::pool([2, 5, 5, 2], [3, 3], [2, 2], Padding::Same).unwrap(),
            Conv2dGeometry::pool([2, 6, 7, 3], [2, 3], [2, 1], Padding::Same).unwrap(),
            Conv2dGeometry::pool([1, 6, 5, 2], [3, 2], [1, 2], Padding::Valid).unwrap(),
        ];
        for g in &cases {
            let x = rng.vec(g.input_len());
            let gy = rng.vec(g.pool_output_len());
            let num = numeric_grad(&x, 1e-6, |x| dot(&max_pool2d(g, x), &gy));
            assert_close(&max_pool2d_grad(g, &x, &gy), &num, 1e-6, "max");
            let num = numeric_grad(&x, 1e-6, |x| dot(&avg_pool2d(g, x), &gy));
            assert_close(&avg_pool2d_grad(g, &gy), &num, 1e-6, "avg");
        }
    }

    #[test]
    fn dilated_pool_skips_taps() {
        // Pools honour dilations given through `new`.
        let g = geom([1, 1, 5, 1], [1, 3, 1, 1], [1, 1], [1, 2], Padding::Valid);
        let x = [1.0, 9.0, 2.0, 9.0, 3.0];
        assert_eq!(max_pool2d(&g, &x), vec![3.0]);
        assert_eq!(avg_pool2d(&g, &x), vec![2.0]);
        assert_eq!(max_pool2d_grad(&g, &x, &[1.0]), vec![0.0, 0.0, 0.0, 0.0, 1.0]);
    }
}
