//! The executor: runs an optimised graph node by node with little per-node overhead.
//!
//! A [`Plan`] is computed once per concrete function: a slot for each value, and for each
//! node the slots it reads and writes and the slots whose last use it is (freed right after,
//! so memory stays at the live set). With buffer reuse on, an elementwise op whose input
//! dies at that node and is not shared writes its result into the input's buffer.

use crate::ir::{Graph, NodeKind};
use ferroflow_tensor_core::fused::{binary_in_place, unary_in_place, Side};
use std::sync::{Arc, Mutex};

use ferroflow_tensor_core::{
    constant_on, dispatch, graph_capture_enabled, with_device, CapturedCall, Data, Device, Error, Op, PauseObservers,
    Result, Tensor, TensorSpec, Value, Variable,
};

/// One node's work.
#[derive(Debug, Clone)]
struct Step {
    inputs: Vec<usize>,
    first_output: usize,
    /// Slots to free after this step.
    free: Vec<usize>,
    /// The input position whose buffer may be reused for the output.
    in_place: Option<usize>,
}

/// How to run a graph: value slots, per-node steps and last uses.
#[derive(Debug, Clone)]
pub struct Plan {
    steps: Vec<Step>,
    slots: usize,
    outputs: Vec<usize>,
    /// The graph's constants copied to each device it ran on (shared by clones).
    device_constants: Arc<Mutex<Vec<(Device, DeviceConstants)>>>,
    /// Every variable the graph reads or writes, once each.
    variables: Vec<Variable>,
    /// False when a node may do what a replayed accelerator graph cannot (a custom op:
    /// host work, communication, fresh randomness on each call).
    capturable: bool,
    /// Where the call stands with accelerator graphs on each device (shared by clones).
    captures: Arc<Mutex<Vec<(Device, Capture)>>>,
}

/// The fewest op nodes a plan needs to be captured as an accelerator graph: a call of a
/// node or two launches as few kernels as a replay, and a replay also copies arguments in
/// and outputs out.
const MIN_CAPTURED_NODES: usize = 4;

/// Failed captures after which a plan stops trying on a device (a capture fails for good
/// reasons, such as a host copy in the call, and for passing ones, such as another thread
/// assigning a variable meanwhile).
const CAPTURE_TRIES: u32 = 3;

/// A plan's accelerator-graph state on one device.
#[derive(Debug)]
enum Capture {
    /// One call ran node by node (its kernels are compiled now); `failed` captures since.
    Warm { failed: u32 },
    /// The captured graph, replayed by later calls.
    Captured(CapturedCall),
}

/// A graph's constants on one device, by node index (`None` for other nodes): copied once,
/// so that a call on an accelerator uploads nothing but what its ops compute.
type DeviceConstants = Arc<Vec<Option<Tensor>>>;

