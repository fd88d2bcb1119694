//! `Sequential`: layers applied one after another.

use super::{unique_name, Layer, Mode};
use crate::Attr;
use ferroflow_tensor_core::{Result, Tensor};

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
        }
    }

    /// Appends a layer.
    pub fn add(&mut self, layer: impl Layer + 'static) {
        self.layers.push(Box::new(layer));
    }

    /// The layers.
    pub fn layers(&self) -> &[Box<dyn Layer>] {
        &self.layers
    }
}

impl Layer for Sequential {
    fn call(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let mut y = x.clone();
        for l in &self.layers {
            y = l.call(&y, mode)?;
        }
        Ok(y)
    }
}

layer_module!(Sequential, |l| &l.name, |l| {
    let items = l.layers.iter().map(|x| Attr::Module(x.as_dyn())).collect();
    vec![("layers".to_string(), Attr::List(items))]
});
