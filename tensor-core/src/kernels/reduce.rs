//! The reduction loop behind `reduce_*`, softmax and friends.
//!
//! A reduction over a contiguous block of axes of a row-major array is a reduction of an
//! `[outer, r, inner]` view over its middle axis; any other axis set is first permuted into
//! that form (one copy). Rows are folded with eight interleaved accumulators so the loop
//! vectorises. Work is split only across whole output elements (or, for a full reduction of
//! a long vector, across fixed-size blocks), so the result is the same bit for bit whatever
//! the thread count or timing.
//!
//! Long sums are folded as a tree, not one running total, for accuracy: a running total of
//! `n` terms carries up to `n` roundings, a tree `log2 n` plus the leaves'. A line longer than
//! [`LEAF`] is halved until its pieces fit a leaf (eight accumulators each), and the pieces
//! are combined pairwise; a reduction over the middle axis of `[outer, r, inner]` halves its
//! rows the same way down to blocks of [`ROW_BLOCK`] rows, added one after another.
//! Measured on float32 sums of 2*10^4 to 3*10^5 uniform terms (mean distance from the exact
//! sum): 2 to 4 times further than TensorFlow's with one running total per accumulator, 2 to
//! 14 times closer with the trees. The shape alone decides the tree, so determinism is kept.

use crate::data::{row_major, Array};
use ndarray::{ArrayD, IxDyn};
use rayon::prelude::*;

/// Input element count from which reductions use the rayon pool (handing work to the pool
/// costs tens of microseconds, see `elementwise::PAR_THRESHOLD`).
pub const PAR_THRESHOLD: usize = 1 << 18;

/// Block length for a parallel full reduction; fixed so the summation order never depends on
/// the number of threads.
const BLOCK: usize = 1 << 14;

/// Longest piece of a line folded by one set of accumulators (see the module docs).
pub const LEAF: usize = 256;

/// Most rows a reduction down a column folds one after another (see the module docs).
pub const ROW_BLOCK: usize = 64;

/// Folds a slice as a tree: halves (at a multiple of eight) down to pieces of at most
/// [`LEAF`] elements, each folded into eight interleaved accumulators; the pieces'
/// accumulators are combined pairwise, lane by lane, and the eight lanes in a fixed order at
/// the end (so a slice of at most [`LEAF`] elements is one set of accumulators).
pub fn fold_tree<T: Copy, F: Fn(T, T) -> T>(s: &[T], init: T, f: &F) -> T {
    combine_lanes(lanes_tree(s, init, f), f)
}

/// The eight accumulators of [`fold_tree`] before their final combination.
fn lanes_tree<T: Copy, F: Fn(T, T) -> T>(s: &[T], init: T, f: &F) -> [T; 8] {
    if s.len() <= LEAF {
        return lanes(s, init, f);
    }
    let mid = (s.len() / 2).next_multiple_of(8);
    let (a, b) = (lanes_tree(&s[..mid], init, f), lanes_tree(&s[mid..], init, f));
    std::array::from_fn(|j| f(a[j], b[j]))
}

/// Element `i` of `s` folded into accumulator `i % 8`.
#[inline]
fn lanes<T: Copy, F: Fn(T, T) -> T>(s: &[T], init: T, f: &F) -> [T; 8] {
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
    acc
}

/// The eight accumulators of [`lanes`] combined in a fixed order.
#[inline]
fn combine_lanes<T: Copy, F: Fn(T, T) -> T>(acc: [T; 8], f: &F) -> T {
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
            let partial: Vec<T> = data.par_chunks(BLOCK).map(|c| fold_tree(c, init, f)).collect();
            return vec![fold_tree(&partial, init, f)];
        }
        if r == 0 {
            return vec![init; outer];
        }
        if big && outer > 1 {
            return data.par_chunks(r).map(|row| fold_tree(row, init, f)).collect();
        }
        return data.chunks(r).map(|row| fold_tree(row, init, f)).collect();
    }
    let mut out = vec![init; outer * inner];
    if r == 0 || inner == 0 {
        return out;
    }
    let body = |(o, dst): (usize, &mut [T])| {
        let rows = &data[o * r * inner..(o + 1) * r * inner];
        fold_rows_tree(dst, rows, r, init, f);
    };
    if big && outer > 1 {
        out.par_chunks_mut(inner).enumerate().for_each(body);
    } else {
        out.chunks_mut(inner).enumerate().for_each(body);
    }
    out
}

