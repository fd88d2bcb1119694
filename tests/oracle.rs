//! TensorFlow's numbers for every op of `ops.json`, through the facade.
//!
//! One case list, one op mapping (`support::oracle`), and a switch per mode: eager forward,
//! tape gradients, and both again inside a traced `function` (graph capture, optimisation
//! passes and the executor in the loop).

mod support;

use ferroflow::autodiff::{GradientOptions, GradientTape, UnconnectedGradients};
use ferroflow::graph::function;
use ferroflow::tensor::{with_device, Axes, DType, Tensor};
use support::gpu::{gpu, GPU};
use support::oracle::{compare, forward_rtol, load_cases, op_fn, report, Case};

/// How a case is run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Run the op eagerly and compare its outputs.
    Forward,
    /// Run the op under a tape and compare the vector-Jacobian products with `grads`.
    Gradient,
    /// Trace the op into a graph with `function`, run the graph, compare outputs.
    TracedForward,
    /// Trace a tape, the op and its gradient into one graph, run it, compare gradients.
    TracedGradient,
    /// As `Forward` with the inputs on the first GPU, inside its device scope.
    CudaForward,
    /// As `Gradient` with the inputs on the first GPU, inside its device scope.
    CudaGradient,
    /// As `TracedForward` with the inputs on the first GPU (the graph runs there).
    CudaTracedForward,
    /// As `TracedGradient` with the inputs on the first GPU.
    CudaTracedGradient,
}

impl Mode {
    fn on_gpu(self) -> bool {
        matches!(
            self,
            Mode::CudaForward | Mode::CudaGradient | Mode::CudaTracedForward | Mode::CudaTracedGradient
        )
    }
}

/// The case's inputs copied to the GPU.
fn on_gpu(inputs: &[Tensor]) -> Result<Vec<Tensor>, String> {
    inputs.iter().map(|t| t.to(GPU).map_err(|e| e.to_string())).collect()
}

/// Fails unless every tensor is on the GPU: a CUDA mode must not pass by computing on the host.
fn all_on_gpu(got: Vec<Tensor>) -> Result<Vec<Tensor>, String> {
    match got.iter().find(|t| t.device() != GPU) {
        Some(t) => Err(format!("a result is on {}, not the GPU", t.device())),
        None => Ok(got),
    }
}

/// The vector-Jacobian products of `f` at `inputs` with upstreams `ups`, one per input
/// (zeros where unconnected). Works eagerly and while tracing.
fn vjp(f: &support::oracle::OpFn, inputs: &[Tensor], ups: &[Tensor]) -> ferroflow::Result<Vec<Tensor>> {
    let tape = GradientTape::new();
    for x in inputs {
        tape.watch(x);
    }
    let outs = f(inputs)?;
    let zeros = GradientOptions::new().unconnected_gradients(UnconnectedGradients::Zero);
    // One output: its upstream is the output gradient. Several: the target is
    // sum_k sum(out_k * up_k), whose gradient is the same vector-Jacobian product.
    if let [out] = outs.as_slice() {
        return tape.gradient_with(out, inputs, zeros.output_gradients(ups[0].clone()));
    }
    let mut total: Option<Tensor> = None;
    for (o, u) in outs.iter().zip(ups) {
        let s = o.mul(u)?.reduce_sum(Axes::All)?;
        total = Some(match total {
            Some(t) => t.add(&s)?,
            None => s,
        });
    }
    let total = total.ok_or_else(|| ferroflow::Error::invalid("vjp", "no outputs"))?;
    tape.gradient_with(&total, inputs, zeros)
}

fn compare_grads(case: &Case, got: &[Tensor]) -> Result<(), String> {
    let want = case.grads.as_deref().ok_or("case has no gradients")?;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if let Some(w) = w {
            let exact = case.exact_grads.as_ref().and_then(|e| e[i].as_ref());
            compare(g, w, exact, gradient_rtol(w.dtype())).map_err(|e| format!("input {i}: {e}"))?;
        }
    }
    Ok(())
}

fn compare_outputs(case: &Case, got: &[Tensor]) -> Result<(), String> {
    if got.len() != case.outputs.len() {
        return Err(format!("{} outputs, want {}", got.len(), case.outputs.len()));
    }
    for (i, (g, w)) in got.iter().zip(&case.outputs).enumerate() {
        let exact = case.exact_outputs.as_ref().map(|e| &e[i]);
        compare(g, w, exact, forward_rtol(w.dtype())).map_err(|e| format!("output {i}: {e}"))?;
    }
    Ok(())
}

/// Gradient tolerance: float64 1e-9 relative, float32 1e-4 relative.
fn gradient_rtol(dtype: DType) -> f64 {
    match dtype {
        DType::F64 => 1e-9,
        _ => 1e-4,
    }
}

