//! Property tests: broadcasting and shape ops against simple index-by-index references, and
//! "never panics" over random shapes (empty dimensions and rank 0 included).

use ferroflow_tensor_core::{Axes, DType, MatMul, Reduction, Scan, Slice, Tensor};
use proptest::prelude::*;

/// Row-major multi-index of flat position `i` in `dims`.
fn unravel(mut i: usize, dims: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; dims.len()];
    for d in (0..dims.len()).rev() {
        idx[d] = i % dims[d];
        i /= dims[d];
    }
    idx
}

/// Flat position of a multi-index in `dims`.
fn ravel(idx: &[usize], dims: &[usize]) -> usize {
    idx.iter().zip(dims).fold(0, |acc, (&i, &d)| acc * d + i)
}

fn iota(dims: &[usize]) -> Tensor {
    let n: usize = dims.iter().product();
    Tensor::from_vec((0..n as i64).collect(), dims).unwrap()
}

/// An output shape plus two input shapes that broadcast to it.
fn broadcast_triple() -> impl Strategy<Value = (Vec<usize>, Vec<usize>, Vec<usize>)> {
    prop::collection::vec(0usize..4, 0..5).prop_flat_map(|out| {
        let r = out.len();
        (
            Just(out),
            0..=r,
            0..=r,
            prop::collection::vec(any::<bool>(), r),
            prop::collection::vec(any::<bool>(), r),
        )
            .prop_map(|(out, da, db, ones_a, ones_b)| {
                let a: Vec<usize> = (da..out.len()).map(|i| if ones_a[i] { 1 } else { out[i] }).collect();
                let b: Vec<usize> = (db..out.len()).map(|i| if ones_b[i] { 1 } else { out[i] }).collect();
                // The broadcast of a and b may be smaller than `out` where both chose 1.
                let rank = a.len().max(b.len());
                let real: Vec<usize> = (0..rank)
                    .map(|k| {
                        let ga = if k + a.len() >= rank { a[k + a.len() - rank] } else { 1 };
                        let gb = if k + b.len() >= rank { b[k + b.len() - rank] } else { 1 };
                        ga.max(gb).min(if ga == 0 || gb == 0 { 0 } else { usize::MAX })
                    })
                    .collect();
                (real, a, b)
            })
    })
}

fn value_at(t: &[i64], dims: &[usize], out_idx: &[usize]) -> i64 {
    let lead = out_idx.len() - dims.len();
    let idx: Vec<usize> = dims
        .iter()
        .enumerate()
        .map(|(k, &d)| if d == 1 { 0 } else { out_idx[lead + k] })
        .collect();
    t[ravel(&idx, dims)]
}

