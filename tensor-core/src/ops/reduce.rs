//! Reductions: `reduce_sum`, `reduce_mean`, `reduce_max`, `reduce_min`, `reduce_prod` (one
//! fused kernel), the composites `reduce_logsumexp`, `reduce_variance`, `reduce_std`, and
//! `argmax`, `argmin`, `cumsum`.

use crate::data::{row_major, Array};
use crate::dispatch::dispatch1;
use crate::kernels::reduce::{reduce_axes, split_dims};
use crate::shape::{normalize_axes, normalize_axis};
use crate::{Axes, DType, Data, Element, Error, Op, Reduction, Result, Scan, Tensor, TensorSpec};
use ndarray::IxDyn;

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

/// Which index `argmax` / `argmin` ([`Op::ArgReduce`]) returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArgKind {
    /// The index of the largest element (`argmax`).
    Max,
    /// The index of the smallest element (`argmin`).
    Min,
}

impl ArgKind {
    /// TensorFlow's name.
    pub fn name(self) -> &'static str {
        match self {
            ArgKind::Max => "argmax",
            ArgKind::Min => "argmin",
        }
    }
}

/// The running total a [`Op::Scan`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScanKind {
    /// A running sum (`cumsum`).
    Sum,
    /// A running product (`cumprod`).
    Prod,
}

