//! `Dropout`: zeroes a fraction of inputs while training.

use super::{config_name, unique_name, Layer, Mode};
use ferroflow_tensor_core::random::{self, Uniform};
use ferroflow_tensor_core::{dispatch1, CustomOp, Data, Error, Op, PauseObservers, Result, Tensor, TensorSpec};
use std::sync::Arc;

/// `keras.layers.Dropout`: while training, each element is zeroed with probability `rate`
/// and the rest scaled by `1 / (1 - rate)`; at inference it is the identity. Masks come
/// from the seeded generator (a per-layer op seed continues its sequence each call).
///
/// The mask is an op of its own, drawn when the op runs: eagerly at each call, and inside a
/// traced function (a Keras model's train step) at each execution of the graph, never once at
/// trace time.
///
/// ```
/// use ferroflow_nn::{Dropout, Layer, Mode};
/// use ferroflow_tensor_core::{DType, Tensor};
/// let d = Dropout::new(0.5)?.with_seed(1);
/// let x = Tensor::ones(&[1000], DType::F32)?;
/// assert_eq!(d.call(&x, Mode::Inference)?.to_vec::<f32>()?, x.to_vec::<f32>()?);
/// let y = d.call(&x, Mode::Training)?.to_vec::<f32>()?;
/// assert!(y.iter().all(|&v| v == 0.0 || v == 2.0));
/// assert!(Dropout::new(1.0).is_err());
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Dropout {
    rate: f64,
    seed: Option<u64>,
    name: String,
}

impl Dropout {
    /// Dropout of `rate` in `[0, 1)`, named as Keras names it (`dropout`, `dropout_1`, ...).
    pub fn new(rate: f64) -> Result<Self> {
        Dropout::named(rate, || unique_name("dropout"))
    }

    fn named(rate: f64, name: impl FnOnce() -> String) -> Result<Self> {
        if !(0.0..1.0).contains(&rate) {
            return Err(Error::invalid("Dropout", format!("rate must be in [0, 1), got {rate}")));
        }
        Ok(Dropout {
            rate,
            seed: None,
            name: name(),
        })
    }

    /// Sets the name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Seeds the masks.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }
}

impl crate::model::LayerConfig for Dropout {
    fn class_name(&self) -> &'static str {
        "Dropout"
    }

    fn config(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = super::base_config(&self.name, ferroflow_tensor_core::DType::F32);
        m.insert("rate".into(), self.rate.into());
        m.insert("seed".into(), self.seed.into());
        m.insert("noise_shape".into(), serde_json::Value::Null);
        m
    }
}

impl Dropout {
    /// A layer from Keras' config (`rate`, `seed`; a `noise_shape` is refused).
    pub fn from_config(config: &serde_json::Value) -> Result<Self> {
        use super::unsupported::{refuse_unsupported, Allowed, COMMON};
        refuse_unsupported("Dropout", config, &[COMMON, &[("noise_shape", Allowed::Null)]])?;
        let d = Dropout::named(crate::model::get_f64(config, "rate", 0.0), || {
            config_name(config, "dropout")
        })?;
        Ok(match config.get("seed").and_then(|v| v.as_u64()) {
            Some(seed) => d.with_seed(seed),
            None => d,
        })
    }
}

impl Layer for Dropout {
    fn keras_config(&self) -> Option<serde_json::Value> {
        Some(super::keras_entry(self))
    }

    fn call(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        if mode == Mode::Inference || self.rate == 0.0 {
            return Ok(x.clone());
        }
        let mask = dispatch1(
            Op::Custom(Arc::new(DropoutMask {
                rate: self.rate,
                seed: self.seed,
            })),
            &[x],
        )?;
        x.mul(&mask)
    }
}

/// The scaled keep-mask of dropout for an input like `x`: 0 with probability `rate`, else
/// `1 / (1 - rate)`. An op (not a constant) so a graph draws a fresh mask at every run; it
/// has no gradient, so `x * mask` sends `mask * upstream` back to `x`.
#[derive(Debug)]
struct DropoutMask {
    rate: f64,
    seed: Option<u64>,
}

impl CustomOp for DropoutMask {
    fn name(&self) -> &'static str {
        "dropout_mask"
    }

    fn trace_key(&self) -> Option<String> {
        // The rate and the seed are all there is to it.
        Some(format!("{self:?}"))
    }

    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        match inputs {
            [x] if x.dtype.is_float() => Ok(vec![x.clone()]),
            _ => Err(Error::dtypes(
                "Dropout",
                &inputs.iter().map(|s| s.dtype).collect::<Vec<_>>(),
                "needs one float input",
            )),
        }
    }

    fn compute(&self, inputs: &[&Data]) -> Result<Vec<Data>> {
        let x = inputs
            .first()
            .ok_or_else(|| Error::invalid("Dropout", "needs one input"))?;
        // The mask's own arithmetic is not part of any gradient.
        let _quiet = PauseObservers::new();
        let u = random::uniform(
            x.dims(),
            Uniform {
                seed: self.seed,
                ..Uniform::default().dtype(x.dtype())
            },
        )?;
        let keep = u.greater_equal(&u.scalar_like(self.rate))?.cast(x.dtype())?;
        let mask = keep.mul(&u.scalar_like(1.0 / (1.0 - self.rate)))?;
        Ok(vec![mask.data()?.clone()])
    }
}

layer_module!(Dropout, |l| &l.name, |_l| Vec::new());

#[cfg(test)]
mod tests {
    use super::*;
    use ferroflow_autodiff::GradientTape;
    use ferroflow_graph::function;
    use ferroflow_tensor_core::DType;

    #[test]
    fn a_traced_dropout_draws_a_new_mask_every_run_and_routes_gradients_through_it() -> Result<()> {
        let d = Dropout::new(0.5)?.with_seed(7);
        let x = Tensor::ones(&[64], DType::F32)?;
        let f = function(|x: &Tensor| d.call(x, Mode::Training));
        let (a, b) = (f.call(&x)?.to_vec::<f32>()?, f.call(&x)?.to_vec::<f32>()?);
        assert_ne!(a, b, "each run draws its own mask");
        assert!(a.iter().chain(&b).all(|&v| v == 0.0 || v == 2.0));
        assert_eq!(f.tracing_count(), 1);
        let v = ferroflow_tensor_core::Variable::new("v", x.clone())?;
        let tape = GradientTape::new();
        let y = d.call(&v.read()?, Mode::Training)?;
        let g = tape.gradient(&y.reduce_sum(ferroflow_tensor_core::Axes::All)?, &v)?;
        assert_eq!(g.to_vec::<f32>()?, y.to_vec::<f32>()?, "the gradient of x is the mask");
        Ok(())
    }
}
