//! Contiguous loops for the two broadcasts that carry most of a model's elementwise work:
//! an operand repeated over the leading axes (a bias `[n]` added to `[batch, n]`) and one
//! repeated along the trailing axes (a per-row `[batch, 1]` against `[batch, n]`, as in
//! `x - reduce_max(x, keepdims)`).
//!
//! Why: through `ndarray::Zip` over two broadcast views of dynamic rank, `[256, 256] + [256]`
//! ran at about a cycle per element. Here the output is cut into segments that each pair a
//! contiguous run of the full operand with either the whole smaller one or one of its
//! elements, and each segment is one loop the compiler vectorises. Measured on a 2-core
//! AVX-512 Xeon, alternating runs of W3's eager add (p50 of 1500 calls): 13.8 → 9.0 µs on one
//! thread, 29.6 → 19.6 µs with two threads in the pool.
//!
//! Every output element is still `f(a, b)` of the same pair, so results are bit-identical to
//! the `Zip` path (the element functions round the same in the AVX2+FMA build these loops
//! run in: Rust contracts no float operation, and a fused multiply-add is exact in both), and
//! the parallel split changes nothing either.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::elementwise::CHUNK;
use super::simd::vectorized;
use super::warm_split;

/// How the smaller operand of a broadcast repeats over the row-major output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Repeat {
    /// The operand is one row of this many elements, repeated over the leading axes: its
    /// shape, less leading 1s, is the output's trailing axes.
    Row(usize),
    /// Each element of the operand covers this many consecutive outputs: rank-padded with
    /// leading 1s as broadcasting does, and less its trailing 1s, its shape is the output's
    /// leading axes (`[a, b, 1]` or `[b, 1]` against `[1, b, n]`, not `[b, 1]` against
    /// `[a, b, n]`).
    Run(usize),
}

/// Fewest outputs per segment for [`repeat_of`] to name a repeat: two AVX2 vectors of `f32`.
/// Shorter segments (`[m, 3] + [3]`) would run a loop set-up per handful of elements, so they
/// keep the `Zip` path.
const MIN_SEGMENT: usize = 16;

/// How an operand of shape `dims` repeats over an output of shape `out` (a broadcast the
/// caller has validated), or `None` when it is neither of the [`Repeat`] forms, is the
/// whole output, has more axes than the output, when the output has no elements, or when
/// its segments would be shorter than [`MIN_SEGMENT`].
pub(crate) fn repeat_of(dims: &[usize], out: &[usize]) -> Option<Repeat> {
    let total: usize = out.iter().product();
    let len: usize = dims.iter().product();
    if total == 0 || len == 0 || len == total || dims.len() > out.len() {
        return None;
    }
    if repeats_along_leading_axes(dims, out) {
        return (len >= MIN_SEGMENT).then_some(Repeat::Row(len));
    }
    // Rank-padded with leading 1s, as broadcasting does, and less its trailing 1s, the
    // operand must be the output's leading axes; each element then covers the rest.
    let pad = out.len() - dims.len();
    let kept = pad + dims.iter().rposition(|&d| d != 1).map_or(0, |i| i + 1);
    let padded = std::iter::repeat_n(&1, pad).chain(dims);
    let run = total / len;
    (run >= MIN_SEGMENT && padded.zip(&out[..kept]).all(|(d, o)| d == o)).then_some(Repeat::Run(run))
}

/// True when an input of `dims` (leading ones aside) equals the trailing dimensions of `out`
/// and is not empty: broadcasting it repeats it whole along `out`'s leading axes. The host
/// loops here and the CUDA backend's fused kernels (a bias row over a matmul's rows) share
/// this test.
pub(crate) fn repeats_along_leading_axes(dims: &[usize], out: &[usize]) -> bool {
    let first = dims.iter().position(|&d| d != 1).unwrap_or(dims.len());
    let dims = &dims[first..];
    out.ends_with(dims) && dims.iter().all(|&d| d > 0)
}

