//! Elementwise ops that write into their input's own buffer: the graph executor's buffer
//! reuse, for a value whose last use is this op.

use super::elementwise::{binary_in_place_slice, unary_slice};
use crate::data::Array;
use crate::kernels::elementwise::update_in_pieces;
use crate::{BinaryOp, Data, FloatElement, UnaryOp};

/// `u` applied to `d` in `d`'s own buffer when nobody else holds it (`Ok`), or `d` given
/// back untouched (`Err`) when it is shared, strided or not a float tensor.
pub fn unary_in_place(u: UnaryOp, d: Data) -> std::result::Result<Data, Data> {
    fn go<T: FloatElement>(u: UnaryOp, a: Array<T>, wrap: fn(Array<T>) -> Data) -> std::result::Result<Data, Data> {
        if !a.is_unique() || !a.is_standard_layout() {
            return Err(wrap(a));
        }
        let mut a = a;
        if let Some(s) = a.as_slice_mut() {
            let n = s.len();
            update_in_pieces(s, crate::ops::math::unary::par_from(u), &|range, piece| {
                // Chunks through a small stack buffer keep the vectorised slice kernel
                // (source and destination apart) usable.
                let mut buf = [T::zero(); 256];
                for (k, chunk) in piece.chunks_mut(256).enumerate() {
                    let tmp = &mut buf[..chunk.len()];
                    tmp.copy_from_slice(chunk);
                    unary_slice(u, tmp, chunk, (n, range.start + k * 256));
                }
            });
        }
        Ok(wrap(a))
    }
    match d {
        Data::F32(a) => go(u, a, Data::F32),
        Data::F64(a) => go(u, a, Data::F64),
        other => Err(other),
    }
}

/// Which operand of a binary op the reused buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The buffer is the left operand: `d = d ∘ o`.
    Left,
    /// The buffer is the right operand: `d = o ∘ d`.
    Right,
}

/// `d = d ∘ o` (or `o ∘ d`, by `side`) in `d`'s own buffer, when `d` is unshared and `o` has
/// `d`'s shape or a single element (`Ok`); `d` given back otherwise.
pub fn binary_in_place(b: BinaryOp, d: Data, o: &Data, side: Side) -> std::result::Result<Data, Data> {
    let d_is_lhs = side == Side::Left;
    fn go<T: FloatElement>(
        b: BinaryOp,
        mut a: Array<T>,
        o: &Array<T>,
        lhs: bool,
        wrap: fn(Array<T>) -> Data,
    ) -> std::result::Result<Data, Data> {
        let ok_other = o.is_standard_layout() && (o.len() == 1 || o.shape() == a.shape());
        if !a.is_unique() || !a.is_standard_layout() || !ok_other {
            return Err(wrap(a));
        }
        let Some(os) = o.as_slice() else {
            return Err(wrap(a));
        };
        if let Some(s) = a.as_slice_mut() {
            update_in_pieces(s, crate::ops::math::binary::par_from(b), &|range, piece| {
                // A single-element `o` applies to every piece whole.
                let o = if os.len() == 1 { os } else { &os[range] };
                binary_in_place_slice(b, piece, o, lhs)
            });
        }
        Ok(wrap(a))
    }
    match (d, o) {
        (Data::F32(a), Data::F32(x)) => go(b, a, x, d_is_lhs, Data::F32),
        (Data::F64(a), Data::F64(x)) => go(b, a, x, d_is_lhs, Data::F64),
        (d, _) => Err(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::elementwise::{CHUNK, PAR_THRESHOLD, PAR_THRESHOLD_COSTLY};
    use crate::ops::math::{binary, unary};
    use crate::{DType, Tensor};

    /// The bits of a result, NaNs included.
    fn bits(d: Data) -> Vec<u32> {
        let v = Tensor::from_data(d).to_vec::<f32>().unwrap();
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// A fresh, unshared `[n]` f32 buffer.
    fn fresh(n: usize) -> Data {
        let t = Tensor::range(0.0, n as f64, 1.0, DType::F32).unwrap();
        t.mul(&Tensor::scalar(-3e-4f32))
            .unwrap()
            .sin()
            .unwrap()
            .data()
            .unwrap()
            .clone()
    }

    /// In place gives the bits of the op run out of place, on one thread and on the pool
    /// (costly ops from a lower size), for cheap and costly ops, either side, and a
    /// full-size or single-element other operand.
    #[test]
    fn in_place_ops_give_the_out_of_place_results() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        pool.install(|| {
            for n in [37, PAR_THRESHOLD_COSTLY + 5, PAR_THRESHOLD + 3 * CHUNK + 11] {
                let x = fresh(n);
                for u in [UnaryOp::Relu, UnaryOp::Sigmoid] {
                    let want = unary(u, &x).unwrap();
                    let got = unary_in_place(u, fresh(n)).unwrap();
                    assert!(bits(got) == bits(want), "{} in place, n = {n}", u.name());
                }
                let full = unary(UnaryOp::Cos, &x).unwrap();
                let single = Tensor::scalar(0.75f32).data().unwrap().clone();
                for o in [&full, &single] {
                    for (side, b) in [
                        (Side::Left, BinaryOp::Sub),
                        (Side::Right, BinaryOp::Sub),
                        (Side::Left, BinaryOp::Pow),
                    ] {
                        let want = match side {
                            Side::Left => binary(b, &x, o).unwrap(),
                            Side::Right => binary(b, o, &x).unwrap(),
                        };
                        let got = binary_in_place(b, fresh(n), o, side).unwrap();
                        assert!(
                            bits(got) == bits(want),
                            "{b:?} in place ({side:?}), n = {n}, o of {}",
                            o.len()
                        );
                    }
                }
            }
        });
    }

    /// A shared buffer is given back untouched.
    #[test]
    fn a_shared_buffer_is_not_written() {
        let x = fresh(64);
        let kept = x.clone();
        let back = unary_in_place(UnaryOp::Neg, x).unwrap_err();
        assert_eq!(bits(back), bits(fresh(64)));
        assert_eq!(bits(kept), bits(fresh(64)));
    }
}
