//! `Conv2D`, `MaxPooling2D`, `AveragePooling2D` (NHWC).

use super::{unique_name, Activation, Layer, Mode};
use crate::initializers::Initializer;
use ferroflow_tensor_core::{DType, Error, Padding, Result, Tensor, Variable};
use std::cell::OnceCell;

/// `keras.layers.Conv2D` on NHWC inputs: HWIO kernel (glorot-uniform), zero bias, built on
/// the first call from the input's channel count.
///
/// ```
/// use ferroflow_nn::{Activation, Conv2D, Layer, Mode};
/// use ferroflow_tensor_core::{DType, Padding, Tensor};
/// let conv = Conv2D::new(8, [3, 3]).with_padding(Padding::Same).with_activation(Activation::Relu).with_seed(1);
/// let y = conv.call(&Tensor::ones(&[2, 6, 6, 3], DType::F32)?, Mode::Inference)?;
/// assert_eq!(y.dims(), &[2, 6, 6, 8]);
/// assert_eq!(conv.count_params(), 3 * 3 * 3 * 8 + 8);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
#[derive(Debug)]
pub struct Conv2D {
    name: String,
    filters: usize,
    kernel_size: [usize; 2],
    strides: [usize; 2],
    padding: Padding,
    activation: Activation,
    use_bias: bool,
    dilation_rate: [usize; 2],
    kernel_initializer: Initializer,
    bias_initializer: Initializer,
    seed: Option<u64>,
    dtype: DType,
    kernel: OnceCell<Variable>,
    bias: OnceCell<Variable>,
    trainable: std::cell::Cell<bool>,
}

impl Conv2D {
    /// `filters` output channels with a `kernel_size` window, stride 1, VALID padding.
    pub fn new(filters: usize, kernel_size: [usize; 2]) -> Self {
        Conv2D {
            name: unique_name("conv2d"),
            filters,
            kernel_size,
            strides: [1, 1],
            padding: Padding::Valid,
            activation: Activation::Linear,
            use_bias: true,
            dilation_rate: [1, 1],
            kernel_initializer: Initializer::GlorotUniform,
            bias_initializer: Initializer::Zeros,
            seed: None,
            dtype: DType::F32,
            kernel: OnceCell::new(),
            bias: OnceCell::new(),
            trainable: std::cell::Cell::new(true),
        }
    }

    /// Sets the variables' dtype (float32 by default); floating inputs are cast to it, as
    /// Keras autocasts them.
    pub fn with_dtype(mut self, dtype: DType) -> Self {
        self.dtype = dtype;
        self
    }

    /// Sets the dilation rate (`[1, 1]` by default): the kernel's taps are spaced this far
    /// apart.
    pub fn with_dilation_rate(mut self, d: [usize; 2]) -> Self {
        self.dilation_rate = d;
        self
    }

    /// Sets the kernel initializer (glorot-uniform by default).
    pub fn with_kernel_initializer(mut self, i: Initializer) -> Self {
        self.kernel_initializer = i;
        self
    }

    /// Sets the bias initializer (zeros by default).
    pub fn with_bias_initializer(mut self, i: Initializer) -> Self {
        self.bias_initializer = i;
        self
    }

    /// Sets the strides.
    pub fn with_strides(mut self, s: [usize; 2]) -> Self {
        self.strides = s;
        self
    }

    /// Sets the padding.
    pub fn with_padding(mut self, p: Padding) -> Self {
        self.padding = p;
        self
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

    /// Seeds the kernel initializer.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    fn build(&self, channels: usize) -> Result<()> {
        if self.kernel.get().is_some() {
            return Ok(());
        }
        let dtype = self.dtype;
        let [kh, kw] = self.kernel_size;
        let k = self
            .kernel_initializer
            .draw(&[kh, kw, channels, self.filters], dtype, self.seed)?;
        let _ = self.kernel.set(Variable::new(format!("{}/kernel", self.name), k)?);
        if self.use_bias {
            let b = self.bias_initializer.draw(&[self.filters], dtype, None)?;
            let _ = self.bias.set(Variable::new(format!("{}/bias", self.name), b)?);
        }
        super::freeze_new(self, self.kernel.get().into_iter().chain(self.bias.get()));
        Ok(())
    }
}

/// Keras' padding name.
fn padding_name(p: Padding) -> &'static str {
    match p {
        Padding::Valid => "valid",
        Padding::Same => "same",
    }
}

/// A padding from Keras' name (`valid` if absent).
fn read_padding(config: &serde_json::Value) -> Result<Padding> {
    crate::model::get_str(config, "padding").map_or(Ok(Padding::Valid), |p| p.parse())
}

