//! [`GradientTape`]: records the ops that touch watched values and walks them backwards.

use crate::grads;
use ferroflow_tensor_core::{
    push_observer, Error, Observer, ObserverGuard, Op, PauseObservers, Result, Tensor, TensorId, Variable,
};
use smallvec::SmallVec;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// Tensor ids are unique counters: a multiplicative hash is enough and much cheaper than
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

/// What `gradient` returns for a source the target does not depend on
/// (`tf.UnconnectedGradients`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnconnectedGradients {
    /// `None` (TensorFlow's default).
    #[default]
    None,
    /// Zeros of the source's shape and dtype.
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
/// use ferroflow_tensor_core::Tensor;
///
/// let x = Tensor::scalar(3.0f64);
/// let outer = GradientTape::new();
/// outer.watch(&x);
/// let inner = GradientTape::new();
/// inner.watch(&x);
/// let y = x.mul(&x)?.mul(&x)?;                         // x³
/// let dy = inner.gradient(&y, &[&x])?[0].clone().unwrap(); // 3x² = 27
/// let d2y = outer.gradient(&dy, &[&x])?[0].clone().unwrap(); // 6x = 18
/// assert_eq!(dy.to_scalar::<f64>()?, 27.0);
/// assert_eq!(d2y.to_scalar::<f64>()?, 18.0);
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
        Self::with_options(false, true)
    }

    /// A persistent tape (several `gradient` calls).
    pub fn persistent() -> Self {
        Self::with_options(true, true)
    }

    /// A tape with TensorFlow's two options: `persistent` and `watch_accessed_variables`.
    pub fn with_options(persistent: bool, watch_accessed_variables: bool) -> Self {
        let state = Rc::new(TapeState {
            persistent,
            watch_accessed_variables,
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

    /// `d target / d source` for each tensor source (`None` where unconnected). A non-scalar
    /// target differentiates its sum.
    pub fn gradient(&self, target: &Tensor, sources: &[&Tensor]) -> Result<Vec<Option<Tensor>>> {
        let s: Vec<Source> = sources.iter().map(|t| Source::Tensor(t)).collect();
        self.gradient_with(target, &s, None, UnconnectedGradients::None)
    }

    /// `d target / d variable` for each variable (`None` where unconnected).
    pub fn gradient_vars(&self, target: &Tensor, vars: &[&Variable]) -> Result<Vec<Option<Tensor>>> {
        let s: Vec<Source> = vars.iter().map(|v| Source::Variable(v)).collect();
        self.gradient_with(target, &s, None, UnconnectedGradients::None)
    }

    /// The full form: mixed sources, an optional upstream gradient of the target's shape
    /// (`output_gradients`), and what to return for unconnected sources.
    pub fn gradient_with(
        &self,
        target: &Tensor,
        sources: &[Source],
        output_gradient: Option<&Tensor>,
        unconnected: UnconnectedGradients,
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
        let result = self.paused(|| self.backward(target, seed, sources, unconnected));
        if !self.state.persistent {
            self.stop_recording();
            *self.state.record.borrow_mut() = Record::default();
        }
        result
    }

    fn backward(
        &self,
        target: &Tensor,
        seed: Tensor,
        sources: &[Source],
        unconnected: UnconnectedGradients,
    ) -> Result<Vec<Option<Tensor>>> {
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
            .map(|s| {
                let g = match s {
                    Source::Tensor(t) => grads.get(&t.id()).cloned(),
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
                        acc
                    }
                };
                match (g, unconnected) {
                    (Some(g), _) => Ok(Some(g)),
                    (None, UnconnectedGradients::None) => Ok(None),
                    (None, UnconnectedGradients::Zero) => {
                        let (dims, dtype) = match s {
                            Source::Tensor(t) => (t.dims().to_vec(), t.dtype()),
                            Source::Variable(v) => (v.shape().dims().to_vec(), v.dtype()),
                        };
                        Ok(Some(Tensor::zeros(&dims, dtype)))
                    }
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
            let g = self.gradient_with(
                target,
                &[Source::Tensor(source)],
                Some(&seed),
                UnconnectedGradients::Zero,
            )?;
            rows.push(g.into_iter().next().flatten().ok_or_else(|| Error::Other {
                op: "jacobian",
                msg: "missing row".into(),
            })?);
        }
        let mut dims: Vec<i64> = target.dims().iter().map(|&d| d as i64).collect();
        dims.extend(source.dims().iter().map(|&d| d as i64));
        if rows.is_empty() {
            return Ok(Tensor::zeros(
                &dims.iter().map(|&d| d as usize).collect::<Vec<_>>(),
                source.dtype(),
            ));
        }
        let refs: Vec<&Tensor> = rows.iter().collect();
        Tensor::stack(&refs, 0)?.reshape(&dims)
    }
}

/// Ones of `t`'s shape and dtype, made without being observed (a constant seed).
fn ones_like(t: &Tensor) -> Result<Tensor> {
    let _quiet = PauseObservers::new();
    Ok(Tensor::ones(t.dims(), t.dtype()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferroflow_tensor_core::DType;

    fn v(t: &Option<Tensor>) -> Vec<f64> {
        t.as_ref()
            .expect("connected")
            .cast(DType::F64)
            .unwrap()
            .to_vec::<f64>()
            .unwrap()
    }

    #[test]
    fn non_persistent_tape_answers_once_and_frees_its_record() {
        let x = Tensor::new([1.0f32, 2.0]);
        let tape = GradientTape::new();
        tape.watch(&x);
        let y = x.square().unwrap().reduce_sum(None, false).unwrap();
        assert_eq!(tape.num_recorded(), 2);
        assert_eq!(v(&tape.gradient(&y, &[&x]).unwrap()[0]), vec![2.0, 4.0]);
        assert_eq!(tape.num_recorded(), 0, "record freed after gradient");
        let e = tape.gradient(&y, &[&x]).unwrap_err();
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
        assert_eq!(v(&tape.gradient(&y, &[&x]).unwrap()[0]), vec![6.0]);
        assert_eq!(v(&tape.gradient(&z, &[&x]).unwrap()[0]), vec![27.0]);
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
        let g = tape.gradient(&z, &[&x, &y]).unwrap();
        assert_eq!(v(&g[0]), vec![3.0]);
        assert!(g[1].is_none());
        let g = tape
            .gradient_with(&z, &[Source::Tensor(&y)], None, UnconnectedGradients::Zero)
            .unwrap();
        assert_eq!(v(&g[0]), vec![0.0]);
    }

    #[test]
    fn output_gradients_and_non_scalar_targets() {
        let x = Tensor::new([1.0f64, 2.0, 3.0]);
        let tape = GradientTape::persistent();
        tape.watch(&x);
        let y = x.square().unwrap();
        assert_eq!(v(&tape.gradient(&y, &[&x]).unwrap()[0]), vec![2.0, 4.0, 6.0]);
        let up = Tensor::new([1.0f64, 0.0, -1.0]);
        let g = tape
            .gradient_with(&y, &[Source::Tensor(&x)], Some(&up), UnconnectedGradients::None)
            .unwrap();
        assert_eq!(v(&g[0]), vec![2.0, 0.0, -6.0]);
        assert!(tape
            .gradient_with(
                &y,
                &[Source::Tensor(&x)],
                Some(&Tensor::new([1.0f64])),
                UnconnectedGradients::None
            )
            .is_err());
    }

    #[test]
    fn variables_are_watched_when_trainable() {
        let w = Variable::new("w", Tensor::new([2.0f32]), true).unwrap();
        let frozen = Variable::new("frozen", Tensor::new([3.0f32]), false).unwrap();
        let tape = GradientTape::persistent();
        let y = w.read().unwrap().mul(&frozen.read().unwrap()).unwrap();
        let y2 = y.mul(&w.read().unwrap()).unwrap(); // two reads of w add up: d(3w²)/dw = 6w
        let g = tape.gradient_vars(&y2, &[&w, &frozen]).unwrap();
        assert_eq!(v(&g[0]), vec![12.0]);
        assert!(g[1].is_none());
        assert_eq!(tape.watched_variables(), vec![w.clone()]);

        let quiet = GradientTape::with_options(false, false);
        quiet.watch_variable(&frozen);
        let y = w.read().unwrap().mul(&frozen.read().unwrap()).unwrap();
        let g = quiet.gradient_vars(&y, &[&w, &frozen]).unwrap();
        assert!(g[0].is_none(), "automatic watching is off");
        assert_eq!(v(&g[1]), vec![2.0]);
    }

    #[test]
    fn paused_regions_are_not_recorded() {
        let x = Tensor::scalar(1.0f32);
        let tape = GradientTape::new();
        tape.watch(&x);
        let y = tape.paused(|| x.exp().unwrap());
        assert_eq!(tape.num_recorded(), 0);
        assert!(tape.gradient(&y, &[&x]).unwrap()[0].is_none());
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