proptest! {
    #[test]
    fn broadcasting_add_matches_reference((out, a, b) in broadcast_triple()) {
        let (ta, tb) = (iota(&a), iota(&b).mul(&Tensor::scalar(1000i64)).unwrap());
        let got = ta.add(&tb).unwrap();
        prop_assert_eq!(got.dims(), out.as_slice());
        let (va, vb, vg) = (ta.to_vec::<i64>().unwrap(), tb.to_vec::<i64>().unwrap(), got.to_vec::<i64>().unwrap());
        for (i, g) in vg.iter().enumerate() {
            let idx = unravel(i, &out);
            prop_assert_eq!(*g, value_at(&va, &a, &idx) + value_at(&vb, &b, &idx));
        }
    }

    #[test]
    fn incompatible_shapes_are_errors(a in prop::collection::vec(0usize..5, 0..4), b in prop::collection::vec(0usize..5, 0..4)) {
        let (ta, tb) = (iota(&a), iota(&b));
        let compatible = a.iter().rev().zip(b.iter().rev()).all(|(&x, &y)| x == y || x == 1 || y == 1);
        prop_assert_eq!(ta.add(&tb).is_ok(), compatible);
        prop_assert_eq!(ta.less(&tb).is_ok(), compatible);
    }

    #[test]
    fn transpose_matches_reference(dims in prop::collection::vec(0usize..4, 0..5), seed in any::<u64>()) {
        let mut perm: Vec<usize> = (0..dims.len()).collect();
        // A permutation from the seed (Fisher–Yates with a tiny LCG).
        let mut s = seed;
        for i in (1..perm.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            perm.swap(i, (s >> 33) as usize % (i + 1));
        }
        let t = iota(&dims);
        let got = t.transpose(&perm).unwrap();
        let out: Vec<usize> = perm.iter().map(|&p| dims[p]).collect();
        prop_assert_eq!(got.dims(), out.as_slice());
        let v = got.to_vec::<i64>().unwrap();
        for (i, x) in v.iter().enumerate() {
            let oi = unravel(i, &out);
            let mut ii = vec![0; dims.len()];
            for (k, &p) in perm.iter().enumerate() { ii[p] = oi[k]; }
            prop_assert_eq!(*x as usize, ravel(&ii, &dims));
        }
        // A transposed view feeds later ops correctly.
        let back = got.add(&Tensor::scalar(0i64)).unwrap().transpose(&inverse(&perm)).unwrap();
        prop_assert_eq!(back.to_vec::<i64>().unwrap(), t.to_vec::<i64>().unwrap());
    }

    #[test]
    fn strided_slice_matches_python(n in 0usize..9, b in prop::option::of(-10i64..10), e in prop::option::of(-10i64..10), s in prop::sample::select(vec![-3i64, -2, -1, 1, 2, 3])) {
        let t = iota(&[n]);
        let got = t.strided_slice([Slice { start: b, end: e, step: s }]).unwrap().to_vec::<i64>().unwrap();
        prop_assert_eq!(got, python_slice(n as i64, b, e, s));
    }

    #[test]
    fn reshape_concat_split_round_trip(dims in prop::collection::vec(1usize..4, 1..4), axis_pick in any::<usize>()) {
        let t = iota(&dims);
        let flat = t.reshape(&[-1]).unwrap();
        prop_assert_eq!(flat.to_vec::<i64>().unwrap(), t.to_vec::<i64>().unwrap());
        let ax = axis_pick % dims.len();
        let parts = t.split_n(dims[ax], ax as i64).unwrap();
        let refs: Vec<&Tensor> = parts.iter().collect();
        let joined = Tensor::concat(&refs, ax as i64).unwrap();
        prop_assert_eq!(joined.to_vec::<i64>().unwrap(), t.to_vec::<i64>().unwrap());
        let stacked = Tensor::stack(&refs, 0).unwrap();
        prop_assert_eq!(stacked.dims()[0], dims[ax]);
    }

    #[test]
    fn tile_and_pad_match_reference(dims in prop::collection::vec(0usize..3, 0..4), reps in prop::collection::vec(0usize..3, 4), pads in prop::collection::vec((0usize..2, 0usize..2), 4)) {
        let t = iota(&dims);
        let v = t.to_vec::<i64>().unwrap();
        let m = &reps[..dims.len()];
        let tiled = t.tile(m).unwrap();
        let out: Vec<usize> = dims.iter().zip(m).map(|(d, r)| d * r).collect();
        prop_assert_eq!(tiled.dims(), out.as_slice());
        for (i, x) in tiled.to_vec::<i64>().unwrap().iter().enumerate() {
            let idx: Vec<usize> = unravel(i, &out).iter().zip(&dims).map(|(o, d)| o % d).collect();
            prop_assert_eq!(*x, v[ravel(&idx, &dims)]);
        }
        let p: Vec<[usize; 2]> = pads[..dims.len()].iter().map(|&(a, b)| [a, b]).collect();
        let padded = t.pad(&p, -1.0).unwrap();
        let pout: Vec<usize> = dims.iter().zip(&p).map(|(d, q)| d + q[0] + q[1]).collect();
        for (i, x) in padded.to_vec::<i64>().unwrap().iter().enumerate() {
            let oi = unravel(i, &pout);
            let inside = oi.iter().zip(&p).zip(&dims).all(|((o, q), d)| *o >= q[0] && *o < q[0] + d);
            let want = if inside {
                let ii: Vec<usize> = oi.iter().zip(&p).map(|(o, q)| o - q[0]).collect();
                v[ravel(&ii, &dims)]
            } else { -1 };
            prop_assert_eq!(*x, want);
        }
    }

    #[test]
    fn reduce_sum_matches_reference(dims in prop::collection::vec(0usize..4, 0..4), mask in prop::collection::vec(any::<bool>(), 4), keep in any::<bool>()) {
        let t = iota(&dims);
        let v = t.to_vec::<i64>().unwrap();
        let axes: Vec<i64> = (0..dims.len()).filter(|&i| mask[i]).map(|i| i as i64).collect();
        let got = t.reduce_sum(Reduction { axes: Axes::from(&axes), keepdims: keep }).unwrap();
        let kept: Vec<usize> = (0..dims.len()).filter(|&i| !mask[i]).collect();
        let out: Vec<usize> = kept.iter().map(|&i| dims[i]).collect();
        let mut want = vec![0i64; out.iter().product()];
        for (i, x) in v.iter().enumerate() {
            let idx = unravel(i, &dims);
            let o: Vec<usize> = kept.iter().map(|&k| idx[k]).collect();
            want[ravel(&o, &out)] += x;
        }
        prop_assert_eq!(got.to_vec::<i64>().unwrap(), want);
        let as_f = t.cast(DType::F64).unwrap().reduce_mean(Reduction { axes: Axes::from(&axes), keepdims: keep }).unwrap();
        prop_assert_eq!(as_f.num_elements(), got.num_elements());
    }

    /// Whatever the shapes and attributes, ops answer Ok or Err, never panic.
    #[test]
    fn ops_never_panic(a in prop::collection::vec(0usize..4, 0..4), b in prop::collection::vec(0usize..4, 0..4), k in -5i64..5, j in 0usize..5) {
        let (x, y) = (iota(&a).cast(DType::F32).unwrap(), iota(&b).cast(DType::F32).unwrap());
        let _ = x.matmul(&y);
        let _ = x.matmul_with(&y, MatMul::new().transpose_a().transpose_b());
        let _ = Tensor::concat(&[&x, &y], k);
        let _ = Tensor::stack(&[&x, &y], k);
        let _ = x.reshape(&[k, -1]);
        let _ = x.expand_dims(k);
        let _ = x.squeeze(k);
        let _ = x.softmax(k);
        let _ = x.log_softmax(k);
        let _ = x.argmax(k);
        let _ = x.cumsum(Scan { axis: k, exclusive: j % 2 == 0, reverse: j % 3 == 0 });
        let _ = x.reduce_max(Axes::from(k).keepdims());
        let _ = x.reduce_logsumexp(k);
        let _ = x.split_n(j, k);
        let _ = x.gather(&Tensor::new([k, 0]), k);
        let _ = x.one_hot(ferroflow_tensor_core::OneHot::new(j).axis(k));
        let _ = x.tile(&b);
        let _ = x.broadcast_to(&b);
        let _ = x.select(&x, &y);
        let _ = x.less(&y).and_then(|c| c.select(&x, &y));
        let _ = x.bias_add(&y);
        let _ = x.sparse_softmax_cross_entropy_with_logits(&y);
        let _ = y.cast(DType::I64).and_then(|l| l.sparse_softmax_cross_entropy_with_logits(&x));
        let _ = x.softmax_cross_entropy_with_logits(&y, k);
        let _ = x.tensordot(&y, j);
        let _ = x.slice(&vec![k; a.len()], &vec![1; a.len()]);
        let _ = x.strided_slice(vec![Slice { start: Some(k), end: None, step: k }; a.len()]);
        let _ = x.pad(&vec![[j, 1]; a.len()], 0.0);
        let _ = x.conv2d(&y, [j, 1], ferroflow_tensor_core::Padding::Same, [1, j]);
        let _ = x.max_pool2d([j, 1], [1, 1], ferroflow_tensor_core::Padding::Valid);
        let _ = x.avg_pool2d([2, 2], [j, 2], ferroflow_tensor_core::Padding::Same);
        let xi = iota(&a).cast(DType::I32).unwrap();
        let _ = xi.floordiv(&iota(&b).cast(DType::I32).unwrap());
        let _ = xi.floormod(&xi);
        let _ = xi.matmul(&xi);
        let _ = Tensor::range(0.0, k as f64, j as f64, DType::I64);
    }
}

fn inverse(perm: &[usize]) -> Vec<usize> {
    let mut inv = vec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inv[p] = i;
    }
    inv
}

/// Python's `list(range(n))[b:e:s]`, written out the long way.
fn python_slice(n: i64, b: Option<i64>, e: Option<i64>, s: i64) -> Vec<i64> {
    let adj = |v: i64, lo: i64, hi: i64| {
        let v = if v < 0 { v + n } else { v };
        v.clamp(lo, hi)
    };
    let mut out = Vec::new();
    if s > 0 {
        let (mut i, e) = (b.map_or(0, |v| adj(v, 0, n)), e.map_or(n, |v| adj(v, 0, n)));
        while i < e {
            out.push(i);
            i += s;
        }
    } else {
        let (mut i, e) = (
            b.map_or(n - 1, |v| adj(v, -1, n - 1)),
            e.map_or(-1, |v| adj(v, -1, n - 1)),
        );
        while i > e {
            out.push(i);
            i += s;
        }
    }
    out
}
