//! Fused elementwise kernels without a GPU: each program's one generated kernel, run by the
//! CPU emulator, against the same instructions run as separate generated kernels (bit for
//! bit: a fused node must not change a graph's numbers on the GPU) and against the CPU's
//! fused kernel (float32 within rounding: the GPU evaluates each step in double).

use super::emulate;
use super::fused::plan as plan_fused;
use super::kernel::Kernel;
use super::kernel_tests::{assert_close, tensor, values};
use super::run::plan;
use crate::fused::{combine_instructions, FusedElementwise, Instr, Operand};
use crate::{BinaryOp, DType, Data, Op, Tensor, TensorSpec, UnaryOp};

use Operand::{Input as In, Temp};

/// The float unary and binary ops the backend has kernels for.
fn ops() -> (Vec<UnaryOp>, Vec<BinaryOp>) {
    let (mut unary, mut binary) = (Vec::new(), Vec::new());
    for kernel in Kernel::all() {
        match kernel {
            Kernel::Unary(op, DType::F32) => unary.push(op),
            Kernel::Binary(op, DType::F32) => binary.push(op),
            _ => {}
        }
    }
    (unary, binary)
}

/// `n` values of `dtype` shaped `dims`, shifted by `shift` so that inputs differ, with full
/// mantissas (products of short ones are exact, and would hide a missing rounding step).
fn input(dims: &[usize], dtype: DType, shift: f64) -> Tensor {
    let n: usize = dims.iter().product();
    let v: Vec<f64> = values(n)
        .iter()
        .enumerate()
        .map(|(i, x)| x * 0.5 + shift + 0.1 * (i as f64 * 0.7 + shift).sin())
        .collect();
    tensor(&v, dims, dtype)
}

/// Programs with their inputs: every unary op feeding a multiply, every binary op feeding
/// tanh, W6's `sigmoid(x * a + b) * c`, a longer program with shared results; each as
/// traced and with its instructions combined; scalar and full-size operands; float32 and
/// float64; an empty output, a multi-block grid and a relaxed (smaller) shape.
fn cases() -> Vec<(FusedElementwise, Vec<Tensor>)> {
    let (unary, binary) = ops();
    let mut out = Vec::new();
    let mut add = |program: Vec<Instr>, dims: &[usize], inputs: Vec<Tensor>, dtype: DType| {
        for program in [combine_instructions(&program), program] {
            out.push((
                FusedElementwise {
                    dtype,
                    dims: dims.to_vec(),
                    program,
                },
                inputs.clone(),
            ));
        }
    };
    for dtype in [DType::F32, DType::F64] {
        let full = |shift| input(&[5, 41], dtype, shift);
        let scalar = |v: f64| tensor(&[v], &[], dtype);
        // float32 reads its second operand as a scalar, float64 as a full-size input.
        let second = |shift| {
            if dtype == DType::F32 {
                scalar(shift)
            } else {
                full(shift)
            }
        };
        for &u in &unary {
            let program = vec![Instr::Unary(u, In(0)), Instr::Binary(BinaryOp::Mul, Temp(0), In(1))];
            add(program, &[5, 41], vec![full(0.0), second(-1.25)], dtype);
        }
        for &b in &binary {
            let program = vec![Instr::Binary(b, In(0), In(1)), Instr::Unary(UnaryOp::Tanh, Temp(0))];
            add(program, &[5, 41], vec![full(0.1), second(0.75)], dtype);
        }
        let w6 = vec![
            Instr::Binary(BinaryOp::Mul, In(0), In(1)),
            Instr::Binary(BinaryOp::Add, Temp(0), In(2)),
            Instr::Unary(UnaryOp::Sigmoid, Temp(1)),
            Instr::Binary(BinaryOp::Mul, Temp(2), In(3)),
        ];
        for dims in [&[5usize, 41][..], &[0], &[70_001]] {
            let x = input(dims, dtype, 0.0);
            add(
                w6.clone(),
                dims,
                vec![x.clone(), scalar(-2.4375123), input(dims, dtype, 0.3), scalar(0.2577)],
                dtype,
            );
        }
        // Traced for [4, 41], called with [5, 41] (a relaxed signature): the inputs decide.
        add(
            w6.clone(),
            &[4, 41],
            vec![full(0.0), full(1.0), scalar(0.5), full(-0.5)],
            dtype,
        );
        let shared = vec![
            Instr::Binary(BinaryOp::Mul, In(0), In(1)),
            Instr::Binary(BinaryOp::Add, In(2), Temp(0)),
            Instr::Unary(UnaryOp::Exp, Temp(1)),
            Instr::Binary(BinaryOp::Add, In(1), Temp(2)),
            Instr::Binary(BinaryOp::Mul, Temp(0), Temp(3)),
            Instr::Unary(UnaryOp::Neg, Temp(4)),
            Instr::Binary(BinaryOp::Sub, Temp(5), In(0)),
            Instr::Binary(BinaryOp::Mul, Temp(6), In(2)),
            Instr::Binary(BinaryOp::Add, Temp(7), In(1)),
            Instr::Unary(UnaryOp::Tanh, Temp(8)),
            Instr::Binary(BinaryOp::Mul, In(0), Temp(9)),
        ];
        add(shared, &[5, 41], vec![full(0.0), full(0.2), scalar(0.75)], dtype);
        // A matmul epilogue: a bias row (with and without a leading 1) repeated over the rows.
        let epilogue = vec![
            Instr::Binary(BinaryOp::Add, In(0), In(1)),
            Instr::Unary(UnaryOp::Relu, Temp(0)),
        ];
        for bias in [&[41usize][..], &[1, 41]] {
            let row = input(bias, dtype, -0.2);
            add(epilogue.clone(), &[5, 41], vec![full(0.0), row], dtype);
        }
        let rows = vec![Instr::Binary(BinaryOp::Mul, In(1), In(0))];
        add(
            rows,
            &[2, 5, 41],
            vec![input(&[2, 5, 41], dtype, 0.0), full(0.4)],
            dtype,
        );
    }
    out
}

