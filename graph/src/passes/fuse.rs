//! Elementwise fusion: a tree of float elementwise ops whose intermediate results are used
//! once becomes one [`FusedElementwise`] node, run as a single pass over memory.

use crate::ir::{Graph, NodeKind, ValueRef};
use ferroflow_tensor_core::fused::{combine_instructions, FusedElementwise, Instr, Operand};
use ferroflow_tensor_core::Op;
use std::collections::HashMap;

/// A node the pass can absorb: a float unary or binary op whose inputs are each either of
/// the output's shape or a single element.
fn fusable(g: &Graph, i: usize) -> bool {
    let n = &g.nodes[i];
    let elementwise = matches!(&n.kind, NodeKind::Op(Op::Unary(_)) | NodeKind::Op(Op::Binary(_)));
    let Some(spec) = n.outputs.first() else {
        return false;
    };
    elementwise
        && spec.dtype.is_float()
        && n.inputs.iter().all(|&v| {
            let s = g.spec(v);
            s.shape == spec.shape || s.shape.num_elements() == 1
        })
}

struct Builder {
    program: Vec<Instr>,
    inputs: Vec<ValueRef>,
    absorbed: Vec<usize>,
}

impl Builder {
    fn operand(&mut self, g: &Graph, uses: &HashMap<ValueRef, usize>, v: ValueRef, root_dims: &[usize]) -> Operand {
        let p = v.node;
        let inline = fusable(g, p) && uses.get(&v) == Some(&1) && g.nodes[p].outputs[0].shape.dims() == root_dims;
        if inline {
            return self.emit(g, uses, p, root_dims);
        }
        let idx = match self.inputs.iter().position(|&x| x == v) {
            Some(i) => i,
            None => {
                self.inputs.push(v);
                self.inputs.len() - 1
            }
        };
        Operand::Input(idx)
    }

    /// Emits node `i` after its operands (post-order), returning where its result lives.
    fn emit(&mut self, g: &Graph, uses: &HashMap<ValueRef, usize>, i: usize, root_dims: &[usize]) -> Operand {
        let n = &g.nodes[i];
        let instr = match &n.kind {
            NodeKind::Op(Op::Unary(u)) => Instr::Unary(*u, self.operand(g, uses, n.inputs[0], root_dims)),
            NodeKind::Op(Op::Binary(b)) => {
                let x = self.operand(g, uses, n.inputs[0], root_dims);
                let y = self.operand(g, uses, n.inputs[1], root_dims);
                Instr::Binary(*b, x, y)
            }
            _ => unreachable!("emit is only called on fusable nodes"),
        };
        self.absorbed.push(i);
        self.program.push(instr);
        Operand::Temp(self.program.len() - 1)
    }
}

/// Whether a fused program merges pairs of its instructions into one loop each
/// ([`combine_instructions`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopMerging {
    /// Merge a multiply into the add it feeds, a costly unary op into its multiply or add.
    Merge,
    /// One loop per instruction.
    Separate,
}

