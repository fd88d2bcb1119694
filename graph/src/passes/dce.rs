//! Dead-code elimination: keep what the outputs need, plus every stateful node (variable
//! reads and writes keep their program order) and every placeholder (arguments bind by
//! position).

use crate::ir::{Graph, NodeKind};

/// Removes the nodes that neither an output nor a stateful node depends on.
pub fn dead_code_elimination(g: &mut Graph) {
    let mut live = vec![false; g.nodes.len()];
    let mut stack: Vec<usize> = g.outputs.iter().map(|v| v.node).collect();
    for (i, n) in g.nodes.iter().enumerate() {
        if n.is_stateful() || matches!(n.kind, NodeKind::Placeholder { .. }) {
            stack.push(i);
        }
    }
    while let Some(i) = stack.pop() {
        if std::mem::replace(&mut live[i], true) {
            continue;
        }
        stack.extend(g.nodes[i].inputs.iter().map(|v| v.node));
    }
    g.retain(&live);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passes::test_util::{run, trace};
    use ferroflow_tensor_core::{DType, Tensor, TensorSpec, Variable};

    #[test]
    fn unused_nodes_go_stateful_ones_stay() {
        let v = Variable::new("v", Tensor::scalar(1.0f32)).unwrap();
        let mut g = trace(&[TensorSpec::new(DType::F32, vec![2])], |x| {
            let _unused = x[0].exp()?.sigmoid()?;
            v.assign_add(&Tensor::scalar(1.0f32))?;
            Ok(vec![x[0].square()?])
        });
        let before = g.len();
        let x = Tensor::new([1.0f32, 2.0]);
        let want = run(&g, std::slice::from_ref(&x));
        dead_code_elimination(&mut g);
        assert_eq!(before - g.len(), 2, "exp and sigmoid removed:\n{g}");
        assert!(g.nodes.iter().any(|n| n.op_type() == "AssignAddVariableOp"));
        assert_eq!(run(&g, &[x]), want);
    }
}
