//! Convolution and pooling (NHWC, SAME/VALID, strides, dilations): `conv2d`, `max_pool2d`,
//! `avg_pool2d` and their gradient ops, over the kernels in `kernels/conv.rs`.

use crate::data::{row_major, Array};
use crate::dispatch::dispatch1;
use crate::kernels::conv::{self as k, Conv2dGeometry, ConvFloat};
use crate::{Data, Error, Op, Result, Shape, Tensor, TensorSpec};

pub use crate::kernels::conv::Padding;

impl std::str::FromStr for Padding {
    type Err = Error;

    /// Parses TensorFlow's `"SAME"` / `"VALID"` (any case, as Keras' `"same"`).
    ///
    /// ```
    /// use ferroflow_tensor_core::Padding;
    /// assert_eq!("SAME".parse::<Padding>()?, Padding::Same);
    /// assert_eq!("valid".parse::<Padding>()?, Padding::Valid);
    /// assert!("full".parse::<Padding>().is_err());
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    fn from_str(s: &str) -> Result<Padding> {
        if s.eq_ignore_ascii_case("same") {
            Ok(Padding::Same)
        } else if s.eq_ignore_ascii_case("valid") {
            Ok(Padding::Valid)
        } else {
            Err(Error::invalid(
                "padding",
                format!("expected \"SAME\" or \"VALID\", got {s:?}"),
            ))
        }
    }
}

impl std::fmt::Display for Padding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Padding::Same => "SAME",
            Padding::Valid => "VALID",
        })
    }
}

/// Which window reduction a [`Op::Pool2D`] performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PoolKind {
    /// The largest element of each window (`max_pool2d`).
    Max,
    /// The mean of each window's real (unpadded) elements (`avg_pool2d`).
    Avg,
}

impl PoolKind {
    /// TensorFlow's name of the pool.
    pub fn name(self) -> &'static str {
        match self {
            PoolKind::Max => "max_pool2d",
            PoolKind::Avg => "avg_pool2d",
        }
    }

    /// The name of its gradient op.
    pub fn grad_name(self) -> &'static str {
        match self {
            PoolKind::Max => "max_pool2d_grad",
            PoolKind::Avg => "avg_pool2d_grad",
        }
    }
}

fn rank4(op: &'static str, s: &Shape) -> Result<[usize; 4]> {
    s.dims()
        .try_into()
        .map_err(|_| Error::shapes(op, &[s], "expects a rank-4 NHWC tensor"))
}

fn float_pair(op: &'static str, x: &[TensorSpec]) -> Result<()> {
    if x[0].dtype != x[1].dtype || !x[0].dtype.is_float() {
        return Err(Error::dtypes(
            op,
            &[x[0].dtype, x[1].dtype],
            "inputs must share a float dtype",
        ));
    }
    Ok(())
}

fn conv_geometry(
    op: &'static str,
    input: [usize; 4],
    filter: [usize; 4],
    strides: [usize; 2],
    dilations: [usize; 2],
    padding: Padding,
) -> Result<Conv2dGeometry> {
    Conv2dGeometry::new(input, filter, strides, dilations, padding).map_err(|m| Error::invalid(op, m))
}

pub(crate) fn infer_conv2d(
    strides: [usize; 2],
    dilations: [usize; 2],
    padding: Padding,
    x: &[TensorSpec],
) -> Result<TensorSpec> {
    float_pair("conv2d", x)?;
    let g = conv_geometry(
        "conv2d",
        rank4("conv2d", &x[0].shape)?,
        rank4("conv2d", &x[1].shape)?,
        strides,
        dilations,
        padding,
    )
    .map_err(|e| match e {
        Error::InvalidArgument { msg, .. } => Error::shapes("conv2d", &[&x[0].shape, &x[1].shape], msg),
        e => e,
    })?;
    Ok(TensorSpec::new(x[0].dtype, g.output_shape().to_vec()))
}

pub(crate) fn infer_conv2d_backprop_input(
    input_shape: [usize; 4],
    strides: [usize; 2],
    dilations: [usize; 2],
    padding: Padding,
    x: &[TensorSpec],
) -> Result<TensorSpec> {
    let op = "conv2d_backprop_input";
    float_pair(op, x)?;
    let g = conv_geometry(op, input_shape, rank4(op, &x[0].shape)?, strides, dilations, padding)?;
    if x[1].shape.dims() != g.output_shape() {
        return Err(Error::shapes(
            op,
            &[&x[0].shape, &x[1].shape],
            "upstream gradient does not match the conv output",
        ));
    }
    Ok(TensorSpec::new(x[0].dtype, input_shape.to_vec()))
}

