//! Gradients of elementwise math: unary functions, broadcasting binary ops, `where`, `cast`.

use super::{scalar, unbroadcast};
use ferroflow_tensor_core::{BinaryOp, DType, Op, Result, Tensor, UnaryOp};

pub(super) fn grad(op: &Op, x: &[Tensor], y: &[Tensor], g: &Tensor) -> Result<Vec<Option<Tensor>>> {
    match op {
        Op::Unary(u) => Ok(vec![unary(*u, &x[0], &y[0], g)?]),
        Op::Binary(b) => binary(*b, &x[0], &x[1], &y[0], g),
        Op::Select => {
            // A real zero, not g·0 (NaN where g is infinite), as TensorFlow's _SelectGradV2.
            let zero = scalar(g, 0.0);
            let gx = x[0].select(g, &zero)?;
            let gy = x[0].select(&zero, g)?;
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
        // TensorFlow's SqrtGrad, RsqrtGrad and ReciprocalGrad kernels answer 0 where the
        // upstream is 0, so `where(x > 0, sqrt(x), 0)` has a 0 gradient at x = 0, not NaN.
        Sqrt => zero_where_zero(g, g.div(&y.mul(&c(2.0))?)?)?,
        // d/dx x^-1/2 = -1/2 y^3
        Rsqrt => zero_where_zero(g, g.mul(&y.mul(y)?.mul(y)?.mul(&c(-0.5))?)?)?,
        Square => g.mul(&x.mul(&c(2.0))?)?,
        Reciprocal => zero_where_zero(g, g.mul(&y.mul(y)?.neg()?)?)?,
        Sin => g.mul(&x.cos()?)?,
        Cos => g.mul(&x.sin()?.neg()?)?,
        Tanh => y.tanh_grad(g)?,
        Sigmoid => y.sigmoid_grad(g)?,
        // 2/sqrt(pi) exp(-x^2)
        Erf => g.mul(&x.square()?.neg()?.exp()?.mul(&c(std::f64::consts::FRAC_2_SQRT_PI))?)?,
        Erfc => g.mul(&x.square()?.neg()?.exp()?.mul(&c(-std::f64::consts::FRAC_2_SQRT_PI))?)?,
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
        // TensorFlow's SeluGrad selects on `y < 0`, so x = 0 takes the scale.
        Selu => {
            const ALPHA: f64 = 1.673_263_242_354_377_3;
            const SCALE: f64 = 1.050_700_987_355_480_5;
            let neg = x.less(&c(0.0))?;
            g.mul(&neg.select(&y.add(&c(SCALE * ALPHA))?, &c(SCALE))?)?
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
            let cdf = c(0.5).mul(&kx.neg()?.erfc()?)?;
            let pdf = kx
                .square()?
                .neg()?
                .exp()?
                .mul(&c(0.5 * k * std::f64::consts::FRAC_2_SQRT_PI))?;
            g.mul(&cdf.add(&x.mul(&pdf)?)?)?
        }
        Gelu(ferroflow_tensor_core::Gelu::Tanh) => {
            // A float32 derivative is computed in float64 and rounded once: where tanh
            // saturates, `1 - t²` in float32 (TensorFlow's included) keeps few correct
            // digits, and the derivative rounded once is never farther from the exact value.
            let wide = x.dtype() == DType::F32;
            let x = &if wide { x.cast(DType::F64)? } else { x.clone() };
            let c = |v: f64| scalar(x, v);
            let (k0, k1) = (0.797_884_560_802_865_4, 0.044715f32 as f64);
            let x2 = x.square()?;
            let inner = x.add(&x2.mul(x)?.mul(&c(k1))?)?.mul(&c(k0))?;
            let t = inner.tanh()?;
            let dinner = c(1.0).add(&x2.mul(&c(3.0 * k1))?)?.mul(&c(k0))?;
            let sech2 = c(1.0).sub(&t.square()?)?;
            let d = c(0.5)
                .mul(&c(1.0).add(&t)?)?
                .add(&c(0.5).mul(x)?.mul(&sech2)?.mul(&dinner)?)?;
            g.mul(&if wide { d.cast(DType::F32)? } else { d })?
        }
        // TensorFlow's _SignGrad: zeros (connected), unlike floor, ceil and round.
        Sign => x.zeros_like()?,
        Floor | Ceil | Round => return Ok(None),
    };
    Ok(Some(d))
}

fn binary(b: BinaryOp, x: &Tensor, y: &Tensor, z: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
    use BinaryOp::*;
    let (gx, gy) = match b {
        Add => (g.clone(), g.clone()),
        Sub => (g.clone(), g.neg()?),
        Mul => (g.mul(y)?, g.mul(x)?),
        // (-x / y) / y as TensorFlow's _RealDivGrad: y² would overflow or underflow first.
        Div => (g.div(y)?, g.mul(&x.neg()?.div(y)?.div(y)?)?),
        Pow => {
            let one = scalar(x, 1.0);
            let gx = g.mul(y)?.mul(&x.pow(&y.sub(&one)?)?)?;
            // log(x) only where x > 0, of a safe x, as TensorFlow's _PowGrad: x <= 0 gives 0
            // instead of NaN, in this gradient and in its own gradient.
            let pos = x.greater(&scalar(x, 0.0))?;
            let safe_x = pos.select(x, &one)?;
            let safe_log = pos.select(&safe_x.log()?, &scalar(x, 0.0))?;
            (gx, g.mul(z)?.mul(&safe_log)?)
        }
        Maximum | Minimum => {
            let mask = if b == Maximum {
                x.greater_equal(y)?
            } else {
                x.less_equal(y)?
            };
            let zero = scalar(g, 0.0);
            (mask.select(g, &zero)?, mask.select(&zero, g)?)
        }
        SquaredDifference => {
            let d = x.sub(y)?.mul(&scalar(x, 2.0))?.mul(g)?;
            (d.clone(), d.neg()?)
        }
        FloorDiv => return Ok(vec![None, None]),
        // TensorFlow's _FloorModGrad: (g, -g·floor(x / y)); integers have no gradient.
        FloorMod if x.dtype().is_float() => (g.clone(), g.mul(&x.floordiv(y)?.neg()?)?),
        FloorMod => return Ok(vec![None, None]),
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
        ReluGrad => (x.zeros_like()?, x.relu_grad(g)?),
    };
    Ok(vec![
        Some(unbroadcast(&gx, x.dims())?),
        Some(unbroadcast(&gy, y.dims())?),
    ])
}

/// `value` where the upstream `g` is non-zero, else 0 (TensorFlow's gradient kernels that
/// short-circuit a zero upstream).
fn zero_where_zero(g: &Tensor, value: Tensor) -> Result<Tensor> {
    let zero = scalar(g, 0.0);
    g.equal(&zero)?.select(&zero, &value)
}
