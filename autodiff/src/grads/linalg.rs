//! Gradient of `matmul`, with broadcast batch dimensions summed back.

use super::unbroadcast;
use ferroflow_tensor_core::{Op, Result, Tensor};

pub(super) fn grad(op: &Op, x: &[Tensor], g: &Tensor, needed: &[bool]) -> Result<Vec<Option<Tensor>>> {
    let Op::MatMul {
        transpose_a: ta,
        transpose_b: tb,
    } = *op
    else {
        return Ok(vec![None, None]);
    };
    let (a, b) = (&x[0], &x[1]);
    // TensorFlow's four cases: each gradient is one matmul with transpose flags, computed
    // only if wanted (a first layer's input gradient rarely is).
    let ga = match (needed[0], ta, tb) {
        (false, ..) => None,
        (true, false, false) => Some(g.matmul_t(b, false, true)?),
        (true, false, true) => Some(g.matmul(b)?),
        (true, true, false) => Some(b.matmul_t(g, false, true)?),
        (true, true, true) => Some(b.matmul_t(g, true, true)?),
    };
    let gb = match (needed[1], ta, tb) {
        (false, ..) => None,
        (true, false, false) => Some(a.matmul_t(g, true, false)?),
        (true, false, true) => Some(g.matmul_t(a, true, false)?),
        (true, true, false) => Some(a.matmul(g)?),
        (true, true, true) => Some(g.matmul_t(a, true, true)?),
    };
    Ok(vec![
        ga.map(|ga| unbroadcast(&ga, a.dims())).transpose()?,
        gb.map(|gb| unbroadcast(&gb, b.dims())).transpose()?,
    ])
}
