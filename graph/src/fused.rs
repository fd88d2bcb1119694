//! Fused kernels made by the optimisation passes: a chain of elementwise ops run as one
//! loop over cache-sized chunks, and a matmul whose bias-add and activation run on each
//! output block while it is still in cache.

use ferroflow_tensor_core::data::Array;
use ferroflow_tensor_core::kernels::elementwise::PAR_THRESHOLD_COSTLY as PAR_THRESHOLD;
use ferroflow_tensor_core::kernels::simd::vectorized;
use ferroflow_tensor_core::{BinaryOp, DType, Data, Error, FloatElement, Result, UnaryOp};
use ndarray::{ArrayD, IxDyn};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Where an instruction reads a value from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operand {
    /// The fused node's `i`-th input.
    Input(usize),
    /// The result of instruction `i`.
    Temp(usize),
}

/// One step of a fused elementwise program.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Instr {
    /// A unary op.
    Unary(UnaryOp, Operand),
    /// A binary op.
    Binary(BinaryOp, Operand, Operand),
}

/// A chain of float elementwise ops over inputs that are either full-size (the output's
/// shape, row-major) or scalars. The last instruction's result is the output.
#[derive(Debug, Clone, PartialEq)]
pub struct FusedElementwise {
    /// Element type of inputs and output.
    pub dtype: DType,
    /// Output dimensions.
    pub dims: Vec<usize>,
    /// The instructions, in order.
    pub program: Vec<Instr>,
}

impl FusedElementwise {
    /// A short description: the op names in order (`mul+add+sigmoid+mul`).
    pub fn describe(&self) -> String {
        let names: Vec<&str> = self
            .program
            .iter()
            .map(|i| match i {
                Instr::Unary(u, _) => u.name(),
                Instr::Binary(b, _, _) => b.name(),
            })
            .collect();
        names.join("+")
    }

    /// Runs the program. Inputs must be full-size or single-element, of `dtype`.
    pub fn run(&self, inputs: &[&Data]) -> Result<Data> {
        match self.dtype {
            DType::F32 => self.run_typed::<f32>(inputs).map(Data::F32),
            DType::F64 => self.run_typed::<f64>(inputs).map(Data::F64),
            d => Err(Error::dtypes("fused_elementwise", &[d], "fusion runs on floats only")),
        }
    }

    /// Output dimensions for these inputs: those of the largest input of the traced rank
    /// (full-size inputs all share the output's shape; under a relaxed signature it can differ
    /// from the traced one), else the traced dimensions.
    fn out_dims(&self, inputs: &[&Data]) -> Vec<usize> {
        if inputs.iter().any(|d| d.dims() == self.dims.as_slice()) {
            return self.dims.clone();
        }
        inputs
            .iter()
            .filter(|d| d.dims().len() == self.dims.len())
            .max_by_key(|d| d.len())
            .map(|d| d.dims().to_vec())
            .unwrap_or_else(|| self.dims.clone())
    }

