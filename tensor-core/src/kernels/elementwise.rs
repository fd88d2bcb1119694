//! Elementwise loops: a contiguous fast path (one tight loop the compiler vectorises), a
//! parallel path over fixed-size chunks above [`PAR_THRESHOLD`] elements, and a strided /
//! broadcasting fallback through `ndarray::Zip`.
//!
//! Elementwise results never depend on the split (each element is computed on its own), so
//! going parallel cannot change a single bit.

use super::simd::vectorized;
use crate::data::Array;
use ndarray::{ArrayD, IxDyn, Zip};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Element count from which loops run on the rayon pool. Below it, the cost of waking threads
/// exceeds the work (measured with the bench's W6 on 2 cores: parallel wins from about 64K
/// f32 elements for a cheap op).
pub const PAR_THRESHOLD: usize = 1 << 16;

/// Elements per parallel task: large enough to amortise scheduling, small enough to stay in
/// L2 and balance two to sixteen cores.
pub const CHUNK: usize = 1 << 14;

/// `f` over a contiguous slice into a new vector, in parallel when large.
pub fn map_slice<T, U, F>(src: &[T], f: F) -> Vec<U>
where
    T: Copy + Send + Sync,
    U: Copy + Send + Sync,
    F: Fn(T) -> U + Sync + Send,
{
    let n = src.len();
    if n < PAR_THRESHOLD {
        return vectorized(|| src.iter().map(|&x| f(x)).collect());
    }
    let mut out: Vec<U> = Vec::with_capacity(n);
    out.spare_capacity_mut()[..n]
        .par_chunks_mut(CHUNK)
        .zip(src.par_chunks(CHUNK))
        .for_each(|(o, s)| {
            vectorized(|| {
                for (o, &x) in o.iter_mut().zip(s) {
                    *o = MaybeUninit::new(f(x));
                }
            })
        });
    // SAFETY: the parallel loop wrote every one of the first n slots.
    unsafe { out.set_len(n) };
    out
}

/// `f` over two equal-length contiguous slices into a new vector, in parallel when large.
pub fn zip_slices<A, B, U, F>(a: &[A], b: &[B], f: F) -> Vec<U>
where
    A: Copy + Send + Sync,
    B: Copy + Send + Sync,
    U: Copy + Send + Sync,
    F: Fn(A, B) -> U + Sync + Send,
{
    let n = a.len().min(b.len());
    if n < PAR_THRESHOLD {
        return vectorized(|| a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect());
    }
    let mut out: Vec<U> = Vec::with_capacity(n);
    out.spare_capacity_mut()[..n]
        .par_chunks_mut(CHUNK)
        .zip(a[..n].par_chunks(CHUNK).zip(b[..n].par_chunks(CHUNK)))
        .for_each(|(o, (sa, sb))| {
            vectorized(|| {
                for ((o, &x), &y) in o.iter_mut().zip(sa).zip(sb) {
                    *o = MaybeUninit::new(f(x, y));
                }
            })
        });
    // SAFETY: the parallel loop wrote every one of the first n slots.
    unsafe { out.set_len(n) };
    out
}

fn standard_slice<T>(a: &Array<T>) -> Option<&[T]> {
    if a.is_standard_layout() {
        a.as_slice()
    } else {
        None
    }
}

/// Applies `f` to every element; the result has `a`'s shape in row-major order.
pub fn unary<T, U, F>(a: &Array<T>, f: F) -> Array<U>
where
    T: Copy + Send + Sync,
    U: Copy + Send + Sync,
    F: Fn(T) -> U + Sync + Send,
{
    let v = match standard_slice(a) {
        Some(s) => map_slice(s, f),
        None => a.iter().map(|&x| f(x)).collect(),
    };
    ArrayD::from_shape_vec(IxDyn(a.shape()), v)
        .expect("unary: element count preserved")
        .into_shared()
}

/// Applies `f` pairwise with NumPy broadcasting to `out_dims` (already validated).
pub fn binary<A, B, U, F>(a: &Array<A>, b: &Array<B>, out_dims: &[usize], f: F) -> Array<U>
where
    A: Copy + Send + Sync,
    B: Copy + Send + Sync,
    U: Copy + Send + Sync,
    F: Fn(A, B) -> U + Sync + Send,
{
    let shape = IxDyn(out_dims);
    let n: usize = out_dims.iter().product();
    let v = match (standard_slice(a), standard_slice(b)) {
        (Some(sa), Some(sb)) if sa.len() == n && sb.len() == n => Some(zip_slices(sa, sb, &f)),
        (Some(sa), Some(sb)) if sa.len() == n && sb.len() == 1 => {
            let y = sb[0];
            Some(map_slice(sa, |x| f(x, y)))
        }
        (Some(sa), Some(sb)) if sb.len() == n && sa.len() == 1 => {
            let x = sa[0];
            Some(map_slice(sb, |y| f(x, y)))
        }
        _ => None,
    };
    if let Some(v) = v {
        return ArrayD::from_shape_vec(shape, v)
            .expect("binary: broadcast length")
            .into_shared();
    }
    let av = a.broadcast(shape.clone()).expect("binary: shapes validated by infer");
    let bv = b.broadcast(shape).expect("binary: shapes validated by infer");
    let z = Zip::from(&av).and(&bv);
    if n >= PAR_THRESHOLD {
        z.par_map_collect(|&x, &y| f(x, y)).into_shared()
    } else {
        z.map_collect(|&x, &y| f(x, y)).into_shared()
    }
}

/// Applies `f` to three broadcast operands (for `where`).
pub fn ternary<A, B, C, U, F>(a: &Array<A>, b: &Array<B>, c: &Array<C>, out_dims: &[usize], f: F) -> Array<U>
where
    A: Copy + Send + Sync,
    B: Copy + Send + Sync,
    C: Copy + Send + Sync,
    U: Copy + Send + Sync,
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

    #[test]
    fn parallel_and_serial_paths_agree() {
        let n = PAR_THRESHOLD * 3 + 17;
        let a: Vec<f32> = (0..n).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..n).map(|i| (n - i) as f32).collect();
        let par = zip_slices(&a, &b, |x, y| x * y + 1.0);
        let ser: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x * y + 1.0).collect();
        assert_eq!(par, ser);
        assert_eq!(
            map_slice(&a, |x| x - 1.0),
            a.iter().map(|x| x - 1.0).collect::<Vec<_>>()
        );
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
        let t = a.clone().reversed_axes();
        let d = unary(&t, |x| x * 2);
        assert_eq!(d.iter().copied().collect::<Vec<_>>(), vec![2, 8, 4, 10, 6, 12]);
    }
}