impl Plan {
    /// Plans `g`; `buffer_reuse` enables freeing at last use and in-place elementwise ops.
    pub fn new(g: &Graph, buffer_reuse: bool) -> Plan {
        let mut base = Vec::with_capacity(g.nodes.len());
        let mut slots = 0;
        for n in &g.nodes {
            base.push(slots);
            slots += n.outputs.len();
        }
        let slot = |v: crate::ir::ValueRef| base[v.node] + v.output;
        let outputs: Vec<usize> = g.outputs.iter().map(|&v| slot(v)).collect();
        // Last node reading each slot; function outputs live to the end.
        let mut last_use = vec![None; slots];
        for (i, n) in g.nodes.iter().enumerate() {
            for &v in &n.inputs {
                last_use[slot(v)] = Some(i);
            }
        }
        let mut steps: Vec<Step> = g
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| Step {
                inputs: n.inputs.iter().map(|&v| slot(v)).collect(),
                first_output: base[i],
                free: Vec::new(),
                in_place: None,
            })
            .collect();
        if buffer_reuse {
            for (s, lu) in last_use.iter().enumerate() {
                if outputs.contains(&s) {
                    continue;
                }
                match lu {
                    Some(i) => steps[*i].free.push(s),
                    // Never read (a stateful node's unused output): freed where it is made,
                    // so it holds no memory, nor a variable's, for the rest of the call.
                    None => {
                        if let Some(node) = base.iter().rposition(|&b| b <= s) {
                            steps[node].free.push(s);
                        }
                    }
                }
            }
            for (i, n) in g.nodes.iter().enumerate() {
                let out = &n.outputs;
                let elementwise = matches!(n.kind, NodeKind::Op(Op::Unary(_)) | NodeKind::Op(Op::Binary(_)));
                if elementwise && out.len() == 1 && out[0].dtype.is_float() {
                    steps[i].in_place = n.inputs.iter().position(|&v| {
                        let s = slot(v);
                        steps[i].free.contains(&s)
                            && g.spec(v) == &out[0]
                            && n.inputs.iter().filter(|&&w| w == v).count() == 1
                    });
                }
            }
        }
        let mut variables: Vec<Variable> = Vec::new();
        for n in &g.nodes {
            if let NodeKind::Op(Op::ReadVariable(v) | Op::Assign { var: v, .. }) = &n.kind {
                if !variables.contains(v) {
                    variables.push(v.clone());
                }
            }
        }
        // One graph launch pays for itself when it replaces several kernel launches.
        let kernels = g
            .nodes
            .iter()
            .filter(|n| {
                matches!(
                    n.kind,
                    NodeKind::Op(_) | NodeKind::Fused(_) | NodeKind::MatMulEpilogue(_)
                )
            })
            .count();
        // Without freeing at last use, a variable's reads live to the end of the call, and a
        // captured assign (which writes the variable's memory in place) is refused.
        let assigns = g
            .nodes
            .iter()
            .any(|n| matches!(n.kind, NodeKind::Op(Op::Assign { .. })));
        let capturable = kernels >= MIN_CAPTURED_NODES
            && (buffer_reuse || !assigns)
            && !g.nodes.iter().any(|n| matches!(n.kind, NodeKind::Op(Op::Custom(_))));
        Plan {
            steps,
            slots,
            outputs,
            device_constants: Arc::default(),
            variables,
            capturable,
            captures: Arc::default(),
        }
    }

    /// The constants of `g` on `device`, copied there on the first call on that device.
    fn constants_on(&self, device: Device, g: &Graph) -> Result<DeviceConstants> {
        let mut cache = self.device_constants.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, c)) = cache.iter().find(|(d, _)| *d == device) {
            return Ok(c.clone());
        }
        let consts: Vec<Option<Tensor>> = g
            .nodes
            .iter()
            .map(|n| match &n.kind {
                NodeKind::Const(d) => constant_on(d, device).map(Some),
                _ => Ok(None),
            })
            .collect::<Result<_>>()?;
        let consts = Arc::new(consts);
        cache.push((device, consts.clone()));
        Ok(consts)
    }

    /// Runs the graph. With `exact_specs` the arguments match the traced specs and shape
    /// inference is skipped; otherwise every op re-validates its inputs.
    ///
    /// A function whose arguments live on an accelerator (or that is called inside an
    /// accelerator's device scope) runs there: see [`Plan::run_on`].
    pub fn run(&self, g: &Graph, args: &[&Tensor], exact_specs: bool) -> Result<Vec<Tensor>> {
        if let Some(device) = call_device(args) {
            return self.run_on(device, g, args);
        }
        let mut vals: Vec<Option<Data>> = vec![None; self.slots];
        for (i, (step, node)) in self.steps.iter().zip(&g.nodes).enumerate() {
            let out = step.first_output;
            match &node.kind {
                NodeKind::Placeholder { index } => {
                    let t = args
                        .get(*index)
                        .ok_or_else(|| Error::invalid("function", format!("missing argument {index}")))?;
                    vals[out] = Some(t.data()?.clone());
                }
                NodeKind::Const(d) => vals[out] = Some(d.clone()),
                NodeKind::Op(op) => {
                    if let (Some(p), Op::Unary(u)) = (step.in_place, op) {
                        if let Some(d) = vals[step.inputs[p]].take() {
                            match unary_in_place(*u, d) {
                                Ok(r) => {
                                    vals[out] = Some(r);
                                    free(&mut vals, step);
                                    continue;
                                }
                                Err(d) => vals[step.inputs[p]] = Some(d),
                            }
                        }
                    }
                    if let (Some(p), Op::Binary(b)) = (step.in_place, op) {
                        let other = step.inputs[1 - p];
                        if let (Some(d), Some(o)) = (vals[step.inputs[p]].take(), vals[other].as_ref()) {
                            match binary_in_place(*b, d, o, if p == 0 { Side::Left } else { Side::Right }) {
                                Ok(r) => {
                                    vals[out] = Some(r);
                                    free(&mut vals, step);
                                    continue;
                                }
                                Err(d) => vals[step.inputs[p]] = Some(d),
                            }
                        }
                    }
                    let ins = inputs(&vals, step, i)?;
                    if !exact_specs {
                        let specs: Vec<TensorSpec> = ins
                            .iter()
                            .map(|d| TensorSpec::new(d.dtype(), d.dims().to_vec()))
                            .collect();
                        op.infer(&specs)?;
                    }
                    let results = op.compute(&ins)?;
                    for (k, r) in results.into_iter().enumerate() {
                        vals[out + k] = Some(r);
                    }
                }
                NodeKind::Fused(f) => {
                    let ins = inputs(&vals, step, i)?;
                    // Shapes of a relaxed call that the fused loop does not take run as the
                    // separate ops, which broadcast (or fail) as they would eagerly.
                    vals[out] = Some(if exact_specs || f.fits(ins.iter().map(|d| d.dims())) {
                        f.run(&ins)?
                    } else {
                        f.run_unfused(&ins)?
                    });
                }
                NodeKind::MatMulEpilogue(e) => {
                    let ins = inputs(&vals, step, i)?;
                    if !exact_specs {
                        let specs: Vec<TensorSpec> = ins[..2]
                            .iter()
                            .map(|d| TensorSpec::new(d.dtype(), d.dims().to_vec()))
                            .collect();
                        Op::MatMul {
                            transpose_a: e.transpose_a,
                            transpose_b: e.transpose_b,
                        }
                        .infer(&specs)?;
                    }
                    vals[out] = Some(e.run(&ins)?);
                }
            }
            free(&mut vals, step);
        }
        self.outputs
            .iter()
            .map(|&s| {
                vals[s].clone().map(Tensor::from_data).ok_or_else(|| Error::Other {
                    op: "function",
                    msg: "an output was not computed".into(),
                })
            })
            .collect()
    }
}

