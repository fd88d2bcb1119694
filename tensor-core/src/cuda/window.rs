//! Convolutions and pooling (NHWC data, HWIO filters), forward and both backprops, as direct
//! kernels: one thread per output element gathers its window (the backprops gather the
//! windows that touch it instead of scattering with atomics), so results do not depend on
//! scheduling; the filter gradient, a sum over the batch and the image, takes a block per
//! filter element with a tree in shared memory. These kernels sum in double. The CPU
//! kernels' rules are kept: padded taps never count, max pooling keeps the first maximum and
//! the first NaN, its gradient goes to that position only.
//!
//! These are correct everywhere and take small windows and thin products; larger
//! convolutions and filter gradients run as a patches kernel ([`WindowOp::Patches`], im2col)
//! feeding one cuBLAS GEMM (`super::conv_gemm`).

use super::kernel::{ctype, Kernel, PRELUDE};
use super::launch::{Arg, Launch, THREADS};
use crate::kernels::conv::Conv2dGeometry;
use crate::{Op, PoolKind, Tensor, TensorSpec};
use cudarc::driver::DeviceRepr;

/// Which window kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WindowOp {
    /// `conv2d`.
    Conv,
    /// `conv2d_backprop_input`.
    ConvInput,
    /// `conv2d_backprop_filter`.
    ConvFilter,
    /// `max_pool2d` or `avg_pool2d`.
    Pool(PoolKind),
    /// Their gradients.
    PoolGrad(PoolKind),
    /// Max pooling's gradient's gradient (`MaxPoolGradGrad`): the second input at each
    /// window's argmax.
    MaxPoolGradGrad,
    /// The patches matrix of a convolution's input (im2col), for a GEMM on cuBLAS.
    Patches,
}

impl WindowOp {
    /// Every window kernel (for the tests' list of kernels).
    #[cfg(test)]
    pub(crate) const ALL: [WindowOp; 9] = [
        WindowOp::Conv,
        WindowOp::ConvInput,
        WindowOp::ConvFilter,
        WindowOp::Pool(PoolKind::Max),
        WindowOp::Pool(PoolKind::Avg),
        WindowOp::PoolGrad(PoolKind::Max),
        WindowOp::PoolGrad(PoolKind::Avg),
        WindowOp::MaxPoolGradGrad,
        WindowOp::Patches,
    ];

    /// A name for the kernel key.
    pub(crate) fn name(self) -> &'static str {
        match self {
            WindowOp::Conv => "conv2d",
            WindowOp::ConvInput => "conv2d_input",
            WindowOp::ConvFilter => "conv2d_filter",
            WindowOp::Pool(k) => k.name(),
            WindowOp::PoolGrad(k) => k.grad_name(),
            WindowOp::MaxPoolGradGrad => "max_pool2d_grad_grad",
            WindowOp::Patches => "conv2d_patches",
        }
    }
}

/// [`Conv2dGeometry`] as the CUDA `struct Window` (all signed 64-bit).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Window {
    n: i64,
    h: i64,
    w: i64,
    c_in: i64,
    kh: i64,
    kw: i64,
    c_out: i64,
    sh: i64,
    sw: i64,
    dh: i64,
    dw: i64,
    oh: i64,
    ow: i64,
    pad_top: i64,
    pad_left: i64,
}

// SAFETY: plain `repr(C)` integers, the same layout as the CUDA struct.
unsafe impl DeviceRepr for Window {}

impl From<&Conv2dGeometry> for Window {
    fn from(g: &Conv2dGeometry) -> Window {
        let i = |v: usize| v as i64;
        Window {
            n: i(g.n),
            h: i(g.h),
            w: i(g.w),
            c_in: i(g.c_in),
            kh: i(g.kh),
            kw: i(g.kw),
            c_out: i(g.c_out),
            sh: i(g.sh),
            sw: i(g.sw),
            dh: i(g.dh),
            dw: i(g.dw),
            oh: i(g.oh),
            ow: i(g.ow),
            pad_top: i(g.pad_top),
            pad_left: i(g.pad_left),
        }
    }
}

