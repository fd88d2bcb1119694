//! [`Function`] (`tf.function`) and [`ConcreteFunction`]: trace a closure into a graph once
//! per input signature, optimise it, and run it.

use crate::args::{Body, CallArgs, FunctionOutput, TraceableFn};
use crate::exec::Plan;
use crate::ir::{Graph, NodeKind};
use crate::passes::{optimize, PassConfig};
use crate::shape_check::{grown, same_computation, ShapeGenerality};
use crate::trace::GraphTracer;
use ferroflow_tensor_core::{has_observers, is_tracing, push_tracer, DType, Error, Result, Tensor, TensorSpec};
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

/// A static (non-tensor) argument: part of the cache key by value, baked into the graph.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StaticArg {
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// A float, compared by its bits.
    Float(u64),
    /// A string.
    Str(String),
}

impl StaticArg {
    /// The value as an integer, if it is one.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            StaticArg::Int(v) => Some(*v),
            _ => None,
        }
    }

    /// The value as a float (integers widen).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            StaticArg::Float(b) => Some(f64::from_bits(*b)),
            StaticArg::Int(v) => Some(*v as f64),
            _ => None,
        }
    }

    /// The value as a bool, if it is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            StaticArg::Bool(v) => Some(*v),
            _ => None,
        }
    }
}

impl From<i64> for StaticArg {
    fn from(v: i64) -> Self {
        StaticArg::Int(v)
    }
}

impl From<bool> for StaticArg {
    fn from(v: bool) -> Self {
        StaticArg::Bool(v)
    }
}

impl From<f64> for StaticArg {
    fn from(v: f64) -> Self {
        StaticArg::Float(v.to_bits())
    }
}

impl From<&str> for StaticArg {
    fn from(v: &str) -> Self {
        StaticArg::Str(v.to_string())
    }
}

/// The spec of one argument in an input signature: a dtype and a shape whose dimensions
/// may be unknown (`None`, e.g. the batch), like `tf.TensorSpec(shape=[None, 3])`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InputSpec {
    /// Required dtype.
    pub dtype: DType,
    /// Dimensions; `None` matches any size.
    pub dims: Vec<Option<usize>>,
}

impl InputSpec {
    /// A spec from dtype and (partially known) dimensions.
    pub fn new(dtype: DType, dims: &[Option<usize>]) -> Self {
        InputSpec {
            dtype,
            dims: dims.to_vec(),
        }
    }

    /// True if `t`'s dtype and shape fit.
    pub fn matches(&self, spec: &TensorSpec) -> bool {
        spec.dtype == self.dtype
            && spec.shape.rank() == self.dims.len()
            && self
                .dims
                .iter()
                .zip(spec.shape.dims())
                .all(|(want, &got)| want.is_none_or(|w| w == got))
    }
}

impl From<&TensorSpec> for InputSpec {
    fn from(s: &TensorSpec) -> Self {
        InputSpec {
            dtype: s.dtype,
            dims: s.shape.dims().iter().map(|&d| Some(d)).collect(),
        }
    }
}

impl fmt::Display for InputSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dims: Vec<String> = self
            .dims
            .iter()
            .map(|d| d.map_or("None".to_string(), |v| v.to_string()))
            .collect();
        write!(f, "TensorSpec(shape=({}), dtype={})", dims.join(", "), self.dtype)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    tensors: Vec<InputSpec>,
    statics: Vec<StaticArg>,
}

/// One node of a traced graph, as `graph.get_operations()` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// Unique node name (`MatMul`, `add/y`, ...).
    pub name: String,
    /// TensorFlow op type (`MatMul`, `AddV2`, ...).
    pub op_type: String,
    /// Input names, `node:output`.
    pub inputs: Vec<String>,
    /// Output specs.
    pub outputs: Vec<TensorSpec>,
}

/// A traced and optimised graph for one input signature. Its graph is immutable (only what
/// is known of its shape generality grows); it is `Send + Sync` and can be called from
/// several threads at once.
pub struct ConcreteFunction {
    traced: Graph,
    optimized: Graph,
    plan: Plan,
    inputs: Vec<TensorSpec>,
    signature: Vec<InputSpec>,
    /// Which other shapes the graph is known to be right for (see [`crate::shape_check`]).
    generality: Mutex<ShapeGenerality>,
}

