//! One test per statement of `spec/tf-function-semantics.md` (the tf.function part, F01–F15),
//! checked against ferroflow's `function`. Where Rust has no counterpart of a Python
//! mechanism (numpy arrays, AutoGraph), the test checks the Rust equivalent and says so.

use ferroflow::autodiff::GradientTape;
use ferroflow::graph::{config, function, Function, FunctionOutput, InputSpec, StaticArg};
use ferroflow::tensor::{Axes, DType, Tensor, TensorSpec, Variable};
use std::cell::Cell;
use std::rc::Rc;

fn op_types<A: ?Sized, O: FunctionOutput>(f: &Function<'_, A, O>, specs: &[TensorSpec]) -> Vec<String> {
    f.get_concrete_function(specs)
        .unwrap()
        .operations()
        .into_iter()
        .map(|o| o.op_type)
        .collect()
}

fn scalar(v: f32) -> Tensor {
    Tensor::scalar(v)
}

/// Serialises the tests that flip the global eager switch.
static EAGER_SWITCH: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn f01_first_call_traces_later_calls_reuse_the_graph() {
    let _g = EAGER_SWITCH.lock().unwrap_or_else(|p| p.into_inner());
    let runs = Rc::new(Cell::new(0));
    let r = runs.clone();
    let f = function(move |x: &[Tensor]| {
        r.set(r.get() + 1);
        assert!(x[0].is_symbolic(), "the body sees symbolic tensors while tracing");
        Ok(vec![x[0].mul(&scalar(2.0))?])
    });
    let a = f.call(&[scalar(1.0)]).unwrap()[0].to_scalar::<f32>().unwrap();
    let b = f.call(&[scalar(2.0)]).unwrap()[0].to_scalar::<f32>().unwrap();
    assert_eq!((a, b, runs.get(), f.tracing_count()), (2.0, 4.0, 1, 1));
}

#[test]
fn f02_cache_key_is_dtype_and_shape() {
    let _g = EAGER_SWITCH.lock().unwrap_or_else(|p| p.into_inner());
    let f = function(|x: &[Tensor]| Ok(vec![x[0].add(&x[0].scalar_like(1.0))?]));
    let mut counts = Vec::new();
    f.call(&[scalar(1.0)]).unwrap();
    f.call(&[scalar(2.0)]).unwrap();
    counts.push(f.tracing_count());
    f.call(&[Tensor::scalar(1i32)]).unwrap();
    counts.push(f.tracing_count());
    f.call(&[Tensor::new([1.0f32, 2.0])]).unwrap();
    f.call(&[Tensor::new([3.0f32, 4.0])]).unwrap();
    counts.push(f.tracing_count());
    f.call(&[Tensor::new([1.0f32, 2.0, 3.0])]).unwrap();
    counts.push(f.tracing_count());
    assert_eq!(counts, vec![1, 2, 3, 4]);
}

#[test]
fn f03_static_arguments_are_keyed_by_value_and_baked_in() {
    let _g = EAGER_SWITCH.lock().unwrap_or_else(|p| p.into_inner());
    let f = Function::with_statics(|x: &[Tensor], s: &[StaticArg]| {
        let n = s[0].as_f64().unwrap_or(1.0);
        Ok(vec![x[0].mul(&x[0].scalar_like(n))?])
    });
    let x = scalar(1.0);
    f.call_with(std::slice::from_ref(&x), &[2i64.into()]).unwrap();
    f.call_with(std::slice::from_ref(&x), &[3i64.into()]).unwrap();
    let y = f.call_with(std::slice::from_ref(&x), &[2i64.into()]).unwrap();
    assert_eq!(f.tracing_count(), 2);
    assert_eq!(y[0].to_scalar::<f32>().unwrap(), 2.0);
    let cf = f.get_concrete_function_with(&[x.spec()], &[2i64.into()]).unwrap();
    let types: Vec<String> = cf.operations().into_iter().map(|o| o.op_type).collect();
    assert_eq!(types, vec!["Placeholder", "Const", "Mul", "Identity"]);
}

#[test]
fn f03b_tensors_from_ndarray_are_keyed_by_dtype_and_shape_not_value() {
    // Rust's counterpart of numpy arguments: tensors made from ndarray arrays.
    let _g = EAGER_SWITCH.lock().unwrap_or_else(|p| p.into_inner());
    let f = function(|x: &[Tensor]| Ok(vec![x[0].add(&x[0].scalar_like(1.0))?]));
    f.call(&[Tensor::from_ndarray(ndarray::array![1.0f64])]).unwrap();
    f.call(&[Tensor::from_ndarray(ndarray::array![2.0f64])]).unwrap();
    assert_eq!(f.tracing_count(), 1);
    let cf = f
        .get_concrete_function(&[TensorSpec::new(DType::F64, vec![1])])
        .unwrap();
    assert_eq!(cf.signature()[0].to_string(), "TensorSpec(shape=(1), dtype=float64)");
}

