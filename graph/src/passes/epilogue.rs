//! Matmul epilogue fusion: `matmul → add(bias) → activation` (each result used once) becomes
//! one node that adds the bias and applies the activation to each output block while it is
//! still in cache.

use crate::ir::{Graph, NodeKind, ValueRef};
use ferroflow_tensor_core::fused::EpilogueMatMul;
use ferroflow_tensor_core::{BinaryOp, Op, UnaryOp};
use std::collections::HashMap;

/// The single node using `v`, if exactly one does.
fn sole_user(g: &Graph, uses: &HashMap<ValueRef, usize>, v: ValueRef) -> Option<usize> {
    if uses.get(&v) != Some(&1) {
        return None;
    }
    g.nodes.iter().position(|n| n.inputs.contains(&v))
}

/// Activations applied in the epilogue.
fn epilogue_activation(u: UnaryOp) -> bool {
    matches!(
        u,
        UnaryOp::Relu
            | UnaryOp::Relu6
            | UnaryOp::Sigmoid
            | UnaryOp::Tanh
            | UnaryOp::Elu
            | UnaryOp::Selu
            | UnaryOp::Softplus
            | UnaryOp::LeakyRelu { .. }
            | UnaryOp::Gelu { .. }
    )
}

/// Fuses every 2-D float matmul with its bias-add and/or activation. Returns the number of
/// fused nodes made; absorbed nodes are left for dead-code elimination.
pub fn matmul_epilogue_fusion(g: &mut Graph) -> usize {
    let mut made = 0;
    for m in 0..g.nodes.len() {
        let NodeKind::Op(Op::MatMul {
            transpose_a,
            transpose_b,
        }) = g.nodes[m].kind
        else {
            continue;
        };
        let out = &g.nodes[m].outputs[0];
        if out.shape.rank() != 2 || !out.dtype.is_float() {
            continue;
        }
        let n_cols = out.shape.dims()[1];
        let uses = g.use_counts();
        let mut last = m;
        let mut inputs = g.nodes[m].inputs.clone();
        let mut bias = false;
        let mut activation = None;
        // matmul -> add(bias of the last dimension)?
        if let Some(a) = sole_user(g, &uses, ValueRef { node: m, output: 0 }) {
            let node = &g.nodes[a];
            if let NodeKind::Op(Op::Binary(BinaryOp::Add)) = node.kind {
                let other = if node.inputs[0].node == m {
                    node.inputs[1]
                } else {
                    node.inputs[0]
                };
                let s = g.spec(other);
                if s.shape.dims() == [n_cols] && s.dtype == out.dtype && node.outputs[0].shape == out.shape {
                    bias = true;
                    inputs.push(other);
                    last = a;
                }
            }
        }
        // -> activation?
        if let Some(u) = sole_user(g, &uses, ValueRef { node: last, output: 0 }) {
            if let NodeKind::Op(Op::Unary(act)) = g.nodes[u].kind {
                if epilogue_activation(act) {
                    activation = Some(act);
                    last = u;
                }
            }
        }
        if last == m {
            continue;
        }
        let node = &mut g.nodes[last];
        node.kind = NodeKind::MatMulEpilogue(EpilogueMatMul {
            transpose_a,
            transpose_b,
            bias,
            activation,
        });
        node.inputs = inputs;
        made += 1;
    }
    made
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passes::{
        dead_code_elimination,
        test_util::{run, trace},
    };
    use ferroflow_tensor_core::random::Normal;
    use ferroflow_tensor_core::{random, DType, TensorSpec};

    #[test]
    fn matmul_bias_relu_becomes_one_node() {
        let specs = [
            TensorSpec::new(DType::F32, vec![64, 32]),
            TensorSpec::new(DType::F32, vec![32, 48]),
            TensorSpec::new(DType::F32, vec![48]),
        ];
        let mut g = trace(&specs, |x| Ok(vec![x[0].matmul(&x[1])?.bias_add(&x[2])?.relu()?]));
        let args = [
            random::normal(&[64, 32], Normal::default().seed(1)).unwrap(),
            random::normal(&[32, 48], Normal::default().seed(2)).unwrap(),
            random::normal(&[48], Normal::default().seed(3)).unwrap(),
        ];
        let want = run(&g, &args);
        let before = g.len();
        assert_eq!(matmul_epilogue_fusion(&mut g), 1);
        dead_code_elimination(&mut g);
        assert_eq!(before - g.len(), 2, "{g}");
        assert!(
            g.nodes
                .iter()
                .any(|n| n.op_type() == "_FusedMatMul[matmul+bias_add+relu]"),
            "{g}"
        );
        assert_eq!(run(&g, &args), want);
    }
}
