//! Running totals and segment sums: `cumsum` / `cumprod` (one thread per line, walking it in
//! order, forward or reversed, inclusive or exclusive) and `unsorted_segment_sum` (one
//! thread per output element, adding the rows whose id is its segment in row order: no
//! atomics, so the same bits on every run). Floats accumulate in double, integers in 64-bit
//! unsigned arithmetic that wraps like the CPU kernels' integers.

use super::kernel::{ctype, Kernel, PRELUDE};
use super::launch::{Arg, Launch};
use super::reduce::{Lines, LINES};
use crate::{DType, Op, ScanKind, Tensor, TensorSpec};

/// Accumulator type of a dtype's running totals.
fn accumulator(dtype: DType) -> &'static str {
    if dtype.is_float() {
        "double"
    } else {
        "unsigned long long"
    }
}

/// The CUDA source of a scan or segment-sum kernel (see [`Kernel::source`]).
pub(crate) fn source(kernel: Kernel, name: &str) -> String {
    match kernel {
        Kernel::Scan(kind, dtype) => {
            let (t, w) = (ctype(dtype), accumulator(dtype));
            let (init, op) = match kind {
                ScanKind::Sum => ("0", "+"),
                ScanKind::Prod => ("1", "*"),
            };
            format!(
                "{PRELUDE}{LINES}\n\
                 extern \"C\" __global__ void {name}(const {t}* in, {t}* out, Lines g, unsigned char exclusive, unsigned char reverse) {{\n\
                   GRID_STRIDE(l, g.lines) {{\n\
                     unsigned long long start = ff_line_start(g, l);\n\
                     {w} acc = ({w}){init};\n\
                     for (unsigned long long step = 0; step < g.n; ++step) {{\n\
                       unsigned long long idx = start + (reverse ? g.n - 1 - step : step) * g.inner;\n\
                       {w} x = ({w})in[idx];\n\
                       if (exclusive) {{ out[idx] = ({t})acc; acc = acc {op} x; }}\n\
                       else {{ acc = acc {op} x; out[idx] = ({t})acc; }}\n\
                     }}\n\
                   }}\n\
                 }}\n"
            )
        }
        Kernel::SegmentSum(ids, dtype) => {
            let (t, w, i) = (ctype(dtype), accumulator(dtype), ctype(ids));
            format!(
                "{PRELUDE}\n\
                 extern \"C\" __global__ void {name}(const {t}* data, const {i}* ids, {t}* out, \
                 unsigned long long rows, unsigned long long inner, unsigned long long n) {{\n\
                   GRID_STRIDE(o, n) {{\n\
                     long long segment = (long long)(o / inner); unsigned long long r = o % inner;\n\
                     {w} acc = ({w})0;\n\
                     for (unsigned long long row = 0; row < rows; ++row)\n\
                       if ((long long)ids[row] == segment) acc = acc + ({w})data[row * inner + r];\n\
                     out[o] = ({t})acc;\n\
                   }}\n\
                 }}\n"
            )
        }
        _ => unreachable!("not a scan or segment-sum kernel: {kernel:?}"),
    }
}

/// The launch computing a scan or segment sum, if `op` is one on numeric data.
pub(crate) fn plan(op: &Op, inputs: &[&Tensor], out: &[TensorSpec]) -> Option<Launch> {
    let x = inputs.first()?;
    let dtype = x.dtype();
    if dtype == DType::Bool {
        return None;
    }
    match op {
        Op::Scan {
            kind,
            axis,
            exclusive,
            reverse,
        } => {
            let ax = crate::shape::normalize_axis(kind.name(), *axis, x.rank()).ok()?;
            let lines = Lines::along(x.dims(), ax);
            let args = smallvec::smallvec![
                Arg::Input(0),
                Arg::Output(0),
                Arg::Lines(lines),
                Arg::U8(*exclusive as u8),
                Arg::U8(*reverse as u8),
            ];
            let out = (dtype, x.dims().iter().product());
            Some(Launch::thread_per_line(
                Kernel::Scan(*kind, dtype),
                args,
                out,
                lines.count(),
            ))
        }
        Op::UnsortedSegmentSum { .. } => {
            let ids = inputs.get(1)?;
            let rows = *x.dims().first()?;
            let inner: usize = x.dims()[1..].iter().product();
            let n: usize = out[0].shape.dims().iter().product();
            let args = smallvec::smallvec![
                Arg::Input(0),
                Arg::Input(1),
                Arg::Output(0),
                Arg::U64(rows as u64),
                Arg::U64(inner.max(1) as u64),
                Arg::U64(n as u64),
            ];
            Some(Launch::elementwise(
                Kernel::SegmentSum(ids.dtype(), dtype),
                args,
                (dtype, n),
            ))
        }
        _ => None,
    }
}