#[test]
fn f03c_variable_values_and_argument_lists_are_keyed_structurally() {
    let _g = EAGER_SWITCH.lock().unwrap_or_else(|p| p.into_inner());
    // A variable's value passed in is keyed by dtype and shape, not identity.
    let f = function(|x: &[Tensor]| Ok(vec![x[0].mul(&x[0].scalar_like(2.0))?]));
    let (a, b, c) = (
        Variable::new("a", scalar(1.0)).unwrap(),
        Variable::new("b", scalar(2.0)).unwrap(),
        Variable::new("c", Tensor::new([1.0f32, 2.0])).unwrap(),
    );
    f.call(&[a.value()]).unwrap();
    let y = f.call(&[b.value()]).unwrap();
    assert_eq!((y[0].to_scalar::<f32>().unwrap(), f.tracing_count()), (4.0, 1));
    f.call(&[c.value()]).unwrap();
    assert_eq!(f.tracing_count(), 2);
    // A list of tensors is keyed by its length and each element's spec.
    let g = function(|xs: &[Tensor]| {
        let mut acc = xs[0].clone();
        for x in &xs[1..] {
            acc = acc.add(x)?;
        }
        Ok(vec![acc])
    });
    g.call(&[scalar(1.0), scalar(2.0)]).unwrap();
    g.call(&[scalar(3.0), scalar(4.0)]).unwrap();
    g.call(&[scalar(1.0), scalar(1.0), scalar(1.0)]).unwrap();
    assert_eq!(g.tracing_count(), 2);
}

#[test]
fn f04_input_signature_with_none_dims_traces_once_and_rejects_other_dtypes() {
    let _g = EAGER_SWITCH.lock().unwrap_or_else(|p| p.into_inner());
    let f = function(|x: &[Tensor]| Ok(vec![x[0].reduce_sum(Axes::All)?]))
        .with_input_signature(vec![InputSpec::new(DType::F32, &[None])]);
    let a = f.call(&[Tensor::new([1.0f32, 2.0])]).unwrap()[0]
        .to_scalar::<f32>()
        .unwrap();
    let b = f.call(&[Tensor::new([1.0f32, 2.0, 3.0])]).unwrap()[0]
        .to_scalar::<f32>()
        .unwrap();
    assert_eq!((a, b, f.tracing_count()), (3.0, 6.0, 1));
    let e = f.call(&[Tensor::new([1i32, 2])]).unwrap_err().to_string();
    assert!(e.contains("does not match the input signature"), "{e}");
}

#[test]
fn f04b_input_signature_rejects_a_rank_mismatch() {
    let _g = EAGER_SWITCH.lock().unwrap_or_else(|p| p.into_inner());
    let f = function(|x: &[Tensor]| Ok(vec![x[0].reduce_sum(Axes::All)?]))
        .with_input_signature(vec![InputSpec::new(DType::F32, &[None])]);
    assert_eq!(
        f.call(&[Tensor::from(vec![1.0f32, 2.0])]).unwrap()[0]
            .to_scalar::<f32>()
            .unwrap(),
        3.0
    );
    assert!(f.call(&[Tensor::new([[1.0f32]])]).is_err());
}

#[test]
fn f05_reduce_retracing_generalises_after_the_second_shape() {
    let _g = EAGER_SWITCH.lock().unwrap_or_else(|p| p.into_inner());
    let f = function(|x: &[Tensor]| Ok(vec![x[0].add(&x[0].scalar_like(1.0))?])).with_reduce_retracing(true);
    for n in 1..=4 {
        let y = f.call(&[Tensor::zeros(&[n], DType::F32).unwrap()]).unwrap();
        assert_eq!(y[0].to_vec::<f32>().unwrap(), vec![1.0; n]);
    }
    assert_eq!(f.tracing_count(), 2);
    let cf = f
        .get_concrete_function(&[TensorSpec::new(DType::F32, vec![5])])
        .unwrap();
    assert_eq!(cf.signature()[0].to_string(), "TensorSpec(shape=(None), dtype=float32)");
}

#[test]
fn f05b_default_retraces_for_every_new_shape() {
    let _g = EAGER_SWITCH.lock().unwrap_or_else(|p| p.into_inner());
    let f = function(|x: &[Tensor]| Ok(vec![x[0].add(&x[0].scalar_like(1.0))?]));
    for n in 1..=4 {
        f.call(&[Tensor::zeros(&[n], DType::F32).unwrap()]).unwrap();
    }
    assert_eq!(f.tracing_count(), 4);
}

#[test]
fn f06_side_effects_only_while_tracing() {
    let _g = EAGER_SWITCH.lock().unwrap_or_else(|p| p.into_inner());
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    let f = function(move |x: &[Tensor]| {
        c.set(c.get() + 1);
        Ok(vec![x[0].identity()?])
    });
    f.call(&[Tensor::scalar(1i32)]).unwrap();
    f.call(&[Tensor::scalar(2i32)]).unwrap();
    assert_eq!(calls.get(), 1);
}