/// `f(full[i], small[j])` into `out[i]` for the outputs `start..start + out.len()`, `j`
/// following `repeat`, on this thread: one vectorised loop per segment (or part of one, at
/// the ends). `small` is indexed by slicing, so an operand too short for `repeat` panics
/// rather than leaving outputs unwritten.
#[inline(always)]
fn fill<A: Copy, B: Copy, U, F: Fn(A, B) -> U>(
    out: &mut [MaybeUninit<U>],
    full: &[A],
    small: &[B],
    (repeat, start): (Repeat, usize),
    f: &F,
) {
    vectorized(
        #[inline(always)]
        || {
            let (Repeat::Row(len) | Repeat::Run(len)) = repeat;
            let (mut segment, mut offset) = (start / len, start % len);
            let mut i = 0;
            while i < out.len() {
                let take = (len - offset).min(out.len() - i);
                let (o, x) = (&mut out[i..i + take], &full[i..i + take]);
                match repeat {
                    Repeat::Row(_) => {
                        for ((o, &x), &y) in o.iter_mut().zip(x).zip(&small[offset..offset + take]) {
                            *o = MaybeUninit::new(f(x, y));
                        }
                    }
                    Repeat::Run(_) => {
                        let y = small[segment];
                        for (o, &x) in o.iter_mut().zip(x) {
                            *o = MaybeUninit::new(f(x, y));
                        }
                    }
                }
                i += take;
                (segment, offset) = (segment + 1, 0);
            }
        },
    )
}