impl ScanKind {
    /// TensorFlow's name.
    pub fn name(self) -> &'static str {
        match self {
            ScanKind::Sum => "cumsum",
            ScanKind::Prod => "cumprod",
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

/// Addition and multiplication as TensorFlow accumulates sums and products: integers wrap
/// (two's complement) on overflow like the binary ops, where `+` and `*` panic in debug
/// builds; floats add and multiply as usual.
pub(crate) trait Accumulate: Copy {
    /// `self + other`, wrapping for integers.
    fn acc_add(self, other: Self) -> Self;
    /// `self * other`, wrapping for integers.
    fn acc_mul(self, other: Self) -> Self;
}

macro_rules! impl_accumulate {
    ($t:ty, $add:path, $mul:path) => {
        impl Accumulate for $t {
            #[inline(always)]
            fn acc_add(self, other: Self) -> Self {
                $add(self, other)
            }
            #[inline(always)]
            fn acc_mul(self, other: Self) -> Self {
                $mul(self, other)
            }
        }
    };
}
impl_accumulate!(f32, std::ops::Add::add, std::ops::Mul::mul);
impl_accumulate!(f64, std::ops::Add::add, std::ops::Mul::mul);
impl_accumulate!(i32, i32::wrapping_add, i32::wrapping_mul);
impl_accumulate!(i64, i64::wrapping_add, i64::wrapping_mul);

pub(crate) fn infer_reduce(kind: ReduceKind, axes: &Axes, keepdims: bool, x: &[TensorSpec]) -> Result<TensorSpec> {
    if x[0].dtype == DType::Bool {
        return Err(Error::dtypes(kind.name(), &[DType::Bool], "expects a numeric tensor"));
    }
    let axes = normalize_axes(kind.name(), axes, x[0].shape.rank())?;
    Ok(TensorSpec::new(
        x[0].dtype,
        reduced_dims(x[0].shape.dims(), &axes, keepdims),
    ))
}

fn reduce_typed<T: Element + num_traits::Num + num_traits::Bounded + Accumulate + Send + Sync>(
    kind: ReduceKind,
    a: &Array<T>,
    axes: &[usize],
    out_dims: &[usize],
) -> Array<T> {
    let r: usize = axes.iter().map(|&i| a.shape()[i]).product();
    let out = match kind {
        ReduceKind::Sum => reduce_axes(a, axes, T::zero(), T::acc_add),
        ReduceKind::Mean => {
            let s = reduce_axes(a, axes, T::zero(), T::acc_add);
            let n = T::from_f64(r as f64);
            if r == 0 {
                s.mapv(|_| T::from_f64(f64::NAN))
            } else {
                s.mapv(|v| v / n)
            }
        }
        ReduceKind::Prod => reduce_axes(a, axes, T::one(), T::acc_mul),
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

pub(crate) fn reduce(kind: ReduceKind, axes: &Axes, keepdims: bool, x: &Data) -> Result<Data> {
    let axes = normalize_axes(kind.name(), axes, x.dims().len())?;
    let out_dims = reduced_dims(x.dims(), &axes, keepdims);
    Ok(match x {
        Data::F32(a) => Data::F32(reduce_typed(kind, a, &axes, &out_dims)),
        Data::F64(a) => Data::F64(reduce_typed(kind, a, &axes, &out_dims)),
        // TensorFlow's int32 mean sums and divides in int64, then narrows (`MeanReducer`'s
        // casting specialisation), so the mean of [i32::MAX, 1] is 2^30, not a wrapped sum.
        Data::I32(a) if kind == ReduceKind::Mean => {
            let wide = reduce_typed(kind, &a.mapv(i64::from).into_shared(), &axes, &out_dims);
            Data::I32(wide.mapv(|v| v as i32).into_shared())
        }
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

pub(crate) fn arg_reduce(kind: ArgKind, axis: i64, x: &Data) -> Result<Data> {
    let ax = normalize_axis(kind.name(), axis, x.dims().len())?;
    let max = kind == ArgKind::Max;
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
        row_major(&reduced_dims(a.shape(), &[ax], false), out)
            .expect("arg size")
            .into_shared()
    }
    Ok(Data::I64(crate::data::with_data!(x, a => go(max, a, ax))))
}

pub(crate) fn infer_scan(kind: ScanKind, axis: i64, x: &[TensorSpec]) -> Result<TensorSpec> {
    normalize_axis(kind.name(), axis, x[0].shape.rank())?;
    if x[0].dtype == DType::Bool {
        return Err(Error::dtypes(kind.name(), &[DType::Bool], "expects a numeric tensor"));
    }
    Ok(x[0].clone())
}

pub(crate) fn scan(kind: ScanKind, axis: i64, exclusive: bool, reverse: bool, x: &Data) -> Result<Data> {
    let ax = normalize_axis(kind.name(), axis, x.dims().len())?;
    let product = kind == ScanKind::Prod;
    fn go<T: Element + num_traits::Num + Accumulate>(
        a: &Array<T>,
        product: bool,
        ax: usize,
        exclusive: bool,
        reverse: bool,
    ) -> Data {
        let (init, f): (T, fn(T, T) -> T) = if product {
            (T::one(), T::acc_mul)
        } else {
            (T::zero(), T::acc_add)
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
        Data::from_owned(row_major(a.shape(), out).expect("cumsum size"))
    }
    Ok(match x {
        Data::F32(a) => go(a, product, ax, exclusive, reverse),
        Data::F64(a) => go(a, product, ax, exclusive, reverse),
        Data::I32(a) => go(a, product, ax, exclusive, reverse),
        Data::I64(a) => go(a, product, ax, exclusive, reverse),
        Data::Bool(_) => return Err(Error::dtypes(kind.name(), &[DType::Bool], "expects a numeric tensor")),
    })
}

fn reduce_op(x: &Tensor, kind: ReduceKind, r: Reduction) -> Result<Tensor> {
    dispatch1(
        Op::Reduce {
            kind,
            axes: r.axes,
            keepdims: r.keepdims,
        },
        &[x],
    )
}

/// The reduced dimensions of `x` when the axes were reduced with `keepdims`, as reshape
/// targets (composites compute with `keepdims` and drop the axes at the end).
fn dropped_dims(op: &'static str, x: &Tensor, axes: &Axes) -> Result<Vec<i64>> {
    let axes = normalize_axes(op, axes, x.rank())?;
    Ok(reduced_dims(x.dims(), &axes, false).iter().map(|&d| d as i64).collect())
}

impl Tensor {
    /// `tf.reduce_sum` over some or all axes ([`Axes::All`], an axis, a list of axes; see
    /// [`Reduction`] for `keepdims`).
    ///
    /// ```
    /// use ferroflow_tensor_core::{Axes, Tensor};
    /// let x = Tensor::new([[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]]);
    /// assert_eq!(x.reduce_sum(Axes::All)?.to_scalar::<f32>()?, 21.0);
    /// assert_eq!(x.reduce_sum(1)?.to_vec::<f32>()?, vec![6.0, 15.0]);
    /// assert_eq!(x.reduce_sum(Axes::from(0).keepdims())?.dims(), &[1, 3]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn reduce_sum(&self, axes: impl Into<Reduction>) -> Result<Tensor> {
        reduce_op(self, ReduceKind::Sum, axes.into())
    }

    /// `tf.reduce_mean` over some or all axes.
    ///
    /// ```
    /// use ferroflow_tensor_core::{Axes, Tensor};
    /// let x = Tensor::new([[1.0f32, 2.0], [3.0, 6.0]]);
    /// assert_eq!(x.reduce_mean(Axes::All)?.to_scalar::<f32>()?, 3.0);
    /// assert_eq!(x.reduce_mean(-1)?.to_vec::<f32>()?, vec![1.5, 4.5]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn reduce_mean(&self, axes: impl Into<Reduction>) -> Result<Tensor> {
        reduce_op(self, ReduceKind::Mean, axes.into())
    }

    /// `tf.reduce_max` over some or all axes.
    ///
    /// ```
    /// use ferroflow_tensor_core::{Axes, Tensor};
    /// let x = Tensor::new([[1i32, 7], [3, 4]]);
    /// assert_eq!(x.reduce_max(Axes::All)?.to_scalar::<i32>()?, 7);
    /// assert_eq!(x.reduce_max(0)?.to_vec::<i32>()?, vec![3, 7]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn reduce_max(&self, axes: impl Into<Reduction>) -> Result<Tensor> {
        reduce_op(self, ReduceKind::Max, axes.into())
    }

    /// `tf.reduce_min` over some or all axes.
    ///
    /// ```
    /// use ferroflow_tensor_core::{Axes, Tensor};
    /// let x = Tensor::new([[1i32, 7], [3, 4]]);
    /// assert_eq!(x.reduce_min(Axes::All)?.to_scalar::<i32>()?, 1);
    /// assert_eq!(x.reduce_min(1)?.to_vec::<i32>()?, vec![1, 3]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn reduce_min(&self, axes: impl Into<Reduction>) -> Result<Tensor> {
        reduce_op(self, ReduceKind::Min, axes.into())
    }

    /// `tf.reduce_prod` over some or all axes (1 over an empty axis).
    ///
    /// ```
    /// use ferroflow_tensor_core::{Axes, Tensor};
    /// let x = Tensor::new([[1.0f64, 2.0], [3.0, 4.0]]);
    /// assert_eq!(x.reduce_prod(Axes::All)?.to_scalar::<f64>()?, 24.0);
    /// assert_eq!(x.reduce_prod(1)?.to_vec::<f64>()?, vec![2.0, 12.0]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn reduce_prod(&self, axes: impl Into<Reduction>) -> Result<Tensor> {
        reduce_op(self, ReduceKind::Prod, axes.into())
    }

    /// `tf.reduce_logsumexp`: `max + log(sum(exp(x - max)))` with the max held constant for
    /// gradients and replaced by 0 where it is infinite (composite, stable).
    ///
    /// ```
    /// use ferroflow_tensor_core::Tensor;
    /// let x = Tensor::new([[0.0f64, 0.0], [1000.0, 1000.0]]);
    /// let l = x.reduce_logsumexp(1)?.to_vec::<f64>()?;
    /// assert!((l[0] - 2f64.ln()).abs() < 1e-15 && (l[1] - (1000.0 + 2f64.ln())).abs() < 1e-12);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn reduce_logsumexp(&self, axes: impl Into<Reduction>) -> Result<Tensor> {
        let Reduction { axes, keepdims } = axes.into();
        let kept = Reduction {
            axes: axes.clone(),
            keepdims: true,
        };
        let m = self.reduce_max(kept.clone())?.stop_gradient()?;
        let finite = m.abs()?.less(&m.scalar_like(f64::INFINITY))?;
        let m = finite.select(&m, &m.scalar_like(0.0))?;
        let s = self.sub(&m)?.exp()?.reduce_sum(kept)?.log()?.add(&m)?;
        if keepdims {
            Ok(s)
        } else {
            s.reshape(&dropped_dims("reduce_logsumexp", self, &axes)?)
        }
    }

    /// `tf.math.reduce_variance` (population: divides by N), composite.
    ///
    /// ```
    /// use ferroflow_tensor_core::{Axes, Tensor};
    /// let x = Tensor::new([1.0f64, 2.0, 3.0, 4.0]);
    /// assert_eq!(x.reduce_variance(Axes::All)?.to_scalar::<f64>()?, 1.25);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn reduce_variance(&self, axes: impl Into<Reduction>) -> Result<Tensor> {
        if !self.dtype().is_float() {
            return Err(Error::dtypes(
                "reduce_variance",
                &[self.dtype()],
                "expects a float tensor (TensorFlow rejects integer input)",
            ));
        }
        let r = axes.into();
        let mean = self.reduce_mean(Reduction {
            axes: r.axes.clone(),
            keepdims: true,
        })?;
        self.squared_difference(&mean)?.reduce_mean(r)
    }