impl ConcreteFunction {
    fn new(traced: Graph, inputs: Vec<TensorSpec>, signature: Vec<InputSpec>, passes: &PassConfig) -> Result<Self> {
        let mut optimized = traced.clone();
        optimize(&mut optimized, passes)?;
        let plan = Plan::new(&optimized, passes.buffer_reuse);
        Ok(ConcreteFunction {
            generality: Mutex::new(ShapeGenerality::unknown(&inputs)),
            traced,
            optimized,
            plan,
            inputs,
            signature,
        })
    }

    fn generality(&self) -> std::sync::MutexGuard<'_, ShapeGenerality> {
        self.generality.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True when the graph is known to be right for arguments of these dimensions: the
    /// traced ones, or ones differing only where a second trace built the same graph.
    fn serves<'a>(&self, dims: impl Iterator<Item = &'a [usize]> + Clone) -> bool {
        // The traced shapes themselves (most calls) need no lock.
        let traced = self.inputs.len() == dims.clone().count()
            && self.inputs.iter().zip(dims.clone()).all(|(s, d)| s.shape.dims() == d);
        traced || self.generality().serves(&self.inputs, dims)
    }

    /// Runs the graph. Dtypes are checked (an error names the argument); shapes that differ
    /// from the traced ones re-validate every op (and fail with that op's error if they do
    /// not fit), as a relaxed signature allows. Shapes are not checked, as in TensorFlow
    /// (F12b), with one exception: when its [`Function`] found that this graph reads the size
    /// of a dimension (it holds constants made from it), a call that differs there is an
    /// error rather than a wrong answer; call the [`Function`], which traces each size.
    pub fn call(&self, args: &[Tensor]) -> Result<Vec<Tensor>> {
        let refs: smallvec::SmallVec<[&Tensor; 4]> = args.iter().collect();
        self.call_refs(&refs)
    }

    /// [`ConcreteFunction::call`] on borrowed tensors.
    pub(crate) fn call_refs(&self, args: &[&Tensor]) -> Result<Vec<Tensor>> {
        if args.len() != self.inputs.len() {
            return Err(Error::invalid(
                "function",
                format!("expected {} argument(s), got {}", self.inputs.len(), args.len()),
            ));
        }
        let mut exact = true;
        for (i, (a, s)) in args.iter().zip(&self.inputs).enumerate() {
            if a.dtype() != s.dtype {
                return Err(Error::dtypes(
                    "function",
                    &[s.dtype, a.dtype()],
                    format!("argument {i} was traced as {s}"),
                ));
            }
            exact &= a.dims() == s.shape.dims();
        }
        if !exact
            && self
                .generality()
                .known_wrong(&self.inputs, args.iter().map(|a| a.dims()))
        {
            let traced: Vec<String> = self.inputs.iter().map(|s| s.shape.to_string()).collect();
            let got: Vec<String> = args.iter().map(|a| a.shape().to_string()).collect();
            return Err(Error::invalid(
                "function",
                format!(
                    "this graph depends on the shapes it was traced with ({}) and cannot run on {}; \
                     call its Function, which traces each shape",
                    traced.join(", "),
                    got.join(", ")
                ),
            ));
        }
        self.plan.run(&self.optimized, args, exact)
    }

    /// The input signature it was traced for (`None` for relaxed dimensions). A relaxed
    /// dimension whose size the graph turned out to read is served only at its traced size
    /// (see [`Function`]).
    pub fn signature(&self) -> &[InputSpec] {
        &self.signature
    }

    /// Output specs (as traced).
    pub fn output_specs(&self) -> Vec<TensorSpec> {
        self.traced
            .outputs
            .iter()
            .map(|&v| self.traced.spec(v).clone())
            .collect()
    }

    /// The graph as traced, before optimisation.
    pub fn graph(&self) -> &Graph {
        &self.traced
    }

    /// The graph that runs, after the optimisation passes.
    pub fn optimized_graph(&self) -> &Graph {
        &self.optimized
    }

    /// The traced operations in creation order (`graph.get_operations()`).
    pub fn operations(&self) -> Vec<Operation> {
        operations(&self.traced)
    }
}

