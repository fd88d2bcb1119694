//! `Dense`: `activation(x · kernel + bias)`.

use super::{unique_name, Activation, Layer, Mode};
use crate::initializers::Initializer;
use ferroflow_tensor_core::{DType, Error, Result, Tensor, Variable};
use std::cell::OnceCell;

/// A densely connected layer (`keras.layers.Dense`): `activation(x · kernel + bias)` with a
/// `[in, units]` kernel. The input size is given up front or taken from the first call
/// (Keras' deferred build). Defaults: glorot-uniform kernel, zero bias, linear activation.
///
/// ```
/// use ferroflow_nn::{Activation, Dense, Layer, Mode};
/// use ferroflow_tensor_core::{DType, Tensor};
/// let d = Dense::new(4).with_activation(Activation::Relu).with_input_dim(3)?;
/// let y = d.call(&Tensor::ones(&[2, 3], DType::F32)?, Mode::Inference)?;
/// assert_eq!(y.dims(), &[2, 4]);
/// assert_eq!(d.count_params(), 3 * 4 + 4);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
#[derive(Debug)]
pub struct Dense {
    name: String,
    units: usize,
    activation: Activation,
    use_bias: bool,
    kernel_initializer: Initializer,
    bias_initializer: Initializer,
    seed: Option<u64>,
    dtype: DType,
    kernel: OnceCell<Variable>,
    bias: OnceCell<Variable>,
}

impl Dense {
    /// A layer of `units` outputs (built on first call).
    pub fn new(units: usize) -> Self {
        Dense {
            name: unique_name("dense"),
            units,
            activation: Activation::Linear,
            use_bias: true,
            kernel_initializer: Initializer::GlorotUniform,
            bias_initializer: Initializer::Zeros,
            seed: None,
            dtype: DType::F32,
            kernel: OnceCell::new(),
            bias: OnceCell::new(),
        }
    }

    /// Sets the activation.
    pub fn with_activation(mut self, a: Activation) -> Self {
        self.activation = a;
        self
    }

    /// With or without a bias.
    pub fn with_bias(mut self, b: bool) -> Self {
        self.use_bias = b;
        self
    }

    /// Sets the kernel initializer.
    pub fn with_kernel_initializer(mut self, i: Initializer) -> Self {
        self.kernel_initializer = i;
        self
    }

    /// Sets the bias initializer.
    pub fn with_bias_initializer(mut self, i: Initializer) -> Self {
        self.bias_initializer = i;
        self
    }

    /// Seeds the initializers.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Sets the variables' dtype (float32 by default).
    pub fn with_dtype(mut self, dtype: DType) -> Self {
        self.dtype = dtype;
        self
    }

    /// Sets the layer's name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Builds the variables now for inputs of `input_dim` features.
    pub fn with_input_dim(self, input_dim: usize) -> Result<Self> {
        self.build(input_dim)?;
        Ok(self)
    }

    fn build(&self, input_dim: usize) -> Result<()> {
        if self.kernel.get().is_some() {
            return Ok(());
        }
        let k = self
            .kernel_initializer
            .draw(&[input_dim, self.units], self.dtype, self.seed)?;
        let _ = self.kernel.set(Variable::new(format!("{}/kernel", self.name), k)?);
        if self.use_bias {
            let b = self.bias_initializer.draw(&[self.units], self.dtype, self.seed)?;
            let _ = self.bias.set(Variable::new(format!("{}/bias", self.name), b)?);
        }
        Ok(())
    }

    /// The kernel, once built.
    pub fn kernel(&self) -> Option<&Variable> {
        self.kernel.get()
    }

    /// The bias, once built (and if used).
    pub fn bias(&self) -> Option<&Variable> {
        self.bias.get()
    }
}

impl Layer for Dense {
    fn call(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        let Some(&input_dim) = x.dims().last() else {
            return Err(Error::shapes("Dense", &[&x.shape()], "needs inputs of rank >= 1"));
        };
        self.build(input_dim)?;
        let kernel = self.kernel.get().ok_or_else(|| Error::invalid("Dense", "not built"))?;
        let mut y = x.matmul(&kernel.read()?)?;
        if let Some(b) = self.bias.get() {
            y = y.add(&b.read()?)?;
        }
        self.activation.apply(&y)
    }
}

layer_module!(Dense, |l| &l.name, |l| super::kernel_and_bias(&l.kernel, &l.bias));
