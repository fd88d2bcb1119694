//! The CUDA backend (feature `cuda`): tensors in GPU memory ([`crate::Device::Cuda`]) and
//! the kernels that [`crate::dispatch`] runs on them.
//!
//! Built on `cudarc` with the CUDA libraries loaded at run time, so the crate builds, lints
//! and tests on machines without CUDA; there [`is_available`] is `false` and asking for a
//! GPU is an error, never a panic. At run time the driver (`libcuda`), NVRTC and cuBLAS of
//! CUDA 13 must be on the library path (`/usr/local/cuda/lib64`).
//!
//! * one context, stream and cuBLAS handle per GPU, made on first use;
//! * memory from the driver's stream-ordered pool, which keeps freed blocks for reuse, with
//!   ferroflow's own count of bytes in use and their peak ([`memory_stats`]);
//! * kernels: cuBLAS for `matmul` (batched too), NVRTC-generated elementwise kernels (one
//!   per op and dtype, compiled once per process), `reduce_sum` / `reduce_mean`, and
//!   reshapes without copies. Every other
//!   op runs its CPU kernel on host copies ([`host_fallbacks`] counts them), so results are
//!   always right and the set of GPU kernels can grow without changing any caller.
//!
//! ```
//! use ferroflow_tensor_core::{cuda, Device, Tensor};
//! if cuda::is_available(0) {
//!     let x = Tensor::new([[1.0f32, 2.0], [3.0, 4.0]]).to(Device::Cuda(0))?;
//!     let y = x.matmul(&x)?.sigmoid()?;
//!     assert_eq!(y.device(), Device::Cuda(0));
//!     assert_eq!(y.to(Device::Cpu)?.dims(), &[2, 2]);
//! }
//! # Ok::<(), ferroflow_tensor_core::Error>(())
//! ```

pub(crate) mod backend;
mod blas;
mod buffer;
mod elementwise;
mod reduce;
mod run;
mod runtime;

pub(crate) use buffer::CudaBuffer;
pub use run::host_fallbacks;
pub use runtime::{device_count, is_available, memory_stats, reset_peak_memory, synchronize, MemoryStats};