/// The operations of a graph in program order.
pub fn operations(g: &Graph) -> Vec<Operation> {
    g.nodes
        .iter()
        .map(|n| Operation {
            name: n.name.clone(),
            op_type: n.op_type(),
            inputs: n
                .inputs
                .iter()
                .map(|v| format!("{}:{}", g.nodes[v.node].name, v.output))
                .collect(),
            outputs: n.outputs.clone(),
        })
        .collect()
}

/// A traced function (`tf.function`): the first call with a new input signature traces the
/// closure with symbolic tensors into a graph, optimises it and caches it; later calls with
/// the same signature run the cached graph without running the closure.
///
/// * The closure takes its tensors as it likes them, `|x: &Tensor, y: &Tensor| ...` (up to
///   eight) or `|xs: &[Tensor]| ...` (any number), and returns a tensor, a tuple or array of
///   tensors, a `Vec` or `()`; [`Function::call`] returns the same (see [`TraceableFn`],
///   [`CallArgs`], [`FunctionOutput`]).
/// * The cache key is the dtype and shape of each tensor argument plus the value of each
///   static argument; a new key retraces. With [`Function::with_input_signature`], unknown
///   (`None`) dimensions let one trace serve every matching shape.
/// * A relaxed trace is checked before it serves a new size: the first call that differs in
///   a dimension traces the closure once more, and the graph is reused only when both
///   traces are the same computation. A closure that reads its shapes (a mean's gradient,
///   `ones_like`, `broadcast_to(x.dims())`) bakes them in as constants, so it gets a trace
///   per shape instead of wrong answers. TensorFlow gets there with symbolic shapes; here
///   the closure runs more often than in TensorFlow, and the checks are not counted by
///   [`Function::tracing_count`] (a trace per shape is). Sizes that changed together are
///   checked one traced size at a time (a closure may read how they relate, `nx - ny`);
///   [`Function::get_concrete_function`] checks every relaxed dimension at once that way,
///   one larger in each. Two sizes are a check, not a proof: a closure that branches on a
///   size (`if n > 100`) can still be served a graph traced on the other side of its
///   branch.
/// * Side effects of the closure (prints, pushes to a vector) happen only while tracing.
/// * Variables are captured by reference: an `assign` between calls is seen without
///   retracing. Eager tensors captured by the closure become constants (snapshotted).
/// * The closure may borrow what it calls (a model, a loss): the function lives no longer
///   than the borrow (`'f`).
/// * [`crate::config::run_functions_eagerly`] makes every call run the closure eagerly.
/// * A call made while a gradient tape is recording, or from inside another trace, runs
///   the closure directly so the tape (or the outer trace) sees every op.
///
/// ```
/// use ferroflow_graph::function;
/// use ferroflow_tensor_core::Tensor;
///
/// let f = function(|x: &Tensor, y: &Tensor, b: &Tensor| x.matmul(y)?.add(b));
/// let x = Tensor::new([[1.0f32, 2.0]]);
/// let y = Tensor::new([[3.0f32], [4.0]]);
/// let b = Tensor::new([0.5f32]);
/// assert_eq!(f.call((&x, &y, &b))?.to_vec::<f32>()?, vec![11.5]);
/// f.call((&x, &y, &b))?;
/// assert_eq!(f.tracing_count(), 1);
///
/// // Several results come back as they were returned.
/// let g = function(|x: &Tensor| Ok((x.exp()?, x.square()?)));
/// let (e, sq) = g.call(&x)?;
/// assert_eq!(sq.to_vec::<f32>()?, vec![1.0, 4.0]);
/// # let _ = e;
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
pub struct Function<'f, A: ?Sized = [Tensor], O = Vec<Tensor>> {
    body: Box<Body<'f>>,
    input_signature: Option<Vec<InputSpec>>,
    reduce_retracing: bool,
    passes: PassConfig,
    cache: Mutex<HashMap<CacheKey, Arc<ConcreteFunction>>>,
    /// The entry used last: checked first, without building a key (most loops call a
    /// function with one signature).
    last: Mutex<Option<(CacheKey, Arc<ConcreteFunction>)>>,
    traces: Mutex<usize>,
    signature: PhantomData<fn(&A) -> O>,
}

