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
    /// The bias initializer's own seed: a seed of its own keeps a random bias independent of
    /// the kernel (a stateless draw with the kernel's seed would repeat its first row).
    bias_seed: Option<u64>,
    dtype: DType,
    kernel: OnceCell<Variable>,
    bias: OnceCell<Variable>,
    trainable: std::cell::Cell<bool>,
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
            bias_seed: None,
            dtype: DType::F32,
            kernel: OnceCell::new(),
            bias: OnceCell::new(),
            trainable: std::cell::Cell::new(true),
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

    /// Seeds the initializers: the same seed gives the same initial weights every time, as
    /// Keras 3's seeded initializers do (the bias initializer takes a seed derived from it).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        // Kept below 2^32: Keras draws from a uint32 seed, so a file with a larger one would
        // not load there.
        self.bias_seed = Some((seed ^ 0x9E37_79B9) & 0xFFFF_FFFF);
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
            let b = self.bias_initializer.draw(&[self.units], self.dtype, self.bias_seed)?;
            let _ = self.bias.set(Variable::new(format!("{}/bias", self.name), b)?);
        }
        super::freeze_new(self, self.kernel.get().into_iter().chain(self.bias.get()));
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

impl crate::model::LayerConfig for Dense {
    fn class_name(&self) -> &'static str {
        "Dense"
    }

    fn config(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = super::base_config(&self.name, self.dtype);
        m.insert("units".into(), self.units.into());
        m.insert("activation".into(), self.activation.name().into());
        m.insert("use_bias".into(), self.use_bias.into());
        m.insert("kernel_initializer".into(), self.kernel_initializer.to_keras(self.seed));
        m.insert(
            "bias_initializer".into(),
            self.bias_initializer.to_keras(self.bias_seed),
        );
        for key in [
            "kernel_regularizer",
            "bias_regularizer",
            "kernel_constraint",
            "bias_constraint",
            "quantization_config",
        ] {
            m.insert(key.into(), serde_json::Value::Null);
        }
        m
    }

    fn build_input_shape(&self) -> Option<Vec<Option<usize>>> {
        self.kernel.get().map(|k| vec![None, Some(k.shape().dims()[0])])
    }
}

impl Dense {
    /// A layer from Keras' config (`units`, `activation`, `use_bias`, initializers, `dtype`).
    pub fn from_config(config: &serde_json::Value) -> Result<Self> {
        use super::unsupported::{refuse_unsupported, COMMON, KERNEL_AND_BIAS};
        use crate::model::{get_str, get_usize, read_dtype};
        refuse_unsupported("Dense", config, &[COMMON, KERNEL_AND_BIAS])?;
        let mut d = Dense::new(get_usize(config, "Dense", "units")?)
            .with_name(super::config_name(config, "dense"))
            .with_dtype(read_dtype(config)?)
            .with_bias(config.get("use_bias").and_then(|v| v.as_bool()).unwrap_or(true));
        if let Some(a) = get_str(config, "activation") {
            d = d.with_activation(a.parse()?);
        }
        if let Some(k) = config.get("kernel_initializer").filter(|v| !v.is_null()) {
            let (init, seed) = Initializer::from_keras(k)?;
            d = d.with_kernel_initializer(init);
            d.seed = seed;
        }
        if let Some(b) = config.get("bias_initializer").filter(|v| !v.is_null()) {
            let (init, seed) = Initializer::from_keras(b)?;
            d = d.with_bias_initializer(init);
            d.bias_seed = seed;
        }
        Ok(d)
    }
}

impl Layer for Dense {
    fn trainable_switch(&self) -> Option<&std::cell::Cell<bool>> {
        Some(&self.trainable)
    }
    fn keras_config(&self) -> Option<serde_json::Value> {
        self.activation.keras_name().map(|_| super::keras_entry(self))
    }

    fn call(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        let Some(&input_dim) = x.dims().last() else {
            return Err(Error::shapes("Dense", &[&x.shape()], "needs inputs of rank >= 1"));
        };
        let x = &super::autocast(x, self.dtype)?;
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
