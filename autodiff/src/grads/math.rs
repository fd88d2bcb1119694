//! Gradients of elementwise math: unary functions, broadcasting binary ops, `where`, `cast`.

use super::{scalar, unbroadcast};
use ferroflow_tensor_core::{BinaryOp, Op, Result, Tensor, UnaryOp};

pub(super) fn grad(op: &Op, x: &[Tensor], y: &[Tensor], g: &Tensor) -> Result<Vec<Option<Tensor>>> {
    match op {
        Op::Unary(u) => Ok(vec![unary(*u, &x[0], &y[0], g)?]),
        Op::Binary(b) => binary(*b, &x[0], &x[1], &y[0], g),
        Op::Select => {
            let zeros = g.mul(&scalar(g, 0.0))?;
            let gx = x[0].select(g, &zeros)?;
            let gy = x[0].select(&zeros, g)?;
            Ok(vec![
                None,
                Some(unbroadcast(&gx, x[1].dims())?),
                Some(unbroadcast(&gy, x[2].dims())?),
            ])
        }
        Op::Cast { .. } => Ok(vec![if x[0].dtype().is_float() && g.dtype().is_float() {
            Some(g.cast(x[0].dtype())?)
        } else {
            None
        }]),
        Op::Identity => Ok(vec![Some(g.clone())]),
        _ => Err(super::wrong_family(op, "elementwise")),
    }
}

fn unary(u: UnaryOp, x: &Tensor, y: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
    use UnaryOp::*;
    let c = |v: f64| scalar(x, v);
    let d = match u {
        Neg => return Ok(Some(g.neg()?)),
        Abs => g.mul(&x.sign()?)?,
        Exp => g.mul(y)?,
        Log => g.div(x)?,
        Log1p => g.div(&x.add(&c(1.0))?)?,
        Sqrt => g.div(&y.mul(&c(2.0))?)?,
        // d/dx x^-1/2 = -1/2 y^3
        Rsqrt => g.mul(&y.mul(y)?.mul(y)?.mul(&c(-0.5))?)?,
        Square => g.mul(&x.mul(&c(2.0))?)?,
        Reciprocal => g.mul(&y.mul(y)?.neg()?)?,
        Sin => g.mul(&x.cos()?)?,
        Cos => g.mul(&x.sin()?.neg()?)?,
        Tanh => y.tanh_grad(g)?,
        Sigmoid => y.sigmoid_grad(g)?,
        // 2/sqrt(pi) exp(-x^2)
        Erf => g.mul(&x.square()?.neg()?.exp()?.mul(&c(std::f64::consts::FRAC_2_SQRT_PI))?)?,
        Softplus => g.mul(&x.sigmoid()?)?,
        Softsign => g.div(&c(1.0).add(&x.abs()?)?.square()?)?,
        Relu => x.relu_grad(g)?,
        Relu6 => {
            let inside = x.greater(&c(0.0))?.logical_and(&x.less(&c(6.0))?)?;
            g.mul(&inside.cast(x.dtype())?)?
        }
        // elu'(x) = 1 for x > 0, else y + 1
        Elu => {
            let pos = x.greater(&c(0.0))?;
            g.mul(&pos.select(&c(1.0), &y.add(&c(1.0))?)?)?
        }
        Selu => {
            const ALPHA: f64 = 1.673_263_242_354_377_3;
            const SCALE: f64 = 1.050_700_987_355_480_5;
            let pos = x.greater(&c(0.0))?;
            g.mul(&pos.select(&c(SCALE), &y.add(&c(SCALE * ALPHA))?)?)?
        }
        LeakyRelu { alpha } => {
            let pos = x.greater(&c(0.0))?;
            g.mul(&pos.select(&c(1.0), &c(alpha as f32 as f64))?)?
        }
        Gelu(ferroflow_tensor_core::Gelu::Exact) => {
            // The derivative of TensorFlow's 0.5·x·erfc(-k·x), k the float32-rounded 1/√2:
            // 0.5·erfc(-k·x) + 0.5·x·k·(2/√π)·exp(-(k·x)²).
            let k = std::f64::consts::FRAC_1_SQRT_2 as f32 as f64;
            let kx = x.mul(&c(k))?;
            let cdf = c(0.5).mul(&kx.neg()?.erf_c()?)?;
            let pdf = kx
                .square()?
                .neg()?
                .exp()?
                .mul(&c(0.5 * k * std::f64::consts::FRAC_2_SQRT_PI))?;
            g.mul(&cdf.add(&x.mul(&pdf)?)?)?
        }
        Gelu(ferroflow_tensor_core::Gelu::Tanh) => {
            let (k0, k1) = (0.797_884_560_802_865_4, 0.044715f32 as f64);
            let x2 = x.square()?;
            let inner = x.add(&x2.mul(x)?.mul(&c(k1))?)?.mul(&c(k0))?;
            let t = inner.tanh()?;
            let dinner = c(1.0).add(&x2.mul(&c(3.0 * k1))?)?.mul(&c(k0))?;
            let sech2 = c(1.0).sub(&t.square()?)?;
            let d = c(0.5)
                .mul(&c(1.0).add(&t)?)?
                .add(&c(0.5).mul(x)?.mul(&sech2)?.mul(&dinner)?)?;
            g.mul(&d)?
        }
        Sign | Floor | Ceil | Round => return Ok(None),
    };
    Ok(Some(d))
}