/// The struct, and the output coordinate `o`'s window: `iy = o * s - pad + k * d`.
const WINDOW: &str = r#"
struct Window { long long n, h, w, c_in, kh, kw, c_out, sh, sw, dh, dw, oh, ow, pad_top, pad_left; };
/* Real taps of the window of output row oy (or column): how many (padding never counts). */
__device__ long long ff_taps(long long o, long long s, long long pad, long long d, long long k, long long len) {
    long long count = 0;
    for (long long t = 0; t < k; ++t) { long long i = o * s - pad + t * d; if (i >= 0 && i < len) ++count; }
    return count;
}
/* The output coordinate whose tap t lands on input coordinate i, or -1. */
__device__ long long ff_source(long long i, long long s, long long pad, long long d, long long t, long long outs) {
    long long q = i + pad - t * d;
    if (q < 0 || q % s != 0 || q / s >= outs) return -1;
    return q / s;
}
/* Runs its body for each real tap (iy, ix) of output (b, oy, ox)'s window, tap (ky, kx). */
#define FF_FOR_TAPS(...) \
    for (long long ky = 0; ky < g.kh; ++ky) { \
        long long iy = oy * g.sh - g.pad_top + ky * g.dh; \
        if (iy < 0 || iy >= g.h) continue; \
        for (long long kx = 0; kx < g.kw; ++kx) { \
            long long ix = ox * g.sw - g.pad_left + kx * g.dw; \
            if (ix < 0 || ix >= g.w) continue; \
            __VA_ARGS__ \
        } \
    }
/* Runs its body for each output (oy, ox) whose window covers input (iy, ix), with its tap. */
#define FF_FOR_SOURCES(...) \
    for (long long ky = 0; ky < g.kh; ++ky) { \
        long long oy = ff_source(iy, g.sh, g.pad_top, g.dh, ky, g.oh); \
        if (oy < 0) continue; \
        for (long long kx = 0; kx < g.kw; ++kx) { \
            long long ox = ff_source(ix, g.sw, g.pad_left, g.dw, kx, g.ow); \
            if (ox < 0) continue; \
            __VA_ARGS__ \
        } \
    }
/* Max pooling's winner: the first tap holding the window's maximum (the first NaN beats any number). */
template <typename T>
__device__ long long ff_argmax(const T* x, Window g, long long b, long long oy, long long ox, long long c) {
    long long best = -1; double bv = 0.0;
    FF_FOR_TAPS(
        double v = (double)x[((b * g.h + iy) * g.w + ix) * g.c_in + c];
        if (best < 0 || v > bv || (isnan(v) && !isnan(bv))) { best = iy * g.w + ix; bv = v; }
    )
    return best;
}
"#;