/// Wraps a closure into a [`Function`] (`tf.function(f)`): see [`TraceableFn`] for the
/// closures it takes.
///
/// ```
/// use ferroflow_graph::function;
/// use ferroflow_tensor_core::{Tensor, Variable};
///
/// // A function over a model it borrows (here a variable), as `@tf.function` on `__call__`.
/// let w = Variable::new("w", Tensor::new([[1.0f32], [2.0]]))?;
/// let forward = function(|x: &Tensor| x.matmul(&w.read()?)?.sigmoid());
/// let x = Tensor::new([[0.5f32, -0.25]]);
/// assert_eq!(forward.call(&x)?.to_scalar::<f32>()?, 0.5);
/// w.assign(&Tensor::new([[0.0f32], [4.0]]))?;            // seen without retracing
/// assert!(forward.call(&x)?.to_scalar::<f32>()? < 0.5);
/// assert_eq!(forward.tracing_count(), 1);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
pub fn function<'f, M, F>(f: F) -> Function<'f, F::Args, F::Output>
where
    F: TraceableFn<'f, M>,
{
    Function::from_body(f.into_body())
}

impl<'f> Function<'f> {
    /// A function whose closure also receives static (non-tensor) arguments, part of the
    /// cache key by value (see [`Function::call_with`]).
    ///
    /// ```
    /// use ferroflow_graph::{Function, StaticArg};
    /// use ferroflow_tensor_core::Tensor;
    /// let power = Function::with_statics(|x: &[Tensor], s: &[StaticArg]| {
    ///     let n = s[0].as_i64().unwrap_or(1);
    ///     let mut y = x[0].clone();
    ///     for _ in 1..n {
    ///         y = y.mul(&x[0])?;
    ///     }
    ///     Ok(vec![y])
    /// });
    /// let x = Tensor::new([3.0f64]);
    /// assert_eq!(power.call_with(&[&x], &[3i64.into()])?[0].to_vec::<f64>()?, vec![27.0]);
    /// assert_eq!(power.tracing_count(), 1);
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn with_statics<F>(f: F) -> Self
    where
        F: Fn(&[Tensor], &[StaticArg]) -> Result<Vec<Tensor>> + 'f,
    {
        Function::from_body(Box::new(f))
    }

    /// Calls the function on tensors and static arguments (keyed by value).
    pub fn call_with<A: CallArgs<[Tensor]>>(&self, args: A, statics: &[StaticArg]) -> Result<Vec<Tensor>> {
        self.run(&args.tensors(), statics)
    }

    /// [`Function::get_concrete_function`] with static arguments.
    pub fn get_concrete_function_with(
        &self,
        specs: &[TensorSpec],
        statics: &[StaticArg],
    ) -> Result<Arc<ConcreteFunction>> {
        let cf = self.concrete_for(specs, statics)?;
        self.probe(&cf, statics);
        Ok(cf)
    }
}

impl<'f, A: ?Sized, O: FunctionOutput> Function<'f, A, O> {
    fn from_body(body: Box<Body<'f>>) -> Self {
        Function {
            body,
            input_signature: None,
            reduce_retracing: false,
            passes: PassConfig::default(),
            cache: Mutex::new(HashMap::new()),
            last: Mutex::new(None),
            traces: Mutex::new(0),
            signature: PhantomData,
        }
    }

    /// Pins the input signature (`input_signature=[...]`): arguments must match it, and
    /// `None` dimensions accept any size with a single trace (once a second size has
    /// checked that the graph does not depend on it: see [`Function`]).
    pub fn with_input_signature(mut self, signature: Vec<InputSpec>) -> Self {
        self.input_signature = Some(signature);
        self
    }

