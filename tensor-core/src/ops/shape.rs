//! Shape ops: `transpose`, `reshape`, `expand_dims`, `squeeze`, `concat`, `stack`, `split`,
//! `slice`, `strided_slice`, `tile`, `broadcast_to`, `pad`, `gather`, `one_hot`.
//!
//! `transpose`, `strided_slice`, `expand_dims` and `squeeze` return views that share the
//! input's storage; kernels downstream take the strides as they are.

use super::reduce::Accumulate;
use super::same_dtype;
use crate::data::{row_major, Array};
use crate::dispatch::dispatch1;
use crate::shape::normalize_axis;
use crate::{Axes, DType, Data, Element, Error, OneHot, Op, Result, Shape, Tensor, TensorSpec};
use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn, Slice};

pub(crate) fn infer_transpose(perm: &[usize], x: &[TensorSpec]) -> Result<TensorSpec> {
    let dims = x[0].shape.dims();
    let mut seen = vec![false; dims.len()];
    if perm.len() != dims.len()
        || perm
            .iter()
            .any(|&p| p >= dims.len() || std::mem::replace(&mut seen[p], true))
    {
        return Err(Error::invalid(
            "transpose",
            format!("perm {perm:?} is not a permutation of the axes of shape {:?}", dims),
        ));
    }
    Ok(TensorSpec::new(
        x[0].dtype,
        perm.iter().map(|&p| dims[p]).collect::<Vec<_>>(),
    ))
}

pub(crate) fn transpose(perm: &[usize], x: &Data) -> Data {
    crate::data::with_data!(x, a => Data::from_array(a.clone().permuted_axes(IxDyn(perm))))
}

/// Resolves a reshape target (one entry may be -1) against the element count of `from`
/// (an error if that count overflows).
pub fn resolve_reshape(target: &[i64], from: &Shape) -> Result<Vec<usize>> {
    let count = from
        .checked_num_elements()
        .ok_or_else(|| Error::shapes("reshape", &[from], "the element count overflows"))?;
    let mut known: usize = 1;
    let mut infer_at = None;
    for (i, &d) in target.iter().enumerate() {
        match d {
            -1 if infer_at.is_none() => infer_at = Some(i),
            -1 => return Err(Error::invalid("reshape", format!("only one -1 allowed in {target:?}"))),
            d if d < 0 => return Err(Error::invalid("reshape", format!("negative dimension in {target:?}"))),
            d => {
                known = known
                    .checked_mul(d as usize)
                    .ok_or_else(|| Error::invalid("reshape", format!("shape {target:?} overflows")))?
            }
        }
    }
    let mut out: Vec<usize> = target.iter().map(|&d| d.max(0) as usize).collect();
    match infer_at {
        Some(i) if known != 0 && count.is_multiple_of(known) => out[i] = count / known,
        None if known == count => {}
        _ => {
            return Err(Error::shapes(
                "reshape",
                &[from],
                format!("cannot reshape {count} elements into {target:?}"),
            ))
        }
    }
    Ok(out)
}

pub(crate) fn infer_reshape(target: &[i64], x: &[TensorSpec]) -> Result<TensorSpec> {
    Ok(TensorSpec::new(x[0].dtype, resolve_reshape(target, &x[0].shape)?))
}

fn reshape_array<T: Element>(a: &Array<T>, dims: &[usize]) -> Array<T> {
    if a.is_standard_layout() {
        if let Ok(r) = a.clone().into_shape_with_order(IxDyn(dims)) {
            return r;
        }
    }
    let owned = a.as_standard_layout().into_owned();
    owned
        .into_shape_with_order(IxDyn(dims))
        .expect("reshape: validated element count")
        .into_shared()
}

pub(crate) fn reshape(target: &[i64], x: &Data) -> Result<Data> {
    let dims = resolve_reshape(target, &x.dims().into())?;
    Ok(crate::data::with_data!(x, a => Data::from_array(reshape_array(a, &dims))))
}

fn expand_axis(axis: i64, rank: usize) -> Result<usize> {
    normalize_axis("expand_dims", axis, rank + 1)
}

pub(crate) fn infer_expand_dims(axis: i64, x: &[TensorSpec]) -> Result<TensorSpec> {
    let ax = expand_axis(axis, x[0].shape.rank())?;
    let mut d = x[0].shape.dims().to_vec();
    d.insert(ax, 1);
    Ok(TensorSpec::new(x[0].dtype, d))
}

pub(crate) fn expand_dims(axis: i64, x: &Data) -> Result<Data> {
    let ax = expand_axis(axis, x.dims().len())?;
    Ok(crate::data::with_data!(x, a => Data::from_array(a.clone().insert_axis(Axis(ax)))))
}

/// The axes `squeeze` removes. As in TensorFlow's kernel, an empty list means every size-1
/// axis (`tf.squeeze(x, [])` is `tf.squeeze(x)`), and a repeated axis is allowed (the axes
/// form a set).
fn squeeze_axes(axes: &Axes, dims: &[usize]) -> Result<Vec<usize>> {
    match axes {
        Axes::List(list) if !list.is_empty() => {
            let mut ax = list
                .iter()
                .map(|&a| normalize_axis("squeeze", a, dims.len()))
                .collect::<Result<Vec<_>>>()?;
            ax.sort_unstable();
            ax.dedup();
            if let Some(&bad) = ax.iter().find(|&&i| dims[i] != 1) {
                return Err(Error::invalid(
                    "squeeze",
                    format!("cannot squeeze axis {bad} of size {} in shape {dims:?}", dims[bad]),
                ));
            }
            Ok(ax)
        }
        _ => Ok((0..dims.len()).filter(|&i| dims[i] == 1).collect()),
    }
}

pub(crate) fn infer_squeeze(axes: &Axes, x: &[TensorSpec]) -> Result<TensorSpec> {
    let dims = x[0].shape.dims();
    let ax = squeeze_axes(axes, dims)?;
    let out: Vec<usize> = (0..dims.len()).filter(|i| !ax.contains(i)).map(|i| dims[i]).collect();
    Ok(TensorSpec::new(x[0].dtype, out))
}

pub(crate) fn squeeze(axes: &Axes, x: &Data) -> Result<Data> {
    let ax = squeeze_axes(axes, x.dims())?;
    Ok(crate::data::with_data!(x, a => {
        let mut b = a.clone();
        for &i in ax.iter().rev() {
            b = b.index_axis_move(Axis(i), 0);
        }
        Data::from_array(b)
    }))
}

