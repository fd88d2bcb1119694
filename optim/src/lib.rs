//! # ferroflow-optim
//!
//! Optimizers (SGD with momentum and Nesterov, Adam with AMSGrad, AdamW, RMSprop, Adagrad;
//! decoupled weight decay and gradient clipping for any of them),
//! learning-rate schedules and Keras-style losses for ferroflow, with Keras 3's numbers.
//! Every update is written with tensor ops and variable assigns, so a training step runs
//! eagerly or traces into one graph. An optimizer's state (`iterations` and its slot
//! variables) is [`Trackable`](ferroflow_tensor_core::Trackable), so checkpoints save it.
//!
//! ```
//! use ferroflow_autodiff::GradientTape;
//! use ferroflow_optim::{losses, Optimizer, Sgd};
//! use ferroflow_tensor_core::{Tensor, Variable};
//!
//! let w = Variable::new("w", Tensor::new([[0.0f64], [0.0]]))?;
//! let x = Tensor::new([[1.0f64, 2.0], [3.0, 4.0]]);
//! let y = Tensor::new([[1.0f64], [2.0]]);
//! let opt = Sgd::new(0.05)?.with_momentum(0.9)?;
//! let mut loss = f64::INFINITY;
//! for _ in 0..100 {
//!     let tape = GradientTape::new();
//!     let l = losses::mean_squared_error(&y, &x.matmul(&w.read()?)?)?;
//!     let dw = tape.gradient(&l, &w)?;
//!     opt.apply_gradients([(dw, &w)])?;
//!     loss = l.to_scalar::<f64>()?;
//! }
//! assert!(loss < 1e-3, "{loss}");
//! assert_eq!(opt.iterations()?, 100);
//! # Ok::<(), ferroflow_tensor_core::Error>(())
//! ```
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod adagrad;
mod adam;
pub mod keras_logits;
pub mod losses;
mod optimizer;
mod rmsprop;
pub mod schedules;
mod sgd;

pub use adagrad::Adagrad;
pub use adam::Adam;
pub use ferroflow_tensor_core::Variable;
pub use losses::{Loss, Predictions};
pub use optimizer::{optimizer_variables, Clipping, LearningRate, Optimizer, OptimizerState};
pub use rmsprop::RmsProp;
pub use schedules::{CosineDecay, ExponentialDecay, LearningRateSchedule, PiecewiseConstantDecay};
pub use sgd::Sgd;
