//! Every generated kernel against the CPU kernels, without a GPU: each op is planned exactly
//! as on a GPU ([`super::run::plan`]) and the launch performed by the CPU emulator, then
//! compared with the CPU kernel's result (float32 within a few ulps, since the kernels
//! compute in double; integers and bools exactly). And every source compiles with NVRTC
//! where NVRTC is installed (CI installs it; `FERROFLOW_REQUIRE_NVRTC=1` makes its absence
//! a failure).

use super::emulate;
use super::kernel::Kernel;
use super::run::plan;
use crate::dispatch::host_compute;
use crate::{
    ArgKind, Axes, BinaryOp, CompareOp, DType, Data, LogicalOp, Op, PoolKind, ReduceKind, Tensor, TensorSpec, UnaryOp,
};

/// Runs `op` both ways and compares; panics naming the op on any difference.
fn check(op: Op, inputs: &[Tensor]) {
    check_within(op, inputs, 1e-6)
}

/// [`check`] with a relative tolerance for float32 (long sums: the CPU kernel rounds each
/// step in float32, the GPU's in double).
fn check_within(op: Op, inputs: &[Tensor], f32_tol: f64) {
    let specs: Vec<TensorSpec> = inputs.iter().map(Tensor::spec).collect();
    let out = op.infer(&specs).unwrap_or_else(|e| panic!("{}: {e}", op.name()));
    let refs: Vec<&Tensor> = inputs.iter().collect();
    let want = host_compute(&op, &refs).unwrap_or_else(|e| panic!("{}: {e}", op.name()));
    let launch = plan(&op, &refs, &out).unwrap_or_else(|| panic!("{} {specs:?}: no kernel planned", op.name()));
    let got = emulate::run(&launch, &refs, &out);
    assert_eq!(got.len(), want.len(), "{}: output count", op.name());
    for (g, w) in got.iter().zip(&want) {
        assert_close(
            &format!("{} {specs:?} ({:?})", op.name(), launch.kernel),
            g,
            w.data().unwrap(),
            f32_tol,
        );
    }
}

pub(super) fn assert_close(what: &str, got: &Data, want: &Data, f32_tol: f64) {
    assert_eq!(got.dtype(), want.dtype(), "{what}: dtype");
    assert_eq!(got.dims(), want.dims(), "{what}: dims");
    let tol = match want.dtype() {
        DType::F32 => f32_tol,
        DType::F64 => 1e-12,
        _ => 0.0,
    };
    let (g, w) = (floats(got), floats(want));
    for (i, (&a, &b)) in g.iter().zip(&w).enumerate() {
        let same = (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= tol * b.abs().max(1.0);
        assert!(same, "{what}: element {i}: got {a}, want {b}\n got {g:?}\nwant {w:?}");
    }
}

fn floats(d: &Data) -> Vec<f64> {
    match d {
        Data::F32(a) => a.iter().map(|&v| v as f64).collect(),
        Data::F64(a) => a.iter().copied().collect(),
        Data::I32(a) => a.iter().map(|&v| v as f64).collect(),
        // Exact for the values these tests use; checked as integers below too.
        Data::I64(a) => a.iter().map(|&v| v as f64).collect(),
        Data::Bool(a) => a.iter().map(|&v| v as u8 as f64).collect(),
    }
}

/// `values` reshaped to `dims` as `dtype` (through the CPU cast).
pub(super) fn tensor(values: &[f64], dims: &[usize], dtype: DType) -> Tensor {
    let a = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(dims), values.to_vec()).expect("test shape");
    Tensor::from_data(Data::from_owned(a)).cast(dtype).expect("test tensor")
}

/// `n` varied values: both signs, zero, fractions, halves (for rounding).
pub(super) fn values(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let k = i as f64;
            match i % 7 {
                0 => 0.0,
                1 => -2.5 + 0.01 * k,
                2 => 0.37 * k,
                3 => -1.5,
                4 => 3.0 - 0.13 * k,
                5 => 0.5,
                _ => -0.75 * k,
            }
        })
        .collect()
}

