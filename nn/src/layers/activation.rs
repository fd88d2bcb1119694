//! Activation functions by name, and the `Activation` layer.

use super::Mode;
use ferroflow_tensor_core::{Gelu, Result, Tensor};

/// An activation, as Keras' `activation=` argument names it; also a layer of its own.
///
/// ```
/// use ferroflow_nn::{Activation, Layer, Mode};
/// use ferroflow_tensor_core::Tensor;
/// let relu: Activation = "relu".parse()?;
/// assert_eq!(relu.call(&Tensor::new([-1.0f32, 2.0]), Mode::Inference)?.to_vec::<f32>()?, vec![0.0, 2.0]);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Activation {
    /// Identity.
    #[default]
    Linear,
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, 0), 6)`.
    Relu6,
    /// Logistic sigmoid.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// Softmax over the last axis.
    Softmax,
    /// Softplus.
    Softplus,
    /// ELU.
    Elu,
    /// SELU.
    Selu,
    /// GELU (exact).
    Gelu,
    /// Leaky ReLU with the given slope.
    LeakyRelu(f64),
}

impl Activation {
    /// Keras' name of the activation (`"relu"`), as `FromStr` reads it.
    pub fn name(&self) -> &'static str {
        match self {
            Activation::Linear => "linear",
            Activation::Relu => "relu",
            Activation::Relu6 => "relu6",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Softmax => "softmax",
            Activation::Softplus => "softplus",
            Activation::Elu => "elu",
            Activation::Selu => "selu",
            Activation::Gelu => "gelu",
            Activation::LeakyRelu(_) => "leaky_relu",
        }
    }

    /// The name Keras' files give the activation, when a name says all of it: Keras reads
    /// `"leaky_relu"` with its default slope 0.2, so another slope has no name (and a layer
    /// using it has no Keras configuration).
    pub fn keras_name(&self) -> Option<&'static str> {
        match *self {
            Activation::LeakyRelu(a) if a != 0.2 => None,
            other => Some(other.name()),
        }
    }

    /// Applies the activation. A sigmoid's or softmax's output remembers its input as its
    /// logits ([`ferroflow_optim::keras_logits`]), so that a cross-entropy loss on it computes
    /// from the logits, as Keras does with the TensorFlow backend.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        use ferroflow_optim::keras_logits::{remember, Squash};
        match *self {
            Activation::Linear => Ok(x.clone()),
            Activation::Relu => x.relu(),
            Activation::Relu6 => x.relu6(),
            Activation::Sigmoid => {
                let y = x.sigmoid()?;
                remember(&y, x, Squash::Sigmoid);
                Ok(y)
            }
            Activation::Tanh => x.tanh(),
            Activation::Softmax => {
                let y = x.softmax(-1)?;
                remember(&y, x, Squash::Softmax);
                Ok(y)
            }
            Activation::Softplus => x.softplus(),
            Activation::Elu => x.elu(),
            Activation::Selu => x.selu(),
            Activation::Gelu => x.gelu(Gelu::Exact),
            Activation::LeakyRelu(a) => x.leaky_relu(a),
        }
    }
}

impl std::str::FromStr for Activation {
    type Err = ferroflow_tensor_core::Error;

    /// Keras' names: `"linear"`, `"relu"`, `"relu6"`, `"sigmoid"`, `"tanh"`, `"softmax"`,
    /// `"softplus"`, `"elu"`, `"selu"`, `"gelu"`, `"leaky_relu"` (slope 0.2, Keras' default).
    ///
    /// ```
    /// use ferroflow_nn::Activation;
    /// assert_eq!("relu".parse::<Activation>()?, Activation::Relu);
    /// assert!("swishy".parse::<Activation>().is_err());
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "linear" => Activation::Linear,
            "relu" => Activation::Relu,
            "relu6" => Activation::Relu6,
            "sigmoid" => Activation::Sigmoid,
            "tanh" => Activation::Tanh,
            "softmax" => Activation::Softmax,
            "softplus" => Activation::Softplus,
            "elu" => Activation::Elu,
            "selu" => Activation::Selu,
            "gelu" => Activation::Gelu,
            "leaky_relu" => Activation::LeakyRelu(0.2),
            _ => {
                return Err(ferroflow_tensor_core::Error::invalid(
                    "activation",
                    format!("unknown activation {s:?}"),
                ))
            }
        })
    }
}

impl crate::model::LayerConfig for Activation {
    fn class_name(&self) -> &'static str {
        "Activation"
    }

    fn config(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = super::base_config("activation", ferroflow_tensor_core::DType::F32);
        m.insert("activation".into(), self.name().into());
        m
    }
}

impl Activation {
    /// The `Activation` layer from Keras' config (`{"activation": "relu", ...}`). The layer
    /// is named `activation` (a model makes repeated names unique when it writes them).
    pub fn from_config(config: &serde_json::Value) -> Result<Self> {
        use super::unsupported::{refuse_unsupported, COMMON};
        refuse_unsupported("Activation", config, &[COMMON])?;
        crate::model::get_str(config, "activation")
            .ok_or_else(|| {
                ferroflow_tensor_core::Error::invalid("from_json", "an Activation layer's activation must be a name")
            })?
            .parse()
    }
}

impl super::Layer for Activation {
    fn call(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        self.apply(x)
    }

    fn keras_config(&self) -> Option<serde_json::Value> {
        self.keras_name().map(|_| super::keras_entry(self))
    }
}

layer_module!(Activation, |_l| "activation", |_l| Vec::new());