pub(crate) fn infer_concat(axis: i64, x: &[TensorSpec]) -> Result<TensorSpec> {
    let dtype = same_dtype("concat", x)?;
    let first = x[0].shape.dims();
    let ax = normalize_axis("concat", axis, first.len())?;
    let mut out = first.to_vec();
    out[ax] = 0;
    for s in x {
        let d = s.shape.dims();
        if d.len() != first.len() || (0..d.len()).any(|i| i != ax && d[i] != first[i]) {
            let shapes: Vec<&Shape> = x.iter().map(|s| &s.shape).collect();
            return Err(Error::shapes(
                "concat",
                &shapes,
                format!("all dimensions except axis {ax} must match"),
            ));
        }
        out[ax] = out[ax].checked_add(d[ax]).ok_or_else(|| {
            let shapes: Vec<&Shape> = x.iter().map(|s| &s.shape).collect();
            Error::shapes("concat", &shapes, format!("the sizes along axis {ax} overflow"))
        })?;
    }
    Ok(TensorSpec::new(dtype, out))
}

fn views<'a, T: Element>(xs: &'a [&'a Data]) -> Vec<ArrayViewD<'a, T>> {
    xs.iter()
        .map(|d| d.array::<T>().expect("dtypes validated by infer").view())
        .collect()
}

pub(crate) fn concat(axis: i64, xs: &[&Data]) -> Result<Data> {
    let ax = normalize_axis("concat", axis, xs[0].dims().len())?;
    fn go<T: Element>(xs: &[&Data], ax: usize) -> Result<Data> {
        ndarray::concatenate(Axis(ax), &views::<T>(xs))
            .map(Data::from_owned)
            .map_err(|e| Error::invalid("concat", e.to_string()))
    }
    match xs[0].dtype() {
        DType::F32 => go::<f32>(xs, ax),
        DType::F64 => go::<f64>(xs, ax),
        DType::I32 => go::<i32>(xs, ax),
        DType::I64 => go::<i64>(xs, ax),
        DType::Bool => go::<bool>(xs, ax),
    }
}

pub(crate) fn infer_stack(axis: i64, x: &[TensorSpec]) -> Result<TensorSpec> {
    let dtype = same_dtype("stack", x)?;
    let first = &x[0].shape;
    if x.iter().any(|s| &s.shape != first) {
        let shapes: Vec<&Shape> = x.iter().map(|s| &s.shape).collect();
        return Err(Error::shapes("stack", &shapes, "all inputs must have the same shape"));
    }
    let ax = normalize_axis("stack", axis, first.rank() + 1)?;
    let mut d = first.dims().to_vec();
    d.insert(ax, x.len());
    Ok(TensorSpec::new(dtype, d))
}

pub(crate) fn stack(axis: i64, xs: &[&Data]) -> Result<Data> {
    let ax = normalize_axis("stack", axis, xs[0].dims().len() + 1)?;
    fn go<T: Element>(xs: &[&Data], ax: usize) -> Result<Data> {
        ndarray::stack(Axis(ax), &views::<T>(xs))
            .map(Data::from_owned)
            .map_err(|e| Error::invalid("stack", e.to_string()))
    }
    match xs[0].dtype() {
        DType::F32 => go::<f32>(xs, ax),
        DType::F64 => go::<f64>(xs, ax),
        DType::I32 => go::<i32>(xs, ax),
        DType::I64 => go::<i64>(xs, ax),
        DType::Bool => go::<bool>(xs, ax),
    }
}

/// A resolved strided slice: for each dimension the first index, the step and the length.
#[derive(Debug, Clone, PartialEq)]
pub struct SlicePlan {
    /// `(start, step, len)` per dimension.
    pub dims: Vec<(i64, i64, usize)>,
}

impl SlicePlan {
    /// Output dimensions.
    pub fn out_dims(&self) -> Vec<usize> {
        self.dims.iter().map(|d| d.2).collect()
    }
}

/// Resolves Python slice semantics (`x[b:e:s]` per dimension, `None` = omitted).
pub fn plan_strided_slice(
    begin: &[Option<i64>],
    end: &[Option<i64>],
    strides: &[i64],
    dims: &[usize],
) -> Result<SlicePlan> {
    if begin.len() != dims.len() || end.len() != dims.len() || strides.len() != dims.len() {
        return Err(Error::invalid(
            "strided_slice",
            format!("begin, end and strides need one entry per dimension of shape {dims:?}"),
        ));
    }
    let mut out = Vec::with_capacity(dims.len());
    for i in 0..dims.len() {
        // `input_shape` of a strided_slice_grad comes from the user: `as i64` would make a
        // dimension past i64::MAX negative (and `clamp` below panic).
        let n = i64::try_from(dims[i])
            .map_err(|_| Error::invalid("strided_slice", format!("dimension {i} of shape {dims:?} is too large")))?;
        let s = strides[i];
        if s == 0 {
            return Err(Error::invalid("strided_slice", "strides must be non-zero"));
        }
        let norm = |v: i64| if v < 0 { v + n } else { v };
        let (b, e, len);
        if s > 0 {
            b = begin[i].map(norm).unwrap_or(0).clamp(0, n);
            e = end[i].map(norm).unwrap_or(n).clamp(0, n);
            // `(e - b - 1) / s + 1`, not `(e - b + s - 1) / s`: a huge step must not overflow.
            len = if e > b { (e - b - 1) / s + 1 } else { 0 };
        } else {
            b = begin[i].map(norm).unwrap_or(n - 1).clamp(-1, n - 1);
            e = end[i].map(norm).unwrap_or(-1).clamp(-1, n - 1);
            // As above, on the step's magnitude as u64 (`-i64::MIN` overflows).
            len = if b > e {
                ((b - e - 1) as u64 / s.unsigned_abs() + 1) as i64
            } else {
                0
            };
        }
        out.push((b, s, len as usize));
    }
    Ok(SlicePlan { dims: out })
}

/// The `ndarray` slice of each dimension of a plan.
fn plan_slices(plan: &SlicePlan) -> Vec<Slice> {
    plan.dims
        .iter()
        .map(|&(start, step, len)| {
            if len == 0 {
                return Slice::new(0, Some(0), 1);
            }
            let last = start + (len as i64 - 1) * step;
            let (lo, hi) = if step > 0 { (start, last + 1) } else { (last, start + 1) };
            Slice::new(lo as isize, Some(hi as isize), step as isize)
        })
        .collect()
}

fn apply_plan<T: Element>(a: &Array<T>, plan: &SlicePlan) -> Array<T> {
    let slices = plan_slices(plan);
    let mut b = a.clone();
    b.slice_each_axis_inplace(|ax| slices[ax.axis.index()]);
    b
}

pub(crate) fn strided_slice(begin: &[Option<i64>], end: &[Option<i64>], strides: &[i64], x: &Data) -> Result<Data> {
    let plan = plan_strided_slice(begin, end, strides, x.dims())?;
    Ok(crate::data::with_data!(x, a => Data::from_array(apply_plan(a, &plan))))
}

pub(crate) fn infer_strided_slice_grad(
    input_shape: &[usize],
    begin: &[Option<i64>],
    end: &[Option<i64>],
    strides: &[i64],
    x: &[TensorSpec],
) -> Result<TensorSpec> {
    let plan = plan_strided_slice(begin, end, strides, input_shape)?;
    if plan.out_dims() != x[0].shape.dims() {
        return Err(Error::shapes(
            "strided_slice_grad",
            &[&x[0].shape, &Shape::from(plan.out_dims())],
            "upstream does not match the slice",
        ));
    }
    Ok(TensorSpec::new(x[0].dtype, input_shape.to_vec()))
}

pub(crate) fn strided_slice_grad(
    input_shape: &[usize],
    begin: &[Option<i64>],
    end: &[Option<i64>],
    strides: &[i64],
    g: &Data,
) -> Result<Data> {
    let plan = plan_strided_slice(begin, end, strides, input_shape)?;
    let slices = plan_slices(&plan);
    fn go<T: Element>(g: &Array<T>, shape: &[usize], slices: &[Slice]) -> Data {
        let mut out = ArrayD::from_elem(IxDyn(shape), T::ZERO);
        out.slice_each_axis_mut(|ax| slices[ax.axis.index()]).assign(g);
        Data::from_owned(out)
    }
    Ok(crate::data::with_data!(g, a => go(a, input_shape, &slices)))
}

pub(crate) fn infer_segment_sum(num_segments: usize, x: &[TensorSpec]) -> Result<TensorSpec> {
    let (data, ids) = (&x[0], &x[1]);
    let d = data.shape.dims();
    if !ids.dtype.is_int() || ids.shape.rank() != 1 || d.is_empty() || ids.shape.dims()[0] != d[0] {
        return Err(Error::shapes(
            "unsorted_segment_sum",
            &[&data.shape, &ids.shape],
            "segment ids must be a rank-1 integer tensor as long as the first axis of data",
        ));
    }
    if data.dtype == DType::Bool {
        return Err(Error::dtypes(
            "unsorted_segment_sum",
            &[data.dtype],
            "expects a numeric tensor",
        ));
    }
    let mut out = d.to_vec();
    out[0] = num_segments;
    Ok(TensorSpec::new(data.dtype, out))
}

pub(crate) fn segment_sum(num_segments: usize, data: &Data, ids: &Data) -> Result<Data> {
    let idx = index_values(ids);
    if let Some(bad) = idx.iter().find(|&&i| i < 0 || i as usize >= num_segments) {
        return Err(Error::invalid(
            "unsorted_segment_sum",
            format!("segment id {bad} is out of range [0, {num_segments})"),
        ));
    }
    fn go<T: Element + num_traits::Num + Accumulate>(a: &Array<T>, idx: &[i64], segments: usize) -> Data {
        let std = a.as_standard_layout();
        let s = std.as_slice().expect("standard layout");
        let inner: usize = a.shape()[1..].iter().product();
        let mut out = vec![T::zero(); segments * inner];
        for (row, &seg) in idx.iter().enumerate() {
            let dst = &mut out[seg as usize * inner..(seg as usize + 1) * inner];
            for (d, &v) in dst.iter_mut().zip(&s[row * inner..(row + 1) * inner]) {
                // Integer sums wrap as in TensorFlow (`+` panics on overflow in debug builds).
                *d = d.acc_add(v);
            }
        }
        let mut dims = a.shape().to_vec();
        dims[0] = segments;
        Data::from_owned(row_major(&dims, out).expect("segment sum size"))
    }
    match data {
        Data::F32(a) => Ok(go(a, &idx, num_segments)),
        Data::F64(a) => Ok(go(a, &idx, num_segments)),
        Data::I32(a) => Ok(go(a, &idx, num_segments)),
        Data::I64(a) => Ok(go(a, &idx, num_segments)),
        Data::Bool(_) => Err(Error::dtypes(
            "unsorted_segment_sum",
            &[DType::Bool],
            "expects a numeric tensor",
        )),
    }
}

pub(crate) fn infer_tile(multiples: &[usize], x: &[TensorSpec]) -> Result<TensorSpec> {
    let dims = x[0].shape.dims();
    if multiples.len() != dims.len() {
        return Err(Error::invalid(
            "tile",
            format!("multiples {multiples:?} must have one entry per dimension of {dims:?}"),
        ));
    }
    let out: Option<Vec<usize>> = dims.iter().zip(multiples).map(|(&d, &m)| d.checked_mul(m)).collect();
    let out = out.ok_or_else(|| Error::invalid("tile", "output size overflows"))?;
    Ok(TensorSpec::new(x[0].dtype, out))
}

pub(crate) fn tile(multiples: &[usize], x: &Data) -> Result<Data> {
    fn go<T: Element>(a: &Array<T>, multiples: &[usize]) -> Result<Data> {
        let err = |e: ndarray::ShapeError| Error::invalid("tile", e.to_string());
        let mut cur = a.to_owned();
        for (ax, &m) in multiples.iter().enumerate() {
            if m == 1 {
                continue;
            }
            let mut dims = cur.shape().to_vec();
            dims[ax] = dims[ax]
                .checked_mul(m)
                .ok_or_else(|| Error::invalid("tile", format!("multiples {multiples:?} overflow")))?;
            cur = if m == 0 || cur.is_empty() {
                // Nothing to copy, however many repeats (`multiples` may be usize::MAX).
                row_major(&dims, Vec::new()).map_err(err)?
            } else {
                // One copy of the output: a new length-1 axis before `ax`, broadcast to `m`
                // and laid out row-major puts repeat r of the whole axis after repeat r - 1
                // (not one view per repeat, which for a large `m` costs more than the output).
                let mut wide = cur.shape().to_vec();
                wide.insert(ax, m);
                let repeated = cur.view().insert_axis(Axis(ax));
                let repeated = repeated
                    .broadcast(IxDyn(&wide))
                    .ok_or_else(|| Error::invalid("tile", format!("cannot repeat shape {:?}", cur.shape())))?;
                repeated.to_owned().into_shape_with_order(IxDyn(&dims)).map_err(err)?
            };
        }
        Ok(Data::from_owned(cur))
    }
    crate::data::with_data!(x, a => go(a, multiples))
}

pub(crate) fn infer_broadcast_to(shape: &[usize], x: &[TensorSpec]) -> Result<TensorSpec> {
    let dims = x[0].shape.dims();
    let ok = dims.len() <= shape.len()
        && dims
            .iter()
            .rev()
            .zip(shape.iter().rev())
            .all(|(&d, &t)| d == t || d == 1);
    if !ok {
        return Err(Error::shapes(
            "broadcast_to",
            &[&x[0].shape, &Shape::from(shape)],
            "cannot broadcast",
        ));
    }
    Ok(TensorSpec::new(x[0].dtype, shape.to_vec()))
}

pub(crate) fn broadcast_to(shape: &[usize], x: &Data) -> Result<Data> {
    crate::data::with_data!(x, a => {
        let v = a.broadcast(IxDyn(shape)).ok_or_else(|| Error::shapes("broadcast_to", &[&x.dims().into(), &shape.into()], "cannot broadcast"))?;
        // A single value (the gradient of a mean or sum) fills the output directly; ndarray's
        // strided iteration over a broadcast view costs tens of ns per element.
        if a.len() == 1 {
            let value = *a.iter().next().expect("one element");
            let n = shape.iter().product();
            return Ok(Data::from_owned(row_major(shape, vec![value; n]).expect("broadcast size")));
        }
        Ok(Data::from_owned(v.to_owned()))
    })
}

pub(crate) fn infer_pad(paddings: &[[usize; 2]], x: &[TensorSpec]) -> Result<TensorSpec> {
    let dims = x[0].shape.dims();
    if paddings.len() != dims.len() {
        return Err(Error::invalid(
            "pad",
            format!("paddings need one [before, after] per dimension of {dims:?}"),
        ));
    }
    let out: Option<Vec<usize>> = dims
        .iter()
        .zip(paddings)
        .map(|(&d, p)| d.checked_add(p[0])?.checked_add(p[1]))
        .collect();
    Ok(TensorSpec::new(
        x[0].dtype,
        out.ok_or_else(|| Error::invalid("pad", "output size overflows"))?,
    ))
}

pub(crate) fn pad(paddings: &[[usize; 2]], constant: f64, x: &Data) -> Result<Data> {
    fn go<T: Element>(a: &Array<T>, paddings: &[[usize; 2]], c: f64) -> Data {
        let out_dims: Vec<usize> = a.shape().iter().zip(paddings).map(|(&d, p)| d + p[0] + p[1]).collect();
        let mut out = ArrayD::from_elem(IxDyn(&out_dims), T::from_f64(c));
        out.slice_each_axis_mut(|ax| {
            let p = paddings[ax.axis.index()][0];
            Slice::from(p..p + a.shape()[ax.axis.index()])
        })
        .assign(a);
        Data::from_owned(out)
    }
    Ok(crate::data::with_data!(x, a => go(a, paddings, constant)))
}

pub(crate) fn infer_gather(axis: i64, x: &[TensorSpec]) -> Result<TensorSpec> {
    let p = x[0].shape.dims();
    if !x[1].dtype.is_int() {
        return Err(Error::dtypes(
            "gather",
            &[x[0].dtype, x[1].dtype],
            "indices must be int32 or int64",
        ));
    }
    let ax = normalize_axis("gather", axis, p.len())?;
    let mut out = p[..ax].to_vec();
    out.extend_from_slice(x[1].shape.dims());
    out.extend_from_slice(&p[ax + 1..]);
    Ok(TensorSpec::new(x[0].dtype, out))
}

/// Integer indices as i64, for `gather`, `one_hot` and the sparse cross-entropy.
pub(crate) fn index_values(d: &Data) -> Vec<i64> {
    match d {
        Data::I32(a) => a.iter().map(|&v| v as i64).collect(),
        Data::I64(a) => a.iter().copied().collect(),
        _ => Vec::new(),
    }
}

pub(crate) fn gather(axis: i64, params: &Data, indices: &Data) -> Result<Data> {
    let p = params.dims().to_vec();
    let ax = normalize_axis("gather", axis, p.len())?;
    let idx = index_values(indices);
    let n = p[ax];
    if let Some(bad) = idx.iter().find(|&&i| i < 0 || i as usize >= n) {
        return Err(Error::invalid(
            "gather",
            format!("index {bad} is out of range [0, {n}) on axis {ax}"),
        ));
    }
    let mut out_dims = p[..ax].to_vec();
    out_dims.extend_from_slice(indices.dims());
    out_dims.extend_from_slice(&p[ax + 1..]);
    fn go<T: Element>(a: &Array<T>, ax: usize, idx: &[i64], out_dims: &[usize]) -> Data {
        let std = a.as_standard_layout();
        let s = std.as_slice().expect("standard layout");
        let (outer, n, inner) = crate::kernels::reduce::split_dims(a.shape(), ax, ax + 1);
        let mut out = Vec::with_capacity(outer * idx.len() * inner);
        for o in 0..outer {
            for &i in idx {
                let start = (o * n + i as usize) * inner;
                out.extend_from_slice(&s[start..start + inner]);
            }
        }
        Data::from_owned(row_major(out_dims, out).expect("gather size"))
    }
    Ok(crate::data::with_data!(params, a => go(a, ax, &idx, &out_dims)))
}

fn one_hot_dims(depth: usize, axis: i64, dims: &[usize]) -> Result<(usize, Vec<usize>)> {
    // TensorFlow accepts -1 (the new last axis) or 0..=rank, no other negative axis.
    let ax = match usize::try_from(axis) {
        _ if axis == -1 => dims.len(),
        Ok(a) if a <= dims.len() => a,
        _ => {
            return Err(Error::invalid(
                "one_hot",
                format!("axis must be -1 or in [0, {}], got {axis}", dims.len()),
            ))
        }
    };
    let mut out = dims.to_vec();
    out.insert(ax, depth);
    Ok((ax, out))
}

pub(crate) fn infer_one_hot(depth: usize, axis: i64, dtype: DType, x: &[TensorSpec]) -> Result<TensorSpec> {
    if !x[0].dtype.is_int() {
        return Err(Error::dtypes(
            "one_hot",
            &[x[0].dtype],
            "indices must be int32 or int64",
        ));
    }
    Ok(TensorSpec::new(dtype, one_hot_dims(depth, axis, x[0].shape.dims())?.1))
}

pub(crate) fn one_hot(depth: usize, on: f64, off: f64, axis: i64, dtype: DType, x: &Data) -> Result<Data> {
    let (ax, out_dims) = one_hot_dims(depth, axis, x.dims())?;
    let idx = index_values(x);
    let (outer, _, inner) = crate::kernels::reduce::split_dims(&out_dims, ax, ax + 1);
    // Filled in the output dtype directly: the memory check sized the output of `dtype`,
    // not an f64 buffer (twice an f32 output) plus a cast copy.
    fn go<T: Element>(
        out_dims: &[usize],
        idx: &[i64],
        (outer, depth, inner): (usize, usize, usize),
        on: f64,
        off: f64,
    ) -> Data {
        // `T::from_f64` converts as `tf.cast` does, as the old f64-then-cast path did.
        let (on, off) = (T::from_f64(on), T::from_f64(off));
        let mut v = vec![off; outer * depth * inner];
        for o in 0..outer {
            for i in 0..inner {
                let k = idx[o * inner + i];
                if k >= 0 && (k as usize) < depth {
                    v[(o * depth + k as usize) * inner + i] = on;
                }
            }
        }
        Data::from_owned(row_major(out_dims, v).expect("one_hot size"))
    }
    let sizes = (outer, depth, inner);
    Ok(match dtype {
        DType::F32 => go::<f32>(&out_dims, &idx, sizes, on, off),
        DType::F64 => go::<f64>(&out_dims, &idx, sizes, on, off),
        DType::I32 => go::<i32>(&out_dims, &idx, sizes, on, off),
        DType::I64 => go::<i64>(&out_dims, &idx, sizes, on, off),
        DType::Bool => go::<bool>(&out_dims, &idx, sizes, on, off),
    })
}

/// `x[b0:e0:s0, ...]` by bounds per dimension, as [`Op::StridedSlice`] holds them.
fn strided(x: &Tensor, begin: Vec<Option<i64>>, end: Vec<Option<i64>>, strides: Vec<i64>) -> Result<Tensor> {
    dispatch1(Op::StridedSlice { begin, end, strides }, &[x])
}

impl Tensor {
    /// `tf.transpose(self, perm)`: output axis `i` is input axis `perm[i]`. A view: no copy.
    ///
    /// ```
    /// use ferroflow_tensor_core::Tensor;
    /// let x = Tensor::new([[[1i32, 2]], [[3, 4]]]); // [2, 1, 2]
    /// let y = x.transpose(&[2, 0, 1])?;
    /// assert_eq!(y.dims(), &[2, 2, 1]);
    /// assert_eq!(y.to_vec::<i32>()?, vec![1, 3, 2, 4]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn transpose(&self, perm: &[usize]) -> Result<Tensor> {
        dispatch1(Op::Transpose { perm: perm.to_vec() }, &[self])
    }

    /// The matrix transpose: the last two axes swapped (`tf.linalg.matrix_transpose`; a
    /// rank-1 or rank-0 tensor is returned as it is). A view: no copy, and `matmul` reads it
    /// in place.
    ///
    /// ```
    /// use ferroflow_tensor_core::Tensor;
    /// let x = Tensor::new([[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]]);
    /// assert_eq!(x.t()?.dims(), &[3, 2]);
    /// assert_eq!(x.matmul(&x.t()?)?.to_vec::<f32>()?, vec![14.0, 32.0, 32.0, 77.0]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn t(&self) -> Result<Tensor> {
        let r = self.rank();
        if r < 2 {
            return self.identity();
        }
        let mut perm: Vec<usize> = (0..r).collect();
        perm.swap(r - 2, r - 1);
        self.transpose(&perm)
    }

    /// `tf.reshape` (one entry of `shape` may be -1).
    ///
    /// ```
    /// use ferroflow_tensor_core::Tensor;
    /// let x = Tensor::new([1i32, 2, 3, 4, 5, 6]);
    /// assert_eq!(x.reshape(&[2, -1])?.dims(), &[2, 3]);
    /// assert!(x.reshape(&[4, -1]).is_err());
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn reshape(&self, shape: &[i64]) -> Result<Tensor> {
        dispatch1(Op::Reshape { shape: shape.to_vec() }, &[self])
    }

    /// `tf.expand_dims`: a new axis of size 1 at `axis` (negative counts from the end of the
    /// output).
    ///
    /// ```
    /// use ferroflow_tensor_core::Tensor;
    /// let x = Tensor::new([1.0f32, 2.0]);
    /// assert_eq!(x.expand_dims(0)?.dims(), &[1, 2]);
    /// assert_eq!(x.expand_dims(-1)?.dims(), &[2, 1]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn expand_dims(&self, axis: i64) -> Result<Tensor> {
        dispatch1(Op::ExpandDims { axis }, &[self])
    }

    /// `tf.squeeze`: removes the given axes of size 1, or every one ([`Axes::All`]).
    ///
    /// ```
    /// use ferroflow_tensor_core::{Axes, Tensor};
    /// let x = Tensor::new([[[1.0f32], [2.0]]]); // [1, 2, 1]
    /// assert_eq!(x.squeeze(Axes::All)?.dims(), &[2]);
    /// assert_eq!(x.squeeze(-1)?.dims(), &[1, 2]);
    /// assert!(x.squeeze(1).is_err()); // size 2
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn squeeze(&self, axes: impl Into<Axes>) -> Result<Tensor> {
        dispatch1(Op::Squeeze { axes: axes.into() }, &[self])
    }

    /// `tf.concat` of `tensors` along `axis`.
    ///
    /// ```
    /// use ferroflow_tensor_core::Tensor;
    /// let a = Tensor::new([[1i32, 2]]);
    /// let b = Tensor::new([[3i32, 4]]);
    /// assert_eq!(Tensor::concat(&[&a, &b], 0)?.dims(), &[2, 2]);
    /// assert_eq!(Tensor::concat(&[&a, &b], 1)?.to_vec::<i32>()?, vec![1, 2, 3, 4]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn concat(tensors: &[&Tensor], axis: i64) -> Result<Tensor> {
        dispatch1(Op::Concat { axis }, tensors)
    }

    /// `tf.stack` of `tensors` along a new `axis`.
    ///
    /// ```
    /// use ferroflow_tensor_core::Tensor;
    /// let a = Tensor::new([1i32, 2]);
    /// let b = Tensor::new([3i32, 4]);
    /// assert_eq!(Tensor::stack(&[&a, &b], 1)?.to_vec::<i32>()?, vec![1, 3, 2, 4]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn stack(tensors: &[&Tensor], axis: i64) -> Result<Tensor> {
        dispatch1(Op::Stack { axis }, tensors)
    }

    /// `x[s0, s1, ...]` with one [`Slice`](crate::Slice) per dimension and Python's semantics (`start:end:step`,
    /// bounds clamped, negative steps walk backwards). A view: no copy.
    ///
    /// ```
    /// use ferroflow_tensor_core::{Slice, Tensor};
    /// let x = Tensor::new([[1i32, 2, 3], [4, 5, 6]]);
    /// let y = x.strided_slice([Slice::from(..), Slice::from(0..3).step(2)])?; // x[:, 0:3:2]
    /// assert_eq!(y.to_vec::<i32>()?, vec![1, 3, 4, 6]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn strided_slice(&self, slices: impl AsRef<[crate::Slice]>) -> Result<Tensor> {
        let slices = slices.as_ref();
        strided(
            self,
            slices.iter().map(|s| s.start).collect(),
            slices.iter().map(|s| s.end).collect(),
            slices.iter().map(|s| s.step).collect(),
        )
    }

    /// `tf.slice`: `size[i]` elements from `begin[i]` (`-1` = to the end). A view.
    ///
    /// ```
    /// use ferroflow_tensor_core::Tensor;
    /// let x = Tensor::new([[1i32, 2, 3], [4, 5, 6]]);
    /// assert_eq!(x.slice(&[1, 1], &[1, -1])?.to_vec::<i32>()?, vec![5, 6]);
    /// assert!(x.slice(&[0, 2], &[1, 2]).is_err());
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn slice(&self, begin: &[i64], size: &[i64]) -> Result<Tensor> {
        let dims = self.dims();
        if begin.len() != dims.len() || size.len() != dims.len() {
            return Err(Error::invalid(
                "slice",
                format!("begin {begin:?} and size {size:?} need one entry per dimension of {dims:?}"),
            ));
        }
        let mut ends = Vec::with_capacity(dims.len());
        for i in 0..dims.len() {
            let (b, s, n) = (begin[i], size[i], dims[i] as i64);
            let e = if s == -1 { n } else { b.saturating_add(s) };
            if b < 0 || b > n || s < -1 || e > n {
                return Err(Error::invalid(
                    "slice",
                    format!("begin {begin:?} + size {size:?} is out of bounds for shape {dims:?}"),
                ));
            }
            ends.push(Some(e));
        }
        let begin: Vec<Option<i64>> = begin.iter().map(|&b| Some(b)).collect();
        strided(self, begin, ends, vec![1; dims.len()])
    }

    /// `tf.split` into pieces of the given sizes along `axis` (one size may be -1).
    ///
    /// ```
    /// use ferroflow_tensor_core::Tensor;
    /// let x = Tensor::new([1i32, 2, 3, 4, 5]);
    /// let parts = x.split(&[2, -1], 0)?;
    /// assert_eq!(parts[1].to_vec::<i32>()?, vec![3, 4, 5]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn split(&self, sizes: &[i64], axis: i64) -> Result<Vec<Tensor>> {
        let ax = normalize_axis("split", axis, self.rank())?;
        let n = self.dims()[ax] as i64;
        let bad = || {
            Error::invalid(
                "split",
                format!("sizes {sizes:?} do not split dimension {ax} of size {n}"),
            )
        };
        // A checked sum: sizes from the user may add past i64::MAX. Once `known <= n`, every
        // `start + len` below is at most `n`.
        let known = sizes
            .iter()
            .filter(|&&s| s != -1)
            .try_fold(0i64, |acc, &s| acc.checked_add(s))
            .ok_or_else(bad)?;
        let fills = sizes.iter().filter(|&&s| s == -1).count();
        if sizes.iter().any(|&s| s < -1) || fills > 1 || (fills == 0 && known != n) || known > n {
            return Err(bad());
        }
        let mut out = Vec::with_capacity(sizes.len());
        let mut start = 0i64;
        for &s in sizes {
            let len = if s == -1 { n - known } else { s };
            let mut b = vec![None; self.rank()];
            let mut e = vec![None; self.rank()];
            b[ax] = Some(start);
            e[ax] = Some(start + len);
            out.push(strided(self, b, e, vec![1; self.rank()])?);
            start += len;
        }
        Ok(out)
    }

    /// `tf.split` into `num` equal pieces along `axis`.
    ///
    /// ```
    /// use ferroflow_tensor_core::Tensor;
    /// let x = Tensor::new([[1i32, 2, 3, 4]]);
    /// let halves = x.split_n(2, 1)?;
    /// assert_eq!(halves[0].to_vec::<i32>()?, vec![1, 2]);
    /// assert!(x.split_n(3, 1).is_err());
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn split_n(&self, num: usize, axis: i64) -> Result<Vec<Tensor>> {
        let ax = normalize_axis("split", axis, self.rank())?;
        let n = self.dims()[ax];
        if num == 0 || !n.is_multiple_of(num) {
            return Err(Error::invalid(
                "split",
                format!("dimension {ax} of size {n} does not split into {num} equal pieces"),
            ));
        }
        // An empty axis splits into any number of empty pieces; bound the number by what
        // the pieces themselves take (the handle, its size entry and its shape and array on
        // the heap), so a huge `num` is an error rather than an abort.
        if num > n {
            let bytes = num.checked_mul(std::mem::size_of::<Tensor>() + SPLIT_PIECE_HEAP_BYTES);
            if bytes.is_none_or(|b| b > crate::alloc::memory_limit()) {
                return Err(Error::ResourceExhausted {
                    op: "split",
                    msg: format!(
                        "{num} pieces of dimension {ax} of shape {:?} need more memory than this machine has",
                        self.dims()
                    ),
                });
            }
        }
        self.split(&vec![(n / num) as i64; num], axis)
    }

    /// `tf.math.unsorted_segment_sum(self, segment_ids, num_segments)` over the first axis
    /// (rank-1 ids); ids out of range are an error.
    ///
    /// ```
    /// use ferroflow_tensor_core::Tensor;
    /// let x = Tensor::new([1.0f32, 2.0, 3.0]);
    /// let s = x.unsorted_segment_sum(&Tensor::new([1i32, 0, 1]), 2)?;
    /// assert_eq!(s.to_vec::<f32>()?, vec![2.0, 4.0]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn unsorted_segment_sum(&self, segment_ids: &Tensor, num_segments: usize) -> Result<Tensor> {
        dispatch1(Op::UnsortedSegmentSum { num_segments }, &[self, segment_ids])
    }

    /// `tf.tile`: repeats the tensor `multiples[i]` times along axis `i`.
    ///
    /// ```
    /// use ferroflow_tensor_core::Tensor;
    /// let x = Tensor::new([[1i32, 2]]);
    /// assert_eq!(x.tile(&[2, 2])?.to_vec::<i32>()?, vec![1, 2, 1, 2, 1, 2, 1, 2]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn tile(&self, multiples: &[usize]) -> Result<Tensor> {
        dispatch1(
            Op::Tile {
                multiples: multiples.to_vec(),
            },
            &[self],
        )
    }

    /// `tf.broadcast_to` a shape (NumPy's broadcasting rules).
    ///
    /// ```
    /// use ferroflow_tensor_core::Tensor;
    /// let x = Tensor::new([1i32, 2]);
    /// assert_eq!(x.broadcast_to(&[2, 2])?.to_vec::<i32>()?, vec![1, 2, 1, 2]);
    /// assert!(x.broadcast_to(&[3]).is_err());
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Tensor> {
        dispatch1(Op::BroadcastTo { shape: shape.to_vec() }, &[self])
    }

    /// `tf.pad` in CONSTANT mode: `[before, after]` per axis, filled with `constant`.
    ///
    /// ```
    /// use ferroflow_tensor_core::Tensor;
    /// let x = Tensor::new([1.0f32, 2.0]);
    /// assert_eq!(x.pad(&[[1, 2]], 0.5)?.to_vec::<f32>()?, vec![0.5, 1.0, 2.0, 0.5, 0.5]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn pad(&self, paddings: &[[usize; 2]], constant: f64) -> Result<Tensor> {
        dispatch1(
            Op::Pad {
                paddings: paddings.to_vec(),
                constant,
            },
            &[self],
        )
    }

    /// `tf.gather(self, indices, axis)` (batch_dims 0); indices out of range are an error.
    ///
    /// ```
    /// use ferroflow_tensor_core::Tensor;
    /// let x = Tensor::new([[1i32, 2], [3, 4], [5, 6]]);
    /// assert_eq!(x.gather(&Tensor::new([2i64, 0]), 0)?.to_vec::<i32>()?, vec![5, 6, 1, 2]);
    /// assert!(x.gather(&Tensor::new([3i64]), 0).is_err());
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn gather(&self, indices: &Tensor, axis: i64) -> Result<Tensor> {
        dispatch1(Op::Gather { axis }, &[self, indices])
    }

    /// `tf.one_hot(self, depth, ...)` of integer indices: a depth alone, or [`OneHot`] for
    /// the values, axis and dtype. Out-of-range indices give a row of `off_value`.
    ///
    /// ```
    /// use ferroflow_tensor_core::{OneHot, Tensor};
    /// let i = Tensor::new([1i32, 5]);
    /// assert_eq!(i.one_hot(3)?.to_vec::<f32>()?, vec![0.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
    /// assert_eq!(i.one_hot(OneHot::new(2).axis(0))?.dims(), &[2, 2]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn one_hot(&self, options: impl Into<OneHot>) -> Result<Tensor> {
        let OneHot {
            depth,
            on_value,
            off_value,
            axis,
            dtype,
        } = options.into();
        dispatch1(
            Op::OneHot {
                depth,
                on_value,
                off_value,
                axis,
                dtype,
            },
            &[self],
        )
    }
}

