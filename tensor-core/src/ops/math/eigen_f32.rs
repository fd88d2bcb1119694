//! TensorFlow's float32 `tanh` and `sigmoid`, computed as its CPU kernels compute them, bit
//! for bit.
//!
//! TensorFlow 2.21 evaluates both with Eigen's rational and polynomial approximations
//! (`ptanh_float`, `scalar_logistic_op<float>`), built without fused multiply-adds, a few
//! ulp from the exact value. Being that far off is harmless for the values themselves, but
//! their gradients are computed from them (`1 - y²`, `y · (1 - y)`) and near saturation that
//! cancellation turns a one-ulp difference in `y` into a relative difference of `1e-4` or
//! more: a correctly rounded `tanh` was farther from the exact gradient than TensorFlow's
//! result in about one case in ten of large generated sets. With TensorFlow's own `y` the
//! gradients agree with its bits.
//!
//! Eigen evaluates a float32 tensor eight elements at a time (one AVX packet) and the last
//! `n % 8` elements one at a time ([`scalar_tail_start`]); for `sigmoid` the two forms
//! differ ([`sigmoid`] and [`sigmoid_scalar`]), for `tanh` they do not.
//!
//! Probed against TensorFlow 2.21 on x86-64: every element of random tensors of 8 to 4000
//! elements (inputs up to ±40) matched, except sigmoid results below the smallest normal
//! float, which TensorFlow flushes to zero and these keep (nearer the exact value).

/// Elements of one of Eigen's float32 packets in TensorFlow's CPU build (AVX).
pub const PACKET: usize = 8;

/// Where the elements computed one at a time start in an `n`-element tensor: the last
/// `n % 8`.
pub fn scalar_tail_start(n: usize) -> usize {
    n - n % PACKET
}

/// TensorFlow's float32 `tanh`: Eigen's 9/8-degree rational approximation on `[-c, c]`
/// (`c` the smallest input where it is exactly 1), `±1` beyond. NaN stays NaN.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    const CLAMP: f32 = 7.907_389_6;
    const ALPHA: [f32; 4] = [1.394_553_6e-8, 2.102_733_6e-5, 3.520_756_7e-3, 1.340_216_1e-1];
    const BETA: [f32; 5] = [8.015_777e-7, 3.326_951_4e-4, 2.597_254_5e-2, 4.673_548_3e-1, 1.0];
    // Compare-and-select clamps, which keep NaN (as Eigen's `pmin`/`pmax` do).
    let x = if x > CLAMP { CLAMP } else { x };
    let x = if x < -CLAMP { -CLAMP } else { x };
    let x2 = x * x;
    let x3 = x2 * x;
    // Horner, each step a product and a sum rounded apart (no FMA in TensorFlow's build).
    let p = ALPHA[1..].iter().fold(ALPHA[0], |p, &a| p * x2 + a);
    let q = BETA[1..].iter().fold(BETA[0], |q, &b| q * x2 + b);
    (x3 * p + x) / q
}

/// Above this input TensorFlow's float32 sigmoid is exactly 1.
const SIGMOID_HI: f32 = 16.635_532;

/// TensorFlow's float32 `sigmoid` on all but the last `n % 8` elements of a tensor (Eigen's
/// packet form): `e / (1 + e)` with `e = exp(x/2)²`, the exponential a degree-5 polynomial
/// after range reduction; 0 below -104, 1 above 16.64. NaN stays NaN.
#[inline(always)]
pub fn sigmoid(x0: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = -0.693_359_4;
    const LN2_LO: f32 = 2.121_944_4e-4;
    const P2: f32 = 0.499_991_42;
    const P3: f32 = 0.166_668_77;
    const P4: f32 = 4.189_866_8e-2;
    const P5: f32 = 8.334_713e-3;
    let x = if x0 > SIGMOID_HI { SIGMOID_HI } else { x0 };
    // exp(x) = exp(x/2)², so that 2^m below stays a normal float.
    let x = x * 0.5;
    let (m, mi) = floor_with_int(x * LOG2E + 0.5);
    let r = m * LN2_HI + x;
    let r = m * LN2_LO + r;
    let r2 = r * r;
    let p_even = r2 * P4 + P2;
    let p_odd = r2 * P5 + P3;
    let p = r * p_odd + p_even;
    let p = r2 * p + (r + 1.0);
    // m is in [-76, 13] for x in [-104, 16.64]: 2^m is a normal float.
    let e = p * f32::from_bits((mi.wrapping_add(127) as u32) << 23);
    let e = e * e;
    let s = e / (1.0 + e);
    if x0 < -104.0 {
        0.0
    } else {
        s
    }
}