impl Plan {
    /// Runs the graph on `device`, node by node as eager ops inside that device's scope
    /// (so constants and host arguments are copied there, every op runs its device kernel,
    /// and the outputs stay on the device); a fused node is one kernel where the backend
    /// generates one (CUDA), else its separate ops. Values are
    /// freed at their last use as on the host. Observers (tapes) see the call, not its ops,
    /// as on the host.
    ///
    /// On a GPU the second call with arguments of the same specs is captured as one CUDA
    /// graph, which later calls replay with one launch (see
    /// [`ferroflow_tensor_core::CapturedCall`]; [`ferroflow_tensor_core::set_graph_capture`]
    /// turns this off). A call that cannot be captured or replayed runs node by node.
    pub fn run_on(&self, device: Device, g: &Graph, args: &[&Tensor]) -> Result<Vec<Tensor>> {
        if device.is_cpu() || !self.capturable || !graph_capture_enabled() {
            return self.run_nodes(device, g, args);
        }
        let mut captures = self.captures.lock().unwrap_or_else(|p| p.into_inner());
        let Some(at) = captures.iter().position(|(d, _)| *d == device) else {
            // The first call compiles its kernels; the second is captured.
            captures.push((device, Capture::Warm { failed: 0 }));
            drop(captures);
            return self.run_nodes(device, g, args);
        };
        let state = &mut captures[at].1;
        match state {
            Capture::Warm { failed } if *failed < CAPTURE_TRIES => {
                let captured =
                    CapturedCall::capture(device, args, &self.variables, &mut |a| self.run_nodes(device, g, a));
                match captured {
                    Some((call, out)) => {
                        *state = Capture::Captured(call);
                        return out;
                    }
                    None => *failed += 1,
                }
            }
            Capture::Warm { .. } => {}
            Capture::Captured(call) => {
                if let Some(out) = call.replay(args) {
                    return out;
                }
            }
        }
        drop(captures);
        self.run_nodes(device, g, args)
    }

