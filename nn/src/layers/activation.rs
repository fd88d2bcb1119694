//! Activation functions by name, and the `Activation` layer.

use ferroflow_tensor_core::{Result, Tensor};

/// An activation, as Keras' `activation=` argument names it.
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
    /// Applies the activation.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        match *self {
            Activation::Linear => Ok(x.clone()),
            Activation::Relu => x.relu(),
            Activation::Relu6 => x.relu6(),
            Activation::Sigmoid => x.sigmoid(),
            Activation::Tanh => x.tanh(),
            Activation::Softmax => x.softmax(-1),
            Activation::Softplus => x.softplus(),
            Activation::Elu => x.elu(),
            Activation::Selu => x.selu(),
            Activation::Gelu => x.gelu(false),
            Activation::LeakyRelu(a) => x.leaky_relu(a),
        }
    }
}

impl super::Layer for Activation {
    fn call(&self, x: &Tensor, _training: bool) -> Result<Tensor> {
        self.apply(x)
    }
}

layer_module!(Activation, |_l| "activation", |_l| Vec::new());
