//! Gradient of `matmul`, with broadcast batch dimensions summed back.

use super::unbroadcast;
use ferroflow_tensor_core::{Op, Result, Tensor};

pub(super) fn grad(
    op: &Op,
    x: &[Tensor],
    _y: &[Tensor],
    g: &Tensor,
) -> Result<Vec<Option<Tensor>>> {
    let Op::MatMul {
        transpose_a: ta,
        transpose_b: tb,
    } = *op
    else {
        return Ok(vec![None, None]);
    };
    let (a, b) = (&x[0], &x[1]);
    // TensorFlow's four cases: each gradient is one matmul with transpose flags.
    let (ga, gb) = match (ta, tb) {
        (false, false) => (g.matmul_t(b, false, true)?, a.matmul_t(g, true, false)?),
        (false, true) => (g.matmul(b)?, g.matmul_t(a, true, false)?),
        (true, false) => (b.matmul_t(g, false, true)?, a.matmul(g)?),
        (true, true) => (b.matmul_t(g, true, true)?, g.matmul_t(a, true, true)?),
    };
    Ok(vec![
        Some(unbroadcast(&ga, a.dims())?),
        Some(unbroadcast(&gb, b.dims())?),
    ])
}