    /// `reduce_retracing=True`: from the second distinct shape of the same dtypes and ranks
    /// on, trace once with `None` for every dimension that differed, and reuse that trace
    /// (when it is the same computation as the first shape's trace: see [`Function`]).
    pub fn with_reduce_retracing(mut self, enable: bool) -> Self {
        self.reduce_retracing = enable;
        self
    }

    /// Chooses the optimisation passes (all on by default).
    pub fn with_passes(mut self, passes: PassConfig) -> Self {
        self.passes = passes;
        self
    }

    /// Calls the function: `f.call(&x)` for one argument, `f.call((&x, &y))` for several,
    /// `f.call(&xs[..])` for the slice form.
    pub fn call<C: CallArgs<A>>(&self, args: C) -> Result<O> {
        O::from_tensors(self.run(&args.tensors(), &[])?)
    }

    fn run(&self, args: &[&Tensor], statics: &[StaticArg]) -> Result<Vec<Tensor>> {
        if crate::config::functions_run_eagerly() || is_tracing() || has_observers() {
            let owned: Vec<Tensor> = args.iter().map(|t| (*t).clone()).collect();
            return (self.body)(&owned, statics);
        }
        if let Some(cf) = self.last_match(args, statics) {
            return cf.call_refs(args);
        }
        let specs: Vec<TensorSpec> = args.iter().map(|t| t.spec()).collect();
        let cf = self.concrete_for(&specs, statics)?;
        cf.call_refs(args)
    }

    /// The last used concrete function, if these arguments fit its key.
    fn last_match(&self, args: &[&Tensor], statics: &[StaticArg]) -> Option<Arc<ConcreteFunction>> {
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let (key, cf) = last.as_ref()?;
        let fits = key.statics == statics
            && key.tensors.len() == args.len()
            && key.tensors.iter().zip(args).all(|(s, a)| {
                s.dtype == a.dtype()
                    && s.dims.len() == a.rank()
                    && s.dims
                        .iter()
                        .zip(a.dims())
                        .all(|(want, &got)| want.is_none_or(|w| w == got))
            })
            && cf.serves(args.iter().map(|a| a.dims()));
        fits.then(|| cf.clone())
    }

    /// The concrete function for arguments of these specs (tracing it if needed), as
    /// `get_concrete_function`. A relaxed one is checked before it is returned (see
    /// [`Function`]), so that calling it directly at other sizes is right or an error.
    pub fn get_concrete_function(&self, specs: &[TensorSpec]) -> Result<Arc<ConcreteFunction>> {
        let cf = self.concrete_for(specs, &[])?;
        self.probe(&cf, &[]);
        Ok(cf)
    }

    /// Checks every relaxed dimension of `cf` not checked yet: one trace per traced size,
    /// one larger in the dimensions of that size, and when that differs and several
    /// dimensions share the size, one per dimension (see `ShapeGenerality::probe_groups`).
    /// A closure that fails at such a size counts as reading it: other sizes then get their
    /// own traces, which is slower but never wrong.
    fn probe(&self, cf: &ConcreteFunction, statics: &[StaticArg]) {
        let relaxed: Vec<Vec<bool>> = cf
            .signature
            .iter()
            .map(|s| s.dims.iter().map(Option::is_none).collect())
            .collect();
        let groups = cf.generality().probe_groups(&cf.inputs, &relaxed);
        for group in groups {
            let specs = grown(&cf.inputs, &group);
            let same = self.same_as_at(cf, &specs, statics);
            if same || group.len() == 1 {
                cf.generality().record(&cf.inputs, &specs, same);
                continue;
            }
            for dim in group {
                let specs = grown(&cf.inputs, &[dim]);
                let same = self.same_as_at(cf, &specs, statics);
                cf.generality().record(&cf.inputs, &specs, same);
            }
        }
    }

    /// Whether a trace at `specs` builds `cf`'s graph (a trace that fails does not).
    fn same_as_at(&self, cf: &ConcreteFunction, specs: &[TensorSpec], statics: &[StaticArg]) -> bool {
        self.trace(specs, statics)
            .is_ok_and(|g| same_computation(&cf.traced, &g))
    }

