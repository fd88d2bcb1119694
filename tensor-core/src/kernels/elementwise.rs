//! Elementwise loops: a contiguous fast path (one tight loop the compiler vectorises), a
//! parallel path over fixed-size chunks above [`PAR_THRESHOLD`] elements, contiguous loops
//! for a bias row or a per-row scalar broadcast over a whole operand (`super::broadcast`),
//! and a strided / broadcasting fallback through `ndarray::Zip`. Below the threshold, the
//! contiguous loops of [`super::warm_split::MIN_ELEMENTS`] or more are split with the matmul
//! helpers that still linger after a product, if any (`super::warm_split`); so are costly
//! loops above their own lower threshold, while every pool thread but the caller lingers.
//! Loops that update an operand in place go parallel above the threshold too
//! ([`update_in_pieces`]), and are never split with lingering helpers.
//!
//! Elementwise results never depend on the split (each element is computed on its own), so
//! going parallel cannot change a single bit.

use super::broadcast::{repeat_of, zip_repeated};
use super::simd::vectorized;
use super::warm_split;
use crate::data::{row_major, Array};
use ndarray::{IxDyn, Zip};
use rayon::prelude::*;
use std::mem::MaybeUninit;
use std::ops::Range;

/// Element count from which cheap loops (add, multiply, relu, ...) run on the rayon pool.
/// Handing work to the pool from the calling thread costs tens of microseconds on a shared
/// VM (a cross-thread wake-up), which a single core repays only on large arrays: measured on
/// 2 cores, a 200K-element multiply takes 20 µs on one thread and 45 µs handed to the pool.
pub const PAR_THRESHOLD: usize = 1 << 19;

/// Element count from which costly loops (exp, sigmoid, tanh, pow, ...) go parallel: their
/// arithmetic repays the hand-off much sooner.
pub const PAR_THRESHOLD_COSTLY: usize = 1 << 15;

/// Elements per parallel task: large enough to amortise scheduling, small enough to stay in
/// L2 and balance two to sixteen cores.
pub const CHUNK: usize = 1 << 14;

/// Writes `f(src[i])` into `out[i]` (one tight loop, vectorised with the widest available
/// instructions).
#[inline(always)]
fn fill_map<T: Copy, U, F: Fn(T) -> U>(out: &mut [MaybeUninit<U>], src: &[T], f: &F) {
    vectorized(
        #[inline(always)]
        || {
            for (o, &x) in out.iter_mut().zip(src) {
                *o = MaybeUninit::new(f(x));
            }
        },
    )
}

/// Writes `f(a[i], b[i])` into `out[i]`.
#[inline(always)]
fn fill_zip<A: Copy, B: Copy, U, F: Fn(A, B) -> U>(out: &mut [MaybeUninit<U>], a: &[A], b: &[B], f: &F) {
    vectorized(
        #[inline(always)]
        || {
            for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                *o = MaybeUninit::new(f(x, y));
            }
        },
    )
}

/// `f` over `src` into a new vector, on this thread. Written as a plain indexed loop rather
/// than `collect`: the loop is inlined into the AVX2+FMA build that [`vectorized`] runs, where
/// a call into `Vec::from_iter` may not be, and then the element function's fused
/// multiply-adds become library calls (measured: W5's sigmoid, then built on `exp`, 4x
/// slower that way).
#[inline(always)]
fn map_serial<T: Copy, U, F: Fn(T) -> U>(src: &[T], f: &F) -> Vec<U> {
    let n = src.len();
    let mut out: Vec<U> = Vec::with_capacity(n);
    let dst = out.as_mut_ptr();
    for (i, &x) in src.iter().enumerate() {
        // SAFETY: `i < n`, the capacity; each slot is written once before `set_len`.
        unsafe { dst.add(i).write(f(x)) };
    }
    // SAFETY: the loop wrote all n slots.
    unsafe { out.set_len(n) };
    out
}

/// `f` pairwise over two equal-length slices into a new vector, on this thread (see
/// [`map_serial`]).
#[inline(always)]
fn zip_serial<A: Copy, B: Copy, U, F: Fn(A, B) -> U>(a: &[A], b: &[B], f: &F) -> Vec<U> {
    let n = a.len().min(b.len());
    let mut out: Vec<U> = Vec::with_capacity(n);
    let dst = out.as_mut_ptr();
    for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
        // SAFETY: `i < n`, the capacity; each slot is written once before `set_len`.
        unsafe { dst.add(i).write(f(x, y)) };
    }
    // SAFETY: the loop wrote all n slots.
    unsafe { out.set_len(n) };
    out
}

