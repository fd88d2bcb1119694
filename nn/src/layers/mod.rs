//! Keras-style layers: each is a [`Module`] with a `call` that takes the [`Mode`] (training
//! or inference) where behaviour differs.

/// `Module`, `Track` and `Trackable` for a layer type: its name and its tracked attributes,
/// each an expression over the layer (bound to the given identifier).
///
/// `layer_module!(Dense, |l| &l.name, |l| kernel_and_bias(&l.kernel, &l.bias));`
macro_rules! layer_module {
    ($t:ty, |$n:ident| $name:expr, |$a:ident| $attrs:expr $(, $extra:item)*) => {
        impl $crate::Module for $t {
            fn name(&self) -> &str {
                let $n = self;
                $name
            }
            fn attributes(&self) -> Vec<(String, $crate::Attr<'_>)> {
                let $a = self;
                $attrs
            }
            fn as_dyn(&self) -> &dyn $crate::Module {
                self
            }
            $($extra)*
        }

        impl $crate::Track for $t {
            fn track(&self) -> Option<$crate::Attr<'_>> {
                Some($crate::Attr::Module(self))
            }
        }

        $crate::trackable_module!($t);
    };
}

mod activation;
mod conv;
mod dense;
mod dropout;
mod embedding;
mod flatten;
mod global_pooling;
mod normalization;
mod rescaling;
mod reshape;
mod sequential;
mod unsupported;

pub use activation::Activation;
pub use conv::{AveragePooling2D, Conv2D, MaxPooling2D};
pub use dense::Dense;
pub use dropout::Dropout;
pub use embedding::Embedding;
pub use flatten::Flatten;
pub use global_pooling::{GlobalAveragePooling2D, GlobalMaxPooling2D};
pub use normalization::{BatchNormalization, LayerNormalization};
pub use rescaling::Rescaling;
pub use reshape::Reshape;
pub use sequential::Sequential;

use crate::model::LayerConfig;
use crate::Module;
use ferroflow_tensor_core::{DType, Result, Tensor, Variable};
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Mutex;

/// Whether a layer runs for training or for inference (Keras' `training` argument): dropout
/// drops and batch normalization uses batch statistics only while training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// `training=True`.
    Training,
    /// `training=False` (what a plain call means).
    #[default]
    Inference,
}

/// A layer: a module applied to a tensor.
///
/// ```
/// use ferroflow_nn::{Dense, Layer, Mode};
/// use ferroflow_tensor_core::{DType, Tensor};
/// let d = Dense::new(2).with_input_dim(3)?;
/// let y = d.call(&Tensor::ones(&[4, 3], DType::F32)?, Mode::Inference)?;
/// assert_eq!(y.dims(), &[4, 2]);
/// assert_eq!(d.count_params(), 8);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
pub trait Layer: Module {
    /// Applies the layer in `mode`.
    fn call(&self, x: &Tensor, mode: Mode) -> Result<Tensor>;

    /// Number of scalar parameters (all variables).
    fn count_params(&self) -> usize {
        self.variables().iter().map(|v| v.shape().num_elements()).sum()
    }

    /// The layer's Keras serialisation (`{"module", "class_name", "config",
    /// "registered_name"}`), for `to_json`; `None` for layers without one (custom modules).
    fn keras_config(&self) -> Option<serde_json::Value> {
        None
    }

    /// The layers inside a container layer ([`Sequential`]), for summaries.
    fn sublayers(&self) -> Option<&[Box<dyn Layer>]> {
        None
    }

    /// The switch [`Layer::set_trainable`] sets, for layers with weights (the built-in ones,
    /// containers and [`Model::from_module`](crate::Model::from_module)'s); `None` for layers
    /// without weights, which report themselves trainable. A custom layer that makes its
    /// weights on first use holds a `Cell<bool>` here and calls [`freeze_new`] on what it
    /// makes, so freezing before building holds.
    fn trainable_switch(&self) -> Option<&Cell<bool>> {
        None
    }

    /// Whether the layer's weights are trained (Keras' `layer.trainable`).
    fn trainable(&self) -> bool {
        self.trainable_switch().is_none_or(Cell::get)
    }

