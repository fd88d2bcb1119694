//! Reductions (`reduce_sum`, `reduce_mean`, `reduce_max`, `reduce_min`, `reduce_prod`) over
//! any axes, and `argmax` / `argmin` along one axis: one block per output element, the
//! block's threads striding over the reduced elements, then a tree in shared memory. Floats
//! accumulate in double (float32 results at least as close to exact as TensorFlow's),
//! integers in 64 bits with the wrap-around of the CPU kernels. NaN propagates through max
//! and min as on the CPU.

use super::elementwise::MAX_RANK;
use super::kernel::{ctype, Kernel, PRELUDE};
use super::launch::{Arg, Launch, THREADS};
use crate::{ArgKind, DType, Op, ReduceKind, Tensor, TensorSpec};
use cudarc::driver::DeviceRepr;

/// Kept and reduced axes with the input's strides, laid out as the CUDA `struct Reduction`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Reduction {
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

/// The lines along one axis of a dense tensor, `[outer, n, inner]`: line `l` starts at
/// `(l / inner) * n * inner + l % inner` and steps by `inner`. Laid out as `struct Lines`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Lines {
    lines: u64,
    n: u64,
    inner: u64,
}

// SAFETY: plain `repr(C)` integers, the same layout as the CUDA struct.
unsafe impl DeviceRepr for Lines {}

impl Lines {
    /// The lines of `dims` along `axis`.
    pub(crate) fn along(dims: &[usize], axis: usize) -> Lines {
        let (outer, _, inner) = crate::kernels::reduce::split_dims(dims, axis, axis + 1);
        Lines {
            lines: (outer * inner) as u64,
            n: dims[axis] as u64,
            inner: inner as u64,
        }
    }

    /// How many lines.
    pub(crate) fn count(&self) -> usize {
        self.lines as usize
    }
}

/// CUDA declaration of [`Lines`] and the start of line `l`.
pub(crate) const LINES: &str = r#"
struct Lines { unsigned long long lines, n, inner; };
__device__ unsigned long long ff_line_start(Lines g, unsigned long long l) {
    return (l / g.inner) * g.n * g.inner + l % g.inner;
}
"#;

/// Accumulator type, initial value, combining expression over `a, b` and final value over
/// `acc` and `count` of one reduction on one dtype.
fn algebra(kind: ReduceKind, dtype: DType) -> (&'static str, String, &'static str, String) {
    let t = ctype(dtype);
    if dtype.is_float() {
        let (init, combine) = match kind {
            ReduceKind::Sum | ReduceKind::Mean => ("0.0", "a + b"),
            ReduceKind::Prod => ("1.0", "a * b"),
            ReduceKind::Max => ("-FF_INF", "((b > a || isnan(b)) ? b : a)"),
            ReduceKind::Min => ("FF_INF", "((b < a || isnan(b)) ? b : a)"),
        };
        let finish = if kind == ReduceKind::Mean {
            "acc / (double)count"
        } else {
            "acc"
        };
        return ("double", init.into(), combine, format!("({t})({finish})"));
    }
    let (lowest, highest) = match dtype {
        DType::I32 => ("(-2147483647LL - 1)", "2147483647LL"),
        _ => ("(-9223372036854775807LL - 1)", "9223372036854775807LL"),
    };
    match kind {
        // Unsigned arithmetic wraps like the CPU kernels' integers (signed overflow is
        // undefined in CUDA C++).
        ReduceKind::Sum => ("unsigned long long", "0ULL".into(), "a + b", format!("({t})acc")),
        ReduceKind::Prod => ("unsigned long long", "1ULL".into(), "a * b", format!("({t})acc")),
        ReduceKind::Mean => (
            "unsigned long long",
            "0ULL".into(),
            "a + b",
            // TensorFlow divides the 64-bit sum, then narrows (an int32 mean does not wrap).
            format!("(count == 0 ? ({t})0 : ({t})((long long)acc / (long long)count))"),
        ),
        ReduceKind::Max => ("long long", lowest.into(), "(b > a ? b : a)", format!("({t})acc")),
        ReduceKind::Min => ("long long", highest.into(), "(b < a ? b : a)", format!("({t})acc")),
    }
}

/// The CUDA source of a reduction kernel (see [`Kernel::source`]).
pub(crate) fn source(kernel: Kernel, name: &str) -> String {
    match kernel {
        Kernel::Reduce(kind, dtype) => reduce_source(name, kind, dtype),
        Kernel::ArgReduce(kind, dtype) => arg_source(name, kind, dtype),
        _ => unreachable!("not a reduction kernel: {kernel:?}"),
    }
}

