//! Numeric gradient checks: for every differentiable op, the tape's Jacobian against central
//! differences in float64 — with broadcasting, rank 0 and empty dimensions — and
//! second-order checks (a tape inside a tape) for a representative subset.

use crate::{compute_gradient, GradientOptions, GradientTape, UnconnectedGradients};
use ferroflow_tensor_core::{
    dispatch1, Axes, DType, Gelu, MatMul, Op, Padding, Result, Scan, Slice, Tensor, TensordotAxes,
};

type F = fn(&[&Tensor]) -> Result<Tensor>;

/// Deterministic inputs away from kinks: values in ±[0.3, 1.3], never near 0.
fn input(dims: &[usize], seed: u64) -> Tensor {
    let n: usize = dims.iter().product();
    let v: Vec<f64> = (0..n)
        .map(|i| {
            let h = ((i as u64 + 1) * 2654435761 + seed * 97) % 1000;
            let mag = 0.3 + h as f64 / 1000.0;
            if (i + seed as usize).is_multiple_of(3) {
                -mag
            } else {
                mag
            }
        })
        .collect();
    Tensor::from_vec(v, dims).unwrap()
}

/// Positive inputs in [0.5, 1.5] for log, sqrt, pow, ...
fn positive(dims: &[usize], seed: u64) -> Tensor {
    input(dims, seed).abs().unwrap().add(&Tensor::scalar(0.2f64)).unwrap()
}

fn check(name: &str, f: F, xs: &[Tensor], tol: f64) {
    let xs: Vec<&Tensor> = xs.iter().collect();
    let c = compute_gradient(f, &xs, 1e-6).unwrap_or_else(|e| panic!("{name}: {e}"));
    let err = c.max_error();
    assert!(err < tol, "{name}: max |theoretical - numerical| = {err:e}");
}

#[test]
fn unary_ops() {
    let cases: Vec<(&str, F, bool)> = vec![
        ("neg", |x| x[0].neg(), false),
        ("abs", |x| x[0].abs(), false),
        ("exp", |x| x[0].exp(), false),
        ("log", |x| x[0].log(), true),
        ("log1p", |x| x[0].log1p(), true),
        ("sqrt", |x| x[0].sqrt(), true),
        ("rsqrt", |x| x[0].rsqrt(), true),
        ("square", |x| x[0].square(), false),
        ("reciprocal", |x| x[0].reciprocal(), false),
        ("sin", |x| x[0].sin(), false),
        ("cos", |x| x[0].cos(), false),
        ("tanh", |x| x[0].tanh(), false),
        ("sigmoid", |x| x[0].sigmoid(), false),
        ("erf", |x| x[0].erf(), false),
        ("erfc", |x| x[0].erfc(), false),
        ("softplus", |x| x[0].softplus(), false),
        ("softsign", |x| x[0].softsign(), false),
        ("relu", |x| x[0].relu(), false),
        ("relu6", |x| x[0].relu6(), false),
        ("elu", |x| x[0].elu(), false),
        ("selu", |x| x[0].selu(), false),
        ("leaky_relu", |x| x[0].leaky_relu(0.2), false),
        ("gelu", |x| x[0].gelu(Gelu::Exact), false),
        ("gelu_tanh", |x| x[0].gelu(Gelu::Tanh), false),
        ("cast", |x| x[0].cast(DType::F64), false),
        ("identity", |x| x[0].identity(), false),
        ("clip_by_value", |x| x[0].clip_by_value(-0.9, 0.9), false),
    ];
    for (name, f, pos) in cases {
        for dims in [&[2usize, 3][..], &[], &[0, 4]] {
            let x = if pos { positive(dims, 1) } else { input(dims, 1) };
            check(name, f, &[x], 1e-7);
        }
    }
}

