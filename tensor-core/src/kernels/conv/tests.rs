//! The kernels against naive references, finite differences and TensorFlow's values, on
//! any thread count.

use super::conv2d::*;
use super::geometry::conv_output_dim;
use super::im2col::rows_per_block;
use super::pool::*;
use super::*;
use approx::assert_abs_diff_eq;

/// Deterministic xorshift generator of values in [-1, 1).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }

    fn vec(&mut self, len: usize) -> Vec<f64> {
        (0..len).map(|_| self.next()).collect()
    }
}

fn geom(input: [usize; 4], filter: [usize; 4], s: [usize; 2], d: [usize; 2], p: Padding) -> Conv2dGeometry {
    Conv2dGeometry::new(input, filter, s, d, p).unwrap()
}

/// Input coordinate of tap `k` of output `o`, if inside the input.
fn coord(o: usize, k: usize, s: usize, d: usize, pad: usize, len: usize) -> Option<usize> {
    let i = (o * s + k * d) as isize - pad as isize;
    (i >= 0 && (i as usize) < len).then_some(i as usize)
}

fn in_idx(g: &Conv2dGeometry, b: usize, y: usize, x: usize, c: usize) -> usize {
    ((b * g.h + y) * g.w + x) * g.c_in + c
}

fn f_idx(g: &Conv2dGeometry, ky: usize, kx: usize, ci: usize, co: usize) -> usize {
    ((ky * g.kw + kx) * g.c_in + ci) * g.c_out + co
}

fn out_idx(g: &Conv2dGeometry, b: usize, y: usize, x: usize, c: usize, ch: usize) -> usize {
    ((b * g.oh + y) * g.ow + x) * ch + c
}

/// Calls `visit(out_index, in_index, filter_index)` for every
/// multiply-add of the convolution, in the naive 7-loop order.
fn for_each_mac(g: &Conv2dGeometry, mut visit: impl FnMut(usize, usize, usize)) {
    for b in 0..g.n {
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                for co in 0..g.c_out {
                    for ky in 0..g.kh {
                        let Some(iy) = coord(oy, ky, g.sh, g.dh, g.pad_top, g.h) else {
                            continue;
                        };
                        for kx in 0..g.kw {
                            let Some(ix) = coord(ox, kx, g.sw, g.dw, g.pad_left, g.w) else {
                                continue;
                            };
                            for ci in 0..g.c_in {
                                visit(
                                    out_idx(g, b, oy, ox, co, g.c_out),
                                    in_idx(g, b, iy, ix, ci),
                                    f_idx(g, ky, kx, ci, co),
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

fn naive_conv(g: &Conv2dGeometry, x: &[f64], f: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; g.output_len()];
    for_each_mac(g, |o, i, k| out[o] += x[i] * f[k]);
    out
}

fn naive_bwd_input(g: &Conv2dGeometry, f: &[f64], gy: &[f64]) -> Vec<f64> {
    let mut dx = vec![0.0; g.input_len()];
    for_each_mac(g, |o, i, k| dx[i] += gy[o] * f[k]);
    dx
}

fn naive_bwd_filter(g: &Conv2dGeometry, x: &[f64], gy: &[f64]) -> Vec<f64> {
    let mut df = vec![0.0; g.filter_len()];
    for_each_mac(g, |o, i, k| df[k] += gy[o] * x[i]);
    df
}

/// Calls `visit(out_index, [in_index in window order])` per pool output.
fn for_each_window(g: &Conv2dGeometry, mut visit: impl FnMut(usize, &[usize])) {
    let mut window = Vec::new();
    for b in 0..g.n {
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                for c in 0..g.c_in {
                    window.clear();
                    for ky in 0..g.kh {
                        for kx in 0..g.kw {
                            if let (Some(iy), Some(ix)) = (
                                coord(oy, ky, g.sh, g.dh, g.pad_top, g.h),
                                coord(ox, kx, g.sw, g.dw, g.pad_left, g.w),
                            ) {
                                window.push(in_idx(g, b, iy, ix, c));
                            }
                        }
                    }
                    visit(out_idx(g, b, oy, ox, c, g.c_in), &window);
                }
            }
        }
    }
}

fn naive_max_pool(g: &Conv2dGeometry, x: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; g.pool_output_len()];
    for_each_window(g, |o, win| {
        out[o] = win.iter().map(|&i| x[i]).fold(f64::NEG_INFINITY, f64::max);
    });
    out
}

fn naive_max_pool_grad(g: &Conv2dGeometry, x: &[f64], gy: &[f64]) -> Vec<f64> {
    let mut dx = vec![0.0; g.input_len()];
    for_each_window(g, |o, win| {
        let mut best = win[0];
        for &i in &win[1..] {
            if x[i] > x[best] {
                best = i;
            }
        }
        dx[best] += gy[o];
    });
    dx
}

fn naive_avg_pool(g: &Conv2dGeometry, x: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; g.pool_output_len()];
    for_each_window(g, |o, win| {
        out[o] = win.iter().map(|&i| x[i]).sum::<f64>() / win.len() as f64;
    });
    out
}

fn naive_avg_pool_grad(g: &Conv2dGeometry, gy: &[f64]) -> Vec<f64> {
    let mut dx = vec![0.0; g.input_len()];
    for_each_window(g, |o, win| {
        for &i in win {
            dx[i] += gy[o] / win.len() as f64;
        }
    });
    dx
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what}: element {i}: got {g}, want {w}"
        );
    }
}