#[test]
fn f07_variables_created_while_tracing_are_created_once() {
    // The create-once pattern (F07b): a variable made on the first trace is captured by
    // reference and reused by every later call.
    let _g = EAGER_SWITCH.lock().unwrap_or_else(|p| p.into_inner());
    let slot: Rc<std::cell::RefCell<Option<Variable>>> = Rc::default();
    let s = slot.clone();
    let f = function(move |x: &[Tensor]| {
        let v = s
            .borrow_mut()
            .get_or_insert_with(|| Variable::new("v", scalar(2.0)).unwrap())
            .clone();
        Ok(vec![v.read()?.mul(&x[0])?])
    });
    assert_eq!(f.call(&[scalar(3.0)]).unwrap()[0].to_scalar::<f32>().unwrap(), 6.0);
    assert_eq!(f.call(&[scalar(4.0)]).unwrap()[0].to_scalar::<f32>().unwrap(), 8.0);
    assert!(slot.borrow().is_some());
    // A variable's initial value must be eager: one computed from a traced value is refused.
    let bad = function(|x: &[Tensor]| Ok(vec![Variable::new("bad", x[0].clone())?.read()?]));
    assert!(bad.call(&[scalar(1.0)]).is_err());
}

#[test]
fn f08_variables_are_captured_by_reference() {
    let _g = EAGER_SWITCH.lock().unwrap_or_else(|p| p.into_inner());
    let v = Variable::new("v", scalar(1.0)).unwrap();
    let v2 = v.clone();
    let f = function(move || v2.read()?.mul(&scalar(2.0)));
    assert_eq!(f.call(()).unwrap().to_scalar::<f32>().unwrap(), 2.0);
    v.assign(&scalar(5.0)).unwrap();
    assert_eq!(f.call(()).unwrap().to_scalar::<f32>().unwrap(), 10.0);
    assert_eq!(f.tracing_count(), 1);
    assert_eq!(op_types(&f, &[]), vec!["ReadVariableOp", "Const", "Mul", "Identity"]);
}

#[test]
fn f09_captured_eager_tensors_are_snapshotted() {
    let _g = EAGER_SWITCH.lock().unwrap_or_else(|p| p.into_inner());
    let t = scalar(1.0);
    let big = Tensor::ones(&[1000], DType::F32).unwrap();
    let captured = Rc::new(std::cell::RefCell::new(t));
    let c = captured.clone();
    let f = function(move || c.borrow().add(&big.reduce_sum(Axes::All)?));
    assert_eq!(f.call(()).unwrap().to_scalar::<f32>().unwrap(), 1001.0);
    *captured.borrow_mut() = scalar(100.0);
    assert_eq!(f.call(()).unwrap().to_scalar::<f32>().unwrap(), 1001.0);
    let types = op_types(&f, &[]);
    assert_eq!(types, vec!["Const", "Sum", "Const", "AddV2", "Identity"]);
}

#[test]
fn f09b_captured_numbers_are_baked_in_at_trace_time() {
    let _g = EAGER_SWITCH.lock().unwrap_or_else(|p| p.into_inner());
    let k = Rc::new(Cell::new(1.0f64));
    let kk = k.clone();
    let f = function(move |x: &[Tensor]| Ok(vec![x[0].add(&x[0].scalar_like(kk.get()))?]));
    assert_eq!(f.call(&[scalar(0.0)]).unwrap()[0].to_scalar::<f32>().unwrap(), 1.0);
    k.set(10.0);
    assert_eq!(f.call(&[scalar(0.0)]).unwrap()[0].to_scalar::<f32>().unwrap(), 1.0);
}

#[test]
fn f10_run_functions_eagerly_runs_the_closure_every_call() {
    let _g = EAGER_SWITCH.lock().unwrap_or_else(|p| p.into_inner());
    let seen: Rc<std::cell::RefCell<Vec<bool>>> = Rc::default();
    let s = seen.clone();
    let f = function(move |x: &[Tensor]| {
        s.borrow_mut().push(!x[0].is_symbolic());
        Ok(vec![x[0].clone()])
    });
    config::run_functions_eagerly(true);
    f.call(&[Tensor::scalar(1i32)]).unwrap();
    f.call(&[Tensor::scalar(2i32)]).unwrap();
    config::run_functions_eagerly(false);
    f.call(&[Tensor::scalar(3i32)]).unwrap();
    f.call(&[Tensor::scalar(4i32)]).unwrap();
    assert_eq!(*seen.borrow(), vec![true, true, false]);
}

