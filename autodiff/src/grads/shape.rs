//! Gradients of shape ops: views and copies route the upstream gradient back to where each
//! element came from.

use super::unbroadcast;
use ferroflow_tensor_core::{normalize_axis, Op, Result, Tensor};

fn dims_i64(d: &[usize]) -> Vec<i64> {
    d.iter().map(|&v| v as i64).collect()
}

pub(super) fn grad(op: &Op, x: &[Tensor], _y: &[Tensor], g: &Tensor) -> Result<Vec<Option<Tensor>>> {
    let xd = x[0].dims();
    let r = match op {
        Op::Transpose { perm } => {
            let mut inv = vec![0usize; perm.len()];
            for (i, &p) in perm.iter().enumerate() {
                inv[p] = i;
            }
            vec![Some(g.transpose(&inv)?)]
        }
        Op::Reshape { .. } | Op::ExpandDims { .. } | Op::Squeeze { .. } => {
            vec![Some(g.reshape(&dims_i64(xd))?)]
        }
        Op::Concat { axis } => {
            let ax = normalize_axis("concat", *axis, xd.len())?;
            let sizes: Vec<i64> = x.iter().map(|t| t.dims()[ax] as i64).collect();
            g.split(&sizes, ax as i64)?.into_iter().map(Some).collect()
        }
        Op::Stack { axis } => {
            let ax = normalize_axis("stack", *axis, xd.len() + 1)?;
            g.split_n(x.len(), ax as i64)?
                .into_iter()
                .map(|p| p.reshape(&dims_i64(xd)).map(Some))
                .collect::<Result<Vec<_>>>()?
        }
        Op::StridedSlice { begin, end, strides } => vec![Some(ferroflow_tensor_core::dispatch1(
            Op::StridedSliceGrad {
                input_shape: xd.to_vec(),
                begin: begin.clone(),
                end: end.clone(),
                strides: strides.clone(),
            },
            &[g],
        )?)],
        // The scatter is linear: its gradient is the slice it scattered.
        Op::StridedSliceGrad {
            begin, end, strides, ..
        } => vec![Some(ferroflow_tensor_core::dispatch1(
            Op::StridedSlice {
                begin: begin.clone(),
                end: end.clone(),
                strides: strides.clone(),
            },
            &[g],
        )?)],
        Op::UnsortedSegmentSum { .. } => vec![Some(g.gather(&x[1], 0)?), None],
        Op::Tile { multiples } => {
            // View the gradient as [m0, d0, m1, d1, ...] and sum the multiples away.
            let mut split = Vec::with_capacity(2 * xd.len());
            for (&m, &d) in multiples.iter().zip(xd) {
                split.push(m as i64);
                split.push(d as i64);
            }
            let axes: Vec<i64> = (0..xd.len()).map(|i| 2 * i as i64).collect();
            let summed = if xd.is_empty() {
                g.clone()
            } else {
                g.reshape(&split)?.reduce_sum(&axes)?
            };
            vec![Some(summed.reshape(&dims_i64(xd))?)]
        }
        Op::BroadcastTo { .. } => vec![Some(unbroadcast(g, xd)?)],
        Op::Pad { paddings, .. } => {
            let begin: Vec<i64> = paddings.iter().map(|p| p[0] as i64).collect();
            vec![Some(g.slice(&begin, &dims_i64(xd))?)]
        }
        Op::Gather { axis } => {
            // Repeated indices add up: a segment sum over the gathered axis.
            let ax = normalize_axis("gather", *axis, xd.len())?;
            let (outer, n, inner): (usize, usize, usize) =
                (xd[..ax].iter().product(), xd[ax], xd[ax + 1..].iter().product());
            let k = x[1].num_elements();
            let g3 = g
                .reshape(&[outer as i64, k as i64, inner as i64])?
                .transpose(&[1, 0, 2])?;
            let ids = x[1].reshape(&[k as i64])?;
            let summed = g3.unsorted_segment_sum(&ids, n)?.transpose(&[1, 0, 2])?;
            vec![Some(summed.reshape(&dims_i64(xd))?), None]
        }
        _ => return Err(super::wrong_family(op, "shape")),
    };
    Ok(r)
}