/// Central finite differences of a scalar function.
fn numeric_grad(x: &[f64], eps: f64, f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let mut x = x.to_vec();
    (0..x.len())
        .map(|i| {
            let orig = x[i];
            x[i] = orig + eps;
            let up = f(&x);
            x[i] = orig - eps;
            let down = f(&x);
            x[i] = orig;
            (up - down) / (2.0 * eps)
        })
        .collect()
}

/// Small conv geometries: VALID/SAME, strides 1/2/3, dilations 1/2,
/// odd and even sizes, several channel counts, batch 2.
fn small_conv_cases() -> Vec<Conv2dGeometry> {
    let channels = [(1, 1), (3, 2), (2, 4)];
    let mut cases = Vec::new();
    let mut i = 0;
    for (h, w) in [(5, 5), (6, 7), (4, 3), (1, 1), (2, 6)] {
        for (kh, kw) in [(1, 1), (2, 2), (3, 3), (3, 2)] {
            for s in [[1, 1], [2, 2], [3, 3], [2, 1]] {
                for d in [[1, 1], [2, 2], [1, 2]] {
                    for p in [Padding::Same, Padding::Valid] {
                        let (ci, co) = channels[i % channels.len()];
                        i += 1;
                        cases.push(geom([2, h, w, ci], [kh, kw, ci, co], s, d, p));
                    }
                }
            }
        }
    }
    // A long im2col row just below the parallel threshold.
    let g = geom([1, 20, 20, 20], [5, 5, 20, 1], [1, 1], [1, 1], Padding::Same);
    assert!(!is_large(g.output_len() * g.k_len()));
    cases.push(g);
    cases
}

/// Geometries above the parallel threshold (and a pointwise one).
fn large_conv_cases() -> Vec<Conv2dGeometry> {
    let cases = vec![
        geom([2, 17, 17, 8], [3, 3, 8, 16], [1, 1], [1, 1], Padding::Same),
        geom([1, 30, 27, 8], [3, 3, 8, 24], [2, 2], [2, 2], Padding::Same),
        geom([3, 16, 15, 5], [5, 4, 5, 16], [1, 2], [1, 1], Padding::Valid),
        geom([2, 24, 24, 32], [1, 1, 32, 32], [1, 1], [1, 1], Padding::Valid),
        // One image cut into several row blocks.
        geom([1, 64, 40, 4], [3, 3, 4, 8], [2, 1], [2, 2], Padding::Same),
    ];
    for g in &cases {
        assert!(is_large(g.output_len() * g.k_len()), "{g:?}");
    }
    let g = &cases[4];
    assert!(rows_per_block(g, true) < g.oh, "{g:?}");
    cases
}

