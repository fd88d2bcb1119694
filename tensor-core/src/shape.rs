//! [`Shape`]: the dimensions of a tensor, plus the NumPy broadcasting and axis rules every op
//! shares.

use crate::{Error, Result};
use std::fmt;

/// Up to this many dimensions are stored inline: shapes of rank ≤ 4 never allocate, which
/// matters because every dispatched op builds the specs of its inputs and outputs.
type Dims = smallvec::SmallVec<[usize; 4]>;

/// The dimensions of a tensor. Rank 0 (a scalar) is the empty shape.
#[derive(Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Shape(Dims);

impl Shape {
    /// A shape from its dimensions.
    pub fn new(dims: impl Into<Vec<usize>>) -> Self {
        Shape(Dims::from_vec(dims.into()))
    }

    /// The scalar shape `()`.
    pub fn scalar() -> Self {
        Shape(Dims::new())
    }

    /// The dimensions.
    pub fn dims(&self) -> &[usize] {
        &self.0
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// Number of elements (1 for a scalar, 0 if any dimension is 0).
    pub fn num_elements(&self) -> usize {
        self.0.iter().product()
    }

    /// Number of elements, or `None` if the product overflows `usize`.
    pub fn checked_num_elements(&self) -> Option<usize> {
        self.0.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
    }

    /// Consumes the shape and returns its dimensions.
    pub fn into_dims(self) -> Vec<usize> {
        self.0.into_vec()
    }

    /// Row-major (C order) element strides of a contiguous tensor of this shape.
    pub fn contiguous_strides(&self) -> Vec<usize> {
        let mut strides = vec![1usize; self.0.len()];
        for i in (0..self.0.len().saturating_sub(1)).rev() {
            strides[i] = strides[i + 1] * self.0[i + 1];
        }
        strides
    }

    /// Resolves a possibly negative axis (`-1` is the last) against this rank.
    pub fn axis(&self, op: &'static str, axis: i64) -> Result<usize> {
        normalize_axis(op, axis, self.rank())
    }
}

/// Resolves a possibly negative axis against `rank` (valid range `[-rank, rank)`).
pub fn normalize_axis(op: &'static str, axis: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    if axis < -r || axis >= r {
        return Err(Error::invalid(
            op,
            format!("axis {axis} is out of range for a tensor of rank {rank}"),
        ));
    }
    Ok(if axis < 0 { axis + r } else { axis } as usize)
}

/// Resolves [`Axes`](crate::Axes) against a rank into sorted, non-negative axes, rejecting
/// duplicates and axes out of range (errors name `op`).
///
/// ```
/// use ferroflow_tensor_core::{normalize_axes, Axes};
/// assert_eq!(normalize_axes("reduce_sum", &Axes::from([-1, 0]), 3)?, vec![0, 2]);
/// assert_eq!(normalize_axes("reduce_sum", &Axes::All, 2)?, vec![0, 1]);
/// assert!(normalize_axes("reduce_sum", &Axes::from([1, -2]), 3).is_err());
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
pub fn normalize_axes(op: &'static str, axes: &crate::Axes, rank: usize) -> Result<Vec<usize>> {
    let Some(axes) = axes.as_option() else {
        return Ok((0..rank).collect());
    };
    let mut out = Vec::with_capacity(axes.len());
    for &a in axes {
        let a = normalize_axis(op, a, rank)?;
        if out.contains(&a) {
            return Err(Error::invalid(op, format!("axis {a} is repeated in {axes:?}")));
        }
        out.push(a);
    }
    out.sort_unstable();
    Ok(out)
}

/// NumPy broadcasting of two shapes: dimensions are matched from the right and must be equal
/// or 1.
pub fn broadcast_shapes(op: &'static str, a: &Shape, b: &Shape) -> Result<Shape> {
    if a == b {
        return Ok(a.clone());
    }
    let rank = a.rank().max(b.rank());
    let mut dims: Dims = smallvec::smallvec![0usize; rank];
    for (i, d) in dims.iter_mut().enumerate() {
        let da = dim_from_right(a, rank - 1 - i);
        let db = dim_from_right(b, rank - 1 - i);
        *d = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => {
                return Err(Error::shapes(
                    op,
                    &[a, b],
                    format!("dimensions {da} and {db} cannot be broadcast"),
                ))
            }
        };
    }
    Ok(Shape(dims))
}

/// The dimension `k` places from the right (`k = 0` is the last), or 1 past the rank.
fn dim_from_right(s: &Shape, k: usize) -> usize {
    if k < s.rank() {
        s.0[s.rank() - 1 - k]
    } else {
        1
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// Prints like TensorFlow: `(2, 3)`, `(3,)`, `()`.
impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        if self.0.len() == 1 {
            f.write_str(",")?;
        }
        f.write_str(")")
    }
}

impl From<&[usize]> for Shape {
    fn from(d: &[usize]) -> Self {
        Shape(Dims::from_slice(d))
    }
}

impl From<Vec<usize>> for Shape {
    fn from(d: Vec<usize>) -> Self {
        Shape(Dims::from_vec(d))
    }
}

impl<const N: usize> From<[usize; N]> for Shape {
    fn from(d: [usize; N]) -> Self {
        Shape(Dims::from_slice(&d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting_matches_numpy() {
        let s = |d: &[usize]| Shape::new(d.to_vec());
        assert_eq!(
            broadcast_shapes("add", &s(&[2, 1, 3]), &s(&[4, 1])).unwrap(),
            s(&[2, 4, 3])
        );
        assert_eq!(broadcast_shapes("add", &s(&[]), &s(&[5])).unwrap(), s(&[5]));
        assert_eq!(broadcast_shapes("add", &s(&[0, 1]), &s(&[3])).unwrap(), s(&[0, 3]));
        let e = broadcast_shapes("add", &s(&[2, 3]), &s(&[4])).unwrap_err();
        assert!(
            e.to_string().starts_with("add: incompatible shapes [[2, 3], [4]]"),
            "{e}"
        );
    }

    #[test]
    fn axes_are_normalised_and_checked() {
        assert_eq!(normalize_axis("x", -1, 3).unwrap(), 2);
        assert!(normalize_axis("x", 3, 3).is_err());
        assert!(normalize_axis("x", 0, 0).is_err());
        assert_eq!(normalize_axes("x", &crate::Axes::from([-1, 0]), 3).unwrap(), vec![0, 2]);
        assert!(normalize_axes("x", &crate::Axes::from([1, -2]), 3).is_err());
        assert_eq!(normalize_axes("x", &crate::Axes::All, 2).unwrap(), vec![0, 1]);
    }

    #[test]
    fn display_is_tensorflow_style() {
        assert_eq!(Shape::new(vec![3]).to_string(), "(3,)");
        assert_eq!(Shape::new(vec![1, 1]).to_string(), "(1, 1)");
        assert_eq!(Shape::scalar().to_string(), "()");
        assert_eq!(Shape::new(vec![2, 3, 4]).contiguous_strides(), vec![12, 4, 1]);
    }
}
