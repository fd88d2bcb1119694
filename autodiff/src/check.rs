//! A gradient checker like `tf.test.compute_gradient`: the theoretical Jacobian (from the
//! tape) beside a numerical one (central differences), both in float64, for users writing
//! their own ops and for the framework's own tests.

use crate::{GradientOptions, GradientTape, UnconnectedGradients};
use ferroflow_tensor_core::{DType, Error, Result, Tensor};

/// Theoretical and numerical Jacobians of `f` at `xs`, one pair per argument. Each
/// Jacobian is a row-major `[y.num_elements(), x.num_elements()]` matrix (of `d y_j / d x_i`
/// at `[j][i]`). Arguments and outputs are float64.
pub struct GradientCheck {
    /// Jacobians computed by the tape.
    pub theoretical: Vec<Vec<f64>>,
    /// Jacobians computed by central differences.
    pub numerical: Vec<Vec<f64>>,
}

impl GradientCheck {
    /// The largest absolute difference between the two, over all arguments.
    pub fn max_error(&self) -> f64 {
        self.theoretical
            .iter()
            .zip(&self.numerical)
            .flat_map(|(t, n)| t.iter().zip(n).map(|(a, b)| (a - b).abs()))
            .fold(0.0, f64::max)
    }
}

/// Computes both Jacobians of `f` at `xs` with step `delta` (`tf.test.compute_gradient`).
///
/// ```
/// use ferroflow_autodiff::compute_gradient;
/// use ferroflow_tensor_core::Tensor;
/// let x = Tensor::new([0.5f64, -1.0, 2.0]);
/// let check = compute_gradient(|x| x[0].tanh()?.mul(x[0]), &[&x], 1e-6)?;
/// assert!(check.max_error() < 1e-8);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
pub fn compute_gradient<F>(f: F, xs: &[&Tensor], delta: f64) -> Result<GradientCheck>
where
    F: Fn(&[&Tensor]) -> Result<Tensor>,
{
    if let Some(bad) = xs.iter().find(|x| x.dtype() != DType::F64) {
        return Err(Error::dtypes(
            "compute_gradient",
            &[bad.dtype()],
            "arguments must be float64",
        ));
    }
    let y0 = f(xs)?;
    let ny = y0.num_elements();
    let mut theoretical = Vec::with_capacity(xs.len());
    let mut numerical = Vec::with_capacity(xs.len());
    for (k, x) in xs.iter().enumerate() {
        let nx = x.num_elements();
        // Theoretical: one backward pass per output element.
        let mut jt = vec![0.0f64; ny * nx];
        let tape = GradientTape::persistent();
        tape.watch(x);
        let y = f(xs)?;
        for j in 0..ny {
            let mut seed = vec![0.0f64; ny];
            seed[j] = 1.0;
            let seed = Tensor::from_vec(seed, y.dims())?;
            let options = GradientOptions::new()
                .output_gradients(seed)
                .unconnected_gradients(UnconnectedGradients::Zero);
            let g = tape.gradient_with(&y, *x, options)?;
            jt[j * nx..(j + 1) * nx].copy_from_slice(&g.to_vec::<f64>()?);
        }
        drop(tape);
        // Numerical: perturb each element both ways.
        let mut jn = vec![0.0f64; ny * nx];
        let base = x.to_vec::<f64>()?;
        for i in 0..nx {
            let eval = |d: f64| -> Result<Vec<f64>> {
                let mut v = base.clone();
                v[i] += d;
                let moved = Tensor::from_vec(v, x.dims())?;
                let mut args = xs.to_vec();
                args[k] = &moved;
                f(&args)?.to_vec::<f64>()
            };
            let (plus, minus) = (eval(delta)?, eval(-delta)?);
            for j in 0..ny {
                jn[j * nx + i] = (plus[j] - minus[j]) / (2.0 * delta);
            }
        }
        theoretical.push(jt);
        numerical.push(jn);
    }
    Ok(GradientCheck { theoretical, numerical })
}