#[test]
fn binary_ops_with_broadcasting() {
    let cases: Vec<(&str, F)> = vec![
        ("add", |x| x[0].add(x[1])),
        ("sub", |x| x[0].sub(x[1])),
        ("mul", |x| x[0].mul(x[1])),
        ("div", |x| x[0].div(x[1])),
        ("pow", |x| x[0].pow(x[1])),
        ("maximum", |x| x[0].maximum(x[1])),
        ("minimum", |x| x[0].minimum(x[1])),
        ("squared_difference", |x| x[0].squared_difference(x[1])),
        ("where", |x| x[0].greater(x[1])?.select(x[0], x[1])),
        ("sigmoid_grad", |x| x[0].sigmoid_grad(x[1])),
        ("tanh_grad", |x| x[0].tanh_grad(x[1])),
        ("relu_grad", |x| x[0].relu_grad(x[1])),
    ];
    let shapes: [(&[usize], &[usize]); 5] = [
        (&[2, 3], &[2, 3]),
        (&[2, 3], &[3]),
        (&[2, 1], &[1, 3]),
        (&[], &[2, 2]),
        (&[0, 3], &[3]),
    ];
    for (name, f) in cases {
        for (a, b) in shapes {
            // pow needs a positive base; maximum/minimum need distinct operands (seeds differ).
            let x = if name == "pow" { positive(a, 2) } else { input(a, 2) };
            check(name, f, &[x, input(b, 5)], 1e-7);
        }
    }
}

#[test]
fn reductions_and_scans() {
    let cases: Vec<(&str, F)> = vec![
        ("reduce_sum", |x| x[0].reduce_sum(1)),
        ("reduce_sum_all", |x| x[0].reduce_sum(Axes::All.keepdims())),
        ("reduce_mean", |x| x[0].reduce_mean(Axes::from(0).keepdims())),
        ("reduce_max", |x| x[0].reduce_max(-1)),
        ("reduce_min", |x| x[0].reduce_min(Axes::All)),
        ("reduce_prod", |x| x[0].reduce_prod(1)),
        ("reduce_prod_multi", |x| x[0].reduce_prod(Axes::from([0, 2]).keepdims())),
        ("reduce_logsumexp", |x| x[0].reduce_logsumexp(1)),
        ("reduce_variance", |x| x[0].reduce_variance(0)),
        ("reduce_std", |x| x[0].reduce_std(Axes::All)),
        ("cumsum", |x| x[0].cumsum(1)),
        ("cumsum_rev_excl", |x| x[0].cumsum(Scan::along(0).exclusive().reverse())),
        ("cumprod", |x| x[0].cumprod(1)),
        ("cumprod_rev_excl", |x| {
            x[0].cumprod(Scan::along(1).exclusive().reverse())
        }),
    ];
    for (name, f) in cases {
        check(name, f, &[input(&[2, 3, 2], 3)], 1e-7);
    }
    // Rank 0 and empty dimensions.
    check(
        "reduce_sum_scalar",
        |x| x[0].reduce_sum(Axes::All),
        &[input(&[], 1)],
        1e-7,
    );
    check("reduce_mean_empty", |x| x[0].reduce_sum(0), &[input(&[0, 3], 1)], 1e-7);
}

#[test]
fn linalg_ops() {
    check(
        "matmul",
        |x| x[0].matmul(x[1]),
        &[input(&[2, 3], 1), input(&[3, 4], 2)],
        1e-7,
    );
    check(
        "matmul_ta",
        |x| x[0].matmul_with(x[1], MatMul::new().transpose_a()),
        &[input(&[3, 2], 1), input(&[3, 4], 2)],
        1e-7,
    );
    check(
        "matmul_tb",
        |x| x[0].matmul_with(x[1], MatMul::new().transpose_b()),
        &[input(&[2, 3], 1), input(&[4, 3], 2)],
        1e-7,
    );
    check(
        "matmul_tt",
        |x| x[0].matmul_with(x[1], MatMul::new().transpose_a().transpose_b()),
        &[input(&[3, 2], 1), input(&[4, 3], 2)],
        1e-7,
    );
    check(
        "matmul_batch_broadcast",
        |x| x[0].matmul(x[1]),
        &[input(&[2, 1, 2, 3], 1), input(&[3, 3, 2], 2)],
        1e-7,
    );
    check(
        "matmul_empty_k",
        |x| x[0].matmul(x[1]),
        &[input(&[2, 0], 1), input(&[0, 3], 2)],
        1e-7,
    );
    check(
        "tensordot",
        |x| x[0].tensordot(x[1], TensordotAxes::Pairs(vec![0, 2], vec![1, 0])),
        &[input(&[2, 3, 2], 1), input(&[2, 2, 3], 2)],
        1e-7,
    );
}