#[test]
fn output_dims_match_tensorflow() {
    assert_eq!(conv_output_dim(5, 3, 2, 1, Padding::Same), Ok((3, 1, 1)));
    assert_eq!(conv_output_dim(6, 3, 2, 1, Padding::Same), Ok((3, 0, 1)));
    assert_eq!(conv_output_dim(5, 3, 2, 1, Padding::Valid), Ok((2, 0, 0)));
    assert_eq!(conv_output_dim(6, 3, 2, 1, Padding::Valid), Ok((2, 0, 0)));
    assert_eq!(conv_output_dim(7, 3, 1, 2, Padding::Valid), Ok((3, 0, 0)));
    assert_eq!(conv_output_dim(7, 3, 1, 2, Padding::Same), Ok((7, 2, 2)));
    assert_eq!(conv_output_dim(4, 2, 1, 1, Padding::Same), Ok((4, 0, 1)));
    assert_eq!(conv_output_dim(7, 3, 3, 1, Padding::Same), Ok((3, 1, 1)));
    // Stride larger than the window: no padding needed.
    assert_eq!(conv_output_dim(6, 1, 3, 1, Padding::Same), Ok((2, 0, 0)));
    assert_eq!(conv_output_dim(2, 3, 1, 1, Padding::Valid), Ok((0, 0, 0)));
    assert_eq!(conv_output_dim(0, 3, 1, 1, Padding::Same), Ok((0, 0, 0)));
    assert!(conv_output_dim(5, 0, 1, 1, Padding::Same).is_err());
    assert!(conv_output_dim(5, 3, 0, 1, Padding::Same).is_err());
    assert!(conv_output_dim(5, 3, 1, 0, Padding::Same).is_err());
}

#[test]
fn geometry_fields_and_errors() {
    let g = geom([2, 5, 6, 3], [3, 3, 3, 4], [2, 2], [1, 1], Padding::Same);
    assert_eq!((g.oh, g.ow, g.pad_top, g.pad_left), (3, 3, 1, 0));
    assert_eq!((g.pad_bottom(), g.pad_right()), (1, 1));
    assert_eq!(g.output_shape(), [2, 3, 3, 4]);
    assert_eq!(g.pool_output_shape(), [2, 3, 3, 3]);
    assert_eq!(g.input_shape(), [2, 5, 6, 3]);
    assert_eq!(g.filter_shape(), [3, 3, 3, 4]);
    assert_eq!((g.input_len(), g.filter_len(), g.output_len()), (180, 108, 72));
    let v = geom([1, 5, 5, 1], [3, 3, 1, 1], [2, 2], [1, 1], Padding::Valid);
    assert_eq!((v.oh, v.ow, v.pad_top, v.pad_left), (2, 2, 0, 0));
    assert_eq!((v.pad_bottom(), v.pad_right()), (0, 0));
    let p = Conv2dGeometry::pool([1, 6, 6, 2], [3, 3], [2, 2], Padding::Same).unwrap();
    assert_eq!((p.oh, p.ow, p.pad_top, p.c_out, p.dh), (3, 3, 0, 2, 1));
    assert_eq!(p.pad_bottom(), 1);

    let new = |i, f, s, d| Conv2dGeometry::new(i, f, s, d, Padding::Same);
    assert!(new([1, 5, 5, 3], [3, 3, 2, 4], [1, 1], [1, 1]).is_err());
    assert!(new([1, 5, 5, 3], [3, 3, 3, 4], [0, 1], [1, 1]).is_err());
    assert!(new([1, 5, 5, 3], [3, 3, 3, 4], [1, 1], [1, 0]).is_err());
    assert!(new([1, 5, 5, 3], [0, 3, 3, 4], [1, 1], [1, 1]).is_err());
    assert!(new([1, 5, 5, 3], [3, 0, 3, 4], [1, 1], [1, 1]).is_err());
    assert!(new([usize::MAX, 5, 5, 3], [3, 3, 3, 4], [1, 1], [1, 1]).is_err());
    assert!(new([1, 5, 5, 3], [3, usize::MAX, 3, 4], [1, 1], [2, 2]).is_err());
    assert!(Conv2dGeometry::pool([1, 4, 4, 1], [2, 2], [1, 0], Padding::Valid).is_err());
    assert!(Conv2dGeometry::pool([1, 4, 4, 1], [0, 2], [1, 1], Padding::Valid).is_err());
}

