//! The CUDA backend (feature `cuda`): tensors in GPU memory ([`crate::Device::Cuda`]) and
//! the kernels that [`crate::dispatch`] runs on them.
//!
//! Built on `cudarc` with the CUDA libraries loaded at run time, so the crate builds, lints
//! and tests on machines without CUDA; there [`is_available`] is `false` and asking for a
//! GPU is an error, never a panic. At run time the driver (`libcuda`), NVRTC and cuBLAS of
//! CUDA 13 must be on the library path (`/usr/local/cuda/lib64`).
//!
//! * one context, stream and cuBLAS handle per GPU, made on first use;
//! * memory from the driver's stream-ordered pool, which keeps freed blocks for reuse; freed
//!   buffers up to 16 MiB are first kept by ferroflow itself, by dtype and length, so an
//!   eager op's output usually allocates nothing from the driver ([`empty_cache`] hands them back, and
//!   `FERROFLOW_CUDA_CACHE=0` turns this off); ferroflow counts the bytes in use, their
//!   peak and the bytes kept ([`memory_stats`]);
//! * kernels: cuBLAS for `matmul` (batched too); NVRTC-generated kernels (one per op and
//!   dtype, compiled once per process) for elementwise math, casts, comparisons, logical
//!   ops and `where` with broadcasting, every reduction and arg-reduction, `softmax`,
//!   `log_softmax` and the softmax cross-entropies, and the shape ops that move elements
//!   (`transpose`, `broadcast_to`, `tile`, `strided_slice` and its gradient, `pad`,
//!   `concat`, `stack`), `gather`, `one_hot`, convolutions and pooling with their
//!   gradients, and one kernel per fused elementwise program of a graph (generated and
//!   compiled on first use), `cumsum` / `cumprod` and `unsorted_segment_sum`; reshapes
//!   without copies. Every other op (custom ops) runs its CPU kernel on host copies
//!   ([`host_fallbacks`] counts them), so
//!   results are always right and the set of GPU kernels can grow without changing any
//!   caller.
//! * every kernel launch is planned as data (`launch::Launch`) before it runs, and the
//!   tests run each plan on the CPU through a small CUDA emulator and compile every
//!   generated source with NVRTC where it is installed: the kernels are checked against the
//!   CPU kernels on machines without a GPU.
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

mod accumulate;
pub(crate) mod backend;
mod blas;
mod buffer;
pub(crate) mod capture;
mod conv_gemm;
mod elementwise;
#[cfg(test)]
mod emulate;
mod free_list;
mod fused;
#[cfg(test)]
mod fused_tests;
mod index;
mod kernel;
#[cfg(test)]
mod kernel_tests;
mod launch;
mod layout;
mod reduce;
mod run;
mod runtime;
mod softmax;
mod window;

pub(crate) use buffer::CudaBuffer;
pub use run::host_fallbacks;
pub use runtime::{device_count, empty_cache, is_available, memory_stats, reset_peak_memory, synchronize, MemoryStats};