#[test]
fn shape_ops() {
    let x = input(&[2, 3, 4], 4);
    let cases: Vec<(&str, F)> = vec![
        ("transpose", |x| x[0].transpose(&[2, 0, 1])),
        ("reshape", |x| x[0].reshape(&[4, -1])),
        ("expand_dims", |x| x[0].expand_dims(1)),
        ("squeeze", |x| x[0].reshape(&[2, 1, 12])?.squeeze(Axes::All)),
        ("concat", |x| Tensor::concat(&[x[0], &x[0].square()?], 1)),
        ("stack", |x| Tensor::stack(&[x[0], &x[0].exp()?], 2)),
        ("split", |x| {
            let p = x[0].split(&[1, -1, 1], 2)?;
            p[0].sum_of_products(&p[1])
        }),
        ("slice", |x| x[0].slice(&[0, 1, 1], &[-1, 2, 2])),
        ("strided_slice", |x| {
            x[0].strided_slice([
                Slice::full(),
                Slice::from(-1..).step(-2),
                Slice {
                    start: Some(3),
                    end: Some(0),
                    step: -2,
                },
            ])
        }),
        ("tile", |x| x[0].tile(&[2, 1, 3])),
        ("broadcast_to", |x| {
            x[0].reduce_sum(Axes::from(0).keepdims())?.broadcast_to(&[3, 3, 4])
        }),
        ("pad", |x| x[0].pad(&[[1, 0], [0, 2], [1, 1]], 0.5)),
        ("gather", |x| x[0].gather(&Tensor::new([[2i64, 0], [2, 2]]), 1)),
        ("gather_axis_last", |x| x[0].gather(&Tensor::new([3i32, 3, 0]), -1)),
    ];
    for (name, f) in cases {
        check(name, f, std::slice::from_ref(&x), 1e-7);
    }
    check("transpose_empty", |x| x[0].t(), &[input(&[0, 3], 1)], 1e-7);
    check("reshape_scalar", |x| x[0].reshape(&[1, 1]), &[input(&[], 1)], 1e-7);
}

#[test]
fn nn_ops() {
    let x = input(&[3, 4], 5);
    let cases: Vec<(&str, F)> = vec![
        ("softmax", |x| x[0].softmax(-1)),
        ("softmax_axis0", |x| x[0].softmax(0)),
        ("log_softmax", |x| x[0].log_softmax(1)),
        ("l2_normalize", |x| x[0].l2_normalize(1)),
        ("bias_add", |x| x[0].bias_add(&Tensor::new([0.1f64, 0.2, 0.3, 0.4]))),
        ("sigmoid_xent", |x| {
            x[0].sigmoid()?.sigmoid_cross_entropy_with_logits(&x[0].neg()?)
        }),
        ("softmax_xent", |x| {
            x[0].softmax(1)?.softmax_cross_entropy_with_logits(&x[0].mul(x[0])?, -1)
        }),
        ("sparse_xent", |x| {
            Tensor::new([0i32, 3, 1]).sparse_softmax_cross_entropy_with_logits(x[0])
        }),
    ];
    for (name, f) in cases {
        check(name, f, std::slice::from_ref(&x), 1e-7);
    }
}

#[test]
fn conv_and_pool_ops() {
    let x = input(&[2, 5, 5, 2], 6);
    let w = input(&[3, 3, 2, 3], 7);
    for (s, p, d) in [
        ([1, 1], Padding::Valid, [1, 1]),
        ([2, 2], Padding::Same, [1, 1]),
        ([1, 2], Padding::Same, [1, 1]),
        ([1, 1], Padding::Valid, [2, 2]),
    ] {
        let c = compute_gradient(|a| a[0].conv2d(a[1], s, p, d), &[&x, &w], 1e-6).unwrap();
        assert!(c.max_error() < 1e-7, "conv2d {s:?} {p:?} {d:?}: {}", c.max_error());
    }
    let distinct = Tensor::range(0.0, 50.0, 1.0, DType::F64)
        .unwrap()
        .mul(&Tensor::scalar(0.37f64))
        .unwrap()
        .sin()
        .unwrap()
        .reshape(&[1, 5, 5, 2])
        .unwrap();
    for (k, s, p) in [
        ([2, 2], [2, 2], Padding::Valid),
        ([3, 3], [2, 2], Padding::Same),
        ([2, 3], [1, 2], Padding::Same),
    ] {
        check(
            "max_pool2d",
            |a| a[0].max_pool2d([2, 2], [2, 2], Padding::Valid),
            std::slice::from_ref(&distinct),
            1e-7,
        );
        let c = compute_gradient(|a| a[0].avg_pool2d(k, s, p), &[&distinct], 1e-6).unwrap();
        assert!(c.max_error() < 1e-7, "avg_pool2d: {}", c.max_error());
        let c = compute_gradient(|a| a[0].max_pool2d(k, s, p), &[&distinct], 1e-6).unwrap();
        assert!(c.max_error() < 1e-7, "max_pool2d: {}", c.max_error());
    }
}

