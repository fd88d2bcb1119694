//! Op families. Each file holds, for its ops, the shape inference, the eager kernel (or the
//! composite) and the `Tensor` methods users call; `autodiff/src/grads/` mirrors the names.

pub mod conv;
pub mod linalg;
pub mod math;
pub mod nn;
pub mod reduce;
pub mod shape;
pub mod state;

use crate::{DType, Error, Result, TensorSpec};

/// The dtype every input shares, or an error naming `op` and the dtypes.
pub(crate) fn same_dtype(op: &'static str, x: &[TensorSpec]) -> Result<DType> {
    let Some(first) = x.first() else {
        return Err(Error::invalid(op, "needs at least one input"));
    };
    if x.iter().any(|s| s.dtype != first.dtype) {
        let ds: Vec<DType> = x.iter().map(|s| s.dtype).collect();
        return Err(Error::dtypes(op, &ds, "inputs must have the same dtype"));
    }
    Ok(first.dtype)
}
