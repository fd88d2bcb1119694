//! Bad input, tried as a careless user would: every probe must come back as an `Err` that
//! names the op (never a panic, never an aborted process).

use ferroflow::prelude::*;

/// `r` is an error whose message starts with `op:`.
fn fails_in<T: std::fmt::Debug>(op: &str, r: ferroflow::Result<T>) {
    match r {
        Ok(v) => panic!("{op}: expected an error, got {v:?}"),
        Err(e) => assert!(e.to_string().starts_with(&format!("{op}:")), "{op}: {e}"),
    }
}

#[test]
fn shapes_beyond_memory_are_errors_not_aborts() {
    let huge = 1usize << 40;
    fails_in("fill", Tensor::zeros(&[huge], DType::F32));
    fails_in("fill", Tensor::zeros(&[1 << 32, 1 << 32], DType::F32));
    fails_in("fill", Tensor::ones(&[usize::MAX, 2], DType::F64));
    fails_in("random_normal", random::normal(&[huge], Normal::default()));
    fails_in("random_uniform", random::uniform(&[huge], Uniform::default()));
    fails_in("truncated_normal", random::truncated_normal(&[huge], Normal::default()));
    fails_in("range", Tensor::range(0.0, 1e18, 1.0, DType::F32));
    fails_in("eye", Tensor::eye(1 << 20, DType::F32));
    fails_in("linspace", Tensor::linspace(0.0, 1.0, usize::MAX, DType::F32));
    let x = Tensor::new([1.0f32, 2.0]);
    fails_in("broadcast_to", x.broadcast_to(&[huge, 2]));
    fails_in("tile", x.tile(&[huge]));
    fails_in("pad", x.pad(&[[huge, huge]], 0.0));
    fails_in("one_hot", Tensor::new([1i32, 2]).one_hot(huge));
    let col = Tensor::zeros(&[1 << 20, 1], DType::F32).unwrap();
    fails_in("matmul", col.matmul(&col.t().unwrap()));
    // The same check holds while tracing: the trace fails, the process goes on.
    let outer = function(|c: &Tensor| c.matmul(&c.t()?));
    fails_in("matmul", outer.call(&col));
}

#[test]
fn a_dense_layer_too_large_to_build_is_an_error() {
    let d = Dense::new(1 << 40);
    fails_in(
        "random_uniform",
        d.call(&Tensor::ones(&[1, 3], DType::F32).unwrap(), Mode::Inference),
    );
}

#[test]
fn bad_hyper_parameters_are_rejected_when_the_optimizer_is_made() {
    for bad in [f64::NAN, -1.0, f64::INFINITY] {
        fails_in("SGD", Sgd::new(bad));
        fails_in("Adam", Adam::new(bad));
        fails_in("RMSprop", RmsProp::new(bad));
        fails_in("Adagrad", Adagrad::new(bad));
        fails_in("SGD", Sgd::new(0.1).and_then(|o| o.with_momentum(bad)));
        fails_in("Adam", Adam::new(0.1).and_then(|o| o.with_beta_2(bad)));
        fails_in("RMSprop", RmsProp::new(0.1).and_then(|o| o.with_rho(bad)));
        fails_in("clipnorm", Sgd::new(0.1).and_then(|o| o.with_clipnorm(bad)));
    }
    fails_in("random_normal", random::normal(&[2], Normal::new(0.0, f64::NAN)));
    fails_in("random_uniform", random::uniform(&[2], Uniform::new(1.0, 0.0)));
}

#[test]
fn a_traced_closure_that_reads_a_missing_argument_is_an_error() {
    // With the slice form nothing stops the closure from indexing past its arguments: the
    // trace catches the panic and the call fails instead of the program.
    let f = function(|xs: &[Tensor]| xs[0].add(&xs[2]));
    let (a, b) = (Tensor::new([1.0f32]), Tensor::new([2.0f32]));
    let e = f.call(&[a.clone(), b.clone()]).unwrap_err().to_string();
    assert!(e.starts_with("function:") && e.contains("index out of bounds"), "{e}");
    // With typed arguments the count is checked by the compiler; a pinned signature checks it
    // at the call.
    let g = function(|x: &Tensor, y: &Tensor| x.add(y))
        .with_input_signature(vec![ferroflow::graph::InputSpec::new(DType::F32, &[Some(1)])]);
    fails_in("function", g.call((&a, &b)));
}

#[test]
fn unknown_names_do_not_parse() {
    assert!("float32".parse::<DType>().is_ok());
    fails_in("dtype", "float8".parse::<DType>());
    fails_in("padding", "FULL".parse::<Padding>());
    fails_in("loss", "hinge_loss".parse::<Loss>());
    fails_in("activation", "swish2".parse::<Activation>());
}