#[test]
fn empty_geometries_give_empty_or_zero_results() {
    let mut rng = Rng(7);
    // Empty batch.
    let g = geom([0, 5, 5, 2], [3, 3, 2, 3], [1, 1], [1, 1], Padding::Same);
    let f = rng.vec(g.filter_len());
    assert!(conv2d(&g, &[], &f).is_empty());
    assert!(conv2d_backprop_input(&g, &f, &[]).is_empty());
    assert_eq!(conv2d_backprop_filter::<f64>(&g, &[], &[]), vec![0.0; 54]);
    assert!(max_pool2d::<f64>(&g, &[]).is_empty());
    assert!(max_pool2d_grad::<f64>(&g, &[], &[]).is_empty());
    assert!(max_pool2d_grad_grad::<f64>(&g, &[], &[]).is_empty());
    assert!(avg_pool2d::<f64>(&g, &[]).is_empty());
    assert!(avg_pool2d_grad::<f64>(&g, &[]).is_empty());
    // VALID with the window larger than the input: zero-sized output.
    let g = geom([2, 2, 4, 2], [3, 3, 2, 3], [1, 1], [1, 1], Padding::Valid);
    assert_eq!((g.oh, g.ow), (0, 2));
    let x = rng.vec(g.input_len());
    assert!(conv2d(&g, &x, &f).is_empty());
    assert_eq!(conv2d_backprop_input(&g, &f, &[]), vec![0.0; x.len()]);
    assert_eq!(conv2d_backprop_filter(&g, &x, &[]), vec![0.0; f.len()]);
    assert!(max_pool2d(&g, &x).is_empty());
    assert_eq!(max_pool2d_grad(&g, &x, &[]), vec![0.0; x.len()]);
    assert!(max_pool2d_grad_grad(&g, &x, &x).is_empty());
    assert!(avg_pool2d(&g, &x).is_empty());
    assert_eq!(avg_pool2d_grad::<f64>(&g, &[]), vec![0.0; x.len()]);
    // Zero input channels: the convolution is all zeros.
    let g = geom([1, 3, 3, 0], [2, 2, 0, 2], [1, 1], [1, 1], Padding::Same);
    assert_eq!(conv2d::<f32>(&g, &[], &[]), vec![0.0; 18]);
    assert!(conv2d_backprop_input::<f32>(&g, &[], &[1.0; 18]).is_empty());
    assert!(conv2d_backprop_filter::<f32>(&g, &[], &[1.0; 18]).is_empty());
    assert!(max_pool2d_grad_grad::<f32>(&g, &[], &[]).is_empty());
    // Zero output channels.
    let g = geom([1, 3, 3, 2], [2, 2, 2, 0], [1, 1], [1, 1], Padding::Same);
    assert!(conv2d::<f32>(&g, &[1.0; 18], &[]).is_empty());
    assert_eq!(conv2d_backprop_input::<f32>(&g, &[], &[]), vec![0.0; 18]);
}

#[test]
fn conv2d_matches_hand_computed_tensorflow_values() {
    // tf.nn.conv2d(arange(1..=9) as [1,3,3,1], ones [2,2,1,1], 1, SAME)
    let x: Vec<f64> = (1..=9).map(f64::from).collect();
    let g = geom([1, 3, 3, 1], [2, 2, 1, 1], [1, 1], [1, 1], Padding::Same);
    let y = conv2d(&g, &x, &[1.0; 4]);
    assert_eq!(y, vec![12.0, 16.0, 9.0, 24.0, 28.0, 15.0, 15.0, 17.0, 9.0]);
    // 3x3 window, stride 2, SAME on a 5x5 input: pad 1 on every side.
    let x: Vec<f64> = (0..25).map(f64::from).collect();
    let g = geom([1, 5, 5, 1], [3, 3, 1, 1], [2, 2], [1, 1], Padding::Same);
    let y = conv2d(&g, &x, &[1.0; 9]);
    assert_eq!(y, vec![12.0, 27.0, 24.0, 63.0, 108.0, 81.0, 72.0, 117.0, 84.0]);
}

#[test]
fn conv2d_matches_naive_reference() {
    let mut rng = Rng(1);
    for g in small_conv_cases().iter().chain(&large_conv_cases()) {
        let x = rng.vec(g.input_len());
        let f = rng.vec(g.filter_len());
        let want = naive_conv(g, &x, &f);
        assert_close(&conv2d(g, &x, &f), &want, 1e-12, &format!("{g:?}"));
        // f32 path against the f64 reference.
        let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let f32_: Vec<f32> = f.iter().map(|&v| v as f32).collect();
        let got: Vec<f64> = conv2d(g, &x32, &f32_).iter().map(|&v| f64::from(v)).collect();
        assert_close(&got, &want, 1e-4, &format!("f32 {g:?}"));
    }
}

