//! [`GradientTape`]: records the ops that touch watched values and walks them backwards.

use crate::grads;
use ferroflow_tensor_core::{
    push_observer, Error, Observer, ObserverGuard, Op, PauseObservers, Result, Tensor, TensorId, Variable,
};
use smallvec::SmallVec;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// SipHash on the tape's hot path (one lookup per op input).
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type IdSet = HashSet<TensorId, BuildHasherDefault<IdHasher>>;
type IdMap<V> = HashMap<TensorId, V, BuildHasherDefault<IdHasher>>;
use std::rc::Rc;

/// One recorded op: what ran, on what, giving what.
struct Entry {
    op: Op,
    // Inline: most ops have one or two inputs and one output, so recording allocates nothing.
    inputs: SmallVec<[Tensor; 2]>,
    outputs: SmallVec<[Tensor; 1]>,
}

#[derive(Default)]
struct Record {
    /// Ids of watched tensors and of every recorded op's outputs.
    live: IdSet,
    /// Outputs of variable reads, mapped to the variable read.
    reads: IdMap<Variable>,
    /// Variables watched explicitly (read even when not trainable or with automatic
    /// watching off).
    watched_vars: HashSet<Variable>,
    entries: Vec<Entry>,
}

impl Record {
    /// An empty record with room for a small training step (a few dozen ops), so recording
    /// one does not regrow its tables op by op.
    fn sized() -> Self {
        Record {
            live: IdSet::with_capacity_and_hasher(28, Default::default()),
            reads: IdMap::with_capacity_and_hasher(8, Default::default()),
            watched_vars: HashSet::new(),
            entries: Vec::with_capacity(16),
        }
    }
}

struct TapeState {
    persistent: bool,
    watch_accessed_variables: bool,
    recording: Cell<bool>,
    record: RefCell<Record>,
}

impl Observer for TapeState {
    fn observe(&self, op: &Op, inputs: &[&Tensor], outputs: &[Tensor]) {
        if !self.recording.get() {
            return;
        }
        let mut rec = self.record.borrow_mut();
        if let Op::ReadVariable(v) = op {
            let watched = (v.trainable() && self.watch_accessed_variables) || rec.watched_vars.contains(v);
            if watched {
                if let Some(out) = outputs.first() {
                    rec.live.insert(out.id());
                    rec.reads.insert(out.id(), v.clone());
                }
            }
            return;
        }
        if !grads::is_differentiable(op) || !inputs.iter().any(|t| rec.live.contains(&t.id())) {
            return;
        }
        for o in outputs {
            rec.live.insert(o.id());
        }
        rec.entries.push(Entry {
            op: op.clone(),
            inputs: inputs.iter().map(|t| (*t).clone()).collect(),
            outputs: outputs.iter().cloned().collect(),
        });
    }
}

/// What a gradient call does for a source the target does not depend on
/// (`tf.UnconnectedGradients`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnconnectedGradients {
    /// An error naming the source (TensorFlow returns `None` there; a Rust caller would
    /// have to unwrap it anyway).
    #[default]
    Error,
    /// Zeros of the source's shape and dtype (`UnconnectedGradients.ZERO`).
    Zero,
}

/// A value to differentiate with respect to: a tensor or a variable.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// A watched tensor.
    Tensor(&'a Tensor),
    /// A variable (its reads inside the tape).
    Variable(&'a Variable),
}

impl Source<'_> {
    fn describe(&self, i: usize) -> String {
        match self {
            Source::Tensor(t) => format!("source {i} (a {} tensor of shape {:?})", t.dtype(), t.dims()),
            Source::Variable(v) => format!("source {i} (variable '{}')", v.name()),
        }
    }

    fn zeros(&self) -> Result<Tensor> {
        match self {
            Source::Tensor(t) => t.zeros_like(),
            Source::Variable(v) => Tensor::zeros(v.shape().dims(), v.dtype()),
        }
    }
}

impl<'a> From<&'a Tensor> for Source<'a> {
    fn from(t: &'a Tensor) -> Self {
        Source::Tensor(t)
    }
}

