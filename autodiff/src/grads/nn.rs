//! Gradients of softmax, log_softmax and the fused cross-entropies.

use ferroflow_tensor_core::{Axes, OneHot, Op, Result, Tensor};

pub(super) fn grad(op: &Op, x: &[Tensor], y: &[Tensor], g: &Tensor) -> Result<Vec<Option<Tensor>>> {
    match op {
        Op::Softmax { axis } => {
            let s = &y[0];
            let dot = g.mul(s)?.reduce_sum(Axes::from(*axis).keepdims())?;
            Ok(vec![Some(g.sub(&dot)?.mul(s)?)])
        }
        Op::LogSoftmax { axis } => {
            let sum = g.reduce_sum(Axes::from(*axis).keepdims())?;
            Ok(vec![Some(g.sub(&y[0].exp()?.mul(&sum)?)?)])
        }
        Op::SoftmaxCrossEntropy { axis } => {
            // TensorFlow: logits get g·(softmax - labels), labels get g·(-log_softmax).
            let (labels, logits) = (&x[0], &x[1]);
            let ge = g.expand_dims(*axis)?;
            let glogits = ge.mul(&logits.softmax(*axis)?.sub(labels)?)?;
            let glabels = ge.mul(&logits.log_softmax(*axis)?.neg()?)?;
            Ok(vec![Some(glabels), Some(glogits)])
        }
        Op::SparseSoftmaxCrossEntropy => {
            let (labels, logits) = (&x[0], &x[1]);
            let depth = *logits.dims().last().unwrap_or(&0);
            let onehot = labels.one_hot(OneHot::new(depth).dtype(logits.dtype()))?;
            let ge = g.expand_dims(-1)?;
            Ok(vec![None, Some(ge.mul(&logits.softmax(-1)?.sub(&onehot)?)?)])
        }
        _ => Err(super::wrong_family(op, "nn")),
    }
}