pub(crate) fn infer_conv2d_backprop_filter(
    filter_shape: [usize; 4],
    strides: [usize; 2],
    dilations: [usize; 2],
    padding: Padding,
    x: &[TensorSpec],
) -> Result<TensorSpec> {
    let op = "conv2d_backprop_filter";
    float_pair(op, x)?;
    let g = conv_geometry(op, rank4(op, &x[0].shape)?, filter_shape, strides, dilations, padding)?;
    if x[1].shape.dims() != g.output_shape() {
        return Err(Error::shapes(
            op,
            &[&x[0].shape, &x[1].shape],
            "upstream gradient does not match the conv output",
        ));
    }
    Ok(TensorSpec::new(x[0].dtype, filter_shape.to_vec()))
}

fn pool_geometry(
    op: &'static str,
    input: &Shape,
    ksize: [usize; 2],
    strides: [usize; 2],
    padding: Padding,
) -> Result<Conv2dGeometry> {
    Conv2dGeometry::pool(rank4(op, input)?, ksize, strides, padding).map_err(|m| Error::invalid(op, m))
}

pub(crate) fn infer_pool(
    op: &'static str,
    ksize: [usize; 2],
    strides: [usize; 2],
    padding: Padding,
    x: &[TensorSpec],
) -> Result<TensorSpec> {
    if !x[0].dtype.is_float() {
        return Err(Error::dtypes(op, &[x[0].dtype], "expects a float tensor"));
    }
    let g = pool_geometry(op, &x[0].shape, ksize, strides, padding)?;
    Ok(TensorSpec::new(x[0].dtype, g.pool_output_shape().to_vec()))
}

pub(crate) fn infer_pool_grad(
    op: &'static str,
    ksize: [usize; 2],
    strides: [usize; 2],
    padding: Padding,
    x: &[TensorSpec],
) -> Result<TensorSpec> {
    float_pair(op, x)?;
    let g = pool_geometry(op, &x[0].shape, ksize, strides, padding)?;
    if x[1].shape.dims() != g.pool_output_shape() {
        return Err(Error::shapes(
            op,
            &[&x[0].shape, &x[1].shape],
            "upstream gradient does not match the pool output",
        ));
    }
    Ok(x[0].clone())
}

pub(crate) fn infer_max_pool_grad_grad(
    op: &'static str,
    ksize: [usize; 2],
    strides: [usize; 2],
    padding: Padding,
    x: &[TensorSpec],
) -> Result<TensorSpec> {
    float_pair(op, x)?;
    let g = pool_geometry(op, &x[0].shape, ksize, strides, padding)?;
    if x[1].shape != x[0].shape {
        return Err(Error::shapes(
            op,
            &[&x[0].shape, &x[1].shape],
            "the gradient must have the forward input's shape",
        ));
    }
    Ok(TensorSpec::new(x[0].dtype, g.pool_output_shape().to_vec()))
}

fn contiguous<T: Clone>(a: &Array<T>) -> std::borrow::Cow<'_, [T]> {
    match a.as_slice() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(a.iter().cloned().collect()),
    }
}

fn wrap<T: crate::Element>(dims: [usize; 4], v: Vec<T>) -> Data {
    Data::from_owned(row_major(&dims, v).expect("conv output size"))
}