    /// `tf.math.reduce_std` (population), composite.
    ///
    /// ```
    /// use ferroflow_tensor_core::{Axes, Tensor};
    /// let x = Tensor::new([1.0f64, 3.0]);
    /// assert_eq!(x.reduce_std(Axes::All)?.to_scalar::<f64>()?, 1.0);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn reduce_std(&self, axes: impl Into<Reduction>) -> Result<Tensor> {
        self.reduce_variance(axes)?.sqrt()
    }

    /// `tf.math.argmax` along `axis` (int64; the first maximum wins).
    ///
    /// ```
    /// use ferroflow_tensor_core::Tensor;
    /// let x = Tensor::new([[1.0f32, 9.0, 9.0], [4.0, 0.0, 2.0]]);
    /// assert_eq!(x.argmax(1)?.to_vec::<i64>()?, vec![1, 0]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn argmax(&self, axis: i64) -> Result<Tensor> {
        dispatch1(
            Op::ArgReduce {
                kind: ArgKind::Max,
                axis,
            },
            &[self],
        )
    }

    /// `tf.math.argmin` along `axis` (int64; the first minimum wins).
    ///
    /// ```
    /// use ferroflow_tensor_core::Tensor;
    /// let x = Tensor::new([[1.0f32, 9.0], [4.0, 0.0]]);
    /// assert_eq!(x.argmin(0)?.to_vec::<i64>()?, vec![0, 1]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn argmin(&self, axis: i64) -> Result<Tensor> {
        dispatch1(
            Op::ArgReduce {
                kind: ArgKind::Min,
                axis,
            },
            &[self],
        )
    }

    /// `tf.math.cumsum` along an axis ([`Scan`] adds `exclusive` and `reverse`).
    ///
    /// ```
    /// use ferroflow_tensor_core::{Scan, Tensor};
    /// let x = Tensor::new([1i32, 2, 3]);
    /// assert_eq!(x.cumsum(0)?.to_vec::<i32>()?, vec![1, 3, 6]);
    /// assert_eq!(x.cumsum(Scan::along(0).reverse())?.to_vec::<i32>()?, vec![6, 5, 3]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn cumsum(&self, scan: impl Into<Scan>) -> Result<Tensor> {
        scan_op(self, ScanKind::Sum, scan.into())
    }

    /// `tf.math.cumprod` along an axis ([`Scan`] adds `exclusive` and `reverse`).
    ///
    /// ```
    /// use ferroflow_tensor_core::{Scan, Tensor};
    /// let x = Tensor::new([1i32, 2, 3]);
    /// assert_eq!(x.cumprod(0)?.to_vec::<i32>()?, vec![1, 2, 6]);
    /// assert_eq!(x.cumprod(Scan::along(0).exclusive())?.to_vec::<i32>()?, vec![1, 1, 2]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn cumprod(&self, scan: impl Into<Scan>) -> Result<Tensor> {
        scan_op(self, ScanKind::Prod, scan.into())
    }
}

