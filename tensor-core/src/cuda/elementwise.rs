//! Elementwise kernels generated from the op vocabulary: unary math, `cast` and
//! `logical_not` over dense buffers; binary math, comparisons, logical ops and `where` with
//! NumPy broadcasting. The expressions follow the CPU kernels' definitions
//! (`UnaryOp::apply_float`, `BinaryOp::apply_float`, `ops::math::cast`); float32 is
//! evaluated in double and rounded once, so each result is at least as close to exact as
//! TensorFlow's (the oracle's float32 rule) whatever the GPU's single-precision library does.
//!
//! Broadcasting kernels take a [`Geometry`] by value: output dimensions and each input's
//! strides (0 along broadcast axes), with adjacent axes merged where every input allows, so
//! same-shape operands index with one division-free loop and no index buffer is allocated.

use super::kernel::{ctype, work_type, Kernel, PRELUDE};
use super::launch::{Arg, Launch};
use crate::{BinaryOp, DType, Op, Tensor, TensorSpec, UnaryOp};
use cudarc::driver::DeviceRepr;

/// Most dimensions a broadcast kernel handles after merging (more fall back to the host).
pub(crate) const MAX_RANK: usize = 8;

/// Most inputs of a broadcasting kernel (`where` has three).
const MAX_INPUTS: usize = 3;

/// Output dimensions and input strides of a broadcasting kernel, laid out as the CUDA
/// `struct Geometry` of [`GEOMETRY`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Geometry {
    rank: u64,
    dims: [u64; MAX_RANK],
    strides: [[i64; MAX_RANK]; MAX_INPUTS],
}

// SAFETY: plain `repr(C)` integers, the same layout as the CUDA struct.
unsafe impl DeviceRepr for Geometry {}

const GEOMETRY: &str = r#"
struct Geometry {
    unsigned long long rank;
    unsigned long long dims[8];
    long long strides[3][8];
};
"#;

impl Geometry {
    /// The geometry of `out = f(inputs...)` with NumPy broadcasting; `None` when more than
    /// [`MAX_RANK`] axes remain after merging.
    pub(crate) fn broadcast(out: &[usize], inputs: &[&[usize]]) -> Option<Geometry> {
        debug_assert!(inputs.len() <= MAX_INPUTS);
        // Per output axis: its size and each input's stride along it.
        let mut axes: Vec<(usize, [i64; MAX_INPUTS])> = Vec::with_capacity(out.len());
        let mut strides = [[0i64; MAX_INPUTS]; 16];
        if out.len() > strides.len() {
            return None;
        }
        for (k, dims) in inputs.iter().enumerate() {
            let offset = out.len() - dims.len();
            let mut stride = 1i64;
            for d in (0..dims.len()).rev() {
                strides[offset + d][k] = if dims[d] == 1 { 0 } else { stride };
                stride *= dims[d] as i64;
            }
        }
        for (d, &n) in out.iter().enumerate() {
            if n == 1 {
                continue; // contributes nothing to any index
            }
            match axes.last_mut() {
                // Merge into the previous (outer) axis when, for every input, stepping the
                // outer axis once equals stepping this one `n` times.
                Some((m, s)) if (0..MAX_INPUTS).all(|k| s[k] == strides[d][k] * n as i64) => {
                    *m *= n;
                    *s = strides[d];
                }
                _ => axes.push((n, strides[d])),
            }
        }
        if axes.len() > MAX_RANK {
            return None;
        }
        let mut g = Geometry {
            rank: axes.len() as u64,
            ..Default::default()
        };
        for (d, (n, s)) in axes.into_iter().enumerate() {
            g.dims[d] = n as u64;
            for (strides, stride) in g.strides.iter_mut().zip(s) {
                strides[d] = stride;
            }
        }
        Some(g)
    }
}

/// `x` mapped by `op`, as a CUDA expression over `double x`.
pub(crate) fn unary_expr(op: UnaryOp) -> String {
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
        Erfc => "erfc(x)".into(),
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

/// The bits of a unary op's attribute that tell apart kernels sharing a name (leaky_relu's
/// alpha, gelu's approximation).
pub(crate) fn unary_bits(op: UnaryOp) -> u64 {
    match op {
        UnaryOp::LeakyRelu { alpha } => alpha.to_bits(),
        UnaryOp::Gelu(crate::Gelu::Tanh) => 1,
        _ => 0,
    }
}

/// `f(a, b)` as a CUDA expression over `double a, b` (`floor_mod` needs [`FLOOR_MOD`]).
pub(crate) fn binary_expr(op: BinaryOp) -> &'static str {
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
        FloorMod => "ff_floor_mod(a, b)",
        SigmoidGrad => "b * a * (1.0 - a)",
        TanhGrad => "b * (1.0 - a * a)",
        ReluGrad => "(a > 0.0 ? b : 0.0)",
    }
}

