//! Shape ops that move elements without arithmetic, for every dtype: `transpose`,
//! `broadcast_to`, `tile`, `strided_slice`, its gradient and `pad` share one index-remapping
//! kernel driven by a [`Layout`]; `concat` and `stack` have a kernel per input count.

use super::elementwise::MAX_RANK;
use super::index::scalar_arg;
use super::kernel::{ctype, Kernel, PRELUDE};
use super::launch::{Arg, Launch};
use crate::ops::shape::plan_strided_slice;
use crate::{Op, Tensor, TensorSpec};
use cudarc::driver::DeviceRepr;

/// Most inputs of one `concat` kernel (more fall back to the host).
pub(crate) const MAX_CONCAT: usize = 8;

/// Where each output element comes from, per output axis `d` with coordinate `c`:
/// `p = c - lo[d]` must be a multiple of `step[d]`, and `p / step[d]` lie in
/// `[0, extent[d])`, else the element is the fill value; then the input offset gains
/// `(p / step[d]) % modulus[d] * stride[d]` (from `base`). Laid out as `struct Layout`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Layout {
    rank: u64,
    dims: [u64; MAX_RANK],
    lo: [i64; MAX_RANK],
    step: [i64; MAX_RANK],
    extent: [i64; MAX_RANK],
    modulus: [i64; MAX_RANK],
    stride: [i64; MAX_RANK],
    base: i64,
}

// SAFETY: plain `repr(C)` integers, the same layout as the CUDA struct.
unsafe impl DeviceRepr for Layout {}

/// One output axis of a [`Layout`]: `(lo, step, extent, modulus, stride)`.
type Axis = (i64, i64, i64, i64, i64);

/// An axis that reads the input at `stride` per step, with no bounds.
fn plain(stride: i64) -> Axis {
    (0, 1, i64::MAX, i64::MAX, stride)
}

impl Layout {
    fn new(out: &[usize], axes: &[Axis], base: i64) -> Option<Layout> {
        if out.len() > MAX_RANK {
            return None;
        }
        let mut g = Layout {
            rank: out.len() as u64,
            dims: [0; MAX_RANK],
            lo: [0; MAX_RANK],
            step: [1; MAX_RANK],
            extent: [0; MAX_RANK],
            modulus: [1; MAX_RANK],
            stride: [0; MAX_RANK],
            base,
        };
        for (d, (&n, &(lo, step, extent, modulus, stride))) in out.iter().zip(axes).enumerate() {
            g.dims[d] = n as u64;
            (g.lo[d], g.step[d], g.extent[d], g.modulus[d], g.stride[d]) = (lo, step, extent, modulus, stride);
        }
        Some(g)
    }
}

/// Where each input of a concatenation lands: the output seen as `[outer, total, inner]`,
/// input `j` covering `[starts[j], starts[j + 1])` of the middle axis. `struct ConcatGeometry`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct ConcatGeometry {
    total: u64,
    inner: u64,
    starts: [i64; MAX_CONCAT + 1],
}

// SAFETY: plain `repr(C)` integers, the same layout as the CUDA struct.
unsafe impl DeviceRepr for ConcatGeometry {}

/// Row-major strides of `dims`.
fn strides(dims: &[usize]) -> Vec<i64> {
    let mut s = vec![0i64; dims.len()];
    let mut acc = 1i64;
    for d in (0..dims.len()).rev() {
        s[d] = acc;
        acc *= dims[d] as i64;
    }
    s
}

/// The CUDA source of a layout kernel (see [`Kernel::source`]).
pub(crate) fn source(kernel: Kernel, name: &str) -> String {
    match kernel {
        Kernel::Layout(dtype) => {
            let t = ctype(dtype);
            format!(
                r#"{PRELUDE}
struct Layout {{
    unsigned long long rank; unsigned long long dims[8];
    long long lo[8], step[8], extent[8], modulus[8], stride[8];
    long long base;
}};
extern "C" __global__ void {name}(const {t}* x, {t}* out, unsigned long long n, Layout g, {t} fill) {{
    GRID_STRIDE(i, n) {{
        unsigned long long rem = i; long long off = g.base; bool inside = true;
        for (int d = (int)g.rank - 1; d >= 0; --d) {{
            long long p = (long long)(rem % g.dims[d]) - g.lo[d]; rem /= g.dims[d];
            if (p % g.step[d] != 0) {{ inside = false; break; }}
            p /= g.step[d];
            if (p < 0 || p >= g.extent[d]) {{ inside = false; break; }}
            off += (p % g.modulus[d]) * g.stride[d];
        }}
        out[i] = inside ? x[off] : fill;
    }}
}}
"#
            )
        }
        Kernel::Concat(dtype, count) => {
            let t = ctype(dtype);
            let params: String = (0..count).map(|j| format!("const {t}* p{j}, ")).collect();
            let pick: String = (0..count).map(|j| format!("j == {j} ? p{j} : ")).collect();
            format!(
                r#"{PRELUDE}
struct ConcatGeometry {{ unsigned long long total, inner; long long starts[{slots}]; }};
extern "C" __global__ void {name}({params}{t}* out, unsigned long long n, ConcatGeometry g) {{
    GRID_STRIDE(i, n) {{
        unsigned long long within = i % g.inner, t = i / g.inner;
        long long a = (long long)(t % g.total); unsigned long long o = t / g.total;
        int j = 0;
        while (j + 1 < {count} && a >= g.starts[j + 1]) ++j;
        long long len = g.starts[j + 1] - g.starts[j];
        const {t}* src = {pick}p0;
        out[i] = src[((long long)o * len + (a - g.starts[j])) * (long long)g.inner + (long long)within];
    }}
}}
"#,
                slots = MAX_CONCAT + 1
            )
        }
        _ => unreachable!("not a layout kernel: {kernel:?}"),
    }
}

