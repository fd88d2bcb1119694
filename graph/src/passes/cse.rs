//! Common-subexpression elimination: two stateless nodes with the same op, attributes and
//! inputs compute the same value; the later one is replaced by the earlier.

use crate::ir::{Graph, NodeKind, ValueRef};
use ferroflow_tensor_core::Op;
use std::collections::HashMap;

/// A key identifying what a node computes, or `None` if it must not be merged.
fn key(g: &Graph, i: usize) -> Option<String> {
    let n = &g.nodes[i];
    let what = match &n.kind {
        NodeKind::Op(op) if !op.is_stateful() && !matches!(op, Op::Custom(_)) => format!("{op:?}"),
        // Small equal constants merge too (compared by value).
        NodeKind::Const(d) if d.len() <= 128 => format!("const {:?} {:?} {:?}", d.dtype(), d.dims(), d.element_bits()),
        _ => return None,
    };
    Some(format!("{what} <- {:?}", n.inputs))
}

/// Merges duplicate nodes (in program order, so merged inputs make later duplicates
/// visible). Returns how many were merged; dead-code elimination then removes them.
pub fn common_subexpression_elimination(g: &mut Graph) -> usize {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut merged = 0;
    for i in 0..g.nodes.len() {
        let Some(k) = key(g, i) else { continue };
        match seen.get(&k) {
            Some(&first) => {
                for o in 0..g.nodes[i].outputs.len() {
                    g.replace_uses(ValueRef { node: i, output: o }, ValueRef { node: first, output: o });
                }
                merged += 1;
            }
            None => {
                seen.insert(k, i);
            }
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passes::{
        dead_code_elimination,
        test_util::{run, trace},
    };
    use ferroflow_tensor_core::{DType, Tensor, TensorSpec, Variable};

    #[test]
    fn duplicates_merge_but_variable_reads_do_not() {
        let v = Variable::new("v", Tensor::scalar(2.0f32)).unwrap();
        let mut g = trace(&[TensorSpec::new(DType::F32, vec![3])], |x| {
            let a = x[0].exp()?.mul(&v.read()?)?;
            v.assign_add(&Tensor::scalar(1.0f32))?;
            let b = x[0].exp()?.mul(&v.read()?)?;
            Ok(vec![a.add(&b)?])
        });
        let x = Tensor::new([0.0f32, 1.0, 2.0]);
        let before = g.len();
        let merged = common_subexpression_elimination(&mut g);
        dead_code_elimination(&mut g);
        assert_eq!(merged, 1, "only the second exp merges:\n{g}");
        assert_eq!(before - g.len(), 1);
        // Reads before and after the assign stay apart: 2·e^x + 3·e^x.
        let got = run(&g, &[x]);
        let want: Vec<f64> = [0.0f64, 1.0, 2.0]
            .iter()
            .map(|x| 5.0 * (*x as f32).exp() as f64)
            .collect();
        for (a, b) in got[0].iter().zip(&want) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }

    #[test]
    fn int64_constants_merge_only_when_exactly_equal() {
        // 2^60 and 2^60 + 1 are one f64: a key made of f64s would merge them.
        let big = 1i64 << 60;
        let mut g = trace(&[TensorSpec::new(DType::I64, vec![1])], |x| {
            let a = x[0].add(&Tensor::new([big]))?;
            let b = x[0].add(&Tensor::new([big + 1]))?;
            let c = x[0].add(&Tensor::new([big]))?;
            Ok(vec![a, b, c])
        });
        // The second 2^60, its add and that add's output identity.
        assert_eq!(common_subexpression_elimination(&mut g), 3, "{g}");
        assert_eq!(g.outputs[0], g.outputs[2]);
        assert_ne!(g.outputs[0], g.outputs[1]);
    }
}