fn reduce_source(name: &str, kind: ReduceKind, dtype: DType) -> String {
    let t = ctype(dtype);
    let (acc, init, combine, finish) = algebra(kind, dtype);
    format!(
        r#"{PRELUDE}
struct Reduction {{
    unsigned long long kept_rank, red_rank, red_count;
    unsigned long long kept_dims[8]; long long kept_strides[8];
    unsigned long long red_dims[8]; long long red_strides[8];
}};
__device__ {acc} ff_combine({acc} a, {acc} b) {{ return {combine}; }}
extern "C" __global__ void {name}(const {t}* x, {t}* out, unsigned long long outputs, Reduction g) {{
    __shared__ {acc} part[{THREADS}];
    for (unsigned long long o = blockIdx.x; o < outputs; o += gridDim.x) {{
        unsigned long long rem = o; long long base = 0;
        for (int d = (int)g.kept_rank - 1; d >= 0; --d) {{
            unsigned long long c = rem % g.kept_dims[d]; rem /= g.kept_dims[d];
            base += (long long)c * g.kept_strides[d];
        }}
        {acc} acc = {init};
        for (unsigned long long r = threadIdx.x; r < g.red_count; r += blockDim.x) {{
            unsigned long long q = r; long long off = base;
            for (int d = (int)g.red_rank - 1; d >= 0; --d) {{
                unsigned long long c = q % g.red_dims[d]; q /= g.red_dims[d];
                off += (long long)c * g.red_strides[d];
            }}
            acc = ff_combine(acc, ({acc})x[off]);
        }}
        part[threadIdx.x] = acc;
        __syncthreads();
        for (unsigned int s = blockDim.x / 2; s > 0; s >>= 1) {{
            if (threadIdx.x < s) part[threadIdx.x] = ff_combine(part[threadIdx.x], part[threadIdx.x + s]);
            __syncthreads();
        }}
        if (threadIdx.x == 0) {{
            {acc} acc = part[0]; unsigned long long count = g.red_count;
            (void)count;
            out[o] = {finish};
        }}
        __syncthreads();
    }}
}}
"#
    )
}

fn arg_source(name: &str, kind: ArgKind, dtype: DType) -> String {
    let t = ctype(dtype);
    let w = if dtype.is_float() { "double" } else { "long long" };
    let better = if kind == ArgKind::Max { ">" } else { "<" };
    // The CPU kernel scans in order and replaces the best only on a strict improvement, so
    // NaN never wins unless it comes first, and ties keep the first index.
    format!(
        r#"{PRELUDE}{LINES}
extern "C" __global__ void {name}(const {t}* x, long long* out, Lines g) {{
    __shared__ {w} best[{THREADS}];
    __shared__ long long where_[{THREADS}];
    const long long none = (long long)g.n;
    for (unsigned long long l = blockIdx.x; l < g.lines; l += gridDim.x) {{
        unsigned long long start = ff_line_start(g, l);
        {w} bv = 0; long long bi = none;
        for (unsigned long long k = threadIdx.x; k < g.n; k += blockDim.x) {{
            {w} v = ({w})x[start + k * g.inner];
            if (v == v && (bi == none || v {better} bv)) {{ bv = v; bi = (long long)k; }}
        }}
        best[threadIdx.x] = bv; where_[threadIdx.x] = bi;
        __syncthreads();
        for (unsigned int s = blockDim.x / 2; s > 0; s >>= 1) {{
            if (threadIdx.x < s) {{
                {w} va = best[threadIdx.x], vb = best[threadIdx.x + s];
                long long ia = where_[threadIdx.x], ib = where_[threadIdx.x + s];
                if (ib != none && (ia == none || vb {better} va || (vb == va && ib < ia))) {{
                    best[threadIdx.x] = vb; where_[threadIdx.x] = ib;
                }}
            }}
            __syncthreads();
        }}
        if (threadIdx.x == 0) {{
            {w} first = ({w})x[start];
            out[l] = (first != first || where_[0] == none) ? 0 : where_[0];
        }}
        __syncthreads();
    }}
}}
"#
    )
}

/// The launch of a reduction or arg-reduction `op`, if there is a kernel for it.
pub(crate) fn plan(op: &Op, inputs: &[&Tensor], out: &[TensorSpec]) -> Option<Launch> {
    let x = inputs.first()?;
    let (dtype, dims) = (x.dtype(), x.dims());
    if dtype == DType::Bool {
        return None;
    }
    let outputs: usize = out[0].shape.dims().iter().product();
    match op {
        Op::Reduce { kind, axes, .. } => {
            let axes = crate::normalize_axes(kind.name(), axes, dims.len()).ok()?;
            let g = Reduction::new(dims, &axes)?;
            let args = smallvec::smallvec![
                Arg::Input(0),
                Arg::Output(0),
                Arg::U64(outputs as u64),
                Arg::Reduction(g)
            ];
            Some(Launch::per_line(
                Kernel::Reduce(*kind, dtype),
                args,
                (dtype, outputs),
                outputs,
            ))
        }
        Op::ArgReduce { kind, axis } => {
            let axis = crate::shape::normalize_axis(kind.name(), *axis, dims.len()).ok()?;
            let lines = Lines::along(dims, axis);
            let args = smallvec::smallvec![Arg::Input(0), Arg::Output(0), Arg::Lines(lines)];
            Some(Launch::per_line(
                Kernel::ArgReduce(*kind, dtype),
                args,
                (DType::I64, outputs),
                lines.count(),
            ))
        }
        _ => None,
    }
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
        let l = Lines::along(&[2, 3, 4], 1);
        assert_eq!((l.lines, l.n, l.inner), (8, 3, 4));
    }
}
