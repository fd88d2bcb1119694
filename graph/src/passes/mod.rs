//! Graph optimisation passes. Each takes a [`Graph`] and rewrites it in place, keeping its
//! results; each can be switched off through [`PassConfig`] for debugging and to measure
//! its gain.

mod cse;
mod dce;
mod epilogue;
mod fold;
mod fuse;

pub use cse::common_subexpression_elimination;
pub use dce::dead_code_elimination;
pub use epilogue::matmul_epilogue_fusion;
pub use fold::constant_folding;
pub use fuse::{elementwise_fusion, LoopMerging};

use crate::ir::Graph;
use ferroflow_tensor_core::Result;

/// Which passes run when a function is traced (all by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassConfig {
    /// Remove nodes whose results are never used (stateful nodes always stay).
    pub dead_code_elimination: bool,
    /// Evaluate nodes whose inputs are all constants at trace time.
    pub constant_folding: bool,
    /// Merge nodes that compute the same op on the same inputs.
    pub common_subexpression_elimination: bool,
    /// Turn chains of elementwise ops into one loop over cache-sized chunks.
    pub elementwise_fusion: bool,
    /// Inside each fused node, run a multiply feeding an add, and a costly unary op (exp,
    /// sigmoid, tanh, ...) feeding a multiply or an add, as one pass over the chunk each
    /// (see [`combine_instructions`](ferroflow_tensor_core::fused::combine_instructions)).
    pub loop_merging: bool,
    /// Apply bias-add and activation to each matmul output block while it is hot.
    pub matmul_epilogue_fusion: bool,
    /// Free each value after its last use and run elementwise ops in place when their
    /// input is not needed afterwards.
    pub buffer_reuse: bool,
}

impl Default for PassConfig {
    fn default() -> Self {
        PassConfig {
            dead_code_elimination: true,
            constant_folding: true,
            common_subexpression_elimination: true,
            elementwise_fusion: true,
            loop_merging: true,
            matmul_epilogue_fusion: true,
            buffer_reuse: true,
        }
    }
}

impl PassConfig {
    /// Every pass off: the graph runs as traced.
    pub fn none() -> Self {
        PassConfig {
            dead_code_elimination: false,
            constant_folding: false,
            common_subexpression_elimination: false,
            elementwise_fusion: false,
            loop_merging: false,
            matmul_epilogue_fusion: false,
            buffer_reuse: false,
        }
    }
}

/// Runs the enabled passes in a fixed order: fold, CSE, DCE, matmul epilogue, elementwise
/// fusion, DCE.
pub fn optimize(g: &mut Graph, cfg: &PassConfig) -> Result<()> {
    if cfg.constant_folding {
        constant_folding(g)?;
    }
    if cfg.common_subexpression_elimination {
        common_subexpression_elimination(g);
    }
    if cfg.dead_code_elimination {
        dead_code_elimination(g);
    }
    if cfg.matmul_epilogue_fusion {
        matmul_epilogue_fusion(g);
    }
    if cfg.elementwise_fusion {
        let loops = if cfg.loop_merging {
            LoopMerging::Merge
        } else {
            LoopMerging::Separate
        };
        elementwise_fusion(g, loops);
    }
    if cfg.dead_code_elimination || cfg.matmul_epilogue_fusion || cfg.elementwise_fusion {
        // Fusion leaves the absorbed nodes unused; they go even with DCE switched off.
        dead_code_elimination(g);
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod test_util {
    use crate::ir::Graph;
    use crate::trace::GraphTracer;
    use ferroflow_tensor_core::{push_tracer, Result, Tensor, TensorSpec};
    use std::rc::Rc;

    /// Traces `f` over placeholders of the given specs.
    pub fn trace(specs: &[TensorSpec], f: impl Fn(&[Tensor]) -> Result<Vec<Tensor>>) -> Graph {
        let tracer = Rc::new(GraphTracer::new());
        let args: Vec<Tensor> = specs
            .iter()
            .enumerate()
            .map(|(i, s)| tracer.placeholder(i, "x", s.clone()))
            .collect();
        let outs = {
            let _g = push_tracer(tracer.clone());
            f(&args).unwrap()
        };
        Rc::try_unwrap(tracer)
            .ok()
            .expect("tracer released")
            .finish(&outs)
            .unwrap()
    }

    /// Runs a graph on eager arguments, unoptimised semantics.
    pub fn run(g: &Graph, args: &[Tensor]) -> Vec<Vec<f64>> {
        let plan = crate::exec::Plan::new(g, false);
        let refs: Vec<&Tensor> = args.iter().collect();
        plan.run(g, &refs, true)
            .unwrap()
            .iter()
            .map(|t| t.to_f64_vec().unwrap())
            .collect()
    }
}
