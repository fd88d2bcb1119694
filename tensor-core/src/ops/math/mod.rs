//! Elementwise math: unary functions and activations ([`unary`]), broadcasting binary
//! arithmetic ([`binary`]), comparisons and logical ops ([`compare`]), and here `where`,
//! `cast` and `clip_by_value`.

pub(crate) mod binary;
pub(crate) mod compare;
pub(crate) mod eigen_f32;
pub(crate) mod unary;

pub use binary::BinaryOp;
pub use compare::{CompareOp, LogicalOp};
pub use unary::UnaryOp;

pub(crate) use binary::{binary, infer_binary};
pub(crate) use compare::{compare, infer_compare, infer_logical, logical, logical_not};
pub(crate) use unary::{infer_unary, unary};

use crate::data::Array;
use crate::dispatch::dispatch1;
use crate::kernels::elementwise as el;
use crate::shape::broadcast_shapes;
use crate::{DType, Data, Element, Error, Op, Result, Shape, Tensor, TensorSpec};

/// The broadcast output shape of a binary kernel's inputs (inline: no allocation up to
/// rank 4, and no broadcasting work when the shapes are equal, the usual case).
pub(crate) fn out_shape(op: &'static str, a: &Data, b: &Data) -> Result<Shape> {
    let (da, db) = (a.dims(), b.dims());
    if da == db {
        return Ok(Shape::from(da));
    }
    broadcast_shapes(op, &da.into(), &db.into())
}

pub(crate) fn infer_select(x: &[TensorSpec]) -> Result<TensorSpec> {
    if x[0].dtype != DType::Bool {
        return Err(Error::dtypes(
            "where",
            &[x[0].dtype, x[1].dtype, x[2].dtype],
            "the condition must be bool",
        ));
    }
    let d = crate::ops::same_dtype("where", &x[1..])?;
    let s = broadcast_shapes("where", &x[0].shape, &x[1].shape)?;
    Ok(TensorSpec::new(d, broadcast_shapes("where", &s, &x[2].shape)?))
}

pub(crate) fn select(c: &Data, x: &Data, y: &Data) -> Result<Data> {
    let Data::Bool(c) = c else {
        return Err(Error::dtypes("where", &[c.dtype()], "the condition must be bool"));
    };
    let cx = out_shape("where", &Data::Bool(c.clone()), x)?;
    let dims = broadcast_shapes("where", &cx, &y.dims().into())?.into_dims();
    fn go<T: Element>(c: &Array<bool>, x: &Array<T>, y: &Array<T>, dims: &[usize]) -> Data {
        Data::from_array(el::ternary(c, x, y, dims, |p, a, b| if p { a } else { b }))
    }
    Ok(match (x, y) {
        (Data::F32(a), Data::F32(b)) => go(c, a, b, &dims),
        (Data::F64(a), Data::F64(b)) => go(c, a, b, &dims),
        (Data::I32(a), Data::I32(b)) => go(c, a, b, &dims),
        (Data::I64(a), Data::I64(b)) => go(c, a, b, &dims),
        (Data::Bool(a), Data::Bool(b)) => go(c, a, b, &dims),
        _ => {
            return Err(Error::dtypes(
                "where",
                &[x.dtype(), y.dtype()],
                "x and y must have the same dtype",
            ))
        }
    })
}

/// `tf.cast`: floats truncate toward zero into integers; anything non-zero is `true`.
pub(crate) fn cast(x: &Data, to: DType) -> Data {
    fn conv<S: Element>(a: &Array<S>, to: DType) -> Data {
        if S::DTYPE == to {
            return S::wrap(a.clone());
        }
        match to {
            DType::F32 => Data::F32(el::unary(a, |v: S| v.to_f64() as f32)),
            DType::F64 => Data::F64(el::unary(a, |v: S| v.to_f64())),
            DType::I32 => Data::I32(el::unary(a, |v: S| i32::from_f64(v.to_f64()))),
            DType::I64 => Data::I64(el::unary(a, |v: S| i64::from_f64(v.to_f64()))),
            DType::Bool => Data::Bool(el::unary(a, |v: S| v.to_f64() != 0.0)),
        }
    }
    // i64 -> f64 via f64 loses nothing a float64 could keep; i64 -> i32 wraps like TF.
    // i64 -> f32 directly: through f64 it would round twice (2^60 + 2^36 + 1 would lose
    // the bit that makes it round up).
    match (x, to) {
        (Data::I64(a), DType::I32) => Data::I32(el::unary(a, |v: i64| v as i32)),
        (Data::I64(a), DType::F32) => Data::F32(el::unary(a, |v: i64| v as f32)),
        _ => crate::data::with_data!(x, a => conv(a, to)),
    }
}

