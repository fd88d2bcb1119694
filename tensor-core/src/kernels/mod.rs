//! Kernels shared by several ops: the parallel elementwise loops, the reduction loop, the
//! blocked parallel matmul and the convolution / pooling loops.

pub(crate) mod broadcast;
pub mod conv;
pub mod elementwise;
pub(crate) mod gemm;
mod helpers;
pub mod matmul;
mod pool_warmth;
pub mod reduce;
pub mod simd;
pub mod tiny_matmul;
pub(crate) mod warm_split;