/// TensorFlow's float32 `sigmoid` on the last `n % 8` elements of a tensor (Eigen's scalar
/// form): `e / (1 + e)` with the C library's `e = exp(x)`.
#[inline]
pub fn sigmoid_scalar(x: f32) -> f32 {
    let e = (if x > SIGMOID_HI { SIGMOID_HI } else { x }).exp();
    e / (1.0 + e)
}

/// `floor(t)` as a float and an integer, for `|t| < 2^22` (NaN gives NaN and any integer),
/// by plain arithmetic so that loops over it vectorise without SSE4.1's rounding.
#[inline(always)]
fn floor_with_int(t: f32) -> (f32, i32) {
    // Adding 1.5·2^23 rounds to an integer (to nearest), which then sits in the low bits.
    const MAGIC: f32 = 12_582_912.0;
    let big = t + MAGIC;
    let nearest = big - MAGIC;
    let ni = (big.to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
    let down = if nearest > t { 1 } else { 0 };
    (nearest - down as f32, ni.wrapping_sub(down))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 21 inputs spread over `[shift - scale, shift + scale]`, rounded from float64 as numpy
    /// does.
    fn inputs(scale: f64, shift: f64) -> Vec<f32> {
        (0..21)
            .map(|i| ((((i * 37) % 101) as f64 / 101.0 * 2.0 - 1.0) * scale + shift) as f32)
            .collect()
    }

    fn bits(v: impl Iterator<Item = f32>) -> Vec<u32> {
        v.map(f32::to_bits).collect()
    }

    /// `tf.math.tanh` of `inputs(9, 0)` and `tf.math.sigmoid` of `inputs(50, -28)` (from -78
    /// to 22) in TensorFlow 2.21 (x86-64), bit for bit.
    const TANH_BITS: [u32; 21] = [
        0xbf800000, 0xbf7bdea9, 0x3f7fe1d2, 0xbf7fffef, 0xbf0dc20c, 0x3f7fff24, 0xbf7ffd82, 0x3f520dcb, 0x3f7ffffb,
        0xbf7fa81e, 0x3f7e9323, 0xbf800000, 0xbf742662, 0x3f7ff5a3, 0xbf7fffcb, 0xbdb60378, 0x3f7fffb6, 0xbf7ff8bf,
        0x3f6f3dd2, 0x3f800000, 0xbf7f0053,
    ];
    const SIGMOID_BITS: [u32; 21] = [
        0x0731448d, 0x219fe566, 0x3c0ef7e5, 0x0e57da30, 0x28c2b2e0, 0x3f7e8cf1, 0x15836aa7, 0x2fed13ac, 0x3f7ffffb,
        0x1ca0053a, 0x37105686, 0x09580527, 0x23c2d9d1, 0x3e160241, 0x108384cf, 0x2aed42de, 0x3f7fecde, 0x17a0253d,
        0x321073a2, 0x3f800000, 0x1ec30099,
    ];

    /// The ops on 21-element tensors, eager and (sigmoid) in place, give TensorFlow's bits:
    /// packets and the scalar tail where they belong.
    #[test]
    fn the_ops_give_tensorflows_bits() {
        use crate::{Tensor, UnaryOp};
        let out = |t: Tensor| bits(t.to_vec::<f32>().unwrap().into_iter());
        let tanh_x = Tensor::from_slice(&inputs(9.0, 0.0), &[3, 7]).unwrap();
        assert_eq!(out(tanh_x.tanh().unwrap()), TANH_BITS);
        let x = inputs(50.0, -28.0);
        assert_eq!(
            out(Tensor::from_slice(&x, &[21]).unwrap().sigmoid().unwrap()),
            SIGMOID_BITS
        );
        // A fresh buffer nobody else holds, so the op runs in it.
        let unique = Tensor::from_slice(&x, &[21]).unwrap().data().unwrap().clone();
        let in_place = crate::fused::unary_in_place(UnaryOp::Sigmoid, unique).unwrap();
        assert_eq!(out(Tensor::from_data(in_place)), SIGMOID_BITS);
    }

    /// `tf.math.tanh` of `inputs(9, 0)` in TensorFlow 2.21 (x86-64), bit for bit; the
    /// correctly rounded tanh agrees in 6 of the 21.
    #[test]
    fn tanh_gives_tensorflows_bits() {
        let tensorflow = TANH_BITS;
        let x = inputs(9.0, 0.0);
        assert_eq!(bits(x.iter().map(|&v| tanh(v))), tensorflow);
        let exact = bits(x.iter().map(|&v| (v as f64).tanh() as f32));
        assert_eq!(exact.iter().zip(&tensorflow).filter(|(a, b)| a == b).count(), 6);
    }

    /// `tf.math.sigmoid` of the 21 elements `inputs(50, -28)` (from -78 to 22) in TensorFlow
    /// 2.21: the first 16 in the packet form, the last 5 in the scalar form.
    #[test]
    fn sigmoid_gives_tensorflows_bits_packets_and_tail() {
        let tensorflow = SIGMOID_BITS;
        let x = inputs(50.0, -28.0);
        let tail = scalar_tail_start(x.len());
        assert_eq!(tail, 16);
        let ours = bits(
            x[..tail]
                .iter()
                .map(|&v| sigmoid(v))
                .chain(x[tail..].iter().map(|&v| sigmoid_scalar(v))),
        );
        assert_eq!(ours, tensorflow);
        // The two forms differ: the packet form on the tail gets some of it wrong.
        assert_ne!(bits(x[tail..].iter().map(|&v| sigmoid(v))), tensorflow[tail..]);
    }

    #[test]
    fn edges_and_nan() {
        for f in [tanh, sigmoid, sigmoid_scalar] {
            assert!(f(f32::NAN).is_nan());
        }
        assert_eq!((tanh(100.0), tanh(-100.0), tanh(f32::INFINITY)), (1.0, -1.0, 1.0));
        assert_eq!(tanh(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(
            (sigmoid(-105.0), sigmoid(f32::NEG_INFINITY), sigmoid(f32::INFINITY)),
            (0.0, 0.0, 1.0)
        );
        assert_eq!((sigmoid_scalar(-200.0), sigmoid_scalar(f32::INFINITY)), (0.0, 1.0));
        assert_eq!((sigmoid(0.0), sigmoid_scalar(0.0)), (0.5, 0.5));
        // Below the smallest normal float TensorFlow flushes to 0; this keeps the subnormal,
        // within a few percent of the exact value.
        let (s, exact) = (sigmoid(-90.0) as f64, (-90f64).exp());
        assert!(s > 0.0 && (s - exact).abs() < 0.05 * exact, "{s} vs {exact}");
    }

    #[test]
    fn floor_is_exact_on_the_range_used() {
        for t in [
            -76.5f32, -76.0, -0.5, -0.0, 0.0, 0.25, 0.5, 1.5, 2.5, 12.99, 13.0, -3.000_001,
        ] {
            let (f, i) = floor_with_int(t);
            assert_eq!((f, i), (t.floor(), t.floor() as i32), "{t}");
        }
    }
}