/// The launch of a shape `op`, if there is a kernel for it.
pub(crate) fn plan(op: &Op, inputs: &[&Tensor], out: &[TensorSpec]) -> Option<Launch> {
    let x = inputs.first()?;
    let (dtype, dims) = (x.dtype(), x.dims());
    let out_dims = out[0].shape.dims();
    let n: usize = out_dims.iter().product();
    let s = strides(dims);
    let mut base = 0i64;
    let mut fill_value = 0.0;
    let axes: Vec<Axis> = match op {
        Op::Transpose { perm } => perm.iter().map(|&p| plain(s[p])).collect(),
        Op::BroadcastTo { shape } => {
            let lead = shape.len() - dims.len();
            (0..shape.len())
                .map(|d| {
                    plain(if d < lead || dims[d - lead] == 1 {
                        0
                    } else {
                        s[d - lead]
                    })
                })
                .collect()
        }
        Op::Tile { .. } => (0..dims.len())
            .map(|d| (0, 1, i64::MAX, dims[d] as i64, s[d]))
            .collect(),
        Op::StridedSlice { begin, end, strides } => {
            let plan = plan_strided_slice(begin, end, strides, dims).ok()?;
            base = plan
                .dims
                .iter()
                .zip(&s)
                .map(|(&(start, _, len), &st)| if len > 0 { start * st } else { 0 })
                .sum();
            plan.dims
                .iter()
                .zip(&s)
                .map(|(&(_, step, _), &st)| plain(step * st))
                .collect()
        }
        Op::StridedSliceGrad {
            input_shape,
            begin,
            end,
            strides,
        } => {
            let plan = plan_strided_slice(begin, end, strides, input_shape).ok()?;
            plan.dims
                .iter()
                .zip(&s)
                .map(|(&(start, step, len), &st)| (start, step, len as i64, i64::MAX, st))
                .collect()
        }
        Op::Pad { paddings, constant } => {
            fill_value = *constant;
            paddings
                .iter()
                .zip(dims)
                .zip(&s)
                .map(|((p, &d), &st)| (p[0] as i64, 1, d as i64, i64::MAX, st))
                .collect()
        }
        Op::Concat { .. } | Op::Stack { .. } => return plan_concat(op, inputs, out_dims),
        _ => return None,
    };
    let g = Layout::new(out_dims, &axes, base)?;
    let args = smallvec::smallvec![
        Arg::Input(0),
        Arg::Output(0),
        Arg::U64(n as u64),
        Arg::Layout(g),
        scalar_arg(dtype, fill_value)
    ];
    Some(Launch::elementwise(Kernel::Layout(dtype), args, (dtype, n)))
}

/// `concat` or `stack` of at most [`MAX_CONCAT`] inputs.
fn plan_concat(op: &Op, inputs: &[&Tensor], out_dims: &[usize]) -> Option<Launch> {
    let count = inputs.len();
    if count == 0 || count > MAX_CONCAT {
        return None;
    }
    let dtype = inputs[0].dtype();
    let (axis, lens): (usize, Vec<usize>) = match op {
        Op::Concat { axis } => {
            let axis = crate::shape::normalize_axis("concat", *axis, out_dims.len()).ok()?;
            (axis, inputs.iter().map(|t| t.dims()[axis]).collect())
        }
        Op::Stack { axis } => {
            let axis = crate::shape::normalize_axis("stack", *axis, out_dims.len()).ok()?;
            (axis, vec![1; count])
        }
        _ => return None,
    };
    let mut g = ConcatGeometry {
        total: out_dims[axis] as u64,
        inner: out_dims[axis + 1..].iter().product::<usize>() as u64,
        ..Default::default()
    };
    for (j, len) in lens.iter().enumerate() {
        g.starts[j + 1] = g.starts[j] + *len as i64;
    }
    let n: usize = out_dims.iter().product();
    let mut args: smallvec::SmallVec<[Arg; 6]> = (0..count).map(Arg::Input).collect();
    args.extend([Arg::Output(0), Arg::U64(n as u64), Arg::Concat(g)]);
    Some(Launch::elementwise(Kernel::Concat(dtype, count), args, (dtype, n)))
}