/// `f` over a contiguous slice into a new vector: with the helpers lingering after a
/// product if any (see the module docs), else on the pool from `par_from` elements.
pub fn map_slice<T, U, F>(src: &[T], f: F, par_from: usize) -> Vec<U>
where
    T: Copy + Send + Sync,
    U: Copy + Send + Sync + 'static,
    F: Fn(T) -> U + Sync + Send,
{
    let n = src.len();
    if warm_split::worth_splitting(n, par_from) {
        // SAFETY: `fill_map` writes the whole piece it is given.
        return unsafe { warm_split::written_in_pieces(n, &|r, o| fill_map(o, &src[r], &f)) };
    }
    if n < par_from {
        return vectorized(
            #[inline(always)]
            || map_serial(src, &f),
        );
    }
    // SAFETY: the parallel loop writes every one of the n slots.
    unsafe {
        crate::host_cache::written_vec(n, |spare| {
            spare
                .par_chunks_mut(CHUNK)
                .zip(src.par_chunks(CHUNK))
                .for_each(|(o, s)| fill_map(o, s, &f))
        })
    }
}

/// `f` over two equal-length contiguous slices into a new vector: with lingering helpers
/// if any, else on the pool from `par_from` elements.
pub fn zip_slices<A, B, U, F>(a: &[A], b: &[B], f: F, par_from: usize) -> Vec<U>
where
    A: Copy + Send + Sync,
    B: Copy + Send + Sync,
    U: Copy + Send + Sync + 'static,
    F: Fn(A, B) -> U + Sync + Send,
{
    let n = a.len().min(b.len());
    if warm_split::worth_splitting(n, par_from) {
        // SAFETY: `fill_zip` writes the whole piece it is given.
        return unsafe { warm_split::written_in_pieces(n, &|r, o| fill_zip(o, &a[r.clone()], &b[r], &f)) };
    }
    if n < par_from {
        return vectorized(
            #[inline(always)]
            || zip_serial(&a[..n], &b[..n], &f),
        );
    }
    // SAFETY: the parallel loop writes every one of the n slots.
    unsafe {
        crate::host_cache::written_vec(n, |spare| {
            spare
                .par_chunks_mut(CHUNK)
                .zip(a[..n].par_chunks(CHUNK).zip(b[..n].par_chunks(CHUNK)))
                .for_each(|(o, (sa, sb))| fill_zip(o, sa, sb, &f))
        })
    }
}

/// `body(range, &mut dst[range])` over pieces covering `dst` once each: on the pool from
/// `par_from` elements, as the loops that make a new output; below that in one call on this
/// thread. For loops that update an operand in place (the graph's buffer reuse, a
/// variable's `assign_sub`), which before ran on one thread whatever their size. `body`
/// should run its loop through [`vectorized`].
///
/// Why not split with lingering helpers below `par_from`, as new outputs are: an operand
/// updated in place is often still in the caller's cache from the op before, and each
/// piece a helper takes moves its written lines to the helper's core and back. Measured on
/// 2 cores after a product (p50, in place `add`, `relu`, `assign_sub`, two runs): 1.3–1.8x
/// slower split at 64 Ki and 200 K elements, 1.6–2.0x slower at 20 K.
pub(crate) fn update_in_pieces<T: Send>(
    dst: &mut [T],
    par_from: usize,
    body: &(dyn Fn(Range<usize>, &mut [T]) + Sync + '_),
) {
    let n = dst.len();
    if n >= par_from {
        dst.par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(i, piece)| body(i * CHUNK..i * CHUNK + piece.len(), piece));
    } else {
        body(0..n, dst);
    }
}

fn standard_slice<T>(a: &Array<T>) -> Option<&[T]> {
    if a.is_standard_layout() {
        a.as_slice()
    } else {
        None
    }
}

/// Applies a cheap `f` to every element; the result has `a`'s shape in row-major order.
pub fn unary<T, U, F>(a: &Array<T>, f: F) -> Array<U>
where
    T: Copy + Send + Sync,
    U: Copy + Send + Sync + 'static,
    F: Fn(T) -> U + Sync + Send,
{
    unary_with(a, f, PAR_THRESHOLD)
}