#[test]
fn f11_gradient_tape_inside_a_function() {
    let _g = EAGER_SWITCH.lock().unwrap_or_else(|p| p.into_inner());
    let w = Variable::new("w", Tensor::new([[1.0f32], [2.0]])).unwrap();
    let w2 = w.clone();
    let step = function(move |x: &[Tensor]| {
        let tape = GradientTape::new();
        let loss = x[0].matmul(&w2.read()?)?.square()?.reduce_sum(Axes::All)?;
        let g = tape.gradient(&loss, &w2)?;
        Ok(vec![loss, g])
    });
    let out = step.call(&[Tensor::new([[1.0f32, 1.0]])]).unwrap();
    assert_eq!(out[0].to_scalar::<f32>().unwrap(), 9.0);
    assert_eq!(out[1].to_vec::<f32>().unwrap(), vec![6.0, 6.0]);
    assert_eq!(step.tracing_count(), 1);
}

#[test]
fn f11b_gradient_tape_outside_records_through_a_function_call() {
    let _g = EAGER_SWITCH.lock().unwrap_or_else(|p| p.into_inner());
    let w = Variable::new("w", scalar(3.0)).unwrap();
    let w2 = w.clone();
    let f = function(move |x: &[Tensor]| Ok(vec![w2.read()?.mul(&x[0])?.mul(&x[0])?]));
    let tape = GradientTape::new();
    let y = f.call(&[scalar(2.0)]).unwrap().remove(0);
    let g = tape.gradient(&y, &w).unwrap();
    assert_eq!(
        (y.to_scalar::<f32>().unwrap(), g.to_scalar::<f32>().unwrap()),
        (12.0, 4.0)
    );
}

#[test]
fn f12_concrete_function_introspection() {
    let _g = EAGER_SWITCH.lock().unwrap_or_else(|p| p.into_inner());
    let f = function(|x: &[Tensor]| Ok(vec![x[0].matmul(&x[1])?.add(&scalar(1.0))?.sigmoid()?])).with_input_signature(
        vec![
            InputSpec::new(DType::F32, &[None, Some(3)]),
            InputSpec::new(DType::F32, &[Some(3), Some(1)]),
        ],
    );
    let cf = f
        .get_concrete_function(&[
            TensorSpec::new(DType::F32, vec![2, 3]),
            TensorSpec::new(DType::F32, vec![3, 1]),
        ])
        .unwrap();
    let ops: Vec<(String, String)> = cf.operations().into_iter().map(|o| (o.name, o.op_type)).collect();
    let want = [
        ("args_0", "Placeholder"),
        ("args_1", "Placeholder"),
        ("MatMul", "MatMul"),
        ("Const", "Const"),
        ("AddV2", "AddV2"),
        ("Sigmoid", "Sigmoid"),
        ("Identity", "Identity"),
    ];
    assert_eq!(
        ops,
        want.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Vec<_>>()
    );
    assert_eq!(cf.operations()[4].inputs, vec!["MatMul:0", "Const:0"]);
    assert_eq!(
        cf.signature()[0].to_string(),
        "TensorSpec(shape=(None, 3), dtype=float32)"
    );
    assert_eq!(cf.output_specs(), vec![TensorSpec::new(DType::F32, vec![2, 1])]);
    // The relaxed signature serves another batch size with the same trace.
    let y = f
        .call(&[
            Tensor::ones(&[4, 3], DType::F32).unwrap(),
            Tensor::ones(&[3, 1], DType::F32).unwrap(),
        ])
        .unwrap();
    assert_eq!(y[0].dims(), &[4, 1]);
    assert_eq!(f.tracing_count(), 1);
}

#[test]
fn f12b_calling_a_concrete_function_checks_dtype_not_shape() {
    let _g = EAGER_SWITCH.lock().unwrap_or_else(|p| p.into_inner());
    let f = function(|x: &[Tensor]| Ok(vec![x[0].mul(&x[0].scalar_like(2.0))?]));
    let cf = f
        .get_concrete_function(&[TensorSpec::new(DType::F32, vec![2])])
        .unwrap();
    assert_eq!(
        cf.call(&[Tensor::new([1.0f32, 2.0])]).unwrap()[0]
            .to_vec::<f32>()
            .unwrap(),
        vec![2.0, 4.0]
    );
    assert_eq!(
        cf.call(&[Tensor::new([1.0f32, 2.0, 3.0])]).unwrap()[0]
            .to_vec::<f32>()
            .unwrap(),
        vec![2.0, 4.0, 6.0]
    );
    assert!(cf.call(&[Tensor::new([1i32, 2])]).is_err());
}

#[test]
fn f13_loops_unroll_at_trace_time() {
    let _g = EAGER_SWITCH.lock().unwrap_or_else(|p| p.into_inner());
    let f = function(|x: &[Tensor]| {
        let mut y = x[0].clone();
        for _ in 0..3 {
            y = y.add(&Tensor::scalar(1i32))?;
        }
        Ok(vec![y])
    });
    assert_eq!(
        f.call(&[Tensor::scalar(0i32)]).unwrap()[0].to_scalar::<i32>().unwrap(),
        3
    );
    let types = op_types(&f, &[TensorSpec::new(DType::I32, vec![])]);
    assert_eq!(
        types,
        vec![
            "Placeholder",
            "Const",
            "AddV2",
            "Const",
            "AddV2",
            "Const",
            "AddV2",
            "Identity"
        ]
    );
}