#[test]
fn conv2d_backprops_match_naive_reference_and_adjoint_identity() {
    let mut rng = Rng(2);
    for g in small_conv_cases().iter().chain(&large_conv_cases()) {
        let x = rng.vec(g.input_len());
        let f = rng.vec(g.filter_len());
        let gy = rng.vec(g.output_len());
        let dx = conv2d_backprop_input(g, &f, &gy);
        let df = conv2d_backprop_filter(g, &x, &gy);
        assert_close(&dx, &naive_bwd_input(g, &f, &gy), 1e-12, &format!("dx {g:?}"));
        assert_close(&df, &naive_bwd_filter(g, &x, &gy), 1e-11, &format!("df {g:?}"));
        let lhs = dot(&conv2d(g, &x, &f), &gy);
        assert_abs_diff_eq!(lhs, dot(&x, &dx), epsilon = 1e-9 * (1.0 + lhs.abs()));
        assert_abs_diff_eq!(lhs, dot(&f, &df), epsilon = 1e-9 * (1.0 + lhs.abs()));
    }
}

#[test]
fn conv2d_backprops_match_finite_differences() {
    let mut rng = Rng(3);
    let cases = [
        geom([2, 5, 4, 2], [3, 2, 2, 3], [2, 1], [1, 2], Padding::Same),
        geom([2, 6, 5, 3], [3, 3, 3, 2], [1, 1], [1, 1], Padding::Valid),
        geom([1, 4, 4, 1], [2, 2, 1, 1], [2, 2], [1, 1], Padding::Same),
        geom([2, 7, 6, 2], [1, 1, 2, 3], [1, 1], [1, 1], Padding::Same),
    ];
    for g in &cases {
        let x = rng.vec(g.input_len());
        let f = rng.vec(g.filter_len());
        let gy = rng.vec(g.output_len());
        let num_dx = numeric_grad(&x, 1e-5, |x| dot(&conv2d(g, x, &f), &gy));
        let num_df = numeric_grad(&f, 1e-5, |f| dot(&conv2d(g, &x, f), &gy));
        assert_close(&conv2d_backprop_input(g, &f, &gy), &num_dx, 1e-7, "dx");
        assert_close(&conv2d_backprop_filter(g, &x, &gy), &num_df, 1e-7, "df");
    }
}

#[test]
fn results_do_not_depend_on_thread_count() {
    let mut rng = Rng(4);
    let run = |threads: usize, g: &Conv2dGeometry, x: &[f32], f: &[f32], gy: &[f32]| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            (
                conv2d(g, x, f),
                conv2d_backprop_input(g, f, gy),
                conv2d_backprop_filter(g, x, gy),
                max_pool2d_grad(g, x, &gy[..g.pool_output_len()]),
                avg_pool2d(g, x),
            )
        })
    };
    let mut cases = large_conv_cases();
    // Many images of one row block each, and a huge filter-gradient
    // reduction split into partial sums.
    cases.push(geom([16, 9, 9, 8], [3, 3, 8, 8], [1, 1], [1, 1], Padding::Same));
    cases.push(geom([4, 40, 40, 3], [5, 5, 3, 4], [1, 1], [1, 1], Padding::Same));
    for g in &cases {
        let x: Vec<f32> = rng.vec(g.input_len()).iter().map(|&v| v as f32).collect();
        let f: Vec<f32> = rng.vec(g.filter_len()).iter().map(|&v| v as f32).collect();
        let len = g.output_len().max(g.pool_output_len());
        let gy: Vec<f32> = rng.vec(len).iter().map(|&v| v as f32).collect();
        let gy = &gy[..g.output_len()];
        let one = run(1, g, &x, &f, gy);
        assert_eq!(one, run(3, g, &x, &f, gy), "{g:?}");
        assert_eq!(one, run(2, g, &x, &f, gy), "{g:?}");
    }
}

#[test]
fn large_filter_gradient_splits_rows_deterministically() {
    // Too big a filter for partial sums: each block's GEMM is split over
    // row ranges of the filter gradient instead.
    let g = geom([1, 4, 5, 1024], [3, 3, 1024, 256], [1, 1], [1, 1], Padding::Same);
    assert!(FILTER_PARTIAL_BUDGET / g.filter_len() < 2);
    let mut rng = Rng(8);
    let x = rng.vec(g.input_len());
    let gy = rng.vec(g.output_len());
    let want = naive_bwd_filter(&g, &x, &gy);
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| conv2d_backprop_filter(&g, &x, &gy))
    };
    let one = run(1);
    assert_close(&one, &want, 1e-11, "df");
    assert_eq!(one, run(3));
}