/// `f(full[i], small[j])` over the output of `full.len()` elements, `small` repeating as
/// `repeat` says (from [`repeat_of`]); on the pool from `par_from` elements, in tasks of
/// [`super::elementwise::CHUNK`] outputs as the other elementwise loops (below that, with
/// lingering helpers if any, as they are: `super::warm_split`).
///
/// # Panics
///
/// When `full` and `small` do not fit `repeat` (a caller bug: [`repeat_of`] sizes it).
pub(crate) fn zip_repeated<A, B, U, F>(full: &[A], small: &[B], repeat: Repeat, f: F, par_from: usize) -> Vec<U>
where
    A: Copy + Send + Sync,
    B: Copy + Send + Sync,
    U: Copy + Send + Sync + 'static,
    F: Fn(A, B) -> U + Sync + Send,
{
    let n = full.len();
    let fits = match repeat {
        Repeat::Row(len) => len > 0 && n.is_multiple_of(len) && small.len() == len,
        Repeat::Run(len) => len > 0 && n.is_multiple_of(len) && small.len() == n / len,
    };
    assert!(
        fits,
        "zip_repeated: {n} outputs, {} repeated as {repeat:?}",
        small.len()
    );
    // SAFETY (every arm): `fill` writes every element of the output chunk it is given (its
    // `full` chunk has the same length) or panics, and then `written_vec` drops the vector
    // with length 0.
    if warm_split::worth_splitting(n, par_from) {
        return unsafe {
            warm_split::written_in_pieces(n, &|r, o| fill(o, &full[r.clone()], small, (repeat, r.start), &f))
        };
    }
    if n < par_from {
        return unsafe { crate::host_cache::written_vec(n, |out| fill(out, full, small, (repeat, 0), &f)) };
    }
    unsafe {
        crate::host_cache::written_vec(n, |out| {
            out.par_chunks_mut(CHUNK)
                .zip(full.par_chunks(CHUNK))
                .enumerate()
                .for_each(|(t, (o, x))| fill(o, x, small, (repeat, t * CHUNK), &f))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_recognised_only_in_their_two_forms() {
        use Repeat::{Row, Run};
        assert_eq!(repeat_of(&[256], &[256, 256]), Some(Row(256)));
        assert_eq!(repeat_of(&[1, 4, 5], &[3, 4, 5]), Some(Row(20)));
        assert_eq!(repeat_of(&[16], &[2, 3, 4, 16]), Some(Row(16)));
        assert_eq!(repeat_of(&[2, 1, 16], &[4, 2, 1, 16]), Some(Row(32)));
        assert_eq!(repeat_of(&[2, 1], &[2, 16]), Some(Run(16)));
        assert_eq!(repeat_of(&[2, 3, 1, 1], &[2, 3, 4, 5]), Some(Run(20)));
        assert_eq!(repeat_of(&[3, 1], &[1, 3, 40]), Some(Run(40)));
        // Segments too short to pay for their loop stay on the `Zip` path.
        assert_eq!(repeat_of(&[5], &[7, 5]), None);
        assert_eq!(repeat_of(&[1], &[2, 3]), None);
        assert_eq!(repeat_of(&[7, 1], &[7, 15]), None);
        // Broadcast on both sides of the operand's axes, the whole output, or nothing.
        assert_eq!(repeat_of(&[1, 3, 1], &[2, 3, 40]), None);
        assert_eq!(repeat_of(&[3, 1, 20], &[2, 3, 4, 20]), None);
        assert_eq!(repeat_of(&[3, 1], &[2, 3, 40]), None);
        assert_eq!(repeat_of(&[2, 30], &[2, 30]), None);
        assert_eq!(repeat_of(&[30], &[0, 30]), None);
        assert_eq!(repeat_of(&[1, 2, 30], &[2, 30]), None);
    }

    #[test]
    #[should_panic(expected = "zip_repeated")]
    fn an_operand_that_does_not_fit_its_repeat_panics() {
        let _ = zip_repeated(&[0.0f32; 64], &[1.0f32; 3], Repeat::Run(16), |x, y| x + y, usize::MAX);
    }

    /// Every output element, computed pair by pair from the broadcast index.
    fn reference(a: &[f32], a_dims: &[usize], b: &[f32], b_dims: &[usize], out: &[usize]) -> Vec<f32> {
        let total: usize = out.iter().product();
        let at = |v: &[f32], dims: &[usize], i: usize| {
            let (mut rest, mut flat, mut stride) = (i, 0, 1);
            let pad = out.len() - dims.len();
            for axis in (0..out.len()).rev() {
                let coord = rest % out[axis];
                rest /= out[axis];
                if axis >= pad {
                    let d = dims[axis - pad];
                    flat += if d == 1 { 0 } else { coord * stride };
                    stride *= d;
                }
            }
            v[flat]
        };
        (0..total).map(|i| at(a, a_dims, i) * 3.0 - at(b, b_dims, i)).collect()
    }

    #[test]
    fn both_forms_match_the_broadcast_on_one_thread_and_many() {
        // The last three span several parallel tasks, which start and end inside segments.
        let cases: [(&[usize], &[usize]); 7] = [
            (&[7, 20], &[20]),
            (&[4, 3, 6], &[1, 3, 6]),
            (&[7, 17], &[7, 1]),
            (&[2, 3, 4, 5], &[2, 3, 1, 1]),
            (&[3001, 17], &[17]),
            (&[3001, 17], &[3001, 1]),
            (&[3, 20000], &[3, 1]),
        ];
        for (full_dims, small_dims) in cases {
            let n: usize = full_dims.iter().product();
            let full: Vec<f32> = (0..n).map(|i| i as f32 * 0.25 - 3.0).collect();
            let small: Vec<f32> = (0..small_dims.iter().product()).map(|i| 1.5 + i as f32).collect();
            let repeat = repeat_of(small_dims, full_dims).expect("a repeat");
            for par_from in [usize::MAX, 1] {
                // The full operand first, then second (the closure swaps them back).
                let first = zip_repeated(&full, &small, repeat, |x, y| x * 3.0 - y, par_from);
                assert_eq!(first, reference(&full, full_dims, &small, small_dims, full_dims));
                let second = zip_repeated(&full, &small, repeat, |x, y| y * 3.0 - x, par_from);
                assert_eq!(second, reference(&small, small_dims, &full, full_dims, full_dims));
            }
        }
    }
}
