//! Elementwise kernels generated from the op vocabulary: one CUDA source per (op, dtype),
//! compiled once by NVRTC. The expressions follow the CPU kernels' definitions
//! (`UnaryOp::apply_float`, `BinaryOp::apply_float`); float32 is evaluated in double and
//! rounded once, so each result is at least as close to exact as TensorFlow's (the oracle's
//! float32 rule) whatever the GPU's single-precision library does.
//!
//! Binary ops broadcast through a [`Geometry`] passed by value: output dimensions and each
//! input's strides (0 along broadcast axes), so no index buffer is allocated per call.

use super::buffer::{driver_error, CudaBuffer};
use super::runtime::{KernelKey, Runtime};
use crate::{BinaryOp, DType, Result, UnaryOp};
use cudarc::driver::{DeviceRepr, LaunchConfig, PushKernelArg};

/// Most dimensions a broadcast kernel handles (more fall back to the host).
pub(crate) const MAX_RANK: usize = 8;

/// Output dimensions and input strides of a broadcasting kernel, laid out as the CUDA
/// `struct Geometry` in [`PRELUDE`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Geometry {
    rank: u64,
    dims: [u64; MAX_RANK],
    a: [i64; MAX_RANK],
    b: [i64; MAX_RANK],
}

// SAFETY: plain `repr(C)` integers, the same layout as the CUDA struct.
unsafe impl DeviceRepr for Geometry {}

impl Geometry {
    /// The geometry of `out = f(a, b)` with NumPy broadcasting; `None` above [`MAX_RANK`].
    pub(crate) fn broadcast(out: &[usize], a: &[usize], b: &[usize]) -> Option<Geometry> {
        if out.len() > MAX_RANK {
            return None;
        }
        let mut g = Geometry {
            rank: out.len() as u64,
            ..Default::default()
        };
        for (dst, dims) in [(&mut g.a, a), (&mut g.b, b)] {
            let offset = out.len() - dims.len();
            let mut stride = 1i64;
            for d in (0..dims.len()).rev() {
                dst[offset + d] = if dims[d] == 1 { 0 } else { stride };
                stride *= dims[d] as i64;
            }
        }
        for (d, &n) in out.iter().enumerate() {
            g.dims[d] = n as u64;
        }
        Some(g)
    }
}

/// Shared declarations of every generated source.
const PRELUDE: &str = r#"
struct Geometry {
    unsigned long long rank;
    unsigned long long dims[8];
    long long a[8];
    long long b[8];
};
#define GRID_STRIDE(i, n) \
    for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < (n); \
         i += (unsigned long long)gridDim.x * blockDim.x)
"#;

/// CUDA type name of a float dtype, and the type its arithmetic runs in.
fn types(dtype: DType) -> Option<(&'static str, &'static str)> {
    match dtype {
        DType::F32 => Some(("float", "double")),
        DType::F64 => Some(("double", "double")),
        _ => None,
    }
}

/// `x` mapped by `op`, as a CUDA expression over `double x`.
fn unary_expr(op: UnaryOp) -> String {
    use UnaryOp::*;
    const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
    const SELU_SCALE: f64 = 1.050_700_987_355_480_5;
    match op {
        Neg => "-x".into(),
        Abs => "fabs(x)".into(),
        Exp => "exp(x)".into(),
        Log => "log(x)".into(),
        Log1p => "log1p(x)".into(),
        Sqrt => "sqrt(x)".into(),
        Rsqrt => "1.0 / sqrt(x)".into(),
        Square => "x * x".into(),
        Reciprocal => "1.0 / x".into(),
        Sin => "sin(x)".into(),
        Cos => "cos(x)".into(),
        Tanh => "tanh(x)".into(),
        Sigmoid => "1.0 / (1.0 + exp(-x))".into(),
        Erf => "erf(x)".into(),
        Softplus => "(x > 0.0 ? x + log1p(exp(-x)) : log1p(exp(x)))".into(),
        Softsign => "x / (1.0 + fabs(x))".into(),
        Relu => "(x > 0.0 ? x : 0.0)".into(),
        Relu6 => "fmin(fmax(x, 0.0), 6.0)".into(),
        Elu => "(x > 0.0 ? x : expm1(x))".into(),
        Selu => format!(
            "(x > 0.0 ? {SELU_SCALE:e} * x : {:e} * expm1(x))",
            SELU_SCALE * SELU_ALPHA
        ),
        // TensorFlow's alpha and gelu constants are float32 values (see `apply_float`).
        LeakyRelu { alpha } => format!("(x > 0.0 ? x : {:e} * x)", alpha as f32 as f64),
        Gelu(crate::Gelu::Exact) => format!(
            "0.5 * x * erfc(-x * {:e})",
            std::f64::consts::FRAC_1_SQRT_2 as f32 as f64
        ),
        Gelu(crate::Gelu::Tanh) => format!(
            "0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + {:e} * x * x * x)))",
            0.044715f32 as f64
        ),
        Sign => "(x > 0.0 ? 1.0 : (x < 0.0 ? -1.0 : x))".into(),
        Floor => "floor(x)".into(),
        Ceil => "ceil(x)".into(),
        Round => "rint(x)".into(),
    }
}