/// [`unary`] going parallel from `par_from` elements.
pub fn unary_with<T, U, F>(a: &Array<T>, f: F, par_from: usize) -> Array<U>
where
    T: Copy + Send + Sync,
    U: Copy + Send + Sync + 'static,
    F: Fn(T) -> U + Sync + Send,
{
    // A strided view is copied first: the map then runs vectorised (and `f` may assume the
    // vectorised build, see `with_fma!`).
    let v = match standard_slice(a) {
        Some(s) => map_slice(s, f, par_from),
        None => map_slice(a.as_standard_layout().as_slice().expect("standard layout"), f, par_from),
    };
    row_major(a.shape(), v)
        .expect("unary: element count preserved")
        .into_shared()
}

/// Applies a cheap `f` pairwise with NumPy broadcasting to `out_dims` (already validated).
pub fn binary<A, B, U, F>(a: &Array<A>, b: &Array<B>, out_dims: &[usize], f: F) -> Array<U>
where
    A: Copy + Send + Sync,
    B: Copy + Send + Sync,
    U: Copy + Send + Sync + 'static,
    F: Fn(A, B) -> U + Sync + Send,
{
    binary_with(a, b, out_dims, f, PAR_THRESHOLD)
}

/// [`binary`] going parallel from `par_from` elements.
pub fn binary_with<A, B, U, F>(a: &Array<A>, b: &Array<B>, out_dims: &[usize], f: F, par_from: usize) -> Array<U>
where
    A: Copy + Send + Sync,
    B: Copy + Send + Sync,
    U: Copy + Send + Sync + 'static,
    F: Fn(A, B) -> U + Sync + Send,
{
    let shape = IxDyn(out_dims);
    let n: usize = out_dims.iter().product();
    let v = match (standard_slice(a), standard_slice(b)) {
        (Some(sa), Some(sb)) if sa.len() == n && sb.len() == n => Some(zip_slices(sa, sb, &f, par_from)),
        (Some(sa), Some(sb)) if sa.len() == n && sb.len() == 1 => {
            let y = sb[0];
            Some(map_slice(sa, |x| f(x, y), par_from))
        }
        (Some(sa), Some(sb)) if sb.len() == n && sa.len() == 1 => {
            let x = sa[0];
            Some(map_slice(sb, |y| f(x, y), par_from))
        }
        _ => None,
    };
    if let Some(v) = v.or_else(|| zip_broadcast(a, b, out_dims, &f, par_from)) {
        return row_major(out_dims, v).expect("binary: broadcast length").into_shared();
    }
    let av = a.broadcast(shape.clone()).expect("binary: shapes validated by infer");
    let bv = b.broadcast(shape).expect("binary: shapes validated by infer");
    let z = Zip::from(&av).and(&bv);
    if n >= par_from {
        z.par_map_collect(|&x, &y| f(x, y)).into_shared()
    } else {
        z.map_collect(|&x, &y| f(x, y)).into_shared()
    }
}

/// `f` pairwise when one operand is whole and contiguous and the other repeats over it in one
/// of the [`Repeat`](super::broadcast::Repeat) forms (a bias row, a per-row scalar); `None`
/// otherwise.
fn zip_broadcast<A, B, U, F>(a: &Array<A>, b: &Array<B>, out_dims: &[usize], f: &F, par_from: usize) -> Option<Vec<U>>
where
    A: Copy + Send + Sync,
    B: Copy + Send + Sync,
    U: Copy + Send + Sync + 'static,
    F: Fn(A, B) -> U + Sync + Send,
{
    let n: usize = out_dims.iter().product();
    let (sa, sb) = (standard_slice(a)?, standard_slice(b)?);
    if sa.len() == n {
        let repeat = repeat_of(b.shape(), out_dims)?;
        Some(zip_repeated(sa, sb, repeat, f, par_from))
    } else if sb.len() == n {
        let repeat = repeat_of(a.shape(), out_dims)?;
        Some(zip_repeated(sb, sa, repeat, |y, x| f(x, y), par_from))
    } else {
        None
    }
}

