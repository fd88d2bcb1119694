//! Constant folding: a stateless op whose inputs are all constants is evaluated once, at
//! trace time, and becomes a constant.

use crate::ir::{Graph, NodeKind};
use ferroflow_tensor_core::{Data, Op, Result};

/// Folds every stateless primitive op with only constant inputs (in program order, so
/// chains fold completely).
pub fn constant_folding(g: &mut Graph) -> Result<()> {
    for i in 0..g.nodes.len() {
        let NodeKind::Op(op) = &g.nodes[i].kind else {
            continue;
        };
        if op.is_stateful()
            || matches!(op, Op::Custom(_))
            || g.nodes[i].inputs.is_empty()
            || g.nodes[i].outputs.len() != 1
        {
            continue;
        }
        let inputs: Option<Vec<&Data>> = g.nodes[i]
            .inputs
            .iter()
            .map(|v| match &g.nodes[v.node].kind {
                NodeKind::Const(d) => Some(d),
                _ => None,
            })
            .collect();
        let Some(inputs) = inputs else { continue };
        // A failing op is left in place: it reports its error when the function runs.
        if let Ok(mut out) = op.compute(&inputs) {
            if let Some(d) = out.pop() {
                let n = &mut g.nodes[i];
                n.kind = NodeKind::Const(d);
                n.inputs.clear();
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passes::{
        dead_code_elimination,
        test_util::{run, trace},
    };
    use ferroflow_tensor_core::{DType, Tensor, TensorSpec};

    #[test]
    fn constant_subgraphs_fold() {
        let c = Tensor::new([1.0f64, 2.0]);
        let mut g = trace(&[TensorSpec::new(DType::F64, vec![2])], |x| {
            Ok(vec![x[0].add(&c.exp()?.mul(&c)?)?])
        });
        let x = Tensor::new([0.5f64, 0.25]);
        let want = run(&g, std::slice::from_ref(&x));
        let ops_before = g.nodes.iter().filter(|n| matches!(n.kind, NodeKind::Op(_))).count();
        constant_folding(&mut g).unwrap();
        dead_code_elimination(&mut g);
        let ops_after = g.nodes.iter().filter(|n| matches!(n.kind, NodeKind::Op(_))).count();
        assert_eq!((ops_before, ops_after), (4, 2), "exp and mul folded:\n{g}");
        assert_eq!(run(&g, &[x]), want);
    }
}