    fn run_typed<T: FloatElement>(&self, inputs: &[&Data]) -> Result<Array<T>> {
        let dims = self.out_dims(inputs);
        let n: usize = dims.iter().product();
        let mut owned = Vec::new();
        let arrays: Vec<&Array<T>> = inputs
            .iter()
            .map(|d| {
                d.array::<T>()
                    .ok_or_else(|| Error::dtypes("fused_elementwise", &[d.dtype()], "input dtype differs"))
            })
            .collect::<Result<_>>()?;
        // Inputs as slices; a non-contiguous one is copied once (rare: fusion inputs are
        // usually fresh results).
        for a in &arrays {
            if !a.is_standard_layout() {
                owned.push(a.as_standard_layout().into_owned());
            }
        }
        let mut k = 0;
        let mut srcs: Vec<Src<T>> = Vec::with_capacity(arrays.len());
        for a in &arrays {
            let s: &[T] = if a.is_standard_layout() {
                a.as_slice().expect("standard layout")
            } else {
                k += 1;
                owned[k - 1].as_slice().expect("standard layout")
            };
            srcs.push(match s.len() {
                1 => Src::Scalar(s[0]),
                len if len == n => Src::Full(s),
                len => {
                    return Err(Error::invalid(
                        "fused_elementwise",
                        format!("input of {len} elements for an output of {n}"),
                    ))
                }
            });
        }
        if self.program.is_empty() {
            return Err(Error::invalid("fused_elementwise", "empty program"));
        }
        let last = self.program.len() - 1;
        // The output is never zeroed: the last instruction writes every element of each chunk
        // exactly once (see `Out`), in parallel.
        let mut out: Vec<T> = Vec::with_capacity(n);
        // Scratch for the intermediate results of one chunk, reused across chunks.
        let scratch = || vec![vec![T::zero(); FUSED_CHUNK]; last];
        let body = |temps: &mut Vec<Vec<T>>, (ci, dst): (usize, &mut [MaybeUninit<T>])| {
            let start = ci * FUSED_CHUNK;
            let len = dst.len();
            for (i, ins) in self.program.iter().enumerate() {
                if i == last {
                    exec_instr(ins, &srcs, temps, start, dst);
                } else {
                    let (done, rest) = temps.split_at_mut(i);
                    exec_instr(ins, &srcs, done, start, &mut rest[0][..len]);
                }
            }
        };
        let spare = &mut out.spare_capacity_mut()[..n];
        if n >= PAR_THRESHOLD {
            // Tasks of several chunks each, so the scratch is made once per task.
            const PER_TASK: usize = 16;
            spare
                .par_chunks_mut(FUSED_CHUNK * PER_TASK)
                .enumerate()
                .for_each(|(ti, block)| {
                    let mut temps = scratch();
                    for (k, c) in block.chunks_mut(FUSED_CHUNK).enumerate() {
                        body(&mut temps, (ti * PER_TASK + k, c));
                    }
                });
        } else {
            let mut temps = scratch();
            spare
                .chunks_mut(FUSED_CHUNK)
                .enumerate()
                .for_each(|c| body(&mut temps, c));
        }
        // SAFETY: the last instruction wrote every element of every chunk, and the chunks
        // cover all n elements.
        unsafe { out.set_len(n) };
        Ok(ArrayD::from_shape_vec(IxDyn(&dims), out)
            .expect("fused output size")
            .into_shared())
    }
}

/// Elements per chunk of a fused loop: every intermediate of a chunk stays in L1/L2.
const FUSED_CHUNK: usize = 2048;

/// A slot a loop writes one result into: a plain element (intermediates) or a not yet
/// initialised element of the output, which is written once and never read, so the output
/// needs no zeroing pass.
pub(crate) trait Out<T>: Send {
    /// Stores `v`.
    fn set(&mut self, v: T);
}

impl<T: Send> Out<T> for T {
    #[inline(always)]
    fn set(&mut self, v: T) {
        *self = v;
    }
}

impl<T: Send> Out<T> for MaybeUninit<T> {
    #[inline(always)]
    fn set(&mut self, v: T) {
        self.write(v);
    }
}

/// An input as the loop sees it.
#[derive(Clone, Copy)]
enum Src<'a, T> {
    Full(&'a [T]),
    Scalar(T),
}

/// Runs one instruction over one chunk (`start` is the chunk's offset in the full inputs).
fn exec_instr<T: FloatElement, D: Out<T>>(ins: &Instr, srcs: &[Src<T>], temps: &[Vec<T>], start: usize, dst: &mut [D]) {
    let len = dst.len();
    let get = |o: Operand| -> Src<T> {
        match o {
            Operand::Input(j) => match srcs[j] {
                Src::Full(s) => Src::Full(&s[start..start + len]),
                Src::Scalar(v) => Src::Scalar(v),
            },
            Operand::Temp(j) => Src::Full(&temps[j][..len]),
        }
    };
    match *ins {
        Instr::Unary(u, a) => match get(a) {
            Src::Full(s) => vectorized(|| unary_slice(u, s, dst)),
            Src::Scalar(v) => {
                let r = u.apply_float(v);
                dst.iter_mut().for_each(|d| d.set(r));
            }
        },
        Instr::Binary(b, x, y) => vectorized(|| binary_slice(b, get(x), get(y), dst)),
    }
}

/// `dst[i] = u(src[i])`, with the op fixed outside the loop so it vectorises.
#[inline(always)]
pub(crate) fn unary_slice<T: FloatElement, D: Out<T>>(u: UnaryOp, src: &[T], dst: &mut [D]) {
    ferroflow_tensor_core::with_unary_op!(u, op => for (d, &s) in dst.iter_mut().zip(src) {
        d.set(op.apply_float(s))
    })
}