/// Applies `f` to three broadcast operands (for `where`).
pub fn ternary<A, B, C, U, F>(a: &Array<A>, b: &Array<B>, c: &Array<C>, out_dims: &[usize], f: F) -> Array<U>
where
    A: Copy + Send + Sync,
    B: Copy + Send + Sync,
    C: Copy + Send + Sync,
    U: Copy + Send + Sync + 'static,
    F: Fn(A, B, C) -> U + Sync + Send,
{
    let shape = IxDyn(out_dims);
    let av = a.broadcast(shape.clone()).expect("ternary: shapes validated by infer");
    let bv = b.broadcast(shape.clone()).expect("ternary: shapes validated by infer");
    let cv = c.broadcast(shape).expect("ternary: shapes validated by infer");
    let z = Zip::from(&av).and(&bv).and(&cv);
    let n: usize = out_dims.iter().product();
    if n >= PAR_THRESHOLD {
        z.par_map_collect(|&x, &y, &w| f(x, y, w)).into_shared()
    } else {
        z.map_collect(|&x, &y, &w| f(x, y, w)).into_shared()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::ArrayD;

    #[test]
    fn parallel_and_serial_paths_agree() {
        let n = PAR_THRESHOLD * 3 + 17;
        let a: Vec<f32> = (0..n).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..n).map(|i| (n - i) as f32).collect();
        let par = zip_slices(&a, &b, |x, y| x * y + 1.0, 1024);
        let ser: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x * y + 1.0).collect();
        assert_eq!(par, ser);
        assert_eq!(
            map_slice(&a, |x| x - 1.0, 1024),
            a.iter().map(|x| x - 1.0).collect::<Vec<_>>()
        );
    }

    /// Every element is updated once, with its own index, on the pool (from `par_from`)
    /// and on this thread alone, ragged ends included.
    #[test]
    fn updates_in_pieces_touch_every_element_once() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        pool.install(|| {
            for (n, par_from) in [(5, usize::MAX), (3 * CHUNK + 7, usize::MAX), (3 * CHUNK + 7, 1024)] {
                let mut v = vec![0u32; n];
                update_in_pieces(&mut v, par_from, &|range, piece| {
                    assert_eq!(range.len(), piece.len());
                    for (x, i) in piece.iter_mut().zip(range) {
                        *x += i as u32 + 1;
                    }
                });
                assert!(v.iter().enumerate().all(|(i, &x)| x == i as u32 + 1), "n = {n}");
            }
        });
    }

    #[test]
    fn broadcasting_and_strided_inputs() {
        let a = ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![1, 2, 3, 4, 5, 6])
            .unwrap()
            .into_shared();
        let b = ArrayD::from_shape_vec(IxDyn(&[3]), vec![10, 20, 30])
            .unwrap()
            .into_shared();
        let c = binary(&a, &b, &[2, 3], |x, y| x + y);
        assert_eq!(c.iter().copied().collect::<Vec<_>>(), vec![11, 22, 33, 14, 25, 36]);
        // The smaller operand first or second, as a row and as a per-row scalar, through
        // an order-sensitive op (segments long enough for the contiguous loops).
        let m = ArrayD::from_shape_vec(IxDyn(&[2, 16]), (0..32).collect())
            .unwrap()
            .into_shared();
        let row = ArrayD::from_shape_vec(IxDyn(&[16]), (0..16).map(|j| 100 * j).collect())
            .unwrap()
            .into_shared();
        let col = ArrayD::from_shape_vec(IxDyn(&[2, 1]), vec![1000, 2000])
            .unwrap()
            .into_shared();
        let want = |g: &dyn Fn(i32) -> i32| (0..32).map(g).collect::<Vec<_>>();
        let row_first = binary(&row, &m, &[2, 16], |x, y| x - y);
        assert_eq!(
            row_first.iter().copied().collect::<Vec<_>>(),
            want(&|i| 100 * (i % 16) - i)
        );
        let row_second = binary(&m, &row, &[2, 16], |x, y| x - y);
        assert_eq!(
            row_second.iter().copied().collect::<Vec<_>>(),
            want(&|i| i - 100 * (i % 16))
        );
        let col_first = binary(&col, &m, &[2, 16], |x, y| x - y);
        assert_eq!(
            col_first.iter().copied().collect::<Vec<_>>(),
            want(&|i| 1000 * (i / 16 + 1) - i)
        );
        let col_second = binary(&m, &col, &[2, 16], |x, y| x - y);
        assert_eq!(
            col_second.iter().copied().collect::<Vec<_>>(),
            want(&|i| i - 1000 * (i / 16 + 1))
        );
        let t = a.clone().reversed_axes();
        let d = unary(&t, |x| x * 2);
        assert_eq!(d.iter().copied().collect::<Vec<_>>(), vec![2, 8, 4, 10, 6, 12]);
    }
}
