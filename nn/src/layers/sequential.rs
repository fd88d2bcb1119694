//! `Sequential`: layers applied one after another.

use super::{config_name, unique_name, Layer, Mode};
use crate::model::{layer_from_config, LayerConfig};
use crate::Attr;
use ferroflow_tensor_core::{DType, Error, Result, Tensor, Variable};
use serde_json::{Map, Value};

/// `keras.Sequential`: calls its layers in order.
///
/// ```
/// use ferroflow_nn::{Activation, Dense, Layer, Mode, Module, Sequential};
/// use ferroflow_tensor_core::{DType, Tensor};
/// let mut model = Sequential::new();
/// model.add(Dense::new(8).with_activation(Activation::Relu));
/// model.add(Dense::new(1));
/// let y = model.call(&Tensor::ones(&[4, 3], DType::F32)?, Mode::Inference)?;
/// assert_eq!(y.dims(), &[4, 1]);
/// assert_eq!(model.trainable_variables().len(), 4);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
pub struct Sequential {
    name: String,
    layers: Vec<Box<dyn Layer>>,
    trainable: std::cell::Cell<bool>,
}

impl Default for Sequential {
    fn default() -> Self {
        Self::new()
    }
}

impl Sequential {
    /// An empty model.
    pub fn new() -> Self {
        Sequential {
            name: unique_name("sequential"),
            layers: Vec::new(),
            trainable: std::cell::Cell::new(true),
        }
    }

    /// Sets the name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Appends a layer.
    pub fn add(&mut self, layer: impl Layer + 'static) {
        self.add_boxed(Box::new(layer));
    }

    /// Appends a boxed layer. A layer added to a frozen model is frozen with it.
    pub fn add_boxed(&mut self, layer: Box<dyn Layer>) {
        if !self.trainable.get() {
            layer.set_trainable(false);
        }
        self.layers.push(layer);
    }

    /// The layers.
    pub fn layers(&self) -> &[Box<dyn Layer>] {
        &self.layers
    }

    /// A Sequential from Keras' config (`{"name", "layers": [...]}`); an `InputLayer` entry
    /// is skipped (layers build from their first input).
    pub fn from_config(config: &Value) -> Result<Self> {
        let mut s = Sequential::new().with_name(config_name(config, "sequential"));
        let layers = config
            .get("layers")
            .and_then(Value::as_array)
            .ok_or_else(|| Error::invalid("from_json", "Sequential: missing \"layers\""))?;
        for entry in layers {
            if entry.get("class_name").and_then(Value::as_str) == Some("InputLayer") {
                continue;
            }
            s.add_boxed(layer_from_config(entry)?);
        }
        Ok(s)
    }
}

impl Layer for Sequential {
    fn trainable_switch(&self) -> Option<&std::cell::Cell<bool>> {
        Some(&self.trainable)
    }
    fn call(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let mut y = x.clone();
        for l in &self.layers {
            y = l.call(&y, mode)?;
        }
        Ok(y)
    }

    /// None when a layer inside has none (a file with a `null` layer would not load).
    fn keras_config(&self) -> Option<Value> {
        if self.layers.iter().any(|l| l.keras_config().is_none()) {
            return None;
        }
        Some(super::keras_entry(self))
    }

    fn sublayers(&self) -> Option<&[Box<dyn Layer>]> {
        Some(&self.layers)
    }
}

impl LayerConfig for Sequential {
    fn class_name(&self) -> &'static str {
        "Sequential"
    }

    fn config(&self) -> Map<String, Value> {
        let mut m = super::base_config(&self.name, DType::F32);
        let names = super::unique_within(self.layers.iter().map(|l| l.name()));
        let layers: Vec<Value> = self
            .layers
            .iter()
            .zip(names)
            .map(|(l, name)| {
                let mut entry = l.keras_config().unwrap_or(Value::Null);
                if let Some(config) = entry.get_mut("config").and_then(Value::as_object_mut) {
                    config.insert("name".into(), name.into());
                }
                entry
            })
            .collect();
        m.insert("layers".into(), Value::Array(layers));
        m
    }
}

layer_module!(
    Sequential,
    |l| &l.name,
    |l| {
        let items = l.layers.iter().map(|x| Attr::Module(x.as_dyn())).collect();
        vec![("layers".to_string(), Attr::List(items))]
    },
    /// Keras' rule (`Layer.trainable_weights`): a frozen container trains nothing, not even
    /// a layer inside it set trainable again since; otherwise its trainable variables. The
    /// rule holds for the container asked, as in Keras: a frozen container inside a trainable
    /// one does not hide a layer unfrozen within it.
    fn trainable_variables(&self) -> Vec<Variable> {
        if !self.trainable.get() {
            return Vec::new();
        }
        self.variables().into_iter().filter(Variable::trainable).collect()
    }
);