/// `cast` of `double x` (or `long long x` from int64 to int32 or float32) to `to`, as the
/// CPU kernel does it: through float64, saturating into integers with NaN as 0, non-zero as
/// `true`; int64 to float32 rounds once.
fn cast_expr(from: DType, to: DType) -> &'static str {
    match (from, to) {
        (DType::I64, DType::I32) => "(int)x",
        (DType::I64, DType::F32) => "(float)x",
        (_, DType::F32) => "(float)x",
        (_, DType::F64) => "x",
        (_, DType::I32) => "(isnan(x) ? 0 : (x >= 2147483648.0 ? 2147483647 : (x <= -2147483649.0 ? (-2147483647 - 1) : (int)x)))",
        (_, DType::I64) => "(isnan(x) ? 0LL : (x >= 9223372036854775808.0 ? 9223372036854775807LL : (x < -9223372036854775808.0 ? (-9223372036854775807LL - 1) : (long long)x)))",
        (_, DType::Bool) => "(x != 0.0 ? 1 : 0)",
    }
}

/// The device function behind `floor_mod`: the remainder with the divisor's sign, as
/// Python's `%` and TensorFlow's `floormod`.
pub(crate) const FLOOR_MOD: &str = "
__device__ double ff_floor_mod(double a, double b) {
    double r = fmod(a, b); return (r != 0.0 && ((r < 0.0) != (b < 0.0))) ? r + b : r; }
";

/// The CUDA source of an elementwise kernel (see [`Kernel::source`]).
pub(crate) fn source(kernel: Kernel, name: &str) -> String {
    match kernel {
        Kernel::Unary(op, dtype) => dense(name, dtype, work_type(dtype), dtype, &unary_expr(op)),
        Kernel::Cast(from, to) => {
            let w = if from == DType::I64 && matches!(to, DType::I32 | DType::F32) {
                "long long"
            } else {
                "double"
            };
            dense(name, from, w, to, cast_expr(from, to))
        }
        Kernel::LogicalNot => dense(name, DType::Bool, "int", DType::Bool, "(x ? 0 : 1)"),
        Kernel::Binary(op, dtype) => broadcasting(name, &[dtype, dtype], dtype, binary_expr(op)),
        Kernel::Compare(op, dtype) => {
            let expr = format!("((a {} b) ? 1 : 0)", compare_operator(op));
            broadcasting(name, &[dtype, dtype], DType::Bool, &expr)
        }
        Kernel::Logical(op) => {
            let expr = match op {
                crate::LogicalOp::And => "((a && b) ? 1 : 0)",
                crate::LogicalOp::Or => "((a || b) ? 1 : 0)",
            };
            broadcasting(name, &[DType::Bool, DType::Bool], DType::Bool, expr)
        }
        Kernel::Select(dtype) => broadcasting(name, &[DType::Bool, dtype, dtype], dtype, "(a ? b : c)"),
        _ => unreachable!("not an elementwise kernel: {kernel:?}"),
    }
}

/// The C operator of a comparison.
fn compare_operator(op: crate::CompareOp) -> &'static str {
    use crate::CompareOp::*;
    match op {
        Equal => "==",
        NotEqual => "!=",
        Less => "<",
        LessEqual => "<=",
        Greater => ">",
        GreaterEqual => ">=",
    }
}

/// `out[i] = expr(x = in[i])` over dense buffers.
fn dense(name: &str, from: DType, w: &str, to: DType, expr: &str) -> String {
    let (t, o) = (ctype(from), ctype(to));
    format!(
        "{PRELUDE}\nextern \"C\" __global__ void {name}(const {t}* in, {o}* out, unsigned long long n) {{\n\
         GRID_STRIDE(i, n) {{ {w} x = ({w})in[i]; out[i] = ({o})({expr}); }}\n}}\n"
    )
}

/// `out[i] = expr(a, b[, c])` with each input indexed through the geometry.
fn broadcasting(name: &str, inputs: &[DType], to: DType, expr: &str) -> String {
    let vars = ["a", "b", "c"];
    let params: String = inputs
        .iter()
        .enumerate()
        .map(|(k, &d)| format!("const {}* p{k}, ", ctype(d)))
        .collect();
    let offsets: String = (0..inputs.len())
        .map(|k| format!("o{k} += q * g.strides[{k}][d]; "))
        .collect();
    let loads: String = inputs
        .iter()
        .enumerate()
        .map(|(k, &d)| format!("{w} {v} = ({w})p{k}[o{k}]; ", w = work_type(d), v = vars[k]))
        .collect();
    let o = ctype(to);
    format!(
        "{PRELUDE}{GEOMETRY}{FLOOR_MOD}\n\
         extern \"C\" __global__ void {name}({params}{o}* out, unsigned long long n, Geometry g) {{\n\
         GRID_STRIDE(i, n) {{\n\
           unsigned long long rem = i; long long o0 = 0, o1 = 0, o2 = 0;\n\
           for (int d = (int)g.rank - 1; d >= 0; --d) {{\n\
             long long q = (long long)(rem % g.dims[d]); rem /= g.dims[d];\n\
             {offsets}\n\
           }}\n\
           (void)o1; (void)o2;\n\
           {loads}\n\
           out[i] = ({o})({expr});\n\
         }}\n}}\n"
    )
}

