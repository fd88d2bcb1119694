//! Reductions: `reduce_sum`, `reduce_mean`, `reduce_max`, `reduce_min`, `reduce_prod` (one
//! fused kernel), the composites `reduce_logsumexp`, `reduce_variance`, `reduce_std`, and
//! `argmax`, `argmin`, `cumsum`.

use crate::data::Array;
use crate::dispatch::dispatch1;
use crate::kernels::reduce::{reduce_axes, split_dims};
use crate::shape::{normalize_axes, normalize_axis};
use crate::{DType, Data, Element, Error, Op, Result, Tensor, TensorSpec};
use ndarray::{ArrayD, IxDyn};

/// Which reduction a [`Op::Reduce`] performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReduceKind {
    /// Sum (0 over nothing).
    Sum,
    /// Arithmetic mean.
    Mean,
    /// Maximum.
    Max,
    /// Minimum.
    Min,
    /// Product (1 over nothing).
    Prod,
}

impl ReduceKind {
    /// TensorFlow's name.
    pub fn name(self) -> &'static str {
        match self {
            ReduceKind::Sum => "reduce_sum",
            ReduceKind::Mean => "reduce_mean",
            ReduceKind::Max => "reduce_max",
            ReduceKind::Min => "reduce_min",
            ReduceKind::Prod => "reduce_prod",
        }
    }
}

