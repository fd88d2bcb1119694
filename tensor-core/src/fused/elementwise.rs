//! The loops of a [`FusedElementwise`] program: every instruction runs over one chunk of a
//! few thousand elements before the next, so intermediates stay in L1/L2, with the op of
//! each instruction fixed outside its loop so the loop vectorises.

use super::{well_formed, FusedElementwise, Instr, Operand};
use crate::data::{row_major, Array};
use crate::kernels::elementwise::PAR_THRESHOLD_COSTLY as PAR_THRESHOLD;
use crate::kernels::simd::vectorized;
use crate::kernels::warm_split;
use crate::{BinaryOp, Data, Error, FloatElement, Result, UnaryOp};
use rayon::prelude::*;
use std::mem::MaybeUninit;
use std::ops::Range;

impl FusedElementwise {
    pub(super) fn run_typed<T: FloatElement>(&self, inputs: &[&Data]) -> Result<Array<T>> {
        let dims = self.out_dims(inputs.iter().map(|d| d.dims()));
        // Checked: with only scalar inputs the size comes from `self.dims` alone, which no
        // op inference has sized.
        let n = crate::alloc::checked_elements("fused_elementwise", &dims, T::DTYPE)?;
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
        // Same element count is not enough: a `[3, 2]` input read as a `[2, 3]` one would
        // give a wrong answer where the separate ops give a broadcast error.
        if let Some(d) = inputs.iter().map(|d| d.dims()).find(|d| !Self::input_fits(d, &dims)) {
            return Err(Error::shapes(
                "fused_elementwise",
                &[&d.into(), &dims.as_slice().into()],
                "an input neither of the output's shape nor a single element",
            ));
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
        if !well_formed(&self.program, srcs.len()) {
            return Err(Error::invalid(
                "fused_elementwise",
                format!(
                    "an instruction reads a later result or a missing input: {:?}",
                    self.program
                ),
            ));
        }
        // The results computed from single-element inputs alone: TensorFlow computed those
        // ops on one element, which is what a unary op's scalar form depends on (see
        // `UnaryOp::scalar_tail_from`), so the loops read them as one value.
        let mut single: Vec<bool> = Vec::with_capacity(self.program.len());
        for ins in &self.program {
            let one = ins.operands().iter().all(|&o| match o {
                Operand::Input(j) => matches!(srcs[j], Src::Scalar(_)),
                Operand::Temp(j) => single[j],
            });
            single.push(one);
        }
        let at = Place { n, single: &single };
        let last = self.program.len() - 1;
        // The output is never zeroed: the last instruction writes every element of each chunk
        // exactly once (see `Out`), in parallel.
        // Scratch for the intermediate results of one chunk, reused across chunks.
        let scratch = || vec![vec![T::zero(); FUSED_CHUNK.min(n)]; last];
        let body = |temps: &mut Vec<Vec<T>>, (ci, dst): (usize, &mut [MaybeUninit<T>])| {
            let start = ci * FUSED_CHUNK;
            let len = dst.len();
            for (i, ins) in self.program.iter().enumerate() {
                if i == last {
                    exec_instr(ins, &srcs, temps, (start, at), dst);
                } else {
                    let (done, rest) = temps.split_at_mut(i);
                    exec_instr(ins, &srcs, done, (start, at), &mut rest[0][..len]);
                }
            }
        };
        let write = |spare: &mut [MaybeUninit<T>]| {
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
        };
        let out = if warm_split::worth_splitting(n, PAR_THRESHOLD) {
            // Split with the helpers lingering after a product (see
            // `crate::kernels::warm_split`), in pieces of whole chunks.
            let piece = |range: Range<usize>, out: &mut [MaybeUninit<T>]| {
                let mut temps = scratch();
                for (k, c) in out.chunks_mut(FUSED_CHUNK).enumerate() {
                    body(&mut temps, (range.start / FUSED_CHUNK + k, c));
                }
            };
            // SAFETY: each piece's chunks are written whole, as below.
            unsafe { warm_split::written_in_pieces(n, &piece) }
        } else {
            // SAFETY: the last instruction writes every element of every chunk, and the
            // chunks cover all n elements.
            unsafe { crate::host_cache::written_vec(n, write) }
        };
        Ok(row_major(&dims, out).expect("fused output size").into_shared())
    }
}

/// Elements per chunk of a fused loop: every intermediate of a chunk stays in L1/L2.
pub(super) const FUSED_CHUNK: usize = 2048;

// A split loop's pieces start on chunk boundaries (the chunk index is `start / FUSED_CHUNK`).
const _: () = assert!(warm_split::PIECE.is_multiple_of(FUSED_CHUNK));

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

/// What a chunk's loops need to know of the whole program's run.
#[derive(Clone, Copy)]
struct Place<'a> {
    /// The output's element count.
    n: usize,
    /// Which temporaries hold one value repeated (see `run_typed`).
    single: &'a [bool],
}