/// `f(a, b)` as a CUDA expression over `double a, b`.
fn binary_expr(op: BinaryOp) -> &'static str {
    use BinaryOp::*;
    match op {
        Add => "a + b",
        Sub => "a - b",
        Mul => "a * b",
        Div => "a / b",
        Pow => "pow(a, b)",
        Maximum => "((a >= b || isnan(a)) ? a : b)",
        Minimum => "((a <= b || isnan(a)) ? a : b)",
        SquaredDifference => "(a - b) * (a - b)",
        FloorDiv => "floor(a / b)",
        FloorMod => "floor_mod(a, b)",
        SigmoidGrad => "b * a * (1.0 - a)",
        TanhGrad => "b * (1.0 - a * a)",
        ReluGrad => "(a > 0.0 ? b : 0.0)",
    }
}

/// The cache key of a unary kernel: the op's attribute bits tell apart the kernels that
/// share a name (leaky_relu's alpha, gelu's approximation).
fn unary_key(op: UnaryOp, dtype: DType) -> KernelKey {
    let bits = match op {
        UnaryOp::LeakyRelu { alpha } => alpha.to_bits(),
        UnaryOp::Gelu(crate::Gelu::Tanh) => 1,
        _ => 0,
    };
    ("unary", op.name(), bits, dtype)
}

/// The entry-point name of the kernel for `key` (unique per key).
pub(crate) fn kernel_name((family, op, bits, dtype): KernelKey) -> String {
    format!("ff_{family}_{op}_{bits:x}_{}", dtype.name())
}