/// Fuses every elementwise tree of two or more ops, its instructions merged into fewer loops
/// or not (`loops`). Returns the number of fused nodes made; the absorbed nodes are left
/// unused for dead-code elimination.
pub fn elementwise_fusion(g: &mut Graph, loops: LoopMerging) -> usize {
    let merge_loops = loops == LoopMerging::Merge;
    let uses = g.use_counts();
    let mut absorbed = vec![false; g.nodes.len()];
    let mut made = 0;
    for root in (0..g.nodes.len()).rev() {
        if absorbed[root] || !fusable(g, root) {
            continue;
        }
        let dims = g.nodes[root].outputs[0].shape.dims().to_vec();
        let mut b = Builder {
            program: Vec::new(),
            inputs: Vec::new(),
            absorbed: Vec::new(),
        };
        b.emit(g, &uses, root, &dims);
        if b.program.len() < 2 {
            continue;
        }
        for &i in &b.absorbed {
            absorbed[i] = true;
        }
        let dtype = g.nodes[root].outputs[0].dtype;
        let n = &mut g.nodes[root];
        n.kind = NodeKind::Fused(FusedElementwise {
            dtype,
            dims,
            program: if merge_loops {
                combine_instructions(&b.program)
            } else {
                b.program
            },
        });
        n.inputs = b.inputs;
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
    use ferroflow_tensor_core::{DType, Tensor, TensorSpec};

    #[test]
    fn a_chain_becomes_one_node() {
        let spec = TensorSpec::new(DType::F32, vec![10_000]);
        let a = Tensor::scalar(0.5f32);
        let mut g = trace(&[spec.clone(), spec], |x| {
            Ok(vec![x[0].mul(&a)?.add(&x[1])?.sigmoid()?.mul(&x[1])?])
        });
        let x0 = ferroflow_tensor_core::random::normal(&[10_000], Normal::default().seed(1)).unwrap();
        let x1 = ferroflow_tensor_core::random::normal(&[10_000], Normal::default().seed(2)).unwrap();
        let want = run(&g, &[x0.clone(), x1.clone()]);
        let before = g.len();
        let mut unmerged = g.clone();
        assert_eq!(elementwise_fusion(&mut g, LoopMerging::Merge), 1);
        assert_eq!(elementwise_fusion(&mut unmerged, LoopMerging::Separate), 1);
        dead_code_elimination(&mut g);
        // mul, add, sigmoid, mul -> one fused node.
        assert_eq!(before - g.len(), 3, "{g}");
        assert!(
            g.nodes
                .iter()
                .any(|n| n.op_type() == "FusedElementwise[multiply+add+sigmoid+multiply]"),
            "{g}"
        );
        // ... run as two loops: x * a + b, then sigmoid(.) * x1.
        let fused = g.nodes.iter().find_map(|n| match &n.kind {
            NodeKind::Fused(f) => Some(f),
            _ => None,
        });
        assert_eq!(fused.map(|f| f.program.len()), Some(2), "{g}");
        assert_eq!(
            run(&g, &[x0.clone(), x1.clone()]),
            want,
            "bit-identical to the separate ops"
        );
        dead_code_elimination(&mut unmerged);
        let program_len = unmerged.nodes.iter().find_map(|n| match &n.kind {
            NodeKind::Fused(f) => Some(f.program.len()),
            _ => None,
        });
        assert_eq!(program_len, Some(4), "without merging: one loop per op");
        assert_eq!(run(&unmerged, &[x0, x1]), want);
    }

    #[test]
    fn shared_and_broadcast_values_are_not_absorbed() {
        let mut g = trace(
            &[
                TensorSpec::new(DType::F64, vec![2, 3]),
                TensorSpec::new(DType::F64, vec![3]),
            ],
            |x| {
                let e = x[0].exp()?; // used twice: stays
                let b = x[0].add(&x[1])?; // broadcast [3] input: not fusable
                Ok(vec![e.mul(&e)?.add(&b)?.tanh()?, e])
            },
        );
        let x0 = Tensor::new([[0.1f64, 0.2, 0.3], [0.4, 0.5, 0.6]]);
        let x1 = Tensor::new([1.0f64, 2.0, 3.0]);
        let want = run(&g, &[x0.clone(), x1.clone()]);
        elementwise_fusion(&mut g, LoopMerging::Merge);
        dead_code_elimination(&mut g);
        assert!(g.nodes.iter().any(|n| n.op_type() == "Exp"), "{g}");
        assert!(g.nodes.iter().any(|n| n.op_type() == "AddV2"), "{g}");
        assert!(
            g.nodes
                .iter()
                .any(|n| n.op_type() == "FusedElementwise[multiply+add+tanh]"),
            "{g}"
        );
        assert_eq!(run(&g, &[x0, x1]), want);
    }
}
