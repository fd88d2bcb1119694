//! Gradients at the points TensorFlow's rules single out (zeros, ties, an exactly-zero or
//! infinite upstream), which the oracle's inputs stay away from. Each expected value is
//! what TensorFlow's registered gradient computes there.

use crate::{GradientOptions, GradientTape};
use ferroflow_tensor_core::{Axes, Gelu, Scan, Tensor};

fn t(v: &[f64]) -> Tensor {
    Tensor::from_vec(v.to_vec(), &[v.len()]).unwrap()
}

fn vec(t: &Tensor) -> Vec<f64> {
    t.to_vec::<f64>().unwrap()
}

/// d(sum(f(x) · upstream)) / dx.
fn grad_with(f: impl Fn(&Tensor) -> Tensor, x: &Tensor, upstream: &Tensor) -> Vec<f64> {
    let tape = GradientTape::new();
    tape.watch(x);
    let y = f(x);
    let opts = GradientOptions::new().output_gradients(upstream.clone());
    vec(&tape.gradient_with(&y, x, opts).unwrap())
}

/// A masked `sqrt`, `rsqrt` or `reciprocal` has a 0 gradient where the mask is off: the
/// kernels answer 0 for a zero upstream (TensorFlow's SqrtGrad, RsqrtGrad, ReciprocalGrad).
#[test]
fn masked_sqrt_rsqrt_and_reciprocal_give_zero_not_nan() {
    let x = t(&[0.0, 4.0]);
    let masked = |f: fn(&Tensor) -> Tensor| {
        move |x: &Tensor| {
            let zero = Tensor::scalar(0.0f64);
            x.greater(&zero).unwrap().select(&f(x), &zero).unwrap()
        }
    };
    let ones = t(&[1.0, 1.0]);
    assert_eq!(grad_with(masked(|x| x.sqrt().unwrap()), &x, &ones), vec![0.0, 0.25]);
    assert_eq!(
        grad_with(masked(|x| x.rsqrt().unwrap()), &x, &ones),
        vec![0.0, -1.0 / 16.0]
    );
    assert_eq!(
        grad_with(masked(|x| x.reciprocal().unwrap()), &x, &ones),
        vec![0.0, -1.0 / 16.0]
    );
}

/// `sigmoid_cross_entropy_with_logits` at logit 0: `sigmoid(0) - z`, as TensorFlow's
/// select-based form gives (a relu and an abs would give the one-sided `-z`).
#[test]
fn sigmoid_cross_entropy_gradient_at_zero_logits() {
    let labels = t(&[1.0, 0.0, 0.25]);
    let logits = t(&[0.0, 0.0, 0.0]);
    let g = grad_with(
        |x| labels.sigmoid_cross_entropy_with_logits(x).unwrap(),
        &logits,
        &t(&[1.0, 1.0, 1.0]),
    );
    assert_eq!(g, vec![-0.5, 0.5, 0.25]);
}

/// `selu` at 0 takes the scale (TensorFlow's SeluGrad selects on `y < 0`).
#[test]
fn selu_gradient_at_zero_is_the_scale() {
    let g = grad_with(|x| x.selu().unwrap(), &t(&[0.0, -1.0]), &t(&[1.0, 1.0]));
    assert_eq!(g[0], 1.050_700_987_355_480_5);
    let want = 1.050_700_987_355_480_5 * 1.673_263_242_354_377_3 * (-1f64).exp();
    assert!((g[1] - want).abs() < 1e-15);
}

/// The branch not taken by `where`, `maximum` or `minimum` gets an exact 0, also where the
/// upstream is infinite (g·0 would be NaN).
#[test]
fn unselected_branches_get_exact_zeros_under_an_infinite_upstream() {
    let (a, b) = (t(&[0.0]), t(&[1.0]));
    let inf = t(&[f64::INFINITY]);
    let tape = GradientTape::persistent();
    tape.watch(&a);
    tape.watch(&b);
    let z = Tensor::new([true]).select(&a, &b).unwrap();
    let opts = || GradientOptions::new().output_gradients(inf.clone());
    let [ga, gb] = tape.gradient_with(&z, [&a, &b], opts()).unwrap();
    assert_eq!((vec(&ga), vec(&gb)), (vec![f64::INFINITY], vec![0.0]));
    let loser = t(&[-1.0]);
    tape.watch(&loser);
    let m = a.maximum(&loser).unwrap();
    let gm = tape.gradient_with(&m, &loser, opts()).unwrap();
    assert_eq!(vec(&gm), vec![0.0]);
    let m = t(&[-1.0]).minimum(&b).unwrap();
    let gb = tape.gradient_with(&m, &b, opts()).unwrap();
    assert_eq!(vec(&gb), vec![0.0]);
}