/// The CUDA source of a window kernel (see [`Kernel::source`]).
pub(crate) fn source(kernel: Kernel, name: &str) -> String {
    let Kernel::Window(op, dtype) = kernel else {
        unreachable!("not a window kernel: {kernel:?}")
    };
    let t = ctype(dtype);
    let head = format!("{PRELUDE}{WINDOW}");
    let body = match op {
        WindowOp::Conv => format!(
            r#"
extern "C" __global__ void {name}(const {t}* x, const {t}* f, {t}* out, unsigned long long n, Window g) {{
    GRID_STRIDE(i, n) {{
        long long co = (long long)(i % g.c_out), r = (long long)(i / g.c_out);
        long long ox = r % g.ow; r /= g.ow; long long oy = r % g.oh, b = r / g.oh;
        double acc = 0.0;
        FF_FOR_TAPS(
            const {t}* xs = x + ((b * g.h + iy) * g.w + ix) * g.c_in;
            const {t}* fs = f + (ky * g.kw + kx) * g.c_in * g.c_out + co;
            for (long long ci = 0; ci < g.c_in; ++ci) acc += (double)xs[ci] * (double)fs[ci * g.c_out];
        )
        out[i] = ({t})acc;
    }}
}}
"#
        ),
        WindowOp::ConvInput => format!(
            r#"
extern "C" __global__ void {name}(const {t}* f, const {t}* up, {t}* out, unsigned long long n, Window g) {{
    GRID_STRIDE(i, n) {{
        long long ci = (long long)(i % g.c_in), r = (long long)(i / g.c_in);
        long long ix = r % g.w; r /= g.w; long long iy = r % g.h, b = r / g.h;
        double acc = 0.0;
        FF_FOR_SOURCES(
            const {t}* us = up + ((b * g.oh + oy) * g.ow + ox) * g.c_out;
            const {t}* fs = f + ((ky * g.kw + kx) * g.c_in + ci) * g.c_out;
            for (long long co = 0; co < g.c_out; ++co) acc += (double)us[co] * (double)fs[co];
        )
        out[i] = ({t})acc;
    }}
}}
"#
        ),
        WindowOp::ConvFilter => format!(
            r#"
extern "C" __global__ void {name}(const {t}* x, const {t}* up, {t}* out, unsigned long long n, Window g) {{
    __shared__ double part[{THREADS}];
    long long terms = g.n * g.oh * g.ow;
    for (unsigned long long i = blockIdx.x; i < n; i += gridDim.x) {{
        long long co = (long long)(i % g.c_out), r = (long long)(i / g.c_out);
        long long ci = r % g.c_in; r /= g.c_in; long long kx = r % g.kw, ky = r / g.kw;
        double acc = 0.0;
        for (long long p = threadIdx.x; p < terms; p += blockDim.x) {{
            long long ox = p % g.ow, q = p / g.ow; long long oy = q % g.oh, b = q / g.oh;
            long long iy = oy * g.sh - g.pad_top + ky * g.dh, ix = ox * g.sw - g.pad_left + kx * g.dw;
            if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) continue;
            acc += (double)x[((b * g.h + iy) * g.w + ix) * g.c_in + ci] * (double)up[p * g.c_out + co];
        }}
        double total = ff_block_sum(part, acc);
        if (threadIdx.x == 0) out[i] = ({t})total;
    }}
}}
"#
        ),
        WindowOp::Patches => format!(
            r#"
extern "C" __global__ void {name}(const {t}* x, {t}* out, unsigned long long n, Window g) {{
    long long depth = g.kh * g.kw * g.c_in;
    GRID_STRIDE(i, n) {{
        long long col = (long long)(i % depth), r = (long long)(i / depth);
        long long ci = col % g.c_in, q = col / g.c_in; long long kx = q % g.kw, ky = q / g.kw;
        long long ox = r % g.ow; r /= g.ow; long long oy = r % g.oh, b = r / g.oh;
        long long iy = oy * g.sh - g.pad_top + ky * g.dh, ix = ox * g.sw - g.pad_left + kx * g.dw;
        bool inside = iy >= 0 && iy < g.h && ix >= 0 && ix < g.w;
        out[i] = inside ? x[((b * g.h + iy) * g.w + ix) * g.c_in + ci] : ({t})0;
    }}
}}
"#
        ),
        WindowOp::Pool(kind) => {
            let (combine, finish) = match kind {
                PoolKind::Max => (
                    "if (count == 0 || v > acc || (isnan(v) && !isnan(acc))) acc = v;",
                    "acc",
                ),
                PoolKind::Avg => ("acc += v;", "(count == 0 ? 0.0 : acc / (double)count)"),
            };
            format!(
                r#"
extern "C" __global__ void {name}(const {t}* x, {t}* out, unsigned long long n, Window g) {{
    GRID_STRIDE(i, n) {{
        long long c = (long long)(i % g.c_in), r = (long long)(i / g.c_in);
        long long ox = r % g.ow; r /= g.ow; long long oy = r % g.oh, b = r / g.oh;
        double acc = 0.0; long long count = 0;
        FF_FOR_TAPS(
            double v = (double)x[((b * g.h + iy) * g.w + ix) * g.c_in + c];
            {combine}
            ++count;
        )
        out[i] = ({t})({finish});
    }}
}}
"#
            )
        }
        WindowOp::MaxPoolGradGrad => format!(
            r#"
extern "C" __global__ void {name}(const {t}* x, const {t}* grad, {t}* out, unsigned long long n, Window g) {{
    GRID_STRIDE(i, n) {{
        long long c = (long long)(i % g.c_in), r = (long long)(i / g.c_in);
        long long ox = r % g.ow; r /= g.ow; long long oy = r % g.oh, b = r / g.oh;
        long long at = ff_argmax(x, g, b, oy, ox, c);
        out[i] = at < 0 ? ({t})0 : grad[(b * g.h * g.w + at) * g.c_in + c];
    }}
}}
"#
        ),
        WindowOp::PoolGrad(kind) => {
            let term = match kind {
                PoolKind::Max => {
                    "if (ff_argmax(x, g, b, oy, ox, c) == iy * g.w + ix) acc += (double)up[((b * g.oh + oy) * g.ow + ox) * g.c_in + c];"
                }
                PoolKind::Avg => {
                    "acc += (double)up[((b * g.oh + oy) * g.ow + ox) * g.c_in + c] / (double)(ff_taps(oy, g.sh, g.pad_top, g.dh, g.kh, g.h) * ff_taps(ox, g.sw, g.pad_left, g.dw, g.kw, g.w));"
                }
            };
            format!(
                r#"
extern "C" __global__ void {name}(const {t}* x, const {t}* up, {t}* out, unsigned long long n, Window g) {{
    GRID_STRIDE(i, n) {{
        long long c = (long long)(i % g.c_in), r = (long long)(i / g.c_in);
        long long ix = r % g.w; r /= g.w; long long iy = r % g.h, b = r / g.h;
        double acc = 0.0;
        (void)x;
        FF_FOR_SOURCES({term})
        out[i] = ({t})acc;
    }}
}}
"#
            )
        }
    };
    head + &body
}