/// The launch computing an elementwise `op` on `inputs` into `out`, if there is a kernel.
pub(crate) fn plan(op: &Op, inputs: &[&Tensor], out: &[TensorSpec]) -> Option<Launch> {
    let dtype = inputs.first()?.dtype();
    let float = dtype.is_float();
    let kernel = match op {
        Op::Unary(u) if float => Kernel::Unary(*u, dtype),
        Op::Cast { dtype: to } if *to != dtype => Kernel::Cast(dtype, *to),
        Op::LogicalNot => Kernel::LogicalNot,
        Op::Binary(b) if float => Kernel::Binary(*b, dtype),
        Op::Compare(c) if dtype != DType::Bool => Kernel::Compare(*c, dtype),
        Op::Logical(l) => Kernel::Logical(*l),
        Op::Select => Kernel::Select(inputs.get(1)?.dtype()),
        _ => return None,
    };
    let n = out[0].shape.dims().iter().product::<usize>();
    let mut args: smallvec::SmallVec<[Arg; 6]> = (0..inputs.len()).map(Arg::Input).collect();
    args.push(Arg::Output(0));
    args.push(Arg::U64(n as u64));
    if inputs.len() > 1 {
        let dims: smallvec::SmallVec<[&[usize]; 3]> = inputs.iter().map(|t| t.dims()).collect();
        args.push(Arg::Geometry(Geometry::broadcast(out[0].shape.dims(), &dims)?));
    }
    Some(Launch::elementwise(kernel, args, (out[0].dtype, n)))
}

/// The launch of `a ∘ b` for two float buffers of the same `dims` (variable updates).
pub(crate) fn plan_same_shape(op: BinaryOp, dtype: DType, dims: &[usize]) -> Option<Launch> {
    if !dtype.is_float() {
        return None;
    }
    let n = dims.iter().product::<usize>();
    let g = Geometry::broadcast(dims, &[dims, dims])?;
    let args = smallvec::smallvec![
        Arg::Input(0),
        Arg::Input(1),
        Arg::Output(0),
        Arg::U64(n as u64),
        Arg::Geometry(g)
    ];
    Some(Launch::elementwise(Kernel::Binary(op, dtype), args, (dtype, n)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_geometry_zeroes_broadcast_strides_and_merges_axes() {
        let g = Geometry::broadcast(&[2, 3, 4], &[&[3, 1], &[2, 3, 4]]).unwrap();
        assert_eq!(g.rank, 3);
        assert_eq!(&g.dims[..3], &[2, 3, 4]);
        assert_eq!(&g.strides[0][..3], &[0, 1, 0]);
        assert_eq!(&g.strides[1][..3], &[12, 4, 1]);
        // Same shapes merge into one axis; a trailing broadcast keeps two.
        let same = Geometry::broadcast(&[2, 3, 4], &[&[2, 3, 4], &[2, 3, 4]]).unwrap();
        assert_eq!((same.rank, same.dims[0], same.strides[0][0]), (1, 24, 1));
        let row = Geometry::broadcast(&[5, 1, 4], &[&[5, 1, 4], &[4]]).unwrap();
        assert_eq!(
            (row.rank, &row.dims[..2], &row.strides[1][..2]),
            (2, &[5u64, 4][..], &[0i64, 1][..])
        );
        let nine: Vec<usize> = (0..9).map(|i| 2 + i % 2).collect();
        let alternating: Vec<usize> = nine
            .iter()
            .enumerate()
            .map(|(i, &d)| if i % 2 == 0 { d } else { 1 })
            .collect();
        assert!(Geometry::broadcast(&nine, &[&nine, &alternating]).is_none());
    }

    #[test]
    fn unary_expressions_keep_tensorflow_constants() {
        assert!(unary_expr(UnaryOp::Sigmoid).contains("exp"));
        assert!(unary_expr(UnaryOp::LeakyRelu { alpha: 0.2 }).contains("2.0000000298023224e-1"));
        assert_ne!(
            unary_bits(UnaryOp::Gelu(crate::Gelu::Exact)),
            unary_bits(UnaryOp::Gelu(crate::Gelu::Tanh))
        );
    }
}
