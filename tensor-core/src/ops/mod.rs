//! Op families. Each file holds, for its ops, the shape inference, the eager kernel (or the
//! composite) and the `Tensor` methods users call; `autodiff/src/grads/` mirrors the names.

pub mod conv;
pub mod linalg;
pub mod math;
pub mod nn;
pub mod reduce;
pub mod shape;
pub mod state;
