//! Tensors on a CUDA GPU against the same ops on the CPU: copies of every dtype, the
//! elementwise and cuBLAS kernels (broadcasting, transposes, batches), reshapes without
//! copies, the placement rule and memory accounting. Each test prints why and returns when
//! the process has no GPU (a build without `--features cuda`, or no driver). Some tests
//! read process-wide counters (memory, host fallbacks), so the tests run one at a time.

#![cfg(feature = "cuda")]

use ferroflow::tensor::{with_device, Axes, DType, Device, Error, MatMul, Tensor};

#[path = "support/gpu.rs"]
mod gpu_gate;
use gpu_gate::{gpu, GPU};

fn rand(shape: &[usize], seed: u64, dtype: DType) -> Tensor {
    let n: usize = shape.iter().product();
    let mut s = seed;
    let v: Vec<f64> = (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 4.0 - 2.0
        })
        .collect();
    Tensor::from_vec(v, shape).unwrap().cast(dtype).unwrap()
}

/// Largest relative difference between two tensors' values.
fn max_rel(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims());
    let (a, b) = (a.to_f64_vec().unwrap(), b.to_f64_vec().unwrap());
    a.iter()
        .zip(&b)
        .map(|(x, y)| if x == y { 0.0 } else { (x - y).abs() / y.abs().max(1.0) })
        .fold(0.0, f64::max)
}

#[test]
fn copies_round_trip_every_dtype() {
    let Some(_serial) = gpu("copies_round_trip_every_dtype") else {
        return;
    };
    for t in [
        Tensor::new([[1.5f32, -2.0], [3.25, 4.0]]),
        Tensor::new([1e300f64, -0.0]),
        Tensor::new([i32::MIN, 7]),
        Tensor::new([i64::MAX, -1]),
        Tensor::new([true, false, true]),
        Tensor::zeros(&[0, 3], DType::F32).unwrap(),
        Tensor::scalar(2.5f64),
    ] {
        let g = t.to(GPU).unwrap();
        assert_eq!(g.device(), GPU);
        assert_eq!((g.dtype(), g.dims()), (t.dtype(), t.dims()));
        let back = g.to(Device::Cpu).unwrap();
        assert_eq!(back.device(), Device::Cpu);
        assert_eq!(back.to_f64_vec().unwrap(), t.to_f64_vec().unwrap(), "{t}");
    }
}

#[test]
fn elementwise_kernels_match_the_cpu() {
    let Some(_serial) = gpu("elementwise_kernels_match_the_cpu") else {
        return;
    };
    for dtype in [DType::F32, DType::F64] {
        let a = rand(&[4, 1, 5], 1, dtype);
        let b = rand(&[3, 1], 2, dtype);
        let (ga, gb) = (a.to(GPU).unwrap(), b.to(GPU).unwrap());
        let rtol = if dtype == DType::F32 { 1e-6 } else { 1e-13 };
        for (name, f) in [
            ("add", Tensor::add as fn(&Tensor, &Tensor) -> ferroflow::Result<Tensor>),
            ("mul", Tensor::mul),
            ("div", Tensor::div),
            ("maximum", Tensor::maximum),
            ("floormod", Tensor::floormod),
            ("squared_difference", Tensor::squared_difference),
        ] {
            let (want, got) = (f(&a, &b).unwrap(), f(&ga, &gb).unwrap());
            assert_eq!(got.device(), GPU, "{name}");
            assert!(max_rel(&got, &want) <= rtol, "{name} {dtype}: {}", max_rel(&got, &want));
        }
        for (name, f) in [
            ("exp", Tensor::exp as fn(&Tensor) -> ferroflow::Result<Tensor>),
            ("sigmoid", Tensor::sigmoid),
            ("tanh", Tensor::tanh),
            ("relu", Tensor::relu),
            ("softplus", Tensor::softplus),
            ("abs", Tensor::abs),
        ] {
            let (want, got) = (f(&a).unwrap(), f(&ga).unwrap());
            assert_eq!(got.device(), GPU, "{name}");
            assert!(max_rel(&got, &want) <= rtol, "{name} {dtype}: {}", max_rel(&got, &want));
        }
    }
    assert!(!ferroflow::tensor::cuda::host_fallbacks().contains_key("add"));
}

