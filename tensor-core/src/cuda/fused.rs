//! One generated kernel per fused elementwise program ([`FusedElementwise`]): the graph
//! compiler's chains of float ops run as a single launch reading each input once and writing
//! the output once, instead of one launch and one buffer per op.
//!
//! Each instruction is evaluated exactly as its own kernel evaluates it (the same CUDA
//! expressions, in double) and its result is rounded to the element type before the next
//! instruction reads it, so a fused node gives the same bits as its ops run one by one on
//! the GPU. Programs are generated at run time, so their sources are interned: the first
//! program with a given text gets the next [`ProgramId`], which keys the compiled kernel for
//! the life of the process.

use super::elementwise::{binary_expr, unary_expr, FLOOR_MOD};
use super::kernel::{ctype, Kernel, PRELUDE};
use super::launch::{Arg, Launch};
use crate::fused::{FusedElementwise, Instr, Operand};
use crate::kernels::broadcast::repeats_along_leading_axes;
use crate::{BinaryOp, DType, Tensor, TensorSpec, UnaryOp};
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};

/// The interned number of one fused program's kernel text (see [`Kernel::Fused`]).
pub(crate) type ProgramId = u32;

/// Most inputs of one fused kernel (more run as separate ops).
const MAX_INPUTS: usize = 32;

/// Kernel bodies by text, and the text of each id.
#[derive(Default)]
struct Programs {
    ids: HashMap<Arc<str>, ProgramId>,
    texts: Vec<Arc<str>>,
}

static PROGRAMS: Mutex<Option<Programs>> = Mutex::new(None);

/// The id of `body` (a kernel's text without its name), new if it was never seen.
fn intern(body: String) -> ProgramId {
    let mut guard = PROGRAMS.lock().unwrap_or_else(|p| p.into_inner());
    let programs = guard.get_or_insert_with(Programs::default);
    if let Some(&id) = programs.ids.get(body.as_str()) {
        return id;
    }
    let id = programs.texts.len() as ProgramId;
    let body: Arc<str> = body.into();
    programs.texts.push(body.clone());
    programs.ids.insert(body, id);
    id
}

/// The CUDA source of fused kernel `id` under entry point `name`.
pub(crate) fn source(id: ProgramId, name: &str) -> String {
    let guard = PROGRAMS.lock().unwrap_or_else(|p| p.into_inner());
    let body = guard
        .as_ref()
        .and_then(|p| p.texts.get(id as usize))
        .unwrap_or_else(|| unreachable!("fused program {id} was never interned"));
    format!("{PRELUDE}{FLOOR_MOD}\n{}", body.replacen("@NAME@", name, 1))
}

/// How an input is read: one element per output element, one element for all, or the
/// input repeated along the leading axes (its dimensions a suffix of the output's, as a
/// bias row broadcast over a matmul's rows; its length is a kernel argument).
#[derive(Clone, Copy, PartialEq)]
enum Read {
    Full,
    Scalar,
    Cycle,
}

/// The kernel text of `program` over `reads` in `dtype`, with `@NAME@` for its entry point.
fn body(program: &[Instr], reads: &[Read], dtype: DType) -> String {
    let t = ctype(dtype);
    let mut s = String::new();
    let mut params: Vec<String> = (0..reads.len()).map(|k| format!("const {t}* p{k}")).collect();
    params.extend(
        (0..reads.len())
            .filter(|&k| reads[k] == Read::Cycle)
            .map(|k| format!("unsigned long long c{k}")),
    );
    let _ = writeln!(
        s,
        "extern \"C\" __global__ void @NAME@({t}* out, unsigned long long n, {}) {{",
        params.join(", ")
    );
    // Scalars are loaded once per thread (only launched when n > 0, so p[0] exists).
    for (k, r) in reads.iter().enumerate() {
        if *r == Read::Scalar {
            let _ = writeln!(s, "  const {t} s{k} = p{k}[0];");
        }
    }
    s.push_str("  GRID_STRIDE(i, n) {\n");
    let operand = |o: Operand| match o {
        Operand::Input(k) => match reads[k] {
            Read::Full => format!("p{k}[i]"),
            Read::Scalar => format!("s{k}"),
            Read::Cycle => format!("p{k}[i % c{k}]"),
        },
        Operand::Temp(j) => format!("t{j}"),
    };
    // Each step as its own kernel computes it: in double, rounded to T once.
    let unary =
        |u: UnaryOp, x: &str, dst: &str| format!("{{ double x = (double)({x}); {dst} = ({t})({}); }}", unary_expr(u));
    let binary = |b: BinaryOp, x: &str, y: &str, dst: &str| {
        format!(
            "{{ double a = (double)({x}), b = (double)({y}); {dst} = ({t})({}); }}",
            binary_expr(b)
        )
    };
    for (i, ins) in program.iter().enumerate() {
        let dst = format!("t{i}");
        let _ = write!(s, "    {t} {dst};\n    ");
        let step = match *ins {
            Instr::Unary(u, x) => unary(u, &operand(x), &dst),
            Instr::Binary(b, x, y) => binary(b, &operand(x), &operand(y), &dst),
            Instr::MulAdd(x, y, z) => format!(
                "{{ {t} m; {} {} }}",
                binary(BinaryOp::Mul, &operand(x), &operand(y), "m"),
                binary(BinaryOp::Add, "m", &operand(z), &dst)
            ),
            Instr::UnaryThen(u, x, b, y) => format!(
                "{{ {t} u; {} {} }}",
                unary(u, &operand(x), "u"),
                binary(b, "u", &operand(y), &dst)
            ),
        };
        let _ = writeln!(s, "{step}");
    }
    let _ = writeln!(s, "    out[i] = t{};\n  }}\n}}", program.len() - 1);
    s
}

/// The one launch running `fused` over `inputs` (each full-size, a single element, or
/// broadcast along the output's leading axes; all of the program's float dtype), if a
/// kernel can, with the spec of its output: `None` for anything else, which then runs as
/// separate ops.
pub(crate) fn plan(fused: &FusedElementwise, inputs: &[&Tensor]) -> Option<(Launch, TensorSpec)> {
    let dtype = fused.dtype;
    if !dtype.is_float()
        || fused.program.is_empty()
        || inputs.is_empty()
        || inputs.len() > MAX_INPUTS
        || !crate::fused::well_formed(&fused.program, inputs.len())
        || inputs.iter().any(|t| t.dtype() != dtype)
    {
        return None;
    }
    let dims = fused.out_dims(inputs.iter().map(|t| t.dims()));
    let n: usize = dims.iter().product();
    let reads: Vec<Read> = inputs
        .iter()
        .map(|t| match t.dims().iter().product::<usize>() {
            len if len == n && t.dims() == dims.as_slice() => Some(Read::Full),
            1 => Some(Read::Scalar),
            _ if repeats_along_leading_axes(t.dims(), &dims) => Some(Read::Cycle),
            _ => None,
        })
        .collect::<Option<_>>()?;
    let id = intern(body(&fused.program, &reads, dtype));
    let mut args: smallvec::SmallVec<[Arg; 6]> = smallvec::smallvec![Arg::Output(0), Arg::U64(n as u64)];
    args.extend((0..inputs.len()).map(Arg::Input));
    args.extend(
        inputs
            .iter()
            .zip(&reads)
            .filter(|(_, r)| **r == Read::Cycle)
            .map(|(t, _)| Arg::U64(t.dims().iter().product::<usize>() as u64)),
    );
    let launch = Launch::elementwise(Kernel::Fused(id, dtype), args, (dtype, n));
    Some((launch, TensorSpec::new(dtype, dims)))
}