impl<'a> From<&'a Variable> for Source<'a> {
    fn from(v: &'a Variable) -> Self {
        Source::Variable(v)
    }
}

impl<'a> From<&Source<'a>> for Source<'a> {
    fn from(s: &Source<'a>) -> Self {
        *s
    }
}

impl<'a, 'b: 'a> From<&'a &'b Tensor> for Source<'a> {
    fn from(t: &'a &'b Tensor) -> Self {
        Source::Tensor(t)
    }
}

impl<'a, 'b: 'a> From<&'a &'b Variable> for Source<'a> {
    fn from(v: &'a &'b Variable) -> Self {
        Source::Variable(v)
    }
}

/// What [`GradientTape::gradient`] differentiates with respect to, and the shape of its
/// answer: one tensor or variable gives one gradient, an array of `N` gives `[Tensor; N]`
/// (so `let [dw, db] = tape.gradient(&loss, [&w, &b])?;`), a slice or `Vec` gives a `Vec`.
/// Tensors and variables mix through [`Source`].
///
/// ```
/// use ferroflow_autodiff::{GradientTape, Source};
/// use ferroflow_tensor_core::{Tensor, Variable};
/// let x = Tensor::scalar(2.0f64);
/// let w = Variable::new("w", Tensor::scalar(3.0f64))?;
/// let tape = GradientTape::persistent();
/// tape.watch(&x);
/// let y = x.mul(&w.read()?)?;
/// let dx: Tensor = tape.gradient(&y, &x)?;                              // one source
/// let [dx2, dw] = tape.gradient(&y, [Source::from(&x), Source::from(&w)])?; // mixed
/// let all: Vec<Tensor> = tape.gradient(&y, &vec![w.clone()])?;          // a Vec
/// assert_eq!((dx.to_scalar::<f64>()?, dw.to_scalar::<f64>()?), (3.0, 2.0));
/// # let _ = (dx2, all);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
pub trait Sources<'a> {
    /// The gradients, one per source, in the sources' shape.
    type Gradients;

    /// The sources, in order.
    fn sources(self) -> SmallVec<[Source<'a>; 4]>;

    /// Wraps one gradient per source (in order) into [`Sources::Gradients`].
    fn gradients(grads: Vec<Tensor>) -> Result<Self::Gradients>;
}

fn one(grads: Vec<Tensor>) -> Result<Tensor> {
    grads.into_iter().next().ok_or_else(|| Error::Other {
        op: "GradientTape.gradient",
        msg: "no gradient computed".into(),
    })
}

fn array<const N: usize>(grads: Vec<Tensor>) -> Result<[Tensor; N]> {
    let n = grads.len();
    grads.try_into().map_err(|_| Error::Other {
        op: "GradientTape.gradient",
        msg: format!("{n} gradients for {N} sources"),
    })
}

impl<'a> Sources<'a> for &'a Tensor {
    type Gradients = Tensor;
    fn sources(self) -> SmallVec<[Source<'a>; 4]> {
        smallvec::smallvec![Source::Tensor(self)]
    }
    fn gradients(grads: Vec<Tensor>) -> Result<Tensor> {
        one(grads)
    }
}

impl<'a> Sources<'a> for &'a Variable {
    type Gradients = Tensor;
    fn sources(self) -> SmallVec<[Source<'a>; 4]> {
        smallvec::smallvec![Source::Variable(self)]
    }
    fn gradients(grads: Vec<Tensor>) -> Result<Tensor> {
        one(grads)
    }
}

impl<'a, 'b: 'a> Sources<'a> for &'a &'b Tensor {
    type Gradients = Tensor;
    fn sources(self) -> SmallVec<[Source<'a>; 4]> {
        smallvec::smallvec![Source::Tensor(self)]
    }
    fn gradients(grads: Vec<Tensor>) -> Result<Tensor> {
        one(grads)
    }
}

impl<'a, 'b: 'a> Sources<'a> for &'a &'b Variable {
    type Gradients = Tensor;
    fn sources(self) -> SmallVec<[Source<'a>; 4]> {
        smallvec::smallvec![Source::Variable(self)]
    }
    fn gradients(grads: Vec<Tensor>) -> Result<Tensor> {
        one(grads)
    }
}