    /// Records what a trace at `specs` (which built `cf`'s graph when `same`) says of `cf`,
    /// when it is conclusive (`ShapeGenerality::conclusive`); otherwise checks `cf` one
    /// traced size at a time.
    fn learn(&self, cf: &ConcreteFunction, specs: &[TensorSpec], same: bool, statics: &[StaticArg]) {
        let conclusive = cf.generality().conclusive(&cf.inputs, specs, same);
        if conclusive {
            cf.generality().record(&cf.inputs, specs, same);
        } else {
            self.probe(cf, statics);
        }
    }

    /// How many times the closure has been traced (`experimental_get_tracing_count`), not
    /// counting the traces that only check a relaxed one (see [`Function`]).
    pub fn tracing_count(&self) -> usize {
        *self.traces.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn concrete_for(&self, specs: &[TensorSpec], statics: &[StaticArg]) -> Result<Arc<ConcreteFunction>> {
        let mut key = CacheKey {
            tensors: self.signature_for(specs)?,
            statics: statics.to_vec(),
        };
        let exact = CacheKey {
            tensors: specs.iter().map(InputSpec::from).collect(),
            statics: statics.to_vec(),
        };
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        // A trace for exactly these shapes: the usual case, or one made because a relaxed
        // trace turned out to read its shapes.
        if let Some(cf) = cache.get(&exact) {
            let cf = cf.clone();
            drop(cache);
            self.remember(exact, &cf);
            return Ok(cf);
        }
        let relaxed = cache.get(&key).cloned().or_else(|| {
            // With reduce_retracing, a relaxed trace that already fits serves this call.
            let fits = |k: &CacheKey| {
                k.statics == key.statics
                    && k.tensors.len() == specs.len()
                    && k.tensors.iter().zip(specs).all(|(s, t)| s.matches(t))
            };
            (self.reduce_retracing && self.input_signature.is_none())
                .then(|| {
                    cache
                        .iter()
                        .find(|(k, _)| fits(k))
                        .map(|(k, cf)| (k.clone(), cf.clone()))
                })
                .flatten()
                .map(|(k, cf)| {
                    key = k;
                    cf
                })
        });
        if let Some(cf) = relaxed {
            drop(cache);
            return self.checked_for(cf, key, exact, specs, statics);
        }
        // With reduce_retracing, relax the dimensions that differ from an earlier trace of
        // the same dtypes and ranks; that trace then checks the new one for free.
        let mut earlier = None;
        if self.reduce_retracing && self.input_signature.is_none() {
            let same_kind = |k: &CacheKey| {
                k.statics == key.statics
                    && k.tensors.len() == key.tensors.len()
                    && k.tensors
                        .iter()
                        .zip(&key.tensors)
                        .all(|(a, b)| a.dtype == b.dtype && a.dims.len() == b.dims.len())
            };
            if let Some((prev, prev_cf)) = cache.iter().find(|(k, _)| same_kind(k)) {
                key.tensors = prev
                    .tensors
                    .iter()
                    .zip(&key.tensors)
                    .map(|(a, b)| InputSpec {
                        dtype: a.dtype,
                        dims: a
                            .dims
                            .iter()
                            .zip(&b.dims)
                            .map(|(x, y)| if x == y { *x } else { None })
                            .collect(),
                    })
                    .collect();
                earlier = Some(prev_cf.clone());
            }
        }
        drop(cache);
        let graph = self.trace(specs, statics)?;
        let cf = self.add_trace(key, graph, specs)?;
        if let Some(prev) = earlier {
            let same = same_computation(&prev.traced, &cf.traced);
            self.learn(&cf, &prev.inputs, same, statics);
        }
        Ok(cf)
    }

    /// The tensor part of the cache key: the input signature (after checking the call
    /// against it), or the call's own specs.
    fn signature_for(&self, specs: &[TensorSpec]) -> Result<Vec<InputSpec>> {
        let Some(sig) = &self.input_signature else {
            return Ok(specs.iter().map(InputSpec::from).collect());
        };
        if sig.len() != specs.len() {
            return Err(Error::invalid(
                "function",
                format!(
                    "the input signature has {} argument(s), the call {}",
                    sig.len(),
                    specs.len()
                ),
            ));
        }
        for (i, (want, got)) in sig.iter().zip(specs).enumerate() {
            if !want.matches(got) {
                return Err(Error::invalid(
                    "function",
                    format!("argument {i} ({got}) does not match the input signature {want}"),
                ));
            }
        }
        Ok(sig.clone())
    }

    /// A relaxed trace `cf` (under `key`) for a call of `specs`: used as it is when it is
    /// known to serve them; otherwise the closure is traced again at `specs`. If that trace
    /// builds the same graph the relaxed one serves these dimensions from now on (a check,
    /// not a new trace); if not (or if a dimension that differs is known to be read), the
    /// new trace is kept for exactly these shapes (under `exact`).
    fn checked_for(
        &self,
        cf: Arc<ConcreteFunction>,
        key: CacheKey,
        exact: CacheKey,
        specs: &[TensorSpec],
        statics: &[StaticArg],
    ) -> Result<Arc<ConcreteFunction>> {
        if cf.serves(specs.iter().map(|s| s.shape.dims())) {
            self.remember(key, &cf);
            return Ok(cf);
        }
        let graph = self.trace(specs, statics)?;
        let known_wrong = cf
            .generality()
            .known_wrong(&cf.inputs, specs.iter().map(|s| s.shape.dims()));
        if !known_wrong {
            let same = same_computation(&cf.traced, &graph);
            self.learn(&cf, specs, same, statics);
            // When what was learnt (checking one size at a time) says the graph reads a size
            // that differs here, this call's own trace serves it, as for any other size.
            let mut known_wrong = cf
                .generality()
                .known_wrong(&cf.inputs, specs.iter().map(|s| s.shape.dims()));
            if !same && !known_wrong {
                // Each size alone looked generic, yet together they built another graph.
                cf.generality().mark_read(&cf.inputs, specs);
                known_wrong = true;
            }
            if same && !known_wrong {
                self.remember(key, &cf);
                return Ok(cf);
            }
        }
        self.add_trace(exact, graph, specs)
    }

    /// Makes `cf` the entry [`Function::last_match`] tries first.
    fn remember(&self, key: CacheKey, cf: &Arc<ConcreteFunction>) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some((key, cf.clone()));
    }

