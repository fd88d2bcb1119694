//! A kernel launch described apart from the machine that performs it: which generated
//! [`Kernel`], its arguments in the order of its CUDA parameter list, the outputs it fills
//! and its grid. [`Launch::run`] performs it on a GPU; the tests perform the very same
//! description on the CPU (`super::emulate`), so the kernels and the code that plans them
//! are checked on machines without a GPU.

use super::buffer::{driver_error, CudaBuffer};
use super::elementwise::Geometry;
use super::kernel::Kernel;
use super::layout::{ConcatGeometry, Layout};
use super::reduce::{Lines, Reduction};
use super::runtime::Runtime;
use super::window::Window;
use crate::{DType, Error, Result};
use cudarc::driver::{LaunchConfig, PushKernelArg};
use smallvec::SmallVec;

/// One kernel argument.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Arg {
    /// The memory of the op's input `i` (`const T*`).
    Input(usize),
    /// The memory of output `j` of the launch (`T*`).
    Output(usize),
    /// `unsigned long long`.
    U64(u64),
    /// `float`.
    F32(f32),
    /// `double`.
    F64(f64),
    /// `int`.
    I32(i32),
    /// `long long`.
    I64(i64),
    /// `unsigned char` (a bool).
    U8(u8),
    /// A broadcast geometry (`struct Geometry`).
    Geometry(Geometry),
    /// The axes of a reduction (`struct Reduction`).
    Reduction(Reduction),
    /// The lines of a softmax or arg-reduction (`struct Lines`).
    Lines(Lines),
    /// An index remapping (`struct Layout`).
    Layout(Layout),
    /// Where each input of a concatenation goes (`struct ConcatGeometry`).
    Concat(ConcatGeometry),
    /// A convolution's or pool's geometry (`struct Window`).
    Window(Window),
}

/// One launch of one kernel.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    /// What to compile (once per process).
    pub(crate) kernel: Kernel,
    /// Its arguments, in order.
    pub(crate) args: SmallVec<[Arg; 6]>,
    /// The dtype and element count of each output.
    pub(crate) outputs: SmallVec<[(DType, usize); 1]>,
    /// Blocks; 0 when there is nothing to compute (the outputs are empty).
    pub(crate) grid: u32,
    /// Threads per block.
    pub(crate) block: u32,
}

/// Threads per block of every generated kernel (a power of two: the block trees halve it).
pub(crate) const THREADS: u32 = 256;

/// Most blocks a grid-stride launch asks for.
const MAX_BLOCKS: usize = 65_535 * 8;

impl Launch {
    /// A launch of `kernel` with one output, covering `n` elements with grid-stride loops.
    pub(crate) fn elementwise(kernel: Kernel, args: SmallVec<[Arg; 6]>, out: (DType, usize)) -> Launch {
        let blocks = out.1.div_ceil(THREADS as usize).min(MAX_BLOCKS);
        Launch {
            kernel,
            args,
            outputs: smallvec::smallvec![out],
            grid: blocks as u32,
            block: THREADS,
        }
    }

    /// A launch of `kernel` with one block per line (each block loops over further lines
    /// when there are more than a grid holds).
    pub(crate) fn per_line(kernel: Kernel, args: SmallVec<[Arg; 6]>, out: (DType, usize), lines: usize) -> Launch {
        Launch {
            kernel,
            args,
            outputs: smallvec::smallvec![out],
            grid: lines.min(65_535) as u32,
            block: THREADS,
        }
    }

    /// A launch of `kernel` with one thread per line (for lines each walked serially, as a
    /// scan's are); `out` counts elements, not lines.
    pub(crate) fn thread_per_line(
        kernel: Kernel,
        args: SmallVec<[Arg; 6]>,
        out: (DType, usize),
        lines: usize,
    ) -> Launch {
        Launch {
            kernel,
            args,
            outputs: smallvec::smallvec![out],
            grid: lines.div_ceil(THREADS as usize).min(65_535) as u32,
            block: THREADS,
        }
    }

    /// Performs the launch on `rt`'s GPU, on its stream, reading `inputs`; returns the
    /// outputs. `op` names the op in errors.
    pub(crate) fn run(
        &self,
        rt: &Runtime,
        op: &'static str,
        inputs: &[&CudaBuffer],
    ) -> Result<SmallVec<[CudaBuffer; 1]>> {
        let f = rt
            .kernel(self.kernel.key(), || (self.kernel.name(), self.kernel.source()))
            .map_err(|e| driver_error(op, rt, e))?;
        let mut outputs: SmallVec<[CudaBuffer; 1]> = self
            .outputs
            .iter()
            .map(|&(dtype, len)| CudaBuffer::uninit(rt, op, dtype, len))
            .collect::<Result<_>>()?;
        if self.grid == 0 {
            return Ok(outputs);
        }
        let misplanned = |what: String| Error::Other {
            op,
            msg: format!("CUDA launch of {}: {what}", self.kernel.name()),
        };
        {
            let mut slots: SmallVec<[Option<&mut CudaBuffer>; 1]> = outputs.iter_mut().map(Some).collect();
            let mut l = rt.launch_stream().launch_builder(&f);
            for arg in &self.args {
                match arg {
                    Arg::Input(i) => inputs
                        .get(*i)
                        .ok_or_else(|| misplanned(format!("no input {i}")))?
                        .arg(&mut l),
                    Arg::Output(j) => slots
                        .get_mut(*j)
                        .and_then(Option::take)
                        .ok_or_else(|| misplanned(format!("output {j} missing or passed twice")))?
                        .arg_mut(&mut l),
                    Arg::U64(v) => {
                        l.arg(v);
                    }
                    Arg::F32(v) => {
                        l.arg(v);
                    }
                    Arg::F64(v) => {
                        l.arg(v);
                    }
                    Arg::I32(v) => {
                        l.arg(v);
                    }
                    Arg::I64(v) => {
                        l.arg(v);
                    }
                    Arg::U8(v) => {
                        l.arg(v);
                    }
                    Arg::Geometry(v) => {
                        l.arg(v);
                    }
                    Arg::Reduction(v) => {
                        l.arg(v);
                    }
                    Arg::Lines(v) => {
                        l.arg(v);
                    }
                    Arg::Layout(v) => {
                        l.arg(v);
                    }
                    Arg::Concat(v) => {
                        l.arg(v);
                    }
                    Arg::Window(v) => {
                        l.arg(v);
                    }
                }
            }
            let cfg = LaunchConfig {
                grid_dim: (self.grid, 1, 1),
                block_dim: (self.block, 1, 1),
                shared_mem_bytes: 0,
            };
            // SAFETY: the planner of each kernel (and the emulator tests that run every plan on
            // the CPU) keeps each index the kernel computes inside the buffers passed: inputs of
            // the dims the plan was made for, outputs of the lengths in `self.outputs`.
            unsafe { l.launch(cfg) }.map_err(|e| driver_error(op, rt, e))?;
        }
        Ok(outputs)
    }
}