/// The launch of a convolution or pooling `op`, if there is a kernel for it.
pub(crate) fn plan(op: &Op, inputs: &[&Tensor], out: &[TensorSpec]) -> Option<Launch> {
    let dtype = inputs.first()?.dtype();
    if !dtype.is_float() {
        return None;
    }
    let dims: smallvec::SmallVec<[&[usize]; 2]> = inputs.iter().map(|t| t.dims()).collect();
    let (kind, g) = geometry(op, &dims)?;
    let n: usize = out[0].shape.dims().iter().product();
    let mut args: smallvec::SmallVec<[Arg; 6]> = (0..inputs.len()).map(Arg::Input).collect();
    args.extend([Arg::Output(0), Arg::U64(n as u64), Arg::Window(Window::from(&g))]);
    let kernel = Kernel::Window(kind, dtype);
    Some(if kind == WindowOp::ConvFilter {
        Launch::per_line(kernel, args, (dtype, n), n)
    } else {
        Launch::elementwise(kernel, args, (dtype, n))
    })
}

/// The window kernel and geometry of a convolution or pooling `op` on inputs of `inputs`
/// dims (shared with the GEMM path of [`super::conv_gemm`]); `None` for other ops and for
/// inputs that are not 4-d or do not fit together.
pub(crate) fn geometry(op: &Op, inputs: &[&[usize]]) -> Option<(WindowOp, Conv2dGeometry)> {
    let dims4 = |i: usize| -> Option<[usize; 4]> { <[usize; 4]>::try_from(*inputs.get(i)?).ok() };
    Some(match op {
        Op::Conv2D {
            strides,
            dilations,
            padding,
        } => (
            WindowOp::Conv,
            Conv2dGeometry::new(dims4(0)?, dims4(1)?, *strides, *dilations, *padding).ok()?,
        ),
        Op::Conv2DBackpropInput {
            input_shape,
            strides,
            dilations,
            padding,
        } => (
            WindowOp::ConvInput,
            Conv2dGeometry::new(*input_shape, dims4(0)?, *strides, *dilations, *padding).ok()?,
        ),
        Op::Conv2DBackpropFilter {
            filter_shape,
            strides,
            dilations,
            padding,
        } => (
            WindowOp::ConvFilter,
            Conv2dGeometry::new(dims4(0)?, *filter_shape, *strides, *dilations, *padding).ok()?,
        ),
        Op::Pool2D {
            kind,
            ksize,
            strides,
            padding,
        } => (
            WindowOp::Pool(*kind),
            Conv2dGeometry::pool(dims4(0)?, *ksize, *strides, *padding).ok()?,
        ),
        Op::Pool2DGrad {
            kind,
            ksize,
            strides,
            padding,
        } => (
            WindowOp::PoolGrad(*kind),
            Conv2dGeometry::pool(dims4(0)?, *ksize, *strides, *padding).ok()?,
        ),
        Op::MaxPoolGradGrad {
            ksize,
            strides,
            padding,
        } => (
            WindowOp::MaxPoolGradGrad,
            Conv2dGeometry::pool(dims4(0)?, *ksize, *strides, *padding).ok()?,
        ),
        _ => return None,
    })
}

/// The dtypes window kernels exist for.
#[cfg(test)]
pub(crate) fn kernels() -> Vec<Kernel> {
    [crate::DType::F32, crate::DType::F64]
        .into_iter()
        .flat_map(|d| WindowOp::ALL.map(|op| Kernel::Window(op, d)))
        .collect()
}