/// The kernels of every case (for the NVRTC test).
pub(super) fn kernels() -> Vec<Kernel> {
    cases()
        .iter()
        .map(|(fused, inputs)| {
            let refs: Vec<&Tensor> = inputs.iter().collect();
            plan_fused(fused, &refs).expect("planned").0.kernel
        })
        .collect()
}

/// Runs one op's own generated kernel on the emulator.
fn emulated(op: Op, inputs: &[&Tensor]) -> Tensor {
    let specs: Vec<TensorSpec> = inputs.iter().map(|t| t.spec()).collect();
    let out = op.infer(&specs).expect("infer");
    let launch = plan(&op, inputs, &out).unwrap_or_else(|| panic!("{}: no kernel", op.name()));
    Tensor::from_data(emulate::run(&launch, inputs, &out).remove(0))
}

/// The program's instructions as separate generated kernels, on the emulator.
fn one_by_one(program: &[Instr], inputs: &[Tensor]) -> Tensor {
    let mut temps: Vec<Tensor> = Vec::new();
    for ins in program {
        let get = |o: Operand| match o {
            In(i) => inputs[i].clone(),
            Temp(j) => temps[j].clone(),
        };
        let unary = |u: UnaryOp, x: &Tensor| emulated(Op::Unary(u), &[x]);
        let binary = |b: BinaryOp, x: &Tensor, y: &Tensor| emulated(Op::Binary(b), &[x, y]);
        let t = match *ins {
            Instr::Unary(u, x) => unary(u, &get(x)),
            Instr::Binary(b, x, y) => binary(b, &get(x), &get(y)),
            Instr::MulAdd(x, y, z) => binary(BinaryOp::Add, &binary(BinaryOp::Mul, &get(x), &get(y)), &get(z)),
            Instr::UnaryThen(u, x, b, y) => binary(b, &unary(u, &get(x)), &get(y)),
        };
        temps.push(t);
    }
    temps.pop().expect("a program")
}

/// Element bits (NaN payloads included: both sides compute the same expressions).
fn bits(d: &Data) -> Vec<u64> {
    match d {
        Data::F32(a) => a.iter().map(|v| v.to_bits() as u64).collect(),
        Data::F64(a) => a.iter().map(|v| v.to_bits()).collect(),
        other => panic!("fused outputs are floats, not {:?}", other.dtype()),
    }
}

#[test]
fn a_fused_kernel_gives_the_bits_of_its_ops_run_one_by_one() {
    let cases = cases();
    emulate::prepare(&kernels());
    for (fused, inputs) in &cases {
        let what = format!("{} {:?} over {:?}", fused.describe(), fused.dtype, fused.program);
        let refs: Vec<&Tensor> = inputs.iter().collect();
        let (launch, spec) = plan_fused(fused, &refs).unwrap_or_else(|| panic!("{what}: not planned"));
        let out = [spec];
        let got = emulate::run(&launch, &refs, &out).remove(0);
        let separate = one_by_one(&fused.program, inputs);
        let separate = separate.data().unwrap();
        assert_eq!(got.dims(), separate.dims(), "{what}: dims");
        assert_eq!(
            bits(&got),
            bits(separate),
            "{what}: fused and separate GPU kernels differ"
        );
        // On the host, run_tensors runs the CPU ops (equal to the CPU's fused kernel, which
        // takes full-size and scalar inputs only).
        let cpu = fused.run_tensors(&refs).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_close(&what, &got, cpu.data().unwrap(), 1e-5);
    }
}

#[test]
fn programs_a_kernel_cannot_run_are_not_planned() {
    let x = input(&[3, 4], DType::F32, 0.0);
    let program = vec![Instr::Unary(UnaryOp::Exp, In(0))];
    let fused = |dtype, program: Vec<Instr>| FusedElementwise {
        dtype,
        dims: vec![3, 4],
        program,
    };
    assert!(plan_fused(&fused(DType::F32, program.clone()), &[&x]).is_some());
    // Integers, a dtype that differs from the inputs', a malformed program, an input that is
    // neither full-size, nor a scalar, nor repeated along the leading axes (a column), and
    // no inputs at all.
    let ints = x.cast(DType::I32).unwrap();
    assert!(plan_fused(&fused(DType::I32, program.clone()), &[&ints]).is_none());
    assert!(plan_fused(&fused(DType::F64, program.clone()), &[&x]).is_none());
    assert!(plan_fused(&fused(DType::F32, vec![Instr::Unary(UnaryOp::Exp, Temp(0))]), &[&x]).is_none());
    assert!(plan_fused(&fused(DType::F32, vec![Instr::Unary(UnaryOp::Exp, In(1))]), &[&x]).is_none());
    let column = input(&[3, 1], DType::F32, 0.0);
    let add = vec![Instr::Binary(BinaryOp::Add, In(0), In(1))];
    assert!(plan_fused(&fused(DType::F32, add.clone()), &[&x, &column]).is_none());
    let row = input(&[4], DType::F32, 0.0);
    assert!(plan_fused(&fused(DType::F32, add.clone()), &[&x, &row]).is_some());
    assert!(plan_fused(&fused(DType::F32, add), &[]).is_none());
    // One program text, one kernel: planning the same program again reuses its id.
    let again = plan_fused(&fused(DType::F32, program.clone()), &[&x]).unwrap();
    assert_eq!(
        again.0.kernel,
        plan_fused(&fused(DType::F32, program), &[&x]).unwrap().0.kernel
    );
}
