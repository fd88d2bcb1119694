//! The graph IR: nodes in program order, each one op (or a fused kernel) with its inputs
//! and the specs of its outputs.

use ferroflow_tensor_core::fused::{EpilogueMatMul, FusedElementwise};
use ferroflow_tensor_core::{Data, Op, TensorSpec};
use std::fmt;

/// One output of one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueRef {
    /// Index of the producing node.
    pub node: usize,
    /// Which of its outputs.
    pub output: usize,
}

/// What a node computes.
#[derive(Debug, Clone)]
pub enum NodeKind {
    /// The `index`-th argument of the function.
    Placeholder {
        /// Argument position.
        index: usize,
    },
    /// A constant (a captured eager tensor, or a folded subgraph).
    Const(Data),
    /// A primitive op of the vocabulary.
    Op(Op),
    /// A chain of elementwise ops run as one loop (made by the fusion pass).
    Fused(FusedElementwise),
    /// A matmul with bias-add and activation applied to each output block (made by the
    /// epilogue pass).
    MatMulEpilogue(EpilogueMatMul),
}

/// A node of a [`Graph`].
#[derive(Debug, Clone)]
pub struct Node {
    /// Unique name, TensorFlow style (`MatMul`, `MatMul_1`, `add/y`).
    pub name: String,
    /// What it computes.
    pub kind: NodeKind,
    /// Its inputs, in order.
    pub inputs: Vec<ValueRef>,
    /// Dtype and shape of each output, as traced.
    pub outputs: Vec<TensorSpec>,
}

impl Node {
    /// TensorFlow's op type of the node (`MatMul`, `AddV2`, `ReadVariableOp`, ...).
    pub fn op_type(&self) -> String {
        match &self.kind {
            NodeKind::Placeholder { .. } => "Placeholder".into(),
            NodeKind::Const(_) => "Const".into(),
            NodeKind::Op(op) => op.tf_op_type().into(),
            NodeKind::Fused(f) => format!("FusedElementwise[{}]", f.describe()),
            NodeKind::MatMulEpilogue(e) => format!("_FusedMatMul[{}]", e.describe()),
        }
    }

    /// True when the node must run even if nothing uses its outputs, and must keep its
    /// place in program order.
    pub fn is_stateful(&self) -> bool {
        matches!(&self.kind, NodeKind::Op(op) if op.is_stateful())
    }
}

/// A traced computation: nodes in program order (every node's inputs come before it).
#[derive(Debug, Clone, Default)]
pub struct Graph {
    /// The nodes, in program order.
    pub nodes: Vec<Node>,
    /// The values the function returns.
    pub outputs: Vec<ValueRef>,
}

impl Graph {
    /// Spec of a value.
    pub fn spec(&self, v: ValueRef) -> &TensorSpec {
        &self.nodes[v.node].outputs[v.output]
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True for a graph without nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// How many times each value is used (by nodes and as a function output).
    pub fn use_counts(&self) -> std::collections::HashMap<ValueRef, usize> {
        let mut uses = std::collections::HashMap::new();
        for n in &self.nodes {
            for &i in &n.inputs {
                *uses.entry(i).or_insert(0) += 1;
            }
        }
        for &o in &self.outputs {
            *uses.entry(o).or_insert(0) += 1;
        }
        uses
    }

    /// Keeps the nodes for which `keep[i]` holds, renumbering references.
    pub(crate) fn retain(&mut self, keep: &[bool]) {
        let mut map = vec![usize::MAX; self.nodes.len()];
        let mut out = Vec::with_capacity(self.nodes.len());
        for (i, n) in std::mem::take(&mut self.nodes).into_iter().enumerate() {
            if keep[i] {
                map[i] = out.len();
                out.push(n);
            }
        }
        let fix = |v: &mut ValueRef| v.node = map[v.node];
        for n in &mut out {
            n.inputs.iter_mut().for_each(fix);
        }
        self.outputs.iter_mut().for_each(fix);
        self.nodes = out;
    }

    /// Points every use of `from` (inputs and outputs) at `to`.
    pub(crate) fn replace_uses(&mut self, from: ValueRef, to: ValueRef) {
        for n in &mut self.nodes {
            for i in &mut n.inputs {
                if *i == from {
                    *i = to;
                }
            }
        }
        for o in &mut self.outputs {
            if *o == from {
                *o = to;
            }
        }
    }

    /// A unique node name derived from `base` (`base`, `base_1`, `base_2`, ...).
    pub(crate) fn unique_name(&self, base: &str) -> String {
        let taken = |s: &str| self.nodes.iter().any(|n| n.name == s);
        if !taken(base) {
            return base.to_string();
        }
        (1..)
            .map(|i| format!("{base}_{i}"))
            .find(|s| !taken(s))
            .unwrap_or_else(|| base.to_string())
    }
}

/// The text dump: one line per node, `name = Type(inputs) -> specs`.
impl fmt::Display for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for n in &self.nodes {
            let ins: Vec<String> = n
                .inputs
                .iter()
                .map(|v| format!("{}:{}", self.nodes[v.node].name, v.output))
                .collect();
            let outs: Vec<String> = n.outputs.iter().map(|s| s.to_string()).collect();
            writeln!(
                f,
                "{} = {}({}) -> [{}]",
                n.name,
                n.op_type(),
                ins.join(", "),
                outs.join(", ")
            )?;
        }
        let outs: Vec<String> = self
            .outputs
            .iter()
            .map(|v| format!("{}:{}", self.nodes[v.node].name, v.output))
            .collect();
        writeln!(f, "return [{}]", outs.join(", "))
    }
}
