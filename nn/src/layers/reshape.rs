//! `Reshape`: gives each example a new shape, keeping the batch axis.

use super::{config_name, unique_name, Layer, Mode};
use ferroflow_tensor_core::{DType, Error, Result, Tensor};
use serde_json::{Map, Value};

/// `keras.layers.Reshape`: `[batch, ...]` → `[batch, ...target_shape]`; one entry of the
/// target may be `-1`, inferred from the others.
///
/// ```
/// use ferroflow_nn::{Layer, Mode, Reshape};
/// use ferroflow_tensor_core::{DType, Tensor};
/// let y = Reshape::new([3, -1])?.call(&Tensor::zeros(&[2, 12], DType::F32)?, Mode::Inference)?;
/// assert_eq!(y.dims(), &[2, 3, 4]);
/// assert!(Reshape::new([-1, -1]).is_err());
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Reshape {
    target_shape: Vec<i64>,
    name: String,
}

impl Reshape {
    /// Reshapes each example to `target_shape` (without the batch axis): positive sizes and
    /// at most one `-1`. Named as Keras names it (`reshape`, `reshape_1`, ...).
    pub fn new(target_shape: impl Into<Vec<i64>>) -> Result<Self> {
        Reshape::named(target_shape.into(), || unique_name("reshape"))
    }

    fn named(target_shape: Vec<i64>, name: impl FnOnce() -> String) -> Result<Self> {
        let unknown = target_shape.iter().filter(|&&d| d == -1).count();
        if unknown > 1 || target_shape.iter().any(|&d| d == 0 || d < -1) {
            return Err(Error::invalid(
                "Reshape",
                format!("target_shape must hold positive sizes and at most one -1, got {target_shape:?}"),
            ));
        }
        Ok(Reshape {
            target_shape,
            name: name(),
        })
    }

    /// Sets the name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The target shape of each example.
    pub fn target_shape(&self) -> &[i64] {
        &self.target_shape
    }

    /// The layer from Keras' config (`target_shape`).
    pub fn from_config(config: &Value) -> Result<Self> {
        use super::unsupported::{refuse_unsupported, COMMON};
        refuse_unsupported("Reshape", config, &[COMMON])?;
        let target: Option<Vec<i64>> = config
            .get("target_shape")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(Value::as_i64).collect())
            .unwrap_or(None);
        let target = target
            .ok_or_else(|| Error::invalid("from_json", "Reshape layer: target_shape must be a list of integers"))?;
        Reshape::named(target, || config_name(config, "reshape"))
    }
}

impl crate::model::LayerConfig for Reshape {
    fn class_name(&self) -> &'static str {
        "Reshape"
    }

    fn config(&self) -> Map<String, Value> {
        let mut m = super::base_config(&self.name, DType::F32);
        m.insert("target_shape".into(), serde_json::json!(self.target_shape));
        m
    }
}

impl Layer for Reshape {
    fn keras_config(&self) -> Option<Value> {
        Some(super::keras_entry(self))
    }

    fn call(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        let Some((&batch, rest)) = x.dims().split_first() else {
            return Err(Error::shapes("Reshape", &[&x.shape()], "needs a batch axis"));
        };
        let size: usize = rest.iter().product();
        // Sizes from a file may be huge: a product that overflows fits no example.
        let known = self
            .target_shape
            .iter()
            .filter(|&&d| d != -1)
            .try_fold(1i64, |acc, &d| acc.checked_mul(d))
            .unwrap_or(-1);
        let fits = if self.target_shape.contains(&-1) {
            known > 0 && size as i64 % known == 0
        } else {
            known == size as i64
        };
        if !fits {
            return Err(Error::shapes(
                "Reshape",
                &[&x.shape()],
                format!(
                    "an example of {size} values cannot take the shape {:?}",
                    self.target_shape
                ),
            ));
        }
        let mut dims = vec![batch as i64];
        dims.extend(
            self.target_shape
                .iter()
                .map(|&d| if d == -1 { size as i64 / known } else { d }),
        );
        x.reshape(&dims)
    }
}

layer_module!(Reshape, |l| &l.name, |_l| Vec::new());