#[test]
fn matmul_matches_the_cpu_with_transposes_and_batches() {
    let Some(_serial) = gpu("matmul_matches_the_cpu_with_transposes_and_batches") else {
        return;
    };
    for dtype in [DType::F32, DType::F64] {
        let rtol = if dtype == DType::F32 { 1e-5 } else { 1e-12 };
        for (a_dims, b_dims, ta, tb) in [
            (vec![3, 5], vec![5, 4], false, false),
            (vec![5, 3], vec![5, 4], true, false),
            (vec![3, 5], vec![4, 5], false, true),
            (vec![2, 5, 3], vec![2, 4, 5], true, true),
            (vec![6, 3, 5], vec![5, 4], false, false),
            (vec![3, 5], vec![6, 5, 4], false, false),
            (vec![64, 70], vec![70, 33], false, false),
        ] {
            let (a, b) = (rand(&a_dims, 3, dtype), rand(&b_dims, 4, dtype));
            let mut opts = MatMul::new();
            if ta {
                opts = opts.transpose_a();
            }
            if tb {
                opts = opts.transpose_b();
            }
            let want = a.matmul_with(&b, opts).unwrap();
            let got = a.to(GPU).unwrap().matmul_with(&b.to(GPU).unwrap(), opts).unwrap();
            assert_eq!(got.device(), GPU);
            assert!(
                max_rel(&got, &want) <= rtol,
                "{a_dims:?}x{b_dims:?} {ta} {tb}: {}",
                max_rel(&got, &want)
            );
        }
    }
}

#[test]
fn sums_and_means_match_the_cpu_over_any_axes() {
    let Some(_serial) = gpu("sums_and_means_match_the_cpu_over_any_axes") else {
        return;
    };
    for dtype in [DType::F32, DType::F64] {
        let x = rand(&[3, 4, 5], 6, dtype);
        let g = x.to(GPU).unwrap();
        for axes in [
            Axes::All,
            Axes::from(vec![0i64]),
            Axes::from(vec![1i64]),
            Axes::from(vec![0i64, 2]),
        ] {
            for mean in [false, true] {
                let (want, got) = if mean {
                    (
                        x.reduce_mean(axes.clone()).unwrap(),
                        g.reduce_mean(axes.clone()).unwrap(),
                    )
                } else {
                    (x.reduce_sum(axes.clone()).unwrap(), g.reduce_sum(axes.clone()).unwrap())
                };
                assert_eq!(got.device(), GPU);
                assert!(max_rel(&got, &want) <= 1e-6, "{axes:?} mean={mean} {dtype}");
            }
        }
    }
    let fallbacks = ferroflow::tensor::cuda::host_fallbacks();
    assert!(
        !fallbacks.contains_key("reduce_sum") && !fallbacks.contains_key("reduce_mean"),
        "{fallbacks:?}"
    );
}

#[test]
fn ops_without_kernels_still_run_and_stay_on_the_gpu() {
    let Some(_serial) = gpu("ops_without_kernels_still_run_and_stay_on_the_gpu") else {
        return;
    };
    let x = rand(&[3, 4], 5, DType::F32);
    let want = x.softmax(-1).unwrap().reduce_sum(1).unwrap();
    let got = x.to(GPU).unwrap().softmax(-1).unwrap().reduce_sum(1).unwrap();
    assert_eq!(got.device(), GPU);
    assert!(max_rel(&got, &want) <= 1e-6);
    let r = x.to(GPU).unwrap().reshape(&[2, 6]).unwrap();
    assert_eq!((r.device(), r.dims()), (GPU, &[2usize, 6][..]));
    assert_eq!(r.to_vec::<f32>().unwrap(), x.to_vec::<f32>().unwrap());
}

