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
//! generic. When they differ, the graph reads that size and each size gets its own trace.
//! `get_concrete_function` checks a relaxed trace at once, one size larger in the
//! dimensions of each traced size. Two sizes are a check, not a proof: a closure that
//! branches on a size (`if n > 100`) builds the same graph on both sides of a check that
//! stays on one side, and dimensions checked together (one traced size) hide how they
//! relate.

use crate::ir::{Graph, Node, NodeKind};
use ferroflow_tensor_core::{Op, TensorSpec};
use std::sync::Arc;

/// What a check showed about one input dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dim {
    /// Never checked: the graph is only known right at the traced size.
    Unknown,
    /// A trace at another size built the same graph: any size is served.
    Generic,
    /// A trace at another size built a different graph: the graph reads this size.
    Read,
}

/// What is known about a relaxed trace's dependence on its input shapes, per dimension.
#[derive(Debug)]
pub(crate) struct ShapeGenerality {
    dims: Vec<Vec<Dim>>,
}

impl ShapeGenerality {
    /// Nothing known yet, for arguments traced with these specs.
    pub fn unknown(inputs: &[TensorSpec]) -> Self {
        ShapeGenerality {
            dims: inputs.iter().map(|s| vec![Dim::Unknown; s.shape.rank()]).collect(),
        }
    }

    /// What is known of each dimension in which `dims` differ from `traced`; `None` when
    /// the argument count or a rank differs (no trace serves that).
    fn differing<'a>(
        &self,
        traced: &[TensorSpec],
        dims: impl Iterator<Item = &'a [usize]> + Clone,
    ) -> Option<Vec<Dim>> {
        if dims.clone().count() != traced.len() {
            return None;
        }
        let mut out = Vec::new();
        for ((t, d), known) in traced.iter().zip(dims).zip(&self.dims) {
            if t.shape.dims().len() != d.len() {
                return None;
            }
            for ((x, y), k) in t.shape.dims().iter().zip(d).zip(known) {
                if x != y {
                    out.push(*k);
                }
            }
        }
        Some(out)
    }

    /// True when the graph traced at `traced` is known to be right for arguments of `dims`:
    /// they differ only in dimensions a check showed the graph does not read.
    pub fn serves<'a>(&self, traced: &[TensorSpec], dims: impl Iterator<Item = &'a [usize]> + Clone) -> bool {
        self.differing(traced, dims)
            .is_some_and(|d| d.iter().all(|&k| k == Dim::Generic))
    }

    /// True when the graph is known to be wrong for arguments of `dims`: they differ in a
    /// dimension whose size a check showed the graph reads, or in rank while the graph reads
    /// some size. (Other ranks of a graph not known to read sizes are each op's to refuse.)
    pub fn known_wrong<'a>(&self, traced: &[TensorSpec], dims: impl Iterator<Item = &'a [usize]> + Clone) -> bool {
        match self.differing(traced, dims) {
            Some(d) => d.contains(&Dim::Read),
            // Another rank: wrong if the graph reads any size (it may read that one's).
            None => self.dims.iter().flatten().any(|&k| k == Dim::Read),
        }
    }

    /// True when a check against a trace at `other` can be recorded: a match when every
    /// unchecked dimension that differs moved from one size to one other size together (a
    /// match over sizes that moved apart could hide how they relate, `nx - ny`); a
    /// difference when a single unchecked dimension differs (with several, which one the
    /// graph reads is not known).
    pub fn conclusive(&self, traced: &[TensorSpec], other: &[TensorSpec], same: bool) -> bool {
        let mut moves = Vec::new();
        for ((t, o), known) in traced.iter().zip(other).zip(&self.dims) {
            for ((x, y), k) in t.shape.dims().iter().zip(o.shape.dims()).zip(known) {
                if x != y && *k == Dim::Unknown {
                    moves.push((*x, *y));
                }
            }
        }
        if same {
            moves.windows(2).all(|w| w[0] == w[1])
        } else {
            moves.len() <= 1
        }
    }

    /// The checks of every `relaxed` dimension not checked yet, as groups of dimensions
    /// (`(argument, axis)`) to grow by one together: one group per traced size (dimensions
    /// of one size are often tied by broadcasting). Checking sizes apart lets a closure that
    /// reads one dimension keep the others generic, and sees one that reads how two sizes
    /// relate (`nx - ny`), which growing all at once would hide.
    pub fn probe_groups(&self, traced: &[TensorSpec], relaxed: &[Vec<bool>]) -> Vec<Vec<(usize, usize)>> {
        let mut groups: Vec<(usize, Vec<(usize, usize)>)> = Vec::new();
        for (a, t) in traced.iter().enumerate() {
            for (i, &d) in t.shape.dims().iter().enumerate() {
                let unchecked = relaxed.get(a).and_then(|r| r.get(i)) == Some(&true)
                    && self.dims.get(a).and_then(|k| k.get(i)) == Some(&Dim::Unknown);
                if !unchecked {
                    continue;
                }
                match groups.iter_mut().find(|(size, _)| *size == d) {
                    Some((_, members)) => members.push((a, i)),
                    None => groups.push((d, vec![(a, i)])),
                }
            }
        }
        groups.into_iter().map(|(_, members)| members).collect()
    }

    /// Marks every dimension in which `other` differs from `traced` as read, checked or not:
    /// a trace there built another graph, whatever checks of one size at a time said.
    pub fn mark_read(&mut self, traced: &[TensorSpec], other: &[TensorSpec]) {
        for ((t, o), known) in traced.iter().zip(other).zip(&mut self.dims) {
            for ((x, y), k) in t.shape.dims().iter().zip(o.shape.dims()).zip(known.iter_mut()) {
                if x != y {
                    *k = Dim::Read;
                }
            }
        }
    }

    /// Records a check against a trace at `other`: `same` says whether it built the same
    /// graph. The unchecked dimensions that differ become generic, or read (all of them when
    /// several differ at once; callers that can tell them apart check them one at a time).
    pub fn record(&mut self, traced: &[TensorSpec], other: &[TensorSpec], same: bool) {
        for ((t, o), known) in traced.iter().zip(other).zip(&mut self.dims) {
            for ((x, y), k) in t.shape.dims().iter().zip(o.shape.dims()).zip(known.iter_mut()) {
                if x != y && *k == Dim::Unknown {
                    *k = if same { Dim::Generic } else { Dim::Read };
                }
            }
        }
    }
}