impl crate::model::LayerConfig for Conv2D {
    fn class_name(&self) -> &'static str {
        "Conv2D"
    }

    fn config(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = super::base_config(&self.name, self.dtype);
        m.insert("filters".into(), self.filters.into());
        m.insert("kernel_size".into(), serde_json::json!(self.kernel_size));
        m.insert("strides".into(), serde_json::json!(self.strides));
        m.insert("padding".into(), padding_name(self.padding).into());
        m.insert("data_format".into(), "channels_last".into());
        m.insert("dilation_rate".into(), serde_json::json!(self.dilation_rate));
        m.insert("groups".into(), 1.into());
        m.insert("activation".into(), self.activation.name().into());
        m.insert("use_bias".into(), self.use_bias.into());
        m.insert("kernel_initializer".into(), self.kernel_initializer.to_keras(self.seed));
        m.insert("bias_initializer".into(), self.bias_initializer.to_keras(None));
        for key in [
            "kernel_regularizer",
            "bias_regularizer",
            "activity_regularizer",
            "kernel_constraint",
            "bias_constraint",
        ] {
            m.insert(key.into(), serde_json::Value::Null);
        }
        m
    }
}

impl Conv2D {
    /// A layer from Keras' config (`filters`, `kernel_size`, `strides`, `padding`,
    /// `dilation_rate`, `activation`, `use_bias`, initializers); settings the layer does not
    /// implement (regularizers, `groups`, channels-first) are refused.
    pub fn from_config(config: &serde_json::Value) -> Result<Self> {
        use super::unsupported::{refuse_unsupported, Allowed, CHANNELS_LAST, COMMON, KERNEL_AND_BIAS};
        use crate::model::{get_pair, get_str, get_usize};
        refuse_unsupported(
            "Conv2D",
            config,
            &[
                COMMON,
                KERNEL_AND_BIAS,
                CHANNELS_LAST,
                &[("groups", Allowed::OneOf(&["1"]))],
            ],
        )?;
        let mut c = Conv2D::new(
            get_usize(config, "Conv2D", "filters")?,
            get_pair(config, "kernel_size", [1, 1])?,
        )
        .with_strides(get_pair(config, "strides", [1, 1])?)
        .with_padding(read_padding(config)?)
        .with_bias(config.get("use_bias").and_then(|v| v.as_bool()).unwrap_or(true))
        .with_dtype(crate::model::read_dtype(config)?);
        if let Some(a) = get_str(config, "activation") {
            c = c.with_activation(a.parse()?);
        }
        if let Some(n) = get_str(config, "name") {
            c.name = n.to_string();
        }
        c = c.with_dilation_rate(get_pair(config, "dilation_rate", [1, 1])?);
        if let Some(k) = config.get("kernel_initializer").filter(|v| !v.is_null()) {
            let (init, seed) = Initializer::from_keras(k)?;
            c = c.with_kernel_initializer(init);
            c.seed = seed;
        }
        if let Some(b) = config.get("bias_initializer").filter(|v| !v.is_null()) {
            c = c.with_bias_initializer(Initializer::from_keras(b)?.0);
        }
        Ok(c)
    }
}

impl Layer for Conv2D {
    fn trainable_switch(&self) -> Option<&std::cell::Cell<bool>> {
        Some(&self.trainable)
    }
    fn keras_config(&self) -> Option<serde_json::Value> {
        self.activation.keras_name().map(|_| super::keras_entry(self))
    }

    fn call(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        if x.rank() != 4 {
            return Err(Error::shapes("Conv2D", &[&x.shape()], "expects NHWC inputs of rank 4"));
        }
        let x = &super::autocast(x, self.dtype)?;
        self.build(x.dims()[3])?;
        let k = self.kernel.get().ok_or_else(|| Error::invalid("Conv2D", "not built"))?;
        let mut y = x.conv2d(&k.read()?, self.strides, self.padding, self.dilation_rate)?;
        if let Some(b) = self.bias.get() {
            y = y.bias_add(&b.read()?)?;
        }
        self.activation.apply(&y)
    }
}

layer_module!(Conv2D, |l| &l.name, |l| super::kernel_and_bias(&l.kernel, &l.bias));

/// A pooling layer's settings.
#[derive(Debug, Clone)]
struct Pool {
    pool_size: [usize; 2],
    strides: [usize; 2],
    padding: Padding,
    name: String,
}

/// `keras.layers.MaxPooling2D` (strides default to the pool size, VALID padding).
///
/// ```
/// use ferroflow_nn::{Layer, MaxPooling2D, Mode};
/// use ferroflow_tensor_core::{DType, Tensor};
/// let y = MaxPooling2D::new([2, 2]).call(&Tensor::ones(&[1, 4, 6, 3], DType::F32)?, Mode::Inference)?;
/// assert_eq!(y.dims(), &[1, 2, 3, 3]);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct MaxPooling2D(Pool);

/// `keras.layers.AveragePooling2D` (strides default to the pool size, VALID padding).
///
/// ```
/// use ferroflow_nn::{AveragePooling2D, Layer, Mode};
/// use ferroflow_tensor_core::{Padding, Tensor};
/// let x = Tensor::new([1.0f32, 2.0, 3.0, 4.0]).reshape(&[1, 2, 2, 1])?;
/// let pool = AveragePooling2D::new([2, 2]).with_strides([1, 1]).with_padding(Padding::Same);
/// assert_eq!(pool.call(&x, Mode::Inference)?.to_vec::<f32>()?, vec![2.5, 3.0, 3.5, 4.0]);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct AveragePooling2D(Pool);

