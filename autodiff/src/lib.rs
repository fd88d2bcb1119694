//! # ferroflow-autodiff
//!
//! Reverse-mode automatic differentiation for ferroflow, in the shape TensorFlow users know
//! from `tf.GradientTape`. A tape is an [`Observer`](ferroflow_tensor_core::Observer)
//! registered with tensor-core's single [`dispatch`](ferroflow_tensor_core::dispatch) point:
//! it sees every op while it is active, keeps the ones that touch watched values, and walks
//! them backwards through the gradient functions in `grads/` (one file per op family, named
//! like tensor-core's `ops/`).
//!
//! ```
//! use ferroflow_autodiff::GradientTape;
//! use ferroflow_tensor_core::{Tensor, Variable};
//!
//! let w = Variable::new("w", Tensor::new([[1.0f32], [2.0]]))?;
//! let x = Tensor::new([[3.0f32, 4.0]]);
//! let tape = GradientTape::new();
//! let y = x.matmul(&w.read()?)?.sigmoid()?;            // trainable reads are watched
//! let dw = tape.gradient(&y, &w)?;
//! let s = 1.0 / (1.0 + (-11.0f32).exp());
//! let want = [3.0 * s * (1.0 - s), 4.0 * s * (1.0 - s)];
//! for (g, w) in dw.to_vec::<f32>()?.iter().zip(want) {
//!     assert!((g - w).abs() < 1e-6);
//! }
//! # Ok::<(), ferroflow_tensor_core::Error>(())
//! ```
//!
//! ## A user-defined op
//!
//! An op of your own plugs into the same vocabulary through
//! [`CustomOp`](ferroflow_tensor_core::CustomOp): name, shape inference, kernel and gradient.
//! It then runs eagerly, is recorded by tapes and can be checked with [`compute_gradient`].
//!
//! ```
//! use ferroflow_autodiff::{compute_gradient, GradientTape};
//! use ferroflow_tensor_core::{dispatch1, CustomOp, Data, Op, Result, Tensor, TensorSpec};
//! use std::sync::Arc;
//!
//! /// cube(x) = x³, with gradient 3x²·g.
//! #[derive(Debug)]
//! struct Cube;
//!
//! impl CustomOp for Cube {
//!     fn name(&self) -> &'static str { "cube" }
//!     fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
//!         Ok(vec![inputs[0].clone()])
//!     }
//!     fn compute(&self, inputs: &[&Data]) -> Result<Vec<Data>> {
//!         let x = Tensor::from_data(inputs[0].clone());
//!         Ok(vec![x.mul(&x)?.mul(&x)?.data()?.clone()])
//!     }
//!     fn gradient(&self, x: &[Tensor], _y: &[Tensor], g: &[Option<Tensor>]) -> Result<Vec<Option<Tensor>>> {
//!         let Some(g) = &g[0] else { return Ok(vec![None]) };
//!         Ok(vec![Some(g.mul(&x[0].square()?)?.mul(&x[0].scalar_like(3.0))?)])
//!     }
//! }
//!
//! let cube = |x: &Tensor| dispatch1(Op::Custom(Arc::new(Cube)), &[x]);
//! let x = Tensor::new([1.0f64, -2.0]);
//! let tape = GradientTape::new();
//! tape.watch(&x);
//! let y = cube(&x)?;
//! assert_eq!(tape.gradient(&y, &x)?.to_vec::<f64>()?, vec![3.0, 12.0]);
//! let check = compute_gradient(|a| cube(a[0]), &[&x], 1e-6)?;
//! assert!(check.max_error() < 1e-6);
//! # Ok::<(), ferroflow_tensor_core::Error>(())
//! ```
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod check;
mod functional;
pub mod grads;
mod tape;

pub use check::{compute_gradient, GradientCheck};
pub use ferroflow_tensor_core::Tensor;
pub use functional::{grad, value_and_grad};
pub use grads::unbroadcast;
pub use tape::{GradientOptions, GradientTape, Source, Sources, TapeOptions, UnconnectedGradients};