    /// Freezes the layer's weights, or unfreezes them (Keras' `layer.trainable = False`):
    /// frozen weights are left out of [`Module::trainable_variables`], so `fit` computes no
    /// gradient for them and the optimizer leaves them as they are, and a frozen
    /// [`BatchNormalization`] uses its moving statistics while training (Keras 3's rule for
    /// fine-tuning). A container freezes every layer inside it and, while frozen, trains
    /// none of them when it is the model trained, even one set trainable again on its own
    /// (Keras' rule); weights built later are frozen when they are made. The next `fit` or `train_on_batch` of a compiled model sees
    /// the change (Keras asks for `compile()` again; it is not needed here); a change made
    /// during a `fit`, from a callback, takes effect at the next one.
    ///
    /// ```
    /// use ferroflow_nn::{Dense, Layer, Module};
    /// let d = Dense::new(2).with_input_dim(3)?;
    /// d.set_trainable(false);
    /// assert!(d.trainable_variables().is_empty());
    /// assert_eq!(d.variables().len(), 2);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    fn set_trainable(&self, trainable: bool) {
        if let Some(switch) = self.trainable_switch() {
            switch.set(trainable);
        }
        for child in self.sublayers().into_iter().flatten() {
            child.set_trainable(trainable);
        }
        for v in self.variables() {
            v.set_frozen(!trainable);
        }
    }
}

/// Freezes `vars`, just made by `layer`, if the layer was set not trainable before it built:
/// what a layer that makes its weights on first use calls after making them (see
/// [`Layer::trainable_switch`]).
pub fn freeze_new<'a>(layer: &dyn Layer, vars: impl IntoIterator<Item = &'a Variable>) {
    if !layer.trainable() {
        for v in vars {
            v.set_frozen(true);
        }
    }
}

/// [`Layer::keras_config`] for a layer with a [`LayerConfig`](crate::model::LayerConfig).
pub(crate) fn keras_entry<L: crate::model::LayerConfig + Layer>(layer: &L) -> serde_json::Value {
    let mut config = layer.config();
    config.insert("trainable".into(), Layer::trainable(layer).into());
    crate::model::layer_entry(LayerConfig::class_name(layer), config, layer.build_input_shape())
}

/// The fields every built-in layer's config starts with: name, trainable, dtype policy.
pub(crate) fn base_config(name: &str, dtype: DType) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    m.insert("name".into(), name.into());
    m.insert("trainable".into(), true.into());
    m.insert("dtype".into(), crate::model::dtype_policy(dtype));
    m
}

/// The `name` of a config, or a fresh unique one for `base`.
pub(crate) fn config_name(config: &serde_json::Value, base: &str) -> String {
    crate::model::get_str(config, "name").map_or_else(|| unique_name(base), str::to_string)
}

/// The tracked attributes of a layer with a (lazily built) kernel and bias.
fn kernel_and_bias<'a>(
    kernel: &'a std::cell::OnceCell<ferroflow_tensor_core::Variable>,
    bias: &'a std::cell::OnceCell<ferroflow_tensor_core::Variable>,
) -> Vec<(String, crate::Attr<'a>)> {
    use crate::Track;
    let mut out = Vec::new();
    if let Some(k) = kernel.track() {
        out.push(("kernel".to_string(), k));
    }
    if let Some(b) = bias.track() {
        out.push(("bias".to_string(), b));
    }
    out
}

/// Keras' autocast for a layer with float weights: a floating input is computed in the
/// layer's dtype (Keras casts floating inputs to the layer's compute dtype when it is called,
/// so float64 data meets float32 weights as float32), and an integer input is promoted to it
/// (as Keras' `matmul` and batch normalization promote integers to float32).
pub(crate) fn autocast(x: &Tensor, dtype: DType) -> Result<Tensor> {
    if dtype.is_float() && x.dtype() != dtype {
        x.cast(dtype)
    } else {
        Ok(x.clone())
    }
}