macro_rules! pool_layer {
    ($t:ident, $name:literal, $method:ident) => {
        impl $t {
            /// A `pool_size` window, strides equal to it, VALID padding; named as Keras
            /// names it (`max_pooling2d`, `max_pooling2d_1`, ...).
            pub fn new(pool_size: [usize; 2]) -> Self {
                $t::named(pool_size, unique_name($name))
            }

            fn named(pool_size: [usize; 2], name: String) -> Self {
                $t(Pool {
                    pool_size,
                    strides: pool_size,
                    padding: Padding::Valid,
                    name,
                })
            }

            /// Sets the name.
            pub fn with_name(mut self, name: impl Into<String>) -> Self {
                self.0.name = name.into();
                self
            }

            /// Sets the strides.
            pub fn with_strides(mut self, s: [usize; 2]) -> Self {
                self.0.strides = s;
                self
            }

            /// Sets the padding.
            pub fn with_padding(mut self, p: Padding) -> Self {
                self.0.padding = p;
                self
            }
        }

        impl crate::model::LayerConfig for $t {
            fn class_name(&self) -> &'static str {
                stringify!($t)
            }

            fn config(&self) -> serde_json::Map<String, serde_json::Value> {
                let mut m = super::base_config(&self.0.name, DType::F32);
                m.insert("pool_size".into(), serde_json::json!(self.0.pool_size));
                m.insert("padding".into(), padding_name(self.0.padding).into());
                m.insert("strides".into(), serde_json::json!(self.0.strides));
                m.insert("data_format".into(), "channels_last".into());
                m
            }
        }

        impl $t {
            /// A layer from Keras' config (`pool_size`, `strides`, `padding`; channels last).
            pub fn from_config(config: &serde_json::Value) -> Result<Self> {
                use super::unsupported::{refuse_unsupported, CHANNELS_LAST, COMMON};
                refuse_unsupported(stringify!($t), config, &[COMMON, CHANNELS_LAST])?;
                let pool = crate::model::get_pair(config, "pool_size", [2, 2])?;
                Ok($t::named(pool, super::config_name(config, $name))
                    .with_strides(crate::model::get_pair(config, "strides", pool)?)
                    .with_padding(read_padding(config)?))
            }
        }

        impl Layer for $t {
            fn call(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
                x.$method(self.0.pool_size, self.0.strides, self.0.padding)
            }

            fn keras_config(&self) -> Option<serde_json::Value> {
                Some(super::keras_entry(self))
            }
        }

        layer_module!($t, |l| &l.0.name, |_l| Vec::new());
    };
}

pool_layer!(MaxPooling2D, "max_pooling2d", max_pool2d);
pool_layer!(AveragePooling2D, "average_pooling2d", avg_pool2d);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::{Dropout, Flatten, Sequential};
    use crate::Module;
    use ferroflow_tensor_core::random::Normal;

    #[test]
    fn shapes_parameter_counts_and_training_behaviour() {
        let mut m = Sequential::new();
        m.add(
            Conv2D::new(4, [3, 3])
                .with_padding(Padding::Same)
                .with_activation(Activation::Relu)
                .with_seed(1),
        );
        m.add(MaxPooling2D::new([2, 2]));
        m.add(AveragePooling2D::new([2, 2]));
        m.add(Flatten::new());
        m.add(Dropout::new(0.5).unwrap().with_seed(3));
        m.add(crate::Dense::new(3).with_seed(2));
        let x = ferroflow_tensor_core::random::normal(&[2, 8, 8, 2], Normal::default().seed(4)).unwrap();
        let y = m.call(&x, Mode::Inference).unwrap();
        assert_eq!(y.dims(), &[2, 3]);
        assert_eq!(m.count_params(), (3 * 3 * 2 * 4 + 4) + (2 * 2 * 4 * 3 + 3));
        let y2 = m.call(&x, Mode::Inference).unwrap();
        assert_eq!(
            y.to_vec::<f32>().unwrap(),
            y2.to_vec::<f32>().unwrap(),
            "inference is deterministic"
        );
        let d = Dropout::new(0.5).unwrap().with_seed(9);
        let ones = Tensor::ones(&[1000], DType::F32).unwrap();
        let dropped = d.call(&ones, Mode::Training).unwrap().to_vec::<f32>().unwrap();
        let kept = dropped.iter().filter(|&&v| v == 2.0).count();
        assert!(
            dropped.iter().all(|&v| v == 0.0 || v == 2.0) && (400..600).contains(&kept),
            "{kept}"
        );
        assert_eq!(
            d.call(&ones, Mode::Inference).unwrap().to_vec::<f32>().unwrap(),
            vec![1.0; 1000]
        );
        assert!(Dropout::new(1.0).is_err());
        let paths: Vec<String> = m.variables_by_path_in_order().into_iter().map(|(p, _)| p).collect();
        assert_eq!(
            paths,
            vec!["layers/0/bias", "layers/0/kernel", "layers/5/bias", "layers/5/kernel"]
        );
        assert!(Conv2D::new(1, [2, 2])
            .call(&Tensor::ones(&[2, 2], DType::F32).unwrap(), Mode::Inference)
            .is_err());
    }
}
