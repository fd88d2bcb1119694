//! # ferroflow-nn
//!
//! `tf.Module`-style variable tracking ([`Module`], `#[derive(Module)]`), Keras-style
//! layers and initializers, and the Keras training API: [`Model`] with `compile`, `fit`,
//! `evaluate` and `predict`, [`metrics`] and [`callbacks`].
//!
//! ```
//! use ferroflow_nn::{Attr, Module};
//! use ferroflow_tensor_core::{Tensor, Variable};
//!
//! struct Scale { w: Variable }
//! impl Module for Scale {
//!     fn name(&self) -> &str { "scale" }
//!     fn attributes(&self) -> Vec<(String, Attr<'_>)> { vec![("w".into(), Attr::Variable(&self.w))] }
//!     fn as_dyn(&self) -> &dyn Module { self }
//! }
//! let s = Scale { w: Variable::new("w", Tensor::scalar(2.0f32))? };
//! assert_eq!(s.variables_by_path_in_order()[0].0, "w");
//! # Ok::<(), ferroflow_tensor_core::Error>(())
//! ```
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

pub mod callbacks;
pub mod initializers;
pub mod layers;
pub mod metrics;
pub mod model;
pub mod module;

pub use ferroflow_nn_derive::Module;
pub use ferroflow_tensor_core::{Tensor, Variable};
pub use layers::{
    Activation, AveragePooling2D, BatchNormalization, Conv2D, Dense, Dropout, Embedding, Flatten,
    GlobalAveragePooling2D, GlobalMaxPooling2D, Layer, LayerNormalization, MaxPooling2D, Mode, Rescaling, Reshape,
    Sequential,
};
pub use model::{
    ClassWeight, CompileOptions, EvaluateOptions, FitOptions, FitParams, History, Inputs, Logs, LossSpec, MetricSpec,
    Model, PredictOptions, Validation,
};
pub use module::{snake_case, valid_name, Attr, Module, Track};

#[doc(hidden)]
pub mod __private {
    pub use ferroflow_tensor_core::Trackable;
}