#[test]
fn f14_branches_on_static_values_are_decided_at_trace_time() {
    let _g = EAGER_SWITCH.lock().unwrap_or_else(|p| p.into_inner());
    let f = Function::with_statics(|x: &[Tensor], s: &[StaticArg]| {
        let y = if s[0].as_bool() == Some(true) {
            x[0].mul(&Tensor::scalar(10i32))?
        } else {
            x[0].clone()
        };
        Ok(vec![y])
    });
    assert_eq!(
        f.call_with(&[Tensor::scalar(1i32)], &[true.into()]).unwrap()[0]
            .to_scalar::<i32>()
            .unwrap(),
        10
    );
    assert_eq!(
        f.call_with(&[Tensor::scalar(1i32)], &[false.into()]).unwrap()[0]
            .to_scalar::<i32>()
            .unwrap(),
        1
    );
    assert_eq!(f.tracing_count(), 2);
}

#[test]
fn f15_each_function_has_its_own_cache() {
    let _g = EAGER_SWITCH.lock().unwrap_or_else(|p| p.into_inner());
    let make = || function(|x: &[Tensor]| Ok(vec![x[0].identity()?]));
    let (a, b) = (make(), make());
    a.call(&[Tensor::scalar(1i32)]).unwrap();
    b.call(&[Tensor::scalar(1i32)]).unwrap();
    a.call(&[Tensor::scalar(2i32)]).unwrap();
    assert_eq!((a.tracing_count(), b.tracing_count()), (1, 1));
}

#[test]
fn errors_surface_at_trace_time_with_the_op_and_shapes() {
    let _g = EAGER_SWITCH.lock().unwrap_or_else(|p| p.into_inner());
    let f = function(|x: &[Tensor]| Ok(vec![x[0].matmul(&x[0])?]));
    let e = f
        .call(&[Tensor::zeros(&[2, 3], DType::F32).unwrap()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("matmul") && e.contains("[2, 3]"), "{e}");
    let failing =
        function(|_: &Tensor| -> ferroflow::Result<Tensor> { Err(ferroflow::Error::invalid("my_step", "bad input")) });
    assert!(failing.call(&scalar(1.0)).unwrap_err().to_string().contains("my_step"));
}

#[test]
fn a_training_step_traces_into_one_graph_with_updates_in_order() {
    let _g = EAGER_SWITCH.lock().unwrap_or_else(|p| p.into_inner());
    let w = Variable::new("w", Tensor::new([[0.5f64], [-0.5]])).unwrap();
    let w2 = w.clone();
    let step = function(move |x: &[Tensor]| {
        let tape = GradientTape::new();
        let loss = x[0].matmul(&w2.read()?)?.sub(&x[1])?.square()?.reduce_mean(Axes::All)?;
        let g = tape.gradient(&loss, &w2)?;
        w2.assign_sub(&g.mul(&g.scalar_like(0.1))?)?;
        Ok(vec![loss])
    });
    let x = Tensor::new([[1.0f64, 2.0], [3.0, 4.0]]);
    let y = Tensor::new([[1.0f64], [2.0]]);
    // The same steps eagerly, on a copy of the variable.
    let we = Variable::new("we", w.value()).unwrap();
    let mut eager_losses = Vec::new();
    for _ in 0..5 {
        let tape = GradientTape::new();
        let loss = x
            .matmul(&we.read().unwrap())
            .unwrap()
            .sub(&y)
            .unwrap()
            .square()
            .unwrap()
            .reduce_mean(Axes::All)
            .unwrap();
        let g = tape.gradient(&loss, &we).unwrap();
        we.assign_sub(&g.mul(&g.scalar_like(0.1)).unwrap()).unwrap();
        eager_losses.push(loss.to_scalar::<f64>().unwrap());
    }
    let traced_losses: Vec<f64> = (0..5)
        .map(|_| {
            step.call(&[x.clone(), y.clone()]).unwrap()[0]
                .to_scalar::<f64>()
                .unwrap()
        })
        .collect();
    assert_eq!(step.tracing_count(), 1);
    for (a, b) in traced_losses.iter().zip(&eager_losses) {
        approx::assert_relative_eq!(a, b, max_relative = 1e-12);
    }
    approx::assert_relative_eq!(
        w.value().to_vec::<f64>().unwrap()[0],
        we.value().to_vec::<f64>().unwrap()[0],
        max_relative = 1e-12
    );
}

/// The gradient of a mean over a relaxed signature (`tape.gradient(mean(x), x)`).
fn mean_gradient(signature: Option<Vec<InputSpec>>, runs: Rc<Cell<usize>>) -> Function<'static> {
    let f = function(move |x: &[Tensor]| {
        runs.set(runs.get() + 1);
        let tape = GradientTape::new();
        tape.watch(&x[0]);
        let mean = x[0].reduce_mean(Axes::All)?;
        Ok(vec![tape.gradient(&mean, &x[0])?])
    });
    match signature {
        Some(sig) => f.with_input_signature(sig),
        None => f.with_reduce_retracing(true),
    }
}