    /// Optimises a new trace at `specs` into a concrete function for the signature of `key`,
    /// caches it under `key` and counts it.
    fn add_trace(&self, key: CacheKey, graph: Graph, specs: &[TensorSpec]) -> Result<Arc<ConcreteFunction>> {
        let cf = Arc::new(ConcreteFunction::new(
            graph,
            specs.to_vec(),
            key.tensors.clone(),
            &self.passes,
        )?);
        *self.traces.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.remember(key.clone(), &cf);
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, cf.clone());
        Ok(cf)
    }

    /// Runs the closure on placeholders of `specs` and returns the graph it built.
    fn trace(&self, specs: &[TensorSpec], statics: &[StaticArg]) -> Result<Graph> {
        let tracer = Rc::new(GraphTracer::new());
        let args: Vec<Tensor> = specs
            .iter()
            .enumerate()
            .map(|(i, s)| tracer.placeholder(i, &format!("args_{i}"), s.clone()))
            .collect();
        let outputs = {
            let _active = push_tracer(tracer.clone());
            // A closure that panics while tracing (a slice-form closure reading an argument it
            // was not given, say) is an error of this call, not of the whole program.
            let body = std::panic::AssertUnwindSafe(|| (self.body)(&args, statics));
            std::panic::catch_unwind(body).map_err(|panic| Error::Other {
                op: "function",
                msg: format!("the traced closure panicked: {}", panic_message(&*panic)),
            })??
        };
        let tracer = Rc::try_unwrap(tracer).map_err(|_| Error::Other {
            op: "function",
            msg: "the tracer is still in use".into(),
        })?;
        tracer.finish(&outputs)
    }
}

/// The message of a caught panic (a `&str` or `String` payload).
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

