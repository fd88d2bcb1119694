//! Gradients of conv2d and the pools, through their backprop ops (which are linear in the
//! upstream gradient, so they have gradients of their own).

use ferroflow_tensor_core::{dispatch1, Op, PoolKind, Result, Tensor};

fn dims4(t: &Tensor) -> [usize; 4] {
    let d = t.dims();
    [d[0], d[1], d[2], d[3]]
}

pub(super) fn grad(op: &Op, x: &[Tensor], g: &Tensor, needed: &[bool]) -> Result<Vec<Option<Tensor>>> {
    match *op {
        Op::Conv2D {
            strides,
            dilations,
            padding,
        } => {
            // A first layer's input gradient is rarely wanted: skip it then.
            let gi = needed[0]
                .then(|| {
                    dispatch1(
                        Op::Conv2DBackpropInput {
                            input_shape: dims4(&x[0]),
                            strides,
                            dilations,
                            padding,
                        },
                        &[&x[1], g],
                    )
                })
                .transpose()?;
            let gf = needed[1]
                .then(|| {
                    dispatch1(
                        Op::Conv2DBackpropFilter {
                            filter_shape: dims4(&x[1]),
                            strides,
                            dilations,
                            padding,
                        },
                        &[&x[0], g],
                    )
                })
                .transpose()?;
            Ok(vec![gi, gf])
        }
        // backprop_input(f, u) is bilinear: d/du = conv2d(g, f); d/df = backprop_filter(g, u).
        Op::Conv2DBackpropInput {
            strides,
            dilations,
            padding,
            ..
        } => {
            let (f, u) = (&x[0], &x[1]);
            let gu = g.conv2d(f, strides, padding, dilations)?;
            let gf = dispatch1(
                Op::Conv2DBackpropFilter {
                    filter_shape: dims4(f),
                    strides,
                    dilations,
                    padding,
                },
                &[g, u],
            )?;
            Ok(vec![Some(gf), Some(gu)])
        }
        // backprop_filter(i, u) is bilinear: d/du = conv2d(i, g); d/di = backprop_input(g, u).
        Op::Conv2DBackpropFilter {
            strides,
            dilations,
            padding,
            ..
        } => {
            let (i, u) = (&x[0], &x[1]);
            let gu = i.conv2d(g, strides, padding, dilations)?;
            let gi = dispatch1(
                Op::Conv2DBackpropInput {
                    input_shape: dims4(i),
                    strides,
                    dilations,
                    padding,
                },
                &[g, u],
            )?;
            Ok(vec![Some(gi), Some(gu)])
        }
        Op::Pool2D {
            kind,
            ksize,
            strides,
            padding,
        } => Ok(vec![Some(dispatch1(
            Op::Pool2DGrad {
                kind,
                ksize,
                strides,
                padding,
            },
            &[&x[0], g],
        )?)]),
        Op::Pool2DGrad {
            kind: PoolKind::Avg,
            ksize,
            strides,
            padding,
        } => {
            // avg_pool's gradient is linear in the upstream: its own gradient is avg_pool.
            Ok(vec![None, Some(g.avg_pool2d(ksize, strides, padding)?)])
        }
        // TensorFlow's _MaxPoolGradGrad and _MaxPoolGradGradGrad: max_pool's gradient routes
        // the upstream to each window's argmax, and gathering from those positions is its
        // adjoint, so each op's gradient is the other. The forward input only moves the
        // argmax: zeros (connected, as TensorFlow's zeros_like).
        Op::Pool2DGrad {
            kind: PoolKind::Max,
            ksize,
            strides,
            padding,
        }
        | Op::MaxPoolGradGrad {
            ksize,
            strides,
            padding,
        } => {
            let adjoint = match op {
                Op::MaxPoolGradGrad { .. } => Op::Pool2DGrad {
                    kind: PoolKind::Max,
                    ksize,
                    strides,
                    padding,
                },
                _ => Op::MaxPoolGradGrad {
                    ksize,
                    strides,
                    padding,
                },
            };
            Ok(vec![
                needed[0].then(|| x[0].zeros_like()).transpose()?,
                Some(dispatch1(adjoint, &[&x[0], g])?),
            ])
        }
        _ => Err(super::wrong_family(op, "convolution")),
    }
}
