//! Fused kernels, the programs a graph's optimisation passes make: a chain of elementwise
//! ops run as one loop over cache-sized chunks ([`FusedElementwise`]), a matmul whose
//! bias-add and activation run on each output block while it is still in cache
//! ([`EpilogueMatMul`]), and elementwise ops written into a dying input's own buffer
//! ([`unary_in_place`], [`binary_in_place`]). The graph crate builds and schedules them; how
//! they run on the CPU lives here, beside the eager kernels whose numbers they reproduce bit
//! for bit.

mod elementwise;
mod epilogue;
mod in_place;

pub use epilogue::EpilogueMatMul;
pub use in_place::{binary_in_place, unary_in_place, Side};

use crate::dispatch::dispatch1;
use crate::{BinaryOp, DType, Data, Error, Op, Result, Tensor, UnaryOp};
use smallvec::{smallvec, SmallVec};

/// Where an instruction reads a value from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operand {
    /// The fused node's `i`-th input.
    Input(usize),
    /// The result of instruction `i`.
    Temp(usize),
}

/// One step of a fused elementwise program: one loop over the chunk.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Instr {
    /// A unary op.
    Unary(UnaryOp, Operand),
    /// A binary op.
    Binary(BinaryOp, Operand, Operand),
    /// `x * y + z`: a multiply whose result only feeds an add, in one loop. Rounded after
    /// the product and after the sum, exactly like the two ops (never a fused multiply-add).
    MulAdd(Operand, Operand, Operand),
    /// `b(u(x), y)` for `b` a multiply or an add: a costly unary op (exp, sigmoid, tanh, ...)
    /// whose result only feeds `b`, in one loop.
    UnaryThen(UnaryOp, Operand, BinaryOp, Operand),
}

impl Instr {
    /// The values the instruction reads.
    fn operands(&self) -> SmallVec<[Operand; 3]> {
        match *self {
            Instr::Unary(_, a) => smallvec![a],
            Instr::Binary(_, a, b) | Instr::UnaryThen(_, a, _, b) => smallvec![a, b],
            Instr::MulAdd(a, b, c) => smallvec![a, b, c],
        }
    }

    /// The same instruction reading `f(o)` for each operand `o`.
    fn map_operands(self, f: impl Fn(Operand) -> Operand) -> Instr {
        match self {
            Instr::Unary(u, a) => Instr::Unary(u, f(a)),
            Instr::Binary(b, x, y) => Instr::Binary(b, f(x), f(y)),
            Instr::MulAdd(x, y, z) => Instr::MulAdd(f(x), f(y), f(z)),
            Instr::UnaryThen(u, x, b, y) => Instr::UnaryThen(u, f(x), b, f(y)),
        }
    }

    /// The op names, in the order the separate ops would run.
    fn names(&self) -> SmallVec<[&'static str; 2]> {
        match *self {
            Instr::Unary(u, _) => smallvec![u.name()],
            Instr::Binary(b, _, _) => smallvec![b.name()],
            Instr::MulAdd(..) => smallvec![BinaryOp::Mul.name(), BinaryOp::Add.name()],
            Instr::UnaryThen(u, _, b, _) => smallvec![u.name(), b.name()],
        }
    }
}

/// Whether every instruction reads only inputs below `inputs` and results of instructions
/// before it.
pub(crate) fn well_formed(program: &[Instr], inputs: usize) -> bool {
    program.iter().enumerate().all(|(i, ins)| {
        ins.operands().iter().all(|&o| match o {
            Operand::Input(j) => j < inputs,
            Operand::Temp(j) => j < i,
        })
    })
}

