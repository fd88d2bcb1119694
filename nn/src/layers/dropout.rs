//! `Dropout`: zeroes a fraction of inputs while training.

use super::{Layer, Mode};
use ferroflow_tensor_core::random::{self, Uniform};
use ferroflow_tensor_core::{Error, Result, Tensor};

/// `keras.layers.Dropout`: while training, each element is zeroed with probability `rate`
/// and the rest scaled by `1 / (1 - rate)`; at inference it is the identity. Masks come
/// from the seeded generator (a per-layer op seed continues its sequence each call).
///
/// Inside a traced function the mask is drawn once, at trace time (random tensors are
/// captured as constants); use dropout in eager training loops, or retrace per step.
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
}

impl Dropout {
    /// Dropout of `rate` in `[0, 1)`.
    pub fn new(rate: f64) -> Result<Self> {
        if !(0.0..1.0).contains(&rate) {
            return Err(Error::invalid("Dropout", format!("rate must be in [0, 1), got {rate}")));
        }
        Ok(Dropout { rate, seed: None })
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
        let mut m = super::base_config("dropout", ferroflow_tensor_core::DType::F32);
        m.insert("rate".into(), self.rate.into());
        m.insert("seed".into(), self.seed.into());
        m.insert("noise_shape".into(), serde_json::Value::Null);
        m
    }
}

impl Dropout {
    /// A layer from Keras' config (`rate`, `seed`).
    pub fn from_config(config: &serde_json::Value) -> Result<Self> {
        let d = Dropout::new(crate::model::get_f64(config, "rate", 0.0))?;
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
        let u = random::uniform(
            x.dims(),
            Uniform {
                seed: self.seed,
                ..Uniform::default().dtype(x.dtype())
            },
        )?;
        let keep = u.greater_equal(&x.scalar_like(self.rate))?.cast(x.dtype())?;
        x.mul(&keep)?.mul(&x.scalar_like(1.0 / (1.0 - self.rate)))
    }
}

layer_module!(Dropout, |_l| "dropout", |_l| Vec::new());