fn ramp(n: usize) -> Tensor {
    Tensor::from((0..n).map(|i| i as f32).collect::<Vec<_>>())
}

#[test]
fn f04c_a_relaxed_trace_that_reads_its_shapes_is_traced_per_shape_not_reused() {
    // The mean's gradient is 1/n broadcast to x's shape: a trace at n = 2 holds 1/2 and the
    // shape [2] as constants, so reusing it for n = 4 would answer [0.5, 0.5].
    let _g = EAGER_SWITCH.lock().unwrap_or_else(|p| p.into_inner());
    let runs = Rc::new(Cell::new(0));
    let f = mean_gradient(Some(vec![InputSpec::new(DType::F32, &[None])]), runs.clone());
    for n in [2usize, 4, 2, 3, 4] {
        let g = f.call(&[ramp(n)]).unwrap().remove(0);
        assert_eq!(g.to_vec::<f32>().unwrap(), vec![1.0 / n as f32; n], "n = {n}");
    }
    assert_eq!((f.tracing_count(), runs.get()), (3, 3));
    // The relaxed concrete function itself knows its graph is only right for n = 2.
    let cf = f
        .get_concrete_function(&[TensorSpec::new(DType::F32, vec![2])])
        .unwrap();
    let e = cf.call(&[ramp(5)]).unwrap_err().to_string();
    assert!(e.contains("depends on the shapes it was traced with"), "{e}");
}

#[test]
fn f05c_reduce_retracing_keeps_a_trace_per_shape_when_the_graph_reads_shapes() {
    let _g = EAGER_SWITCH.lock().unwrap_or_else(|p| p.into_inner());
    let runs = Rc::new(Cell::new(0));
    let f = mean_gradient(None, runs.clone());
    for n in [1usize, 2, 3, 2, 1] {
        let g = f.call(&[ramp(n)]).unwrap().remove(0);
        assert_eq!(g.to_vec::<f32>().unwrap(), vec![1.0 / n as f32; n], "n = {n}");
    }
    assert_eq!((f.tracing_count(), runs.get()), (3, 3));
}

#[test]
fn f04d_a_shape_generic_relaxed_trace_is_checked_once_then_reused() {
    // The second length traces once more to check that the graph does not depend on the
    // length; it does not, so that check is not a new trace and later lengths run no closure.
    let _g = EAGER_SWITCH.lock().unwrap_or_else(|p| p.into_inner());
    let runs = Rc::new(Cell::new(0));
    let r = runs.clone();
    let f = function(move |x: &[Tensor]| {
        r.set(r.get() + 1);
        Ok(vec![x[0].square()?.reduce_sum(Axes::All)?])
    })
    .with_input_signature(vec![InputSpec::new(DType::F32, &[None])]);
    for n in [2usize, 3, 4, 5, 2] {
        let want: f32 = (0..n).map(|i| (i * i) as f32).sum();
        assert_eq!(f.call(&[ramp(n)]).unwrap()[0].to_scalar::<f32>().unwrap(), want);
    }
    assert_eq!((f.tracing_count(), runs.get()), (1, 2));
}

#[test]
fn f04e_what_a_check_learns_is_kept_per_dimension() {
    // The closure reads the feature size (a constant of that length) but not the batch size:
    // every batch size shares a trace per feature size.
    let _g = EAGER_SWITCH.lock().unwrap_or_else(|p| p.into_inner());
    let runs = Rc::new(Cell::new(0));
    let r = runs.clone();
    let f = function(move |x: &[Tensor]| {
        r.set(r.get() + 1);
        let ones = Tensor::ones(&[x[0].dims()[1]], DType::F32)?;
        Ok(vec![x[0].add(&ones)?])
    })
    .with_input_signature(vec![InputSpec::new(DType::F32, &[None, None])]);
    let mut traces = Vec::new();
    for (b, n) in [(2usize, 3usize), (4, 3), (4, 5), (6, 3), (6, 5), (1, 3)] {
        let x = Tensor::zeros(&[b, n], DType::F32).unwrap();
        let y = f.call(&[x]).unwrap().remove(0);
        assert_eq!((y.dims(), y.to_vec::<f32>().unwrap()), (&[b, n][..], vec![1.0; b * n]));
        traces.push((f.tracing_count(), runs.get()));
    }
    assert_eq!(traces, [(1, 1), (1, 2), (2, 3), (2, 3), (3, 4), (3, 4)]);
}

