//! The vocabulary of generated CUDA kernels: one [`Kernel`] value names one CUDA source
//! (its family, op and dtypes), which NVRTC compiles once per process. The sources live with
//! their families (`elementwise`, `reduce`, `softmax`, `layout`, `window`, `index`,
//! `accumulate`, `fused`); this module only names,
//! keys and lists them, so that the tests can compile and run every one of them.

use super::runtime::KernelKey;
use super::window::WindowOp;
use super::{accumulate, elementwise, fused, index, layout, reduce, softmax, window};
use crate::{ArgKind, BinaryOp, CompareOp, DType, LogicalOp, ReduceKind, ScanKind, UnaryOp};

/// One generated kernel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Kernel {
    /// A float unary op over a dense buffer.
    Unary(UnaryOp, DType),
    /// `cast` from the first dtype to the second.
    Cast(DType, DType),
    /// `logical_not` on bools.
    LogicalNot,
    /// A float binary op with broadcasting.
    Binary(BinaryOp, DType),
    /// A comparison with broadcasting (bool output).
    Compare(CompareOp, DType),
    /// `logical_and` / `logical_or` with broadcasting.
    Logical(LogicalOp),
    /// `where(cond, x, y)` with broadcasting of all three.
    Select(DType),
    /// A reduction over any axes.
    Reduce(ReduceKind, DType),
    /// `argmax` / `argmin` along one axis.
    ArgReduce(ArgKind, DType),
    /// `softmax` (or `log_softmax` when `true`) along one axis.
    Softmax(bool, DType),
    /// `softmax_cross_entropy_with_logits` along one axis.
    SoftmaxXent(DType),
    /// `sparse_softmax_cross_entropy_with_logits` with labels of the first dtype.
    SparseXent(DType, DType),
    /// Index remapping of one input: transpose, broadcast_to, tile, strided slices and
    /// their gradient, pad.
    Layout(DType),
    /// `concat` (and `stack`) of the given number of inputs.
    Concat(DType, usize),
    /// A convolution or pooling op, forward or backward.
    Window(WindowOp, DType),
    /// `gather` with indices of the first dtype.
    Gather(DType, DType),
    /// `one_hot` from indices of the first dtype.
    OneHot(DType, DType),
    /// `cumsum` / `cumprod` along one axis.
    Scan(ScanKind, DType),
    /// `unsorted_segment_sum` with segment ids of the first dtype.
    SegmentSum(DType, DType),
    /// A graph's fused elementwise program (interned by `fused`).
    Fused(super::fused::ProgramId, DType),
}

impl Kernel {
    /// The cache key: different for any two kernels with different sources.
    pub(crate) fn key(self) -> KernelKey {
        use Kernel::*;
        let index = |d: DType| d as u64;
        match self {
            Unary(op, dtype) => ("unary", op.name(), elementwise::unary_bits(op), dtype),
            Cast(from, to) => ("cast", from.name(), index(to), to),
            LogicalNot => ("logical", "logical_not", 0, DType::Bool),
            Binary(op, dtype) => ("binary", op.name(), 0, dtype),
            Compare(op, dtype) => ("compare", op.name(), 0, dtype),
            Logical(op) => ("logical", op.name(), 0, DType::Bool),
            Select(dtype) => ("select", "where", 0, dtype),
            Reduce(kind, dtype) => ("reduce", kind.name(), 0, dtype),
            ArgReduce(kind, dtype) => ("argreduce", kind.name(), 0, dtype),
            Softmax(log, dtype) => ("softmax", if log { "log_softmax" } else { "softmax" }, 0, dtype),
            SoftmaxXent(dtype) => ("xent", "softmax", 0, dtype),
            SparseXent(labels, dtype) => ("xent", "sparse", index(labels), dtype),
            Layout(dtype) => ("layout", "copy", 0, dtype),
            Concat(dtype, count) => ("concat", "concat", count as u64, dtype),
            Window(op, dtype) => ("window", op.name(), 0, dtype),
            Gather(indices, dtype) => ("gather", "gather", index(indices), dtype),
            OneHot(indices, dtype) => ("one_hot", "one_hot", index(indices), dtype),
            Scan(kind, dtype) => ("scan", kind.name(), 0, dtype),
            SegmentSum(ids, dtype) => ("segment_sum", "unsorted", index(ids), dtype),
            Fused(id, dtype) => ("fused", "program", id as u64, dtype),
        }
    }