impl<'a> Sources<'a> for Source<'a> {
    type Gradients = Tensor;
    fn sources(self) -> SmallVec<[Source<'a>; 4]> {
        smallvec::smallvec![self]
    }
    fn gradients(grads: Vec<Tensor>) -> Result<Tensor> {
        one(grads)
    }
}

impl<'a, S: Into<Source<'a>>, const N: usize> Sources<'a> for [S; N] {
    type Gradients = [Tensor; N];
    fn sources(self) -> SmallVec<[Source<'a>; 4]> {
        self.into_iter().map(Into::into).collect()
    }
    fn gradients(grads: Vec<Tensor>) -> Result<[Tensor; N]> {
        array(grads)
    }
}

impl<'a, S, const N: usize> Sources<'a> for &'a [S; N]
where
    &'a S: Into<Source<'a>>,
{
    type Gradients = [Tensor; N];
    fn sources(self) -> SmallVec<[Source<'a>; 4]> {
        self.iter().map(Into::into).collect()
    }
    fn gradients(grads: Vec<Tensor>) -> Result<[Tensor; N]> {
        array(grads)
    }
}

impl<'a, T> Sources<'a> for &'a [T]
where
    &'a T: Into<Source<'a>>,
{
    type Gradients = Vec<Tensor>;
    fn sources(self) -> SmallVec<[Source<'a>; 4]> {
        self.iter().map(Into::into).collect()
    }
    fn gradients(grads: Vec<Tensor>) -> Result<Vec<Tensor>> {
        Ok(grads)
    }
}

impl<'a, T> Sources<'a> for &'a Vec<T>
where
    &'a T: Into<Source<'a>>,
{
    type Gradients = Vec<Tensor>;
    fn sources(self) -> SmallVec<[Source<'a>; 4]> {
        self.iter().map(Into::into).collect()
    }
    fn gradients(grads: Vec<Tensor>) -> Result<Vec<Tensor>> {
        Ok(grads)
    }
}

/// Options of a tape (`tf.GradientTape(persistent, watch_accessed_variables)`).
///
/// ```
/// use ferroflow_autodiff::{GradientTape, TapeOptions};
/// let tape = GradientTape::with_options(TapeOptions::new().persistent().watch_accessed_variables(false));
/// # drop(tape);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TapeOptions {
    /// Answer any number of `gradient` calls (otherwise one, then the record is freed).
    pub persistent: bool,
    /// Watch every trainable variable read while recording (TensorFlow's default).
    pub watch_accessed_variables: bool,
}

impl TapeOptions {
    /// TensorFlow's defaults: not persistent, trainable variables watched.
    pub fn new() -> Self {
        TapeOptions {
            persistent: false,
            watch_accessed_variables: true,
        }
    }

    /// A persistent tape.
    pub fn persistent(self) -> Self {
        TapeOptions {
            persistent: true,
            ..self
        }
    }

    /// Whether reads of trainable variables are watched without [`GradientTape::watch_variable`].
    pub fn watch_accessed_variables(self, watch: bool) -> Self {
        TapeOptions {
            watch_accessed_variables: watch,
            ..self
        }
    }
}

impl Default for TapeOptions {
    fn default() -> Self {
        TapeOptions::new()
    }
}

/// The rest of `tape.gradient(target, sources, output_gradients, unconnected_gradients)`.
///
/// ```
/// use ferroflow_autodiff::{GradientOptions, GradientTape, UnconnectedGradients};
/// use ferroflow_tensor_core::Tensor;
/// let (x, y) = (Tensor::new([1.0f64, 2.0]), Tensor::scalar(5.0f64));
/// let tape = GradientTape::new();
/// tape.watch(&x);
/// tape.watch(&y);
/// let z = x.square()?;
/// let options = GradientOptions::new()
///     .output_gradients(Tensor::new([1.0f64, -1.0]))
///     .unconnected_gradients(UnconnectedGradients::Zero);
/// let [dx, dy] = tape.gradient_with(&z, [&x, &y], options)?;
/// assert_eq!(dx.to_vec::<f64>()?, vec![2.0, -4.0]);
/// assert_eq!(dy.to_scalar::<f64>()?, 0.0);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct GradientOptions {
    /// The upstream gradient of the target (of its shape and dtype); ones by default, so a
    /// non-scalar target differentiates its sum.
    pub output_gradients: Option<Tensor>,
    /// What unconnected sources get.
    pub unconnected_gradients: UnconnectedGradients,
}