/// Runs `f` on the two float operands of a conv-family kernel.
fn float2<F32, F64>(op: &'static str, a: &Data, b: &Data, f32: F32, f64: F64) -> Result<Data>
where
    F32: FnOnce(&[f32], &[f32]) -> Data,
    F64: FnOnce(&[f64], &[f64]) -> Data,
{
    match (a, b) {
        (Data::F32(x), Data::F32(y)) => Ok(f32(&contiguous(x), &contiguous(y))),
        (Data::F64(x), Data::F64(y)) => Ok(f64(&contiguous(x), &contiguous(y))),
        _ => Err(Error::dtypes(
            op,
            &[a.dtype(), b.dtype()],
            "inputs must share a float dtype",
        )),
    }
}

fn dims4(d: &Data) -> [usize; 4] {
    let s = d.dims();
    [s[0], s[1], s[2], s[3]]
}

pub(crate) fn conv2d(
    strides: [usize; 2],
    dilations: [usize; 2],
    padding: Padding,
    input: &Data,
    filter: &Data,
) -> Result<Data> {
    let g = conv_geometry("conv2d", dims4(input), dims4(filter), strides, dilations, padding)?;
    let o = g.output_shape();
    float2(
        "conv2d",
        input,
        filter,
        |x, f| wrap(o, k::conv2d(&g, x, f)),
        |x, f| wrap(o, k::conv2d(&g, x, f)),
    )
}

pub(crate) fn conv2d_backprop_input(
    input_shape: [usize; 4],
    strides: [usize; 2],
    dilations: [usize; 2],
    padding: Padding,
    filter: &Data,
    upstream: &Data,
) -> Result<Data> {
    let g = conv_geometry(
        "conv2d_backprop_input",
        input_shape,
        dims4(filter),
        strides,
        dilations,
        padding,
    )?;
    float2(
        "conv2d_backprop_input",
        filter,
        upstream,
        |f, u| wrap(input_shape, k::conv2d_backprop_input(&g, f, u)),
        |f, u| wrap(input_shape, k::conv2d_backprop_input(&g, f, u)),
    )
}

pub(crate) fn conv2d_backprop_filter(
    filter_shape: [usize; 4],
    strides: [usize; 2],
    dilations: [usize; 2],
    padding: Padding,
    input: &Data,
    upstream: &Data,
) -> Result<Data> {
    let g = conv_geometry(
        "conv2d_backprop_filter",
        dims4(input),
        filter_shape,
        strides,
        dilations,
        padding,
    )?;
    float2(
        "conv2d_backprop_filter",
        input,
        upstream,
        |x, u| wrap(filter_shape, k::conv2d_backprop_filter(&g, x, u)),
        |x, u| wrap(filter_shape, k::conv2d_backprop_filter(&g, x, u)),
    )
}

fn pool_typed<T: ConvFloat + crate::Element>(kind: PoolKind, g: &Conv2dGeometry, x: &Array<T>) -> Data {
    let s = contiguous(x);
    let v = match kind {
        PoolKind::Max => k::max_pool2d(g, &s),
        PoolKind::Avg => k::avg_pool2d(g, &s),
    };
    wrap(g.pool_output_shape(), v)
}

pub(crate) fn pool(kind: PoolKind, ksize: [usize; 2], strides: [usize; 2], padding: Padding, x: &Data) -> Result<Data> {
    let op = kind.name();
    let g = pool_geometry(op, &x.dims().into(), ksize, strides, padding)?;
    match x {
        Data::F32(a) => Ok(pool_typed(kind, &g, a)),
        Data::F64(a) => Ok(pool_typed(kind, &g, a)),
        _ => Err(Error::dtypes(op, &[x.dtype()], "expects a float tensor")),
    }
}

pub(crate) fn pool_grad(
    kind: PoolKind,
    ksize: [usize; 2],
    strides: [usize; 2],
    padding: Padding,
    input: &Data,
    upstream: &Data,
) -> Result<Data> {
    let op = kind.grad_name();
    let g = pool_geometry(op, &input.dims().into(), ksize, strides, padding)?;
    let i = g.input_shape();
    float2(
        op,
        input,
        upstream,
        |x, u| {
            wrap(
                i,
                match kind {
                    PoolKind::Max => k::max_pool2d_grad(&g, x, u),
                    PoolKind::Avg => k::avg_pool2d_grad(&g, u),
                },
            )
        },
        |x, u| {
            wrap(
                i,
                match kind {
                    PoolKind::Max => k::max_pool2d_grad(&g, x, u),
                    PoolKind::Avg => k::avg_pool2d_grad(&g, u),
                },
            )
        },
    )
}

impl Tensor {
    /// `tf.nn.conv2d(self, filters, strides, padding, dilations)`: NHWC input, HWIO filters.
    ///
    /// ```
    /// use ferroflow_tensor_core::{DType, Padding, Tensor};
    /// let x = Tensor::ones(&[1, 5, 5, 2], DType::F32)?;
    /// let f = Tensor::ones(&[3, 3, 2, 4], DType::F32)?;
    /// let y = x.conv2d(&f, [2, 2], Padding::Same, [1, 1])?;
    /// assert_eq!(y.dims(), &[1, 3, 3, 4]);
    /// assert_eq!(y.to_vec::<f32>()?[4 * 4], 18.0); // the centre sees a full 3x3x2 window
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn conv2d(
        &self,
        filters: &Tensor,
        strides: [usize; 2],
        padding: Padding,
        dilations: [usize; 2],
    ) -> Result<Tensor> {
        dispatch1(
            Op::Conv2D {
                strides,
                dilations,
                padding,
            },
            &[self, filters],
        )
    }

    /// `tf.nn.max_pool2d(self, ksize, strides, padding)` (NHWC); padded positions never win.
    ///
    /// ```
    /// use ferroflow_tensor_core::{Padding, Tensor};
    /// let x = Tensor::new([1.0f32, 5.0, 3.0, 2.0]).reshape(&[1, 2, 2, 1])?;
    /// assert_eq!(x.max_pool2d([2, 2], [2, 2], Padding::Valid)?.to_vec::<f32>()?, vec![5.0]);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn max_pool2d(&self, ksize: [usize; 2], strides: [usize; 2], padding: Padding) -> Result<Tensor> {
        dispatch1(
            Op::Pool2D {
                kind: PoolKind::Max,
                ksize,
                strides,
                padding,
            },
            &[self],
        )
    }

    /// `tf.nn.avg_pool2d(self, ksize, strides, padding)` (NHWC); each window divides by its
    /// count of real (unpadded) elements.
    ///
    /// ```
    /// use ferroflow_tensor_core::{Padding, Tensor};
    /// let x = Tensor::new([1.0f32, 5.0, 3.0, 3.0]).reshape(&[1, 2, 2, 1])?;
    /// assert_eq!(x.avg_pool2d([2, 2], [2, 2], Padding::Valid)?.to_vec::<f32>()?, vec![3.0]);
    /// let same = x.avg_pool2d([2, 2], [1, 1], Padding::Same)?.to_vec::<f32>()?;
    /// assert_eq!(same[3], 3.0); // the corner window holds one real element
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn avg_pool2d(&self, ksize: [usize; 2], strides: [usize; 2], padding: Padding) -> Result<Tensor> {
        dispatch1(
            Op::Pool2D {
                kind: PoolKind::Avg,
                ksize,
                strides,
                padding,
            },
            &[self],
        )
    }
}