#[test]
fn unary_ops_match_the_cpu() {
    let unary: Vec<UnaryOp> = Kernel::all()
        .into_iter()
        .filter_map(|k| match k {
            Kernel::Unary(op, DType::F32) => Some(op),
            _ => None,
        })
        .collect();
    let mut v = values(23);
    v.extend([f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 40.0, -40.0]);
    for dtype in [DType::F32, DType::F64] {
        let x = tensor(&v, &[v.len()], dtype);
        for &op in &unary {
            check(Op::Unary(op), std::slice::from_ref(&x));
        }
    }
}

#[test]
fn binary_ops_broadcast_like_the_cpu() {
    let ops: Vec<BinaryOp> = Kernel::all()
        .into_iter()
        .filter_map(|k| match k {
            Kernel::Binary(op, DType::F64) => Some(op),
            _ => None,
        })
        .collect();
    for dtype in [DType::F32, DType::F64] {
        let a = tensor(&values(24), &[2, 3, 4], dtype);
        let b = tensor(&values(9)[3..7], &[4], dtype);
        let col = tensor(&[1.5, -2.0, 0.25], &[3, 1], dtype);
        let scalar = tensor(&[-0.75], &[], dtype);
        for &op in &ops {
            check(Op::Binary(op), &[a.clone(), b.clone()]);
            check(Op::Binary(op), &[col.clone(), a.clone()]);
            check(Op::Binary(op), &[scalar.clone(), col.clone()]);
            check(Op::Binary(op), &[a.clone(), a.clone()]);
        }
    }
    // Many blocks: the grid-stride loop covers every element exactly once.
    let big = tensor(&values(70_001), &[70_001], DType::F32);
    check(
        Op::Binary(BinaryOp::Mul),
        &[big.clone(), tensor(&[3.0], &[1], DType::F32)],
    );
}

#[test]
fn comparisons_logic_and_where_match_the_cpu() {
    for dtype in [DType::F32, DType::F64, DType::I32, DType::I64] {
        let a = tensor(&[1.0, 2.0, 3.0, -1.0, 0.0, 2.0], &[2, 3], dtype);
        let b = tensor(&[2.0, 2.0, -1.0], &[3], dtype);
        for op in super::kernel::COMPARE_OPS {
            check(Op::Compare(op), &[a.clone(), b.clone()]);
        }
    }
    let nan = tensor(&[f64::NAN, 1.0], &[2], DType::F32);
    check(Op::Compare(CompareOp::NotEqual), &[nan.clone(), nan.clone()]);
    let p = tensor(&[1.0, 0.0, 1.0, 0.0], &[2, 2], DType::Bool);
    let q = tensor(&[1.0, 0.0], &[2, 1], DType::Bool);
    check(Op::Logical(LogicalOp::And), &[p.clone(), q.clone()]);
    check(Op::Logical(LogicalOp::Or), &[p.clone(), q.clone()]);
    check(Op::LogicalNot, std::slice::from_ref(&p));
    for dtype in [DType::F32, DType::F64, DType::I32, DType::I64, DType::Bool] {
        let x = tensor(&[1.0, 2.0], &[2], dtype);
        let y = tensor(&[0.0], &[], dtype);
        check(Op::Select, &[q.clone(), x, y]);
    }
}

#[test]
fn casts_match_the_cpu_for_every_pair() {
    let every = [DType::F32, DType::F64, DType::I32, DType::I64, DType::Bool];
    let special = [
        -1.7,
        0.0,
        2.9,
        f64::NAN,
        f64::INFINITY,
        -1e10,
        3e9,
        -2147483649.0,
        1e19,
        -9.3e18,
        16777217.0,
    ];
    for from in every {
        let x = tensor(&special, &[special.len()], from);
        // (A cast to the same dtype shares the input's memory: no kernel.)
        for to in every.into_iter().filter(|&to| to != from) {
            check(Op::Cast { dtype: to }, std::slice::from_ref(&x));
        }
    }
    // int64 to int32 wraps; int64 to float32 rounds through float64 as the CPU does.
    let wide = Tensor::new([i64::MAX, -5_000_000_000, 9_007_199_791_611_905]);
    for to in [DType::I32, DType::F32, DType::F64] {
        check(Op::Cast { dtype: to }, std::slice::from_ref(&wide));
    }
}