    /// The entry point's name (a C identifier, unique per key).
    pub(crate) fn name(self) -> String {
        let (family, op, bits, dtype) = self.key();
        format!("ff_{family}_{op}_{bits:x}_{}", dtype.name())
    }

    /// The CUDA source defining `extern "C" __global__ void <name>(...)`.
    pub(crate) fn source(self) -> String {
        let name = self.name();
        use Kernel::*;
        match self {
            Unary(..) | Cast(..) | LogicalNot | Binary(..) | Compare(..) | Logical(..) | Select(..) => {
                elementwise::source(self, &name)
            }
            Reduce(..) | ArgReduce(..) => reduce::source(self, &name),
            Softmax(..) | SoftmaxXent(..) | SparseXent(..) => softmax::source(self, &name),
            Layout(..) | Concat(..) => layout::source(self, &name),
            Window(..) => window::source(self, &name),
            Gather(..) | OneHot(..) => index::source(self, &name),
            Scan(..) | SegmentSum(..) => accumulate::source(self, &name),
            Fused(id, _) => fused::source(id, &name),
        }
    }

    /// Every kernel the backend can generate (with one alpha for `leaky_relu`), for the
    /// tests that compile and run them all.
    #[cfg(test)]
    pub(crate) fn all() -> Vec<Kernel> {
        use crate::ops::math::{binary::binary_ops, unary::unit_unary_ops};
        macro_rules! unary_list {
            (() $( $var:ident, $method:ident, $name:literal, $tf:literal, $doc:literal, $input:tt, $reference:expr; )*) => {
                vec![$( UnaryOp::$var, )*]
            };
        }
        macro_rules! binary_list {
            (() $( $var:ident, $method:ident, $name:literal, $tf:literal, $doc:literal, $reference:expr; )*) => {
                vec![$( BinaryOp::$var, )*]
            };
        }
        let mut unary: Vec<UnaryOp> = unit_unary_ops!(unary_list!());
        unary.extend([
            UnaryOp::LeakyRelu { alpha: 0.2 },
            UnaryOp::Gelu(crate::Gelu::Exact),
            UnaryOp::Gelu(crate::Gelu::Tanh),
        ]);
        let binary: Vec<BinaryOp> = binary_ops!(binary_list!());
        let floats = [DType::F32, DType::F64];
        let numeric = [DType::F32, DType::F64, DType::I32, DType::I64];
        let every = [DType::F32, DType::F64, DType::I32, DType::I64, DType::Bool];
        let mut all = vec![Kernel::LogicalNot];
        for &d in &floats {
            all.extend(unary.iter().map(|&op| Kernel::Unary(op, d)));
            all.extend(binary.iter().map(|&op| Kernel::Binary(op, d)));
            all.extend([
                Kernel::Softmax(false, d),
                Kernel::Softmax(true, d),
                Kernel::SoftmaxXent(d),
            ]);
            all.extend([DType::I32, DType::I64].map(|l| Kernel::SparseXent(l, d)));
        }
        for &d in &numeric {
            all.extend(COMPARE_OPS.map(|op| Kernel::Compare(op, d)));
            all.extend(
                [
                    ReduceKind::Sum,
                    ReduceKind::Mean,
                    ReduceKind::Max,
                    ReduceKind::Min,
                    ReduceKind::Prod,
                ]
                .map(|k| Kernel::Reduce(k, d)),
            );
            all.extend([ArgKind::Max, ArgKind::Min].map(|k| Kernel::ArgReduce(k, d)));
            all.extend([ScanKind::Sum, ScanKind::Prod].map(|k| Kernel::Scan(k, d)));
            all.extend([DType::I32, DType::I64].map(|ids| Kernel::SegmentSum(ids, d)));
        }
        for &d in &every {
            all.extend(every.iter().filter(|&&to| to != d).map(|&to| Kernel::Cast(d, to)));
            all.extend([Kernel::Select(d), Kernel::Layout(d)]);
            all.extend((1..=layout::MAX_CONCAT).map(|k| Kernel::Concat(d, k)));
        }
        all.extend([LogicalOp::And, LogicalOp::Or].map(Kernel::Logical));
        all.extend(window::kernels());
        for indices in [DType::I32, DType::I64] {
            all.extend(every.map(|d| Kernel::Gather(indices, d)));
            all.extend(every.map(|d| Kernel::OneHot(indices, d)));
        }
        all
    }
}