#[test]
fn placement_follows_tensorflow() {
    let Some(_serial) = gpu("placement_follows_tensorflow") else {
        return;
    };
    let host = Tensor::new([1.0f32, 2.0, 3.0]);
    let dev = host.to(GPU).unwrap();
    // Non-scalar inputs on two devices: an error naming both.
    let e = dev.add(&host).unwrap_err();
    assert!(matches!(e, Error::DeviceMismatch { op: "add", .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("/device:GPU:0") && msg.contains("/device:CPU:0"), "{msg}");
    // Host scalars are copied.
    let y = dev.mul(&Tensor::scalar(2.0f32)).unwrap();
    assert_eq!((y.device(), y.to_vec::<f32>().unwrap()), (GPU, vec![2.0, 4.0, 6.0]));
    // A device scope copies host inputs there.
    let z = with_device(GPU, || host.add(&host)).unwrap();
    assert_eq!((z.device(), z.to_vec::<f32>().unwrap()), (GPU, vec![2.0, 4.0, 6.0]));
}

#[test]
fn memory_is_counted_and_released() {
    let Some(_serial) = gpu("memory_is_counted_and_released") else {
        return;
    };
    let before = ferroflow::tensor::cuda::memory_stats(0).unwrap();
    let big = Tensor::zeros(&[1024, 1024], DType::F32).unwrap().to(GPU).unwrap();
    let during = ferroflow::tensor::cuda::memory_stats(0).unwrap();
    assert!(during.in_use >= before.in_use + (4 << 20), "{before:?} {during:?}");
    assert!(during.peak >= during.in_use);
    drop(big);
    let after = ferroflow::tensor::cuda::memory_stats(0).unwrap();
    assert!(after.in_use < during.in_use, "{during:?} {after:?}");
}

#[test]
fn freed_buffers_are_kept_and_reused_by_size() {
    let Some(_serial) = gpu("freed_buffers_are_kept_and_reused_by_size") else {
        return;
    };
    use ferroflow::tensor::cuda::{empty_cache, memory_stats};
    let enabled = std::env::var_os("FERROFLOW_CUDA_CACHE").is_none_or(|v| v != "0");
    empty_cache(0);
    assert_eq!(memory_stats(0).unwrap().cached, 0);
    let x = rand(&[1000], 3, DType::F32).to(GPU).unwrap();
    // A dropped output is kept (not in use), unless the cache is turned off.
    let (before, first) = (memory_stats(0).unwrap(), x.neg().unwrap());
    drop(first);
    let kept = memory_stats(0).unwrap();
    assert_eq!(kept.in_use, before.in_use, "{before:?} {kept:?}");
    assert_eq!(kept.cached, if enabled { 4000 } else { 0 }, "{kept:?}");
    // The next output of that dtype and length takes it, and is written whole: its values
    // are the new op's, not the old buffer's.
    let y = x.abs().unwrap();
    assert_eq!(memory_stats(0).unwrap().cached, 0);
    let want = x.to(Device::Cpu).unwrap().abs().unwrap();
    assert_eq!(y.to_f64_vec().unwrap(), want.to_f64_vec().unwrap());
    // Another dtype or length does not take a kept buffer; `empty_cache` hands them back.
    drop(y);
    let cast = x.cast(DType::I32).unwrap();
    let shorter = rand(&[999], 4, DType::F32).to(GPU).unwrap();
    let negated = shorter.neg().unwrap();
    assert_eq!(memory_stats(0).unwrap().cached, if enabled { 4000 } else { 0 });
    assert_eq!(negated.to_f64_vec().unwrap()[0], -shorter.to_f64_vec().unwrap()[0]);
    drop((cast, shorter, negated));
    empty_cache(0);
    assert_eq!(memory_stats(0).unwrap().cached, 0);
}

/// Trains `w` in `y ≈ x·w` for 20 steps of SGD with momentum; returns the final loss.
fn train(w: &ferroflow::Variable, x: &Tensor, y: &Tensor) -> f64 {
    use ferroflow::prelude::*;
    let opt = Sgd::new(0.05).unwrap().with_momentum(0.9).unwrap();
    let mut loss = 0.0;
    for _ in 0..20 {
        let tape = GradientTape::new();
        let l = losses::mean_squared_error(y, &x.matmul(&w.read().unwrap()).unwrap()).unwrap();
        let dw = tape.gradient(&l, w).unwrap();
        opt.apply_gradients([(dw, w)]).unwrap();
        loss = l.to_scalar::<f64>().unwrap();
    }
    loss
}

#[test]
fn variables_live_and_train_on_the_gpu() {
    let Some(_serial) = gpu("variables_live_and_train_on_the_gpu") else {
        return;
    };
    let (x, y) = (rand(&[8, 3], 7, DType::F64), rand(&[8, 1], 8, DType::F64));
    let host = ferroflow::Variable::new("w", Tensor::zeros(&[3, 1], DType::F64).unwrap()).unwrap();
    let want = train(&host, &x, &y);
    // Made inside a device scope: the variable lives on the GPU, its reads too.
    let dev = with_device(GPU, || {
        ferroflow::Variable::new("w", Tensor::zeros(&[3, 1], DType::F64).unwrap())
    })
    .unwrap();
    assert_eq!((dev.device(), dev.read().unwrap().device()), (GPU, GPU));
    let got = train(&dev, &x.to(GPU).unwrap(), &y.to(GPU).unwrap());
    assert_eq!(dev.device(), GPU);
    assert!((got - want).abs() <= 1e-12 * want.abs().max(1.0), "{got} vs {want}");
    assert!(max_rel(&dev.value(), &host.value()) <= 1e-12);
    // Moving a variable and assigning a host value to it.
    host.to_device(GPU).unwrap();
    host.assign(&Tensor::new([[1.0f64], [2.0], [3.0]])).unwrap();
    assert_eq!(host.device(), GPU);
    assert_eq!(host.value().to_f64_vec().unwrap(), vec![1.0, 2.0, 3.0]);
    host.assign_add(&Tensor::new([[1.0f64], [1.0], [1.0]]).to(GPU).unwrap())
        .unwrap();
    assert_eq!(host.value().to_f64_vec().unwrap(), vec![2.0, 3.0, 4.0]);
}

#[test]
fn a_traced_elementwise_chain_runs_as_one_fused_kernel() {
    let Some(_serial) = gpu("a_traced_elementwise_chain_runs_as_one_fused_kernel") else {
        return;
    };
    use ferroflow::graph::function;
    // W6: sigmoid(x * a + b) * c, which the graph compiler fuses into one node.
    let w6 = |x: &[Tensor]| -> ferroflow::Result<Vec<Tensor>> {
        Ok(vec![x[0].mul(&x[1])?.add(&x[2])?.sigmoid()?.mul(&x[3])?])
    };
    let traced = function(w6);
    for dtype in [DType::F32, DType::F64] {
        let host: Vec<Tensor> = (0..4).map(|i| rand(&[1000, 37], 20 + i, dtype)).collect();
        let args: Vec<Tensor> = host.iter().map(|t| t.to(GPU).unwrap()).collect();
        let eager = w6(&args).unwrap().remove(0);
        let first = traced.call(&args).unwrap().remove(0);
        let before = ferroflow::tensor::cuda::memory_stats(0).unwrap().allocations;
        let got = traced.call(&args).unwrap().remove(0);
        let allocated = ferroflow::tensor::cuda::memory_stats(0).unwrap().allocations - before;
        assert_eq!(got.device(), GPU);
        // One kernel writing one buffer, not four ops with a buffer each.
        assert_eq!(allocated, 1, "{dtype:?}: buffers allocated by one call");
        // Each step rounds as its own kernel does: the fused node gives the eager GPU bits.
        assert_eq!(got.to_f64_vec().unwrap(), eager.to_f64_vec().unwrap(), "{dtype:?}");
        assert_eq!(first.to_f64_vec().unwrap(), eager.to_f64_vec().unwrap());
        let cpu = w6(&host).unwrap().remove(0);
        let tol = if dtype == DType::F32 { 1e-6 } else { 1e-13 };
        assert!(max_rel(&got, &cpu) <= tol, "{dtype:?}");
    }
}

/// A two-layer MLP on the digits-like data below, compiled for graph execution.
fn mlp() -> ferroflow::Result<ferroflow::nn::Model> {
    use ferroflow::prelude::*;
    ferroflow::tensor::random::set_seed(7);
    let mut s = Sequential::new();
    s.add(Dense::new(16).with_activation(Activation::Relu).with_input_dim(8)?);
    s.add(Dense::new(3));
    let mut m = Model::new(s);
    m.compile(
        CompileOptions::new(Sgd::new(0.1)?, Loss::SparseCategoricalCrossentropy(Predictions::Logits))
            .with_metrics(["accuracy"]),
    )?;
    Ok(m)
}

#[test]
fn fit_evaluate_and_checkpoints_work_inside_a_gpu_scope() {
    let Some(_serial) = gpu("fit_evaluate_and_checkpoints_work_inside_a_gpu_scope") else {
        return;
    };
    use ferroflow::prelude::*;
    let x = rand(&[64, 8], 30, DType::F32);
    let labels: Vec<i32> = (0..64).map(|i| i * 7 % 3).collect();
    let y = Tensor::from_vec(labels, &[64]).unwrap();
    let options = || FitOptions::new().epochs(3).batch_size(16).shuffle(false).verbose(0);
    let host = mlp().unwrap();
    let want = host.fit((&x, &y), options()).unwrap();
    // Built, trained and evaluated inside the scope: variables and optimizer state on the GPU.
    let dev = with_device(GPU, mlp).unwrap();
    let got = with_device(GPU, || dev.fit((&x, &y), options())).unwrap();
    assert!(dev.get_weights().unwrap().iter().all(|w| w.device() == GPU));
    for key in ["loss", "accuracy"] {
        let (g, w) = (got.get(key).unwrap(), want.get(key).unwrap());
        for (a, b) in g.iter().zip(w) {
            assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "{key}: GPU {g:?}, CPU {w:?}");
        }
    }
    let on_gpu = with_device(GPU, || dev.predict_on_batch(&x)).unwrap();
    assert!(max_rel(&on_gpu, &host.predict_on_batch(&x).unwrap()) <= 1e-4);
    // Saved from GPU memory, restored into a CPU model and into a GPU model.
    let dir = std::env::temp_dir().join(format!("ferroflow-gpu-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["w.safetensors", "w.ckpt"] {
        let path = dir.join(file);
        dev.save_weights(&path).unwrap();
        let cpu = mlp().unwrap();
        cpu.predict_on_batch(&x).unwrap();
        cpu.load_weights(&path).unwrap();
        // The same weights on the host: the CPU's GEMM, not cuBLAS, so not bit for bit.
        assert!(max_rel(&cpu.predict_on_batch(&x).unwrap(), &on_gpu) <= 1e-5);
        let gpu_model = with_device(GPU, mlp).unwrap();
        with_device(GPU, || gpu_model.predict_on_batch(&x)).unwrap();
        gpu_model.load_weights(&path).unwrap();
        assert!(gpu_model.get_weights().unwrap().iter().all(|w| w.device() == GPU));
        let again = with_device(GPU, || gpu_model.predict_on_batch(&x)).unwrap();
        assert_eq!(again.to_vec::<f32>().unwrap(), on_gpu.to_vec::<f32>().unwrap());
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn datasets_prefetch_to_the_gpu_on_a_background_thread() {
    let Some(_serial) = gpu("datasets_prefetch_to_the_gpu_on_a_background_thread") else {
        return;
    };
    use ferroflow::data::Dataset;
    let x = rand(&[10, 3], 31, DType::F32);
    let y = Tensor::from_vec((0..10i64).collect::<Vec<_>>(), &[10]).unwrap();
    let host = Dataset::from_tensor_slices((&x, &y)).unwrap().batch(4);
    let staged = host.prefetch_to_device(GPU, 2);
    let (mut a, mut b) = (host.iter(), staged.iter());
    for _ in 0..3 {
        let (want, got) = (a.next().unwrap().unwrap(), b.next().unwrap().unwrap());
        for (w, g) in want.iter().zip(&got) {
            assert_eq!(g.device(), GPU);
            assert_eq!(g.dtype(), w.dtype());
            assert_eq!(
                g.to(Device::Cpu).unwrap().to_f64_vec().unwrap(),
                w.to_f64_vec().unwrap()
            );
        }
    }
    assert!(b.next().is_none());
}

/// A convolution: input dims, filter dims, strides, dilations, padding.
type ConvCase = (
    [usize; 4],
    [usize; 4],
    [usize; 2],
    [usize; 2],
    ferroflow::tensor::Padding,
);

/// How far `op` on the GPU, in `dtype`, is from the exact result, as a fraction of the
/// worst-case error of any summation order: `op` sums `terms` products per element, so an
/// element computed in floating point (any order, with or without fused multiply-adds) is
/// within `γ · Σ|products|` of exact, `γ = terms·u / (1 − terms·u)` with `u` the dtype's unit
/// roundoff. `Σ|products|` is `op` on the inputs' magnitudes, and the exact result is `op`
/// in float64 on the CPU (the float64 reference has a `γ` of its own, hence the factor 2).
/// A wrong index or a dropped term lands orders of magnitude above 1; rounding stays below.
fn conv_error(op: &ferroflow::tensor::Op, inputs: [&Tensor; 2], terms: usize, dtype: DType) -> f64 {
    use ferroflow::tensor::dispatch1;
    let wide = inputs.map(|t| t.cast(DType::F64).unwrap());
    let exact = dispatch1(op.clone(), &[&wide[0], &wide[1]])
        .unwrap()
        .to_f64_vec()
        .unwrap();
    let magnitude = wide.each_ref().map(|t| t.abs().unwrap());
    let scale = dispatch1(op.clone(), &[&magnitude[0], &magnitude[1]])
        .unwrap()
        .to_f64_vec()
        .unwrap();
    let on_gpu = inputs.map(|t| t.to(GPU).unwrap());
    let got = dispatch1(op.clone(), &[&on_gpu[0], &on_gpu[1]]).unwrap();
    assert_eq!(got.device(), GPU);
    assert_eq!(got.dtype(), dtype);
    let got = got.to_f64_vec().unwrap();
    assert_eq!(got.len(), exact.len());
    let u = if dtype == DType::F32 {
        f64::from(f32::EPSILON) / 2.0
    } else {
        f64::EPSILON / 2.0
    };
    let n_u = terms as f64 * u;
    let gamma = 2.0 * n_u / (1.0 - n_u);
    got.iter()
        .zip(&exact)
        .zip(&scale)
        .map(|((g, e), s)| {
            let err = (g - e).abs();
            if err == 0.0 {
                0.0
            } else {
                err / (gamma * s)
            }
        })
        .fold(0.0, f64::max)
}

#[test]
fn convolutions_on_the_gemm_path_match_the_cpu() {
    let Some(_serial) = gpu("convolutions_on_the_gemm_path_match_the_cpu") else {
        return;
    };
    use ferroflow::tensor::{Op, Padding};
    // Windows deep enough for the im2col + cuBLAS path, and one thin case on the direct kernel.
    let cases: [ConvCase; 6] = [
        ([4, 12, 10, 3], [3, 3, 3, 32], [1, 1], [1, 1], Padding::Same),
        ([2, 11, 9, 8], [3, 3, 8, 16], [2, 2], [1, 1], Padding::Valid),
        ([1, 10, 12, 2], [5, 3, 2, 8], [3, 2], [1, 1], Padding::Same),
        ([2, 9, 9, 6], [2, 2, 6, 12], [1, 1], [3, 2], Padding::Same),
        ([3, 5, 7, 32], [1, 1, 32, 16], [1, 1], [1, 1], Padding::Valid),
        ([2, 8, 8, 1], [3, 3, 1, 4], [1, 1], [1, 1], Padding::Same),
    ];
    // Every case and direction is measured before anything is asserted, so one run on the
    // device shows them all.
    let mut failures = Vec::new();
    for dtype in [DType::F32, DType::F64] {
        for (i, (xd, fd, strides, dilations, padding)) in cases.into_iter().enumerate() {
            let (x, f) = (rand(&xd, 40 + i as u64, dtype), rand(&fd, 50 + i as u64, dtype));
            let conv = Op::Conv2D {
                strides,
                dilations,
                padding,
            };
            let out = ferroflow::tensor::dispatch1(conv.clone(), &[&x, &f]).unwrap();
            let up = rand(out.dims(), 60 + i as u64, dtype);
            let [n, ho, wo, _] = <[usize; 4]>::try_from(out.dims()).unwrap();
            let [kh, kw, cin, cout] = fd;
            let input_grad = Op::Conv2DBackpropInput {
                input_shape: xd,
                strides,
                dilations,
                padding,
            };
            let filter_grad = Op::Conv2DBackpropFilter {
                filter_shape: fd,
                strides,
                dilations,
                padding,
            };
            for (what, op, inputs, terms) in [
                ("forward", conv, [&x, &f], kh * kw * cin),
                ("input gradient", input_grad, [&f, &up], kh * kw * cout),
                ("filter gradient", filter_grad, [&x, &up], n * ho * wo),
            ] {
                let error = conv_error(&op, inputs, terms, dtype);
                eprintln!("{dtype:?} case {i} {what}: error {error:.3} of the summation bound");
                if error > 1.0 {
                    failures.push(format!("{dtype:?} case {i} {what}: {error:.3}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "beyond the summation bound: {failures:?}");
}