#[test]
fn reductions_match_the_cpu() {
    let kinds = [
        ReduceKind::Sum,
        ReduceKind::Mean,
        ReduceKind::Max,
        ReduceKind::Min,
        ReduceKind::Prod,
    ];
    let axes_sets: [&[i64]; 5] = [&[0], &[1], &[0, 2], &[-1], &[0, 1, 2]];
    for dtype in [DType::F32, DType::F64, DType::I32, DType::I64] {
        for kind in kinds {
            // Integer products of these values would overflow (a panic in the CPU kernel of
            // a debug build): signs only, then.
            let int_prod = kind == ReduceKind::Prod && dtype.is_int();
            let data = |n: usize, scale: f64| -> Vec<f64> {
                values(n)
                    .iter()
                    .map(|v| {
                        if int_prod {
                            if *v < 0.0 {
                                -1.0
                            } else {
                                1.0
                            }
                        } else {
                            (v * scale).round() / 4.0
                        }
                    })
                    .collect()
            };
            let x = tensor(&data(60, 4.0), &[3, 4, 5], dtype);
            for axes in axes_sets {
                for keepdims in [false, true] {
                    let op = Op::Reduce {
                        kind,
                        axes: Axes::from(axes.to_vec()),
                        keepdims,
                    };
                    check(op, std::slice::from_ref(&x));
                }
            }
            // More elements than threads, and an empty reduction.
            let long = tensor(&data(3000, 0.0625), &[3, 1000], dtype);
            check(
                Op::Reduce {
                    kind,
                    axes: Axes::from(vec![1]),
                    keepdims: false,
                },
                &[long],
            );
            let empty = tensor(&[], &[2, 0], dtype);
            check(
                Op::Reduce {
                    kind,
                    axes: Axes::from(vec![1]),
                    keepdims: false,
                },
                &[empty],
            );
        }
    }
    let nan = tensor(&[1.0, f64::NAN, 3.0, 2.0], &[2, 2], DType::F32);
    for kind in [ReduceKind::Max, ReduceKind::Min, ReduceKind::Sum] {
        check(
            Op::Reduce {
                kind,
                axes: Axes::from(vec![1]),
                keepdims: false,
            },
            std::slice::from_ref(&nan),
        );
    }
}

#[test]
fn arg_reductions_keep_the_first_best_index() {
    for dtype in [DType::F32, DType::F64, DType::I32, DType::I64] {
        let x = tensor(
            &[3.0, 1.0, 3.0, 2.0, 1.0, 1.0, 0.0, 5.0, 5.0, 2.0, 4.0, 4.0],
            &[3, 4],
            dtype,
        );
        let long = tensor(&values(900), &[900], dtype);
        for kind in [ArgKind::Max, ArgKind::Min] {
            for axis in [0, 1, -1] {
                check(Op::ArgReduce { kind, axis }, std::slice::from_ref(&x));
            }
            check(Op::ArgReduce { kind, axis: 0 }, std::slice::from_ref(&long));
        }
    }
    let nan = tensor(&[f64::NAN, 1.0, 2.0, 1.0, f64::NAN, 0.5], &[2, 3], DType::F64);
    for kind in [ArgKind::Max, ArgKind::Min] {
        check(Op::ArgReduce { kind, axis: 1 }, std::slice::from_ref(&nan));
    }
}

