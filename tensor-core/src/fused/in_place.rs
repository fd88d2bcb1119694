//! Elementwise ops that write into their input's own buffer: the graph executor's buffer
//! reuse, for a value whose last use is this op.

use super::elementwise::{binary_in_place_slice, unary_slice};
use crate::data::Array;
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
            // Chunks through a small stack buffer keep the vectorised slice kernel usable.
            let mut buf = [T::zero(); 256];
            for chunk in s.chunks_mut(256) {
                let tmp = &mut buf[..chunk.len()];
                tmp.copy_from_slice(chunk);
                unary_slice(u, tmp, chunk);
            }
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
            binary_in_place_slice(b, s, os, lhs);
        }
        Ok(wrap(a))
    }
    match (d, o) {
        (Data::F32(a), Data::F32(x)) => go(b, a, x, d_is_lhs, Data::F32),
        (Data::F64(a), Data::F64(x)) => go(b, a, x, d_is_lhs, Data::F64),
        (d, _) => Err(d),
    }
}