/// Output dims of a reduction over the resolved `axes`.
pub fn reduced_dims(dims: &[usize], axes: &[usize], keepdims: bool) -> Vec<usize> {
    dims.iter()
        .enumerate()
        .filter_map(|(i, &d)| match (axes.contains(&i), keepdims) {
            (false, _) => Some(d),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect()
}

pub(crate) fn infer_reduce(
    kind: ReduceKind,
    axes: Option<&[i64]>,
    keepdims: bool,
    x: &[TensorSpec],
) -> Result<TensorSpec> {
    if x[0].dtype == DType::Bool {
        return Err(Error::dtypes(kind.name(), &[DType::Bool], "expects a numeric tensor"));
    }
    let axes = normalize_axes(kind.name(), axes, x[0].shape.rank())?;
    Ok(TensorSpec::new(
        x[0].dtype,
        reduced_dims(x[0].shape.dims(), &axes, keepdims),
    ))
}

fn reduce_typed<T: Element + num_traits::Num + num_traits::Bounded + Send + Sync>(
    kind: ReduceKind,
    a: &Array<T>,
    axes: &[usize],
    out_dims: &[usize],
) -> Array<T> {
    let r: usize = axes.iter().map(|&i| a.shape()[i]).product();
    let out = match kind {
        ReduceKind::Sum => reduce_axes(a, axes, T::zero(), |x, y| x + y),
        ReduceKind::Mean => {
            let s = reduce_axes(a, axes, T::zero(), |x, y| x + y);
            let n = T::from_f64(r as f64);
            if r == 0 {
                s.mapv(|_| T::from_f64(f64::NAN))
            } else {
                s.mapv(|v| v / n)
            }
        }
        ReduceKind::Prod => reduce_axes(a, axes, T::one(), |x, y| x * y),
        ReduceKind::Max => reduce_axes(a, axes, lowest::<T>(), |x, y| if y > x || is_nan(y) { y } else { x }),
        ReduceKind::Min => reduce_axes(a, axes, highest::<T>(), |x, y| if y < x || is_nan(y) { y } else { x }),
    };
    out.into_shape_with_order(IxDyn(out_dims))
        .expect("reduce: keepdims reshape")
        .into_shared()
}

/// NaN test for any element type (NaN is the only value not equal to itself); reductions
/// propagate NaN like TensorFlow.
#[inline(always)]
#[allow(clippy::eq_op)]
fn is_nan<T: PartialEq>(v: T) -> bool {
    v != v
}

fn lowest<T: Element + num_traits::Bounded>() -> T {
    match T::DTYPE {
        DType::F32 | DType::F64 => T::from_f64(f64::NEG_INFINITY),
        _ => T::min_value(),
    }
}

fn highest<T: Element + num_traits::Bounded>() -> T {
    match T::DTYPE {
        DType::F32 | DType::F64 => T::from_f64(f64::INFINITY),
        _ => T::max_value(),
    }
}

pub(crate) fn reduce(kind: ReduceKind, axes: Option<&[i64]>, keepdims: bool, x: &Data) -> Result<Data> {
    let axes = normalize_axes(kind.name(), axes, x.dims().len())?;
    let out_dims = reduced_dims(x.dims(), &axes, keepdims);
    Ok(match x {
        Data::F32(a) => Data::F32(reduce_typed(kind, a, &axes, &out_dims)),
        Data::F64(a) => Data::F64(reduce_typed(kind, a, &axes, &out_dims)),
        Data::I32(a) => Data::I32(reduce_typed(kind, a, &axes, &out_dims)),
        Data::I64(a) => Data::I64(reduce_typed(kind, a, &axes, &out_dims)),
        Data::Bool(_) => return Err(Error::dtypes(kind.name(), &[DType::Bool], "expects a numeric tensor")),
    })
}

pub(crate) fn infer_arg(op: &'static str, axis: i64, x: &[TensorSpec]) -> Result<TensorSpec> {
    let s = &x[0].shape;
    let ax = normalize_axis(op, axis, s.rank())?;
    if s.dims()[ax] == 0 {
        return Err(Error::invalid(
            op,
            format!("reduction axis {ax} of shape {s:?} is empty"),
        ));
    }
    if x[0].dtype == DType::Bool {
        return Err(Error::dtypes(op, &[DType::Bool], "expects a numeric tensor"));
    }
    Ok(TensorSpec::new(DType::I64, reduced_dims(s.dims(), &[ax], false)))
}

pub(crate) fn arg_reduce(max: bool, axis: i64, x: &Data) -> Result<Data> {
    let op = if max { "argmax" } else { "argmin" };
    let ax = normalize_axis(op, axis, x.dims().len())?;
    fn go<T: Element>(max: bool, a: &Array<T>, ax: usize) -> Array<i64> {
        let std = a.as_standard_layout();
        let s = std.as_slice().expect("standard layout");
        let (outer, n, inner) = split_dims(a.shape(), ax, ax + 1);
        let mut out = Vec::with_capacity(outer * inner);
        for o in 0..outer {
            for i in 0..inner {
                let mut best = 0usize;
                let mut bv = s[o * n * inner + i];
                for k in 1..n {
                    let v = s[(o * n + k) * inner + i];
                    if (max && v > bv) || (!max && v < bv) {
                        best = k;
                        bv = v;
                    }
                }
                out.push(best as i64);
            }
        }
        ArrayD::from_shape_vec(IxDyn(&reduced_dims(a.shape(), &[ax], false)), out)
            .expect("arg size")
            .into_shared()
    }
    Ok(Data::I64(crate::with_data!(x, a => go(max, a, ax))))
}

pub(crate) fn infer_cumsum(axis: i64, x: &[TensorSpec]) -> Result<TensorSpec> {
    normalize_axis("cumsum", axis, x[0].shape.rank())?;
    if x[0].dtype == DType::Bool {
        return Err(Error::dtypes("cumsum", &[DType::Bool], "expects a numeric tensor"));
    }
    Ok(x[0].clone())
}

pub(crate) fn cumsum(product: bool, axis: i64, exclusive: bool, reverse: bool, x: &Data) -> Result<Data> {
    let op = if product { "cumprod" } else { "cumsum" };
    let ax = normalize_axis(op, axis, x.dims().len())?;
    fn go<T: Element + num_traits::Num>(
        a: &Array<T>,
        product: bool,
        ax: usize,
        exclusive: bool,
        reverse: bool,
    ) -> Data {
        let (init, f): (T, fn(T, T) -> T) = if product {
            (T::one(), |x, y| x * y)
        } else {
            (T::zero(), |x, y| x + y)
        };
        let std = a.as_standard_layout();
        let s = std.as_slice().expect("standard layout");
        let (outer, n, inner) = split_dims(a.shape(), ax, ax + 1);
        let mut out = vec![T::zero(); s.len()];
        for o in 0..outer {
            for i in 0..inner {
                let mut acc = init;
                for step in 0..n {
                    let k = if reverse { n - 1 - step } else { step };
                    let idx = (o * n + k) * inner + i;
                    if exclusive {
                        out[idx] = acc;
                        acc = f(acc, s[idx]);
                    } else {
                        acc = f(acc, s[idx]);
                        out[idx] = acc;
                    }
                }
            }
        }
        Data::from_owned(ArrayD::from_shape_vec(IxDyn(a.shape()), out).expect("cumsum size"))
    }
    Ok(match x {
        Data::F32(a) => go(a, product, ax, exclusive, reverse),
        Data::F64(a) => go(a, product, ax, exclusive, reverse),
        Data::I32(a) => go(a, product, ax, exclusive, reverse),
        Data::I64(a) => go(a, product, ax, exclusive, reverse),
        Data::Bool(_) => return Err(Error::dtypes("cumsum", &[DType::Bool], "expects a numeric tensor")),
    })
}

fn reduce_op(x: &Tensor, kind: ReduceKind, axes: Option<&[i64]>, keepdims: bool) -> Result<Tensor> {
    dispatch1(
        Op::Reduce {
            kind,
            axes: axes.map(|a| a.to_vec()),
            keepdims,
        },
        &[x],
    )
}

impl Tensor {
    /// `tf.reduce_sum` over `axes` (`None` = all).
    pub fn reduce_sum(&self, axes: Option<&[i64]>, keepdims: bool) -> Result<Tensor> {
        reduce_op(self, ReduceKind::Sum, axes, keepdims)
    }

    /// `tf.reduce_mean` over `axes` (`None` = all).
    pub fn reduce_mean(&self, axes: Option<&[i64]>, keepdims: bool) -> Result<Tensor> {
        reduce_op(self, ReduceKind::Mean, axes, keepdims)
    }

    /// `tf.reduce_max` over `axes` (`None` = all).
    pub fn reduce_max(&self, axes: Option<&[i64]>, keepdims: bool) -> Result<Tensor> {
        reduce_op(self, ReduceKind::Max, axes, keepdims)
    }

    /// `tf.reduce_min` over `axes` (`None` = all).
    pub fn reduce_min(&self, axes: Option<&[i64]>, keepdims: bool) -> Result<Tensor> {
        reduce_op(self, ReduceKind::Min, axes, keepdims)
    }

    /// `tf.reduce_prod` over `axes` (`None` = all).
    pub fn reduce_prod(&self, axes: Option<&[i64]>, keepdims: bool) -> Result<Tensor> {
        reduce_op(self, ReduceKind::Prod, axes, keepdims)
    }

    /// `tf.reduce_logsumexp`: `max + log(sum(exp(x - max)))` with the max held constant for
    /// gradients and replaced by 0 where it is infinite (composite, stable).
    pub fn reduce_logsumexp(&self, axes: Option<&[i64]>, keepdims: bool) -> Result<Tensor> {
        let m = self.reduce_max(axes, true)?.stop_gradient()?;
        let finite = m.abs()?.less(&m.scalar_like(f64::INFINITY))?;
        let m = finite.select(&m, &m.scalar_like(0.0))?;
        let s = self.sub(&m)?.exp()?.reduce_sum(axes, true)?.log()?.add(&m)?;
        if keepdims {
            Ok(s)
        } else {
            let axes = normalize_axes("reduce_logsumexp", axes, self.rank())?;
            let dims = reduced_dims(self.dims(), &axes, false);
            s.reshape(&dims.iter().map(|&d| d as i64).collect::<Vec<_>>())
        }
    }

    /// `tf.math.reduce_variance` (population: divides by N), composite.
    pub fn reduce_variance(&self, axes: Option<&[i64]>, keepdims: bool) -> Result<Tensor> {
        let mean = self.reduce_mean(axes, true)?;
        self.squared_difference(&mean)?.reduce_mean(axes, keepdims)
    }

    /// `tf.math.reduce_std` (population), composite.
    pub fn reduce_std(&self, axes: Option<&[i64]>, keepdims: bool) -> Result<Tensor> {
        self.reduce_variance(axes, keepdims)?.sqrt()
    }

    /// `tf.math.argmax` along `axis` (int64; the first maximum wins).
    pub fn argmax(&self, axis: i64) -> Result<Tensor> {
        dispatch1(Op::ArgReduce { max: true, axis }, &[self])
    }

    /// `tf.math.argmin` along `axis` (int64; the first minimum wins).
    pub fn argmin(&self, axis: i64) -> Result<Tensor> {
        dispatch1(Op::ArgReduce { max: false, axis }, &[self])
    }

    /// `tf.math.cumsum` along `axis`.
    pub fn cumsum(&self, axis: i64, exclusive: bool, reverse: bool) -> Result<Tensor> {
        dispatch1(
            Op::Scan {
                product: false,
                axis,
                exclusive,
                reverse,
            },
            &[self],
        )
    }

    /// `tf.math.cumprod` along `axis`.
    pub fn cumprod(&self, axis: i64, exclusive: bool, reverse: bool) -> Result<Tensor> {
        dispatch1(
            Op::Scan {
                product: true,
                axis,
                exclusive,
                reverse,
            },
            &[self],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reductions_with_axes_and_keepdims() {
        let x = Tensor::new([[1.0f64, 2.0, 3.0], [4.0, 5.0, 6.0]]);
        assert_eq!(
            x.reduce_sum(Some(&[0]), false).unwrap().to_vec::<f64>().unwrap(),
            vec![5.0, 7.0, 9.0]
        );
        let m = x.reduce_mean(Some(&[-1]), true).unwrap();
        assert_eq!(m.dims(), &[2, 1]);
        assert_eq!(m.to_vec::<f64>().unwrap(), vec![2.0, 5.0]);
        assert_eq!(x.reduce_max(None, false).unwrap().to_scalar::<f64>().unwrap(), 6.0);
        assert_eq!(
            x.reduce_prod(Some(&[1]), false).unwrap().to_vec::<f64>().unwrap(),
            vec![6.0, 120.0]
        );
        let e = Tensor::zeros(&[0, 3], DType::F32);
        assert_eq!(
            e.reduce_sum(Some(&[0]), false).unwrap().to_vec::<f32>().unwrap(),
            vec![0.0; 3]
        );
        assert_eq!(e.reduce_prod(None, false).unwrap().to_scalar::<f32>().unwrap(), 1.0);
        assert!(x.reduce_sum(Some(&[2]), false).is_err());
        assert!(x.reduce_sum(Some(&[0, 0]), false).is_err());
    }

    #[test]
    fn logsumexp_variance_arg_and_cumsum() {
        let x = Tensor::new([[1.0f64, 2.0], [3.0, 5.0]]);
        let l = x.reduce_logsumexp(Some(&[1]), false).unwrap().to_vec::<f64>().unwrap();
        assert!((l[0] - (1f64.exp() + 2f64.exp()).ln()).abs() < 1e-12);
        assert_eq!(
            x.reduce_variance(None, false).unwrap().to_scalar::<f64>().unwrap(),
            2.1875
        );
        assert_eq!(x.argmax(0).unwrap().to_vec::<i64>().unwrap(), vec![1, 1]);
        assert_eq!(x.argmin(-1).unwrap().to_vec::<i64>().unwrap(), vec![0, 0]);
        assert!(Tensor::zeros(&[0], DType::F32).argmax(0).is_err());
        let c = Tensor::new([1i32, 2, 3]);
        assert_eq!(
            c.cumsum(0, false, false).unwrap().to_vec::<i32>().unwrap(),
            vec![1, 3, 6]
        );
        assert_eq!(c.cumsum(0, true, true).unwrap().to_vec::<i32>().unwrap(), vec![5, 3, 0]);
        assert_eq!(
            c.cumprod(0, true, false).unwrap().to_vec::<i32>().unwrap(),
            vec![1, 1, 2]
        );
        assert_eq!(
            c.cumprod(0, false, true).unwrap().to_vec::<i32>().unwrap(),
            vec![6, 6, 3]
        );
    }
}