impl GradientOptions {
    /// Ones as the upstream gradient, an error for unconnected sources.
    pub fn new() -> Self {
        GradientOptions::default()
    }

    /// The target's upstream gradient (`output_gradients`).
    pub fn output_gradients(self, upstream: Tensor) -> Self {
        GradientOptions {
            output_gradients: Some(upstream),
            ..self
        }
    }

    /// What unconnected sources get (`unconnected_gradients`).
    pub fn unconnected_gradients(self, unconnected: UnconnectedGradients) -> Self {
        GradientOptions {
            unconnected_gradients: unconnected,
            ..self
        }
    }
}

/// Reverse-mode automatic differentiation, as `tf.GradientTape`.
///
/// A tape records, on the current thread, from its creation until it is dropped or
/// [`GradientTape::stop_recording`] is called, every op that touches a watched value:
/// tensors passed to [`GradientTape::watch`] and, unless turned off, every trainable
/// [`Variable`] read. [`GradientTape::gradient`] then walks the record backwards. Gradient
/// code is made of ordinary ops, so an outer tape records it too: nest tapes for
/// higher-order derivatives.
///
/// A non-persistent tape answers one `gradient` call, then frees its record; a persistent
/// one answers any number.
///
/// ```
/// use ferroflow_autodiff::GradientTape;
/// use ferroflow_tensor_core::{Tensor, Variable};
///
/// // dw, db = tape.gradient(loss, [w, b])
/// let w = Variable::new("w", Tensor::new([[2.0f32], [1.0]]))?;
/// let b = Variable::new("b", Tensor::new([0.5f32]))?;
/// let x = Tensor::new([[1.0f32, 3.0]]);
/// let tape = GradientTape::new();
/// let loss = x.matmul(&w.read()?)?.add(&b.read()?)?.square()?; // (2 + 3 + 0.5)²
/// let [dw, db] = tape.gradient(&loss, [&w, &b])?;
/// assert_eq!(dw.to_vec::<f32>()?, vec![11.0, 33.0]);
/// assert_eq!(db.to_vec::<f32>()?, vec![11.0]);
///
/// // Nested tapes: second derivatives.
/// let x = Tensor::scalar(3.0f64);
/// let outer = GradientTape::new();
/// outer.watch(&x);
/// let inner = GradientTape::new();
/// inner.watch(&x);
/// let y = x.mul(&x)?.mul(&x)?; // x³
/// let dy = inner.gradient(&y, &x)?; // 3x² = 27
/// let d2y = outer.gradient(&dy, &x)?; // 6x = 18
/// assert_eq!((dy.to_scalar::<f64>()?, d2y.to_scalar::<f64>()?), (27.0, 18.0));
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
pub struct GradientTape {
    state: Rc<TapeState>,
    guard: RefCell<Option<ObserverGuard>>,
    used: Cell<bool>,
}

impl Default for GradientTape {
    fn default() -> Self {
        Self::new()
    }
}

impl GradientTape {
    /// A non-persistent tape that watches trainable variables automatically.
    pub fn new() -> Self {
        Self::with_options(TapeOptions::new())
    }

    /// A persistent tape (several `gradient` calls).
    ///
    /// ```
    /// use ferroflow_autodiff::GradientTape;
    /// use ferroflow_tensor_core::Tensor;
    /// let x = Tensor::scalar(3.0f64);
    /// let tape = GradientTape::persistent();
    /// tape.watch(&x);
    /// let (y, z) = (x.square()?, x.exp()?);
    /// assert_eq!(tape.gradient(&y, &x)?.to_scalar::<f64>()?, 6.0);
    /// assert_eq!(tape.gradient(&z, &x)?.to_scalar::<f64>()?, 3f64.exp());
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn persistent() -> Self {
        Self::with_options(TapeOptions::new().persistent())
    }