/// NVRTC's options for kernel `name`: no contraction of `a * b + c` into fused multiply-adds,
/// so every product and sum rounds on its own, as in the CPU kernels' arithmetic.
pub(crate) fn compile_options(name: &str) -> cudarc::nvrtc::CompileOptions {
    cudarc::nvrtc::CompileOptions {
        name: Some(format!("{name}.cu")),
        fmad: Some(false),
        ..Default::default()
    }
}

/// Every comparison (the tests' list of kernels and ops).
#[cfg(test)]
pub(crate) const COMPARE_OPS: [CompareOp; 6] = [
    CompareOp::Equal,
    CompareOp::NotEqual,
    CompareOp::Less,
    CompareOp::LessEqual,
    CompareOp::Greater,
    CompareOp::GreaterEqual,
];

/// The CUDA type of a dtype's elements (`bool` as one byte).
pub(crate) fn ctype(dtype: DType) -> &'static str {
    match dtype {
        DType::F32 => "float",
        DType::F64 => "double",
        DType::I32 => "int",
        DType::I64 => "long long",
        DType::Bool => "unsigned char",
    }
}

/// The type a dtype's arithmetic runs in: double for floats (float32 rounded once at the
/// end, so each result is at least as close to exact as TensorFlow's), 64-bit for integers.
pub(crate) fn work_type(dtype: DType) -> &'static str {
    match dtype {
        DType::F32 | DType::F64 => "double",
        DType::I32 | DType::I64 => "long long",
        DType::Bool => "int",
    }
}

/// Declarations shared by every generated source: the grid-stride loop and the bit casts
/// for infinities and NaN (NVRTC has no standard headers).
pub(crate) const PRELUDE: &str = r#"
#define GRID_STRIDE(i, n) \
    for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < (n); \
         i += (unsigned long long)gridDim.x * blockDim.x)
#define FF_INF __longlong_as_double(0x7ff0000000000000LL)
#define FF_NAN __longlong_as_double(0x7ff8000000000000LL)
/* The sum of every thread's v over the block, for all threads (part: blockDim.x shared doubles). */
__device__ double ff_block_sum(double* part, double v) {
    part[threadIdx.x] = v;
    __syncthreads();
    for (unsigned int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) part[threadIdx.x] += part[threadIdx.x + s];
        __syncthreads();
    }
    double r = part[0];
    __syncthreads();
    return r;
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kernel_has_a_distinct_key_and_a_c_identifier_name() {
        let all = Kernel::all();
        let keys: std::collections::HashSet<_> = all.iter().map(|k| k.key()).collect();
        assert_eq!(keys.len(), all.len(), "two kernels share a key");
        let names: std::collections::HashSet<_> = all.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), all.len(), "two kernels share a name");
        for name in &names {
            assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{name}");
        }
        let leaky = |alpha| Kernel::Unary(UnaryOp::LeakyRelu { alpha }, DType::F32).key();
        assert_ne!(leaky(0.2), leaky(0.3));
    }
}