/// Pool geometries including SAME windows that hit every border.
fn pool_cases() -> Vec<Conv2dGeometry> {
    let mut cases = Vec::new();
    for (h, w) in [(5, 5), (6, 7), (4, 3), (1, 1), (2, 6)] {
        for k in [[1, 1], [2, 2], [3, 3], [2, 3]] {
            for s in [[1, 1], [2, 2], [3, 2]] {
                for p in [Padding::Same, Padding::Valid] {
                    cases.push(Conv2dGeometry::pool([2, h, w, 3], k, s, p).unwrap());
                }
            }
        }
    }
    let big = Conv2dGeometry::pool([4, 48, 48, 16], [3, 3], [2, 2], Padding::Same).unwrap();
    assert!(is_large(pool_work(&big)));
    cases.push(big);
    cases
}

#[test]
fn pools_match_naive_reference() {
    let mut rng = Rng(5);
    for g in &pool_cases() {
        let x = rng.vec(g.input_len());
        let gy = rng.vec(g.pool_output_len());
        let what = format!("{g:?}");
        assert_close(&max_pool2d(g, &x), &naive_max_pool(g, &x), 0.0, &what);
        assert_close(&avg_pool2d(g, &x), &naive_avg_pool(g, &x), 1e-12, &what);
        assert_close(
            &max_pool2d_grad(g, &x, &gy),
            &naive_max_pool_grad(g, &x, &gy),
            1e-12,
            &what,
        );
        assert_close(&avg_pool2d_grad(g, &gy), &naive_avg_pool_grad(g, &gy), 1e-12, &what);
    }
}

#[test]
fn pools_match_hand_computed_tensorflow_values() {
    // tf.nn.{max,avg}_pool2d(arange(1..=9) as [1,3,3,1], 2, 1, SAME):
    // padding only at the bottom / right, averages over real elements.
    let x: Vec<f64> = (1..=9).map(f64::from).collect();
    let g = Conv2dGeometry::pool([1, 3, 3, 1], [2, 2], [1, 1], Padding::Same).unwrap();
    assert_eq!(max_pool2d(&g, &x), vec![5.0, 6.0, 6.0, 8.0, 9.0, 9.0, 8.0, 9.0, 9.0]);
    assert_eq!(avg_pool2d(&g, &x), vec![3.0, 4.0, 4.5, 6.0, 7.0, 7.5, 7.5, 8.5, 9.0]);
    // Overlapping windows accumulate gradient on the shared maximum.
    assert_eq!(
        max_pool2d_grad(&g, &x, &[1.0; 9]),
        vec![0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 0.0, 2.0, 4.0]
    );
    assert_eq!(
        avg_pool2d_grad(&g, &[1.0; 9]),
        vec![0.25, 0.5, 0.75, 0.5, 1.0, 1.5, 0.75, 1.5, 2.25]
    );
    // 3x3 window, stride 2, SAME on 5x5: corner windows see 4 elements.
    let x: Vec<f64> = (0..25).map(f64::from).collect();
    let g = Conv2dGeometry::pool([1, 5, 5, 1], [3, 3], [2, 2], Padding::Same).unwrap();
    assert_eq!(
        avg_pool2d(&g, &x),
        vec![3.0, 4.5, 6.0, 10.5, 12.0, 13.5, 18.0, 19.5, 21.0]
    );
}

#[test]
fn max_pool_grad_wide_index_fallback() {
    let mut rng = Rng(9);
    for g in &pool_cases()[..40] {
        let x = rng.vec(g.input_len());
        let gy = rng.vec(g.pool_output_len());
        let got = max_pool2d_grad_with::<f64, usize>(g, &x, &gy);
        assert_close(&got, &naive_max_pool_grad(g, &x, &gy), 1e-12, "usize");
    }
}

