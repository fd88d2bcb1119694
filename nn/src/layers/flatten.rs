//! `Flatten`: keeps the batch axis, flattens the rest.

use super::{config_name, unique_name, Layer, Mode};
use ferroflow_tensor_core::{Error, Result, Tensor};

/// `keras.layers.Flatten`: `[batch, d1, d2, ...]` → `[batch, d1·d2·...]`.
///
/// ```
/// use ferroflow_nn::{Flatten, Layer, Mode};
/// use ferroflow_tensor_core::{DType, Tensor};
/// let y = Flatten::new().call(&Tensor::zeros(&[2, 3, 4], DType::F32)?, Mode::Inference)?;
/// assert_eq!(y.dims(), &[2, 12]);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Flatten {
    name: String,
}

impl Flatten {
    /// A flattening layer, named as Keras names it (`flatten`, `flatten_1`, ...).
    pub fn new() -> Self {
        Flatten {
            name: unique_name("flatten"),
        }
    }

    /// Sets the name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
}

impl Default for Flatten {
    fn default() -> Self {
        Flatten::new()
    }
}

impl crate::model::LayerConfig for Flatten {
    fn class_name(&self) -> &'static str {
        "Flatten"
    }

    fn config(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = super::base_config(&self.name, ferroflow_tensor_core::DType::F32);
        m.insert("data_format".into(), "channels_last".into());
        m
    }
}

impl Flatten {
    /// The layer from Keras' config (it has no settings; channels last).
    pub fn from_config(config: &serde_json::Value) -> Result<Self> {
        use super::unsupported::{refuse_unsupported, CHANNELS_LAST, COMMON};
        refuse_unsupported("Flatten", config, &[COMMON, CHANNELS_LAST])?;
        Ok(Flatten {
            name: config_name(config, "flatten"),
        })
    }
}

impl Layer for Flatten {
    fn keras_config(&self) -> Option<serde_json::Value> {
        Some(super::keras_entry(self))
    }

    fn call(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        let Some(&batch) = x.dims().first() else {
            return Err(Error::shapes("Flatten", &[&x.shape()], "needs a batch axis"));
        };
        let rest: usize = x.dims()[1..].iter().product();
        x.reshape(&[batch as i64, rest as i64])
    }
}

layer_module!(Flatten, |l| &l.name, |_l| Vec::new());
