//! Whether a relaxed trace (an input signature with `None` dimensions, or
//! `reduce_retracing`) may serve shapes other than the ones it was traced with.
//!
//! A trace runs the closure on placeholders of one concrete shape. Code that reads those
//! shapes (the mean's gradient divides by `n` and broadcasts to `x`'s shape; `ones_like`
//! makes a constant of `x`'s shape) bakes them into the graph as constants and attributes,
//! and that graph gives wrong answers, silently, for other shapes. TensorFlow avoids this
//! with symbolic shapes; we check instead: the closure is traced once more at the first
//! call whose shape differs in a dimension not yet checked, and when both traces compute
//! the same thing (same ops, attributes, constants and wiring) the dimension is shape
//! generic. When they differ, the graph reads its shapes and each shape gets its own trace.

use crate::ir::{Graph, Node, NodeKind};
use ferroflow_tensor_core::{Op, TensorSpec};
use std::sync::Arc;

/// What is known about a relaxed trace's dependence on its input shapes.
#[derive(Debug)]
pub(crate) struct ShapeGenerality {
    /// `checked[arg][dim]`: a second trace with a different size there built the same graph.
    checked: Vec<Vec<bool>>,
    /// A second trace built a different graph: only the traced shapes are served.
    reads_shapes: bool,
}

impl ShapeGenerality {
    /// Nothing known yet, for arguments traced with these specs.
    pub fn unknown(inputs: &[TensorSpec]) -> Self {
        ShapeGenerality {
            checked: inputs.iter().map(|s| vec![false; s.shape.rank()]).collect(),
            reads_shapes: false,
        }
    }

    /// True when the graph traced at `traced` is known to be right for arguments of `dims`
    /// (equal dimensions, or differing only where a check showed the graph does not care).
    pub fn serves<'a>(&self, traced: &[TensorSpec], dims: impl Iterator<Item = &'a [usize]>) -> bool {
        traced.iter().zip(dims).enumerate().all(|(a, (t, d))| {
            t.shape.dims().len() == d.len()
                && t.shape
                    .dims()
                    .iter()
                    .zip(d)
                    .enumerate()
                    .all(|(i, (x, y))| x == y || (!self.reads_shapes && self.checked[a].get(i) == Some(&true)))
        })
    }

    /// True once a check found that the graph depends on its shapes.
    pub fn reads_shapes(&self) -> bool {
        self.reads_shapes
    }

    /// Records a check against a trace at `other`: `same` says whether it built the same graph.
    pub fn record(&mut self, traced: &[TensorSpec], other: &[TensorSpec], same: bool) {
        if !same {
            self.reads_shapes = true;
            return;
        }
        for (a, (t, o)) in traced.iter().zip(other).enumerate() {
            for (i, (x, y)) in t.shape.dims().iter().zip(o.shape.dims()).enumerate() {
                if x != y {
                    if let Some(c) = self.checked[a].get_mut(i) {
                        *c = true;
                    }
                }
            }
        }
    }
}

/// True when two traces of one closure compute the same thing: the same nodes in the same
/// order with the same ops, attributes, constants and inputs, and the same outputs. Shapes
/// of intermediate values are not compared (they are meant to differ); dtypes and ranks are.
pub(crate) fn same_computation(a: &Graph, b: &Graph) -> bool {
    a.nodes.len() == b.nodes.len()
        && a.outputs == b.outputs
        && a.nodes.iter().zip(&b.nodes).all(|(x, y)| same_node(x, y))
}

fn same_node(x: &Node, y: &Node) -> bool {
    let same_kind = match (&x.kind, &y.kind) {
        (NodeKind::Placeholder { index: i }, NodeKind::Placeholder { index: j }) => i == j,
        (NodeKind::Const(c), NodeKind::Const(d)) => {
            c.dtype() == d.dtype() && c.dims() == d.dims() && c.element_bits() == d.element_bits()
        }
        (NodeKind::Op(p), NodeKind::Op(q)) => same_op(p, q),
        // Fused kernels are made by the passes, after tracing; traces never hold them.
        _ => false,
    };
    same_kind
        && x.inputs == y.inputs
        && x.outputs.len() == y.outputs.len()
        && x.outputs
            .iter()
            .zip(&y.outputs)
            .all(|(s, t)| s.dtype == t.dtype && s.shape.rank() == t.shape.rank())
}

/// Ops compare by their attributes (their `Debug` text, as common-subexpression elimination
/// keys them), variables by identity (two variables may share a name), custom ops by
/// identity or, failing that, by their `Debug` text.
fn same_op(p: &Op, q: &Op) -> bool {
    match (p, q) {
        (Op::ReadVariable(v), Op::ReadVariable(w)) => v.id() == w.id(),
        (Op::Assign { var: v, mode: m }, Op::Assign { var: w, mode: n }) => v.id() == w.id() && m == n,
        (Op::Custom(c), Op::Custom(d)) => Arc::ptr_eq(c, d) || format!("{c:?}") == format!("{d:?}"),
        _ => format!("{p:?}") == format!("{q:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passes::test_util::trace;
    use ferroflow_tensor_core::{Axes, DType};

    fn spec(n: usize) -> TensorSpec {
        TensorSpec::new(DType::F32, vec![n])
    }

    #[test]
    fn traces_that_only_differ_in_shapes_compute_the_same() {
        let body = |x: &[ferroflow_tensor_core::Tensor]| Ok(vec![x[0].square()?.reduce_sum(Axes::All)?]);
        assert!(same_computation(&trace(&[spec(2)], body), &trace(&[spec(5)], body)));
    }

    #[test]
    fn a_constant_or_attribute_made_from_a_shape_makes_traces_differ() {
        let ones = |x: &[ferroflow_tensor_core::Tensor]| Ok(vec![x[0].add(&x[0].ones_like()?)?]);
        assert!(!same_computation(&trace(&[spec(2)], ones), &trace(&[spec(3)], ones)));
        let to_shape =
            |x: &[ferroflow_tensor_core::Tensor]| Ok(vec![x[0].reduce_sum(Axes::All)?.broadcast_to(x[0].dims())?]);
        assert!(!same_computation(
            &trace(&[spec(2)], to_shape),
            &trace(&[spec(3)], to_shape)
        ));
    }

    #[test]
    fn generality_serves_checked_dimensions_until_a_check_fails() {
        let traced = [TensorSpec::new(DType::F32, vec![2, 3])];
        let mut g = ShapeGenerality::unknown(&traced);
        let dims = |d: &'static [usize]| std::iter::once(d);
        assert!(g.serves(&traced, dims(&[2, 3])));
        assert!(!g.serves(&traced, dims(&[4, 3])));
        g.record(&traced, &[TensorSpec::new(DType::F32, vec![4, 3])], true);
        assert!(g.serves(&traced, dims(&[7, 3])));
        assert!(!g.serves(&traced, dims(&[7, 1])));
        assert!(!g.serves(&traced, dims(&[7])));
        g.record(&traced, &[TensorSpec::new(DType::F32, vec![2, 1])], false);
        assert!(g.reads_shapes());
        assert!(!g.serves(&traced, dims(&[7, 3])));
        assert!(g.serves(&traced, dims(&[2, 3])));
    }
}