#[test]
fn f12c_a_relaxed_concrete_function_is_checked_before_it_is_returned() {
    let _g = EAGER_SWITCH.lock().unwrap_or_else(|p| p.into_inner());
    let sig = || vec![InputSpec::new(DType::F32, &[None])];
    // Shape generic: the concrete function serves every length, and only one trace counts.
    let sum = function(|x: &[Tensor]| Ok(vec![x[0].square()?.reduce_sum(Axes::All)?])).with_input_signature(sig());
    let cf = sum
        .get_concrete_function(&[TensorSpec::new(DType::F32, vec![2])])
        .unwrap();
    assert_eq!(cf.call(&[ramp(4)]).unwrap()[0].to_scalar::<f32>().unwrap(), 14.0);
    assert_eq!(sum.tracing_count(), 1);
    // Reads its length: the concrete function refuses other lengths instead of answering
    // with the traced length's gradient.
    let runs = Rc::new(Cell::new(0));
    let mean = mean_gradient(Some(sig()), runs);
    let cf = mean
        .get_concrete_function(&[TensorSpec::new(DType::F32, vec![2])])
        .unwrap();
    assert_eq!(cf.call(&[ramp(2)]).unwrap()[0].to_vec::<f32>().unwrap(), vec![0.5; 2]);
    assert!(cf.call(&[ramp(4)]).is_err());
}

#[test]
fn f12d_a_fused_node_at_other_shapes_broadcasts_or_fails_as_the_ops_do() {
    // `sigmoid(x * y + 1)` fuses into one loop over x's traced shape [2, 3].
    let _g = EAGER_SWITCH.lock().unwrap_or_else(|p| p.into_inner());
    let f = function(|x: &[Tensor]| Ok(vec![x[0].mul(&x[1])?.add(&x[0].scalar_like(1.0))?.sigmoid()?]))
        .with_input_signature(vec![
            InputSpec::new(DType::F32, &[None, None]),
            InputSpec::new(DType::F32, &[None, None]),
        ]);
    let full = |r: usize, c: usize| Tensor::from_vec((0..r * c).map(|i| i as f32 / 10.0).collect(), &[r, c]).unwrap();
    let eager = |x: &Tensor, y: &Tensor| x.mul(y)?.add(&x.scalar_like(1.0))?.sigmoid();
    let _ = f.call(&[full(2, 3), full(2, 3)]).unwrap();
    // A row broadcast down a larger batch: the separate ops' answer, not an error.
    let (x, y) = (full(4, 3), full(1, 3));
    assert_eq!(
        f.call(&[x.clone(), y.clone()]).unwrap()[0].to_vec::<f32>().unwrap(),
        eager(&x, &y).unwrap().to_vec::<f32>().unwrap()
    );
    // Six elements each but [2, 3] against [3, 2]: a broadcast error, as eagerly.
    let cf = f
        .get_concrete_function(&[
            TensorSpec::new(DType::F32, vec![2, 3]),
            TensorSpec::new(DType::F32, vec![2, 3]),
        ])
        .unwrap();
    assert!(eager(&full(2, 3), &full(3, 2)).is_err());
    assert!(cf.call(&[full(2, 3), full(3, 2)]).is_err());
}

#[test]
fn f04f_a_fused_node_whose_inputs_lose_rank_runs_as_its_ops() {
    // squeeze drops the batch axis too when the batch is 1: the fused sigmoid·2 then sees a
    // scalar where it was traced over [4].
    let _g = EAGER_SWITCH.lock().unwrap_or_else(|p| p.into_inner());
    let f = function(|x: &Tensor| x.squeeze(Axes::All)?.sigmoid()?.mul(&scalar(2.0)))
        .with_input_signature(vec![InputSpec::new(DType::F32, &[None, Some(1)])]);
    let col = |n: usize| Tensor::from_vec((0..n).map(|i| i as f32).collect(), &[n, 1]).unwrap();
    for n in [4usize, 5, 1] {
        let got = f.call(&col(n)).unwrap();
        let want = col(n)
            .squeeze(Axes::All)
            .unwrap()
            .sigmoid()
            .unwrap()
            .mul(&scalar(2.0))
            .unwrap();
        assert_eq!(got.dims(), want.dims(), "n = {n}");
        assert_eq!(got.to_vec::<f32>().unwrap(), want.to_vec::<f32>().unwrap());
    }
}