fn scan_op(x: &Tensor, kind: ScanKind, s: Scan) -> Result<Tensor> {
    dispatch1(
        Op::Scan {
            kind,
            axis: s.axis,
            exclusive: s.exclusive,
            reverse: s.reverse,
        },
        &[x],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reductions_with_axes_and_keepdims() {
        let x = Tensor::new([[1.0f64, 2.0, 3.0], [4.0, 5.0, 6.0]]);
        assert_eq!(x.reduce_sum(0).unwrap().to_vec::<f64>().unwrap(), vec![5.0, 7.0, 9.0]);
        let m = x.reduce_mean(Axes::from(-1).keepdims()).unwrap();
        assert_eq!(m.dims(), &[2, 1]);
        assert_eq!(m.to_vec::<f64>().unwrap(), vec![2.0, 5.0]);
        assert_eq!(x.reduce_max(Axes::All).unwrap().to_scalar::<f64>().unwrap(), 6.0);
        assert_eq!(x.reduce_prod(1).unwrap().to_vec::<f64>().unwrap(), vec![6.0, 120.0]);
        let e = Tensor::zeros(&[0, 3], DType::F32).unwrap();
        assert_eq!(e.reduce_sum(0).unwrap().to_vec::<f32>().unwrap(), vec![0.0; 3]);
        assert_eq!(e.reduce_prod(Axes::All).unwrap().to_scalar::<f32>().unwrap(), 1.0);
        assert!(x.reduce_sum(2).is_err());
        assert!(x.reduce_sum([0, 0]).is_err());
    }

    #[test]
    fn logsumexp_variance_arg_and_cumsum() {
        let x = Tensor::new([[1.0f64, 2.0], [3.0, 5.0]]);
        let l = x.reduce_logsumexp(1).unwrap().to_vec::<f64>().unwrap();
        assert!((l[0] - (1f64.exp() + 2f64.exp()).ln()).abs() < 1e-12);
        assert_eq!(
            x.reduce_variance(Axes::All).unwrap().to_scalar::<f64>().unwrap(),
            2.1875
        );
        assert_eq!(x.argmax(0).unwrap().to_vec::<i64>().unwrap(), vec![1, 1]);
        assert_eq!(x.argmin(-1).unwrap().to_vec::<i64>().unwrap(), vec![0, 0]);
        assert!(Tensor::zeros(&[0], DType::F32).unwrap().argmax(0).is_err());
        let c = Tensor::new([1i32, 2, 3]);
        assert_eq!(c.cumsum(0).unwrap().to_vec::<i32>().unwrap(), vec![1, 3, 6]);
        assert_eq!(
            c.cumsum(Scan::along(0).exclusive().reverse())
                .unwrap()
                .to_vec::<i32>()
                .unwrap(),
            vec![5, 3, 0]
        );
        assert_eq!(
            c.cumprod(Scan::along(0).exclusive()).unwrap().to_vec::<i32>().unwrap(),
            vec![1, 1, 2]
        );
        assert_eq!(
            c.cumprod(Scan::along(0).reverse()).unwrap().to_vec::<i32>().unwrap(),
            vec![6, 6, 3]
        );
    }

    #[test]
    fn integer_sums_and_products_wrap_like_tensorflow() {
        let x = Tensor::new([i32::MAX, 1]);
        assert_eq!(x.reduce_sum(0).unwrap().to_scalar::<i32>().unwrap(), i32::MIN);
        // The mean sums in int64, as TensorFlow's int32 mean does: no wrap.
        assert_eq!(x.reduce_mean(0).unwrap().to_scalar::<i32>().unwrap(), 1 << 30);
        let w = Tensor::new([i64::MAX, 1]);
        assert_eq!(w.reduce_mean(0).unwrap().to_scalar::<i64>().unwrap(), i64::MIN / 2);
        let p = Tensor::new([[i32::MAX, 2]]);
        assert_eq!(p.reduce_prod(1).unwrap().to_vec::<i32>().unwrap(), vec![-2]);
        let c = Tensor::new([i64::MAX, 1, 2]);
        assert_eq!(
            c.cumsum(0).unwrap().to_vec::<i64>().unwrap(),
            vec![i64::MAX, i64::MIN, i64::MIN + 2]
        );
        assert_eq!(
            c.cumprod(0).unwrap().to_vec::<i64>().unwrap(),
            vec![i64::MAX, i64::MAX, -2]
        );
    }
}
