//! Tracing: a [`Tracer`] that turns every dispatched op into a graph node and returns
//! symbolic tensors standing for its outputs.

use crate::ir::{Graph, Node, NodeKind, ValueRef};
use ferroflow_tensor_core::{Error, Op, Result, Tensor, TensorId, TensorSpec, Tracer};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

static NEXT_GRAPH: AtomicU64 = AtomicU64::new(1);

/// What a symbolic tensor made by this crate points at.
#[derive(Debug)]
pub(crate) struct NodeHandle {
    pub graph: u64,
    pub value: ValueRef,
}

/// Builds a [`Graph`] from the ops dispatched while it is the active tracer.
pub(crate) struct GraphTracer {
    id: u64,
    graph: RefCell<Graph>,
    /// Eager tensors already captured as constants, by identity.
    captured: RefCell<HashMap<TensorId, ValueRef>>,
}

impl GraphTracer {
    pub fn new() -> Self {
        GraphTracer {
            id: NEXT_GRAPH.fetch_add(1, Ordering::Relaxed),
            graph: RefCell::new(Graph::default()),
            captured: RefCell::new(HashMap::new()),
        }
    }

    fn push(&self, name: &str, kind: NodeKind, inputs: Vec<ValueRef>, outputs: Vec<TensorSpec>) -> usize {
        let mut g = self.graph.borrow_mut();
        let name = g.unique_name(name);
        g.nodes.push(Node {
            name,
            kind,
            inputs,
            outputs,
        });
        g.nodes.len() - 1
    }

    fn symbolic(&self, spec: TensorSpec, value: ValueRef) -> Tensor {
        Tensor::symbolic(spec, Arc::new(NodeHandle { graph: self.id, value }))
    }

    /// A placeholder for argument `index` (named like the parameter, `x`, `x_1`, ...).
    pub fn placeholder(&self, index: usize, name: &str, spec: TensorSpec) -> Tensor {
        let node = self.push(name, NodeKind::Placeholder { index }, Vec::new(), vec![spec.clone()]);
        self.symbolic(spec, ValueRef { node, output: 0 })
    }

    /// The graph value a tensor stands for: a node of this graph, or a captured constant.
    pub fn value_of(&self, t: &Tensor) -> Result<ValueRef> {
        if let Some(sym) = t.as_symbolic() {
            return match sym.handle.downcast_ref::<NodeHandle>() {
                Some(h) if h.graph == self.id => Ok(h.value),
                _ => Err(Error::Symbolic {
                    op: "function",
                    msg:
                        "a symbolic tensor from another traced function was used; return it from that function instead"
                            .into(),
                }),
            };
        }
        if let Some(&v) = self.captured.borrow().get(&t.id()) {
            return Ok(v);
        }
        let data = t.data()?.clone();
        let node = self.push("Const", NodeKind::Const(data), Vec::new(), vec![t.spec()]);
        let v = ValueRef { node, output: 0 };
        self.captured.borrow_mut().insert(t.id(), v);
        Ok(v)
    }

    /// Finishes the trace: the outputs pass through `Identity` nodes, as in TensorFlow.
    pub fn finish(self, outputs: &[Tensor]) -> Result<Graph> {
        let mut outs = Vec::with_capacity(outputs.len());
        for t in outputs {
            let v = self.value_of(t)?;
            let spec = t.spec();
            let node = self.push("Identity", NodeKind::Op(Op::Identity), vec![v], vec![spec]);
            outs.push(ValueRef { node, output: 0 });
        }
        let mut g = self.graph.into_inner();
        g.outputs = outs;
        Ok(g)
    }
}

impl Tracer for GraphTracer {
    fn record(&self, op: &Op, inputs: &[&Tensor], outputs: Vec<TensorSpec>) -> Result<Vec<Tensor>> {
        let ins = inputs.iter().map(|t| self.value_of(t)).collect::<Result<Vec<_>>>()?;
        let node = self.push(op.tf_op_type(), NodeKind::Op(op.clone()), ins, outputs.clone());
        Ok(outputs
            .into_iter()
            .enumerate()
            .map(|(i, s)| self.symbolic(s, ValueRef { node, output: i }))
            .collect())
    }
}