/// Folds the `inner`-long rows of `rows` into `dst`, one after another.
fn add_rows<T: Copy, F: Fn(T, T) -> T>(dst: &mut [T], rows: &[T], f: &F) {
    for row in rows.chunks_exact(dst.len()) {
        for (d, &x) in dst.iter_mut().zip(row) {
            *d = f(*d, x);
        }
    }
}

/// Folds `r` rows of `dst.len()` elements into `dst` (holding `init`) as a tree: halves (at
/// a multiple of [`ROW_BLOCK`]) down to blocks of at most [`ROW_BLOCK`] rows, each folded row
/// by row, combined pairwise. The left half folds straight into `dst`; only the right half
/// needs a buffer.
fn fold_rows_tree<T: Copy, F: Fn(T, T) -> T>(dst: &mut [T], rows: &[T], r: usize, init: T, f: &F) {
    if r <= ROW_BLOCK {
        return add_rows(dst, rows, f);
    }
    let inner = dst.len();
    let mid = (r / 2).next_multiple_of(ROW_BLOCK);
    fold_rows_tree(dst, &rows[..mid * inner], mid, init, f);
    let mut right = vec![init; inner];
    fold_rows_tree(&mut right, &rows[mid * inner..], r - mid, init, f);
    add_rows(dst, &right, f);
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

    /// Long float32 sums are folded as trees: a million 0.1s add up to their exact sum within
    /// 1e-6 relative along a line, down a column and over a parallel full reduction, where one
    /// running total per accumulator (the fold before trees) does not.
    #[test]
    fn long_float_sums_fold_as_trees() {
        let n = 1_000_000usize;
        let exact = n as f64 * f64::from(0.1f32);
        let close = |got: f32| (f64::from(got) - exact).abs() / exact < 1e-6;
        let line = vec![0.1f32; n];
        let serial_lanes = combine_lanes(lanes(&line, 0.0, &|a, b| a + b), &|a, b| a + b);
        assert!(!close(serial_lanes), "the one-level fold is the inaccurate reference");
        assert!(close(fold_tree(&line, 0.0, &|a, b| a + b)));
        let full = reduce_3d(&line, 1, n, 1, 0.0, &|a, b| a + b);
        assert!(close(full[0]), "parallel full reduction: {}", full[0]);
        let columns = reduce_3d(&vec![0.1f32; 2 * n], 1, n, 2, 0.0, &|a, b| a + b);
        assert!(columns.iter().all(|&c| close(c)), "columns: {columns:?}");
        let rows = reduce_3d(&vec![0.1f32; 2 * n], 2, n, 1, 0.0, &|a, b| a + b);
        assert!(rows.iter().all(|&c| close(c)), "rows: {rows:?}");
    }

    /// The tree's shape depends on the length alone, and short lines (up to a leaf, or up to
    /// a row block down a column) fold exactly as the one-level fold.
    #[test]
    fn short_lines_fold_as_before() {
        let v: Vec<f32> = (0..LEAF).map(|i| (i as f32 * 0.37).sin()).collect();
        let add = |a: f32, b: f32| a + b;
        assert_eq!(
            fold_tree(&v, 0.0, &add).to_bits(),
            combine_lanes(lanes(&v, 0.0, &add), &add).to_bits()
        );
        let cols = reduce_3d(&v[..ROW_BLOCK * 4], 1, ROW_BLOCK, 4, 0.0, &add);
        for (c, got) in cols.iter().enumerate() {
            let want = (0..ROW_BLOCK).fold(0.0f32, |acc, r| acc + v[r * 4 + c]);
            assert_eq!(got.to_bits(), want.to_bits());
        }
    }
}