impl fmt::Debug for ConcreteFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sig: Vec<String> = self.signature.iter().map(|s| s.to_string()).collect();
        write!(
            f,
            "ConcreteFunction({}) with {} nodes ({} after optimisation)",
            sig.join(", "),
            self.traced.len(),
            self.optimized.len()
        )
    }
}

/// Counts the primitive ops of a graph (placeholders and constants excluded).
pub fn op_count(g: &Graph) -> usize {
    g.nodes
        .iter()
        .filter(|n| !matches!(n.kind, NodeKind::Placeholder { .. } | NodeKind::Const(_)))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferroflow_tensor_core::random::Normal;
    use ferroflow_tensor_core::{random, Variable};

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn concrete_functions_are_send_sync_and_give_the_same_results_from_many_threads() {
        assert_send_sync::<ConcreteFunction>();
        let w = Variable::new("w", random::normal(&[64, 32], Normal::default().seed(1)).unwrap()).unwrap();
        let b = random::normal(&[32], Normal::default().seed(2)).unwrap();
        let f = function(move |x: &Tensor| {
            let h = x.matmul(&w.read()?)?.bias_add(&b)?.relu()?;
            h.mul(&h.scalar_like(0.5))?.add(&h.sigmoid()?)?.reduce_sum(1)
        });
        let inputs: Vec<Tensor> = (0..8)
            .map(|i| random::normal(&[16, 64], Normal::default().seed(10 + i)).unwrap())
            .collect();
        let cf = f.get_concrete_function(&[inputs[0].spec()]).unwrap();
        let sequential: Vec<Vec<f32>> = inputs
            .iter()
            .map(|x| cf.call(std::slice::from_ref(x)).unwrap()[0].to_vec::<f32>().unwrap())
            .collect();
        let parallel: Vec<Vec<Vec<f32>>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let cf = cf.clone();
                    let inputs = &inputs;
                    s.spawn(move || {
                        inputs
                            .iter()
                            .map(|x| cf.call(std::slice::from_ref(x)).unwrap()[0].to_vec::<f32>().unwrap())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for run in parallel {
            assert_eq!(run, sequential);
        }
    }

    #[test]
    fn every_pass_can_be_switched_off_with_identical_results() {
        let body = |x: &[Tensor]| {
            let c = Tensor::new([1.0f64, 2.0, 3.0]);
            let y = x[0].matmul(&x[1])?.add(&c.exp()?)?.tanh()?;
            let z = y.mul(&y)?.sub(&y.mul(&y)?)?.add(&y.sigmoid()?)?;
            Ok(vec![z])
        };
        let x = random::normal(&[4, 5], Normal::default().dtype(DType::F64).seed(3)).unwrap();
        let w = random::normal(&[5, 3], Normal::default().dtype(DType::F64).seed(4)).unwrap();
        let want = function(body)
            .with_passes(PassConfig::none())
            .call(&[x.clone(), w.clone()])
            .unwrap();
        let all = function(body).call(&[x.clone(), w.clone()]).unwrap();
        assert_eq!(all[0].to_vec::<f64>().unwrap(), want[0].to_vec::<f64>().unwrap());
        for i in 0..6 {
            let mut cfg = PassConfig::default();
            match i {
                0 => cfg.dead_code_elimination = false,
                1 => cfg.constant_folding = false,
                2 => cfg.common_subexpression_elimination = false,
                3 => cfg.elementwise_fusion = false,
                4 => cfg.matmul_epilogue_fusion = false,
                _ => cfg.buffer_reuse = false,
            }
            let got = function(body).with_passes(cfg).call(&[x.clone(), w.clone()]).unwrap();
            assert_eq!(
                got[0].to_vec::<f64>().unwrap(),
                want[0].to_vec::<f64>().unwrap(),
                "pass {i} off"
            );
        }
        let f = function(body);
        let cf = f.get_concrete_function(&[x.spec(), w.spec()]).unwrap();
        assert!(
            op_count(cf.optimized_graph()) < op_count(cf.graph()),
            "{}",
            cf.optimized_graph()
        );
    }
}