#[test]
fn softmax_and_cross_entropies_match_the_cpu() {
    for dtype in [DType::F32, DType::F64] {
        let x = tensor(&values(24), &[2, 3, 4], dtype);
        for axis in [0, 1, -1] {
            check(Op::Softmax { axis }, std::slice::from_ref(&x));
            check(Op::LogSoftmax { axis }, std::slice::from_ref(&x));
        }
        let wide = tensor(
            &values(1200).iter().map(|v| v * 3.0).collect::<Vec<_>>(),
            &[3, 400],
            dtype,
        );
        check(Op::Softmax { axis: -1 }, std::slice::from_ref(&wide));
        let odd = tensor(
            &[
                f64::NEG_INFINITY,
                f64::NEG_INFINITY,
                1.0,
                f64::INFINITY,
                1000.0,
                -1000.0,
            ],
            &[3, 2],
            dtype,
        );
        check(Op::LogSoftmax { axis: -1 }, std::slice::from_ref(&odd));
        let labels = tensor(
            &[0.2, 0.8, 0.0, 0.5, 0.5, 0.0, 0.0, 0.0, 1.0, 0.1, 0.6, 0.3],
            &[4, 3],
            dtype,
        );
        let logits = tensor(&values(12), &[4, 3], dtype);
        check(Op::SoftmaxCrossEntropy { axis: -1 }, &[labels.clone(), logits.clone()]);
        check(Op::SoftmaxCrossEntropy { axis: 0 }, &[labels, logits.clone()]);
        for label_dtype in [DType::I32, DType::I64] {
            let sparse = tensor(&[2.0, 0.0, 1.0, 2.0], &[4], label_dtype);
            check(Op::SparseSoftmaxCrossEntropy, &[sparse, logits.clone()]);
        }
    }
}

#[test]
fn shape_ops_move_elements_like_the_cpu() {
    for dtype in [DType::F32, DType::F64, DType::I32, DType::I64, DType::Bool] {
        let x = tensor(&values(24), &[2, 3, 4], dtype);
        check(Op::Transpose { perm: vec![2, 0, 1] }, std::slice::from_ref(&x));
        check(Op::Transpose { perm: vec![1, 0, 2] }, std::slice::from_ref(&x));
        let col = tensor(&[1.0, -2.0, 3.0], &[3, 1], dtype);
        check(Op::BroadcastTo { shape: vec![2, 3, 5] }, std::slice::from_ref(&col));
        check(
            Op::Tile {
                multiples: vec![2, 1, 3],
            },
            std::slice::from_ref(&x),
        );
        let slice = |begin: Vec<Option<i64>>, end: Vec<Option<i64>>, strides: Vec<i64>| Op::StridedSlice {
            begin,
            end,
            strides,
        };
        check(
            slice(vec![Some(1), None, Some(-1)], vec![None, Some(3), None], vec![1, 2, -1]),
            std::slice::from_ref(&x),
        );
        check(
            slice(
                vec![None, Some(-1), Some(1)],
                vec![None, None, Some(3)],
                vec![-1, -2, 1],
            ),
            std::slice::from_ref(&x),
        );
        let grad = |begin: Vec<Option<i64>>, end: Vec<Option<i64>>, strides: Vec<i64>| Op::StridedSliceGrad {
            input_shape: vec![2, 3, 4],
            begin,
            end,
            strides,
        };
        let g = tensor(&values(8), &[1, 2, 4], dtype);
        check(
            grad(vec![Some(1), None, None], vec![None, Some(3), None], vec![1, 2, -1]),
            &[g],
        );
        let g = tensor(&values(4), &[2, 2, 1], dtype);
        check(
            grad(
                vec![None, Some(-1), Some(1)],
                vec![None, None, Some(2)],
                vec![-1, -2, 1],
            ),
            &[g],
        );
        check(
            Op::Pad {
                paddings: vec![[1, 0], [0, 2], [2, 1]],
                constant: 1.5,
            },
            std::slice::from_ref(&x),
        );
        let y = tensor(&values(8), &[2, 1, 4], dtype);
        let empty = tensor(&[], &[2, 0, 4], dtype);
        check(Op::Concat { axis: 1 }, &[x.clone(), y.clone(), empty, x.clone()]);
        check(Op::Concat { axis: -1 }, &[x.clone(), x.clone()]);
        check(Op::Stack { axis: 1 }, &[y.clone(), y.clone(), y.clone()]);
        check(Op::Stack { axis: -1 }, &[x.clone(), x.clone()]);
    }
}