/// The gradient of `f` with respect to its first argument, as a function (for second-order
/// checks: `compute_gradient` differentiates it again with an outer tape).
fn first_derivative(f: F, xs: &[&Tensor]) -> Result<Tensor> {
    let tape = GradientTape::new();
    tape.watch(xs[0]);
    let y = f(xs)?;
    let zeros = GradientOptions::new().unconnected_gradients(UnconnectedGradients::Zero);
    tape.gradient_with(&y, xs[0], zeros)
}

#[test]
fn second_order_gradients() {
    let cases: Vec<(&str, F, bool)> = vec![
        ("sigmoid", |x| x[0].sigmoid(), false),
        ("tanh", |x| x[0].tanh(), false),
        ("exp", |x| x[0].exp(), false),
        ("log", |x| x[0].log(), true),
        ("multiply", |x| x[0].mul(x[0])?.mul(x[1]), false),
        ("divide", |x| x[1].div(x[0]), true),
        ("pow", |x| x[0].pow(x[1]), true),
        (
            "matmul",
            |x| {
                x[0].matmul(&x[0].t()?)?
                    .mul(&x[0].reduce_sum(Axes::from(1).keepdims())?)
            },
            false,
        ),
        ("softmax", |x| x[0].softmax(-1)?.mul(x[1]), false),
        ("log_softmax", |x| x[0].log_softmax(-1)?.mul(x[1]), false),
        ("reduce_sum", |x| x[0].square()?.reduce_sum(1), false),
        ("reduce_mean", |x| x[0].exp()?.reduce_mean(Axes::All), false),
        ("reduce_logsumexp", |x| x[0].reduce_logsumexp(1), false),
    ];
    for (name, f, pos) in cases {
        let x = if pos { positive(&[2, 3], 8) } else { input(&[2, 3], 8) };
        let other = input(&[2, 3], 9);
        // Theoretical: a tape over the first derivative (nested tapes); numerical: central
        // differences of the first derivative.
        let wrapped = move |a: &[&Tensor]| first_derivative(f, a);
        let c = compute_gradient(wrapped, &[&x, &other], 1e-5).unwrap_or_else(|e| panic!("{name}: {e}"));
        // Only the Jacobian with respect to the first argument is second-order in it.
        let err = c.theoretical[0]
            .iter()
            .zip(&c.numerical[0])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(err < 1e-6, "second order {name}: {err:e}");
    }
}