    /// [`Plan::run_on`] without accelerator graphs: each node an eager op on `device`.
    fn run_nodes(&self, device: Device, g: &Graph, args: &[&Tensor]) -> Result<Vec<Tensor>> {
        let _unobserved = PauseObservers::new();
        let consts = self.constants_on(device, g)?;
        with_device(device, || {
            let mut vals: Vec<Option<Tensor>> = vec![None; self.slots];
            for (i, (step, node)) in self.steps.iter().zip(&g.nodes).enumerate() {
                let out = step.first_output;
                let ins = || -> Result<Vec<&Tensor>> {
                    step.inputs
                        .iter()
                        .map(|&s| vals[s].as_ref().ok_or_else(|| missing(i)))
                        .collect()
                };
                match &node.kind {
                    NodeKind::Placeholder { index } => {
                        let t = args
                            .get(*index)
                            .ok_or_else(|| Error::invalid("function", format!("missing argument {index}")))?;
                        vals[out] = Some((*t).clone());
                    }
                    NodeKind::Const(_) => vals[out] = consts[i].clone(),
                    NodeKind::Op(op) => {
                        let results = dispatch(op.clone(), &ins()?)?;
                        for (k, r) in results.into_iter().enumerate() {
                            vals[out + k] = Some(r);
                        }
                    }
                    NodeKind::Fused(f) => vals[out] = Some(f.run_tensors(&ins()?)?),
                    NodeKind::MatMulEpilogue(e) => vals[out] = Some(e.run_tensors(&ins()?)?),
                }
                for &s in &step.free {
                    vals[s] = None;
                }
            }
            // Fresh tensors on the device, as the host path returns: a constant output comes
            // from the host, an argument passed through must not keep the caller's identity.
            self.outputs
                .iter()
                .map(|&s| {
                    let t = vals[s].as_ref().ok_or_else(|| missing(usize::MAX))?;
                    match t.value() {
                        Value::Device(d) if d.device() == device => Ok(Tensor::from_device_data(d.clone())),
                        Value::Eager(d) if device == Device::Cpu => Ok(Tensor::from_data(d.clone())),
                        _ => t.to(device),
                    }
                })
                .collect()
        })
    }
}

/// Where a call runs when not on the host: the device scope's device if a scope is active
/// (the CPU included: then on the host), else the accelerator holding a non-scalar argument
/// (scalars follow, as in eager placement), else an accelerator holding a scalar argument.
fn call_device(args: &[&Tensor]) -> Option<Device> {
    if let Some(scope) = ferroflow_tensor_core::default_device() {
        return (scope != Device::Cpu).then_some(scope);
    }
    let on_accelerator = |scalars: bool| {
        args.iter()
            .filter(|a| (a.rank() == 0) == scalars)
            .map(|a| a.device())
            .find(|d| *d != Device::Cpu)
    };
    on_accelerator(false).or_else(|| on_accelerator(true))
}

/// The error for a value that was freed or never computed (a planning bug).
fn missing(node: usize) -> Error {
    Error::Other {
        op: "function",
        msg: format!("a value read by node {node} was not computed"),
    }
}

fn inputs<'a>(vals: &'a [Option<Data>], step: &Step, node: usize) -> Result<Vec<&'a Data>> {
    step.inputs
        .iter()
        .map(|&s| {
            vals[s].as_ref().ok_or_else(|| Error::Other {
                op: "function",
                msg: format!("node {node} read a value that was freed"),
            })
        })
        .collect()
}