#[test]
fn convolutions_and_pools_match_the_cpu() {
    use crate::Padding::{Same, Valid};
    for dtype in [DType::F32, DType::F64] {
        let x = tensor(&values(2 * 6 * 5 * 3), &[2, 6, 5, 3], dtype);
        let f = tensor(
            &values(3 * 2 * 3 * 4).iter().map(|v| v * 0.5).collect::<Vec<_>>(),
            &[3, 2, 3, 4],
            dtype,
        );
        for (strides, dilations, padding) in [
            ([1, 1], [1, 1], Valid),
            ([2, 1], [1, 1], Same),
            ([1, 2], [2, 1], Same),
            ([3, 2], [1, 2], Valid),
        ] {
            let conv = Op::Conv2D {
                strides,
                dilations,
                padding,
            };
            check_within(conv.clone(), &[x.clone(), f.clone()], 1e-5);
            let y = conv.infer(&[x.spec(), f.spec()]).unwrap().remove(0);
            let up = tensor(&values(y.shape.dims().iter().product()), y.shape.dims(), dtype);
            check_within(
                Op::Conv2DBackpropInput {
                    input_shape: [2, 6, 5, 3],
                    strides,
                    dilations,
                    padding,
                },
                &[f.clone(), up.clone()],
                1e-5,
            );
            check_within(
                Op::Conv2DBackpropFilter {
                    filter_shape: [3, 2, 3, 4],
                    strides,
                    dilations,
                    padding,
                },
                &[x.clone(), up],
                1e-5,
            );
        }
        // Ties (the first maximum wins) and a NaN, in max pooling and its gradient.
        let mut pv = values(2 * 5 * 5 * 2)
            .iter()
            .map(|v| (v * 2.0).round())
            .collect::<Vec<_>>();
        pv[7] = f64::NAN;
        let p = tensor(&pv, &[2, 5, 5, 2], dtype);
        for kind in [PoolKind::Max, PoolKind::Avg] {
            for (ksize, strides, padding) in [([2, 2], [2, 2], Valid), ([3, 3], [2, 2], Same), ([3, 2], [1, 1], Same)] {
                let pool = Op::Pool2D {
                    kind,
                    ksize,
                    strides,
                    padding,
                };
                check(pool.clone(), std::slice::from_ref(&p));
                let y = pool.infer(&[p.spec()]).unwrap().remove(0);
                let up = tensor(&values(y.shape.dims().iter().product()), y.shape.dims(), dtype);
                let grad = Op::Pool2DGrad {
                    kind,
                    ksize,
                    strides,
                    padding,
                };
                check(grad, &[p.clone(), up]);
                if kind == PoolKind::Max {
                    let second = tensor(&values(2 * 5 * 5 * 2), &[2, 5, 5, 2], dtype);
                    let grad_grad = Op::MaxPoolGradGrad {
                        ksize,
                        strides,
                        padding,
                    };
                    check(grad_grad, &[p.clone(), second]);
                }
            }
        }
    }
}

#[test]
fn gather_and_one_hot_match_the_cpu() {
    for dtype in [DType::F32, DType::F64, DType::I32, DType::I64, DType::Bool] {
        let params = tensor(&values(24), &[4, 3, 2], dtype);
        for index_dtype in [DType::I32, DType::I64] {
            let idx = tensor(&[3.0, 0.0, 0.0, 2.0, 1.0, 3.0], &[2, 3], index_dtype);
            check(Op::Gather { axis: 0 }, &[params.clone(), idx]);
            let idx = tensor(&[2.0, 0.0], &[2], index_dtype);
            check(Op::Gather { axis: 1 }, &[params.clone(), idx]);
            check(
                Op::Gather { axis: -1 },
                &[params.clone(), tensor(&[1.0], &[], index_dtype)],
            );
            let labels = tensor(&[0.0, 2.0, 1.0, 5.0, -1.0, 2.0], &[2, 3], index_dtype);
            for axis in [-1, 0, 1] {
                let op = Op::OneHot {
                    depth: 3,
                    on_value: 2.5,
                    off_value: -1.0,
                    axis,
                    dtype,
                };
                check(op, std::slice::from_ref(&labels));
            }
        }
    }
}