/// `cumprod`'s gradient divides with div_no_nan: 0 where an input is 0.
#[test]
fn cumprod_gradient_at_a_zero_input() {
    let g = grad_with(
        |x| x.cumprod(Scan::along(0)).unwrap(),
        &t(&[2.0, 0.0, 3.0]),
        &t(&[1.0, 1.0, 1.0]),
    );
    assert_eq!(g, vec![1.0, 0.0, 0.0]);
}

/// `floormod` has TensorFlow's gradient `(g, -g·floor(x / y))`; `sign`'s is zeros, not
/// unconnected.
#[test]
fn floormod_and_sign_have_tensorflows_gradients() {
    let (x, y) = (t(&[7.5, -1.0]), Tensor::scalar(2.0f64));
    let tape = GradientTape::persistent();
    tape.watch(&x);
    tape.watch(&y);
    let m = x.floormod(&y).unwrap();
    let [gx, gy] = tape.gradient(&m, [&x, &y]).unwrap();
    assert_eq!(vec(&gx), vec![1.0, 1.0]);
    assert_eq!(gy.to_scalar::<f64>().unwrap(), -(3.0 + -1.0));
    let s = x.sign().unwrap();
    assert_eq!(vec(&tape.gradient(&s, &x).unwrap()), vec![0.0, 0.0]);
    // floor still has none.
    assert!(tape.gradient(&x.floor().unwrap(), &x).is_err());
}

/// `divide`'s d/dy is `(-x / y) / y`: in float32, `y²` would overflow at 2e19.
#[test]
fn divide_gradient_does_not_square_the_divisor() {
    let (x, y) = (Tensor::new([3.0e19f32]), Tensor::new([2.0e19f32]));
    let tape = GradientTape::new();
    tape.watch(&y);
    let g = tape
        .gradient(&x.div(&y).unwrap(), &y)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!((g / -7.5e-20 - 1.0).abs() < 1e-6, "{g}");
}

/// The second derivative of `pow` through its exponent is 0 at a zero base (TensorFlow's
/// safe log), not NaN.
#[test]
fn pow_second_derivative_at_a_zero_base() {
    let (x, y) = (t(&[0.0]), t(&[2.0]));
    let outer = GradientTape::new();
    outer.watch(&x);
    let inner = GradientTape::new();
    inner.watch(&x);
    inner.watch(&y);
    let gy = inner.gradient(&x.pow(&y).unwrap(), &y).unwrap();
    assert_eq!(vec(&gy), vec![0.0]);
    assert_eq!(vec(&outer.gradient(&gy, &x).unwrap()), vec![0.0]);
}

/// Exact GELU's gradient uses a real `erfc`: `1 - erf` cancels far in the left tail.
#[test]
fn exact_gelu_gradient_in_the_left_tail() {
    let x = -8.0f64;
    let g = grad_with(|x| x.gelu(Gelu::Exact).unwrap(), &t(&[x]), &t(&[1.0]))[0];
    // d/dx 0.5·x·erfc(-k·x) with k the float32-rounded 1/√2, summed in float64 from the
    // two terms' closed forms (erfc(8k) ≈ 1.2442e-15 from its asymptotic series).
    let k = std::f64::consts::FRAC_1_SQRT_2 as f32 as f64;
    let z = -k * x;
    let erfc_z = (-z * z).exp() / (z * std::f64::consts::PI.sqrt())
        * (1.0 - 1.0 / (2.0 * z * z) + 3.0 / (4.0 * z.powi(4)) - 15.0 / (8.0 * z.powi(6)));
    let want = 0.5 * erfc_z + 0.5 * x * k * std::f64::consts::FRAC_2_SQRT_PI * (-z * z).exp();
    assert!(((g - want) / want).abs() < 1e-6, "{g} vs {want}");
    let sum = Tensor::new([x])
        .gelu(Gelu::Exact)
        .unwrap()
        .reduce_sum(Axes::All)
        .unwrap();
    assert!(sum.to_scalar::<f64>().unwrap().is_finite());
}

/// Second order through a max pool (TensorFlow's MaxPoolGradGrad): the gradient of the
/// pool's gradient reaches the input through the upstream.
#[test]
fn max_pool_second_order_is_connected() {
    use ferroflow_tensor_core::Padding;
    let x = Tensor::from_vec(vec![1.0f64, 3.0, 2.0, 0.5], &[1, 2, 2, 1]).unwrap();
    let outer = GradientTape::new();
    outer.watch(&x);
    let inner = GradientTape::new();
    inner.watch(&x);
    let l = x
        .max_pool2d([2, 2], [2, 2], Padding::Valid)
        .unwrap()
        .square()
        .unwrap()
        .reduce_sum(Axes::All)
        .unwrap();
    let gx = inner.gradient(&l, &x).unwrap();
    assert_eq!(vec(&gx), vec![0.0, 6.0, 0.0, 0.0]);
    let h = outer.gradient(&gx.reduce_sum(Axes::All).unwrap(), &x).unwrap();
    assert_eq!(vec(&h), vec![0.0, 2.0, 0.0, 0.0]);
}