impl Tensor {
    /// `tf.where(self, x, y)`: elements of `x` where `self` is true, else of `y`
    /// (all three broadcast).
    ///
    /// ```
    /// use ferroflow_tensor_core::Tensor;
    /// let c = Tensor::new([true, false, true]);
    /// let z = c.select(&Tensor::new([1i32, 2, 3]), &Tensor::new(0i32))?;
    /// assert_eq!(z.to_vec::<i32>()?, vec![1, 0, 3]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn select(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        dispatch1(Op::Select, &[self, x, y])
    }

    /// `tf.cast` to `dtype` (a no-op that still records the op when the dtype is the same):
    /// floats truncate toward zero into integers, anything non-zero is `true`.
    ///
    /// ```
    /// use ferroflow_tensor_core::{DType, Tensor};
    /// let x = Tensor::new([-1.7f64, 0.0, 2.9]);
    /// assert_eq!(x.cast(DType::I32)?.to_vec::<i32>()?, vec![-1, 0, 2]);
    /// assert_eq!(x.cast(DType::Bool)?.to_vec::<bool>()?, vec![true, false, true]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn cast(&self, dtype: DType) -> Result<Tensor> {
        dispatch1(Op::Cast { dtype }, &[self])
    }

    /// `tf.stop_gradient`: the same value, seen by tapes as a constant.
    ///
    /// ```
    /// use ferroflow_tensor_core::Tensor;
    /// let x = Tensor::new([1.0f32, 2.0]);
    /// assert_eq!(x.stop_gradient()?.to_vec::<f32>()?, vec![1.0, 2.0]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn stop_gradient(&self) -> Result<Tensor> {
        dispatch1(Op::StopGradient, &[self])
    }

    /// `tf.identity`: the same value as a new tensor (and a node of its own in graphs).
    ///
    /// ```
    /// use ferroflow_tensor_core::Tensor;
    /// let x = Tensor::new([1i64, 2]);
    /// let y = x.identity()?;
    /// assert_eq!((y.to_vec::<i64>()?, y.id() == x.id()), (vec![1, 2], false));
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn identity(&self) -> Result<Tensor> {
        dispatch1(Op::Identity, &[self])
    }

    /// A scalar of this tensor's dtype (`tf.constant(v, dtype=x.dtype)`), converted as
    /// `tf.cast` would.
    ///
    /// ```
    /// use ferroflow_tensor_core::{DType, Tensor};
    /// let half = Tensor::new([1.0f64, 2.0]).scalar_like(0.5);
    /// assert_eq!((half.dtype(), half.to_scalar::<f64>()?), (DType::F64, 0.5));
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn scalar_like(&self, v: f64) -> Tensor {
        match self.dtype() {
            DType::F32 => Tensor::scalar(v as f32),
            DType::F64 => Tensor::scalar(v),
            DType::I32 => Tensor::scalar(<i32 as Element>::from_f64(v)),
            DType::I64 => Tensor::scalar(<i64 as Element>::from_f64(v)),
            DType::Bool => Tensor::scalar(v != 0.0),
        }
    }

    /// `tf.clip_by_value`: `maximum(minimum(x, clip_max), clip_min)` (composite). As in
    /// TensorFlow, bounds the wrong way round are not an error: every element becomes
    /// `clip_min`.
    ///
    /// ```
    /// use ferroflow_tensor_core::Tensor;
    /// let y = Tensor::new([-3.0f32, 0.5, 9.0]).clip_by_value(-1.0, 1.0)?;
    /// assert_eq!(y.to_vec::<f32>()?, vec![-1.0, 0.5, 1.0]);
    /// let crossed = Tensor::new([0.5f32, 3.0]).clip_by_value(2.0, 1.0)?;
    /// assert_eq!(crossed.to_vec::<f32>()?, vec![2.0, 2.0]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn clip_by_value(&self, clip_min: f64, clip_max: f64) -> Result<Tensor> {
        self.minimum(&self.scalar_like(clip_max))?
            .maximum(&self.scalar_like(clip_min))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NaN stays NaN through `exp` and `sigmoid`, and the tails saturate, for a lone element
    /// and inside a vectorised loop.
    #[test]
    fn exp_and_sigmoid_keep_nan_and_saturate() {
        let x = [f32::NAN, -200.0, -90.0, 0.0, 90.0, 200.0];
        let long: Vec<f32> = x.iter().cycle().take(600).copied().collect();
        for values in [&x[..], &long[..]] {
            let t = Tensor::from_vec(values.to_vec(), &[values.len()]).unwrap();
            let s = t.sigmoid().unwrap().to_vec::<f32>().unwrap();
            let e = t.exp().unwrap().to_vec::<f32>().unwrap();
            for (i, &v) in values.iter().enumerate() {
                if v.is_nan() {
                    assert!(s[i].is_nan() && e[i].is_nan(), "sigmoid/exp of NaN: {} {}", s[i], e[i]);
                } else {
                    let want = 1.0 / (1.0 + (-(v as f64)).exp());
                    assert!(
                        (s[i] as f64 - want).abs() <= 1e-7 * want.max(1e-30),
                        "sigmoid({v}) = {}",
                        s[i]
                    );
                }
            }
        }
        let one = Tensor::scalar(f32::NAN).sigmoid().unwrap().to_vec::<f32>().unwrap();
        assert!(one[0].is_nan());
        // exp overflows to inf and underflows through the subnormals to 0, as TensorFlow's.
        let tails = Tensor::new([200.0f32, 88.8, -90.0, -103.0, -200.0])
            .exp()
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        assert_eq!((tails[0], tails[1], tails[4]), (f32::INFINITY, f32::INFINITY, 0.0));
        for (got, x) in [(tails[2], -90.0f64), (tails[3], -103.0)] {
            let want = x.exp();
            assert!(
                (got as f64 - want).abs() <= 1.5e-45,
                "exp({x}) = {got:e}, want {want:e}"
            );
        }
    }

    #[test]
    fn tensorflow_rounding_and_signs() {
        let x = Tensor::new([0.5f64, 1.5, 2.5, -0.5, -1.5, 0.0]);
        assert_eq!(
            x.round().unwrap().to_vec::<f64>().unwrap(),
            vec![0.0, 2.0, 2.0, -0.0, -2.0, 0.0]
        );
        let a = Tensor::new([7i32, -7, 7, -7]);
        let b = Tensor::new([2i32, 2, -2, -2]);
        assert_eq!(a.floordiv(&b).unwrap().to_vec::<i32>().unwrap(), vec![3, -4, -4, 3]);
        assert_eq!(a.floormod(&b).unwrap().to_vec::<i32>().unwrap(), vec![1, 1, -1, -1]);
        let af = Tensor::new([7.0f32, -7.0]);
        let bf = Tensor::new([-2.0f32, 2.0]);
        assert_eq!(af.floormod(&bf).unwrap().to_vec::<f32>().unwrap(), vec![-1.0, 1.0]);
        assert!(a.floordiv(&Tensor::new([0i32])).is_err());
        assert_eq!(
            Tensor::new([2i64, 3])
                .pow(&Tensor::new([10i64, 3]))
                .unwrap()
                .to_vec::<i64>()
                .unwrap(),
            vec![1024, 27]
        );
        assert!(Tensor::new([2i32]).pow(&Tensor::new([-1i32])).is_err());
    }

    #[test]
    fn dtype_errors_name_the_op() {
        let e = Tensor::new([1.0f32]).add(&Tensor::new([1i32])).unwrap_err().to_string();
        assert!(e.starts_with("add:") && e.contains("F32") && e.contains("I32"), "{e}");
        assert!(Tensor::new([1i32]).exp().is_err());
        assert!(Tensor::new([1i32]).div(&Tensor::new([1i64])).is_err());
        assert!(Tensor::new([true]).neg().is_err());
        assert!(Tensor::new([1i32]).floor().is_err());
        assert!(Tensor::new([1i32]).reduce_variance(crate::Axes::All).is_err());
        assert!(Tensor::new([1i64]).reduce_std(crate::Axes::All).is_err());
        assert!(Tensor::new([1.0f32]).logical_and(&Tensor::new([true])).is_err());
        assert!(Tensor::new([1.0f32])
            .select(&Tensor::new([1.0f32]), &Tensor::new([2.0f32]))
            .is_err());
    }

    /// Integer inputs as TensorFlow's Python API takes them: `divide` is true division in
    /// float64, `round` returns them unchanged, `relu` and `relu6` have integer kernels.
    #[test]
    fn integer_divide_round_and_relu_follow_tensorflow() {
        let a = Tensor::new([7i32, -7, 1]);
        let q = a.div(&Tensor::new([2i32, 2, 3])).unwrap();
        assert_eq!(q.dtype(), DType::F64);
        assert_eq!(q.to_vec::<f64>().unwrap(), vec![3.5, -3.5, 1.0 / 3.0]);
        let q64 = Tensor::new([1i64 << 40]).div(&Tensor::new([4i64])).unwrap();
        assert_eq!(q64.to_vec::<f64>().unwrap(), vec![(1u64 << 38) as f64]);
        assert_eq!(a.round().unwrap().to_vec::<i32>().unwrap(), vec![7, -7, 1]);
        let r = Tensor::new([-3i64, 0, 4, 9]);
        assert_eq!(r.relu().unwrap().to_vec::<i64>().unwrap(), vec![0, 0, 4, 9]);
        assert_eq!(r.relu6().unwrap().to_vec::<i64>().unwrap(), vec![0, 0, 4, 6]);
        assert_eq!(r.relu().unwrap().dtype(), DType::I64);
    }

    /// `clip_by_value` with crossed bounds is `maximum(minimum(x, max), min)`, all `min`.
    #[test]
    fn clip_by_value_with_crossed_bounds_gives_the_minimum() {
        let y = Tensor::new([0.5f32, 3.0, -9.0]).clip_by_value(2.0, 1.0).unwrap();
        assert_eq!(y.to_vec::<f32>().unwrap(), vec![2.0, 2.0, 2.0]);
    }

    /// int64 to float32 rounds once: 2^60 + 2^36 + 1 is above the midpoint between 2^60 and
    /// 2^60 + 2^37, so it rounds up; through float64 it would first round to the midpoint
    /// and then to even, down.
    #[test]
    fn int64_to_float32_rounds_once() {
        let v = (1i64 << 60) + (1 << 36) + 1;
        let y = Tensor::new([v, -v]).cast(DType::F32).unwrap().to_vec::<f32>().unwrap();
        let up = ((1u64 << 60) + (1 << 37)) as f32;
        assert_eq!(y, vec![up, -up]);
        assert_ne!(y[0], (v as f64) as f32);
    }

    #[test]
    fn casts_follow_tensorflow() {
        let x = Tensor::new([-1.7f64, 0.0, 2.9]);
        assert_eq!(x.cast(DType::I32).unwrap().to_vec::<i32>().unwrap(), vec![-1, 0, 2]);
        assert_eq!(
            x.cast(DType::Bool).unwrap().to_vec::<bool>().unwrap(),
            vec![true, false, true]
        );
        assert_eq!(
            Tensor::new([true, false])
                .cast(DType::F32)
                .unwrap()
                .to_vec::<f32>()
                .unwrap(),
            vec![1.0, 0.0]
        );
    }

    #[test]
    fn where_broadcasts_three_ways() {
        let c = Tensor::new([[true], [false]]);
        let r = c.select(&Tensor::new([1.0f32, 2.0]), &Tensor::new(0.0f32)).unwrap();
        assert_eq!(r.dims(), &[2, 2]);
        assert_eq!(r.to_vec::<f32>().unwrap(), vec![1.0, 2.0, 0.0, 0.0]);
    }
}