#[test]
fn hessian_vector_product_of_the_seed_model() {
    // f(w1, w2) = sigmoid(sigmoid(x·w1)·w2): Hv by double backward vs finite differences of
    // the gradient along v.
    let x = Tensor::new([[0.0288f64, -0.3256, 0.5925]]);
    let w1 = input(&[3, 3], 10);
    let w2 = input(&[3, 1], 11);
    let v1 = input(&[3, 3], 12);
    let v2 = input(&[3, 1], 13);
    let model = |x: &Tensor, w1: &Tensor, w2: &Tensor| x.matmul(w1)?.sigmoid()?.matmul(w2)?.sigmoid();
    let grads = |w1: &Tensor, w2: &Tensor| -> Result<(Tensor, Tensor)> {
        let t = GradientTape::new();
        t.watch(w1);
        t.watch(w2);
        let y = model(&x, w1, w2)?;
        let [g1, g2] = t.gradient(&y, [w1, w2])?;
        Ok((g1, g2))
    };
    // Hv = d/dw (g(w) · v)
    let outer = GradientTape::new();
    outer.watch(&w1);
    outer.watch(&w2);
    let (g1, g2) = grads(&w1, &w2).unwrap();
    let gv = g1
        .mul(&v1)
        .unwrap()
        .reduce_sum(Axes::All)
        .unwrap()
        .add(&g2.mul(&v2).unwrap().reduce_sum(Axes::All).unwrap())
        .unwrap();
    let hv = outer.gradient(&gv, &[&w1, &w2]).unwrap();
    let eps = 1e-5;
    let shift = |w: &Tensor, v: &Tensor, s: f64| w.add(&v.mul(&Tensor::scalar(s)).unwrap()).unwrap();
    let (p1, p2) = grads(&shift(&w1, &v1, eps), &shift(&w2, &v2, eps)).unwrap();
    let (m1, m2) = grads(&shift(&w1, &v1, -eps), &shift(&w2, &v2, -eps)).unwrap();
    for (h, (p, m)) in hv.iter().zip([(p1, m1), (p2, m2)]) {
        let num = p
            .sub(&m)
            .unwrap()
            .div(&Tensor::scalar(2.0 * eps))
            .unwrap()
            .to_vec::<f64>()
            .unwrap();
        let got = h.to_vec::<f64>().unwrap();
        for (a, b) in got.iter().zip(&num) {
            assert!((a - b).abs() < 1e-8, "Hv {a} vs {b}");
        }
    }
}

#[test]
fn gradient_ops_are_differentiable_again() {
    // The backprop ops of conv2d and the scatter of strided_slice have gradients of their own.
    let x = input(&[1, 4, 4, 1], 14);
    let w = input(&[2, 2, 1, 2], 15);
    let f: F = |a| {
        let t = GradientTape::new();
        t.watch(a[0]);
        t.watch(a[1]);
        let y = a[0].conv2d(a[1], [1, 1], Padding::Same, [1, 1])?.square()?;
        t.gradient(&y, a[0])?.square()
    };
    check("conv2d second order", f, &[x.clone(), w], 1e-6);
    let g: F = |a| {
        let t = GradientTape::new();
        t.watch(a[0]);
        let y = a[0]
            .strided_slice([Slice::full(), Slice::from(1..).step(2), Slice::full(), Slice::full()])?
            .square()?;
        t.gradient(&y, &a[0])?.mul(a[0])
    };
    check("strided_slice second order", g, &[x], 1e-6);
    let h: F = |a| dispatch1(Op::Identity, &[a[0]]);
    check("identity", h, &[input(&[2], 1)], 1e-9);
    // max_pool's gradient through its upstream (TensorFlow's MaxPoolGradGrad), and that
    // op's own gradient: distinct inputs keep every argmax away from ties.
    let distinct = Tensor::from_vec(
        (0..32).map(|i| ((i * 7) % 32) as f64 * 0.1 - 1.0).collect(),
        &[1, 4, 4, 2],
    )
    .unwrap();
    let mp: F = |a| {
        let t = GradientTape::new();
        t.watch(a[0]);
        let y = a[0].max_pool2d([2, 2], [1, 1], Padding::Same)?.square()?;
        t.gradient(&y, a[0])?.mul(a[0])
    };
    check("max_pool2d second order", mp, std::slice::from_ref(&distinct), 1e-6);
    let mp3: F = |a| {
        let outer = GradientTape::new();
        outer.watch(a[0]);
        let inner = GradientTape::new();
        inner.watch(a[0]);
        let y = a[0].max_pool2d([3, 3], [2, 2], Padding::Same)?.exp()?;
        let gx = inner.gradient(&y, a[0])?.square()?.reduce_sum(Axes::All)?;
        outer.gradient(&gx, a[0])?.mul(a[0])
    };
    check("max_pool2d third order", mp3, &[distinct], 1e-6);
}

trait SumOfProducts {
    fn sum_of_products(&self, other: &Tensor) -> Result<Tensor>;
}

impl SumOfProducts for Tensor {
    /// `sum(self) * sum(other)`: combines two split outputs into one differentiable value.
    fn sum_of_products(&self, other: &Tensor) -> Result<Tensor> {
        self.reduce_sum(Axes::All)?.mul(&other.exp()?.reduce_sum(Axes::All)?)
    }
}
