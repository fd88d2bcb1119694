//! `GlobalAveragePooling2D` and `GlobalMaxPooling2D`: one value per channel, over the
//! spatial axes of an NHWC input.

use super::{config_name, unique_name, Layer, Mode};
use ferroflow_tensor_core::{Axes, DType, Error, Result, Tensor};
use serde_json::{Map, Value};

/// What the two layers share: their name and Keras' `keepdims`.
#[derive(Debug, Clone)]
struct GlobalPool {
    keepdims: bool,
    name: String,
}

/// `keras.layers.GlobalAveragePooling2D`: the mean over height and width, `[n, h, w, c]` →
/// `[n, c]` (or `[n, 1, 1, c]` with `keepdims`); integers average to float32, as in Keras.
///
/// ```
/// use ferroflow_nn::{GlobalAveragePooling2D, Layer, Mode};
/// use ferroflow_tensor_core::Tensor;
/// let x = Tensor::new([1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]).reshape(&[1, 2, 2, 2])?;
/// let y = GlobalAveragePooling2D::new().call(&x, Mode::Inference)?;
/// assert_eq!(y.to_vec::<f32>()?, vec![4.0, 5.0]);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct GlobalAveragePooling2D(GlobalPool);

/// `keras.layers.GlobalMaxPooling2D`: the maximum over height and width, `[n, h, w, c]` →
/// `[n, c]` (or `[n, 1, 1, c]` with `keepdims`).
///
/// ```
/// use ferroflow_nn::{GlobalMaxPooling2D, Layer, Mode};
/// use ferroflow_tensor_core::Tensor;
/// let x = Tensor::new([1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]).reshape(&[1, 2, 2, 2])?;
/// let y = GlobalMaxPooling2D::new().with_keepdims(true).call(&x, Mode::Inference)?;
/// assert_eq!((y.dims(), y.to_vec::<f32>()?), (&[1, 1, 1, 2][..], vec![7.0, 8.0]));
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct GlobalMaxPooling2D(GlobalPool);

macro_rules! global_pool_layer {
    ($t:ident, $name:literal, $reduce:ident, $float_only:literal) => {
        impl $t {
            /// The layer without `keepdims`, named as Keras names it (`$name`, `$name_1`, ...).
            pub fn new() -> Self {
                $t(GlobalPool {
                    keepdims: false,
                    name: unique_name($name),
                })
            }

            /// Keeps the pooled axes with size 1 (Keras' `keepdims`).
            pub fn with_keepdims(mut self, keepdims: bool) -> Self {
                self.0.keepdims = keepdims;
                self
            }

            /// Sets the name.
            pub fn with_name(mut self, name: impl Into<String>) -> Self {
                self.0.name = name.into();
                self
            }

            /// The layer from Keras' config (`keepdims`; channels last).
            pub fn from_config(config: &Value) -> Result<Self> {
                use super::unsupported::{refuse_unsupported, CHANNELS_LAST, COMMON};
                refuse_unsupported(stringify!($t), config, &[COMMON, CHANNELS_LAST])?;
                let keepdims = match config.get("keepdims") {
                    None | Some(Value::Null) => false,
                    Some(Value::Bool(b)) => *b,
                    Some(other) => {
                        return Err(Error::invalid(
                            "from_json",
                            format!(
                                "{} layer: keepdims must be true or false, got {other}",
                                stringify!($t)
                            ),
                        ))
                    }
                };
                Ok($t(GlobalPool {
                    keepdims,
                    name: config_name(config, $name),
                }))
            }
        }

        impl Default for $t {
            fn default() -> Self {
                $t::new()
            }
        }

        impl crate::model::LayerConfig for $t {
            fn class_name(&self) -> &'static str {
                stringify!($t)
            }

            fn config(&self) -> Map<String, Value> {
                let mut m = super::base_config(&self.0.name, DType::F32);
                m.insert("data_format".into(), "channels_last".into());
                m.insert("keepdims".into(), self.0.keepdims.into());
                m
            }
        }

        impl Layer for $t {
            fn keras_config(&self) -> Option<Value> {
                Some(super::keras_entry(self))
            }

            fn call(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
                if x.rank() != 4 {
                    return Err(Error::shapes(
                        stringify!($t),
                        &[&x.shape()],
                        "needs a rank-4 input [batch, height, width, channels]",
                    ));
                }
                // Keras' mean of integers is float32; its maximum keeps the input's dtype.
                let x = if $float_only && !x.dtype().is_float() {
                    x.cast(DType::F32)?
                } else {
                    x.clone()
                };
                let axes = Axes::from([1i64, 2].as_slice());
                if self.0.keepdims {
                    x.$reduce(axes.keepdims())
                } else {
                    x.$reduce(axes)
                }
            }
        }

        layer_module!($t, |l| &l.0.name, |_l| Vec::new());
    };
}

global_pool_layer!(GlobalAveragePooling2D, "global_average_pooling2d", reduce_mean, true);
global_pool_layer!(GlobalMaxPooling2D, "global_max_pooling2d", reduce_max, false);
