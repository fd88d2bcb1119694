//! Gradient of `matmul`, with broadcast batch dimensions summed back.

use super::unbroadcast;
use ferroflow_tensor_core::{MatMul, Op, Result, Tensor};

pub(super) fn grad(op: &Op, x: &[Tensor], g: &Tensor, needed: &[bool]) -> Result<Vec<Option<Tensor>>> {
    let Op::MatMul {
        transpose_a: ta,
        transpose_b: tb,
    } = *op
    else {
        return Err(super::wrong_family(op, "linear algebra"));
    };
    let (a, b) = (&x[0], &x[1]);
    // TensorFlow's four cases: each gradient is one matmul with transpose flags, computed
    // only if wanted (a first layer's input gradient rarely is).
    let ga = match (needed[0], ta, tb) {
        (false, ..) => None,
        (true, false, false) => Some(g.matmul_with(b, MatMul::new().transpose_b())?),
        (true, false, true) => Some(g.matmul(b)?),
        (true, true, false) => Some(b.matmul_with(g, MatMul::new().transpose_b())?),
        (true, true, true) => Some(b.matmul_with(g, MatMul::new().transpose_a().transpose_b())?),
    };
    let gb = match (needed[1], ta, tb) {
        (false, ..) => None,
        (true, false, false) => Some(a.matmul_with(g, MatMul::new().transpose_a())?),
        (true, false, true) => Some(g.matmul_with(a, MatMul::new().transpose_a())?),
        (true, true, false) => Some(a.matmul(g)?),
        (true, true, true) => Some(g.matmul_with(a, MatMul::new().transpose_a().transpose_b())?),
    };
    Ok(vec![
        ga.map(|ga| unbroadcast(&ga, a.dims())).transpose()?,
        gb.map(|gb| unbroadcast(&gb, b.dims())).transpose()?,
    ])
}