    /// A tape with TensorFlow's two options.
    pub fn with_options(options: TapeOptions) -> Self {
        let state = Rc::new(TapeState {
            persistent: options.persistent,
            watch_accessed_variables: options.watch_accessed_variables,
            recording: Cell::new(true),
            record: RefCell::new(Record::sized()),
        });
        let guard = push_observer(state.clone());
        GradientTape {
            state,
            guard: RefCell::new(Some(guard)),
            used: Cell::new(false),
        }
    }

    /// Watches a tensor: ops that use it are recorded.
    pub fn watch(&self, t: &Tensor) {
        self.state.record.borrow_mut().live.insert(t.id());
    }

    /// Watches a variable: its reads are recorded even if it is not trainable or automatic
    /// watching is off.
    pub fn watch_variable(&self, v: &Variable) {
        self.state.record.borrow_mut().watched_vars.insert(v.clone());
    }

    /// The variables whose reads were recorded, in order of first read
    /// (`tape.watched_variables()`).
    pub fn watched_variables(&self) -> Vec<Variable> {
        let rec = self.state.record.borrow();
        let mut seen = HashSet::new();
        let mut reads: Vec<(&TensorId, &Variable)> = rec.reads.iter().collect();
        reads.sort_by_key(|(id, _)| **id);
        reads
            .into_iter()
            .filter(|(_, v)| seen.insert(v.id()))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Stops recording for good (the record is kept for `gradient`).
    pub fn stop_recording(&self) {
        self.state.recording.set(false);
        self.guard.borrow_mut().take();
    }

    /// Runs `f` without recording on this tape (`with tape.stop_recording():`).
    pub fn paused<R>(&self, f: impl FnOnce() -> R) -> R {
        let was = self.state.recording.replace(false);
        let r = f();
        self.state.recording.set(was);
        r
    }

    /// Number of ops recorded so far.
    pub fn num_recorded(&self) -> usize {
        self.state.record.borrow().entries.len()
    }

    /// `d target / d source` for each source (`tape.gradient(target, sources)`): a tensor or
    /// variable, an array of them, or a slice or `Vec` (see [`Sources`]). A non-scalar target
    /// differentiates its sum. A source the target does not depend on is an error naming it;
    /// [`GradientTape::gradient_with`] can give zeros instead.
    pub fn gradient<'a, S: Sources<'a>>(&self, target: &Tensor, sources: S) -> Result<S::Gradients> {
        self.gradient_with(target, sources, GradientOptions::new())
    }

    /// [`GradientTape::gradient`] with an upstream gradient for the target and a choice for
    /// unconnected sources.
    pub fn gradient_with<'a, S: Sources<'a>>(
        &self,
        target: &Tensor,
        sources: S,
        options: GradientOptions,
    ) -> Result<S::Gradients> {
        let sources = sources.sources();
        let grads = self.gradients_or_none(target, &sources, options.output_gradients.as_ref())?;
        let grads = grads
            .into_iter()
            .zip(&sources)
            .enumerate()
            .map(|(i, (g, s))| match (g, options.unconnected_gradients) {
                (Some(g), _) => Ok(g),
                (None, UnconnectedGradients::Zero) => s.zeros(),
                (None, UnconnectedGradients::Error) => Err(Error::Other {
                    op: "GradientTape.gradient",
                    msg: format!(
                        "{} is not connected to the target: the target does not depend on it \
                         (use GradientOptions::unconnected_gradients(UnconnectedGradients::Zero) for zeros)",
                        s.describe(i)
                    ),
                }),
            })
            .collect::<Result<Vec<_>>>()?;
        S::gradients(grads)
    }

    /// The gradients of the variables the target depends on, each beside its variable, ready
    /// for `optimizer.apply_gradients`; variables the target does not depend on are left out,
    /// as Keras' optimizers skip a `None` gradient.
    ///
    /// ```
    /// use ferroflow_autodiff::GradientTape;
    /// use ferroflow_tensor_core::{Tensor, Variable};
    /// let used = Variable::new("used", Tensor::scalar(2.0f32))?;
    /// let unused = Variable::new("unused", Tensor::scalar(1.0f32))?;
    /// let tape = GradientTape::new();
    /// let loss = used.read()?.square()?;
    /// let pairs = tape.connected_gradients(&loss, &[used.clone(), unused])?;
    /// assert_eq!(pairs.len(), 1);
    /// assert_eq!((pairs[0].0.to_scalar::<f32>()?, pairs[0].1.name()), (4.0, "used"));
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn connected_gradients(&self, target: &Tensor, vars: &[Variable]) -> Result<Vec<(Tensor, Variable)>> {
        let sources: Vec<Source> = vars.iter().map(Source::Variable).collect();
        let grads = self.gradients_or_none(target, &sources, None)?;
        Ok(grads
            .into_iter()
            .zip(vars)
            .filter_map(|(g, v)| g.map(|g| (g, v.clone())))
            .collect())
    }

    /// The gradient of each source, `None` where unconnected.
    fn gradients_or_none(
        &self,
        target: &Tensor,
        sources: &[Source],
        output_gradient: Option<&Tensor>,
    ) -> Result<Vec<Option<Tensor>>> {
        if !self.state.persistent && self.used.replace(true) {
            return Err(Error::Other {
                op: "GradientTape.gradient",
                msg: "a non-persistent tape can only compute one gradient; create it with GradientTape::persistent() for more".into(),
            });
        }
        let seed = match output_gradient {
            Some(g) => {
                if g.dims() != target.dims() || g.dtype() != target.dtype() {
                    return Err(Error::shapes(
                        "GradientTape.gradient",
                        &[&target.shape(), &g.shape()],
                        "output_gradients must match the target's shape and dtype",
                    ));
                }
                g.clone()
            }
            None => ones_like(target)?,
        };
        // The tape does not record its own backward pass; outer tapes do.
        let result = self.paused(|| self.backward(target, seed, sources));
        if !self.state.persistent {
            self.stop_recording();
            *self.state.record.borrow_mut() = Record::default();
        }
        result
    }

    fn backward(&self, target: &Tensor, seed: Tensor, sources: &[Source]) -> Result<Vec<Option<Tensor>>> {
        let rec = self.state.record.borrow();
        let mut grads: IdMap<Tensor> = IdMap::with_capacity_and_hasher(rec.entries.len() * 2, Default::default());
        grads.insert(target.id(), seed);
        for entry in rec.entries.iter().rev() {
            let upstream: SmallVec<[Option<Tensor>; 1]> =
                entry.outputs.iter().map(|o| grads.get(&o.id()).cloned()).collect();
            if upstream.iter().all(Option::is_none) {
                continue;
            }
            let needed: SmallVec<[bool; 4]> = entry.inputs.iter().map(|x| rec.live.contains(&x.id())).collect();
            let in_grads = grads::gradient(&entry.op, &entry.inputs, &entry.outputs, &upstream, &needed)?;
            for (x, g) in entry.inputs.iter().zip(in_grads) {
                let Some(g) = g else { continue };
                if !rec.live.contains(&x.id()) {
                    continue;
                }
                let acc = match grads.remove(&x.id()) {
                    Some(prev) => prev.add(&g)?,
                    None => g,
                };
                grads.insert(x.id(), acc);
            }
        }
        sources
            .iter()
            .map(|s| match s {
                Source::Tensor(t) => Ok(grads.get(&t.id()).cloned()),
                Source::Variable(v) => {
                    let mut reads: Vec<&TensorId> =
                        rec.reads.iter().filter(|(_, rv)| *rv == *v).map(|(id, _)| id).collect();
                    reads.sort();
                    let mut acc: Option<Tensor> = None;
                    for id in reads {
                        if let Some(g) = grads.get(id) {
                            acc = Some(match acc {
                                Some(a) => a.add(g)?,
                                None => g.clone(),
                            });
                        }
                    }
                    Ok(acc)
                }
            })
            .collect()
    }

    /// The Jacobian of `target` with respect to `source`: shape `target.shape + source.shape`
    /// (`tape.jacobian`, for small cases: one backward pass per target element). Needs a
    /// persistent tape.
    pub fn jacobian(&self, target: &Tensor, source: &Tensor) -> Result<Tensor> {
        if !self.state.persistent {
            return Err(Error::Other {
                op: "GradientTape.jacobian",
                msg: "jacobian needs a persistent tape".into(),
            });
        }
        let n = target.num_elements();
        let mut rows = Vec::with_capacity(n);
        for i in 0..n {
            let mut onehot = vec![0.0f64; n];
            onehot[i] = 1.0;
            let seed = Tensor::from_vec(onehot, target.dims())?.cast(target.dtype())?;
            let options = GradientOptions::new()
                .output_gradients(seed)
                .unconnected_gradients(UnconnectedGradients::Zero);
            rows.push(self.gradient_with(target, source, options)?);
        }
        let mut dims: Vec<i64> = target.dims().iter().map(|&d| d as i64).collect();
        dims.extend(source.dims().iter().map(|&d| d as i64));
        if rows.is_empty() {
            return Tensor::zeros(&dims.iter().map(|&d| d as usize).collect::<Vec<_>>(), source.dtype());
        }
        let refs: Vec<&Tensor> = rows.iter().collect();
        Tensor::stack(&refs, 0)?.reshape(&dims)
    }
}

/// Ones of `t`'s shape and dtype, made without being observed (a constant seed).
fn ones_like(t: &Tensor) -> Result<Tensor> {
    let _quiet = PauseObservers::new();
    t.ones_like()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferroflow_tensor_core::{Axes, DType};

    fn v(t: &Tensor) -> Vec<f64> {
        t.cast(DType::F64).unwrap().to_vec::<f64>().unwrap()
    }

    #[test]
    fn non_persistent_tape_answers_once_and_frees_its_record() {
        let x = Tensor::new([1.0f32, 2.0]);
        let tape = GradientTape::new();
        tape.watch(&x);
        let y = x.square().unwrap().reduce_sum(Axes::All).unwrap();
        assert_eq!(tape.num_recorded(), 2);
        assert_eq!(v(&tape.gradient(&y, &x).unwrap()), vec![2.0, 4.0]);
        assert_eq!(tape.num_recorded(), 0, "record freed after gradient");
        let e = tape.gradient(&y, &x).unwrap_err();
        assert!(e.to_string().contains("non-persistent"), "{e}");
        // It no longer records either.
        let _ = x.exp().unwrap();
        assert_eq!(tape.num_recorded(), 0);
    }

    #[test]
    fn persistent_tape_answers_many_times() {
        let x = Tensor::scalar(3.0f64);
        let tape = GradientTape::persistent();
        tape.watch(&x);
        let y = x.square().unwrap();
        let z = y.mul(&x).unwrap();
        assert_eq!(v(&tape.gradient(&y, &x).unwrap()), vec![6.0]);
        assert_eq!(v(&tape.gradient(&z, &x).unwrap()), vec![27.0]);
    }

    #[test]
    fn records_only_ops_touching_watched_values() {
        let x = Tensor::new([1.0f32]);
        let c = Tensor::new([5.0f32]);
        let tape = GradientTape::new();
        let _ = c.exp().unwrap().mul(&c).unwrap();
        assert_eq!(tape.num_recorded(), 0);
        tape.watch(&x);
        let _ = x.mul(&c).unwrap();
        assert_eq!(tape.num_recorded(), 1);
    }

    #[test]
    fn unconnected_sources_and_stop_gradient() {
        let (x, y) = (Tensor::scalar(2.0f64), Tensor::scalar(3.0f64));
        let tape = GradientTape::persistent();
        tape.watch(&x);
        tape.watch(&y);
        let z = x.mul(&y.stop_gradient().unwrap()).unwrap();
        assert_eq!(v(&tape.gradient(&z, &x).unwrap()), vec![3.0]);
        let e = tape.gradient(&z, [&x, &y]).unwrap_err().to_string();
        assert!(e.contains("source 1") && e.contains("not connected"), "{e}");
        let zeros = GradientOptions::new().unconnected_gradients(UnconnectedGradients::Zero);
        let [gx, gy] = tape.gradient_with(&z, [&x, &y], zeros).unwrap();
        assert_eq!((v(&gx), v(&gy)), (vec![3.0], vec![0.0]));
    }

    #[test]
    fn output_gradients_and_non_scalar_targets() {
        let x = Tensor::new([1.0f64, 2.0, 3.0]);
        let tape = GradientTape::persistent();
        tape.watch(&x);
        let y = x.square().unwrap();
        assert_eq!(v(&tape.gradient(&y, &x).unwrap()), vec![2.0, 4.0, 6.0]);
        let up = Tensor::new([1.0f64, 0.0, -1.0]);
        let g = tape
            .gradient_with(&y, &x, GradientOptions::new().output_gradients(up))
            .unwrap();
        assert_eq!(v(&g), vec![2.0, 0.0, -6.0]);
        let wrong = GradientOptions::new().output_gradients(Tensor::new([1.0f64]));
        assert!(tape.gradient_with(&y, &x, wrong).is_err());
    }

    #[test]
    fn variables_are_watched_when_trainable() {
        let w = Variable::new("w", Tensor::new([2.0f32])).unwrap();
        let frozen = Variable::non_trainable("frozen", Tensor::new([3.0f32])).unwrap();
        let tape = GradientTape::persistent();
        let y = w.read().unwrap().mul(&frozen.read().unwrap()).unwrap();
        let y2 = y.mul(&w.read().unwrap()).unwrap(); // two reads of w add up: d(3w²)/dw = 6w
        assert_eq!(v(&tape.gradient(&y2, &w).unwrap()), vec![12.0]);
        assert!(tape.gradient(&y2, &frozen).is_err(), "not trainable, not watched");
        let pairs = tape.connected_gradients(&y2, &[w.clone(), frozen.clone()]).unwrap();
        assert_eq!(pairs.len(), 1);
        assert_eq!(pairs[0].1, w);
        assert_eq!(tape.watched_variables(), vec![w.clone()]);

        let quiet = GradientTape::with_options(TapeOptions::new().watch_accessed_variables(false));
        quiet.watch_variable(&frozen);
        let y = w.read().unwrap().mul(&frozen.read().unwrap()).unwrap();
        let zeros = GradientOptions::new().unconnected_gradients(UnconnectedGradients::Zero);
        let [gw, gf] = quiet.gradient_with(&y, [&w, &frozen], zeros).unwrap();
        assert_eq!(v(&gw), vec![0.0], "automatic watching is off");
        assert_eq!(v(&gf), vec![2.0]);
    }

    #[test]
    fn paused_regions_are_not_recorded() {
        let x = Tensor::scalar(1.0f32);
        let tape = GradientTape::new();
        tape.watch(&x);
        let y = tape.paused(|| x.exp().unwrap());
        assert_eq!(tape.num_recorded(), 0);
        assert!(tape.gradient(&y, &x).is_err());
    }

    #[test]
    fn jacobian_of_a_small_function() {
        let x = Tensor::new([1.0f64, 2.0]);
        let tape = GradientTape::persistent();
        tape.watch(&x);
        let y = Tensor::stack(&[&x.square().unwrap(), &x.mul(&Tensor::scalar(3.0f64)).unwrap()], 0).unwrap();
        let j = tape.jacobian(&y, &x).unwrap();
        assert_eq!(j.dims(), &[2, 2, 2]);
        assert_eq!(j.to_vec::<f64>().unwrap(), vec![2.0, 0.0, 0.0, 4.0, 3.0, 0.0, 0.0, 3.0]);
        assert!(GradientTape::new().jacobian(&y, &x).is_err());
    }
}