#[test]
fn scans_and_segment_sums_match_the_cpu() {
    for dtype in [DType::F32, DType::F64, DType::I32, DType::I64] {
        // Small integers keep products exact in every dtype.
        let v: Vec<f64> = (0..60).map(|i| ((i * 7) % 5) as f64 - 2.0).collect();
        let x = tensor(&v, &[3, 4, 5], dtype);
        for kind in [crate::ScanKind::Sum, crate::ScanKind::Prod] {
            for axis in [0, 1, -1] {
                for (exclusive, reverse) in [(false, false), (true, false), (false, true), (true, true)] {
                    let op = Op::Scan {
                        kind,
                        axis,
                        exclusive,
                        reverse,
                    };
                    check(op, std::slice::from_ref(&x));
                }
            }
        }
        // A line longer than a block, many lines, and an empty axis.
        let long = tensor(&values(700), &[700, 1], dtype);
        let scan = |axis| Op::Scan {
            kind: crate::ScanKind::Sum,
            axis,
            exclusive: false,
            reverse: false,
        };
        check_within(scan(0), std::slice::from_ref(&long), 1e-5);
        check_within(scan(1), std::slice::from_ref(&long), 1e-5);
        check(scan(1), &[tensor(&[], &[2, 0], dtype)]);
        for ids_dtype in [DType::I32, DType::I64] {
            let ids = tensor(&[2.0, 0.0, 2.0, 1.0, 2.0], &[5], ids_dtype);
            let data = tensor(&values(30), &[5, 3, 2], dtype);
            for num_segments in [3, 4] {
                check(Op::UnsortedSegmentSum { num_segments }, &[data.clone(), ids.clone()]);
            }
            let rows = tensor(&values(5), &[5], dtype);
            check(Op::UnsortedSegmentSum { num_segments: 3 }, &[rows, ids.clone()]);
            let none = tensor(&[], &[0, 3], dtype);
            check(
                Op::UnsortedSegmentSum { num_segments: 2 },
                &[none, tensor(&[], &[0], ids_dtype)],
            );
        }
    }
}

#[test]
fn ops_without_kernels_are_not_planned() {
    // Nine concatenated inputs exceed one kernel's parameters.
    let x = tensor(&values(16), &[1, 4, 4, 1], DType::F32);
    let many: Vec<Tensor> = (0..9).map(|_| x.clone()).collect();
    let refs: Vec<&Tensor> = many.iter().collect();
    let concat = Op::Concat { axis: 0 };
    let specs: Vec<TensorSpec> = many.iter().map(Tensor::spec).collect();
    assert!(plan(&concat, &refs, &concat.infer(&specs).unwrap()).is_none());
    // Bools have no running totals.
    let flags = tensor(&[1.0, 0.0], &[2], DType::Bool);
    let scan = Op::Scan {
        kind: crate::ScanKind::Sum,
        axis: 0,
        exclusive: false,
        reverse: false,
    };
    let spec = TensorSpec::new(DType::Bool, vec![2]);
    assert!(plan(&scan, &[&flags], &[spec]).is_none());
}

#[test]
fn every_kernel_compiles_with_nvrtc() {
    // SAFETY: only tries to open the library.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        assert!(
            std::env::var_os("FERROFLOW_REQUIRE_NVRTC").is_none(),
            "FERROFLOW_REQUIRE_NVRTC is set but libnvrtc was not found on the library path"
        );
        eprintln!("every_kernel_compiles_with_nvrtc: skipped (libnvrtc not found)");
        return;
    }
    // The check can fail: NVRTC rejects what is not CUDA.
    assert!(cudarc::nvrtc::compile_ptx("extern \"C\" __global__ void f() { undeclared(); }").is_err());
    use rayon::prelude::*;
    let mut kernels = Kernel::all();
    kernels.extend(super::fused_tests::kernels());
    let failures: Vec<String> = kernels
        .par_iter()
        .filter_map(|k| {
            cudarc::nvrtc::compile_ptx_with_opts(k.source(), super::kernel::compile_options(&k.name()))
                .err()
                .map(|e| format!("{}: {e:?}", k.name()))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "NVRTC rejected {} kernels:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("every_kernel_compiles_with_nvrtc: {} kernels compiled", kernels.len());
}