/// TensorFlow's `MaxPoolGradGrad` (see [`crate::Op::MaxPoolGradGrad`]).
pub(crate) fn max_pool_grad_grad(
    ksize: [usize; 2],
    strides: [usize; 2],
    padding: Padding,
    input: &Data,
    grad: &Data,
) -> Result<Data> {
    let op = "max_pool2d_grad_grad";
    let g = pool_geometry(op, &input.dims().into(), ksize, strides, padding)?;
    if input.dims() != grad.dims() {
        return Err(Error::shapes(
            op,
            &[&input.dims().into(), &grad.dims().into()],
            "the gradient must have the forward input's shape",
        ));
    }
    let o = g.pool_output_shape();
    float2(
        op,
        input,
        grad,
        |x, u| wrap(o, k::max_pool2d_grad_grad(&g, x, u)),
        |x, u| wrap(o, k::max_pool2d_grad_grad(&g, x, u)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DType;

    #[test]
    fn conv_and_pool_shapes_and_errors() {
        let x = Tensor::ones(&[1, 5, 5, 2], DType::F32).unwrap();
        let f = Tensor::ones(&[3, 3, 2, 4], DType::F32).unwrap();
        let y = x.conv2d(&f, [2, 2], Padding::Same, [1, 1]).unwrap();
        assert_eq!(y.dims(), &[1, 3, 3, 4]);
        // Centre output sees a full 3x3x2 window of ones.
        assert_eq!(y.to_vec::<f32>().unwrap()[4 * 4], 18.0);
        assert!(x
            .conv2d(
                &Tensor::ones(&[3, 3, 3, 4], DType::F32).unwrap(),
                [1, 1],
                Padding::Valid,
                [1, 1]
            )
            .is_err());
        assert!(x.conv2d(&f, [0, 1], Padding::Valid, [1, 1]).is_err());
        assert!(Tensor::ones(&[5, 5], DType::F32)
            .unwrap()
            .max_pool2d([2, 2], [2, 2], Padding::Valid)
            .is_err());
        let p = x.avg_pool2d([2, 2], [2, 2], Padding::Same).unwrap();
        assert_eq!(p.dims(), &[1, 3, 3, 2]);
        assert!(p.to_vec::<f32>().unwrap().iter().all(|&v| v == 1.0));
    }
}