#[test]
fn max_pool_ties_and_nans() {
    // Ties go to the first element in row-major window order.
    let g = Conv2dGeometry::pool([1, 2, 2, 1], [2, 2], [1, 1], Padding::Valid).unwrap();
    assert_eq!(max_pool2d_grad(&g, &[1.0; 4], &[3.0]), vec![3.0, 0.0, 0.0, 0.0]);
    let g = Conv2dGeometry::pool([1, 1, 3, 2], [1, 2], [1, 1], Padding::Same).unwrap();
    let x = [2.0, 0.0, 2.0, 5.0, 1.0, 5.0];
    assert_eq!(max_pool2d(&g, &x), vec![2.0, 5.0, 2.0, 5.0, 1.0, 5.0]);
    assert_eq!(
        max_pool2d_grad(&g, &x, &[1.0, 10.0, 100.0, 1000.0, 1e4, 1e5]),
        vec![1.0, 0.0, 100.0, 1010.0, 1e4, 1e5]
    );
    // NaNs propagate and take the gradient.
    let g = Conv2dGeometry::pool([1, 1, 3, 1], [1, 3], [1, 1], Padding::Valid).unwrap();
    let x = [1.0f32, f32::NAN, 3.0];
    assert!(max_pool2d(&g, &x)[0].is_nan());
    assert_eq!(max_pool2d_grad(&g, &x, &[1.0]), vec![0.0, 1.0, 0.0]);
}

#[test]
fn pool_grads_match_finite_differences() {
    let mut rng = Rng(6);
    let cases = [
        Conv2dGeometry::pool([2, 5, 5, 2], [3, 3], [2, 2], Padding::Same).unwrap(),
        Conv2dGeometry::pool([2, 6, 7, 3], [2, 3], [2, 1], Padding::Same).unwrap(),
        Conv2dGeometry::pool([1, 6, 5, 2], [3, 2], [1, 2], Padding::Valid).unwrap(),
    ];
    for g in &cases {
        let x = rng.vec(g.input_len());
        let gy = rng.vec(g.pool_output_len());
        let num = numeric_grad(&x, 1e-6, |x| dot(&max_pool2d(g, x), &gy));
        assert_close(&max_pool2d_grad(g, &x, &gy), &num, 1e-6, "max");
        let num = numeric_grad(&x, 1e-6, |x| dot(&avg_pool2d(g, x), &gy));
        assert_close(&avg_pool2d_grad(g, &gy), &num, 1e-6, "avg");
    }
}

#[test]
fn dilated_pool_skips_taps() {
    // Pools honour dilations given through `new`.
    let g = geom([1, 1, 5, 1], [1, 3, 1, 1], [1, 1], [1, 2], Padding::Valid);
    let x = [1.0, 9.0, 2.0, 9.0, 3.0];
    assert_eq!(max_pool2d(&g, &x), vec![3.0]);
    assert_eq!(avg_pool2d(&g, &x), vec![2.0]);
    assert_eq!(max_pool2d_grad(&g, &x, &[1.0]), vec![0.0, 0.0, 0.0, 0.0, 1.0]);
}

/// MaxPoolGradGrad gathers the second input at each window's argmax, the first maximum on
/// ties (where max_pool2d_grad sends that window's gradient).
#[test]
fn max_pool_grad_grad_gathers_at_the_argmax() {
    // 2 channels interleaved; channel 0 has a tie in the first window.
    let x = [1.0f64, 0.0, 3.0, 5.0, 3.0, 1.0, 2.0, 2.0];
    let gg = [10.0f64, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0];
    let g = geom([1, 2, 2, 2], [2, 2, 2, 2], [2, 2], [1, 1], Padding::Valid);
    assert_eq!(max_pool2d_grad_grad(&g, &x, &gg), vec![30.0, 40.0]);
    // The adjoint of max_pool2d_grad: <grad_grad(x, gg), u> = <gg, grad(x, u)>.
    let mut rng = Rng(3);
    let g = geom([2, 5, 4, 3], [3, 2, 3, 3], [2, 1], [1, 1], Padding::Same);
    let x = rng.vec(g.input_len());
    let gg = rng.vec(g.input_len());
    let u = rng.vec(g.pool_output_len());
    let lhs: f64 = max_pool2d_grad_grad(&g, &x, &gg)
        .iter()
        .zip(&u)
        .map(|(a, b)| a * b)
        .sum();
    let rhs: f64 = gg.iter().zip(max_pool2d_grad(&g, &x, &u)).map(|(a, b)| a * b).sum();
    assert_abs_diff_eq!(lhs, rhs, epsilon = 1e-12);
}
