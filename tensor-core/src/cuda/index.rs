//! Ops driven by integer indices: `gather` along an axis and `one_hot`. An index out of range
//! gathers zeros on the GPU, as TensorFlow's GPU kernel does; the caller reports it as the
//! CPU kernel's error when the indices are readable on the host without a copy.

use super::kernel::{ctype, Kernel, PRELUDE};
use super::launch::{Arg, Launch};
use crate::{DType, Element, Op, Tensor, TensorSpec};

/// The CUDA source of an index kernel (see [`Kernel::source`]).
pub(crate) fn source(kernel: Kernel, name: &str) -> String {
    match kernel {
        Kernel::Gather(index, dtype) => {
            let (t, it) = (ctype(dtype), ctype(index));
            format!(
                r#"{PRELUDE}
extern "C" __global__ void {name}(const {t}* p, const {it}* idx, {t}* out, unsigned long long n,
                                  unsigned long long axis, unsigned long long count, unsigned long long inner) {{
    GRID_STRIDE(i, n) {{
        unsigned long long within = i % inner, r = i / inner;
        unsigned long long j = r % count, o = r / count;
        long long k = (long long)idx[j];
        out[i] = (k < 0 || (unsigned long long)k >= axis) ? ({t})0 : p[(o * axis + (unsigned long long)k) * inner + within];
    }}
}}
"#
            )
        }
        Kernel::OneHot(index, dtype) => {
            let (t, it) = (ctype(dtype), ctype(index));
            format!(
                r#"{PRELUDE}
extern "C" __global__ void {name}(const {it}* idx, {t}* out, unsigned long long n,
                                  unsigned long long depth, unsigned long long inner, {t} on, {t} off) {{
    GRID_STRIDE(i, n) {{
        unsigned long long within = i % inner, r = i / inner;
        unsigned long long k = r % depth, o = r / depth;
        long long v = (long long)idx[o * inner + within];
        out[i] = (v >= 0 && (unsigned long long)v == k) ? on : off;
    }}
}}
"#
            )
        }
        _ => unreachable!("not an index kernel: {kernel:?}"),
    }
}

/// `value` as a kernel argument of `dtype`, converted as the CPU kernels convert an f64
/// (`one_hot`'s values, `pad`'s constant).
pub(crate) fn scalar_arg(dtype: DType, value: f64) -> Arg {
    match dtype {
        DType::F32 => Arg::F32(f32::from_f64(value)),
        DType::F64 => Arg::F64(value),
        DType::I32 => Arg::I32(i32::from_f64(value)),
        DType::I64 => Arg::I64(i64::from_f64(value)),
        DType::Bool => Arg::U8(bool::from_f64(value) as u8),
    }
}

/// The launch of `gather` or `one_hot`, if there is a kernel for it.
pub(crate) fn plan(op: &Op, inputs: &[&Tensor], out: &[TensorSpec]) -> Option<Launch> {
    let n: usize = out[0].shape.dims().iter().product();
    match op {
        Op::Gather { axis } => {
            let (params, indices) = (inputs[0], inputs.get(1)?);
            if !indices.dtype().is_int() {
                return None;
            }
            let dims = params.dims();
            let axis = crate::shape::normalize_axis("gather", *axis, dims.len()).ok()?;
            let inner: usize = dims[axis + 1..].iter().product();
            let count: usize = indices.dims().iter().product();
            let args = smallvec::smallvec![
                Arg::Input(0),
                Arg::Input(1),
                Arg::Output(0),
                Arg::U64(n as u64),
                Arg::U64(dims[axis] as u64),
                Arg::U64(count as u64),
                Arg::U64(inner as u64)
            ];
            let kernel = Kernel::Gather(indices.dtype(), params.dtype());
            Some(Launch::elementwise(kernel, args, (params.dtype(), n)))
        }
        Op::OneHot {
            depth,
            on_value,
            off_value,
            axis,
            dtype,
        } => {
            let indices = inputs[0];
            if !indices.dtype().is_int() {
                return None;
            }
            let rank = indices.dims().len();
            let ax = if *axis == -1 {
                rank
            } else {
                crate::shape::normalize_axis("one_hot", *axis, rank + 1).ok()?
            };
            let inner: usize = indices.dims()[ax..].iter().product();
            let args = smallvec::smallvec![
                Arg::Input(0),
                Arg::Output(0),
                Arg::U64(n as u64),
                Arg::U64(*depth as u64),
                Arg::U64(inner as u64),
                scalar_arg(*dtype, *on_value),
                scalar_arg(*dtype, *off_value)
            ];
            Some(Launch::elementwise(
                Kernel::OneHot(indices.dtype(), *dtype),
                args,
                (*dtype, n),
            ))
        }
        _ => None,
    }
}

/// The first of `indices` outside `[0, n)`, if the indices are readable on the host
/// without a device copy; `None` otherwise (or when all are in range).
pub(crate) fn first_out_of_range(indices: &Tensor, n: usize) -> Option<i64> {
    let data = indices.host_data_if_cached()?;
    crate::ops::shape::index_values(data)
        .into_iter()
        .find(|&i| i < 0 || i as usize >= n)
}