fn free(vals: &mut [Option<Data>], step: &Step) {
    for &s in &step.free {
        vals[s] = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passes::{optimize, test_util::trace, PassConfig};
    use ferroflow_tensor_core::random::{self, Normal};
    use ferroflow_tensor_core::DType;

    #[test]
    fn every_value_but_the_outputs_is_freed_once_even_when_never_read() {
        let v = Variable::new("v", Tensor::new([1.0f32, 2.0])).unwrap();
        let specs = [TensorSpec::new(DType::F32, vec![2])];
        let mut g = trace(&specs, |x| {
            // A read nobody uses stays in the graph (reads are stateful).
            let _unused = v.read()?;
            let y = x[0].add(&v.read()?)?;
            v.assign(&y)?;
            Ok(vec![y.mul(&x[0])?])
        });
        optimize(&mut g, &PassConfig::default()).unwrap();
        let reads = g
            .nodes
            .iter()
            .filter(|n| matches!(n.kind, NodeKind::Op(Op::ReadVariable(_))))
            .count();
        assert_eq!(reads, 2);
        let plan = Plan::new(&g, true);
        for s in 0..plan.slots {
            let freed = plan.steps.iter().filter(|st| st.free.contains(&s)).count();
            let want = usize::from(!plan.outputs.contains(&s));
            assert_eq!(freed, want, "slot {s}");
        }
        // Freed right after the read that made it: nothing holds the variable's old value
        // when the assign runs.
        assert_eq!(
            plan.run(&g, &[&Tensor::new([1.0f32, 1.0])], true).unwrap()[0]
                .to_vec::<f32>()
                .unwrap(),
            vec![2.0, 3.0]
        );
        assert_eq!(v.value().to_vec::<f32>().unwrap(), vec![2.0, 3.0]);
    }

    #[test]
    fn host_calls_and_cpu_scopes_stay_on_the_host_executor() {
        let x = Tensor::new([1.0f32, 2.0]);
        assert_eq!(call_device(&[&x]), None);
        assert_eq!(with_device(Device::Cpu, || call_device(&[&x])), None);
    }

    /// The device path (ops one by one; on the CPU, fused nodes as their separate ops) gives the host
    /// path's numbers bit for bit; run on the CPU here, on a GPU by the GPU checks.
    #[test]
    fn running_node_by_node_on_a_device_matches_the_host_executor() {
        let specs = [
            TensorSpec::new(DType::F32, vec![16, 8]),
            TensorSpec::new(DType::F32, vec![8, 12]),
            TensorSpec::new(DType::F32, vec![12]),
        ];
        let mut g = trace(&specs, |x| {
            let h = x[0].matmul(&x[1])?.bias_add(&x[2])?.relu()?;
            let s = h
                .mul(&Tensor::scalar(0.5f32))?
                .add(&Tensor::scalar(0.25f32))?
                .sigmoid()?;
            Ok(vec![s.mul(&h)?.reduce_sum(vec![1])?, h])
        });
        optimize(&mut g, &PassConfig::default()).unwrap();
        let kinds: Vec<&str> = g
            .nodes
            .iter()
            .filter_map(|n| match &n.kind {
                NodeKind::Fused(_) => Some("fused"),
                NodeKind::MatMulEpilogue(_) => Some("epilogue"),
                _ => None,
            })
            .collect();
        assert!(kinds.contains(&"fused") && kinds.contains(&"epilogue"), "{kinds:?}");
        let args: Vec<Tensor> = specs
            .iter()
            .enumerate()
            .map(|(i, s)| random::normal(s.shape.dims(), Normal::default().seed(i as u64 + 1)).unwrap())
            .collect();
        let refs: Vec<&Tensor> = args.iter().collect();
        let plan = Plan::new(&g, true);
        let host = plan.run(&g, &refs, true).unwrap();
        let device = plan.run_on(Device::Cpu, &g, &refs).unwrap();
        assert_eq!(host.len(), device.len());
        for (h, d) in host.iter().zip(&device) {
            assert_eq!(h.dims(), d.dims());
            let (h, d) = (h.to_vec::<f32>().unwrap(), d.to_vec::<f32>().unwrap());
            for (a, b) in h.iter().zip(&d) {
                assert_eq!(a.to_bits(), b.to_bits(), "{a} vs {b}");
            }
        }
    }
}
