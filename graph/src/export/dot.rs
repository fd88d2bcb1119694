//! Graphviz DOT export.

use crate::ir::{Graph, NodeKind};

/// The graph in Graphviz DOT: one box per node (name and op type), edges labelled with the
/// value's shape and dtype. Render with `dot -Tsvg`.
pub fn to_dot(g: &Graph) -> String {
    let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let mut out = String::from("digraph G {\n  rankdir=TB;\n  node [shape=box, fontname=\"Helvetica\"];\n");
    for (i, n) in g.nodes.iter().enumerate() {
        let style = match n.kind {
            NodeKind::Placeholder { .. } => ", style=filled, fillcolor=\"#dbeafe\"",
            NodeKind::Const(_) => ", style=filled, fillcolor=\"#f3f4f6\"",
            NodeKind::Fused(_) | NodeKind::MatMulEpilogue(_) => ", style=filled, fillcolor=\"#fde68a\"",
            _ => "",
        };
        out.push_str(&format!(
            "  n{i} [label=\"{}\\n{}\"{style}];\n",
            esc(&n.name),
            esc(&n.op_type())
        ));
    }
    for (i, n) in g.nodes.iter().enumerate() {
        for v in &n.inputs {
            out.push_str(&format!(
                "  n{} -> n{i} [label=\"{}\"];\n",
                v.node,
                esc(&g.spec(*v).to_string())
            ));
        }
    }
    out.push_str("}\n");
    out
}
