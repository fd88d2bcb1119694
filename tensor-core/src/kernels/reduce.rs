//! The reduction loop behind `reduce_*`, softmax and friends.
//!
//! A reduction over a contiguous block of axes of a row-major array is a reduction of an
//! `[outer, r, inner]` view over its middle axis; any other axis set is first permuted into
//! that form (one copy). Rows are folded with eight interleaved accumulators so the loop
//! vectorises. Work is split only across whole output elements (or, for a full reduction of
//! a long vector, across fixed-size blocks combined in order), so the result is the same bit
//! for bit whatever the thread count or timing.

use crate::data::{row_major, Array};
use ndarray::{ArrayD, IxDyn};
use rayon::prelude::*;

/// Input element count from which reductions use the rayon pool (handing work to the pool
/// costs tens of microseconds, see `elementwise::PAR_THRESHOLD`).
pub const PAR_THRESHOLD: usize = 1 << 18;

/// Block length for a parallel full reduction; fixed so the summation order never depends on
/// the number of threads.
const BLOCK: usize = 1 << 14;

/// Folds a slice with eight interleaved accumulators, then combines them in a fixed order.
#[inline]
pub fn fold_lanes<T: Copy, F: Fn(T, T) -> T>(s: &[T], init: T, f: &F) -> T {
    let mut acc = [init; 8];
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        for j in 0..8 {
            acc[j] = f(acc[j], c[j]);
        }
    }
    for (j, &x) in chunks.remainder().iter().enumerate() {
        acc[j] = f(acc[j], x);
    }
    let a = f(f(acc[0], acc[4]), f(acc[1], acc[5]));
    let b = f(f(acc[2], acc[6]), f(acc[3], acc[7]));
    f(a, b)
}

/// `(outer, r, inner)` of a row-major shape reduced over the axes `[p, q)`.
pub fn split_dims(dims: &[usize], p: usize, q: usize) -> (usize, usize, usize) {
    let outer = dims[..p].iter().product();
    let r = dims[p..q].iter().product();
    let inner = dims[q..].iter().product();
    (outer, r, inner)
}

/// Reduces `a` over the sorted, unique `axes` with the associative `f` from `init`. Returns
/// the kept dimensions (no keepdims) in row-major order.
pub fn reduce_axes<T, F>(a: &Array<T>, axes: &[usize], init: T, f: F) -> ArrayD<T>
where
    T: Copy + Send + Sync,
    F: Fn(T, T) -> T + Sync + Send,
{
    let dims = a.shape();
    let kept: Vec<usize> = (0..dims.len()).filter(|i| !axes.contains(i)).collect();
    let out_dims: Vec<usize> = kept.iter().map(|&i| dims[i]).collect();
    let contiguous_axes = axes.windows(2).all(|w| w[1] == w[0] + 1);
    let (data, outer, r, inner);
    let owned;
    if contiguous_axes && a.is_standard_layout() {
        data = a.as_slice().expect("standard layout has a slice");
        let (p, q) = match axes {
            [] => (dims.len(), dims.len()),
            _ => (axes[0], axes[axes.len() - 1] + 1),
        };
        (outer, r, inner) = split_dims(dims, p, q);
    } else {
        let mut perm = kept.clone();
        perm.extend_from_slice(axes);
        owned = a.view().permuted_axes(IxDyn(&perm)).as_standard_layout().into_owned();
        data = owned.as_slice().expect("standard layout has a slice");
        (outer, r, inner) = split_dims(owned.shape(), kept.len(), dims.len());
    }
    let v = reduce_3d(data, outer, r, inner, init, &f);
    row_major(&out_dims, v).expect("reduce: output size")
}

/// Reduces a row-major `[outer, r, inner]` buffer over its middle axis.
pub fn reduce_3d<T, F>(data: &[T], outer: usize, r: usize, inner: usize, init: T, f: &F) -> Vec<T>
where
    T: Copy + Send + Sync,
    F: Fn(T, T) -> T + Sync + Send,
{
    let total = outer * r * inner;
    let big = total >= PAR_THRESHOLD;
    if inner == 1 {
        if outer == 1 && big {
            let partial: Vec<T> = data.par_chunks(BLOCK).map(|c| fold_lanes(c, init, f)).collect();
            return vec![partial.into_iter().fold(init, f)];
        }
        if r == 0 {
            return vec![init; outer];
        }
        if big && outer > 1 {
            return data.par_chunks(r).map(|row| fold_lanes(row, init, f)).collect();
        }
        return data.chunks(r).map(|row| fold_lanes(row, init, f)).collect();
    }
    let mut out = vec![init; outer * inner];
    if r == 0 || inner == 0 {
        return out;
    }
    let body = |(o, dst): (usize, &mut [T])| {
        let block = &data[o * r * inner..(o + 1) * r * inner];
        for row in block.chunks_exact(inner) {
            for (d, &x) in dst.iter_mut().zip(row) {
                *d = f(*d, x);
            }
        }
    };
    if big && outer > 1 {
        out.par_chunks_mut(inner).enumerate().for_each(body);
    } else {
        out.chunks_mut(inner).enumerate().for_each(body);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_axis_set_matches_a_naive_sum() {
        let dims = [3usize, 4, 5];
        let v: Vec<i64> = (0..60).collect();
        let a = ArrayD::from_shape_vec(IxDyn(&dims), v).unwrap().into_shared();
        for axes in [
            vec![],
            vec![0],
            vec![1],
            vec![2],
            vec![0, 1],
            vec![1, 2],
            vec![0, 2],
            vec![0, 1, 2],
        ] {
            let got = reduce_axes(&a, &axes, 0, |x, y| x + y);
            let mut want = a.to_owned();
            for &ax in axes.iter().rev() {
                want = want.sum_axis(ndarray::Axis(ax));
            }
            assert_eq!(got, want, "axes {axes:?}");
        }
    }

    #[test]
    fn parallel_full_reduction_is_exact_for_integers() {
        let n = PAR_THRESHOLD * 2 + 3;
        let a = ArrayD::from_shape_vec(IxDyn(&[n]), (0..n as i64).collect())
            .unwrap()
            .into_shared();
        let got = reduce_axes(&a, &[0], 0, |x, y| x + y);
        assert_eq!(got[IxDyn(&[])], (n as i64) * (n as i64 - 1) / 2);
        let rows = ArrayD::from_shape_vec(IxDyn(&[n, 1]), (0..n as i64).collect())
            .unwrap()
            .into_shared();
        assert_eq!(reduce_axes(&rows, &[1], 0, |x, y| x + y).len(), n);
    }
}
