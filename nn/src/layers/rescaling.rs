//! `Rescaling`: `x·scale + offset`, the usual first layer on integer image data.

use super::{autocast, config_name, unique_name, Layer, Mode};
use ferroflow_tensor_core::{DType, Error, Result, Tensor};
use serde_json::{Map, Value};

/// `keras.layers.Rescaling`: `x·scale + offset`, computed in the layer's float dtype
/// (float32 by default): integer inputs such as pixel values are cast to it first, as
/// Keras casts them.
///
/// ```
/// use ferroflow_nn::{Layer, Mode, Rescaling};
/// use ferroflow_tensor_core::{DType, Tensor};
/// let pixels = Tensor::new([0i32, 255]);
/// let y = Rescaling::new(1.0 / 255.0).call(&pixels, Mode::Inference)?;
/// assert_eq!((y.dtype(), y.to_vec::<f32>()?), (DType::F32, vec![0.0, 1.0]));
/// let centred = Rescaling::new(1.0 / 127.5).with_offset(-1.0);
/// assert_eq!(centred.call(&pixels, Mode::Inference)?.to_vec::<f32>()?, vec![-1.0, 1.0]);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Rescaling {
    scale: f64,
    offset: f64,
    dtype: DType,
    name: String,
}

impl Rescaling {
    /// Multiplies by `scale` (offset 0), in float32; named as Keras names it (`rescaling`,
    /// `rescaling_1`, ...).
    pub fn new(scale: f64) -> Self {
        Rescaling {
            scale,
            offset: 0.0,
            dtype: DType::F32,
            name: unique_name("rescaling"),
        }
    }

    /// Adds `offset` after scaling.
    pub fn with_offset(mut self, offset: f64) -> Self {
        self.offset = offset;
        self
    }

    /// Computes in `dtype` (a float type; Keras' `dtype`).
    pub fn with_dtype(mut self, dtype: DType) -> Result<Self> {
        if !dtype.is_float() {
            return Err(Error::invalid(
                "Rescaling",
                format!("dtype must be a float type, got {dtype}"),
            ));
        }
        self.dtype = dtype;
        Ok(self)
    }

    /// Sets the name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The layer from Keras' config (`scale`, `offset` as numbers, `dtype`).
    pub fn from_config(config: &Value) -> Result<Self> {
        use super::unsupported::{refuse_unsupported, COMMON};
        refuse_unsupported("Rescaling", config, &[COMMON])?;
        let number = |key: &str, default: f64| match config.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v.as_f64().ok_or_else(|| {
                Error::invalid(
                    "from_json",
                    format!("Rescaling layer: {key} must be a number (per-channel lists are not read), got {v}"),
                )
            }),
        };
        Rescaling {
            scale: number("scale", 1.0)?,
            offset: number("offset", 0.0)?,
            dtype: DType::F32,
            name: config_name(config, "rescaling"),
        }
        .with_dtype(crate::model::read_dtype(config)?)
    }
}

impl crate::model::LayerConfig for Rescaling {
    fn class_name(&self) -> &'static str {
        "Rescaling"
    }

    fn config(&self) -> Map<String, Value> {
        let mut m = super::base_config(&self.name, self.dtype);
        m.insert("scale".into(), self.scale.into());
        m.insert("offset".into(), self.offset.into());
        m
    }
}

impl Layer for Rescaling {
    fn keras_config(&self) -> Option<Value> {
        Some(super::keras_entry(self))
    }

    fn call(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        let x = autocast(x, self.dtype)?;
        // Keras: `cast(x) * cast(scale) + cast(offset)`, each constant in the compute dtype.
        x.mul(&x.scalar_like(self.scale))?.add(&x.scalar_like(self.offset))
    }
}

layer_module!(Rescaling, |l| &l.name, |_l| Vec::new());