/// Merges pairs of instructions into the two-op instructions ([`Instr::MulAdd`],
/// [`Instr::UnaryThen`]) where the first one's result is used only by the second, and
/// renumbers the temporaries. Each merge saves a pass over the chunk: for W6's
/// `sigmoid(x * a + b) * c` four loops become two (measured 10-15% faster per call).
/// Results are bit-identical (NaN payloads aside): every op still rounds on its own. A merged
/// pair sits where its second instruction was, so [`FusedElementwise::describe`] may list
/// the first op later than the unmerged program would. A malformed program (an
/// instruction reading a later result) is returned as it is.
pub fn combine_instructions(program: &[Instr]) -> Vec<Instr> {
    if !well_formed(program, usize::MAX) {
        return program.to_vec();
    }
    let mut uses = vec![0usize; program.len()];
    for ins in program {
        for o in ins.operands() {
            if let Operand::Temp(j) = o {
                uses[j] += 1;
            }
        }
    }
    let mut merged = program.to_vec();
    let mut absorbed = vec![false; program.len()];
    // `o` is the result of an unmerged instruction used only here: that instruction.
    let single_use = |o: Operand, merged: &[Instr], absorbed: &[bool]| match o {
        Operand::Temp(j) if uses[j] == 1 && !absorbed[j] => Some((j, merged[j])),
        _ => None,
    };
    for i in 0..merged.len() {
        let Instr::Binary(b, p, q) = merged[i] else {
            continue;
        };
        // Multiply and add are commutative (bit for bit in IEEE arithmetic), so the merged
        // operand may sit on either side.
        for (m, other) in [(p, q), (q, p)] {
            let new = match (b, single_use(m, &merged, &absorbed)) {
                (BinaryOp::Add, Some((j, Instr::Binary(BinaryOp::Mul, x, y)))) => Some((j, Instr::MulAdd(x, y, other))),
                (BinaryOp::Add | BinaryOp::Mul, Some((j, Instr::Unary(u, x)))) if !u.is_cheap() => {
                    Some((j, Instr::UnaryThen(u, x, b, other)))
                }
                _ => None,
            };
            if let Some((j, ins)) = new {
                merged[i] = ins;
                absorbed[j] = true;
                break;
            }
        }
    }
    // Renumber: an absorbed instruction's operands moved into its user, and they name only
    // instructions that were not absorbed (an absorbed instruction is still unmerged).
    let mut index = vec![usize::MAX; merged.len()];
    let mut out = Vec::with_capacity(merged.len());
    for (i, ins) in merged.into_iter().enumerate() {
        if absorbed[i] {
            continue;
        }
        out.push(ins.map_operands(|o| match o {
            Operand::Temp(j) => Operand::Temp(index[j]),
            o => o,
        }));
        index[i] = out.len() - 1;
    }
    out
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
        let names: Vec<&str> = self.program.iter().flat_map(Instr::names).collect();
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

    /// Runs the separate ops of the program on host data, each checked as eagerly (inputs
    /// broadcast, or fail with the op's error): how a graph runs a fused node whose inputs do
    /// not [fit](FusedElementwise::fits) its loop. Ops run directly, not through `dispatch`:
    /// no tracer or tape sees them, as none sees the graph's other ops.
    pub fn run_unfused(&self, inputs: &[&Data]) -> Result<Data> {
        let apply = |op: Op, xs: &[&Data]| -> Result<Data> {
            let specs: Vec<crate::TensorSpec> = xs
                .iter()
                .map(|d| crate::TensorSpec::new(d.dtype(), d.dims().to_vec()))
                .collect();
            op.infer(&specs)?;
            op.compute(xs)?
                .into_iter()
                .next()
                .ok_or_else(|| Error::invalid("fused_elementwise", "an op gave no result"))
        };
        self.interpret(
            inputs,
            |u, x| apply(Op::Unary(u), &[x]),
            |b, x, y| apply(Op::Binary(b), &[x, y]),
        )
    }

    /// Runs the program on tensors wherever they live, placed as an op would be: on an
    /// accelerator as one generated kernel where the backend has one (CUDA) and the inputs
    /// [fit](FusedElementwise::fits) it, else as its separate ops (which broadcast, or fail,
    /// as eagerly). How a graph runs a fused node on an accelerator.
    pub fn run_tensors(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        if let Some(device) = crate::device::placement_named("fused_elementwise", None, inputs)? {
            if !device.is_cpu() && self.fits(inputs.iter().map(|t| t.dims())) {
                if let Some(done) = crate::device::storage::backend::run_fused(device, self, inputs) {
                    return done;
                }
            }
        }
        self.interpret(
            inputs,
            |u, x| dispatch1(Op::Unary(u), &[x]),
            |b, x, y| dispatch1(Op::Binary(b), &[x, y]),
        )
    }

    /// The program as its separate ops, one instruction at a time, over any value (`Data`,
    /// `Tensor`) that `unary` and `binary` apply the ops to.
    fn interpret<V>(
        &self,
        inputs: &[&V],
        unary: impl Fn(UnaryOp, &V) -> Result<V>,
        binary: impl Fn(BinaryOp, &V, &V) -> Result<V>,
    ) -> Result<V> {
        let mut temps: Vec<V> = Vec::with_capacity(self.program.len());
        for ins in &self.program {
            let get = |o: Operand| -> Result<&V> {
                match o {
                    Operand::Input(i) => inputs.get(i).copied(),
                    Operand::Temp(i) => temps.get(i),
                }
                .ok_or_else(|| Error::invalid("fused_elementwise", format!("operand {o:?} is missing")))
            };
            let t = match *ins {
                Instr::Unary(u, a) => unary(u, get(a)?)?,
                Instr::Binary(b, x, y) => binary(b, get(x)?, get(y)?)?,
                Instr::MulAdd(x, y, z) => binary(BinaryOp::Add, &binary(BinaryOp::Mul, get(x)?, get(y)?)?, get(z)?)?,
                Instr::UnaryThen(u, x, b, y) => binary(b, &unary(u, get(x)?)?, get(y)?)?,
            };
            temps.push(t);
        }
        temps
            .pop()
            .ok_or_else(|| Error::invalid("fused_elementwise", "the program is empty"))
    }

    /// True when inputs of these dimensions fit the fused loop: one of them has the output's
    /// shape (the traced one, else that of the largest input of the traced rank) and each is
    /// of that shape or a single element of no higher rank. Inputs under a relaxed signature
    /// may not (a `[1, 3]` where a `[4, 3]` was traced, or ranks lowered by a `squeeze`); a
    /// graph runs such a node as its separate ops ([`FusedElementwise::run_unfused`]), which
    /// broadcast, or fail, as the ops do.
    pub fn fits<'a>(&self, inputs: impl Iterator<Item = &'a [usize]> + Clone) -> bool {
        let out = self.out_dims(inputs.clone());
        inputs.clone().any(|d| d == out.as_slice()) && inputs.into_iter().all(|d| Self::input_fits(d, &out))
    }

    /// One input of `dims` against an output of `out` (see [`FusedElementwise::fits`]).
    pub(crate) fn input_fits(dims: &[usize], out: &[usize]) -> bool {
        dims == out || (dims.iter().product::<usize>() == 1 && dims.len() <= out.len())
    }

    /// Output dimensions for inputs of these dimensions: those of the largest input of the
    /// traced rank (full-size inputs all share the output's shape; under a relaxed signature
    /// it can differ from the traced one), else the traced dimensions.
    pub(crate) fn out_dims<'a>(&self, inputs: impl Iterator<Item = &'a [usize]> + Clone) -> Vec<usize> {
        if inputs.clone().any(|d| d == self.dims.as_slice()) {
            return self.dims.clone();
        }
        inputs
            .filter(|d| d.len() == self.dims.len())
            .max_by_key(|d| d.iter().product::<usize>())
            .map(|d| d.to_vec())
            .unwrap_or_else(|| self.dims.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::elementwise::PAR_THRESHOLD_COSTLY as PAR_THRESHOLD;
    use crate::{DType, Tensor};
    use elementwise::FUSED_CHUNK;

    use BinaryOp::{Add, Mul, Sub};
    use Operand::{Input as In, Temp};
    use UnaryOp::{Exp, Neg, Sigmoid, Tanh};

    /// With only scalar inputs the output size is `dims` alone: a size the machine cannot
    /// hold (or that overflows) is an error, not an aborted allocation.
    #[test]
    fn scalar_inputs_with_huge_dims_are_errors() {
        let x = Tensor::scalar(1.0f32);
        let data = [x.data().unwrap()];
        for dims in [vec![1usize << 40], vec![usize::MAX, 2]] {
            let fused = FusedElementwise {
                dtype: DType::F32,
                dims: dims.clone(),
                program: vec![Instr::Unary(Neg, In(0))],
            };
            let e = fused.run(&data).unwrap_err();
            assert!(
                matches!(
                    e,
                    Error::ResourceExhausted {
                        op: "fused_elementwise",
                        ..
                    }
                ),
                "{e}"
            );
        }
        let fused = FusedElementwise {
            dtype: DType::F32,
            dims: vec![3],
            program: vec![Instr::Unary(Neg, In(0))],
        };
        assert_eq!(
            Tensor::from_data(fused.run(&data).unwrap()).to_vec::<f32>().unwrap(),
            vec![-1.0; 3]
        );
    }

    /// Runs `program` over `inputs` (first one full-size) as a fused node.
    fn run<T: crate::Element>(program: &[Instr], inputs: &[&Tensor]) -> Vec<T> {
        let first = inputs[0].shape().dims().to_vec();
        let fused = FusedElementwise {
            dtype: inputs[0].dtype(),
            dims: first,
            program: program.to_vec(),
        };
        let data: Vec<&Data> = inputs.iter().map(|t| t.data().unwrap()).collect();
        Tensor::from_data(fused.run(&data).unwrap()).to_vec::<T>().unwrap()
    }

    /// `sigmoid(x * a + b) * c` fused, as written and with its instructions combined,
    /// against the same ops run one by one, for sizes on both sides of the parallel
    /// threshold and not multiples of the chunk, with scalar and full-size `a`, `b`, `c`.
    #[test]
    fn a_fused_chain_matches_the_ops_run_one_by_one() {
        let program = vec![
            Instr::Binary(Mul, In(0), In(1)),
            Instr::Binary(Add, Temp(0), In(2)),
            Instr::Unary(Sigmoid, Temp(1)),
            Instr::Binary(Mul, Temp(2), In(3)),
        ];
        let combined = combine_instructions(&program);
        assert_eq!(
            combined,
            [
                Instr::MulAdd(In(0), In(1), In(2)),
                Instr::UnaryThen(Sigmoid, Temp(0), Mul, In(3))
            ]
        );
        // Sizes: one chunk, a ragged second, pieces split with lingering helpers (below the
        // pool's threshold for costly loops and above it), the pool (where loops are never
        // split with lingering helpers).
        use crate::kernels::warm_split::{tests::check_with_lingering_helpers, PIECE};
        let split = [2 * PIECE + FUSED_CHUNK + 5, 5 * PIECE + 3];
        assert!(split[0] < PAR_THRESHOLD && split[1] > PAR_THRESHOLD);
        let elementwise_pool = crate::kernels::elementwise::PAR_THRESHOLD;
        for n in [5usize, FUSED_CHUNK + 3, split[0], split[1], elementwise_pool + 17] {
            let x = Tensor::range(0.0, n as f64, 1.0, DType::F32)
                .unwrap()
                .mul(&Tensor::scalar(1e-3f32))
                .unwrap();
            let c = x.cos().unwrap();
            let scalars = (Tensor::scalar(-2.5f32), Tensor::scalar(0.25f32));
            let full = (x.sin().unwrap(), c.add(&Tensor::scalar(0.5f32)).unwrap());
            let cases: Vec<_> = [scalars.clone(), full, (scalars.0.clone(), c.clone())]
                .into_iter()
                .map(|(a, b)| {
                    let want = x.mul(&a).unwrap().add(&b).unwrap().sigmoid().unwrap().mul(&c).unwrap();
                    (a, b, want.to_vec::<f32>().unwrap())
                })
                .collect();
            let check = || {
                for (a, b, want) in &cases {
                    assert_eq!(&run::<f32>(&program, &[&x, a, b, &c]), want, "n = {n}");
                    assert_eq!(&run::<f32>(&combined, &[&x, a, b, &c]), want, "combined, n = {n}");
                }
            };
            if split.contains(&n) {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
                pool.install(|| check_with_lingering_helpers(n, check));
            } else {
                check();
            }
        }
        // A program reading a later result or a missing input is an error, not a panic.
        let x = Tensor::range(0.0, 8.0, 1.0, DType::F32).unwrap();
        for program in [vec![Instr::Unary(Exp, Temp(0))], vec![Instr::Binary(Add, In(0), In(3))]] {
            let fused = FusedElementwise {
                dtype: DType::F32,
                dims: vec![8],
                program,
            };
            let e = fused.run(&[x.data().unwrap()]).unwrap_err();
            assert!(e.to_string().contains("fused_elementwise"), "{e}");
        }
    }

    /// A unary op on a result computed from single-element inputs alone is the op on one
    /// element, as TensorFlow runs it: sigmoid's scalar form (see `eigen_f32`), whatever
    /// the output's size.
    #[test]
    fn a_unary_op_on_single_element_results_is_the_op_on_one_element() {
        use crate::FloatElement;
        // A value the two forms of sigmoid tell apart.
        let v = (0..1000)
            .map(|i| -6.0 + i as f32 * 0.013)
            .find(|&v| v.sigmoid_tf() != v.sigmoid_tf_tail())
            .unwrap();
        let program = [
            Instr::Binary(Add, In(1), In(2)),
            Instr::Unary(Sigmoid, Temp(0)),
            Instr::Binary(Mul, Temp(1), In(0)),
        ];
        let x = Tensor::range(1.0, 41.0, 1.0, DType::F32).unwrap();
        let (a, b) = (Tensor::scalar(v), Tensor::scalar(0.0f32));
        let want = a
            .add(&b)
            .unwrap()
            .sigmoid()
            .unwrap()
            .mul(&x)
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        assert_eq!(want[0], v.sigmoid_tf_tail());
        assert_eq!(run::<f32>(&program, &[&x, &a, &b]), want);
        assert_eq!(run::<f32>(&combine_instructions(&program), &[&x, &a, &b]), want);
    }

    /// Merges happen only where the first result has one use, whichever side it sits on;
    /// cheap unary ops and other binary ops stay separate; temporaries are renumbered; the
    /// combined program gives the same bits in f32 and f64.
    #[test]
    fn instructions_combine_only_where_a_result_has_one_use() {
        let program = vec![
            Instr::Binary(Mul, In(0), In(1)),     // 0: used twice -> stays
            Instr::Binary(Add, In(2), Temp(0)),   // 1: MulAdd impossible (0 shared)
            Instr::Unary(Exp, Temp(1)),           // 2: merges into 3
            Instr::Binary(Add, In(1), Temp(2)),   // 3: UnaryThen(exp, 1, add, in1)
            Instr::Binary(Mul, Temp(0), Temp(3)), // 4: stays
            Instr::Unary(Neg, Temp(4)),           // 5: cheap -> not merged into 6
            Instr::Binary(Sub, Temp(5), In(0)),   // 6: sub -> not merged
            Instr::Binary(Mul, Temp(6), In(2)),   // 7: merges into 8
            Instr::Binary(Add, Temp(7), In(1)),   // 8: MulAdd(t6, in2, in1)
            Instr::Unary(Tanh, Temp(8)),          // 9: merges into 10
            Instr::Binary(Mul, In(0), Temp(9)),   // 10: UnaryThen(tanh, t8, mul, in0)
        ];
        let combined = combine_instructions(&program);
        assert_eq!(
            combined,
            [
                Instr::Binary(Mul, In(0), In(1)),
                Instr::Binary(Add, In(2), Temp(0)),
                Instr::UnaryThen(Exp, Temp(1), Add, In(1)),
                Instr::Binary(Mul, Temp(0), Temp(2)),
                Instr::Unary(Neg, Temp(3)),
                Instr::Binary(Sub, Temp(4), In(0)),
                Instr::MulAdd(Temp(5), In(2), In(1)),
                Instr::UnaryThen(Tanh, Temp(6), Mul, In(0)),
            ]
        );
        let bad = [Instr::Unary(Exp, Temp(1)), Instr::Binary(Add, Temp(0), In(0))];
        assert_eq!(combine_instructions(&bad), bad, "malformed programs stay as they are");
        let names = |p: &[Instr]| p.iter().flat_map(Instr::names).collect::<Vec<_>>();
        assert_eq!(names(&combined), names(&program), "describe() is unchanged");
        for dtype in [DType::F32, DType::F64] {
            let scalar = |v: f64| Tensor::scalar(v).cast(dtype).unwrap();
            let x = Tensor::range(-1.5, 1.5, 1e-3, dtype).unwrap();
            let y = x.cos().unwrap();
            let z = scalar(0.75);
            let ins = [&x, &y, &z];
            if dtype == DType::F32 {
                assert_eq!(run::<f32>(&program, &ins), run::<f32>(&combined, &ins));
            } else {
                assert_eq!(run::<f64>(&program, &ins), run::<f64>(&combined, &ins));
            }
        }
    }
}
