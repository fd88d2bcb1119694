//! `softmax`, `log_softmax` and the fused softmax cross-entropies: one block per line along
//! the class axis, computed in double from the shifted logits as the CPU kernels are (the
//! line's maximum, ignoring NaN, is subtracted, or 0 when it is not finite; then
//! `lse = log(sum(exp(x - max)))`, and a loss term is `lse - (x - max)`). The CPU kernels'
//! `log1p` of the sum without the maximum's term keeps a float32 small loss accurate; for
//! float32 inputs, computing in double does the same.
//!
//! Sparse labels outside `[0, classes)` give a NaN loss, as TensorFlow does on GPUs; the
//! caller reports them as errors when the labels are readable on the host without a copy.

use super::kernel::{ctype, Kernel, PRELUDE};
use super::launch::{Arg, Launch, THREADS};
use super::reduce::{Lines, LINES};
use crate::{Op, Tensor, TensorSpec};

/// Block-wide `max` (NaN ignored) and `log(sum(exp(x - max)))` of line `start`, leaving
/// them in `m` and `lse` for every thread.
fn line_lse(t: &str) -> String {
    format!(
        r#"
__device__ void ff_line_lse(const {t}* x, Lines g, unsigned long long start, double* part, double* m_out, double* lse_out) {{
    double m = -FF_INF;
    for (unsigned long long k = threadIdx.x; k < g.n; k += blockDim.x) m = fmax(m, (double)x[start + k * g.inner]);
    part[threadIdx.x] = m;
    __syncthreads();
    for (unsigned int s = blockDim.x / 2; s > 0; s >>= 1) {{
        if (threadIdx.x < s) part[threadIdx.x] = fmax(part[threadIdx.x], part[threadIdx.x + s]);
        __syncthreads();
    }}
    m = part[0];
    __syncthreads();
    if (isinf(m) || isnan(m)) m = 0.0;
    double sum = 0.0;
    for (unsigned long long k = threadIdx.x; k < g.n; k += blockDim.x) sum += exp((double)x[start + k * g.inner] - m);
    *m_out = m;
    *lse_out = log(ff_block_sum(part, sum));
}}
"#
    )
}

/// The CUDA source of a softmax-family kernel (see [`Kernel::source`]).
pub(crate) fn source(kernel: Kernel, name: &str) -> String {
    let dtype = match kernel {
        Kernel::Softmax(_, d) | Kernel::SoftmaxXent(d) | Kernel::SparseXent(_, d) => d,
        _ => unreachable!("not a softmax kernel: {kernel:?}"),
    };
    let t = ctype(dtype);
    let head = format!("{PRELUDE}{LINES}{}", line_lse(t));
    let body = match kernel {
        Kernel::Softmax(log, _) => {
            let value = if log { "z" } else { "exp(z)" };
            format!(
                r#"
extern "C" __global__ void {name}(const {t}* x, {t}* out, Lines g) {{
    __shared__ double part[{THREADS}];
    for (unsigned long long l = blockIdx.x; l < g.lines; l += gridDim.x) {{
        unsigned long long start = ff_line_start(g, l);
        double m, lse;
        ff_line_lse(x, g, start, part, &m, &lse);
        for (unsigned long long k = threadIdx.x; k < g.n; k += blockDim.x) {{
            unsigned long long i = start + k * g.inner;
            double z = (double)x[i] - m - lse;
            out[i] = ({t})({value});
        }}
    }}
}}
"#
            )
        }
        Kernel::SoftmaxXent(_) => format!(
            r#"
extern "C" __global__ void {name}(const {t}* labels, const {t}* x, {t}* out, Lines g) {{
    __shared__ double part[{THREADS}];
    for (unsigned long long l = blockIdx.x; l < g.lines; l += gridDim.x) {{
        unsigned long long start = ff_line_start(g, l);
        double m, lse;
        ff_line_lse(x, g, start, part, &m, &lse);
        double loss = 0.0;
        for (unsigned long long k = threadIdx.x; k < g.n; k += blockDim.x) {{
            unsigned long long i = start + k * g.inner;
            loss += (double)labels[i] * (lse - ((double)x[i] - m));
        }}
        double total = ff_block_sum(part, loss);
        if (threadIdx.x == 0) out[l] = ({t})total;
    }}
}}
"#
        ),
        Kernel::SparseXent(labels, _) => {
            let lt = ctype(labels);
            format!(
                r#"
extern "C" __global__ void {name}(const {lt}* labels, const {t}* x, {t}* out, Lines g) {{
    __shared__ double part[{THREADS}];
    for (unsigned long long l = blockIdx.x; l < g.lines; l += gridDim.x) {{
        unsigned long long start = ff_line_start(g, l);
        double m, lse;
        ff_line_lse(x, g, start, part, &m, &lse);
        if (threadIdx.x == 0) {{
            long long label = (long long)labels[l];
            out[l] = (label < 0 || label >= (long long)g.n) ? ({t})FF_NAN
                                                             : ({t})(lse - ((double)x[start + label * g.inner] - m));
        }}
    }}
}}
"#
            )
        }
        _ => unreachable!(),
    };
    head + &body
}

/// The launch of a softmax-family `op`, if there is a kernel for it.
pub(crate) fn plan(op: &Op, inputs: &[&Tensor], out: &[TensorSpec]) -> Option<Launch> {
    let outputs: usize = out[0].shape.dims().iter().product();
    let (kernel, logits, axis) = match op {
        Op::Softmax { axis } | Op::LogSoftmax { axis } => {
            let log = matches!(op, Op::LogSoftmax { .. });
            (Kernel::Softmax(log, inputs[0].dtype()), inputs[0], *axis)
        }
        Op::SoftmaxCrossEntropy { axis } => (Kernel::SoftmaxXent(inputs[1].dtype()), inputs[1], *axis),
        Op::SparseSoftmaxCrossEntropy => (Kernel::SparseXent(inputs[0].dtype(), inputs[1].dtype()), inputs[1], -1),
        _ => return None,
    };
    let dtype = logits.dtype();
    if !dtype.is_float() || (matches!(kernel, Kernel::SparseXent(l, _) if !l.is_int())) {
        return None;
    }
    let dims = logits.dims();
    let axis = crate::shape::normalize_axis(op.name(), axis, dims.len()).ok()?;
    let lines = Lines::along(dims, axis);
    let mut args: smallvec::SmallVec<[Arg; 6]> = (0..inputs.len()).map(Arg::Input).collect();
    args.push(Arg::Output(0));
    args.push(Arg::Lines(lines));
    Some(Launch::per_line(kernel, args, (dtype, outputs), lines.count()))
}