/// Heap bytes one piece of a split takes besides its handle, at the least: its size entry,
/// its shape and an empty array's header (see `Tensor::split_n`).
const SPLIT_PIECE_HEAP_BYTES: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;

    /// `tf.squeeze(x, [])` squeezes every size-1 axis (the kernel's empty set means all),
    /// and a repeated axis is one axis.
    #[test]
    fn squeeze_with_no_listed_axes_squeezes_all_and_repeats_are_one() {
        let x = Tensor::zeros(&[1, 3, 1], DType::F32).unwrap();
        assert_eq!(x.squeeze(Axes::from(Vec::<i64>::new())).unwrap().dims(), &[3]);
        assert_eq!(x.squeeze(Axes::from(vec![0i64, 0, -3])).unwrap().dims(), &[3, 1]);
        assert!(x.squeeze(Axes::from(vec![1i64])).is_err());
        assert!(x.squeeze(Axes::from(vec![3i64])).is_err());
    }

    /// `one_hot`'s axis is -1 or in `0..=rank`; -2 is an error, as in TensorFlow.
    #[test]
    fn one_hot_axis_is_minus_one_or_non_negative() {
        let idx = Tensor::new([0i32, 1]);
        assert!(idx.one_hot(OneHot::new(3).axis(-2)).is_err());
        assert!(idx.one_hot(OneHot::new(3).axis(2)).is_err());
        let t = idx.one_hot(OneHot::new(3).axis(0)).unwrap();
        assert_eq!(t.dims(), &[3, 2]);
        assert_eq!(t.to_vec::<f32>().unwrap(), vec![1.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn views_do_not_copy() {
        let x = Tensor::new([[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]]);
        let t = x.t().unwrap();
        let p0 = x.to_ndarray::<f32>().unwrap().as_ptr();
        assert_eq!(t.to_ndarray::<f32>().unwrap().as_ptr(), p0);
        assert_eq!(t.to_vec::<f32>().unwrap(), vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        let s = x
            .strided_slice([crate::Slice::full(), crate::Slice::from(1..)])
            .unwrap();
        assert_eq!(s.to_vec::<f32>().unwrap(), vec![2.0, 3.0, 5.0, 6.0]);
    }

    #[test]
    fn python_slices() {
        let x = Tensor::new([0i32, 1, 2, 3, 4, 5]);
        let ss = |b: Option<i64>, e: Option<i64>, s: i64| {
            let slice = crate::Slice {
                start: b,
                end: e,
                step: s,
            };
            x.strided_slice([slice]).unwrap().to_vec::<i32>().unwrap()
        };
        assert_eq!(ss(Some(4), Some(0), -2), vec![4, 2]);
        assert_eq!(ss(None, None, -1), vec![5, 4, 3, 2, 1, 0]);
        assert_eq!(ss(Some(-2), None, 1), vec![4, 5]);
        assert_eq!(ss(Some(2), Some(1), 1), Vec::<i32>::new());
        assert!(x.strided_slice([crate::Slice::full().step(0)]).is_err());
        assert!(x.slice(&[4], &[3]).is_err());
    }

    #[test]
    fn shape_op_errors() {
        let x = Tensor::zeros(&[2, 3], DType::F32).unwrap();
        assert!(x.reshape(&[4, -1]).is_err());
        assert!(x.reshape(&[-1, -1]).is_err());
        assert!(x.transpose(&[0, 0]).is_err());
        assert!(x.squeeze(0).is_err());
        assert!(Tensor::concat(&[&x, &Tensor::zeros(&[3, 3], DType::F32).unwrap()], 1).is_err());
        assert!(Tensor::concat(&[], 0).is_err());
        assert!(x.gather(&Tensor::new([2i32]), 0).is_err());
        assert!(x.gather(&Tensor::new([0.0f32]), 0).is_err());
        assert!(x.tile(&[1]).is_err());
        assert!(x.broadcast_to(&[3]).is_err());
        assert!(x.split(&[1, 1], 1).is_err());
        assert!(x.expand_dims(3).is_err());
        let s = Tensor::scalar(1.0f32);
        assert_eq!(s.expand_dims(0).unwrap().dims(), &[1]);
        assert_eq!(s.reshape(&[1, 1]).unwrap().dims(), &[1, 1]);
    }

    #[test]
    fn gather_one_hot_pad_tile() {
        let p = Tensor::new([[1.0f64, 2.0], [3.0, 4.0], [5.0, 6.0]]);
        let g = p.gather(&Tensor::new([2i64, 0, 2]), 0).unwrap();
        assert_eq!(g.to_vec::<f64>().unwrap(), vec![5.0, 6.0, 1.0, 2.0, 5.0, 6.0]);
        let oh = Tensor::new([0i32, 2, 5]).one_hot(3).unwrap();
        assert_eq!(
            oh.to_vec::<f32>().unwrap(),
            vec![1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]
        );
        let pd = Tensor::new([1i32, 2]).pad(&[[1, 2]], 9.0).unwrap();
        assert_eq!(pd.to_vec::<i32>().unwrap(), vec![9, 1, 2, 9, 9]);
        let seg = Tensor::new([[1i32, 2], [3, 4], [5, 6]])
            .unsorted_segment_sum(&Tensor::new([1i64, 0, 1]), 2)
            .unwrap();
        assert_eq!(seg.to_vec::<i32>().unwrap(), vec![3, 4, 6, 8]);
        assert!(Tensor::new([[1i32]])
            .unsorted_segment_sum(&Tensor::new([2i64]), 2)
            .is_err());
        let t = Tensor::new([[1i32, 2]]).tile(&[2, 2]).unwrap();
        assert_eq!(t.to_vec::<i32>().unwrap(), vec![1, 2, 1, 2, 1, 2, 1, 2]);
    }

    #[test]
    fn strided_slice_with_huge_steps() {
        let x = Tensor::new([1i32, 2, 3]);
        let ss = |slice: crate::Slice| x.strided_slice([slice]).unwrap().to_vec::<i32>().unwrap();
        assert_eq!(ss(crate::Slice::full().step(i64::MAX)), vec![1]);
        assert_eq!(ss(crate::Slice::full().step(i64::MIN)), vec![3]);
        assert_eq!(ss(crate::Slice::full().step(i64::MIN + 1)), vec![3]);
        assert_eq!(ss(crate::Slice::from(1i64..).step(i64::MAX)), vec![2]);
        assert_eq!(ss(crate::Slice::from(..1i64).step(i64::MIN)), vec![3]);
        assert_eq!(ss(crate::Slice::full().step(2)), vec![1, 3]);
        assert_eq!(ss(crate::Slice::full().step(-2)), vec![3, 1]);
        let plan = plan_strided_slice(&[None], &[None], &[1], &[usize::MAX]).unwrap_err();
        assert!(plan.to_string().contains("too large"), "{plan}");
    }

    #[test]
    fn split_sizes_that_overflow_are_errors() {
        let x = Tensor::new([1i32, 2, 3]);
        for sizes in [
            &[i64::MAX, i64::MAX, -1][..],
            &[i64::MAX, 1],
            &[i64::MIN, -1],
            &[i64::MAX, i64::MAX, 3],
        ] {
            let e = x.split(sizes, 0).unwrap_err();
            assert!(e.to_string().contains("do not split dimension 0 of size 3"), "{e}");
        }
        let parts = x.split(&[1, -1], 0).unwrap();
        assert_eq!(parts[0].to_vec::<i32>().unwrap(), vec![1]);
        assert_eq!(parts[1].to_vec::<i32>().unwrap(), vec![2, 3]);
    }

    /// Shapes with a 0 whose other dimensions multiply past isize::MAX: ndarray cannot make
    /// them, so every op that would is an error instead of a panic.
    #[test]
    fn empty_outputs_ndarray_cannot_make_are_errors() {
        let exhausted = |r: Result<Tensor>, op: &str| {
            let e = r.unwrap_err();
            assert!(matches!(&e, Error::ResourceExhausted { op: o, .. } if *o == op), "{e}");
        };
        exhausted(Tensor::zeros(&[0, usize::MAX], DType::F32), "fill");
        let empty = Tensor::zeros(&[0], DType::F32).unwrap();
        exhausted(empty.reshape(&[0, i64::MAX, 2]), "reshape");
        let e2 = Tensor::zeros(&[0, 0], DType::F32).unwrap();
        let ids = Tensor::zeros(&[0], DType::I64).unwrap();
        exhausted(e2.unsorted_segment_sum(&ids, usize::MAX), "unsorted_segment_sum");
        exhausted(e2.pad(&[[0, 0], [0, usize::MAX]], 0.0), "pad");
        let g = Tensor::zeros(&[0, 1 << 22], DType::F32).unwrap();
        let grad = Op::StridedSliceGrad {
            input_shape: vec![0, 1 << 62],
            begin: vec![None, None],
            end: vec![None, None],
            strides: vec![1, 1 << 40],
        };
        exhausted(dispatch1(grad, &[&g]), "strided_slice_grad");
        // Shapes ndarray can make still work.
        assert_eq!(empty.reshape(&[0, 1 << 20, 2]).unwrap().dims(), &[0, 1 << 20, 2]);
    }

    #[test]
    fn tile_repeats_without_a_view_per_repeat() {
        let empty = Tensor::zeros(&[0], DType::F32).unwrap();
        assert_eq!(empty.tile(&[usize::MAX]).unwrap().dims(), &[0]);
        let e2 = Tensor::zeros(&[0, 2], DType::I32).unwrap();
        assert_eq!(e2.tile(&[usize::MAX, 3]).unwrap().dims(), &[0, 6]);
        assert!(Tensor::new([1i32]).tile(&[usize::MAX]).is_err());
        let x = Tensor::new([1i32, 2, 3]);
        assert_eq!(x.tile(&[5]).unwrap().to_vec::<i32>().unwrap(), [1, 2, 3].repeat(5));
        let m = Tensor::new([[1i32, 2], [3, 4]]).tile(&[3, 2]).unwrap();
        assert_eq!(m.dims(), &[6, 4]);
        assert_eq!(m.to_vec::<i32>().unwrap(), [1, 2, 1, 2, 3, 4, 3, 4].repeat(3));
        assert_eq!(x.tile(&[0]).unwrap().dims(), &[0]);
    }

    #[test]
    fn split_n_bounds_the_number_of_pieces() {
        let empty = Tensor::zeros(&[0, 2], DType::F32).unwrap();
        let e = empty.split_n(usize::MAX, 0).unwrap_err();
        assert!(matches!(e, Error::ResourceExhausted { op: "split", .. }), "{e}");
        let parts = empty.split_n(3, 0).unwrap();
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|p| p.dims() == [0, 2]));
        assert!(Tensor::new([1i32, 2]).split_n(usize::MAX, 0).is_err());
    }

    #[test]
    fn concat_sizes_that_overflow_are_errors() {
        let big = Tensor::zeros(&[0, 1 << 62], DType::Bool).unwrap();
        let e = Tensor::concat(&[&big, &big, &big, &big], 1).unwrap_err();
        assert!(matches!(e, Error::ShapeMismatch { op: "concat", .. }), "{e}");
        assert!(e.to_string().contains("overflow"), "{e}");
        let two = Tensor::concat(&[&big, &Tensor::zeros(&[0, 3], DType::Bool).unwrap()], 1).unwrap();
        assert_eq!(two.dims(), &[0, (1 << 62) + 3]);
    }

    #[test]
    fn resolve_reshape_checks_the_element_count() {
        let e = resolve_reshape(&[-1], &Shape::new(vec![usize::MAX, 2])).unwrap_err();
        assert!(matches!(e, Error::ShapeMismatch { op: "reshape", .. }), "{e}");
        assert_eq!(resolve_reshape(&[3, -1], &Shape::new(vec![2, 3])).unwrap(), vec![3, 2]);
    }

    #[test]
    fn one_hot_in_each_dtype_and_wrapping_segment_sums() {
        let i = Tensor::new([1i32, 3]);
        let o = crate::OneHot::new(3).on_value(7.9).off_value(-1.0).dtype(DType::I32);
        assert_eq!(
            i.one_hot(o).unwrap().to_vec::<i32>().unwrap(),
            vec![-1, 7, -1, -1, -1, -1]
        );
        let b = crate::OneHot::new(2).off_value(0.0).dtype(DType::Bool);
        assert_eq!(
            i.one_hot(b).unwrap().to_vec::<bool>().unwrap(),
            vec![false, true, false, false]
        );
        let s = Tensor::new([i32::MAX, 1, 5])
            .unsorted_segment_sum(&Tensor::new([0i32, 0, 1]), 2)
            .unwrap();
        assert_eq!(s.to_vec::<i32>().unwrap(), vec![i32::MIN, 5]);
    }
}