/// Names made unique within one model, as Keras needs them (it refuses a model whose
/// layers share a name): a repeated name gets Keras' `_1`, `_2`, ... suffix, skipping names
/// already taken. Layers are named uniquely per process when made, so this renames only
/// what that leaves repeated: `Activation` layers (all named `activation`) and names given
/// twice with `with_name`. It renames in the written file and summary only.
pub(crate) fn unique_within<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let names: Vec<&str> = names.into_iter().collect();
    let mut taken: std::collections::HashSet<String> = names.iter().map(|n| n.to_string()).collect();
    let mut seen = std::collections::HashSet::new();
    names
        .iter()
        .map(|&name| {
            if seen.insert(name) {
                return name.to_string();
            }
            let fresh = (1..)
                .map(|i| format!("{name}_{i}"))
                .find(|candidate| !taken.contains(candidate))
                .unwrap_or_else(|| name.to_string());
            taken.insert(fresh.clone());
            fresh
        })
        .collect()
}

static NAMES: Mutex<Option<HashMap<String, usize>>> = Mutex::new(None);

/// Keras' default layer names: `dense`, then `dense_1`, `dense_2`, ... per process.
pub fn unique_name(base: &str) -> String {
    let mut names = NAMES.lock().unwrap_or_else(|p| p.into_inner());
    let n = names
        .get_or_insert_with(HashMap::new)
        .entry(base.to_string())
        .or_insert(0);
    let name = if *n == 0 {
        base.to_string()
    } else {
        format!("{base}_{n}")
    };
    *n += 1;
    name
}

#[cfg(test)]
mod autocast_tests {
    use crate::{BatchNormalization, Conv2D, Dense, Layer, LayerNormalization, Mode};
    use ferroflow_autodiff::GradientTape;
    use ferroflow_tensor_core::{Axes, DType, Tensor};

    #[test]
    fn float64_inputs_are_computed_in_the_layers_float32_as_keras_autocasts() {
        let x = Tensor::new([[1.0f64, -2.0, 0.5], [0.25, 3.0, -1.0]]);
        let dense = Dense::new(2).with_seed(1);
        let y = dense.call(&x, Mode::Inference).unwrap();
        assert_eq!(y.dtype(), DType::F32);
        assert_eq!(dense.kernel().unwrap().value().dtype(), DType::F32);
        let want = dense.call(&x.cast(DType::F32).unwrap(), Mode::Inference).unwrap();
        assert_eq!(y.to_vec::<f32>().unwrap(), want.to_vec::<f32>().unwrap());
        // The gradient reaches the float64 input in its own dtype.
        let tape = GradientTape::new();
        tape.watch(&x);
        let loss = dense.call(&x, Mode::Training).unwrap().reduce_sum(Axes::All).unwrap();
        let dx = tape.gradient(&loss, &x).unwrap();
        assert_eq!(dx.dtype(), DType::F64);
        for layer in [
            Box::new(BatchNormalization::new()) as Box<dyn Layer>,
            Box::new(LayerNormalization::new()),
        ] {
            assert_eq!(layer.call(&x, Mode::Training).unwrap().dtype(), DType::F32);
        }
        let images = Tensor::ones(&[1, 3, 3, 2], DType::F64).unwrap();
        let conv = Conv2D::new(2, [2, 2]).with_seed(2);
        assert_eq!(conv.call(&images, Mode::Inference).unwrap().dtype(), DType::F32);
        // Integers are promoted, as Keras' matmul promotes them.
        let ints = Tensor::new([[1i32, 2, 3]]);
        assert_eq!(dense.call(&ints, Mode::Inference).unwrap().dtype(), DType::F32);
        // A layer made for float64 keeps float64 (and float32 inputs are cast up).
        let wide = Dense::new(2).with_dtype(DType::F64).with_seed(3);
        let y = wide.call(&x.cast(DType::F32).unwrap(), Mode::Inference).unwrap();
        assert_eq!(y.dtype(), DType::F64);
    }
}

#[cfg(test)]
mod name_tests {
    use super::unique_within;

    #[test]
    fn repeated_names_get_keras_suffixes_that_collide_with_nothing() {
        assert_eq!(
            unique_within(["dense", "dropout", "dropout_1", "dropout", "dropout", "dense_2"]),
            vec!["dense", "dropout", "dropout_1", "dropout_2", "dropout_3", "dense_2"]
        );
    }
}
