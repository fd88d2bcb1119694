//! The functional form of the tape: `value_and_grad(f)` and `grad(f)` over closures, as JAX
//! and `tf.GradientTape` users both know it.

use crate::{GradientOptions, GradientTape, UnconnectedGradients};
use ferroflow_tensor_core::{Result, Tensor};

/// Evaluates `f(xs)` and its gradient with respect to every argument (zeros where `f` does
/// not depend on one). A non-scalar result differentiates its sum.
///
/// ```
/// use ferroflow_autodiff::value_and_grad;
/// use ferroflow_tensor_core::Tensor;
/// let f = |x: &[&Tensor]| x[0].mul(x[1]);
/// let (v, g) = value_and_grad(f, &[&Tensor::scalar(3.0f32), &Tensor::scalar(4.0f32)])?;
/// assert_eq!(v.to_scalar::<f32>()?, 12.0);
/// assert_eq!(g[0].to_scalar::<f32>()?, 4.0);
/// assert_eq!(g[1].to_scalar::<f32>()?, 3.0);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
pub fn value_and_grad<F>(f: F, xs: &[&Tensor]) -> Result<(Tensor, Vec<Tensor>)>
where
    F: FnOnce(&[&Tensor]) -> Result<Tensor>,
{
    let tape = GradientTape::new();
    for x in xs {
        tape.watch(x);
    }
    let y = f(xs)?;
    let zeros = GradientOptions::new().unconnected_gradients(UnconnectedGradients::Zero);
    let grads = tape.gradient_with(&y, xs, zeros)?;
    Ok((y, grads))
}

/// The gradient of `f` with respect to every argument (see [`value_and_grad`]).
pub fn grad<F>(f: F, xs: &[&Tensor]) -> Result<Vec<Tensor>>
where
    F: FnOnce(&[&Tensor]) -> Result<Tensor>,
{
    value_and_grad(f, xs).map(|(_, g)| g)
}