fn binary(b: BinaryOp, x: &Tensor, y: &Tensor, z: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
    use BinaryOp::*;
    let (gx, gy) = match b {
        Add => (g.clone(), g.clone()),
        Sub => (g.clone(), g.neg()?),
        Mul => (g.mul(y)?, g.mul(x)?),
        Div => (g.div(y)?, g.mul(&x.neg()?.div(&y.square()?)?)?),
        Pow => {
            let one = scalar(x, 1.0);
            let gx = g.mul(y)?.mul(&x.pow(&y.sub(&one)?)?)?;
            // log(x) only where x > 0, as TensorFlow does, so x <= 0 gives 0 instead of NaN.
            let pos = x.greater(&scalar(x, 0.0))?;
            let safe_log = pos.select(&x.log()?, &x.mul(&scalar(x, 0.0))?)?;
            (gx, g.mul(z)?.mul(&safe_log)?)
        }
        Maximum | Minimum => {
            let mask = if b == Maximum {
                x.greater_equal(y)?
            } else {
                x.less_equal(y)?
            };
            let zeros = g.mul(&scalar(g, 0.0))?;
            (mask.select(g, &zeros)?, mask.select(&zeros, g)?)
        }
        SquaredDifference => {
            let d = x.sub(y)?.mul(&scalar(x, 2.0))?.mul(g)?;
            (d.clone(), d.neg()?)
        }
        FloorDiv | FloorMod => return Ok(vec![None, None]),
        // The activation gradients are linear in g; their own gradients (second order):
        SigmoidGrad => {
            // d/dy [g·y·(1-y)] = g·(1-2y); d/dg = y·(1-y).
            let one = scalar(x, 1.0);
            let dy = g.mul(y)?.mul(&one.sub(&x.mul(&scalar(x, 2.0))?)?)?;
            (dy, x.sigmoid_grad(g)?)
        }
        TanhGrad => {
            // d/dy [g·(1-y²)] = -2·g·y; d/dg = 1 - y².
            (g.mul(y)?.mul(x)?.mul(&scalar(x, -2.0))?, x.tanh_grad(g)?)
        }
        ReluGrad => (g.mul(&scalar(g, 0.0))?, x.relu_grad(g)?),
    };
    Ok(vec![
        Some(unbroadcast(&gx, x.dims())?),
        Some(unbroadcast(&gy, y.dims())?),
    ])
}

/// `erfc(x) = 1 - erf(x)` as ops.
trait Erfc {
    fn erf_c(&self) -> Result<Tensor>;
}

impl Erfc for Tensor {
    fn erf_c(&self) -> Result<Tensor> {
        scalar(self, 1.0).sub(&self.erf()?)
    }
}