/// `dst[i] = b(x[i], y[i])` for slice or scalar operands, op fixed outside the loop.
#[inline(always)]
fn binary_slice<T: FloatElement, D: Out<T>>(b: BinaryOp, x: Src<T>, y: Src<T>, dst: &mut [D]) {
    ferroflow_tensor_core::with_binary_op!(b, f => match (x, y) {
        (Src::Full(p), Src::Full(q)) => for ((d, &s), &t) in dst.iter_mut().zip(p).zip(q) { d.set(f.apply_float(s, t)) },
        (Src::Full(p), Src::Scalar(t)) => for (d, &s) in dst.iter_mut().zip(p) { d.set(f.apply_float(s, t)) },
        (Src::Scalar(s), Src::Full(q)) => for (d, &t) in dst.iter_mut().zip(q) { d.set(f.apply_float(s, t)) },
        (Src::Scalar(s), Src::Scalar(t)) => { let r = f.apply_float(s, t); dst.iter_mut().for_each(|d| d.set(r)) }
    })
}

/// `s[i] = b(s[i], o[i])` (or `b(o[i], s[i])` when `s_is_lhs` is false), `o` full-size or
/// a single element, op fixed outside the loop.
pub(crate) fn binary_in_place_slice<T: FloatElement>(b: BinaryOp, s: &mut [T], o: &[T], s_is_lhs: bool) {
    ferroflow_tensor_core::with_binary_op!(b, f => match (o.len() == 1, s_is_lhs) {
        (true, true) => { let t = o[0]; for d in s.iter_mut() { *d = f.apply_float(*d, t) } }
        (true, false) => { let t = o[0]; for d in s.iter_mut() { *d = f.apply_float(t, *d) } }
        (false, true) => for (d, &t) in s.iter_mut().zip(o) { *d = f.apply_float(*d, t) },
        (false, false) => for (d, &t) in s.iter_mut().zip(o) { *d = f.apply_float(t, *d) },
    })
}

/// A 2-D matmul followed by an optional bias-add (bias of the output's last dimension) and
/// an optional unary activation, applied to each output block right after it is computed.
#[derive(Debug, Clone, PartialEq)]
pub struct EpilogueMatMul {
    /// Transpose the first operand.
    pub transpose_a: bool,
    /// Transpose the second operand.
    pub transpose_b: bool,
    /// A third input, the bias, is added to every row.
    pub bias: bool,
    /// Applied after the bias.
    pub activation: Option<UnaryOp>,
}

impl EpilogueMatMul {
    /// A short description: `matmul+bias_add+relu`.
    pub fn describe(&self) -> String {
        let mut s = String::from("matmul");
        if self.bias {
            s.push_str("+bias_add");
        }
        if let Some(a) = self.activation {
            s.push('+');
            s.push_str(a.name());
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferroflow_tensor_core::Tensor;

    /// `sigmoid(x * a + b) * c` fused, against the same ops run one by one, for sizes on
    /// both sides of the parallel threshold and not multiples of the chunk.
    #[test]
    fn a_fused_chain_matches_the_ops_run_one_by_one() {
        let program = vec![
            Instr::Binary(BinaryOp::Mul, Operand::Input(0), Operand::Input(1)),
            Instr::Binary(BinaryOp::Add, Operand::Temp(0), Operand::Input(2)),
            Instr::Unary(UnaryOp::Sigmoid, Operand::Temp(1)),
            Instr::Binary(BinaryOp::Mul, Operand::Temp(2), Operand::Input(3)),
        ];
        for n in [5usize, FUSED_CHUNK + 3, PAR_THRESHOLD * 3 + 17] {
            let x = Tensor::range(0.0, n as f64, 1.0, DType::F32)
                .unwrap()
                .mul(&Tensor::scalar(1e-3f32))
                .unwrap();
            let c = x.cos().unwrap();
            let (a, b) = (Tensor::scalar(-2.5f32), Tensor::scalar(0.25f32));
            let fused = FusedElementwise {
                dtype: DType::F32,
                dims: vec![n],
                program: program.clone(),
            };
            let inputs = [&x, &a, &b, &c].map(|t| t.data().unwrap());
            let got = fused.run(&inputs).unwrap();
            let want = x.mul(&a).unwrap().add(&b).unwrap().sigmoid().unwrap().mul(&c).unwrap();
            let got = Tensor::from_data(got).to_vec::<f32>().unwrap();
            assert_eq!(got, want.to_vec::<f32>().unwrap(), "n = {n}");
        }
    }
}