#[test]
fn f04g_a_layer_whose_custom_op_declares_its_key_stays_shape_generic() {
    // Dropout makes a new mask op on each trace; its key (rate and seed) says two of them
    // are the same op, so the relaxed trace serves every batch size.
    use ferroflow::nn::{Dropout, Layer, Mode};
    let _g = EAGER_SWITCH.lock().unwrap_or_else(|p| p.into_inner());
    let drop = Dropout::new(0.5).unwrap().with_seed(3);
    let f = function(|x: &Tensor| drop.call(x, Mode::Training))
        .with_input_signature(vec![InputSpec::new(DType::F32, &[None])]);
    for n in [4usize, 6, 8, 5] {
        let y = f.call(&Tensor::ones(&[n], DType::F32).unwrap()).unwrap();
        // Each element is dropped (0) or kept and scaled by 1 / (1 - rate).
        assert!(
            y.to_vec::<f32>().unwrap().iter().all(|&v| v == 0.0 || v == 2.0),
            "n = {n}"
        );
        assert_eq!(y.dims(), &[n]);
    }
    assert_eq!(f.tracing_count(), 1);
}

#[test]
fn f12f_a_dense_layer_over_two_relaxed_dimensions_of_one_size_keeps_its_batch_generic() {
    // Traced at [3, 3]: growing both together fails (the kernel is 3 × 2), so each is
    // checked alone: the batch is generic, the features are read (an error at other sizes).
    let _g = EAGER_SWITCH.lock().unwrap_or_else(|p| p.into_inner());
    let w = Tensor::ones(&[3, 2], DType::F32).unwrap();
    let f = function(|x: &Tensor| x.matmul(&w)).with_input_signature(vec![InputSpec::new(DType::F32, &[None, None])]);
    let cf = f
        .get_concrete_function(&[TensorSpec::new(DType::F32, vec![3, 3])])
        .unwrap();
    let y = cf
        .call(&[Tensor::ones(&[7, 3], DType::F32).unwrap()])
        .unwrap()
        .remove(0);
    assert_eq!(
        (y.dims(), y.to_vec::<f32>().unwrap()),
        (&[7usize, 2][..], vec![3.0; 14])
    );
    assert!(cf.call(&[Tensor::ones(&[3, 4], DType::F32).unwrap()]).is_err());
    assert_eq!(f.tracing_count(), 1);
}

/// `sum(x) · k(nx, ny)` over two relaxed lengths, with `k` read from the shapes while tracing
/// (a constant in the graph), checked against the eager value at each `(nx, ny)` in turn.
fn check_lengths_read(k: fn(usize, usize) -> f64, calls: &[(usize, usize)]) -> Function<'static> {
    let f = function(move |xs: &[Tensor]| {
        let c = k(xs[0].dims()[0], xs[1].dims()[0]);
        Ok(vec![xs[0].reduce_sum(Axes::All)?.mul(&xs[0].scalar_like(c))?])
    })
    .with_input_signature(vec![
        InputSpec::new(DType::F32, &[None]),
        InputSpec::new(DType::F32, &[None]),
    ]);
    for &(nx, ny) in calls {
        let got = f.call(&[ramp(nx), ramp(ny)]).unwrap()[0].to_scalar::<f32>().unwrap();
        let want = (nx * (nx - 1) / 2) as f64 * k(nx, ny);
        assert_eq!(got, want as f32, "({nx}, {ny})");
    }
    f
}

fn difference(nx: usize, ny: usize) -> f64 {
    nx as f64 - ny as f64
}

#[test]
fn f12e_checks_see_a_closure_that_reads_how_two_sizes_relate() {
    // The constant nx - ny is the same at (5, 3) and (6, 4): growing both sizes together
    // would call both dimensions generic and answer x·2 for (10, 3).
    let _g = EAGER_SWITCH.lock().unwrap_or_else(|p| p.into_inner());
    let f = check_lengths_read(difference, &[]);
    let cf = f
        .get_concrete_function(&[
            TensorSpec::new(DType::F32, vec![5]),
            TensorSpec::new(DType::F32, vec![3]),
        ])
        .unwrap();
    assert!(cf.call(&[ramp(10), ramp(3)]).is_err());
    assert_eq!(
        f.call(&[ramp(10), ramp(3)]).unwrap()[0].to_scalar::<f32>().unwrap(),
        45.0 * 7.0
    );
}

#[test]
fn f04h_calls_that_move_two_sizes_together_do_not_hide_how_they_relate() {
    // (5, 3) then (6, 4) build the same graph (nx - ny = 2 both times); that must not make
    // (10, 3) reuse it.
    let _g = EAGER_SWITCH.lock().unwrap_or_else(|p| p.into_inner());
    check_lengths_read(difference, &[(5, 3), (6, 4), (10, 3), (6, 4)]);
}

#[test]
fn f04i_a_difference_seen_at_sizes_that_each_look_generic_is_kept() {
    // Whether the lengths are equal: (3, 5) -> (4, 5) and (3, 6) each keep them unequal,
    // (4, 4) does not; after that, (7, 7) must not reuse the (3, 5) graph.
    let _g = EAGER_SWITCH.lock().unwrap_or_else(|p| p.into_inner());
    let equal = |nx: usize, ny: usize| f64::from(u8::from(nx == ny));
    check_lengths_read(equal, &[(3, 5), (4, 4), (7, 7), (8, 2)]);
}