/// A launch covering `n` elements with grid-stride loops.
pub(crate) fn launch_config(n: usize) -> LaunchConfig {
    const THREADS: u32 = 256;
    let blocks = n.div_ceil(THREADS as usize).clamp(1, 65_535 * 8) as u32;
    LaunchConfig {
        grid_dim: (blocks, 1, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// `y = op(x)` on a float buffer; `None` when this op or dtype stays on the host.
pub(crate) fn unary(rt: &Runtime, op: UnaryOp, dtype: DType, x: &CudaBuffer) -> Option<Result<CudaBuffer>> {
    let (t, w) = types(dtype)?;
    let key = unary_key(op, dtype);
    Some((|| {
        let src = || {
            let (name, expr) = (kernel_name(key), unary_expr(op));
            let src = format!(
                "{PRELUDE}\nextern \"C\" __global__ void {name}(const {t}* in, {t}* out, unsigned long long n) {{\n\
                 GRID_STRIDE(i, n) {{ {w} x = ({w})in[i]; out[i] = ({t})({expr}); }}\n}}\n"
            );
            (name, src)
        };
        let f = rt.kernel(key, src).map_err(|e| driver_error(op.name(), rt, e))?;
        let mut y = CudaBuffer::uninit(rt, op.name(), dtype, x.len)?;
        let n = x.len as u64;
        let mut l = rt.stream.launch_builder(&f);
        x.arg(&mut l);
        y.arg_mut(&mut l);
        l.arg(&n);
        // SAFETY: the kernel reads `n` elements of `in` and writes `n` of `out`, both that long.
        unsafe { l.launch(launch_config(x.len)) }.map_err(|e| driver_error(op.name(), rt, e))?;
        Ok(y)
    })())
}

/// `y = op(a, b)` with broadcasting on float buffers; `None` when it stays on the host.
pub(crate) fn binary(
    rt: &Runtime,
    op: BinaryOp,
    dtype: DType,
    (a, a_dims): (&CudaBuffer, &[usize]),
    (b, b_dims): (&CudaBuffer, &[usize]),
    out_dims: &[usize],
) -> Option<Result<CudaBuffer>> {
    let (t, w) = types(dtype)?;
    let geometry = Geometry::broadcast(out_dims, a_dims, b_dims)?;
    let key: KernelKey = ("binary", op.name(), 0, dtype);
    Some((|| {
        let src = || {
            let (name, expr) = (kernel_name(key), binary_expr(op));
            let src = format!(
                "{PRELUDE}\n__device__ double floor_mod(double a, double b) {{\n\
                 double r = fmod(a, b); return (r != 0.0 && ((r < 0.0) != (b < 0.0))) ? r + b : r; }}\n\
                 extern \"C\" __global__ void {name}(const {t}* pa, const {t}* pb, {t}* out, unsigned long long n, Geometry g) {{\n\
                 GRID_STRIDE(i, n) {{\n\
                   unsigned long long rem = i; long long ia = 0, ib = 0;\n\
                   for (int d = (int)g.rank - 1; d >= 0; --d) {{\n\
                     unsigned long long c = rem % g.dims[d]; rem /= g.dims[d];\n\
                     ia += (long long)c * g.a[d]; ib += (long long)c * g.b[d];\n\
                   }}\n\
                   {w} a = ({w})pa[ia]; {w} b = ({w})pb[ib];\n\
                   out[i] = ({t})({expr});\n\
                 }}\n}}\n"
            );
            (name, src)
        };
        let f = rt.kernel(key, src).map_err(|e| driver_error(op.name(), rt, e))?;
        let len: usize = out_dims.iter().product();
        let mut y = CudaBuffer::uninit(rt, op.name(), dtype, len)?;
        let n = len as u64;
        let mut l = rt.stream.launch_builder(&f);
        a.arg(&mut l);
        b.arg(&mut l);
        y.arg_mut(&mut l);
        l.arg(&n).arg(&geometry);
        // SAFETY: every index the geometry produces lies inside its input (shape inference
        // checked the broadcast); the kernel writes `n` outputs.
        unsafe { l.launch(launch_config(len)) }.map_err(|e| driver_error(op.name(), rt, e))?;
        Ok(y)
    })())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_geometry_zeroes_broadcast_strides() {
        let g = Geometry::broadcast(&[2, 3, 4], &[3, 1], &[2, 3, 4]).unwrap();
        assert_eq!(g.rank, 3);
        assert_eq!(&g.dims[..3], &[2, 3, 4]);
        assert_eq!(&g.a[..3], &[0, 1, 0]);
        assert_eq!(&g.b[..3], &[12, 4, 1]);
        assert!(Geometry::broadcast(&[1; 9], &[1], &[1]).is_none());
    }

    #[test]
    fn every_float_unary_op_has_an_expression() {
        assert!(unary_expr(UnaryOp::Sigmoid).contains("exp"));
        assert!(unary_expr(UnaryOp::LeakyRelu { alpha: 0.2 }).contains("2.0000000298023224e-1"));
        let leaky = |alpha| kernel_name(unary_key(UnaryOp::LeakyRelu { alpha }, DType::F32));
        assert!(leaky(0.2).chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        assert_ne!(leaky(0.2), leaky(0.3));
        let gelu = |g| unary_key(UnaryOp::Gelu(g), DType::F64);
        assert_ne!(gelu(crate::Gelu::Exact), gelu(crate::Gelu::Tanh));
    }
}