/// Runs one instruction over one chunk (`start` is the chunk's offset in the full inputs).
fn exec_instr<T: FloatElement, D: Out<T>>(
    ins: &Instr,
    srcs: &[Src<T>],
    temps: &[Vec<T>],
    (start, at): (usize, Place<'_>),
    dst: &mut [D],
) {
    let len = dst.len();
    let get = |o: Operand| -> Src<T> {
        match o {
            Operand::Input(j) => match srcs[j] {
                Src::Full(s) => Src::Full(&s[start..start + len]),
                Src::Scalar(v) => Src::Scalar(v),
            },
            Operand::Temp(j) if at.single[j] => Src::Scalar(temps[j][0]),
            Operand::Temp(j) => Src::Full(&temps[j][..len]),
        }
    };
    match *ins {
        Instr::Unary(u, a) => match get(a) {
            Src::Full(s) => unary_slice(u, s, dst, (at.n, start)),
            Src::Scalar(v) => {
                let r = unary_scalar(u, v);
                dst.iter_mut().for_each(|d| d.set(r));
            }
        },
        Instr::Binary(b, x, y) => vectorized(
            #[inline(always)]
            || binary_slice(b, get(x), get(y), dst),
        ),
        Instr::MulAdd(x, y, z) => vectorized(
            #[inline(always)]
            || mul_add_slice(get(x), get(y), get(z), dst),
        ),
        Instr::UnaryThen(u, x, b, y) => match get(x) {
            Src::Full(s) => {
                let y = get(y);
                unary_then_slice(u, s, b, y, dst);
                let from = u.scalar_tail_from::<T>(at.n, start, len);
                for (i, d) in dst.iter_mut().enumerate().skip(from) {
                    let t = match y {
                        Src::Full(q) => q[i],
                        Src::Scalar(t) => t,
                    };
                    d.set(b.apply_float(u.apply_scalar_tail(s[i]), t));
                }
            }
            Src::Scalar(v) => vectorized(
                #[inline(always)]
                || binary_slice(b, Src::Scalar(unary_scalar(u, v)), get(y), dst),
            ),
        },
    }
}

/// `u(v)` for one element, the bits of the eager op on a one-element tensor: the scalar
/// form where the op has one, else as the vectorised loops compute it.
fn unary_scalar<T: FloatElement>(u: UnaryOp, v: T) -> T {
    if u.scalar_tail_from::<T>(1, 0, 1) == 0 {
        return u.apply_scalar_tail(v);
    }
    crate::kernels::simd::with_fma!(fma => vectorized(#[inline(always)] || u.apply_float::<T, fma>(v)))
}

/// `dst[i] = x[i] * y[i] + z[i]` for slice or scalar operands, two roundings.
#[inline(always)]
fn mul_add_slice<T: FloatElement, D: Out<T>>(x: Src<T>, y: Src<T>, z: Src<T>, dst: &mut [D]) {
    // A full operand first (the product commutes), so four loops cover every case.
    let (x, y) = match (x, y) {
        (Src::Scalar(s), Src::Full(f)) => (Src::Full(f), Src::Scalar(s)),
        p => p,
    };
    match (x, y, z) {
        (Src::Full(x), Src::Full(y), Src::Full(z)) => {
            for (((d, &a), &b), &c) in dst.iter_mut().zip(x).zip(y).zip(z) {
                d.set(a * b + c)
            }
        }
        (Src::Full(x), Src::Full(y), Src::Scalar(c)) => {
            for ((d, &a), &b) in dst.iter_mut().zip(x).zip(y) {
                d.set(a * b + c)
            }
        }
        (Src::Full(x), Src::Scalar(b), Src::Full(z)) => {
            for ((d, &a), &c) in dst.iter_mut().zip(x).zip(z) {
                d.set(a * b + c)
            }
        }
        (Src::Full(x), Src::Scalar(b), Src::Scalar(c)) => {
            for (d, &a) in dst.iter_mut().zip(x) {
                d.set(a * b + c)
            }
        }
        (Src::Scalar(a), Src::Scalar(b), z) => binary_slice(BinaryOp::Add, Src::Scalar(a * b), z, dst),
        (Src::Scalar(_), Src::Full(_), _) => unreachable!("the full operand was moved first"),
    }
}

/// `dst[i] = b(u(x[i]), y[i])`, ops fixed outside the loop for `b` a multiply or an add
/// (the only ones [`combine_instructions`] makes; any other `b` is matched per element).
fn unary_then_slice<T: FloatElement, D: Out<T>>(u: UnaryOp, x: &[T], b: BinaryOp, y: Src<T>, dst: &mut [D]) {
    // One small loop per closure, so each is inlined into the vectorised build.
    crate::ops::math::unary::with_unary_op!(u, op => crate::kernels::simd::with_fma!(fma => match (b, y) {
        (BinaryOp::Mul, Src::Full(y)) => vectorized(#[inline(always)] || for ((d, &s), &t) in dst.iter_mut().zip(x).zip(y) { d.set(op.apply_float::<T, fma>(s) * t) }),
        (BinaryOp::Mul, Src::Scalar(t)) => vectorized(#[inline(always)] || for (d, &s) in dst.iter_mut().zip(x) { d.set(op.apply_float::<T, fma>(s) * t) }),
        (BinaryOp::Add, Src::Full(y)) => vectorized(#[inline(always)] || for ((d, &s), &t) in dst.iter_mut().zip(x).zip(y) { d.set(op.apply_float::<T, fma>(s) + t) }),
        (BinaryOp::Add, Src::Scalar(t)) => vectorized(#[inline(always)] || for (d, &s) in dst.iter_mut().zip(x) { d.set(op.apply_float::<T, fma>(s) + t) }),
        (b, Src::Full(y)) => vectorized(#[inline(always)] || for ((d, &s), &t) in dst.iter_mut().zip(x).zip(y) { d.set(b.apply_float(op.apply_float::<T, fma>(s), t)) }),
        (b, Src::Scalar(t)) => vectorized(#[inline(always)] || for (d, &s) in dst.iter_mut().zip(x) { d.set(b.apply_float(op.apply_float::<T, fma>(s), t)) }),
    }))
}

/// `dst[i] = u(src[i])`, with the op fixed outside the loop so it vectorises; `src` is
/// elements `start..` of an `n`-element tensor, whose last `n % 8` take the op's scalar form
/// where it has one (TensorFlow's, see `UnaryOp::scalar_tail_from`).
#[inline(always)]
pub(crate) fn unary_slice<T: FloatElement, D: Out<T>>(
    u: UnaryOp,
    src: &[T],
    dst: &mut [D],
    (n, start): (usize, usize),
) {
    crate::ops::math::unary::with_unary_op!(u, op => crate::kernels::simd::with_fma!(fma => vectorized(#[inline(always)] || {
        for (d, &s) in dst.iter_mut().zip(src) {
            d.set(op.apply_float::<T, fma>(s))
        }
    })));
    let from = u.scalar_tail_from::<T>(n, start, dst.len());
    for (d, &x) in dst[from..].iter_mut().zip(&src[from..]) {
        d.set(u.apply_scalar_tail(x));
    }
}

/// `dst[i] = b(x[i], y[i])` for slice or scalar operands, op fixed outside the loop.
#[inline(always)]
fn binary_slice<T: FloatElement, D: Out<T>>(b: BinaryOp, x: Src<T>, y: Src<T>, dst: &mut [D]) {
    crate::ops::math::binary::with_binary_op!(b, f => match (x, y) {
        (Src::Full(p), Src::Full(q)) => for ((d, &s), &t) in dst.iter_mut().zip(p).zip(q) { d.set(f.apply_float(s, t)) },
        (Src::Full(p), Src::Scalar(t)) => for (d, &s) in dst.iter_mut().zip(p) { d.set(f.apply_float(s, t)) },
        (Src::Scalar(s), Src::Full(q)) => for (d, &t) in dst.iter_mut().zip(q) { d.set(f.apply_float(s, t)) },
        (Src::Scalar(s), Src::Scalar(t)) => { let r = f.apply_float(s, t); dst.iter_mut().for_each(|d| d.set(r)) }
    })
}

/// `s[i] = b(s[i], o[i])` (or `b(o[i], s[i])` when `s_is_lhs` is false), `o` full-size or
/// a single element, op fixed outside the loop.
#[inline(always)]
pub(crate) fn binary_in_place_slice<T: FloatElement>(b: BinaryOp, s: &mut [T], o: &[T], s_is_lhs: bool) {
    crate::ops::math::binary::with_binary_op!(b, f => vectorized(#[inline(always)] || match (o.len() == 1, s_is_lhs) {
        (true, true) => { let t = o[0]; for d in s.iter_mut() { *d = f.apply_float(*d, t) } }
        (true, false) => { let t = o[0]; for d in s.iter_mut() { *d = f.apply_float(t, *d) } }
        (false, true) => for (d, &t) in s.iter_mut().zip(o) { *d = f.apply_float(*d, t) },
        (false, false) => for (d, &t) in s.iter_mut().zip(o) { *d = f.apply_float(t, *d) },
    }))
}