fn run_case(case: &Case, mode: Mode) -> Result<(), String> {
    let f = op_fn(case).ok_or("op not mapped")?;
    let ups = || case.upstreams.as_deref().ok_or("case has no gradients");
    match mode {
        Mode::Forward => compare_outputs(case, &f(&case.inputs).map_err(|e| e.to_string())?),
        Mode::Gradient => compare_grads(case, &vjp(&f, &case.inputs, ups()?).map_err(|e| e.to_string())?),
        Mode::TracedForward => {
            let traced = function(move |x: &[Tensor]| f(x));
            let outs = traced.call(&case.inputs).map_err(|e| e.to_string())?;
            if traced.tracing_count() != 1 {
                return Err("the function did not trace".into());
            }
            compare_outputs(case, &outs)
        }
        Mode::TracedGradient => {
            let n = case.inputs.len();
            let traced = function(move |args: &[Tensor]| vjp(&f, &args[..n], &args[n..]));
            let args: Vec<Tensor> = case.inputs.iter().chain(ups()?).cloned().collect();
            let got = traced.call(&args).map_err(|e| e.to_string())?;
            if traced.tracing_count() != 1 {
                return Err("the function did not trace".into());
            }
            compare_grads(case, &got)
        }
        Mode::CudaForward => {
            let inputs = on_gpu(&case.inputs)?;
            let got = with_device(GPU, || f(&inputs)).map_err(|e| e.to_string())?;
            compare_outputs(case, &all_on_gpu(got)?)
        }
        Mode::CudaGradient => {
            let (inputs, ups) = (on_gpu(&case.inputs)?, on_gpu(ups()?)?);
            let got = with_device(GPU, || vjp(&f, &inputs, &ups)).map_err(|e| e.to_string())?;
            compare_grads(case, &all_on_gpu(got)?)
        }
        Mode::CudaTracedForward => {
            let inputs = on_gpu(&case.inputs)?;
            let traced = function(move |x: &[Tensor]| f(x));
            let outs = traced.call(&inputs).map_err(|e| e.to_string())?;
            compare_outputs(case, &all_on_gpu(outs)?)
        }
        Mode::CudaTracedGradient => {
            let n = case.inputs.len();
            let traced = function(move |args: &[Tensor]| vjp(&f, &args[..n], &args[n..]));
            let args = on_gpu(&case.inputs.iter().chain(ups()?).cloned().collect::<Vec<_>>())?;
            let got = traced.call(&args).map_err(|e| e.to_string())?;
            compare_grads(case, &all_on_gpu(got)?)
        }
    }
}

/// Runs `mode` over the selected cases, prints `oracle <label>: P/N cases passed`, and fails
/// on any miss.
fn run_mode(label: &str, mode: Mode, select: impl Fn(&Case) -> bool) {
    // The GPU modes need the device (a skip, or a failure under `FERROFLOW_REQUIRE_GPU`) and
    // run one at a time, like every GPU test.
    let _serial = if mode.on_gpu() {
        let Some(guard) = gpu(&format!("oracle {label}")) else {
            return;
        };
        Some(guard)
    } else {
        None
    };
    let cases = load_cases();
    let selected: Vec<&Case> = cases.iter().filter(|c| select(c)).collect();
    let failures: Vec<String> = selected
        .iter()
        .filter_map(|c| run_case(c, mode).err().map(|e| format!("{}: {e}", c.id)))
        .collect();
    #[cfg(feature = "cuda")]
    if mode.on_gpu() {
        println!(
            "ops run on host copies: {:?}",
            ferroflow::tensor::cuda::host_fallbacks()
        );
    }
    report(label, selected.len(), &failures);
}

#[test]
fn oracle_forward() {
    run_mode("forward", Mode::Forward, |_| true);
}

#[test]
fn oracle_gradient() {
    run_mode("gradient", Mode::Gradient, |c| c.grads.is_some());
}

#[test]
fn oracle_traced_forward() {
    run_mode("traced forward", Mode::TracedForward, |_| true);
}

#[test]
fn oracle_traced_gradient() {
    run_mode("traced gradient", Mode::TracedGradient, |c| c.grads.is_some());
}

#[test]
fn oracle_cuda_forward() {
    run_mode("cuda forward", Mode::CudaForward, |_| true);
}

#[test]
fn oracle_cuda_gradient() {
    run_mode("cuda gradient", Mode::CudaGradient, |c| c.grads.is_some());
}

#[test]
fn oracle_cuda_traced_forward() {
    run_mode("cuda traced forward", Mode::CudaTracedForward, |_| true);
}

#[test]
fn oracle_cuda_traced_gradient() {
    run_mode("cuda traced gradient", Mode::CudaTracedGradient, |c| c.grads.is_some());
}
