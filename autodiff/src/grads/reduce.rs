//! Gradients of reductions and scans.

use super::scalar;
use ferroflow_tensor_core::{normalize_axes, Axes, Op, ReduceKind, Result, Scan, ScanKind, Tensor};

pub(super) fn grad(op: &Op, x: &[Tensor], y: &[Tensor], g: &Tensor) -> Result<Vec<Option<Tensor>>> {
    match op {
        Op::Reduce { kind, axes, keepdims } => Ok(vec![Some(reduce(*kind, axes, *keepdims, &x[0], &y[0], g)?)]),
        Op::Scan {
            kind: ScanKind::Sum,
            axis,
            exclusive,
            reverse,
        } => Ok(vec![Some(g.cumsum(Scan {
            axis: *axis,
            exclusive: *exclusive,
            reverse: !*reverse,
        })?)]),
        Op::Scan {
            kind: ScanKind::Prod,
            axis,
            exclusive,
            reverse,
        } => {
            // d/dx_i of sum_j g_j prod_{k<=j} x_k: cumsum of g·y in the other direction,
            // divided by x with TensorFlow's div_no_nan (0 where x is 0, not NaN).
            let r = g.mul(&y[0])?.cumsum(Scan {
                axis: *axis,
                exclusive: *exclusive,
                reverse: !*reverse,
            })?;
            let zero = x[0].scalar_like(0.0);
            let is_zero = x[0].equal(&zero)?;
            let safe_x = is_zero.select(&x[0].scalar_like(1.0), &x[0])?;
            Ok(vec![Some(is_zero.select(&zero, &r.div(&safe_x)?)?)])
        }
        _ => Err(super::wrong_family(op, "reduction")),
    }
}

/// `g` reshaped to keep the reduced axes as size 1, so it broadcasts against the input.
fn keep_dims(g: &Tensor, x: &Tensor, axes: &[usize]) -> Result<Tensor> {
    let dims: Vec<i64> = x
        .dims()
        .iter()
        .enumerate()
        .map(|(i, &d)| if axes.contains(&i) { 1 } else { d as i64 })
        .collect();
    g.reshape(&dims)
}

fn reduce(kind: ReduceKind, axes: &Axes, keepdims: bool, x: &Tensor, y: &Tensor, g: &Tensor) -> Result<Tensor> {
    let ax = normalize_axes(kind.name(), axes, x.rank())?;
    let g = if keepdims { g.clone() } else { keep_dims(g, x, &ax)? };
    match kind {
        ReduceKind::Sum => g.broadcast_to(x.dims()),
        ReduceKind::Mean => {
            // Scale the small reduced gradient first, then broadcast it once.
            let n: usize = ax.iter().map(|&i| x.dims()[i]).product();
            g.div(&scalar(x, n.max(1) as f64))?.broadcast_to(x.dims())
        }
        ReduceKind::Max | ReduceKind::Min => {
            // Shared equally among ties, as TensorFlow does.
            let y = if keepdims { y.clone() } else { keep_dims(y, x, &ax)? };
            let mask = x.equal(&y)?.cast(x.dtype())?;
            let ax: Vec<i64> = ax.iter().map(|&a| a as i64).collect();
            let count = mask.reduce_sum(Axes::from(ax).keepdims())?;
            mask.div(&count)?.mul(&g)
        }
        ReduceKind::Prod => {
            // The product of the other elements: exclusive cumulative products from both
            // sides over the reduced axes flattened to one, so zeros are handled exactly.
            let rank = x.rank();
            let kept: Vec<usize> = (0..rank).filter(|i| !ax.contains(i)).collect();
            let perm: Vec<usize> = kept.iter().chain(&ax).copied().collect();
            let xt = x.transpose(&perm)?;
            let kept_n: usize = kept.iter().map(|&i| x.dims()[i]).product();
            let red_n: usize = ax.iter().map(|&i| x.dims()[i]).product();
            let flat = xt.reshape(&[kept_n as i64, red_n as i64])?;
            let left = flat.cumprod(Scan::along(1).exclusive())?;
            let right = flat.cumprod(Scan::along(1).exclusive().reverse())?;
            let others = left.mul(&right)?;
            let tdims: Vec<i64> = perm.iter().map(|&p| x.dims()[p] as i64).collect();
            let mut inv = vec![0usize; rank];
            for (i, &p) in perm.iter().enumerate() {
                inv[p] = i;
            }
            let others = others.reshape(&tdims)?.transpose(&inv)?;
            others.mul(&g)
        }
    }
}