/// `traced` with one more in each of the dimensions `grow` (`(argument, axis)`).
pub(crate) fn grown(traced: &[TensorSpec], grow: &[(usize, usize)]) -> Vec<TensorSpec> {
    traced
        .iter()
        .enumerate()
        .map(|(a, t)| {
            let dims: Vec<usize> = t
                .shape
                .dims()
                .iter()
                .enumerate()
                .map(|(i, &d)| if grow.contains(&(a, i)) { d.saturating_add(1) } else { d })
                .collect();
            TensorSpec::new(t.dtype, dims)
        })
        .collect()
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
        (NodeKind::Const(c), NodeKind::Const(d)) => c.bitwise_eq(d),
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
/// keys them), variables by identity (two variables may share a name) and custom ops by
/// identity or by their name and the key they declare (`CustomOp::trace_key`; their
/// `Debug` text may leave out what they computed from a shape).
fn same_op(p: &Op, q: &Op) -> bool {
    match (p, q) {
        (Op::ReadVariable(v), Op::ReadVariable(w)) => v.id() == w.id(),
        (Op::Assign { var: v, mode: m }, Op::Assign { var: w, mode: n }) => v.id() == w.id() && m == n,
        (Op::Custom(c), Op::Custom(d)) => {
            Arc::ptr_eq(c, d) || (c.name() == d.name() && c.trace_key().is_some_and(|k| Some(k) == d.trace_key()))
        }
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
    fn generality_is_known_per_dimension() {
        let traced = [TensorSpec::new(DType::F32, vec![2, 3])];
        let mut g = ShapeGenerality::unknown(&traced);
        let dims = |d: &'static [usize]| std::iter::once(d);
        assert!(g.serves(&traced, dims(&[2, 3])));
        assert!(!g.serves(&traced, dims(&[4, 3])) && !g.known_wrong(&traced, dims(&[4, 3])));
        g.record(&traced, &[TensorSpec::new(DType::F32, vec![4, 3])], true);
        assert!(g.serves(&traced, dims(&[7, 3])));
        assert!(!g.serves(&traced, dims(&[7, 1])));
        assert!(!g.serves(&traced, dims(&[7])) && !g.known_wrong(&traced, dims(&[7])));
        // The second dimension is read; the first stays generic.
        g.record(&traced, &[TensorSpec::new(DType::F32, vec![2, 1])], false);
        assert!(g.known_wrong(&traced, dims(&[2, 5])) && g.known_wrong(&traced, dims(&[9, 5])));
        assert!(g.serves(&traced, dims(&[9, 3])));
    }

    #[test]
    fn probe_groups_hold_the_unchecked_relaxed_dimensions_of_each_size() {
        let traced = [
            TensorSpec::new(DType::F32, vec![2, 3]),
            TensorSpec::new(DType::F32, vec![2]),
        ];
        let mut g = ShapeGenerality::unknown(&traced);
        assert_eq!(
            g.probe_groups(&traced, &[vec![true, false], vec![true]]),
            [vec![(0, 0), (1, 0)]]
        );
        let relaxed = [vec![true, true], vec![true]];
        let groups = g.probe_groups(&traced, &relaxed);
        assert_eq!(groups, [vec![(0, 0), (1, 0)], vec![(0, 1)]]);
        let specs = grown(&traced, &groups[0]);
        assert_eq!((specs[0].shape.dims(), specs[1].shape.dims()), (&[3, 3][..], &[3][..]));
        for group in &groups {
            g.record(&traced, &grown(&traced, group), true);
        }
        assert!(g.probe_groups(&traced, &relaxed).is_empty());
    }

    #[test]
    fn only_conclusive_checks_are_recorded() {
        let traced = [
            TensorSpec::new(DType::F32, vec![5]),
            TensorSpec::new(DType::F32, vec![3]),
        ];
        let g = ShapeGenerality::unknown(&traced);
        let at = |x: usize, y: usize| {
            [
                TensorSpec::new(DType::F32, vec![x]),
                TensorSpec::new(DType::F32, vec![y]),
            ]
        };
        // Sizes that moved apart may hide how they relate; one size may be blamed alone.
        assert!(!g.conclusive(&traced, &at(6, 4), true));
        assert!(g.conclusive(&traced, &at(6, 3), true) && g.conclusive(&traced, &at(6, 3), false));
        assert!(!g.conclusive(&traced, &at(6, 4), false));
        let tied = [
            TensorSpec::new(DType::F32, vec![3]),
            TensorSpec::new(DType::F32, vec![3]),
        ];
        let g = ShapeGenerality::unknown(&tied);
        assert!(g.conclusive(&tied, &at(4, 4), true));
    }
}
